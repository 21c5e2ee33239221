//! The behaviour every event-log backend must have (the contract of `EventLog` in lib.rs), as
//! generic functions over `Arc<dyn EventLog>`. Each backend's test file instantiates them. They do
//! not assume an empty log or sequences starting at 1, so a shared server stream works too.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aiops_log::{AppendMessage, EventLog, LogError, LogReader, Record};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Instantiates every case of the suite as a test. `$setup` is an async fn returning
/// `(guard, Arc<dyn EventLog>)`; the guard (a temp dir, a server) lives as long as the test.
/// A case added here runs against every backend.
#[macro_export]
macro_rules! conformance_suite {
    ($setup:path) => {
        $crate::conformance_suite!(@cases $setup;
            append_read_in_order,
            dedup_by_msg_id,
            reader_sees_later_appends,
            seek_time_contract,
            concurrent_appends_keep_each_call_in_order,
            invalid_messages_rejected,
            closed_log_refuses_appends,
            subscribe_changes_after_append,
            subscribe_no_lost_wakeup,
            subscribe_concurrent_appenders,
            subscribe_ends_when_log_dropped);
    };
    (@cases $setup:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, log) = $setup().await;
                suite::$name(log, stringify!($name)).await;
            }
        )*
    };
}

/// A message with a unique id under `prefix`.
pub fn msg(prefix: &str, i: usize, t: i64) -> AppendMessage {
    AppendMessage {
        subject: format!("aiops.metrics.{}", i % 3),
        msg_id: format!("{prefix}-{i}"),
        time_min_ms: t,
        time_max_ms: t + 10,
        payload: Bytes::from(format!("payload {prefix} {i} {}", "x".repeat(i % 50))),
    }
}

/// The segment files of the embedded log in `<dir>/log`, in order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// What a reader returns until it is at the end of the log as it is now.
pub async fn read_to_end(r: &mut Box<dyn LogReader>) -> Result<Vec<Record>, LogError> {
    let mut out = Vec::new();
    loop {
        let b = r.next_batch(100).await?;
        if b.is_empty() {
            return Ok(out);
        }
        out.extend(b);
    }
}

async fn read_all(log: &dyn EventLog, from: u64) -> Vec<Record> {
    let mut r = log.reader(from).await.unwrap();
    let mut out = Vec::new();
    loop {
        let b = r.next_batch(7).await.unwrap();
        if b.is_empty() {
            return out;
        }
        out.extend(b);
    }
}

/// Wall-clock Unix ms, to bound the append stamps the backends report.
#[allow(clippy::disallowed_methods)] // the append stamp is wall-clock time by definition
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap()
}

pub async fn append_read_in_order(log: Arc<dyn EventLog>, prefix: &str) {
    let start = log.stats().await.unwrap().next_seq;
    let msgs: Vec<_> = (0..50).map(|i| msg(prefix, i, 1000 + i as i64)).collect();
    let before_ms = wall_ms();
    let res = log.append(msgs.clone()).await.unwrap();
    let after_ms = wall_ms();
    assert_eq!(res.len(), 50);
    for (i, a) in res.iter().enumerate() {
        assert!(!a.duplicate);
        assert_eq!(
            a.seq,
            start + i as u64,
            "one call's messages are consecutive"
        );
    }
    let got = read_all(log.as_ref(), start).await;
    assert_eq!(got.len(), 50);
    for (r, m) in got.iter().zip(&msgs) {
        assert_eq!(
            (&r.subject, &r.msg_id, &r.payload),
            (&m.subject, &m.msg_id, &m.payload)
        );
        assert_eq!(
            (r.time_min_ms, r.time_max_ms),
            (m.time_min_ms, m.time_max_ms)
        );
        // The stamp of the storing machine's clock (a local server's here; 1 s of slack for
        // its rounding and clock).
        assert!(
            (before_ms - 1000..=after_ms + 1000).contains(&r.append_ts_ms),
            "append stamp {} outside the append call [{before_ms}, {after_ms}]",
            r.append_ts_ms
        );
    }
    // Reading from the middle starts exactly there.
    let mid = read_all(log.as_ref(), start + 20).await;
    assert_eq!(mid.first().map(|r| r.seq), Some(start + 20));
    assert_eq!(mid.len(), 30);
    let s = log.stats().await.unwrap();
    assert_eq!(s.next_seq, start + 50);
    assert!(!s.durability.is_empty());
}

