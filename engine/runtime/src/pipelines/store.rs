//! Pipeline checkpoints on the one checkpoint store ([`crate::store::Store`]): per pipeline, the
//! input log position it has consumed up to, the log head after its outputs were appended, and
//! its whole state. All pipelines of one checkpoint are written in one atomic, flushed batch, so
//! a crash leaves either the previous checkpoint or this one, never a mix. Keys (unchanged from
//! earlier releases): `meta/<name>` (JSON), `state/<name>`, `alert/<name>`, `detect/<name>`, `merge/<name>`.

use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The checkpoint of one pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineCheckpoint {
    /// Hash of the pipeline's SQL: another version's state is not restored.
    pub fingerprint: u64,
    /// The next input sequence the pipeline has not consumed.
    pub position: u64,
    /// The log's next sequence after the pipeline's outputs up to `position` were appended: its
    /// outputs after a restart from this checkpoint are at or after it.
    pub log_head: u64,
    /// The state (`StreamingPipeline::checkpoint`).
    #[serde(skip)]
    pub state: Vec<u8>,
    /// The state of an alert rule's `for` stage.
    #[serde(skip)]
    pub alert_state: Option<Vec<u8>>,
    /// The per-series state of its `anomaly()` / `time_until()` columns.
    #[serde(skip)]
    pub detect_state: Option<Vec<u8>>,
    /// The merge unit of a partitioned pipeline: partial records read but not merged yet.
    #[serde(skip)]
    pub merge_state: Option<Vec<u8>>,
}

/// The pipelines' view of a checkpoint store (cheap to clone).
#[derive(Clone, Debug)]
pub struct Store {
    inner: crate::store::Store,
}

const META: &str = "meta/";
const STATE: &str = "state/";
const ALERT: &str = "alert/";
const DETECT: &str = "detect/";
const MERGE: &str = "merge/";

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when sled cannot open it (another process holds it, disk error).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            inner: crate::store::Store::open(dir)?,
        })
    }

    /// The pipelines' view of an open store (cluster mode: a blob-backed one).
    pub fn from_store(inner: crate::store::Store) -> Store {
        Store { inner }
    }

    /// The position of every pipeline's checkpoint.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails or an entry is damaged.
    pub fn positions(&self) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for name in self.inner.names(META)? {
            if let Some(ck) = self.load(&name)? {
                out.push(ck.position);
            }
        }
        Ok(out)
    }

    /// The checkpoint of pipeline `name`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails or the entry is damaged.
    pub fn load(&self, name: &str) -> Result<Option<PipelineCheckpoint>, StoreError> {
        let key = format!("{META}{name}");
        let Some(meta) = self.inner.get(&key)? else {
            return Ok(None);
        };
        let mut ck: PipelineCheckpoint =
            serde_json::from_slice(&meta).map_err(|e| self.inner.corrupt(&key, e))?;
        ck.state = self
            .inner
            .get(&format!("{STATE}{name}"))?
            .unwrap_or_default();
        Ok(Some(ck))
    }

    /// The checkpointed `for` stage of alert rule `name`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails.
    pub fn load_alert(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(&format!("{ALERT}{name}"))
    }

    /// The checkpointed detector state of pipeline `name`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails.
    pub fn load_detect(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(&format!("{DETECT}{name}"))
    }

    /// The checkpointed queue of a partitioned pipeline's merge unit, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails.
    pub fn load_merge(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(&format!("{MERGE}{name}"))
    }

    /// Writes the checkpoints of several pipelines atomically and durably.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; the previous checkpoint then stays in place.
    pub async fn save(&self, cks: &[(String, PipelineCheckpoint)]) -> Result<(), StoreError> {
        let mut entries = Vec::with_capacity(cks.len() * 4);
        for (name, ck) in cks {
            let meta = serde_json::to_vec(ck).map_err(|e| self.inner.corrupt(name, e))?;
            entries.push((format!("{META}{name}"), Some(meta)));
            entries.push((format!("{STATE}{name}"), Some(ck.state.clone())));
            entries.push((format!("{ALERT}{name}"), ck.alert_state.clone()));
            entries.push((format!("{DETECT}{name}"), ck.detect_state.clone()));
            entries.push((format!("{MERGE}{name}"), ck.merge_state.clone()));
        }
        self.inner.write(entries).await
    }

    /// Removes every checkpoint (`aiops rebuild`).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear().await
    }

    /// Removes the checkpoint of a pipeline that is no longer loaded.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn remove(&self, name: &str) -> Result<(), StoreError> {
        self.inner
            .write(
                [META, STATE, ALERT, DETECT, MERGE]
                    .iter()
                    .map(|p| (format!("{p}{name}"), None))
                    .collect(),
            )
            .await
    }
}
