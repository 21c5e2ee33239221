//! Session windows in the streaming runtime: results against a straightforward reference
//! (each key's events sorted, split where the distance reaches the gap), merging of sessions a
//! row bridges, revisions and late rows, checkpoints, and byte-identical output whatever the
//! batching.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_sql::runtime::watermark::WatermarkConfig;
use aiops_sql::runtime::{Emission, EmissionKind, RuntimeConfig, StreamingPipeline, timestamps_ms};
use common::Rng;
use common::*;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, UInt32Type};
use datafusion::arrow::ipc::writer::StreamWriter;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

const GAP_MS: i64 = 10_000;

const SQL: &str = "\
INSERT INTO host_sessions
SELECT
  session(time, INTERVAL '10 seconds') AS window_start,
  labels['host'] AS host,
  count(*) AS n,
  sum(value) AS total,
  min(value) AS lo,
  max(value) AS hi,
  max(time) AS last_time
FROM metrics
GROUP BY session(time, INTERVAL '10 seconds'), labels['host']
";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// The session pipeline, written to a temporary directory.
fn pipeline_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("host_sessions.sql");
    std::fs::write(&file, SQL).unwrap();
    (dir, file)
}

async fn compile_sql(file: &Path, cfg: RuntimeConfig) -> StreamingPipeline {
    StreamingPipeline::compile(file, SQL, &[], cfg)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn cfg(delay_ms: i64, allowed_lateness_ms: i64) -> RuntimeConfig {
    RuntimeConfig {
        watermark: WatermarkConfig {
            delay_ms,
            idle_timeout_ms: 300_000,
        },
        allowed_lateness_ms,
    }
}

/// A metric sample of `host` at `t` with `value`.
fn sample(host: &str, t: i64, value: f64) -> Row {
    Row::Metric {
        t,
        name: "up",
        labels: vec![("host", host.to_string())],
        value,
    }
}

fn batch(rows: &[Row]) -> RecordBatch {
    to_batch("metrics", rows)
}

/// One output row: host, session start, count, sum, min, max, last event time.
type Out = (String, i64, i64, i64, i64, i64, i64);

/// A session's id, revision and values.
#[derive(Debug, Clone, PartialEq)]
struct Emitted {
    id: String,
    revision: u32,
    row: Out,
}

fn emitted(out: &[Emission]) -> Vec<Emitted> {
    let mut v = Vec::new();
    for e in out.iter().filter(|e| e.kind == EmissionKind::Output) {
        let b = &e.batch;
        let col = |name: &str| b.column_by_name(name).unwrap();
        let ids = col("event_id").as_string::<i32>();
        let revs = col("revision").as_primitive::<UInt32Type>();
        let starts = timestamps_ms(col("window_start").as_ref()).unwrap();
        let hosts = col("host").as_string::<i32>();
        let n = col("n").as_primitive::<Int64Type>();
        let total = col("total").as_primitive::<Float64Type>();
        let lo = col("lo").as_primitive::<Float64Type>();
        let hi = col("hi").as_primitive::<Float64Type>();
        let last = timestamps_ms(col("last_time").as_ref()).unwrap();
        for i in 0..b.num_rows() {
            assert!(
                starts[i] >= e.window_start_ms,
                "an emission's start is its earliest session's"
            );
            v.push(Emitted {
                id: ids.value(i).to_string(),
                revision: revs.value(i),
                row: (
                    hosts.value(i).to_string(),
                    starts[i],
                    n.value(i),
                    total.value(i) as i64,
                    lo.value(i) as i64,
                    hi.value(i) as i64,
                    last[i],
                ),
            });
        }
    }
    v
}

/// Sessions computed directly: per host, events sorted by time, a new session wherever the
/// distance to the previous event is at least the gap.
fn reference(rows: &[Row]) -> Vec<Out> {
    let mut by_host: std::collections::BTreeMap<String, Vec<(i64, i64)>> = Default::default();
    for r in rows {
        if let Row::Metric {
            t, labels, value, ..
        } = r
        {
            by_host
                .entry(labels[0].1.clone())
                .or_default()
                .push((*t, *value as i64));
        }
    }
    let mut out = Vec::new();
    for (host, mut evs) in by_host {
        evs.sort();
        let mut cur: Option<Out> = None;
        for (t, v) in evs {
            match &mut cur {
                Some(s) if t - s.6 < GAP_MS => {
                    s.2 += 1;
                    s.3 += v;
                    s.4 = s.4.min(v);
                    s.5 = s.5.max(v);
                    s.6 = t;
                }
                _ => {
                    out.extend(cur.take());
                    cur = Some((host.clone(), t, 1, v, v, v, t));
                }
            }
        }
        out.extend(cur);
    }
    out.sort();
    out
}

fn ipc(out: &[Emission]) -> Vec<u8> {
    let mut buf = Vec::new();
    for e in out {
        buf.extend_from_slice(format!("{:?} {}\n", e.kind, e.window_start_ms).as_bytes());
        let mut w = StreamWriter::try_new(&mut buf, &e.batch.schema()).unwrap();
        w.write(&e.batch).unwrap();
        w.finish().unwrap();
    }
    buf
}

/// Samples of four hosts in bursts: sessions of several events, gaps around the session gap.
fn bursty(rng: &mut Rng, n: usize) -> Vec<Row> {
    let hosts = ["a", "b", "c", "d"];
    let mut t = [0i64; 4];
    let mut rows = Vec::new();
    for _ in 0..n {
        let h = rng.below(4) as usize;
        // Mostly short steps, sometimes a pause just under, at, or well over the gap.
        t[h] += match rng.below(10) {
            0 => GAP_MS - 1,
            1 => GAP_MS,
            2 => GAP_MS + rng.below(30_000) as i64,
            _ => rng.below(4_000) as i64,
        };
        rows.push(sample(hosts[h], t[h], rng.below(100) as f64));
    }
    rows
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Out-of-order arrival within the watermark delay, any batching: every session is emitted
    /// once, with the count, sum, min, max and last time of the reference computation.
    #[test]
    fn sessions_equal_the_reference(
        seed in any::<u64>(),
        n in 1usize..400,
        jitter in 0i64..=5_000,
        sizes in prop::collection::vec(prop::sample::select(vec![1usize, 3, 17, 256]), 1..4),
        partitions in 1usize..=2,
    ) {
        let r = rt();
        let (_dir, file) = pipeline_file();
        let rows = bursty(&mut Rng(seed), n);
        let arrived = arrival(&rows, seed, jitter);
        let bs = batches("metrics", &arrived, &sizes, partitions);
        let mut p = r.block_on(compile_sql(&file, RuntimeConfig::default()));
        let out = r.block_on(run(&mut p, &bs));
        prop_assert!(out.iter().all(|e| e.kind == EmissionKind::Output), "no late rows expected");
        prop_assert_eq!(p.status().counters.late_rows, 0);
        prop_assert_eq!(p.status().counters.revisions, 0);
        prop_assert_eq!(p.status().open_windows, 0);
        let got = emitted(&out);
        prop_assert!(got.iter().all(|e| e.revision == 0));
        let mut rows_got: Vec<Out> = got.iter().map(|e| e.row.clone()).collect();
        rows_got.sort();
        prop_assert_eq!(rows_got, reference(&rows));
        // Ids name the output, the session start and the revision, and are unique.
        let mut ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        for e in &got {
            prop_assert!(e.id.starts_with(&format!("host_sessions/{}/", e.row.1)), "{}", e.id);
            prop_assert!(e.id.ends_with("/0"), "{}", e.id);
        }
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), got.len());
    }
}

