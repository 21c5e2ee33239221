//! Deployments over HTTP: record a deploy (and optionally run it through the deploy workflow),
//! its status with risk and verification, a rollback asked for by a person, the history with
//! DORA figures, and the CI/CD webhooks (GitHub, GitLab, Argo CD, Flux) that report deploys.
//! Writes are commands appended to the log, answered once the deploy processor applied them.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::knowledge::{body, who};
use crate::deploys::Deploys;
use aiops_connectors::deploys::{DeployHook, DeployHookError, HookRequest};
use aiops_deploy::{Deploy, DeployCommand};
use aiops_schemas::deploy::{ChangeSize, DeployReport, DeployStrategy, SourceStatus};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the deploy handlers need.
#[derive(Clone, Default)]
pub struct DeploysState {
    /// The deploy book, when enabled.
    pub deploys: Option<Deploys>,
    /// The configured webhooks by kind (`github`, `gitlab`, `argocd`, `flux`).
    pub hooks: Arc<BTreeMap<String, Box<dyn DeployHook>>>,
}

/// Adds the deploy routes to the router.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/deploy", post(record))
        .route("/api/deploy/status", get(status))
        .route("/api/deploy/rollback", post(rollback))
        .route("/api/deploys", get(history))
        .route("/api/deploy/hooks/{kind}", post(hook))
}

fn deploys(st: &DeploysState) -> ApiResult<&Deploys> {
    st.deploys.as_ref().ok_or_else(|| {
        ApiError::reason(
            StatusCode::SERVICE_UNAVAILABLE,
            "disabled",
            "deploys are disabled ([deploys] enabled = false)",
        )
    })
}

/// `POST /api/deploy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    /// Id to use (1–128 of `A-Z a-z 0-9 . _ : -`); derived when absent. Posting the same id
    /// again updates that deploy (e.g. its status).
    id: Option<String>,
    service: String,
    #[serde(default = "production")]
    environment: String,
    version: String,
    previous_version: Option<String>,
    #[serde(default)]
    strategy: DeployStrategy,
    /// Default: the caller's token name.
    requested_by: Option<String>,
    /// Where the rollout stands. Default: `in_progress` for a canary or a deploy aiops runs,
    /// else `succeeded` (the new version runs).
    status: Option<SourceStatus>,
    description: Option<String>,
    change: Option<ChangeSize>,
    url: Option<String>,
    /// When it started (Unix ms). Default: now.
    started_at_ms: Option<i64>,
    /// This deploy rolls back that one.
    rollback_of: Option<String>,
    /// Run the configured deploy workflow for it (`[deploys] deploy_workflow`), once.
    #[serde(default)]
    run: bool,
}

fn production() -> String {
    "production".into()
}

fn answer(d: &Deploy) -> Value {
    json!({ "deploy": d })
}

