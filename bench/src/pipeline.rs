//! `aiops-bench pipeline`: the streaming SQL runtime (`aiops_sql::runtime`) on a 1-minute
//! tumbling GROUP BY over metric series, against the same SELECT run in batch by DataFusion.
//!
//! Three measurements, each on data generated before its clock starts:
//! - **Throughput**: input rows per second of [`StreamingPipeline::process`] and `finish` over
//!   pre-built micro-batches (one log message each), and the same SELECT run by DataFusion over a
//!   `MemTable` of the very same batches in the same process; their ratio is the streaming
//!   overhead. Both results are summed and compared, so a run that computes nothing fails loudly.
//! - **Window latency**: per window, the time from the start of the `process` call whose
//!   watermark passes the window's end to the moment its derived events are encoded
//!   ([`aiops_schemas::derived::encode_derived`]) and appended to an embedded log, in an
//!   hdrhistogram.
//! - **State memory**: peak RSS (`VmHWM`) of a process holding one window of many groups
//!   (1,000,000 by default), fed 1×, 2× and 4× the rows per window, each run in a fresh process
//!   (see [`rss_one`]), together with the runtime's own `state_bytes`.

use crate::error::BenchError;
use crate::load::Latency;
use crate::report::{Figure, FigureKind};
use aiops_log::{AppendMessage, EventLog};
use aiops_schemas::derived::{DERIVED_PREFIX, DerivedHeader, DerivedWhat, encode_derived};
use aiops_schemas::{Kind, MetricBatchBuilder, schema_for};
use aiops_sql::runtime::{Emission, EmissionKind, RuntimeConfig, StreamingPipeline};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::datasource::MemTable;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The benchmarked pipeline: per minute, host and metric name, count, sum, min, max and mean.
pub const QUERY: &str = "INSERT INTO cpu_1m SELECT tumble(time, INTERVAL '1 minute') AS window_start, \
labels['instance'] AS host, name, count(*) AS n, sum(value) AS s, min(value) AS lo, \
max(value) AS hi, avg(value) AS mean FROM metrics \
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'], name";

/// The file name the pipeline is compiled under (it need not exist; it names the pipeline).
pub const PIPELINE_FILE: &str = "cpu_1m.sql";

/// Event time of the first sample: 2024-05-01T00:00:00Z, so runs are identical.
pub const START_MS: i64 = 1_714_521_600_000;

/// Metric names cycled over series (series `i` has name `NAMES[i % names]`).
const NAMES: [&str; 16] = [
    "node_cpu_busy_ratio",
    "node_load1",
    "node_memory_used_bytes",
    "node_disk_io_seconds",
    "node_network_rx_bytes",
    "node_network_tx_bytes",
    "node_filesystem_used_bytes",
    "node_context_switches",
    "node_interrupts",
    "node_procs_running",
    "node_entropy_bits",
    "node_forks",
    "node_sockets_used",
    "node_files_open",
    "node_temperature_celsius",
    "node_uptime_seconds",
];

/// What data the throughput and latency run uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputPlan {
    /// Distinct series (and groups per window): `names` metric names × `series / names` hosts.
    pub series: usize,
    /// Metric names per host (at most 16).
    pub names: usize,
    /// Minutes of event time (windows).
    pub minutes: usize,
    /// Scrape interval of every series, ms: `60_000 / interval_ms` rows per series per window.
    pub interval_ms: i64,
    /// Rows per micro-batch (one log message).
    pub batch_rows: usize,
    /// Alternating streaming/batch rounds; the median round of each is reported.
    pub rounds: usize,
    /// Parent directory of the temporary embedded log (default: $TMPDIR).
    pub tmp_dir: Option<PathBuf>,
    /// Embedded log fsync: `always` (the engine's default) or an interval such as `100ms`.
    pub fsync: String,
}

/// Sums over a set of result rows, compared between streaming and batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Result rows (groups × windows).
    pub rows: u64,
    /// Sum of `n` (input rows counted by the query).
    pub sum_n: i64,
    /// Sum of `s` (sum of values).
    pub sum_s: f64,
    /// Sum of `hi` (per-group maxima).
    pub sum_hi: f64,
}

