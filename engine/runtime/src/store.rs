//! The one checkpoint store: a sled database of named entries, written in one atomic, flushed
//! batch. Each processor has its own directory under `<data_dir>/state/` (kept from earlier
//! releases: `alerting`, `templates`, `workflows`, `pipelines`).
//!
//! Two layouts live on it, both unchanged from earlier releases so old data directories resume:
//! - one state per store ([`Checkpoint`] as JSON under `meta`, the state bytes under `state`):
//!   alerting, templates, workflows — the [`crate::driver::Driver`] uses it;
//! - named states (`meta/<name>`, `state/<name>`, …): the pipelines, one entry set per pipeline.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (open, write, flush). At open, usually another process holds the directory:
    /// stop the engine before a `rebuild`.
    #[error("checkpoint store {dir}: {source}")]
    Sled {
        /// The store's directory.
        dir: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// A stored entry cannot be read (written by a newer release, or damaged): drop the
    /// checkpoint with `aiops rebuild`.
    #[error("checkpoint store {dir}: entry {key}: {detail}")]
    Corrupt {
        /// The store's directory.
        dir: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The thread that applies a write batch ended without an answer (the process is shutting
    /// down or the write panicked): the checkpoint was not written; the next one retries.
    #[error("checkpoint store {dir}: write task ended: {detail}")]
    Task {
        /// The store's directory.
        dir: PathBuf,
        /// What the runtime said.
        detail: String,
    },
}

/// Where a processor's checkpoint lives under the engine's data directory.
pub fn store_dir(data_dir: &Path, processor: &str) -> PathBuf {
    data_dir.join("state").join(processor)
}

/// The checkpoint of a single-state processor: written only after the outputs of every input
/// before `position` are in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Hash of the processor's configuration: state of another configuration is not restored.
    pub config_hash: u64,
    /// Next input sequence not consumed.
    pub position: u64,
    /// Log head after the outputs up to `position` were appended: outputs re-derived after a
    /// restart from here are at or after it.
    pub log_head: u64,
}

const META: &str = "meta";
const STATE: &str = "state";

/// A checkpoint store (cheap to clone: one shared database).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    dir: PathBuf,
    /// Held while a batch is applied and while [`Store::load`] reads its two keys, so a load
    /// never pairs the meta of one checkpoint with the state of another (a checkpoint written
    /// beside the step loop can land while a new driver opens in the same process).
    io: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Sled`] (another process holds it, disk error).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(|source| StoreError::Sled {
                dir: dir.to_path_buf(),
                source,
            })?;
        Ok(Store {
            db,
            dir: dir.to_path_buf(),
            io: Arc::new(Mutex::new(())),
        })
    }

    fn sled(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            dir: self.dir.clone(),
            source,
        }
    }

    /// A corrupt-entry error for `key`.
    pub fn corrupt(&self, key: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            dir: self.dir.clone(),
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }

    /// The bytes under `key`.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when reading fails.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(key)
            .map_err(|e| self.sled(e))?
            .map(|v| v.to_vec()))
    }

    /// Every key starting with `prefix`, with the prefix removed.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when reading fails.
    pub fn names(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(prefix) {
            let (k, _) = kv.map_err(|e| self.sled(e))?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    /// Writes every `(key, Some(bytes))` and removes every `(key, None)` in one atomic batch,
    /// flushed before it returns: a crash leaves all of it or none.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when writing fails.
    pub async fn write(&self, entries: Vec<(String, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in entries {
            match v {
                Some(v) => b.insert(k.as_bytes(), v),
                None => b.remove(k.as_bytes()),
            }
        }
        // A checkpoint batch is megabytes: applied on a blocking thread, not a runtime worker
        // (which would stall every task scheduled on it).
        let (db, io) = (self.db.clone(), self.io.clone());
        tokio::task::spawn_blocking(move || {
            let _g = io.lock();
            db.apply_batch(b)
        })
        .await
        .map_err(|e| StoreError::Task {
            dir: self.dir.clone(),
            detail: e.to_string(),
        })?
        .map_err(|e| self.sled(e))?;
        self.db.flush_async().await.map_err(|e| self.sled(e))?;
        Ok(())
    }

    /// Removes every key starting with `prefix`, flushed.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when writing fails.
    pub async fn remove_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let keys: Vec<(String, Option<Vec<u8>>)> = self
            .names(prefix)?
            .into_iter()
            .map(|n| (format!("{prefix}{n}"), None))
            .collect();
        self.write(keys).await
    }

    /// Drops everything (`rebuild`).
    ///
    /// # Errors
    /// [`StoreError::Sled`] when writing fails.
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.db.clear().map_err(|e| self.sled(e))?;
        self.db.flush_async().await.map_err(|e| self.sled(e))?;
        Ok(())
    }

    /// The single-state checkpoint and its state bytes, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails or the entry is corrupt.
    pub fn load(&self) -> Result<Option<(Checkpoint, Vec<u8>)>, StoreError> {
        let pair = {
            let _g = self.io.lock();
            (self.get(META)?, self.get(STATE)?)
        };
        let (Some(meta), Some(state)) = pair else {
            return Ok(None);
        };
        let ck: Checkpoint = serde_json::from_slice(&meta).map_err(|e| self.corrupt(META, e))?;
        Ok(Some((ck, state)))
    }

    /// Writes the single-state checkpoint atomically and flushes it.
    ///
    /// # Errors
    /// [`StoreError`] when writing fails.
    pub async fn save(&self, ck: &Checkpoint, state: Vec<u8>) -> Result<(), StoreError> {
        let meta = serde_json::to_vec(ck).map_err(|e| self.corrupt(META, e))?;
        self.write(vec![
            (META.to_string(), Some(meta)),
            (STATE.to_string(), Some(state)),
        ])
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn single_state_round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpoint {
            config_hash: 7,
            position: 42,
            log_head: 50,
        };
        {
            let s = Store::open(dir.path()).unwrap();
            assert!(s.load().unwrap().is_none());
            s.save(&ck, b"state".to_vec()).await.unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.load().unwrap(), Some((ck, b"state".to_vec())));
        s.clear().await.unwrap();
        assert!(s.load().unwrap().is_none());
    }

    #[tokio::test]
    async fn names_and_remove_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.write(vec![
            ("meta/a".into(), Some(b"1".to_vec())),
            ("meta/b".into(), Some(b"2".to_vec())),
            ("state/a".into(), Some(b"3".to_vec())),
        ])
        .await
        .unwrap();
        assert_eq!(s.names("meta/").unwrap(), vec!["a", "b"]);
        s.remove_prefix("meta/").await.unwrap();
        assert!(s.names("meta/").unwrap().is_empty());
        assert_eq!(s.get("state/a").unwrap(), Some(b"3".to_vec()));
    }
}