pub async fn dedup_by_msg_id(log: Arc<dyn EventLog>, prefix: &str) {
    let first = log.append(vec![msg(prefix, 1, 5)]).await.unwrap();
    // The ack was "lost": the same message is appended again, alone and within a batch.
    let again = log.append(vec![msg(prefix, 1, 5)]).await.unwrap();
    assert_eq!(
        again[0],
        aiops_log::Appended {
            seq: first[0].seq,
            duplicate: true
        }
    );
    let mixed = log
        .append(vec![
            msg(prefix, 2, 5),
            msg(prefix, 1, 5),
            msg(prefix, 2, 5),
        ])
        .await
        .unwrap();
    assert!(!mixed[0].duplicate);
    assert!(mixed[1].duplicate && mixed[1].seq == first[0].seq);
    assert!(mixed[2].duplicate && mixed[2].seq == mixed[0].seq);
    let all = read_all(log.as_ref(), first[0].seq).await;
    let ours: Vec<_> = all
        .iter()
        .filter(|r| r.msg_id.starts_with(&format!("{prefix}-")))
        .collect();
    assert_eq!(ours.len(), 2, "each id stored once");
}

pub async fn reader_sees_later_appends(log: Arc<dyn EventLog>, prefix: &str) {
    let start = log.stats().await.unwrap().next_seq;
    let mut r = log.reader(start).await.unwrap();
    assert!(r.next_batch(10).await.unwrap().is_empty());
    log.append(vec![msg(prefix, 0, 1)]).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..50 {
        got.extend(r.next_batch(10).await.unwrap());
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(got.len(), 1);
    assert_eq!(r.position(), start + 1);
    log.append((1..4).map(|i| msg(prefix, i, 1)).collect())
        .await
        .unwrap();
    let more = r.next_batch(10).await.unwrap();
    assert_eq!(
        more.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![start + 1, start + 2, start + 3]
    );
}

pub async fn seek_time_contract(log: Arc<dyn EventLog>, prefix: &str) {
    let start = log.stats().await.unwrap().next_seq;
    // Event times out of order, as real ingest is.
    let times = [100, 300, 200, 900, 400, 1000, 50, 1200];
    let msgs: Vec<_> = times
        .iter()
        .enumerate()
        .map(|(i, t)| msg(prefix, i, *t))
        .collect();
    log.append(msgs).await.unwrap();
    for ts in [0, 100, 250, 905, 1000, 1205, 5000] {
        let s = log.seek_time(ts).await.unwrap();
        let all = read_all(log.as_ref(), start).await;
        for r in all.iter().filter(|r| r.seq < s) {
            assert!(
                r.time_max_ms < ts,
                "seek_time({ts}) = {s} skips seq {} with time_max {}",
                r.seq,
                r.time_max_ms
            );
        }
        // And it does not point past a message it must include.
        let first_needed = all.iter().find(|r| r.time_max_ms >= ts).map(|r| r.seq);
        if let Some(n) = first_needed {
            assert!(s <= n);
        }
    }
}

pub async fn concurrent_appends_keep_each_call_in_order(log: Arc<dyn EventLog>, prefix: &str) {
    let start = log.stats().await.unwrap().next_seq;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let log = log.clone();
        let prefix = format!("{prefix}-t{t}");
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let msgs: Vec<_> = (0..5).map(|i| msg(&prefix, round * 5 + i, 1)).collect();
                let res = log.append(msgs).await.unwrap();
                assert!(res.windows(2).all(|w| w[0].seq < w[1].seq));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = read_all(log.as_ref(), start).await;
    assert_eq!(all.len(), 200);
    for t in 0..4 {
        let p = format!("{prefix}-t{t}-");
        let ids: Vec<usize> = all
            .iter()
            .filter_map(|r| r.msg_id.strip_prefix(&p).and_then(|n| n.parse().ok()))
            .collect();
        assert_eq!(
            ids,
            (0..50).collect::<Vec<_>>(),
            "task {t}'s messages in order"
        );
    }
}

pub async fn invalid_messages_rejected(log: Arc<dyn EventLog>, prefix: &str) {
    let before = log.stats().await.unwrap().next_seq;
    for bad in [
        AppendMessage {
            subject: "has space".into(),
            ..msg(prefix, 0, 1)
        },
        AppendMessage {
            subject: "aiops.>".into(),
            ..msg(prefix, 0, 1)
        },
        AppendMessage {
            msg_id: String::new(),
            ..msg(prefix, 0, 1)
        },
        AppendMessage {
            time_min_ms: 5,
            time_max_ms: 1,
            ..msg(prefix, 0, 1)
        },
    ] {
        let e = log.append(vec![msg(prefix, 9, 1), bad]).await.unwrap_err();
        assert!(matches!(e, LogError::InvalidMessage(_)), "{e}");
    }
    assert_eq!(
        log.stats().await.unwrap().next_seq,
        before,
        "a refused call stores nothing"
    );
}

pub async fn closed_log_refuses_appends(log: Arc<dyn EventLog>, prefix: &str) {
    log.append(vec![msg(prefix, 0, 1)]).await.unwrap();
    log.close().await.unwrap();
    assert!(matches!(
        log.append(vec![msg(prefix, 1, 1)]).await,
        Err(LogError::Closed)
    ));
}

/// How long a wake-up may take before the test calls it lost. Generous: the design target is
/// sub-millisecond, but a loaded CI machine must not make the suite flaky.
const WAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits for a change of `rx`, failing the test (with `what`) if none comes in time or the
/// signal is gone.
async fn wait_change(rx: &mut tokio::sync::watch::Receiver<u64>, what: &str) {
    match tokio::time::timeout(WAKE_TIMEOUT, rx.changed()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("{what}: the signal's sender is gone while the log is open"),
        Err(_) => panic!("{what}: no change within {WAKE_TIMEOUT:?} (a lost wake-up)"),
    }
}

pub async fn subscribe_changes_after_append(log: Arc<dyn EventLog>, prefix: &str) {
    let mut rx = log.subscribe();
    let before = *rx.borrow_and_update();
    let appended = log.append(vec![msg(prefix, 0, 1)]).await.unwrap();
    let seq = appended[0].seq;
    // Spurious changes are allowed (the NATS watcher's first delivery), so wait until the value
    // covers the append; every step must be a change, not a timeout.
    while *rx.borrow_and_update() <= seq {
        wait_change(&mut rx, "receiver taken before an append").await;
    }
    assert!(*rx.borrow() >= before, "the value never decreases");
    // A second receiver taken after the append has nothing pending; a later append wakes it.
    let mut late = log.subscribe();
    late.borrow_and_update();
    log.append(vec![msg(prefix, 1, 1)]).await.unwrap();
    wait_change(&mut late, "receiver taken between two appends").await;
}

pub async fn subscribe_no_lost_wakeup(log: Arc<dyn EventLog>, prefix: &str) {
    const N: usize = 12;
    let start = log.stats().await.unwrap().next_seq;
    // The consumer acknowledges each record; the appender appends the next one only then, at a
    // varying delay, so each append lands in another phase of the consumer's cycle (before its
    // read, during it, while it waits) and each wake-up must work on its own: a later append
    // cannot hide a lost one.
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel::<u64>(1);
    let consumer = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut rx = log.subscribe();
            let mut reader = log.reader(start).await.unwrap();
            let mut got = 0usize;
            while got < N {
                rx.borrow_and_update(); // (1)
                let batch = reader.next_batch(100).await.unwrap(); // (2)
                if batch.is_empty() {
                    wait_change(&mut rx, &format!("waiting for record {got}")).await; // (3)
                    continue;
                }
                for r in batch {
                    got += 1;
                    ack_tx.send(r.seq).await.unwrap();
                }
            }
            reader.position()
        })
    };
    for i in 0..N {
        match i % 4 {
            0 => {}
            1 => tokio::task::yield_now().await,
            d => tokio::time::sleep(std::time::Duration::from_millis(d as u64 * 20)).await,
        }
        let a = log.append(vec![msg(prefix, i, 1)]).await.unwrap();
        let seen = tokio::time::timeout(WAKE_TIMEOUT * 2, ack_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("record {i} (seq {}) never read", a[0].seq));
        assert_eq!(seen, Some(a[0].seq));
    }
    assert_eq!(consumer.await.unwrap(), start + N as u64);
}

