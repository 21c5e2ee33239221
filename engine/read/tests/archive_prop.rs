//! Property test of the archive (issue 15, item 7): for random streams with past, future and
//! hour-spanning timestamps, random compaction points, pass sizes and retention, and a simulated
//! crash at every step of a pass (after each file, with the manifest written under its temporary
//! name, after the manifest), the rows a query reads from archive ∪ log are exactly — as a
//! multiset, nothing missing and nothing twice — the rows of the log alone, for every range.
//! A bounded number of cases keeps CI fast; the real `kill -9` of a running engine is in
//! `engine/server/tests/archive_kill9.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use aiops_log::{AppendMessage, EventLog};
use aiops_read::archive::{Archive, ArchiveConfig, ArchiveError, CrashPoint};
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
use aiops_schemas::builders::MetricBatchBuilder;
use aiops_schemas::{Envelope, Kind, encode};
use bytes::Bytes;
use common::{Fixture, T0};
use proptest::prelude::*;
use std::sync::Arc;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// When a row happens, relative to T0 (the test's "now" is a few hours after T0).
#[derive(Debug, Clone, Copy)]
enum When {
    /// Days back (late data, backfills, beyond retention).
    Past(i64),
    /// Minutes around T0 (live data; several in one message span hours).
    Near(i64),
    /// Days ahead (clock skew, hostile input).
    Future(i64),
}

impl When {
    fn ms(self) -> i64 {
        match self {
            When::Past(d) => T0 - d * DAY - 7 * MIN,
            When::Near(m) => T0 + m * MIN,
            When::Future(d) => T0 + d * DAY + 11 * MIN,
        }
    }
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        1 => (1i64..1500).prop_map(When::Past),
        4 => (-360i64..600).prop_map(When::Near),
        1 => (1i64..20_000).prop_map(When::Future),
    ]
}

/// A log message: rows of metrics, or a control message (not archived, must not disturb).
#[derive(Debug, Clone)]
enum Msg {
    Rows(Vec<When>),
    Control,
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        8 => prop::collection::vec(when(), 1..5).prop_map(Msg::Rows),
        1 => Just(Msg::Control),
    ]
}

fn crash() -> impl Strategy<Value = Option<CrashPoint>> {
    prop_oneof![
        3 => Just(None),
        2 => (0usize..4).prop_map(|n| Some(CrashPoint::AfterFiles(n))),
        1 => Just(Some(CrashPoint::ManifestTemp)),
        1 => Just(Some(CrashPoint::AfterManifest)),
    ]
}

/// Between passes: append some messages; then one pass.
#[derive(Debug, Clone)]
struct Step {
    append: usize,
    /// The pass's cutoff, hours after T0.
    cutoff_h: i64,
    max_rows: usize,
    /// Run retention (30 days) in this pass.
    expire: bool,
    crash: Option<CrashPoint>,
}

fn step() -> impl Strategy<Value = Step> {
    (0usize..5, -3i64..12, 1usize..12, any::<bool>(), crash()).prop_map(
        |(append, cutoff_h, max_rows, expire, crash)| Step {
            append,
            cutoff_h,
            max_rows,
            expire,
            crash,
        },
    )
}

/// `(time, value)` rows; value is the row's unique identity.
type Rows = Vec<(i64, f64)>;

fn encode_msg(i: usize, m: &Msg, next_value: &mut f64, truth: &mut Rows) -> AppendMessage {
    match m {
        Msg::Control => AppendMessage {
            subject: "aiops.control".to_string(),
            msg_id: format!("c{i}"),
            time_min_ms: T0,
            time_max_ms: T0,
            payload: Bytes::from_static(b"{}"),
        },
        Msg::Rows(ws) => {
            let mut b = MetricBatchBuilder::new();
            for w in ws {
                let v = *next_value;
                *next_value += 1.0;
                truth.push((w.ms(), v));
                b.push(w.ms(), "p", [("host", "h")], v);
            }
            let range = b.time_range().unwrap();
            let batch = b.finish().unwrap();
            let env = Envelope::new(Kind::Metrics, "prop", 0, range, &batch);
            AppendMessage {
                subject: Kind::Metrics.subject((i % 3) as u32),
                msg_id: format!("m{i}"),
                time_min_ms: range.0,
                time_max_ms: range.1,
                payload: Bytes::from(encode(&env, &batch).unwrap()),
            }
        }
    }
}

