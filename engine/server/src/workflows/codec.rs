//! Workflow events, effect results and workflow commands as log messages.
//!
//! Engine events go to `aiops.effects`, one NDJSON message per input message that caused them
//! (message id from the input's sequence and the content, so a restart recognizes them). Results
//! go to the same subject, one message per result, `{"type": "result", …}`, with a message id
//! from the idempotency key. Commands and the deployed workflow set are control events on
//! `aiops.control` with `"type": "workflow"`.

use crate::alerting::codec::fnv;
use aiops_log::AppendMessage;
use aiops_workflow::{EffectResult, WorkflowControl, WorkflowEvent};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Subject of workflow events and effect results.
pub const EFFECTS_SUBJECT: &str = "aiops.effects";

/// The message carrying the events caused by input `input_seq`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn events_message(
    input_seq: u64,
    events: &[WorkflowEvent],
) -> Result<AppendMessage, serde_json::Error> {
    let mut payload = Vec::with_capacity(512 * events.len());
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for e in events {
        let mut v = serde_json::to_value(e)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("id".into(), serde_json::Value::String(e.id()));
            o.insert("message".into(), serde_json::Value::String(e.text()));
        }
        serde_json::to_writer(&mut payload, &v)?;
        payload.push(b'\n');
        lo = lo.min(e.at_ms());
        hi = hi.max(e.at_ms());
    }
    Ok(AppendMessage {
        subject: EFFECTS_SUBJECT.into(),
        msg_id: format!("w.{input_seq}.{:016x}", fnv(&payload)),
        time_min_ms: lo,
        time_max_ms: hi,
        payload: Bytes::from(payload),
    })
}

#[derive(Serialize, Deserialize)]
struct ResultLine {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    result: EffectResult,
}

/// The message carrying one effect result.
///
/// # Errors
/// Serialization failure (a bug).
pub fn result_message(r: &EffectResult) -> Result<AppendMessage, serde_json::Error> {
    let payload = serde_json::to_vec(&ResultLine {
        kind: "result".into(),
        result: r.clone(),
    })?;
    Ok(AppendMessage {
        subject: EFFECTS_SUBJECT.into(),
        msg_id: format!("r.{:016x}.{:016x}", fnv(r.key.as_bytes()), fnv(&payload)),
        time_min_ms: r.at_ms,
        time_max_ms: r.at_ms,
        payload: Bytes::from(payload),
    })
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
    payload
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
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
    let payload = serde_json::to_vec(&ControlEvent {
        kind: "workflow".into(),
        at_ms: now_ms,
        body,
    })?;
    Ok(AppendMessage {
        subject: crate::pipelines::supervisor::CONTROL_SUBJECT.into(),
        msg_id: format!("wc.{now_ms}.{:016x}", fnv(&payload)),
        time_min_ms: now_ms,
        time_max_ms: now_ms,
        payload: Bytes::from(payload),
    })
}

/// The workflow control event of a control message, if it is one.
pub fn parse_control(payload: &[u8]) -> Option<Result<ControlEvent, serde_json::Error>> {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    let k: Kind = serde_json::from_slice(payload).ok()?;
    (k.kind == "workflow").then(|| serde_json::from_slice(payload))
}
