//! SQL pipelines inside the engine: loading a directory of pipeline files, running them over the
//! log with checkpoints in sled, rebuilding their state from the log, and forensic replays.
//!
//! - [`load`]: a directory of `*.sql` files (and `tables/`) → compiled pipelines, all or nothing.
//! - [`store`]: checkpoints in sled (positions + state, written atomically).
//! - [`runner`]: the loop from input messages to derived events in the log.
//! - [`supervisor`]: reloads the directory while running; changes are control events.
//! - [`rebuild`]: `aiops rebuild`: state from the whole log, checkpoints discarded.
//! - [`forensic`]: `aiops replay --pipelines`: pipelines over a past range, nothing written.

pub mod forensic;
pub mod load;
pub mod rebuild;
pub mod runner;
pub mod store;
pub mod supervisor;

use aiops_sql::runtime::RuntimeConfig;
use aiops_sql::runtime::watermark::WatermarkConfig;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Pipeline settings (`[pipelines]` in the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelinesConfig {
    /// Directory of `*.sql` pipeline files (reference tables in its `tables/`). A missing
    /// directory runs no pipelines. Default `pipelines`.
    pub dir: PathBuf,
    /// How often pipeline state is checkpointed to sled. Default 10s.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// How far out of order events may arrive before they count as late. Default 5s.
    #[serde(with = "humantime_serde")]
    pub watermark_delay: Duration,
    /// A log partition this far (event time) behind the newest one no longer holds the
    /// watermark back. Default 5m.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long after a window closed late rows still update it (re-emitted with a higher
    /// revision); later rows go to `aiops.late.<pipeline>`. Default 1m.
    #[serde(with = "humantime_serde")]
    pub allowed_lateness: Duration,
    /// How often the directory is checked for added, changed or removed files. Default 2s;
    /// 0 turns reloading off.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for PipelinesConfig {
    fn default() -> Self {
        PipelinesConfig {
            dir: PathBuf::from("pipelines"),
            checkpoint_interval: Duration::from_secs(10),
            watermark_delay: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            allowed_lateness: Duration::from_secs(60),
            reload_interval: Duration::from_secs(2),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PipelinesConfig {
    /// The event-time settings every pipeline runs with.
    pub fn runtime(&self) -> RuntimeConfig {
        RuntimeConfig {
            watermark: WatermarkConfig {
                delay_ms: ms(self.watermark_delay),
                idle_timeout_ms: ms(self.idle_timeout),
            },
            allowed_lateness_ms: ms(self.allowed_lateness),
        }
    }
}
