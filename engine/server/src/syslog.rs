//! Syslog listeners (`[syslog]`): RFC 5424 and RFC 3164 over UDP and TCP (LF or octet-counted
//! framing, RFC 6587) into the log, through the same [`Ingestor`] as the HTTP routes.
//!
//! Parsing and framing are the connector's (`aiops_connectors::sources::syslog`); this module
//! owns the sockets, the limits and the batching:
//! - **Batches.** Each connection (and the UDP socket) collects messages into one log batch and
//!   hands it on after `batch_lines` messages, `batch_bytes` bytes or `batch_timeout`, whichever
//!   comes first. One appender task takes every batch waiting (from all connections) and
//!   appends them in one [`Ingestor::ingest`] call, so many quiet senders cost one append, not
//!   one each. Retried batches keep their message ids (stored once).
//! - **Backpressure.** The hand-over queue is bounded ([`QUEUE`] batches). While the log pushes
//!   back (consumer lag, appends in flight) the appender retries the same batches and the queue
//!   fills; a TCP connection then waits to hand over its batch and stops reading — the kernel's
//!   window closes and the sender slows down. Nothing is buffered without bound. UDP cannot
//!   push back: a batch that finds the queue full is dropped and counted
//!   (`aiops_syslog_dropped_lines_total{transport="udp",reason="backpressure"}`), as are
//!   datagrams the kernel drops before aiops reads them (not visible here: see
//!   `netstat -su` "receive buffer errors").
//! - **Limits.** A message longer than `max_line_bytes` is cut to that length (kept, marked
//!   `syslog.truncated=true`, counted); the rest of it is read and thrown away without being
//!   buffered. At most `max_connections` TCP connections are open; a connection beyond is
//!   closed at once and counted. A connection that delivers no complete message for
//!   `idle_timeout` is closed (a slow or stalled sender cannot hold a slot longer).
//!   Memory is therefore bounded by `max_connections × (max_line_bytes + 64 KiB read buffer +
//!   one batch)` plus [`QUEUE`] batches.
//! - **Shutdown.** On stop, every connection hands over what it collected, the appender appends
//!   what is queued (retrying for at most [`SHUTDOWN_GRACE`]), then the log is closed.
//!
//! Counters: `aiops_syslog_*` on `/metrics` ([`SyslogMetrics`]); stored rows also count in
//! `aiops_ingest_events_total{kind="logs",source="syslog"}`.

use crate::clock;
use crate::ingest::{IdBasis, Ingestor};
use crate::server::ServerError;
use aiops_connectors::sources::SourceBatch;
use aiops_connectors::sources::syslog::{
    Framer, LineCounts, LineMeta, SyslogBatchBuilder, SyslogSettings, Transport,
};
use bytes::{Buf, BytesMut};
use serde::Deserialize;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Batches waiting for the appender; a full queue is what stops TCP reads (backpressure).
pub const QUEUE: usize = 16;
/// Most batches the appender takes into one append.
const GROUP: usize = 16;
/// How long the appender keeps retrying queued batches after the stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Bytes read from a TCP connection at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Datagrams read per wake-up of the UDP task before it looks at its timers again.
const UDP_BURST: usize = 256;

/// `[syslog]`: the syslog listeners. Both are off until an address is given.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// UDP address to receive syslog datagrams on (one message each, RFC 5426), e.g.
    /// `0.0.0.0:5514`. Default: off.
    pub udp_listen: Option<SocketAddr>,
    /// TCP address for syslog streams (RFC 6587: LF or octet-counted framing, detected per
    /// message), e.g. `0.0.0.0:5514`. Default: off.
    pub tcp_listen: Option<SocketAddr>,
    /// Longest message, bytes; a longer one is cut to this length, kept with
    /// `syslog.truncated=true` and counted. Default 65536.
    pub max_line_bytes: usize,
    /// TCP connections open at once; a connection beyond is closed at once and counted.
    /// Default 256.
    pub max_connections: usize,
    /// A TCP connection that delivers no complete message for this long is closed. Default 10m.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A batch is appended after this many messages. Default 1000.
    pub batch_lines: usize,
    /// … or this many message bytes. Default 262144.
    pub batch_bytes: usize,
    /// … or this long after its first message. Default 200ms.
    #[serde(with = "humantime_serde")]
    pub batch_timeout: Duration,
    /// The zone of RFC 3164 timestamps, which carry none: `UTC` or a fixed offset such as
    /// `+08:00`. Default `UTC`.
    pub rfc3164_timezone: String,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            udp_listen: None,
            tcp_listen: None,
            max_line_bytes: 64 * 1024,
            max_connections: 256,
            idle_timeout: Duration::from_secs(600),
            batch_lines: 1000,
            batch_bytes: 256 * 1024,
            batch_timeout: Duration::from_millis(200),
            rfc3164_timezone: "UTC".to_string(),
        }
    }
}

