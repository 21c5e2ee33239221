//! Runs a set of streaming pipelines over the event log: reads input messages in log order,
//! feeds each pipeline the batches of its input kind, and appends what they emit to the log as
//! derived events (`aiops.derived.<output>`) and late rows (`aiops.late.<pipeline>`).
//!
//! Recovery follows DESIGN.md (invariants 1 and 2): a checkpoint holds, per pipeline, the input
//! position it consumed up to and its whole state; it is written only after the outputs of those
//! inputs are in the log. After a crash each pipeline resumes from its checkpoint and re-derives
//! the same outputs with the same message ids; ids already found in the log past the checkpoint
//! are not appended again, so the log ends up exactly as after an uninterrupted run.

use super::store::{PipelineCheckpoint, Store};
use crate::driver::{BATCH, Cadence, FALLBACK_POLL, OutputDedup, idle_wait};
use crate::store::StoreError;
use crate::wire::{ALERTS_PREFIX, EVENTS_PREFIX, ids};
use aiops_log::{AppendMessage, EventLog, LogError, LogReader, Record};
use aiops_schemas::arrow_array::BooleanArray;
use aiops_schemas::arrow_array::RecordBatch;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::derived::{
    DERIVED_PREFIX, DerivedHeader, DerivedWhat, LATE_PREFIX, decode_derived, encode_derived,
};
use aiops_schemas::{Envelope, Kind};
use aiops_sql::runtime::compile::WindowKind;
use aiops_sql::runtime::{Emission, EmissionKind, PipelineStatus, RuntimeError, StreamingPipeline};
use aiops_sql::{AlertRule, DetectStage};
use arrow_select::filter::filter_record_batch;
use bytes::Bytes;
use parking_lot::RwLock;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the runner stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// Reading or appending to the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A pipeline failed on a batch.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The checkpoint store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An emission could not be encoded.
    #[error("encoding the output of pipeline {pipeline}: {detail}")]
    Encode {
        /// The pipeline.
        pipeline: String,
        /// What failed.
        detail: String,
    },
}

/// What one pipeline is doing, for `GET /api/pipelines`.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineInfo {
    /// Its name (file stem).
    pub name: String,
    /// The input stream.
    pub input: String,
    /// The output stream.
    pub output: String,
    /// `running`, or `failed: <reason>`.
    pub state: String,
    /// Next input sequence it has not consumed.
    pub position: u64,
    /// Log messages appended after its position.
    pub lag: u64,
    /// Input rows per second over the last few seconds.
    pub rows_per_second: f64,
    /// Watermark, counters and state size.
    #[serde(flatten)]
    pub status: PipelineStatus,
}

/// What `GET /api/pipelines` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Board {
    /// The running pipelines.
    pub pipelines: Vec<PipelineInfo>,
    /// Why the last change of the pipeline directory was refused (`file:line:col: reason`
    /// lines); empty when the directory on disk is what runs.
    pub refused: Vec<String>,
}

/// Shared view of the running pipelines.
pub type InfoBoard = Arc<RwLock<Board>>;

/// Where emissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Appended to the log (the engine, `rebuild`).
    Live,
    /// Returned to the caller only; nothing is written (forensic `replay --pipelines`).
    Isolated,
}

/// One emission with the log message that carries it.
#[derive(Debug, Clone)]
pub struct Output {
    /// The pipeline that emitted it.
    pub pipeline: String,
    /// Its output stream name.
    pub output: String,
    /// The emission.
    pub emission: Emission,
    /// The log message (subject, deterministic id, encoded payload).
    pub message: AppendMessage,
}

/// What a pipeline reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    /// An input kind (`aiops.<kind>.<partition>`).
    Kind(Kind),
    /// Another pipeline's output (`aiops.derived.<output>`).
    Derived(String),
}

