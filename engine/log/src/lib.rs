//! The event log: the single source of truth of aiops (DESIGN.md, invariant 1).
//!
//! One trait, [`EventLog`], with two backends chosen at start by [`registry::open`]:
//! - [`embedded`]: append-only segment files on one node; the default, needs no service.
//! - [`nats`]: a NATS JetStream stream, for durability across nodes and scale-out.
//!
//! A log message is opaque bytes (an encoded batch, see `aiops-schemas`) plus a subject
//! (`aiops.<kind>.<partition>`), a message id (for de-duplication of retried appends) and the
//! event-time range of the batch (for the time index). Every message gets a sequence number;
//! sequence order is log order and never changes.
//!
//! Consumers do not poll. [`EventLog::subscribe`] hands out a `tokio::sync::watch` receiver
//! that changes once appended records are readable; a consumer at the end of the log marks it
//! seen, reads until `next_batch` is empty, then awaits `changed()`:
//!
//! ```no_run
//! # async fn consume(log: &dyn aiops_log::EventLog) -> Result<(), aiops_log::LogError> {
//! let mut wake = log.subscribe();
//! let mut reader = log.reader(1).await?;
//! loop {
//!     wake.borrow_and_update(); // (1) before reading, so no append slips in unnoticed
//!     let batch = reader.next_batch(1024).await?; // (2)
//!     if batch.is_empty() {
//!         // (3) with a timeout as the safety net (a read-only embedded log signals only when
//!         // followed or refreshed)
//!         let waited = tokio::time::timeout(std::time::Duration::from_secs(5), wake.changed());
//!         if let Ok(Err(_)) = waited.await {
//!             return Ok(()); // the log is gone
//!         }
//!         continue;
//!     }
//!     // ... process `batch` ...
//! }
//! # }
//! ```
//!
//! The embedded writer bumps the signal right after a group commit makes records visible to
//! readers (before the appends are acknowledged); the NATS backend runs a background watcher,
//! an ordered headers-only push consumer on the stream, and bumps it per batch of deliveries,
//! which the server sends only for stored messages.
//!
//! The shared behaviour both backends MUST have is one test suite, `tests/conformance.rs`, run
//! against each.

pub mod coord;
pub mod embedded;
pub mod error;
pub mod nats;
pub mod registry;

pub use coord::{Blobs, Coordination, FencedLog, LeaseEntry, Leases};
pub use error::LogError;
pub use registry::{LogSpec, open};

use async_trait::async_trait;
use bytes::Bytes;

/// One message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Subject, e.g. `aiops.metrics.3`. Must be non-empty, ASCII, without spaces or wildcards.
    pub subject: String,
    /// De-duplication id: appending a message whose id the log already holds (within the
    /// backend's duplicate window) stores nothing and returns the first copy's sequence.
    pub msg_id: String,
    /// Smallest event time in the payload, Unix ms.
    pub time_min_ms: i64,
    /// Largest event time in the payload, Unix ms.
    pub time_max_ms: i64,
    /// The encoded batch.
    pub payload: Bytes,
}

/// One stored message, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the log; strictly increasing in log order, starting at 1.
    pub seq: u64,
    /// Subject it was appended under.
    pub subject: String,
    /// Its de-duplication id.
    pub msg_id: String,
    /// Smallest event time in the payload, Unix ms.
    pub time_min_ms: i64,
    /// Largest event time in the payload, Unix ms.
    pub time_max_ms: i64,
    /// When the backend stored it, wall-clock Unix ms of the storing machine: the embedded
    /// writer's append stamp, the JetStream message timestamp. Not event time, and not ordered
    /// (clocks step); for measurements and retention only. 0 when the backend does not know.
    pub append_ts_ms: i64,
    /// The payload exactly as appended.
    pub payload: Bytes,
}

/// The outcome of appending one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Sequence the message is stored at (the earlier copy's, for a duplicate).
    pub seq: u64,
    /// True when the log already held this message id and stored nothing new.
    pub duplicate: bool,
}

