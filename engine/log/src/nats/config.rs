//! Configuration of the NATS JetStream log: the stream it owns and the client's limits.

use serde::Deserialize;
use std::time::Duration;

/// How `aiops` uses a NATS JetStream server as its log. Every field has a default, so a URL is
/// enough ([`NatsConfig::new`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`, or the URLs of several servers of one cluster
    /// separated by commas (`nats://h1:4222,nats://h2:4222,nats://h3:4222`): the client connects
    /// to any of them and reconnects to another when its server goes away.
    pub url: String,
    /// Name of the JetStream stream holding the log (subjects `aiops.>`). Created when missing.
    /// Default `AIOPS`.
    pub stream: String,
    /// How long JetStream remembers message ids to drop retried appends. Default `2m`.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Messages older than this (by arrival at the server) are removed. Default: kept forever.
    #[serde(with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// Oldest messages are removed once the stream holds more bytes than this. Default: no limit.
    pub max_bytes: Option<u64>,
    /// Copies of each message in a JetStream cluster (1, 3 or 5): the stream is created (or
    /// updated) with this many replicas. Default 1.
    pub replicas: usize,
    /// Monitoring endpoint of the server (`http://HOST:8222`), used once at connect to learn its
    /// fsync policy for [`crate::LogStats::durability`] and [`crate::LogStats::sync_policy`]
    /// (in a cluster: one server's, which is assumed to be every server's). Default: not asked,
    /// the policy is unknown.
    pub monitor_url: Option<String>,
    /// How long to wait for the TCP/TLS connection at start. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long to wait for a publish acknowledgement or a JetStream API reply before the append
    /// or call fails with `Unavailable`. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Publishes awaiting their acknowledgement at once, over all appends. Default 256.
    pub max_inflight: usize,
    /// Messages a reader asks the server for at once (replay speed). Default 4096.
    pub fetch_batch: usize,
    /// Bytes a reader asks the server for at once; bounds the reader's buffer. Default 32 MiB.
    pub fetch_max_bytes: usize,
    /// How long `next_batch` waits for new messages when the reader is at the end. Default `50ms`.
    #[serde(with = "humantime_serde")]
    pub idle_wait: Duration,
    /// The server deletes a reader's consumer after this long without a fetch (a dropped process
    /// leaves none behind); the reader recreates it at its position when used again. Default `5m`.
    #[serde(with = "humantime_serde")]
    pub reader_inactive_threshold: Duration,
}

impl NatsConfig {
    /// Defaults for a server URL.
    pub fn new(url: &str) -> Self {
        NatsConfig {
            url: url.to_string(),
            stream: "AIOPS".to_string(),
            duplicate_window: Duration::from_secs(120),
            max_age: None,
            max_bytes: None,
            replicas: 1,
            monitor_url: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_inflight: 256,
            fetch_batch: 4096,
            fetch_max_bytes: 32 << 20,
            idle_wait: Duration::from_millis(50),
            reader_inactive_threshold: Duration::from_secs(300),
        }
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig::new("nats://127.0.0.1:4222")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_durations_and_refuses_unknown_fields() {
        let cfg: NatsConfig = serde_json::from_str(
            r#"{"url":"nats://h:1","duplicate_window":"5m","max_age":"7days","max_inflight":8}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.duplicate_window, Duration::from_secs(300));
        assert_eq!(cfg.max_age, Some(Duration::from_secs(7 * 86400)));
        assert_eq!(cfg.max_inflight, 8);
        assert_eq!(cfg.stream, "AIOPS");
        let err = serde_json::from_str::<NatsConfig>(r#"{"urll":"x"}"#);
        assert!(err.is_err_and(|e| e.to_string().contains("urll")));
    }
}
