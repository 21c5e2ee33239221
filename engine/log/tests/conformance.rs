//! The shared event-log suite, run against the embedded backend.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[macro_use]
mod suite;

use aiops_log::EventLog;
use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use std::sync::Arc;

async fn setup() -> (tempfile::TempDir, Arc<dyn EventLog>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EmbeddedConfig::new(dir.path().join("log"));
    cfg.segment_bytes = 4096; // small, so the suite also crosses segment rolls
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(cfg).await.unwrap());
    (dir, log)
}

conformance_suite!(setup);

/// A read-only open sees another writer's appends only on reopen, so its signal never changes
/// (consumers of it keep a fallback poll, as the trait documents).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_signal_never_changes() {
    let (dir, writer) = setup().await;
    writer.append(vec![suite::msg("ro", 0, 1)]).await.unwrap();
    let mut cfg = EmbeddedConfig::new(dir.path().join("log"));
    cfg.read_only = true;
    let ro = EmbeddedLog::open(cfg).await.unwrap();
    let mut rx = ro.subscribe();
    assert_eq!(
        *rx.borrow_and_update(),
        2,
        "the next sequence as of the open"
    );
    writer.append(vec![suite::msg("ro", 1, 1)]).await.unwrap();
    // Not a timing assertion: nothing ever bumps this signal, however long one waits.
    let waited = tokio::time::timeout(std::time::Duration::from_millis(200), rx.changed()).await;
    assert!(waited.is_err(), "a read-only log's signal changed");
    assert!(!rx.has_changed().unwrap());
    // The writer's own signal did change, and carries its next sequence.
    assert_eq!(*writer.subscribe().borrow(), 3);
}
