//! The sequential reader: an ephemeral pull consumer without acks, starting at the reader's
//! position, fetched in large batches and handed out from a bounded buffer. If the server drops
//! the consumer (idle past `reader_inactive_threshold`, server restart) the reader recreates it
//! at its position, so it neither skips nor repeats.

use super::fetch::{fetch, stream_meta};
use super::record;
use crate::{LogError, LogReader, Record};
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::Stream;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::time::Duration;

/// Reader limits, from [`super::NatsConfig`].
#[derive(Debug, Clone)]
pub(super) struct ReaderLimits {
    pub fetch_batch: usize,
    pub fetch_max_bytes: usize,
    pub idle_wait: Duration,
    pub inactive_threshold: Duration,
}

/// A reader over the NATS log; see [`crate::EventLog::reader`].
pub struct NatsReader {
    stream: Stream,
    limits: ReaderLimits,
    consumer: Option<PullConsumer>,
    pos: u64,
    buf: VecDeque<Record>,
    /// An error met after the buffered records; returned once they are handed out.
    deferred: Option<LogError>,
}

impl std::fmt::Debug for NatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsReader")
            .field("stream", &self.stream.cached_info().config.name)
            .field("position", &self.pos)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl NatsReader {
    pub(super) fn new(stream: Stream, limits: ReaderLimits, from: u64) -> NatsReader {
        NatsReader {
            stream,
            limits,
            consumer: None,
            pos: from.max(1),
            buf: VecDeque::new(),
            deferred: None,
        }
    }

    fn name(&self) -> &str {
        &self.stream.cached_info().config.name
    }

    async fn consumer(&mut self) -> Result<PullConsumer, LogError> {
        if let Some(c) = &self.consumer {
            return Ok(c.clone());
        }
        let deliver_policy = if self.pos <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: self.pos,
            }
        };
        let c: PullConsumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                deliver_policy,
                ack_policy: AckPolicy::None,
                inactive_threshold: self.limits.inactive_threshold,
                memory_storage: true,
                description: Some("aiops log reader".to_string()),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                LogError::Unavailable(format!(
                    "cannot create a reader on JetStream stream {}: {e}",
                    self.name()
                ))
            })?;
        self.consumer = Some(c.clone());
        Ok(c)
    }

    /// Fills the buffer with what the server has from `pos` on (nothing at the end).
    async fn fill(&mut self) -> Result<(), LogError> {
        let mut last_err = String::new();
        for attempt in 0..2 {
            let c = self.consumer().await?;
            match fetch(
                &c,
                self.limits.fetch_batch,
                self.limits.fetch_max_bytes,
                self.limits.idle_wait,
            )
            .await
            {
                Ok(fetched) => {
                    let name = self.name().to_string();
                    if !fetched.clean {
                        self.drop_consumer();
                    }
                    for m in fetched.messages {
                        let meta = stream_meta(&m).map_err(LogError::Unavailable)?;
                        let seq = meta.0;
                        if seq < self.pos {
                            continue;
                        }
                        let m = m.split().0;
                        let r = record::to_record(
                            &name,
                            meta,
                            m.subject.as_str(),
                            m.headers.as_ref(),
                            m.payload,
                        );
                        match r {
                            Ok(r) => self.buf.push_back(r),
                            Err(e) => {
                                // Serve what came before it, then fail at it every time: the
                                // recreated consumer starts there again, nothing is skipped.
                                self.drop_consumer();
                                if self.buf.is_empty() {
                                    return Err(e);
                                }
                                self.deferred = Some(e);
                                return Ok(());
                            }
                        }
                    }
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(error = %e, attempt, position = self.pos, "reader fetch failed; recreating its consumer");
                    last_err = e;
                    self.drop_consumer();
                }
            }
        }
        Err(LogError::Unavailable(format!(
            "reading JetStream stream {} at sequence {}: {last_err}",
            self.name(),
            self.pos
        )))
    }

    /// Deletes the server-side consumer in the background (best effort: the inactivity
    /// threshold removes it anyway).
    fn drop_consumer(&mut self) {
        if let Some(c) = self.consumer.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let stream = self.stream.clone();
            let name = c.cached_info().name.clone();
            rt.spawn(async move {
                let _ = stream.delete_consumer(&name).await;
            });
        }
    }
}

impl Drop for NatsReader {
    fn drop(&mut self) {
        self.drop_consumer();
    }
}

#[async_trait]
impl LogReader for NatsReader {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Record>, LogError> {
        if self.buf.is_empty() {
            if let Some(e) = self.deferred.take() {
                return Err(e);
            }
            self.fill().await?;
        }
        let n = max.min(self.buf.len());
        let out: Vec<Record> = self.buf.drain(..n).collect();
        if let Some(last) = out.last() {
            self.pos = last.seq + 1;
        }
        Ok(out)
    }

    fn position(&self) -> u64 {
        self.pos
    }
}
