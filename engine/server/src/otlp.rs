//! OTLP ingest: OTLP/HTTP (`POST /v1/metrics`, `/v1/logs`, protobuf or JSON, gzip) on the API
//! listener and on an optional dedicated listener (`[otlp] http_listen`, conventionally
//! `:4318`), and OTLP/gRPC (`MetricsService/Export`, `LogsService/Export`) on
//! `[otlp] grpc_listen` (conventionally `:4317`).
//!
//! Both transports share [`Otlp::export_metrics`] / [`Otlp::export_logs`]: decode (in
//! `aiops_connectors::sources::otlp`), append through the [`Ingestor`] (so every check and
//! transformation of the ingest path applies), and answer only once the log accepted the rows.
//! Points that cannot be stored are reported in OTLP's partial-success answer while the rest is
//! stored; a malformed body is refused whole (HTTP 400 with a `google.rpc.Status`, gRPC
//! `INVALID_ARGUMENT`); backpressure is HTTP 429/503 with `Retry-After` or gRPC
//! `RESOURCE_EXHAUSTED`/`UNAVAILABLE`, which OTel exporters retry.
//!
//! Delta sums and histograms become running totals per series (see
//! `aiops_connectors::sources::otlp::delta`): requests carrying delta points are mapped and
//! appended one at a time, and the totals advance only when the log accepted the request and it
//! was not a duplicate of one already stored.
//!
//! Auth: on the API listener the ingest routes' rules (an `ingest` token or higher). On the
//! dedicated listeners the same rule is checked here: `authorization: Bearer <token>` (header
//! or gRPC metadata); without a token only while `auth.open_ingest_on_loopback` holds and the
//! listener is on a loopback address.

use crate::auth::HttpAuth;
use crate::ingest::{IdBasis, IngestError, Ingestor};
use crate::metrics::Metrics;
use aiops_connectors::sources::otlp::proto::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use aiops_connectors::sources::otlp::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use aiops_connectors::sources::otlp::proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use aiops_connectors::sources::otlp::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use aiops_connectors::sources::otlp::status::code;
use aiops_connectors::sources::otlp::{
    Encoding, Mapped, OtlpDecoder, RpcStatus, Signal, decompress, encoding, has_delta, parse_logs,
    parse_metrics,
};
use aiops_connectors::sources::{DecodeError, PushRequest};
use aiops_read::auth::Role;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message as _;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// `[otlp]` settings. The OTLP/HTTP routes of the API listener are always served; the dedicated
/// listeners are off unless configured.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpSettings {
    /// A dedicated OTLP/HTTP listener (`/v1/metrics`, `/v1/logs`), e.g. `"0.0.0.0:4318"`.
    /// Default off (the API listener serves the same routes).
    pub http_listen: Option<SocketAddr>,
    /// The OTLP/gRPC listener, e.g. `"0.0.0.0:4317"`. Default off.
    pub grpc_listen: Option<SocketAddr>,
    /// Most delta series whose running totals are kept; past it the half least recently
    /// updated are forgotten (their next point starts them again, seen as a counter reset).
    /// Default 100000.
    pub max_delta_series: usize,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        OtlpSettings {
            http_listen: None,
            grpc_listen: None,
            max_delta_series: aiops_connectors::sources::otlp::delta::DEFAULT_MAX_DELTA_SERIES,
        }
    }
}

/// The OTLP/HTTP paths (besides the registry's `/api/otlp/v1/*`), served on the API listener
/// and the dedicated one; ingest routes for auth.
pub const HTTP_PATHS: [&str; 2] = ["/v1/metrics", "/v1/logs"];

/// Why an export was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The body is malformed; the sender must fix it (not retried).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The log did not accept the rows (backpressure is retryable).
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// What both transports share: the decoders (with the delta totals), the ingestor, limits.
pub struct Otlp {
    ingestor: Arc<Ingestor>,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
    metrics_decoder: OtlpDecoder,
    logs_decoder: OtlpDecoder,
    /// Requests with delta points are mapped and appended one at a time (see the module doc).
    delta_gate: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Otlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otlp")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("delta_series", &self.metrics_decoder.delta_series())
            .finish_non_exhaustive()
    }
}

