//! The OTLP/HTTP body: media type, gzip, protobuf or JSON, then the mapping.

use super::delta::{DeltaStage, DeltaState};
use super::metrics::{Mapped, map_metrics};
use super::{json, logs::map_logs};
use crate::error::DecodeError;
use crate::sources::validate::{Accepts, check_media};
use crate::sources::{IngestLimits, PushDecoder, PushRequest, SourceBatch};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use std::borrow::Cow;
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};

/// What OTLP/HTTP senders send.
const ACCEPTS: Accepts = Accepts {
    types: &["application/x-protobuf", "application/json"],
    encodings: &["gzip"],
};

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    /// The `Content-Type` of answers in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// The encoding of a request: from `Content-Type`; without one, JSON if the body starts with
/// `{`, else protobuf.
///
/// # Errors
/// [`DecodeError::UnsupportedMediaType`] for another type or an encoding other than gzip.
pub fn encoding(req: &PushRequest<'_>, body: &[u8]) -> Result<Encoding, DecodeError> {
    Ok(match check_media(req, ACCEPTS)?.as_deref() {
        Some("application/json") => Encoding::Json,
        Some(_) => Encoding::Protobuf,
        None if body.trim_ascii_start().starts_with(b"{") => Encoding::Json,
        None => Encoding::Protobuf,
    })
}

/// The body without its `Content-Encoding: gzip`, refused past `limit` decompressed bytes
/// (read at most `limit + 1` bytes, so a gzip bomb costs nothing).
///
/// # Errors
/// [`DecodeError::Gzip`] for a body that is not gzip, [`DecodeError::TooLarge`] past the limit.
pub fn decompress<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    let gzip = content_encoding
        .is_some_and(|e| e.split(',').any(|e| e.trim().eq_ignore_ascii_case("gzip")));
    if !gzip {
        if body.len() > limit {
            return Err(DecodeError::TooLarge {
                size: body.len(),
                compressed: body.len(),
                ratio: 1,
                limit,
            });
        }
        return Ok(Cow::Borrowed(body));
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge {
            size: out.len(),
            compressed: body.len(),
            ratio: out.len() / body.len().max(1),
            limit,
        });
    }
    Ok(Cow::Owned(out))
}

/// The full name of the metrics request message, for errors.
const METRICS_MESSAGE: &str =
    "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest";
/// The full name of the logs request message, for errors.
const LOGS_MESSAGE: &str = "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest";

/// Decodes an uncompressed metrics body; a protobuf body is first checked against
/// `limits.max_series` data points (see [`bound`](super::bound)).
///
/// # Errors
/// [`DecodeError::Protobuf`] / [`DecodeError::Json`] and friends naming the problem.
pub fn parse_metrics(
    raw: &[u8],
    enc: Encoding,
    limits: &IngestLimits,
) -> Result<ExportMetricsServiceRequest, DecodeError> {
    match enc {
        Encoding::Protobuf => {
            super::bound::check(raw, super::bound::Root::Metrics, limits.max_series)?;
            ExportMetricsServiceRequest::decode(raw).map_err(|e| DecodeError::Protobuf {
                message: METRICS_MESSAGE,
                detail: e.to_string(),
            })
        }
        Encoding::Json => json::metrics_request(raw),
    }
}

/// Decodes an uncompressed logs body (bounded as [`parse_metrics`]).
///
/// # Errors
/// [`DecodeError::Protobuf`] / [`DecodeError::Json`] and friends naming the problem.
pub fn parse_logs(
    raw: &[u8],
    enc: Encoding,
    limits: &IngestLimits,
) -> Result<ExportLogsServiceRequest, DecodeError> {
    match enc {
        Encoding::Protobuf => {
            super::bound::check(raw, super::bound::Root::Logs, limits.max_series)?;
            ExportLogsServiceRequest::decode(raw).map_err(|e| DecodeError::Protobuf {
                message: LOGS_MESSAGE,
                detail: e.to_string(),
            })
        }
        Encoding::Json => json::logs_request(raw),
    }
}

/// Whether a metrics request has a delta sum or histogram (whose rows depend on the running
/// totals, so such requests are mapped one at a time).
pub fn has_delta(req: &ExportMetricsServiceRequest) -> bool {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    const DELTA: i32 = 1;
    req.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .any(|m| match &m.data {
            Some(Data::Sum(s)) => s.aggregation_temporality == DELTA,
            Some(Data::Histogram(h)) => h.aggregation_temporality == DELTA,
            Some(Data::ExponentialHistogram(h)) => h.aggregation_temporality == DELTA,
            _ => false,
        })
}

