//! The one trait every deterministic state machine over the log implements.
//!
//! A processor sees the log's records in order, one at a time, and answers each with messages
//! whose ids derive only from the record and the processor's state — so running it twice over
//! the same log yields the same messages with the same ids. Everything else (reading, output
//! dedup, appending, checkpoints after outputs, clock ticks, following, rebuilds, commands that
//! wait until applied) is the [`crate::driver::Driver`]'s, written once.
//!
//! Contract (the model tests in `tests/model.rs` check it for every processor):
//! - `on_record` is a pure function of (state, record): no I/O, no clock, no randomness. Its
//!   messages' ids are deterministic; two different messages never share an id.
//! - `is_output` recognizes exactly the messages this processor appends (subject *and* id), so
//!   that after a crash the driver skips those already in the log.
//! - `snapshot` → `restore` gives back a processor that behaves identically from there on.
//! - `config_hash` changes whenever a restored state would not be valid under the new
//!   configuration; the driver then rebuilds from the log instead of restoring.

use aiops_log::{AppendMessage, Record};

/// Why a processor could not go on. The driver stops; a restart resumes from the checkpoint.
#[derive(Debug, thiserror::Error)]
#[error("{processor}: {detail}")]
pub struct ProcessorError {
    /// The processor.
    pub processor: &'static str,
    /// What failed.
    pub detail: String,
}

/// A state taken at a step boundary and the work that serializes it
/// ([`Processor::snapshot_job`]).
pub type SnapshotJob = Box<dyn FnOnce() -> Result<Vec<u8>, ProcessorError> + Send>;

impl ProcessorError {
    /// An error of `processor` saying `detail`.
    pub fn new(processor: &'static str, detail: impl std::fmt::Display) -> ProcessorError {
        ProcessorError {
            processor,
            detail: detail.to_string(),
        }
    }
}

/// What a processor answers to one record: the messages to append and, when the record was a
/// command addressed to it, whether it applied.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Messages to append, in order.
    pub messages: Vec<AppendMessage>,
    /// `Some(None)`: the record was a command and applied; `Some(Some(reason))`: refused.
    pub outcome: Option<Option<String>>,
}

impl Outputs {
    /// Queues a message.
    pub fn push(&mut self, m: AppendMessage) {
        self.messages.push(m);
    }

    /// The record was a command for this processor and it applied.
    pub fn applied(&mut self) {
        self.outcome = Some(None);
    }

    /// The record was a command for this processor and it was refused for `reason`.
    pub fn refused(&mut self, reason: impl Into<String>) {
        self.outcome = Some(Some(reason.into()));
    }
}

/// Where the driver stands after a step, for [`Processor::stepped`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepInfo {
    /// Next sequence the processor has not seen.
    pub position: u64,
    /// True once the processor has read the log as it was when the driver opened (or found
    /// the end of the log), and the step's outputs are in the log.
    pub caught_up: bool,
    /// The driver's counts so far.
    pub counts: DriverCounts,
}

/// What the driver counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DriverCounts {
    /// Log messages read.
    pub messages_read: u64,
    /// Messages the processor produced.
    pub outputs: u64,
    /// Of those, already in the log (recognized by id, not appended again).
    pub already_in_log: u64,
    /// Clock ticks appended.
    pub ticks: u64,
}

/// A deterministic state machine over the log. See the module documentation for the contract.
pub trait Processor: Send + 'static {
    /// Name in logs, errors and metrics, e.g. `alerting`.
    const NAME: &'static str;

    /// What it is, in log messages (`template miner resumes from its checkpoint`).
    const WHAT: &'static str = Self::NAME;

    /// Hash of the configuration a snapshot is valid for.
    fn config_hash(&self) -> u64;

    /// Whether the stored message `(subject, msg_id)` is one this processor appends.
    fn is_output(&self, subject: &str, msg_id: &str) -> bool;

    /// What identifies an output when the driver asks "is it in the log already": by default
    /// the whole message id. A processor whose ids end in a content hash but that writes at most
    /// one message per input may answer the id without the hash, so that re-deriving an input
    /// whose output was logged by another release (a changed encoding) appends nothing.
    fn output_key<'a>(&self, msg_id: &'a str) -> &'a str {
        msg_id
    }

    /// Handles one record; pushes messages with deterministic ids to `out`.
    ///
    /// # Errors
    /// Only for what must stop the processor (an output that cannot be encoded, a state that
    /// cannot go on). Undecodable input is skipped and counted, not an error.
    fn on_record(&mut self, rec: &Record, out: &mut Outputs) -> Result<(), ProcessorError>;

    /// The earliest time (Unix ms) a timer is due, for clock ticks while no input arrives.
    fn next_deadline_ms(&self) -> Option<i64> {
        None
    }

    /// The whole state, for a checkpoint.
    ///
    /// # Errors
    /// When the state cannot be serialized (a bug).
    fn snapshot(&self) -> Result<Vec<u8>, ProcessorError>;

    /// Optional: the state as of now, owned, with what serializes it exactly as
    /// [`Processor::snapshot`] would — run on a blocking thread so a periodic checkpoint does not
    /// stall the step loop (10,000 alerts take tens of ms to serialize; a clone takes a few).
    /// `None` (the default): the driver calls `snapshot` in line.
    fn snapshot_job(&self) -> Option<SnapshotJob> {
        None
    }

    /// Replaces the state with a snapshot made under the same [`Processor::config_hash`].
    ///
    /// # Errors
    /// When the snapshot cannot be read: the driver stops, naming the processor.
    fn restore(&mut self, state: &[u8]) -> Result<(), ProcessorError>;

    /// Called after every step, once its outputs are in the log (and with `caught_up = false`
    /// when a step failed): publish counts, wake whatever acts on the outputs.
    fn stepped(&mut self, _info: &StepInfo) {}

    /// A lock the driver holds from the first `on_record` of a step until the step's outputs
    /// are appended: whoever takes it sees no state whose outputs are not in the log yet (the
    /// workflow executor takes it before reading pending intents).
    fn step_lock(&self) -> Option<std::sync::Arc<tokio::sync::Mutex<()>>> {
        None
    }
}
