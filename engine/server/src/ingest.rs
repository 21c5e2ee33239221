//! Turns decoded source batches into log messages and appends them, with backpressure.
//!
//! A request is acknowledged only after the log accepted every message it produced (invariant 4).
//! When too many appends are in flight, or the log follower lags too far behind, the request is
//! refused with [`IngestError::Overloaded`] / [`IngestError::Lagging`] (503/429 + Retry-After):
//! never dropped. Message ids are derived from the request so a retried request is stored once.
//!
//! Every batch is masked first (`[masking]`, [`aiops_connectors::masking`]): sensitive values in
//! bodies, labels and attributes are replaced, hashed or dropped before anything is encoded, so
//! the log never holds them. This is the one choke point: every push endpoint and pull source
//! appends through [`Ingestor::ingest`].

use crate::clock;
use crate::metrics::Metrics;
use aiops_connectors::masking::{MaskStats, Masker, MaskingSettings};
use aiops_connectors::sources::IngestLimits;
use aiops_connectors::sources::SourceBatch;
use aiops_log::{AppendMessage, EventLog, LogError};
use aiops_schemas::arrow_array::RecordBatch;
use aiops_schemas::partition::{fnv1a, split_by_partition};
use aiops_schemas::{Envelope, encode};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Why a batch could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Too many appends in flight; retry after the given delay.
    #[error("ingest is overloaded: {0} appends in flight; retry later")]
    Overloaded(usize),
    /// Consumers are too far behind the log head; retry after the given delay.
    #[error("consumers lag {0} messages behind the log; retry later")]
    Lagging(u64),
    /// The log did not accept the batch.
    #[error("log append failed: {0}")]
    Log(#[from] LogError),
    /// The append took longer than allowed; it may or may not be stored — retrying is safe.
    #[error("log append timed out after {0:?}; retrying is safe")]
    Timeout(Duration),
    /// The client reused an `Idempotency-Key` for a different body: a retry must resend the
    /// same body; new data needs a new key. Nothing was stored.
    #[error(
        "Idempotency-Key {key} was used within the last {window:?} for a different body; \
         a retry must resend the same body, new data needs a new key"
    )]
    KeyConflict {
        /// The key, quoted and shortened for the message.
        key: String,
        /// How long a key stays bound to its body (`ingest.idempotency_window`).
        window: Duration,
    },
    /// A batch could not be encoded (a bug: decoders produce batches of their kind's schema).
    #[error("internal error encoding batch: {0}")]
    Encode(String),
}

impl IngestError {
    /// Short label for the rejection metric.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Overloaded(_) => "overloaded",
            IngestError::Lagging(_) => "consumer_lag",
            IngestError::Log(e) if e.is_retryable() => "log_unavailable",
            IngestError::Log(_) => "log_error",
            IngestError::Timeout(_) => "log_timeout",
            IngestError::KeyConflict { .. } => "idempotency_conflict",
            IngestError::Encode(_) => "internal",
        }
    }

    /// Whether the client should retry later (answered 429/503 with Retry-After).
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Overloaded(_) | IngestError::Lagging(_) | IngestError::Timeout(_) => true,
            IngestError::Log(e) => e.is_retryable(),
            IngestError::Encode(_) | IngestError::KeyConflict { .. } => false,
        }
    }
}

