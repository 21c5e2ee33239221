//! The workflow file format (`pipelines/workflows/*.yaml`), close to Keep's so its users feel at
//! home: a `workflow:` with `id`, `description`, `triggers`, `steps` (enrichment) and `actions`
//! (provider calls), plus aiops' safety settings (`concurrency`, `throttle`, `approval`,
//! `blast_radius`, `retry`, `timeout`, `escalate`). Parsed as written; [`crate::compile`] checks
//! it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A workflow file: one `workflow:` document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFile {
    /// The workflow.
    pub workflow: WorkflowSpec,
}

/// One workflow as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// Unique id (`[A-Za-z0-9_.-]+`).
    pub id: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Off: loaded and checked, never triggered.
    #[serde(default)]
    pub disabled: bool,
    /// What starts an execution.
    pub triggers: Vec<TriggerSpec>,
    /// Enrichment steps, run first, in order.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Actions, run after the steps, in order.
    #[serde(default)]
    pub actions: Vec<StepSpec>,
    /// Executions running at once; more wait in the queue. Default 4.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Executions waiting; beyond it new ones are cancelled (counted). Default 100.
    #[serde(default)]
    pub queue: Option<usize>,
    /// At most one execution per key.
    #[serde(default)]
    pub throttle: Option<ThrottleSpec>,
    /// Run when an action fails after its retries or an approval times out.
    #[serde(default)]
    pub escalate: Option<ProviderSpec>,
}

/// A trigger.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// `alert`, `incident`, `notification`, `event`, `schedule` or `manual`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Conditions on fields: all must hold. A value `r"…"` (or `/…/`) is a regex.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// For `incident`: which changes (`opened`, `updated`, `acknowledged`, `resolved`). Default
    /// `opened`.
    #[serde(default)]
    pub events: Vec<String>,
    /// For `schedule`: a cron expression (5 fields, or 6 with seconds first), UTC.
    #[serde(default)]
    pub cron: Option<String>,
    /// For `event`: the event kind (`anomaly`, `deploy`, …).
    #[serde(default, rename = "kind")]
    pub event_kind: Option<String>,
}

/// One filter.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// Dotted path into the trigger's object (`severity`, `labels.service`).
    pub key: String,
    /// Exact value, or `r"regex"` / `/regex/` (anchored).
    pub value: Value,
}

/// Throttle: one execution per rendered key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSpec {
    /// The key template (default `{{ alert.fingerprint }}`).
    #[serde(default)]
    pub key: Option<String>,
    /// `resolved`: until the alert (or incident) resolves.
    #[serde(default)]
    pub until: Option<String>,
    /// Or for this long.
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
}

/// A step or an action.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Its name, unique in the workflow; results are `steps.<name>.results`.
    pub name: String,
    /// Condition (a Jinja expression); false: skipped.
    #[serde(default, rename = "if")]
    pub if_: Option<String>,
    /// Expression giving a list; the call runs once per item (`foreach.value`).
    #[serde(default)]
    pub foreach: Option<String>,
    /// The call.
    pub provider: ProviderSpec,
    /// Retries after a retryable failure.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// Per attempt. Default 30s.
    #[serde(default)]
    pub timeout: Option<String>,
    /// `required`, or `{required, role, timeout}`.
    #[serde(default)]
    pub approval: Option<ApprovalSpec>,
    /// Most targets (foreach items) the action may touch; more (or none) refuses it. Default 10.
    #[serde(default)]
    pub blast_radius: Option<usize>,
    /// Go on with the next step when this one fails.
    #[serde(default)]
    pub continue_on_failure: bool,
}

/// The provider call of a step.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// The provider kind (`slack`, `webhook`, `exec`, `sql`, `verify`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The configured instance: `"{{ providers.NAME }}"` or `NAME` (not needed for `sql` and
    /// `verify`).
    #[serde(default)]
    pub config: Option<String>,
    /// Parameters, templated.
    #[serde(default, rename = "with")]
    pub with: Map<String, Value>,
}

/// Retry settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Retries (attempts − 1). Default 2.
    #[serde(default)]
    pub count: Option<u32>,
    /// First backoff, doubled per retry. Default 1s.
    #[serde(default)]
    pub backoff: Option<String>,
}

/// `approval: required` or a table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ApprovalSpec {
    /// `required` / `none`.
    Word(String),
    /// Full form.
    Full {
        /// Needed at all (default true).
        #[serde(default)]
        required: Option<bool>,
        /// Role the approver must have. Default `approver`.
        #[serde(default)]
        role: Option<String>,
        /// Then escalate. Default 1h.
        #[serde(default)]
        timeout: Option<String>,
    },
}
