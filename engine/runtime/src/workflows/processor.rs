//! The workflow engine as a [`Processor`]: alerting decisions, events, effect results, workflow
//! commands and clock ticks in log order in; engine events (intents first of all) appended to
//! `aiops.effects`, one message per input message that caused any.
//!
//! The executor only starts once the driver has read the whole log as it was at start
//! (`caught_up`), so a result already logged is never missed and its intent never run again;
//! and it takes the step lock before reading pending intents, so no effect runs before its
//! intent is in the log (DESIGN.md invariant 3).

use super::catalog::ProviderSet;
use super::codec::{EffectsLine, WorkflowCommand, events_message, parse_control, parse_effects};
use crate::alerting::codec::parse_decisions;
use crate::processor::{Outputs, Processor, ProcessorError, StepInfo};
use crate::progress::{CommandError, CommandProgress};
use crate::wire::{CLOCK_SUBJECT, CONTROL_SUBJECT, DECISIONS_SUBJECT, EFFECTS_SUBJECT, ids};
use aiops_log::Record;
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use aiops_workflow::{EngineConfig, Limits, Renderer, WorkflowEngine, WorkflowEvent};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
    pub progress: Arc<CommandProgress>,
    /// True once the runner has read the log as it was at start.
    pub caught_up: AtomicBool,
    /// Counts so far.
    pub summary: Mutex<WorkflowRunSummary>,
    /// Held by the driver from feeding the engine until the events are appended, and by the
    /// executor while it takes pending intents: no effect runs before its intent is logged.
    pub step_lock: Arc<tokio::sync::Mutex<()>>,
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
            progress: Arc::new(CommandProgress::default()),
            caught_up: AtomicBool::new(false),
            summary: Mutex::new(WorkflowRunSummary::default()),
            step_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Forgets the engine's state (a cluster unit taken over again: the driver then restores
    /// the checkpoint into it or rebuilds it from the log).
    pub fn reset(&self) {
        *self.engine.write() = WorkflowEngine::new(
            empty_config(&self.providers, &self.limits),
            Renderer::default(),
        );
        *self.deployed.write() = Deployed::default();
        self.caught_up
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// Waits until the engine has consumed sequence `seq` and returns what became of it if it was
    /// a command: `Ok(())` applied, `Err(reason)` refused.
    ///
    /// # Errors
    /// [`CommandError::Refused`] with the engine's reason, or [`CommandError::Timeout`].
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> Result<(), CommandError> {
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
    /// The engine's pending intents may have changed; `new` are the keys of the intents the
    /// step just logged (so the executor need not scan every pending intent at each step).
    fn poke(&self, new: Vec<String>);
    /// The result of `key` has been read by the engine.
    fn settled(&self, key: &str);
}

#[derive(Serialize, Deserialize)]
struct Saved {
    deployed: Deployed,
    engine: Value,
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

/// The workflow processor.
pub struct WorkflowProcessor {
    handle: Arc<WorkflowsHandle>,
    config_hash: u64,
    summary: WorkflowRunSummary,
    sink: Option<Arc<dyn IntentSink>>,
    /// Every event emitted (dry runs: the "would have run" report).
    pub collected: Option<Vec<WorkflowEvent>>,
    results_seen: BTreeMap<String, aiops_workflow::EffectResult>,
    /// Keys of the intents logged by the current step, handed to the sink after it.
    new_intents: Vec<String>,
}

impl WorkflowProcessor {
    /// A processor feeding the engine of `handle`.
    pub fn new(handle: Arc<WorkflowsHandle>) -> WorkflowProcessor {
        WorkflowProcessor {
            config_hash: providers_hash(&handle.providers),
            handle,
            summary: WorkflowRunSummary::default(),
            sink: None,
            collected: None,
            results_seen: BTreeMap::new(),
            new_intents: Vec::new(),
        }
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

    fn handle_record(&mut self, r: &Record, cmd: &mut Outputs) -> Vec<WorkflowEvent> {
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
                    cmd.refused(format!("bad command: {e}"));
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
                        match res {
                            Ok(()) => cmd.applied(),
                            Err(reason) => cmd.refused(reason),
                        }
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
                        match res {
                            Ok(()) => cmd.applied(),
                            Err(reason) => cmd.refused(reason),
                        }
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
}

fn err(e: impl std::fmt::Display) -> ProcessorError {
    ProcessorError::new(WorkflowProcessor::NAME, e)
}

impl Processor for WorkflowProcessor {
    const NAME: &'static str = "workflows";
    const WHAT: &'static str = "workflow engine";

    fn config_hash(&self) -> u64 {
        self.config_hash
    }

    fn is_output(&self, subject: &str, msg_id: &str) -> bool {
        subject == EFFECTS_SUBJECT && msg_id.starts_with(ids::WORKFLOW_EVENTS)
    }

    fn on_record(&mut self, r: &Record, out: &mut Outputs) -> Result<(), ProcessorError> {
        let ev = self.handle_record(r, out);
        if ev.is_empty() {
            return Ok(());
        }
        self.summary.events += ev.len() as u64;
        if self.sink.is_some() {
            self.new_intents.extend(ev.iter().filter_map(|e| match e {
                WorkflowEvent::Intent(i) => Some(i.key.clone()),
                _ => None,
            }));
        }
        out.push(events_message(r.seq, &ev).map_err(err)?);
        if let Some(c) = &mut self.collected {
            c.extend(ev);
        }
        Ok(())
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        self.handle.engine.read().next_timer_ms()
    }

    fn snapshot(&self) -> Result<Vec<u8>, ProcessorError> {
        let engine_bytes = self.handle.engine.read().snapshot().map_err(err)?;
        let engine: Value = serde_json::from_slice(&engine_bytes).map_err(err)?;
        let saved = Saved {
            deployed: self.handle.deployed.read().clone(),
            engine,
        };
        serde_json::to_vec(&saved).map_err(err)
    }

    fn snapshot_job(&self) -> Option<crate::processor::SnapshotJob> {
        let engine = self.handle.engine.read().snapshot_later();
        let deployed = self.handle.deployed.read().clone();
        Some(Box::new(move || {
            let engine_bytes = engine().map_err(err)?;
            let engine: Value = serde_json::from_slice(&engine_bytes).map_err(err)?;
            serde_json::to_vec(&Saved { deployed, engine }).map_err(err)
        }))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ProcessorError> {
        let saved: Saved = serde_json::from_slice(state).map_err(err)?;
        self.handle
            .deploy(saved.deployed)
            .map_err(|e| err(format!("checkpointed workflows: {e}")))?;
        let bytes = serde_json::to_vec(&saved.engine).map_err(err)?;
        self.handle.engine.write().restore(&bytes).map_err(err)
    }

    fn stepped(&mut self, info: &StepInfo) {
        self.summary.messages_read = info.counts.messages_read;
        self.summary.already_in_log = info.counts.already_in_log;
        self.summary.ticks = info.counts.ticks;
        *self.handle.summary.lock() = self.summary;
        let was = self.handle.caught_up.swap(info.caught_up, Ordering::AcqRel);
        let new = std::mem::take(&mut self.new_intents);
        if info.caught_up
            && let Some(s) = &self.sink
        {
            if !was {
                tracing::debug!(position = info.position, "workflows caught up with the log");
            }
            // Before the catch-up the executor scans every pending intent once; these are
            // among them.
            s.poke(new);
        }
    }

    fn step_lock(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        Some(self.handle.step_lock.clone())
    }
}
