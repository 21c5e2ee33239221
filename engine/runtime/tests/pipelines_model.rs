//! Model test of the SQL pipelines runner, without the binary (the pipelines counterpart of
//! `model.rs`): a generated metrics stream is run once uninterrupted, and then, for every cut,
//! run with a crash after that step (the runner dropped without its final checkpoint, the last
//! checkpoint some steps earlier or none), reopened on the same log and checkpoint store and run
//! to the end. The log's pipeline outputs must equal the uninterrupted run's: the same messages
//! (subject, id, payload bytes) in the same order, none missing, none twice.
//!
//! The pipelines: a one-minute tumbling aggregate over metrics with the counter aggregates
//! (`increase`, `rate`), a five-minute aggregate reading its output from the log (`FROM
//! cpu_1m`), and an alert rule (`INSERT INTO alerts`, `@for: 2`). The stream has rows out of
//! order within the watermark delay, late rows within the allowed lateness (re-emitted windows,
//! revision > 0) and beyond it (`aiops.late.<pipeline>`), a counter reset, alerts firing and
//! resolving. Each run ends with `finish`, which closes the windows still open.
//!
//! The log under test keeps duplicates (its own id dedup is off), so an output appended twice
//! shows here instead of being absorbed by the log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use aiops_log::{AppendMessage, EventLog};
use aiops_runtime::pipelines::PipelinesConfig;
use aiops_runtime::pipelines::load::{PipelineSource, compile_all};
use aiops_runtime::pipelines::runner::{InfoBoard, Mode, Runner, is_pipeline_output};
use aiops_runtime::pipelines::store::Store;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::UInt32Type;
use aiops_schemas::builders::MetricBatchBuilder;
use aiops_schemas::derived::{DERIVED_PREFIX, LATE_PREFIX, decode_derived};
use aiops_schemas::{Envelope, Kind};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-12-01T00:00:00Z (a multiple of five minutes, so windows align with the stream).
const T0: i64 = 1_796_083_200_000;
/// Records per step: small, so a stream has many cuts.
const STEP: usize = 4;
/// Checkpoint every this many steps (the supervisor's cadence, counted in steps).
const EVERY: usize = 3;

/// Seconds of CPU per host per minute, with the counter aggregates (resets handled).
const CPU_1M: &str = "INSERT INTO cpu_1m
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  labels['instance'] AS host,
  count(*) AS samples,
  max(value) AS value_max,
  increase(value, time) AS seconds,
  rate(value, time) AS utilization
FROM metrics
WHERE name = 'node_cpu_seconds_total'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'];
";

/// Reads the output of `cpu_1m` from the log: five-minute sums of its first revisions.
const CPU_5M: &str = "INSERT INTO cpu_5m
SELECT
  tumble(window_start, INTERVAL '5 minutes') AS window_start,
  host,
  sum(seconds) AS seconds,
  count(*) AS minutes
FROM cpu_1m
WHERE revision = 0
GROUP BY tumble(window_start, INTERVAL '5 minutes'), host;
";

/// An alert rule: load above 2 for two minutes in a row.
const LOAD_HIGH: &str = "-- @for: 2
-- @severity: warning
-- @summary: load {{load}} on {{host}}
INSERT INTO alerts
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  'LoadHigh' AS alertname,
  labels['instance'] AS host,
  max(value) AS load
FROM metrics
WHERE name = 'load1'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance']
HAVING max(value) > 2;
";

type Outputs = Vec<(String, String, Bytes)>;

/// A log that keeps every append, duplicates included.
async fn open_log(dir: &Path) -> Arc<dyn EventLog> {
    let mut c = EmbeddedConfig::new(dir.join("log"));
    c.fsync = FsyncPolicy::Interval(Duration::from_secs(3600));
    c.dedup_window = Duration::ZERO;
    c.dedup_max_ids = 0;
    Arc::new(EmbeddedLog::open(c).await.unwrap())
}

/// Every record from `from` on as (subject, id, payload).
async fn records_from(log: &dyn EventLog, from: u64) -> Outputs {
    let mut r = log.reader(from).await.unwrap();
    let mut out = Vec::new();
    loop {
        let b = r.next_batch(1024).await.unwrap();
        if b.is_empty() {
            return out;
        }
        out.extend(b.into_iter().map(|x| (x.subject, x.msg_id, x.payload)));
    }
}

/// The pipelines, compiled as the engine loads a directory (upstream ones first).
async fn pipelines() -> Vec<aiops_sql::runtime::StreamingPipeline> {
    let sources: Vec<PipelineSource> = [
        ("cpu_1m", CPU_1M),
        ("cpu_5m", CPU_5M),
        ("load_high", LOAD_HIGH),
    ]
    .into_iter()
    .map(|(name, sql)| PipelineSource {
        file: PathBuf::from(format!("{name}.sql")),
        sql: sql.to_string(),
    })
    .collect();
    compile_all(&sources, &[], PipelinesConfig::default().runtime())
        .await
        .unwrap()
}

