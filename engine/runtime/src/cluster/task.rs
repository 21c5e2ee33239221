//! [`TaskUnit`]: a background task only the unit's owner runs (archive compaction, pull
//! sources, …). It has no processor state and no checkpoint: owned, it runs the task until
//! `stop`; followed, it runs an optional follower task (e.g. refreshing what this node reads)
//! or nothing.

use super::unit::{Unit, UnitError};
use aiops_log::EventLog;
use async_trait::async_trait;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// A boxed task future, as [`TaskUnit`]'s closures return it.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), UnitError>> + Send + 'static>>;

/// Starts the owner's task: given the unit's (fenced) log and the stop receiver.
pub type OwnTask =
    Box<dyn Fn(Arc<dyn EventLog>, watch::Receiver<bool>) -> TaskFuture + Send + Sync + 'static>;

/// Starts a follower's task: given the stop receiver.
pub type FollowTask = Box<dyn Fn(watch::Receiver<bool>) -> TaskFuture + Send + Sync + 'static>;

/// A unit whose owner runs a task and whose followers run another one or nothing. The task
/// should return when `stop` flips; returning earlier (or failing) lets the member start it
/// again after a pause.
pub struct TaskUnit {
    name: String,
    own: OwnTask,
    follow: Option<FollowTask>,
}

impl TaskUnit {
    /// A unit named `name` whose owner runs `own(log, stop)`; followers do nothing.
    pub fn new(
        name: &str,
        own: impl Fn(Arc<dyn EventLog>, watch::Receiver<bool>) -> TaskFuture + Send + Sync + 'static,
    ) -> TaskUnit {
        TaskUnit {
            name: name.to_string(),
            own: Box::new(own),
            follow: None,
        }
    }

    /// The same unit, whose followers run `follow(stop)` while another node owns it.
    #[must_use]
    pub fn with_follow(
        mut self,
        follow: impl Fn(watch::Receiver<bool>) -> TaskFuture + Send + Sync + 'static,
    ) -> TaskUnit {
        self.follow = Some(Box::new(follow));
        self
    }
}

impl std::fmt::Debug for TaskUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskUnit")
            .field("name", &self.name)
            .field("follows", &self.follow.is_some())
            .finish()
    }
}

#[async_trait]
impl Unit for TaskUnit {
    fn name(&self) -> &str {
        &self.name
    }

    async fn own(
        self: Arc<Self>,
        log: Arc<dyn EventLog>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), UnitError> {
        tracing::info!(unit = %self.name, "task unit: running as owner");
        (self.own)(log, stop).await
    }

    async fn follow(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> Result<(), UnitError> {
        match &self.follow {
            Some(f) => f(stop).await,
            None => {
                let _ = stop.wait_for(|s| *s).await;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn owner_runs_the_task_until_stop_follower_waits() {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let unit = Arc::new(TaskUnit::new("t", move |_log, mut stop| {
            let r = r.clone();
            Box::pin(async move {
                r.fetch_add(1, Ordering::SeqCst);
                let _ = stop.wait_for(|s| *s).await;
                Ok(())
            })
        }));
        assert_eq!(unit.name(), "t");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let log: Arc<dyn EventLog> = Arc::new(
            aiops_log::embedded::EmbeddedLog::open(aiops_log::embedded::EmbeddedConfig::new(
                dir.path().join("log"),
            ))
            .await
            .unwrap_or_else(|e| panic!("log: {e}")),
        );
        let (tx, rx) = watch::channel(false);
        let owned = tokio::spawn(unit.clone().own(log, rx.clone()));
        let followed = tokio::spawn(unit.clone().follow(rx));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!owned.is_finished() && !followed.is_finished());
        let _ = tx.send(true);
        assert!(matches!(owned.await, Ok(Ok(()))));
        assert!(matches!(followed.await, Ok(Ok(()))));
    }
}
