//! Alerting decisions and commands as log messages.
//!
//! Decisions go to `aiops.alerting`, one message per input message that caused them, as NDJSON
//! (one decision per line with its `type` and `id`); the message id derives from the input's
//! sequence and the content, so a restart that re-derives them recognizes them in the log.
//! Commands (silences, acknowledgements) are JSON control events on `aiops.control` with
//! `"type": "alerting"`, as the pipeline supervisor's control events are. Clock ticks are
//! messages on `aiops.clock` whose time is the wall time they were appended at.

use aiops_alerting::{Control, Decision};
use aiops_log::AppendMessage;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Subject of alerting decisions.
pub const DECISIONS_SUBJECT: &str = "aiops.alerting";
/// Subject of control events (shared with the pipeline supervisor).
pub const CONTROL_SUBJECT: &str = crate::pipelines::supervisor::CONTROL_SUBJECT;
/// Subject of clock ticks.
pub const CLOCK_SUBJECT: &str = "aiops.clock";

/// FNV-1a of a message payload (message ids of the engine's own outputs).
pub(crate) fn fnv(b: &[u8]) -> u64 {
    aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, b)
}

/// The message carrying the decisions caused by input message `input_seq`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn decisions_message(
    input_seq: u64,
    decisions: &[Decision],
) -> Result<AppendMessage, serde_json::Error> {
    let mut payload = Vec::with_capacity(256 * decisions.len());
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for d in decisions {
        let mut v = serde_json::to_value(d)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("id".into(), serde_json::Value::String(d.id()));
            o.insert("message".into(), serde_json::Value::String(d.message()));
        }
        serde_json::to_writer(&mut payload, &v)?;
        payload.push(b'\n');
        lo = lo.min(d.at_ms());
        hi = hi.max(d.at_ms());
    }
    Ok(AppendMessage {
        subject: DECISIONS_SUBJECT.into(),
        msg_id: format!("x.{input_seq}.{:016x}", fnv(&payload)),
        time_min_ms: lo,
        time_max_ms: hi,
        payload: Bytes::from(payload),
    })
}

/// Parses the decisions of an `aiops.alerting` message.
///
/// # Errors
/// A line that is not a decision.
pub fn parse_decisions(payload: &[u8]) -> Result<Vec<Decision>, serde_json::Error> {
    payload
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect()
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
    let payload = serde_json::to_vec(&ControlEvent {
        kind: "alerting".into(),
        at_ms: now_ms,
        command,
    })?;
    Ok(AppendMessage {
        subject: CONTROL_SUBJECT.into(),
        msg_id: format!("c.{now_ms}.{:016x}", fnv(&payload)),
        time_min_ms: now_ms,
        time_max_ms: now_ms,
        payload: Bytes::from(payload),
    })
}

/// The alerting command of a control event, if it is one.
pub fn parse_control(payload: &[u8]) -> Option<Result<ControlEvent, serde_json::Error>> {
    // Other control events (pipelines_changed) share the subject: look at the type first.
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    let k: Kind = serde_json::from_slice(payload).ok()?;
    (k.kind == "alerting").then(|| serde_json::from_slice(payload))
}

/// A clock tick at `now_ms`.
pub fn tick_message(now_ms: i64) -> AppendMessage {
    AppendMessage {
        subject: CLOCK_SUBJECT.into(),
        msg_id: format!("t.{now_ms}"),
        time_min_ms: now_ms,
        time_max_ms: now_ms,
        payload: Bytes::from(format!("{{\"type\":\"tick\",\"at_ms\":{now_ms}}}")),
    }
}

/// Writes the decisions in the log of type `kind` (all when `None`) with time in `[from, to)` as
/// NDJSON, in log order.
///
/// # Errors
/// Reading the log or writing the output failed.
pub async fn print_decisions(
    log: &dyn aiops_log::EventLog,
    kind: Option<&str>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<u64> {
    let start = match from_ms {
        Some(t) => log.seek_time(t).await?,
        None => log.stats().await?.first_seq,
    };
    let mut r = log.reader(start).await?;
    let mut n = 0u64;
    loop {
        let batch = r.next_batch(1024).await?;
        if batch.is_empty() {
            return Ok(n);
        }
        for rec in batch {
            if rec.subject != DECISIONS_SUBJECT {
                continue;
            }
            for line in rec.payload.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                #[derive(Deserialize)]
                struct Head {
                    #[serde(rename = "type")]
                    kind: String,
                    at_ms: Option<i64>,
                }
                let Ok(h) = serde_json::from_slice::<Head>(line) else {
                    continue;
                };
                let t = h.at_ms.unwrap_or(rec.time_min_ms);
                if kind.is_some_and(|k| k != h.kind)
                    || from_ms.is_some_and(|f| t < f)
                    || to_ms.is_some_and(|e| t >= e)
                {
                    continue;
                }
                out.write_all(line)?;
                out.write_all(b"\n")?;
                n += 1;
            }
        }
    }
}
