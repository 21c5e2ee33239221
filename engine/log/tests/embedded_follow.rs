//! A read-only embedded log following a log another writer appends to (`EmbeddedLog::refresh`
//! and the `follow` option): every later record read once and in order, across segment rolls;
//! a record still being written waits and is not corruption; `subscribe` wakes the follower.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod suite;

use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use aiops_log::{EventLog, LogReader, Record};
use std::path::Path;
use std::time::{Duration, Instant};

/// The writer's configuration: small segments, so a few hundred records cross several rolls.
fn writer_cfg(dir: &Path) -> EmbeddedConfig {
    let mut c = EmbeddedConfig::new(dir.join("log"));
    c.segment_bytes = 4096;
    c
}

fn follower_cfg(dir: &Path, follow: Option<Duration>) -> EmbeddedConfig {
    let mut c = EmbeddedConfig::new(dir.join("log"));
    c.read_only = true;
    c.follow = follow;
    c
}

/// Reads `n` records the way a consumer does (mark the signal seen, read, wait for a change),
/// failing after `limit` instead of hanging.
async fn read_following(
    log: &EmbeddedLog,
    r: &mut Box<dyn LogReader>,
    n: usize,
    limit: Duration,
) -> Vec<Record> {
    let mut wake = log.subscribe();
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < n {
        wake.borrow_and_update();
        let b = r.next_batch(64).await.unwrap();
        if b.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let waited = tokio::time::timeout(left, wake.changed()).await;
            assert!(
                waited.is_ok(),
                "the follower read {} of {n} records and was not woken again",
                out.len()
            );
            continue;
        }
        out.extend(b);
    }
    out
}

/// The `i`-th record appended after the follower opened; event times increase with `i`.
fn after(i: usize) -> aiops_log::AppendMessage {
    suite::msg("after", i, 1000 + i as i64 - 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_reads_every_later_record_in_order_across_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(writer_cfg(dir.path())).await.unwrap();
    log.append((0..20).map(|i| suite::msg("before", i, 1)).collect())
        .await
        .unwrap();
    let ro = EmbeddedLog::open(follower_cfg(dir.path(), Some(Duration::from_millis(1))))
        .await
        .unwrap();
    let from = ro.stats().await.unwrap().next_seq;
    assert_eq!(from, 21);
    let mut r = ro.reader(from).await.unwrap();
    let segments_before = suite::segment_files(dir.path()).len();
    // 400 records in calls of 1 to 9 (each call one group commit), concurrently with the
    // follower's refreshes.
    let writer = {
        let msgs: Vec<_> = (0..400).map(after).collect();
        async move {
            let mut rest = msgs.as_slice();
            let mut k = 1;
            while !rest.is_empty() {
                let (now, later) = rest.split_at(k.min(rest.len()));
                log.append(now.to_vec()).await.unwrap();
                rest = later;
                k = k % 9 + 1;
            }
            log
        }
    };
    let (got, log) = tokio::join!(
        read_following(&ro, &mut r, 400, Duration::from_secs(20)),
        writer
    );
    assert!(
        suite::segment_files(dir.path()).len() >= segments_before + 3,
        "the run should cross several segment rolls"
    );
    let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (21..421).collect::<Vec<u64>>(),
        "none missing, none twice"
    );
    for (i, rec) in got.iter().enumerate() {
        let m = after(i);
        assert_eq!((&rec.msg_id, &rec.payload), (&m.msg_id, &m.payload));
        assert!(rec.append_ts_ms > 0);
    }
    // Nothing more, and the follower's view agrees with the writer's.
    assert!(r.next_batch(64).await.unwrap().is_empty());
    assert_eq!(
        ro.stats().await.unwrap().next_seq,
        log.stats().await.unwrap().next_seq
    );
    // A reader opened on the follower now starts anywhere, through the refreshed index.
    let mut mid = ro.reader(300).await.unwrap();
    assert_eq!(mid.next_batch(1).await.unwrap()[0].seq, 300);
    // Record 390 of the later ones (seq 411) is the first with its event time: a block start
    // of the sparse index at most 32 records before it.
    let t = ro.seek_time(1000 + 390).await.unwrap();
    assert!(
        (411 - 32..=411).contains(&t),
        "the time index covers the followed records: {t}"
    );
}

#[tokio::test]
async fn refresh_without_follow_reads_what_was_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(writer_cfg(dir.path())).await.unwrap();
    log.append(vec![suite::msg("a", 0, 1)]).await.unwrap();
    let ro = EmbeddedLog::open(follower_cfg(dir.path(), None))
        .await
        .unwrap();
    let mut r = ro.reader(1).await.unwrap();
    assert_eq!(suite::read_to_end(&mut r).await.unwrap().len(), 1);
    log.append((1..100).map(|i| suite::msg("a", i, 1)).collect())
        .await
        .unwrap();
    // Not seen before a refresh (the log as opened), all of it after.
    assert!(suite::read_to_end(&mut r).await.unwrap().is_empty());
    let rx = ro.subscribe();
    assert_eq!(ro.refresh().unwrap(), 101);
    assert!(
        rx.has_changed().unwrap(),
        "a refresh with new records signals"
    );
    let got = suite::read_to_end(&mut r).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (2..101).collect::<Vec<u64>>()
    );
    // Nothing new: same answer, no signal.
    let mut rx = ro.subscribe();
    rx.borrow_and_update();
    assert_eq!(ro.refresh().unwrap(), 101);
    assert!(!rx.has_changed().unwrap());
    // A writable log's refresh is its next sequence.
    assert_eq!(log.refresh().unwrap(), 101);
}

