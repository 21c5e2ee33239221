//! The workflow and auto-heal HTTP API: list, read, create, replace and delete workflows (files
//! checked, then deployed through the log), run one by hand, list executions, approve or reject a
//! waiting step (bearer token of a configured user with the step's role), and auto-heal's
//! strategies, diagnosis and manual fix. Answers never contain secret values: intents carry
//! markers, results are redacted by the executor.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::alerting::processor::AlertingHandle;
use crate::workflows::codec::WorkflowCommand;
use crate::workflows::service::{ChangeError, User, WorkflowsService};
use aiops_workflow::WorkflowControl;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

/// What the workflow handlers need.
#[derive(Debug, Clone)]
pub struct WorkflowsState {
    /// The workflow service, when workflows run in this process.
    pub workflows: Option<Arc<WorkflowsService>>,
    /// The alerting engine (incidents for auto-heal), when it runs in this process.
    pub alerting: Option<Arc<AlertingHandle>>,
}

/// The configured user named by the request's bearer token.
/// The configured workflow user of a request: its bearer token is that user's, or it comes from
/// a console user signed in under that user's name (the auth middleware made the caller
/// `user:<name>` from the session cookie).
fn user<'a>(
    a: &'a WorkflowsService,
    headers: &HeaderMap,
    caller: Option<&crate::auth::Caller>,
) -> Option<&'a User> {
    let by_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .and_then(|t| a.user(t.trim()));
    by_token.or_else(|| {
        caller
            .and_then(|c| c.token.strip_prefix("user:"))
            .and_then(|name| a.user_named(name))
    })
}

/// The caller the auth middleware recorded.
type CallerExt = Option<axum::Extension<crate::auth::Caller>>;

/// Adds the workflow routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/workflows", get(list).post(create))
        .route(
            "/api/workflows/executions/{*rest}",
            get(get_execution).post(execution_action),
        )
        .route(
            "/api/workflows/{id}",
            get(get_one).put(replace).delete(remove),
        )
        .route("/api/workflows/{id}/execute", post(execute))
        .route("/api/workflows/{id}/executions", get(executions))
        .route("/api/autoheal/strategies", get(strategies))
        .route("/api/autoheal/diagnose", post(diagnose))
        .route("/api/autoheal/fix", post(fix))
}

fn api(st: &WorkflowsState) -> ApiResult<Arc<WorkflowsService>> {
    st.workflows.clone().ok_or_else(|| {
        ApiError::unavailable(
            "workflows are not running in this process ([workflows] enabled = false)",
        )
    })
}

fn summary(w: &aiops_workflow::Workflow) -> Value {
    json!({
        "id": w.id, "description": w.description, "file": w.file, "disabled": w.disabled,
        "triggers": w.spec.triggers, "steps": w.spec.steps.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "actions": w.spec.actions.iter().map(|s| &s.name).collect::<Vec<_>>(),
    })
}

async fn list(State(st): State<WorkflowsState>) -> ApiResult {
    let a = api(&st)?;
    let e = a.handle.engine.read();
    let c = e.counters();
    let list: Vec<Value> = e.config().workflows.values().map(|w| summary(w)).collect();
    Ok(axum::Json(
        json!({"workflows": list, "counters": c, "active_executions": e.active().count()}),
    )
    .into_response())
}

async fn get_one(State(st): State<WorkflowsState>, Path(id): Path<String>) -> ApiResult {
    path_id(&id)?;
    let a = api(&st)?;
    let e = a.handle.engine.read();
    match e.config().workflows.get(&id) {
        Some(w) => {
            let text = a
                .handle
                .deployed
                .read()
                .workflows
                .get(&w.file)
                .cloned()
                .unwrap_or_default();
            let mut v = summary(w);
            if let Some(o) = v.as_object_mut() {
                o.insert("yaml".into(), Value::String(text));
            }
            Ok(axum::Json(v).into_response())
        }
        None => Err(ApiError::not_found(format!("no workflow {id:?}"))),
    }
}

