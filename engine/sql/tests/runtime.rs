//! The streaming runtime against DataFusion in batch, and its event-time semantics: late data,
//! idle partitions, hopping windows, checkpoints, and byte-identical output whatever the batching.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_sql::pipeline::pipeline_files;
use aiops_sql::runtime::watermark::WatermarkConfig;
use aiops_sql::runtime::{Emission, EmissionKind, RuntimeConfig, StreamingPipeline};
use common::*;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, UInt32Type};
use datafusion::arrow::ipc::writer::StreamWriter;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Shipped pipelines reading one input stream (and maybe reference tables), with that input.
async fn shipped() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for f in pipeline_files(&pipelines_dir()).unwrap() {
        let p = aiops_sql::check_file(&f).await.unwrap();
        let streams: Vec<&String> = p
            .inputs
            .iter()
            .filter(|i| aiops_sql::catalog::input_names().contains(&i.as_str()))
            .collect();
        if let [input] = streams.as_slice() {
            out.push((f, (*input).clone()));
        }
    }
    out
}

/// Whether column `name` is an approximate quantile (compared within its stated error).
fn approximate(name: &str) -> bool {
    name.contains("_p9") || name.contains("_p5") || name.contains("quantile")
}

/// Compares streaming rows with batch rows: exact, except approximate-quantile columns, which
/// may differ by at most 2% of the value range (0..2000 in the generated data).
fn assert_same(file: &Path, streaming: &[RecordBatch], batch: &[RecordBatch]) {
    let mut s = rows_of(streaming, 2);
    let mut b = rows_of(batch, 0);
    s.sort();
    b.sort();
    assert_eq!(s.len(), b.len(), "{}: row counts differ", file.display());
    let names: Vec<String> = batch
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    for (rs, rb) in s.iter().zip(&b) {
        for (i, (vs, vb)) in rs.iter().zip(rb).enumerate() {
            if names.get(i).is_some_and(|n| approximate(n)) {
                let (x, y): (f64, f64) = (vs.parse().unwrap(), vb.parse().unwrap());
                assert!(
                    (x - y).abs() <= 40.0,
                    "{}: {} {x} vs {y}",
                    file.display(),
                    names[i]
                );
            } else {
                assert_eq!(vs, vb, "{}: column {i} of {rs:?} vs {rb:?}", file.display());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// For out-of-order arrival within the watermark delay, split into batches of any size and
    /// over several partitions, every shipped pipeline's streaming result equals its SELECT run
    /// in batch over all events.
    #[test]
    fn streaming_equals_batch(
        seed in any::<u64>(),
        jitter in 0i64..=5_000,
        sizes in prop::collection::vec(prop::sample::select(vec![1usize, 7, 64, 1024]), 1..4),
        partitions in 1usize..=3,
    ) {
        let r = rt();
        for (file, input) in r.block_on(shipped()) {
            let rows = generate(&input, seed, 6);
            let arrived = arrival(&rows, seed, jitter);
            let bs = batches(&input, &arrived, &sizes, partitions);
            let mut p = r.block_on(compile(&file, RuntimeConfig::default()));
            let out = r.block_on(run(&mut p, &bs));
            prop_assert!(out.iter().all(|e| e.kind == EmissionKind::Output), "no late rows expected");
            prop_assert_eq!(p.status().counters.late_rows, 0);
            let expected = r.block_on(batch_result(&file, &input, &rows));
            prop_assert!(expected.iter().map(RecordBatch::num_rows).sum::<usize>() >= 5, "{}: no rows", file.display());
            assert_same(&file, &output_batches(&out), &expected);
        }
    }
}

fn orders_pipeline() -> PathBuf {
    pipelines_dir().join("orders_per_minute.sql")
}

fn orders(times: &[i64]) -> RecordBatch {
    let rows: Vec<Row> = times
        .iter()
        .map(|t| Row::Event {
            t: *t,
            kind: "order",
            labels: vec![("service", "checkout".into())],
        })
        .collect();
    to_batch("events", &rows)
}

fn outputs(out: &[Emission]) -> Vec<(String, u32, i64)> {
    let mut v = Vec::new();
    for e in out.iter().filter(|e| e.kind == EmissionKind::Output) {
        let ids = e.batch.column(0).as_string::<i32>();
        let revs = e.batch.column(1).as_primitive::<UInt32Type>();
        let counts = e
            .batch
            .column_by_name("orders")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..e.batch.num_rows() {
            v.push((ids.value(i).to_string(), revs.value(i), counts.value(i)));
        }
    }
    v
}

#[tokio::test]
async fn late_rows_within_lateness_revise_and_beyond_go_to_the_late_output() {
    let cfg = RuntimeConfig {
        watermark: WatermarkConfig {
            delay_ms: 5_000,
            idle_timeout_ms: 300_000,
        },
        allowed_lateness_ms: 60_000,
    };
    let mut p = compile(&orders_pipeline(), cfg).await;
    // Three orders in minute 0; nothing fires until the watermark passes 60 s.
    let out = p
        .process("events.0", 30_000, orders(&[1_000, 20_000, 30_000]))
        .await
        .unwrap();
    assert!(out.is_empty());
    // An order at 66 s moves the watermark to 61 s: minute 0 fires with 3 orders, revision 0.
    let out = p
        .process("events.0", 66_000, orders(&[66_000]))
        .await
        .unwrap();
    let first = outputs(&out);
    assert_eq!(first.len(), 1);
    let (id0, rev0, n0) = first[0].clone();
    assert_eq!((rev0, n0), (0, 3));
    assert!(
        id0.starts_with("orders_1m/0/") && id0.ends_with("/0"),
        "{id0}"
    );
    // A late order for minute 0, within the lateness (watermark 61 s < 60 s + 60 s): the
    // window is emitted again, same id but for the revision, count 4.
    let out = p
        .process("events.0", 40_000, orders(&[40_000]))
        .await
        .unwrap();
    let again = outputs(&out);
    assert_eq!(again.len(), 1);
    let (id1, rev1, n1) = again[0].clone();
    assert_eq!((rev1, n1), (1, 4));
    assert_eq!(
        id1.rsplit_once('/').unwrap().0,
        id0.rsplit_once('/').unwrap().0
    );
    assert_eq!(p.status().counters.revisions, 1);
    // The watermark moves to 125 s: minute 0 is beyond its lateness; an order for it goes to
    // the late output and the counter, and no result changes.
    let out = p
        .process("events.0", 130_000, orders(&[130_000]))
        .await
        .unwrap();
    assert!(
        outputs(&out)
            .iter()
            .all(|(id, _, _)| !id.starts_with("orders_1m/0/"))
    );
    let out = p
        .process("events.0", 10_000, orders(&[10_000]))
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, EmissionKind::Late);
    assert_eq!(out[0].batch.num_rows(), 1);
    assert_eq!(out[0].window_start_ms, 0);
    assert_eq!(p.status().counters.late_rows, 1);
    let rest = outputs(&p.finish().await.unwrap());
    assert!(
        rest.iter()
            .all(|(id, _, _)| !id.starts_with("orders_1m/0/")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn an_idle_partition_does_not_stall_the_watermark() {
    let mut p = compile(&orders_pipeline(), RuntimeConfig::default()).await;
    p.process("events.0", 1_000, orders(&[1_000]))
        .await
        .unwrap();
    // Partition 1 goes on; partition 0 says nothing more. Until partition 0 is idle (5 min
    // behind), it holds the watermark at its 1 s − delay.
    let out = p
        .process("events.1", 200_000, orders(&[200_000]))
        .await
        .unwrap();
    assert!(outputs(&out).is_empty());
    let out = p
        .process("events.1", 400_000, orders(&[400_000]))
        .await
        .unwrap();
    let fired: Vec<i64> = outputs(&out).iter().map(|(_, _, n)| *n).collect();
    assert!(!fired.is_empty(), "minute 0 fires once partition 0 is idle");
    assert_eq!(p.status().watermark_ms, Some(395_000));
}

#[tokio::test]
async fn hopping_windows_count_each_row_in_every_window_covering_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders_5m.sql");
    std::fs::write(
        &file,
        "INSERT INTO orders_5m SELECT hop(time, INTERVAL '1 minute', INTERVAL '5 minutes') AS w, \
         count(*) AS orders FROM events GROUP BY hop(time, INTERVAL '1 minute', INTERVAL '5 minutes')",
    )
    .unwrap();
    let mut p = compile(&file, RuntimeConfig::default()).await;
    let times: Vec<i64> = (0..20).map(|i| i * 37_000).collect();
    let mut out = p
        .process("events.0", 740_000, orders(&times))
        .await
        .unwrap();
    out.extend(p.finish().await.unwrap());
    let mut got: Vec<(i64, i64)> = Vec::new();
    for e in &out {
        let w = e
            .batch
            .column(2)
            .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
        let n = e.batch.column(3).as_primitive::<Int64Type>();
        for i in 0..e.batch.num_rows() {
            got.push((w.value(i), n.value(i)));
        }
    }
    got.sort();
    let mut want = Vec::new();
    for s in (-4..=12).map(|m| m * 60_000i64) {
        let n = times
            .iter()
            .filter(|t| **t >= s && **t < s + 300_000)
            .count() as i64;
        if n > 0 {
            want.push((s, n));
        }
    }
    assert_eq!(got, want);
}

fn ipc(out: &[Emission]) -> Vec<u8> {
    let mut buf = Vec::new();
    for e in out {
        let mut w = StreamWriter::try_new(&mut buf, &e.batch.schema()).unwrap();
        w.write(&e.batch).unwrap();
        w.finish().unwrap();
    }
    buf
}

#[tokio::test]
async fn batch_sizes_1_7_1024_8192_give_byte_identical_output() {
    for (file, input) in shipped().await {
        let rows = generate(&input, 42, 8);
        let arrived = arrival(&rows, 7, 5_000);
        let mut reference: Option<Vec<u8>> = None;
        for size in [1usize, 7, 1024, 8192] {
            let mut p = compile(&file, RuntimeConfig::default()).await;
            let out = run(&mut p, &batches(&input, &arrived, &[size], 1)).await;
            let bytes = ipc(&out);
            assert!(!out.is_empty());
            match &reference {
                None => reference = Some(bytes),
                Some(r) => assert!(*r == bytes, "{}: batch size {size} differs", file.display()),
            }
        }
    }
}

#[tokio::test]
async fn a_restored_checkpoint_continues_exactly_like_an_uninterrupted_run() {
    for (file, input) in shipped().await {
        let rows = generate(&input, 9, 8);
        // Some rows arrive late (jitter above the delay) so revisions and late rows are part of
        // the state that must survive.
        let arrived = arrival(&rows, 3, 70_000);
        let bs = batches(&input, &arrived, &[50], 2);
        let mut whole = compile(&file, RuntimeConfig::default()).await;
        let expected = ipc(&run(&mut whole, &bs).await);
        for cut in [1, bs.len() / 3, bs.len() / 2, bs.len() - 1] {
            let mut first = compile(&file, RuntimeConfig::default()).await;
            let mut out = Vec::new();
            for (part, tmax, b) in &bs[..cut] {
                out.extend(first.process(part, *tmax, b.clone()).await.unwrap());
            }
            let bytes = first.checkpoint().unwrap();
            drop(first);
            let mut second = compile(&file, RuntimeConfig::default()).await;
            second.restore(&bytes).unwrap();
            out.extend(run(&mut second, &bs[cut..]).await);
            assert!(ipc(&out) == expected, "{}: cut at {cut}", file.display());
            assert_eq!(second.status(), whole.status());
        }
    }
}

#[tokio::test]
async fn a_checkpoint_of_other_sql_is_refused() {
    let mut p = compile(&orders_pipeline(), RuntimeConfig::default()).await;
    p.process("events.0", 1_000, orders(&[1_000]))
        .await
        .unwrap();
    let bytes = p.checkpoint().unwrap();
    let other = pipelines_dir().join("node_memory_per_host.sql");
    let mut q = compile(&other, RuntimeConfig::default()).await;
    let e = q.restore(&bytes).unwrap_err().to_string();
    assert!(e.contains("another version"), "{e}");
    let e = q.restore(b"garbage").unwrap_err().to_string();
    assert!(e.contains("not a checkpoint"), "{e}");
    assert_eq!(q.status().open_windows, 0);
}

#[tokio::test]
async fn pipelines_without_a_window_are_refused_with_a_reason() {
    let file = Path::new("no_window.sql");
    let e = StreamingPipeline::compile(
        file,
        "INSERT INTO x SELECT labels['service'] AS s, count(*) AS n FROM events GROUP BY labels['service']",
        &[],
        RuntimeConfig::default(),
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.starts_with("no_window.sql:") && e.contains("window"),
        "{e}"
    );
}

/// A pipeline reading another one's output: node CPU per series (counters, resets) then busy
/// CPU per host. Streaming the chain equals the batch query over the upstream's batch result.
#[tokio::test]
async fn a_pipeline_reading_another_pipelines_output_equals_batch() {
    let dir = pipelines_dir();
    let up_file = dir.join("node_cpu_per_host.sql");
    let down_file = dir.join("node_cpu_busy_per_host.sql");
    let rows = generate("metrics", 77, 8);
    let arrived = arrival(&rows, 77, 4_000);
    let mut up = compile(&up_file, RuntimeConfig::default()).await;
    let down_sql = std::fs::read_to_string(&down_file).unwrap();
    let streams = vec![(up.output().to_string(), up.output_schema())];
    let mut down = StreamingPipeline::compile_with_streams(
        &down_file,
        &down_sql,
        &[],
        &streams,
        RuntimeConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(down.input(), "node_cpu_1m");
    let mut upstream = run(&mut up, &batches("metrics", &arrived, &[100], 1)).await;
    upstream.retain(|e| e.kind == EmissionKind::Output);
    let mut out = Vec::new();
    for e in &upstream {
        let size = 60_000;
        out.extend(
            down.process(
                "derived.node_cpu_1m",
                e.window_start_ms + size - 1,
                e.batch.clone(),
            )
            .await
            .unwrap(),
        );
    }
    out.extend(down.finish().await.unwrap());
    // Batch: the upstream's SELECT over all metrics, then the downstream's over that.
    let up_rows = batch_result(&up_file, "metrics", &rows).await;
    let ctx = aiops_sql::catalog::session().unwrap();
    let t = datafusion::datasource::MemTable::try_new(up_rows[0].schema(), vec![up_rows.clone()])
        .unwrap();
    ctx.register_table("node_cpu_1m", std::sync::Arc::new(t))
        .unwrap();
    let select = &down_sql[down_sql.find("SELECT").unwrap()..];
    let expected = ctx
        .sql(
            &select
                .trim_end()
                .trim_end_matches(';')
                .replace(" AND revision = 0", ""),
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(expected.iter().map(RecordBatch::num_rows).sum::<usize>() >= 8 * 4);
    // Sums of floats in another order may differ in the last bits: compare rounded.
    let round = |rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
        let mut rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.parse::<f64>().map_or(v.clone(), |f| format!("{f:.6}")))
                    .collect()
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        round(rows_of(&output_batches(&out), 2)),
        round(rows_of(&expected, 0))
    );
}
