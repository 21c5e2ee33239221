//! `aiops-bench deploy-log`: deploy verification through the runtime, as the engine runs it
//! (issue 20's figures "verification of 1,000 deploys × 5 metrics × 2 windows of 600 points:
//! verdicts/s; the latency from the end of the verification window to the verdict in the log
//! (p99)").
//!
//! Where `aiops-bench deploy-verify` times the pure judge, this runs the real deploy processor
//! ([`DeployProcessor`]) under the runtime's [`Driver`] over a real embedded log in a temporary
//! directory (fsync `always` by default, as the engine), stepping in process with the driver's
//! batch ([`aiops_runtime::driver::BATCH`]) and checkpointing in line every
//! `--checkpoint-every` (the engine's `[deploys] checkpoint_interval`, 30 s).
//!
//! Setup, outside the clock: `--deploys` canary deploy reports (services `s0`…, version 2,
//! previous 1, staging), deploy `i` starting at `T0 + i × --stagger-ms`, so the windows end
//! staggered; five `[[deploys.metrics]]` (the `deploy-verify` rules) on one output
//! `deploy_metrics_bench`; and one output batch per second of log time (2 rows per service:
//! canary and stable version, the canary baseline) until the last window closes, so every deploy
//! sees exactly `--points` canary and `--points` baseline samples per metric — the same values
//! `deploy-verify` judges (same generator and seed).
//!
//! Measured:
//! 1. ingest: the driver steps through the commands and output batches (rows/s, a side figure);
//! 2. staggered verdicts: clock ticks (`wire::tick_message`) advance log time `--tick-ms` at a
//!    time, each making a few deploys due; per verdict, the wall time from appending its tick to
//!    the end of the step after which its proposal (`g.verdict.…`) is in the log, and to the
//!    end of the step that read it back and applied it (the book shows the decision, its record
//!    change and rollback request appended): p50/p99/max, and verdicts/s over the phase;
//! 3. batch: a fresh log with the same setup and one tick that makes every deploy due at once.
//!
//! The outcome of every deploy is checked against the generator's intent (bad → rollback,
//! borderline → inconclusive, A/A → promote) and the verdict proposals counted in the log, so a
//! broken run cannot look fast.

use crate::deploy_verify::{self, percentile};
use aiops_deploy::verify::MetricSource;
use aiops_deploy::{DeployCommand, Status, Verdict};
use aiops_log::AppendMessage;
use aiops_log::embedded::{EmbeddedConfig, FsyncPolicy};
use aiops_runtime::deploys::processor::{DeployHandle, DeployProcessor};
use aiops_runtime::deploys::{DeploySettings, command_message};
use aiops_runtime::store::Store;
use aiops_runtime::{Driver, DriverOptions, wire};
use aiops_schemas::arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use aiops_schemas::arrow_schema::{DataType, Field, Schema, TimeUnit};
use aiops_schemas::deploy::{DeployReport, DeployStrategy, SourceStatus};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-12-01T00:00:00Z: the first deploy's start (log time).
const T0: i64 = 1_796_083_200_000;
/// The pipeline output the metrics read.
const OUTPUT: &str = "deploy_metrics_bench";
/// Log time between two output batches (one sample per series).
const SAMPLE_MS: i64 = 1_000;
/// Output batches per append while setting up.
const APPEND_CHUNK: usize = 16;
/// The rollback workflow named in the settings (a verdict asks for it; nothing runs it here).
const ROLLBACK_WORKFLOW: &str = "deploy-rollback";

