//! Event-time watermarks: how far event time has progressed, per input partition and overall.
//!
//! Each partition's watermark is the largest event time it has delivered minus the allowed
//! out-of-orderness (`delay`). The pipeline's watermark is the minimum over active partitions, so
//! a window closes only when every partition has moved past it. A partition whose latest event
//! time is more than `idle_timeout` behind the most advanced partition counts as idle and does not
//! hold the watermark back. Everything is measured in event time, never wall-clock time, so a
//! replay of the same log moves the watermark through the same values (DESIGN.md, invariant 2).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Watermark settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkConfig {
    /// How far out of order events may arrive, ms, before they count as late.
    pub delay_ms: i64,
    /// A partition this far (ms of event time) behind the most advanced one is idle.
    pub idle_timeout_ms: i64,
}

impl Default for WatermarkConfig {
    fn default() -> Self {
        WatermarkConfig {
            delay_ms: 5_000,
            idle_timeout_ms: 300_000,
        }
    }
}

/// The watermark state of one pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermarks {
    /// Largest event time seen per (input, partition).
    pub partitions: BTreeMap<String, i64>,
    /// The current watermark: never decreases; `None` before any input.
    pub current: Option<i64>,
}

impl Watermarks {
    /// Records that `partition` (a name such as `metrics.3`) delivered events up to `time_max`,
    /// and returns the watermark after it.
    pub fn observe(
        &mut self,
        cfg: &WatermarkConfig,
        partition: &str,
        time_max: i64,
    ) -> Option<i64> {
        match self.partitions.get_mut(partition) {
            Some(t) => *t = (*t).max(time_max),
            None => {
                self.partitions.insert(partition.to_string(), time_max);
            }
        }
        let newest = self.partitions.values().copied().max()?;
        let oldest_active = self
            .partitions
            .values()
            .copied()
            .filter(|t| *t >= newest.saturating_sub(cfg.idle_timeout_ms))
            .min()?;
        let wm = oldest_active.saturating_sub(cfg.delay_ms);
        self.current = Some(self.current.map_or(wm, |c| c.max(wm)));
        self.current
    }
}
