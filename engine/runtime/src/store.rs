//! The one checkpoint store: named entries, written in one atomic batch. Two backends:
//! - **sled** (one node): a database per processor under `<data_dir>/state/` (kept from earlier
//!   releases: `alerting`, `templates`, `workflows`, `pipelines`), each batch flushed;
//! - **cluster blobs** (cluster mode): every entry of a store in one blob of the log cluster's
//!   blob store ([`aiops_log::Blobs`], a JetStream object store), replaced whole per batch, so
//!   whichever node owns a work unit next reads the checkpoint its last owner wrote.
//!
//! Two layouts live on it, both unchanged from earlier releases so old data directories resume:
//! - one state per store ([`Checkpoint`] as JSON under `meta`, the state bytes under `state`):
//!   alerting, templates, workflows — the [`crate::driver::Driver`] uses it;
//! - named states (`meta/<name>`, `state/<name>`, …): the pipelines, one entry set per pipeline.

use aiops_log::{Blobs, LogError};
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The cluster's blob store failed (cluster mode): the checkpoint was not read or written;
    /// the unit stops and its next owner starts from the last checkpoint that was.
    #[error("checkpoint store {dir}: {source}")]
    Cluster {
        /// The blob's name, as a path for messages.
        dir: PathBuf,
        /// What the log cluster said.
        source: LogError,
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

/// Where a store keeps its entries.
#[derive(Clone)]
enum Backend {
    Sled(sled::Db),
    Blob {
        blobs: Arc<dyn Blobs>,
        name: String,
        /// The entries as last read or written (the blob is written whole).
        entries: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
        /// Serializes writes: two batches must reach the blob in the order they were made.
        write: Arc<tokio::sync::Mutex<()>>,
    },
}

/// First bytes of a blob-backed store's blob (then per entry: key length u32 LE, key, value
/// length u64 LE, value).
const BLOB_MAGIC: &[u8; 8] = b"AIOPSCK1";

fn encode_entries(entries: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let size: usize = entries.iter().map(|(k, v)| 12 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(BLOB_MAGIC.len() + size);
    out.extend_from_slice(BLOB_MAGIC);
    for (k, v) in entries {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

fn decode_entries(mut b: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err(format!("truncated: {} bytes left, {n} needed", b.len()));
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    if take(&mut b, BLOB_MAGIC.len())? != BLOB_MAGIC {
        return Err("not an aiops checkpoint blob (bad magic)".to_string());
    }
    let mut out = BTreeMap::new();
    while !b.is_empty() {
        let mut n4 = [0u8; 4];
        n4.copy_from_slice(take(&mut b, 4)?);
        let key = take(&mut b, u32::from_le_bytes(n4) as usize)?;
        let key = String::from_utf8(key.to_vec()).map_err(|e| format!("key: {e}"))?;
        let mut n8 = [0u8; 8];
        n8.copy_from_slice(take(&mut b, 8)?);
        let len = usize::try_from(u64::from_le_bytes(n8)).map_err(|e| e.to_string())?;
        out.insert(key, take(&mut b, len)?.to_vec());
    }
    Ok(out)
}

/// A checkpoint store (cheap to clone: one shared database or blob).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
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
            backend: Backend::Sled(db),
            dir: dir.to_path_buf(),
            io: Arc::new(Mutex::new(())),
        })
    }

    /// Opens the store kept as blob `name` of the log cluster's blob store (cluster mode),
    /// reading what its last writer left.
    ///
    /// # Errors
    /// [`StoreError::Cluster`] when the blob cannot be read; [`StoreError::Corrupt`] when it
    /// is not a checkpoint blob.
    pub async fn open_blob(blobs: Arc<dyn Blobs>, name: &str) -> Result<Store, StoreError> {
        let dir = PathBuf::from(format!("cluster:{name}"));
        let entries = match blobs.get(name).await {
            Ok(Some(b)) => decode_entries(&b).map_err(|detail| StoreError::Corrupt {
                dir: dir.clone(),
                key: name.to_string(),
                detail,
            })?,
            Ok(None) => BTreeMap::new(),
            Err(source) => return Err(StoreError::Cluster { dir, source }),
        };
        Ok(Store {
            backend: Backend::Blob {
                blobs,
                name: name.to_string(),
                entries: Arc::new(Mutex::new(entries)),
                write: Arc::new(tokio::sync::Mutex::new(())),
            },
            dir,
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
        match &self.backend {
            Backend::Sled(db) => Ok(db.get(key).map_err(|e| self.sled(e))?.map(|v| v.to_vec())),
            Backend::Blob { entries, .. } => Ok(entries.lock().get(key).cloned()),
        }
    }

    /// Every key starting with `prefix`, with the prefix removed.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when reading fails.
    pub fn names(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        match &self.backend {
            Backend::Sled(db) => {
                for kv in db.scan_prefix(prefix) {
                    let (k, _) = kv.map_err(|e| self.sled(e))?;
                    out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
                }
            }
            Backend::Blob { entries, .. } => {
                let entries = entries.lock();
                for k in entries.keys().filter(|k| k.starts_with(prefix)) {
                    out.push(k[prefix.len()..].to_string());
                }
            }
        }
        Ok(out)
    }

    /// Writes every `(key, Some(bytes))` and removes every `(key, None)` in one atomic batch,
    /// flushed before it returns: a crash leaves all of it or none.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when writing fails.
    pub async fn write(&self, entries: Vec<(String, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let db = match &self.backend {
            Backend::Sled(db) => db.clone(),
            Backend::Blob {
                blobs,
                name,
                entries: cache,
                write,
            } => {
                let _w = write.lock().await;
                let mut next = cache.lock().clone();
                for (k, v) in entries {
                    match v {
                        Some(v) => next.insert(k, v),
                        None => next.remove(&k),
                    };
                }
                // Encoding megabytes is CPU work: not on a runtime worker.
                let (bytes, next) =
                    tokio::task::spawn_blocking(move || (encode_entries(&next), next))
                        .await
                        .map_err(|e| StoreError::Task {
                            dir: self.dir.clone(),
                            detail: e.to_string(),
                        })?;
                blobs
                    .put(name, Bytes::from(bytes))
                    .await
                    .map_err(|source| StoreError::Cluster {
                        dir: self.dir.clone(),
                        source,
                    })?;
                let _g = self.io.lock();
                *cache.lock() = next;
                return Ok(());
            }
        };
        let mut b = sled::Batch::default();
        for (k, v) in entries {
            match v {
                Some(v) => b.insert(k.as_bytes(), v),
                None => b.remove(k.as_bytes()),
            }
        }
        // A checkpoint batch is megabytes: applied on a blocking thread, not a runtime worker
        // (which would stall every task scheduled on it).
        let (db2, io) = (db.clone(), self.io.clone());
        tokio::task::spawn_blocking(move || {
            let _g = io.lock();
            db2.apply_batch(b)
        })
        .await
        .map_err(|e| StoreError::Task {
            dir: self.dir.clone(),
            detail: e.to_string(),
        })?
        .map_err(|e| self.sled(e))?;
        db.flush_async().await.map_err(|e| self.sled(e))?;
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
        match &self.backend {
            Backend::Sled(db) => {
                db.clear().map_err(|e| self.sled(e))?;
                db.flush_async().await.map_err(|e| self.sled(e))?;
            }
            Backend::Blob {
                blobs,
                name,
                entries,
                write,
            } => {
                let _w = write.lock().await;
                blobs
                    .delete(name)
                    .await
                    .map_err(|source| StoreError::Cluster {
                        dir: self.dir.clone(),
                        source,
                    })?;
                entries.lock().clear();
            }
        }
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

    #[test]
    fn blob_encoding_round_trips_and_refuses_damage() {
        let mut m = BTreeMap::new();
        m.insert("meta".to_string(), b"{}".to_vec());
        m.insert("state".to_string(), vec![0u8; 1000]);
        m.insert("empty".to_string(), Vec::new());
        let b = encode_entries(&m);
        assert_eq!(decode_entries(&b).unwrap(), m);
        assert!(decode_entries(&b[..b.len() - 1]).is_err());
        assert!(decode_entries(b"AIOPSCK2").is_err());
        assert_eq!(decode_entries(BLOB_MAGIC).unwrap(), BTreeMap::new());
    }
}
