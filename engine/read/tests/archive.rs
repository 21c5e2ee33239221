//! The Parquet archive: a query over a range spanning archive and live log equals the same query
//! on the log alone; time ranges prune files; a crashed pass leaves nothing half-written;
//! retention removes old files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aiops_read::archive::ArchiveConfig;
use aiops_read::timerange::TimeRange;
use common::*;
use datafusion::arrow::util::pretty::pretty_format_batches;

const QUERIES: &[&str] = &[
    "SELECT count(*), sum(value), min(time), max(time) FROM metrics",
    "SELECT labels['host'] AS host, count(*), avg(value) FROM metrics GROUP BY 1 ORDER BY 1",
    "SELECT time, labels['host'], value FROM metrics WHERE time BETWEEN '2026-12-02T08:25:00Z' AND '2026-12-02T08:35:00Z' ORDER BY 1, 2",
    "SELECT date_trunc('minute', time) AS m, max(value) FROM metrics WHERE time >= '2026-12-02T08:20:00Z' AND time < '2026-12-02T08:40:00Z' GROUP BY 1 ORDER BY 1",
    "SELECT window_start, host, avg_cpu FROM cpu_1m ORDER BY 1",
    "SELECT time, type, message, labels['service'] FROM events",
];

async fn answers(ctx: &datafusion::prelude::SessionContext) -> Vec<String> {
    let mut out = Vec::new();
    for q in QUERIES {
        let b = ctx.sql(q).await.unwrap().collect().await.unwrap();
        out.push(pretty_format_batches(&b).unwrap().to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_plus_log_equals_log_alone() {
    let fx = fixture().await;
    let want = answers(&fx.session(false).await).await;
    assert!(want[0].contains("720"), "{}", want[0]);

    // Archive everything older than 08:30 (in several small passes), the rest stays live.
    let cfg = ArchiveConfig {
        max_rows_per_pass: 100,
        row_group_rows: 1024,
        ..ArchiveConfig::default()
    };
    let cutoff = T0 + 30 * 60_000;
    let mut passes = 0;
    loop {
        let r = fx
            .archive
            .compact(&fx.log, cutoff, i64::MIN, &cfg)
            .await
            .unwrap();
        passes += 1;
        if r.rows == 0 {
            break;
        }
    }
    assert!(passes > 3, "small passes expected, got {passes}");
    let stats = fx.archive.stats();
    assert!(stats.files > 0 && stats.rows > 0, "{stats:?}");
    assert!(stats.archived_through > 1);
    for f in fx.archive.files("metrics", TimeRange::ALL) {
        assert!(f.1.time_max_ms < cutoff, "{f:?}");
        assert!(
            f.0.to_string_lossy().contains("/metrics/2026-12-02T08/"),
            "{f:?}"
        );
    }
    let got = answers(&fx.session(true).await).await;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "query {i}: {}", QUERIES[i]);
    }

    // Pruning: a range after the cutoff needs no archive file; one inside needs only some.
    let late = TimeRange {
        from_ms: cutoff + 60_000,
        to_ms: i64::MAX,
    };
    assert!(fx.archive.files("metrics", late).is_empty());
    let early = TimeRange {
        from_ms: T0,
        to_ms: T0 + 60_000,
    };
    let all = fx.archive.files("metrics", TimeRange::ALL).len();
    assert!(fx.archive.files("metrics", early).len() < all);

    // Reopened (as after a restart), the archive answers the same.
    let reopened = std::sync::Arc::new(
        aiops_read::archive::Archive::open(&fx.dir.path().join("archive")).unwrap(),
    );
    assert_eq!(reopened.stats(), fx.archive.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_files_are_removed_and_retention_expires_old_hours() {
    let fx = fixture().await;
    let dir = fx.dir.path().join("archive");
    let cfg = ArchiveConfig::default();
    fx.archive
        .compact(&fx.log, T0 + 3_600_000, i64::MIN, &cfg)
        .await
        .unwrap();
    let before = fx.archive.stats();
    assert_eq!(before.rows, 720 + 60 + 1);
    // A pass killed after writing a file but before the manifest leaves an unlisted file.
    let stray = dir.join("metrics/2026-12-02T08/999-1000-0.parquet");
    std::fs::write(&stray, b"half").unwrap();
    std::fs::write(dir.join("metrics/2026-12-02T08/x.parquet.tmp"), b"half").unwrap();
    let reopened = aiops_read::archive::Archive::open(&dir).unwrap();
    assert!(!stray.exists());
    assert_eq!(reopened.stats(), before);
    // Retention: everything is older than the expiry point.
    let r = reopened
        .compact(&fx.log, T0 + 3_600_000, T0 + 2 * 3_600_000, &cfg)
        .await
        .unwrap();
    assert!(r.expired_files > 0);
    assert_eq!(reopened.stats().files, 0);
}
