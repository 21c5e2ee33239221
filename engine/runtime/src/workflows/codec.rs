//! Workflow events, effect results and workflow commands as log messages.
//!
//! Engine events go to `aiops.effects`, one NDJSON message per input message that caused them
//! (message id from the input's sequence and the content, so a restart recognizes them). Results
//! go to the same subject, one message per result, `{"type": "result", …}`, with a message id
//! from the idempotency key. Commands and the deployed workflow set are control events on
//! `aiops.control` with `"type": "workflow"`.

use crate::wire::{self, EFFECTS_SUBJECT, hash as fnv, ids};
use aiops_log::AppendMessage;
use aiops_workflow::{EffectResult, WorkflowControl, WorkflowEvent};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The message carrying the events caused by input `input_seq`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn events_message(
    input_seq: u64,
    events: &[WorkflowEvent],
) -> Result<AppendMessage, serde_json::Error> {
    wire::ndjson_message(
        EFFECTS_SUBJECT,
        ids::WORKFLOW_EVENTS,
        input_seq,
        events,
        |e| (e.id(), e.text(), e.at_ms()),
    )
}

#[derive(Serialize, Deserialize)]
struct ResultLine {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    result: EffectResult,
}

/// A result line as written (borrowed: no copy of the response per result).
#[derive(Serialize)]
struct ResultLineRef<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    result: &'a EffectResult,
}

/// The message carrying the results of effects that finished together, one NDJSON line each
/// (no trailing newline). Its id hashes the keys and the content, so a retried append of the
/// same results is recognized; one result gives exactly the single-result message of earlier
/// releases.
///
/// # Errors
/// Serialization failure (a bug).
pub fn results_message(results: &[EffectResult]) -> Result<AppendMessage, serde_json::Error> {
    let mut payload = Vec::with_capacity(256 * results.len());
    let mut keys = Vec::with_capacity(40 * results.len());
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            payload.push(b'\n');
            keys.push(b'\n');
        }
        serde_json::to_writer(
            &mut payload,
            &ResultLineRef {
                kind: "result",
                result: r,
            },
        )?;
        keys.extend_from_slice(r.key.as_bytes());
        lo = lo.min(r.at_ms);
        hi = hi.max(r.at_ms);
    }
    if results.is_empty() {
        (lo, hi) = (0, 0);
    }
    Ok(AppendMessage {
        subject: EFFECTS_SUBJECT.into(),
        msg_id: format!("{}{:016x}.{:016x}", ids::RESULTS, fnv(&keys), fnv(&payload)),
        time_min_ms: lo,
        time_max_ms: hi,
        payload: Bytes::from(payload),
    })
}

/// The message carrying one effect result.
///
/// # Errors
/// Serialization failure (a bug).
pub fn result_message(r: &EffectResult) -> Result<AppendMessage, serde_json::Error> {
    results_message(std::slice::from_ref(r))
}

/// One line of an `aiops.effects` message.
#[derive(Debug, Clone)]
pub enum EffectsLine {
    /// An engine event.
    Event(Box<WorkflowEvent>),
    /// An effect result.
    Result(EffectResult),
}

/// Parses the lines of an `aiops.effects` message (lines that do not parse are skipped).
pub fn parse_effects(payload: &[u8]) -> Vec<EffectsLine> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: String,
    }
    wire::lines(payload)
        .filter_map(|l| {
            let h: Head = serde_json::from_slice(l).ok()?;
            if h.kind == "result" {
                serde_json::from_slice::<ResultLine>(l)
                    .ok()
                    .map(|r| EffectsLine::Result(r.result))
            } else {
                serde_json::from_slice::<WorkflowEvent>(l)
                    .ok()
                    .map(|e| EffectsLine::Event(Box::new(e)))
            }
        })
        .collect()
}

/// What a workflow control event carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum WorkflowCommand {
    /// A command to the engine.
    Command {
        /// The command.
        command: WorkflowControl,
    },
    /// The deployed workflow and strategy files (name → text): the engine runs these from this
    /// point of the log on.
    Deployed {
        /// Workflow files.
        workflows: BTreeMap<String, String>,
        /// Auto-heal strategy files.
        strategies: BTreeMap<String, String>,
    },
}

/// A workflow control event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlEvent {
    /// Always `workflow`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was accepted.
    pub at_ms: i64,
    /// What.
    #[serde(flatten)]
    pub body: WorkflowCommand,
}

/// The control event for `body` at `now_ms`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn control_message(
    body: WorkflowCommand,
    now_ms: i64,
) -> Result<AppendMessage, serde_json::Error> {
    wire::control_message(
        ids::WORKFLOW_CONTROL,
        now_ms,
        &ControlEvent {
            kind: "workflow".into(),
            at_ms: now_ms,
            body,
        },
    )
}

/// The workflow control event of a control message, if it is one.
pub fn parse_control(payload: &[u8]) -> Option<Result<ControlEvent, serde_json::Error>> {
    wire::parse_control(payload, "workflow")
}