#[tokio::test]
async fn a_row_bridging_two_sessions_merges_them() {
    let (_dir, file) = pipeline_file();
    // A watermark delay long enough that nothing closes before the bridging row arrives.
    let mut p = compile_sql(&file, cfg(30_000, 0)).await;
    let out = p
        .process(
            "metrics.0",
            15_000,
            batch(&[sample("a", 0, 1.0), sample("a", 15_000, 5.0)]),
        )
        .await
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(p.status().open_windows, 2);
    // 7 s is within the gap of both: one session [0, 25 s) with all three samples.
    let out = p
        .process("metrics.0", 7_000, batch(&[sample("a", 7_000, 3.0)]))
        .await
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(p.status().open_windows, 1);
    assert_eq!(p.status().groups, 1, "the two partial states merged");
    // The watermark reaches 25 s: the session closes.
    let out = p
        .process("metrics.0", 55_000, batch(&[sample("b", 55_000, 1.0)]))
        .await
        .unwrap();
    let got = emitted(&out);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].row, ("a".into(), 0, 3, 9, 1, 5, 15_000));
    assert!(got[0].id.starts_with("host_sessions/0/"), "{}", got[0].id);
    let rest = emitted(&p.finish().await.unwrap());
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].row, ("b".into(), 55_000, 1, 1, 1, 1, 55_000));
}

