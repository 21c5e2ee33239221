//! Runs the workflow engine over the log: alerting decisions, events, effect results, workflow
//! commands and clock ticks in log order in; engine events (intents first of all) appended to
//! `aiops.effects`.
//!
//! Recovery follows the alerting runner (DESIGN.md invariants 1–3): the checkpoint holds the input
//! position, the deployed files and the whole state, written after the events of those inputs are
//! in the log; after a crash the runner resumes from it, re-derives the same events with the same
//! message ids and skips those already in the log. The executor only starts once the runner has
//! read the whole log as it was at start, so a result already logged is never missed and its
//! intent never run again.

use super::catalog::ProviderSet;
use super::codec::{
    EFFECTS_SUBJECT, EffectsLine, WorkflowCommand, events_message, parse_control, parse_effects,
};
use crate::alerting::codec::{
    CLOCK_SUBJECT, CONTROL_SUBJECT, DECISIONS_SUBJECT, parse_decisions, tick_message,
};
use crate::checkpoint::{Checkpoint, Store, StoreError};
use aiops_log::{EventLog, LogError, LogReader, Record};
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use aiops_workflow::{EngineConfig, Limits, Renderer, WorkflowEngine, WorkflowEvent};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why the runner stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowRunnerError {
    /// Reading or appending to the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The checkpoint store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state could not be serialized or restored.
    #[error("{0}")]
    State(String),
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkflowRunSummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Engine events made.
    pub events: u64,
    /// Event messages already in the log (recognized by id, not appended again).
    pub already_in_log: u64,
    /// Commands refused.
    pub refused_commands: u64,
    /// Deployed sets that did not compile (kept the previous set).
    pub refused_deployments: u64,
    /// Clock ticks appended.
    pub ticks: u64,
}

/// The deployed files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    /// Workflow files.
    pub workflows: BTreeMap<String, String>,
    /// Strategy files.
    pub strategies: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    deployed: Deployed,
    engine: Value,
}

/// What the API and the executor share with the runner.
pub struct WorkflowsHandle {
    /// The engine (the runner writes, the API reads).
    pub engine: RwLock<WorkflowEngine>,
    /// The deployed files.
    pub deployed: RwLock<Deployed>,
    /// The providers.
    pub providers: Arc<ProviderSet>,
    /// Rate limits.
    pub limits: Limits,
    /// How far the engine has read, and what became of recent commands.
    pub progress: crate::progress::CommandProgress,
    /// True once the runner has read the log as it was at start.
    pub caught_up: AtomicBool,
    /// Counts so far.
    pub summary: Mutex<WorkflowRunSummary>,
    /// Held by the runner from feeding the engine until the events are appended, and by the
    /// executor while it takes pending intents: no effect runs before its intent is logged.
    pub step_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for WorkflowsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowsHandle")
            .field("position", &self.progress.position())
            .finish()
    }
}

fn empty_config(providers: &Arc<ProviderSet>, limits: &Limits) -> EngineConfig {
    EngineConfig {
        workflows: BTreeMap::new(),
        strategies: Vec::new(),
        limits: limits.clone(),
        catalog: providers.clone(),
    }
}

