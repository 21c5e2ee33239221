//! A single-state checkpoint in sled, for the engine's runners that hold one state each
//! (alerting, log templates): the input position consumed, the log head after the outputs of
//! those inputs were appended, a hash of the configuration, and the state, written in one
//! flushed batch.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Hash of the configuration text: state of another configuration is not restored.
    pub config_hash: u64,
    /// Next input sequence not consumed.
    pub position: u64,
    /// Log head after the decisions up to `position` were appended.
    pub log_head: u64,
}

/// The sled database of the checkpoint.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("checkpoint store: {0}")]
    Sled(#[from] sled::Error),
    /// The stored entry cannot be read.
    #[error("checkpoint store: {0}")]
    Corrupt(String),
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Sled`] (another process holds it, disk error).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            db: sled::Config::new().path(dir).open()?,
        })
    }

    /// The checkpoint and the state bytes, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails or the entry is corrupt.
    pub fn load(&self) -> Result<Option<(Checkpoint, Vec<u8>)>, StoreError> {
        let (Some(meta), Some(state)) = (self.db.get("meta")?, self.db.get("state")?) else {
            return Ok(None);
        };
        let ck: Checkpoint =
            serde_json::from_slice(&meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some((ck, state.to_vec())))
    }

    /// Writes a checkpoint atomically and flushes it.
    ///
    /// # Errors
    /// [`StoreError`] when writing fails.
    pub async fn save(&self, ck: &Checkpoint, state: &[u8]) -> Result<(), StoreError> {
        let meta = serde_json::to_vec(ck).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut b = sled::Batch::default();
        b.insert("meta", meta);
        b.insert("state", state);
        self.db.apply_batch(b)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Drops the checkpoint (`rebuild`).
    ///
    /// # Errors
    /// [`StoreError`] when writing fails.
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.db.clear()?;
        self.db.flush_async().await?;
        Ok(())
    }
}