pub async fn subscribe_concurrent_appenders(log: Arc<dyn EventLog>, prefix: &str) {
    let start = log.stats().await.unwrap().next_seq;
    let mut rx = log.subscribe();
    let mut reader = log.reader(start).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let log = log.clone();
        let prefix = format!("{prefix}-t{t}");
        tasks.push(tokio::spawn(async move {
            // Pauses so the consumer reaches the end and waits, the first time before anything
            // was appended; the long ones outlast a NATS reader's long poll (50 ms).
            for round in 0..10 {
                let pause = if round % 5 == 0 {
                    200
                } else {
                    (t * 7 + round * 13) % 30
                };
                tokio::time::sleep(std::time::Duration::from_millis(pause as u64)).await;
                let msgs: Vec<_> = (0..5).map(|i| msg(&prefix, round * 5 + i, 1)).collect();
                log.append(msgs).await.unwrap();
            }
        }));
    }
    let mut got = Vec::new();
    while got.len() < 200 {
        rx.borrow_and_update();
        let batch = reader.next_batch(64).await.unwrap();
        if batch.is_empty() {
            wait_change(&mut rx, &format!("with {} of 200 records read", got.len())).await;
        }
        got.extend(batch);
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(got.len(), 200);
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        got.iter()
            .all(|r| r.msg_id.starts_with(&format!("{prefix}-t")))
    );
}

pub async fn subscribe_ends_when_log_dropped(log: Arc<dyn EventLog>, prefix: &str) {
    log.append(vec![msg(prefix, 0, 1)]).await.unwrap();
    let mut rx = log.subscribe();
    // Dropping the last handle must stop whatever bumps the signal (the embedded writer thread,
    // the NATS watcher task): its sender goes away, which receivers see as an error.
    drop(log);
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), rx.changed()).await {
            Ok(Err(_)) => break,
            Ok(Ok(())) => continue, // a wake-up still pending from before the drop
            Err(_) => panic!("the signal outlived the log: its task or thread was not stopped"),
        }
    }
}