impl WorkflowsHandle {
    /// A handle with no workflows deployed yet (they come from the log).
    pub fn new(providers: Arc<ProviderSet>, limits: Limits) -> Arc<WorkflowsHandle> {
        let engine = WorkflowEngine::new(empty_config(&providers, &limits), Renderer::default());
        Arc::new(WorkflowsHandle {
            engine: RwLock::new(engine),
            deployed: RwLock::new(Deployed::default()),
            providers,
            limits,
            progress: crate::progress::CommandProgress::default(),
            caught_up: AtomicBool::new(false),
            summary: Mutex::new(WorkflowRunSummary::default()),
            step_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Waits until the engine has consumed sequence `seq` and returns what became of it if it was
    /// a command: `Ok(())` applied, `Err(reason)` refused.
    ///
    /// # Errors
    /// The refusal, or a timeout message.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> Result<(), String> {
        self.progress
            .wait_for(seq, timeout, "workflow engine")
            .await
    }

    /// Compiles and applies a deployed set; the running set stays when it does not compile.
    ///
    /// # Errors
    /// The compile errors, one per line.
    pub fn deploy(&self, d: Deployed) -> Result<(), String> {
        let cfg = super::compile_set(
            &d.workflows,
            &d.strategies,
            self.providers.clone(),
            self.limits.clone(),
        )
        .map_err(|errs| {
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        self.engine.write().set_config(cfg);
        *self.deployed.write() = d;
        Ok(())
    }
}

/// Something the executor is told after each step.
pub trait IntentSink: Send + Sync {
    /// The engine's pending intents may have changed.
    fn poke(&self);
    /// The result of `key` has been read by the engine.
    fn settled(&self, key: &str);
}

/// Runs the engine over the log.
pub struct WorkflowRunner {
    log: Arc<dyn EventLog>,
    handle: Arc<WorkflowsHandle>,
    reader: Box<dyn LogReader>,
    store: Option<Store>,
    append: bool,
    seen: HashSet<String>,
    config_hash: u64,
    log_head: u64,
    start_head: u64,
    checkpoint_every: Duration,
    last_checkpoint: Instant,
    unsaved: bool,
    summary: WorkflowRunSummary,
    sink: Option<Arc<dyn IntentSink>>,
    /// Every intent emitted (dry runs: the "would have run" report).
    pub collected: Option<Vec<WorkflowEvent>>,
    results_seen: BTreeMap<String, aiops_workflow::EffectResult>,
}

/// The hash that ties a checkpoint to the providers it was made with.
fn providers_hash(p: &ProviderSet) -> u64 {
    use aiops_workflow::Catalog;
    let mut s = String::new();
    for n in p.provider_names() {
        s.push_str(&n);
        s.push('=');
        s.push_str(&p.provider_kind(&n).unwrap_or_default());
        s.push(';');
    }
    aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, s.as_bytes())
}

/// Row objects of an events batch (`type`, `message`, `time_ms`, `labels`, `attributes`).
fn event_rows(b: &RecordBatch) -> Vec<(String, i64, Value)> {
    let (Some(t), Some(msg), Some(labels), Some(attrs)) = (
        b.column_by_name("type")
            .and_then(|c| c.as_string_opt::<i32>()),
        b.column_by_name("message")
            .and_then(|c| c.as_string_opt::<i32>()),
        b.column_by_name("labels").and_then(|c| c.as_map_opt()),
        b.column_by_name("attributes").and_then(|c| c.as_map_opt()),
    ) else {
        return Vec::new();
    };
    let time = b.column_by_name("time").and_then(|c| {
        c.as_primitive_opt::<aiops_schemas::arrow_array::types::TimestampMillisecondType>()
    });
    let map_obj = |m: &aiops_schemas::arrow_array::MapArray, i: usize| -> Map<String, Value> {
        let mut o = Map::new();
        if m.is_null(i) {
            return o;
        }
        let e = m.value(i);
        if let (Some(k), Some(v)) = (
            e.column(0).as_string_opt::<i32>(),
            e.column(1).as_string_opt::<i32>(),
        ) {
            for j in 0..e.len() {
                if v.is_valid(j) {
                    o.insert(
                        k.value(j).to_string(),
                        Value::String(v.value(j).to_string()),
                    );
                }
            }
        }
        o
    };
    (0..b.num_rows())
        .map(|i| {
            let at = time.map_or(0, |t| t.value(i));
            (
                t.value(i).to_string(),
                at,
                json!({
                    "type": t.value(i), "message": msg.value(i), "time_ms": at,
                    "labels": map_obj(labels, i), "attributes": map_obj(attrs, i),
                }),
            )
        })
        .collect()
}

impl WorkflowRunner {
    /// Prepares the runner. With a `store` whose checkpoint matches the providers, the engine
    /// resumes from it; otherwise it starts at `start` with empty state and no workflows until a
    /// deployment in the log. With `append`, events are appended, skipping those already there.
    ///
    /// # Errors
    /// [`WorkflowRunnerError`] when the log or store cannot be read.
    pub async fn new(
        log: Arc<dyn EventLog>,
        handle: Arc<WorkflowsHandle>,
        store: Option<Store>,
        append: bool,
        start: u64,
        checkpoint_every: Duration,
    ) -> Result<WorkflowRunner, WorkflowRunnerError> {
        let stats = log.stats().await?;
        let config_hash = providers_hash(&handle.providers);
        let mut position = start;
        let mut head = start;
        if let Some(store) = &store
            && let Some((ck, state)) = store.load()?
        {
            if ck.config_hash == config_hash {
                let saved: Saved = serde_json::from_slice(&state)
                    .map_err(|e| WorkflowRunnerError::State(e.to_string()))?;
                handle.deploy(saved.deployed).map_err(|e| {
                    WorkflowRunnerError::State(format!("checkpointed workflows: {e}"))
                })?;
                let bytes = serde_json::to_vec(&saved.engine)
                    .map_err(|e| WorkflowRunnerError::State(e.to_string()))?;
                handle
                    .engine
                    .write()
                    .restore(&bytes)
                    .map_err(|e| WorkflowRunnerError::State(e.to_string()))?;
                position = ck.position;
                head = ck.log_head;
                tracing::info!(position, "workflows resume from their checkpoint");
            } else {
                tracing::info!("providers changed: workflow state is rebuilt from the log");
            }
        }
        let mut seen = HashSet::new();
        if append {
            let mut r = log.reader(head).await?;
            loop {
                let batch = r.next_batch(1024).await?;
                if batch.is_empty() {
                    break;
                }
                for rec in batch {
                    if rec.subject == EFFECTS_SUBJECT && rec.msg_id.starts_with("w.") {
                        seen.insert(rec.msg_id);
                    }
                }
            }
        }
        let reader = log.reader(position).await?;
        handle.progress.moved_to(position);
        Ok(WorkflowRunner {
            log,
            handle,
            reader,
            store,
            append,
            seen,
            config_hash,
            log_head: stats.next_seq,
            start_head: stats.next_seq,
            checkpoint_every,
            last_checkpoint: Instant::now(),
            unsaved: true,
            summary: WorkflowRunSummary::default(),
            sink: None,
            collected: None,
            results_seen: BTreeMap::new(),
        })
    }

    /// Tells `sink` (the executor) about intents after each step.
    pub fn with_sink(mut self, sink: Arc<dyn IntentSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Collects every event (dry runs).
    pub fn collecting(mut self) -> Self {
        self.collected = Some(Vec::new());
        self
    }

    /// Results read from the log (dry runs: what became of each intent back then).
    pub fn results_seen(&self) -> &BTreeMap<String, aiops_workflow::EffectResult> {
        &self.results_seen
    }

    /// Counts so far.
    pub fn summary(&self) -> WorkflowRunSummary {
        self.summary
    }

    /// The next sequence to read.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    fn handle_record(&mut self, r: &Record) -> Vec<WorkflowEvent> {
        let mut out = Vec::new();
        if r.subject == DECISIONS_SUBJECT {
            match parse_decisions(&r.payload) {
                Ok(ds) => {
                    let mut e = self.handle.engine.write();
                    for d in &ds {
                        e.on_decision(d, &mut out);
                    }
                }
                Err(err) => {
                    tracing::warn!(seq = r.seq, error = %err, "workflows skip an undecodable decision message");
                }
            }
            return out;
        }
        if r.subject == EFFECTS_SUBJECT {
            for line in parse_effects(&r.payload) {
                if let EffectsLine::Result(res) = line {
                    self.handle.engine.write().on_result(&res, &mut out);
                    if let Some(s) = &self.sink {
                        s.settled(&res.key);
                    }
                    if self.collected.is_some() {
                        self.results_seen.insert(res.key.clone(), res);
                    }
                }
            }
            return out;
        }
        if r.subject == CONTROL_SUBJECT {
            match parse_control(&r.payload) {
                None => {}
                Some(Err(e)) => {
                    self.summary.refused_commands += 1;
                    self.handle
                        .progress
                        .record(r.seq, Some(format!("bad command: {e}")));
                }
                Some(Ok(ev)) => match ev.body {
                    WorkflowCommand::Command { command } => {
                        let res = self
                            .handle
                            .engine
                            .write()
                            .on_control(&command, ev.at_ms, &mut out);
                        if let Err(reason) = &res {
                            self.summary.refused_commands += 1;
                            tracing::info!(seq = r.seq, reason = %reason, "workflow command refused");
                        }
                        self.handle.progress.record(r.seq, res.err());
                    }
                    WorkflowCommand::Deployed {
                        workflows,
                        strategies,
                    } => {
                        let res = self.handle.deploy(Deployed {
                            workflows,
                            strategies,
                        });
                        if let Err(reason) = &res {
                            self.summary.refused_deployments += 1;
                            tracing::warn!(seq = r.seq, reason = %reason, "a deployed workflow set does not compile here; the running set stays");
                        }
                        self.handle.progress.record(r.seq, res.err());
                    }
                },
            }
            return out;
        }
        if r.subject == CLOCK_SUBJECT {
            self.handle.engine.write().on_tick(r.time_max_ms, &mut out);
            return out;
        }
        if Kind::from_subject(&r.subject) == Some(Kind::Events) {
            let has_event_triggers =
                self.handle
                    .engine
                    .read()
                    .config()
                    .workflows
                    .values()
                    .any(|w| {
                        w.triggers
                            .iter()
                            .any(|t| matches!(t, aiops_workflow::compile::Trigger::Event(..)))
                    });
            if !has_event_triggers {
                return out;
            }
            let Ok((_, batch)) = aiops_schemas::decode(&r.payload) else {
                return out;
            };
            let mut e = self.handle.engine.write();
            for (i, (kind, at, body)) in event_rows(&batch).into_iter().enumerate() {
                let id = format!("{}.{i}", r.seq);
                e.on_event(&kind, &id, at, &body, &mut out);
            }
        }
        out
    }

    /// Reads and processes up to `max` messages, appends the events, checkpoints when due.
    /// Returns the number of messages read (0 at the end of the log).
    ///
    /// # Errors
    /// [`WorkflowRunnerError`]; the caller stops and restarts from the checkpoint.
    pub async fn step(&mut self, max: usize) -> Result<usize, WorkflowRunnerError> {
        let records = self.reader.next_batch(max).await?;
        let handle = self.handle.clone();
        let guard = handle.step_lock.lock().await;
        let res = self.step_records(records).await;
        drop(guard);
        if res.is_err() {
            // The engine may hold intents that are not in the log: stop the executor.
            self.handle.caught_up.store(false, Ordering::Release);
        }
        res
    }

    async fn step_records(&mut self, records: Vec<Record>) -> Result<usize, WorkflowRunnerError> {
        let mut msgs = Vec::new();
        for r in &records {
            let ev = self.handle_record(r);
            if ev.is_empty() {
                continue;
            }
            self.summary.events += ev.len() as u64;
            let msg = events_message(r.seq, &ev)
                .map_err(|e| WorkflowRunnerError::State(e.to_string()))?;
            if self.seen.remove(&msg.msg_id) {
                self.summary.already_in_log += 1;
            } else {
                msgs.push(msg);
            }
            if let Some(c) = &mut self.collected {
                c.extend(ev);
            }
        }
        self.summary.messages_read += records.len() as u64;
        if self.append && !msgs.is_empty() {
            let appended = self.log.append(msgs).await?;
            if let Some(last) = appended.last() {
                self.log_head = self.log_head.max(last.seq + 1);
            }
        }
        if let Some(last) = records.last() {
            self.handle.progress.moved_to(last.seq + 1);
            self.unsaved = true;
        }
        if !self.handle.caught_up.load(Ordering::Acquire)
            && self.reader.position() >= self.start_head
        {
            self.handle.caught_up.store(true, Ordering::Release);
        }
        if self.handle.caught_up.load(Ordering::Acquire)
            && let Some(s) = &self.sink
        {
            s.poke();
        }
        *self.handle.summary.lock() = self.summary;
        if self.store.is_some()
            && self.unsaved
            && self.last_checkpoint.elapsed() >= self.checkpoint_every
        {
            self.checkpoint().await?;
        }
        Ok(records.len())
    }

    /// Writes the position, the deployed files and the state.
    ///
    /// # Errors
    /// [`WorkflowRunnerError`] when serializing or the store fails.
    pub async fn checkpoint(&mut self) -> Result<(), WorkflowRunnerError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let engine_bytes = self
            .handle
            .engine
            .read()
            .snapshot()
            .map_err(|e| WorkflowRunnerError::State(e.to_string()))?;
        let engine: Value = serde_json::from_slice(&engine_bytes)
            .map_err(|e| WorkflowRunnerError::State(e.to_string()))?;
        let saved = Saved {
            deployed: self.handle.deployed.read().clone(),
            engine,
        };
        let state =
            serde_json::to_vec(&saved).map_err(|e| WorkflowRunnerError::State(e.to_string()))?;
        let ck = Checkpoint {
            config_hash: self.config_hash,
            position: self.reader.position(),
            log_head: self.log_head,
        };
        store.save(&ck, &state).await?;
        self.last_checkpoint = Instant::now();
        self.unsaved = false;
        Ok(())
    }

    /// Reads to the end of the log as it is now (dry runs and tests).
    ///
    /// # Errors
    /// [`WorkflowRunnerError`] from a step.
    pub async fn run_to_end(&mut self, until_seq: Option<u64>) -> Result<(), WorkflowRunnerError> {
        loop {
            if until_seq.is_some_and(|u| self.reader.position() >= u) {
                return Ok(());
            }
            if self.step(1024).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Follows the log until `shutdown` flips, appending a clock tick when a timer is due; then
    /// checkpoints.
    ///
    /// # Errors
    /// [`WorkflowRunnerError`] from a step.
    pub async fn follow(
        mut self,
        tick_every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), WorkflowRunnerError> {
        let mut last_tick = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if self.step(1024).await? > 0 {
                continue;
            }
            if !self.handle.caught_up.load(Ordering::Acquire) {
                self.handle.caught_up.store(true, Ordering::Release);
                if let Some(s) = &self.sink {
                    s.poke();
                }
            }
            let now = crate::clock::now_ms();
            let due = self
                .handle
                .engine
                .read()
                .next_timer_ms()
                .is_some_and(|t| t <= now);
            if due && last_tick.elapsed() >= tick_every {
                self.log.append(vec![tick_message(now)]).await?;
                self.summary.ticks += 1;
                last_tick = Instant::now();
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.checkpoint().await
    }
}
