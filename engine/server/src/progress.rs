//! How far a runner has read the log, and what became of the commands it read: lets an API
//! handler that appended a command wait until the runner applied or refused it. Shared by the
//! alerting and workflow runners.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Outcomes kept (the newest commands).
const KEPT: usize = 1024;

/// A runner's position and the outcomes of recent commands.
#[derive(Debug, Default)]
pub struct CommandProgress {
    position: AtomicU64,
    outcomes: Mutex<BTreeMap<u64, Option<String>>>,
    moved: Notify,
}

impl CommandProgress {
    /// Next log sequence the runner has not consumed.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// The runner has consumed everything before `pos`.
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

    /// Waits until the runner has consumed `seq` (or `timeout` passes) and returns what became
    /// of it if it was a command.
    ///
    /// # Errors
    /// The refusal, or a timeout message naming `engine`.
    pub async fn wait_for(&self, seq: u64, timeout: Duration, engine: &str) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.moved.notified();
            if self.position() > seq {
                return match self.outcomes.lock().get(&seq) {
                    Some(Some(reason)) => Err(reason.clone()),
                    _ => Ok(()),
                };
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!(
                    "the {engine} has not processed the command within {timeout:?}; it is in the log and will apply"
                ));
            }
        }
    }
}