impl Totals {
    /// Adds the rows of one result batch (columns `n`, `s`, `hi` looked up by name).
    ///
    /// # Errors
    /// [`BenchError::Pipeline`] when a column is missing or of another type.
    pub fn add(&mut self, b: &RecordBatch) -> Result<(), BenchError> {
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| BenchError::Pipeline(format!("result has no column {name:?}")))
        };
        let n = col("n")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| BenchError::Pipeline("column n is not Int64".into()))?;
        let s = col("s")?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| BenchError::Pipeline("column s is not Float64".into()))?;
        let hi = col("hi")?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| BenchError::Pipeline("column hi is not Float64".into()))?;
        self.rows += b.num_rows() as u64;
        self.sum_n += n.values().iter().sum::<i64>();
        self.sum_s += s.values().iter().sum::<f64>();
        self.sum_hi += hi.values().iter().sum::<f64>();
        Ok(())
    }

    /// Whether two totals agree: equal counts, sums within 1e-9 relative (values are multiples
    /// of 0.25, so they are in fact exact).
    pub fn agrees(&self, other: &Totals) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        self.rows == other.rows
            && self.sum_n == other.sum_n
            && close(self.sum_s, other.sum_s)
            && close(self.sum_hi, other.sum_hi)
    }
}

/// One micro-batch and its largest event time.
#[derive(Debug, Clone)]
pub struct Input {
    /// Largest event time in the batch, Unix ms (what the log header would carry).
    pub time_max_ms: i64,
    /// The rows, in the `metrics` schema.
    pub batch: RecordBatch,
}

/// The pre-generated input of a throughput run.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Micro-batches in time order.
    pub inputs: Vec<Input>,
    /// Rows over all batches.
    pub rows: u64,
    /// Bytes of the Arrow arrays.
    pub bytes: u64,
    /// Wall seconds it took to generate.
    pub seconds: f64,
}

/// The label values of every series: (metric name, `instance` label).
fn series_labels(series: usize, names: usize) -> Vec<(&'static str, String)> {
    let names = names.clamp(1, NAMES.len());
    (0..series)
        .map(|i| (NAMES[i % names], format!("host-{:06}", i / names)))
        .collect()
}

/// A deterministic value in [0, 100) in steps of 0.25, so sums are exact in f64 whatever the
/// order of addition.
fn value(series: usize, step: u64) -> f64 {
    let mut z = (series as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ step;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % 400) as f64 / 4.0
}

/// Samples in time order, cut into micro-batches of `batch_rows`: `steps` scrapes, scrape `k` of
/// series `i` at `start + k·interval + i·interval/series`. Batches are built one at a time, so a
/// caller that processes each before asking for the next never holds more than one.
pub struct Generator<'a> {
    labels: &'a [(&'static str, String)],
    start_ms: i64,
    steps: u64,
    interval_ms: i64,
    batch_rows: usize,
    /// Next scrape and series.
    k: u64,
    i: usize,
    b: MetricBatchBuilder,
}

impl<'a> Generator<'a> {
    /// A generator over `labels` (one entry per series).
    pub fn new(
        labels: &'a [(&'static str, String)],
        start_ms: i64,
        steps: u64,
        interval_ms: i64,
        batch_rows: usize,
    ) -> Generator<'a> {
        Generator {
            labels,
            start_ms,
            steps,
            interval_ms,
            batch_rows: batch_rows.max(1),
            k: 0,
            i: 0,
            b: MetricBatchBuilder::new(),
        }
    }

    /// The next micro-batch, or `None` at the end.
    ///
    /// # Errors
    /// [`BenchError::Internal`] if a batch cannot be built (a bug).
    pub fn next_input(&mut self) -> Result<Option<Input>, BenchError> {
        let series = self.labels.len() as i64;
        if series > 0 {
            while self.k < self.steps && self.b.len() < self.batch_rows {
                let (name, instance) = &self.labels[self.i];
                let t = self.start_ms
                    + self.k as i64 * self.interval_ms
                    + self.i as i64 * self.interval_ms / series;
                self.b.push(
                    t,
                    name,
                    [("instance", instance.as_str()), ("job", "node")],
                    value(self.i, self.k),
                );
                self.i += 1;
                if self.i == self.labels.len() {
                    self.i = 0;
                    self.k += 1;
                }
            }
        }
        let Some((_, time_max_ms)) = self.b.time_range() else {
            return Ok(None);
        };
        let batch = self
            .b
            .finish()
            .map_err(|e| BenchError::Internal(format!("metric batch: {e}")))?;
        Ok(Some(Input { time_max_ms, batch }))
    }
}

