//! The running demo generator: paces ticks of the fleet against the wall clock (or not, at speed
//! 0) and hands out one batch per kind per tick.

use super::config::DemoConfig;
use super::fleet::{Fleet, TickOutput};
use crate::sources::{PullSource, SourceBatch, SourceError};
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::RecordBatch;
use aiops_schemas::arrow_schema::ArrowError;
use async_trait::async_trait;
use std::time::Duration;
use tokio::time::Instant;

/// The source name stamped on every batch.
pub const SOURCE_NAME: &str = "demo";

/// The demo generator, built by [`DemoConfig::build`].
#[derive(Debug)]
pub struct DemoSource {
    fleet: Fleet,
    out: TickOutput,
    /// Event time at which the source ends, exclusive.
    end_ms: Option<i64>,
    /// Wall time per tick; `None` at speed 0.
    tick_wall: Option<Duration>,
    /// Wall instant of the first tick, set on the first call.
    began: Option<Instant>,
    ticks: u32,
}

impl DemoSource {
    /// A generator for `cfg`.
    ///
    /// # Errors
    /// [`SourceError::Config`] as in [`DemoConfig::validate`].
    pub fn new(cfg: &DemoConfig) -> Result<DemoSource, SourceError> {
        let shape = cfg.shape()?;
        let end_ms = cfg.duration.map(|d| {
            shape
                .start_ms
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        let tick_wall = (cfg.speed > 0.0)
            .then(|| Duration::try_from_secs_f64(cfg.interval.as_secs_f64() / cfg.speed).ok())
            .flatten();
        Ok(DemoSource {
            fleet: Fleet::new(shape),
            out: TickOutput::default(),
            end_ms,
            tick_wall,
            began: None,
            ticks: 0,
        })
    }

    /// Produces the next tick at once, without pacing; `None` once `duration` is used up.
    ///
    /// # Errors
    /// [`SourceError::Internal`] if a builder produces a batch that does not match its schema
    /// (a bug).
    pub fn next_tick(&mut self) -> Result<Option<Vec<SourceBatch>>, SourceError> {
        if self
            .end_ms
            .is_some_and(|end| self.fleet.next_time_ms() >= end)
        {
            return Ok(None);
        }
        self.fleet.tick(&mut self.out);
        self.ticks = self.ticks.saturating_add(1);
        let mut batches = Vec::with_capacity(4);
        let o = &mut self.out;
        push(
            &mut batches,
            Kind::Metrics,
            o.metrics.time_range(),
            o.metrics.finish(),
        )?;
        push(
            &mut batches,
            Kind::Logs,
            o.logs.time_range(),
            o.logs.finish(),
        )?;
        push(
            &mut batches,
            Kind::Events,
            o.events.time_range(),
            o.events.finish(),
        )?;
        push(
            &mut batches,
            Kind::Alerts,
            o.alerts.time_range(),
            o.alerts.finish(),
        )?;
        Ok(Some(batches))
    }
}

/// Adds a finished batch unless it is empty.
fn push(
    out: &mut Vec<SourceBatch>,
    kind: Kind,
    time_range: Option<(i64, i64)>,
    batch: Result<RecordBatch, ArrowError>,
) -> Result<(), SourceError> {
    let batch = batch.map_err(|e| SourceError::Internal(format!("demo {kind} batch: {e}")))?;
    if batch.num_rows() > 0 {
        out.push(SourceBatch {
            kind,
            source: SOURCE_NAME,
            batch,
            time_range,
        });
    }
    Ok(())
}

#[async_trait]
impl PullSource for DemoSource {
    fn name(&self) -> &'static str {
        SOURCE_NAME
    }

    /// Waits until the next tick is due (`start + k × interval / speed` of wall time after the
    /// first call), then returns its batches. Cancel-safe: dropping the future while it waits
    /// loses nothing.
    async fn next_batch(&mut self) -> Result<Option<Vec<SourceBatch>>, SourceError> {
        if let Some(per_tick) = self.tick_wall {
            let began = *self.began.get_or_insert_with(Instant::now);
            let due = began + per_tick.saturating_mul(self.ticks);
            tokio::time::sleep_until(due).await;
        }
        self.next_tick()
    }
}
