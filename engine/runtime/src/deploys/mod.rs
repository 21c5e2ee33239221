//! Deployments inside the engine: the [`aiops_deploy`] book run over the log.
//!
//! Deploys change only through commands in the log (`type = "deploy"` control events, id prefix
//! [`crate::wire::ids::DEPLOY_CONTROL`]: source reports and rollbacks a person asks for) and
//! through what the log says: pipeline outputs (the verification metrics per service and
//! version), alerting decisions (firing alerts and open incidents for the risk and the "new
//! alert" signal), workflow events (the deploy and rollback executions finishing) and clock
//! ticks (a verification window closing). The processor writes every record change to
//! [`crate::wire::DEPLOYS_SUBJECT`] and gives other processors commands
//! ([`crate::wire::ids::DEPLOY_ACTIONS`]): run the rollback workflow — once per deploy and
//! attempt, by a request id derived from the deploy, so neither a crash nor a replay runs it
//! twice — and note deploys on incident timelines.
//!
//! - [`processor`]: the [`crate::Processor`] and the handle the API reads.
//! - [`rebuild`]: the state from the whole log (`aiops rebuild`) and the forensic
//!   re-verification of one deploy.

pub mod processor;
pub mod rebuild;

use crate::wire::{self, ids};
use aiops_deploy::book::BookSettings;
use aiops_deploy::judge::{Direction, MetricRule, Thresholds};
use aiops_deploy::logs::LogSettings;
use aiops_deploy::risk::RiskSettings;
use aiops_deploy::verify::{MetricSource, VerifySettings};
use aiops_deploy::{DeployCommand, DeployError};
use aiops_log::AppendMessage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `type` of deploy control events.
pub const CONTROL_TYPE: &str = "deploy";

/// The pipeline output the default verification metrics read (`pipelines/deploy_metrics.sql`).
pub const DEFAULT_OUTPUT: &str = "deploy_metrics_10s";

/// Deploy settings (`[deploys]` in the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeploySettings {
    /// Whether the engine keeps deploy records. Default true.
    pub enabled: bool,
    /// Length of the verification window. Default 10m.
    #[serde(with = "humantime_serde")]
    pub verification_window: Duration,
    /// Wait after a deploy before its window opens (warm-up). Default 0s.
    #[serde(with = "humantime_serde")]
    pub verification_delay: Duration,
    /// Wait after the window for late pipeline output before judging. Default 30s.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// The verification metrics. Default: error ratio (critical, weight 2), p99 latency and
    /// saturation from the output `deploy_metrics_10s`.
    pub metrics: Vec<MetricSource>,
    /// Score thresholds (pass 95, marginal 75).
    pub thresholds: Thresholds,
    /// Risk factors and policy.
    pub risk: RiskSettings,
    /// Services each service depends on (`checkout = ["payments", "db"]`).
    pub dependencies: BTreeMap<String, Vec<String>>,
    /// The workflow (with a manual trigger) that performs deploys asked for with `run: true`.
    pub deploy_workflow: Option<String>,
    /// The workflow (with a manual trigger) that rolls a deploy back.
    pub rollback_workflow: Option<String>,
    /// Environments where a rollback needs a person's approval (through the rollback
    /// workflow's `inputs.approval_required`).
    pub rollback_approval_environments: Vec<String>,
    /// How far back the recent failure rate and the DORA figures look. Default 30 days.
    #[serde(with = "humantime_serde")]
    pub lookback: Duration,
    /// Deploys kept at most. Default 10,000.
    pub max_deploys: usize,
    /// How often the state is checkpointed. Default 30s.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Webhook sources by kind (`[deploys.hooks.github] secret_env = "…"`): read by the server.
    pub hooks: BTreeMap<String, toml::Value>,
    /// Kubernetes rollout watchers (`[[deploys.kubernetes]]`): read by the server.
    pub kubernetes: Vec<toml::Value>,
    /// Log signals of a verification (`[deploys.logs]`): new log templates, error surges.
    pub logs: LogSettings,
}

/// The default verification metrics.
pub fn default_metrics() -> Vec<MetricSource> {
    let metric =
        |column: &str, critical: bool, weight: f64, tolerance: f64, min_change: f64| MetricSource {
            output: DEFAULT_OUTPUT.into(),
            column: column.into(),
            service_column: "service".into(),
            version_column: "version".into(),
            rule: MetricRule {
                name: column.into(),
                direction: Direction::Increase,
                critical,
                weight,
                tolerance,
                min_change,
                ..MetricRule::default()
            },
        };
    vec![
        metric("error_ratio", true, 2.0, 0.5, 0.01),
        metric("latency_p99_ms", false, 1.0, 0.25, 5.0),
        metric("saturation", false, 1.0, 0.25, 0.05),
    ]
}

