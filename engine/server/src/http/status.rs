//! What the process reports about itself: health, self-metrics in the Prometheus text format,
//! log stats, the running pipelines and the mined log templates.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::alerting::processor::AlertingHandle;
use crate::metrics::Metrics;
use crate::workflows::service::WorkflowsService;
use aiops_runtime::templates::processor::TemplatesHandle;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

/// What the status handlers read.
#[derive(Clone)]
pub struct StatusState {
    /// The log (health, stats).
    pub log: Arc<dyn aiops_log::EventLog>,
    /// Self-metrics.
    pub metrics: Arc<Metrics>,
    /// The running pipelines.
    pub pipelines: crate::pipelines::runner::InfoBoard,
    /// The alerting engine (its metrics), when it runs in this process.
    pub alerting: Option<Arc<AlertingHandle>>,
    /// The workflow engine (its metrics), when it runs in this process.
    pub workflows: Option<Arc<WorkflowsService>>,
    /// The template miner, when it runs in this process.
    pub templates: Option<Arc<TemplatesHandle>>,
    /// The read side (its metrics), when it runs.
    pub read: Option<crate::read::ReadSide>,
    /// Cluster mode: nodes, units and owners as this node sees them.
    pub cluster: Option<Arc<aiops_runtime::cluster::ClusterBoard>>,
    /// The pull sources (the range sources' `aiops_datasource_*` metrics).
    pub datasources: Option<Arc<crate::datasources::DataSources>>,
    /// Deploys (`aiops_deploy*`), when enabled.
    pub deploys: Option<crate::deploys::Deploys>,
    /// The knowledge base (`aiops_knowledge_*`), when enabled.
    pub knowledge: Option<crate::knowledge::Knowledge>,
    /// The LLM assistant (`aiops_llm_*`), when configured.
    pub assistant: Option<Arc<crate::knowledge::assistant::Assistant>>,
    /// Console sessions (`aiops_console_*`), when the console is on.
    pub console: Option<Arc<crate::console::sessions::Sessions>>,
}

/// Adds the status routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/log/stats", get(log_stats))
        .route("/api/pipelines", get(pipelines))
        .route("/api/logs/templates", get(log_templates))
        .route("/api/cluster", get(cluster))
}

/// `GET /api/cluster`: this node, the live nodes, and per work unit the node the assignment
/// gives it to, the lease holder and since when, this node's role, takeovers and last error.
/// Single-node: `{"mode": "single"}`.
async fn cluster(State(st): State<StatusState>) -> axum::Json<serde_json::Value> {
    axum::Json(match &st.cluster {
        Some(b) => {
            let mut v = b.json();
            if let Some(o) = v.as_object_mut() {
                o.insert("mode".into(), json!("cluster"));
            }
            v
        }
        None => json!({"mode": "single"}),
    })
}

fn log_unavailable(e: &aiops_log::LogError) -> ApiError {
    ApiError::reason(
        StatusCode::SERVICE_UNAVAILABLE,
        "log_unavailable",
        e.to_string(),
    )
    .with_retry_hint()
}

async fn health(State(st): State<StatusState>) -> ApiResult<axum::Json<serde_json::Value>> {
    let s = st.log.stats().await.map_err(|e| log_unavailable(&e))?;
    Ok(axum::Json(json!({
        "status": "ok",
        "log": s.backend,
        "durability": s.durability,
        "next_seq": s.next_seq,
        "consumer_lag": st.metrics.consumer_lag(),
    })))
}

async fn metrics(State(st): State<StatusState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render()
            + &crate::pipelines::metrics_text(&st.pipelines.read())
            + &st
                .alerting
                .as_deref()
                .map(crate::alerting::metrics_text)
                .unwrap_or_default()
            + &st
                .workflows
                .as_deref()
                .map(WorkflowsService::metrics_text)
                .unwrap_or_default()
            + &st
                .read
                .as_ref()
                .map(crate::read::ReadSide::metrics_text)
                .unwrap_or_default()
            + &st
                .cluster
                .as_deref()
                .map(aiops_runtime::cluster::ClusterBoard::metrics_text)
                .unwrap_or_default()
            + &st
                .datasources
                .as_deref()
                .map(crate::datasources::DataSources::metrics_text)
                .unwrap_or_default()
            + &st
                .knowledge
                .as_ref()
                .map(crate::knowledge::Knowledge::metrics_text)
                .unwrap_or_default()
            + &st
                .assistant
                .as_deref()
                .map(crate::knowledge::assistant::Assistant::metrics_text)
                .unwrap_or_default()
            + &st
                .deploys
                .as_ref()
                .map(crate::deploys::Deploys::metrics_text)
                .unwrap_or_default()
            + &st
                .console
                .as_deref()
                .map(crate::console::sessions::Sessions::metrics_text)
                .unwrap_or_default(),
    )
        .into_response()
}

async fn log_stats(State(st): State<StatusState>) -> ApiResult {
    let s = st.log.stats().await.map_err(|e| log_unavailable(&e))?;
    Ok(axum::Json(s).into_response())
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
    State(st): State<StatusState>,
    Query(q): Query<TemplatesQuery>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let Some(h) = &st.templates else {
        return Err(ApiError::reason(
            StatusCode::NOT_FOUND,
            "disabled",
            "template mining is not running in this process ([templates] enabled = false)",
        ));
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
    Ok(axum::Json(json!({
        "position": h.progress.position(),
        "records": records,
        "late_records": late,
        "watermark_ms": miner.watermark_ms(),
        "services": services,
    })))
}

/// `GET /api/pipelines`: every running pipeline with its state, watermark, lag and rows/s, and
/// the problems of the last refused change of the pipeline directory.
async fn pipelines(State(st): State<StatusState>) -> Response {
    let board = st.pipelines.read().clone();
    axum::Json(board).into_response()
}
