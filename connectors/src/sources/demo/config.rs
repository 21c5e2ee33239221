//! The demo generator's configuration: data, with defaults that give a small realistic fleet.

use super::fleet::FleetShape;
use super::source::DemoSource;
use crate::sources::{PullSource, SourceError};
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest backfill: well inside the year of past event time that ingest accepts.
const MAX_BACKFILL: Duration = Duration::from_secs(30 * 86_400);

/// Configuration of the demo telemetry generator (`aiops run --demo`, `[[sources]] type = "demo"`).
///
/// ```toml
/// hosts = 6
/// services = 4
/// interval = "10s"   # event time per tick
/// speed = 1.0        # event-time seconds per wall second; 0 = as fast as possible
/// seed = 1
/// start = "2024-05-01T00:00:00Z"  # default: now
/// duration = "1d"    # default: run forever
/// backfill = "3h"    # default: none; begin this long ago, produce the past at once
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Simulated hosts, each with node_exporter-like metrics. Default 6.
    pub hosts: usize,
    /// Simulated services (`checkout`, `payments`, `search`, `frontend`, …), each with HTTP
    /// metrics and logs. Default 4.
    pub services: usize,
    /// Event time between two ticks (one batch per kind per tick). Default `"10s"`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Event-time seconds per wall-clock second: 1.0 is real time, 60.0 a minute per second,
    /// 0 as fast as the consumer reads. Default 1.0.
    pub speed: f64,
    /// Seed of every random choice: the same seed and start give the same data. Default 1.
    pub seed: u64,
    /// Event time of the first tick (RFC 3339). Default: the wall clock when the source is built.
    #[serde(with = "humantime_serde")]
    pub start: Option<SystemTime>,
    /// Stop after this much event time; unset runs until the engine stops.
    #[serde(with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// History to produce first: event time begins this long before now, the ticks up to now
    /// are produced as fast as the consumer takes them (several ticks per call, bounded), then
    /// the generator goes on paced by `speed`. The same fleet and incident script as without
    /// it, so a fresh engine has incidents, deploys and alerts at once (`aiops run --demo` sets
    /// 3h). Needs `start` unset; at most 30 days (ingest refuses events older than a year).
    #[serde(with = "humantime_serde")]
    pub backfill: Option<Duration>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            hosts: 6,
            services: 4,
            interval: Duration::from_secs(10),
            speed: 1.0,
            seed: 1,
            start: None,
            duration: None,
            backfill: None,
        }
    }
}

impl DemoConfig {
    /// Checks the configuration, listing every problem at once.
    ///
    /// # Errors
    /// [`SourceError::Config`] naming each bad field.
    pub fn validate(&self) -> Result<(), SourceError> {
        let mut problems = Vec::new();
        if self.hosts == 0 || self.hosts > 10_000 {
            problems.push(format!("hosts = {}: need 1..=10000", self.hosts));
        }
        if self.services == 0 || self.services > 1_000 {
            problems.push(format!("services = {}: need 1..=1000", self.services));
        }
        if self.interval < Duration::from_millis(1) {
            problems.push(format!("interval = {:?}: need at least 1ms", self.interval));
        }
        if !self.speed.is_finite() || self.speed < 0.0 {
            problems.push(format!(
                "speed = {}: need a finite number >= 0 (0 = as fast as possible)",
                self.speed
            ));
        }
        if let Some(b) = self.backfill {
            if self.start.is_some() {
                problems.push(
                    "backfill: needs start unset (backfill begins that long before now)".into(),
                );
            }
            if b > MAX_BACKFILL {
                problems.push(format!("backfill = {b:?}: at most 30 days"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SourceError::Config(format!(
                "demo source: {}",
                problems.join("; ")
            )))
        }
    }

    /// The fleet shape for this config, with `start` resolved (to now when unset, or to now
    /// minus `backfill`), and the event time up to which ticks are produced without pacing
    /// (now, with a backfill; `None` without one).
    ///
    /// # Errors
    /// As [`DemoConfig::validate`], or when `start` is before 1970.
    #[allow(clippy::disallowed_methods)]
    pub fn shape(&self) -> Result<(FleetShape, Option<i64>), SourceError> {
        self.validate()?;
        // The one wall-clock read of the generator: where event time begins when not given,
        // and where a backfill ends.
        let now = SystemTime::now();
        let ms = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .map_err(|_| SourceError::Config("demo source: start is before 1970".into()))
        };
        let (start, catch_up_until) = match (self.start, self.backfill) {
            (Some(s), _) => (s, None),
            (None, Some(b)) => (
                now.checked_sub(b).ok_or_else(|| {
                    SourceError::Config("demo source: backfill reaches before 1970".into())
                })?,
                Some(ms(now)?),
            ),
            (None, None) => (now, None),
        };
        Ok((
            FleetShape {
                hosts: self.hosts,
                services: self.services,
                interval_ms: i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX),
                seed: self.seed,
                start_ms: ms(start)?,
            },
            catch_up_until,
        ))
    }

    /// Builds the running generator.
    ///
    /// # Errors
    /// [`SourceError::Config`] for an invalid configuration, naming every bad field.
    pub fn build(&self) -> Result<Box<dyn PullSource>, SourceError> {
        Ok(Box::new(DemoSource::new(self)?))
    }
}
