//! The shared event-log suite, run against the NATS JetStream backend on a real `nats-server -js`
//! (started by the test kit; each case gets its own server).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[macro_use]
mod suite;

use aiops_log::EventLog;
use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_testkit::NatsServer;
use std::sync::Arc;

async fn setup() -> (NatsServer, Arc<dyn EventLog>) {
    let server = NatsServer::start().unwrap();
    let mut cfg = NatsConfig::new(&server.url());
    // Small, so the suite also crosses fetch batches and ack windows.
    cfg.fetch_batch = 16;
    cfg.max_inflight = 8;
    let log: Arc<dyn EventLog> = Arc::new(NatsLog::connect(cfg).await.unwrap());
    (server, log)
}

conformance_suite!(setup);