struct Running {
    p: StreamingPipeline,
    /// The `for` stage of an alert rule (`INSERT INTO alerts`).
    alert: Option<AlertRule>,
    /// The stage of its `anomaly()` / `time_until()` columns.
    detect: Option<DetectStage>,
    input: Input,
    position: u64,
    failed: Option<String>,
    rate_since: Instant,
    rate_rows: u64,
    rows_per_second: f64,
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Derived and late messages produced.
    pub outputs: u64,
    /// Of those, already in the log (recognized by id and not appended again).
    pub already_in_log: u64,
    /// Input messages that could not be decoded (skipped, logged).
    pub undecodable: u64,
}

/// Runs pipelines over the log.
pub struct Runner {
    log: Arc<dyn EventLog>,
    pipelines: Vec<Running>,
    store: Option<Store>,
    mode: Mode,
    reader: Box<dyn LogReader>,
    dedup: OutputDedup,
    board: InfoBoard,
    /// The board shows other runners' pipelines too (one runner per pipeline unit): publish
    /// replaces only this runner's entries. Otherwise the board is this runner's alone.
    shared_board: bool,
    cadence: Cadence,
    log_head: u64,
    summary: RunSummary,
    range: Option<(i64, i64)>,
    wake: tokio::sync::watch::Receiver<u64>,
}

/// The deterministic message id of an emission.
fn message_id(pipeline: &str, e: &Emission, payload: &[u8], input_seq: u64) -> String {
    let h = aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, payload);
    match e.kind {
        EmissionKind::Output => format!(
            "{}{pipeline}.{}.{h:016x}",
            ids::PIPELINE_OUTPUT,
            e.window_start_ms
        ),
        // Late rows are tied to the input message that carried them: two input messages with
        // identical late rows are two sets of late events.
        EmissionKind::Late => format!("{}{pipeline}.{input_seq}.{h:016x}", ids::PIPELINE_LATE),
    }
}

fn encode(p: &StreamingPipeline, e: Emission, input_seq: u64) -> Result<Output, RunnerError> {
    let what = match e.kind {
        EmissionKind::Output => DerivedWhat::Events,
        EmissionKind::Late => DerivedWhat::Late,
    };
    let header = DerivedHeader {
        what,
        window_start_ms: e.window_start_ms,
        pipeline: p.name().to_string(),
    };
    let payload = encode_derived(&header, &e.batch).map_err(|err| RunnerError::Encode {
        pipeline: p.name().to_string(),
        detail: err.to_string(),
    })?;
    let (subject, range) = match e.kind {
        EmissionKind::Output => {
            let end = match p.window() {
                // A session is as long as its events make it; it ended before the watermark.
                WindowKind::Session { .. } => p
                    .status()
                    .watermark_ms
                    .unwrap_or(e.window_start_ms)
                    .max(e.window_start_ms),
                w => e
                    .window_start_ms
                    .saturating_add(w.size_ms())
                    .saturating_sub(1),
            };
            (
                format!("{DERIVED_PREFIX}{}", p.output()),
                (e.window_start_ms, end),
            )
        }
        EmissionKind::Late => {
            let t = e
                .batch
                .column_by_name("time")
                .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
                .map(|t| {
                    let v = t.values();
                    (
                        v.iter().copied().min().unwrap_or(e.window_start_ms),
                        v.iter().copied().max().unwrap_or(e.window_start_ms),
                    )
                })
                .unwrap_or((e.window_start_ms, e.window_start_ms));
            (format!("{LATE_PREFIX}{}", p.name()), t)
        }
    };
    let msg_id = message_id(p.name(), &e, &payload, input_seq);
    Ok(Output {
        pipeline: p.name().to_string(),
        // An alert rule's window results are a stream of their own beside the alert events
        // (`alerts`): their columns are the rule's SELECT, not the alert schema.
        output: if p.output() == "alerts" {
            format!("alerts.{}", p.name())
        } else {
            p.output().to_string()
        },
        message: AppendMessage {
            subject,
            msg_id,
            time_min_ms: range.0,
            time_max_ms: range.1,
            payload: Bytes::from(payload),
        },
        emission: e,
    })
}

