//! Alert management inside the engine: the [`aiops_alerting`] state machine run over the log.
//!
//! - [`codec`]: decisions (`aiops.alerting`) and commands (`aiops.control`) as log messages.
//! - [`processor`]: alerts, commands, anomaly events and clock ticks in log order in; decisions
//!   out (a [`crate::Processor`]).
//! - [`rebuild`]: alerting state from the whole log (`aiops rebuild`).

pub mod codec;
pub mod processor;
pub mod rebuild;

use aiops_alerting::AlertingConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Alerting settings (`[alerting]` in the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingSettings {
    /// The alerting YAML (Alertmanager's format plus an `aiops:` section). Unset: one route to
    /// the receiver `default`, grouped by alertname and service, Alertmanager's default timings.
    pub config: Option<PathBuf>,
    /// Where people reach aiops (Alertmanager's `--web.external-url`): the `externalURL` of
    /// webhook bodies and the links in receivers' messages. Default `http://<[http] listen>`.
    pub external_url: Option<String>,
    /// How often the state is checkpointed. Default 10s.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// While timers are pending, a clock tick is appended to the log at most this often, so
    /// group and stale timers fire without new alerts. Default 1s.
    #[serde(with = "humantime_serde")]
    pub tick_interval: Duration,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        AlertingSettings {
            config: None,
            external_url: None,
            checkpoint_interval: Duration::from_secs(10),
            tick_interval: Duration::from_secs(1),
        }
    }
}

impl AlertingSettings {
    /// Reads and checks the alerting configuration (the default one when unset).
    ///
    /// # Errors
    /// A message naming the file and what is wrong.
    pub fn load(&self) -> Result<(AlertingConfig, String), String> {
        match &self.config {
            None => {
                let text = aiops_alerting::config::DEFAULT_CONFIG.to_string();
                let cfg = AlertingConfig::parse(&text).map_err(|e| e.to_string())?;
                Ok((cfg, text))
            }
            Some(path) => load_file(path),
        }
    }
}

/// Reads and checks an alerting configuration file.
///
/// # Errors
/// A message naming the file and what is wrong.
pub fn load_file(path: &Path) -> Result<(AlertingConfig, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg = AlertingConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((cfg, text))
}

/// Where the engine keeps the alerting checkpoint under its data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    crate::store::store_dir(data_dir, "alerting")
}
