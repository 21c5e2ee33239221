//! Appending: every message of a call is published in order on the one connection (so the server
//! stores them in that order), with at most `max_inflight` acknowledgements outstanding over all
//! calls; then the acks are awaited in order.

use super::record;
use crate::{AppendMessage, Appended, Fence, LogError};
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// What an append needs from the log.
pub(super) struct Publisher<'a> {
    pub js: &'a async_nats::jetstream::Context,
    pub inflight: &'a Arc<Semaphore>,
    pub url: &'a str,
    pub max_payload: usize,
}

type Pending = (PublishAckFuture, OwnedSemaphorePermit);

/// Store only if the last message on the subject named by the next header has this sequence.
const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";
/// The subject the expected-last-subject-sequence check applies to (instead of the message's
/// own subject).
const EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT: &str = "Nats-Expected-Last-Subject-Sequence-Subject";

impl Publisher<'_> {
    /// Publishes `msgs` in order and returns their outcomes in the same order.
    ///
    /// # Errors
    /// [`LogError::InvalidMessage`] before anything is sent when one message is bad or larger
    /// than the server accepts; [`LogError::Unavailable`] when a publish is not acknowledged in
    /// time (any subset may then be stored; a retry with the same ids is safe);
    /// [`LogError::Closed`] when the log closed meanwhile.
    /// With a `fence`, every message carries JetStream's expected-last-subject-sequence check
    /// on the fence subject (`Nats-Expected-Last-Subject-Sequence` with
    /// `Nats-Expected-Last-Subject-Sequence-Subject`, nats-server 2.11 and later): the server
    /// stores it only while the fence message is still the last on that subject. Fenced
    /// messages are sent one at a time (see below), so every one of them is checked.
    pub async fn append(
        &self,
        msgs: Vec<AppendMessage>,
        fence: Option<&Fence>,
    ) -> Result<Vec<Appended>, LogError> {
        for m in &msgs {
            crate::validate(m)?;
            // A fence adds its two headers ("Name: value\r\n" each, 20 digits bound a u64).
            let size = record::wire_size(m)
                + fence.map_or(0, |f| {
                    EXPECTED_LAST_SUBJECT_SEQUENCE.len()
                        + 24
                        + EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT.len()
                        + f.subject.len()
                        + 4
                });
            if self.max_payload > 0 && size > self.max_payload {
                return Err(LogError::InvalidMessage(format!(
                    "message {} is {size} bytes, more than the NATS server's max_payload of {}",
                    m.msg_id, self.max_payload
                )));
            }
        }
        let mut out = Vec::with_capacity(msgs.len());
        let mut pending: VecDeque<Pending> = VecDeque::new();
        for m in msgs {
            let permit = loop {
                match self.inflight.clone().try_acquire_owned() {
                    Ok(p) => break p,
                    Err(TryAcquireError::Closed) => return Err(LogError::Closed),
                    Err(TryAcquireError::NoPermits) => match pending.pop_front() {
                        // Free one of ours rather than wait on others while holding permits:
                        // that way concurrent calls cannot wait on each other forever.
                        Some(p) => out.push(self.ack(p, fence).await?),
                        None => {
                            break self
                                .inflight
                                .clone()
                                .acquire_owned()
                                .await
                                .map_err(|_| LogError::Closed)?;
                        }
                    },
                }
            };
            let mut headers = record::headers_for(&m);
            if let Some(f) = fence {
                headers.insert(EXPECTED_LAST_SUBJECT_SEQUENCE, f.seq.to_string().as_str());
                headers.insert(EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT, f.subject.as_str());
            }
            let fut = self
                .js
                .publish_with_headers(m.subject, headers, m.payload)
                .await
                .map_err(|e| self.unavailable(e.kind(), &e))?;
            pending.push_back((fut, permit));
            if fence.is_some() {
                // One fenced message in flight at a time: a clustered stream's leader refuses a
                // second publish whose expected-last-subject-sequence names a subject that
                // already has one in process ("last sequence by subject mismatch"), so fenced
                // publishes cannot be pipelined. Atomic batches (2.12) would restore that.
                if let Some(p) = pending.pop_front() {
                    out.push(self.ack(p, fence).await?);
                }
            }
        }
        while let Some(p) = pending.pop_front() {
            out.push(self.ack(p, fence).await?);
        }
        Ok(out)
    }

    async fn ack(
        &self,
        (fut, _permit): Pending,
        fence: Option<&Fence>,
    ) -> Result<Appended, LogError> {
        let ack = fut.await.map_err(|e| match (e.kind(), fence) {
            (PublishErrorKind::WrongLastSequence, Some(f)) => LogError::Fenced {
                subject: f.subject.clone(),
                detail: format!("our fence is at {}; the server said: {e}", f.seq),
            },
            (kind, _) => self.unavailable(kind, &e),
        })?;
        Ok(Appended {
            seq: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    fn unavailable(&self, kind: PublishErrorKind, e: &dyn std::fmt::Display) -> LogError {
        let why = match kind {
            PublishErrorKind::TimedOut => "no acknowledgement in time".to_string(),
            PublishErrorKind::StreamNotFound => {
                "no JetStream stream takes the subject (was the stream deleted?)".to_string()
            }
            _ => e.to_string(),
        };
        LogError::Unavailable(format!("JetStream publish to {}: {why}", self.url))
    }
}
