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
use crate::wire::{ALERTS_PREFIX, EVENTS_PREFIX, PARTIAL_PREFIX, ids};
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
    /// Input rows per second over the last few seconds (a merge unit: groups merged).
    pub rows_per_second: f64,
    /// A partitioned pipeline's unit: `part I of N` or `merge of N`; absent for a whole one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
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
    /// The partial records of a partitioned pipeline's partition units
    /// (`aiops.partial.<pipeline>`): what its merge unit reads.
    Partial(String),
}

/// Which share of a pipeline's work a runner does (cluster mode, `-- @partitions: N`; see
/// [`aiops_sql::runtime::partial`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// The whole pipeline (single node, `rebuild`, and pipelines without `@partitions`).
    Whole,
    /// Partition unit `index` of `of`: aggregates the log partitions `p % of == index`, writes
    /// partial records and its late rows.
    Part {
        /// This unit's index, `0..of`.
        index: u32,
        /// The number of partition units.
        of: u32,
    },
    /// The merge unit over `of` partition units: writes the pipeline's outputs.
    Merge {
        /// The number of partition units.
        of: u32,
    },
}

/// A merge unit's partial records not merged yet: each input message's records wait until
/// every partition unit has written its record for that message or a later one (a unit's
/// records come in input order), so windows are merged whole and in input order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct MergeQueue {
    /// Per partition unit, the input sequence of its last record read.
    progress: Vec<Option<u64>>,
    /// Records by input sequence: (unit index, record bytes).
    pending: std::collections::BTreeMap<u64, Vec<(u32, Bytes)>>,
}

impl MergeQueue {
    fn new(of: u32) -> MergeQueue {
        MergeQueue {
            progress: vec![None; of as usize],
            pending: std::collections::BTreeMap::new(),
        }
    }

    /// Takes record `payload` of unit `index` for input message `seq`; false for one already
    /// taken (a record appended twice).
    fn push(&mut self, index: u32, seq: u64, payload: Bytes) -> bool {
        let Some(p) = self.progress.get_mut(index as usize) else {
            return false;
        };
        if p.is_some_and(|done| seq <= done) {
            return false;
        }
        *p = Some(seq);
        self.pending.entry(seq).or_default().push((index, payload));
        true
    }

    /// The records of the next input message every unit has passed, if any.
    fn pop_ready(&mut self) -> Option<(u64, Vec<(u32, Bytes)>)> {
        let (&seq, _) = self.pending.first_key_value()?;
        let all_past = self.progress.iter().all(|p| p.is_some_and(|p| p >= seq));
        if !all_past {
            return None;
        }
        let mut records = self.pending.remove(&seq)?;
        records.sort_by_key(|(i, _)| *i);
        Some((seq, records))
    }

    /// Bytes for a checkpoint: `of` progress entries (u64, `u64::MAX` for none), then per
    /// record: input seq u64, unit u32, length u64, bytes (all LE).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.progress.len() as u32).to_le_bytes());
        for p in &self.progress {
            out.extend_from_slice(&p.unwrap_or(u64::MAX).to_le_bytes());
        }
        for (seq, records) in &self.pending {
            for (i, b) in records {
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&(b.len() as u64).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
        out
    }

    /// Reads [`MergeQueue::encode`]'s bytes; `None` when they are damaged.
    fn decode(bytes: &[u8]) -> Option<MergeQueue> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, rest) = (b.get(..n)?, b.get(n..)?);
            *b = rest;
            Some(head)
        }
        let mut b = bytes;
        let n = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?);
        let mut q = MergeQueue::new(n);
        for p in q.progress.iter_mut() {
            let v = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
            *p = (v != u64::MAX).then_some(v);
        }
        while !b.is_empty() {
            let seq = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
            let i = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?);
            let len =
                usize::try_from(u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?)).ok()?;
            let body = Bytes::copy_from_slice(take(&mut b, len)?);
            q.pending.entry(seq).or_default().push((i, body));
        }
        Some(q)
    }
}

