//! [`Coordination`] on JetStream: leases are keys of a key-value bucket whose `max_age` is the
//! lease TTL (the server removes a key its holder stopped renewing; renewals and releases are
//! compare-and-set on the key's revision), blobs are objects of an object store (chunks first,
//! then the metadata that points at them, so a reader sees a whole object), shared records are
//! keys of a key-value bucket keeping each key's last value (conditional writes name the key's
//! revision, the stream sequence of its last write).
//!
//! All are created with the log stream's replica count: they survive what the log survives.

use crate::LogError;
use crate::coord::{
    Blobs, Coordination, Kv, KvChange, KvEntry, KvWatch, KvWrite, LeaseEntry, Leases,
};
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

    async fn kv(&self, name: &str) -> Result<Arc<dyn Kv>, LogError> {
        let store = match self.js.get_key_value(name).await {
            Ok(s) => s,
            Err(_) => {
                let cfg = kv::Config {
                    bucket: name.to_string(),
                    description: "aiops shared records".to_string(),
                    history: 1,
                    num_replicas: self.replicas,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                };
                match self.js.create_key_value(cfg).await {
                    Ok(s) => s,
                    // Another node created it meanwhile.
                    Err(e) => self.js.get_key_value(name).await.map_err(|_| {
                        LogError::Config(format!(
                            "key-value bucket {name} at {}: cannot create it: {e}",
                            self.url
                        ))
                    })?,
                }
            }
        };
        // A bucket just created on a cluster answers once its stream has a leader: wait for
        // it here, so the first write of a starting node does not fail with "no responders".
        let deadline = tokio::time::Instant::now() + KV_READY_WITHIN;
        loop {
            match store.entry(READY_PROBE).await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(unavailable(
                        &self.url,
                        &format!("key-value bucket {name} (no answer within {KV_READY_WITHIN:?})"),
                        e,
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(Arc::new(NatsKv {
            store,
            name: name.to_string(),
            url: self.url.clone(),
        }))
    }
}

/// How long [`Coordination::kv`] waits for a bucket to answer (a new bucket's stream electing
/// its leader).
const KV_READY_WITHIN: Duration = Duration::from_secs(15);

/// A key read to see that a bucket answers (never written).
const READY_PROBE: &str = "aiops-ready-probe";

struct NatsKv {
    store: kv::Store,
    name: String,
    url: String,
}

impl std::fmt::Debug for NatsKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsKv")
            .field("bucket", &self.name)
            .field("url", &self.url)
            .finish()
    }
}

impl NatsKv {
    fn unavailable(&self, what: &str, e: impl std::fmt::Display) -> LogError {
        LogError::Unavailable(format!(
            "JetStream key-value bucket {} at {}: {what}: {e}",
            self.name, self.url
        ))
    }

    fn invalid_key(&self, key: &str) -> LogError {
        LogError::InvalidMessage(format!(
            "key {key:?} of key-value bucket {}: keys are 1-256 characters of A-Z a-z 0-9 - _ = / . \
             and do not start or end with a dot",
            self.name
        ))
    }

    fn check_key(&self, key: &str) -> Result<(), LogError> {
        let ok = !key.is_empty()
            && key.len() <= 256
            && !key.starts_with('.')
            && !key.ends_with('.')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=/.".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(self.invalid_key(key))
        }
    }
}

#[async_trait]
impl Kv for NatsKv {
    async fn get(&self, key: &str) -> Result<Option<KvEntry>, LogError> {
        self.check_key(key)?;
        match self.store.entry(key).await {
            Ok(Some(e)) if e.operation == kv::Operation::Put => Ok(Some(KvEntry {
                key: e.key,
                value: e.value,
                revision: e.revision,
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == kv::EntryErrorKind::InvalidKey => Err(self.invalid_key(key)),
            Err(e) => Err(self.unavailable("get", e)),
        }
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KvWrite, LogError> {
        self.check_key(key)?;
        match self.store.create(key, value).await {
            Ok(rev) => Ok(KvWrite::Done(rev)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(KvWrite::Conflict),
            Err(e) if e.kind() == kv::CreateErrorKind::InvalidKey => Err(self.invalid_key(key)),
            Err(e) => Err(self.unavailable("create", e)),
        }
    }

    async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<KvWrite, LogError> {
        self.check_key(key)?;
        match self.store.update(key, value, revision).await {
            Ok(rev) => Ok(KvWrite::Done(rev)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(KvWrite::Conflict),
            Err(e) if e.kind() == kv::UpdateErrorKind::InvalidKey => Err(self.invalid_key(key)),
            Err(e) => Err(self.unavailable("update", e)),
        }
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<u64, LogError> {
        self.check_key(key)?;
        match self.store.put(key, value).await {
            Ok(rev) => Ok(rev),
            Err(e) if e.kind() == kv::PutErrorKind::InvalidKey => Err(self.invalid_key(key)),
            Err(e) => Err(self.unavailable("put", e)),
        }
    }

    async fn delete(&self, key: &str, revision: Option<u64>) -> Result<KvWrite, LogError> {
        self.check_key(key)?;
        match self.store.delete_expect_revision(key, revision).await {
            Ok(()) => Ok(KvWrite::Done(0)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(KvWrite::Conflict),
            Err(e) if e.kind() == kv::UpdateErrorKind::InvalidKey => Err(self.invalid_key(key)),
            Err(e) => Err(self.unavailable("delete", e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, LogError> {
        let mut keys = self
            .store
            .keys()
            .await
            .map_err(|e| self.unavailable("list", e))?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(|e| self.unavailable("list", e))?;
            if k.starts_with(prefix) {
                names.push(k);
            }
        }
        names.sort();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for k in names {
            // Deleted between the listing and the read: not listed.
            if let Some(e) = self.get(&k).await? {
                out.push(e);
            }
        }
        Ok(out)
    }

    async fn watch(&self) -> Result<KvWatch, LogError> {
        let watch = self
            .store
            .watch(">")
            .await
            .map_err(|e| self.unavailable("watch", e))?;
        let name = self.name.clone();
        let url = self.url.clone();
        Ok(KvWatch::new(
            watch
                .map(move |r| match r {
                    Ok(e) => Ok(KvChange {
                        key: e.key,
                        value: (e.operation == kv::Operation::Put).then_some(e.value),
                        revision: e.revision,
                    }),
                    Err(e) => Err(LogError::Unavailable(format!(
                        "JetStream key-value bucket {name} at {url}: watch: {e}"
                    ))),
                })
                .boxed(),
        ))
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