#[tokio::test]
async fn a_bridge_in_one_batch_and_a_bridge_across_batches_give_the_same_bytes() {
    let (_dir, file) = pipeline_file();
    let rows = [
        sample("a", 0, 1.0),
        sample("a", 15_000, 5.0),
        sample("a", 30_000, 2.0),
        sample("a", 7_000, 3.0),
        sample("a", 22_000, 4.0),
    ];
    let mut whole = compile_sql(&file, cfg(30_000, 0)).await;
    let one = ipc(&run(&mut whole, &[("metrics.0".into(), 30_000, batch(&rows))]).await);
    let mut split = compile_sql(&file, cfg(30_000, 0)).await;
    let each: Vec<(String, i64, RecordBatch)> = rows
        .iter()
        .map(|r| {
            (
                "metrics.0".to_string(),
                r.time(),
                batch(std::slice::from_ref(r)),
            )
        })
        .collect();
    let out = run(&mut split, &each).await;
    assert_eq!(ipc(&out), one);
    let got = emitted(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].row, ("a".into(), 0, 5, 15, 1, 5, 30_000));
}

#[tokio::test]
async fn a_late_row_within_lateness_revises_the_session_and_beyond_it_goes_to_the_late_output() {
    let (_dir, file) = pipeline_file();
    let mut p = compile_sql(&file, cfg(5_000, 20_000)).await;
    p.process(
        "metrics.0",
        4_000,
        batch(&[sample("a", 1_000, 2.0), sample("a", 4_000, 4.0)]),
    )
    .await
    .unwrap();
    // The watermark passes 14 s, the end of [1 s, 14 s): emitted once, revision 0.
    let out = p
        .process("metrics.0", 20_000, batch(&[sample("b", 20_000, 1.0)]))
        .await
        .unwrap();
    let first = emitted(&out);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].revision, 0);
    assert_eq!(first[0].row, ("a".into(), 1_000, 2, 6, 2, 4, 4_000));
    let prefix = |id: &str| id.rsplit_once('/').unwrap().0.to_string();
    // A late sample at 0.5 s (watermark 15 s, lateness 20 s): it joins the session and moves
    // its start earlier; the session is emitted again under the same id, revision 1.
    let out = p
        .process("metrics.0", 500, batch(&[sample("a", 500, 9.0)]))
        .await
        .unwrap();
    let again = emitted(&out);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].revision, 1);
    assert_eq!(again[0].row, ("a".into(), 500, 3, 15, 2, 9, 4_000));
    assert_eq!(prefix(&again[0].id), prefix(&first[0].id));
    assert!(again[0].id.ends_with("/1"));
    assert_eq!(p.status().counters.revisions, 1);
    // The watermark moves to 55 s: a sample at 30 s is more than the lateness behind it.
    let out = p
        .process("metrics.0", 60_000, batch(&[sample("b", 60_000, 1.0)]))
        .await
        .unwrap();
    assert!(emitted(&out).iter().all(|e| e.row.0 == "b"), "{out:?}");
    let out = p
        .process("metrics.0", 30_000, batch(&[sample("a", 30_000, 1.0)]))
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, EmissionKind::Late);
    assert_eq!(out[0].batch.num_rows(), 1);
    assert_eq!(out[0].window_start_ms, 30_000);
    assert_eq!(p.status().counters.late_rows, 1);
    let rest = emitted(&p.finish().await.unwrap());
    assert!(rest.iter().all(|e| e.row.0 == "b"), "{rest:?}");
}

