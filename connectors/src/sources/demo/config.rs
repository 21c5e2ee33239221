//! The demo generator's configuration: data, with defaults that give a small realistic fleet.

use super::fleet::FleetShape;
use super::source::DemoSource;
use crate::sources::{PullSource, SourceError};
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SourceError::Config(format!(
                "demo source: {}",
                problems.join("; ")
            )))
        }
    }

    /// The fleet shape for this config, with `start` resolved (to now when unset).
    ///
    /// # Errors
    /// As [`DemoConfig::validate`], or when `start` is before 1970.
    #[allow(clippy::disallowed_methods)]
    pub fn shape(&self) -> Result<FleetShape, SourceError> {
        self.validate()?;
        // The one wall-clock read of the generator: where event time begins when not given.
        let start = self.start.unwrap_or_else(SystemTime::now);
        let start_ms = start
            .duration_since(UNIX_EPOCH)
            .map_err(|_| SourceError::Config("demo source: start is before 1970".into()))?
            .as_millis();
        Ok(FleetShape {
            hosts: self.hosts,
            services: self.services,
            interval_ms: i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX),
            seed: self.seed,
            start_ms: i64::try_from(start_ms).unwrap_or(i64::MAX),
        })
    }

    /// Builds the running generator.
    ///
    /// # Errors
    /// [`SourceError::Config`] for an invalid configuration, naming every bad field.
    pub fn build(&self) -> Result<Box<dyn PullSource>, SourceError> {
        Ok(Box::new(DemoSource::new(self)?))
    }
}
