//! The deploy processor: deploy commands, verification metrics (pipeline outputs), alerting
//! decisions, workflow events and clock ticks in log order in; deploy record changes, workflow
//! runs and incident notes out.

use super::{CONTROL_TYPE, ControlEvent, DeploySettings};
use crate::alerting::codec::parse_decisions;
use crate::processor::{Outputs, Processor, ProcessorError, StepInfo};
use crate::progress::CommandProgress;
use crate::wire::{
    self, CLOCK_SUBJECT, CONTROL_SUBJECT, DECISIONS_SUBJECT, DEPLOYS_SUBJECT, EFFECTS_SUBJECT, ids,
};
use crate::workflows::codec::{EffectsLine, parse_effects};
use aiops_alerting::Decision;
use aiops_alerting::decision::Change;
use aiops_deploy::book::{BookEvent, DeployBook, VerdictRecord};
use aiops_deploy::logs::TemplateCount;
use aiops_deploy::risk::{FiringAlert, OpenIncident};
use aiops_log::{AppendMessage, Record};
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Int64Type, UInt64Type};
use aiops_schemas::arrow_array::{Array, RecordBatch};
use aiops_schemas::arrow_schema::{DataType, TimeUnit};
use aiops_workflow::{WorkflowControl, WorkflowEvent};
use datafusion::arrow::compute::cast;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Counts of one run (field names are read by tests, metrics and `aiops rebuild`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeployRunSummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Commands applied.
    pub applied: u64,
    /// Commands refused (invalid, unknown deploy, a freeze, a conflict).
    pub refused: u64,
    /// Deploy messages that could not be decoded (skipped, logged).
    pub undecodable: u64,
    /// Samples taken from pipeline outputs.
    pub samples: u64,
    /// Template count rows taken from the miner's window counts (log signals).
    pub log_counts: u64,
    /// Verdicts reached.
    pub verdicts: u64,
    /// Workflow runs asked for (deploy and rollback actions).
    pub workflow_runs: u64,
    /// Deploys now.
    pub deploys: u64,
    /// Outputs already in the log when re-derived (after a crash or in a replay).
    pub already_in_log: u64,
}

/// What the HTTP API shares with the processor.
pub struct DeployHandle {
    /// The book (the processor writes, the API reads).
    pub book: RwLock<DeployBook>,
    /// How far the processor has read, and what became of recent commands.
    pub progress: Arc<CommandProgress>,
    /// Counts so far.
    pub summary: Mutex<DeployRunSummary>,
    /// The settings it runs with.
    pub settings: DeploySettings,
    /// Whether the processor has read the log as it was when it started.
    pub caught_up: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for DeployHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployHandle")
            .field("position", &self.progress.position())
            .finish()
    }
}