#[tokio::test]
async fn a_late_row_bridging_two_emitted_sessions_revises_the_earlier_one() {
    let (_dir, file) = pipeline_file();
    let mut p = compile_sql(&file, cfg(0, 60_000)).await;
    let mut out = Vec::new();
    for t in [0, 15_000, 40_000] {
        out.extend(
            p.process("metrics.0", t, batch(&[sample("a", t, 1.0)]))
                .await
                .unwrap(),
        );
    }
    let first = emitted(&out);
    assert_eq!(first.len(), 2, "{first:?}");
    // 8 s bridges [0, 10 s) and [15 s, 25 s): the merged session keeps the first one's id.
    let out = p
        .process("metrics.0", 8_000, batch(&[sample("a", 8_000, 1.0)]))
        .await
        .unwrap();
    let merged = emitted(&out);
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert_eq!(merged[0].row, ("a".into(), 0, 3, 3, 1, 1, 15_000));
    assert_eq!(merged[0].revision, 1);
    assert!(merged[0].id.starts_with("host_sessions/0/") && merged[0].id.ends_with("/1"));
}

#[tokio::test]
async fn batch_sizes_1_7_1024_8192_give_byte_identical_output() {
    let (_dir, file) = pipeline_file();
    let rows = bursty(&mut Rng(42), 3_000);
    let arrived = arrival(&rows, 7, 5_000);
    let mut expected: Option<Vec<u8>> = None;
    for size in [1usize, 7, 1024, 8192] {
        let mut p = compile_sql(&file, RuntimeConfig::default()).await;
        let out = run(&mut p, &batches("metrics", &arrived, &[size], 1)).await;
        assert!(out.len() > 10);
        let bytes = ipc(&out);
        match &expected {
            None => expected = Some(bytes),
            Some(e) => assert!(*e == bytes, "batch size {size} differs"),
        }
    }
}

#[tokio::test]
async fn a_restored_checkpoint_continues_exactly_like_an_uninterrupted_run() {
    let (_dir, file) = pipeline_file();
    let rows = bursty(&mut Rng(9), 2_000);
    // Some rows arrive beyond the delay, some beyond the lateness: revisions, merges of emitted
    // sessions and late rows are part of the state that must survive.
    let arrived = arrival(&rows, 3, 40_000);
    let bs = batches("metrics", &arrived, &[23], 2);
    let config = cfg(5_000, 15_000);
    let mut whole = compile_sql(&file, config).await;
    let all = run(&mut whole, &bs).await;
    let c = whole.status().counters;
    assert!(c.revisions > 0 && c.late_rows > 0, "{c:?}");
    let expected = ipc(&all);
    for cut in [1, bs.len() / 3, bs.len() / 2, bs.len() - 1] {
        let mut first = compile_sql(&file, config).await;
        let mut out = Vec::new();
        for (part, tmax, b) in &bs[..cut] {
            out.extend(first.process(part, *tmax, b.clone()).await.unwrap());
        }
        let open = first.status().open_windows;
        let bytes = first.checkpoint().unwrap();
        drop(first);
        let mut second = compile_sql(&file, config).await;
        second.restore(&bytes).unwrap();
        assert_eq!(second.status().open_windows, open);
        out.extend(run(&mut second, &bs[cut..]).await);
        assert!(ipc(&out) == expected, "cut at {cut}");
        assert_eq!(second.status().counters, whole.status().counters);
    }
}