impl SyslogConfig {
    /// Values that parse but cannot work, each naming its key (none = valid).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(64..=(16 << 20)).contains(&self.max_line_bytes) {
            p.push(format!(
                "syslog.max_line_bytes = {} (must be 64..=16777216)",
                self.max_line_bytes
            ));
        }
        for (name, zero) in [
            ("syslog.max_connections", self.max_connections == 0),
            ("syslog.batch_lines", self.batch_lines == 0),
            ("syslog.batch_bytes", self.batch_bytes == 0),
            ("syslog.idle_timeout", self.idle_timeout.is_zero()),
            ("syslog.batch_timeout", self.batch_timeout.is_zero()),
        ] {
            if zero {
                p.push(format!("{name} must be above 0"));
            }
        }
        if let Err(e) = self.rfc3164_offset_secs() {
            p.push(e);
        }
        p
    }

    /// `rfc3164_timezone` as seconds east of UTC.
    ///
    /// # Errors
    /// A message naming the key and the accepted forms.
    pub fn rfc3164_offset_secs(&self) -> Result<i32, String> {
        let tz = self.rfc3164_timezone.trim();
        if tz.eq_ignore_ascii_case("utc") || tz == "Z" || tz.is_empty() {
            return Ok(0);
        }
        let bad = || {
            format!(
                "syslog.rfc3164_timezone = {tz:?} (must be \"UTC\" or an offset such as \"+08:00\" or \"-05:00\")"
            )
        };
        let b = tz.as_bytes();
        let sign = match b.first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(bad()),
        };
        if b.len() != 6 || b[3] != b':' {
            return Err(bad());
        }
        let h: i32 = tz[1..3].parse().map_err(|_| bad())?;
        let m: i32 = tz[4..6].parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(sign * (h * 3600 + m * 60))
    }

    /// Whether any listener is configured.
    pub fn enabled(&self) -> bool {
        self.udp_listen.is_some() || self.tcp_listen.is_some()
    }
}

/// Why a TCP connection ended, for `aiops_syslog_connections_closed_total{reason}`.
#[derive(Debug, Clone, Copy)]
enum Closed {
    /// The sender closed it.
    Eof,
    /// No complete message within `idle_timeout`.
    Idle,
    /// A read error (reset by the peer).
    Error,
    /// aiops is stopping.
    Shutdown,
}

const CLOSED: [&str; 4] = ["eof", "idle", "error", "shutdown"];

/// Why messages were dropped, for `aiops_syslog_dropped_lines_total{reason}`.
#[derive(Debug, Clone, Copy)]
enum Dropped {
    /// UDP: the hand-over queue was full (the log is behind).
    Backpressure,
    /// The log refused the batch with an error a retry cannot fix (see the error log line).
    LogRefused,
    /// Still refused (retryably) when the stop grace ran out.
    Shutdown,
}

const DROPPED: [&str; 3] = ["backpressure", "log_refused", "shutdown"];

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    }
}

const TRANSPORTS: [Transport; 2] = [Transport::Udp, Transport::Tcp];

/// The `aiops_syslog_*` counters; updated per batch or per connection, never per message.
#[derive(Debug, Default)]
pub struct SyslogMetrics {
    lines: [AtomicU64; 2],
    unparsed: [AtomicU64; 2],
    truncated: [AtomicU64; 2],
    time_replaced: [AtomicU64; 2],
    dropped: [[AtomicU64; 3]; 2],
    accepted: AtomicU64,
    refused: AtomicU64,
    closed: [AtomicU64; 4],
    open: AtomicU64,
    retries: AtomicU64,
}

