//! How far a processor has read the log, and what became of the commands it read: lets an API
//! handler that appended a command wait until the processor applied or refused it
//! ([`command`]).

use aiops_log::{AppendMessage, EventLog, LogError};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Outcomes kept (the newest commands).
const KEPT: usize = 1024;

/// A processor's position and the outcomes of recent commands.
#[derive(Debug, Default)]
pub struct CommandProgress {
    position: AtomicU64,
    outcomes: Mutex<BTreeMap<u64, Option<String>>>,
    moved: Notify,
}

impl CommandProgress {
    /// Next log sequence the processor has not consumed.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// The processor has consumed everything before `pos`.
    pub fn moved_to(&self, pos: u64) {
        self.position.store(pos, Ordering::Release);
        self.moved.notify_waiters();
    }

    /// What became of the command at `seq`: `None` applied, `Some(reason)` refused.
    pub fn record(&self, seq: u64, outcome: Option<String>) {
        let mut o = self.outcomes.lock();
        o.insert(seq, outcome);
        while o.len() > KEPT {
            o.pop_first();
        }
    }

    /// Waits until the processor has consumed `seq` (or `timeout` passes) and returns what
    /// became of it if it was a command.
    ///
    /// # Errors
    /// [`CommandError::Refused`] with the processor's reason, [`CommandError::Timeout`].
    pub async fn wait_for(
        &self,
        seq: u64,
        timeout: Duration,
        processor: &str,
    ) -> Result<(), CommandError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.moved.notified();
            if self.position() > seq {
                return match self.outcomes.lock().get(&seq) {
                    Some(Some(reason)) => Err(CommandError::Refused(reason.clone())),
                    _ => Ok(()),
                };
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(CommandError::Timeout(format!(
                    "the {processor} has not processed the command within {timeout:?}; it is in the log and will apply"
                )));
            }
        }
    }
}

/// Why a command did not apply.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The log did not take the command (nothing happened; the caller may retry).
    #[error("the event log did not accept the command: {0}")]
    Log(#[from] LogError),
    /// The processor read the command and refused it: the reason is for the user.
    #[error("{0}")]
    Refused(String),
    /// The processor has not read the command yet; it is in the log and will apply.
    #[error("{0}")]
    Timeout(String),
}

/// Appends a command and waits until the processor behind `progress` applied it.
///
/// # Errors
/// [`CommandError`].
pub async fn command(
    log: &dyn EventLog,
    progress: &CommandProgress,
    processor: &str,
    msg: AppendMessage,
    timeout: Duration,
) -> Result<u64, CommandError> {
    let appended = log.append(vec![msg]).await?;
    let Some(seq) = appended.first().map(|a| a.seq) else {
        return Err(CommandError::Log(LogError::Unavailable(
            "the event log returned no position".into(),
        )));
    };
    progress.wait_for(seq, timeout, processor).await?;
    Ok(seq)
}
