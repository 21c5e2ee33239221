//! The log on a real three-server JetStream cluster (nats-server ≥ 2.11 from
//! `scripts/install-test-deps.sh`; a missing binary fails the test with that hint): an R3 stream
//! over all servers' URLs keeps every acknowledged append through `kill -9` of the stream leader
//! and its restart, a writer that retries with the same message ids stores each message exactly
//! once, and the stats name the replicas, the leader and every peer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{AppendMessage, EventLog, LogStats};
use aiops_testkit::{NatsCluster, NatsServer};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Messages per append call.
const BATCH: u64 = 10;
/// Messages in all.
const TOTAL: u64 = 1500;

fn msg(i: u64) -> AppendMessage {
    AppendMessage {
        subject: format!("aiops.metrics.{}", i % 4),
        msg_id: format!("m-{i}"),
        time_min_ms: i as i64,
        time_max_ms: i as i64,
        payload: Bytes::from(format!("payload {i}")),
    }
}

fn cluster(n: usize) -> NatsCluster {
    NatsCluster::start(n).unwrap_or_else(|e| panic!("cannot start a {n}-server NATS cluster: {e}"))
}

/// Polls stats until `ok` holds (replicas catch up asynchronously).
async fn stats_until(log: &NatsLog, what: &str, ok: impl Fn(&LogStats) -> bool) -> LogStats {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = log.stats().await;
        if let Ok(s) = &s
            && ok(s)
        {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "stats never showed {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the writer saw: the sequence each id was acknowledged at, the batches whose first
/// attempt failed, and the longest time between two acknowledged appends.
#[derive(Debug, Default)]
struct Written {
    acked_at: HashMap<String, u64>,
    retried_batches: Vec<u64>,
    failures: u64,
    longest_gap: Duration,
}

/// Appends `TOTAL` messages in batches, retrying a failed batch with the same ids (the
/// `EventLog` contract) until it is acknowledged.
async fn write_all(log: Arc<NatsLog>, progress: Arc<AtomicU64>) -> Written {
    let mut w = Written::default();
    let mut last_ack = Instant::now();
    for b in 0..TOTAL / BATCH {
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut attempt = 0;
        let res = loop {
            match log
                .append((b * BATCH..(b + 1) * BATCH).map(msg).collect())
                .await
            {
                Ok(r) => break r,
                Err(e) => {
                    assert!(e.is_retryable(), "append failed for good: {e}");
                    assert!(Instant::now() < deadline, "no append for 40 s: {e}");
                    attempt += 1;
                    w.failures += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        if attempt > 0 {
            w.retried_batches.push(b);
        } else {
            // A first attempt stores everything new.
            assert!(res.iter().all(|a| !a.duplicate), "batch {b}: {res:?}");
        }
        for (i, a) in (b * BATCH..).zip(&res) {
            w.acked_at.insert(format!("m-{i}"), a.seq);
        }
        w.longest_gap = w.longest_gap.max(last_ack.elapsed());
        last_ack = Instant::now();
        progress.store((b + 1) * BATCH, Ordering::SeqCst);
    }
    w
}

async fn wait_progress(progress: &AtomicU64, at_least: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(45);
    while progress.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "writer stuck before {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_stream_survives_kill9_of_its_leader_exactly_once_in_order() {
    let started = Instant::now();
    let mut c = cluster(3);
    let cluster_up = started.elapsed();
    let mut cfg = NatsConfig::new(&c.urls());
    cfg.replicas = 3;
    cfg.request_timeout = Duration::from_secs(2);
    cfg.monitor_url = Some(c.monitor_url(0));
    let log = Arc::new(NatsLog::connect(cfg.clone()).await.unwrap());

    let s = stats_until(&log, "3 current replicas", |s| {
        s.cluster_peers.len() == 3 && s.cluster_peers.iter().all(|p| p.current)
    })
    .await;
    assert_eq!(s.backend, "nats");
    assert_eq!(s.replicas, Some(3));
    assert_eq!(s.cluster.as_deref(), Some("aiops-test"));
    assert_eq!(s.sync_policy.as_deref(), Some("2m"));
    assert!(s.durability.contains("3 replicas"), "{}", s.durability);
    let leader = s.leader.clone().unwrap();
    assert!(s.cluster_peers[0].leader && s.cluster_peers[0].name == leader);
    let mut names: Vec<&str> = s.cluster_peers.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["n0", "n1", "n2"]);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["replicas"], 3);
    assert_eq!(json["leader"], leader.as_str());

    // A writer appends throughout; the stream leader dies under it after a third.
    let progress = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_all(log.clone(), progress.clone()));
    wait_progress(&progress, TOTAL / 3, "the kill").await;
    let victim = c.index_of(&leader).unwrap();
    let killed_at = Instant::now();
    c.kill9(victim);
    // The two survivors elect a new stream leader and the writer goes on.
    let before = progress.load(Ordering::SeqCst);
    wait_progress(&progress, before + 3 * BATCH, "failover").await;
    let failover = killed_at.elapsed();
    let s = log.stats().await.unwrap();
    assert_ne!(s.leader.as_deref(), Some(leader.as_str()), "{s:?}");
    assert!(
        s.cluster_peers
            .iter()
            .any(|p| p.name == leader && !p.current),
        "the dead server is not current: {s:?}"
    );
    wait_progress(&progress, 2 * TOTAL / 3, "the restart").await;
    c.restart(victim).unwrap();
    let written = writer.await.unwrap();

    // The restarted server catches up; all three replicas current again.
    let s = stats_until(&log, "the restarted replica caught up", |s| {
        s.leader.is_some()
            && s.cluster_peers.len() == 3
            && s.cluster_peers.iter().all(|p| p.current && !p.offline)
    })
    .await;
    assert_eq!(s.replicas, Some(3));
    assert_eq!(s.messages, TOTAL, "every message stored once: {s:?}");

    // Read back: every id exactly once, at the sequence its append was acknowledged with, and
    // batches in the order they were appended (a retried batch may interleave only with itself).
    let mut r = log.reader(1).await.unwrap();
    let mut records = Vec::new();
    loop {
        let b = r.next_batch(1000).await.unwrap();
        if b.is_empty() {
            break;
        }
        records.extend(b);
    }
    assert_eq!(records.len() as u64, TOTAL);
    let mut seen = HashMap::new();
    let mut last_batch = 0;
    let mut last_index = None;
    for rec in &records {
        assert!(
            seen.insert(rec.msg_id.clone(), rec.seq).is_none(),
            "{} twice",
            rec.msg_id
        );
        assert_eq!(
            written.acked_at.get(&rec.msg_id),
            Some(&rec.seq),
            "{}",
            rec.msg_id
        );
        let i: u64 = rec.msg_id.trim_start_matches("m-").parse().unwrap();
        assert_eq!(rec.payload, Bytes::from(format!("payload {i}")));
        let b = i / BATCH;
        assert!(b >= last_batch, "batch {b} after batch {last_batch}");
        if !written.retried_batches.contains(&b) {
            assert!(
                last_index.is_none_or(|l| i == l + 1 || b != last_batch),
                "{i} after {last_index:?}"
            );
        }
        last_batch = b;
        last_index = Some(i);
    }
    assert!(records.windows(2).all(|w| w[0].seq < w[1].seq));
    eprintln!(
        "cluster up in {cluster_up:?}; kill -9 of stream leader {leader}: writes resumed after \
         {failover:?} (longest gap between acks {:?}, {} failed attempts, {} batches retried); \
         new leader {:?}; total {:?}",
        written.longest_gap,
        written.failures,
        written.retried_batches.len(),
        s.leader,
        started.elapsed()
    );
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_stats_name_replicas_leader_and_fsync_always() {
    let server = NatsServer::start_sync_always().unwrap();
    let mut cfg = NatsConfig::new(&server.url());
    cfg.stream = "SINGLE".to_string();
    cfg.monitor_url = Some(server.monitor_url());
    let log = NatsLog::connect(cfg).await.unwrap();
    let s = log.stats().await.unwrap();
    assert_eq!(s.replicas, Some(1));
    assert_eq!(s.sync_policy.as_deref(), Some("always"));
    assert_eq!(s.cluster, None);
    assert!(s.server.is_some());
    assert!(
        s.durability.contains("fsyncs each message"),
        "{}",
        s.durability
    );
    log.close().await.unwrap();
}
