//! Coordination for several engine processes on one clustered log: leases with a time to live
//! (who owns a work unit, which nodes are alive) and blobs every node can read (checkpoints).
//!
//! The log backend provides them ([`crate::EventLog::coordination`]) because they must live
//! where the log lives: a cluster that keeps the log keeps the leases and checkpoints too, with
//! the same replication. The NATS backend implements them with a JetStream key-value bucket
//! (leases), an object store (blobs) and key-value buckets (records every node shares: API
//! tokens, data source definitions); the embedded log has none (one process owns it).

use crate::LogError;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// A live lease as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEntry {
    /// The lease's key (`node.<name>`, `unit.<name>`).
    pub key: String,
    /// What the holder wrote (who it is).
    pub value: Bytes,
    /// The revision the holder must renew at.
    pub revision: u64,
}

/// Leases: a key held by one holder at a time, gone `ttl` after its last renewal.
///
/// Safety rests on two rules the caller keeps: a holder treats its lease as lost once `ttl`
/// minus a margin has passed since it sent its last successful renewal (measured on its own
/// monotonic clock), and everything it appends is fenced ([`crate::Fence`]), so a holder that
/// was paused past its lease cannot write after a successor started.
#[async_trait]
pub trait Leases: Send + Sync {
    /// How long a lease lives after its last renewal.
    fn ttl(&self) -> Duration;

    /// Takes `key` when no live lease holds it: the revision to renew at, or `None` when
    /// another holder has it.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the cluster does not answer.
    async fn acquire(&self, key: &str, value: Bytes) -> Result<Option<u64>, LogError>;

    /// Renews a lease held at `revision`: the new revision, or `None` when the lease was lost
    /// (it expired, and maybe another holder took it).
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the cluster does not answer (the lease may still be held;
    /// the caller's own deadline decides).
    async fn renew(&self, key: &str, value: Bytes, revision: u64) -> Result<Option<u64>, LogError>;

    /// Gives a lease up if it is still held at `revision` (a lease already lost is left alone).
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the cluster does not answer.
    async fn release(&self, key: &str, revision: u64) -> Result<(), LogError>;

    /// Every live lease whose key starts with `prefix`.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the cluster does not answer.
    async fn list(&self, prefix: &str) -> Result<Vec<LeaseEntry>, LogError>;
}

/// Named blobs every node reads: written whole, replaced atomically (a reader sees the old
/// blob or the new one, never a mix).
#[async_trait]
pub trait Blobs: Send + Sync {
    /// Writes `name`, replacing what was there.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the cluster does not take it.
    async fn put(&self, name: &str, bytes: Bytes) -> Result<(), LogError>;

    /// Reads `name`, if it exists.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the cluster does not answer.
    async fn get(&self, name: &str) -> Result<Option<Bytes>, LogError>;

    /// Removes `name` (nothing when it does not exist).
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the cluster does not answer.
    async fn delete(&self, name: &str) -> Result<(), LogError>;
}

/// One key of a key-value bucket as read: its value and the revision a compare-and-set names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Bytes,
    /// The key's revision: changes at every write of the key, grows across the bucket.
    pub revision: u64,
}

/// A change seen by [`Kv::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvChange {
    /// The key that changed.
    pub key: String,
    /// The new value; `None` when the key was deleted.
    pub value: Option<Bytes>,
    /// The change's revision.
    pub revision: u64,
}

/// The outcome of a conditional write ([`Kv::create`], [`Kv::update`], [`Kv::delete`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvWrite {
    /// Written; the key's new revision (0 for a delete).
    Done(u64),
    /// Not written: the key exists (create) or is not at the expected revision (update,
    /// delete). Read it again and decide.
    Conflict,
}

/// The changes of a bucket as they happen ([`Kv::watch`]); ends when the watch breaks (the
/// caller lists again and watches anew).
pub struct KvWatch(futures::stream::BoxStream<'static, Result<KvChange, LogError>>);

impl KvWatch {
    /// A watch over a backend's stream of changes.
    pub fn new(
        changes: futures::stream::BoxStream<'static, Result<KvChange, LogError>>,
    ) -> KvWatch {
        KvWatch(changes)
    }

    /// The next change; `None` when the watch ended (the caller starts a new one).
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the watch broke.
    pub async fn next(&mut self) -> Option<Result<KvChange, LogError>> {
        futures::StreamExt::next(&mut self.0).await
    }
}

impl std::fmt::Debug for KvWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KvWatch")
    }
}

/// A revisioned key-value bucket every node reads and writes: small records shared by the
/// cluster. Every write is atomic per key; conditional writes make read-modify-write safe
/// between nodes.
///
/// Keys are 1–256 characters of `A-Z a-z 0-9 - _ = / .`, not starting or ending with a dot;
/// another key is refused with [`LogError::InvalidMessage`].
#[async_trait]
pub trait Kv: Send + Sync + std::fmt::Debug {
    /// The value of `key` and its revision; `None` when absent or deleted.
    ///
    /// # Errors
    /// [`LogError::InvalidMessage`] for a malformed key; [`LogError::Unavailable`] when the
    /// cluster does not answer.
    async fn get(&self, key: &str) -> Result<Option<KvEntry>, LogError>;

