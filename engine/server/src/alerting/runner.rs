//! Runs the alerting engine over the log: alert batches, alerting commands, anomaly events and
//! clock ticks in log order in; decisions appended to `aiops.alerting`.
//!
//! Recovery is the pipelines' (DESIGN.md invariants 1–3): the checkpoint holds the input
//! position and the whole state, written after the decisions of those inputs are in the log.
//! After a crash the engine resumes from it, re-derives the same decisions with the same message
//! ids, and does not append the ones already in the log — no notification intent twice.

use super::codec::{
    CLOCK_SUBJECT, CONTROL_SUBJECT, DECISIONS_SUBJECT, decisions_message, parse_control,
    tick_message,
};
use super::store::{Checkpoint, Store, StoreError};
use aiops_alerting::model::alerts_from_batch;
use aiops_alerting::{AlertEngine, Control, Decision};
use aiops_log::{EventLog, LogError, LogReader, Record};
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the runner stopped.
#[derive(Debug, thiserror::Error)]
pub enum AlertRunnerError {
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
pub struct AlertRunSummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Alert observations fed to the engine.
    pub alerts: u64,
    /// Decisions made.
    pub decisions: u64,
    /// Decision messages already in the log (recognized by id, not appended again).
    pub already_in_log: u64,
    /// Input messages that could not be decoded (skipped, logged).
    pub undecodable: u64,
    /// Commands the engine refused (unknown silence or incident, …).
    pub refused_commands: u64,
    /// Clock ticks appended.
    pub ticks: u64,
}

/// What the HTTP API shares with the runner: the engine, how far it has read, and what became of
/// recent commands.
pub struct AlertingHandle {
    /// The engine (the runner writes, the API reads).
    pub engine: RwLock<AlertEngine>,
    /// How far the engine has read, and what became of recent commands.
    pub progress: crate::progress::CommandProgress,
    /// Counts so far.
    pub summary: Mutex<AlertRunSummary>,
    /// The configuration text (served by `/api/v2/status`).
    pub config_text: String,
}

impl std::fmt::Debug for AlertingHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertingHandle")
            .field("position", &self.progress.position())
            .finish()
    }
}

impl AlertingHandle {
    /// A handle around `engine`.
    pub fn new(engine: AlertEngine, config_text: String) -> Arc<AlertingHandle> {
        Arc::new(AlertingHandle {
            engine: RwLock::new(engine),
            progress: crate::progress::CommandProgress::default(),
            summary: Mutex::new(AlertRunSummary::default()),
            config_text,
        })
    }

    /// Waits until the engine has consumed sequence `seq` (or `timeout` passes) and returns what
    /// became of it if it was a control event: `Ok(())` applied, `Err(reason)` refused.
    ///
    /// # Errors
    /// `Err` with the refusal, or with a timeout message.
    pub async fn wait_for(&self, seq: u64, timeout: Duration) -> Result<(), String> {
        self.progress
            .wait_for(seq, timeout, "alerting engine")
            .await
    }
}

/// Runs the engine over the log.
pub struct AlertRunner {
    log: Arc<dyn EventLog>,
    handle: Arc<AlertingHandle>,
    reader: Box<dyn LogReader>,
    store: Option<Store>,
    append: bool,
    seen: HashSet<String>,
    config_hash: u64,
    log_head: u64,
    checkpoint_every: Duration,
    last_checkpoint: Instant,
    unsaved: bool,
    summary: AlertRunSummary,
}

/// The hash that ties a checkpoint to its configuration.
pub fn config_hash(text: &str) -> u64 {
    aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, text.as_bytes())
}