/// How a request's message ids are derived.
#[derive(Debug, Clone, Copy)]
pub enum IdBasis<'a> {
    /// An internal key (pull sources): a retry with the same key is stored once.
    ClientKey(&'a str),
    /// A client's `Idempotency-Key` bound to the request body: the same key and body are stored
    /// once; the same key with another body within `ingest.idempotency_window` is refused
    /// ([`IngestError::KeyConflict`]).
    KeyedBody {
        /// The `Idempotency-Key` header.
        key: &'a str,
        /// The raw request body.
        body: &'a [u8],
    },
    /// The request body carries its own timestamps (remote_write, webhooks): the same body is the
    /// same data, so the body's hash identifies it.
    Content(&'a [u8]),
    /// Nothing identifies a retry (JSON without time or key): a fresh id per request.
    Unique,
}

/// Appends source batches to the log; shared by HTTP handlers and pull sources.
pub struct Ingestor {
    log: Arc<dyn EventLog>,
    metrics: Arc<Metrics>,
    partitions: u32,
    slots: Arc<Semaphore>,
    max_inflight: usize,
    queue_timeout: Duration,
    append_timeout: Duration,
    max_consumer_lag: u64,
    counter: AtomicU64,
    boot: i64,
    idempotency_window: Duration,
    limits: IngestLimits,
    max_decoded_bytes: Option<usize>,
    keys: Mutex<KeyBindings>,
    /// `None` only if the default policy failed to build (a bug, logged).
    masker: Option<Arc<Masker>>,
}

/// Most `Idempotency-Key`s remembered at once; the oldest are forgotten first, so a flood of
/// keys costs bounded memory (and only weakens conflict detection for the oldest keys).
const MAX_KEYS: usize = 100_000;

/// Which body hash each recent `(route source, Idempotency-Key)` was accepted with.
#[derive(Debug, Default)]
struct KeyBindings {
    map: HashMap<(String, String), (u64, Instant)>,
    order: VecDeque<((String, String), Instant)>,
}

impl KeyBindings {
    /// The body hash a key is bound to, if it was accepted within `window`.
    fn get(&self, k: &(String, String), window: Duration) -> Option<u64> {
        self.map
            .get(k)
            .filter(|(_, at)| at.elapsed() < window)
            .map(|(h, _)| *h)
    }

    fn insert(&mut self, k: (String, String), hash: u64, window: Duration) {
        let now = Instant::now();
        while let Some((old, at)) = self.order.front() {
            if self.order.len() < MAX_KEYS && at.elapsed() < window {
                break;
            }
            // Only forget the binding if it was not renewed since this entry.
            if self.map.get(old).is_some_and(|(_, t)| t == at) {
                self.map.remove(old);
            }
            self.order.pop_front();
        }
        self.map.insert(k.clone(), (hash, now));
        self.order.push_back((k, now));
    }
}

/// The hash a key is bound to: 64-bit FNV-1a and CRC32C of the body, combined.
fn body_hash(body: &[u8]) -> u64 {
    fnv1a(0xcbf2_9ce4_8422_2325, body) ^ u64::from(crc32c::crc32c(body)).rotate_left(17)
}

/// A client's key for a message: Debug-quoted (control characters escaped), at most 64 chars.
fn quoted_key(key: &str) -> String {
    let head: String = key.chars().take(64).collect();
    if head.len() < key.len() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor")
            .field("partitions", &self.partitions)
            .finish()
    }
}

/// What an accepted request produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Events appended (or already present from an earlier identical request).
    pub events: u64,
    /// Log messages written.
    pub messages: usize,
    /// Messages the log already held (a retried request).
    pub duplicates: usize,
}

impl Ingestor {
    /// An ingestor appending to `log` with the limits of `cfg`.
    pub fn new(
        log: Arc<dyn EventLog>,
        metrics: Arc<Metrics>,
        cfg: &crate::config::IngestConfig,
    ) -> Ingestor {
        let masker = default_masker(&metrics);
        Ingestor {
            log,
            metrics,
            partitions: cfg.partitions,
            slots: Arc::new(Semaphore::new(cfg.max_inflight_appends)),
            max_inflight: cfg.max_inflight_appends,
            queue_timeout: cfg.queue_timeout,
            append_timeout: cfg.append_timeout,
            max_consumer_lag: cfg.max_consumer_lag,
            counter: AtomicU64::new(0),
            boot: clock::now_ms(),
            limits: IngestLimits {
                max_age_ms: i64::try_from(cfg.max_age.as_millis()).unwrap_or(i64::MAX),
                max_future_ms: i64::try_from(cfg.max_future.as_millis()).unwrap_or(i64::MAX),
                max_labels: cfg.max_labels,
                max_label_name_bytes: cfg.max_label_name_bytes,
                max_label_value_bytes: cfg.max_label_value_bytes,
                max_decoded_bytes: cfg.max_decoded_bytes.unwrap_or(usize::MAX),
                max_series: cfg.max_series_per_request,
            },
            max_decoded_bytes: cfg.max_decoded_bytes,
            keys: Mutex::new(KeyBindings::default()),
            idempotency_window: cfg.idempotency_window,
            masker,
        }
    }

    /// Masks with `masker` (built from `[masking]` by [`build_masker`]) instead of the default
    /// policy; its rules' counters start at zero on `/metrics`.
    pub fn with_masking(mut self, masker: Arc<Masker>) -> Ingestor {
        self.metrics
            .masking_rules(masker.active_rule_names().map(str::to_string));
        self.masker = Some(masker);
        self
    }

    /// What pushed requests may hold, from `[ingest]`; the decoded-size limit defaults to
    /// 8 × `max_body_bytes` (a generous snappy ratio for protobuf with repeated labels).
    pub fn limits(&self, max_body_bytes: usize) -> IngestLimits {
        IngestLimits {
            max_decoded_bytes: self
                .max_decoded_bytes
                .unwrap_or_else(|| max_body_bytes.saturating_mul(8)),
            ..self.limits
        }
    }

