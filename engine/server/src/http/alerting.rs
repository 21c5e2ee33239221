//! Alerting over HTTP: the subset of Alertmanager's API v2 that `amtool` and Grafana's
//! Alertmanager data source use (alerts, alert groups, silences, status), plus incidents and
//! statistics. Reads answer from the engine's state; writes are control events appended to the
//! log, and answer once the engine has applied them (or refused them, with the reason).

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::alerting::codec::control_message;
use crate::alerting::processor::AlertingHandle;
use aiops_alerting::Control;
use aiops_alerting::engine::AlertView;
use aiops_alerting::matcher::{Matcher, all_match};
use aiops_alerting::silence::{PostableSilence, format_rfc3339_ms};
use aiops_runtime::CommandError;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long a write waits for the engine to apply it before answering.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the alerting handlers need.
#[derive(Clone)]
pub struct AlertingState {
    /// The alerting engine, when it runs in this process.
    pub alerting: Option<Arc<AlertingHandle>>,
    /// The knowledge base (an incident shows its runbooks and similar past incidents).
    pub knowledge: Option<Arc<aiops_runtime::knowledge::processor::KnowledgeHandle>>,
    /// Mined templates (the search fallback of runbook links).
    pub templates: Option<Arc<aiops_runtime::templates::processor::TemplatesHandle>>,
    /// The log: commands are appended to it.
    pub log: Arc<dyn aiops_log::EventLog>,
    /// When the process started, Unix ms (`uptime` of the status).
    pub started_ms: i64,
}

/// Adds the alerting routes to the router.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/v2/alerts", get(list_alerts))
        .route("/api/v2/alerts/groups", get(list_groups))
        .route("/api/v2/silences", get(list_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/incidents", get(list_incidents))
        .route("/api/incidents/{id}", get(get_incident))
        .route("/api/incidents/{id}/ack", post(ack_incident))
        .route("/api/incidents/{id}/resolve", post(resolve_incident))
        .route("/api/alerting/stats", get(stats))
        .route(
            "/api/alerting/inhibit_rules",
            get(list_inhibit_rules).post(post_inhibit_rule),
        )
        .route(
            "/api/alerting/inhibit_rules/{id}",
            axum::routing::delete(delete_inhibit_rule),
        )
}

/// Alertmanager answers API errors as a JSON string with a status; `amtool` prints it.
fn am_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::alertmanager(status, message)
}

fn handle(st: &AlertingState) -> ApiResult<Arc<AlertingHandle>> {
    st.alerting.clone().ok_or_else(|| {
        am_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "alerting is not running in this process",
        )
    })
}

/// Query parameters of `GET /api/v2/alerts` and `/alerts/groups` (repeated `filter`).
#[derive(Debug, Default)]
struct AlertQuery {
    active: bool,
    silenced: bool,
    inhibited: bool,
    filter: Vec<Matcher>,
    receiver: Option<regex::Regex>,
    /// aiops' addition: at most this many alerts (the newest first), per group for groups.
    /// Alertmanager has no such parameter; its clients never send it.
    limit: Option<usize>,
}

fn parse_bool(v: &str, name: &str) -> ApiResult<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad_query(format!("{name}: {v:?} is not a boolean"))),
    }
}

fn bad_query(message: String) -> ApiError {
    am_error(StatusCode::BAD_REQUEST, message)
}

fn alert_query(raw: &[(String, String)]) -> ApiResult<AlertQuery> {
    let mut q = AlertQuery {
        active: true,
        silenced: true,
        inhibited: true,
        ..AlertQuery::default()
    };
    for (k, v) in raw {
        match k.as_str() {
            "active" => q.active = parse_bool(v, k)?,
            "silenced" => q.silenced = parse_bool(v, k)?,
            "inhibited" => q.inhibited = parse_bool(v, k)?,
            "unprocessed" => {
                parse_bool(v, k)?;
            }
            "filter" => q
                .filter
                .push(Matcher::parse(v).map_err(|e| bad_query(format!("filter: {e}")))?),
            "limit" => {
                q.limit = Some(
                    v.parse()
                        .map_err(|_| bad_query(format!("limit: {v:?} is not a count")))?,
                );
            }
            "receiver" => {
                q.receiver = Some(
                    regex::Regex::new(&format!("^(?:{v})$"))
                        .map_err(|e| bad_query(format!("receiver: {e}")))?,
                );
            }
            _ => {}
        }
    }
    Ok(q)
}

