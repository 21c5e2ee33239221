//! Pipeline checkpoints in sled: per pipeline, the input log position it has consumed up to, the
//! log head after its outputs were appended, and its whole state. All pipelines of one
//! checkpoint are written in one sled batch (atomic) and flushed before the call returns, so a
//! crash leaves either the previous checkpoint or this one, never a mix.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Why the checkpoint store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (open, write, flush).
    #[error("checkpoint store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored entry cannot be read.
    #[error("checkpoint store: entry {key}: {detail}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        detail: String,
    },
}

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
}

/// The sled database of checkpoints (cheap to clone: one shared database).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
}

const META: &str = "meta/";
const STATE: &str = "state/";
const ALERT: &str = "alert/";
const DETECT: &str = "detect/";

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Sled`] when sled cannot open it (another process holds it, disk error).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            db: sled::Config::new().path(dir).open()?,
        })
    }

    /// The checkpoint of pipeline `name`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails or the entry is damaged.
    pub fn load(&self, name: &str) -> Result<Option<PipelineCheckpoint>, StoreError> {
        let key = format!("{META}{name}");
        let Some(meta) = self.db.get(&key)? else {
            return Ok(None);
        };
        let mut ck: PipelineCheckpoint =
            serde_json::from_slice(&meta).map_err(|e| StoreError::Corrupt {
                key: key.clone(),
                detail: e.to_string(),
            })?;
        ck.state = self
            .db
            .get(format!("{STATE}{name}"))?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        Ok(Some(ck))
    }

    /// The checkpointed `for` stage of alert rule `name`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails.
    pub fn load_alert(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(format!("{ALERT}{name}"))?.map(|v| v.to_vec()))
    }

    /// The checkpointed detector state of pipeline `name`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when reading fails.
    pub fn load_detect(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(format!("{DETECT}{name}"))?.map(|v| v.to_vec()))
    }

    /// Writes the checkpoints of several pipelines atomically and durably.
    ///
    /// # Errors
    /// [`StoreError::Sled`]; the previous checkpoint then stays in place.
    pub async fn save(&self, cks: &[(String, PipelineCheckpoint)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (name, ck) in cks {
            let meta = serde_json::to_vec(ck).map_err(|e| StoreError::Corrupt {
                key: name.clone(),
                detail: e.to_string(),
            })?;
            batch.insert(format!("{META}{name}").as_bytes(), meta);
            batch.insert(format!("{STATE}{name}").as_bytes(), ck.state.as_slice());
            match &ck.alert_state {
                Some(a) => batch.insert(format!("{ALERT}{name}").as_bytes(), a.as_slice()),
                None => batch.remove(format!("{ALERT}{name}").as_bytes()),
            }
            match &ck.detect_state {
                Some(d) => batch.insert(format!("{DETECT}{name}").as_bytes(), d.as_slice()),
                None => batch.remove(format!("{DETECT}{name}").as_bytes()),
            }
        }
        self.db.apply_batch(batch)?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Removes every checkpoint (`aiops rebuild`).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.db.clear()?;
        self.db.flush_async().await?;
        Ok(())
    }

    /// Removes the checkpoint of a pipeline that is no longer loaded.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        self.db.remove(format!("{META}{name}"))?;
        self.db.remove(format!("{STATE}{name}"))?;
        self.db.remove(format!("{ALERT}{name}"))?;
        self.db.remove(format!("{DETECT}{name}"))?;
        Ok(())
    }
}
