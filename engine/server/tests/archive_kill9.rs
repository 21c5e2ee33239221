//! `kill -9` of `aiops run` while its archive compacts (issue 15, item 7): the engine runs with
//! an archive that compacts every 50 ms in passes of a few rows, takes samples dated in the past,
//! the present, the near future and spanning hours, and is killed with SIGKILL at staggered
//! moments, again and again. Afterwards `aiops sql` over archive + log returns exactly the rows
//! of the log alone — each acknowledged sample once — and the archive did archive most of them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, post_ndjson};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ROUNDS: usize = 8;
const ROWS_PER_ROUND: usize = 40;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

#[allow(clippy::disallowed_methods)] // the engine compacts by wall clock: data near its "now"
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const ENV: &[(&str, &str)] = &[
    ("AIOPS__ARCHIVE__AFTER", "1s"),
    ("AIOPS__ARCHIVE__INTERVAL", "50ms"),
    ("AIOPS__ARCHIVE__MAX_ROWS_PER_PASS", "7"),
];

/// `aiops sql` as CSV, with or without the archive.
fn sql_csv(data_dir: &Path, archive: bool, q: &str) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aiops"));
    c.args(["sql", "--format", "csv", q])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--log")
        .arg("embedded");
    if !archive {
        c.env("AIOPS__ARCHIVE__ENABLED", "false");
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "aiops sql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kill9_during_compaction_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = aiops_testkit::free_port();
    let mut a = Aiops::start_env(dir.path(), "embedded", port, &[], ENV);
    let mut want = Vec::new();
    for round in 0..ROUNDS {
        let now = now_ms();
        let mut body = String::new();
        for j in 0..ROWS_PER_ROUND {
            let v = round * 1000 + j;
            // Past (up to ~300 days), now, the next 50 minutes, and a series whose samples in
            // one request span several hours.
            let t = match j % 5 {
                0 => now - (1 + (v as i64 * 7919) % 300) * DAY,
                1 => now - (v as i64 % 1000),
                2 => now + (1 + v as i64 % 50) * MIN,
                _ => now - (j as i64 % 7) * HOUR - v as i64 % 1000,
            };
            let series = if j % 5 >= 3 {
                "span".to_string()
            } else {
                format!("s{}", j % 4)
            };
            body.push_str(&format!(
                "{{\"name\":\"arch_probe\",\"labels\":{{\"series\":\"{series}\"}},\"value\":{v},\"time\":{t}}}\n"
            ));
            want.push((t, v));
        }
        post_ndjson(&a, "/api/ingest/metrics", &body);
        // Staggered kills: early in a pass, in the middle of several, after a quiet spell.
        std::thread::sleep(Duration::from_millis(30 + (round as u64 * 97) % 400));
        a.kill9();
        a = Aiops::start_env(dir.path(), "embedded", port, &[], ENV);
    }
    // Let compaction catch up on what is now older than `after`, then stop cleanly.
    std::thread::sleep(Duration::from_millis(2500));
    a.stop();

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("archive/manifest.json")).expect("a manifest"),
    )
    .unwrap();
    let archived_rows: u64 = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert!(
        archived_rows as usize >= want.len() / 2,
        "the archive holds only {archived_rows} of {} rows: {manifest}",
        want.len()
    );
    want.sort_by_key(|r| r.1);
    let expected: String = std::iter::once("t,value\n".to_string())
        .chain(want.iter().map(|(t, v)| format!("{t},{v}\n")))
        .collect();
    let q = "SELECT CAST(time AS BIGINT) AS t, CAST(value AS BIGINT) AS value \
             FROM metrics WHERE name = 'arch_probe' ORDER BY value, t";
    let log_alone = sql_csv(dir.path(), false, q);
    let with_archive = sql_csv(dir.path(), true, q);
    assert_eq!(
        log_alone, expected,
        "the log holds every acknowledged sample once"
    );
    assert_eq!(with_archive, log_alone, "archive ∪ log == log alone");
    // Over a range too (pruning of files, row groups and log messages).
    let now = now_ms();
    let ranged = format!(
        "SELECT count(*) AS n, sum(value) AS s FROM metrics WHERE name = 'arch_probe' \
         AND time BETWEEN to_timestamp_millis({}) AND to_timestamp_millis({})",
        now - 3 * HOUR,
        now + HOUR
    );
    assert_eq!(
        sql_csv(dir.path(), true, &ranged),
        sql_csv(dir.path(), false, &ranged)
    );
}