impl AlertQuery {
    fn keeps(&self, v: &AlertView<'_>) -> bool {
        let silenced = !v.silenced_by.is_empty();
        let inhibited = !v.inhibited_by.is_empty();
        if (!self.active && v.state() == "active")
            || (!self.silenced && silenced)
            || (!self.inhibited && inhibited)
        {
            return false;
        }
        if !all_match(&self.filter, &v.entry.alert.labels) {
            return false;
        }
        self.receiver
            .as_ref()
            .is_none_or(|re| v.receivers.iter().any(|r| re.is_match(r)))
    }
}

/// With a limit, keeps the `limit` newest alerts (by start), newest first; without, leaves the
/// list as it is.
fn newest(alerts: &mut Vec<&AlertView<'_>>, limit: Option<usize>) {
    if let Some(n) = limit {
        alerts.sort_by_key(|v| std::cmp::Reverse(v.entry.alert.starts_at_ms));
        alerts.truncate(n);
    }
}

/// An alert in Alertmanager's `gettableAlert` form.
fn gettable(v: &AlertView<'_>) -> Value {
    let e = v.entry;
    let a = &e.alert;
    let firing = e.status == aiops_alerting::model::Status::Firing;
    // A firing alert's endsAt is when it would resolve unless seen again, as Alertmanager shows.
    let ends = if firing {
        e.expires_ms.unwrap_or(e.last_seen_ms)
    } else {
        a.ends_at_ms.unwrap_or(e.last_seen_ms)
    };
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": format_rfc3339_ms(a.starts_at_ms),
        "endsAt": format_rfc3339_ms(ends),
        "updatedAt": format_rfc3339_ms(e.last_seen_ms),
        "generatorURL": a.generator_url.clone().unwrap_or_default(),
        "fingerprint": a.fingerprint,
        "receivers": v.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {
            "state": v.state(),
            "silencedBy": v.silenced_by,
            "inhibitedBy": v.inhibited_by,
            "mutedBy": [],
        },
        // aiops' additions; Alertmanager clients ignore unknown fields.
        "aiops": {
            "status": e.status.as_str(),
            "count": e.count,
            "firstSeen": format_rfc3339_ms(e.first_seen_ms),
            "flapping": e.flapping,
            "source": a.source,
            "severity": a.severity,
            "service": a.service,
        },
    })
}

/// The engine and the parsed alert query.
fn handle_and_query(
    st: &AlertingState,
    raw: &[(String, String)],
) -> ApiResult<(Arc<AlertingHandle>, AlertQuery)> {
    Ok((handle(st)?, alert_query(raw)?))
}

async fn list_alerts(
    State(st): State<AlertingState>,
    Query(raw): Query<Vec<(String, String)>>,
) -> ApiResult {
    let (h, q) = handle_and_query(&st, &raw)?;
    let engine = h.engine.read();
    // Resolved alerts are history: Alertmanager lists only alerts that have not ended.
    let all = engine.alerts();
    let mut kept: Vec<_> = all
        .iter()
        .filter(|v| v.entry.status == aiops_alerting::model::Status::Firing && q.keeps(v))
        .collect();
    newest(&mut kept, q.limit);
    let out: Vec<Value> = kept.into_iter().map(gettable).collect();
    Ok(axum::Json(out).into_response())
}

