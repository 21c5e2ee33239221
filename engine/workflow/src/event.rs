//! What the workflow engine reads and writes: inputs (alerting decisions, events, effect
//! results, commands, clock ticks) and the events it appends to `aiops.effects` — executions,
//! intents with their idempotency keys, approvals, skips — each with a deterministic id.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An effect to run: appended to the log before anything is sent (DESIGN.md invariant 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Idempotency key: `<execution>/<step>[/<item>]`, derived from what caused it.
    pub key: String,
    /// The execution.
    pub execution: String,
    /// The workflow.
    pub workflow: String,
    /// The step or action.
    pub step: String,
    /// Provider kind (`slack`, `exec`, `sql`, `verify`, …).
    pub kind: String,
    /// Provider instance (none for built-ins).
    pub provider: Option<String>,
    /// Target (rate limits, audit).
    pub target: String,
    /// Rendered parameters; secrets as markers.
    pub params: Map<String, Value>,
    /// Attempts in all.
    pub attempts: u32,
    /// First backoff, doubled per retry.
    pub backoff_ms: i64,
    /// Per attempt.
    pub timeout_ms: i64,
    /// Not before this log time (a `verify` waits for its settle delay).
    pub not_before_ms: Option<i64>,
    /// When (log time).
    pub at_ms: i64,
    /// The incident it acts for, if any.
    pub incident: Option<String>,
}

/// What became of an intent: appended by the executor after the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectResult {
    /// The intent's key.
    pub key: String,
    /// Succeeded.
    pub ok: bool,
    /// Status (`200`, `exit 0`, `timeout`, …).
    pub status: String,
    /// Response (small, secret-free).
    #[serde(default)]
    pub response: Value,
    /// Error, when failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// When it finished (wall clock at the executor).
    pub at_ms: i64,
}

/// An engine event (one line of an `aiops.effects` message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkflowEvent {
    /// An execution started.
    ExecutionStarted {
        /// Execution id.
        id: String,
        /// Workflow.
        workflow: String,
        /// Trigger kind.
        trigger: String,
        /// What caused it.
        cause: String,
        /// Incident, if any.
        incident: Option<String>,
        /// When.
        at_ms: i64,
    },
    /// It waits for a concurrency slot.
    ExecutionQueued {
        /// Execution id.
        id: String,
        /// Workflow.
        workflow: String,
        /// When.
        at_ms: i64,
    },
    /// Not started or stopped.
    ExecutionCancelled {
        /// Execution id.
        id: String,
        /// Workflow.
        workflow: String,
        /// Why.
        reason: String,
        /// When.
        at_ms: i64,
    },
    /// The throttle held a trigger.
    Throttled {
        /// Workflow.
        workflow: String,
        /// Throttle key.
        key: String,
        /// The cause.
        cause: String,
        /// When.
        at_ms: i64,
    },
    /// Auto-heal chose a strategy.
    Diagnosed {
        /// Execution id.
        execution: String,
        /// Incident.
        incident: Option<String>,
        /// The chosen strategy (none matched: `None`).
        strategy: Option<String>,
        /// Strategies considered, in order.
        considered: Vec<String>,
        /// When.
        at_ms: i64,
    },
    /// A step was skipped (`if:` false) or refused (blast radius, bad parameters).
    StepSkipped {
        /// Execution id.
        execution: String,
        /// Step.
        step: String,
        /// Why.
        reason: String,
        /// True when refused (the execution fails), false when merely skipped.
        refused: bool,
        /// When.
        at_ms: i64,
        /// Incident, if any.
        #[serde(default)]
        incident: Option<String>,
    },
    /// An effect is about to run.
    Intent(Intent),
    /// An action waits for approval of exactly this rendered call.
    ApprovalRequested {
        /// Execution id.
        execution: String,
        /// Step.
        step: String,
        /// SHA-256 of the rendered calls: an approval binds to it.
        digest: String,
        /// Role required.
        role: String,
        /// The rendered calls (secrets as markers).
        calls: Vec<Value>,
        /// Escalates after.
        expires_at_ms: i64,
        /// When.
        at_ms: i64,
    },
    /// Approved.
    Approved {
        /// Execution id.
        execution: String,
        /// Step.
        step: String,
        /// Who.
        by: String,
        /// Digest approved.
        digest: String,
        /// When.
        at_ms: i64,
    },
    /// An approval command was refused.
    ApprovalRefused {
        /// Execution id.
        execution: String,
        /// Who tried.
        by: String,
        /// Why.
        reason: String,
        /// When.
        at_ms: i64,
    },
    /// Nobody approved in time.
    ApprovalTimedOut {
        /// Execution id.
        execution: String,
        /// Step.
        step: String,
        /// When.
        at_ms: i64,
    },
    /// A step finished (all its calls have results).
    StepFinished {
        /// Execution id.
        execution: String,
        /// Step.
        step: String,
        /// Succeeded.
        ok: bool,
        /// Summary.
        detail: String,
        /// When.
        at_ms: i64,
        /// Incident, if any.
        #[serde(default)]
        incident: Option<String>,
    },
    /// An execution finished.
    ExecutionFinished {
        /// Execution id.
        id: String,
        /// Workflow.
        workflow: String,
        /// `succeeded`, `failed`, `escalated`, `rejected`.
        status: String,
        /// Why, in words.
        reason: String,
        /// Incident, if any.
        incident: Option<String>,
        /// When.
        at_ms: i64,
    },
}