impl SyslogMetrics {
    fn counted(&self, t: Transport, c: LineCounts) {
        let i = transport_index(t);
        self.lines[i].fetch_add(c.lines, Ordering::Relaxed);
        self.unparsed[i].fetch_add(c.unparsed, Ordering::Relaxed);
        self.truncated[i].fetch_add(c.truncated, Ordering::Relaxed);
        self.time_replaced[i].fetch_add(c.time_replaced, Ordering::Relaxed);
    }

    fn dropped(&self, t: Transport, why: Dropped, lines: u64) {
        self.dropped[transport_index(t)][why as usize].fetch_add(lines, Ordering::Relaxed);
    }

    fn closed(&self, why: Closed) {
        self.closed[why as usize].fetch_add(1, Ordering::Relaxed);
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Appends the Prometheus text exposition of the syslog counters to `s`.
    pub fn render(&self, s: &mut String) {
        let per_transport: [(&str, &str, &[AtomicU64; 2]); 4] = [
            (
                "aiops_syslog_lines_received_total",
                "Syslog messages received (each becomes one row), by transport.",
                &self.lines,
            ),
            (
                "aiops_syslog_unparsed_lines_total",
                "Messages without a syslog header, stored whole as the body (syslog.format=unparsed).",
                &self.unparsed,
            ),
            (
                "aiops_syslog_truncated_lines_total",
                "Messages longer than syslog.max_line_bytes, cut to it (syslog.truncated=true).",
                &self.truncated,
            ),
            (
                "aiops_syslog_time_replaced_total",
                "Messages whose timestamp was outside the ingest window and got the receive time.",
                &self.time_replaced,
            ),
        ];
        for (name, help, values) in per_transport {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            for t in TRANSPORTS {
                let v = values[transport_index(t)].load(Ordering::Relaxed);
                let _ = writeln!(s, "{name}{{transport=\"{}\"}} {v}", t.as_str());
            }
        }
        let _ = writeln!(
            s,
            "# HELP aiops_syslog_dropped_lines_total Received syslog messages not stored, by transport and reason.\n\
             # TYPE aiops_syslog_dropped_lines_total counter"
        );
        for t in TRANSPORTS {
            for (i, reason) in DROPPED.iter().enumerate() {
                let v = self.dropped[transport_index(t)][i].load(Ordering::Relaxed);
                let _ = writeln!(
                    s,
                    "aiops_syslog_dropped_lines_total{{transport=\"{}\",reason=\"{reason}\"}} {v}",
                    t.as_str()
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP aiops_syslog_connections_accepted_total TCP connections accepted.\n\
             # TYPE aiops_syslog_connections_accepted_total counter\n\
             aiops_syslog_connections_accepted_total {}\n\
             # HELP aiops_syslog_connections_refused_total TCP connections closed at once: syslog.max_connections were open.\n\
             # TYPE aiops_syslog_connections_refused_total counter\n\
             aiops_syslog_connections_refused_total {}\n\
             # HELP aiops_syslog_connections_open TCP connections open now.\n\
             # TYPE aiops_syslog_connections_open gauge\n\
             aiops_syslog_connections_open {}\n\
             # HELP aiops_syslog_append_retries_total Appends the log pushed back (retried with the same ids; TCP reads wait meanwhile).\n\
             # TYPE aiops_syslog_append_retries_total counter\n\
             aiops_syslog_append_retries_total {}\n\
             # HELP aiops_syslog_connections_closed_total TCP connections closed, by reason.\n\
             # TYPE aiops_syslog_connections_closed_total counter",
            self.accepted.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.open.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
        );
        for (i, reason) in CLOSED.iter().enumerate() {
            let _ = writeln!(
                s,
                "aiops_syslog_connections_closed_total{{reason=\"{reason}\"}} {}",
                self.closed[i].load(Ordering::Relaxed)
            );
        }
    }
}

/// One batch handed to the appender.
#[derive(Debug)]
struct Pending {
    batch: SourceBatch,
    lines: u64,
    transport: Transport,
}

/// What every listener task shares.
#[derive(Debug)]
struct Shared {
    cfg: SyslogConfig,
    settings: SyslogSettings,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Binds the configured listeners and spawns them and the appender into `tasks`; they stop
/// when `stop` turns true (after handing over and appending what they hold). Nothing is
/// spawned when no listener is configured.
///
/// # Errors
/// [`ServerError::Bind`] when an address cannot be bound.
pub async fn start(
    cfg: &SyslogConfig,
    ingestor: Arc<Ingestor>,
    metrics: Arc<crate::metrics::Metrics>,
    stop: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<(), ServerError> {
    if !cfg.enabled() {
        return Ok(());
    }
    let udp = match cfg.udp_listen {
        Some(addr) => Some(
            UdpSocket::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?,
        ),
        None => None,
    };
    let tcp = match cfg.tcp_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?,
        ),
        None => None,
    };
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        settings: SyslogSettings {
            // `problems()` refused a bad zone at load.
            rfc3164_offset_secs: cfg.rfc3164_offset_secs().unwrap_or(0),
            limits: ingestor.limits(usize::MAX),
        },
        metrics: metrics.clone(),
    });
    let (tx, rx) = mpsc::channel(QUEUE);
    tasks.spawn(append_loop(rx, ingestor, metrics, stop.clone()));
    if let Some(sock) = udp {
        tracing::info!(addr = %sock.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()), "syslog udp listening");
        tasks.spawn(udp_loop(sock, shared.clone(), tx.clone(), stop.clone()));
    }
    if let Some(listener) = tcp {
        tracing::info!(addr = %listener.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()), "syslog tcp listening");
        tasks.spawn(accept_loop(listener, shared, tx, stop));
    }
    Ok(())
}

