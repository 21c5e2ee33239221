//! `/api/grafana/*`: preview (GET) and apply (POST) what aiops writes to Grafana.
//!
//! - `GET /api/grafana/dashboards`: the data source, dashboards and annotations a sync would write.
//! - `POST /api/grafana/dashboards`: sync them (folder, data source, dashboards, annotations).
//! - `GET /api/grafana/alerts`: the Grafana alert rules for the SQL alert rules.
//! - `POST /api/grafana/alerts`: sync them.

use super::AppState;
use super::error::{ApiError, ApiResult};
use aiops_grafana::sync::{self, GrafanaContext, Scope};
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// What the Grafana handlers need.
#[derive(Debug, Clone)]
pub struct GrafanaState {
    /// Grafana's settings, client and lock.
    pub grafana: Arc<GrafanaContext>,
    /// The running pipelines (what the dashboards show).
    pub board: crate::pipelines::runner::InfoBoard,
    /// The read side (the pipelines' columns), when it runs.
    pub read: Option<crate::read::ReadSide>,
}

/// Adds the Grafana routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(
        "/api/grafana/dashboards",
        get(preview_dashboards).post(sync_dashboards),
    )
    .route("/api/grafana/alerts", get(preview_alerts).post(sync_alerts))
}

async fn plan(st: &GrafanaState, scope: Scope) -> ApiResult<sync::Plan> {
    let rs = st.read.as_ref().ok_or_else(ApiError::no_read_side)?;
    Ok(sync::plan(&st.grafana, &st.board, rs, scope, crate::clock::now_ms()).await?)
}

async fn preview_dashboards(State(st): State<GrafanaState>) -> ApiResult<axum::Json<Value>> {
    let p = plan(&st, Scope::Dashboards).await?;
    Ok(axum::Json(json!({
        "datasource": p.datasource,
        "dashboards": p.dashboards,
        "annotations": p.annotations,
    })))
}

async fn preview_alerts(State(st): State<GrafanaState>) -> ApiResult<axum::Json<Value>> {
    let p = plan(&st, Scope::Alerts).await?;
    Ok(axum::Json(json!({"rules": p.rules})))
}

async fn apply(st: GrafanaState, scope: Scope) -> ApiResult {
    let p = plan(&st, scope).await?;
    let report = sync::apply(&st.grafana, &p, scope, crate::clock::now_ms()).await?;
    Ok(axum::Json(report).into_response())
}

async fn sync_dashboards(State(st): State<GrafanaState>) -> ApiResult {
    apply(st, Scope::Dashboards).await
}

async fn sync_alerts(State(st): State<GrafanaState>) -> ApiResult {
    apply(st, Scope::Alerts).await
}