/// The id basis of a request: its content (a retried body is stored once), unless some point
/// had no time and was stamped with the ingest time.
fn basis<'a>(m: &Mapped, body: &'a [u8]) -> IdBasis<'a> {
    if m.timeless {
        IdBasis::Unique
    } else {
        IdBasis::Content(body)
    }
}

impl Otlp {
    /// OTLP ingest appending through `ingestor`; `max_body_bytes` bounds HTTP bodies
    /// (`http.max_body_bytes`).
    pub fn new(
        ingestor: Arc<Ingestor>,
        metrics: Arc<Metrics>,
        settings: &OtlpSettings,
        max_body_bytes: usize,
    ) -> Arc<Otlp> {
        Arc::new(Otlp {
            ingestor,
            metrics,
            max_body_bytes,
            metrics_decoder: OtlpDecoder::metrics(settings.max_delta_series),
            logs_decoder: OtlpDecoder::logs(),
            delta_gate: tokio::sync::Mutex::new(()),
        })
    }

    /// The decoded-size limit of a request (`ingest.max_decoded_bytes`).
    fn max_decoded(&self) -> usize {
        self.ingestor.limits(self.max_body_bytes).max_decoded_bytes
    }

    /// Stores a metrics request; `body` (the request as received, uncompressed or not)
    /// identifies a retry.
    ///
    /// # Errors
    /// [`ExportError`].
    pub async fn export_metrics(
        &self,
        req: &ExportMetricsServiceRequest,
        body: &[u8],
    ) -> Result<ExportMetricsServiceResponse, ExportError> {
        let limits = self.ingestor.limits(self.max_body_bytes);
        let _gate = if has_delta(req) {
            Some(self.delta_gate.lock().await)
        } else {
            None
        };
        let (mapped, stage) =
            self.metrics_decoder
                .map_metrics(req, crate::clock::now_ms(), &limits)?;
        let acc = self
            .ingestor
            .ingest(mapped.batches.clone(), basis(&mapped, body))
            .await?;
        // A request the log already held (a retry of a stored one) does not count twice.
        if acc.messages == 0 || acc.duplicates < acc.messages {
            self.metrics_decoder.commit(stage);
        }
        if mapped.rejected > 0 {
            self.metrics.rejected("/v1/metrics", "partial");
        }
        Ok(ExportMetricsServiceResponse {
            partial_success: mapped.rejection_message("data points").map(|m| {
                ExportMetricsPartialSuccess {
                    rejected_data_points: i64::try_from(mapped.rejected).unwrap_or(i64::MAX),
                    error_message: m,
                }
            }),
        })
    }

    /// Stores a logs request; `body` identifies a retry.
    ///
    /// # Errors
    /// [`ExportError`].
    pub async fn export_logs(
        &self,
        req: &ExportLogsServiceRequest,
        body: &[u8],
    ) -> Result<ExportLogsServiceResponse, ExportError> {
        let limits = self.ingestor.limits(self.max_body_bytes);
        let mapped = self
            .logs_decoder
            .map_logs(req, crate::clock::now_ms(), &limits)?;
        self.ingestor
            .ingest(mapped.batches.clone(), basis(&mapped, body))
            .await?;
        if mapped.rejected > 0 {
            self.metrics.rejected("/v1/logs", "partial");
        }
        Ok(ExportLogsServiceResponse {
            partial_success: mapped.rejection_message("log records").map(|m| {
                ExportLogsPartialSuccess {
                    rejected_log_records: i64::try_from(mapped.rejected).unwrap_or(i64::MAX),
                    error_message: m,
                }
            }),
        })
    }

