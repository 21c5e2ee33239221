//! Connecting to servers that cannot hold the log: no JetStream, nobody listening, a stream of
//! the same name with the wrong shape.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::LogError;
use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_testkit::NatsServer;
use async_nats::jetstream::stream;

#[tokio::test]
async fn server_without_jetstream_is_a_config_error() {
    let server = NatsServer::start_without_jetstream().unwrap();
    let e = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap_err();
    let LogError::Config(m) = &e else {
        panic!("want Config, got {e:?}")
    };
    assert!(m.contains("JetStream is not enabled"), "{m}");
    assert!(m.contains(&server.url()), "{m}");
    assert!(m.contains("nats-server -js"), "{m}");
}

#[tokio::test]
async fn nobody_listening_is_unavailable_naming_the_url() {
    let url = format!("nats://127.0.0.1:{}", aiops_testkit::free_port());
    let mut cfg = NatsConfig::new(&url);
    cfg.connect_timeout = std::time::Duration::from_secs(1);
    let e = NatsLog::connect(cfg).await.unwrap_err();
    assert!(
        matches!(&e, LogError::Unavailable(m) if m.contains(&url)),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn existing_stream_is_updated_or_refused() {
    let server = NatsServer::start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    // Same subjects, other limits: updated to the configured ones.
    js.create_stream(stream::Config {
        name: "AIOPS".into(),
        subjects: vec!["aiops.>".into()],
        duplicate_window: std::time::Duration::from_secs(10),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = NatsConfig::new(&server.url());
    cfg.max_bytes = Some(1 << 30);
    let log = NatsLog::connect(cfg.clone()).await.unwrap();
    let info = js.get_stream("AIOPS").await.unwrap().cached_info().clone();
    assert_eq!(info.config.duplicate_window, cfg.duplicate_window);
    assert_eq!(info.config.max_bytes, 1 << 30);
    drop(log);
    // Memory storage cannot be changed in place: refused with a message saying what to do.
    js.create_stream(stream::Config {
        name: "OTHER".into(),
        subjects: vec!["aiops.>".into()],
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap_err(); // subjects overlap with AIOPS
    js.delete_stream("AIOPS").await.unwrap();
    js.create_stream(stream::Config {
        name: "AIOPS".into(),
        subjects: vec!["aiops.>".into()],
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let e = NatsLog::connect(cfg.clone()).await.unwrap_err();
    assert!(
        matches!(&e, LogError::Config(m) if m.contains("memory storage") && m.contains("nats.stream")),
        "{e:?}"
    );
    // Another stream already owns the subjects: creating ours fails, naming the stream.
    cfg.stream = "AIOPS2".into();
    let e = NatsLog::connect(cfg).await.unwrap_err();
    assert!(
        matches!(&e, LogError::Config(m) if m.contains("AIOPS2")),
        "{e:?}"
    );
}

#[tokio::test]
async fn durability_sentence_names_the_sync_policy() {
    let server = NatsServer::start().unwrap();
    let mut cfg = NatsConfig::new(&server.url());
    cfg.monitor_url = Some(server.monitor_url());
    let log = NatsLog::connect(cfg).await.unwrap();
    use aiops_log::EventLog;
    let d = log.stats().await.unwrap().durability;
    assert!(
        d.contains("page cache") || d.contains("fsyncs each message"),
        "{d}"
    );
    let (major, minor, _) = aiops_testkit::nats_server_version().unwrap();
    if (major, minor) < (2, 10) {
        assert!(d.contains("before 2.10"), "{d}");
    } else {
        assert!(d.contains("2m"), "default interval: {d}");
    }
}
