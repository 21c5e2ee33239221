//! NATS JetStream log backend (being written).

use crate::{AppendMessage, Appended, EventLog, LogError, LogReader, LogStats};
use async_trait::async_trait;

/// Configuration of the NATS log.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsConfig {
    /// Server URL.
    pub url: String,
}

impl NatsConfig {
    /// Defaults for a URL.
    pub fn new(url: &str) -> Self {
        NatsConfig {
            url: url.to_string(),
        }
    }
}

/// The embedded log.
#[derive(Debug)]
pub struct NatsLog;

impl NatsLog {
    /// Opens the log.
    ///
    /// # Errors
    /// Not yet built.
    pub async fn connect(_cfg: NatsConfig) -> Result<Self, LogError> {
        Err(LogError::Config("nats log not built yet".into()))
    }
}

#[async_trait]
impl EventLog for NatsLog {
    async fn append(&self, _msgs: Vec<AppendMessage>) -> Result<Vec<Appended>, LogError> {
        Err(LogError::Closed)
    }
    async fn reader(&self, _from: u64) -> Result<Box<dyn LogReader>, LogError> {
        Err(LogError::Closed)
    }
    async fn seek_time(&self, _ts_ms: i64) -> Result<u64, LogError> {
        Err(LogError::Closed)
    }
    async fn stats(&self) -> Result<LogStats, LogError> {
        Err(LogError::Closed)
    }
    async fn close(&self) -> Result<(), LogError> {
        Ok(())
    }
}
