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
    // Retention: everything is older than the expiry point, but the log still holds every
    // message, so deleting a file would hide its rows (reads skip the archived prefix of the log).
    let r = reopened
        .compact(&fx.log, T0 + 3_600_000, T0 + 2 * 3_600_000, &cfg)
        .await
        .unwrap();
    assert_eq!(r.expired_files, 0);
    assert_eq!(reopened.stats(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_files_once_the_log_has_dropped_their_messages() {
    use aiops_log::EventLog;
    use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let mut lcfg = EmbeddedConfig::new(dir.path().join("log"));
    lcfg.segment_bytes = 4 << 10;
    lcfg.retention_bytes = Some(16 << 10);
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(lcfg).await.unwrap());
    let archive = aiops_read::archive::Archive::open(&dir.path().join("archive")).unwrap();
    let old = T0 - 40 * DAY;
    for i in 0..5 {
        log.append(vec![metric_msg(&format!("old{i}"), &[(old + i, i as f64)])])
            .await
            .unwrap();
    }
    let cfg = ArchiveConfig::default();
    let expire = T0 - 30 * DAY;
    let r = archive.compact(&log, T0, expire, &cfg).await.unwrap();
    assert_eq!((r.rows, r.expired_files), (5, 0), "{r:?}");
    // New data pushes the old messages out of the log (its size retention) …
    let mut i = 0;
    while log.stats().await.unwrap().first_seq <= 5 {
        log.append(vec![metric_msg(&format!("new{i}"), &[(T0 + i, 0.5)])])
            .await
            .unwrap();
        i += 1;
        assert!(i < 10_000, "the log's retention never removed a segment");
    }
    // … and only now may the archive's retention delete their file.
    let r = archive.compact(&log, T0, expire, &cfg).await.unwrap();
    assert_eq!(r.expired_files, 1, "{r:?}");
    assert!(
        archive
            .files("metrics", TimeRange::ALL)
            .iter()
            .all(|(_, f)| f.time_max_ms >= T0)
    );
}

// ---- issue 15, item 7: no row lost by compaction, none hidden, compaction keeps moving ----

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// One metrics message with a sample per `(time, value)` (value = the row's identity).
fn metric_msg(id: &str, rows: &[(i64, f64)]) -> aiops_log::AppendMessage {
    let mut b = aiops_schemas::builders::MetricBatchBuilder::new();
    for (t, v) in rows {
        b.push(*t, "probe", [("host", "x")], *v);
    }
    let range = b.time_range().unwrap();
    let batch = b.finish().unwrap();
    let env = aiops_schemas::Envelope::new(aiops_schemas::Kind::Metrics, "test", 0, range, &batch);
    aiops_log::AppendMessage {
        subject: aiops_schemas::Kind::Metrics.subject(0),
        msg_id: id.to_string(),
        time_min_ms: range.0,
        time_max_ms: range.1,
        payload: bytes::Bytes::from(aiops_schemas::encode(&env, &batch).unwrap()),
    }
}

/// `(time, value)` of every `probe` row in `[from, to]` (or all), ordered by value.
async fn probe_rows(
    ctx: &datafusion::prelude::SessionContext,
    range: Option<(i64, i64)>,
) -> Vec<(i64, f64)> {
    use aiops_schemas::arrow_array::cast::AsArray;
    use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
    let filter = match range {
        Some((a, b)) => {
            format!(" AND time BETWEEN to_timestamp_millis({a}) AND to_timestamp_millis({b})")
        }
        None => String::new(),
    };
    let q = format!("SELECT time, value FROM metrics WHERE name = 'probe'{filter} ORDER BY value");
    let mut out = Vec::new();
    for b in ctx.sql(&q).await.unwrap().collect().await.unwrap() {
        let t = b.column(0).as_primitive::<TimestampMillisecondType>();
        let v = b.column(1).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            out.push((t.value(i), v.value(i)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_older_than_retention_are_not_lost_while_the_log_holds_them() {
    // The hostile tester's 15 → 13: samples dated years back were archived and deleted by
    // retention in the same pass, while the log (read only after `archived_through`) still held
    // them.
    let fx = fixture().await;
    let mut rows = Vec::new();
    let times = [0, T0 - 400 * DAY, T0 - 40 * DAY, T0 - 2 * HOUR, T0 - HOUR];
    for (i, t) in times.iter().enumerate() {
        rows.push((*t, i as f64));
        fx.log
            .append(vec![metric_msg(&format!("old{i}"), &[(*t, i as f64)])])
            .await
            .unwrap();
    }
    let want = probe_rows(&fx.session(false).await, None).await;
    assert_eq!(want, {
        let mut r = rows.clone();
        r.sort_by(|a, b| a.1.total_cmp(&b.1));
        r
    });
    let cfg = ArchiveConfig::default();
    let r = fx
        .archive
        .compact(&fx.log, T0 + 3 * HOUR, T0 - 30 * DAY, &cfg)
        .await
        .unwrap();
    assert!(r.rows >= 5, "{r:?}");
    assert_eq!(r.expired_files, 0, "the log still holds every message");
    assert_eq!(probe_rows(&fx.session(true).await, None).await, want);
    let range = Some((T0 - 500 * DAY, T0));
    assert_eq!(
        probe_rows(&fx.session(true).await, range).await,
        probe_rows(&fx.session(false).await, range).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_sample_does_not_stop_compaction() {
    let fx = fixture().await;
    // Far in the future (the tester used year 33658), then ordinary data behind it.
    let future = T0 + 10 * 365 * DAY;
    fx.log
        .append(vec![
            metric_msg("future", &[(future, 1.0)]),
            metric_msg("late", &[(T0 + 10 * 60_000, 2.0)]),
        ])
        .await
        .unwrap();
    let next = fx.log.stats().await.unwrap().next_seq;
    let want = probe_rows(&fx.session(false).await, None).await;
    let cfg = ArchiveConfig::default();
    let r = fx
        .archive
        .compact(&fx.log, T0 + 3 * HOUR, i64::MIN, &cfg)
        .await
        .unwrap();
    assert_eq!(
        r.archived_through, next,
        "archived_through must pass the future sample: {r:?}"
    );
    assert!(
        fx.archive
            .files(
                "metrics",
                TimeRange {
                    from_ms: future,
                    to_ms: future
                }
            )
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains("/metrics/2036-"))
    );
    assert_eq!(probe_rows(&fx.session(true).await, None).await, want);
    assert_eq!(
        probe_rows(&fx.session(true).await, Some((future - 1, future + 1))).await,
        vec![(future, 1.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_data_holds_compaction_back_only_for_a_bounded_time() {
    let fx = fixture().await;
    // A sample a little ahead of the clock is not archived at once (it is live) …
    let now = T0 + 5 * HOUR;
    let after = 2 * HOUR;
    fx.log
        .append(vec![
            metric_msg("ahead", &[(now + 30 * 60_000, 1.0)]),
            metric_msg("behind", &[(T0, 2.0)]),
        ])
        .await
        .unwrap();
    let next = fx.log.stats().await.unwrap().next_seq;
    let cfg = ArchiveConfig::default();
    let r = fx
        .archive
        .compact(&fx.log, now - after, i64::MIN, &cfg)
        .await
        .unwrap();
    assert!(r.archived_through < next, "{r:?}");
    // … but two `after` later it is, and what was behind it too.
    let later = now + 2 * after;
    let r = fx
        .archive
        .compact(&fx.log, later - after, i64::MIN, &cfg)
        .await
        .unwrap();
    assert_eq!(r.archived_through, next, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_spanning_years_keeps_every_row_in_its_hour() {
    let fx = fixture().await;
    let rows = [
        (0, 1.0),
        (T0 - 3 * 365 * DAY, 2.0),
        (T0 - 90 * 60_000, 3.0),
        (T0 - 1, 4.0),
        (T0 + 2 * HOUR + 1, 5.0),
        (T0 + 50 * 365 * DAY, 6.0),
    ];
    fx.log
        .append(vec![metric_msg("span", &rows)])
        .await
        .unwrap();
    let want = probe_rows(&fx.session(false).await, None).await;
    assert_eq!(want, rows.to_vec());
    let cfg = ArchiveConfig::default();
    fx.archive
        .compact(&fx.log, T0 + 3 * HOUR, i64::MIN, &cfg)
        .await
        .unwrap();
    assert_eq!(
        fx.archive.stats().archived_through,
        fx.log.stats().await.unwrap().next_seq
    );
    assert_eq!(probe_rows(&fx.session(true).await, None).await, want);
    for (t, v) in rows {
        let files = fx.archive.files(
            "metrics",
            TimeRange {
                from_ms: t,
                to_ms: t,
            },
        );
        assert!(
            files
                .iter()
                .any(|(_, f)| f.time_min_ms <= t && t <= f.time_max_ms),
            "row {v} at {t} is in no file"
        );
        assert_eq!(
            probe_rows(&fx.session(true).await, Some((t, t))).await,
            vec![(t, v)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_during_compaction_see_every_row_once() {
    // A scan used to read the archive's file list and `archived_through` at two moments: a pass
    // finishing in between hid the rows it moved (or doubled them).
    let fx = fixture().await;
    let ctx = fx.session(true).await;
    let q = "SELECT count(*) AS n, sum(value) AS s FROM metrics";
    let want = pretty_format_batches(&ctx.sql(q).await.unwrap().collect().await.unwrap())
        .unwrap()
        .to_string();
    let cfg = ArchiveConfig {
        max_rows_per_pass: 12,
        row_group_rows: 1024,
        ..ArchiveConfig::default()
    };
    let (archive, log) = (fx.archive.clone(), fx.log.clone());
    let compactor = tokio::spawn(async move {
        loop {
            let r = archive
                .compact(&log, T0 + 2 * HOUR, i64::MIN, &cfg)
                .await
                .unwrap();
            if r.messages == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
    });
    let mut queries = 0;
    while !compactor.is_finished() || queries < 5 {
        let got = pretty_format_batches(&ctx.sql(q).await.unwrap().collect().await.unwrap())
            .unwrap()
            .to_string();
        assert_eq!(got, want, "after {queries} queries");
        queries += 1;
    }
    compactor.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_stream_without_a_time_column_survives_compaction() {
    use aiops_schemas::arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use aiops_schemas::arrow_schema::{DataType, Field, Schema};
    use aiops_schemas::derived::{DerivedHeader, DerivedWhat, encode_derived};
    use std::sync::Arc;
    let fx = fixture().await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("team", DataType::Utf8, false),
        Field::new("errors", DataType::Float64, false),
    ]));
    let mut msgs = Vec::new();
    for i in 0..3 {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["db", "web"])),
            Arc::new(Float64Array::from(vec![i as f64, 10.0 + i as f64])),
        ];
        let b = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let h = DerivedHeader {
            what: DerivedWhat::Events,
            window_start_ms: T0 + i * 60_000,
            pipeline: "teams".to_string(),
        };
        msgs.push(aiops_log::AppendMessage {
            subject: "aiops.derived.team_errors".to_string(),
            msg_id: format!("t{i}"),
            time_min_ms: T0 + i * 60_000,
            time_max_ms: T0 + i * 60_000,
            payload: bytes::Bytes::from(encode_derived(&h, &b).unwrap()),
        });
    }
    fx.log.append(msgs).await.unwrap();
    let q = "SELECT team, errors FROM team_errors ORDER BY errors";
    let ctx = fx.session(false).await;
    let want = pretty_format_batches(&ctx.sql(q).await.unwrap().collect().await.unwrap())
        .unwrap()
        .to_string();
    assert!(want.contains("12.0"), "{want}");
    fx.archive
        .compact(&fx.log, T0 + 3 * HOUR, i64::MIN, &ArchiveConfig::default())
        .await
        .unwrap();
    assert!(
        !fx.archive
            .files("derived.team_errors", TimeRange::ALL)
            .is_empty()
    );
    let ctx = fx.session(true).await;
    let got = pretty_format_batches(&ctx.sql(q).await.unwrap().collect().await.unwrap())
        .unwrap()
        .to_string();
    assert_eq!(got, want);
}
