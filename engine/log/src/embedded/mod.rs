//! Embedded log backend (being written).

use crate::{AppendMessage, Appended, EventLog, LogError, LogReader, LogStats};
use async_trait::async_trait;
use std::path::PathBuf;

/// Configuration of the embedded log.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedConfig {
    /// Log directory.
    pub dir: PathBuf,
}

impl EmbeddedConfig {
    /// Defaults for a directory.
    pub fn new(dir: PathBuf) -> Self {
        EmbeddedConfig { dir }
    }
}

/// The embedded log.
#[derive(Debug)]
pub struct EmbeddedLog;

impl EmbeddedLog {
    /// Opens the log.
    ///
    /// # Errors
    /// Not yet built.
    pub async fn open(_cfg: EmbeddedConfig) -> Result<Self, LogError> {
        Err(LogError::Config("embedded log not built yet".into()))
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
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