/// A fence on appends: they are stored only while the last message on `subject` is still the
/// one at `seq`. A work unit's owner appends a message on its fence subject when it takes the
/// unit over and appends its outputs under the fence it got; once a successor appended its own
/// fence message, every append of the former owner (a paused or partitioned process that has
/// not noticed it lost its lease) is refused with [`LogError::Fenced`] instead of duplicating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The fence subject (`aiops.fence.<unit>`), written only by owners taking over.
    pub subject: String,
    /// Sequence of the owner's fence message on it.
    pub seq: u64,
}

/// Size and range of the log, as the backend knows it without decoding payloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogStats {
    /// Backend name: `embedded` or `nats`.
    pub backend: String,
    /// First sequence still stored (after retention), or the next sequence when empty.
    pub first_seq: u64,
    /// Sequence the next appended message will get.
    pub next_seq: u64,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored, including the backend's framing.
    pub bytes: u64,
    /// One sentence on what an acknowledged append survives (process crash, power loss, node loss).
    pub durability: String,
    /// Copies of each message the backend keeps (the JetStream stream's replicas). `None` for
    /// the embedded log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
    /// When the server fsyncs stored messages: `always` (before acknowledging) or the interval
    /// between fsyncs (`2m`). `None` when not known (embedded: see `durability`; NATS without
    /// `monitor_url` on nats-server 2.10+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<String>,
    /// The JetStream cluster holding the stream. `None` for the embedded log and a server
    /// without clustering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The server leading the stream (where appends are ordered). `None` for the embedded log,
    /// or while a cluster elects a leader.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The servers holding a replica of the stream, leader first, as the leader sees them. Empty
    /// for the embedded log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cluster_peers: Vec<ClusterPeer>,
    /// The server this client is connected to. `None` for the embedded log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// One server holding a replica of the log, as [`LogStats::cluster_peers`] lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterPeer {
    /// Server name.
    pub name: String,
    /// True for the replica leading the stream.
    pub leader: bool,
    /// True when the replica is caught up with the leader.
    pub current: bool,
    /// True when the group considers the server offline.
    pub offline: bool,
    /// Operations this replica is behind the leader, when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// Milliseconds since the leader last heard from it (0 for the leader itself).
    pub active_ms: u64,
}

