//! The template miner as a [`Processor`]: log batches in log order in; template changes, window
//! counts and template anomalies out.

use super::TemplateSettings;
use super::encode::{ID_PREFIX, anomalies_messages, changes_message, counts_messages};
use crate::processor::{Outputs, Processor, ProcessorError, StepInfo};
use crate::progress::CommandProgress;
use crate::wire::CLOCK_SUBJECT;
use aiops_detect::templates::{MinerError, MinerOutput, TemplateMiner};
use aiops_log::Record;
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::sync::Arc;

/// Counts of one run (field names are read by tests and the bench).
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

/// What the HTTP API shares with the processor.
pub struct TemplatesHandle {
    /// The miner (the processor writes, the API reads).
    pub miner: RwLock<TemplateMiner>,
    /// How far the miner has read.
    pub progress: Arc<CommandProgress>,
    /// Counts so far.
    pub summary: Mutex<TemplateRunSummary>,
}

impl std::fmt::Debug for TemplatesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplatesHandle")
            .field("position", &self.progress.position())
            .finish()
    }
}

/// Whether a stored message is one the miner wrote (a clock tick shares the id prefix, not the
/// subject).
pub fn is_miner_output(subject: &str, msg_id: &str) -> bool {
    msg_id.starts_with(ID_PREFIX) && subject != CLOCK_SUBJECT
}

/// The template miner processor.
pub struct TemplateProcessor {
    handle: Arc<TemplatesHandle>,
    config_hash: u64,
    window_ms: i64,
    summary: TemplateRunSummary,
    out: MinerOutput,
}

impl TemplateProcessor {
    /// A processor with a fresh miner of `settings`.
    ///
    /// # Errors
    /// [`MinerError`] when the miner configuration is refused.
    pub fn new(settings: &TemplateSettings) -> Result<TemplateProcessor, MinerError> {
        let miner = TemplateMiner::new(settings.miner.clone())?;
        Ok(TemplateProcessor {
            handle: Arc::new(TemplatesHandle {
                miner: RwLock::new(miner),
                progress: Arc::new(CommandProgress::default()),
                summary: Mutex::new(TemplateRunSummary::default()),
            }),
            config_hash: settings.config_hash(),
            window_ms: settings.miner.window_ms,
            summary: TemplateRunSummary::default(),
            out: MinerOutput::default(),
        })
    }

    /// A processor over an existing `handle` (the API keeps it across a cluster unit's
    /// takeovers) whose miner starts fresh: the driver then restores the checkpoint into it or
    /// rebuilds it from the log.
    ///
    /// # Errors
    /// [`MinerError`] when the miner configuration is refused.
    pub fn with_handle(
        handle: Arc<TemplatesHandle>,
        settings: &TemplateSettings,
    ) -> Result<TemplateProcessor, MinerError> {
        *handle.miner.write() = TemplateMiner::new(settings.miner.clone())?;
        Ok(TemplateProcessor {
            handle,
            config_hash: settings.config_hash(),
            window_ms: settings.miner.window_ms,
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
}

fn err(e: impl std::fmt::Display) -> ProcessorError {
    ProcessorError::new(TemplateProcessor::NAME, e)
}

impl Processor for TemplateProcessor {
    const NAME: &'static str = "templates";
    const WHAT: &'static str = "template miner";

    fn config_hash(&self) -> u64 {
        self.config_hash
    }

    fn is_output(&self, subject: &str, msg_id: &str) -> bool {
        is_miner_output(subject, msg_id)
    }

    fn on_record(&mut self, r: &Record, out: &mut Outputs) -> Result<(), ProcessorError> {
        if Kind::from_subject(&r.subject) != Some(Kind::Logs) {
            return Ok(());
        }
        let batch = match aiops_schemas::decode(&r.payload) {
            Ok((_, b)) => b,
            Err(e) => {
                self.summary.undecodable += 1;
                tracing::warn!(seq = r.seq, subject = %r.subject, error = %e, "template miner skips an undecodable message");
                return Ok(());
            }
        };
        self.out.changes.clear();
        self.out.counts.clear();
        self.out.anomalies.clear();
        {
            let mut miner = self.handle.miner.write();
            self.summary.records += mine(&mut miner, &batch, &mut self.out).map_err(err)?;
            miner.advance(&mut self.out);
        }
        if let Some(m) = changes_message(r.seq, &self.out.changes).map_err(err)? {
            out.push(m);
        }
        for m in counts_messages(&self.out.counts, self.window_ms).map_err(err)? {
            out.push(m);
        }
        for m in anomalies_messages(&self.out.anomalies).map_err(err)? {
            out.push(m);
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, ProcessorError> {
        self.handle.miner.read().checkpoint().map_err(err)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ProcessorError> {
        *self.handle.miner.write() = TemplateMiner::restore(state).map_err(err)?;
        Ok(())
    }

    fn stepped(&mut self, info: &StepInfo) {
        self.summary.messages_read = info.counts.messages_read;
        self.summary.outputs = info.counts.outputs;
        self.summary.already_in_log = info.counts.already_in_log;
        *self.handle.summary.lock() = self.summary;
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
