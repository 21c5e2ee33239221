//! The two kinds of source and one folder per connector.
//!
//! A [`PushDecoder`] turns the body of a request pushed to aiops (remote_write, JSON, webhooks)
//! into batches; the engine serves the HTTP route and appends the batches. A [`PullSource`]
//! produces batches by itself (scrapes, the demo generator); the engine drives it.

use aiops_schemas::Kind;
use aiops_schemas::arrow_array::RecordBatch;
use async_trait::async_trait;

pub mod alertmanager;
pub mod am_api;
pub mod clickhouse;
pub mod cloudwatch;
pub mod cloudwatch_query;
pub mod datadog;
pub mod datadog_query;
pub mod demo;
pub mod grafana;
pub mod http_json;
pub mod json;
pub mod json_alerts;
pub mod otlp;
pub mod prometheus_query;
pub mod range;
pub mod remote_write;
pub mod scrape;
pub mod sql;
pub mod syslog;
pub mod validate;

pub use crate::error::{DecodeError, SourceError};
pub use validate::IngestLimits;

/// A decoded batch ready for the log: one kind, one Arrow batch of that kind's schema, and the
/// batch's event-time range.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// The kind of every row.
    pub kind: Kind,
    /// The connector that produced it (`remote_write`, `alertmanager`, `demo`, …).
    pub source: &'static str,
    /// The rows.
    pub batch: RecordBatch,
    /// Smallest and largest event time, Unix ms; `None` for an empty batch.
    pub time_range: Option<(i64, i64)>,
}

impl SourceBatch {
    /// The one batch of a decoded request, from a builder's result (none when nothing was built).
    ///
    /// # Errors
    /// [`DecodeError::Internal`] if the builder failed: a bug, not bad input.
    pub fn single(
        kind: Kind,
        source: &'static str,
        time_range: Option<(i64, i64)>,
        built: Result<RecordBatch, aiops_schemas::arrow_schema::ArrowError>,
    ) -> Result<Vec<SourceBatch>, DecodeError> {
        let batch = built.map_err(|e| DecodeError::Internal(e.to_string()))?;
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        Ok(vec![SourceBatch {
            kind,
            source,
            batch,
            time_range,
        }])
    }
}

/// What a decoder may look at besides the body.
#[derive(Debug, Clone, Copy)]
pub struct PushRequest<'a> {
    /// `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// `Content-Encoding` header, if any.
    pub content_encoding: Option<&'a str>,
    /// Ingest time, Unix ms: the time of events that carry none, and the centre of the
    /// accepted time window.
    pub now_ms: i64,
    /// What the request may hold (time window, labels, decoded size); see
    /// [`validate`](crate::sources::validate).
    pub limits: IngestLimits,
}

/// Decodes one request body pushed to aiops into batches.
///
/// MUST reject the whole body (return an error, no batches) when any part of it is malformed,
/// so that a request is either stored whole or not at all, and MUST apply the shared checks of
/// [`validate`] (media, times, labels, event types) to everything it stores.
pub trait PushDecoder: Send + Sync + 'static {
    /// The connector name, used as the batch source and in metrics.
    fn name(&self) -> &'static str;

    /// Decodes `body`.
    ///
    /// # Errors
    /// [`DecodeError`] naming what is wrong.
    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError>;

    /// [`PushDecoder::decode`] as the HTTP edge calls it: errors carry at most a bounded,
    /// escaped excerpt of what the request held ([`DecodeError::bounded`]).
    ///
    /// # Errors
    /// As [`PushDecoder::decode`].
    fn decode_bounded(
        &self,
        body: &[u8],
        req: &PushRequest<'_>,
    ) -> Result<Vec<SourceBatch>, DecodeError> {
        self.decode(body, req).map_err(DecodeError::bounded)
    }
}

/// A source that produces batches by itself (scrapes, pulls, the demo generator).
///
/// Cancellation: dropping the future of `next_batch` must leave the source usable; the engine
/// drops it at shutdown.
#[async_trait]
pub trait PullSource: Send + 'static {
    /// The connector name, used as the batch source and in logs.
    fn name(&self) -> &'static str;

    /// Waits for and returns the next batches; `Ok(None)` when the source has finished.
    ///
    /// # Errors
    /// [`SourceError::Unavailable`] for a failure a retry may fix; others are permanent.
    async fn next_batch(&mut self) -> Result<Option<Vec<SourceBatch>>, SourceError>;
}