async fn list_groups(
    State(st): State<AlertingState>,
    Query(raw): Query<Vec<(String, String)>>,
) -> ApiResult {
    let (h, q) = handle_and_query(&st, &raw)?;
    let engine = h.engine.read();
    let out: Vec<Value> = engine
        .groups()
        .iter()
        .filter_map(|(g, alerts)| {
            let mut kept: Vec<_> = alerts.iter().filter(|v| q.keeps(v)).collect();
            let total = kept.len();
            newest(&mut kept, q.limit);
            let alerts: Vec<Value> = kept.into_iter().map(gettable).collect();
            let keep = q
                .receiver
                .as_ref()
                .is_none_or(|re| re.is_match(&g.receiver));
            (keep && !alerts.is_empty()).then(|| {
                json!({
                    "labels": g.labels,
                    "receiver": {"name": g.receiver},
                    "alerts": alerts,
                    // aiops' addition: how many alerts matched before `limit`.
                    "aiops": {"total": total},
                })
            })
        })
        .collect();
    Ok(axum::Json(out).into_response())
}

async fn list_silences(
    State(st): State<AlertingState>,
    Query(raw): Query<Vec<(String, String)>>,
) -> ApiResult {
    let h = handle(&st)?;
    let mut filter = Vec::new();
    for (k, v) in &raw {
        if k == "filter" {
            match Matcher::parse(v) {
                Ok(m) => filter.push(m),
                Err(e) => return Err(am_error(StatusCode::BAD_REQUEST, format!("filter: {e}"))),
            }
        }
    }
    let engine = h.engine.read();
    let now = engine.clock_ms().max(crate::clock::now_ms());
    let out: Vec<Value> = engine
        .silences()
        .iter()
        .filter(|s| {
            // A silence passes a filter when its own matchers include each filter matcher.
            filter
                .iter()
                .all(|f| s.matchers.iter().any(|m| m.to_string() == f.to_string()))
        })
        .map(|s| serde_json::to_value(s.to_gettable(now)).unwrap_or(Value::Null))
        .collect();
    Ok(axum::Json(out).into_response())
}

async fn get_silence(State(st): State<AlertingState>, Path(id): Path<String>) -> ApiResult {
    let h = handle(&st)?;
    let engine = h.engine.read();
    let now = engine.clock_ms().max(crate::clock::now_ms());
    match engine.silences().get(&id) {
        Some(s) => Ok(axum::Json(s.to_gettable(now)).into_response()),
        None => Err(am_error(
            StatusCode::NOT_FOUND,
            format!("silence {id} not found"),
        )),
    }
}

/// Appends a command and waits for the engine to apply it.
async fn command(st: &AlertingState, h: &AlertingHandle, c: Control) -> ApiResult<()> {
    let now = crate::clock::now_ms();
    let msg = control_message(c, now)
        .map_err(|e| am_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    aiops_runtime::progress::command(&*st.log, &h.progress, "alerting engine", msg, APPLY_TIMEOUT)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            CommandError::Log(_) => am_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            CommandError::Refused(_) | CommandError::Timeout(_) => {
                am_error(StatusCode::BAD_REQUEST, e.to_string())
            }
        })
}

async fn post_silence(State(st): State<AlertingState>, body: axum::body::Bytes) -> ApiResult {
    let h = handle(&st)?;
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return Err(am_error(
                StatusCode::BAD_REQUEST,
                format!("bad silence: {e}"),
            ));
        }
    };
    let now = crate::clock::now_ms();
    let id = match p.id.as_deref().filter(|i| !i.is_empty()) {
        Some(id) => {
            if h.engine.read().silences().get(id).is_none() {
                return Err(am_error(
                    StatusCode::NOT_FOUND,
                    format!("silence {id} not found"),
                ));
            }
            id.to_string()
        }
        None => new_silence_id(now, &body),
    };
    let silence = match p.into_silence(id.clone(), now) {
        Ok(s) => s,
        Err(e) => return Err(am_error(StatusCode::BAD_REQUEST, e.to_string())),
    };
    if let Err(e) = silence.validate() {
        return Err(am_error(StatusCode::BAD_REQUEST, e.to_string()));
    }
    command(&st, &h, Control::SilenceSet { silence }).await?;
    Ok(axum::Json(json!({ "silenceID": id })).into_response())
}

/// A UUID-shaped id from the time and the request (unique enough: two identical requests in the
/// same millisecond are the same silence).
fn new_silence_id(now: i64, body: &[u8]) -> String {
    let a = aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, body);
    let b = aiops_schemas::partition::fnv1a(a ^ (now as u64), &now.to_le_bytes());
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

