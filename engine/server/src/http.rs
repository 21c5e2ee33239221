//! The HTTP API: one route per push endpoint in the connector registry, plus health, self-metrics
//! and log stats. Handlers answer 2xx only after the log accepted the request's batches.

use crate::clock;
use crate::ingest::{IdBasis, IngestError, Ingestor};
use crate::metrics::Metrics;
use aiops_connectors::registry::{PushEndpoint, push_endpoints};
use aiops_connectors::sources::PushRequest;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::sync::Arc;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Appends batches to the log.
    pub ingestor: Arc<Ingestor>,
    /// Self-metrics.
    pub metrics: Arc<Metrics>,
    /// Largest accepted body, bytes.
    pub max_body_bytes: usize,
    /// The running pipelines.
    pub pipelines: crate::pipelines::runner::InfoBoard,
    /// The alerting engine, when it runs in this process.
    pub alerting: Option<Arc<crate::alerting::processor::AlertingHandle>>,
    /// The template miner, when it runs in this process.
    pub templates: Option<Arc<aiops_runtime::templates::processor::TemplatesHandle>>,
    /// The workflow engine and its API, when it runs in this process.
    pub workflows: Option<Arc<crate::workflows::api::WorkflowsApi>>,
    /// The log (alerting commands are appended to it).
    pub log: Arc<dyn aiops_log::EventLog>,
    /// When the process started, Unix ms.
    pub started_ms: i64,
    /// Tokens, roles and rate limits.
    pub auth: Arc<crate::auth::HttpAuth>,
    /// The read side (queries), when it runs.
    pub read: Option<crate::read::ReadSide>,
    /// Grafana automation.
    pub grafana: Arc<crate::grafana::sync::GrafanaContext>,
    /// The pull sources (config and API).
    pub datasources: Arc<crate::datasources::DataSources>,
    /// Business metrics and alert rules as pipeline files.
    pub pipeline_files: Arc<crate::pipelines::api::PipelineFiles>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("alerting", &self.alerting)
            .finish_non_exhaustive()
    }
}

/// Largest body of a non-ingest API request.
pub const API_BODY_LIMIT: usize = 1 << 20;

/// The router with every endpoint of this build.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/api/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/log/stats", get(log_stats))
        .route("/api/pipelines", get(pipelines))
        .route("/api/logs/templates", get(log_templates));
    let mut eps: Vec<(&'static str, PushEndpoint)> =
        push_endpoints().into_iter().map(|e| (e.path, e)).collect();
    // `POST /api/logs` submits logs like `/api/ingest/logs`.
    if let Some(logs) = push_endpoints()
        .into_iter()
        .find(|e| e.path == "/api/ingest/logs")
    {
        eps.push(("/api/logs", logs));
    }
    for (path, ep) in eps {
        let ep = Arc::new(ep);
        r = r.route(
            path,
            post(
                move |State(st): State<AppState>, headers: HeaderMap, body: Body| {
                    let ep = ep.clone();
                    async move { push(st, &ep, headers, body).await }
                },
            ),
        );
    }
    let r = crate::datasources::routes(crate::pipelines::api::routes(crate::grafana::api::routes(
        crate::api::routes(crate::workflows::api::routes(crate::alerting::api::routes(
            r,
        ))),
    )));
    r.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::auth::layer,
    ))
    // API bodies (silences, workflows, queries) are small; ingest routes read their body with
    // their own limit (http.max_body_bytes).
    .layer(axum::extract::DefaultBodyLimit::max(API_BODY_LIMIT))
    .layer(axum::middleware::map_response(correlate))
    .with_state(state)
}

/// Header naming a failure inside aiops: the same id is in the engine's log line.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Every 500 answer is aiops' fault: it gets a correlation id (header, and `correlation_id` in
/// JSON bodies made by [`crate::api::err`]) and one error line in the log carrying the same id.
/// Handlers that made their own id (and logged it) keep theirs.
async fn correlate(mut resp: Response) -> Response {
    if resp.status() != StatusCode::INTERNAL_SERVER_ERROR
        || resp.headers().contains_key(CORRELATION_HEADER)
    {
        return resp;
    }
    let id = format!("{:016x}", rand::random::<u64>());
    tracing::error!(correlation_id = %id, status = resp.status().as_u16(), "request failed inside aiops");
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(CORRELATION_HEADER, v);
    }
    resp
}