/// A follower opened on a directory before its writer ever ran (no segment yet).
#[tokio::test]
async fn follower_of_a_log_not_yet_written() {
    let dir = tempfile::tempdir().unwrap();
    // The LOCK file marks the directory as a log; no segment exists yet.
    std::fs::create_dir_all(dir.path().join("log")).unwrap();
    std::fs::write(dir.path().join("log/LOCK"), b"").unwrap();
    let ro = EmbeddedLog::open(follower_cfg(dir.path(), None))
        .await
        .unwrap();
    assert_eq!(ro.refresh().unwrap(), 1);
    let log = EmbeddedLog::open(writer_cfg(dir.path())).await.unwrap();
    log.append(vec![suite::msg("n", 0, 1)]).await.unwrap();
    assert_eq!(ro.refresh().unwrap(), 2);
    let mut r = ro.reader(1).await.unwrap();
    assert_eq!(suite::read_to_end(&mut r).await.unwrap().len(), 1);
}

/// A record the writer has only partly written is a write in progress: the follower serves the
/// complete records before it, reports no corruption, and reads it once it is complete.
#[tokio::test]
async fn partial_tail_waits_for_the_rest_of_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let seg = {
        let log = EmbeddedLog::open(writer_cfg(dir.path())).await.unwrap();
        log.append((0..3).map(|i| suite::msg("p", i, 1)).collect())
            .await
            .unwrap();
        log.close().await.unwrap();
        suite::segment_files(dir.path()).pop().unwrap()
    };
    let complete = std::fs::metadata(&seg).unwrap().len();
    // The bytes one more record takes, written by a writer that is then closed again.
    let record = {
        let log = EmbeddedLog::open(writer_cfg(dir.path())).await.unwrap();
        log.append(vec![suite::msg("p", 3, 1)]).await.unwrap();
        log.close().await.unwrap();
        let all = std::fs::read(&seg).unwrap();
        all[complete as usize..].to_vec()
    };
    assert!(record.len() > 48);
    // Now the file as it is while that record is being written: cut inside it.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(complete).unwrap();
    let ro = EmbeddedLog::open(follower_cfg(dir.path(), None))
        .await
        .unwrap();
    let mut r = ro.reader(1).await.unwrap();
    assert_eq!(suite::read_to_end(&mut r).await.unwrap().len(), 3);
    use std::os::unix::fs::FileExt;
    for cut in [5, 30, record.len() - 1] {
        f.write_all_at(&record[..cut], complete).unwrap();
        assert_eq!(
            ro.refresh().unwrap(),
            4,
            "{cut} bytes of a record are not one"
        );
        assert!(suite::read_to_end(&mut r).await.unwrap().is_empty());
    }
    f.write_all_at(&record, complete).unwrap();
    assert_eq!(ro.refresh().unwrap(), 5);
    let got = suite::read_to_end(&mut r).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].msg_id, "p-3");
}

/// `subscribe` on a following log wakes after another writer's append, and the woken reader
/// finds the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_subscribe_wakes_after_an_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(writer_cfg(dir.path())).await.unwrap();
    log.append(vec![suite::msg("w", 0, 1)]).await.unwrap();
    let ro = EmbeddedLog::open(follower_cfg(dir.path(), Some(Duration::from_millis(1))))
        .await
        .unwrap();
    let mut r = ro.reader(2).await.unwrap();
    for i in 1..4 {
        let mut rx = ro.subscribe();
        rx.borrow_and_update();
        assert!(r.next_batch(10).await.unwrap().is_empty());
        log.append(vec![suite::msg("w", i, 1)]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("the follower's signal did not change within 5 s of the append")
            .unwrap();
        assert_eq!(*rx.borrow(), i as u64 + 2);
        let got = r.next_batch(10).await.unwrap();
        assert_eq!(
            got.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![i as u64 + 1]
        );
    }
    // After close the follow thread stops and refresh refuses.
    ro.close().await.unwrap();
    assert!(matches!(ro.refresh(), Err(aiops_log::LogError::Closed)));
}

/// Retention in the writing process deletes sealed segments; the follower drops them from its
/// list and its readers go on from the oldest segment left.
#[tokio::test]
async fn follower_drops_segments_retention_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = writer_cfg(dir.path());
    c.retention_bytes = Some(8192);
    let log = EmbeddedLog::open(c).await.unwrap();
    let ro = EmbeddedLog::open(follower_cfg(dir.path(), None))
        .await
        .unwrap();
    for i in 0..300 {
        log.append(vec![suite::msg("r", i, 1)]).await.unwrap();
        if i % 50 == 0 {
            ro.refresh().unwrap();
        }
    }
    // Retention runs on the writer's ticks (every second); wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let first = log.stats().await.unwrap().first_seq;
        if first > 1 || Instant::now() > deadline {
            break first;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(first > 1, "retention removed nothing");
    // Two refreshes: the first may still find new records and list nothing.
    ro.refresh().unwrap();
    assert_eq!(ro.refresh().unwrap(), 301);
    assert_eq!(ro.stats().await.unwrap().first_seq, first);
    let mut r = ro.reader(1).await.unwrap();
    let got = suite::read_to_end(&mut r).await.unwrap();
    assert_eq!(got.first().map(|r| r.seq), Some(first));
    assert_eq!(got.last().map(|r| r.seq), Some(300));
}