/// Resolves when `stop` is (or turns) true, or when its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

/// Appends queued batches, several at once, retrying under backpressure; exits when every
/// sender is gone (all listeners and connections ended).
async fn append_loop(
    mut rx: mpsc::Receiver<Pending>,
    ingestor: Arc<Ingestor>,
    metrics: Arc<crate::metrics::Metrics>,
    stop: watch::Receiver<bool>,
) {
    let boot = clock::now_ms();
    let mut round: u64 = 0;
    let m = &metrics.syslog;
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        round += 1;
        // One key per group: a retry after a timeout stores each message once.
        let key = format!("syslog-{boot:x}-{round:x}");
        let batches: Vec<SourceBatch> = group.iter().map(|p| p.batch.clone()).collect();
        let mut backoff = Duration::from_millis(20);
        let mut give_up: Option<Instant> = None;
        loop {
            match ingestor
                .ingest(batches.clone(), IdBasis::ClientKey(&key))
                .await
            {
                Ok(_) => break,
                Err(e) if e.is_retryable() => {
                    m.retries.fetch_add(1, Ordering::Relaxed);
                    if *stop.borrow() {
                        let deadline =
                            *give_up.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
                        if Instant::now() >= deadline {
                            tracing::warn!(error = %e, batches = group.len(), "syslog batches still refused at shutdown; dropped");
                            for p in &group {
                                m.dropped(p.transport, Dropped::Shutdown, p.lines);
                            }
                            break;
                        }
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::error!(error = %e, reason = e.reason(), batches = group.len(), "the log refused syslog batches; dropped");
                    for p in &group {
                        m.dropped(p.transport, Dropped::LogRefused, p.lines);
                    }
                    break;
                }
            }
        }
    }
}

/// A batch being collected by one connection or the UDP socket.
struct Collector {
    shared: Arc<Shared>,
    transport: Transport,
    rows: SyslogBatchBuilder,
    started: Option<Instant>,
    tx: mpsc::Sender<Pending>,
}

impl Collector {
    fn new(shared: Arc<Shared>, transport: Transport, tx: mpsc::Sender<Pending>) -> Collector {
        Collector {
            rows: SyslogBatchBuilder::new(shared.settings),
            shared,
            transport,
            started: None,
            tx,
        }
    }

    fn push(&mut self, message: &[u8], meta: &LineMeta<'_>) {
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
        self.rows.push(message, meta);
    }

    fn full(&self) -> bool {
        self.rows.len() >= self.shared.cfg.batch_lines
            || self.rows.bytes() >= self.shared.cfg.batch_bytes
    }

    /// When the batch is due by time (`None` when empty).
    fn due(&self) -> Option<Instant> {
        self.started.map(|t| t + self.shared.cfg.batch_timeout)
    }