/// A live runner over `log` resuming from `store`; `every` is its own checkpoint cadence.
async fn open_runner(log: &Arc<dyn EventLog>, store: &Store, every: Duration) -> Runner {
    let first = log.stats().await.unwrap().first_seq;
    Runner::new(
        log.clone(),
        pipelines().await,
        Some(store.clone()),
        Mode::Live,
        first,
        InfoBoard::default(),
        every,
    )
    .await
    .unwrap()
}

/// Steps to the end of the log (the outputs it appends included); returns the steps that read
/// something.
async fn run_to_end(r: &mut Runner) -> usize {
    let mut steps = 0;
    while r.step(STEP, None).await.unwrap().1 > 0 {
        steps += 1;
    }
    steps
}

/// A log holding `inputs`, and an empty checkpoint store beside it.
async fn setup(dir: &Path, inputs: &[AppendMessage]) -> (Arc<dyn EventLog>, Store) {
    let log = open_log(dir).await;
    log.append(inputs.to_vec()).await.unwrap();
    let store = Store::open(&dir.join("state")).unwrap();
    (log, store)
}

/// Runs the pipelines over `inputs` without interruption, checkpoints and finishes; returns
/// the outputs (records after the inputs) and the steps it took.
async fn uninterrupted(inputs: &[AppendMessage]) -> (Outputs, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (log, store) = setup(dir.path(), inputs).await;
    let mut r = open_runner(&log, &store, Duration::MAX).await;
    let steps = run_to_end(&mut r).await;
    r.checkpoint().await.unwrap();
    r.finish().await.unwrap();
    (records_from(&*log, inputs.len() as u64 + 1).await, steps)
}

/// How checkpoints are taken before the crash.
#[derive(Debug, Clone, Copy)]
enum Checkpoints {
    /// By the runner's own cadence, due after every step (`checkpoint_interval` = 0).
    Cadence,
    /// After every `EVERY` steps.
    Every,
    /// After the step before the crash only.
    Previous,
    /// None: everything is rebuilt from the log, all outputs before the crash already there.
    None,
}

/// Runs with a crash after step `cut` (checkpoints as `ck` says), reopens and runs to the end,
/// checkpoints, reopens again (which must append nothing) and finishes; returns the outputs.
async fn crashed(inputs: &[AppendMessage], cut: usize, ck: Checkpoints) -> Outputs {
    let dir = tempfile::tempdir().unwrap();
    let (log, store) = setup(dir.path(), inputs).await;
    {
        let every = match ck {
            Checkpoints::Cadence => Duration::ZERO,
            _ => Duration::MAX,
        };
        let mut r = open_runner(&log, &store, every).await;
        for i in 1..=cut {
            r.step(STEP, None).await.unwrap();
            let due = match ck {
                Checkpoints::Every => i % EVERY == 0,
                Checkpoints::Previous => i + 1 == cut,
                Checkpoints::Cadence | Checkpoints::None => false,
            };
            if due {
                r.checkpoint().await.unwrap();
            }
        }
        // Crash: dropped without its final checkpoint.
    }
    let mut r = open_runner(&log, &store, Duration::MAX).await;
    run_to_end(&mut r).await;
    r.checkpoint().await.unwrap();
    drop(r);
    // A reopen after a clean checkpoint re-derives nothing new.
    let before = log.stats().await.unwrap().next_seq;
    let mut again = open_runner(&log, &store, Duration::MAX).await;
    run_to_end(&mut again).await;
    assert_eq!(
        log.stats().await.unwrap().next_seq,
        before,
        "crash after step {cut} ({ck:?}): reopening after a clean checkpoint appended something"
    );
    // The restored state closes its open windows as the uninterrupted one does.
    again.finish().await.unwrap();
    records_from(&*log, inputs.len() as u64 + 1).await
}

/// A tiny deterministic generator (no dependency, same stream every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A batch of metrics as ingest would append it to `partition` at `at` (id from the time:
/// unique per stream).
fn ingested(partition: u32, at: i64, b: &mut MetricBatchBuilder) -> AppendMessage {
    let range = b.time_range().unwrap_or((at, at));
    let batch = b.finish().unwrap();
    let env = Envelope::new(Kind::Metrics, "test", at, range, &batch);
    AppendMessage {
        subject: Kind::Metrics.subject(partition),
        msg_id: format!("k{at:x}"),
        time_min_ms: range.0,
        time_max_ms: range.1,
        payload: Bytes::from(aiops_schemas::encode(&env, &batch).unwrap()),
    }
}