    /// Answers one OTLP/HTTP request (either listener).
    pub async fn http_export(&self, signal: Signal, headers: &HeaderMap, body: Body) -> Response {
        let endpoint = match signal {
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        };
        let header = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
        let content_type = header(header::CONTENT_TYPE);
        // The answer's encoding before the body is read: JSON only for a JSON request.
        let answer_enc = if content_type.is_some_and(|c| c.contains("json")) {
            Encoding::Json
        } else {
            Encoding::Protobuf
        };
        let refuse = |status: StatusCode, reason: &'static str, message: String| {
            self.metrics.rejected(endpoint, reason);
            status_response(status, answer_enc, &message)
        };
        let limit = self.max_body_bytes;
        let body = match axum::body::to_bytes(body, limit).await {
            Ok(b) => b,
            Err(e) => {
                let too_large = e.to_string().contains("length limit")
                    || std::error::Error::source(&e)
                        .is_some_and(|s| s.to_string().contains("length limit"));
                return if too_large {
                    refuse(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!(
                            "request body exceeds the limit of {limit} bytes (http.max_body_bytes)"
                        ),
                    )
                } else {
                    refuse(
                        StatusCode::BAD_REQUEST,
                        "body_read",
                        format!("could not read request body: {e}"),
                    )
                };
            }
        };
        let req = PushRequest {
            content_type,
            content_encoding: header(header::CONTENT_ENCODING),
            now_ms: crate::clock::now_ms(),
            limits: self.ingestor.limits(limit),
        };
        let decoded = encoding(&req, &body).and_then(|enc| {
            let raw = decompress(&body, req.content_encoding, self.max_decoded())?;
            Ok((enc, raw))
        });
        let (enc, raw) = match decoded {
            Ok(x) => x,
            Err(e) => return self.decode_refusal(endpoint, answer_enc, e.bounded()),
        };
        let answer = match signal {
            Signal::Metrics => match parse_metrics(&raw, enc, &req.limits) {
                Ok(r) => self
                    .export_metrics(&r, &body)
                    .await
                    .map(|resp| encode_answer(&resp, enc)),
                Err(e) => Err(ExportError::Decode(e)),
            },
            Signal::Logs => match parse_logs(&raw, enc, &req.limits) {
                Ok(r) => self
                    .export_logs(&r, &body)
                    .await
                    .map(|resp| encode_answer(&resp, enc)),
                Err(e) => Err(ExportError::Decode(e)),
            },
        };
        match answer {
            Ok(bytes) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, enc.content_type())],
                bytes,
            )
                .into_response(),
            Err(ExportError::Decode(e)) => self.decode_refusal(endpoint, enc, e.bounded()),
            Err(ExportError::Ingest(e)) => {
                self.metrics.rejected(endpoint, e.reason());
                let status = match &e {
                    IngestError::Lagging(_) => StatusCode::TOO_MANY_REQUESTS,
                    e if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
                    _ => {
                        tracing::error!(endpoint, error = %e, "otlp ingest failed");
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                };
                let mut resp = status_response(status, enc, &e.to_string());
                if e.is_retryable() {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                resp
            }
        }
    }

    fn decode_refusal(&self, endpoint: &'static str, enc: Encoding, e: DecodeError) -> Response {
        let reason = e.reason();
        self.metrics.rejected(endpoint, reason);
        let status = match reason {
            "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "internal" => {
                tracing::error!(endpoint, error = %e, "otlp decoder bug");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        status_response(status, enc, &e.to_string())
    }
}

/// An OTLP answer message in the request's encoding (OTLP/JSON for JSON).
fn encode_answer<M: prost::Message + ToJson>(m: &M, enc: Encoding) -> Vec<u8> {
    match enc {
        Encoding::Protobuf => m.encode_to_vec(),
        Encoding::Json => m.to_json().to_string().into_bytes(),
    }
}

/// The OTLP/JSON form of an export answer.
trait ToJson {
    fn to_json(&self) -> serde_json::Value;
}

impl ToJson for ExportMetricsServiceResponse {
    fn to_json(&self) -> serde_json::Value {
        match &self.partial_success {
            None => serde_json::json!({}),
            Some(p) => serde_json::json!({"partialSuccess": {
                "rejectedDataPoints": p.rejected_data_points.to_string(),
                "errorMessage": p.error_message,
            }}),
        }
    }
}

impl ToJson for ExportLogsServiceResponse {
    fn to_json(&self) -> serde_json::Value {
        match &self.partial_success {
            None => serde_json::json!({}),
            Some(p) => serde_json::json!({"partialSuccess": {
                "rejectedLogRecords": p.rejected_log_records.to_string(),
                "errorMessage": p.error_message,
            }}),
        }
    }
}