/// `aiops-bench deploy-log` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DeployLogArgs {
    /// Canary deploys (services `s0`…).
    #[arg(long, default_value_t = 1000)]
    pub deploys: usize,
    /// Samples per window (canary and baseline each), one per second: the verification window
    /// is this many seconds.
    #[arg(long, default_value_t = 600)]
    pub points: usize,
    /// Seed of the generated samples (as `deploy-verify`).
    #[arg(long, default_value_t = 20)]
    pub seed: u64,
    /// Deploy `i` starts at `T0 + i ×` this many ms (its window ends as much later).
    #[arg(long, default_value_t = 10)]
    pub stagger_ms: i64,
    /// Log time between two clock ticks of the staggered phase, ms (each makes about
    /// `tick_ms / stagger_ms` deploys due).
    #[arg(long, default_value_t = 50)]
    pub tick_ms: i64,
    /// `[deploys] grace`: wait after a window before judging it.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// The embedded log's fsync: `always` (the engine's default) or an interval such as `1s`.
    #[arg(long, default_value = "always")]
    pub fsync: String,
    /// In-line checkpoint interval (the engine's `[deploys] checkpoint_interval`).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub checkpoint_every: Duration,
    /// Skip the second run where one tick makes every deploy due at once.
    #[arg(long)]
    pub no_batch: bool,
    /// Where the temporary log and checkpoint store go (default: `$TMPDIR`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where to write the JSON result.
    #[arg(long, default_value = "bench/results/deploy-log.json")]
    pub out: PathBuf,
}

