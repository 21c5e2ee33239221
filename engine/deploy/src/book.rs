//! Every deploy by id, changed only by [`DeployBook::apply`] (commands in the log), by what the
//! log says about alerts, incidents, pipeline outputs and workflow executions, and by the
//! passing of log time ([`DeployBook::on_time`]). It answers with [`BookEvent`]s: the records that
//! changed (the processor writes them to the log) and the workflows to run (the deploy action,
//! the rollback), each named by a request id that is derived from the deploy, so a rollback is
//! asked for once per deploy and attempt whatever happens to the process.

use crate::judge::Outcome;
use crate::logs::{LogHistory, LogSettings, TemplateCount};
use crate::record::{
    Decision, Deploy, DeployCommand, DeployError, Rollback, Signal, Status, Transition, Verdict,
    Verification,
};
use crate::risk::{self, FiringAlert, OpenIncident, Policy, RiskInput, RiskSettings};
use crate::verify::{self, Plan, Samples, SeriesKey, VerifySettings};
use aiops_schemas::deploy::{DeployReport, DeployStrategy, SourceStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// Longest id, service, environment or version accepted.
pub const MAX_NAME: usize = 256;
/// Longest description kept (longer ones are cut on a character boundary).
pub const MAX_DESCRIPTION: usize = 1024;
/// At most this many history entries per deploy (the oldest are dropped).
const MAX_HISTORY: usize = 64;
/// Deploys started this long before an incident opened are noted on its timeline.
const INCIDENT_LINK_MS: i64 = 3_600_000;
/// Deploy notes on one incident's timeline at most.
const MAX_NOTES_PER_INCIDENT: u32 = 20;
/// A report may say it started at most this long before the log received it (a webhook
/// retried late); older times are taken as this.
const MAX_REPORT_AGE_MS: i64 = 7 * 86_400_000;
/// At most this many alert fingerprints remembered for "new alert" signals.
const MAX_ALERTS_SEEN: usize = 100_000;

/// What the book needs to know (the engine's `[deploys]` settings convert to this).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookSettings {
    /// Verification windows and metrics.
    pub verify: VerifySettings,
    /// Risk factors and policy.
    pub risk: RiskSettings,
    /// Services each service depends on.
    pub dependencies: BTreeMap<String, Vec<String>>,
    /// The workflow (manual trigger) that performs a deploy asked for with `run_action`.
    pub deploy_workflow: Option<String>,
    /// The workflow (manual trigger) that rolls a deploy back.
    pub rollback_workflow: Option<String>,
    /// Environments where a rollback needs a person's approval.
    pub rollback_approval_environments: Vec<String>,
    /// How far back the recent failure rate and DORA figures look.
    pub lookback_ms: i64,
    /// Deploys kept at most (the oldest finished ones are dropped beyond).
    pub max_deploys: usize,
    /// Log signals (new templates, error surges). Left out of the serialized settings when
    /// default, so a default configuration hashes as before they existed.
    #[serde(default, skip_serializing_if = "LogSettings::is_default")]
    pub logs: LogSettings,
}

impl Default for BookSettings {
    fn default() -> Self {
        BookSettings {
            verify: VerifySettings::default(),
            risk: RiskSettings::default(),
            dependencies: BTreeMap::new(),
            deploy_workflow: None,
            rollback_workflow: None,
            rollback_approval_environments: Vec::new(),
            lookback_ms: 30 * 86_400_000,
            max_deploys: 10_000,
            logs: LogSettings::default(),
        }
    }
}

/// What the book asks the engine to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BookEvent {
    /// A deploy record changed (`change` says how: `recorded`, `updated`, `verifying`,
    /// `verdict`, `rollback_requested`, `rolled_back`, …).
    Changed {
        /// How.
        change: String,
        /// The record after the change.
        deploy: Box<Deploy>,
    },
    /// Add `text` to the timeline of open incident `incident` (a deploy of one of its services).
    Note {
        /// Incident id.
        incident: String,
        /// What happened.
        text: String,
    },
    /// A verification window closed: the verdict derived now. The engine writes it to the log
    /// and the book applies it when it reads it back ([`DeployBook::apply_verdict`]), so the
    /// verdict in the log is the one that counts — a rebuild under other settings derives its
    /// own proposal, finds the original in the log (same id) and applies that.
    Verdict(Box<VerdictRecord>),
    /// Run `workflow`'s manual trigger once with `request_id` and `inputs`.
    RunWorkflow {
        /// The workflow id.
        workflow: String,
        /// The request id (the workflow engine runs one execution per request id).
        request_id: String,
        /// The deploy.
        deploy: String,
        /// The workflow's `inputs`.
        inputs: serde_json::Value,
    },
}

/// A verdict as written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    /// The deploy.
    pub deploy: String,
    /// The deploy's `seq` (a later deploy reusing the id is another deploy).
    pub deploy_seq: u64,
    /// When it was derived (log time).
    pub at_ms: i64,
    /// The verification with its judgement and signals.
    pub verification: Verification,
    /// The verdict; `None` when no metric had samples.
    pub verdict: Option<Verdict>,
    /// Why, one line each.
    pub reasons: Vec<String>,
}

/// What a workflow execution the book started is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ExecKind {
    Deploy,
    Rollback,
}

/// DORA figures of one service over the lookback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dora {
    /// Deploys started in the lookback.
    pub deploys: u64,
    /// Deploys per day.
    pub deployment_frequency_per_day: f64,
    /// Of the deploys that finished, those that failed or were rolled back.
    pub failed: u64,
    /// `failed / finished`; `None` when none finished.
    pub change_failure_rate: Option<f64>,
    /// Median time from a failed deploy's failure (verdict or report) to its restore (the
    /// rollback finished, or the next good deploy of the service), ms.
    pub time_to_restore_ms: Option<i64>,
}