/// An error answer: `google.rpc.Status` in `enc`, with the gRPC code of the HTTP status.
fn status_response(status: StatusCode, enc: Encoding, message: &str) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => code::UNAUTHENTICATED,
        StatusCode::FORBIDDEN => code::PERMISSION_DENIED,
        StatusCode::TOO_MANY_REQUESTS => code::RESOURCE_EXHAUSTED,
        StatusCode::SERVICE_UNAVAILABLE => code::UNAVAILABLE,
        StatusCode::INTERNAL_SERVER_ERROR => code::INTERNAL,
        _ => code::INVALID_ARGUMENT,
    };
    let body = RpcStatus {
        code,
        message: message.to_string(),
    }
    .encode_as(enc);
    let mut resp = (status, [(header::CONTENT_TYPE, enc.content_type())], body).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"aiops\""),
        );
    }
    resp
}

/// Why a request on a dedicated listener is refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No token, or not a valid one.
    Unauthenticated(String),
    /// A valid token without the `ingest` role.
    Forbidden(String),
}

/// The ingest rule of the API listener, for the dedicated listeners (see the module doc).
async fn authorize(auth: &HttpAuth, bearer: Option<&str>, loopback: bool) -> Result<(), Refusal> {
    let bearer = bearer.map(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim()
    });
    let role = match bearer {
        Some(t) => match auth.tokens.verify_async(t).await {
            Some(r) => Some(r.role),
            None => {
                return Err(Refusal::Unauthenticated(
                    "the bearer token is not a valid aiops API token".into(),
                ));
            }
        },
        None if auth.settings.open_ingest_on_loopback && loopback => return Ok(()),
        None => auth.settings.anonymous_role,
    };
    match role {
        None => Err(Refusal::Unauthenticated(
            "OTLP export needs a bearer token with role ingest (authorization: Bearer <token>)"
                .into(),
        )),
        Some(r) if !r.allows(Role::Ingest) => Err(Refusal::Forbidden(format!(
            "OTLP export needs role ingest; the token has role {}",
            r.as_str()
        ))),
        Some(_) => Ok(()),
    }
}

/// State of the dedicated OTLP/HTTP listener.
#[derive(Clone)]
struct Dedicated {
    otlp: Arc<Otlp>,
    auth: Arc<HttpAuth>,
    loopback: bool,
}

async fn dedicated(st: &Dedicated, signal: Signal, headers: HeaderMap, body: Body) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let enc = if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"))
    {
        Encoding::Json
    } else {
        Encoding::Protobuf
    };
    match authorize(&st.auth, bearer, st.loopback).await {
        Ok(()) => st.otlp.http_export(signal, &headers, body).await,
        Err(Refusal::Unauthenticated(m)) => {
            st.otlp.metrics.rejected("otlp", "unauthorized");
            status_response(StatusCode::UNAUTHORIZED, enc, &m)
        }
        Err(Refusal::Forbidden(m)) => {
            st.otlp.metrics.rejected("otlp", "forbidden");
            status_response(StatusCode::FORBIDDEN, enc, &m)
        }
    }
}

/// The router of the dedicated OTLP/HTTP listener (listening on a loopback address when
/// `loopback`).
pub fn http_router(otlp: Arc<Otlp>, auth: Arc<HttpAuth>, loopback: bool) -> Router {
    let st = Dedicated {
        otlp,
        auth,
        loopback,
    };
    Router::new()
        .route(
            "/v1/metrics",
            post(
                |State(st): State<Dedicated>, h: HeaderMap, b: Body| async move {
                    dedicated(&st, Signal::Metrics, h, b).await
                },
            ),
        )
        .route(
            "/v1/logs",
            post(
                |State(st): State<Dedicated>, h: HeaderMap, b: Body| async move {
                    dedicated(&st, Signal::Logs, h, b).await
                },
            ),
        )
        .with_state(st)
}

/// The gRPC services.
#[derive(Clone)]
struct Grpc {
    otlp: Arc<Otlp>,
    auth: Arc<HttpAuth>,
    loopback: bool,
}

