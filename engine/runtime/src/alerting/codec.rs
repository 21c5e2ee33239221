//! Alerting decisions and commands as log messages.
//!
//! Decisions go to `aiops.alerting`, one message per input message that caused them, as NDJSON
//! (one decision per line with its `type` and `id`); the message id derives from the input's
//! sequence and the content, so a restart that re-derives them recognizes them in the log.
//! Commands (silences, acknowledgements) are JSON control events on `aiops.control` with
//! `"type": "alerting"`, as the pipeline supervisor's control events are. Clock ticks are
//! messages on `aiops.clock` whose time is the wall time they were appended at.

use crate::wire::{self, DECISIONS_SUBJECT, ids};
use aiops_alerting::{Control, Decision};
use aiops_log::AppendMessage;
use serde::{Deserialize, Serialize};

/// The message carrying the decisions caused by input message `input_seq`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn decisions_message(
    input_seq: u64,
    decisions: &[Decision],
) -> Result<AppendMessage, serde_json::Error> {
    wire::ndjson_message(
        DECISIONS_SUBJECT,
        ids::DECISIONS,
        input_seq,
        decisions,
        |d| (d.id(), d.message(), d.at_ms()),
    )
}

/// Parses the decisions of an `aiops.alerting` message.
///
/// # Errors
/// A line that is not a decision.
pub fn parse_decisions(payload: &[u8]) -> Result<Vec<Decision>, serde_json::Error> {
    wire::lines(payload).map(serde_json::from_slice).collect()
}

/// A command as a control event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlEvent {
    /// Always `alerting`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was accepted (wall clock at the API; the engine's time for it).
    pub at_ms: i64,
    /// The command.
    pub command: Control,
}

/// The control event for `command` accepted at `now_ms`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn control_message(command: Control, now_ms: i64) -> Result<AppendMessage, serde_json::Error> {
    wire::control_message(
        ids::CONTROL,
        now_ms,
        &ControlEvent {
            kind: "alerting".into(),
            at_ms: now_ms,
            command,
        },
    )
}

/// The alerting command of a control event, if it is one.
pub fn parse_control(payload: &[u8]) -> Option<Result<ControlEvent, serde_json::Error>> {
    // Other control events (pipelines_changed, workflow) share the subject.
    wire::parse_control(payload, "alerting")
}
