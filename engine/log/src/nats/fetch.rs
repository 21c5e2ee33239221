//! One pull request: up to `max` messages that are available now, or the first ones to arrive
//! within `expires` when none are. Shared by the readers and `seek_time`.

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use std::time::Duration;

/// Messages of one pull request and whether it ended as the server meant it to.
pub(super) struct Fetched {
    /// Delivered messages, in order.
    pub messages: Vec<jetstream::Message>,
    /// False when the request failed after some messages: with no acks the server counts sent
    /// messages as delivered, so the caller must recreate its consumer at its position.
    pub clean: bool,
}

/// Fetches what the consumer has, in delivery order.
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
    let mut batch = consumer
        .fetch()
        .max_messages(max.max(1))
        .max_bytes(max_bytes)
        .expires(expires)
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = Vec::new();
    while let Some(item) = batch.next().await {
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
    Ok(Fetched {
        messages,
        clean: true,
    })
}

/// The stream sequence of a delivered message.
pub(super) fn stream_seq(m: &jetstream::Message) -> Result<u64, String> {
    m.info()
        .map(|i| i.stream_sequence)
        .map_err(|e| format!("delivered message without JetStream metadata: {e}"))
}
