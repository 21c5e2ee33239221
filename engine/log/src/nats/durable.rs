//! The durable reader scale-out workers use: a named pull consumer the server keeps, so a worker
//! that restarts (or another one taking over its partitions) resumes where the last
//! acknowledgement left off. Delivery is at least once: what a worker was handed but had not
//! acknowledged is delivered again.

use super::fetch::{fetch, stream_meta};
use super::record;
use crate::{LogError, LogReader, Record};
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, stream::Stream};
use async_trait::async_trait;
use std::time::Duration;

/// A reader whose position the server keeps under a name. Each [`LogReader::next_batch`] first
/// acknowledges everything the previous call returned (one `AckAll` for the batch), so "asking
/// for more" means "done with the last batch". Call [`DurableReader::ack_returned`] before a
/// clean shutdown to keep the last batch from being delivered again.
///
/// One reader per name at a time: opening a name takes it over, and what the previous holder
/// was handed but had not acknowledged is delivered again, in sequence order. Records come in
/// sequence order; [`LogReader::position`] is the acknowledged floor + 1 after opening, then
/// the sequence after the last returned record (the next one of the filter is at or after it).
pub struct DurableReader {
    consumer: PullConsumer,
    stream_name: String,
    pos: u64,
    /// The last message returned, not yet acknowledged.
    unacked: Option<jetstream::Message>,
    idle_wait: Duration,
}

impl std::fmt::Debug for DurableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableReader")
            .field("consumer", &self.consumer.cached_info().name)
            .field("position", &self.pos)
            .finish()
    }
}

impl DurableReader {
    /// Opens (or creates, delivering from the start of the stream) the durable consumer `name`
    /// over `filter_subject` (e.g. `aiops.metrics.*`; empty for the whole log).
    pub(super) async fn open(
        stream: &Stream,
        name: &str,
        filter_subject: &str,
        fetch_batch: usize,
        idle_wait: Duration,
    ) -> Result<DurableReader, LogError> {
        let stream_name = stream.cached_info().config.name.clone();
        let config = consumer::pull::Config {
            durable_name: Some(name.to_string()),
            description: Some("aiops durable reader".to_string()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::All,
            filter_subject: filter_subject.to_string(),
            // Room for a few full batches between acknowledgements.
            max_ack_pending: i64::try_from(fetch_batch.saturating_mul(4)).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let open_err = |e: String| {
            LogError::Config(format!(
                "cannot open durable consumer {name:?} on JetStream stream {stream_name}: {e}"
            ))
        };
        let mut consumer: PullConsumer = stream
            .get_or_create_consumer(name, config.clone())
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let mut info = consumer
            .info()
            .await
            .map_err(|e| LogError::Unavailable(format!("durable consumer {name:?} info: {e}")))?
            .clone();
        if info.config.filter_subject != filter_subject {
            return Err(LogError::Config(format!(
                "durable consumer {name:?} on stream {stream_name} exists with filter {:?}, not \
                 {filter_subject:?}: use another name or delete it",
                info.config.filter_subject
            )));
        }
        if info.delivered.stream_sequence > info.ack_floor.stream_sequence {
            // The previous holder was handed messages it did not acknowledge. JetStream would
            // redeliver them only after `ack_wait`, behind newer ones; recreating the consumer at
            // the acknowledged floor hands them out again now and in order.
            let floor = info.ack_floor.stream_sequence;
            tracing::info!(consumer = name, stream = %stream_name, ack_floor = floor, delivered = info.delivered.stream_sequence, "durable reader taken over; redelivering from the acknowledged floor");
            stream
                .delete_consumer(name)
                .await
                .map_err(|e| open_err(e.to_string()))?;
            let restart = consumer::pull::Config {
                deliver_policy: if floor == 0 {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::ByStartSequence {
                        start_sequence: floor + 1,
                    }
                },
                ..config
            };
            consumer = stream
                .create_consumer(restart)
                .await
                .map_err(|e| open_err(e.to_string()))?;
            info = consumer.cached_info().clone();
            info.ack_floor.stream_sequence = floor;
        }
        let pos = info.ack_floor.stream_sequence + 1;
        Ok(DurableReader {
            consumer,
            stream_name,
            pos,
            unacked: None,
            idle_wait,
        })
    }

    /// Acknowledges everything returned so far and waits for the server to confirm it.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] when the server does not confirm; the batch may then be
    /// delivered again.
    pub async fn ack_returned(&mut self) -> Result<(), LogError> {
        if let Some(m) = self.unacked.take()
            && let Err(e) = m.double_ack().await
        {
            let e = LogError::Unavailable(format!(
                "acknowledging up to sequence {} on stream {}: {e}",
                self.pos.saturating_sub(1),
                self.stream_name
            ));
            self.unacked = Some(m);
            return Err(e);
        }
        Ok(())
    }
}

#[async_trait]
impl LogReader for DurableReader {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Record>, LogError> {
        self.ack_returned().await?;
        // No byte limit: a request stopped by one could stay waiting at the server and take
        // later messages to an inbox nobody reads, which would come back only after ack_wait.
        // The caller's `max` bounds the batch instead.
        let fetched = fetch(&self.consumer, max, 0, self.idle_wait)
            .await
            .map_err(|e| {
                LogError::Unavailable(format!(
                    "reading durable consumer {} on stream {}: {e}",
                    self.consumer.cached_info().name,
                    self.stream_name
                ))
            })?;
        let mut out = Vec::with_capacity(fetched.messages.len());
        for m in fetched.messages {
            let meta = stream_meta(&m).map_err(LogError::Unavailable)?;
            let seq = meta.0;
            if seq >= self.pos {
                // Earlier ones are redeliveries of what was already handed out.
                out.push(record::to_record(
                    &self.stream_name,
                    meta,
                    m.subject.as_str(),
                    m.headers.as_ref(),
                    m.payload.clone(),
                )?);
                self.pos = seq + 1;
            }
            self.unacked = Some(m);
        }
        Ok(out)
    }

    fn position(&self) -> u64 {
        self.pos
    }
}