async fn delete_silence(State(st): State<AlertingState>, Path(id): Path<String>) -> ApiResult {
    let h = handle(&st)?;
    if h.engine.read().silences().get(&id).is_none() {
        return Err(am_error(
            StatusCode::NOT_FOUND,
            format!("silence {id} not found"),
        ));
    }
    command(&st, &h, Control::SilenceExpire { id }).await?;
    Ok(StatusCode::OK.into_response())
}

/// The alerting configuration with every secret field replaced by `<secret>`; never the raw
/// text, even if it cannot be re-read.
fn shown_config(text: &str) -> String {
    aiops_alerting::secret_fields::redacted_yaml(text).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the alerting configuration cannot be shown redacted");
        "# the configuration cannot be shown (see the server log)\n".to_string()
    })
}

async fn status(State(st): State<AlertingState>) -> ApiResult {
    let h = handle(&st)?;
    Ok(axum::Json(json!({
        "cluster": {"name": "aiops", "status": "disabled", "peers": []},
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "none (aiops)",
        },
        // A viewer may read this: secret fields shown as Alertmanager shows them (`<secret>`).
        "config": {"original": shown_config(&h.config_text)},
        "uptime": format_rfc3339_ms(st.started_ms),
    }))
    .into_response())
}

async fn receivers(State(st): State<AlertingState>) -> ApiResult {
    let h = handle(&st)?;
    let engine = h.engine.read();
    let out: Vec<Value> = engine
        .config()
        .receivers
        .iter()
        .map(|r| json!({"name": r.name}))
        .collect();
    Ok(axum::Json(out).into_response())
}

#[derive(Debug, Deserialize)]
struct IncidentQuery {
    /// `open` (default: open and acknowledged), `resolved`, or `all`.
    status: Option<String>,
}

async fn list_incidents(
    State(st): State<AlertingState>,
    Query(q): Query<IncidentQuery>,
) -> ApiResult {
    let h = handle(&st)?;
    let engine = h.engine.read();
    let inc = engine.incidents();
    let which = q.status.as_deref().unwrap_or("open");
    let list: Vec<Value> = match which {
        "open" => inc.open().map(summary).collect(),
        "resolved" => inc.closed().map(summary).collect(),
        "all" => inc.open().chain(inc.closed()).map(summary).collect(),
        other => {
            return Err(ApiError::bad_request(format!(
                "status must be open, resolved or all, not {other:?}"
            )));
        }
    };
    Ok(axum::Json(json!({ "incidents": list })).into_response())
}

/// An incident without its timeline, for lists.
fn summary(i: &aiops_alerting::incident::Incident) -> Value {
    json!({
        "id": i.id,
        "title": i.title,
        "status": i.status,
        "severity": i.severity,
        "opened_at": format_rfc3339_ms(i.opened_at_ms),
        "acknowledged_at": i.acknowledged_at_ms.map(format_rfc3339_ms),
        "resolved_at": i.resolved_at_ms.map(format_rfc3339_ms),
        "alerts": i.alerts.len(),
        "firing": i.alerts.values().filter(|a| a.status == "firing").count(),
        "root_causes": i.root_causes,
    })
}

async fn get_incident(State(st): State<AlertingState>, Path(id): Path<String>) -> ApiResult {
    let h = handle(&st)?;
    if let Some(k) = &st.knowledge {
        // Before the alerting engine's lock: a stale index is rebuilt off the async workers.
        super::knowledge::warm(k).await?;
    }
    let engine = h.engine.read();
    let Some(i) = engine.incidents().get(&id) else {
        return Err(ApiError::not_found(format!("no incident {id}")));
    };
    let mut v = serde_json::to_value(i).map_err(|e| ApiError::internal(e.to_string()))?;
    if let (Some(k), Some(o)) = (&st.knowledge, v.as_object_mut()) {
        // Runbooks linked to its alerts and similar resolved incidents, with their root cause
        // and what fixed them.
        let kn =
            crate::knowledge::incident_knowledge(&k.kb.read(), &engine, i, st.templates.as_deref())
                .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Value::Object(m) = kn {
            o.extend(m);
        }
    }
    Ok(axum::Json(v).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct Who {
    by: Option<String>,
}

fn who(body: &[u8]) -> ApiResult<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("api".into());
    }
    let w: Who = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("bad body: {e}")))?;
    Ok(w.by
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "api".into()))
}

