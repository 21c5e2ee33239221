//! The running demo generator: paces ticks of the fleet against the wall clock (or not, at speed
//! 0) and hands out one batch per kind per tick. While catching up a backfill one call hands out
//! the batches of several ticks (bounded by [`CATCH_UP_TICKS`] and [`CATCH_UP_ROWS`]), so hours of
//! history take a few dozen appends rather than a thousand; each batch still holds one tick, so
//! the log's messages stay in event-time order across partitions and consumers that close windows
//! a few seconds behind the largest time seen (log templates: 10 s) see nothing late.

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

/// Ticks per call at most while catching up a backfill (5 minutes of event time at the default
/// 10 s interval): one ingest request, so history arrives in steps of a few minutes.
pub const CATCH_UP_TICKS: u32 = 30;

/// Rows per call (all kinds) at most while catching up, unless a single tick has more: bounds one
/// ingest request whatever the fleet's size.
pub const CATCH_UP_ROWS: usize = 16_384;

/// The demo generator, built by [`DemoConfig::build`].
#[derive(Debug)]
pub struct DemoSource {
    fleet: Fleet,
    out: TickOutput,
    /// Event time at which the source ends, exclusive.
    end_ms: Option<i64>,
    /// Wall seconds per event-time second (`1 / speed`); `None` at speed 0.
    wall_per_event: Option<f64>,
    /// Event time paced from: the first paced tick's wall instant is [`DemoSource::began`]'s, and
    /// event time `t` is due `(t - pace_from_ms) / speed` later. `start`, or the end of the
    /// backfill.
    pace_from_ms: i64,
    /// Event time (the wall clock when built) before which ticks are a backfill: produced at once,
    /// several per batch. `None` without a backfill.
    catch_up_until_ms: Option<i64>,
    /// Wall instant at which event time `pace_from_ms` is due: set at build time with a
    /// backfill (whose end is that instant), else when the first paced tick is asked for.
    began: Option<Instant>,
}

impl DemoSource {
    /// A generator for `cfg`.
    ///
    /// # Errors
    /// [`SourceError::Config`] as in [`DemoConfig::validate`].
    pub fn new(cfg: &DemoConfig) -> Result<DemoSource, SourceError> {
        let (shape, catch_up_until_ms) = cfg.shape()?;
        let end_ms = cfg.duration.map(|d| {
            shape
                .start_ms
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        let wall_per_event = (cfg.speed > 0.0).then(|| 1.0 / cfg.speed);
        Ok(DemoSource {
            fleet: Fleet::new(shape),
            out: TickOutput::default(),
            end_ms,
            wall_per_event,
            pace_from_ms: catch_up_until_ms.unwrap_or(shape.start_ms),
            catch_up_until_ms,
            // With a backfill, event time `pace_from_ms` (the wall clock now) is due now: the
            // ticks that come due while the history is written are then produced at once, so
            // event time does not lag the wall clock by the backfill's duration.
            began: catch_up_until_ms.map(|_| Instant::now()),
        })
    }

    /// Event time of the next tick, Unix ms.
    pub fn next_time_ms(&self) -> i64 {
        self.fleet.next_time_ms()
    }

    /// Whether the next tick is part of the backfill (before the wall clock at build time).
    pub fn catching_up(&self) -> bool {
        self.catch_up_until_ms
            .is_some_and(|until| self.fleet.next_time_ms() < until)
    }

    /// Produces the next tick at once, without pacing; `None` once `duration` is used up.
    ///
    /// # Errors
    /// [`SourceError::Internal`] if a builder produces a batch that does not match its schema
    /// (a bug).
    pub fn next_tick(&mut self) -> Result<Option<Vec<SourceBatch>>, SourceError> {
        if self.ended() {
            return Ok(None);
        }
        self.fleet.tick(&mut self.out);
        self.finish().map(Some)
    }

    /// Produces the backfill's next ticks at once, one batch per kind per tick, as many ticks as
    /// fit one call (at most [`CATCH_UP_TICKS`] ticks and about [`CATCH_UP_ROWS`] rows),
    /// stopping at the end of the backfill or of `duration`; `None` once `duration` is used up.
    ///
    /// # Errors
    /// As [`DemoSource::next_tick`].
    pub fn next_catch_up(&mut self) -> Result<Option<Vec<SourceBatch>>, SourceError> {
        if self.ended() {
            return Ok(None);
        }
        let mut out = Vec::new();
        let (mut ticks, mut rows) = (0u32, 0usize);
        loop {
            self.fleet.tick(&mut self.out);
            let batches = self.finish()?;
            ticks += 1;
            rows += batches.iter().map(|b| b.batch.num_rows()).sum::<usize>();
            out.extend(batches);
            // The next tick would most likely overflow the row bound: stop before it.
            let per_tick = rows / ticks as usize;
            if ticks >= CATCH_UP_TICKS
                || rows + per_tick > CATCH_UP_ROWS
                || !self.catching_up()
                || self.ended()
            {
                break;
            }
        }
        Ok(Some(out))
    }

    /// Whether `duration` is used up.
    fn ended(&self) -> bool {
        self.end_ms
            .is_some_and(|end| self.fleet.next_time_ms() >= end)
    }

    /// The batches of what was ticked since the last call, one per non-empty kind.
    fn finish(&mut self) -> Result<Vec<SourceBatch>, SourceError> {
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
        Ok(batches)
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

    /// Waits until the next tick is due, then returns its batches. A backfill's ticks are due at
    /// once (several per call); the others `(t - from) / speed` of wall time after the first of
    /// them was asked for, where `from` is `start`, or with a backfill the wall clock at build
    /// time — so after a backfill event time follows the wall clock at speed 1. Cancel-safe:
    /// dropping the future while it waits loses nothing.
    async fn next_batch(&mut self) -> Result<Option<Vec<SourceBatch>>, SourceError> {
        if self.catching_up() {
            return self.next_catch_up();
        }
        if let Some(wall_per_event) = self.wall_per_event {
            let began = *self.began.get_or_insert_with(Instant::now);
            let ahead_ms = (self.fleet.next_time_ms() - self.pace_from_ms).max(0) as f64;
            // An absurd delay (a speed near 0) saturates instead of panicking.
            let wait = Duration::try_from_secs_f64(ahead_ms / 1000.0 * wall_per_event)
                .unwrap_or(Duration::MAX);
            match began.checked_add(wait) {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending::<()>().await,
            }
        }
        self.next_tick()
    }
}