fn error(status: StatusCode, reason: &str, message: String) -> Response {
    let mut resp = (
        status,
        axum::Json(json!({ "error": message, "reason": reason })),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn push(st: AppState, ep: &PushEndpoint, headers: HeaderMap, body: Body) -> Response {
    let limit = st.max_body_bytes;
    let declared =
        header_str(&headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        st.metrics.rejected(ep.path, "too_large");
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "request body of {} bytes exceeds the limit of {limit} bytes (http.max_body_bytes)",
                declared.unwrap_or(0)
            ),
        );
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            return if too_large {
                st.metrics.rejected(ep.path, "too_large");
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "request body exceeds the limit of {limit} bytes (http.max_body_bytes)"
                    ),
                )
            } else {
                st.metrics.rejected(ep.path, "body_read");
                error(
                    StatusCode::BAD_REQUEST,
                    "body_read",
                    format!("could not read request body: {e}"),
                )
            };
        }
    };
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
            st.metrics.rejected(ep.path, "bad_idempotency_key");
            return error(
                StatusCode::BAD_REQUEST,
                "bad_idempotency_key",
                "header Idempotency-Key must be at most 256 visible ASCII characters".into(),
            );
        }
    };
    let batches = match ep.decoder.decode_bounded(&body, &req) {
        Ok(b) => b,
        Err(e) => {
            let reason = e.reason();
            st.metrics.rejected(ep.path, reason);
            let status = match reason {
                "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
                "internal" => {
                    tracing::error!(endpoint = ep.path, error = %e, "decoder bug");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ => StatusCode::BAD_REQUEST,
            };
            return error(status, reason, e.to_string());
        }
    };
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
    match st.ingestor.ingest(batches, basis).await {
        Ok(acc) => (
            StatusCode::OK,
            axum::Json(json!({
                "accepted": acc.events,
                "messages": acc.messages,
                "duplicates": acc.duplicates,
            })),
        )
            .into_response(),
        Err(e) => {
            st.metrics.rejected(ep.path, e.reason());
            let status = match &e {
                IngestError::KeyConflict { .. } => StatusCode::CONFLICT,
                IngestError::Lagging(_) => StatusCode::TOO_MANY_REQUESTS,
                e if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!(endpoint = ep.path, error = %e, "ingest failed");
            }
            error(status, e.reason(), e.to_string())
        }
    }
}

async fn health(State(st): State<AppState>) -> Response {
    match st.ingestor.log().stats().await {
        Ok(s) => axum::Json(json!({
            "status": "ok",
            "log": s.backend,
            "durability": s.durability,
            "next_seq": s.next_seq,
            "consumer_lag": st.metrics.consumer_lag(),
        }))
        .into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "log_unavailable",
            e.to_string(),
        ),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render()
            + &pipeline_metrics(&st.pipelines.read())
            + &st
                .alerting
                .as_deref()
                .map(crate::alerting::api::metrics_text)
                .unwrap_or_default()
            + &st
                .workflows
                .as_deref()
                .map(crate::workflows::api::metrics_text)
                .unwrap_or_default()
            + &st
                .read
                .as_ref()
                .map(crate::read::ReadSide::metrics_text)
                .unwrap_or_default(),
    )
        .into_response()
}

/// A metric family of the pipelines: name, type, help, and the value of one pipeline.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::pipelines::runner::PipelineInfo) -> f64,
);

