//! `aiops-bench demo-rate`: how many events per second the demo generator produces at speed 0,
//! on one core (the caller runs it on a current-thread runtime).

use crate::error::BenchError;
use crate::report::{Figure, FigureKind};
use aiops_connectors::sources::demo::DemoConfig;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRatePlan {
    /// Event time to generate.
    pub event_time: Duration,
    /// Simulated hosts.
    pub hosts: usize,
    /// Simulated services.
    pub services: usize,
    /// Seed.
    pub seed: u64,
}

/// What the generator produced and how fast.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DemoRateResult {
    /// Event time generated, seconds.
    pub event_time_s: f64,
    /// Simulated hosts.
    pub hosts: usize,
    /// Simulated services.
    pub services: usize,
    /// Ticks (calls that returned batches).
    pub ticks: u64,
    /// Batches returned.
    pub batches: u64,
    /// Events (rows) in them.
    pub events: u64,
    /// Wall seconds.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_s: f64,
    /// Event-time seconds generated per wall second.
    pub speedup: f64,
}

/// Runs the generator at speed 0 until `event_time` is produced.
///
/// # Errors
/// [`BenchError::Demo`] if the generator refuses the configuration or fails.
pub async fn run(plan: &DemoRatePlan) -> Result<DemoRateResult, BenchError> {
    let cfg = DemoConfig {
        hosts: plan.hosts,
        services: plan.services,
        speed: 0.0,
        seed: plan.seed,
        // A fixed start makes the run the same every time.
        start: Some(UNIX_EPOCH + Duration::from_secs(1_714_521_600)),
        duration: Some(plan.event_time),
        ..DemoConfig::default()
    };
    let mut source = cfg.build().map_err(|e| BenchError::Demo(e.to_string()))?;
    let mut out = DemoRateResult {
        event_time_s: plan.event_time.as_secs_f64(),
        hosts: plan.hosts,
        services: plan.services,
        ..DemoRateResult::default()
    };
    let t0 = Instant::now();
    while let Some(batches) = source
        .next_batch()
        .await
        .map_err(|e| BenchError::Demo(e.to_string()))?
    {
        out.ticks += 1;
        out.batches += batches.len() as u64;
        out.events += batches
            .iter()
            .map(|b| b.batch.num_rows() as u64)
            .sum::<u64>();
    }
    out.seconds = t0.elapsed().as_secs_f64();
    if out.seconds > 0.0 {
        out.events_per_s = out.events as f64 / out.seconds;
        out.speedup = out.event_time_s / out.seconds;
    }
    Ok(out)
}

/// The flat figures of a demo-rate result.
pub fn figures(r: &DemoRateResult) -> Vec<Figure> {
    vec![
        Figure::new(
            "demo.events_per_s",
            r.events_per_s,
            "events/s",
            FigureKind::Rate,
        ),
        Figure::new("demo.speedup", r.speedup, "× real time", FigureKind::Rate),
    ]
}