fn require(
    a: &WorkflowsService,
    headers: &HeaderMap,
    caller: &CallerExt,
    role: &str,
) -> ApiResult<User> {
    if !a.has_users() {
        // No users configured: a single-operator setup; writes are open on the (loopback) listener.
        return Ok(User::anonymous_admin());
    }
    let Some(u) = user(a, headers, caller.as_ref().map(|c| &c.0)) else {
        return Err(ApiError::unauthorized(
            "a bearer token of a configured user (or a console user of the same name) is required",
        ));
    };
    if !u.roles.iter().any(|r| r == role || r == "admin") {
        return Err(ApiError::forbidden(format!(
            "user {} lacks role {role:?}",
            u.name
        )));
    }
    Ok(u.clone())
}

/// Refuses a workflow id in a path that breaks the id rule (it would name a file or a key);
/// nothing is read or written for it.
fn path_id(id: &str) -> ApiResult<()> {
    aiops_workflow::compile::check_id("workflow id", id).map_err(ApiError::bad_request)
}

fn id_of(text: &str) -> ApiResult<String> {
    // The one guarded YAML loader: an alias bomb is refused before it expands.
    let f: aiops_workflow::spec::WorkflowFile = aiops_alerting::yaml::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    aiops_workflow::compile::check_id("workflow id", &f.workflow.id)
        .map_err(|m| ApiError::bad_request(format!("request body: {m}")))?;
    Ok(f.workflow.id)
}

/// Refuses changes to a receiver's generated workflow: it follows the alerting configuration.
fn generated(id: &str, file: &str) -> Result<(), ApiError> {
    if file.starts_with(aiops_workflow::alertmanager::FILE_PREFIX) {
        return Err(ApiError::conflict(format!(
            "workflow {id:?} is generated from a receiver of the alerting configuration; change \
             the receiver there (it is re-generated at the next start)"
        )));
    }
    Ok(())
}

async fn create(
    State(st): State<WorkflowsState>,
    caller: CallerExt,
    headers: HeaderMap,
    body: String,
) -> ApiResult {
    let a = api(&st)?;
    require(&a, &headers, &caller, "admin")?;
    let id = id_of(&body)?;
    if a.handle.engine.read().config().workflows.contains_key(&id) {
        return Err(ApiError::conflict(format!(
            "workflow {id:?} exists; PUT /api/workflows/{id} replaces it"
        )));
    }
    a.deploy(format!("{id}.yaml"), Some(body)).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"id": id}))).into_response())
}

async fn replace(
    State(st): State<WorkflowsState>,
    caller: CallerExt,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> ApiResult {
    path_id(&id)?;
    let a = api(&st)?;
    require(&a, &headers, &caller, "admin")?;
    let i = id_of(&body)?;
    if i != id {
        return Err(ApiError::bad_request(format!(
            "the body's workflow id {i:?} is not {id:?}"
        )));
    }
    let file = a
        .handle
        .engine
        .read()
        .config()
        .workflows
        .get(&id)
        .map(|w| w.file.clone())
        .unwrap_or_else(|| format!("{id}.yaml"));
    generated(&id, &file)?;
    a.deploy(file, Some(body)).await?;
    Ok(axum::Json(json!({"id": id})).into_response())
}

async fn remove(
    State(st): State<WorkflowsState>,
    caller: CallerExt,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    path_id(&id)?;
    let a = api(&st)?;
    require(&a, &headers, &caller, "admin")?;
    let Some(file) = a
        .handle
        .engine
        .read()
        .config()
        .workflows
        .get(&id)
        .map(|w| w.file.clone())
    else {
        return Err(ApiError::not_found(format!("no workflow {id:?}")));
    };
    generated(&id, &file)?;
    a.deploy(file, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn request_id(body: &[u8]) -> String {
    let now = crate::clock::now_ms();
    format!(
        "{now}-{:08x}",
        aiops_schemas::partition::fnv1a(now as u64, body) as u32
    )
}

async fn execute(
    State(st): State<WorkflowsState>,
    caller: CallerExt,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    path_id(&id)?;
    let a = api(&st)?;
    let user = require(&a, &headers, &caller, "operator")?;
    let inputs: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return Err(ApiError::bad_request(format!("inputs must be JSON: {e}")));
            }
        }
    };
    let rid = request_id(&body);
    let cmd = WorkflowControl::Execute {
        workflow: id.clone(),
        request_id: rid.clone(),
        by: user.name,
        inputs,
    };
    a.command(WorkflowCommand::Command { command: cmd }).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"execution": format!("{id}/manual/{rid}")})),
    )
        .into_response())
}

