//! Which pipeline output streams exist and their schemas, learned from the log (and the
//! archive) rather than from the pipeline files, so streams of removed pipelines stay queryable.

use crate::archive::{self, Archive};
use aiops_log::EventLog;
use aiops_schemas::arrow_schema::SchemaRef;
use aiops_schemas::derived::DERIVED_PREFIX;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Derived streams by output name.
#[derive(Debug, Default)]
pub struct StreamDirectory {
    streams: RwLock<BTreeMap<String, SchemaRef>>,
    /// Next log sequence to look at; 0 = not started.
    pos: tokio::sync::Mutex<u64>,
}

impl StreamDirectory {
    /// The output names seen so far.
    pub fn names(&self) -> Vec<String> {
        self.streams.read().keys().cloned().collect()
    }

    /// The schema of output `name` (the newest seen).
    pub fn schema(&self, name: &str) -> Option<SchemaRef> {
        self.streams.read().get(name).cloned()
    }

    /// Learns from the archive (on the first call) and the log messages appended since the last
    /// call.
    ///
    /// # Errors
    /// The log cannot be read.
    pub async fn refresh(
        &self,
        log: &Arc<dyn EventLog>,
        archive: Option<&Arc<Archive>>,
    ) -> Result<(), aiops_log::LogError> {
        let mut pos = self.pos.lock().await;
        let stats = log.stats().await?;
        if *pos == 0 {
            let mut start = stats.first_seq;
            if let Some(a) = archive {
                for s in a.streams() {
                    if let (Some(name), Some(schema)) =
                        (s.strip_prefix("derived."), a.schema_of(&s))
                    {
                        self.streams.write().insert(name.to_string(), schema);
                    }
                }
                start = start.max(a.archived_through());
            }
            *pos = start.max(1);
        }
        if *pos >= stats.next_seq {
            return Ok(());
        }
        // Only the newest message of each stream is decoded: its schema is the current one.
        let mut newest: BTreeMap<String, aiops_log::Record> = BTreeMap::new();
        let mut reader = log.reader(*pos).await?;
        loop {
            let recs = reader.next_batch(1024).await?;
            if recs.is_empty() {
                break;
            }
            for rec in recs {
                *pos = rec.seq + 1;
                if let Some(name) = rec.subject.strip_prefix(DERIVED_PREFIX) {
                    newest.insert(name.to_string(), rec);
                }
            }
            if *pos >= stats.next_seq {
                break;
            }
        }
        for (name, rec) in newest {
            if let Some(b) = archive::decode_record(&rec.subject, &rec.payload) {
                self.streams.write().insert(name, b.schema());
            }
        }
        Ok(())
    }
}