/// Why `aiops-bench deploy-log` failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployLogError {
    /// A file or directory could not be made or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The log failed.
    #[error("log: {0}")]
    Log(#[from] aiops_log::LogError),
    /// The driver (processor, log or checkpoint) failed.
    #[error("driver: {0}")]
    Driver(#[from] aiops_runtime::DriverError),
    /// The checkpoint store failed.
    #[error("checkpoint store: {0}")]
    Store(#[from] aiops_runtime::store::StoreError),
    /// An argument is out of range.
    #[error("{0}")]
    Args(String),
    /// The inputs could not be encoded (a bug in the bench).
    #[error("encoding the inputs: {0}")]
    Encode(String),
    /// The run did not do what it measures: a verdict missing or not the intended one.
    #[error("broken run: {0}")]
    Broken(String),
}

/// Per-verdict latency, ms.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl LatencyMs {
    fn of(mut v: Vec<f64>) -> LatencyMs {
        v.sort_by(f64::total_cmp);
        LatencyMs {
            p50: percentile(&v, 0.5),
            p99: percentile(&v, 0.99),
            max: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// The figures of one verdict phase.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Phase {
    /// Clock ticks appended.
    pub ticks: usize,
    /// Verdicts applied.
    pub verdicts: usize,
    /// Wall time from the first tick's append to the last verdict applied, s.
    pub elapsed_s: f64,
    /// `verdicts / elapsed_s`.
    pub verdicts_per_s: f64,
    /// Tick appended → its verdict proposal in the log (end of that driver step).
    pub proposed_ms: LatencyMs,
    /// Tick appended → the proposal read back and applied, the record change in the log.
    pub applied_ms: LatencyMs,
    /// Driver steps taken.
    pub steps: usize,
    /// In-line checkpoints written during the phase, and their total time (s).
    pub checkpoints: usize,
    /// Total time of those checkpoints, s.
    pub checkpoint_s: f64,
    /// `g.verdict.` proposals found in the log afterwards.
    pub verdict_records: usize,
    /// `g.run.` rollback requests found in the log afterwards.
    pub rollback_requests: usize,
}

/// The ingest of one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Ingest {
    /// Output rows read (2 per service per batch).
    pub rows: u64,
    /// Output batches (log messages) read.
    pub batches: usize,
    /// Samples the book took (rows × metrics).
    pub samples: u64,
    /// Wall time of the driver stepping through commands and batches, s.
    pub elapsed_s: f64,
    /// `rows / elapsed_s`.
    pub rows_per_s: f64,
    /// In-line checkpoints written while ingesting.
    pub checkpoints: usize,
    /// Total time of those checkpoints, s.
    pub checkpoint_s: f64,
    /// Size of the last checkpoint (the book's snapshot), bytes.
    pub checkpoint_bytes: usize,
}

/// Verdicts by kind, and those that are not the generator's intent.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Outcomes {
    /// Promote (A/A canaries).
    pub promote: usize,
    /// Inconclusive (borderline canaries).
    pub inconclusive: usize,
    /// Rollback (bad canaries).
    pub rollback: usize,
    /// No verdict (no data).
    pub none: usize,
    /// Deploys whose verdict is not the intended one.
    pub unexpected: usize,
}

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployLogResult {
    /// Deploys.
    pub deploys: usize,
    /// Metrics per deploy.
    pub metrics: usize,
    /// Samples per window and side.
    pub points: usize,
    /// Stagger of deploy starts, ms.
    pub stagger_ms: i64,
    /// Log time per tick in the staggered phase, ms.
    pub tick_ms: i64,
    /// `[deploys] grace`, ms.
    pub grace_ms: u64,
    /// The log's fsync policy.
    pub fsync: String,
    /// In-line checkpoint interval, s.
    pub checkpoint_every_s: f64,
    /// Load average (1 min) before and after the run.
    pub load_average: [f64; 2],
    /// Ingest of the staggered run.
    pub ingest: Ingest,
    /// Verdicts a few at a time.
    pub staggered: Phase,
    /// Outcomes of the staggered run.
    pub outcomes: Outcomes,
    /// Ingest of the batch run.
    pub batch_ingest: Option<Ingest>,
    /// Every verdict due at one tick.
    pub batch: Option<Phase>,
    /// Outcomes of the batch run.
    pub batch_outcomes: Option<Outcomes>,
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The verification settings: the five `deploy-verify` rules read from one output.
fn settings(args: &DeployLogArgs) -> Result<DeploySettings, DeployLogError> {
    let metrics = deploy_verify::rules()
        .into_iter()
        .map(|rule| MetricSource {
            output: OUTPUT.into(),
            column: rule.name.clone(),
            service_column: "service".into(),
            version_column: "version".into(),
            rule,
        })
        .collect();
    let s = DeploySettings {
        verification_window: Duration::from_secs(args.points as u64),
        grace: args.grace,
        metrics,
        rollback_workflow: Some(ROLLBACK_WORKFLOW.into()),
        checkpoint_interval: args.checkpoint_every,
        ..DeploySettings::default()
    };
    s.validate().map_err(DeployLogError::Args)?;
    Ok(s)
}

/// The generated inputs and what each deploy should get.
struct Plan {
    data: Vec<deploy_verify::Deploy>,
    services: Vec<String>,
    /// Deploy `i` starts at `T0 + starts[i]`.
    starts: Vec<i64>,
    /// Its verdict is due at this log time (window end + grace).
    dues: Vec<i64>,
    /// Output batches (one per second from `T0`).
    batches: usize,
    points: usize,
}

impl Plan {
    fn new(args: &DeployLogArgs) -> Plan {
        let data = deploy_verify::generate(args.deploys, args.points, args.seed);
        let window = args.points as i64 * SAMPLE_MS;
        let grace = i64::try_from(args.grace.as_millis()).unwrap_or(i64::MAX);
        let starts: Vec<i64> = (0..args.deploys as i64)
            .map(|i| i * args.stagger_ms)
            .collect();
        let dues = starts.iter().map(|s| T0 + s + window + grace).collect();
        let first = |s: i64| (s + SAMPLE_MS - 1) / SAMPLE_MS;
        let batches = first(starts.last().copied().unwrap_or(0)) as usize + args.points;
        Plan {
            data,
            services: (0..args.deploys).map(|i| format!("s{i}")).collect(),
            starts,
            dues,
            batches,
            points: args.points,
        }
    }

    fn id(i: usize) -> String {
        format!("d{i}")
    }

    /// What the generator meant deploy `i` to get.
    fn intended(i: usize) -> Verdict {
        match i % 10 {
            0 => Verdict::Rollback,
            5 => Verdict::Inconclusive,
            _ => Verdict::Promote,
        }
    }

    fn commands(&self) -> Result<Vec<AppendMessage>, DeployLogError> {
        self.services
            .iter()
            .enumerate()
            .map(|(i, service)| {
                let at = T0 + self.starts[i];
                command_message(
                    &DeployCommand::Report {
                        report: DeployReport {
                            source: "api".into(),
                            service: service.clone(),
                            environment: "staging".into(),
                            version: "2".into(),
                            previous_version: Some("1".into()),
                            strategy: DeployStrategy::Canary,
                            status: SourceStatus::InProgress,
                            at_ms: at,
                            ..DeployReport::default()
                        },
                        id: Some(Plan::id(i)),
                        rollback_of: None,
                        run_action: false,
                    },
                    at,
                )
                .map_err(|e| DeployLogError::Encode(e.to_string()))
            })
            .collect()
    }

    /// Output batch `k` (window start `T0 + k s`): per service its canary and stable row. A
    /// deploy's window holds batches `first..first + points`; rows outside it repeat values
    /// (no verification reads them).
    fn batch(&self, k: usize, rules: &[String]) -> Result<AppendMessage, DeployLogError> {
        let at = T0 + k as i64 * SAMPLE_MS;
        let n = self.services.len() * 2;
        let mut services = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(n); rules.len()];
        for (i, service) in self.services.iter().enumerate() {
            let first = (self.starts[i] + SAMPLE_MS - 1) / SAMPLE_MS;
            let j = (k as i64 - first).rem_euclid(self.points as i64) as usize;
            for (side, version) in [(0, "2"), (1, "1")] {
                services.push(service.as_str());
                versions.push(version);
                for (m, col) in values.iter_mut().enumerate() {
                    let (canary, stable) = &self.data[i][m];
                    col.push(if side == 0 { canary[j] } else { stable[j] });
                }
            }
        }
        let mut fields = vec![
            Field::new("revision", DataType::Int64, false),
            Field::new(
                "window_start",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new("service", DataType::Utf8, false),
            Field::new("version", DataType::Utf8, false),
        ];
        fields.extend(
            rules
                .iter()
                .map(|r| Field::new(r.as_str(), DataType::Float64, true)),
        );
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![0; n])),
            Arc::new(TimestampMillisecondArray::from(vec![at; n])),
            Arc::new(StringArray::from(services)),
            Arc::new(StringArray::from(versions)),
        ];
        cols.extend(
            values
                .into_iter()
                .map(|v| Arc::new(Float64Array::from(v)) as ArrayRef),
        );
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .map_err(|e| DeployLogError::Encode(e.to_string()))?;
        let payload = aiops_schemas::derived::encode_derived(
            &aiops_schemas::derived::DerivedHeader {
                what: aiops_schemas::derived::DerivedWhat::Events,
                window_start_ms: at,
                pipeline: OUTPUT.into(),
            },
            &batch,
        )
        .map_err(|e| DeployLogError::Encode(e.to_string()))?;
        Ok(AppendMessage {
            subject: format!("{}{OUTPUT}", wire::DERIVED_PREFIX),
            msg_id: format!("d.{OUTPUT}.{at}.0"),
            time_min_ms: at,
            time_max_ms: at,
            payload: bytes::Bytes::from(payload),
        })
    }
}