/// Which signal an OTLP endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `/v1/metrics`, `MetricsService/Export`.
    Metrics,
    /// `/v1/logs`, `LogsService/Export`.
    Logs,
}

/// The OTLP decoder of one signal, with the running totals of delta series.
///
/// The engine maps requests through [`OtlpDecoder::map_metrics`] and commits the staged delta
/// totals once the log accepted the rows. [`PushDecoder::decode`] (the registry's generic path,
/// used by the fuzz suite) cannot know whether its rows are stored, so it maps delta points on
/// top of the committed totals without committing (the same body decodes the same way every
/// time) and refuses the whole body if any point is invalid.
#[derive(Debug, Clone)]
pub struct OtlpDecoder {
    signal: Signal,
    delta: Arc<Mutex<DeltaState>>,
}

impl OtlpDecoder {
    /// The metrics decoder keeping at most `max_delta_series` delta series.
    pub fn metrics(max_delta_series: usize) -> OtlpDecoder {
        OtlpDecoder {
            signal: Signal::Metrics,
            delta: Arc::new(Mutex::new(DeltaState::new(max_delta_series))),
        }
    }

    /// The logs decoder.
    pub fn logs() -> OtlpDecoder {
        OtlpDecoder {
            signal: Signal::Logs,
            delta: Arc::new(Mutex::new(DeltaState::new(1))),
        }
    }

    /// Its signal.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Maps a metrics request; delta points are staged in the returned [`DeltaStage`] on top of
    /// the committed totals. The caller MUST map requests with delta points one at a time until
    /// their stage is committed or dropped (see [`has_delta`]), or two of them would start from
    /// the same totals.
    ///
    /// # Errors
    /// [`DecodeError::Internal`] only (a bug building the batch).
    pub fn map_metrics(
        &self,
        req: &ExportMetricsServiceRequest,
        now_ms: i64,
        limits: &IngestLimits,
    ) -> Result<(Mapped, DeltaStage), DecodeError> {
        let mut stage = DeltaStage::default();
        let base = self.delta.lock().unwrap_or_else(PoisonError::into_inner);
        let mapped = map_metrics(req, now_ms, limits, &base, &mut stage, self.name())?;
        Ok((mapped, stage))
    }

    /// Maps a logs request.
    ///
    /// # Errors
    /// [`DecodeError::Internal`] only (a bug building the batch).
    pub fn map_logs(
        &self,
        req: &ExportLogsServiceRequest,
        now_ms: i64,
        limits: &IngestLimits,
    ) -> Result<Mapped, DecodeError> {
        map_logs(req, now_ms, limits, self.name())
    }

    /// Makes staged delta totals the base of the next request (once the log accepted them).
    pub fn commit(&self, stage: DeltaStage) {
        if stage.is_empty() {
            return;
        }
        self.delta
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .commit(stage);
    }

    /// Delta series held.
    pub fn delta_series(&self) -> usize {
        self.delta
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Media type, gzip and parsing of an HTTP body, then the mapping.
    ///
    /// # Errors
    /// [`DecodeError`] for a body that cannot be read.
    pub fn decode_body(
        &self,
        body: &[u8],
        req: &PushRequest<'_>,
    ) -> Result<(Mapped, DeltaStage), DecodeError> {
        let enc = encoding(req, body)?;
        let raw = decompress(body, req.content_encoding, req.limits.max_decoded_bytes)?;
        match self.signal {
            Signal::Metrics => {
                let r = parse_metrics(&raw, enc, &req.limits)?;
                self.map_metrics(&r, req.now_ms, &req.limits)
            }
            Signal::Logs => {
                let r = parse_logs(&raw, enc, &req.limits)?;
                Ok((
                    self.map_logs(&r, req.now_ms, &req.limits)?,
                    DeltaStage::default(),
                ))
            }
        }
    }
}

impl PushDecoder for OtlpDecoder {
    fn name(&self) -> &'static str {
        match self.signal {
            Signal::Metrics => "otlp_metrics",
            Signal::Logs => "otlp_logs",
        }
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        // The staged delta totals are dropped, not committed (see the type's doc).
        let (mapped, _stage) = self.decode_body(body, req)?;
        if let Some(first) = mapped.first_error {
            return Err(DecodeError::InvalidValue {
                at: "body".into(),
                field: "(points)".into(),
                message: format!("{} rejected; first: {first}", mapped.rejected),
            });
        }
        Ok(mapped.batches)
    }
}
