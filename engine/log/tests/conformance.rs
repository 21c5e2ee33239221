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
