//! NATS JetStream backend: the log is one JetStream stream (default `AIOPS`, subjects `aiops.>`,
//! file storage), and the stream sequence is the log sequence.
//!
//! - [`config`]: [`NatsConfig`], the stream's limits and the client's.
//! - `connect`: connection, the JetStream check, creating or updating the stream.
//! - `durability`: what an acknowledged append survives on this server.
//! - `publish`: appends (ordered publishes, bounded outstanding acks, JetStream de-duplication
//!   by the `Nats-Msg-Id` header).
//! - `record`: the headers carrying message id and event-time range.
//! - [`reader`]: sequential reads through an ephemeral pull consumer; [`durable`]: named,
//!   acknowledged reads for scale-out workers.
//! - `seek`: `seek_time` by a headers-only scan (why: see that module).
//! - `wake`: the wake-up signal of [`EventLog::subscribe`], a background task with an ordered,
//!   headers-only push consumer that bumps a `watch` channel when stored messages are delivered
//!   (started at connect, aborted on close or drop, re-created with backoff when it fails).

pub mod config;
mod connect;
mod coord;
mod durability;
pub mod durable;
mod fetch;
mod publish;
pub mod reader;
mod record;
mod seek;
mod wake;

pub use config::NatsConfig;
pub use durable::DurableReader;
pub use reader::NatsReader;

use crate::{
    AppendMessage, Appended, Coordination, EventLog, Fence, LogError, LogReader, LogStats,
};
use async_nats::jetstream::{self, stream::Stream};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Semaphore;

/// The event log on a NATS JetStream server (or cluster).
pub struct NatsLog {
    cfg: NatsConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: Stream,
    /// Publishes awaiting acks, over all appends (`max_inflight`).
    inflight: Arc<Semaphore>,
    closed: AtomicBool,
    durability: durability::Durability,
    /// The wake-up signal; its sender is also held by the watcher task.
    notify: tokio::sync::watch::Sender<u64>,
    /// The watcher task, aborted on close and drop so no task outlives the log.
    watcher: tokio::task::AbortHandle,
}

impl std::fmt::Debug for NatsLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLog")
            .field("url", &self.cfg.url)
            .field("stream", &self.cfg.stream)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl NatsLog {
    /// Connects, checks JetStream, and creates or opens the log stream.
    ///
    /// # Errors
    /// [`LogError::Unavailable`] naming the URL when the server cannot be reached;
    /// [`LogError::Config`] when the server has no JetStream, or the stream exists with settings
    /// that cannot serve as the log, or the server refuses the configured limits.
    pub async fn connect(cfg: NatsConfig) -> Result<NatsLog, LogError> {
        if cfg.max_inflight == 0 || cfg.fetch_batch == 0 {
            return Err(LogError::Config(
                "nats.max_inflight and nats.fetch_batch must be at least 1".to_string(),
            ));
        }
        let client = connect::client(&cfg).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(cfg.request_timeout)
            .ack_timeout(cfg.request_timeout)
            // Our own semaphore bounds what we await; the client's only has to exceed it (acks
            // of appends that failed half-way are still collected in the background).
            .max_ack_inflight(cfg.max_inflight.saturating_mul(4))
            .backpressure_on_inflight(true)
            .build(client.clone());
        let stream = connect::stream(&js, &cfg).await?;
        let info = client.server_info();
        let durability = durability::describe(&cfg, &info.version).await;
        tracing::info!(url = %cfg.url, stream = %cfg.stream, server_version = %info.version, replicas = cfg.replicas, sync_policy = ?durability.sync_policy, durability = %durability.sentence, "event log on NATS JetStream");
        let notify = tokio::sync::watch::Sender::new(
            stream.cached_info().state.last_sequence.saturating_add(1),
        );
        let watcher = wake::spawn(stream.clone(), client.clone(), notify.clone());
        Ok(NatsLog {
            notify,
            watcher,
            inflight: Arc::new(Semaphore::new(cfg.max_inflight)),
            cfg,
            client,
            js,
            stream,
            closed: AtomicBool::new(false),
            durability,
        })
    }

    /// A durable, acknowledged reader named `name` over `filter_subject` (`aiops.metrics.*`, or
    /// empty for all): what scale-out workers use to split partitions. The server keeps its
    /// position; reopening the same name resumes after the last acknowledged batch.
    ///
    /// # Errors
    /// [`LogError::Config`] when the name is refused or exists with another filter;
    /// [`LogError::Unavailable`] when the server does not answer.
    pub async fn durable_reader(
        &self,
        name: &str,
        filter_subject: &str,
    ) -> Result<DurableReader, LogError> {
        self.check_open()?;
        DurableReader::open(
            &self.stream,
            name,
            filter_subject,
            self.cfg.fetch_batch,
            self.cfg.idle_wait,
        )
        .await
    }

    fn publisher(&self) -> publish::Publisher<'_> {
        publish::Publisher {
            js: &self.js,
            inflight: &self.inflight,
            url: &self.cfg.url,
            max_payload: self.client.server_info().max_payload,
        }
    }

    fn check_open(&self) -> Result<(), LogError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        Ok(())
    }

    /// Bytes per pull request: the configured bound, but never below what one message can be,
    /// or a large message would block the reader.
    fn fetch_max_bytes(&self) -> usize {
        self.cfg
            .fetch_max_bytes
            .max(self.client.server_info().max_payload.saturating_mul(2))
    }
}

