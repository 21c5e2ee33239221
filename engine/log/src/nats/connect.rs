//! Connecting: the client, the JetStream check, and the stream the log lives in (created when
//! missing, updated where its limits differ, refused where it cannot serve as the log).

use super::NatsConfig;
use crate::LogError;
use async_nats::jetstream::{self, stream};

/// Subjects of the log stream (DESIGN.md "Log layout").
pub(super) const SUBJECTS: &str = "aiops.>";

/// The server addresses of `url`: one URL, or several of one cluster separated by commas
/// (`nats://h1:4222,nats://h2:4222`; a bare `h2:4222` means `nats://h2:4222`).
///
/// # Errors
/// [`LogError::Config`] when the list is empty or an entry is not a NATS URL.
pub(super) fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, LogError> {
    let addrs = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| LogError::Config(format!("bad NATS server URL {u:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(LogError::Config(format!(
            "no NATS server URL in {url:?}: give nats://HOST:PORT, or several comma-separated"
        )));
    }
    Ok(addrs)
}

/// Connects to any of the configured servers (the client also reconnects to any of them, and
/// to the cluster's other servers it learns of) and checks that the server runs JetStream.
///
/// # Errors
/// [`LogError::Unavailable`] naming the URL when no server can be reached;
/// [`LogError::Config`] when it runs without JetStream or a URL is malformed.
pub(super) async fn client(cfg: &NatsConfig) -> Result<async_nats::Client, LogError> {
    let addrs = server_addrs(&cfg.url)?;
    tracing::debug!(servers = addrs.len(), url = %cfg.url, "connecting to NATS");
    let client = async_nats::ConnectOptions::new()
        .name("aiops")
        .connection_timeout(cfg.connect_timeout)
        .request_timeout(Some(cfg.request_timeout))
        .connect(addrs)
        .await
        .map_err(|e| {
            LogError::Unavailable(format!("cannot connect to NATS at {}: {e}", cfg.url))
        })?;
    if !client.server_info().jetstream {
        return Err(LogError::Config(format!(
            "JetStream is not enabled on the NATS server at {}: start it with `nats-server -js` \
             or add `jetstream {{}}` to its configuration file",
            cfg.url
        )));
    }
    Ok(client)
}