#[tokio::test]
async fn a_truncated_session_checkpoint_is_refused_and_leaves_the_state() {
    let (_dir, file) = pipeline_file();
    let mut p = compile_sql(&file, RuntimeConfig::default()).await;
    p.process("metrics.0", 1_000, batch(&[sample("a", 1_000, 1.0)]))
        .await
        .unwrap();
    let bytes = p.checkpoint().unwrap();
    let mut q = compile_sql(&file, RuntimeConfig::default()).await;
    q.restore(&bytes).unwrap();
    assert_eq!(q.status().open_windows, 1);
    let e = q
        .restore(&bytes[..bytes.len() - 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("checkpoint"), "{e}");
    assert_eq!(
        q.status().open_windows,
        1,
        "a refused checkpoint leaves the state"
    );
}

#[tokio::test]
async fn a_session_pipeline_checks_and_plans_in_batch() {
    let p = aiops_sql::check(Path::new("host_sessions.sql"), SQL)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.output, "host_sessions");
    assert_eq!(p.output_schema.field(0).name(), "window_start");
    let e = aiops_sql::check(
        Path::new("bad.sql"),
        "INSERT INTO x SELECT session(time) AS w, count(*) AS n FROM metrics GROUP BY session(time)",
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("session"), "{e}");
    // In batch, `session` is the event time itself: a group per distinct time.
    let rows = [
        sample("a", 1_000, 1.0),
        sample("a", 1_000, 2.0),
        sample("a", 3_000, 1.0),
    ];
    let (_dir, file) = pipeline_file();
    let out = batch_result(&file, "metrics", &rows).await;
    let n: usize = out.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(n, 2);
}

/// Runs `sql` (a variant of [`SQL`]) over `bs` and returns its output.
async fn run_sql(sql: &str, bs: &[(String, i64, RecordBatch)]) -> Vec<Emission> {
    let mut p = StreamingPipeline::compile(
        Path::new("host_sessions.sql"),
        sql,
        &[],
        RuntimeConfig::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    run(&mut p, bs).await
}

#[tokio::test]
async fn having_filters_sessions_and_each_emission_holds_one_end_time() {
    let rows = bursty(&mut Rng(5), 1_500);
    let arrived = arrival(&rows, 5, 5_000);
    let bs = batches("metrics", &arrived, &[37], 1);
    // HAVING: the plan above the aggregate runs once over all sessions closed together.
    let having = run_sql(&format!("{SQL} HAVING count(*) >= 3"), &bs).await;
    let mut got: Vec<Out> = emitted(&having).into_iter().map(|e| e.row).collect();
    got.sort();
    let want: Vec<Out> = reference(&rows).into_iter().filter(|r| r.2 >= 3).collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let plain = run_sql(SQL, &bs).await;
    // Every emission holds the sessions of one end time (last event + gap), its start the
    // earliest of theirs.
    assert!(plain.len() > 10);
    for e in &plain {
        let b = &e.batch;
        let starts = timestamps_ms(b.column_by_name("window_start").unwrap().as_ref()).unwrap();
        let last = timestamps_ms(b.column_by_name("last_time").unwrap().as_ref()).unwrap();
        assert_eq!(starts.iter().min(), Some(&e.window_start_ms));
        assert!(last.iter().all(|t| *t == last[0]), "{last:?}");
    }
}

#[tokio::test]
async fn sessions_without_a_group_key_span_all_events() {
    let sql = "INSERT INTO all_sessions SELECT session(time, INTERVAL '10 seconds') AS s, \
               count(*) AS n FROM metrics GROUP BY session(time, INTERVAL '10 seconds')";
    let mut p = StreamingPipeline::compile(
        Path::new("all_sessions.sql"),
        sql,
        &[],
        RuntimeConfig::default(),
    )
    .await
    .unwrap();
    let rows = [
        sample("a", 0, 1.0),
        sample("b", 9_000, 1.0),
        sample("c", 18_000, 1.0),
        sample("a", 40_000, 1.0),
    ];
    let out = run(&mut p, &[("metrics.0".into(), 40_000, batch(&rows))]).await;
    let mut got = Vec::new();
    for e in &out {
        let s = timestamps_ms(e.batch.column(2).as_ref()).unwrap();
        let n = e.batch.column(3).as_primitive::<Int64Type>();
        for (i, start) in s.iter().enumerate() {
            got.push((*start, n.value(i)));
        }
    }
    assert_eq!(got, vec![(0, 3), (40_000, 1)]);
}