/// In-line checkpoints (`Driver::checkpoint`) on the engine's cadence: due `every` after the
/// last one, when a step read something. The engine's periodic checkpoints of the deploy
/// processor now serialize beside the step loop (its snapshot job); these in-line ones show
/// what a checkpoint of this state costs when it is not (the clone stays in the loop). Counted
/// and timed here.
struct Checkpoints {
    every: Duration,
    last: Instant,
    count: usize,
    secs: f64,
}

impl Checkpoints {
    fn new(every: Duration) -> Checkpoints {
        Checkpoints {
            every,
            last: Instant::now(),
            count: 0,
            secs: 0.0,
        }
    }

    async fn after_step(
        &mut self,
        d: &mut Driver<DeployProcessor>,
        read: usize,
    ) -> Result<(), DeployLogError> {
        if read > 0 && self.last.elapsed() >= self.every {
            let t = Instant::now();
            d.checkpoint().await?;
            self.secs += t.elapsed().as_secs_f64();
            self.count += 1;
            self.last = Instant::now();
        }
        Ok(())
    }

    /// Counts since the last call.
    fn take(&mut self) -> (usize, f64) {
        let out = (self.count, self.secs);
        self.count = 0;
        self.secs = 0.0;
        out
    }
}

/// One run: set up a fresh log, ingest, then the ticks (`batch`: one tick for every deploy).
async fn one_run(
    args: &DeployLogArgs,
    plan: &Plan,
    batch: bool,
) -> Result<(Ingest, Phase, Outcomes), DeployLogError> {
    let tmp = match &args.dir {
        Some(p) => tempfile::Builder::new()
            .prefix("aiops-bench-deploy-log")
            .tempdir_in(p),
        None => tempfile::Builder::new()
            .prefix("aiops-bench-deploy-log")
            .tempdir(),
    }
    .map_err(|source| DeployLogError::Io {
        path: args.dir.clone().unwrap_or_else(std::env::temp_dir),
        source,
    })?;
    let mut cfg = EmbeddedConfig::new(tmp.path().join("log"));
    cfg.fsync = match args.fsync.as_str() {
        "always" => FsyncPolicy::Always,
        other => FsyncPolicy::Interval(
            humantime::parse_duration(other)
                .map_err(|e| DeployLogError::Args(format!("--fsync {other:?}: {e}")))?,
        ),
    };
    let log = aiops_log::open(&aiops_log::LogSpec::Embedded(cfg)).await?;
    let store = Store::open(&tmp.path().join("state"))?;
    let handle = DeployHandle::new(settings(args)?);
    let start = log.stats().await?.next_seq;
    // Opened on the empty log, as a running engine follows it.
    let mut d = Driver::open(
        log.clone(),
        DeployProcessor::new(handle.clone()),
        DriverOptions {
            store: Some(store.clone()),
            append: true,
            start,
            // Checkpoints are taken by `Checkpoints` on the same cadence, to time them.
            checkpoint_every: Duration::MAX,
            progress: handle.progress.clone(),
            write_checkpoints: true,
        },
    )
    .await?
    .collecting();
    let mut cks = Checkpoints::new(args.checkpoint_every);

    // Setup, outside the clock.
    log.append(plan.commands()?).await?;
    let rules: Vec<String> = deploy_verify::rules().into_iter().map(|r| r.name).collect();
    let mut k = 0;
    while k < plan.batches {
        let end = (k + APPEND_CHUNK).min(plan.batches);
        let msgs = (k..end)
            .map(|k| plan.batch(k, &rules))
            .collect::<Result<Vec<_>, _>>()?;
        log.append(msgs).await?;
        k = end;
    }

    // 1. Ingest.
    let t = Instant::now();
    loop {
        let n = d.step(aiops_runtime::driver::BATCH).await?;
        if n == 0 {
            break;
        }
        cks.after_step(&mut d, n).await?;
    }
    let elapsed = t.elapsed().as_secs_f64();
    d.take_collected();
    let (checkpoints, checkpoint_s) = cks.take();
    let summary = d.processor().summary();
    let rows = (plan.batches * plan.services.len() * 2) as u64;
    let ingest = Ingest {
        rows,
        batches: plan.batches,
        samples: summary.samples,
        elapsed_s: elapsed,
        rows_per_s: rows as f64 / elapsed,
        checkpoints,
        checkpoint_s,
        checkpoint_bytes: aiops_runtime::Processor::snapshot(d.processor())
            .map(|s| s.len())
            .unwrap_or(0),
    };
    {
        let book = handle.book.read();
        let verifying = (0..plan.services.len())
            .filter(|&i| {
                book.get(&Plan::id(i))
                    .is_some_and(|x| x.status == Status::Verifying)
            })
            .count();
        if verifying != plan.services.len() || book.samples_dropped() > 0 {
            return Err(DeployLogError::Broken(format!(
                "after ingest {verifying} of {} deploys verify, {} samples dropped ({} refused commands)",
                plan.services.len(),
                book.samples_dropped(),
                summary.refused
            )));
        }
    }
    if summary.samples != rows * rules.len() as u64 {
        return Err(DeployLogError::Broken(format!(
            "the book took {} samples of {}",
            summary.samples,
            rows * rules.len() as u64
        )));
    }

    // 2. Verdicts: ticks, each making the deploys due since the previous one due.
    let mut ticks: Vec<(i64, std::ops::Range<usize>)> = Vec::new();
    let last_due = plan.dues.last().copied().unwrap_or(T0);
    if batch {
        ticks.push((last_due, 0..plan.dues.len()));
    } else {
        let (mut at, mut from) = (plan.dues[0], 0);
        loop {
            let to = from + plan.dues[from..].partition_point(|&x| x <= at);
            if to > from {
                ticks.push((at, from..to));
            }
            from = to;
            if from == plan.dues.len() {
                break;
            }
            at += args.tick_ms;
        }
    }
    let phase_start_seq = log.stats().await?.next_seq;
    let mut proposed = vec![f64::NAN; plan.dues.len()];
    let mut applied = vec![f64::NAN; plan.dues.len()];
    let mut steps = 0;
    let mut per_step = Vec::new();
    let phase = Instant::now();
    for (at, due) in &ticks {
        let t0 = Instant::now();
        log.append(vec![wire::tick_message(*at)]).await?;
        let mut left = due.len();
        while left > 0 {
            let n = d.step(aiops_runtime::driver::BATCH).await?;
            cks.after_step(&mut d, n).await?;
            steps += 1;
            let now = t0.elapsed().as_secs_f64() * 1e3;
            {
                let book = handle.book.read();
                for i in due.clone() {
                    if applied[i].is_nan()
                        && book
                            .get(&Plan::id(i))
                            .is_some_and(|x| x.decision.is_some() || x.status != Status::Verifying)
                    {
                        applied[i] = now;
                        left -= 1;
                    }
                }
            }
            per_step.push((now, d.take_collected()));
            if n == 0 && left > 0 {
                return Err(DeployLogError::Broken(format!(
                    "the log ended with {left} verdicts of the tick at {at} not applied"
                )));
            }
        }
    }
    let elapsed = phase.elapsed().as_secs_f64();
    let (checkpoints, checkpoint_s) = cks.take();
    // Which step wrote each proposal (its time after its tick's append), outside the clock.
    for (now, msgs) in per_step {
        for m in msgs.iter().filter(|m| m.msg_id.starts_with("g.verdict.")) {
            let deploy = serde_json::from_slice::<serde_json::Value>(&m.payload)
                .ok()
                .and_then(|v| v["verdict"]["deploy"].as_str().map(str::to_string));
            if let Some(i) =
                deploy.and_then(|x| x.strip_prefix('d').and_then(|n| n.parse::<usize>().ok()))
                && i < proposed.len()
                && proposed[i].is_nan()
            {
                proposed[i] = now;
            }
        }
    }

    // Checks, outside the clock.
    let mut verdict_records = 0;
    let mut rollback_requests = 0;
    let mut r = log.reader(phase_start_seq).await?;
    loop {
        let b = r.next_batch(1024).await?;
        if b.is_empty() {
            break;
        }
        for x in b {
            if x.msg_id.starts_with("g.verdict.") {
                verdict_records += 1;
            } else if x.msg_id.starts_with("g.run.") {
                rollback_requests += 1;
            }
        }
    }
    let mut outcomes = Outcomes::default();
    {
        let book = handle.book.read();
        for i in 0..plan.services.len() {
            let v = book
                .get(&Plan::id(i))
                .and_then(|x| x.decision.as_ref())
                .map(|x| x.verdict);
            match v {
                Some(Verdict::Promote) => outcomes.promote += 1,
                Some(Verdict::Inconclusive) => outcomes.inconclusive += 1,
                Some(Verdict::Rollback) => outcomes.rollback += 1,
                None => outcomes.none += 1,
            }
            if v != Some(Plan::intended(i)) {
                outcomes.unexpected += 1;
            }
        }
    }
    let missing = proposed.iter().filter(|x| x.is_nan()).count();
    if missing > 0 {
        return Err(DeployLogError::Broken(format!(
            "{missing} verdict proposals were not seen"
        )));
    }
    let phase = Phase {
        ticks: ticks.len(),
        verdicts: applied.len(),
        elapsed_s: elapsed,
        verdicts_per_s: applied.len() as f64 / elapsed,
        proposed_ms: LatencyMs::of(proposed),
        applied_ms: LatencyMs::of(applied),
        steps,
        checkpoints,
        checkpoint_s,
        verdict_records,
        rollback_requests,
    };
    drop(d);
    drop(log);
    Ok((ingest, phase, outcomes))
}