    /// Writes `key` only when it does not exist (or was deleted): [`KvWrite::Conflict`] when it
    /// exists. Of several nodes creating the same key, exactly one succeeds.
    ///
    /// # Errors
    /// As [`Kv::get`].
    async fn create(&self, key: &str, value: Bytes) -> Result<KvWrite, LogError>;

    /// Writes `key` only when it is still at `revision` (compare-and-set):
    /// [`KvWrite::Conflict`] when another write came first.
    ///
    /// # Errors
    /// As [`Kv::get`].
    async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<KvWrite, LogError>;

    /// Writes `key` whatever is there; its new revision.
    ///
    /// # Errors
    /// As [`Kv::get`].
    async fn put(&self, key: &str, value: Bytes) -> Result<u64, LogError>;

    /// Deletes `key`; with `revision`, only when it is still at that revision
    /// ([`KvWrite::Conflict`] otherwise). Deleting an absent key without a revision is not an
    /// error.
    ///
    /// # Errors
    /// As [`Kv::get`].
    async fn delete(&self, key: &str, revision: Option<u64>) -> Result<KvWrite, LogError>;

    /// Every live key whose name starts with `prefix`, with its value and revision, sorted by
    /// key.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the cluster does not answer.
    async fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, LogError>;

    /// The changes made from now on (puts and deletes of every key), in revision order. To
    /// keep a copy current: watch first, then [`Kv::list`], then apply the changes whose
    /// revision is newer than the copy's.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the watch cannot start.
    async fn watch(&self) -> Result<KvWatch, LogError>;
}

/// The coordination services of a clustered log.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// The lease table `name` (created when missing) whose leases live `ttl`; with a zero
    /// `ttl`, the existing table with whatever TTL it has (readers such as
    /// `aiops cluster status`).
    ///
    /// # Errors
    /// [`LogError::Config`] when the cluster refuses the table (e.g. it exists with another
    /// TTL); [`LogError::Unavailable`] when it does not answer.
    async fn leases(&self, name: &str, ttl: Duration) -> Result<Arc<dyn Leases>, LogError>;

    /// The blob store `name` (created when missing).
    ///
    /// # Errors
    /// As [`Coordination::leases`].
    async fn blobs(&self, name: &str) -> Result<Arc<dyn Blobs>, LogError>;

    /// The key-value bucket `name` (created when missing, keeping every key's last value only,
    /// replicated as the log).
    ///
    /// # Errors
    /// As [`Coordination::leases`]; [`LogError::Config`] from a backend without key-value
    /// buckets.
    async fn kv(&self, name: &str) -> Result<Arc<dyn Kv>, LogError> {
        Err(LogError::Config(format!(
            "key-value bucket {name}: this log has no key-value buckets"
        )))
    }
}

/// A log whose appends are all fenced: what a work unit's owner hands to everything that
/// appends for the unit (its driver, its executor), so none of them can forget the fence.
/// Reads, stats and the wake-up signal are the inner log's.
pub struct FencedLog {
    inner: Arc<dyn crate::EventLog>,
    fence: crate::Fence,
}

impl FencedLog {
    /// `inner` with every append fenced by `fence`.
    pub fn new(inner: Arc<dyn crate::EventLog>, fence: crate::Fence) -> FencedLog {
        FencedLog { inner, fence }
    }

    /// The fence.
    pub fn fence(&self) -> &crate::Fence {
        &self.fence
    }
}

impl std::fmt::Debug for FencedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FencedLog")
            .field("fence", &self.fence)
            .finish()
    }
}

#[async_trait]
impl crate::EventLog for FencedLog {
    async fn append(
        &self,
        msgs: Vec<crate::AppendMessage>,
    ) -> Result<Vec<crate::Appended>, LogError> {
        self.inner.append_fenced(msgs, &self.fence).await
    }

    async fn append_fenced(
        &self,
        msgs: Vec<crate::AppendMessage>,
        fence: &crate::Fence,
    ) -> Result<Vec<crate::Appended>, LogError> {
        self.inner.append_fenced(msgs, fence).await
    }

    async fn reader(&self, from: u64) -> Result<Box<dyn crate::LogReader>, LogError> {
        self.inner.reader(from).await
    }

    async fn seek_time(&self, ts_ms: i64) -> Result<u64, LogError> {
        self.inner.seek_time(ts_ms).await
    }

    async fn stats(&self) -> Result<crate::LogStats, LogError> {
        self.inner.stats().await
    }

    /// Does not close the inner log: it is shared with the rest of the process.
    async fn close(&self) -> Result<(), LogError> {
        Ok(())
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.subscribe()
    }

    fn coordination(&self) -> Option<Arc<dyn Coordination>> {
        self.inner.coordination()
    }
}