fn exec_json(e: &aiops_workflow::engine::Execution) -> Value {
    json!({
        "id": e.id, "workflow": e.workflow, "status": e.status, "trigger": e.trigger, "cause": e.cause,
        "incident": e.incident, "step": e.item, "started_ms": e.started_ms, "steps": e.steps,
        "pending": e.pending, "approval": e.approval,
    })
}

async fn executions(State(st): State<WorkflowsState>, Path(id): Path<String>) -> ApiResult {
    path_id(&id)?;
    let a = api(&st)?;
    let e = a.handle.engine.read();
    let active: Vec<Value> = e
        .active()
        .filter(|x| x.workflow == id)
        .map(exec_json)
        .collect();
    let done: Vec<Value> = e
        .recent()
        .filter(|x| x.workflow == id)
        .map(|x| serde_json::to_value(x).unwrap_or(Value::Null))
        .collect();
    Ok(axum::Json(json!({"active": active, "finished": done})).into_response())
}

async fn get_execution(State(st): State<WorkflowsState>, Path(rest): Path<String>) -> ApiResult {
    let a = api(&st)?;
    let e = a.handle.engine.read();
    if let Some(x) = e.execution(&rest) {
        return Ok(axum::Json(exec_json(x)).into_response());
    }
    match e.recent().find(|x| x.id == rest) {
        Some(x) => Ok(axum::Json(serde_json::to_value(x).unwrap_or(Value::Null)).into_response()),
        None => Err(ApiError::not_found(format!("no execution {rest:?}"))),
    }
}

async fn execution_action(
    State(st): State<WorkflowsState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    headers: HeaderMap,
    Path(rest): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let a = api(&st)?;
    let (exec, action) = match rest.rsplit_once('/') {
        Some((e, act @ ("approve" | "reject"))) => (e.to_string(), act),
        _ => {
            return Err(ApiError::not_found(
                "POST /api/workflows/executions/{id}/approve or …/reject",
            ));
        }
    };
    if !a.has_users() {
        return Err(ApiError::forbidden(
            "approvals need configured users ([workflows.users]) with roles",
        ));
    }
    let Some(user) = user(&a, &headers, caller.as_ref().map(|c| &c.0)).cloned() else {
        return Err(ApiError::unauthorized(
            "a bearer token of a configured user (or a console user of the same name) is required",
        ));
    };
    let pending = a
        .handle
        .engine
        .read()
        .execution(&exec)
        .and_then(|e| e.approval.clone());
    let Some(pending) = pending else {
        return Err(ApiError::not_found(format!(
            "execution {exec:?} is not waiting for an approval"
        )));
    };
    let cmd = if action == "approve" {
        #[derive(serde::Deserialize)]
        struct Body {
            digest: Option<String>,
        }
        let b: Body = if body.is_empty() {
            Body { digest: None }
        } else {
            match serde_json::from_slice(&body) {
                Ok(b) => b,
                Err(e) => return Err(ApiError::bad_request(format!("body: {e}"))),
            }
        };
        let Some(digest) = b.digest else {
            return Err(ApiError::bad_request(format!(
                "approve the exact call: send {{\"digest\": \"{}\"}} (GET the execution to review what it runs)",
                pending.digest
            )));
        };
        WorkflowControl::Approve {
            execution: exec.clone(),
            digest,
            by: user.name.clone(),
            roles: user.roles.clone(),
        }
    } else {
        WorkflowControl::Reject {
            execution: exec.clone(),
            by: user.name.clone(),
            roles: user.roles.clone(),
        }
    };
    a.command(WorkflowCommand::Command { command: cmd })
        .await
        .map_err(|e| match e {
            // A refusal by the engine (role, digest) is the client's problem, not a conflict.
            ChangeError::Refused(reason) => ApiError::forbidden(reason),
            e => e.into(),
        })?;
    Ok(axum::Json(json!({"execution": exec, "action": action, "by": user.name})).into_response())
}