/// Generates the throughput run's input: `minutes` of `series` scraped every `interval_ms`.
///
/// # Errors
/// [`BenchError::Pipeline`] for no series, no minutes or an interval that does not divide a
/// minute; [`BenchError::Internal`] if a batch cannot be built (a bug).
pub fn generate(plan: &ThroughputPlan) -> Result<Dataset, BenchError> {
    if plan.series == 0 || plan.minutes == 0 {
        return Err(BenchError::Pipeline(
            "--series and --minutes must be at least 1".into(),
        ));
    }
    if plan.interval_ms <= 0 || 60_000 % plan.interval_ms != 0 {
        return Err(BenchError::Pipeline(format!(
            "--interval must divide one minute, got {} ms",
            plan.interval_ms
        )));
    }
    let t0 = Instant::now();
    let labels = series_labels(plan.series, plan.names);
    let steps = plan.minutes as u64 * (60_000 / plan.interval_ms) as u64;
    let mut inputs = Vec::new();
    let mut g = Generator::new(&labels, START_MS, steps, plan.interval_ms, plan.batch_rows);
    while let Some(i) = g.next_input()? {
        inputs.push(i);
    }
    let rows = inputs.iter().map(|i| i.batch.num_rows() as u64).sum();
    let bytes = inputs
        .iter()
        .map(|i| i.batch.get_array_memory_size() as u64)
        .sum();
    Ok(Dataset {
        inputs,
        rows,
        bytes,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn pipeline_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Pipeline(e.to_string())
}

/// Compiles [`QUERY`] for streaming with the default event-time settings (5 s watermark delay,
/// 1 min allowed lateness).
///
/// # Errors
/// [`BenchError::Pipeline`] if the runtime refuses the query.
pub async fn compile() -> Result<StreamingPipeline, BenchError> {
    StreamingPipeline::compile(
        Path::new(PIPELINE_FILE),
        QUERY,
        &[],
        RuntimeConfig::default(),
    )
    .await
    .map_err(pipeline_err)
}

/// What one streaming pass measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamingRun {
    /// Input rows processed.
    pub rows_in: u64,
    /// Micro-batches (`process` calls).
    pub batches: u64,
    /// Seconds inside `process` and `finish` only.
    pub process_s: f64,
    /// `rows_in / process_s`.
    pub rows_per_s: f64,
    /// Seconds of the whole loop, log appends included.
    pub wall_s: f64,
    /// `rows_in / wall_s`.
    pub end_to_end_rows_per_s: f64,
    /// Seconds spent encoding emissions and appending them to the log.
    pub append_s: f64,
    /// Output emissions (one per window).
    pub windows: u64,
    /// Late emissions (should be 0: the data is in time order).
    pub late_emissions: u64,
    /// Log messages appended.
    pub log_messages: u64,
    /// Payload bytes appended.
    pub log_bytes: u64,
    /// Per window: `process` start → derived events appended, µs.
    pub window_latency_us: Latency,
    /// Largest `state_bytes` the runtime reported after a `process` call.
    pub max_state_bytes: u64,
    /// Largest number of groups held after a `process` call.
    pub max_groups: u64,
    /// Sums of the emitted rows.
    pub totals: Totals,
}

/// A temporary embedded log for the derived events, removed on drop.
pub struct TempLog {
    /// The open log.
    pub log: Arc<dyn EventLog>,
    _dir: tempfile::TempDir,
}

/// Opens an empty embedded log in a fresh temporary directory under `parent` (or $TMPDIR).
///
/// # Errors
/// [`BenchError::Io`] if the directory cannot be made, [`BenchError::Log`] if the log does not
/// open, [`BenchError::Pipeline`] for a bad `fsync`.
pub async fn temp_log(parent: Option<&Path>, fsync: &str) -> Result<TempLog, BenchError> {
    let dir = match parent {
        Some(p) => tempfile::Builder::new()
            .prefix("aiops-bench-pipeline")
            .tempdir_in(p),
        None => tempfile::Builder::new()
            .prefix("aiops-bench-pipeline")
            .tempdir(),
    }
    .map_err(|e| BenchError::io(parent.unwrap_or(Path::new("$TMPDIR")), e))?;
    let mut cfg = aiops_log::embedded::EmbeddedConfig::new(dir.path().join("log"));
    cfg.fsync = match fsync {
        "always" => aiops_log::embedded::FsyncPolicy::Always,
        other => aiops_log::embedded::FsyncPolicy::Interval(
            humantime::parse_duration(other)
                .map_err(|e| BenchError::Pipeline(format!("--fsync {other:?}: {e}")))?,
        ),
    };
    let log = aiops_log::open(&aiops_log::LogSpec::Embedded(cfg)).await?;
    Ok(TempLog { log, _dir: dir })
}

/// Encodes an emission as the engine does (`aiops.derived.<output>`, window range, an id from
/// the window) and appends it; returns the payload size.
async fn append(
    log: &dyn EventLog,
    p: &StreamingPipeline,
    e: &Emission,
) -> Result<usize, BenchError> {
    let header = DerivedHeader {
        what: match e.kind {
            EmissionKind::Output => DerivedWhat::Events,
            EmissionKind::Late => DerivedWhat::Late,
        },
        window_start_ms: e.window_start_ms,
        pipeline: p.name().to_string(),
    };
    let payload = encode_derived(&header, &e.batch).map_err(pipeline_err)?;
    let size = payload.len();
    let end = e
        .window_start_ms
        .saturating_add(p.window().size_ms())
        .saturating_sub(1);
    let msg = AppendMessage {
        subject: format!("{DERIVED_PREFIX}{}", p.output()),
        msg_id: format!("d.{}.{}.{:?}", p.name(), e.window_start_ms, e.kind).to_lowercase(),
        time_min_ms: e.window_start_ms,
        time_max_ms: end.max(e.window_start_ms),
        payload: bytes::Bytes::from(payload),
    };
    log.append(vec![msg]).await?;
    Ok(size)
}

fn new_histogram() -> Result<Histogram<u64>, BenchError> {
    // 1 µs .. 10 min at 3 significant digits; constant bounds, so an error here is a bug.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| BenchError::Internal(format!("histogram bounds: {e}")))
}

/// Handles what one `process`/`finish` call (started at `t0`) emitted: appends each emission to
/// the log, records the window latency, then sums the rows.
async fn drain(
    out: Vec<Emission>,
    t0: Instant,
    log: &dyn EventLog,
    p: &StreamingPipeline,
    hist: &mut Histogram<u64>,
    run: &mut StreamingRun,
) -> Result<(), BenchError> {
    if out.is_empty() {
        return Ok(());
    }
    let a0 = Instant::now();
    for e in &out {
        run.log_bytes += append(log, p, e).await? as u64;
        run.log_messages += 1;
    }
    let done = Instant::now();
    run.append_s += (done - a0).as_secs_f64();
    let micros = (done - t0).as_micros().min(u64::MAX as u128) as u64;
    for e in &out {
        match e.kind {
            EmissionKind::Output => {
                run.windows += 1;
                hist.saturating_record(micros.max(1));
                run.totals.add(&e.batch)?;
            }
            EmissionKind::Late => run.late_emissions += 1,
        }
    }
    Ok(())
}

/// Runs the inputs through a freshly compiled pipeline, appending every emission to `log`.
///
/// # Errors
/// [`BenchError::Pipeline`] if the runtime fails, [`BenchError::Log`] if an append fails.
pub async fn run_streaming(
    inputs: &[Input],
    log: &dyn EventLog,
) -> Result<StreamingRun, BenchError> {
    let mut p = compile().await?;
    let mut hist = new_histogram()?;
    let mut run = StreamingRun::default();
    let mut process = Duration::ZERO;
    let wall = Instant::now();
    for input in inputs {
        let t0 = Instant::now();
        let out = p
            .process("metrics.0", input.time_max_ms, input.batch.clone())
            .await
            .map_err(pipeline_err)?;
        process += t0.elapsed();
        run.batches += 1;
        drain(out, t0, log, &p, &mut hist, &mut run).await?;
        let st = p.status();
        run.max_state_bytes = run.max_state_bytes.max(st.state_bytes as u64);
        run.max_groups = run.max_groups.max(st.groups as u64);
    }
    let t0 = Instant::now();
    let out = p.finish().await.map_err(pipeline_err)?;
    process += t0.elapsed();
    drain(out, t0, log, &p, &mut hist, &mut run).await?;
    run.wall_s = wall.elapsed().as_secs_f64();
    run.process_s = process.as_secs_f64();
    run.rows_in = p.status().counters.rows_in;
    if run.process_s > 0.0 {
        run.rows_per_s = run.rows_in as f64 / run.process_s;
    }
    if run.wall_s > 0.0 {
        run.end_to_end_rows_per_s = run.rows_in as f64 / run.wall_s;
    }
    run.window_latency_us = Latency::of(&hist);
    Ok(run)
}

/// What the batch run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchRun {
    /// Input rows.
    pub rows_in: u64,
    /// Seconds from SQL text to the collected result (planning is a few ms of it).
    pub seconds: f64,
    /// `rows_in / seconds`.
    pub rows_per_s: f64,
    /// Sums of the result rows.
    pub totals: Totals,
}

