//! Runs the template miner over the log: log batches in log order in; template changes, window
//! counts and template anomalies appended.
//!
//! Recovery is the pipelines' and alerting's (DESIGN.md invariants 1–2): the checkpoint holds
//! the input position and the whole miner state, written after the outputs of those inputs are
//! in the log. After a crash the miner resumes from it, re-derives the same outputs with the same
//! message ids, and does not append the ones already in the log.

use super::TemplateSettings;
use super::encode::{ID_PREFIX, anomalies_messages, changes_message, counts_messages};
use crate::checkpoint::{Checkpoint, Store, StoreError};
use aiops_detect::templates::{MinerError, MinerOutput, TemplateMiner};
use aiops_log::{AppendMessage, EventLog, LogError, LogReader, Record};
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why the runner stopped.
#[derive(Debug, thiserror::Error)]
pub enum TemplateRunnerError {
    /// Reading or appending to the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The checkpoint store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The miner refused its configuration or checkpoint.
    #[error(transparent)]
    Miner(#[from] MinerError),
    /// An output could not be encoded (a bug).
    #[error("template miner: encoding outputs: {0}")]
    Encode(String),
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TemplateRunSummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Log records mined.
    pub records: u64,
    /// Messages produced (changes, counts, anomalies).
    pub outputs: u64,
    /// Of those, already in the log (recognized by id, not appended again).
    pub already_in_log: u64,
    /// Input messages that could not be decoded (skipped, logged).
    pub undecodable: u64,
}

/// What the HTTP API shares with the runner.
pub struct TemplatesHandle {
    /// The miner (the runner writes, the API reads).
    pub miner: RwLock<TemplateMiner>,
    /// Next log sequence the miner has not consumed.
    pub position: AtomicU64,
    /// Counts so far.
    pub summary: Mutex<TemplateRunSummary>,
}

impl std::fmt::Debug for TemplatesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplatesHandle")
            .field("position", &self.position.load(Ordering::Relaxed))
            .finish()
    }
}

/// Runs the miner over the log.
pub struct TemplateRunner {
    log: Arc<dyn EventLog>,
    handle: Arc<TemplatesHandle>,
    reader: Box<dyn LogReader>,
    store: Option<Store>,
    append: bool,
    seen: HashSet<String>,
    config_hash: u64,
    window_ms: i64,
    log_head: u64,
    checkpoint_every: Duration,
    last_checkpoint: Instant,
    unsaved: bool,
    summary: TemplateRunSummary,
    out: MinerOutput,
}

/// Whether a message is one the miner wrote.
pub fn is_miner_output(msg_id: &str) -> bool {
    msg_id.starts_with(ID_PREFIX)
}