async fn record(
    State(st): State<DeploysState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    raw: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let dep = deploys(&st)?;
    let b: DeployBody = body(&raw, "deploy")?;
    if b.run && dep.handle.settings.deploy_workflow.is_none() {
        return Err(ApiError::bad_request(
            "run: true needs a deploy workflow ([deploys] deploy_workflow)",
        ));
    }
    let now = crate::clock::now_ms();
    let status = b.status.unwrap_or(if b.run {
        SourceStatus::Pending
    } else if b.strategy == DeployStrategy::Canary {
        SourceStatus::InProgress
    } else {
        SourceStatus::Succeeded
    });
    let report = DeployReport {
        source: "api".into(),
        external_id: None,
        service: b.service,
        environment: b.environment,
        version: b.version,
        previous_version: b.previous_version,
        strategy: b.strategy,
        requested_by: Some(b.requested_by.unwrap_or_else(|| who(caller.as_ref()))),
        status,
        at_ms: b.started_at_ms.unwrap_or(now),
        description: b.description,
        change: b.change,
        url: b.url,
    };
    let cmd = DeployCommand::Report {
        report,
        id: b.id.clone(),
        rollback_of: b.rollback_of,
        run_action: b.run,
    };
    let seq = dep.submit(&cmd).await.map_err(ApiError::from)?;
    let book = dep.handle.book.read();
    let d = match &b.id {
        Some(id) => book.get(id),
        None => book.by_seq(seq),
    }
    .ok_or_else(|| ApiError::internal("the deploy was applied but is not in the book"))?;
    let code = if d.seq == seq {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, axum::Json(answer(d))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    id: Option<String>,
    service: Option<String>,
}

/// `GET /api/deploy/status`: one deploy (`?id=`), a service's deploys (`?service=`, newest
/// first), or every deploy that is not final.
async fn status(
    State(st): State<DeploysState>,
    Query(q): Query<StatusQuery>,
) -> ApiResult<impl IntoResponse> {
    let dep = deploys(&st)?;
    let book = dep.handle.book.read();
    if let Some(id) = &q.id {
        let d = book
            .get(id)
            .ok_or_else(|| ApiError::not_found(format!("no deploy {id:?}")))?;
        return Ok(axum::Json(answer(d)));
    }
    let mut ds: Vec<&Deploy> = book
        .deploys()
        .filter(|d| match &q.service {
            Some(s) => d.service == *s,
            None => !d.status.is_final(),
        })
        .collect();
    ds.sort_by(|a, b| b.started_at_ms.cmp(&a.started_at_ms).then(a.id.cmp(&b.id)));
    ds.truncate(100);
    Ok(axum::Json(json!({ "deploys": ds })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    id: String,
    #[serde(default)]
    reason: String,
}

/// `POST /api/deploy/rollback`: runs the rollback workflow once (409 when the deploy is already
/// rolling back or rolled back).
async fn rollback(
    State(st): State<DeploysState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    raw: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let dep = deploys(&st)?;
    let b: RollbackBody = body(&raw, "rollback")?;
    let cmd = DeployCommand::Rollback {
        id: b.id.clone(),
        by: who(caller.as_ref()),
        reason: b.reason,
    };
    dep.submit(&cmd).await.map_err(ApiError::from)?;
    let book = dep.handle.book.read();
    let d = book
        .get(&b.id)
        .ok_or_else(|| ApiError::internal("the rollback was applied but the deploy is gone"))?;
    Ok((StatusCode::ACCEPTED, axum::Json(answer(d))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    service: Option<String>,
    environment: Option<String>,
    /// At most this many (newest first). Default 100, at most 1000.
    limit: Option<usize>,
}

/// `GET /api/deploys`: history (newest first) and DORA figures per service.
async fn history(
    State(st): State<DeploysState>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<impl IntoResponse> {
    let dep = deploys(&st)?;
    let book = dep.handle.book.read();
    let mut ds: Vec<&Deploy> = book
        .deploys()
        .filter(|d| q.service.as_ref().is_none_or(|s| d.service == *s))
        .filter(|d| q.environment.as_ref().is_none_or(|e| d.environment == *e))
        .collect();
    ds.sort_by(|a, b| b.started_at_ms.cmp(&a.started_at_ms).then(a.id.cmp(&b.id)));
    let total = ds.len();
    ds.truncate(q.limit.unwrap_or(100).min(1000));
    let mut dora = book.dora();
    if let Some(s) = &q.service {
        dora.retain(|k, _| k == s);
    }
    Ok(axum::Json(json!({
        "deploys": ds,
        "total": total,
        "dora": dora,
        "lookback_ms": book.settings().lookback_ms,
    })))
}

/// `POST /api/deploy/hooks/{kind}`: a CI/CD system reports a deploy. No token: the hook checks
/// the request's signature or shared secret (a hook without a secret is never configured).
async fn hook(
    State(st): State<DeploysState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let Some(h) = st.hooks.get(&kind) else {
        return Err(ApiError::not_found(format!(
            "no deploy webhook {kind:?} is configured ([deploys.hooks.{kind}])"
        )));
    };
    let dep = deploys(&st)?;
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(n, v)| {
            Some((
                n.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let reports = match h.parse(&HookRequest {
        headers: &pairs,
        body: &raw,
    }) {
        Ok(r) => r,
        Err(DeployHookError::Unauthenticated(m)) => {
            // Debug, not warn: anyone can call this route, and a flood of bad signatures must
            // not flood the log.
            tracing::debug!(hook = %kind, reason = %m, "deploy webhook refused");
            return Err(ApiError::unauthorized(m));
        }
        Err(DeployHookError::BadPayload(m)) => {
            return Err(ApiError::reason(StatusCode::BAD_REQUEST, "invalid", m));
        }
        Err(DeployHookError::Ignored(m)) => {
            return Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({"recorded": [], "ignored": m})),
            ));
        }
    };
    let mut recorded = Vec::new();
    for report in reports {
        let cmd = DeployCommand::Report {
            report,
            id: None,
            rollback_of: None,
            run_action: false,
        };
        let seq = dep.submit(&cmd).await.map_err(ApiError::from)?;
        let book = dep.handle.book.read();
        // A report of a deploy the source reported before updates that one.
        let id = book.by_seq(seq).map(|d| d.id.clone()).or_else(|| {
            let c = cmd_report(&cmd)?;
            book.deploys()
                .find(|d| d.source == c.source && d.external_id == c.external_id)
                .map(|d| d.id.clone())
        });
        recorded.extend(id);
    }
    Ok((StatusCode::OK, axum::Json(json!({ "recorded": recorded }))))
}

fn cmd_report(cmd: &DeployCommand) -> Option<&DeployReport> {
    match cmd {
        DeployCommand::Report { report, .. } => Some(report),
        DeployCommand::Rollback { .. } => None,
    }
}
