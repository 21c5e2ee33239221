//! How a log message maps onto a JetStream message: the subject is the subject, the payload the
//! payload, and id and event-time range travel in headers (read without the payload by
//! `seek_time`).

use crate::{AppendMessage, LogError, Record};
use async_nats::HeaderMap;
use bytes::Bytes;
use std::path::PathBuf;

/// JetStream's own de-duplication header: a second publish with the same id inside the stream's
/// duplicate window is acknowledged as a duplicate and not stored.
pub(super) const MSG_ID: &str = "Nats-Msg-Id";
/// Smallest event time in the payload, Unix ms, decimal.
pub(super) const TIME_MIN: &str = "Aiops-Time-Min";
/// Largest event time in the payload, Unix ms, decimal.
pub(super) const TIME_MAX: &str = "Aiops-Time-Max";

/// The headers of one appended message.
pub(super) fn headers_for(m: &AppendMessage) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(MSG_ID, m.msg_id.as_str());
    h.insert(TIME_MIN, m.time_min_ms.to_string().as_str());
    h.insert(TIME_MAX, m.time_max_ms.to_string().as_str());
    h
}

/// Bytes the headers of `m` take on the wire, for the server's `max_payload` check.
pub(super) fn wire_size(m: &AppendMessage) -> usize {
    // "NATS/1.0\r\n" + "Name: value\r\n" per header + "\r\n"; 20 digits bound an i64.
    12 + MSG_ID.len() + m.msg_id.len() + 4 + 2 * (TIME_MIN.len() + 24) + m.payload.len()
}

/// The largest event time of a stored message, from its headers.
pub(super) fn time_max(
    stream: &str,
    seq: u64,
    headers: Option<&HeaderMap>,
) -> Result<i64, LogError> {
    header_i64(stream, seq, headers, TIME_MAX)
}

fn header_i64(
    stream: &str,
    seq: u64,
    headers: Option<&HeaderMap>,
    name: &str,
) -> Result<i64, LogError> {
    let v = headers
        .and_then(|h| h.get(name))
        .ok_or_else(|| not_ours(stream, seq, format!("header {name} missing")))?;
    v.as_str().parse().map_err(|_| {
        not_ours(
            stream,
            seq,
            format!("header {name} is not a number: {:?}", v.as_str()),
        )
    })
}

/// A stored message as a [`Record`]; `stored_ms` is when the server stored it.
///
/// # Errors
/// [`LogError::Corrupt`] when the message lacks the headers every append writes: something other
/// than aiops published under `aiops.>`. It is not skipped, as a damaged record would not be.
pub(super) fn to_record(
    stream: &str,
    (seq, stored_ms): (u64, i64),
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: Bytes,
) -> Result<Record, LogError> {
    let msg_id = headers
        .and_then(|h| h.get(MSG_ID))
        .ok_or_else(|| not_ours(stream, seq, format!("header {MSG_ID} missing")))?
        .as_str()
        .to_string();
    Ok(Record {
        seq,
        subject: subject.to_string(),
        msg_id,
        time_min_ms: header_i64(stream, seq, headers, TIME_MIN)?,
        time_max_ms: header_i64(stream, seq, headers, TIME_MAX)?,
        append_ts_ms: stored_ms,
        payload,
    })
}

fn not_ours(stream: &str, seq: u64, reason: String) -> LogError {
    LogError::Corrupt {
        segment: PathBuf::from(format!("nats stream {stream}")),
        offset: seq,
        reason: format!("{reason} (was it published by something other than aiops?)"),
    }
}
