//! The wake-up watcher behind [`crate::EventLog::subscribe`]: a background task holding an
//! ordered, headers-only push consumer on the log stream, which bumps a `watch` channel for
//! every batch of deliveries.
//!
//! Why a push consumer: JetStream delivers a message to consumers only after the stream stored
//! it, so when the signal fires the message is readable by every reader's pull consumer (no
//! lost wake-up), and an idle watcher costs the server one heartbeat every few seconds instead
//! of a polling request. Headers only, so it costs ~100 bytes a message, not the payload.
//!
//! Why `DeliverPolicy::Last` and not `New`: whenever the consumer is (re)created, the stream's
//! last message is delivered at once. An append that happened while no consumer existed (before
//! the first one, or between an error and the re-creation) is therefore still signalled, at the
//! price of one spurious wake-up per (re)creation. It also makes the ordered consumer know a
//! stream sequence right away, so its own recovery (after a connection loss) resumes after it
//! instead of from the start of the stream.
//!
//! The task never touches appends, so a slow or broken watcher cannot hold them up; it is
//! aborted when the log is closed or dropped.

use futures::StreamExt;
use std::time::Duration;
use tokio::sync::watch;

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::{Consumer, DeliverPolicy};
use async_nats::jetstream::stream::Stream;

/// First delay before re-creating a failed watcher.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between attempts while the server stays unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Deliveries coalesced into one bump at most (all that are already received, up to this).
const CHUNK: usize = 1024;

/// Starts the watcher for `stream`; it bumps `notify` until aborted.
pub(super) fn spawn(
    stream: Stream,
    client: async_nats::Client,
    notify: watch::Sender<u64>,
) -> tokio::task::AbortHandle {
    tokio::spawn(run(stream, client, notify)).abort_handle()
}

async fn run(stream: Stream, client: async_nats::Client, notify: watch::Sender<u64>) {
    let name = stream.cached_info().config.name.clone();
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut established = false;
        let err = watch_once(&stream, &client, &notify, &mut established).await;
        if established {
            backoff = MIN_BACKOFF;
        }
        tracing::warn!(
            stream = %name,
            error = %err,
            retry_in_ms = backoff.as_millis() as u64,
            "log wake-up watcher stopped; re-creating it (idle consumers rely on their fallback timeout meanwhile)"
        );
        // Appends may have gone unseen while it was down: wake consumers so they look. A
        // spurious wake-up costs one empty read.
        notify.send_modify(|_| {});
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Runs one watcher consumer until it fails, and says why. `established` is set once the
/// consumer delivers, so the caller can reset its backoff.
async fn watch_once(
    stream: &Stream,
    client: &async_nats::Client,
    notify: &watch::Sender<u64>,
    established: &mut bool,
) -> String {
    let consumer: Consumer<OrderedConfig> = match stream
        .create_consumer(OrderedConfig {
            deliver_subject: client.new_inbox(),
            description: Some("aiops log wake-up watcher".to_string()),
            headers_only: true,
            deliver_policy: DeliverPolicy::Last,
            ..Default::default()
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return format!("creating the watcher consumer: {e}"),
    };
    let messages = match consumer.messages().await {
        Ok(m) => m,
        Err(e) => return format!("subscribing the watcher consumer: {e}"),
    };
    let mut chunks = messages.ready_chunks(CHUNK);
    while let Some(chunk) = chunks.next().await {
        let mut next_seq = None;
        let mut failed = None;
        for item in chunk {
            match item {
                Ok(m) => {
                    *established = true;
                    if let Ok(info) = m.info() {
                        next_seq = next_seq.max(Some(info.stream_sequence.saturating_add(1)));
                    }
                }
                // The ordered consumer would repair itself, but an error that repeats at once
                // (a dropped connection-state watcher) would spin here: start over with backoff.
                Err(e) => failed = Some(e.to_string()),
            }
        }
        // One bump per received batch; the value only grows, the version always changes.
        notify.send_modify(|v| {
            if let Some(n) = next_seq {
                *v = (*v).max(n);
            }
        });
        if let Some(e) = failed {
            return format!("watcher consumer: {e}");
        }
    }
    "watcher subscription ended".to_string()
}
