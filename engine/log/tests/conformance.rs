//! The shared event-log suite, run against the embedded backend.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod suite;

use aiops_log::EventLog;
use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use std::sync::Arc;

async fn log(dir: &tempfile::TempDir) -> Arc<dyn EventLog> {
    let mut cfg = EmbeddedConfig::new(dir.path().join("log"));
    cfg.segment_bytes = 4096; // small, so the suite also crosses segment rolls
    Arc::new(EmbeddedLog::open(cfg).await.unwrap())
}

macro_rules! case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            suite::$name(log(&dir).await, stringify!($name)).await;
        }
    };
}

case!(append_read_in_order);
case!(dedup_by_msg_id);
case!(reader_sees_later_appends);
case!(seek_time_contract);
case!(concurrent_appends_keep_each_call_in_order);
case!(invalid_messages_rejected);
case!(closed_log_refuses_appends);