async fn rows(fx: &Fixture, with_archive: bool, range: Option<(i64, i64)>) -> Rows {
    let ctx = fx.session(with_archive).await;
    let filter = range.map_or(String::new(), |(a, b)| {
        format!(" WHERE time BETWEEN to_timestamp_millis({a}) AND to_timestamp_millis({b})")
    });
    let q = format!("SELECT time, value FROM metrics{filter}");
    let mut out = Vec::new();
    for b in ctx.sql(&q).await.unwrap().collect().await.unwrap() {
        let t = b.column(0).as_primitive::<TimestampMillisecondType>();
        let v = b.column(1).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            out.push((t.value(i), v.value(i)));
        }
    }
    sorted(out)
}

fn sorted(mut r: Rows) -> Rows {
    r.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    r
}

fn in_range(truth: &Rows, range: Option<(i64, i64)>) -> Rows {
    sorted(
        truth
            .iter()
            .filter(|(t, _)| range.is_none_or(|(a, b)| *t >= a && *t <= b))
            .copied()
            .collect(),
    )
}

async fn run(msgs: Vec<Msg>, steps: Vec<Step>, picks: Vec<(usize, i64)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EmbeddedConfig::new(dir.path().join("log"));
    cfg.segment_bytes = 16 << 10;
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(cfg).await.unwrap());
    let adir = dir.path().join("archive");
    let archive = Arc::new(Archive::open(&adir).unwrap());
    let mut fx = Fixture { dir, log, archive };
    let (mut truth, mut value, mut queue) = (Rows::new(), 0.0, msgs.iter().enumerate());
    let mut crashes = 0;
    for s in &steps {
        let batch: Vec<AppendMessage> = queue
            .by_ref()
            .take(s.append)
            .map(|(i, m)| encode_msg(i, m, &mut value, &mut truth))
            .collect();
        if !batch.is_empty() {
            fx.log.append(batch).await.unwrap();
        }
        let acfg = ArchiveConfig {
            max_rows_per_pass: s.max_rows,
            row_group_rows: 1024,
            ..ArchiveConfig::default()
        };
        let expire = if s.expire { T0 - 30 * DAY } else { i64::MIN };
        let r = fx
            .archive
            .compact_until(&fx.log, T0 + s.cutoff_h * HOUR, expire, &acfg, s.crash)
            .await;
        match r {
            Ok(_) => {}
            Err(ArchiveError::Interrupted) => {
                // As after kill -9: a new process opens the directory as the crash left it.
                crashes += 1;
                fx.archive = Arc::new(Archive::open(&adir).unwrap());
            }
            Err(e) => panic!("compaction failed: {e}"),
        }
        assert_eq!(
            rows(&fx, true, None).await,
            sorted(truth.clone()),
            "after step {s:?}"
        );
    }
    // The rest, then compaction to the end (everything old enough).
    let rest: Vec<AppendMessage> = queue
        .map(|(i, m)| encode_msg(i, m, &mut value, &mut truth))
        .collect();
    if !rest.is_empty() {
        fx.log.append(rest).await.unwrap();
    }
    let acfg = ArchiveConfig {
        max_rows_per_pass: 7,
        ..ArchiveConfig::default()
    };
    loop {
        let r = fx
            .archive
            .compact(&fx.log, T0 + 20 * HOUR, T0 - 30 * DAY, &acfg)
            .await
            .unwrap();
        if r.messages == 0 {
            break;
        }
    }
    assert_eq!(
        fx.archive.archived_through(),
        fx.log.stats().await.unwrap().next_seq,
        "compaction reached the end of the log ({crashes} crashes)"
    );
    // Every range: around each picked row, its hour, and everything.
    let times: Vec<i64> = truth.iter().map(|r| r.0).collect();
    let mut ranges = vec![None, Some((T0 - DAY, T0 + DAY))];
    for (i, pad) in picks {
        if let Some(t) = times.get(i % times.len().max(1)) {
            ranges.push(Some((*t, *t)));
            ranges.push(Some((t - pad, t + pad)));
            let h = t.div_euclid(HOUR) * HOUR;
            ranges.push(Some((h, h + HOUR - 1)));
        }
    }
    for r in ranges {
        let want = in_range(&truth, r);
        assert_eq!(rows(&fx, false, r).await, want, "log alone, range {r:?}");
        assert_eq!(rows(&fx, true, r).await, want, "archive ∪ log, range {r:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn archive_union_log_equals_log_alone(
        msgs in prop::collection::vec(msg(), 1..24),
        steps in prop::collection::vec(step(), 1..8),
        picks in prop::collection::vec((any::<usize>(), 0i64..(3 * HOUR)), 1..3),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(msgs, steps, picks));
    }
}