/// Nine minutes of samples every 10 s from three hosts, alternating between two partitions.
fn metrics_inputs() -> Vec<AppendMessage> {
    let mut g = Lcg(3);
    let hosts = ["web1", "web2", "db1"];
    // (time, value) of every counter sample so far, per host.
    let mut counters: Vec<Vec<(i64, f64)>> = vec![Vec::new(); hosts.len()];
    let mut msgs = Vec::new();
    for i in 0..54i64 {
        let at = T0 + i * 10_000;
        let minute = i / 6;
        let mut b = MetricBatchBuilder::new();
        for (h, host) in hosts.iter().enumerate() {
            // Out of order within the 5 s watermark delay.
            let t = at - g.next(4) as i64 * 1_000;
            let last = counters[h].last().map_or(100.0, |c| c.1);
            // web2 restarts in the fifth minute: its counter resets.
            let v = if h == 1 && i == 27 {
                0.5
            } else {
                last + 2.0 + g.next(80) as f64 / 10.0
            };
            counters[h].push((t, v));
            b.push(
                t,
                "node_cpu_seconds_total",
                [("instance", *host), ("cpu", "0")],
                v,
            );
            let high = match h {
                0 => (1..=4).contains(&minute),
                1 => matches!(minute, 2 | 3 | 6 | 7),
                _ => minute == 5,
            };
            let load = if high { 2.5 } else { 0.5 } + g.next(10) as f64 / 10.0;
            b.push(t, "load1", [("instance", *host)], load);
        }
        // Late rows within the allowed lateness (60 s): windows already closed are revised.
        if i % 7 == 6 {
            let h = g.next(3) as usize;
            let t = at - 65_000 - g.next(10) as i64 * 1_000;
            let v = counters[h]
                .iter()
                .rev()
                .find(|c| c.0 <= t)
                .map_or(100.0, |c| c.1);
            b.push(
                t,
                "node_cpu_seconds_total",
                [("instance", hosts[h]), ("cpu", "0")],
                v,
            );
            b.push(t, "load1", [("instance", hosts[h])], 3.5);
        }
        // Rows beyond the allowed lateness: late rows of their pipeline.
        if i == 31 {
            b.push(
                at - 200_000,
                "node_cpu_seconds_total",
                [("instance", "db1"), ("cpu", "0")],
                1.0,
            );
        }
        if i == 44 {
            b.push(at - 210_000, "load1", [("instance", "web1")], 9.0);
        }
        msgs.push(ingested((i % 2) as u32, at, &mut b));
    }
    msgs
}

/// Outputs per stream and the highest revision seen, to check the stream exercises each path.
fn coverage(outs: &Outputs) -> BTreeMap<String, (usize, u32)> {
    let mut m: BTreeMap<String, (usize, u32)> = BTreeMap::new();
    for (subject, id, payload) in outs {
        assert!(
            is_pipeline_output(subject, id),
            "{subject} {id}: not a pipeline output"
        );
        let rev = if subject.starts_with(DERIVED_PREFIX) || subject.starts_with(LATE_PREFIX) {
            let (_, batch) = decode_derived(payload).unwrap();
            batch.column_by_name("revision").map_or(0, |c| {
                c.as_primitive::<UInt32Type>()
                    .values()
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0)
            })
        } else {
            0
        };
        let e = m.entry(subject.clone()).or_default();
        e.0 += 1;
        e.1 = e.1.max(rev);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_survive_a_crash_at_every_cut() {
    let started = Instant::now();
    let inputs = metrics_inputs();
    let (want, steps) = uninterrupted(&inputs).await;
    let cov = coverage(&want);
    eprintln!(
        "{} inputs, {steps} steps, {} outputs: {cov:?}",
        inputs.len(),
        want.len()
    );
    let count = |s: &str| cov.get(s).map_or(0, |c| c.0);
    assert!(count("aiops.derived.cpu_1m") >= 10, "cpu_1m emits windows");
    assert!(
        cov.get("aiops.derived.cpu_1m").is_some_and(|c| c.1 > 0),
        "late rows within the lateness revise cpu_1m windows"
    );
    assert!(count("aiops.derived.cpu_5m") >= 2, "cpu_5m reads cpu_1m");
    assert!(count("aiops.derived.alerts") >= 5, "the rule's windows");
    assert!(count("aiops.alerts.0") >= 2, "the rule fires and resolves");
    assert!(count("aiops.late.cpu_1m") >= 1, "late rows of cpu_1m");
    assert!(count("aiops.late.load_high") >= 1, "late rows of load_high");
    let mut ids: Vec<&str> = want.iter().map(|w| w.1.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), want.len(), "two outputs share an id");

    // A second uninterrupted run gives the same bytes: what follows compares runs, so the
    // runs themselves must be deterministic.
    assert!(uninterrupted(&inputs).await.0 == want, "two runs differ");

    let mut runs = 0;
    for cut in 1..=steps + 1 {
        for ck in [
            Checkpoints::Cadence,
            Checkpoints::Every,
            Checkpoints::Previous,
            Checkpoints::None,
        ] {
            let got = crashed(&inputs, cut, ck).await;
            runs += 1;
            if got != want {
                let g: Vec<&str> = got.iter().map(|x| x.1.as_str()).collect();
                let w: Vec<&str> = want.iter().map(|x| x.1.as_str()).collect();
                let first = got
                    .iter()
                    .zip(&want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.len().min(want.len()));
                panic!(
                    "crash after step {cut} ({ck:?}): outputs differ (first at {first}; got {}, want {})\n got {g:?}\nwant {w:?}",
                    got.len(),
                    want.len()
                );
            }
        }
    }
    eprintln!(
        "{runs} crashed runs over {} cuts in {:?}",
        steps + 1,
        started.elapsed()
    );
}