fn check(what: &str, o: &Outcomes, phase: &Phase, deploys: usize) -> Result<(), DeployLogError> {
    if o.unexpected > 0 || phase.verdict_records != deploys {
        return Err(DeployLogError::Broken(format!(
            "{what}: {} verdicts not the intended one, {} proposals in the log for {deploys} deploys",
            o.unexpected, phase.verdict_records
        )));
    }
    Ok(())
}

fn line(what: &str, i: &Ingest, p: &Phase, o: &Outcomes) -> String {
    format!(
        "{what}: ingest_rows_per_s={:.0} ({} rows, {:.2} s, {} checkpoints {:.2} s) ticks={} verdicts_per_s={:.0} proposed_ms p50={:.2} p99={:.2} max={:.2} applied_ms p50={:.2} p99={:.2} max={:.2} checkpoints={} ({:.2} s) promote={} inconclusive={} rollback={} none={} unexpected={} proposals_in_log={} rollback_requests={}",
        i.rows_per_s,
        i.rows,
        i.elapsed_s,
        i.checkpoints,
        i.checkpoint_s,
        p.ticks,
        p.verdicts_per_s,
        p.proposed_ms.p50,
        p.proposed_ms.p99,
        p.proposed_ms.max,
        p.applied_ms.p50,
        p.applied_ms.p99,
        p.applied_ms.max,
        p.checkpoints,
        p.checkpoint_s,
        o.promote,
        o.inconclusive,
        o.rollback,
        o.none,
        o.unexpected,
        p.verdict_records,
        p.rollback_requests,
    )
}

