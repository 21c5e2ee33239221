//! The workflow and auto-heal HTTP API: list, read, create, replace and delete workflows (files
//! checked, then deployed through the log), run one by hand, list executions, approve or reject a
//! waiting step (bearer token of a configured user with the step's role), and auto-heal's
//! strategies, diagnosis and manual fix. Answers never contain secret values: intents carry
//! markers, results are redacted by the executor.
// Handlers' helpers return the finished error response; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use super::codec::{WorkflowCommand, control_message};
use super::processor::{Deployed, WorkflowsHandle};
use crate::http::AppState;
use aiops_runtime::CommandError;
use aiops_workflow::WorkflowControl;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// An authenticated API user.
#[derive(Debug, Clone)]
pub struct User {
    /// Name.
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
    token: String,
}

/// What the workflow API needs.
pub struct WorkflowsApi {
    /// The engine's handle.
    pub handle: Arc<WorkflowsHandle>,
    /// Where workflow files live.
    pub dir: PathBuf,
    /// The executor (for its metrics), when effects run in this process.
    pub executor: Option<Arc<super::executor::Executor>>,
    users: Vec<User>,
    /// Serializes create/replace/delete: each reads, changes and records the whole set.
    deploy_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for WorkflowsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowsApi")
            .field("dir", &self.dir)
            .field(
                "users",
                &self.users.iter().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl WorkflowsApi {
    /// The API over `handle`, with users whose tokens come from the secrets.
    ///
    /// # Errors
    /// A user whose token secret is not configured.
    pub fn new(
        handle: Arc<WorkflowsHandle>,
        dir: PathBuf,
        users: &std::collections::BTreeMap<String, super::UserSettings>,
    ) -> Result<WorkflowsApi, String> {
        let mut out = Vec::new();
        for (name, u) in users {
            let token = handle
                .providers
                .secrets()
                .get(&u.token_secret)
                .ok_or_else(|| {
                    format!(
                        "workflows.users.{name}: secret {:?} is not configured",
                        u.token_secret
                    )
                })?;
            out.push(User {
                name: name.clone(),
                roles: u.roles.clone(),
                token,
            });
        }
        Ok(WorkflowsApi {
            handle,
            dir,
            executor: None,
            users: out,
            deploy_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn user(&self, headers: &HeaderMap) -> Option<&User> {
        let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = h.strip_prefix("Bearer ")?.trim();
        // Compare every token fully so timing does not tell how much of one matched.
        let mut found = None;
        for u in &self.users {
            let a = u.token.as_bytes();
            let b = token.as_bytes();
            let mut diff = a.len() ^ b.len();
            for i in 0..a.len().max(b.len()) {
                diff |=
                    usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
            }
            if diff == 0 {
                found = Some(u);
            }
        }
        found
    }
}

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

fn err(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

fn api(st: &AppState) -> Result<Arc<WorkflowsApi>, Response> {
    st.workflows.clone().ok_or_else(|| {
        err(
            StatusCode::SERVICE_UNAVAILABLE,
            "workflows are not running in this process ([workflows] enabled = false)",
        )
    })
}

async fn append_and_wait(
    st: &AppState,
    a: &WorkflowsApi,
    body: WorkflowCommand,
) -> Result<(), Response> {
    let msg = control_message(body, crate::clock::now_ms())
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    aiops_runtime::progress::command(
        &*st.log,
        &a.handle.progress,
        "workflow engine",
        msg,
        Duration::from_secs(10),
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        CommandError::Log(le) => err(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the log did not accept the command: {le}"),
        ),
        CommandError::Refused(reason) | CommandError::Timeout(reason) => {
            err(StatusCode::CONFLICT, reason)
        }
    })
}

fn summary(w: &aiops_workflow::Workflow) -> Value {
    json!({
        "id": w.id, "description": w.description, "file": w.file, "disabled": w.disabled,
        "triggers": w.spec.triggers, "steps": w.spec.steps.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "actions": w.spec.actions.iter().map(|s| &s.name).collect::<Vec<_>>(),
    })
}

async fn list(State(st): State<AppState>) -> Response {
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let e = a.handle.engine.read();
    let c = e.counters();
    let list: Vec<Value> = e.config().workflows.values().map(|w| summary(w)).collect();
    axum::Json(json!({"workflows": list, "counters": c, "active_executions": e.active().count()}))
        .into_response()
}

async fn get_one(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    if let Err(r) = path_id(&id) {
        return r;
    }
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
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
            axum::Json(v).into_response()
        }
        None => err(StatusCode::NOT_FOUND, format!("no workflow {id:?}")),
    }
}

fn require(a: &WorkflowsApi, headers: &HeaderMap, role: &str) -> Result<User, Response> {
    if a.users.is_empty() {
        // No users configured: a single-operator setup; writes are open on the (loopback) listener.
        return Ok(User {
            name: "anonymous".into(),
            roles: vec!["admin".into()],
            token: String::new(),
        });
    }
    let Some(u) = a.user(headers) else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "a bearer token of a configured user is required",
        ));
    };
    if !u.roles.iter().any(|r| r == role || r == "admin") {
        return Err(err(
            StatusCode::FORBIDDEN,
            format!("user {} lacks role {role:?}", u.name),
        ));
    }
    Ok(u.clone())
}