/// An event log backend. Implementations are shared across tasks (`Arc<dyn EventLog>`).
///
/// Contract (checked by `tests/conformance.rs` for every backend):
/// - `append` returns only after every message is stored as durably as the backend's policy
///   says ([`LogStats::durability`]); on error, the caller must assume any subset may be stored
///   and retry with the same message ids, which makes the retry safe.
/// - Messages of one `append` call get consecutive sequence numbers in the given order, unless
///   another caller appends concurrently, in which case each call's messages stay in order.
/// - A reader returns every stored message exactly once, in sequence order, and never a message
///   whose checksum fails: it returns [`LogError::Corrupt`] naming where instead.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends messages in order; see the trait contract.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the backend cannot take writes now (a retry may help),
    /// [`LogError::Io`] on disk errors, [`LogError::InvalidMessage`] for a bad subject or id.
    async fn append(&self, msgs: Vec<AppendMessage>) -> Result<Vec<Appended>, LogError>;

    /// Appends like [`EventLog::append`], but only while `fence` holds: once another message is
    /// on the fence subject, the messages not yet stored are refused with
    /// [`LogError::Fenced`] (those before the refusal may be stored; they precede the new
    /// fence message, so the successor sees them).
    ///
    /// The default ignores the fence: a backend without it is written by one process (the
    /// embedded log takes a lock on its directory), so there is nobody to fence out.
    ///
    /// # Errors
    /// As [`EventLog::append`], and [`LogError::Fenced`].
    async fn append_fenced(
        &self,
        msgs: Vec<AppendMessage>,
        fence: &Fence,
    ) -> Result<Vec<Appended>, LogError> {
        let _ = fence;
        self.append(msgs).await
    }

    /// Leases and shared blobs for several engine processes on this log (cluster mode), or
    /// `None` for a backend one process owns.
    fn coordination(&self) -> Option<std::sync::Arc<dyn Coordination>> {
        None
    }

    /// A reader positioned at the first stored message with sequence `>= from`.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] or [`LogError::Io`] if the log cannot be opened for reading.
    async fn reader(&self, from: u64) -> Result<Box<dyn LogReader>, LogError>;

    /// The smallest sequence from which a replay of events with time `>= ts_ms` must start: every
    /// message before it has `time_max_ms < ts_ms`. Uses the time index, not a scan.
    ///
    /// # Errors
    /// As for [`EventLog::reader`].
    async fn seek_time(&self, ts_ms: i64) -> Result<u64, LogError>;

    /// Counts, bytes and durability of the log.
    ///
    /// # Errors
    /// As for [`EventLog::reader`].
    async fn stats(&self) -> Result<LogStats, LogError>;

    /// Flushes what is buffered and releases the backend. Appends after `close` fail with
    /// [`LogError::Closed`].
    ///
    /// # Errors
    /// If the final flush fails.
    async fn close(&self) -> Result<(), LogError>;

    /// A signal that changes after new records became readable: the value is the backend's
    /// latest known next sequence (a hint that never decreases), and every wake-up bumps the
    /// channel's version, so `changed()` fires even when the value stays the same. A consumer at
    /// the end of the log waits for `changed()` instead of sleeping; after a change, a reader's
    /// `next_batch` returns the records that caused it (no lost wake-up).
    ///
    /// Contract (checked by `tests/conformance.rs` for every backend):
    /// - After `append` returns, every receiver obtained before it observes a change promptly
    ///   (embedded: before `append` returns; NATS: when the server delivers the stored message
    ///   to the log's watcher, typically well under a millisecond on a local server).
    /// - No lost wake-up: a consumer that (1) marks the receiver seen
    ///   (`borrow_and_update`), (2) calls `next_batch` and gets nothing, (3) awaits `changed()`,
    ///   is woken by any append that happens after step (1), and its next `next_batch` returns
    ///   the record. The signal fires only once the record is readable, never merely sent.
    /// - Spurious wake-ups are allowed (at open, after the NATS watcher reconnects): a woken
    ///   consumer must tolerate an empty `next_batch` and wait again.
    /// - An embedded log opened read-only sees appends of another process only when refreshed
    ///   (`EmbeddedLog::refresh`, or the `follow` option's thread), and its signal changes only
    ///   then; without `follow` such a consumer must keep a fallback poll. In general a consumer
    ///   should wait with a timeout (seconds, not milliseconds) as a safety net.
    /// - `changed()` returning an error means the log (and every reader of it) is gone: stop
    ///   waiting. After `close` no change is signalled any more.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// A sequential reader over the log.
#[async_trait]
pub trait LogReader: Send {
    /// The next stored messages in sequence order, at most `max`. An empty vector means the
    /// reader is at the end of the log now; calling again later returns what was appended since.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] for a message whose checksum fails (the reader does not skip it),
    /// [`LogError::Io`] or [`LogError::Unavailable`] otherwise.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Record>, LogError>;

    /// The sequence of the next message this reader will return.
    fn position(&self) -> u64;
}

/// Checks a subject and message id before they reach a backend; both backends call this so they
/// refuse the same things.
///
/// # Errors
/// [`LogError::InvalidMessage`] naming what is wrong.
pub fn validate(msg: &AppendMessage) -> Result<(), LogError> {
    let ok_subject = !msg.subject.is_empty()
        && msg.subject.len() <= 255
        && msg
            .subject
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
        && !msg.subject.starts_with('.')
        && !msg.subject.ends_with('.')
        && !msg.subject.contains("..");
    if !ok_subject {
        return Err(LogError::InvalidMessage(format!(
            "bad subject {:?}: need dot-separated ASCII tokens without spaces or wildcards",
            msg.subject
        )));
    }
    if msg.msg_id.is_empty()
        || msg.msg_id.len() > 255
        || !msg.msg_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(LogError::InvalidMessage(format!(
            "bad message id {:?}: need 1–255 printable ASCII characters",
            msg.msg_id
        )));
    }
    if msg.time_min_ms > msg.time_max_ms {
        return Err(LogError::InvalidMessage(format!(
            "time range is inverted: min {} > max {}",
            msg.time_min_ms, msg.time_max_ms
        )));
    }
    Ok(())
}
