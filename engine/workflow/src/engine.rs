//! The workflow engine: a deterministic state machine over the log. Triggers (alerting
//! decisions, events, commands, clock ticks) start executions; an execution walks its steps and
//! actions, rendering each call in the sandbox and emitting an [`Intent`] with an idempotency key;
//! the executor (outside, at the edge) runs the intent and logs an [`EffectResult`], which comes
//! back in here and moves the execution on. Replaying the same log gives the same events with the
//! same ids, and never runs anything: only the executor does, and only for intents without a
//! result (DESIGN.md invariants 1–3).

use crate::autoheal::Strategy;
use crate::compile::{Call, Catalog, Flow, Item, Trigger, Workflow};
use crate::event::{EffectResult, Intent, WorkflowControl, WorkflowEvent};
use crate::filter::all_match;
use crate::template::{Renderer, secret_marker};
use aiops_alerting::Decision;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Finished executions kept for the API.
const RECENT_KEPT: usize = 1000;
/// Auto-heal's pseudo-workflow id.
pub const AUTOHEAL: &str = "autoheal";

/// A rate: `count` calls per `per_ms` of log time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Calls.
    pub count: usize,
    /// Window.
    pub per_ms: i64,
}

/// Rate limits on actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Per provider instance.
    pub provider: BTreeMap<String, Rate>,
    /// For providers not listed.
    pub default_provider: Option<Rate>,
    /// Per provider and target.
    pub per_target: Option<Rate>,
    /// Providers without limits: Alertmanager receivers' integrations, which Alertmanager does
    /// not rate-limit (the alerting engine's grouping and notification budget bound them), so a
    /// notification is never skipped by a limit meant for hand-written workflows.
    pub unlimited: std::collections::BTreeSet<String>,
}

/// Everything the engine runs.
#[derive(Clone)]
pub struct EngineConfig {
    /// Workflows by id.
    pub workflows: BTreeMap<String, Arc<Workflow>>,
    /// Auto-heal strategies in order of preference.
    pub strategies: Vec<Arc<Strategy>>,
    /// Rate limits.
    pub limits: Limits,
    /// Providers and secrets.
    pub catalog: Arc<dyn Catalog>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("strategies", &self.strategies.len())
            .finish()
    }
}

/// What an execution follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plan {
    /// A workflow's items.
    Workflow(String),
    /// An auto-heal strategy's remedies.
    Strategy(String),
}

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecStatus {
    /// Waiting for a concurrency slot.
    Queued,
    /// Running (or waiting for results).
    Running,
    /// Waiting for an approval.
    WaitingApproval,
    /// Waiting for the rate limit.
    WaitingRate,
    /// Running its escalation.
    Escalating,
}

/// A pending approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingApproval {
    /// Step.
    pub step: String,
    /// Digest of the rendered calls.
    pub digest: String,
    /// Role required.
    pub role: String,
    /// Expiry (log time).
    pub expires_at_ms: i64,
    /// The rendered calls.
    pub calls: Vec<Value>,
}

/// An active execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Id: `<workflow>/<cause>`.
    pub id: String,
    /// Workflow id (`autoheal` for strategies).
    pub workflow: String,
    /// What it follows.
    pub plan: Plan,
    /// Trigger kind.
    pub trigger: String,
    /// What caused it.
    pub cause: String,
    /// Incident, if any.
    pub incident: Option<String>,
    /// Template context of the trigger.
    pub ctx: Value,
    /// Status.
    pub status: ExecStatus,
    /// Current item.
    pub item: usize,
    /// Keys of the current item's calls still without results.
    pub pending: BTreeSet<String>,
    /// Results of the current item's calls, by index.
    pub outcomes: BTreeMap<usize, EffectResult>,
    /// Calls of the current item.
    pub calls: usize,
    /// Results of finished steps (`steps.<name>`).
    pub steps: Map<String, Value>,
    /// Digest approved for the current item.
    pub approved: Option<String>,
    /// Pending approval.
    pub approval: Option<PendingApproval>,
    /// Why it is failing (while escalating).
    pub failure: Option<String>,
    /// Started (log time).
    pub started_ms: i64,
    /// Times it jumped (auto-heal's next remedy); bounds loops.
    pub jumps: u32,
    /// Since when the current item waits for a rate limit.
    #[serde(default)]
    pub rate_wait_since: Option<i64>,
}

/// A finished execution (for the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    /// Id.
    pub id: String,
    /// Workflow.
    pub workflow: String,
    /// Status.
    pub status: String,
    /// Why.
    pub reason: String,
    /// Cause.
    pub cause: String,
    /// Incident.
    pub incident: Option<String>,
    /// Started.
    pub started_ms: i64,
    /// Finished.
    pub finished_ms: i64,
    /// Step results.
    pub steps: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ThrottleEntry {
    until_ms: Option<i64>,
    bind: Option<String>,
}

/// Counts since the state began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Executions started.
    pub started: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed (no escalation or escalation failed).
    pub failed: u64,
    /// Escalated.
    pub escalated: u64,
    /// Cancelled (queue full).
    pub cancelled: u64,
    /// Queued for concurrency.
    pub queued: u64,
    /// Held by a throttle.
    pub throttled: u64,
    /// Times an action waited for a rate limit.
    pub rate_limited: u64,
    /// Actions refused (blast radius, bad parameters, template errors).
    pub refused: u64,
    /// Intents emitted.
    pub intents: u64,
    /// Results received.
    pub results: u64,
    /// Approvals requested.
    pub approvals: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    now_ms: i64,
    executions: BTreeMap<String, Execution>,
    by_key: BTreeMap<String, String>,
    intents: BTreeMap<String, Intent>,
    queued: BTreeMap<String, VecDeque<String>>,
    running: BTreeMap<String, usize>,
    rate_waiting: VecDeque<String>,
    throttles: BTreeMap<String, ThrottleEntry>,
    schedules: BTreeMap<String, i64>,
    rate: BTreeMap<String, VecDeque<i64>>,
    recent: VecDeque<ExecutionSummary>,
    counters: Counters,
}

/// Why a checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
#[error("workflow state: {0}")]
pub struct StateError(String);

/// The engine.
pub struct WorkflowEngine {
    cfg: EngineConfig,
    renderer: Renderer,
    st: State,
    /// No pending approval expires before this (`None`: not known, scan). Every record moves
    /// the engine's time; without this floor each would scan every active execution for expired
    /// approvals — O(backlog) per record when thousands of effects are in flight. Derived, so not
    /// in the state: a restored engine starts with `None`.
    approval_floor: Option<i64>,
}