async fn write_and_deploy(
    st: &AppState,
    a: &WorkflowsApi,
    file: String,
    text: Option<String>,
) -> Result<(), Response> {
    let _serial = a.deploy_lock.lock().await;
    let mut d: Deployed = a.handle.deployed.read().clone();
    match &text {
        Some(t) => {
            d.workflows.insert(file.clone(), t.clone());
        }
        None => {
            d.workflows.remove(&file);
        }
    }
    // Check before anything is written.
    super::compile_set(
        &d.workflows,
        &d.strategies,
        a.handle.providers.clone(),
        a.handle.limits.clone(),
    )
    .map_err(|errs| {
        err(
            StatusCode::BAD_REQUEST,
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let path = a.dir.join(&file);
    let io = match &text {
        Some(t) => std::fs::create_dir_all(&a.dir).and_then(|_| {
            let tmp = a.dir.join(format!(".{file}.tmp"));
            std::fs::write(&tmp, t)?;
            std::fs::rename(&tmp, &path)
        }),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    io.map_err(|e| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}: {e}", path.display()),
        )
    })?;
    append_and_wait(
        st,
        a,
        WorkflowCommand::Deployed {
            workflows: d.workflows,
            strategies: d.strategies,
        },
    )
    .await
}

/// Refuses a workflow id in a path that breaks the id rule (it would name a file or a key);
/// nothing is read or written for it.
fn path_id(id: &str) -> Result<(), Response> {
    aiops_workflow::compile::check_id("workflow id", id)
        .map_err(|m| err(StatusCode::BAD_REQUEST, m))
}

fn id_of(text: &str) -> Result<String, Response> {
    // The one guarded YAML loader: an alias bomb is refused before it expands.
    let f: aiops_workflow::spec::WorkflowFile = aiops_alerting::yaml::from_str(text)
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("request body: {e}")))?;
    aiops_workflow::compile::check_id("workflow id", &f.workflow.id)
        .map_err(|m| err(StatusCode::BAD_REQUEST, format!("request body: {m}")))?;
    Ok(f.workflow.id)
}

async fn create(State(st): State<AppState>, headers: HeaderMap, body: String) -> Response {
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(r) = require(&a, &headers, "admin") {
        return r;
    }
    let id = match id_of(&body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if a.handle.engine.read().config().workflows.contains_key(&id) {
        return err(
            StatusCode::CONFLICT,
            format!("workflow {id:?} exists; PUT /api/workflows/{id} replaces it"),
        );
    }
    match write_and_deploy(&st, &a, format!("{id}.yaml"), Some(body)).await {
        Ok(()) => (StatusCode::CREATED, axum::Json(json!({"id": id}))).into_response(),
        Err(r) => r,
    }
}

async fn replace(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if let Err(r) = path_id(&id) {
        return r;
    }
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(r) = require(&a, &headers, "admin") {
        return r;
    }
    match id_of(&body) {
        Ok(i) if i == id => {}
        Ok(i) => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("the body's workflow id {i:?} is not {id:?}"),
            );
        }
        Err(r) => return r,
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
    match write_and_deploy(&st, &a, file, Some(body)).await {
        Ok(()) => axum::Json(json!({"id": id})).into_response(),
        Err(r) => r,
    }
}