/// The state the book keeps (checkpointed whole).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    deploys: BTreeMap<String, Deploy>,
    /// `source \0 external id` → deploy id.
    external: BTreeMap<String, String>,
    /// Workflow execution id → (deploy id, what for).
    executions: BTreeMap<String, (String, ExecKind)>,
    firing: BTreeMap<String, FiringAlert>,
    incidents: BTreeMap<String, OpenIncident>,
    /// Rollbacks asked for per deploy (each attempt gets its own request id).
    rollback_attempts: BTreeMap<String, u32>,
    /// Deploys whose verdict was derived and waits to be read back from the log.
    verdict_pending: std::collections::BTreeSet<String>,
    /// Timeline notes written per open incident (capped at [`MAX_NOTES_PER_INCIDENT`]).
    notes: BTreeMap<String, u32>,
    /// Alert fingerprint → when it first fired (for "new alert" signals).
    alerts_seen: BTreeMap<String, (i64, String, String, bool)>,
    samples: Samples,
    /// The latest log time seen.
    now_ms: i64,
    /// Template counts for log signals (absent in checkpoints from before them).
    #[serde(default)]
    logs: LogHistory,
}

/// Every deploy, its verification and the state it depends on.
#[derive(Debug, Clone)]
pub struct DeployBook {
    settings: BookSettings,
    st: State,
}

fn check_name(field: &str, v: &str) -> Result<(), DeployError> {
    if v.trim().is_empty() {
        return Err(DeployError::Invalid(format!("{field} is empty")));
    }
    if v.len() > MAX_NAME {
        return Err(DeployError::Invalid(format!(
            "{field} is longer than {MAX_NAME} bytes"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(DeployError::Invalid(format!(
            "{field} holds a control character"
        )));
    }
    Ok(())
}

/// Whether `id` is a valid deploy id: 1–128 of `A-Z a-z 0-9 . _ : -`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn slug(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() >= max {
            break;
        }
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let t = out.trim_matches('-');
    if t.is_empty() { "x".into() } else { t.into() }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].into()
}