    /// The log this ingestor appends to.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    fn base_id(&self, basis: IdBasis<'_>, source: &str) -> String {
        match basis {
            IdBasis::ClientKey(k) => format!(
                "k{:016x}",
                fnv1a(
                    fnv1a(0xcbf2_9ce4_8422_2325, source.as_bytes()),
                    k.as_bytes()
                )
            ),
            // The body's hash is part of the id too: should the binding be forgotten (a
            // restart), another body under the same key is stored whole as new data, never
            // half-deduplicated against the first body's messages.
            IdBasis::KeyedBody { key, body } => format!(
                "k{:016x}{:016x}",
                fnv1a(
                    fnv1a(0xcbf2_9ce4_8422_2325, source.as_bytes()),
                    key.as_bytes()
                ),
                body_hash(body)
            ),
            IdBasis::Content(body) => format!(
                "c{:016x}{:08x}",
                fnv1a(fnv1a(0xcbf2_9ce4_8422_2325, source.as_bytes()), body),
                crc32c::crc32c(body)
            ),
            IdBasis::Unique => format!(
                "u{:x}-{:x}",
                self.boot,
                self.counter.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// Partitions, encodes and appends `batches`; returns once the log has accepted all of them.
    ///
    /// # Errors
    /// [`IngestError`]; on any error nothing is acknowledged and a retry with the same
    /// [`IdBasis`] stores each message at most once.
    pub async fn ingest(
        &self,
        batches: Vec<SourceBatch>,
        basis: IdBasis<'_>,
    ) -> Result<Accepted, IngestError> {
        let lag = self.metrics.consumer_lag();
        if lag > self.max_consumer_lag {
            return Err(IngestError::Lagging(lag));
        }
        let Some(first) = batches.first() else {
            return Ok(Accepted::default());
        };
        let first_source = first.source;
        let base = self.base_id(basis, first.source);
        let binding = match basis {
            IdBasis::KeyedBody { key, body } => {
                let k = (first.source.to_string(), key.to_string());
                let hash = body_hash(body);
                let bound = self
                    .keys
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&k, self.idempotency_window);
                if bound.is_some_and(|h| h != hash) {
                    tracing::info!(
                        source = first.source,
                        "Idempotency-Key reused for a different body; refused"
                    );
                    return Err(IngestError::KeyConflict {
                        key: quoted_key(key),
                        window: self.idempotency_window,
                    });
                }
                Some((k, hash))
            }
            _ => None,
        };
        // Masked before anything is encoded: the log only ever holds the masked form.
        let mut batches = batches;
        let mut masked = MaskStats::default();
        if let Some(masker) = &self.masker {
            for sb in batches
                .iter_mut()
                .filter(|sb| !UNMASKED_SOURCES.contains(&sb.source))
            {
                if let Some(b) = masker
                    .mask_batch(sb.kind, &sb.batch, &mut masked)
                    .map_err(|e| IngestError::Encode(e.to_string()))?
                {
                    sb.batch = b;
                }
            }
        }
        let ingest_ts = clock::now_ms();
        let mut msgs = Vec::new();
        let mut counts = Vec::new();
        for (bi, sb) in batches.iter().enumerate() {
            if sb.batch.num_rows() == 0 {
                continue;
            }
            let parts = split_by_partition(sb.kind, &sb.batch, self.partitions)
                .map_err(|e| IngestError::Encode(e.to_string()))?;
            for (partition, part) in parts {
                let range = time_range(&part).or(sb.time_range).unwrap_or((0, 0));
                let env = Envelope::new(sb.kind, sb.source, ingest_ts, range, &part);
                let payload =
                    encode(&env, &part).map_err(|e| IngestError::Encode(e.to_string()))?;
                counts.push((
                    sb.kind,
                    sb.source,
                    part.num_rows() as u64,
                    payload.len() as u64,
                ));
                msgs.push(AppendMessage {
                    subject: sb.kind.subject(partition),
                    msg_id: format!("{base}-{bi}-{partition}"),
                    time_min_ms: range.0,
                    time_max_ms: range.1,
                    payload: Bytes::from(payload),
                });
            }
        }
        if msgs.is_empty() {
            // Everything was dropped by masking (or empty): nothing to store.
            self.count_masked(first_source, &masked);
            return Ok(Accepted::default());
        }
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| IngestError::Overloaded(self.max_inflight))?
            .map_err(|_| IngestError::Log(LogError::Closed))?;
        let started = Instant::now();
        let n = msgs.len();
        let appended = tokio::time::timeout(self.append_timeout, self.log.append(msgs))
            .await
            .map_err(|_| IngestError::Timeout(self.append_timeout))??;
        drop(permit);
        self.metrics.append_latency(started.elapsed());
        if let Some((k, hash)) = binding {
            // Bound only once stored: a failed append leaves the key free for the retry.
            self.keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(k, hash, self.idempotency_window);
        }
        self.count_masked(first_source, &masked);
        let duplicates = appended.iter().filter(|a| a.duplicate).count();
        if duplicates > 0 {
            self.metrics.duplicates(duplicates as u64);
        }
        let mut events = 0;
        for (kind, source, rows, bytes) in counts {
            self.metrics.ingested(kind, source, rows, bytes);
            events += rows;
        }
        Ok(Accepted {
            events,
            messages: n,
            duplicates,
        })
    }
}

