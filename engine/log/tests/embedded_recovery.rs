//! Crash recovery, corruption reporting, the directory lock and retention of the embedded log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod suite;

use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use aiops_log::{EventLog, LogError};
use std::path::Path;
use std::time::Duration;

fn cfg(dir: &Path) -> EmbeddedConfig {
    EmbeddedConfig::new(dir.join("log"))
}

#[tokio::test]
async fn torn_tail_is_cut_and_complete_records_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(cfg(dir.path())).await.unwrap();
    log.append((0..10).map(|i| suite::msg("a", i, 1)).collect())
        .await
        .unwrap();
    log.close().await.unwrap();
    drop(log);
    // Cut the last record in the middle, as a crash during write(2) would.
    let seg = suite::segment_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();

    let log = EmbeddedLog::open(cfg(dir.path())).await.unwrap();
    let s = log.stats().await.unwrap();
    assert_eq!(
        s.next_seq, 10,
        "nine complete records kept, the torn one cut"
    );
    let mut r = log.reader(1).await.unwrap();
    let got = suite::read_to_end(&mut r).await.unwrap();
    assert_eq!(got.len(), 9);
    assert_eq!(got[8].msg_id, "a-8");
    // Appends continue with the next sequence, and the torn id can be stored again.
    let res = log.append(vec![suite::msg("a", 9, 1)]).await.unwrap();
    assert_eq!((res[0].seq, res[0].duplicate), (10, false));
}

#[tokio::test]
async fn flipped_bit_in_a_middle_record_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(cfg(dir.path())).await.unwrap();
    log.append((0..10).map(|i| suite::msg("b", i, 1)).collect())
        .await
        .unwrap();
    // Find where record 5 starts by reading the index of its payload.
    log.close().await.unwrap();
    drop(log);
    let seg = suite::segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let needle = b"payload b 5 ";
    let pos = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[pos + 3] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();

    let log = EmbeddedLog::open(cfg(dir.path())).await.unwrap();
    assert_eq!(
        log.stats().await.unwrap().next_seq,
        11,
        "nothing after the damage is cut"
    );
    let mut r = log.reader(1).await.unwrap();
    let mut got = Vec::new();
    let err = loop {
        match r.next_batch(3).await {
            Ok(b) if b.is_empty() => panic!("the corrupt record was skipped silently"),
            Ok(b) => got.extend(b),
            Err(e) => break e,
        }
    };
    assert_eq!(
        got.iter().map(|r| r.msg_id.as_str()).collect::<Vec<_>>(),
        ["b-0", "b-1", "b-2", "b-3", "b-4"]
    );
    match err {
        LogError::Corrupt {
            segment,
            offset,
            reason,
        } => {
            assert_eq!(segment, seg);
            assert!(
                offset > 8 && (offset as usize) < pos,
                "offset {offset} is the record's start"
            );
            assert!(reason.contains("checksum"), "{reason}");
            let msg = LogError::Corrupt {
                segment,
                offset,
                reason,
            }
            .to_string();
            assert!(
                msg.contains(".seg") && msg.contains(&offset.to_string()),
                "{msg}"
            );
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    // Reading again from the same place fails the same way: never served.
    let mut r = log.reader(6).await.unwrap();
    assert!(matches!(
        r.next_batch(10).await,
        Err(LogError::Corrupt { .. })
    ));
    // Records after the damaged one are still readable from their own position.
    let mut r = log.reader(7).await.unwrap();
    let after = suite::read_to_end(&mut r).await;
    assert!(
        matches!(after, Err(LogError::Corrupt { .. }))
            || after.unwrap().first().map(|r| r.seq) == Some(7)
    );
}

#[tokio::test]
async fn a_second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _log = EmbeddedLog::open(cfg(dir.path())).await.unwrap();
    let e = EmbeddedLog::open(cfg(dir.path())).await.unwrap_err();
    assert!(matches!(e, LogError::Config(_)));
    assert!(e.to_string().contains("in use"), "{e}");
}

#[tokio::test]
async fn retention_by_size_and_age_removes_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes = 2048;
    c.retention_bytes = Some(8192);
    let log = EmbeddedLog::open(c).await.unwrap();
    for i in 0..200 {
        log.append(vec![suite::msg("r", i, i as i64)])
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let s = log.stats().await.unwrap();
        if s.bytes <= 8192 + 2048 {
            assert!(s.first_seq > 1, "first_seq moved: {s:?}");
            assert_eq!(s.next_seq, 201);
            // A reader from the start continues at the new first sequence.
            let mut r = log.reader(1).await.unwrap();
            assert_eq!(r.next_batch(1).await.unwrap()[0].seq, s.first_seq);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention did not run: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log.close().await.unwrap();
    drop(log);

    let mut c = cfg(dir.path());
    c.segment_bytes = 2048;
    c.retention_age = Some(Duration::from_millis(1));
    let log = EmbeddedLog::open(c).await.unwrap();
    log.append(vec![suite::msg("r2", 0, 0)]).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while suite::segment_files(dir.path()).len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "age retention did not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn dedup_window_survives_restart_and_indexes_are_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.segment_bytes = 1024;
    let log = EmbeddedLog::open(c.clone()).await.unwrap();
    let first = log
        .append((0..40).map(|i| suite::msg("d", i, i as i64)).collect())
        .await
        .unwrap();
    log.close().await.unwrap();
    drop(log);
    assert!(suite::segment_files(dir.path()).len() > 3);
    let log = EmbeddedLog::open(c).await.unwrap();
    let again = log
        .append(vec![suite::msg("d", 39, 39), suite::msg("d", 0, 0)])
        .await
        .unwrap();
    assert!(again[0].duplicate && again[0].seq == first[39].seq);
    assert!(again[1].duplicate && again[1].seq == first[0].seq);
    assert!(log.seek_time(30).await.unwrap() <= 31);
    let mut r = log.reader(17).await.unwrap();
    assert_eq!(r.next_batch(1).await.unwrap()[0].seq, 17);
}

#[tokio::test]
async fn read_only_open_beside_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(cfg(dir.path())).await.unwrap();
    log.append((0..5).map(|i| suite::msg("ro", i, 1)).collect())
        .await
        .unwrap();
    let mut c = cfg(dir.path());
    c.read_only = true;
    let ro = EmbeddedLog::open(c).await.unwrap();
    let mut r = ro.reader(1).await.unwrap();
    assert_eq!(suite::read_to_end(&mut r).await.unwrap().len(), 5);
    assert!(matches!(
        ro.append(vec![suite::msg("ro", 9, 1)]).await,
        Err(LogError::Config(_))
    ));
    // The writer is unaffected.
    log.append(vec![suite::msg("ro", 5, 1)]).await.unwrap();
    assert_eq!(log.stats().await.unwrap().next_seq, 7);
}