struct Running {
    p: StreamingPipeline,
    /// The `for` stage of an alert rule (`INSERT INTO alerts`).
    alert: Option<AlertRule>,
    /// The stage of its `anomaly()` / `time_until()` columns.
    detect: Option<DetectStage>,
    input: Input,
    share: Share,
    /// The merge unit's queue of partial records.
    merge: Option<MergeQueue>,
    /// A partition unit: the last message it read without writing a partial record or mark
    /// for it since; when it catches up with the log, it writes a progress mark there.
    unmarked: Option<u64>,
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
    /// The log head when the runner opened, and where its dedup scan started: until every
    /// pipeline has read past `start_head`, a checkpoint names `scan_from` (outputs of a
    /// previous run may lie anywhere after it), then `log_head`.
    start_head: u64,
    scan_from: u64,
    caught_up: bool,
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

/// A partition unit's partial record for input message `input_seq` as a log message.
fn partial_output(p: &StreamingPipeline, index: u32, input_seq: u64, record: Vec<u8>) -> Output {
    let wm = p.status().watermark_ms.unwrap_or_default();
    Output {
        pipeline: p.name().to_string(),
        output: format!("partial.{}", p.name()),
        message: AppendMessage {
            subject: format!("{PARTIAL_PREFIX}{}", p.name()),
            msg_id: format!("{}{}.{index}.{input_seq}", ids::PIPELINE_PARTIAL, p.name()),
            time_min_ms: wm,
            time_max_ms: wm,
            payload: Bytes::from(record),
        },
        emission: Emission {
            kind: EmissionKind::Output,
            window_start_ms: wm,
            batch: RecordBatch::new_empty(p.output_schema()),
        },
    }
}

/// What partition unit `index` produced for input message `seq`: its late rows, and its
/// partial record (or the message stays unmarked until the unit catches up).
fn part_step(
    run: &mut Running,
    index: u32,
    seq: u64,
    step: aiops_sql::runtime::partial::PartStep,
    out: &mut Vec<Output>,
) -> Result<(), RunnerError> {
    emit(run, step.late, seq, false, out)?;
    run.unmarked = Some(seq);
    if let Some(record) = step.record {
        run.unmarked = None;
        out.push(partial_output(&run.p, index, seq, record));
    }
    Ok(())
}

/// A partition unit's progress mark for input message `seq`.
fn out_mark(
    run: &mut Running,
    index: u32,
    seq: u64,
    outs: &mut Vec<Output>,
) -> Result<(), RunnerError> {
    let mark = run.p.part_progress()?;
    run.unmarked = None;
    outs.push(partial_output(&run.p, index, seq, mark));
    Ok(())
}

/// Message-id prefix of anomaly events written by pipelines.
const ANOMALY_ID_PREFIX: &str = ids::PIPELINE_ANOMALIES;

/// Whether a message is one a pipeline wrote (derived events, late rows, alerts of a rule,
/// anomaly events, partition units' partial records). By subject and id prefix: the template
/// miner writes to a derived subject too (`aiops.derived.log_templates_1m`, ids `t.w.…`).
pub fn is_pipeline_output(subject: &str, msg_id: &str) -> bool {
    (subject.starts_with(DERIVED_PREFIX) && msg_id.starts_with(ids::PIPELINE_OUTPUT))
        || (subject.starts_with(LATE_PREFIX) && msg_id.starts_with(ids::PIPELINE_LATE))
        || (subject.starts_with(PARTIAL_PREFIX) && msg_id.starts_with(ids::PIPELINE_PARTIAL))
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
        Self::new_share(
            log,
            pipelines,
            store,
            mode,
            start,
            board,
            checkpoint_every,
            Share::Whole,
        )
        .await
    }