impl TemplateRunner {
    /// Prepares the runner. With a `store` whose checkpoint matches the configuration, the
    /// miner resumes from it; otherwise it starts at `start` with no history. With `append`,
    /// outputs are appended, skipping those already in the log past the checkpoint.
    ///
    /// # Errors
    /// [`TemplateRunnerError`] when the configuration is refused or the log or store fails.
    pub async fn new(
        log: Arc<dyn EventLog>,
        settings: &TemplateSettings,
        store: Option<Store>,
        append: bool,
        start: u64,
    ) -> Result<TemplateRunner, TemplateRunnerError> {
        let stats = log.stats().await?;
        let config_hash = settings.config_hash();
        let mut miner = TemplateMiner::new(settings.miner.clone())?;
        let mut position = start;
        let mut head = start;
        if let Some(store) = &store
            && let Some((ck, state)) = store.load()?
        {
            if ck.config_hash == config_hash {
                miner = TemplateMiner::restore(&state)?;
                position = ck.position;
                head = ck.log_head;
                tracing::info!(position, "template miner resumes from its checkpoint");
            } else {
                tracing::info!(
                    "template miner configuration changed: state is rebuilt from the log"
                );
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
                    if is_miner_output(&rec.msg_id) {
                        seen.insert(rec.msg_id);
                    }
                }
            }
        }
        let reader = log.reader(position).await?;
        let handle = Arc::new(TemplatesHandle {
            miner: RwLock::new(miner),
            position: AtomicU64::new(position),
            summary: Mutex::new(TemplateRunSummary::default()),
        });
        Ok(TemplateRunner {
            log,
            handle,
            reader,
            store,
            append,
            seen,
            config_hash,
            window_ms: settings.miner.window_ms,
            log_head: stats.next_seq,
            checkpoint_every: settings.checkpoint_interval,
            last_checkpoint: Instant::now(),
            unsaved: true,
            summary: TemplateRunSummary::default(),
            out: MinerOutput::default(),
        })
    }

    /// The handle the API reads.
    pub fn handle(&self) -> Arc<TemplatesHandle> {
        self.handle.clone()
    }

    /// Counts so far.
    pub fn summary(&self) -> TemplateRunSummary {
        self.summary
    }

    /// The next sequence to read.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    /// Mines one log message's records; returns the messages it produces.
    fn handle_record(&mut self, r: &Record) -> Result<Vec<AppendMessage>, TemplateRunnerError> {
        if Kind::from_subject(&r.subject) != Some(Kind::Logs) {
            return Ok(Vec::new());
        }
        let batch = match aiops_schemas::decode(&r.payload) {
            Ok((_, b)) => b,
            Err(e) => {
                self.summary.undecodable += 1;
                tracing::warn!(seq = r.seq, subject = %r.subject, error = %e, "template miner skips an undecodable message");
                return Ok(Vec::new());
            }
        };
        self.out.changes.clear();
        self.out.counts.clear();
        self.out.anomalies.clear();
        {
            let mut miner = self.handle.miner.write();
            self.summary.records += mine(&mut miner, &batch, &mut self.out)?;
            miner.advance(&mut self.out);
        }
        let mut msgs = Vec::new();
        if let Some(m) =
            changes_message(r.seq, &self.out.changes).map_err(TemplateRunnerError::Encode)?
        {
            msgs.push(m);
        }
        msgs.extend(
            counts_messages(&self.out.counts, self.window_ms)
                .map_err(TemplateRunnerError::Encode)?,
        );
        msgs.extend(anomalies_messages(&self.out.anomalies).map_err(TemplateRunnerError::Encode)?);
        Ok(msgs)
    }

    /// Reads and mines up to `max` messages, appends the outputs, checkpoints when due. Returns
    /// the outputs and the number of messages read (0 at the end of the log).
    ///
    /// # Errors
    /// [`TemplateRunnerError`]; the caller stops and restarts from the checkpoint.
    pub async fn step(
        &mut self,
        max: usize,
    ) -> Result<(Vec<AppendMessage>, usize), TemplateRunnerError> {
        let records = self.reader.next_batch(max).await?;
        let mut all = Vec::new();
        for r in &records {
            all.extend(self.handle_record(r)?);
        }
        let mut msgs = Vec::with_capacity(all.len());
        for m in &all {
            if self.seen.remove(&m.msg_id) {
                self.summary.already_in_log += 1;
            } else {
                msgs.push(m.clone());
            }
        }
        self.summary.messages_read += records.len() as u64;
        self.summary.outputs += all.len() as u64;
        if self.append && !msgs.is_empty() {
            let appended = self.log.append(msgs).await?;
            if let Some(last) = appended.last() {
                self.log_head = self.log_head.max(last.seq + 1);
            }
        }
        if let Some(last) = records.last() {
            self.handle.position.store(last.seq + 1, Ordering::Release);
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
    /// [`TemplateRunnerError`] when serializing or the store fails.
    pub async fn checkpoint(&mut self) -> Result<(), TemplateRunnerError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let state = self.handle.miner.read().checkpoint()?;
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

    /// Follows the log until `shutdown` flips, then checkpoints. Idle polls wait 50 ms.
    ///
    /// # Errors
    /// [`TemplateRunnerError`] from a step.
    pub async fn follow(
        mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), TemplateRunnerError> {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (_, n) = self.step(1024).await?;
            if n == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        self.checkpoint().await
    }
}

/// Feeds every record of a log batch to the miner (service = label `service`, empty when
/// absent); returns how many.
fn mine(
    miner: &mut TemplateMiner,
    batch: &RecordBatch,
    out: &mut MinerOutput,
) -> Result<u64, MinerError> {
    let (Some(time), Some(severity), Some(body), Some(labels)) = (
        batch
            .column_by_name("time")
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>()),
        batch
            .column_by_name("severity")
            .and_then(|c| c.as_string_opt::<i32>()),
        batch
            .column_by_name("body")
            .and_then(|c| c.as_string_opt::<i32>()),
        batch.column_by_name("labels").and_then(|c| c.as_map_opt()),
    ) else {
        return Ok(0);
    };
    let keys = labels.keys().as_string_opt::<i32>();
    let values = labels.values().as_string_opt::<i32>();
    let offsets = labels.value_offsets();
    for row in 0..batch.num_rows() {
        let mut service = "";
        if let (Some(k), Some(v)) = (keys, values) {
            let (a, b) = (offsets[row] as usize, offsets[row + 1] as usize);
            for j in a..b {
                if k.value(j) == "service" && v.is_valid(j) {
                    service = v.value(j);
                    break;
                }
            }
        }
        let sev = if severity.is_valid(row) {
            severity.value(row)
        } else {
            ""
        };
        let text = if body.is_valid(row) {
            body.value(row)
        } else {
            ""
        };
        miner.observe(time.value(row), service, sev, text, out)?;
    }
    Ok(batch.num_rows() as u64)
}