impl DeployBook {
    /// An empty book.
    pub fn new(settings: BookSettings) -> DeployBook {
        DeployBook {
            settings,
            st: State::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &BookSettings {
        &self.settings
    }

    /// One deploy.
    pub fn get(&self, id: &str) -> Option<&Deploy> {
        self.st.deploys.get(id)
    }

    /// The deploy a command at log sequence `seq` recorded.
    pub fn by_seq(&self, seq: u64) -> Option<&Deploy> {
        self.st.deploys.values().find(|d| d.seq == seq)
    }

    /// Every deploy, by id.
    pub fn deploys(&self) -> impl Iterator<Item = &Deploy> {
        self.st.deploys.values()
    }

    /// Number of deploys.
    pub fn len(&self) -> usize {
        self.st.deploys.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.st.deploys.is_empty()
    }

    /// The latest log time seen.
    pub fn now_ms(&self) -> i64 {
        self.st.now_ms
    }

    /// Series of samples held (for metrics).
    pub fn sample_series(&self) -> usize {
        self.st.samples.series_count()
    }

    /// Samples dropped because the series limit was reached.
    pub fn samples_dropped(&self) -> u64 {
        self.st.samples.dropped
    }

    /// The whole state, for a checkpoint.
    ///
    /// # Errors
    /// Serialization failure (a bug).
    pub fn snapshot(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&self.st)
    }

    /// A book with `settings` and a state from [`DeployBook::snapshot`].
    ///
    /// # Errors
    /// The bytes are not a snapshot.
    pub fn restore(settings: BookSettings, bytes: &[u8]) -> Result<DeployBook, serde_json::Error> {
        Ok(DeployBook {
            settings,
            st: serde_json::from_slice(bytes)?,
        })
    }

    /// What the risk of a deploy of `report` is at its own time, and what the policy says.
    pub fn assess(&self, report: &DeployReport) -> (risk::Risk, Policy) {
        self.assess_at(report, report.at_ms)
    }

    /// The risk and policy of `report` judged at log time `at_ms`.
    pub fn assess_at(&self, report: &DeployReport, at_ms: i64) -> (risk::Risk, Policy) {
        let deps = self
            .settings
            .dependencies
            .get(&report.service)
            .cloned()
            .unwrap_or_default();
        let incidents: Vec<OpenIncident> = self.st.incidents.values().cloned().collect();
        let firing: Vec<FiringAlert> = self.st.firing.values().cloned().collect();
        let (recent, failed) = self.recent(&report.service, at_ms);
        let input = RiskInput {
            service: &report.service,
            environment: &report.environment,
            at_ms,
            change: report.change,
            dependencies: &deps,
            open_incidents: &incidents,
            firing_alerts: &firing,
            recent_deploys: recent,
            recent_failures: failed,
            error_budget_burn: None,
        };
        let r = risk::assess(&input, &self.settings.risk);
        let p = risk::policy(&input, &r, &self.settings.risk);
        (r, p)
    }

    /// The service's deploys in the lookback before `at_ms`, and how many failed.
    fn recent(&self, service: &str, at_ms: i64) -> (u32, u32) {
        let from = at_ms.saturating_sub(self.settings.lookback_ms);
        let mut n = 0u32;
        let mut failed = 0u32;
        for d in self.st.deploys.values() {
            if d.service == service && d.started_at_ms >= from && d.started_at_ms < at_ms {
                n = n.saturating_add(1);
                if is_failure(d) {
                    failed = failed.saturating_add(1);
                }
            }
        }
        (n, failed)
    }

    /// Applies a command written at log time `at_ms` as log message `seq`.
    ///
    /// # Errors
    /// [`DeployError`]: the command is refused and changes nothing.
    pub fn apply(
        &mut self,
        cmd: &DeployCommand,
        at_ms: i64,
        seq: u64,
    ) -> Result<Vec<BookEvent>, DeployError> {
        self.st.now_ms = self.st.now_ms.max(at_ms);
        match cmd {
            DeployCommand::Report {
                report,
                id,
                rollback_of,
                run_action,
            } => self.report(
                report,
                id.as_deref(),
                rollback_of.as_deref(),
                *run_action,
                at_ms,
                seq,
            ),
            DeployCommand::Rollback { id, by, reason } => {
                let mut out = Vec::new();
                self.rollback_by_person(id, by, reason, at_ms, &mut out)?;
                Ok(out)
            }
        }
    }

    fn validate(report: &DeployReport) -> Result<(), DeployError> {
        check_name("source", &report.source)?;
        check_name("service", &report.service)?;
        check_name("environment", &report.environment)?;
        check_name("version", &report.version)?;
        if let Some(p) = &report.previous_version {
            check_name("previous_version", p)?;
        }
        if let Some(e) = &report.external_id {
            check_name("external_id", e)?;
        }
        if let Some(r) = &report.requested_by {
            check_name("requested_by", r)?;
        }
        if let Some(u) = &report.url
            && u.len() > 2048
        {
            return Err(DeployError::Invalid("url is longer than 2048 bytes".into()));
        }
        Ok(())
    }

    fn report(
        &mut self,
        report: &DeployReport,
        id: Option<&str>,
        rollback_of: Option<&str>,
        run_action: bool,
        at_ms: i64,
        seq: u64,
    ) -> Result<Vec<BookEvent>, DeployError> {
        Self::validate(report)?;
        if let Some(id) = id
            && !valid_id(id)
        {
            return Err(DeployError::Invalid(format!(
                "id {id:?}: 1 to 128 of A-Z a-z 0-9 . _ : -"
            )));
        }
        if let Some(r) = rollback_of {
            // A rollback skips the freeze and the approval: only for a deploy of the same
            // service and environment.
            match self.st.deploys.get(r) {
                None => {
                    return Err(DeployError::Invalid(format!(
                        "rollback_of: no deploy {r:?}"
                    )));
                }
                Some(o) if o.service != report.service || o.environment != report.environment => {
                    return Err(DeployError::Invalid(format!(
                        "rollback_of: deploy {r:?} is {} in {}, not {} in {}",
                        o.service, o.environment, report.service, report.environment
                    )));
                }
                Some(_) => {}
            }
        }
        let ext_key = report
            .external_id
            .as_ref()
            .map(|e| format!("{}\u{0}{e}", report.source));
        let existing = id
            .filter(|i| self.st.deploys.contains_key(*i))
            .map(str::to_string)
            .or_else(|| {
                ext_key
                    .as_ref()
                    .and_then(|k| self.st.external.get(k).cloned())
            });
        let mut report = report.clone();
        // A source's clock may run ahead, or a caller may send any number: the deploy never
        // starts after the log says it is now, nor longer ago than a late webhook could be.
        report.at_ms = report
            .at_ms
            .clamp(at_ms.saturating_sub(MAX_REPORT_AGE_MS), at_ms);
        report.description = report.description.map(|d| cut(&d, MAX_DESCRIPTION));
        let mut out = Vec::new();
        if let Some(existing) = existing {
            self.update(&existing, &report, at_ms, &mut out)?;
            return Ok(out);
        }
        // The policy is judged at log time (a caller cannot date a deploy before a freeze).
        let (risk, policy) = self.assess_at(&report, at_ms);
        let is_rollback = rollback_of.is_some();
        let mut frozen = None;
        if let Policy::Refused { reason } = &policy
            && !is_rollback
        {
            // aiops refuses what it is asked to do or record before it happens; a source that
            // reports a deploy already made (a webhook, a watcher) is recorded, flagged.
            if report.source == "api" || run_action {
                return Err(DeployError::Refused(reason.clone()));
            }
            frozen = Some(reason.clone());
        }
        let new_id = match id {
            Some(i) => i.to_string(),
            None => self.derive_id(&report, seq),
        };
        let needs_approval = matches!(policy, Policy::NeedsApproval { .. }) && !is_rollback;
        let action = run_action
            .then(|| self.settings.deploy_workflow.clone())
            .flatten();
        let status = if action.is_some() && needs_approval {
            Status::AwaitingApproval
        } else {
            Status::InProgress
        };
        let mut reason = format!("recorded from {}", report.source);
        if let Some(f) = &frozen {
            reason.push_str(&format!("; deployed although {f}"));
        }
        if needs_approval && action.is_none() {
            reason.push_str(&format!(
                "; the policy asks for an approval ({}), but aiops does not run this deploy",
                match &policy {
                    Policy::NeedsApproval { reason } => reason.as_str(),
                    _ => "",
                }
            ));
        }
        let d = Deploy {
            id: new_id.clone(),
            seq,
            service: report.service.clone(),
            environment: report.environment.clone(),
            version: report.version.clone(),
            previous_version: report.previous_version.clone(),
            source: report.source.clone(),
            external_id: report.external_id.clone(),
            strategy: report.strategy,
            requested_by: report.requested_by.clone(),
            started_at_ms: report.at_ms,
            finished_at_ms: None,
            status,
            source_status: report.status,
            description: report.description.clone(),
            change: report.change,
            url: report.url.clone(),
            risk,
            policy,
            verification: None,
            decision: None,
            rollback: None,
            rollback_of: rollback_of.map(str::to_string),
            action_execution: None,
            history: vec![Transition {
                at_ms,
                status,
                reason,
            }],
        };
        if let Some(k) = ext_key {
            self.st.external.insert(k, new_id.clone());
        }
        self.st.deploys.insert(new_id.clone(), d);
        if let Some(wf) = action {
            let request_id = format!("deploy/{new_id}/{seq}");
            let exec = execution_id(&wf, &request_id);
            self.st
                .executions
                .insert(exec.clone(), (new_id.clone(), ExecKind::Deploy));
            let d = self
                .st
                .deploys
                .get_mut(&new_id)
                .ok_or_else(|| gone(&new_id))?;
            d.action_execution = Some(exec);
            out.push(BookEvent::RunWorkflow {
                workflow: wf,
                request_id,
                deploy: new_id.clone(),
                inputs: json!({
                    "deploy": deploy_inputs(d),
                    "approval_required": needs_approval,
                    "risk": d.risk,
                }),
            });
        } else {
            self.maybe_verify(&new_id, report.at_ms);
        }
        self.changed(&new_id, "recorded", &mut out);
        self.trim();
        Ok(out)
    }

    fn derive_id(&self, report: &DeployReport, seq: u64) -> String {
        let base = match &report.external_id {
            // At most 16 + 1 + 90 + 1 + 20 = 128 bytes with the suffix: a valid id.
            Some(e) => format!("{}-{}", slug(&report.source, 16), slug(e, 90)),
            None => format!("{}-{seq}", slug(&report.service, 90)),
        };
        if self.st.deploys.contains_key(&base) {
            format!("{base}-{seq}")
        } else {
            base
        }
    }

    fn update(
        &mut self,
        id: &str,
        report: &DeployReport,
        at_ms: i64,
        out: &mut Vec<BookEvent>,
    ) -> Result<(), DeployError> {
        let d = self.st.deploys.get_mut(id).ok_or_else(|| gone(id))?;
        if d.service != report.service || d.environment != report.environment {
            return Err(DeployError::Conflict(format!(
                "deploy {id:?} is {} in {}, not {} in {}",
                d.service, d.environment, report.service, report.environment
            )));
        }
        let before = d.source_status;
        d.source_status = report.status;
        if d.url.is_none() {
            d.url.clone_from(&report.url);
        }
        // A finished deploy, a repeated report, or a rollback under way (GitHub marks the old
        // deployment inactive when the rollback's deploy succeeds): only the source status
        // changes.
        let rolling_back = matches!(d.status, Status::RollingBack)
            || d.rollback
                .as_ref()
                .is_some_and(|r| matches!(r.status.as_str(), "pending" | "awaiting_approval"));
        if d.status.is_final() || before == report.status || rolling_back {
            if before != report.status {
                self.changed(id, "updated", out);
            }
            return Ok(());
        }
        match report.status {
            SourceStatus::Failed => {
                set_status(
                    d,
                    Status::Failed,
                    at_ms,
                    format!("{} reports the rollout failed", report.source),
                );
                d.finished_at_ms = Some(at_ms);
            }
            SourceStatus::Cancelled => {
                set_status(
                    d,
                    Status::Cancelled,
                    at_ms,
                    format!("{} reports it cancelled", report.source),
                );
                d.finished_at_ms = Some(at_ms);
            }
            _ => {}
        }
        if d.status == Status::InProgress {
            self.maybe_verify(id, report.at_ms);
        }
        self.changed(id, "updated", out);
        Ok(())
    }

    /// Opens the verification window when the deploy is ready for it: a canary as soon as it
    /// runs, anything else once its source says it succeeded. Without metrics to verify, a
    /// succeeded deploy is done.
    fn maybe_verify(&mut self, id: &str, from_ms: i64) {
        let v = &self.settings.verify;
        let Some(d) = self.st.deploys.get_mut(id) else {
            return;
        };
        if d.status != Status::InProgress {
            return;
        }
        let ready = match d.source_status {
            SourceStatus::Succeeded => true,
            SourceStatus::InProgress => d.strategy == DeployStrategy::Canary,
            _ => false,
        };
        if !ready {
            return;
        }
        if v.metrics.is_empty() {
            if d.source_status == SourceStatus::Succeeded {
                set_status(
                    d,
                    Status::Succeeded,
                    from_ms,
                    "no verification metrics are configured".into(),
                );
                d.finished_at_ms = Some(from_ms);
            }
            return;
        }
        // A report that arrives late still gets a window with samples: at most one window back.
        let start = from_ms
            .max(self.st.now_ms.saturating_sub(v.window_ms))
            .saturating_add(v.delay_ms);
        let end = start.saturating_add(v.window_ms);
        d.verification = Some(Verification {
            window_start_ms: start,
            window_end_ms: end,
            baseline: String::new(),
            baseline_start_ms: 0,
            baseline_end_ms: 0,
            judgement: None,
            signals: Vec::new(),
        });
        set_status(
            d,
            Status::Verifying,
            from_ms,
            format!("verification window {start}..{end}"),
        );
    }

    /// A person asks for a rollback.
    fn rollback_by_person(
        &mut self,
        id: &str,
        by: &str,
        reason: &str,
        at_ms: i64,
        out: &mut Vec<BookEvent>,
    ) -> Result<(), DeployError> {
        check_name("by", by)?;
        if reason.len() > MAX_DESCRIPTION {
            return Err(DeployError::Invalid(format!(
                "reason is longer than {MAX_DESCRIPTION} bytes"
            )));
        }
        let d = self
            .st
            .deploys
            .get(id)
            .ok_or_else(|| DeployError::NotFound(format!("no deploy {id:?}")))?;
        match d.status {
            Status::RollingBack | Status::RolledBack => {
                return Err(DeployError::Conflict(format!(
                    "deploy {id:?} is already {}",
                    d.status.as_str()
                )));
            }
            Status::Cancelled | Status::AwaitingApproval => {
                return Err(DeployError::Conflict(format!(
                    "deploy {id:?} is {}: there is nothing to roll back",
                    d.status.as_str()
                )));
            }
            _ => {}
        }
        if let Some(r) = &d.rollback
            && r.status == "pending"
        {
            return Err(DeployError::Conflict(format!(
                "a rollback of deploy {id:?} runs already (execution {})",
                r.execution.as_deref().unwrap_or("?")
            )));
        }
        if let Some(r) = &d.rollback
            && r.status == "awaiting_approval"
        {
            return Err(DeployError::Conflict(format!(
                "a rollback of deploy {id:?} waits for approval in execution {}: approve it there",
                r.execution.as_deref().unwrap_or("?")
            )));
        }
        let reason = if reason.trim().is_empty() {
            format!("asked for by {by}")
        } else {
            reason.to_string()
        };
        let approval = self
            .settings
            .rollback_approval_environments
            .contains(&d.environment);
        self.start_rollback(id, by, &reason, approval, at_ms, out);
        Ok(())
    }

    fn start_rollback(
        &mut self,
        id: &str,
        by: &str,
        reason: &str,
        approval_required: bool,
        at_ms: i64,
        out: &mut Vec<BookEvent>,
    ) {
        let wf = self.settings.rollback_workflow.clone();
        if !self.st.deploys.contains_key(id) {
            return;
        }
        let attempt = {
            let n = self.st.rollback_attempts.entry(id.to_string()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let Some(wf) = wf else {
            let Some(d) = self.st.deploys.get_mut(id) else {
                return;
            };
            d.rollback = Some(Rollback {
                requested_at_ms: at_ms,
                by: by.into(),
                reason: reason.into(),
                approval_required,
                workflow: None,
                execution: None,
                status: "not_configured".into(),
                finished_at_ms: None,
            });
            set_status(
                d,
                Status::Paused,
                at_ms,
                "rollback asked for, but no rollback workflow is configured ([deploys] rollback_workflow)".into(),
            );
            self.changed(id, "rollback_requested", out);
            return;
        };
        let Some(d) = self.st.deploys.get_mut(id) else {
            return;
        };
        // The deploy's seq keeps a later deploy that reuses the id from reusing a request id
        // the workflow engine would skip.
        let request_id = if attempt == 0 {
            format!("rollback/{id}/{}", d.seq)
        } else {
            format!("rollback/{id}/{}/{attempt}", d.seq)
        };
        let exec = execution_id(&wf, &request_id);
        d.rollback = Some(Rollback {
            requested_at_ms: at_ms,
            by: by.into(),
            reason: reason.into(),
            approval_required,
            workflow: Some(wf.clone()),
            execution: Some(exec.clone()),
            status: if approval_required {
                "awaiting_approval".into()
            } else {
                "pending".into()
            },
            finished_at_ms: None,
        });
        let status = if approval_required {
            Status::Paused
        } else {
            Status::RollingBack
        };
        set_status(
            d,
            status,
            at_ms,
            format!(
                "rollback {} by {by}: {reason}",
                if approval_required {
                    "waits for approval"
                } else {
                    "runs"
                }
            ),
        );
        let inputs = json!({
            "deploy": deploy_inputs(d),
            "approval_required": approval_required,
            "reason": reason,
            "by": by,
        });
        self.st
            .executions
            .insert(exec, (id.to_string(), ExecKind::Rollback));
        out.push(BookEvent::RunWorkflow {
            workflow: wf,
            request_id,
            deploy: id.to_string(),
            inputs,
        });
        self.changed(id, "rollback_requested", out);
    }

    /// A workflow execution finished (`status`: `succeeded`, `failed`, `escalated`,
    /// `rejected`, `cancelled`).
    pub fn on_execution_finished(
        &mut self,
        execution: &str,
        status: &str,
        reason: &str,
        at_ms: i64,
    ) -> Vec<BookEvent> {
        let mut out = Vec::new();
        let Some((id, kind)) = self.st.executions.remove(execution) else {
            return out;
        };
        let Some(d) = self.st.deploys.get_mut(&id) else {
            return out;
        };
        match kind {
            ExecKind::Deploy
                if !matches!(d.status, Status::AwaitingApproval | Status::InProgress) =>
            {
                // A person rolled it back, or its source reported it failed, meanwhile: the
                // action's end changes nothing but the history.
                d.history.push(Transition {
                    at_ms,
                    status: d.status,
                    reason: format!("the deploy action {status} (status kept)"),
                });
                self.changed(&id, "action_finished", &mut out);
            }
            ExecKind::Deploy => {
                match status {
                    "succeeded" => {
                        d.source_status = SourceStatus::Succeeded;
                        set_status(
                            d,
                            Status::InProgress,
                            at_ms,
                            "the deploy action succeeded".into(),
                        );
                    }
                    "rejected" => {
                        set_status(
                            d,
                            Status::Cancelled,
                            at_ms,
                            format!("the deploy was not approved: {reason}"),
                        );
                        d.finished_at_ms = Some(at_ms);
                    }
                    _ => {
                        set_status(
                            d,
                            Status::Failed,
                            at_ms,
                            format!("the deploy action {status}: {reason}"),
                        );
                        d.finished_at_ms = Some(at_ms);
                    }
                }
                self.maybe_verify(&id, at_ms);
                self.changed(&id, "action_finished", &mut out);
            }
            ExecKind::Rollback => {
                let inconclusive = d
                    .decision
                    .as_ref()
                    .is_some_and(|x| x.verdict == Verdict::Inconclusive);
                let (rb_status, status, why) = match status {
                    "succeeded" => (
                        "succeeded",
                        Status::RolledBack,
                        "the rollback succeeded".to_string(),
                    ),
                    "rejected" if inconclusive => (
                        "rejected",
                        Status::Promoted,
                        format!("a person rejected the rollback: the version stays ({reason})"),
                    ),
                    "rejected" => (
                        "rejected",
                        Status::Paused,
                        format!("a person rejected the rollback ({reason})"),
                    ),
                    "escalated" if reason.contains("approval") => (
                        "timed_out",
                        Status::Paused,
                        format!("nobody approved the rollback in time ({reason})"),
                    ),
                    other => (
                        "failed",
                        Status::Failed,
                        format!("the rollback {other}: {reason}"),
                    ),
                };
                if let Some(r) = &mut d.rollback {
                    r.status = rb_status.into();
                    r.finished_at_ms = Some(at_ms);
                }
                set_status(d, status, at_ms, why);
                if status.is_final() {
                    d.finished_at_ms = Some(at_ms);
                }
                self.changed(&id, "rollback_finished", &mut out);
            }
        }
        out
    }

    /// A sample of metric `metric` (index in the settings) for `service` and `version`.
    pub fn on_sample(
        &mut self,
        metric: usize,
        service: &str,
        version: &str,
        at_ms: i64,
        value: f64,
    ) {
        let key: SeriesKey = (metric, service.to_string(), version.to_string());
        self.st
            .samples
            .push(key, at_ms, value, &self.settings.verify);
    }

    /// A row of the template miner's window counts (for log signals).
    pub fn on_log_count(&mut self, count: &TemplateCount<'_>) {
        if self.settings.logs.enabled {
            self.st.logs.on_count(count);
        }
    }

    /// An alert fired (`firing`) or resolved.
    pub fn on_alert(&mut self, alert: FiringAlert, firing: bool, at_ms: i64) {
        // Alert times are the senders' (event time): they do not move the book's clock.
        if firing {
            if !self.st.alerts_seen.contains_key(&alert.fingerprint) {
                if self.st.alerts_seen.len() >= MAX_ALERTS_SEEN {
                    // Forget the tenth seen longest ago at once (amortized: one sort per
                    // 10,000 new fingerprints): they are the least likely to matter.
                    let mut by_age: Vec<(i64, String)> = self
                        .st
                        .alerts_seen
                        .iter()
                        .map(|(k, v)| (v.0, k.clone()))
                        .collect();
                    by_age.sort_unstable();
                    for (_, k) in by_age.into_iter().take(MAX_ALERTS_SEEN / 10) {
                        self.st.alerts_seen.remove(&k);
                    }
                }
                self.st.alerts_seen.insert(
                    alert.fingerprint.clone(),
                    (
                        at_ms,
                        alert.service.clone(),
                        format!("{} ({})", alert.alertname, alert.severity),
                        alert.severity == "critical",
                    ),
                );
            }
            self.st.firing.insert(alert.fingerprint.clone(), alert);
        } else {
            self.st.firing.remove(&alert.fingerprint);
        }
    }

    /// An incident opened (`opened`), changed while open (`open`), or resolved. A newly opened
    /// incident gets a timeline note for each deploy of its services in the hour before.
    pub fn on_incident(
        &mut self,
        incident: OpenIncident,
        open: bool,
        opened: bool,
        at_ms: i64,
    ) -> Vec<BookEvent> {
        let mut out = Vec::new();
        if !open {
            self.st.incidents.remove(&incident.id);
            self.st.notes.remove(&incident.id);
            return out;
        }
        if opened {
            let from = at_ms.saturating_sub(INCIDENT_LINK_MS);
            for d in self.st.deploys.values() {
                if d.started_at_ms >= from
                    && d.started_at_ms <= at_ms
                    && incident.services.contains(&d.service)
                {
                    note(
                        &mut self.st.notes,
                        &incident.id,
                        note_text(d, "recorded"),
                        &mut out,
                    );
                }
            }
        }
        self.st.incidents.insert(incident.id.clone(), incident);
        out
    }

    /// When the next verification window closes (plus grace), for a clock tick.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.st
            .deploys
            .values()
            .filter(|d| d.status == Status::Verifying && !self.st.verdict_pending.contains(&d.id))
            .filter_map(|d| d.verification.as_ref())
            .map(|v| {
                v.window_end_ms
                    .saturating_add(self.settings.verify.grace_ms)
            })
            .min()
    }

    /// Log time reached `now_ms`: derives the verdict of every verification whose window closed
    /// (plus grace) as a [`BookEvent::Verdict`] to write to the log; it takes effect when read
    /// back ([`DeployBook::apply_verdict`]).
    pub fn on_time(&mut self, now_ms: i64) -> Vec<BookEvent> {
        self.st.now_ms = self.st.now_ms.max(now_ms);
        let now = self.st.now_ms;
        let grace = self.settings.verify.grace_ms;
        let due: Vec<String> = self
            .st
            .deploys
            .values()
            .filter(|d| d.status == Status::Verifying)
            .filter(|d| !self.st.verdict_pending.contains(&d.id))
            .filter(|d| {
                d.verification
                    .as_ref()
                    .is_some_and(|v| v.window_end_ms.saturating_add(grace) <= now)
            })
            .map(|d| d.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            if let Some(v) = self.propose(&id, now) {
                self.st.verdict_pending.insert(id);
                out.push(BookEvent::Verdict(Box::new(v)));
            }
        }
        self.prune();
        out
    }

    /// The length of the log signals' baseline: the verification window and its delay.
    fn log_baseline_ms(&self) -> i64 {
        let v = &self.settings.verify;
        v.window_ms.saturating_add(v.delay_ms)
    }

    /// Drops samples no verification can use any more: older than the earliest baseline of an
    /// open verification, and older than a baseline a deploy starting now would need.
    fn prune(&mut self) {
        let v = &self.settings.verify;
        let reach = v
            .window_ms
            .saturating_mul(2)
            .saturating_add(v.delay_ms.saturating_mul(2))
            .saturating_add(v.grace_ms);
        let mut oldest = self.st.now_ms.saturating_sub(reach);
        // Error counts go back to the log baseline of every deploy not judged yet (it starts
        // before the deploy, which may be long before its window when the rollout took its time).
        let log_reach = self
            .log_baseline_ms()
            .saturating_add(crate::logs::KEEP_MARGIN_MS);
        let mut log_oldest = self.st.now_ms.saturating_sub(log_reach);
        for d in self.st.deploys.values() {
            if d.status == Status::Verifying
                && let Some(ver) = &d.verification
            {
                let need = ver.window_start_ms.saturating_sub(
                    (ver.window_end_ms - ver.window_start_ms).saturating_add(v.delay_ms),
                );
                oldest = oldest.min(need);
            }
            if matches!(
                d.status,
                Status::AwaitingApproval | Status::InProgress | Status::Verifying
            ) {
                log_oldest = log_oldest.min(d.started_at_ms.saturating_sub(log_reach));
            }
        }
        self.st.samples.prune(oldest);
        self.st.logs.prune(log_oldest.min(oldest), self.st.now_ms);
    }

    /// Derives deploy `id`'s verdict now (its window closed): a proposal for the log.
    fn propose(&self, id: &str, now: i64) -> Option<VerdictRecord> {
        let d = self.st.deploys.get(id)?;
        let ver = d.verification.clone()?;
        let plan = Plan {
            service: &d.service,
            version: &d.version,
            previous_version: d.previous_version.as_deref(),
            canary: d.strategy == DeployStrategy::Canary,
            window: (ver.window_start_ms, ver.window_end_ms),
        };
        let compared = verify::compare(&plan, &self.st.samples, &self.settings.verify);
        let mut signals = self.signals(&d.service, ver.window_start_ms, ver.window_end_ms);
        // Logs are per service: from the deploy's start (a new version failing at start logs
        // before its window opens) against as long before it.
        signals.extend(self.st.logs.signals(
            &self.settings.logs,
            &d.service,
            d.started_at_ms.min(ver.window_start_ms),
            ver.window_end_ms,
            self.log_baseline_ms(),
        ));
        let mut j = compared.judgement;
        finite(&mut j);
        let mut reasons = j.reasons.clone();
        let mut verdict = match j.outcome {
            Outcome::Pass => Some(Verdict::Promote),
            Outcome::Marginal => Some(Verdict::Inconclusive),
            Outcome::Fail => Some(Verdict::Rollback),
            Outcome::NoData => None,
        };
        for s in signals.iter().filter(|s| !s.informational) {
            reasons.push(s.detail.clone());
            verdict = match (verdict, s.critical) {
                (_, true) => Some(Verdict::Rollback),
                (Some(Verdict::Promote), false) | (None, false) => Some(Verdict::Inconclusive),
                (v, false) => v,
            };
        }
        Some(VerdictRecord {
            deploy: id.to_string(),
            deploy_seq: d.seq,
            at_ms: now,
            verification: Verification {
                baseline: compared.baseline.into(),
                baseline_start_ms: compared.baseline_window.0,
                baseline_end_ms: compared.baseline_window.1,
                judgement: Some(j),
                signals,
                ..ver
            },
            verdict,
            reasons,
        })
    }

    /// Applies a verdict read from the log (see [`BookEvent::Verdict`]): the record, the
    /// status, and the rollback it calls for. A verdict for a deploy that is no longer
    /// verifying (a person rolled it back meanwhile, or the id is another deploy's now) changes
    /// nothing.
    pub fn apply_verdict(&mut self, v: &VerdictRecord) -> Vec<BookEvent> {
        let mut out = Vec::new();
        let id = v.deploy.as_str();
        self.st.verdict_pending.remove(id);
        let now = v.at_ms;
        let Some(d) = self.st.deploys.get_mut(id) else {
            return out;
        };
        if d.seq != v.deploy_seq || d.status != Status::Verifying {
            return out;
        }
        d.verification = Some(v.verification.clone());
        let Some(verdict) = v.verdict else {
            set_status(
                d,
                Status::Succeeded,
                now,
                "not verified: no metric had samples in the window".into(),
            );
            d.finished_at_ms = Some(now);
            self.changed(id, "verdict", &mut out);
            return out;
        };
        let reasons = v.reasons.clone();
        d.decision = Some(Decision {
            verdict,
            at_ms: now,
            by: "verification".into(),
            reasons: reasons.clone(),
        });
        let summary = reasons.first().cloned().unwrap_or_default();
        match verdict {
            Verdict::Promote => {
                set_status(
                    d,
                    Status::Promoted,
                    now,
                    format!("verdict promote: {summary}"),
                );
                d.finished_at_ms = Some(now);
                self.changed(id, "verdict", &mut out);
            }
            Verdict::Rollback => {
                let approval = self
                    .settings
                    .rollback_approval_environments
                    .contains(&d.environment);
                self.changed(id, "verdict", &mut out);
                self.start_rollback(
                    id,
                    "verification",
                    &format!("verdict rollback: {summary}"),
                    approval,
                    now,
                    &mut out,
                );
            }
            Verdict::Inconclusive => {
                set_status(
                    d,
                    Status::Paused,
                    now,
                    format!("verdict inconclusive: {summary}"),
                );
                self.changed(id, "verdict", &mut out);
                if self.settings.rollback_workflow.is_some() {
                    self.start_rollback(
                        id,
                        "verification",
                        &format!("verdict inconclusive: {summary}"),
                        true,
                        now,
                        &mut out,
                    );
                }
            }
        }
        out
    }

    /// Alerts of `service` that fired for the first time inside the window.
    fn signals(&self, service: &str, from: i64, to: i64) -> Vec<Signal> {
        let mut out: Vec<Signal> = self
            .st
            .alerts_seen
            .iter()
            .filter(|(_, (t, s, _, _))| s == service && *t >= from && *t < to)
            .map(|(fp, (_, _, what, critical))| Signal {
                kind: "new_alert".into(),
                detail: format!("alert {what} fired for the first time during the window ({fp})"),
                critical: *critical,
                informational: false,
            })
            .collect();
        out.sort_by(|a, b| b.critical.cmp(&a.critical).then(a.detail.cmp(&b.detail)));
        out
    }

    /// DORA figures per service over the lookback before log time now.
    pub fn dora(&self) -> BTreeMap<String, Dora> {
        let now = self.st.now_ms;
        let from = now.saturating_sub(self.settings.lookback_ms);
        let days = (self.settings.lookback_ms as f64 / 86_400_000.0).max(1.0 / 24.0);
        let mut by: BTreeMap<&str, Vec<&Deploy>> = BTreeMap::new();
        for d in self.st.deploys.values() {
            if d.started_at_ms >= from && d.rollback_of.is_none() {
                by.entry(d.service.as_str()).or_default().push(d);
            }
        }
        let mut out = BTreeMap::new();
        for (service, mut ds) in by {
            ds.sort_by_key(|d| (d.started_at_ms, d.id.clone()));
            let finished = ds
                .iter()
                .filter(|d| d.status.is_final() || d.decision.is_some() || is_failure(d))
                .count();
            let failed: Vec<&&Deploy> = ds.iter().filter(|d| is_failure(d)).collect();
            let mut restores: Vec<i64> = Vec::new();
            for f in &failed {
                // When the failure was known: the verdict, a person asking for the rollback, or
                // the failed rollout's end.
                let failed_at = f
                    .decision
                    .as_ref()
                    .map(|x| x.at_ms)
                    .or_else(|| f.rollback.as_ref().map(|r| r.requested_at_ms))
                    .or(f.finished_at_ms)
                    .unwrap_or(f.started_at_ms);
                let restored = f
                    .rollback
                    .as_ref()
                    .filter(|r| r.status == "succeeded")
                    .and_then(|r| r.finished_at_ms)
                    .or_else(|| {
                        ds.iter()
                            .filter(|n| n.started_at_ms > f.started_at_ms && !is_failure(n))
                            .filter(|n| matches!(n.status, Status::Promoted | Status::Succeeded))
                            .filter_map(|n| n.finished_at_ms)
                            .next()
                    });
                if let Some(r) = restored {
                    restores.push(r.saturating_sub(failed_at).max(0));
                }
            }
            restores.sort_unstable();
            let ttr = (!restores.is_empty()).then(|| restores[restores.len() / 2]);
            out.insert(
                service.to_string(),
                Dora {
                    deploys: ds.len() as u64,
                    deployment_frequency_per_day: ds.len() as f64 / days,
                    failed: failed.len() as u64,
                    change_failure_rate: (finished > 0)
                        .then(|| failed.len() as f64 / finished as f64),
                    time_to_restore_ms: ttr,
                },
            );
        }
        out
    }

    fn changed(&mut self, id: &str, change: &str, out: &mut Vec<BookEvent>) {
        if let Some(d) = self.st.deploys.get(id) {
            if matches!(
                change,
                "recorded" | "verdict" | "rollback_requested" | "rollback_finished"
            ) {
                for inc in self.st.incidents.values() {
                    if inc.services.contains(&d.service) {
                        note(&mut self.st.notes, &inc.id, note_text(d, change), out);
                    }
                }
            }
            out.push(BookEvent::Changed {
                change: change.into(),
                deploy: Box::new(d.clone()),
            });
        }
    }

    /// Keeps at most `max_deploys`: the oldest finished ones go first.
    fn trim(&mut self) {
        let max = self.settings.max_deploys.max(1);
        if self.st.deploys.len() <= max {
            return;
        }
        let mut finished: Vec<(i64, String)> = self
            .st
            .deploys
            .values()
            .filter(|d| d.status.is_final())
            .map(|d| (d.started_at_ms, d.id.clone()))
            .collect();
        finished.sort();
        let excess = self.st.deploys.len() - max;
        for (_, id) in finished.into_iter().take(excess) {
            self.st.deploys.remove(&id);
        }
        let live: std::collections::BTreeSet<&String> = self.st.deploys.keys().collect();
        self.st.external.retain(|_, v| live.contains(v));
        self.st.executions.retain(|_, (v, _)| live.contains(v));
        self.st.rollback_attempts.retain(|k, _| live.contains(k));
    }
}

/// Non-finite numbers (a mean that overflowed) become `None` / 0 so that a verdict survives a
/// JSON round trip unchanged (JSON has no NaN or infinity).
fn finite(j: &mut crate::judge::Judgement) {
    let fix = |x: &mut Option<f64>| {
        if x.is_some_and(|v| !v.is_finite()) {
            *x = None;
        }
    };
    if !j.score.is_finite() {
        j.score = 0.0;
    }
    for m in &mut j.metrics {
        fix(&mut m.change);
        fix(&mut m.canary.mean);
        fix(&mut m.canary.median);
        fix(&mut m.baseline.mean);
        fix(&mut m.baseline.median);
        if m.test
            .is_some_and(|t| !t.u.is_finite() || !t.p_value.is_finite())
        {
            m.test = None;
        }
    }
}

/// Queues a timeline note for `incident` unless it has [`MAX_NOTES_PER_INCIDENT`] already (a
/// service deployed many times while an incident stays open must not flood its timeline).
fn note(notes: &mut BTreeMap<String, u32>, incident: &str, text: String, out: &mut Vec<BookEvent>) {
    let n = notes.entry(incident.to_string()).or_insert(0);
    if *n < MAX_NOTES_PER_INCIDENT {
        *n += 1;
        out.push(BookEvent::Note {
            incident: incident.to_string(),
            text,
        });
    }
}

/// An incident timeline line about deploy `d` after `change`.
fn note_text(d: &Deploy, change: &str) -> String {
    let from = d.previous_version.as_deref().unwrap_or("?");
    let what = match change {
        "verdict" => match &d.decision {
            Some(x) => format!(
                "verdict {}: {}",
                x.verdict.as_str(),
                x.reasons.first().map(String::as_str).unwrap_or("")
            ),
            None => format!("verification ended: {}", d.status.as_str()),
        },
        "rollback_requested" => match &d.rollback {
            Some(r) if r.approval_required => format!("rollback waits for approval ({})", r.reason),
            Some(r) => format!("rollback asked for by {} ({})", r.by, r.reason),
            None => "rollback asked for".into(),
        },
        "rollback_finished" => format!(
            "rollback {}",
            d.rollback
                .as_ref()
                .map(|r| r.status.as_str())
                .unwrap_or("?")
        ),
        _ => format!("deployed ({})", d.status.as_str()),
    };
    format!(
        "deploy {} of {} {from} → {} in {}: {what}",
        d.id, d.service, d.version, d.environment
    )
}

/// Whether a deploy counts as a failed change.
fn is_failure(d: &Deploy) -> bool {
    matches!(
        d.status,
        Status::Failed | Status::RolledBack | Status::RollingBack
    ) || d
        .decision
        .as_ref()
        .is_some_and(|x| x.verdict == Verdict::Rollback)
}

fn gone(id: &str) -> DeployError {
    DeployError::NotFound(format!("no deploy {id:?}"))
}

fn set_status(d: &mut Deploy, status: Status, at_ms: i64, reason: String) {
    d.status = status;
    if d.history.len() >= MAX_HISTORY {
        d.history.remove(1);
    }
    d.history.push(Transition {
        at_ms,
        status,
        reason,
    });
}

/// The workflow engine's execution id of `workflow`'s manual trigger with `request_id`.
pub fn execution_id(workflow: &str, request_id: &str) -> String {
    format!("{workflow}/manual/{request_id}")
}

/// What a workflow gets as `inputs.deploy`.
fn deploy_inputs(d: &Deploy) -> serde_json::Value {
    json!({
        "id": d.id,
        "service": d.service,
        "environment": d.environment,
        "version": d.version,
        "previous_version": d.previous_version,
        "strategy": d.strategy,
        "requested_by": d.requested_by,
        "started_at_ms": d.started_at_ms,
        "url": d.url,
    })
}