impl Grpc {
    async fn authorize<T>(&self, req: &tonic::Request<T>) -> Result<(), tonic::Status> {
        let bearer = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        authorize(&self.auth, bearer, self.loopback)
            .await
            .map_err(|r| {
                self.otlp.metrics.rejected("otlp_grpc", "unauthorized");
                match r {
                    Refusal::Unauthenticated(m) => tonic::Status::unauthenticated(m),
                    Refusal::Forbidden(m) => tonic::Status::permission_denied(m),
                }
            })
    }

    fn refusal(&self, endpoint: &'static str, e: ExportError) -> tonic::Status {
        match e {
            ExportError::Decode(e) => {
                let e = e.bounded();
                self.otlp.metrics.rejected(endpoint, e.reason());
                tonic::Status::invalid_argument(e.to_string())
            }
            ExportError::Ingest(e) => {
                self.otlp.metrics.rejected(endpoint, e.reason());
                match &e {
                    IngestError::Lagging(_) => tonic::Status::resource_exhausted(e.to_string()),
                    e if e.is_retryable() => tonic::Status::unavailable(e.to_string()),
                    _ => {
                        tracing::error!(endpoint, error = %e, "otlp ingest failed");
                        tonic::Status::internal(e.to_string())
                    }
                }
            }
        }
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        // The message's bytes identify a retry (tonic hands over the decoded message).
        let body = req.encode_to_vec();
        self.otlp
            .export_metrics(&req, &body)
            .await
            .map(tonic::Response::new)
            .map_err(|e| self.refusal("otlp_grpc_metrics", e))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let body = req.encode_to_vec();
        self.otlp
            .export_logs(&req, &body)
            .await
            .map(tonic::Response::new)
            .map_err(|e| self.refusal("otlp_grpc_logs", e))
    }
}

/// Serves OTLP/gRPC on `listener` until `stop` turns true; gzip-compressed requests are read,
/// messages up to `ingest.max_decoded_bytes` (decompressed) are accepted.
///
/// # Errors
/// The transport's error (the listener failed).
pub async fn serve_grpc(
    listener: tokio::net::TcpListener,
    otlp: Arc<Otlp>,
    auth: Arc<HttpAuth>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let loopback = listener
        .local_addr()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false);
    let max = otlp.max_decoded();
    let svc = Grpc {
        otlp,
        auth,
        loopback,
    };
    let gzip = tonic::codec::CompressionEncoding::Gzip;
    let incoming = Box::pin(tokio_stream_of(listener));
    tonic::transport::Server::builder()
        .add_service(
            MetricsServiceServer::new(svc.clone())
                .accept_compressed(gzip)
                .send_compressed(gzip)
                .max_decoding_message_size(max),
        )
        .add_service(
            LogsServiceServer::new(svc)
                .accept_compressed(gzip)
                .send_compressed(gzip)
                .max_decoding_message_size(max),
        )
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}

/// The accepted connections of a listener as the stream tonic serves.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| {
            // OTLP requests are small and latency matters more than packet count.
            let _ = s.set_nodelay(true);
            s
        });
        Some((r, l))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_parse_and_default_off() {
        let s: OtlpSettings = toml::from_str("").unwrap();
        assert_eq!(s, OtlpSettings::default());
        assert!(s.http_listen.is_none() && s.grpc_listen.is_none());
        let s: OtlpSettings =
            toml::from_str("http_listen = \"0.0.0.0:4318\"\ngrpc_listen = \"127.0.0.1:4317\"")
                .unwrap();
        assert_eq!(s.http_listen.map(|a| a.port()), Some(4318));
        assert!(toml::from_str::<OtlpSettings>("grpc = \"x\"").is_err());
    }

    #[test]
    fn error_bodies_are_google_rpc_status_in_the_request_encoding() {
        let r = status_response(StatusCode::BAD_REQUEST, Encoding::Json, "bad field");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let s = RpcStatus {
            code: code::INVALID_ARGUMENT,
            message: "m".into(),
        };
        let back = RpcStatus::decode(s.encode_as(Encoding::Protobuf).as_slice()).unwrap();
        assert_eq!(back, s);
        let json: serde_json::Value = serde_json::from_slice(&s.encode_as(Encoding::Json)).unwrap();
        assert_eq!(json["code"], 3);
    }
}
