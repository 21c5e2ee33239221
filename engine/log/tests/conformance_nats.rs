//! The shared event-log suite, run against the NATS JetStream backend on a real `nats-server -js`
//! (started by the test kit; each case gets its own server).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod suite;

use aiops_log::EventLog;
use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_testkit::NatsServer;
use std::sync::Arc;

async fn log(server: &NatsServer) -> Arc<dyn EventLog> {
    let mut cfg = NatsConfig::new(&server.url());
    // Small, so the suite also crosses fetch batches and ack windows.
    cfg.fetch_batch = 16;
    cfg.max_inflight = 8;
    Arc::new(NatsLog::connect(cfg).await.unwrap())
}

macro_rules! case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let server = NatsServer::start().unwrap();
            suite::$name(log(&server).await, stringify!($name)).await;
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
