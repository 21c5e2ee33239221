//! The push endpoints: one route per push endpoint of the connector registry (plus `POST
//! /api/logs`, the same as `/api/ingest/logs`). A request is answered 2xx only after the log
//! accepted its batches; backpressure is 429 or 503 with `Retry-After`.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::clock;
use crate::ingest::{IdBasis, IngestError, Ingestor};
use crate::metrics::Metrics;
use aiops_connectors::registry::{PushEndpoint, push_endpoints};
use aiops_connectors::sources::PushRequest;
use aiops_connectors::sources::otlp::Signal;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::json;
use std::sync::Arc;

/// What the push handlers need.
#[derive(Debug, Clone)]
pub struct IngestState {
    /// Appends batches to the log.
    pub ingestor: Arc<Ingestor>,
    /// Self-metrics (rejections by reason).
    pub metrics: Arc<Metrics>,
    /// Largest accepted body, bytes (`http.max_body_bytes`).
    pub max_body_bytes: usize,
    /// OTLP/HTTP (`/v1/*`, `/api/otlp/v1/*`), answered in OTLP's protocol.
    pub otlp: Arc<crate::otlp::Otlp>,
}

/// Adds one route per push endpoint.
pub fn routes(mut r: Router<AppState>) -> Router<AppState> {
    let mut eps: Vec<(&'static str, PushEndpoint)> =
        push_endpoints().into_iter().map(|e| (e.path, e)).collect();
    // `POST /api/logs` submits logs like `/api/ingest/logs`.
    if let Some(logs) = push_endpoints()
        .into_iter()
        .find(|e| e.path == "/api/ingest/logs")
    {
        eps.push(("/api/logs", logs));
    }
    // OTLP answers in its own protocol (export responses, partial success, google.rpc.Status):
    // its registry paths and the standard `/v1/*` paths go to `crate::otlp`.
    let otlp_paths: Vec<(&'static str, Signal)> = eps
        .iter()
        .filter_map(|(p, e)| match e.decoder.name() {
            "otlp_metrics" => Some((*p, Signal::Metrics)),
            "otlp_logs" => Some((*p, Signal::Logs)),
            _ => None,
        })
        .chain([
            (crate::otlp::HTTP_PATHS[0], Signal::Metrics),
            (crate::otlp::HTTP_PATHS[1], Signal::Logs),
        ])
        .collect();
    eps.retain(|(_, e)| !e.decoder.name().starts_with("otlp_"));
    for (path, signal) in otlp_paths {
        r = r.route(
            path,
            post(
                move |State(st): State<IngestState>, headers: HeaderMap, body: Body| async move {
                    st.otlp.http_export(signal, &headers, body).await
                },
            ),
        );
    }
    for (path, ep) in eps {
        let ep = Arc::new(ep);
        r = r.route(
            path,
            post(
                move |State(st): State<IngestState>, headers: HeaderMap, body: Body| {
                    let ep = ep.clone();
                    async move { push(st, &ep, headers, body).await }
                },
            ),
        );
    }
    r
}

/// A refused push: `{"error", "reason"}`, with `Retry-After: 1` when it is backpressure.
fn refused(status: StatusCode, reason: &str, message: String) -> ApiError {
    ApiError::reason(status, reason, message).with_retry_hint()
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn push(st: IngestState, ep: &PushEndpoint, headers: HeaderMap, body: Body) -> ApiResult {
    let limit = st.max_body_bytes;
    let reject = |reason: &'static str| st.metrics.rejected(ep.path, reason);
    let declared =
        header_str(&headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        reject("too_large");
        return Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "request body of {} bytes exceeds the limit of {limit} bytes (http.max_body_bytes)",
                declared.unwrap_or(0)
            ),
        ));
    }
    let body = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit");
        if too_large {
            reject("too_large");
            refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body exceeds the limit of {limit} bytes (http.max_body_bytes)"),
            )
        } else {
            reject("body_read");
            refused(
                StatusCode::BAD_REQUEST,
                "body_read",
                format!("could not read request body: {e}"),
            )
        }
    })?;
    let req = PushRequest {
        content_type: header_str(&headers, header::CONTENT_TYPE),
        content_encoding: header_str(&headers, header::CONTENT_ENCODING),
        now_ms: clock::now_ms(),
        limits: st.ingestor.limits(limit),
    };
    // A header that is not visible ASCII would otherwise be treated as absent, losing the
    // client's retry safety without telling it.
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if k.len() <= 256 => Some(k),
        Some(_) => {
            reject("bad_idempotency_key");
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "bad_idempotency_key",
                "header Idempotency-Key must be at most 256 visible ASCII characters".into(),
            ));
        }
    };
    let batches = ep.decoder.decode_bounded(&body, &req).map_err(|e| {
        let reason = e.reason();
        reject(reason);
        let status = match reason {
            "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "internal" => {
                tracing::error!(endpoint = ep.path, error = %e, "decoder bug");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        refused(status, reason, e.to_string())
    })?;
    let basis = match key {
        Some(k) if !k.is_empty() => IdBasis::KeyedBody {
            key: k,
            body: &body,
        },
        // JSON metrics, logs and events without `time` are stamped with the ingest time, so two
        // equal bodies can be two real events; Prometheus re-sends a firing alert to
        // `/api/v2/alerts` as news (it is still firing). Webhooks and `/api/alerts` (whose doc
        // promises it) are recognized by content: an equal body is a retried delivery.
        _ if ep.decoder.name().starts_with("json") || ep.decoder.name() == "alertmanager_api" => {
            IdBasis::Unique
        }
        _ => IdBasis::Content(&body),
    };
    let acc = st.ingestor.ingest(batches, basis).await.map_err(|e| {
        reject(e.reason());
        let status = match &e {
            IngestError::KeyConflict { .. } => StatusCode::CONFLICT,
            IngestError::Lagging(_) => StatusCode::TOO_MANY_REQUESTS,
            e if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(endpoint = ep.path, error = %e, "ingest failed");
        }
        refused(status, e.reason(), e.to_string())
    })?;
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "accepted": acc.events,
            "messages": acc.messages,
            "duplicates": acc.duplicates,
        })),
    )
        .into_response())
}
