//! Query-style pull sources: systems that answer "what happened between `from` and `to`"
//! (Prometheus/VictoriaMetrics `query_range`, SQL databases, ClickHouse, HTTP JSON APIs,
//! CloudWatch, Datadog).
//!
//! A [`RangeSource`] only answers for a range; the engine's scheduler decides which ranges to
//! ask for (the next interval on schedule, or the missed ranges after an outage — backfill) and
//! derives the message ids from the source id and the range, so a range pulled twice (a retry, a
//! restart after `kill -9`) is stored once.

use crate::sources::{SourceBatch, SourceError};
use async_trait::async_trait;
use serde::Serialize;

/// What a `test` of a source found, without writing anything.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TestReport {
    /// The source answered (reachability and authentication passed).
    pub reachable: bool,
    /// Rows the sample range produced, per kind (`metrics`, `logs`, `events`).
    pub rows: std::collections::BTreeMap<String, u64>,
    /// The range sampled, Unix ms.
    pub sample_from_ms: i64,
    /// End of the sampled range (exclusive), Unix ms.
    pub sample_to_ms: i64,
    /// Up to a few example rows, as JSON, secrets redacted.
    pub examples: Vec<serde_json::Value>,
    /// Problems found (empty when all is well).
    pub problems: Vec<String>,
}

/// A source that answers for an event-time range.
#[async_trait]
pub trait RangeSource: Send + Sync + 'static {
    /// The connector name (`prometheus_query`, `postgres`, …), used as the batch source.
    fn name(&self) -> &'static str;

    /// How often the scheduler pulls the next range (also the range length on schedule).
    fn interval(&self) -> std::time::Duration;

    /// The longest range one call may be asked for; longer backfills are split into ranges of
    /// at most this length.
    fn max_range(&self) -> std::time::Duration;

    /// Everything in `[from_ms, to_ms)` (event time, Unix ms). Rows whose time falls outside the
    /// range are dropped by the caller, so a source never stores a row twice across ranges.
    ///
    /// # Errors
    /// [`SourceError::Unavailable`] for a failure a retry may fix (the range is asked again);
    /// others are permanent and shown on the source.
    async fn pull(&self, from_ms: i64, to_ms: i64) -> Result<Vec<SourceBatch>, SourceError>;

    /// Reachability, authentication and a sample of the last `interval`, writing nothing.
    ///
    /// # Errors
    /// [`SourceError`] when the source cannot even be asked.
    async fn test(&self, now_ms: i64) -> Result<TestReport, SourceError>;
}
