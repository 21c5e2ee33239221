//! `/api/grafana/*`: preview (GET) and apply (POST) what aiops writes to Grafana.
//!
//! - `GET /api/grafana/dashboards`: the data source, dashboards and annotations a sync would write.
//! - `POST /api/grafana/dashboards`: sync them (folder, data source, dashboards, annotations).
//! - `GET /api/grafana/alerts`: the Grafana alert rules for the SQL alert rules.
//! - `POST /api/grafana/alerts`: sync them.

use super::GrafanaError;
use super::sync::{self, Scope};
use crate::http::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// Adds the Grafana routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(
        "/api/grafana/dashboards",
        get(preview_dashboards).post(sync_dashboards),
    )
    .route("/api/grafana/alerts", get(preview_alerts).post(sync_alerts))
}

fn error(e: &GrafanaError) -> Response {
    let (status, reason) = match e {
        GrafanaError::NotConfigured(_) => (StatusCode::CONFLICT, "not_configured"),
        GrafanaError::Transport { .. } => (StatusCode::BAD_GATEWAY, "grafana_unreachable"),
        GrafanaError::Status { .. } => (StatusCode::BAD_GATEWAY, "grafana_refused"),
        GrafanaError::Query { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "generated_query"),
        GrafanaError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    (
        status,
        axum::Json(json!({"error": e.to_string(), "reason": reason})),
    )
        .into_response()
}

async fn plan(st: &AppState, scope: Scope) -> Result<sync::Plan, Response> {
    let rs = st.read.as_ref().ok_or_else(|| {
        crate::api::err(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the read side is not running in this process",
        )
    })?;
    sync::plan(
        &st.grafana,
        &st.pipelines,
        rs,
        scope,
        crate::clock::now_ms(),
    )
    .await
    .map_err(|e| error(&e))
}

async fn preview_dashboards(State(st): State<AppState>) -> Response {
    match plan(&st, Scope::Dashboards).await {
        Ok(p) => axum::Json(json!({
            "datasource": p.datasource,
            "dashboards": p.dashboards,
            "annotations": p.annotations,
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn preview_alerts(State(st): State<AppState>) -> Response {
    match plan(&st, Scope::Alerts).await {
        Ok(p) => axum::Json(json!({"rules": p.rules})).into_response(),
        Err(r) => r,
    }
}

async fn apply(st: AppState, scope: Scope) -> Response {
    let p = match plan(&st, scope).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match sync::apply(&st.grafana, &p, scope, crate::clock::now_ms()).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(e) => error(&e),
    }
}

async fn sync_dashboards(State(st): State<AppState>) -> Response {
    apply(st, Scope::Dashboards).await
}

async fn sync_alerts(State(st): State<AppState>) -> Response {
    apply(st, Scope::Alerts).await
}