/// The SELECT of [`QUERY`], as run in batch.
pub fn select_of(query: &str) -> &str {
    query
        .find("SELECT")
        .map_or(query, |i| &query[i..])
        .trim_end()
        .trim_end_matches(';')
}

/// Runs the SELECT of [`QUERY`] with DataFusion over a `MemTable` holding `inputs` (one
/// partition, one target partition: one core, as the streaming run).
///
/// # Errors
/// [`BenchError::Pipeline`] if DataFusion fails.
pub async fn run_batch(inputs: &[Input]) -> Result<BatchRun, BenchError> {
    let ctx = aiops_sql::catalog::session().map_err(pipeline_err)?;
    ctx.deregister_table("metrics").map_err(pipeline_err)?;
    let batches: Vec<RecordBatch> = inputs.iter().map(|i| i.batch.clone()).collect();
    let rows_in = batches.iter().map(|b| b.num_rows() as u64).sum();
    let table =
        MemTable::try_new(schema_for(Kind::Metrics), vec![batches]).map_err(pipeline_err)?;
    ctx.register_table("metrics", Arc::new(table))
        .map_err(pipeline_err)?;
    let t0 = Instant::now();
    let out = ctx
        .sql(select_of(QUERY))
        .await
        .map_err(pipeline_err)?
        .collect()
        .await
        .map_err(pipeline_err)?;
    let seconds = t0.elapsed().as_secs_f64();
    let mut totals = Totals::default();
    for b in &out {
        totals.add(b)?;
    }
    Ok(BatchRun {
        rows_in,
        seconds,
        rows_per_s: if seconds > 0.0 {
            rows_in as f64 / seconds
        } else {
            0.0
        },
        totals,
    })
}