/// The stream configuration the log needs.
fn wanted(cfg: &NatsConfig) -> stream::Config {
    stream::Config {
        name: cfg.stream.clone(),
        description: Some("aiops event log".to_string()),
        subjects: vec![SUBJECTS.to_string()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: cfg.duplicate_window,
        max_age: cfg.max_age.unwrap_or_default(),
        max_bytes: cfg
            .max_bytes
            .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
        max_messages: -1,
        max_messages_per_subject: -1,
        num_replicas: cfg.replicas.max(1),
        allow_direct: true,
        ..Default::default()
    }
}

/// How many times opening the stream is tried when the JetStream API does not answer.
///
/// Why: right after a cluster starts (or while it elects a meta leader, or while other nodes
/// create the same replicated stream) a JetStream API request can time out although the cluster
/// is about to be fine; giving up on the first timeout made a node exit at start. Attempts are
/// `request_timeout` long plus a growing pause (1, 2, 4, 8 s), so a cluster that stays down is
/// still reported within about a minute.
const OPEN_ATTEMPTS: u32 = 5;

/// Opens the log stream, creating it when missing and updating limits that differ; retries
/// (with a warning) while the JetStream API does not answer.
///
/// # Errors
/// [`LogError::Config`] when a stream of that name exists but cannot be the log (other subjects,
/// memory storage, work-queue retention) or the server refuses the settings;
/// [`LogError::Unavailable`] when the JetStream API does not answer after [`OPEN_ATTEMPTS`].
pub(super) async fn stream(
    js: &jetstream::Context,
    cfg: &NatsConfig,
) -> Result<stream::Stream, LogError> {
    let mut attempt = 1;
    loop {
        match open_stream(js, cfg).await {
            Err(LogError::Unavailable(why)) if attempt < OPEN_ATTEMPTS => {
                let pause = std::time::Duration::from_secs(1 << (attempt - 1));
                tracing::warn!(
                    stream = %cfg.stream, attempt, retry_in = ?pause, error = %why,
                    "the JetStream API did not answer; retrying"
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One attempt of [`stream`].
async fn open_stream(
    js: &jetstream::Context,
    cfg: &NatsConfig,
) -> Result<stream::Stream, LogError> {
    let want = wanted(cfg);
    let existing = match js.get_stream(&cfg.stream).await {
        Ok(s) => s,
        Err(e) => {
            let missing = matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(je)
                if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND);
            if !missing {
                return Err(LogError::Unavailable(format!(
                    "cannot look up JetStream stream {} at {}: {e}",
                    cfg.stream, cfg.url
                )));
            }
            tracing::info!(stream = %cfg.stream, url = %cfg.url, "creating the JetStream log stream");
            return js.create_stream(want).await.map_err(|e| {
                if matches!(
                    e.kind(),
                    jetstream::context::CreateStreamErrorKind::TimedOut
                ) {
                    return LogError::Unavailable(format!(
                        "creating JetStream stream {} at {} timed out: {e}",
                        cfg.stream, cfg.url
                    ));
                }
                LogError::Config(format!(
                    "cannot create JetStream stream {} (subjects {SUBJECTS}) at {}: {e}",
                    cfg.stream, cfg.url
                ))
            });
        }
    };
    let have = &existing.cached_info().config;
    let refuse = |what: String| {
        LogError::Config(format!(
            "JetStream stream {} at {} cannot hold the aiops log: {what}; delete it or set \
             nats.stream to another name",
            cfg.stream, cfg.url
        ))
    };
    if !have.subjects.iter().any(|s| s == SUBJECTS) {
        return Err(refuse(format!(
            "its subjects are {:?}, not {SUBJECTS}",
            have.subjects
        )));
    }
    if have.storage != stream::StorageType::File {
        return Err(refuse("it uses memory storage".to_string()));
    }
    if have.retention != stream::RetentionPolicy::Limits {
        return Err(refuse(format!(
            "its retention is {:?}, which deletes messages once consumed",
            have.retention
        )));
    }
    let differs = have.duplicate_window != want.duplicate_window
        || have.max_age != want.max_age
        || have.max_bytes != want.max_bytes
        || have.num_replicas != want.num_replicas
        || !have.allow_direct;
    if !differs {
        return Ok(existing);
    }
    let mut update = have.clone();
    update.duplicate_window = want.duplicate_window;
    update.max_age = want.max_age;
    update.max_bytes = want.max_bytes;
    update.num_replicas = want.num_replicas;
    update.allow_direct = true;
    tracing::info!(stream = %cfg.stream, url = %cfg.url, "updating the JetStream log stream's limits to the configured ones");
    js.update_stream(update).await.map_err(|e| {
        LogError::Config(format!(
            "JetStream stream {} at {} has other limits than configured and the server refused \
             to update them: {e}",
            cfg.stream, cfg.url
        ))
    })?;
    js.get_stream(&cfg.stream).await.map_err(|e| {
        LogError::Unavailable(format!(
            "cannot look up JetStream stream {}: {e}",
            cfg.stream
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_comma_separated_urls_are_several_servers() {
        let addrs = server_addrs("nats://127.0.0.1:4001, nats://127.0.0.1:4002,127.0.0.1:4003,")
            .unwrap_or_else(|e| panic!("{e}"));
        let ports: Vec<u16> = addrs.iter().map(async_nats::ServerAddr::port).collect();
        assert_eq!(ports, [4001, 4002, 4003]);
        assert!(matches!(server_addrs(" , "), Err(LogError::Config(_))));
        assert!(matches!(
            server_addrs("nats://a:1,nats://b:notaport"),
            Err(LogError::Config(_))
        ));
    }

    #[test]
    fn the_stream_is_created_with_the_configured_replicas() {
        let mut cfg = NatsConfig::new("nats://127.0.0.1:4222");
        cfg.replicas = 3;
        assert_eq!(wanted(&cfg).num_replicas, 3);
        cfg.replicas = 0;
        assert_eq!(wanted(&cfg).num_replicas, 1);
    }
}
