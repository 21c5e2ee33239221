//! `seek_time` on JetStream: a scan of message headers only.
//!
//! JetStream's own time index (`DeliverPolicy::ByStartTime`) is arrival time, not event time, so
//! it cannot answer. Event times are in each message's `Aiops-Time-Max` header, which is not
//! monotone in sequence order (late data), so a binary search over sequences would be wrong. The
//! scan reads headers only (a `headers_only` consumer: ~100 bytes a message, no payloads) from
//! the first stored sequence and stops at the first message with `time_max >= ts`, which is the
//! answer: everything before it ended before `ts`. Cost: proportional to the messages before
//! the answer; an index kept beside the stream would make it logarithmic (not built).

use super::fetch::{fetch, stream_seq};
use super::record;
use crate::LogError;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::Stream;
use std::time::Duration;

/// Headers per pull request.
const BATCH: usize = 10_000;

/// The first sequence whose message has `time_max >= ts_ms`, or the next sequence if none has.
pub(super) async fn seek_time(
    stream: &Stream,
    ts_ms: i64,
    idle_wait: Duration,
) -> Result<u64, LogError> {
    let name = stream.cached_info().config.name.clone();
    let unavailable =
        |e: String| LogError::Unavailable(format!("seek_time on JetStream stream {name}: {e}"));
    let info = stream
        .get_info()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let last = info.state.last_sequence;
    if info.state.messages == 0 {
        return Ok(last + 1);
    }
    let c: PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            headers_only: true,
            memory_storage: true,
            inactive_threshold: Duration::from_secs(30),
            description: Some("aiops seek_time".to_string()),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let result = scan(&c, &name, ts_ms, last, idle_wait).await;
    let consumer_name = c.cached_info().name.clone();
    let _ = stream.delete_consumer(&consumer_name).await;
    result.map_err(|e| match e {
        LogError::Unavailable(m) => unavailable(m),
        other => other,
    })
}

async fn scan(
    c: &PullConsumer,
    stream: &str,
    ts_ms: i64,
    last: u64,
    idle_wait: Duration,
) -> Result<u64, LogError> {
    loop {
        let fetched = fetch(c, BATCH, 64 << 20, idle_wait)
            .await
            .map_err(LogError::Unavailable)?;
        if fetched.messages.is_empty() {
            // Retention removed the rest meanwhile: nothing stored up to `last` reaches `ts`.
            return Ok(last + 1);
        }
        for m in &fetched.messages {
            let seq = stream_seq(m).map_err(LogError::Unavailable)?;
            if seq > last {
                return Ok(last + 1);
            }
            if record::time_max(stream, seq, m.headers.as_ref())? >= ts_ms {
                return Ok(seq);
            }
            if seq == last {
                return Ok(last + 1);
            }
        }
        if !fetched.clean {
            // Sent-but-lost headers would be skipped silently; start over rather than guess.
            return Err(LogError::Unavailable(
                "headers scan interrupted".to_string(),
            ));
        }
    }
}