/// Runs the benchmark, prints one summary line and writes the JSON result to `args.out`.
///
/// # Errors
/// [`DeployLogError`] when an argument is out of range, the log, driver or store fails, a
/// verdict is missing or not the intended one, or the result cannot be written.
pub async fn run(args: &DeployLogArgs) -> Result<DeployLogResult, DeployLogError> {
    if args.deploys == 0 || args.points == 0 || args.stagger_ms < 0 || args.tick_ms <= 0 {
        return Err(DeployLogError::Args(
            "--deploys and --points must be at least 1, --stagger-ms at least 0, --tick-ms at least 1".into(),
        ));
    }
    let plan = Plan::new(args);
    let load_before = load_average();
    let (ingest, staggered, outcomes) = one_run(args, &plan, false).await?;
    println!(
        "{}",
        line("deploy-log staggered", &ingest, &staggered, &outcomes)
    );
    let mut batch = None;
    if !args.no_batch {
        let (i, p, o) = one_run(args, &plan, true).await?;
        println!("{}", line("deploy-log batch", &i, &p, &o));
        batch = Some((i, p, o));
    }
    let load_after = load_average();
    let result = DeployLogResult {
        deploys: args.deploys,
        metrics: deploy_verify::rules().len(),
        points: args.points,
        stagger_ms: args.stagger_ms,
        tick_ms: args.tick_ms,
        grace_ms: u64::try_from(args.grace.as_millis()).unwrap_or(u64::MAX),
        fsync: args.fsync.clone(),
        checkpoint_every_s: args.checkpoint_every.as_secs_f64(),
        load_average: [load_before, load_after],
        ingest,
        staggered,
        outcomes,
        batch_ingest: batch.as_ref().map(|b| b.0.clone()),
        batch: batch.as_ref().map(|b| b.1.clone()),
        batch_outcomes: batch.as_ref().map(|b| b.2),
    };
    println!(
        "deploy-log deploys={} metrics={} points={}x2 fsync={} verdicts_per_s={:.0} verdict_p50_ms={:.2} verdict_p99_ms={:.2} verdict_max_ms={:.2} batch_verdicts_per_s={} batch_latency_ms={} ingest_rows_per_s={:.0} promote={} inconclusive={} rollback={} load={:.2}/{:.2}",
        result.deploys,
        result.metrics,
        result.points,
        result.fsync,
        result.staggered.verdicts_per_s,
        result.staggered.applied_ms.p50,
        result.staggered.applied_ms.p99,
        result.staggered.applied_ms.max,
        result
            .batch
            .as_ref()
            .map_or("-".into(), |b| format!("{:.0}", b.verdicts_per_s)),
        result
            .batch
            .as_ref()
            .map_or("-".into(), |b| format!("{:.1}", b.applied_ms.max)),
        result.ingest.rows_per_s,
        outcomes.promote,
        outcomes.inconclusive,
        outcomes.rollback,
        load_before,
        load_after,
    );

    let fig = |name: &str, value: f64, unit: &str, kind| {
        crate::report::Figure::new(format!("deploy_log.{name}"), value, unit, kind)
    };
    use crate::report::FigureKind::{Latency, Rate};
    let mut figures = vec![
        fig(
            "verdicts_per_s",
            result.staggered.verdicts_per_s,
            "verdicts/s",
            Rate,
        ),
        fig(
            "verdict_p50_ms",
            result.staggered.applied_ms.p50,
            "ms",
            Latency,
        ),
        fig(
            "verdict_p99_ms",
            result.staggered.applied_ms.p99,
            "ms",
            Latency,
        ),
        fig(
            "ingest_rows_per_s",
            result.ingest.rows_per_s,
            "rows/s",
            Rate,
        ),
    ];
    if let Some(b) = &result.batch {
        figures.push(fig(
            "batch_verdicts_per_s",
            b.verdicts_per_s,
            "verdicts/s",
            Rate,
        ));
        figures.push(fig("batch_latency_ms", b.applied_ms.max, "ms", Latency));
    }
    let report = crate::report::Report {
        benchmark: "deploy-log".to_string(),
        machine: crate::machine::Machine::describe(),
        provenance: crate::machine::Provenance::current(),
        details: result.clone(),
        figures,
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DeployLogError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
    std::fs::write(&args.out, json).map_err(|source| DeployLogError::Io {
        path: args.out.clone(),
        source,
    })?;
    check(
        "staggered",
        &result.outcomes,
        &result.staggered,
        args.deploys,
    )?;
    if let (Some(o), Some(p)) = (&result.batch_outcomes, &result.batch) {
        check("batch", o, p, args.deploys)?;
    }
    Ok(result)
}