/// The throughput and latency part of the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputResult {
    /// The query.
    pub query: String,
    /// Distinct series (groups per window).
    pub series: usize,
    /// Windows of event time.
    pub minutes: usize,
    /// Scrape interval, ms.
    pub interval_ms: i64,
    /// Input rows per window.
    pub rows_per_window: u64,
    /// Rows per micro-batch.
    pub batch_rows: usize,
    /// Input rows.
    pub rows: u64,
    /// Bytes of the input's Arrow arrays.
    pub input_bytes: u64,
    /// Seconds it took to generate the input (not timed in any figure).
    pub generate_s: f64,
    /// Embedded log fsync policy.
    pub fsync: String,
    /// Every streaming round.
    pub streaming_rounds: Vec<StreamingRun>,
    /// Every batch round.
    pub batch_rounds: Vec<BatchRun>,
    /// The streaming round with the median rows/s.
    pub streaming: StreamingRun,
    /// The batch round with the median rows/s.
    pub batch: BatchRun,
    /// `batch.rows_per_s / streaming.rows_per_s`: how many times slower streaming is.
    pub streaming_overhead: f64,
    /// Whether every streaming round's totals equal the batch totals.
    pub results_agree: bool,
}

/// The round with the median `key` (the upper median for an even count); default when empty.
pub fn median_by<T: Clone + Default>(rounds: &[T], key: impl Fn(&T) -> f64) -> T {
    let mut sorted: Vec<&T> = rounds.iter().collect();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted
        .get(sorted.len() / 2)
        .map(|r| (*r).clone())
        .unwrap_or_default()
}

