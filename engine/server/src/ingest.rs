//! Turns decoded source batches into log messages and appends them, with backpressure.
//!
//! A request is acknowledged only after the log accepted every message it produced (invariant 4).
//! When too many appends are in flight, or the log follower lags too far behind, the request is
//! refused with [`IngestError::Overloaded`] / [`IngestError::Lagging`] (503/429 + Retry-After):
//! never dropped. Message ids are derived from the request so a retried request is stored once.

use crate::clock;
use crate::metrics::Metrics;
use aiops_connectors::sources::SourceBatch;
use aiops_log::{AppendMessage, EventLog, LogError};
use aiops_schemas::arrow_array::RecordBatch;
use aiops_schemas::partition::{fnv1a, split_by_partition};
use aiops_schemas::{Envelope, encode};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
            IngestError::Encode(_) => "internal",
        }
    }

    /// Whether the client should retry later (answered 429/503 with Retry-After).
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Overloaded(_) | IngestError::Lagging(_) | IngestError::Timeout(_) => true,
            IngestError::Log(e) => e.is_retryable(),
            IngestError::Encode(_) => false,
        }
    }
}

/// How a request's message ids are derived.
#[derive(Debug, Clone, Copy)]
pub enum IdBasis<'a> {
    /// The client's `Idempotency-Key`: a retry with the same key is stored once.
    ClientKey(&'a str),
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
        let base = self.base_id(basis, first.source);
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
