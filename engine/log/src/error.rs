//! Errors of the event log, saying who must act and whether a retry helps.

use std::path::PathBuf;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A disk operation failed; the path says where. A retry helps only if the cause is transient
    /// (disk full, permissions changed).
    #[error("log I/O error at {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A stored record failed its checksum or framing. Never skipped: an operator must restore
    /// the segment or cut the log there (`aiops log repair` is not built yet).
    #[error("corrupt record in {segment} at byte offset {offset}: {reason}")]
    Corrupt {
        /// Segment file (embedded) or stream name (JetStream).
        segment: PathBuf,
        /// Byte offset of the record in the segment, or the sequence for JetStream.
        offset: u64,
        /// What failed (checksum, length, header).
        reason: String,
    },
    /// The backend cannot serve now (server down, writer overloaded); retrying later may help.
    #[error("log unavailable (retry may help): {0}")]
    Unavailable(String),
    /// The log cannot be used as configured (no JetStream on the server, bad directory); fix the
    /// configuration or the server.
    #[error("log misconfigured: {0}")]
    Config(String),
    /// The caller passed a message the log refuses; a bug in the caller.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// The log was closed.
    #[error("log is closed")]
    Closed,
    /// A fenced append was refused: another process took the work unit over (its fence message
    /// is newer than ours). The caller must stop the unit; nothing it appends is wanted any more.
    #[error("fenced out of {subject}: another node took this work unit over ({detail})")]
    Fenced {
        /// The fence subject.
        subject: String,
        /// What the backend said.
        detail: String,
    },
}

impl LogError {
    /// Whether retrying the same operation later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LogError::Unavailable(_) | LogError::Io { .. })
    }
}