impl WorkflowEvent {
    /// A deterministic id.
    pub fn id(&self) -> String {
        match self {
            WorkflowEvent::ExecutionStarted { id, .. } => format!("{id}/started"),
            WorkflowEvent::ExecutionQueued { id, .. } => format!("{id}/queued"),
            WorkflowEvent::ExecutionCancelled { id, .. } => format!("{id}/cancelled"),
            WorkflowEvent::Throttled {
                workflow, cause, ..
            } => format!("{workflow}/{cause}/throttled"),
            WorkflowEvent::Diagnosed { execution, .. } => format!("{execution}/diagnosed"),
            WorkflowEvent::StepSkipped {
                execution, step, ..
            } => format!("{execution}/{step}/skipped"),
            WorkflowEvent::Intent(i) => format!("{}/intent", i.key),
            WorkflowEvent::ApprovalRequested {
                execution,
                step,
                digest,
                ..
            } => format!(
                "{execution}/{step}/approval/{}",
                &digest[..digest.len().min(12)]
            ),
            WorkflowEvent::Approved {
                execution, step, ..
            } => format!("{execution}/{step}/approved"),
            WorkflowEvent::ApprovalRefused {
                execution, at_ms, ..
            } => format!("{execution}/approval_refused/{at_ms}"),
            WorkflowEvent::ApprovalTimedOut {
                execution, step, ..
            } => format!("{execution}/{step}/approval_timed_out"),
            WorkflowEvent::StepFinished {
                execution, step, ..
            } => format!("{execution}/{step}/finished"),
            WorkflowEvent::ExecutionFinished { id, .. } => format!("{id}/finished"),
        }
    }

    /// The incident it concerns (for the incident's timeline).
    pub fn incident(&self) -> Option<&str> {
        match self {
            WorkflowEvent::ExecutionStarted { incident, .. }
            | WorkflowEvent::StepSkipped { incident, .. }
            | WorkflowEvent::StepFinished { incident, .. }
            | WorkflowEvent::Diagnosed { incident, .. }
            | WorkflowEvent::ExecutionFinished { incident, .. } => incident.as_deref(),
            WorkflowEvent::Intent(i) => i.incident.as_deref(),
            _ => None,
        }
    }

