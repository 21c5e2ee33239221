//! The workflow engine and its executor as one cluster work unit (`workflows`): owned, the
//! driver appends engine events and the executor performs intents and appends results, both
//! through the unit's fenced log, so a former owner can neither log events nor results once a
//! successor took over; followed, the engine's state is kept for reads and nothing runs.
//!
//! An intent whose result is in the log never runs again on any node (the engine knows it is
//! settled); one that was in flight on a node that died has no result, so the successor's
//! executor runs it again with the same idempotency key (the intent's key).

use super::executor::{Executor, Queries};
use super::processor::{WorkflowProcessor, WorkflowsHandle};
use crate::cluster::{Unit, UnitError};
use crate::driver::{Driver, DriverOptions};
use crate::store::Store;
use aiops_log::{Blobs, EventLog};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The unit's name: lease, fence subject and checkpoint blob.
pub const NAME: &str = "workflows";

/// See the module documentation.
pub struct WorkflowsUnit {
    /// The engine the API reads.
    pub handle: Arc<WorkflowsHandle>,
    log: Arc<dyn EventLog>,
    blobs: Arc<dyn Blobs>,
    query: Arc<dyn Queries>,
    max_in_flight: usize,
    sql_window: Duration,
    checkpoint_every: Duration,
    tick_every: Duration,
    /// The executor while this node owns the unit (its metrics).
    pub executor: Arc<Mutex<Option<Arc<Executor>>>>,
}

impl WorkflowsUnit {
    /// The unit over `handle`; `query` serves `sql` steps.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        handle: Arc<WorkflowsHandle>,
        log: Arc<dyn EventLog>,
        blobs: Arc<dyn Blobs>,
        query: Arc<dyn Queries>,
        max_in_flight: usize,
        sql_window: Duration,
        checkpoint_every: Duration,
        tick_every: Duration,
    ) -> WorkflowsUnit {
        WorkflowsUnit {
            handle,
            log,
            blobs,
            query,
            max_in_flight,
            sql_window,
            checkpoint_every,
            tick_every,
            executor: Arc::new(Mutex::new(None)),
        }
    }

    async fn open(
        &self,
        log: Arc<dyn EventLog>,
        processor: WorkflowProcessor,
        owner: bool,
    ) -> Result<Driver<WorkflowProcessor>, UnitError> {
        let err = |e: &dyn std::fmt::Display| UnitError::new(NAME, e);
        let store = Store::open_blob(self.blobs.clone(), NAME)
            .await
            .map_err(|e| err(&e))?;
        let start = log.stats().await.map_err(|e| err(&e))?.first_seq;
        let opts = DriverOptions::unit(
            store,
            owner,
            start,
            self.checkpoint_every,
            self.handle.progress.clone(),
        );
        Driver::open(log, processor, opts)
            .await
            .map_err(|e| err(&e))
    }
}

#[async_trait]
impl Unit for WorkflowsUnit {
    fn name(&self) -> &str {
        NAME
    }

    async fn own(
        self: Arc<Self>,
        log: Arc<dyn EventLog>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), UnitError> {
        self.handle.reset();
        let exec = Executor::new(
            self.handle.clone(),
            log.clone(),
            self.query.clone(),
            self.max_in_flight,
            self.sql_window,
        );
        let driver = self
            .open(
                log,
                WorkflowProcessor::new(self.handle.clone()).with_sink(exec.clone()),
                true,
            )
            .await?;
        *self.executor.lock() = Some(exec.clone());
        // The executor stops with the driver, whichever way the driver ends.
        let (exec_stop, exec_rx) = watch::channel(false);
        let exec_task = tokio::spawn(exec.run(exec_rx));
        let res = driver.follow(self.tick_every, stop).await;
        let _ = exec_stop.send(true);
        let _ = exec_task.await;
        *self.executor.lock() = None;
        res.map_err(|e| UnitError::new(NAME, e))
    }

    async fn follow(self: Arc<Self>, stop: watch::Receiver<bool>) -> Result<(), UnitError> {
        self.handle.reset();
        let driver = self
            .open(
                self.log.clone(),
                WorkflowProcessor::new(self.handle.clone()),
                false,
            )
            .await?;
        driver
            .follow(self.tick_every, stop)
            .await
            .map_err(|e| UnitError::new(NAME, e))
    }
}