    /// Finishes the batch; `None` when it was empty or could not be built.
    fn take(&mut self) -> Option<Pending> {
        self.started = None;
        let m = &self.shared.metrics.syslog;
        match self.rows.finish() {
            Ok((batch, counts)) => {
                m.counted(self.transport, counts);
                batch.map(|batch| Pending {
                    batch,
                    lines: counts.lines,
                    transport: self.transport,
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "syslog batch could not be built (a bug); dropped");
                None
            }
        }
    }

    /// Hands the batch over, waiting while the queue is full (TCP: backpressure). On stop, one
    /// last try without waiting.
    async fn hand_over(&mut self, stop: &mut watch::Receiver<bool>) {
        let Some(p) = self.take() else { return };
        if *stop.borrow() {
            return self.try_hand_over(p, Dropped::Shutdown);
        }
        let permit = tokio::select! {
            permit = self.tx.reserve() => permit,
            () = stopped(stop) => return self.try_hand_over(p, Dropped::Shutdown),
        };
        match permit {
            Ok(permit) => permit.send(p),
            Err(_) => self
                .shared
                .metrics
                .syslog
                .dropped(p.transport, Dropped::Shutdown, p.lines),
        }
    }

    /// Hands the batch over if the queue has room, else drops and counts it.
    fn try_hand_over(&self, p: Pending, why: Dropped) {
        if let Err(e) = self.tx.try_send(p) {
            let p = match e {
                mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p,
            };
            self.shared
                .metrics
                .syslog
                .dropped(p.transport, why, p.lines);
        }
    }
}

/// Sleeps until `at`, or forever when there is no deadline.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Receives datagrams until stop; never waits on the appender (a full queue drops the batch).
async fn udp_loop(
    sock: UdpSocket,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Pending>,
    mut stop: watch::Receiver<bool>,
) {
    let max = shared.cfg.max_line_bytes;
    let mut c = Collector::new(shared, Transport::Udp, tx);
    // Larger than any UDP payload (65,507 bytes over IPv4), so nothing is cut by the kernel.
    let mut buf = vec![0u8; 65_536];
    let mut last_peer: Option<(SocketAddr, String, String)> = None;
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            () = until(c.due()) => {
                if let Some(p) = c.take() {
                    c.try_hand_over(p, Dropped::Backpressure);
                }
            }
            r = sock.recv_from(&mut buf) => {
                let Ok((n, peer)) = r else { continue };
                let now = clock::now_ms();
                let mut next = Some((n, peer));
                let mut burst = 0;
                while let Some((n, peer)) = next {
                    if last_peer.as_ref().is_none_or(|(a, _, _)| *a != peer) {
                        last_peer = Some((peer, peer.to_string(), peer.ip().to_string()));
                    }
                    if let Some((_, addr, ip)) = &last_peer {
                        let meta = LineMeta {
                            transport: Transport::Udp,
                            peer: addr,
                            peer_ip: ip,
                            truncated: n > max,
                            received_ms: now,
                        };
                        c.push(&buf[..n.min(max)], &meta);
                    }
                    if c.full() && let Some(p) = c.take() {
                        c.try_hand_over(p, Dropped::Backpressure);
                    }
                    burst += 1;
                    next = if burst < UDP_BURST { sock.try_recv_from(&mut buf).ok() } else { None };
                }
            }
        }
    }
    if let Some(p) = c.take() {
        c.try_hand_over(p, Dropped::Shutdown);
    }
}

/// Accepts TCP connections up to `max_connections`; closes and counts those beyond.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Pending>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(shared.cfg.max_connections));
    let m = &shared.metrics.syslog;
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    m.accepted.fetch_add(1, Ordering::Relaxed);
                    m.open.fetch_add(1, Ordering::Relaxed);
                    let (shared, tx, stop) = (shared.clone(), tx.clone(), stop.clone());
                    conns.spawn(async move {
                        let why = connection(stream, peer, shared.clone(), tx, stop).await;
                        shared.metrics.syslog.closed(why);
                        drop(permit);
                    });
                }
                Err(_) => {
                    m.refused.fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                }
            },
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "syslog tcp accept failed; retrying in 100ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(tx);
    while conns.join_next().await.is_some() {}
}