/// Generates the data, then runs `plan.rounds` alternating streaming and batch rounds and
/// reports the median round of each (the first round runs cold: page faults of fresh memory).
///
/// # Errors
/// As [`run_streaming`] and [`run_batch`]; [`BenchError::Pipeline`] also when streaming and
/// batch results differ (the benchmark would be measuring something else).
pub async fn run_throughput(plan: &ThroughputPlan) -> Result<ThroughputResult, BenchError> {
    let data = generate(plan)?;
    tracing::info!(
        rows = data.rows,
        batches = data.inputs.len(),
        mib = data.bytes >> 20,
        seconds = data.seconds,
        "generated input"
    );
    let log = temp_log(plan.tmp_dir.as_deref(), &plan.fsync).await?;
    let mut out = ThroughputResult {
        query: QUERY.to_string(),
        series: plan.series,
        minutes: plan.minutes,
        interval_ms: plan.interval_ms,
        rows_per_window: plan.series as u64 * (60_000 / plan.interval_ms.max(1)) as u64,
        batch_rows: plan.batch_rows,
        rows: data.rows,
        input_bytes: data.bytes,
        generate_s: data.seconds,
        fsync: plan.fsync.clone(),
        ..ThroughputResult::default()
    };
    for round in 0..plan.rounds.max(1) {
        let s = run_streaming(&data.inputs, log.log.as_ref()).await?;
        tracing::info!(
            round,
            rows_per_s = s.rows_per_s as u64,
            p99_us = s.window_latency_us.p99,
            "streaming"
        );
        out.streaming_rounds.push(s);
        let b = run_batch(&data.inputs).await?;
        tracing::info!(round, rows_per_s = b.rows_per_s as u64, "batch");
        out.batch_rounds.push(b);
    }
    let median_s = median_by(&out.streaming_rounds, |r| r.rows_per_s);
    let median_b = median_by(&out.batch_rounds, |r| r.rows_per_s);
    out.results_agree = out
        .streaming_rounds
        .iter()
        .all(|s| s.late_emissions == 0 && s.totals.agrees(&median_b.totals))
        && out
            .batch_rounds
            .iter()
            .all(|b| b.totals.agrees(&median_b.totals));
    if median_s.rows_per_s > 0.0 {
        out.streaming_overhead = median_b.rows_per_s / median_s.rows_per_s;
    }
    out.streaming = median_s;
    out.batch = median_b;
    log.log.close().await?;
    if !out.results_agree {
        return Err(BenchError::Pipeline(format!(
            "streaming and batch results differ: streaming {:?}, batch {:?}",
            out.streaming.totals, out.batch.totals
        )));
    }
    Ok(out)
}

/// One state-memory run: one window of `groups` groups fed `rows_per_group` rows each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RssRun {
    /// Groups in the window.
    pub groups: usize,
    /// Rows per group in the window (1×, 2×, 4×, …).
    pub rows_per_group: usize,
    /// Input rows.
    pub rows: u64,
    /// RSS after compiling the pipeline, before any input, bytes.
    pub baseline_rss_bytes: u64,
    /// Peak RSS while aggregating (before the window is emitted), bytes.
    pub peak_rss_aggregating_bytes: u64,
    /// Peak RSS of the whole run, emission of the window included, bytes.
    pub peak_rss_bytes: u64,
    /// `state_bytes` the runtime reported with the window full.
    pub state_bytes: u64,
    /// Groups the runtime reported with the window full.
    pub status_groups: u64,
    /// Result rows emitted.
    pub rows_out: u64,
    /// Seconds inside `process` (generation excluded).
    pub process_s: f64,
    /// Seconds inside `finish` (emitting the window).
    pub finish_s: f64,
    /// `rows / process_s`.
    pub rows_per_s: f64,
}

/// A field of /proc/self/status in bytes (`VmRSS`, `VmHWM`); 0 where unavailable.
pub fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_status_kb(&s, field))
        .map_or(0, |kb| kb * 1024)
}