/// Parquet files on disk under the archive directory.
fn parquet_on_disk(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += parquet_on_disk(&p);
        } else if p.extension().is_some_and(|x| x == "parquet" || x == "tmp") {
            n += 1;
        }
    }
    n
}

/// Every crash point of one pass, deterministically: the pass writes several files (rows in
/// the past, in three hours around T0 and in the future); stopped after each file, with the
/// manifest only under its temporary name, and after the manifest, then reopened: the
/// directory holds exactly the files the manifest lists, and queries equal the log alone
/// before and after compaction runs to the end.
#[test]
fn every_crash_point_of_a_pass_leaves_archive_union_log_exact() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let msgs: Vec<Msg> = vec![
            Msg::Rows(vec![When::Past(400), When::Near(-200), When::Future(900)]),
            Msg::Rows(vec![When::Near(-100), When::Near(10)]),
            Msg::Control,
            Msg::Rows(vec![When::Near(70), When::Past(3)]),
            Msg::Rows(vec![When::Near(500)]),
        ];
        let mut points: Vec<CrashPoint> = (0..10).map(CrashPoint::AfterFiles).collect();
        points.extend([CrashPoint::ManifestTemp, CrashPoint::AfterManifest]);
        for point in points {
            let dir = tempfile::tempdir().unwrap();
            let log: Arc<dyn EventLog> = Arc::new(
                EmbeddedLog::open(EmbeddedConfig::new(dir.path().join("log")))
                    .await
                    .unwrap(),
            );
            let adir = dir.path().join("archive");
            let archive = Arc::new(Archive::open(&adir).unwrap());
            let mut fx = Fixture { dir, log, archive };
            let (mut truth, mut value) = (Rows::new(), 0.0);
            let batch = msgs
                .iter()
                .enumerate()
                .map(|(i, m)| encode_msg(i, m, &mut value, &mut truth))
                .collect();
            fx.log.append(batch).await.unwrap();
            let cfg = ArchiveConfig::default();
            let cutoff = T0 + 4 * HOUR;
            let r = fx
                .archive
                .compact_until(&fx.log, cutoff, i64::MIN, &cfg, Some(point))
                .await;
            // Eight files: two past hours, four around T0, two in the future (T0 + 8h20 is more
            // than `after` ahead of this pass's clock, T0 + 6h). AfterFiles(8) is "all written,
            // no manifest yet"; AfterFiles(9) is never reached.
            let reached = !matches!(point, CrashPoint::AfterFiles(n) if n > 8);
            assert_eq!(
                matches!(r, Err(ArchiveError::Interrupted)),
                reached,
                "{point:?}: {r:?}"
            );
            fx.archive = Arc::new(Archive::open(&adir).unwrap());
            assert_eq!(
                parquet_on_disk(&adir),
                fx.archive.stats().files as usize,
                "{point:?}: files on disk beyond the manifest"
            );
            let want = sorted(truth.clone());
            assert_eq!(rows(&fx, true, None).await, want, "{point:?}");
            fx.archive
                .compact(&fx.log, cutoff, i64::MIN, &cfg)
                .await
                .unwrap();
            assert_eq!(
                fx.archive.archived_through(),
                fx.log.stats().await.unwrap().next_seq,
                "{point:?}"
            );
            assert_eq!(rows(&fx, true, None).await, want, "{point:?}");
            let around = Some((T0 - 4 * HOUR, T0 + 2 * HOUR));
            assert_eq!(
                rows(&fx, true, around).await,
                in_range(&truth, around),
                "{point:?}"
            );
        }
    });
}