impl std::fmt::Debug for WorkflowEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowEngine")
            .field("cfg", &self.cfg)
            .field("active", &self.st.executions.len())
            .finish()
    }
}

/// The first character of a secret marker ([`crate::template::SECRET_OPEN`]).
const MARKER_OPEN: char = '\u{27e6}';

/// Replaces the marker's opening bracket in every string and every object key, at every depth,
/// so data holds no `⟦` at all. Since no template filter can make that character out of other
/// characters, only the `secrets` object of the context (added after this) can put a marker
/// into a rendered value: data cannot forge one, in a value, a key (`{{ alert.labels }}`
/// renders the keys) or by concatenating pieces.
fn neutralize_markers(v: &mut Value) {
    match v {
        Value::String(s) if s.contains(MARKER_OPEN) => *s = s.replace(MARKER_OPEN, "["),
        Value::Array(a) => a.iter_mut().for_each(neutralize_markers),
        Value::Object(o) if o.keys().any(|k| k.contains(MARKER_OPEN)) => {
            let old = std::mem::take(o);
            for (k, mut x) in old {
                neutralize_markers(&mut x);
                o.insert(k.replace(MARKER_OPEN, "["), x);
            }
        }
        Value::Object(o) => o.values_mut().for_each(neutralize_markers),
        _ => {}
    }
}

