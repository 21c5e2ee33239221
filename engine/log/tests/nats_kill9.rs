//! Acknowledged appends survive `kill -9` of nats-server and a restart on the same store.
//!
//! JetStream (file storage, one replica) writes a message to the store file before it
//! acknowledges it, so a killed process loses nothing acknowledged; only power loss can lose
//! the last sync interval (see the durability sentence). nats-server 2.10+ can be made to fsync
//! every write (`sync_interval: always`, [`NatsServer::start_sync_always`]); Debian 12's 2.9.10
//! cannot, so this test runs on the default server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{AppendMessage, EventLog, LogError};
use aiops_testkit::NatsServer;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn msg(i: u64) -> AppendMessage {
    AppendMessage {
        subject: format!("aiops.metrics.{}", i % 4),
        msg_id: format!("m-{i}"),
        time_min_ms: i as i64,
        time_max_ms: i as i64,
        payload: Bytes::from(format!("payload {i}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_kill9_and_restart() {
    let mut server = NatsServer::start().unwrap();
    let mut cfg = NatsConfig::new(&server.url());
    cfg.request_timeout = Duration::from_secs(2);
    let log = Arc::new(NatsLog::connect(cfg.clone()).await.unwrap());
    // A writer appends until the server dies under it, remembering what was acknowledged.
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (log, acked) = (log.clone(), acked.clone());
        tokio::spawn(async move {
            let mut next = 0u64;
            loop {
                let batch: Vec<_> = (next..next + 10).map(msg).collect();
                match log.append(batch).await {
                    Ok(res) => {
                        assert!(res.iter().all(|a| !a.duplicate));
                        next += 10;
                        acked.store(next, Ordering::SeqCst);
                    }
                    Err(e) => {
                        assert!(e.is_retryable(), "{e}");
                        return;
                    }
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.load(Ordering::SeqCst) < 2000 {
        assert!(Instant::now() < deadline, "writer too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    writer.await.unwrap();
    let acked = acked.load(Ordering::SeqCst);
    server.restart().unwrap();

    let log = NatsLog::connect(cfg).await.unwrap();
    let mut r = log.reader(1).await.unwrap();
    let mut ids = Vec::new();
    loop {
        let b = r.next_batch(1000).await.unwrap();
        if b.is_empty() {
            break;
        }
        ids.extend(b.into_iter().map(|r| r.msg_id));
    }
    assert!(
        ids.len() as u64 >= acked,
        "lost acknowledged appends: {} < {acked}",
        ids.len()
    );
    let want: Vec<String> = (0..ids.len() as u64).map(|i| format!("m-{i}")).collect();
    assert_eq!(ids, want, "stored in order, no holes");
    // Retrying the unacknowledged tail is safe: stored ones come back as duplicates.
    let retry: Vec<_> = (acked..acked + 10).map(msg).collect();
    let res = log.append(retry).await.unwrap();
    for (i, a) in res.iter().enumerate() {
        assert_eq!(
            a.duplicate,
            acked + (i as u64) < ids.len() as u64,
            "{i}: {a:?}"
        );
    }
    assert!(matches!(log.close().await, Ok(())));
    assert!(matches!(
        log.append(vec![msg(0)]).await,
        Err(LogError::Closed)
    ));
}