/// Turns a pipeline's emissions into outputs; for an alert rule, also runs its `for` stage
/// (each window result, then the watermark when `step_watermark`) and adds the alert events it
/// produces.
fn emit(
    run: &mut Running,
    emissions: Vec<Emission>,
    input_seq: u64,
    step_watermark: bool,
    out: &mut Vec<Output>,
) -> Result<(), RunnerError> {
    let size = run.p.window().size_ms();
    for mut e in emissions {
        if let Some(stage) = run.detect.as_mut()
            && e.kind == EmissionKind::Output
        {
            let d = stage
                .on_emission(e.window_start_ms, &e.batch)
                .map_err(|err| RunnerError::Encode {
                    pipeline: run.p.name().to_string(),
                    detail: err.to_string(),
                })?;
            e.batch = d.batch;
            if let Some(events) = d.events {
                out.push(encode_anomalies(run.p.name(), e.window_start_ms, events)?);
            }
        }
        if let Some(rule) = run.alert.as_mut()
            && e.kind == EmissionKind::Output
        {
            let alerts = rule
                .on_emission(e.window_start_ms, size, &e.batch)
                .map_err(|err| alert_err(run.p.name(), err))?;
            let ws = e.window_start_ms;
            out.push(encode(&run.p, e, input_seq)?);
            if let Some(b) = alerts {
                out.push(encode_alerts(run.p.name(), ws, b)?);
            }
        } else {
            out.push(encode(&run.p, e, input_seq)?);
        }
    }
    if step_watermark
        && let (Some(rule), Some(wm)) = (run.alert.as_mut(), run.p.status().watermark_ms)
        && let Some(b) = rule
            .on_watermark(wm)
            .map_err(|err| alert_err(run.p.name(), err))?
    {
        out.push(encode_alerts(run.p.name(), wm, b)?);
    }
    Ok(())
}

fn alert_err(pipeline: &str, e: impl std::fmt::Display) -> RunnerError {
    RunnerError::Encode {
        pipeline: pipeline.to_string(),
        detail: format!("alert rule: {e}"),
    }
}

/// Alert events of a rule as a message of the alert stream (`aiops.alerts.0`), like alerts from
/// Alertmanager, so everything that consumes alerts sees them; the id derives from the content.
fn encode_alerts(pipeline: &str, at_ms: i64, batch: RecordBatch) -> Result<Output, RunnerError> {
    let range = batch
        .column_by_name("time")
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .and_then(|t| {
            Some((
                t.values().iter().copied().min()?,
                t.values().iter().copied().max()?,
            ))
        })
        .unwrap_or((at_ms, at_ms));
    let env = Envelope::new(Kind::Alerts, "pipeline", 0, range, &batch);
    let payload = aiops_schemas::encode(&env, &batch).map_err(|e| alert_err(pipeline, e))?;
    let h = aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, &payload);
    Ok(Output {
        pipeline: pipeline.to_string(),
        output: "alerts".to_string(),
        message: AppendMessage {
            subject: Kind::Alerts.subject(0),
            msg_id: format!("{}{pipeline}.{at_ms}.{h:016x}", ids::RULE_ALERTS),
            time_min_ms: range.0,
            time_max_ms: range.1,
            payload: Bytes::from(payload),
        },
        emission: Emission {
            kind: EmissionKind::Output,
            window_start_ms: at_ms,
            batch,
        },
    })
}

/// Anomaly events of a pipeline's `anomaly()` columns as a message of the events stream
/// (`aiops.events.0`), where the alerting engine and other pipelines read events; the id derives
/// from the content.
fn encode_anomalies(pipeline: &str, at_ms: i64, batch: RecordBatch) -> Result<Output, RunnerError> {
    let env = Envelope::new(Kind::Events, "pipeline", 0, (at_ms, at_ms), &batch);
    let payload = aiops_schemas::encode(&env, &batch).map_err(|e| RunnerError::Encode {
        pipeline: pipeline.to_string(),
        detail: e.to_string(),
    })?;
    let h = aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, &payload);
    Ok(Output {
        pipeline: pipeline.to_string(),
        output: "anomalies".to_string(),
        message: AppendMessage {
            subject: Kind::Events.subject(0),
            msg_id: format!("{ANOMALY_ID_PREFIX}{pipeline}.{at_ms}.{h:016x}"),
            time_min_ms: at_ms,
            time_max_ms: at_ms,
            payload: Bytes::from(payload),
        },
        emission: Emission {
            kind: EmissionKind::Output,
            window_start_ms: at_ms,
            batch,
        },
    })
}