/// The kB value of `field` in /proc/<pid>/status text.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Feeds one window of `groups` series (`rows_per_group` scrapes each, all inside the first
/// minute) through a fresh pipeline, generating each micro-batch just before it is processed
/// so the input never accumulates, and reads this process's peak RSS. Meant to run alone in its
/// own process (`aiops-bench pipeline-rss`): `VmHWM` is per process.
///
/// # Errors
/// [`BenchError::Pipeline`] for no groups or rows, or if the runtime fails.
pub async fn rss_one(
    groups: usize,
    rows_per_group: usize,
    names: usize,
    batch_rows: usize,
) -> Result<RssRun, BenchError> {
    if groups == 0 || rows_per_group == 0 || rows_per_group > 60_000 {
        return Err(BenchError::Pipeline(format!(
            "need at least one group and 1–60000 rows per group, got {groups} and {rows_per_group}"
        )));
    }
    let labels = series_labels(groups, names);
    // All scrapes inside [START, START + 1 min): the window is open for the whole run.
    let interval_ms = 60_000 / rows_per_group as i64;
    let mut p = compile().await?;
    let mut run = RssRun {
        groups,
        rows_per_group,
        baseline_rss_bytes: proc_status_bytes("VmRSS"),
        ..RssRun::default()
    };
    let mut process = Duration::ZERO;
    let mut rows = 0u64;
    let mut g = Generator::new(
        &labels,
        START_MS,
        rows_per_group as u64,
        interval_ms,
        batch_rows,
    );
    while let Some(input) = g.next_input()? {
        rows += input.batch.num_rows() as u64;
        let t0 = Instant::now();
        let out = p
            .process("metrics.0", input.time_max_ms, input.batch)
            .await
            .map_err(pipeline_err)?;
        process += t0.elapsed();
        if !out.is_empty() {
            return Err(BenchError::Pipeline(
                "the window fired before the end of the run".into(),
            ));
        }
    }
    let st = p.status();
    run.state_bytes = st.state_bytes as u64;
    run.status_groups = st.groups as u64;
    run.peak_rss_aggregating_bytes = proc_status_bytes("VmHWM");
    let t0 = Instant::now();
    let out = p.finish().await.map_err(pipeline_err)?;
    run.finish_s = t0.elapsed().as_secs_f64();
    run.rows_out = out
        .iter()
        .filter(|e| e.kind == EmissionKind::Output)
        .map(|e| e.batch.num_rows() as u64)
        .sum();
    run.peak_rss_bytes = proc_status_bytes("VmHWM");
    drop(out);
    run.rows = rows;
    run.process_s = process.as_secs_f64();
    if run.process_s > 0.0 {
        run.rows_per_s = rows as f64 / run.process_s;
    }
    Ok(run)
}

