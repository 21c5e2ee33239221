//! The deploy record and the commands that change it. Every change is a command in the log
//! (`type = "deploy"` control events) or a verdict the processor derived from the log, so the
//! records are derived state: the same log gives the same records.

use crate::judge::Judgement;
use crate::risk::{Policy, Risk};
use aiops_schemas::deploy::{ChangeSize, DeployReport, DeployStrategy, SourceStatus};
use serde::{Deserialize, Serialize};

/// Where a deploy stands in aiops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The risk policy asks for an approval before the deploy action runs.
    AwaitingApproval,
    /// Rolling out (the deploy action runs, or the source says it is in progress).
    InProgress,
    /// The verification window is open.
    Verifying,
    /// Verified good (or a person kept it after an inconclusive verdict).
    Promoted,
    /// The verdict was inconclusive: waiting for a person (approve the rollback, or reject it to
    /// keep the version).
    Paused,
    /// The rollback action runs.
    RollingBack,
    /// The rollback action finished.
    RolledBack,
    /// The source reported a failed rollout, or the rollback action failed.
    Failed,
    /// Done without verification (none configured, or no metric had data).
    Succeeded,
    /// Cancelled by its source, or a person refused the approval.
    Cancelled,
}

impl Status {
    /// Whether nothing more happens to the deploy by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Promoted
                | Status::RolledBack
                | Status::Failed
                | Status::Succeeded
                | Status::Cancelled
        )
    }

    /// The name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingApproval => "awaiting_approval",
            Status::InProgress => "in_progress",
            Status::Verifying => "verifying",
            Status::Promoted => "promoted",
            Status::Paused => "paused",
            Status::RollingBack => "rolling_back",
            Status::RolledBack => "rolled_back",
            Status::Failed => "failed",
            Status::Succeeded => "succeeded",
            Status::Cancelled => "cancelled",
        }
    }
}

/// What the verification concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Keep the new version.
    Promote,
    /// Roll back to the previous version.
    Rollback,
    /// Not clear: pause for a person.
    Inconclusive,
}

impl Verdict {
    /// The name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Promote => "promote",
            Verdict::Rollback => "rollback",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Something besides the metrics that the verification saw during its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// `new_alert`, `new_log_template` or `error_surge`.
    pub kind: String,
    /// What (`alert HighErrorRate (critical) fired for the first time in the window`).
    pub detail: String,
    /// Whether it alone calls for a rollback (a new critical alert), else it makes a promote
    /// inconclusive.
    pub critical: bool,
    /// Shown with the verification but changing nothing (a new log template without error
    /// lines: new versions log new things). Absent in verdicts written before it existed.
    #[serde(default)]
    pub informational: bool,
}

/// A deploy's verification: the windows compared, the judge's result and the signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Start of the verification window (Unix ms).
    pub window_start_ms: i64,
    /// End (exclusive).
    pub window_end_ms: i64,
    /// `canary` (the previous version at the same time) or `before` (the same length before the
    /// deploy).
    pub baseline: String,
    /// Start of the baseline window.
    pub baseline_start_ms: i64,
    /// End of the baseline window (exclusive).
    pub baseline_end_ms: i64,
    /// The judge's result; `None` until the window closed.
    pub judgement: Option<Judgement>,
    /// New alerts and log templates seen in the window.
    pub signals: Vec<Signal>,
}

/// The decision about a deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// When (log time, Unix ms).
    pub at_ms: i64,
    /// `verification`, or the person who decided.
    pub by: String,
    /// Why, one line each.
    pub reasons: Vec<String>,
}

/// A rollback of a deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    /// When it was asked for (log time).
    pub requested_at_ms: i64,
    /// `verification` or the person.
    pub by: String,
    /// Why.
    pub reason: String,
    /// Whether a person must approve it first (inconclusive verdicts, production policy).
    pub approval_required: bool,
    /// The workflow that runs it and its execution id, when one is configured.
    pub workflow: Option<String>,
    /// The workflow execution id.
    pub execution: Option<String>,
    /// `pending`, `succeeded`, `failed`, `rejected`, `not_configured`.
    pub status: String,
    /// When it finished (log time).
    pub finished_at_ms: Option<i64>,
}

/// One status change of a deploy, for its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When (log time).
    pub at_ms: i64,
    /// The new status.
    pub status: Status,
    /// Why.
    pub reason: String,
}

/// A deploy record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    /// Id: given by the caller, or derived from the source and its id.
    pub id: String,
    /// The log sequence of the command that recorded it.
    #[serde(default)]
    pub seq: u64,
    /// The service deployed.
    pub service: String,
    /// Its environment.
    pub environment: String,
    /// The version deployed.
    pub version: String,
    /// The version it replaces, when known.
    pub previous_version: Option<String>,
    /// Who reported it first: `api`, `github`, `gitlab`, `argocd`, `flux`, `kubernetes`.
    pub source: String,
    /// The source's own id.
    pub external_id: Option<String>,
    /// How it replaces the running version.
    pub strategy: DeployStrategy,
    /// Who asked for it.
    pub requested_by: Option<String>,
    /// When it started (the first report's time, Unix ms).
    pub started_at_ms: i64,
    /// When it reached a final status.
    pub finished_at_ms: Option<i64>,
    /// Where it stands.
    pub status: Status,
    /// Where its source last said it stands.
    pub source_status: SourceStatus,
    /// Free text from the source.
    pub description: Option<String>,
    /// Size of the change, when known.
    pub change: Option<ChangeSize>,
    /// A link to the run.
    pub url: Option<String>,
    /// The risk assessed when it was recorded.
    pub risk: Risk,
    /// What the policy said then.
    pub policy: Policy,
    /// The verification, once started.
    pub verification: Option<Verification>,
    /// The decision, once made.
    pub decision: Option<Decision>,
    /// The rollback, once asked for.
    pub rollback: Option<Rollback>,
    /// When this deploy is itself the rollback of another, that one's id.
    pub rollback_of: Option<String>,
    /// Whether the deploy action ran through a workflow (and its execution id).
    pub action_execution: Option<String>,
    /// Every status change.
    pub history: Vec<Transition>,
}

/// A command to the deploy book, as written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // decoded once per log message; boxing buys nothing
pub enum DeployCommand {
    /// A source reported a deploy (new or an update of one it reported before).
    Report {
        /// The report.
        report: DeployReport,
        /// The id to use for a new deploy (`POST /api/deploy` may give one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// When this deploy rolls back another, that one's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollback_of: Option<String>,
        /// Run the configured deploy workflow for it (once).
        #[serde(default)]
        run_action: bool,
    },
    /// A person asks to roll a deploy back.
    Rollback {
        /// The deploy.
        id: String,
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
}

/// Why a command was refused; the kind maps to the HTTP status the caller gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeployError {
    /// No such deploy (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The deploy cannot do that now (409): e.g. already rolled back.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The policy refuses it (409): a freeze.
    #[error("refused: {0}")]
    Refused(String),
    /// The command is not valid (400), naming the field.
    #[error("invalid: {0}")]
    Invalid(String),
}
