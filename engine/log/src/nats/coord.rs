//! [`Coordination`] on JetStream: leases are keys of a key-value bucket whose `max_age` is the
//! lease TTL (the server removes a key its holder stopped renewing; renewals and releases are
//! compare-and-set on the key's revision), blobs are objects of an object store (chunks first,
//! then the metadata that points at them, so a reader sees a whole object).
//!
//! Both are created with the log stream's replica count: they survive what the log survives.

use crate::LogError;
use crate::coord::{Blobs, Coordination, LeaseEntry, Leases};
use async_nats::jetstream::{self, kv, object_store};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The cluster's coordination services, on the log's connection.
pub(super) struct NatsCoordination {
    pub js: jetstream::Context,
    pub replicas: usize,
    pub url: String,
}

fn unavailable(url: &str, what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!("JetStream {what} at {url}: {e}"))
}

#[async_trait]
impl Coordination for NatsCoordination {
    async fn leases(&self, name: &str, ttl: Duration) -> Result<Arc<dyn Leases>, LogError> {
        let store = match self.js.get_key_value(name).await {
            Ok(s) => s,
            Err(e) if ttl.is_zero() => {
                return Err(LogError::Config(format!(
                    "lease bucket {name} at {}: {e} (no node of this cluster has run yet?)",
                    self.url
                )));
            }
            Err(_) => {
                let cfg = kv::Config {
                    bucket: name.to_string(),
                    description: "aiops leases: work-unit owners and live nodes".to_string(),
                    history: 1,
                    max_age: ttl,
                    num_replicas: self.replicas,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                };
                match self.js.create_key_value(cfg).await {
                    Ok(s) => s,
                    // Another node created it meanwhile.
                    Err(e) => self.js.get_key_value(name).await.map_err(|_| {
                        LogError::Config(format!(
                            "lease bucket {name} at {}: cannot create it: {e}",
                            self.url
                        ))
                    })?,
                }
            }
        };
        let status = store
            .status()
            .await
            .map_err(|e| unavailable(&self.url, "lease bucket status", e))?;
        let max_age = status.max_age();
        if !ttl.is_zero() && max_age != ttl {
            return Err(LogError::Config(format!(
                "lease bucket {name} at {} has a TTL of {} but this node is configured for {}: \
                 every node of a cluster must use the same lease TTL (or delete the bucket \
                 while no node runs)",
                self.url,
                humantime::format_duration(max_age),
                humantime::format_duration(ttl)
            )));
        }
        Ok(Arc::new(NatsLeases {
            store,
            ttl: max_age,
            url: self.url.clone(),
        }))
    }

    async fn blobs(&self, name: &str) -> Result<Arc<dyn Blobs>, LogError> {
        let store = match self.js.get_object_store(name).await {
            Ok(s) => s,
            Err(_) => {
                let cfg = object_store::Config {
                    bucket: name.to_string(),
                    description: Some("aiops checkpoints".to_string()),
                    num_replicas: self.replicas,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                };
                match self.js.create_object_store(cfg).await {
                    Ok(s) => s,
                    Err(e) => self.js.get_object_store(name).await.map_err(|_| {
                        LogError::Config(format!(
                            "blob store {name} at {}: cannot create it: {e}",
                            self.url
                        ))
                    })?,
                }
            }
        };
        Ok(Arc::new(NatsBlobs {
            store,
            url: self.url.clone(),
        }))
    }
}

struct NatsLeases {
    store: kv::Store,
    ttl: Duration,
    url: String,
}

#[async_trait]
impl Leases for NatsLeases {
    fn ttl(&self) -> Duration {
        self.ttl
    }

    async fn acquire(&self, key: &str, value: Bytes) -> Result<Option<u64>, LogError> {
        match self.store.create(key, value).await {
            Ok(rev) => Ok(Some(rev)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(unavailable(&self.url, "lease acquire", e)),
        }
    }

    async fn renew(&self, key: &str, value: Bytes, revision: u64) -> Result<Option<u64>, LogError> {
        match self.store.update(key, value, revision).await {
            Ok(rev) => Ok(Some(rev)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(unavailable(&self.url, "lease renew", e)),
        }
    }

    async fn release(&self, key: &str, revision: u64) -> Result<(), LogError> {
        // Purge: the key's messages go, a purge marker stays (and ages out with the bucket's
        // max_age); `create` takes a key whose last operation is a purge.
        match self.store.purge_expect_revision(key, Some(revision)).await {
            Ok(()) => Ok(()),
            // Lost meanwhile: someone else's now, leave it.
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(()),
            Err(e) => Err(unavailable(&self.url, "lease release", e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<LeaseEntry>, LogError> {
        let mut keys = self
            .store
            .keys()
            .await
            .map_err(|e| unavailable(&self.url, "lease list", e))?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(|e| unavailable(&self.url, "lease list", e))?;
            if k.starts_with(prefix) {
                names.push(k);
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for k in names {
            let entry = self
                .store
                .entry(k.as_str())
                .await
                .map_err(|e| unavailable(&self.url, "lease read", e))?;
            if let Some(e) = entry
                && e.operation == kv::Operation::Put
            {
                out.push(LeaseEntry {
                    key: e.key,
                    value: e.value,
                    revision: e.revision,
                });
            }
        }
        Ok(out)
    }
}

struct NatsBlobs {
    store: object_store::ObjectStore,
    url: String,
}

#[async_trait]
impl Blobs for NatsBlobs {
    async fn put(&self, name: &str, bytes: Bytes) -> Result<(), LogError> {
        let mut reader: &[u8] = &bytes;
        self.store
            .put(name, &mut reader)
            .await
            .map_err(|e| unavailable(&self.url, "blob put", e))?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<Bytes>, LogError> {
        let mut obj = match self.store.get(name).await {
            Ok(o) => o,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(&self.url, "blob get", e)),
        };
        let mut buf = Vec::new();
        obj.read_to_end(&mut buf)
            .await
            .map_err(|e| unavailable(&self.url, "blob read", e))?;
        Ok(Some(Bytes::from(buf)))
    }

    async fn delete(&self, name: &str) -> Result<(), LogError> {
        match self.store.delete(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable(&self.url, "blob delete", e)),
        }
    }
}
