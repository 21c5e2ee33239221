//! Which log backend to open, from a URL-like spec: the one list of backends.

use crate::{EventLog, LogError, embedded, nats};
use std::path::PathBuf;
use std::sync::Arc;

/// The backend the user chose (`--log`): the embedded log in a data directory, or a NATS server.
#[derive(Debug, Clone, PartialEq)]
pub enum LogSpec {
    /// Embedded segment files; `embedded::EmbeddedConfig::dir` is the log directory.
    Embedded(embedded::EmbeddedConfig),
    /// NATS JetStream at a URL such as `nats://127.0.0.1:4222`.
    Nats(nats::NatsConfig),
}

impl LogSpec {
    /// Parses `--log`: `embedded` (or empty) uses `<data_dir>/log`; `nats://HOST:PORT` uses JetStream.
    ///
    /// # Errors
    /// [`LogError::Config`] for any other scheme.
    pub fn parse(spec: &str, data_dir: &std::path::Path) -> Result<LogSpec, LogError> {
        if spec.is_empty() || spec == "embedded" {
            return Ok(LogSpec::Embedded(embedded::EmbeddedConfig::new(
                data_dir.join("log"),
            )));
        }
        if let Some(path) = spec.strip_prefix("file://") {
            return Ok(LogSpec::Embedded(embedded::EmbeddedConfig::new(
                PathBuf::from(path),
            )));
        }
        if spec.starts_with("nats://") || spec.starts_with("tls://") {
            return Ok(LogSpec::Nats(nats::NatsConfig::new(spec)));
        }
        Err(LogError::Config(format!(
            "unknown log {spec:?}: use `embedded`, `file:///path` or `nats://HOST:PORT`"
        )))
    }
}

/// Opens the chosen backend.
///
/// # Errors
/// As the backend's `open`: directory or server problems, named.
pub async fn open(spec: &LogSpec) -> Result<Arc<dyn EventLog>, LogError> {
    match spec {
        LogSpec::Embedded(cfg) => Ok(Arc::new(embedded::EmbeddedLog::open(cfg.clone()).await?)),
        LogSpec::Nats(cfg) => Ok(Arc::new(nats::NatsLog::connect(cfg.clone()).await?)),
    }
}
