//! A work unit: something exactly one node runs as owner, that other nodes may follow.

use crate::driver::{Driver, DriverOptions};
use crate::processor::{Processor, ProcessorError};
use crate::progress::CommandProgress;
use crate::store::Store;
use aiops_log::{Blobs, EventLog};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why a unit stopped; the member logs it and starts the unit again after a pause.
#[derive(Debug, thiserror::Error)]
#[error("work unit {unit}: {detail}")]
pub struct UnitError {
    /// The unit.
    pub unit: String,
    /// What failed.
    pub detail: String,
    /// True when the unit was fenced out: another node owns it now.
    pub fenced: bool,
}

impl UnitError {
    /// An error of `unit`.
    pub fn new(unit: &str, detail: impl std::fmt::Display) -> UnitError {
        UnitError {
            unit: unit.to_string(),
            detail: detail.to_string(),
            fenced: false,
        }
    }

    fn from_driver(unit: &str, e: crate::DriverError) -> UnitError {
        let fenced = matches!(
            e,
            crate::DriverError::Log(aiops_log::LogError::Fenced { .. })
        );
        UnitError {
            unit: unit.to_string(),
            detail: e.to_string(),
            fenced,
        }
    }
}

/// A work unit. `own` and `follow` run until `stop` flips or they fail; the member never runs
/// both at once on one node.
#[async_trait]
pub trait Unit: Send + Sync + 'static {
    /// The unit's name: lease key, fence subject and checkpoint blob name (`[A-Za-z0-9_.-]`).
    fn name(&self) -> &str;

    /// Runs as the owner, appending only through `log` (a [`aiops_log::FencedLog`]).
    ///
    /// # Errors
    /// [`UnitError`]; `fenced` when a successor took over.
    async fn own(
        self: Arc<Self>,
        log: Arc<dyn EventLog>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), UnitError>;

    /// Runs while another node owns the unit: keeps what this node serves reads from current,
    /// appends nothing. The default does nothing until `stop`.
    ///
    /// # Errors
    /// [`UnitError`].
    async fn follow(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> Result<(), UnitError> {
        let _ = stop.wait_for(|s| *s).await;
        Ok(())
    }
}

/// Builds a unit's processor: `true` for the owner (which may act — e.g. the workflow
/// processor with its executor), `false` for a follower (state only).
pub type MakeProcessor<P> =
    Box<dyn Fn(bool, Arc<dyn EventLog>) -> Result<P, ProcessorError> + Send + Sync>;

/// A [`Processor`] as a work unit: owned, the one [`Driver`] with fenced appends and
/// checkpoints in the cluster's blob store (blob = unit name); followed, the same driver
/// restored from that checkpoint, appending and checkpointing nothing.
pub struct DriverUnit<P: Processor> {
    name: String,
    log: Arc<dyn EventLog>,
    blobs: Arc<dyn Blobs>,
    make: MakeProcessor<P>,
    checkpoint_every: Duration,
    tick_every: Duration,
    progress: Arc<CommandProgress>,
}

impl<P: Processor> DriverUnit<P> {
    /// A unit named `name` running processors made by `make` over `log`.
    pub fn new(
        name: &str,
        log: Arc<dyn EventLog>,
        blobs: Arc<dyn Blobs>,
        make: MakeProcessor<P>,
        checkpoint_every: Duration,
        tick_every: Duration,
        progress: Arc<CommandProgress>,
    ) -> DriverUnit<P> {
        DriverUnit {
            name: name.to_string(),
            log,
            blobs,
            make,
            checkpoint_every,
            tick_every,
            progress,
        }
    }

    async fn run(
        &self,
        log: Arc<dyn EventLog>,
        owner: bool,
        stop: watch::Receiver<bool>,
    ) -> Result<(), UnitError> {
        let err = |e: crate::DriverError| UnitError::from_driver(&self.name, e);
        let store = Store::open_blob(self.blobs.clone(), &self.name)
            .await
            .map_err(|e| UnitError::new(&self.name, e))?;
        let processor =
            (self.make)(owner, log.clone()).map_err(|e| UnitError::new(&self.name, e))?;
        let start = log
            .stats()
            .await
            .map_err(|e| UnitError::new(&self.name, e))?
            .first_seq;
        let opts = DriverOptions::unit(
            store,
            owner,
            start,
            self.checkpoint_every,
            self.progress.clone(),
        );
        let driver = Driver::open(log, processor, opts).await.map_err(err)?;
        driver.follow(self.tick_every, stop).await.map_err(err)
    }
}

#[async_trait]
impl<P: Processor + Sync> Unit for DriverUnit<P> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn own(
        self: Arc<Self>,
        log: Arc<dyn EventLog>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), UnitError> {
        self.run(log, true, stop).await
    }

    async fn follow(self: Arc<Self>, stop: watch::Receiver<bool>) -> Result<(), UnitError> {
        self.run(self.log.clone(), false, stop).await
    }
}
