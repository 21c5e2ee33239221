//! The NATS wake-up watcher beyond the conformance suite: it signals appends made through another
//! connection (another process or node), and it comes back after the server was killed and
//! restarted, so idle consumers are woken again without a reconnect of their own.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{AppendMessage, EventLog};
use aiops_testkit::NatsServer;
use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn msg(i: u64) -> AppendMessage {
    AppendMessage {
        subject: format!("aiops.events.{}", i % 2),
        msg_id: format!("w-{i}"),
        time_min_ms: i as i64,
        time_max_ms: i as i64,
        payload: Bytes::from(format!("payload {i}")),
    }
}

/// Waits, by changes only, until the signal's value covers `seq`; fails after `within`.
async fn wait_for(rx: &mut watch::Receiver<u64>, seq: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while *rx.borrow_and_update() <= seq {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the signal's sender is gone while the log is open"),
            Err(_) => panic!("no wake-up for seq {seq} within {within:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_of_another_connection_wake_consumers() {
    let server = NatsServer::start().unwrap();
    let consumer_side = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    let writer_side = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    let mut rx = consumer_side.subscribe();
    rx.borrow_and_update();
    let a = writer_side.append(vec![msg(0)]).await.unwrap();
    wait_for(&mut rx, a[0].seq, Duration::from_secs(2)).await;
    let mut r = consumer_side.reader(a[0].seq).await.unwrap();
    let got = r.next_batch(10).await.unwrap();
    assert_eq!(got.first().map(|r| r.seq), Some(a[0].seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_comes_back_after_a_server_restart() {
    let mut server = NatsServer::start().unwrap();
    let mut cfg = NatsConfig::new(&server.url());
    cfg.request_timeout = Duration::from_secs(2);
    let log = NatsLog::connect(cfg).await.unwrap();
    let mut rx = log.subscribe();
    let a = log.append(vec![msg(0)]).await.unwrap();
    wait_for(&mut rx, a[0].seq, Duration::from_secs(2)).await;

    server.kill9();
    server.restart().unwrap();
    // The client reconnects on its own; appends fail until it has (retryable errors).
    let deadline = Instant::now() + Duration::from_secs(30);
    let seq = loop {
        match log.append(vec![msg(1)]).await {
            Ok(a) => break a[0].seq,
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert!(
                    Instant::now() < deadline,
                    "no append after the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // Generous: the watcher may only notice the restart by a missed heartbeat (seconds), then
    // re-creates its consumer, whose first delivery covers what was appended meanwhile.
    wait_for(&mut rx, seq, Duration::from_secs(30)).await;
    // And it keeps working for later appends.
    let later = log.append(vec![msg(2)]).await.unwrap();
    wait_for(&mut rx, later[0].seq, Duration::from_secs(5)).await;
    let mut r = log.reader(seq).await.unwrap();
    let got: Vec<u64> = r
        .next_batch(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(got, vec![seq, later[0].seq]);
}
