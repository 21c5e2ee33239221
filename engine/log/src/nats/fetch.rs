//! One pull request: up to `max` messages that are available now, or the first ones to arrive
//! within `expires` when none are. Shared by the readers and `seek_time`.

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use std::time::Duration;

/// How long past `expires` a pull request may stay unanswered before it counts as lost.
const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// Messages of one pull request and whether it ended as the server meant it to.
pub(super) struct Fetched {
    /// Delivered messages, in order.
    pub messages: Vec<jetstream::Message>,
    /// False when the request failed after some messages, or may have stopped at `max_bytes`:
    /// nats-server can keep such a request waiting and hand it later messages nobody receives
    /// (with no acks, lost to the reader), so the caller must recreate its consumer at its
    /// position before the next request.
    pub clean: bool,
}

/// Fetches what the consumer has, in delivery order. `max_bytes` 0 means no byte limit; a
/// positive one must be at least twice the server's `max_payload`.
///
/// # Errors
/// The server's or client's reason when the request failed before any message arrived (the
/// consumer may be gone).
pub(super) async fn fetch(
    consumer: &PullConsumer,
    max: usize,
    max_bytes: usize,
    expires: Duration,
) -> Result<Fetched, String> {
    let max = max.max(1);
    let mut batch = consumer
        .fetch()
        .max_messages(max)
        .max_bytes(max_bytes)
        .expires(expires)
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = Vec::new();
    // The server ends every request by `expires`; silence longer than that means nobody serves
    // the consumer any more (deleted for inactivity, server restarted), which the caller repairs.
    let silence = expires + ANSWER_GRACE;
    loop {
        let item = match tokio::time::timeout(silence, batch.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(_) if messages.is_empty() => {
                return Err(format!("no answer to a pull request within {silence:?}"));
            }
            Err(_) => {
                return Ok(Fetched {
                    messages,
                    clean: false,
                });
            }
        };
        match item {
            Ok(m) => messages.push(m),
            Err(e) if messages.is_empty() => return Err(e.to_string()),
            Err(e) => {
                tracing::debug!(error = %e, got = messages.len(), "pull request ended early");
                return Ok(Fetched {
                    messages,
                    clean: false,
                });
            }
        }
    }
    // A byte-limited request got within one message of its limit; one message is at most half
    // of it, so a short batch with less than half the bytes ended for another reason.
    let bytes: usize = messages.iter().map(|m| m.length).sum();
    let byte_limited = max_bytes > 0 && messages.len() < max && bytes >= max_bytes / 2;
    Ok(Fetched {
        messages,
        clean: !byte_limited,
    })
}

/// The stream sequence of a delivered message.
pub(super) fn stream_seq(m: &jetstream::Message) -> Result<u64, String> {
    stream_meta(m).map(|(seq, _)| seq)
}

/// The stream sequence of a delivered message and when the server stored it (Unix ms, 0 if
/// before the epoch).
pub(super) fn stream_meta(m: &jetstream::Message) -> Result<(u64, i64), String> {
    let info = m
        .info()
        .map_err(|e| format!("delivered message without JetStream metadata: {e}"))?;
    let stored = std::time::SystemTime::from(info.published)
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ok((info.stream_sequence, stored))
}