/// The pipelines' gauges and counters in the Prometheus text format.
fn pipeline_metrics(board: &crate::pipelines::runner::Board) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let families: [Family; 8] = [
        (
            "aiops_pipeline_rows_in_total",
            "counter",
            "Input rows a pipeline has read.",
            |p| p.status.counters.rows_in as f64,
        ),
        (
            "aiops_pipeline_rows_out_total",
            "counter",
            "Derived events a pipeline has emitted (all revisions).",
            |p| p.status.counters.rows_out as f64,
        ),
        (
            "aiops_pipeline_late_rows_total",
            "counter",
            "Rows beyond the allowed lateness, sent to aiops.late.<pipeline>.",
            |p| p.status.counters.late_rows as f64,
        ),
        (
            "aiops_pipeline_revisions_total",
            "counter",
            "Window results emitted again after late rows changed them.",
            |p| p.status.counters.revisions as f64,
        ),
        (
            "aiops_pipeline_watermark_seconds",
            "gauge",
            "Event-time watermark of a pipeline, Unix seconds.",
            |p| {
                p.status
                    .watermark_ms
                    .map_or(f64::NAN, |w| w as f64 / 1000.0)
            },
        ),
        (
            "aiops_pipeline_lag_messages",
            "gauge",
            "Log messages appended after a pipeline's position.",
            |p| p.lag as f64,
        ),
        (
            "aiops_pipeline_groups",
            "gauge",
            "Groups held across a pipeline's open windows.",
            |p| p.status.groups as f64,
        ),
        (
            "aiops_pipeline_state_bytes",
            "gauge",
            "Bytes of aggregation state a pipeline holds.",
            |p| p.status.state_bytes as f64,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for p in &board.pipelines {
            let _ = writeln!(out, "{name}{{pipeline=\"{}\"}} {}", p.name, value(p));
        }
    }
    let _ = writeln!(
        out,
        "# HELP aiops_pipeline_refused_files Problems of the last refused change of the pipeline directory.\n# TYPE aiops_pipeline_refused_files gauge\naiops_pipeline_refused_files {}",
        board.refused.len()
    );
    out
}

async fn log_stats(State(st): State<AppState>) -> Response {
    match st.ingestor.log().stats().await {
        Ok(s) => axum::Json(s).into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "log_unavailable",
            e.to_string(),
        ),
    }
}

/// Query of `GET /api/logs/templates`.
#[derive(Debug, serde::Deserialize)]
struct TemplatesQuery {
    /// Only this service's templates.
    service: Option<String>,
    /// At most this many templates per service, most frequent first (default 1000).
    limit: Option<usize>,
}

/// `GET /api/logs/templates[?service=S&limit=N]`: the template table per service — id,
/// template, count, first and last seen — most frequent first.
async fn log_templates(
    State(st): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<TemplatesQuery>,
) -> Response {
    let Some(h) = &st.templates else {
        return error(
            StatusCode::NOT_FOUND,
            "disabled",
            "template mining is not running in this process ([templates] enabled = false)".into(),
        );
    };
    let miner = h.miner.read();
    let limit = q.limit.unwrap_or(1000);
    let mut services = serde_json::Map::new();
    for s in miner.services() {
        if q.service.as_deref().is_some_and(|want| want != s) {
            continue;
        }
        let Some(d) = miner.drain(s) else { continue };
        let mut ts: Vec<_> = d.templates().collect();
        ts.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        let rows: Vec<serde_json::Value> = ts
            .iter()
            .take(limit)
            .map(|t| {
                json!({
                    "id": t.id.to_string(),
                    "template": t.template,
                    "count": t.count,
                    "first_seen_ms": t.first_seen,
                    "last_seen_ms": t.last_seen,
                })
            })
            .collect();
        services.insert(s.to_string(), json!({ "templates": ts.len(), "top": rows }));
    }
    let (records, late) = miner.records();
    axum::Json(json!({
        "position": h.progress.position(),
        "records": records,
        "late_records": late,
        "watermark_ms": miner.watermark_ms(),
        "services": services,
    }))
    .into_response()
}

/// `GET /api/pipelines`: every running pipeline with its state, watermark, lag and rows/s, and
/// the problems of the last refused change of the pipeline directory.
async fn pipelines(State(st): State<AppState>) -> Response {
    let board = st.pipelines.read().clone();
    axum::Json(board).into_response()
}