/// Runs [`rss_one`] in a child process (`<exe> pipeline-rss …`, printing its [`RssRun`] as one
/// JSON line), so each configuration has its own peak RSS.
///
/// # Errors
/// [`BenchError::Spawn`] if the child does not start, [`BenchError::Pipeline`] if it fails or
/// prints no result.
pub fn rss_in_child(
    exe: &Path,
    groups: usize,
    rows_per_group: usize,
    names: usize,
    batch_rows: usize,
) -> Result<RssRun, BenchError> {
    let out = std::process::Command::new(exe)
        .args([
            "pipeline-rss",
            "--groups",
            &groups.to_string(),
            "--rows-per-group",
            &rows_per_group.to_string(),
            "--names",
            &names.to_string(),
            "--batch-rows",
            &batch_rows.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| BenchError::Spawn {
            bin: exe.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(BenchError::Pipeline(format!(
            "pipeline-rss child failed: {}",
            out.status
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| BenchError::Pipeline("pipeline-rss child printed no result".into()))?;
    serde_json::from_str(line)
        .map_err(|e| BenchError::Pipeline(format!("pipeline-rss child result: {e}")))
}

/// The state-memory part of the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RssResult {
    /// One run per rows-per-group multiplier, in order.
    pub runs: Vec<RssRun>,
    /// Peak RSS of the largest multiplier over the smallest's (1.0 = independent of rows).
    pub peak_growth: f64,
}

impl RssResult {
    /// The result of `runs`, with the growth of peak RSS from the first run to the last.
    pub fn of(runs: Vec<RssRun>) -> RssResult {
        let peak_growth = match (runs.first(), runs.last()) {
            (Some(a), Some(b)) if a.peak_rss_aggregating_bytes > 0 => {
                b.peak_rss_aggregating_bytes as f64 / a.peak_rss_aggregating_bytes as f64
            }
            _ => 0.0,
        };
        RssResult { runs, peak_growth }
    }
}

/// What `pipeline` writes as `details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineDetails {
    /// Throughput, batch comparison and window latency (absent with `--skip-throughput`).
    pub throughput: Option<ThroughputResult>,
    /// State memory (absent with `--skip-rss`).
    pub rss: Option<RssResult>,
}

/// The flat figures of a pipeline result.
pub fn figures(d: &PipelineDetails) -> Vec<Figure> {
    let mut f = Vec::new();
    if let Some(t) = &d.throughput {
        f.push(Figure::new(
            "pipeline.streaming.rows_per_s",
            t.streaming.rows_per_s,
            "rows/s",
            FigureKind::Rate,
        ));
        f.push(Figure::new(
            "pipeline.streaming.end_to_end_rows_per_s",
            t.streaming.end_to_end_rows_per_s,
            "rows/s",
            FigureKind::Rate,
        ));
        f.push(Figure::new(
            "pipeline.batch.rows_per_s",
            t.batch.rows_per_s,
            "rows/s",
            FigureKind::Rate,
        ));
        f.push(Figure::new(
            "pipeline.streaming_overhead",
            t.streaming_overhead,
            "× batch time",
            FigureKind::Size,
        ));
        let l = &t.streaming.window_latency_us;
        for (name, v) in [("p50", l.p50), ("p99", l.p99), ("max", l.max)] {
            f.push(Figure::new(
                format!("pipeline.window_latency.{name}"),
                v as f64,
                "µs",
                FigureKind::Latency,
            ));
        }
        f.push(Figure::new(
            "pipeline.streaming.state_bytes",
            t.streaming.max_state_bytes as f64,
            "B",
            FigureKind::Size,
        ));
    }
    if let Some(r) = &d.rss {
        for run in &r.runs {
            let tag = format!("pipeline.rss.{}x", run.rows_per_group);
            f.push(Figure::new(
                format!("{tag}.peak_rss_aggregating"),
                run.peak_rss_aggregating_bytes as f64,
                "B",
                FigureKind::Size,
            ));
            f.push(Figure::new(
                format!("{tag}.peak_rss"),
                run.peak_rss_bytes as f64,
                "B",
                FigureKind::Size,
            ));
            f.push(Figure::new(
                format!("{tag}.state_bytes"),
                run.state_bytes as f64,
                "B",
                FigureKind::Size,
            ));
            f.push(Figure::new(
                format!("{tag}.rows_per_s"),
                run.rows_per_s,
                "rows/s",
                FigureKind::Rate,
            ));
        }
        f.push(Figure::new(
            "pipeline.rss.peak_growth",
            r.peak_growth,
            "× (last/first)",
            FigureKind::Size,
        ));
    }
    f
}

/// One line per aim of the issue: met or not, with the figure.
pub fn aims_summary(d: &PipelineDetails) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &d.throughput {
        let r = t.streaming.rows_per_s;
        out.push(format!(
            "aim ≥ 5,000,000 rows/s on one core: {} ({})",
            crate::report::human(r),
            if r >= 5e6 { "met" } else { "NOT met" }
        ));
        out.push(format!(
            "aim within 2× of batch: {:.2}× ({})",
            t.streaming_overhead,
            if t.streaming_overhead <= 2.0 {
                "met"
            } else {
                "NOT met"
            }
        ));
        out.push(format!(
            "streaming and batch results agree: {}",
            t.results_agree
        ));
    }
    if let Some(r) = &d.rss {
        out.push(format!(
            "peak RSS growth from {}× to {}× rows per window: {:.2}× ({})",
            r.runs.first().map_or(0, |x| x.rows_per_group),
            r.runs.last().map_or(0, |x| x.rows_per_group),
            r.peak_growth,
            if r.peak_growth <= 1.1 {
                "independent of rows"
            } else {
                "grows with rows"
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let s = "Name:\tx\nVmHWM:\t  1234 kB\nVmRSS:\t   100 kB\n";
        assert_eq!(parse_status_kb(s, "VmHWM"), Some(1234));
        assert_eq!(parse_status_kb(s, "VmRSS"), Some(100));
        assert_eq!(parse_status_kb(s, "Vm"), None);
    }

    #[test]
    fn median_round() {
        assert_eq!(median_by(&[3.0, 1.0, 2.0], |x| *x), 2.0);
        assert_eq!(median_by(&[1.0, 4.0], |x| *x), 4.0);
        assert_eq!(median_by(&[] as &[f64], |x| *x), 0.0);
    }

    #[test]
    fn select_is_the_query_tail() {
        assert!(select_of(QUERY).starts_with("SELECT tumble("));
        assert!(select_of(QUERY).ends_with("name"));
    }

    #[test]
    fn generated_times_are_ordered() {
        let labels = series_labels(10, 3);
        let mut times = Vec::new();
        let mut g = Generator::new(&labels, 0, 4, 15_000, 7);
        let mut rows = 0;
        while let Some(i) = g.next_input().unwrap() {
            rows += i.batch.num_rows();
            times.push(i.time_max_ms);
        }
        assert_eq!(rows, 40);
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(labels[4].0, NAMES[1]);
    }
}