impl DeployHandle {
    /// An empty handle.
    pub fn new(settings: DeploySettings) -> Arc<DeployHandle> {
        Arc::new(DeployHandle {
            book: RwLock::new(DeployBook::new(settings.book())),
            progress: Arc::new(CommandProgress::default()),
            summary: Mutex::new(DeployRunSummary::default()),
            settings,
            caught_up: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

/// The deploy processor.
pub struct DeployProcessor {
    handle: Arc<DeployHandle>,
    summary: DeployRunSummary,
    /// Metric indexes by pipeline output name.
    outputs: BTreeMap<String, Vec<usize>>,
    /// The metrics, by index.
    metrics: Vec<aiops_deploy::verify::MetricSource>,
    config_hash: u64,
    /// Record changes and verdicts seen in this run (for `aiops deploy verify` and tests).
    collected: Option<Vec<BookEvent>>,
    /// When collecting: the verdicts the log already holds, by deploy id (the proposals the
    /// live engine wrote).
    recorded: BTreeMap<String, String>,
}

/// Snapshot layout version; a checkpoint of another layout is not restored.
const SNAPSHOT_VERSION: &str = "deploys-v1";

fn err(e: impl std::fmt::Display) -> ProcessorError {
    ProcessorError::new(DeployProcessor::NAME, e)
}

impl DeployProcessor {
    /// A processor over `handle`, whose state starts empty: the driver then restores the
    /// checkpoint into it or rebuilds it from the log.
    pub fn new(handle: Arc<DeployHandle>) -> DeployProcessor {
        let settings = handle.settings.book();
        *handle.book.write() = DeployBook::new(settings.clone());
        let mut outputs: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, m) in settings.verify.metrics.iter().enumerate() {
            outputs.entry(m.output.clone()).or_default().push(i);
        }
        let config = serde_json::to_vec(&settings).unwrap_or_default();
        let mut h = wire::hash(SNAPSHOT_VERSION.as_bytes())
            .to_le_bytes()
            .to_vec();
        h.extend_from_slice(&config);
        DeployProcessor {
            handle,
            summary: DeployRunSummary::default(),
            outputs,
            metrics: settings.verify.metrics.clone(),
            config_hash: wire::hash(&h),
            collected: None,
            recorded: BTreeMap::new(),
        }
    }

    /// Keeps every book event of this run (for a forensic re-verification).
    pub fn collect(mut self) -> DeployProcessor {
        self.collected = Some(Vec::new());
        self
    }

    /// The events collected so far (when [`DeployProcessor::collect`] was asked for).
    pub fn collected(&self) -> &[BookEvent] {
        self.collected.as_deref().unwrap_or(&[])
    }

    /// The verdicts found in the log by deploy id (when collecting).
    pub fn recorded_verdicts(&self) -> &BTreeMap<String, String> {
        &self.recorded
    }

    /// The handle the API reads.
    pub fn handle(&self) -> Arc<DeployHandle> {
        self.handle.clone()
    }

    /// Counts so far.
    pub fn summary(&self) -> DeployRunSummary {
        self.summary
    }

    /// Takes samples of the configured metrics from one pipeline output batch.
    fn samples(&mut self, output: &str, header_ms: i64, batch: &RecordBatch) {
        let Some(metrics) = self.outputs.get(output) else {
            return;
        };
        let schema = batch.schema();
        let times = schema
            .index_of("window_start")
            .ok()
            .and_then(|i| {
                cast(
                    batch.column(i),
                    &DataType::Timestamp(TimeUnit::Millisecond, None),
                )
                .ok()
            })
            .and_then(|a| cast(&a, &DataType::Int64).ok());
        let times = times.as_ref().and_then(|a| {
            a.as_any()
                .downcast_ref::<aiops_schemas::arrow_array::Int64Array>()
        });
        let revisions = schema
            .index_of("revision")
            .ok()
            .and_then(|i| cast(batch.column(i), &DataType::Int64).ok());
        let revisions = revisions.as_ref().and_then(|a| {
            a.as_any()
                .downcast_ref::<aiops_schemas::arrow_array::Int64Array>()
        });
        let mut book = self.handle.book.write();
        for &m in metrics {
            let Some(src) = self.metrics.get(m) else {
                continue;
            };
            let col = |name: &str, ty: &DataType| {
                schema
                    .index_of(name)
                    .ok()
                    .and_then(|i| cast(batch.column(i), ty).ok())
            };
            let (Some(values), Some(services)) = (
                col(&src.column, &DataType::Float64),
                col(&src.service_column, &DataType::Utf8),
            ) else {
                continue;
            };
            let versions = col(&src.version_column, &DataType::Utf8);
            let (Some(values), Some(services)) = (
                values
                    .as_any()
                    .downcast_ref::<aiops_schemas::arrow_array::Float64Array>(),
                services
                    .as_any()
                    .downcast_ref::<aiops_schemas::arrow_array::StringArray>(),
            ) else {
                continue;
            };
            let versions = versions.as_ref().and_then(|v| {
                v.as_any()
                    .downcast_ref::<aiops_schemas::arrow_array::StringArray>()
                    .cloned()
            });
            for row in 0..batch.num_rows() {
                // A late revision of a window re-emits it: the first emission is the sample.
                if revisions.is_some_and(|r| r.is_valid(row) && r.value(row) != 0) {
                    continue;
                }
                if values.is_null(row) || services.is_null(row) {
                    continue;
                }
                let version = versions
                    .as_ref()
                    .filter(|v| v.is_valid(row))
                    .map_or("", |v| v.value(row));
                let at = times
                    .filter(|t| t.is_valid(row))
                    .map_or(header_ms, |t| t.value(row));
                book.on_sample(m, services.value(row), version, at, values.value(row));
                self.summary.samples += 1;
            }
        }
    }

    /// Takes the template miner's window counts (`log_templates_1m`) for log signals.
    fn log_counts(&mut self, batch: &RecordBatch, bucket_ms: i64) {
        let schema = batch.schema();
        let col = |name: &str, ty: &DataType| {
            schema
                .index_of(name)
                .ok()
                .and_then(|i| cast(batch.column(i), ty).ok())
        };
        let (Some(times), Some(services), Some(ids), Some(texts), Some(lines), Some(errors)) = (
            col(
                "window_start",
                &DataType::Timestamp(TimeUnit::Millisecond, None),
            )
            .and_then(|a| cast(&a, &DataType::Int64).ok()),
            col("service", &DataType::Utf8),
            col("template_id", &DataType::Utf8),
            col("template", &DataType::Utf8),
            col("count", &DataType::UInt64),
            col("errors", &DataType::UInt64),
        ) else {
            tracing::warn!("deploys skip template counts without the miner's columns");
            return;
        };
        let (Some(times), Some(services), Some(ids), Some(texts), Some(lines), Some(errors)) = (
            times.as_primitive_opt::<Int64Type>(),
            services.as_string_opt::<i32>(),
            ids.as_string_opt::<i32>(),
            texts.as_string_opt::<i32>(),
            lines.as_primitive_opt::<UInt64Type>(),
            errors.as_primitive_opt::<UInt64Type>(),
        ) else {
            tracing::warn!("deploys skip template counts whose columns have other types");
            return;
        };
        let mut book = self.handle.book.write();
        for row in 0..batch.num_rows() {
            if times.is_null(row) || services.is_null(row) || ids.is_null(row) {
                continue;
            }
            book.on_log_count(&TemplateCount {
                window_start_ms: times.value(row),
                window_ms: bucket_ms,
                service: services.value(row),
                template_id: ids.value(row),
                template: if texts.is_null(row) {
                    ""
                } else {
                    texts.value(row)
                },
                lines: if lines.is_null(row) {
                    0
                } else {
                    lines.value(row)
                },
                errors: if errors.is_null(row) {
                    0
                } else {
                    errors.value(row)
                },
            });
            self.summary.log_counts += 1;
        }
    }

    fn on_decisions(&mut self, payload: &[u8], seq: u64) -> Vec<BookEvent> {
        let ds = match parse_decisions(payload) {
            Ok(ds) => ds,
            Err(e) => {
                tracing::warn!(seq, error = %e, "deploys skip an undecodable decision message");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut book = self.handle.book.write();
        for d in ds {
            match d {
                Decision::AlertState(c) => {
                    let firing = match c.change {
                        Change::Firing => true,
                        Change::Resolved | Change::StaleResolved => false,
                        _ => continue,
                    };
                    book.on_alert(
                        FiringAlert {
                            fingerprint: c.fingerprint,
                            alertname: c.name,
                            severity: c.severity,
                            service: c.service,
                        },
                        firing,
                        c.at_ms,
                    );
                }
                Decision::Incident(i) => {
                    let v = i.incident;
                    let open = i.change != "resolved";
                    out.extend(book.on_incident(
                        OpenIncident {
                            id: v.id,
                            title: v.title,
                            severity: v.severity,
                            services: v.services.into_iter().collect(),
                        },
                        open,
                        i.change == "opened",
                        i.at_ms,
                    ));
                }
                _ => {}
            }
        }
        out
    }

    fn on_effects(&mut self, payload: &[u8]) -> Vec<BookEvent> {
        let mut out = Vec::new();
        for line in parse_effects(payload) {
            let EffectsLine::Event(e) = line else {
                continue;
            };
            let (id, status, reason, at) = match *e {
                WorkflowEvent::ExecutionFinished {
                    id,
                    status,
                    reason,
                    at_ms,
                    ..
                } => (id, status, reason, at_ms),
                WorkflowEvent::ExecutionCancelled {
                    id, reason, at_ms, ..
                } => (id, "cancelled".to_string(), reason, at_ms),
                _ => continue,
            };
            // On the log each event line carries the event's own id in `id`
            // (`wire::ndjson_message`), which shadows the execution id: `<execution>/finished`,
            // `<execution>/cancelled`. The book knows executions by their id.
            let id = id
                .strip_suffix("/finished")
                .or_else(|| id.strip_suffix("/cancelled"))
                .unwrap_or(&id);
            let status = book_status(status, &reason);
            out.extend(
                self.handle
                    .book
                    .write()
                    .on_execution_finished(id, &status, &reason, at),
            );
        }
        out
    }

    /// The log messages for the book's events caused by input `seq` at log time `at_ms`.
    fn emit(
        &mut self,
        seq: u64,
        at_ms: i64,
        events: Vec<BookEvent>,
        out: &mut Outputs,
    ) -> Result<(), ProcessorError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut changes = Vec::new();
        for (n, e) in events.iter().enumerate() {
            match e {
                BookEvent::Changed { change, deploy } => {
                    if change == "verdict" {
                        self.summary.verdicts += 1;
                    }
                    changes.push(serde_json::json!({
                        "type": "deploy",
                        "change": change,
                        "deploy": deploy,
                    }));
                }
                BookEvent::Verdict(v) => {
                    let body = VerdictMessage {
                        kind: VERDICT_TYPE.into(),
                        verdict: (**v).clone(),
                    };
                    let payload = serde_json::to_vec(&body).map_err(err)?;
                    out.push(AppendMessage {
                        subject: CONTROL_SUBJECT.into(),
                        // The deploy alone names it: a re-derivation (other settings, a
                        // rebuild) finds the original in the log and does not write its own.
                        msg_id: format!(
                            "{VERDICT_PREFIX}{:016x}.{}",
                            wire::hash(v.deploy.as_bytes()),
                            v.deploy_seq
                        ),
                        time_min_ms: at_ms,
                        time_max_ms: at_ms,
                        payload: bytes::Bytes::from(payload),
                    });
                }
                BookEvent::RunWorkflow {
                    workflow,
                    request_id,
                    inputs,
                    ..
                } => {
                    self.summary.workflow_runs += 1;
                    let body = crate::workflows::codec::ControlEvent {
                        kind: "workflow".into(),
                        at_ms,
                        body: crate::workflows::codec::WorkflowCommand::Command {
                            command: WorkflowControl::Execute {
                                workflow: workflow.clone(),
                                request_id: request_id.clone(),
                                by: "aiops-deploys".into(),
                                inputs: inputs.clone(),
                            },
                        },
                    };
                    let payload = serde_json::to_vec(&body).map_err(err)?;
                    out.push(AppendMessage {
                        subject: CONTROL_SUBJECT.into(),
                        // The request alone names it: asked for once, whatever its inputs.
                        msg_id: format!(
                            "{RUN_PREFIX}{:016x}",
                            wire::hash(format!("{workflow}\u{0}{request_id}").as_bytes())
                        ),
                        time_min_ms: at_ms,
                        time_max_ms: at_ms,
                        payload: bytes::Bytes::from(payload),
                    });
                }
                BookEvent::Note { incident, text } => {
                    let body = crate::alerting::codec::ControlEvent {
                        kind: "alerting".into(),
                        at_ms,
                        command: aiops_alerting::Control::Note {
                            incident: incident.clone(),
                            kind: "deploy".into(),
                            text: text.clone(),
                        },
                    };
                    out.push(action_message(seq, n, at_ms, &body).map_err(err)?);
                }
            }
        }
        if !changes.is_empty() {
            let m = wire::ndjson_message(DEPLOYS_SUBJECT, ids::DEPLOY_EVENTS, seq, &changes, |c| {
                let id = c["deploy"]["id"].as_str().unwrap_or_default().to_string();
                let change = c["change"].as_str().unwrap_or_default().to_string();
                (
                    format!("{id}/{change}"),
                    format!("deploy {id} {change}"),
                    at_ms,
                )
            })
            .map_err(err)?;
            out.push(m);
        }
        if let Some(c) = &mut self.collected {
            c.extend(events);
        }
        Ok(())
    }
}

/// The book's name for how an execution finished. The workflow engine has no `rejected` status:
/// a refused approval fails the execution (or escalates it, when the workflow has an
/// escalation) with the reason `step S rejected by U`, and an approval nobody gave in time with
/// `approval of step S timed out`; the book tells those apart as `rejected` and an `escalated`
/// approval. Both are matched from the start as the engine writes them (a step name has no
/// space), so a receiver's answer quoted in `step S failed: …` cannot pass for a person's
/// decision.
fn book_status(status: String, reason: &str) -> String {
    if status == "succeeded" || status == "cancelled" {
        status
    } else if reason
        .strip_prefix("step ")
        .and_then(|r| r.split_once(' '))
        .is_some_and(|(_, rest)| rest.starts_with("rejected by "))
    {
        "rejected".into()
    } else if reason.starts_with("approval of step ") && reason.ends_with(" timed out") {
        "escalated".into()
    } else {
        status
    }
}

/// Id prefix of verdict proposals (within [`ids::DEPLOY_ACTIONS`]).
const VERDICT_PREFIX: &str = "g.verdict.";
/// Id prefix of workflow runs (within [`ids::DEPLOY_ACTIONS`]).
const RUN_PREFIX: &str = "g.run.";
/// The `type` of verdict proposals.
const VERDICT_TYPE: &str = "deploy_verdict";

/// A verdict proposal as written to the log.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct VerdictMessage {
    /// Always [`VERDICT_TYPE`].
    #[serde(rename = "type")]
    kind: String,
    /// The verdict.
    verdict: VerdictRecord,
}

/// A verdict's name: the verdict, or `succeeded` when no metric had samples.
pub fn verdict_name(v: &VerdictRecord) -> String {
    v.verdict
        .map_or_else(|| "succeeded".to_string(), |x| x.as_str().to_string())
}

/// A command for another processor, caused by input `seq` (its `n`th event): the id derives
/// from the input and the content, so re-deriving it after a crash finds it in the log.
fn action_message<T: Serialize>(
    seq: u64,
    n: usize,
    at_ms: i64,
    body: &T,
) -> Result<AppendMessage, serde_json::Error> {
    let payload = serde_json::to_vec(body)?;
    Ok(AppendMessage {
        subject: CONTROL_SUBJECT.into(),
        msg_id: format!(
            "{}{seq}.{n}.{:016x}",
            ids::DEPLOY_ACTIONS,
            wire::hash(&payload)
        ),
        time_min_ms: at_ms,
        time_max_ms: at_ms,
        payload: bytes::Bytes::from(payload),
    })
}

impl Processor for DeployProcessor {
    const NAME: &'static str = "deploys";
    const WHAT: &'static str = "deploy book";

    fn config_hash(&self) -> u64 {
        self.config_hash
    }

    fn is_output(&self, subject: &str, msg_id: &str) -> bool {
        (subject == DEPLOYS_SUBJECT && msg_id.starts_with(ids::DEPLOY_EVENTS))
            || (subject == CONTROL_SUBJECT && msg_id.starts_with(ids::DEPLOY_ACTIONS))
    }

    fn output_key<'a>(&self, msg_id: &'a str) -> &'a str {
        if msg_id.starts_with(VERDICT_PREFIX) || msg_id.starts_with(RUN_PREFIX) {
            // Already content-free.
            msg_id
        } else if msg_id.starts_with(ids::DEPLOY_EVENTS) {
            // One record-change message per input.
            wire::input_key(ids::DEPLOY_EVENTS, msg_id)
        } else {
            // Notes: `g.<seq>.<n>.<hash>` → `g.<seq>.<n>`.
            msg_id.rsplit_once('.').map_or(msg_id, |(k, _)| k)
        }
    }

    fn on_record(&mut self, r: &Record, out: &mut Outputs) -> Result<(), ProcessorError> {
        let events = if r.subject == CONTROL_SUBJECT && r.msg_id.starts_with(ids::DEPLOY_CONTROL) {
            match wire::parse_control::<ControlEvent>(&r.payload, CONTROL_TYPE) {
                None => return Ok(()),
                Some(Err(e)) => {
                    self.summary.undecodable += 1;
                    tracing::warn!(seq = r.seq, error = %e, "deploys skip an undecodable command");
                    out.refused(format!("invalid: the command does not decode: {e}"));
                    return Ok(());
                }
                Some(Ok(ev)) => {
                    let res = {
                        // Verdicts already due come first: a command does not overtake them.
                        let mut book = self.handle.book.write();
                        let mut due = book.on_time(r.time_max_ms);
                        match book.apply(&ev.command, r.time_max_ms, r.seq) {
                            Ok(evs) => {
                                due.extend(evs);
                                Ok(due)
                            }
                            Err(e) => {
                                // The refusal changes nothing, but due verdicts still go out.
                                drop(book);
                                self.emit(r.seq, r.time_max_ms, due, out)?;
                                Err(e)
                            }
                        }
                    };
                    match res {
                        Ok(evs) => {
                            self.summary.applied += 1;
                            out.applied();
                            evs
                        }
                        Err(e) => {
                            self.summary.refused += 1;
                            tracing::info!(seq = r.seq, reason = %e, "deploy command refused");
                            out.refused(super::refusal(&e));
                            return Ok(());
                        }
                    }
                }
            }
        } else if r.subject == CLOCK_SUBJECT {
            self.handle.book.write().on_time(r.time_max_ms)
        } else if r.subject == DECISIONS_SUBJECT {
            self.on_decisions(&r.payload, r.seq)
        } else if r.subject == EFFECTS_SUBJECT && r.msg_id.starts_with(ids::WORKFLOW_EVENTS) {
            self.on_effects(&r.payload)
        } else if r.subject == CONTROL_SUBJECT && r.msg_id.starts_with(VERDICT_PREFIX) {
            match wire::parse_control::<VerdictMessage>(&r.payload, VERDICT_TYPE) {
                Some(Ok(m)) => {
                    if self.collected.is_some() {
                        self.recorded
                            .insert(m.verdict.deploy.clone(), verdict_name(&m.verdict));
                    }
                    self.handle.book.write().apply_verdict(&m.verdict)
                }
                Some(Err(e)) => {
                    self.summary.undecodable += 1;
                    tracing::warn!(seq = r.seq, error = %e, "deploys skip an undecodable verdict");
                    return Ok(());
                }
                None => return Ok(()),
            }
        } else if let Some(output) = r.subject.strip_prefix(wire::DERIVED_PREFIX) {
            if output == crate::templates::COUNTS_STREAM && self.handle.settings.logs.enabled {
                match aiops_schemas::derived::decode_derived(&r.payload) {
                    // One message per bucket, its time range the bucket (see
                    // templates::encode::counts_messages).
                    Ok((_, batch)) => self.log_counts(
                        &batch,
                        r.time_max_ms
                            .saturating_sub(r.time_min_ms)
                            .saturating_add(1),
                    ),
                    Err(e) => {
                        tracing::warn!(seq = r.seq, error = %e, "deploys skip undecodable template counts");
                    }
                }
            }
            if self.outputs.contains_key(output) {
                match aiops_schemas::derived::decode_derived(&r.payload) {
                    Ok((h, batch)) => self.samples(output, h.window_start_ms, &batch),
                    Err(e) => {
                        tracing::warn!(seq = r.seq, error = %e, "deploys skip an undecodable pipeline output");
                    }
                }
            }
            return Ok(());
        } else {
            return Ok(());
        };
        self.emit(r.seq, r.time_max_ms, events, out)
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        self.handle.book.read().next_deadline_ms()
    }

    fn snapshot(&self) -> Result<Vec<u8>, ProcessorError> {
        self.handle.book.read().snapshot().map_err(err)
    }

    /// Cloned in line, serialized beside the step loop: a book verifying many deploys holds
    /// millions of samples (1,000 deploys × 10 series × 600 points made a 197 MB snapshot that
    /// took ~1 s to serialize in `aiops-bench deploy-log`), and verdicts must not wait for it.
    fn snapshot_job(&self) -> Option<crate::processor::SnapshotJob> {
        let book = self.handle.book.read().clone();
        Some(Box::new(move || book.snapshot().map_err(err)))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ProcessorError> {
        let settings = self.handle.settings.book();
        *self.handle.book.write() = DeployBook::restore(settings, state).map_err(err)?;
        Ok(())
    }

    fn stepped(&mut self, info: &StepInfo) {
        self.summary.messages_read = info.counts.messages_read;
        self.summary.already_in_log = info.counts.already_in_log;
        self.summary.deploys = self.handle.book.read().len() as u64;
        *self.handle.summary.lock() = self.summary;
        if info.caught_up {
            self.handle
                .caught_up
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }
}