async fn strategies(State(st): State<WorkflowsState>) -> ApiResult {
    let a = api(&st)?;
    let e = a.handle.engine.read();
    let list: Vec<Value> = e
        .config()
        .strategies
        .iter()
        .map(|s| json!({"id": s.id, "description": s.description, "match": s.spec.match_, "remedies": s.spec.remedies.iter().map(|r| &r.name).collect::<Vec<_>>()}))
        .collect();
    Ok(axum::Json(json!({"strategies": list})).into_response())
}

fn incident_ctx(st: &WorkflowsState, body: &[u8]) -> ApiResult<(String, Value)> {
    #[derive(serde::Deserialize)]
    struct Req {
        incident: String,
    }
    let r: Req = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("body must be {{\"incident\": \"INC-…\"}}: {e}"))
    })?;
    let Some(al) = &st.alerting else {
        return Err(ApiError::unavailable(
            "alerting is not running in this process",
        ));
    };
    let inc = al
        .engine
        .read()
        .incidents()
        .get(&r.incident)
        .map(|i| i.view(None, 0))
        .ok_or_else(|| ApiError::not_found(format!("no incident {:?}", r.incident)))?;
    let d = aiops_alerting::Decision::Incident(aiops_alerting::decision::IncidentChange {
        at_ms: inc.opened_at_ms,
        change: "opened".into(),
        incident: inc,
    });
    let (_, ctx, _) =
        aiops_workflow::engine::decision_ctx(&d).ok_or_else(|| ApiError::internal("no context"))?;
    Ok((r.incident, ctx))
}

async fn diagnose(State(st): State<WorkflowsState>, body: axum::body::Bytes) -> ApiResult {
    let a = api(&st)?;
    let (id, ctx) = incident_ctx(&st, &body)?;
    let obj = ctx.get("incident").cloned().unwrap_or(Value::Null);
    let e = a.handle.engine.read();
    let candidates: Vec<Value> = e
        .config()
        .strategies
        .iter()
        .map(|s| json!({"strategy": s.id, "matches": s.matches(&obj)}))
        .collect();
    let chosen = e
        .config()
        .strategies
        .iter()
        .find(|s| s.matches(&obj))
        .map(|s| s.id.clone());
    Ok(axum::Json(json!({"incident": id, "strategy": chosen, "candidates": candidates, "evidence": obj.get("evidence"), "services": obj.get("services")})).into_response())
}

async fn fix(
    State(st): State<WorkflowsState>,
    caller: CallerExt,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let a = api(&st)?;
    let user = require(&a, &headers, &caller, "operator")?;
    let (id, ctx) = incident_ctx(&st, &body)?;
    let strategy = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("strategy")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let rid = request_id(&body);
    let cmd = WorkflowControl::Heal {
        incident: id,
        ctx,
        strategy,
        by: user.name,
        request_id: rid.clone(),
    };
    a.command(WorkflowCommand::Command { command: cmd }).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"execution": format!("autoheal/manual/{rid}")})),
    )
        .into_response())
}