async fn remove(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = path_id(&id) {
        return r;
    }
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(r) = require(&a, &headers, "admin") {
        return r;
    }
    let Some(file) = a
        .handle
        .engine
        .read()
        .config()
        .workflows
        .get(&id)
        .map(|w| w.file.clone())
    else {
        return err(StatusCode::NOT_FOUND, format!("no workflow {id:?}"));
    };
    match write_and_deploy(&st, &a, file, None).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

fn request_id(body: &[u8]) -> String {
    let now = crate::clock::now_ms();
    format!(
        "{now}-{:08x}",
        aiops_schemas::partition::fnv1a(now as u64, body) as u32
    )
}

async fn execute(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = path_id(&id) {
        return r;
    }
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let user = match require(&a, &headers, "operator") {
        Ok(u) => u,
        Err(r) => return r,
    };
    let inputs: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return err(StatusCode::BAD_REQUEST, format!("inputs must be JSON: {e}")),
        }
    };
    let rid = request_id(&body);
    let cmd = WorkflowControl::Execute {
        workflow: id.clone(),
        request_id: rid.clone(),
        by: user.name,
        inputs,
    };
    match append_and_wait(&st, &a, WorkflowCommand::Command { command: cmd }).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"execution": format!("{id}/manual/{rid}")})),
        )
            .into_response(),
        Err(r) => r,
    }
}

fn exec_json(e: &aiops_workflow::engine::Execution) -> Value {
    json!({
        "id": e.id, "workflow": e.workflow, "status": e.status, "trigger": e.trigger, "cause": e.cause,
        "incident": e.incident, "step": e.item, "started_ms": e.started_ms, "steps": e.steps,
        "pending": e.pending, "approval": e.approval,
    })
}

async fn executions(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    if let Err(r) = path_id(&id) {
        return r;
    }
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
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
    axum::Json(json!({"active": active, "finished": done})).into_response()
}

async fn get_execution(State(st): State<AppState>, Path(rest): Path<String>) -> Response {
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let e = a.handle.engine.read();
    if let Some(x) = e.execution(&rest) {
        return axum::Json(exec_json(x)).into_response();
    }
    match e.recent().find(|x| x.id == rest) {
        Some(x) => axum::Json(serde_json::to_value(x).unwrap_or(Value::Null)).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("no execution {rest:?}")),
    }
}

async fn execution_action(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(rest): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (exec, action) = match rest.rsplit_once('/') {
        Some((e, act @ ("approve" | "reject"))) => (e.to_string(), act),
        _ => {
            return err(
                StatusCode::NOT_FOUND,
                "POST /api/workflows/executions/{id}/approve or …/reject",
            );
        }
    };
    if a.users.is_empty() {
        return err(
            StatusCode::FORBIDDEN,
            "approvals need configured users ([workflows.users]) with roles",
        );
    }
    let Some(user) = a.user(&headers).cloned() else {
        return err(
            StatusCode::UNAUTHORIZED,
            "a bearer token of a configured user is required",
        );
    };
    let pending = a
        .handle
        .engine
        .read()
        .execution(&exec)
        .and_then(|e| e.approval.clone());
    let Some(pending) = pending else {
        return err(
            StatusCode::NOT_FOUND,
            format!("execution {exec:?} is not waiting for an approval"),
        );
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
                Err(e) => return err(StatusCode::BAD_REQUEST, format!("body: {e}")),
            }
        };
        let Some(digest) = b.digest else {
            return err(
                StatusCode::BAD_REQUEST,
                format!(
                    "approve the exact call: send {{\"digest\": \"{}\"}} (GET the execution to review what it runs)",
                    pending.digest
                ),
            );
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
    match append_and_wait(&st, &a, WorkflowCommand::Command { command: cmd }).await {
        Ok(()) => axum::Json(json!({"execution": exec, "action": action, "by": user.name}))
            .into_response(),
        Err(r) => {
            // A refusal by the engine (role, digest) is the client's problem, not a conflict.
            let (parts, body) = r.into_parts();
            if parts.status == StatusCode::CONFLICT {
                (StatusCode::FORBIDDEN, body).into_response()
            } else {
                Response::from_parts(parts, body)
            }
        }
    }
}

async fn strategies(State(st): State<AppState>) -> Response {
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let e = a.handle.engine.read();
    let list: Vec<Value> = e
        .config()
        .strategies
        .iter()
        .map(|s| json!({"id": s.id, "description": s.description, "match": s.spec.match_, "remedies": s.spec.remedies.iter().map(|r| &r.name).collect::<Vec<_>>()}))
        .collect();
    axum::Json(json!({"strategies": list})).into_response()
}