/// Message-id prefix of anomaly events written by pipelines.
const ANOMALY_ID_PREFIX: &str = ids::PIPELINE_ANOMALIES;

/// Whether a subject carries pipeline outputs.
fn is_output_subject(s: &str) -> bool {
    s.starts_with(DERIVED_PREFIX) || s.starts_with(LATE_PREFIX)
}

/// Whether a message is one a pipeline wrote (derived events, late rows, alerts of a rule,
/// anomaly events).
pub fn is_pipeline_output(subject: &str, msg_id: &str) -> bool {
    is_output_subject(subject)
        || (subject.starts_with(ALERTS_PREFIX) && msg_id.starts_with(ids::RULE_ALERTS))
        || (subject.starts_with(EVENTS_PREFIX) && msg_id.starts_with(ANOMALY_ID_PREFIX))
}

impl Runner {
    /// Prepares `pipelines` to run over `log`. With a `store`, each pipeline whose checkpoint
    /// matches its SQL resumes from it; the others start at `start` (the log's first sequence
    /// for the engine; where the time range starts for a forensic replay). In [`Mode::Live`]
    /// the ids of outputs already in the log past the oldest resume point are collected so they
    /// are not appended twice.
    ///
    /// # Errors
    /// [`RunnerError`] when the log or the store cannot be read or a checkpoint not restored.
    pub async fn new(
        log: Arc<dyn EventLog>,
        pipelines: Vec<StreamingPipeline>,
        store: Option<Store>,
        mode: Mode,
        start: u64,
        board: InfoBoard,
        checkpoint_every: Duration,
    ) -> Result<Runner, RunnerError> {
        let wake = log.subscribe();
        let stats = log.stats().await?;
        let mut running = Vec::with_capacity(pipelines.len());
        let mut scan_from = stats.next_seq;
        for mut p in pipelines {
            let input = match Kind::ALL.into_iter().find(|k| k.as_str() == p.input()) {
                Some(k) => Input::Kind(k),
                None => Input::Derived(p.input().to_string()),
            };
            let mut position = start;
            let mut head = start;
            let mut restored = false;
            if let Some(store) = &store
                && let Some(ck) = store.load(p.name())?
            {
                if ck.fingerprint == p.fingerprint() {
                    p.restore(&ck.state)?;
                    position = ck.position;
                    head = ck.log_head;
                    restored = true;
                    tracing::info!(
                        pipeline = p.name(),
                        position,
                        "pipeline resumes from its checkpoint"
                    );
                } else {
                    tracing::info!(
                        pipeline = p.name(),
                        "pipeline SQL changed: state is rebuilt from the log"
                    );
                }
            }
            scan_from = scan_from.min(head);
            let mut alert = (p.output() == "alerts")
                .then(|| AlertRule::new(p.name(), p.settings().clone(), &p.output_schema()));
            if let (Some(a), Some(store)) = (alert.as_mut(), &store)
                && restored
                && let Some(bytes) = store.load_alert(p.name())?
            {
                a.restore(&bytes).map_err(|e| RunnerError::Encode {
                    pipeline: p.name().to_string(),
                    detail: e.to_string(),
                })?;
            }
            let mut detect = DetectStage::new(p.name(), p.detect_specs(), &p.output_schema());
            if let (Some(d), Some(store)) = (detect.as_mut(), &store)
                && restored
                && let Some(bytes) = store.load_detect(p.name())?
            {
                d.restore(&bytes).map_err(|e| RunnerError::Encode {
                    pipeline: p.name().to_string(),
                    detail: e.to_string(),
                })?;
            }
            running.push(Running {
                p,
                alert,
                detect,
                input,
                position,
                failed: None,
                rate_since: Instant::now(),
                rate_rows: 0,
                rows_per_second: 0.0,
            });
        }
        let dedup = if mode == Mode::Live {
            OutputDedup::collect(&*log, scan_from, is_pipeline_output).await?
        } else {
            OutputDedup::default()
        };
        if dedup.pending() > 0 {
            tracing::info!(
                outputs = dedup.pending(),
                from = scan_from,
                "outputs already in the log past the checkpoints: they will not be appended again"
            );
        }
        let from = running.iter().map(|r| r.position).min().unwrap_or(start);
        let reader = log.reader(from).await?;
        let runner = Runner {
            log,
            pipelines: running,
            store,
            mode,
            reader,
            dedup,
            board,
            shared_board: false,
            cadence: Cadence::new(checkpoint_every),
            log_head: stats.next_seq,
            summary: RunSummary::default(),
            range: None,
            wake,
        };
        runner.publish(stats.next_seq);
        Ok(runner)
    }

