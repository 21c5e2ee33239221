//! Log template mining inside the engine: the [`aiops_detect::templates`] miner run over the
//! log's `logs` stream, per service (label `service`).
//!
//! What it appends, each with a message id derived from what caused it (so a restart or a
//! rebuild recognizes what is already there):
//! - template changes as events `type = 'log_template'` on `aiops.events.0` (labels `service`,
//!   `template_id`; attributes `template`, `change` = `new` | `updated`): the log holds every
//!   template's history, so a replay reproduces the ids;
//! - per-window counts on the derived stream `aiops.derived.log_templates_1m` (`window_start`,
//!   `service`, `template_id`, `template`, `count`, `errors`), for replays and the read side
//!   (pipelines cannot read it with `FROM` yet: the checker knows only pipeline outputs);
//! - template-level anomalies as events `type = 'anomaly'` (labels `service`, `detector =
//!   log_template`, `kind`, `template_id`), which the alerting engine takes as evidence.
//!
//! - [`encode`]: the miner's outputs as log messages.
//! - [`processor`]: the miner as a [`crate::Processor`].
//! - [`rebuild`]: the miner's state from the whole log (`aiops rebuild`).

pub mod encode;
pub mod processor;
pub mod rebuild;

use aiops_detect::templates::MinerConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The derived stream of per-window template counts.
pub const COUNTS_STREAM: &str = "log_templates_1m";

/// Template mining settings (`[templates]` in the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateSettings {
    /// Whether the engine mines templates. Default true.
    pub enabled: bool,
    /// How often the state is checkpointed. Default 10s.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// The miner: Drain parameters, window, delay, warm-up and surge rules
    /// (see docs/detection.md).
    pub miner: MinerConfig,
}

impl Default for TemplateSettings {
    fn default() -> Self {
        TemplateSettings {
            enabled: true,
            checkpoint_interval: Duration::from_secs(10),
            miner: MinerConfig::default(),
        }
    }
}

impl TemplateSettings {
    /// The hash that ties a checkpoint to the miner configuration.
    pub fn config_hash(&self) -> u64 {
        // A configuration of plain numbers, strings and booleans always serializes.
        let text = serde_json::to_string(&self.miner).unwrap_or_default();
        crate::wire::hash(text.as_bytes())
    }
}

/// Where the engine keeps the template miner's checkpoint under its data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    crate::store::store_dir(data_dir, "templates")
}
