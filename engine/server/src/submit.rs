//! What became of a command appended to the log and waited for (knowledge changes, deploy
//! reports, rollbacks): one error type for every area that writes commands, each variant saying
//! who must act; the HTTP API maps it to one status each.

use aiops_runtime::CommandError;

/// Why a command was not applied.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The input is not valid (the caller fixes it).
    #[error("{0}")]
    Invalid(String),
    /// Another change won, or the state does not allow it now (the caller re-reads).
    #[error("{0}")]
    Conflict(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// The log did not take the command (retry later).
    #[error("{0}")]
    Unavailable(String),
    /// The command is in the log but not applied yet (it will be).
    #[error("{0}")]
    Pending(String),
    /// aiops failed (a bug).
    #[error("{0}")]
    Failed(String),
}

/// The kind of a processor's refusal, as the processor's `refusal_kind` reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The input is not valid.
    Invalid,
    /// A conflict (or a policy refusal).
    Conflict,
    /// Nothing by that name.
    NotFound,
    /// The processor failed (a bug).
    Failed,
}

impl SubmitError {
    /// `e` from [`aiops_runtime::progress::command`], its refusal classified by `classify`
    /// (the processor's own reading of its refusal reasons).
    pub fn from_command(e: CommandError, classify: impl FnOnce(&str) -> (Refused, String)) -> Self {
        match e {
            CommandError::Log(e) => SubmitError::Unavailable(e.to_string()),
            CommandError::Timeout(m) => SubmitError::Pending(m),
            CommandError::Refused(r) => match classify(&r) {
                (Refused::Invalid, m) => SubmitError::Invalid(m),
                (Refused::Conflict, m) => SubmitError::Conflict(m),
                (Refused::NotFound, m) => SubmitError::NotFound(m),
                (Refused::Failed, m) => SubmitError::Failed(m),
            },
        }
    }
}