impl Default for DeploySettings {
    fn default() -> Self {
        DeploySettings {
            enabled: true,
            verification_window: Duration::from_secs(600),
            verification_delay: Duration::ZERO,
            grace: Duration::from_secs(30),
            metrics: default_metrics(),
            thresholds: Thresholds::default(),
            risk: RiskSettings::default(),
            dependencies: BTreeMap::new(),
            deploy_workflow: None,
            rollback_workflow: None,
            rollback_approval_environments: Vec::new(),
            lookback: Duration::from_secs(30 * 86_400),
            max_deploys: 10_000,
            checkpoint_interval: Duration::from_secs(30),
            hooks: BTreeMap::new(),
            kubernetes: Vec::new(),
            logs: LogSettings::default(),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl DeploySettings {
    /// The book's settings.
    pub fn book(&self) -> BookSettings {
        BookSettings {
            verify: VerifySettings {
                window_ms: ms(self.verification_window),
                delay_ms: ms(self.verification_delay),
                grace_ms: ms(self.grace),
                metrics: self.metrics.clone(),
                thresholds: self.thresholds,
                ..VerifySettings::default()
            },
            risk: self.risk.clone(),
            dependencies: self.dependencies.clone(),
            deploy_workflow: self.deploy_workflow.clone(),
            rollback_workflow: self.rollback_workflow.clone(),
            rollback_approval_environments: self.rollback_approval_environments.clone(),
            lookback_ms: ms(self.lookback),
            max_deploys: self.max_deploys,
            logs: self.logs.clone(),
        }
    }

    /// Checks what serde cannot: windows, weights, thresholds, the risk policy.
    ///
    /// # Errors
    /// The first invalid setting, named (the operator fixes the configuration).
    pub fn validate(&self) -> Result<(), String> {
        if self.verification_window.is_zero() {
            return Err("deploys.verification_window must be more than 0s".into());
        }
        for (i, m) in self.metrics.iter().enumerate() {
            let at = format!("deploys.metrics[{i}]");
            if m.output.is_empty() || m.column.is_empty() {
                return Err(format!("{at}: output and column are required"));
            }
            if m.rule.name.is_empty() {
                return Err(format!("{at}: name is required"));
            }
            if !(m.rule.weight.is_finite() && m.rule.weight > 0.0) {
                return Err(format!("{at}.weight must be > 0"));
            }
            if !(m.rule.alpha > 0.0 && m.rule.alpha < 1.0) {
                return Err(format!("{at}.alpha must be in (0, 1)"));
            }
            if !(m.rule.tolerance.is_finite() && m.rule.tolerance >= 0.0) {
                return Err(format!("{at}.tolerance must be >= 0"));
            }
        }
        let t = self.thresholds;
        if !(0.0..=100.0).contains(&t.marginal)
            || !(0.0..=100.0).contains(&t.pass)
            || t.marginal > t.pass
        {
            return Err("deploys.thresholds: 0 <= marginal <= pass <= 100".into());
        }
        self.risk.validate().map_err(|e| e.to_string())?;
        self.logs.validate()?;
        Ok(())
    }
}

/// Why a command was refused, as the processor reports it: prefixed by its kind so the API can
/// answer 404 / 409 / 400 ([`refusal_kind`]).
pub fn refusal(e: &DeployError) -> String {
    e.to_string()
}

/// What kind of refusal a reason made by [`refusal`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// No such deploy.
    NotFound,
    /// The deploy cannot do that now, or the policy refuses it (a freeze).
    Conflict,
    /// The input is not valid.
    Invalid,
}

/// The kind of a refusal reason and its message without the prefix.
pub fn refusal_kind(reason: &str) -> (RefusalKind, &str) {
    for (prefix, kind) in [
        ("not found: ", RefusalKind::NotFound),
        ("conflict: ", RefusalKind::Conflict),
        ("refused: ", RefusalKind::Conflict),
        ("invalid: ", RefusalKind::Invalid),
    ] {
        if let Some(rest) = reason.strip_prefix(prefix) {
            return (kind, if prefix == "refused: " { reason } else { rest });
        }
    }
    (RefusalKind::Invalid, reason)
}

/// Where the engine keeps the deploy checkpoint under its data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    crate::store::store_dir(data_dir, "deploys")
}

/// A deploy command as it is written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlEvent {
    /// Always [`CONTROL_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The command.
    pub command: DeployCommand,
}

/// The log message of `command`, made at `at_ms`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn command_message(
    command: &DeployCommand,
    at_ms: i64,
) -> Result<AppendMessage, serde_json::Error> {
    wire::control_message(
        ids::DEPLOY_CONTROL,
        at_ms,
        &ControlEvent {
            kind: CONTROL_TYPE.into(),
            command: command.clone(),
        },
    )
}