impl AlertRunner {
    /// Prepares the runner. With a `store` whose checkpoint matches the configuration, the
    /// engine resumes from it; otherwise it starts at `start` with empty state. With `append`,
    /// decisions are appended to the log, skipping those already there past the checkpoint.
    ///
    /// # Errors
    /// [`AlertRunnerError`] when the log or store cannot be read.
    pub async fn new(
        log: Arc<dyn EventLog>,
        handle: Arc<AlertingHandle>,
        store: Option<Store>,
        append: bool,
        start: u64,
        checkpoint_every: Duration,
    ) -> Result<AlertRunner, AlertRunnerError> {
        let stats = log.stats().await?;
        let config_hash = config_hash(&handle.config_text);
        let mut position = start;
        let mut head = start;
        if let Some(store) = &store
            && let Some((ck, state)) = store.load()?
        {
            if ck.config_hash == config_hash {
                handle
                    .engine
                    .write()
                    .restore(&state)
                    .map_err(|e| AlertRunnerError::State(e.to_string()))?;
                position = ck.position;
                head = ck.log_head;
                tracing::info!(position, "alerting resumes from its checkpoint");
            } else {
                tracing::info!("alerting configuration changed: state is rebuilt from the log");
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
                    if rec.subject == DECISIONS_SUBJECT {
                        seen.insert(rec.msg_id);
                    }
                }
            }
        }
        let reader = log.reader(position).await?;
        handle.progress.moved_to(position);
        Ok(AlertRunner {
            log,
            handle,
            reader,
            store,
            append,
            seen,
            config_hash,
            log_head: stats.next_seq,
            checkpoint_every,
            last_checkpoint: Instant::now(),
            unsaved: true,
            summary: AlertRunSummary::default(),
        })
    }

    /// Counts so far.
    pub fn summary(&self) -> AlertRunSummary {
        self.summary
    }

    /// The next sequence to read.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    fn handle_record(&mut self, r: &Record) -> Vec<Decision> {
        let kind = Kind::from_subject(&r.subject);
        if kind == Some(Kind::Alerts) {
            let (env, batch) = match aiops_schemas::decode(&r.payload) {
                Ok(x) => x,
                Err(e) => return self.undecodable(r, &e.to_string()),
            };
            let alerts = match alerts_from_batch(&batch) {
                Ok(a) => a,
                Err(e) => return self.undecodable(r, &e.to_string()),
            };
            self.summary.alerts += alerts.len() as u64;
            // Pushed alerts are timed by when aiops received them (a resent alert keeps its
            // startsAt); alerts of SQL rules (no ingest stamp) by their event time.
            let at = if env.ingest_ts_ms > 0 {
                env.ingest_ts_ms
            } else {
                env.time_max_ms
            };
            return self.handle.engine.write().observe(at, alerts);
        }
        if kind == Some(Kind::Events) {
            let batch = match aiops_schemas::decode(&r.payload) {
                Ok((_, b)) => b,
                Err(e) => return self.undecodable(r, &e.to_string()),
            };
            let services = anomaly_services(&batch);
            let mut out = Vec::new();
            let mut engine = self.handle.engine.write();
            for s in services {
                if let Ok(d) = engine.control(r.time_max_ms, Control::Anomaly { service: s }) {
                    out.extend(d);
                }
            }
            return out;
        }
        if r.subject == CONTROL_SUBJECT {
            return match parse_control(&r.payload) {
                None => Vec::new(),
                Some(Err(e)) => {
                    self.summary.refused_commands += 1;
                    self.handle
                        .progress
                        .record(r.seq, Some(format!("bad command: {e}")));
                    tracing::warn!(seq = r.seq, error = %e, "alerting ignores a malformed command");
                    Vec::new()
                }
                Some(Ok(ev)) => match self.handle.engine.write().control(ev.at_ms, ev.command) {
                    Ok(d) => {
                        self.handle.progress.record(r.seq, None);
                        d
                    }
                    Err(e) => {
                        self.summary.refused_commands += 1;
                        self.handle.progress.record(r.seq, Some(e.to_string()));
                        tracing::info!(seq = r.seq, reason = %e, "alerting command refused");
                        Vec::new()
                    }
                },
            };
        }
        if r.subject == CLOCK_SUBJECT {
            return self.handle.engine.write().advance(r.time_max_ms);
        }
        if r.subject == crate::workflows::codec::EFFECTS_SUBJECT {
            // Workflow and auto-heal steps of an incident go into its timeline (no decision).
            let mut engine = self.handle.engine.write();
            for line in crate::workflows::codec::parse_effects(&r.payload) {
                if let crate::workflows::codec::EffectsLine::Event(ev) = line
                    && let Some(inc) = ev.incident()
                {
                    let kind = if ev.id().starts_with("autoheal/") {
                        "autoheal"
                    } else {
                        "workflow"
                    };
                    let _ = engine.control(
                        ev.at_ms(),
                        Control::Note {
                            incident: inc.to_string(),
                            kind: kind.into(),
                            text: ev.text(),
                        },
                    );
                }
            }
            return Vec::new();
        }
        Vec::new()
    }

    fn undecodable(&mut self, r: &Record, e: &str) -> Vec<Decision> {
        self.summary.undecodable += 1;
        tracing::warn!(seq = r.seq, subject = %r.subject, error = %e, "alerting skips an undecodable message");
        Vec::new()
    }

    /// Reads and processes up to `max` messages, appends the decisions, checkpoints when due.
    /// Returns the decisions and the number of messages read (0 at the end of the log).
    ///
    /// # Errors
    /// [`AlertRunnerError`]; the caller stops and restarts from the checkpoint.
    pub async fn step(&mut self, max: usize) -> Result<(Vec<Decision>, usize), AlertRunnerError> {
        let records = self.reader.next_batch(max).await?;
        let mut all = Vec::new();
        let mut msgs = Vec::new();
        for r in &records {
            let d = self.handle_record(r);
            if d.is_empty() {
                continue;
            }
            let msg =
                decisions_message(r.seq, &d).map_err(|e| AlertRunnerError::State(e.to_string()))?;
            if self.seen.remove(&msg.msg_id) {
                self.summary.already_in_log += 1;
            } else {
                msgs.push(msg);
            }
            all.extend(d);
        }
        self.summary.messages_read += records.len() as u64;
        self.summary.decisions += all.len() as u64;
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
        *self.handle.summary.lock() = self.summary;
        if self.store.is_some()
            && self.unsaved
            && self.last_checkpoint.elapsed() >= self.checkpoint_every
        {
            self.checkpoint().await?;
        }
        Ok((all, records.len()))
    }

    /// Writes the position and state.
    ///
    /// # Errors
    /// [`AlertRunnerError`] when serializing or the store fails.
    pub async fn checkpoint(&mut self) -> Result<(), AlertRunnerError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let state = self
            .handle
            .engine
            .read()
            .snapshot()
            .map_err(|e| AlertRunnerError::State(e.to_string()))?;
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

    /// Follows the log until `shutdown` flips, appending a clock tick when a timer is due and
    /// nothing else moves the clock; then checkpoints.
    ///
    /// # Errors
    /// [`AlertRunnerError`] from a step.
    pub async fn follow(
        mut self,
        tick_every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), AlertRunnerError> {
        let mut last_tick = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (_, n) = self.step(1024).await?;
            if n > 0 {
                continue;
            }
            let now = crate::clock::now_ms();
            let due = self
                .handle
                .engine
                .read()
                .next_deadline_ms()
                .is_some_and(|t| t <= now);
            if due && last_tick.elapsed() >= tick_every {
                self.log.append(vec![tick_message(now)]).await?;
                self.summary.ticks += 1;
                last_tick = Instant::now();
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.checkpoint().await
    }
}

/// Services named by anomaly events (`type = 'anomaly'`, label `service`) in an events batch.
fn anomaly_services(b: &RecordBatch) -> Vec<String> {
    let (Some(t), Some(labels)) = (
        b.column_by_name("type")
            .and_then(|c| c.as_string_opt::<i32>()),
        b.column_by_name("labels").and_then(|c| c.as_map_opt()),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..b.num_rows() {
        if !t.is_valid(i) || t.value(i) != "anomaly" || labels.is_null(i) {
            continue;
        }
        let entries = labels.value(i);
        let (Some(k), Some(v)) = (
            entries.column(0).as_string_opt::<i32>(),
            entries.column(1).as_string_opt::<i32>(),
        ) else {
            continue;
        };
        for j in 0..entries.len() {
            if k.value(j) == "service" && v.is_valid(j) {
                out.push(v.value(j).to_string());
            }
        }
    }
    out
}