#[async_trait]
impl EventLog for NatsLog {
    async fn append(&self, msgs: Vec<AppendMessage>) -> Result<Vec<Appended>, LogError> {
        self.check_open()?;
        self.publisher().append(msgs, None).await
    }

    async fn append_fenced(
        &self,
        msgs: Vec<AppendMessage>,
        fence: &Fence,
    ) -> Result<Vec<Appended>, LogError> {
        self.check_open()?;
        self.publisher().append(msgs, Some(fence)).await
    }

    fn coordination(&self) -> Option<Arc<dyn Coordination>> {
        Some(Arc::new(coord::NatsCoordination {
            js: self.js.clone(),
            replicas: self.cfg.replicas,
            url: self.cfg.url.clone(),
        }))
    }

    async fn reader(&self, from: u64) -> Result<Box<dyn LogReader>, LogError> {
        self.check_open()?;
        let limits = reader::ReaderLimits {
            fetch_batch: self.cfg.fetch_batch,
            fetch_max_bytes: self.fetch_max_bytes(),
            idle_wait: self.cfg.idle_wait,
            inactive_threshold: self.cfg.reader_inactive_threshold,
        };
        Ok(Box::new(NatsReader::new(self.stream.clone(), limits, from)))
    }

    async fn seek_time(&self, ts_ms: i64) -> Result<u64, LogError> {
        self.check_open()?;
        seek::seek_time(&self.stream, ts_ms, self.cfg.idle_wait).await
    }

    async fn stats(&self) -> Result<LogStats, LogError> {
        let info = self.stream.get_info().await.map_err(|e| {
            LogError::Unavailable(format!(
                "JetStream stream {} info at {}: {e}",
                self.cfg.stream, self.cfg.url
            ))
        })?;
        let s = &info.state;
        let next_seq = s.last_sequence + 1;
        let cluster = info.cluster.as_ref();
        Ok(LogStats {
            backend: "nats".to_string(),
            first_seq: if s.messages == 0 {
                next_seq
            } else {
                s.first_sequence
            },
            next_seq,
            messages: s.messages,
            bytes: s.bytes,
            durability: self.durability.sentence.clone(),
            replicas: Some(info.config.num_replicas),
            sync_policy: self.durability.sync_policy.clone(),
            cluster: cluster.and_then(|c| c.name.clone()),
            leader: cluster.and_then(|c| c.leader.clone()),
            cluster_peers: cluster.map(peers).unwrap_or_default(),
            server: Some(self.client.server_info().server_name),
        })
    }

    async fn close(&self) -> Result<(), LogError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inflight.close();
        // Before draining: a drained subscription would only make the watcher start over.
        self.watcher.abort();
        self.client.drain().await.map_err(|e| {
            LogError::Unavailable(format!(
                "draining the NATS connection to {}: {e}",
                self.cfg.url
            ))
        })
    }

    /// Bumped by the watcher task (module `wake`) when the server delivers stored messages. A
    /// log written by other processes or nodes wakes its consumers too: the watcher sees every
    /// message of the stream.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }
}

/// The stream's replicas from its cluster info: the leader (which reports the others, so it is
/// current by definition), then the followers by name.
fn peers(c: &jetstream::stream::ClusterInfo) -> Vec<crate::ClusterPeer> {
    let mut peers: Vec<crate::ClusterPeer> = c
        .leader
        .iter()
        .map(|name| crate::ClusterPeer {
            name: name.clone(),
            leader: true,
            current: true,
            offline: false,
            lag: Some(0),
            active_ms: 0,
        })
        .collect();
    let mut followers: Vec<crate::ClusterPeer> = c
        .replicas
        .iter()
        .map(|p| crate::ClusterPeer {
            name: p.name.clone(),
            leader: false,
            current: p.current,
            offline: p.offline,
            lag: p.lag,
            active_ms: u64::try_from(p.active.as_millis()).unwrap_or(u64::MAX),
        })
        .collect();
    followers.sort_by(|a, b| a.name.cmp(&b.name));
    peers.extend(followers);
    peers
}

impl Drop for NatsLog {
    fn drop(&mut self) {
        // The task holds clones of the stream and client: without this it would keep the
        // connection busy after the log is gone.
        self.watcher.abort();
    }
}