fn digest(v: &Value) -> String {
    let mut h = Sha256::new();
    h.update(v.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The alert's annotations when the decision carries them (an `annotations` field of the
/// change, read through serde so this follows the alerting crate without a version lock), else
/// an empty object.
fn alert_annotations(c: &aiops_alerting::decision::AlertChange) -> Value {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.get("annotations").cloned())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// The first of `keys` found in the annotations, then in the labels; `""` when none is (Keep's
/// `alert.description` on an alert that has none renders empty).
fn alert_field(c: &aiops_alerting::decision::AlertChange, keys: &[&str]) -> String {
    let ann = alert_annotations(c);
    keys.iter()
        .find_map(|k| {
            ann.get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .or_else(|| c.labels.get(*k).filter(|s| !s.is_empty()).cloned())
        })
        .unwrap_or_default()
}

/// Keep's `alert.details`: the annotations then the labels, `key=value` joined by `, `.
fn alert_details(c: &aiops_alerting::decision::AlertChange) -> String {
    let ann = alert_annotations(c);
    let mut parts: Vec<String> = ann
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| format!("{k}={s}")))
        .collect();
    parts.extend(c.labels.iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(", ")
}

/// Keep's `alert.ticket_id`: a `ticket_id` (or `ticket`) annotation or label, else null (falsy:
/// `if: "{{ not alert.ticket_id }}"` holds).
fn alert_ticket(c: &aiops_alerting::decision::AlertChange) -> Value {
    let t = alert_field(c, &["ticket_id", "ticket"]);
    if t.is_empty() {
        Value::Null
    } else {
        Value::String(t)
    }
}

/// A built-in provider answers `{"results": …, "<more>": …}`: `steps.NAME.results` is its
/// `results` and the other fields sit beside it (`steps.NAME.incidents`), as Keep shows them.
fn lift_builtin_results(entry: &mut Value) {
    if !entry.get("results").is_some_and(Value::is_object) {
        return;
    }
    let Some(Value::Object(resp)) = entry.get_mut("results").map(Value::take) else {
        return;
    };
    let Some(o) = entry.as_object_mut() else {
        return;
    };
    for (k, v) in resp {
        if k == "results" || !o.contains_key(&k) {
            o.insert(k, v);
        }
    }
}

/// The template context of an alerting decision, with its trigger kind and the id of what
/// resolves a throttle bound to it (also used by the API to diagnose an incident).
pub fn decision_ctx(d: &Decision) -> Option<(&'static str, Value, Option<String>)> {
    match d {
        Decision::AlertState(c) => Some((
            "alert",
            json!({
                "alert": {
                    "fingerprint": c.fingerprint, "name": c.name, "status": c.change.as_str(),
                    "severity": c.severity, "service": c.service, "source": c.source,
                    "count": c.count, "labels": c.labels, "at_ms": c.at_ms,
                    "annotations": alert_annotations(c), "description": alert_field(c, &["description", "summary", "message"]),
                    "details": alert_details(c), "ticket_id": alert_ticket(c),
                },
            }),
            Some(c.fingerprint.clone()),
        )),
        Decision::Incident(i) => {
            let inc = &i.incident;
            let alerts: Vec<Value> = inc
                .alerts
                .iter()
                .map(|(fp, a)| {
                    json!({"fingerprint": fp, "name": a.name, "service": a.service,
                           "severity": a.severity, "status": a.status})
                })
                .collect();
            let services = inc.services();
            let evidence: Vec<&str> = inc
                .root_causes
                .iter()
                .flat_map(|r| r.reasons.iter())
                .filter(|r| r.contains("anomal"))
                .map(|_| "anomaly")
                .take(1)
                .collect();
            Some((
                "incident",
                json!({
                    "incident": {
                        "id": inc.id, "title": inc.title, "change": i.change,
                        "status": inc.status, "severity": inc.severity,
                        "service": inc.root_causes.first().map(|r| r.service.clone())
                            .or_else(|| services.iter().next().map(|s| s.to_string())),
                        "services": services, "alerts": alerts,
                        "root_causes": inc.root_causes, "evidence": evidence,
                        "opened_at_ms": inc.opened_at_ms,
                    },
                }),
                Some(inc.id.clone()),
            ))
        }
        Decision::Notification(n) => Some((
            "notification",
            json!({"notification": {
                "id": n.id, "receiver": n.receiver, "route": n.route, "group_key": n.group_key,
                "group_labels": n.group_labels, "firing": n.firing, "resolved": n.resolved,
                "reason": n.reason, "text": n.text(), "summary": n.summary,
                "status": if n.firing.is_empty() { "resolved" } else { "firing" },
            }}),
            Some(n.group_key.clone()),
        )),
        Decision::Stats(_) => None,
    }
}

impl WorkflowEngine {
    /// An engine with empty state.
    pub fn new(cfg: EngineConfig, renderer: Renderer) -> WorkflowEngine {
        WorkflowEngine {
            cfg,
            renderer,
            st: State::default(),
            approval_floor: Some(i64::MAX),
        }
    }

    /// Replaces the configuration (a new deployment); the state stays. Executions of workflows
    /// that are gone fail at their next step.
    pub fn set_config(&mut self, cfg: EngineConfig) {
        self.cfg = cfg;
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The renderer (for previews).
    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    /// The state as JSON (checkpoint).
    ///
    /// # Errors
    /// Serialization failure (a bug).
    pub fn snapshot(&self) -> Result<Vec<u8>, StateError> {
        serde_json::to_vec(&self.st).map_err(|e| StateError(e.to_string()))
    }

    /// The state as of now, owned, and what serializes it exactly as
    /// [`WorkflowEngine::snapshot`] does (a checkpoint written beside the engine).
    pub fn snapshot_later(&self) -> impl FnOnce() -> Result<Vec<u8>, StateError> + Send + 'static {
        let st = self.st.clone();
        move || serde_json::to_vec(&st).map_err(|e| StateError(e.to_string()))
    }

    /// Restores a snapshot.
    ///
    /// # Errors
    /// A snapshot that does not parse.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.st = serde_json::from_slice(bytes).map_err(|e| StateError(e.to_string()))?;
        self.approval_floor = None;
        Ok(())
    }

    /// Intents without a result yet (what the executor must run), in key order.
    pub fn pending_intents(&self) -> impl Iterator<Item = &Intent> {
        self.st.intents.values()
    }

    /// One pending intent by key.
    pub fn pending_intent(&self, key: &str) -> Option<&Intent> {
        self.st.intents.get(key)
    }

    /// Active executions.
    pub fn active(&self) -> impl Iterator<Item = &Execution> {
        self.st.executions.values()
    }

    /// One active execution.
    pub fn execution(&self, id: &str) -> Option<&Execution> {
        self.st.executions.get(id)
    }

    /// Recently finished executions, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &ExecutionSummary> {
        self.st.recent.iter()
    }

    /// Counts.
    pub fn counters(&self) -> Counters {
        self.st.counters
    }

    /// The engine's time (the latest log time it has seen).
    pub fn now_ms(&self) -> i64 {
        self.st.now_ms
    }

    /// The next log time at which the engine has something to do without new input
    /// (schedules, approval expiries, rate-limited actions).
    pub fn next_timer_ms(&self) -> Option<i64> {
        let mut t: Option<i64> = None;
        let mut upd = |x: i64| t = Some(t.map_or(x, |y| y.min(x)));
        match self.approval_floor {
            // A floor below the real expiry only makes a tick come early; that tick's scan
            // raises the floor.
            Some(f) if f != i64::MAX => upd(f),
            Some(_) => {}
            None => {
                for e in self.st.executions.values() {
                    if let Some(a) = &e.approval {
                        upd(a.expires_at_ms);
                    }
                }
            }
        }
        if !self.st.rate_waiting.is_empty() {
            upd(self.st.now_ms + 1000);
        }
        for v in self.st.schedules.values() {
            upd(*v);
        }
        t
    }

    fn advance_time(&mut self, at_ms: i64, out: &mut Vec<WorkflowEvent>) {
        if at_ms > self.st.now_ms {
            self.st.now_ms = at_ms;
        }
        let now = self.st.now_ms;
        // Approvals that expired (none can before the floor).
        let expired: Vec<String> = if self.approval_floor.is_some_and(|f| f > now) {
            Vec::new()
        } else {
            let mut floor = i64::MAX;
            let expired = self
                .st
                .executions
                .values()
                .filter(|e| {
                    let due = e.approval.as_ref().map(|a| a.expires_at_ms);
                    if let Some(t) = due.filter(|t| *t > now) {
                        floor = floor.min(t);
                    }
                    e.status == ExecStatus::WaitingApproval && due.is_some_and(|t| t <= now)
                })
                .map(|e| e.id.clone())
                .collect();
            self.approval_floor = Some(floor);
            expired
        };
        for id in expired {
            if let Some(e) = self.st.executions.get_mut(&id) {
                let step = e.approval.take().map(|a| a.step).unwrap_or_default();
                out.push(WorkflowEvent::ApprovalTimedOut {
                    execution: id.clone(),
                    step: step.clone(),
                    at_ms: now,
                });
                self.fail(&id, format!("approval of step {step} timed out"), out);
            }
        }
        // Rate-limited executions, in the order they started waiting.
        let waiting: Vec<String> = self.st.rate_waiting.drain(..).collect();
        for id in waiting {
            if let Some(e) = self.st.executions.get_mut(&id)
                && e.status == ExecStatus::WaitingRate
            {
                e.status = ExecStatus::Running;
                self.advance(&id, out);
            }
        }
        self.fire_schedules(now, out);
    }

    fn fire_schedules(&mut self, now: i64, out: &mut Vec<WorkflowEvent>) {
        let mut fires = Vec::new();
        for wf in self.cfg.workflows.values().filter(|w| !w.disabled) {
            for (i, t) in wf.triggers.iter().enumerate() {
                let Trigger::Schedule(s, _) = t else { continue };
                let key = format!("{}#{i}", wf.id);
                let next_after = |t: i64| -> i64 {
                    chrono::DateTime::from_timestamp_millis(t)
                        .and_then(|d| s.after(&d).next())
                        .map_or(i64::MAX, |d| d.timestamp_millis())
                };
                match self.st.schedules.get(&key).copied() {
                    None => {
                        self.st.schedules.insert(key, next_after(now));
                    }
                    Some(next) if next <= now => {
                        fires.push((wf.clone(), next));
                        self.st.schedules.insert(key, next_after(now));
                    }
                    Some(_) => {}
                }
            }
        }
        for (wf, at) in fires {
            let ctx = json!({"schedule": {"at_ms": at}});
            self.trigger(
                &wf,
                "schedule",
                format!("schedule/{at}"),
                ctx,
                None,
                None,
                out,
            );
        }
    }

    /// Feeds an alerting decision.
    pub fn on_decision(&mut self, d: &Decision, out: &mut Vec<WorkflowEvent>) {
        self.advance_time(d.at_ms(), out);
        let Some((kind, ctx, bind)) = decision_ctx(d) else {
            return;
        };
        // Resolutions release throttles bound to what resolved.
        let resolved = match d {
            Decision::AlertState(c) => matches!(
                c.change,
                aiops_alerting::decision::Change::Resolved
                    | aiops_alerting::decision::Change::StaleResolved
            ),
            Decision::Incident(i) => i.change == "resolved",
            Decision::Notification(n) => n.firing.is_empty(),
            Decision::Stats(_) => false,
        };
        if resolved && let Some(b) = &bind {
            self.st
                .throttles
                .retain(|_, t| t.bind.as_deref() != Some(b.as_str()));
        }
        let incident = match d {
            Decision::Incident(i) => Some(i.incident.id.clone()),
            _ => None,
        };
        let change = match d {
            Decision::Incident(i) => i.change.as_str(),
            _ => "",
        };
        let obj = ctx.get(kind).cloned().unwrap_or(Value::Null);
        let cause = d.id();
        let wfs: Vec<Arc<Workflow>> = self.cfg.workflows.values().cloned().collect();
        for wf in wfs.iter().filter(|w| !w.disabled) {
            let hit = wf.triggers.iter().any(|t| match (t, kind) {
                (Trigger::Alert(f), "alert") => all_match(f, &obj),
                (Trigger::Notification(f), "notification") => all_match(f, &obj),
                (Trigger::Incident(f, ev), "incident") => {
                    ev.iter().any(|e| e == change) && all_match(f, &obj)
                }
                _ => false,
            });
            if hit {
                self.trigger(
                    wf,
                    kind,
                    cause.clone(),
                    ctx.clone(),
                    bind.clone(),
                    incident.clone(),
                    out,
                );
            }
        }
        if kind == "incident" && change == "opened" && !self.cfg.strategies.is_empty() {
            self.diagnose(&cause, ctx, incident, out);
        }
    }

    /// Feeds an event of another kind (anomaly, deploy, …) as a JSON object.
    pub fn on_event(
        &mut self,
        kind: &str,
        id: &str,
        at_ms: i64,
        body: &Value,
        out: &mut Vec<WorkflowEvent>,
    ) {
        self.advance_time(at_ms, out);
        let wfs: Vec<Arc<Workflow>> = self.cfg.workflows.values().cloned().collect();
        for wf in wfs.iter().filter(|w| !w.disabled) {
            let hit = wf.triggers.iter().any(|t| match t {
                Trigger::Event(k, f) => {
                    k.as_deref().is_none_or(|k| k == kind) && all_match(f, body)
                }
                _ => false,
            });
            if hit {
                let ctx = json!({ "event": body });
                self.trigger(wf, "event", format!("event/{id}"), ctx, None, None, out);
            }
        }
    }

    /// Feeds a clock tick. Ticks also drop expired throttles and idle rate windows, so state
    /// stays bounded by what is active.
    pub fn on_tick(&mut self, at_ms: i64, out: &mut Vec<WorkflowEvent>) {
        self.advance_time(at_ms, out);
        let now = self.st.now_ms;
        self.st
            .throttles
            .retain(|_, t| t.until_ms.is_none_or(|u| u > now));
        let longest = self
            .cfg
            .limits
            .provider
            .values()
            .chain(self.cfg.limits.default_provider.iter())
            .chain(self.cfg.limits.per_target.iter())
            .map(|r| r.per_ms)
            .max()
            .unwrap_or(0);
        self.st
            .rate
            .retain(|_, q| q.back().is_some_and(|t| *t > now - longest));
    }

    /// Feeds a command. `Err` is the refusal (also reported as an event where it concerns an
    /// execution).
    ///
    /// # Errors
    /// Unknown workflow or execution, wrong digest, missing role.
    pub fn on_control(
        &mut self,
        c: &WorkflowControl,
        at_ms: i64,
        out: &mut Vec<WorkflowEvent>,
    ) -> Result<(), String> {
        self.advance_time(at_ms, out);
        match c {
            WorkflowControl::Execute {
                workflow,
                request_id,
                by,
                inputs,
            } => {
                let wf = self
                    .cfg
                    .workflows
                    .get(workflow)
                    .cloned()
                    .ok_or_else(|| format!("no workflow {workflow:?}"))?;
                if !wf.triggers.iter().any(|t| matches!(t, Trigger::Manual)) {
                    return Err(format!("workflow {workflow:?} has no manual trigger"));
                }
                let ctx = json!({"inputs": inputs, "manual": {"by": by, "request_id": request_id}});
                self.trigger(
                    &wf,
                    "manual",
                    format!("manual/{request_id}"),
                    ctx,
                    None,
                    None,
                    out,
                );
                Ok(())
            }
            WorkflowControl::Approve {
                execution,
                digest,
                by,
                roles,
            } => {
                let now = self.st.now_ms;
                let e = self
                    .st
                    .executions
                    .get_mut(execution)
                    .ok_or_else(|| format!("no active execution {execution:?}"))?;
                let Some(a) = e
                    .approval
                    .clone()
                    .filter(|_| e.status == ExecStatus::WaitingApproval)
                else {
                    return Err(format!(
                        "execution {execution:?} is not waiting for an approval"
                    ));
                };
                let refuse = if !roles.iter().any(|r| r == &a.role || r == "admin") {
                    Some(format!("approving step {} needs role {:?}", a.step, a.role))
                } else if *digest != a.digest {
                    Some(format!(
                        "the action of step {} is not the one approved (digest {} expected); review it again",
                        a.step, a.digest
                    ))
                } else {
                    None
                };
                if let Some(reason) = refuse {
                    out.push(WorkflowEvent::ApprovalRefused {
                        execution: execution.clone(),
                        by: by.clone(),
                        reason: reason.clone(),
                        at_ms: now,
                    });
                    return Err(reason);
                }
                e.approved = Some(a.digest.clone());
                e.approval = None;
                e.status = ExecStatus::Running;
                out.push(WorkflowEvent::Approved {
                    execution: execution.clone(),
                    step: a.step,
                    by: by.clone(),
                    digest: a.digest,
                    at_ms: now,
                });
                let id = execution.clone();
                self.advance(&id, out);
                Ok(())
            }
            WorkflowControl::Heal {
                incident,
                ctx,
                strategy,
                by: _,
                request_id,
            } => {
                let obj = ctx.get("incident").cloned().unwrap_or(Value::Null);
                let chosen = match strategy {
                    Some(s) => self
                        .cfg
                        .strategies
                        .iter()
                        .find(|x| &x.id == s)
                        .map(|x| x.id.clone())
                        .ok_or_else(|| format!("no strategy {s:?}"))?,
                    None => self
                        .cfg
                        .strategies
                        .iter()
                        .find(|x| x.matches(&obj))
                        .map(|x| x.id.clone())
                        .ok_or_else(|| format!("no strategy matches incident {incident}"))?,
                };
                let cause = format!("manual/{request_id}");
                let id = format!("{AUTOHEAL}/{cause}");
                if self.st.executions.contains_key(&id) || self.st.recent.iter().any(|r| r.id == id)
                {
                    return Err(format!("execution {id} exists already"));
                }
                out.push(WorkflowEvent::Diagnosed {
                    execution: id.clone(),
                    incident: Some(incident.clone()),
                    strategy: Some(chosen.clone()),
                    considered: self.cfg.strategies.iter().map(|s| s.id.clone()).collect(),
                    at_ms: self.st.now_ms,
                });
                let exec = self.new_exec(
                    id,
                    AUTOHEAL.into(),
                    Plan::Strategy(chosen),
                    "manual",
                    cause,
                    Some(incident.clone()),
                    ctx.clone(),
                );
                self.admit(exec, 16, 1000, out);
                Ok(())
            }
            WorkflowControl::Reject {
                execution,
                by,
                roles,
            } => {
                let e = self
                    .st
                    .executions
                    .get_mut(execution)
                    .ok_or_else(|| format!("no active execution {execution:?}"))?;
                let Some(a) = e
                    .approval
                    .clone()
                    .filter(|_| e.status == ExecStatus::WaitingApproval)
                else {
                    return Err(format!(
                        "execution {execution:?} is not waiting for an approval"
                    ));
                };
                if !roles.iter().any(|r| r == &a.role || r == "admin") {
                    return Err(format!("rejecting step {} needs role {:?}", a.step, a.role));
                }
                e.approval = None;
                let id = execution.clone();
                self.fail(&id, format!("step {} rejected by {by}", a.step), out);
                Ok(())
            }
        }
    }

    /// Feeds an effect result. Results of unknown keys (already applied, or of another
    /// configuration) are ignored.
    pub fn on_result(&mut self, r: &EffectResult, out: &mut Vec<WorkflowEvent>) {
        self.st.intents.remove(&r.key);
        let Some(id) = self.st.by_key.remove(&r.key) else {
            return;
        };
        self.st.counters.results += 1;
        let now = self.st.now_ms;
        let Some(e) = self.st.executions.get_mut(&id) else {
            return;
        };
        if !e.pending.remove(&r.key) {
            return;
        }
        if e.status == ExecStatus::Escalating {
            let (status, reason) = if r.ok {
                ("escalated", e.failure.clone().unwrap_or_default())
            } else {
                (
                    "failed",
                    format!(
                        "{}; escalation failed: {}",
                        e.failure.clone().unwrap_or_default(),
                        r.error.clone().unwrap_or_else(|| r.status.clone())
                    ),
                )
            };
            self.finish(&id, status, reason, out);
            return;
        }
        let idx = r
            .key
            .rsplit_once('#')
            .and_then(|(_, i)| i.parse::<usize>().ok())
            .unwrap_or(0);
        e.outcomes.insert(idx, r.clone());
        if !e.pending.is_empty() {
            return;
        }
        let plan = e.plan.clone();
        let Some(items) = self.items_of(&plan) else {
            return;
        };
        let Some(e) = self.st.executions.get_mut(&id) else {
            return;
        };
        let Some(item) = items.get(e.item) else {
            return;
        };
        let outcomes = std::mem::take(&mut e.outcomes);
        let all_ok = outcomes.values().all(|o| o.ok);
        let results: Vec<Value> = outcomes.values().map(|o| o.response.clone()).collect();
        let errors: Vec<String> = outcomes
            .values()
            .filter(|o| !o.ok)
            .map(|o| o.error.clone().unwrap_or_else(|| o.status.clone()))
            .collect();
        let single = item.foreach.is_none();
        let mut entry = json!({
            "ok": all_ok,
            "status": outcomes.values().map(|o| o.status.clone()).collect::<Vec<_>>().join(","),
            "results": if single { results.into_iter().next().unwrap_or(Value::Null) } else { Value::Array(results) },
            "errors": errors,
        });
        if single && crate::builtin::is_builtin_provider(&item.call.kind) {
            lift_builtin_results(&mut entry);
        }
        e.steps.insert(item.name.clone(), entry);
        let detail = if all_ok {
            format!("{} call(s) succeeded", outcomes.len())
        } else {
            errors.join("; ")
        };
        out.push(WorkflowEvent::StepFinished {
            incident: e.incident.clone(),
            execution: id.clone(),
            step: item.name.clone(),
            ok: all_ok,
            detail: detail.clone(),
            at_ms: now,
        });
        e.approved = None;
        let flow = if all_ok {
            item.on_success
        } else {
            item.on_failure
        };
        self.follow(&id, flow, &item.name, &detail, out);
    }

    fn follow(
        &mut self,
        id: &str,
        flow: Flow,
        step: &str,
        detail: &str,
        out: &mut Vec<WorkflowEvent>,
    ) {
        let Some(e) = self.st.executions.get_mut(id) else {
            return;
        };
        match flow {
            Flow::Next => {
                e.item += 1;
                self.advance(id, out);
            }
            Flow::Goto(n) => {
                e.jumps += 1;
                if e.jumps > 64 {
                    self.fail(id, "more than 64 jumps".into(), out);
                } else {
                    e.item = n;
                    self.advance(id, out);
                }
            }
            Flow::Finish => self.finish(id, "succeeded", format!("step {step} succeeded"), out),
            Flow::Fail => self.fail(id, format!("step {step} failed: {detail}"), out),
        }
    }

    fn items_of(&self, plan: &Plan) -> Option<Arc<Vec<Item>>> {
        match plan {
            Plan::Workflow(w) => self.cfg.workflows.get(w).map(|w| w.items.clone()),
            Plan::Strategy(s) => self
                .cfg
                .strategies
                .iter()
                .find(|x| &x.id == s)
                .map(|x| x.items.clone()),
        }
    }

    fn escalation_of(&self, plan: &Plan) -> Option<Call> {
        match plan {
            Plan::Workflow(w) => self.cfg.workflows.get(w).and_then(|w| w.escalate.clone()),
            Plan::Strategy(s) => self
                .cfg
                .strategies
                .iter()
                .find(|x| &x.id == s)
                .and_then(|x| x.escalate.clone()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn trigger(
        &mut self,
        wf: &Workflow,
        kind: &str,
        cause: String,
        ctx: Value,
        bind: Option<String>,
        incident: Option<String>,
        out: &mut Vec<WorkflowEvent>,
    ) {
        let id = format!("{}/{cause}", wf.id);
        if self.st.executions.contains_key(&id) || self.st.recent.iter().any(|r| r.id == id) {
            return;
        }
        let now = self.st.now_ms;
        if let Some(t) = &wf.throttle {
            let key = match self.renderer.render_str(&t.key, &ctx) {
                Ok(k) => k,
                Err(e) => {
                    out.push(WorkflowEvent::ExecutionCancelled {
                        id,
                        workflow: wf.id.clone(),
                        reason: format!("throttle key: {e}"),
                        at_ms: now,
                    });
                    self.st.counters.cancelled += 1;
                    return;
                }
            };
            let tk = format!("{}/{key}", wf.id);
            if let Some(entry) = self.st.throttles.get(&tk)
                && entry.until_ms.is_none_or(|u| u > now)
            {
                self.st.counters.throttled += 1;
                out.push(WorkflowEvent::Throttled {
                    workflow: wf.id.clone(),
                    key,
                    cause,
                    at_ms: now,
                });
                return;
            }
            self.st.throttles.insert(
                tk,
                ThrottleEntry {
                    until_ms: t.for_ms.map(|f| now.saturating_add(f)),
                    bind: if t.until_resolved { bind } else { None },
                },
            );
        }
        let exec = self.new_exec(
            id,
            wf.id.clone(),
            Plan::Workflow(wf.id.clone()),
            kind,
            cause,
            incident,
            ctx,
        );
        self.admit(exec, wf.concurrency, wf.queue, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn new_exec(
        &self,
        id: String,
        workflow: String,
        plan: Plan,
        trigger: &str,
        cause: String,
        incident: Option<String>,
        ctx: Value,
    ) -> Execution {
        Execution {
            id,
            workflow,
            plan,
            trigger: trigger.to_string(),
            cause,
            incident,
            ctx,
            status: ExecStatus::Queued,
            item: 0,
            pending: BTreeSet::new(),
            outcomes: BTreeMap::new(),
            calls: 0,
            steps: Map::new(),
            approved: None,
            approval: None,
            failure: None,
            started_ms: self.st.now_ms,
            jumps: 0,
            rate_wait_since: None,
        }
    }

    fn admit(
        &mut self,
        exec: Execution,
        concurrency: usize,
        queue: usize,
        out: &mut Vec<WorkflowEvent>,
    ) {
        let now = self.st.now_ms;
        let running = self.st.running.get(&exec.workflow).copied().unwrap_or(0);
        let id = exec.id.clone();
        let wf = exec.workflow.clone();
        if running < concurrency {
            self.start(exec, out);
            return;
        }
        let q = self.st.queued.entry(wf.clone()).or_default();
        if q.len() >= queue {
            self.st.counters.cancelled += 1;
            out.push(WorkflowEvent::ExecutionCancelled {
                id,
                workflow: wf,
                reason: format!("{running} running and {queue} queued (the workflow's limits)"),
                at_ms: now,
            });
            return;
        }
        q.push_back(id.clone());
        self.st.counters.queued += 1;
        out.push(WorkflowEvent::ExecutionQueued {
            id: id.clone(),
            workflow: wf,
            at_ms: now,
        });
        self.st.executions.insert(id, exec);
    }

    fn start(&mut self, mut exec: Execution, out: &mut Vec<WorkflowEvent>) {
        exec.status = ExecStatus::Running;
        exec.started_ms = self.st.now_ms;
        *self.st.running.entry(exec.workflow.clone()).or_default() += 1;
        self.st.counters.started += 1;
        out.push(WorkflowEvent::ExecutionStarted {
            id: exec.id.clone(),
            workflow: exec.workflow.clone(),
            trigger: exec.trigger.clone(),
            cause: exec.cause.clone(),
            incident: exec.incident.clone(),
            at_ms: self.st.now_ms,
        });
        let id = exec.id.clone();
        self.st.executions.insert(id.clone(), exec);
        self.advance(&id, out);
    }

    fn diagnose(
        &mut self,
        cause: &str,
        ctx: Value,
        incident: Option<String>,
        out: &mut Vec<WorkflowEvent>,
    ) {
        let id = format!("{AUTOHEAL}/{cause}");
        if self.st.executions.contains_key(&id) || self.st.recent.iter().any(|r| r.id == id) {
            return;
        }
        let obj = ctx.get("incident").cloned().unwrap_or(Value::Null);
        let considered: Vec<String> = self.cfg.strategies.iter().map(|s| s.id.clone()).collect();
        let chosen = self
            .cfg
            .strategies
            .iter()
            .find(|s| s.matches(&obj))
            .map(|s| s.id.clone());
        out.push(WorkflowEvent::Diagnosed {
            execution: id.clone(),
            incident: incident.clone(),
            strategy: chosen.clone(),
            considered,
            at_ms: self.st.now_ms,
        });
        let Some(strategy) = chosen else { return };
        let exec = self.new_exec(
            id,
            AUTOHEAL.into(),
            Plan::Strategy(strategy),
            "incident",
            cause.to_string(),
            incident,
            ctx,
        );
        self.admit(exec, 16, 1000, out);
    }

    fn render_ctx(&self, e: &Execution) -> Value {
        let mut ctx = match &e.ctx {
            Value::Object(o) => o.clone(),
            _ => Map::new(),
        };
        ctx.insert("steps".into(), Value::Object(e.steps.clone()));
        ctx.insert(
            "execution".into(),
            json!({"id": e.id, "started_ms": e.started_ms, "failure": e.failure}),
        );
        ctx.insert("workflow".into(), json!({"id": e.workflow}));
        // Data (labels and their keys, messages, step results, failure reasons that quote a
        // receiver) must not be able to forge a secret marker that the executor would replace
        // with the secret's value.
        let mut data = Value::Object(ctx);
        neutralize_markers(&mut data);
        let Value::Object(mut ctx) = data else {
            return Value::Null;
        };
        let secrets: Map<String, Value> = self
            .cfg
            .catalog
            .secret_names()
            .into_iter()
            .map(|n| {
                let m = secret_marker(&n);
                (n, Value::String(m))
            })
            .collect();
        ctx.insert("secrets".into(), Value::Object(secrets));
        Value::Object(ctx)
    }

    fn render_call(
        &self,
        call: &Call,
        ctx: &Value,
    ) -> Result<(Map<String, Value>, String), String> {
        let params = match self
            .renderer
            .render_value(&Value::Object(call.with.clone()), ctx)
            .map_err(|e| e.to_string())?
        {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        let target = match &call.provider {
            Some(p) => {
                self.cfg.catalog.validate(p, &params)?;
                self.cfg.catalog.target(p, &params)
            }
            None => call.kind.clone(),
        };
        Ok((params, target))
    }

    /// Moves a running execution on until it waits (results, approval, rate) or finishes.
    fn advance(&mut self, id: &str, out: &mut Vec<WorkflowEvent>) {
        let now = self.st.now_ms;
        let Some(e) = self.st.executions.get(id) else {
            return;
        };
        if e.status != ExecStatus::Running || !e.pending.is_empty() {
            return;
        }
        let Some(items) = self.items_of(&e.plan) else {
            self.finish(
                id,
                "failed",
                "its workflow is no longer configured".into(),
                out,
            );
            return;
        };
        let Some(item) = items.get(e.item) else {
            self.finish(id, "succeeded", "all steps done".into(), out);
            return;
        };
        let base = self.render_ctx(e);
        // Condition.
        if let Some(cond) = &item.if_ {
            match self.renderer.truthy(cond, &base) {
                Ok(true) => {}
                Ok(false) => {
                    out.push(WorkflowEvent::StepSkipped {
                        incident: e.incident.clone(),
                        execution: id.to_string(),
                        step: item.name.clone(),
                        reason: format!("condition {cond:?} is false"),
                        refused: false,
                        at_ms: now,
                    });
                    if let Some(e) = self.st.executions.get_mut(id) {
                        e.item += 1;
                    }
                    return self.advance(id, out);
                }
                Err(err) => return self.refuse(id, item, format!("if: {err}"), out),
            }
        }
        // The calls: one, or one per foreach item.
        let list: Option<Vec<Value>> = match &item.foreach {
            None => None,
            Some(expr) => match self.renderer.eval(expr, &base) {
                Ok(Value::Array(a)) => Some(a),
                Ok(Value::Null) => Some(Vec::new()),
                Ok(other) => {
                    return self.refuse(id, item, format!("foreach gave {other}, not a list"), out);
                }
                Err(err) => return self.refuse(id, item, format!("foreach: {err}"), out),
            },
        };
        if item.is_action
            && let Some(l) = &list
            && (l.is_empty() || l.len() > item.blast_radius)
        {
            let reason = if l.is_empty() {
                "its target set is empty (blast-radius guard)".to_string()
            } else {
                format!(
                    "it would touch {} targets, more than its blast radius of {}",
                    l.len(),
                    item.blast_radius
                )
            };
            return self.refuse(id, item, reason, out);
        }
        let mut calls = Vec::new();
        let contexts: Vec<Value> = match &list {
            None => vec![base.clone()],
            Some(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let mut c = base.clone();
                    if let Value::Object(o) = &mut c {
                        o.insert("foreach".into(), json!({"value": v, "index": i}));
                    }
                    c
                })
                .collect(),
        };
        for c in &contexts {
            match self.render_call(&item.call, c) {
                Ok(x) => calls.push(x),
                Err(err) => return self.refuse(id, item, err, out),
            }
        }
        // Approval binds to the fully rendered calls.
        if let Some(ap) = &item.approval {
            let rendered: Vec<Value> = calls
                .iter()
                .map(|(p, t)| json!({"kind": item.call.kind, "provider": item.call.provider, "target": t, "params": p}))
                .collect();
            let d = digest(
                &json!({"execution": id, "step": item.name, "role": ap.role, "calls": rendered}),
            );
            let e = self.st.executions.get_mut(id);
            if let Some(e) = e
                && e.approved.as_deref() != Some(d.as_str())
            {
                let expires = now.saturating_add(ap.timeout_ms);
                self.approval_floor = self.approval_floor.map(|f| f.min(expires));
                e.status = ExecStatus::WaitingApproval;
                e.approval = Some(PendingApproval {
                    step: item.name.clone(),
                    digest: d.clone(),
                    role: ap.role.clone(),
                    expires_at_ms: expires,
                    calls: rendered.clone(),
                });
                self.st.counters.approvals += 1;
                out.push(WorkflowEvent::ApprovalRequested {
                    execution: id.to_string(),
                    step: item.name.clone(),
                    digest: d,
                    role: ap.role.clone(),
                    calls: rendered,
                    expires_at_ms: expires,
                    at_ms: now,
                });
                return;
            }
        }
        // Rate limits (actions through providers).
        if item.is_action
            && let Some(p) = &item.call.provider
            && !self.rate_allows(p, &calls)
        {
            if let Some(e) = self.st.executions.get_mut(id) {
                e.status = ExecStatus::WaitingRate;
                if e.rate_wait_since.is_none() {
                    e.rate_wait_since = Some(now);
                    self.st.counters.rate_limited += 1;
                }
            }
            self.st.rate_waiting.push_back(id.to_string());
            return;
        }
        if item.is_action
            && let Some(p) = &item.call.provider
        {
            for (_, t) in &calls {
                self.st
                    .rate
                    .entry(format!("p:{p}"))
                    .or_default()
                    .push_back(now);
                self.st
                    .rate
                    .entry(format!("t:{p}/{t}"))
                    .or_default()
                    .push_back(now);
            }
        }
        let Some(e) = self.st.executions.get(id) else {
            return;
        };
        let incident = e.incident.clone();
        let workflow = e.workflow.clone();
        let jumps = e.jumps;
        let not_before = (item.call.kind == "verify").then(|| {
            let settle = item
                .call
                .with
                .get("settle")
                .and_then(Value::as_str)
                .and_then(|s| crate::compile::duration_ms(s).ok())
                .unwrap_or(0);
            now.saturating_add(settle)
        });
        let n = calls.len();
        let mut keys = BTreeSet::new();
        for (i, (params, target)) in calls.into_iter().enumerate() {
            // A step run again (auto-heal's next round) gets a new key: its first run's key
            // and result must not stand for it.
            let base = if jumps == 0 {
                format!("{id}/{}", item.name)
            } else {
                format!("{id}/{}@{jumps}", item.name)
            };
            let key = if list.is_some() {
                format!("{base}#{i}")
            } else {
                base
            };
            let intent = Intent {
                key: key.clone(),
                execution: id.to_string(),
                workflow: workflow.clone(),
                step: item.name.clone(),
                kind: item.call.kind.clone(),
                provider: item.call.provider.clone(),
                target,
                params,
                attempts: item.attempts,
                backoff_ms: item.backoff_ms,
                timeout_ms: item.timeout_ms,
                not_before_ms: not_before,
                at_ms: now,
                incident: incident.clone(),
            };
            self.st.counters.intents += 1;
            self.st.by_key.insert(key.clone(), id.to_string());
            self.st.intents.insert(key.clone(), intent.clone());
            keys.insert(key);
            out.push(WorkflowEvent::Intent(intent));
        }
        if let Some(e) = self.st.executions.get_mut(id) {
            e.pending = keys;
            e.calls = n;
            e.rate_wait_since = None;
        }
        if n == 0 {
            // A foreach over nothing on a step (not an action): nothing to wait for.
            if let Some(e) = self.st.executions.get_mut(id) {
                e.steps.insert(
                    item.name.clone(),
                    json!({"ok": true, "status": "", "results": [], "errors": []}),
                );
                e.item += 1;
            }
            self.advance(id, out);
        }
    }

    fn rate_allows(&mut self, provider: &str, calls: &[(Map<String, Value>, String)]) -> bool {
        let now = self.st.now_ms;
        if self.cfg.limits.unlimited.contains(provider) {
            return true;
        }
        let prate = self
            .cfg
            .limits
            .provider
            .get(provider)
            .copied()
            .or(self.cfg.limits.default_provider);
        let mut check = |key: String, rate: Option<Rate>, n: usize| -> bool {
            let Some(r) = rate else { return true };
            let q = self.st.rate.entry(key).or_default();
            while q.front().is_some_and(|t| *t <= now - r.per_ms) {
                q.pop_front();
            }
            // A batch larger than the whole limit runs alone rather than never.
            q.is_empty() || q.len() + n <= r.count
        };
        if !check(format!("p:{provider}"), prate, calls.len()) {
            return false;
        }
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, t) in calls {
            *per.entry(t.as_str()).or_default() += 1;
        }
        per.into_iter()
            .all(|(t, n)| check(format!("t:{provider}/{t}"), self.cfg.limits.per_target, n))
    }

    fn refuse(&mut self, id: &str, item: &Item, reason: String, out: &mut Vec<WorkflowEvent>) {
        self.st.counters.refused += 1;
        out.push(WorkflowEvent::StepSkipped {
            incident: self.st.executions.get(id).and_then(|e| e.incident.clone()),
            execution: id.to_string(),
            step: item.name.clone(),
            reason: reason.clone(),
            refused: true,
            at_ms: self.st.now_ms,
        });
        let flow = item.on_failure;
        let name = item.name.clone();
        self.follow(id, flow, &name, &reason, out);
    }

    fn fail(&mut self, id: &str, reason: String, out: &mut Vec<WorkflowEvent>) {
        let Some(e) = self.st.executions.get(id) else {
            return;
        };
        if e.status == ExecStatus::Escalating {
            return self.finish(id, "failed", reason, out);
        }
        let Some(call) = self.escalation_of(&e.plan) else {
            return self.finish(id, "failed", reason, out);
        };
        let mut ctx = self.render_ctx(e);
        if let Value::Object(o) = &mut ctx {
            // The reason may quote a receiver's answer: data, like the rest of the context.
            let mut failure = json!({"reason": reason});
            neutralize_markers(&mut failure);
            o.insert("failure".into(), failure);
        }
        let now = self.st.now_ms;
        let (params, target) = match self.render_call(&call, &ctx) {
            Ok(x) => x,
            Err(err) => {
                return self.finish(
                    id,
                    "failed",
                    format!("{reason}; escalation not sent: {err}"),
                    out,
                );
            }
        };
        let key = format!("{id}/escalate");
        let intent = Intent {
            key: key.clone(),
            execution: id.to_string(),
            workflow: e.workflow.clone(),
            step: "escalate".into(),
            kind: call.kind.clone(),
            provider: call.provider.clone(),
            target,
            params,
            attempts: 3,
            backoff_ms: 1000,
            timeout_ms: 30_000,
            not_before_ms: None,
            at_ms: now,
            incident: e.incident.clone(),
        };
        self.st.counters.intents += 1;
        self.st.by_key.insert(key.clone(), id.to_string());
        self.st.intents.insert(key.clone(), intent.clone());
        out.push(WorkflowEvent::Intent(intent));
        if let Some(e) = self.st.executions.get_mut(id) {
            e.status = ExecStatus::Escalating;
            e.failure = Some(reason);
            e.pending = BTreeSet::from([key]);
            e.approval = None;
        }
    }

    fn finish(&mut self, id: &str, status: &str, reason: String, out: &mut Vec<WorkflowEvent>) {
        let Some(e) = self.st.executions.remove(id) else {
            return;
        };
        self.st.rate_waiting.retain(|x| x != id);
        for k in &e.pending {
            self.st.by_key.remove(k);
            self.st.intents.remove(k);
        }
        match status {
            "succeeded" => self.st.counters.succeeded += 1,
            "escalated" => self.st.counters.escalated += 1,
            _ => self.st.counters.failed += 1,
        }
        let now = self.st.now_ms;
        out.push(WorkflowEvent::ExecutionFinished {
            id: id.to_string(),
            workflow: e.workflow.clone(),
            status: status.to_string(),
            reason: reason.clone(),
            incident: e.incident.clone(),
            at_ms: now,
        });
        self.st.recent.push_back(ExecutionSummary {
            id: id.to_string(),
            workflow: e.workflow.clone(),
            status: status.to_string(),
            reason,
            cause: e.cause.clone(),
            incident: e.incident.clone(),
            started_ms: e.started_ms,
            finished_ms: now,
            steps: e.steps.clone(),
        });
        while self.st.recent.len() > RECENT_KEPT {
            self.st.recent.pop_front();
        }
        // Free the slot: start the next queued execution of this workflow.
        let mut was_running = true;
        if e.status == ExecStatus::Queued {
            was_running = false;
        }
        if was_running && let Some(n) = self.st.running.get_mut(&e.workflow) {
            *n = n.saturating_sub(1);
        }
        let next = self
            .st
            .queued
            .get_mut(&e.workflow)
            .and_then(VecDeque::pop_front);
        if let Some(next) = next
            && let Some(x) = self.st.executions.remove(&next)
        {
            self.start(x, out);
        }
    }
}