fn incident_ctx(st: &AppState, body: &[u8]) -> Result<(String, Value), Response> {
    #[derive(serde::Deserialize)]
    struct Req {
        incident: String,
    }
    let r: Req = serde_json::from_slice(body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            format!("body must be {{\"incident\": \"INC-…\"}}: {e}"),
        )
    })?;
    let Some(al) = &st.alerting else {
        return Err(err(
            StatusCode::SERVICE_UNAVAILABLE,
            "alerting is not running in this process",
        ));
    };
    let inc = al
        .engine
        .read()
        .incidents()
        .get(&r.incident)
        .cloned()
        .ok_or_else(|| {
            err(
                StatusCode::NOT_FOUND,
                format!("no incident {:?}", r.incident),
            )
        })?;
    let d = aiops_alerting::Decision::Incident(aiops_alerting::decision::IncidentChange {
        at_ms: inc.opened_at_ms,
        change: "opened".into(),
        incident: inc,
    });
    let (_, ctx, _) = aiops_workflow::engine::decision_ctx(&d)
        .ok_or_else(|| err(StatusCode::INTERNAL_SERVER_ERROR, "no context"))?;
    Ok((r.incident, ctx))
}

async fn diagnose(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (id, ctx) = match incident_ctx(&st, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
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
    axum::Json(json!({"incident": id, "strategy": chosen, "candidates": candidates, "evidence": obj.get("evidence"), "services": obj.get("services")})).into_response()
}

async fn fix(State(st): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let a = match api(&st) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let user = match require(&a, &headers, "operator") {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (id, ctx) = match incident_ctx(&st, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
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
    match append_and_wait(&st, &a, WorkflowCommand::Command { command: cmd }).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"execution": format!("autoheal/manual/{rid}")})),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// The workflow engine's and executor's counters in the Prometheus text format.
pub fn metrics_text(a: &WorkflowsApi) -> String {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    let e = a.handle.engine.read();
    let c = e.counters();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP aiops_workflow_executions_total Workflow executions by outcome."
    );
    let _ = writeln!(out, "# TYPE aiops_workflow_executions_total counter");
    for (k, v) in [
        ("started", c.started),
        ("succeeded", c.succeeded),
        ("failed", c.failed),
        ("escalated", c.escalated),
        ("cancelled", c.cancelled),
        ("throttled", c.throttled),
        ("queued", c.queued),
    ] {
        let _ = writeln!(
            out,
            "aiops_workflow_executions_total{{outcome=\"{k}\"}} {v}"
        );
    }
    for (name, help, v) in [
        (
            "aiops_workflow_intents_total",
            "Effect intents logged.",
            c.intents,
        ),
        (
            "aiops_workflow_results_total",
            "Effect results read back from the log.",
            c.results,
        ),
        (
            "aiops_workflow_rate_limited_total",
            "Times an action waited for a rate limit.",
            c.rate_limited,
        ),
        (
            "aiops_workflow_refused_total",
            "Steps refused (blast radius, parameters, templates).",
            c.refused,
        ),
        (
            "aiops_workflow_approvals_total",
            "Approvals requested.",
            c.approvals,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP aiops_workflow_active_executions Executions running or waiting.\n# TYPE aiops_workflow_active_executions gauge\naiops_workflow_active_executions {}",
        e.active().count()
    );
    let _ = writeln!(
        out,
        "# HELP aiops_workflow_pending_effects Intents without a result.\n# TYPE aiops_workflow_pending_effects gauge\naiops_workflow_pending_effects {}",
        e.pending_intents().count()
    );
    if let Some(x) = &a.executor {
        for (name, help, v) in [
            (
                "aiops_effect_attempts_total",
                "Provider calls made (attempts).",
                &x.stats.attempts,
            ),
            (
                "aiops_effect_succeeded_total",
                "Effects that succeeded.",
                &x.stats.succeeded,
            ),
            (
                "aiops_effect_failed_total",
                "Effects that failed after their retries.",
                &x.stats.failed,
            ),
            (
                "aiops_effect_resumed_total",
                "Effects run again after a restart (no result logged).",
                &x.stats.resumed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
    out
}