impl Ingestor {
    /// Counts what masking did to one accepted request (per request, never per event); the
    /// tracing line names rules and counts, never a value.
    fn count_masked(&self, source: &'static str, stats: &MaskStats) {
        if !stats.any() {
            return;
        }
        let Some(masker) = &self.masker else { return };
        let rules = masker.rules();
        for (i, n) in stats.matches.iter().enumerate() {
            if *n > 0
                && let Some(r) = rules.get(i)
            {
                self.metrics.masking_matches(&r.name, *n);
            }
        }
        self.metrics
            .masking_dropped(stats.dropped_records, stats.dropped_entries);
        tracing::debug!(
            source,
            matches = stats.matches.iter().sum::<u64>(),
            dropped_records = stats.dropped_records,
            dropped_entries = stats.dropped_entries,
            "sensitive values masked before the log"
        );
    }
}

/// Sources whose batches the engine builds itself from nothing a client sent as data: the audit
/// events (route, status, role, and the *id* of the token under the key `token`, which the
/// `secret` detector would otherwise hide — the audit trail needs it).
const UNMASKED_SOURCES: &[&str] = &["audit"];

/// The masking policy of `[masking]`, with its `hash` key read from `hash_key`, the variable
/// `hash_key_env` (looked up in `env`) or the file `hash_key_file`.
///
/// # Errors
/// A message for the operator naming the setting: invalid settings (every problem at once), or
/// a key variable or file that is unset, unreadable or empty.
pub fn build_masker(
    settings: &MaskingSettings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Masker, String> {
    let key: Option<Vec<u8>> = if let Some(k) = &settings.hash_key {
        Some(k.as_bytes().to_vec())
    } else if let Some(var) = &settings.hash_key_env {
        let v = env(var).ok_or_else(|| {
            format!("masking.hash_key_env: the environment variable {var} is not set")
        })?;
        Some(v.into_bytes())
    } else if let Some(path) = &settings.hash_key_file {
        let text = std::fs::read(path)
            .map_err(|e| format!("masking.hash_key_file: cannot read {}: {e}", path.display()))?;
        let end = text
            .iter()
            .rposition(|b| !matches!(*b, b'\n' | b'\r'))
            .map_or(0, |p| p + 1);
        Some(text[..end].to_vec())
    } else {
        None
    };
    if key.as_ref().is_some_and(Vec::is_empty) {
        return Err("masking: the hash key is empty".to_string());
    }
    Masker::new(settings, key.as_deref()).map_err(|e| e.to_string())
}

/// The default policy (secrets and cards), for an ingestor built without [`Ingestor::with_masking`].
fn default_masker(metrics: &Metrics) -> Option<Arc<Masker>> {
    // The default settings are constants covered by the masking module's tests; should they
    // ever fail to build (a bug), ingest keeps working without masking and says so loudly.
    match Masker::new(&MaskingSettings::default(), None) {
        Ok(m) => {
            metrics.masking_rules(m.active_rule_names().map(str::to_string));
            Some(Arc::new(m))
        }
        Err(e) => {
            tracing::error!(error = %e, "default masking policy failed to build (a bug); masking is off");
            None
        }
    }
}

/// The event-time range of a batch from its `time` column (every kind has one, first).
fn time_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    use aiops_schemas::arrow_array::cast::AsArray;
    use aiops_schemas::arrow_array::types::TimestampMillisecondType;
    let col = batch.column_by_name("time")?;
    let ts = col.as_primitive_opt::<TimestampMillisecondType>()?;
    if ts.is_empty() {
        return None;
    }
    let vals = ts.values();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for v in vals.iter() {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    Some((lo, hi))
}