/// Reads one TCP connection until it closes, idles out or aiops stops.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Pending>,
    mut stop: watch::Receiver<bool>,
) -> Closed {
    let (addr, ip) = (peer.to_string(), peer.ip().to_string());
    let idle = shared.cfg.idle_timeout;
    let mut framer = Framer::new(shared.cfg.max_line_bytes);
    let mut c = Collector::new(shared, Transport::Tcp, tx);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut idle_at = Instant::now() + idle;
    let why = loop {
        buf.reserve(READ_CHUNK);
        let read = tokio::select! {
            biased;
            () = stopped(&mut stop) => break Closed::Shutdown,
            () = until(c.due()) => {
                c.hand_over(&mut stop).await;
                idle_at = Instant::now() + idle;
                continue;
            }
            () = tokio::time::sleep_until(idle_at) => break Closed::Idle,
            r = stream.read_buf(&mut buf) => r,
        };
        let eof = match read {
            Ok(0) => true,
            Ok(_) => false,
            Err(_) => break Closed::Error,
        };
        let now = clock::now_ms();
        let mut pos = 0;
        while let Some(frame) = framer.next_frame(&buf, &mut pos, eof) {
            let meta = LineMeta {
                transport: Transport::Tcp,
                peer: &addr,
                peer_ip: &ip,
                truncated: frame.truncated,
                received_ms: now,
            };
            c.push(&buf[frame.range], &meta);
            idle_at = Instant::now() + idle;
            if c.full() {
                // Waits while the appender is behind: this connection reads nothing meanwhile.
                c.hand_over(&mut stop).await;
                idle_at = Instant::now() + idle;
            }
        }
        buf.advance(pos);
        if eof {
            break Closed::Eof;
        }
    };
    c.hand_over(&mut stop).await;
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_documents_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../aiops.example.toml");
        let cfg = crate::config::Config::load(Some(std::path::Path::new(path)), Vec::new())
            .expect("the example config loads");
        assert_eq!(cfg.syslog, SyslogConfig::default());
        assert!(!cfg.syslog.enabled());
    }

    #[test]
    fn bad_settings_are_named() {
        let cfg = SyslogConfig {
            max_line_bytes: 10,
            max_connections: 0,
            batch_timeout: Duration::ZERO,
            rfc3164_timezone: "CET".into(),
            ..SyslogConfig::default()
        };
        let p = cfg.problems().join("; ");
        for want in [
            "syslog.max_line_bytes = 10",
            "syslog.max_connections",
            "syslog.batch_timeout",
            "syslog.rfc3164_timezone = \"CET\"",
        ] {
            assert!(p.contains(want), "{p} lacks {want}");
        }
        let tz = |s: &str| {
            SyslogConfig {
                rfc3164_timezone: s.into(),
                ..SyslogConfig::default()
            }
            .rfc3164_offset_secs()
        };
        assert_eq!(tz("UTC"), Ok(0));
        assert_eq!(tz("+08:00"), Ok(8 * 3600));
        assert_eq!(tz("-05:30"), Ok(-(5 * 3600 + 1800)));
        assert!(tz("+24:00").is_err() && tz("0800").is_err() && tz("+8:00").is_err());
        // Through the environment, as an operator would set it.
        let err = crate::config::Config::load(
            None,
            vec![(
                "AIOPS__SYSLOG__MAX_CONNECTIONS".to_string(),
                "0".to_string(),
            )],
        )
        .expect_err("refused");
        assert!(err.to_string().contains("syslog.max_connections"), "{err}");
    }

    #[test]
    fn metrics_render_every_series() {
        let m = SyslogMetrics::default();
        m.counted(
            Transport::Tcp,
            LineCounts {
                lines: 5,
                unparsed: 1,
                truncated: 2,
                time_replaced: 0,
            },
        );
        m.dropped(Transport::Udp, Dropped::Backpressure, 7);
        m.open.fetch_add(1, Ordering::Relaxed);
        m.closed(Closed::Idle);
        let mut s = String::new();
        m.render(&mut s);
        for want in [
            "aiops_syslog_lines_received_total{transport=\"tcp\"} 5",
            "aiops_syslog_lines_received_total{transport=\"udp\"} 0",
            "aiops_syslog_unparsed_lines_total{transport=\"tcp\"} 1",
            "aiops_syslog_truncated_lines_total{transport=\"tcp\"} 2",
            "aiops_syslog_dropped_lines_total{transport=\"udp\",reason=\"backpressure\"} 7",
            "aiops_syslog_connections_closed_total{reason=\"idle\"} 1",
            "aiops_syslog_connections_open 0",
        ] {
            assert!(s.contains(want), "{s} lacks {want}");
        }
    }
}