    /// One line for humans (timelines, logs).
    pub fn text(&self) -> String {
        match self {
            WorkflowEvent::ExecutionStarted {
                workflow, cause, ..
            } => format!("workflow {workflow} started by {cause}"),
            WorkflowEvent::ExecutionQueued { workflow, .. } => {
                format!("workflow {workflow} queued (concurrency limit)")
            }
            WorkflowEvent::ExecutionCancelled {
                workflow, reason, ..
            } => format!("workflow {workflow} cancelled: {reason}"),
            WorkflowEvent::Throttled { workflow, key, .. } => {
                format!("workflow {workflow} throttled (key {key})")
            }
            WorkflowEvent::Diagnosed {
                strategy,
                considered,
                ..
            } => match strategy {
                Some(s) => format!("auto-heal chose strategy {s}"),
                None => format!(
                    "auto-heal: no strategy matched ({} considered)",
                    considered.len()
                ),
            },
            WorkflowEvent::StepSkipped {
                step,
                reason,
                refused,
                ..
            } => {
                format!(
                    "step {step} {}: {reason}",
                    if *refused { "refused" } else { "skipped" }
                )
            }
            WorkflowEvent::Intent(i) => format!(
                "{} {} via {} to {}",
                i.step,
                i.kind,
                i.provider.as_deref().unwrap_or("aiops"),
                i.target
            ),
            WorkflowEvent::ApprovalRequested { step, role, .. } => {
                format!("step {step} waits for approval by a {role}")
            }
            WorkflowEvent::Approved { step, by, .. } => format!("step {step} approved by {by}"),
            WorkflowEvent::ApprovalRefused { by, reason, .. } => {
                format!("approval by {by} refused: {reason}")
            }
            WorkflowEvent::ApprovalTimedOut { step, .. } => {
                format!("step {step}: approval timed out")
            }
            WorkflowEvent::StepFinished {
                step, ok, detail, ..
            } => {
                format!(
                    "step {step} {}: {detail}",
                    if *ok { "succeeded" } else { "failed" }
                )
            }
            WorkflowEvent::ExecutionFinished {
                workflow,
                status,
                reason,
                ..
            } => format!("workflow {workflow} {status}: {reason}"),
        }
    }

    /// Log time.
    pub fn at_ms(&self) -> i64 {
        match self {
            WorkflowEvent::ExecutionStarted { at_ms, .. }
            | WorkflowEvent::ExecutionQueued { at_ms, .. }
            | WorkflowEvent::ExecutionCancelled { at_ms, .. }
            | WorkflowEvent::Throttled { at_ms, .. }
            | WorkflowEvent::Diagnosed { at_ms, .. }
            | WorkflowEvent::StepSkipped { at_ms, .. }
            | WorkflowEvent::ApprovalRequested { at_ms, .. }
            | WorkflowEvent::Approved { at_ms, .. }
            | WorkflowEvent::ApprovalRefused { at_ms, .. }
            | WorkflowEvent::ApprovalTimedOut { at_ms, .. }
            | WorkflowEvent::StepFinished { at_ms, .. }
            | WorkflowEvent::ExecutionFinished { at_ms, .. } => *at_ms,
            WorkflowEvent::Intent(i) => i.at_ms,
        }
    }
}

/// Commands (control events on `aiops.control` with `"type": "workflow"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum WorkflowControl {
    /// Run a workflow by hand.
    Execute {
        /// Workflow id.
        workflow: String,
        /// Unique per request (the execution id derives from it).
        request_id: String,
        /// Who.
        by: String,
        /// Inputs (`inputs.*` in templates).
        #[serde(default)]
        inputs: Value,
    },
    /// Approve a waiting step.
    Approve {
        /// Execution id.
        execution: String,
        /// The digest the approver saw.
        digest: String,
        /// Who.
        by: String,
        /// Their roles (checked by the API's authentication).
        roles: Vec<String>,
    },
    /// Run auto-heal for an incident by hand (`POST /api/autoheal/fix`).
    Heal {
        /// Incident id.
        incident: String,
        /// The incident's template context as the API saw it (logged, so a replay sees it too).
        ctx: Value,
        /// A strategy by id; none: the first that matches.
        strategy: Option<String>,
        /// Who.
        by: String,
        /// Unique per request.
        request_id: String,
    },
    /// Reject a waiting step (the execution fails and escalates).
    Reject {
        /// Execution id.
        execution: String,
        /// Who.
        by: String,
        /// Their roles.
        roles: Vec<String>,
    },
}