    /// As [`Runner::new`], doing `share` of each pipeline's work (cluster mode: a partition
    /// unit or the merge unit of pipelines with `@partitions`).
    ///
    /// # Errors
    /// As [`Runner::new`].
    #[allow(clippy::too_many_arguments)] // Runner::new's arguments and the share
    pub async fn new_share(
        log: Arc<dyn EventLog>,
        pipelines: Vec<StreamingPipeline>,
        store: Option<Store>,
        mode: Mode,
        start: u64,
        board: InfoBoard,
        checkpoint_every: Duration,
        share: Share,
    ) -> Result<Runner, RunnerError> {
        let wake = log.subscribe();
        let stats = log.stats().await?;
        let mut running = Vec::with_capacity(pipelines.len());
        let mut scan_from = stats.next_seq;
        for mut p in pipelines {
            let input = match (
                share,
                Kind::ALL.into_iter().find(|k| k.as_str() == p.input()),
            ) {
                (Share::Merge { .. }, _) => Input::Partial(p.name().to_string()),
                (_, Some(k)) => Input::Kind(k),
                (_, None) => Input::Derived(p.input().to_string()),
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
            let merge = match share {
                Share::Merge { of } => Some(match (&store, restored) {
                    (Some(store), true) => match store.load_merge(p.name())? {
                        Some(bytes) => {
                            MergeQueue::decode(&bytes).ok_or_else(|| RunnerError::Encode {
                                pipeline: p.name().to_string(),
                                detail: "the checkpointed merge queue is damaged".into(),
                            })?
                        }
                        None => MergeQueue::new(of),
                    },
                    _ => MergeQueue::new(of),
                }),
                _ => None,
            };
            running.push(Running {
                p,
                alert,
                detect,
                input,
                share,
                merge,
                // A restored partition unit does not know whether it marked what it read before
                // its checkpoint: it marks it again (a mark is an id the merge unit ignores
                // when it has seen that far).
                unmarked: (matches!(share, Share::Part { .. }) && position > start)
                    .then(|| position.saturating_sub(1)),
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
            start_head: stats.next_seq,
            scan_from,
            caught_up: false,
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
        if let Some(name) = r.subject.strip_prefix(PARTIAL_PREFIX) {
            return self.handle_partial(name, r, out).await;
        }
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
        let partition = r.subject.strip_prefix("aiops.").unwrap_or(&r.subject);
        let partition_no: Option<u32> = r.subject.rsplit('.').next().and_then(|p| p.parse().ok());
        let mine = |share: Share| match share {
            Share::Part { index, of } => partition_no.is_some_and(|p| p % of.max(1) == index),
            _ => true,
        };
        // Partition units read another unit's message from its header only (row count, time
        // range): no pipeline here needs its rows.
        if matches!(input, Input::Kind(_))
            && self.range.is_none()
            && !self.pipelines.iter().any(|p| {
                p.input == input && p.position <= r.seq && p.failed.is_none() && mine(p.share)
            })
        {
            return self.observe_parts(&input, partition, r, out).await;
        }
        let decoded = match &input {
            Input::Kind(_) => aiops_schemas::decode(&r.payload)
                .map(|(_, b)| b)
                .map_err(|e| e.to_string()),
            Input::Derived(_) => decode_derived(&r.payload)
                .map(|(_, b)| b)
                .map_err(|e| e.to_string()),
            // Partial records go to `handle_partial`.
            Input::Partial(_) => return Ok(()),
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
        for run in self.pipelines.iter_mut() {
            if run.input != input || run.position > r.seq || run.failed.is_some() {
                continue;
            }
            match run.share {
                Share::Part { index, of } => {
                    let own = partition_no.is_some_and(|p| p % of.max(1) == index);
                    if own {
                        run.rate_rows += batch.num_rows() as u64;
                    }
                    let step = run
                        .p
                        .process_part(
                            partition,
                            time_max,
                            own.then(|| batch.clone()),
                            batch.num_rows(),
                        )
                        .await?;
                    part_step(run, index, r.seq, step, out)?;
                }
                _ => {
                    run.rate_rows += batch.num_rows() as u64;
                    let emissions = run.p.process(partition, time_max, batch.clone()).await?;
                    emit(run, emissions, r.seq, true, out)?;
                }
            }
        }
        Ok(())
    }

    /// Partition units step over another unit's input message from its header alone.
    async fn observe_parts(
        &mut self,
        input: &Input,
        partition: &str,
        r: &Record,
        out: &mut Vec<Output>,
    ) -> Result<(), RunnerError> {
        let rows = match aiops_schemas::decode_envelope(&r.payload) {
            Ok((env, _)) => env.count as usize,
            Err(e) => {
                self.summary.undecodable += 1;
                tracing::warn!(seq = r.seq, subject = %r.subject, error = %e, "pipelines skip an input message whose header does not decode");
                return Ok(());
            }
        };
        for run in self.pipelines.iter_mut() {
            let Share::Part { index, .. } = run.share else {
                continue;
            };
            if run.input != *input || run.position > r.seq || run.failed.is_some() {
                continue;
            }
            let step = run
                .p
                .process_part(partition, r.time_max_ms, None, rows)
                .await?;
            part_step(run, index, r.seq, step, out)?;
        }
        Ok(())
    }

    /// A merge unit reads one partial record of pipeline `name`, and merges every input
    /// message whose records are all in.
    async fn handle_partial(
        &mut self,
        name: &str,
        r: &Record,
        out: &mut Vec<Output>,
    ) -> Result<(), RunnerError> {
        // `p.<pipeline>.<unit index>.<input seq>`; pipeline names may hold dots.
        let parsed = r
            .msg_id
            .strip_prefix(ids::PIPELINE_PARTIAL)
            .and_then(|rest| {
                let mut it = rest.rsplitn(3, '.');
                let seq = it.next()?.parse::<u64>().ok()?;
                let index = it.next()?.parse::<u32>().ok()?;
                (it.next()? == name).then_some((index, seq))
            });
        for run in self.pipelines.iter_mut() {
            if run.input != Input::Partial(name.to_string())
                || run.position > r.seq
                || run.failed.is_some()
            {
                continue;
            }
            let Some((index, input_seq)) = parsed else {
                self.summary.undecodable += 1;
                tracing::warn!(seq = r.seq, msg_id = %r.msg_id, "merge unit skips a partial record with a malformed id");
                continue;
            };
            let Some(queue) = run.merge.as_mut() else {
                continue;
            };
            if !queue.push(index, input_seq, r.payload.clone()) {
                continue;
            }
            while let Some(queue) = run.merge.as_mut()
                && let Some((input_seq, records)) = queue.pop_ready()
            {
                let mut decoded = Vec::with_capacity(records.len());
                for (_, bytes) in &records {
                    decoded.push(run.p.decode_part(bytes)?);
                }
                run.rate_rows += decoded.iter().map(|d| d.groups() as u64).sum::<u64>();
                let emissions = run.p.merge_parts(&decoded).await?;
                emit(run, emissions, input_seq, false, out)?;
            }
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
        if records.len() < max {
            // Caught up with the log: partition units say how far they read.
            for run in self.pipelines.iter_mut() {
                if let (Share::Part { index, .. }, Some(at)) = (run.share, run.unmarked) {
                    out_mark(run, index, at, &mut outs)?;
                }
            }
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
        if !self.caught_up
            && (records.is_empty() || self.pipelines.iter().all(|p| p.position >= self.start_head))
        {
            self.caught_up = true;
            // Every output appended before this runner opened came from an input before
            // `start_head`, read again by now: nothing left to recognize.
            self.dedup = OutputDedup::default();
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
                    log_head: if self.caught_up {
                        self.log_head
                    } else {
                        self.scan_from.min(self.log_head)
                    },
                    state: run.p.checkpoint()?,
                    alert_state: run.alert.as_ref().map(AlertRule::checkpoint),
                    merge_state: run.merge.as_ref().map(MergeQueue::encode),
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
                share: match r.share {
                    Share::Whole => None,
                    Share::Part { index, of } => Some(format!("part {index} of {of}")),
                    Share::Merge { of } => Some(format!("merge of {of}")),
                },
                status: r.p.status(),
            })
            .collect();
        let mut b = self.board.write();
        if self.shared_board {
            b.pipelines
                .retain(|p| !infos.iter().any(|i| i.name == p.name && i.share == p.share));
            b.pipelines.extend(infos);
            b.pipelines
                .sort_by(|x, y| (&x.name, &x.share).cmp(&(&y.name, &y.share)));
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
