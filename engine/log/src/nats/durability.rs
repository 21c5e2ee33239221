//! What an acknowledged append survives on this server, in one sentence for
//! [`crate::LogStats::durability`].
//!
//! JetStream acknowledges a publish once the message is written to the server's page cache and
//! fsyncs on a timer (2 minutes by default) unless the server runs with `sync_interval: always`
//! (nats-server 2.10+). The server does not tell clients its setting; its monitoring endpoint
//! (`/varz`) does, so it is asked when `monitor_url` is configured.

use super::NatsConfig;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server's fsync policy, as far as it can be known.
#[derive(Debug, Clone, PartialEq)]
enum Sync {
    Always,
    Every(Duration, &'static str),
    Unknown(String),
}

/// What is known at connect about how the server keeps acknowledged appends.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Durability {
    /// One sentence on what an acknowledged append survives ([`crate::LogStats::durability`]).
    pub(super) sentence: String,
    /// `always` or the fsync interval (`2m`); `None` when unknown
    /// ([`crate::LogStats::sync_policy`]).
    pub(super) sync_policy: Option<String>,
}

/// What an acknowledged append survives, and the server's fsync policy when it can be learnt.
pub(super) async fn describe(cfg: &NatsConfig, server_version: &str) -> Durability {
    let policy = policy(cfg, server_version).await;
    let sync_policy = match &policy {
        Sync::Always => Some("always".to_string()),
        Sync::Every(d, _) => Some(humantime::format_duration(*d).to_string()),
        Sync::Unknown(_) => None,
    };
    let mut s = match policy {
        Sync::Always => "JetStream fsyncs each message before acknowledging it (the server runs \
             with sync_interval: always): acknowledged appends survive a crash or power loss of \
             the server"
            .to_string(),
        Sync::Every(d, note) => format!(
            "JetStream acks after writing to the server's page cache: acknowledged appends survive \
             a crash of nats-server, but those of the last sync interval ({}{note}) can be lost on \
             power loss of the server unless it runs with sync_interval: always",
            humantime::format_duration(d)
        ),
        Sync::Unknown(why) => format!(
            "JetStream acks after writing to the server's page cache; data acknowledged in the \
             last sync interval (server default 2m; this server's setting is unknown: {why}) can \
             be lost on power loss of the server unless it runs with sync_interval: always"
        ),
    };
    if cfg.replicas > 1 {
        s.push_str(&format!(
            "; with {} replicas an append is acknowledged once a majority holds it, so it also \
             survives the loss of a minority of nodes",
            cfg.replicas
        ));
    }
    Durability {
        sentence: s,
        sync_policy,
    }
}

fn version_below_2_10(v: &str) -> bool {
    let mut it = v
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(str::parse::<u32>);
    matches!((it.next(), it.next()), (Some(Ok(major)), Some(Ok(minor))) if (major, minor) < (2, 10))
}

async fn policy(cfg: &NatsConfig, server_version: &str) -> Sync {
    if version_below_2_10(server_version) {
        // Before 2.10 the interval is fixed and there is no way to fsync every write.
        return Sync::Every(
            Duration::from_secs(120),
            "; nats-server before 2.10 cannot be set to sync_interval: always",
        );
    }
    let Some(url) = &cfg.monitor_url else {
        return Sync::Unknown("set nats.monitor_url to let aiops ask the server".to_string());
    };
    match varz(url).await {
        Ok(v) => {
            let js = &v["jetstream"]["config"];
            if js["sync_always"].as_bool() == Some(true) {
                Sync::Always
            } else {
                // Omitted when it is the default.
                let ns = js["sync_interval"].as_u64().unwrap_or(120_000_000_000);
                Sync::Every(Duration::from_nanos(ns), "")
            }
        }
        Err(e) => Sync::Unknown(format!("{url}/varz: {e}")),
    }
}

/// `GET /varz` over plain HTTP/1.0; the kit-free way to read one JSON document.
async fn varz(url: &str) -> Result<serde_json::Value, String> {
    let authority = url
        .strip_prefix("http://")
        .ok_or("only http:// monitor URLs are supported")?
        .trim_end_matches('/');
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(format!("GET /varz HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.take(4 << 20)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(3), fetch)
        .await
        .map_err(|_| "no answer within 3s".to_string())??;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_servers_are_recognised() {
        assert!(version_below_2_10("2.9.10"));
        assert!(!version_below_2_10("2.10.0"));
        assert!(!version_below_2_10("2.11.3-RC.1"));
        assert!(!version_below_2_10("garbage"));
    }
}