async fn incident_command(
    st: AlertingState,
    id: String,
    body: &[u8],
    make: fn(String, String) -> Control,
) -> ApiResult {
    let h = handle(&st)?;
    let by = who(body)?;
    if h.engine.read().incidents().get(&id).is_none() {
        return Err(ApiError::not_found(format!("no incident {id}")));
    }
    command(&st, &h, make(id.clone(), by)).await?;
    let engine = h.engine.read();
    match engine.incidents().get(&id) {
        Some(i) => Ok(axum::Json(i).into_response()),
        None => Err(ApiError::not_found(format!("no incident {id}"))),
    }
}

async fn ack_incident(
    State(st): State<AlertingState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    incident_command(st, id, &body, |id, by| Control::IncidentAck { id, by }).await
}

async fn resolve_incident(
    State(st): State<AlertingState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    incident_command(st, id, &body, |id, by| Control::IncidentResolve { id, by }).await
}

async fn stats(State(st): State<AlertingState>) -> ApiResult {
    let h = handle(&st)?;
    let (s, clock) = {
        let e = h.engine.read();
        (e.stats(), e.clock_ms())
    };
    let run = *h.summary.lock();
    Ok(axum::Json(json!({ "clock_ms": clock, "stats": s, "runner": run })).into_response())
}

async fn list_inhibit_rules(State(st): State<AlertingState>) -> ApiResult {
    let h = handle(&st)?;
    let engine = h.engine.read();
    Ok(axum::Json(json!({
        "configured": engine.config().inhibit_rules,
        "api": engine.api_inhibit_rules(),
    }))
    .into_response())
}

/// `POST /api/alerting/inhibit_rules`: `{"id"?, "source_matchers", "target_matchers", "equal"}`
/// (matchers in Alertmanager's syntax); stored as a control event.
async fn post_inhibit_rule(State(st): State<AlertingState>, body: axum::body::Bytes) -> ApiResult {
    let h = handle(&st)?;
    let mut v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Err(ApiError::bad_request(format!("bad inhibition rule: {e}")));
        }
    };
    let id = v
        .as_object_mut()
        .and_then(|o| o.remove("id"))
        .and_then(|i| i.as_str().map(str::to_string));
    let mut rule: aiops_alerting::config::InhibitRuleConfig = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => {
            return Err(ApiError::bad_request(format!("bad inhibition rule: {e}")));
        }
    };
    let legacy =
        aiops_alerting::matcher::matchers_from_legacy(&rule.source_match, &rule.source_match_re)
            .and_then(|s| {
                aiops_alerting::matcher::matchers_from_legacy(
                    &rule.target_match,
                    &rule.target_match_re,
                )
                .map(|t| (s, t))
            });
    match legacy {
        Ok((s, t)) => {
            rule.source_matchers.extend(s);
            rule.target_matchers.extend(t);
            rule.source_match.clear();
            rule.source_match_re.clear();
            rule.target_match.clear();
            rule.target_match_re.clear();
        }
        Err(e) => return Err(ApiError::bad_request(e.to_string())),
    }
    let id = id
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| new_silence_id(crate::clock::now_ms(), &body));
    command(
        &st,
        &h,
        Control::InhibitRuleSet {
            id: id.clone(),
            rule,
        },
    )
    .await?;
    Ok(axum::Json(json!({ "id": id })).into_response())
}

async fn delete_inhibit_rule(State(st): State<AlertingState>, Path(id): Path<String>) -> ApiResult {
    let h = handle(&st)?;
    if !h.engine.read().api_inhibit_rules().contains_key(&id) {
        return Err(ApiError::not_found(format!("no inhibition rule {id}")));
    }
    command(&st, &h, Control::InhibitRuleDelete { id }).await?;
    Ok(StatusCode::OK.into_response())
}