    /// Feeds only events with time in `[from, to)` (a forensic replay's range).
    pub fn set_time_range(&mut self, from_ms: Option<i64>, to_ms: Option<i64>) {
        self.range = (from_ms.is_some() || to_ms.is_some())
            .then(|| (from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX)));
    }

    /// Publishes into a board other runners publish to as well (cluster mode, one runner per
    /// pipeline unit): only this runner's entries are replaced.
    pub fn share_board(&mut self) {
        self.shared_board = true;
    }

    /// Counts so far.
    pub fn summary(&self) -> RunSummary {
        self.summary
    }

    /// The next sequence the reader returns.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    /// Feeds one input record to the pipelines that read it.
    async fn handle(&mut self, r: &Record, out: &mut Vec<Output>) -> Result<(), RunnerError> {
        let input = match Kind::from_subject(&r.subject) {
            Some(k) => Input::Kind(k),
            // In isolation the derived events come from the pipelines themselves (`cascade`),
            // not from what the live engine wrote to the log.
            None => match r.subject.strip_prefix(DERIVED_PREFIX) {
                Some(name) if self.mode == Mode::Live => Input::Derived(name.to_string()),
                _ => return Ok(()),
            },
        };
        if !self
            .pipelines
            .iter()
            .any(|p| p.input == input && p.position <= r.seq && p.failed.is_none())
        {
            return Ok(());
        }
        if let Some((from, to)) = self.range
            && (r.time_max_ms < from || r.time_min_ms >= to)
        {
            return Ok(());
        }
        let decoded = match &input {
            Input::Kind(_) => aiops_schemas::decode(&r.payload)
                .map(|(_, b)| b)
                .map_err(|e| e.to_string()),
            Input::Derived(_) => decode_derived(&r.payload)
                .map(|(_, b)| b)
                .map_err(|e| e.to_string()),
        };
        let mut batch = match decoded {
            Ok(b) => b,
            Err(e) => {
                self.summary.undecodable += 1;
                tracing::warn!(seq = r.seq, subject = %r.subject, error = %e, "pipelines skip an undecodable input message");
                return Ok(());
            }
        };
        if let Some((from, to)) = self.range
            && let Some(t) = batch
                .column_by_name("time")
                .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        {
            let keep: BooleanArray = t
                .values()
                .iter()
                .map(|v| Some(*v >= from && *v < to))
                .collect();
            if keep.true_count() < batch.num_rows() {
                batch = filter_record_batch(&batch, &keep).map_err(|e| RunnerError::Encode {
                    pipeline: "replay".into(),
                    detail: e.to_string(),
                })?;
            }
        }
        let time_max = match self.range {
            Some((_, to)) => r.time_max_ms.min(to.saturating_sub(1)),
            None => r.time_max_ms,
        };
        let partition = r.subject.strip_prefix("aiops.").unwrap_or(&r.subject);
        for run in self.pipelines.iter_mut() {
            if run.input != input || run.position > r.seq || run.failed.is_some() {
                continue;
            }
            run.rate_rows += batch.num_rows() as u64;
            let emissions = run.p.process(partition, time_max, batch.clone()).await?;
            emit(run, emissions, r.seq, true, out)?;
        }
        Ok(())
    }

    /// In isolation nothing reaches the log, so pipelines reading other pipelines' outputs get
    /// them here, in emission order (the order they would read them from the log).
    async fn cascade(&mut self, outs: &mut Vec<Output>, from: usize) -> Result<(), RunnerError> {
        let mut i = from;
        while i < outs.len() {
            if outs[i].emission.kind == EmissionKind::Output {
                let input = Input::Derived(outs[i].output.clone());
                let batch = outs[i].emission.batch.clone();
                let time_max = outs[i].message.time_max_ms;
                let partition = format!("derived.{}", outs[i].output);
                let mut produced = Vec::new();
                for run in self.pipelines.iter_mut() {
                    if run.input != input || run.failed.is_some() {
                        continue;
                    }
                    run.rate_rows += batch.num_rows() as u64;
                    let emissions = run.p.process(&partition, time_max, batch.clone()).await?;
                    emit(run, emissions, 0, true, &mut produced)?;
                }
                outs.extend(produced);
            }
            i += 1;
        }
        Ok(())
    }

    /// Appends outputs not already in the log (live mode).
    async fn append(&mut self, outs: &[Output]) -> Result<(), RunnerError> {
        if self.mode != Mode::Live {
            return Ok(());
        }
        let mut msgs = Vec::with_capacity(outs.len());
        for o in outs {
            if !self.dedup.is_new(&o.message) {
                self.summary.already_in_log += 1;
            } else {
                msgs.push(o.message.clone());
            }
        }
        if !msgs.is_empty() {
            let appended = self.log.append(msgs).await?;
            if let Some(last) = appended.last() {
                self.log_head = self.log_head.max(last.seq + 1);
            }
        }
        Ok(())
    }

    /// Reads and processes up to `max` log messages (not beyond `end`), appends the outputs and
    /// checkpoints when due. Returns the outputs and how many messages were read (0 at the end
    /// of the log).
    ///
    /// # Errors
    /// [`RunnerError`]; the caller stops and restarts from the last checkpoint.
    pub async fn step(
        &mut self,
        max: usize,
        end: Option<u64>,
    ) -> Result<(Vec<Output>, usize), RunnerError> {
        let mut records = self.reader.next_batch(max).await?;
        if let Some(end) = end {
            records.retain(|r| r.seq < end);
        }
        let mut outs = Vec::new();
        for r in &records {
            self.handle(r, &mut outs).await?;
        }
        if self.mode == Mode::Isolated {
            self.cascade(&mut outs, 0).await?;
        }
        self.summary.messages_read += records.len() as u64;
        self.summary.outputs += outs.len() as u64;
        self.append(&outs).await?;
        if let Some(last) = records.last() {
            for run in self.pipelines.iter_mut() {
                run.position = run.position.max(last.seq + 1);
            }
        }
        if !records.is_empty() {
            self.cadence.changed();
        }
        if self.store.is_some() && self.cadence.due() {
            self.checkpoint().await?;
        }
        Ok((outs, records.len()))
    }

    /// Closes every open window (end of a bounded replay) and returns (and in live mode appends)
    /// what that emits.
    ///
    /// # Errors
    /// As [`Runner::step`].
    pub async fn finish(&mut self) -> Result<Vec<Output>, RunnerError> {
        let mut outs = Vec::new();
        let last = self.reader.position().saturating_sub(1);
        // Upstream pipelines first: what closing them emits still reaches the ones reading them.
        for k in 0..self.pipelines.len() {
            let start = outs.len();
            let run = &mut self.pipelines[k];
            let emissions = run.p.finish().await?;
            // No watermark step after closing everything: a bounded replay leaves alerts that
            // still hold firing rather than resolving them for lack of later windows.
            emit(run, emissions, last, false, &mut outs)?;
            if self.mode == Mode::Isolated {
                self.cascade(&mut outs, start).await?;
            }
        }
        self.summary.outputs += outs.len() as u64;
        self.append(&outs).await?;
        Ok(outs)
    }

    /// Writes every pipeline's position and state to the store, atomically.
    ///
    /// # Errors
    /// [`RunnerError`] if a state cannot be serialized or the store fails.
    pub async fn checkpoint(&mut self) -> Result<(), RunnerError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let mut cks = Vec::with_capacity(self.pipelines.len());
        for run in self.pipelines.iter_mut() {
            cks.push((
                run.p.name().to_string(),
                PipelineCheckpoint {
                    fingerprint: run.p.fingerprint(),
                    position: run.position,
                    log_head: self.log_head,
                    state: run.p.checkpoint()?,
                    alert_state: run.alert.as_ref().map(AlertRule::checkpoint),
                    detect_state: match &run.detect {
                        Some(d) => Some(d.checkpoint().map_err(|e| RunnerError::Encode {
                            pipeline: run.p.name().to_string(),
                            detail: e.to_string(),
                        })?),
                        None => None,
                    },
                },
            ));
        }
        store.save(&cks).await?;
        self.cadence.saved();
        Ok(())
    }

    /// Refreshes the shared view of the pipelines; `next_seq` is the log head for the lag.
    pub fn publish(&self, next_seq: u64) {
        let infos: Vec<PipelineInfo> = self
            .pipelines
            .iter()
            .map(|r| PipelineInfo {
                name: r.p.name().to_string(),
                input: r.p.input().to_string(),
                output: r.p.output().to_string(),
                state: r
                    .failed
                    .as_ref()
                    .map_or_else(|| "running".to_string(), |f| format!("failed: {f}")),
                position: r.position,
                lag: next_seq.saturating_sub(r.position),
                rows_per_second: r.rows_per_second,
                status: r.p.status(),
            })
            .collect();
        let mut b = self.board.write();
        if self.shared_board {
            b.pipelines
                .retain(|p| !infos.iter().any(|i| i.name == p.name));
            b.pipelines.extend(infos);
            b.pipelines.sort_by(|x, y| x.name.cmp(&y.name));
        } else {
            b.pipelines = infos;
        }
    }

    fn update_rates(&mut self) {
        for r in self.pipelines.iter_mut() {
            let dt = r.rate_since.elapsed().as_secs_f64();
            if dt >= 1.0 {
                r.rows_per_second = r.rate_rows as f64 / dt;
                r.rate_rows = 0;
                r.rate_since = Instant::now();
            }
        }
    }

    /// Follows the log until `shutdown` flips, then checkpoints. When idle it waits for the
    /// log's append signal (or the next checkpoint or board refresh), not a fixed poll.
    ///
    /// # Errors
    /// [`RunnerError`] from a step; the state of the failure is published first.
    pub async fn follow(
        mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), RunnerError> {
        let mut last_publish = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.wake.borrow_and_update();
            let n = match self.step(BATCH, None).await {
                Ok((_, n)) => n,
                Err(e) => {
                    for r in self.pipelines.iter_mut() {
                        r.failed = Some(e.to_string());
                    }
                    self.publish(self.log_head);
                    return Err(e);
                }
            };
            if last_publish.elapsed() >= Duration::from_millis(500) {
                self.update_rates();
                let head = self
                    .log
                    .stats()
                    .await
                    .map(|s| s.next_seq)
                    .unwrap_or(self.log_head);
                self.publish(head);
                last_publish = Instant::now();
            }
            if n == 0 {
                let mut wait = FALLBACK_POLL;
                if self.store.is_some()
                    && let Some(c) = self.cadence.time_left()
                {
                    wait = wait.min(c);
                }
                idle_wait(&mut self.wake, &mut shutdown, wait).await;
            }
        }
        self.checkpoint().await
    }
}
