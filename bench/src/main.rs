//! `aiops-bench`: scenario benchmarks of aiops. See `aiops-bench --help` and docs/benchmarks.md.

use aiops_bench::engine::Backend;
use aiops_bench::ingest::{self, IngestParams};
use aiops_bench::machine::{Machine, Provenance};
use aiops_bench::report::{self, Figure, Report};
use aiops_bench::{BenchError, alerting, demo_rate, pipeline};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Scenario benchmarks of the aiops engine.
///
/// Every run writes JSON with the machine (cores, CPU model, memory, kernel), the exact command
/// line, the git commit and every figure; `compare` prints how one result differs from another.
/// Numbers are only comparable on the same machine: run a baseline and a candidate back to back.
#[derive(Debug, Parser)]
#[command(name = "aiops-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Sustained Prometheus remote_write ingest into the log, per backend.
    ///
    /// Starts `<aiops-bin> run` as a child process on a free port (plus `nats-server -js` for the
    /// nats backend), posts pre-encoded remote_write bodies from this process over
    /// `--connections` keep-alive HTTP/1.1 connections for `--duration`, and reports accepted
    /// samples/s and request latency p50/p99/p999/max after a warm-up. 429/503 answers are
    /// retried after Retry-After and counted as backpressure, never as accepted. Then it stops
    /// the engine with SIGTERM, measures the log's bytes per accepted sample, and replays the
    /// whole log (reading and decoding every message) for events/s.
    Ingest(IngestArgs),
    /// How many events per second the demo generator produces at speed 0, on one core.
    DemoRate(DemoRateArgs),
    /// The streaming SQL runtime: rows/s of a 1-minute tumbling GROUP BY against the same SELECT
    /// in batch (DataFusion), window latency to the log, and peak RSS with many groups.
    ///
    /// Generates `--minutes` of `--series` metric series before the clock starts, runs them
    /// through `StreamingPipeline::process`/`finish` (appending each window's derived events to
    /// an embedded log in a temporary directory) and through DataFusion over a MemTable of the
    /// same batches, `--rounds` times alternately (the median round of each is reported), and
    /// checks both give the same sums. Then, each
    /// in a child process, one window of `--rss-groups` groups fed each `--rss-multipliers`
    /// rows per group, for peak RSS (VmHWM) and the runtime's state_bytes.
    Pipeline(PipelineArgs),
    /// One state-memory run of `pipeline` (run by it in a child process); prints JSON.
    #[command(hide = true)]
    PipelineRss(PipelineRssArgs),
    /// Alert management: alerts/s through normalize → dedup → group → incident in process,
    /// latency from alert ingest to the notification intent in the log, and the same alert
    /// stream side by side with a real Alertmanager.
    ///
    /// 1. Builds `--observations` alert observations of `--fingerprints` alerts over `--minutes`
    ///    of event time as Arrow alert batches, then runs them `--runs` times through a fresh
    ///    `AlertEngine` (the median run is reported) with decisions counted and encoded.
    /// 2. Starts `<aiops-bin> run` with `group_wait: 0s`, posts `--latency-alerts` new alerts at
    ///    `--latency-rate` per second, and follows the log read-only (`aiops-log`) from this process:
    ///    latency = notification intent readable in the log − POST start.
    /// 3. Starts `aiops` and `prometheus-alertmanager` with the same configuration (webhook to a
    ///    sink in this process), posts a paced stream to both at once and counts the
    ///    notifications each emits, then an unpaced stream to each in turn (alerts/s).
    Alerting(AlertingArgs),
    /// Read side: p50/p99 of a Grafana-style 6-hour time-series query over `--series` series at
    /// 15 s on the Postgres endpoint, live (log) and archived (Parquet); archive bytes per
    /// sample. Prints JSON.
    Readside {
        /// Series.
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        /// Queries per phase.
        #[arg(long, default_value_t = 20)]
        queries: u64,
        /// Also load the same samples into this PostgreSQL (libpq conninfo, e.g.
        /// `host=127.0.0.1 user=postgres dbname=test`) and run the same query there, as a peer.
        #[arg(long, value_name = "CONNINFO")]
        postgres: Option<String>,
    },
    /// Workflow engine: executions/s of the engine alone (trigger → render → intent → result →
    /// finished), and p50/p99 from trigger to the first request at a recording server through
    /// the real webhook provider. Prints JSON.
    Workflows {
        /// Triggers for the throughput measurement.
        #[arg(long, default_value_t = 200_000)]
        executions: u64,
        /// Throughput runs (median reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Alerts for the latency measurement.
        #[arg(long, default_value_t = 5_000)]
        latency_alerts: u64,
        /// Their rate per second.
        #[arg(long, default_value_t = 500)]
        latency_rate: u64,
    },
    /// The runtime through the real binary (issue 16): workflow executions/s and alert → webhook
    /// latency per alert rate, alert → notification intent in the log, idle reaction.
    ///
    /// Every run starts a fresh `<bin> run` (embedded log, fsync always) with `group_wait: 0s`
    /// and one workflow (firing alert → webhook to a receiver in this process), and posts
    /// distinct new alerts to `POST /api/v2/alerts`: 1. at each `--rates` (open loop, batched
    /// every `--interval`; the ramp stops after the first unsustainable rate ≥ 1,000/s), POST
    /// start → the receiver reading the request; 2. at `--intent-rate`, POST start → the
    /// notification intent readable by a read-only follower of the log refreshed every `--poll`; 3. the same
    /// with one alert every `--idle-every`, engine idle.
    Runtime(RuntimeArgs),
    /// Cluster failover (issue 17): kill -9 of the alerting owner → takeover and → outputs.
    ///
    /// Starts 3 nats-servers as one JetStream cluster and 3 `<bin> run --node n0..n2` on it (R3,
    /// archive off), posts a steady alert load to the live nodes, and `--kills` times kills the
    /// owner of `alerting` (from `GET /api/cluster`), measuring from the kill to the successor's
    /// fence on `aiops.fence.alerting` (takeover) and to the first decision on `aiops.alerting`
    /// after it (outputs resume), on the records' JetStream timestamps; then restarts the killed
    /// node on the same port and data directory and waits until every unit is owned as assigned.
    Failover(FailoverArgs),
    /// Cluster ingest and replication (issue 17): remote_write samples/s through 1, 2 and 3
    /// nodes on a 3-server JetStream cluster beside one node on the embedded log, R1 against R3,
    /// `sync_interval: always` against the default, and CPU seconds per million samples of the
    /// aiops nodes, the nats-servers and the load generator.
    ///
    /// Every setup starts fresh (3 nats-servers, then the nodes), takes the load of `--connections`
    /// keep-alive clients spread over its nodes for `--warmup` + `--measure`, reads
    /// utime+stime of every process from /proc at the start and end of the measured window, stops
    /// the nodes, and counts the samples in the log: a setup whose log holds fewer samples than
    /// were acknowledged fails the run.
    ClusterIngest(ClusterIngestArgs),
    /// A partitioned pipeline (`-- @partitions: N`, cluster mode): the `pipeline` bench's query
    /// run whole, then as N partition units and the merge unit, each alone and timed in CPU
    /// seconds over the same stream; reports the speed-up one core per unit would give
    /// (whole CPU / slowest unit's), the total CPU the split costs, and partial-record bytes
    /// per input row. The merge must write as many window messages as the whole run.
    Partitioned(PartitionedArgs),
    /// OTLP ingest (issue 18): metric samples/s over OTLP/HTTP (protobuf) and OTLP/gRPC beside
    /// remote_write, and log records/s over OTLP/HTTP and OTLP/gRPC, in one run against one
    /// engine on the embedded log (phases one after the other); the engine's CPU seconds per
    /// million rows. Rates are rows the log accepted (`aiops_ingest_events_total`).
    Otlp(OtlpArgs),
    /// Syslog ingest (issue 18): lines/s over TCP into one engine on the embedded log, LF-framed
    /// and octet-counted, beside JSON logs ingest (NDJSON) of the same lines, each phase on a
    /// fresh engine; the engine's CPU seconds per million lines; received = stored is checked.
    Syslog(SyslogArgs),
    /// Knowledge base (issue 19): imports a runbook folder, scores linking, search and
    /// abstention on labelled alert queries (last line `knowledge link_accuracy=… top1=… top3=…
    /// mrr=… abstain_on_null=… queries_per_sec=…`); `--speed` adds index build rate and search /
    /// ask latency over 100,000 chunks.
    Knowledge(aiops_bench::knowledge::KnowledgeArgs),
    /// Scores an anomaly detector on NAB (Numenta Anomaly Benchmark) data with NAB's own rules.
    ///
    /// Prints a line per series and, last,
    /// `nab standard=… reward_low_fp=… reward_low_fn=…`.
    Nab(aiops_bench::nab::NabArgs),
    /// Scores the log template miner on Loghub data sets (grouping and parsing accuracy), side by
    /// side with Python's drain3.
    ///
    /// Prints a line per data set and, last,
    /// `loghub grouping_accuracy=… parsing_accuracy=… lines_per_sec=…`.
    Loghub(aiops_bench::loghub::LoghubArgs),
    /// Sensitive-data masking (issue 18): ns per log line with every built-in detector on, for
    /// the Loghub lines (most hold no secret), the same lines each with a secret, and lines with
    /// no trigger (the fast path), line by line and as log batches. Writes `--out` JSON.
    Masking(aiops_bench::masking::MaskingArgs),
    /// Deployment verification (issue 20): the judge over generated deploys (5 metrics, canary
    /// and baseline windows of `--points` samples each; `judge_metric` × 5 + `score` per
    /// deploy, one thread). Prints verdicts/s and the per-verdict time p50/p99; writes `--out`
    /// JSON.
    DeployVerify(aiops_bench::deploy_verify::DeployVerifyArgs),
    /// Deployment verification through the runtime (issue 20): the real deploy processor under
    /// the `Driver` over an embedded log (fsync `always`), 1,000 canary deploys × 5 metrics ×
    /// 600 canary and 600 baseline points from `deploy-verify`'s generator, windows ending
    /// staggered. Ingest rows/s; then clock ticks a few deploys due each: per verdict, tick
    /// appended → proposal in the log → applied (p50/p99/max) and verdicts/s; then one tick
    /// making every deploy due at once. Checks every outcome; writes `--out` JSON.
    DeployLog(aiops_bench::deploy_log::DeployLogArgs),
    /// Console (issue 21): server time to render the overview, the alerts page with 10,000
    /// firing alerts, a log search over 1,000,000 lines and a chart of 10,000 points (p50/p99,
    /// bytes per page), in process (`aiops_console::Console::render` on generated API answers)
    /// and through `<bin> run` over HTTP with a bearer token, the live refresh (304), and where
    /// the time goes (API calls vs JSON parse vs template; `perf` on the slowest page). Writes
    /// `--out` JSON.
    ConsoleRender(aiops_bench::console::ConsoleRenderArgs),
    /// Compares two results files figure by figure: "1.12× slower / 1.30× faster / no change (±5%)".
    ///
    /// B is compared against the baseline A.
    Compare {
        /// Baseline results file.
        a: PathBuf,
        /// Candidate results file.
        b: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Embedded,
    Nats,
    Both,
}

#[derive(Debug, clap::Args)]
struct IngestArgs {
    /// Log backend(s) to measure, one after the other.
    #[arg(long, value_enum, default_value = "embedded")]
    backend: BackendChoice,
    /// Load duration per backend, warm-up included (e.g. `20s`).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Start of the run excluded from samples/s and latency.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Concurrent keep-alive HTTP/1.1 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Distinct series the bodies cycle through.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Samples per remote_write request.
    #[arg(long, default_value_t = 2000)]
    samples_per_request: usize,
    /// Distinct pre-encoded bodies; the pool is cycled when the run needs more.
    #[arg(long, default_value_t = 512)]
    pool: usize,
    /// The engine binary (`cargo build --release -p aiops-server`).
    #[arg(long, default_value = "target/release/aiops")]
    aiops_bin: PathBuf,
    /// Results file (JSON).
    #[arg(long, default_value = "bench/results/ingest.json")]
    out: PathBuf,
    /// Messages per reader batch during the replay.
    #[arg(long, default_value_t = 1024)]
    replay_batch: usize,
    /// Record a CPU profile of the engine (`perf record -g`) during the steady part, to this
    /// file (with `both`, the last backend's profile is kept).
    #[arg(long)]
    perf_out: Option<PathBuf>,
    /// Parent directory for the engine's temporary data directory (default: $TMPDIR).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Worker threads of the load generator (1 leaves the most CPU to the engine).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

#[derive(Debug, clap::Args)]
struct RuntimeArgs {
    /// The engine binary (`cargo build --release -p aiops-server --bin aiops`).
    #[arg(long = "bin", default_value = "target/release/aiops")]
    aiops_bin: PathBuf,
    /// Target alert rates of the executions run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100,1000,2000,5000,10000"
    )]
    rates: Vec<f64>,
    /// Sending time per rate.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Start of each rate left out of executions/s.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// One POST per interval at high rates (rate × interval alerts each).
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Wait for the last webhook requests after the last POST.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// A rate is sustainable when all requests arrive and p99 is below this.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    p99_bound: Duration,
    /// Alert rate of the alert → intent run (0 leaves it out).
    #[arg(long, default_value_t = 1000.0)]
    intent_rate: f64,
    /// Sending time of the intent run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    intent_duration: Duration,
    /// Alerts of the idle run (0 leaves it out).
    #[arg(long, default_value_t = 50)]
    idle_alerts: usize,
    /// Their spacing.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    idle_every: Duration,
    /// Sleep between the log follower's refresh rounds.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    poll: Duration,
    /// Parent directory for temporary data directories (default: $TMPDIR).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Worker threads of the load generator and receiver.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Results file (JSON).
    #[arg(long, default_value = "bench/results/runtime.json")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct OtlpArgs {
    /// Client connections (HTTP/1.1 keep-alive, or one HTTP/2 channel each for gRPC) per phase.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Warm-up before the measured window of each phase.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// The measured window of each phase.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    measure: Duration,
    /// Metric samples (data points) per request, for remote_write and OTLP alike.
    #[arg(long, default_value_t = 1000)]
    samples_per_request: usize,
    /// Log records per OTLP logs request.
    #[arg(long, default_value_t = 500)]
    records_per_request: usize,
    /// The engine binary (`cargo build --release -p aiops-server`).
    #[arg(long, default_value = "target/release/aiops")]
    aiops_bin: PathBuf,
    /// Parent directory for the engine's temporary data directory (default: $TMPDIR).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Results file (JSON).
    #[arg(long, default_value = "bench/results/otlp.json")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct PartitionedArgs {
    /// Metric series.
    #[arg(long, default_value_t = 20_000)]
    series: usize,
    /// Minutes of samples.
    #[arg(long, default_value_t = 10)]
    minutes: usize,
    /// Sample interval per series (rows per group per window = 1 minute / it).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: std::time::Duration,
    /// Samples per input message, before the split over log partitions.
    #[arg(long, default_value_t = 8192)]
    batch_rows: usize,
    /// Log partitions (`[ingest] partitions`).
    #[arg(long, default_value_t = 4)]
    log_partitions: u32,
    /// Partition units (`@partitions`).
    #[arg(long, default_value_t = 3)]
    units: u32,
    /// Directory for the temporary logs.
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Where the JSON result goes.
    #[arg(long, default_value = "bench/results/partitioned.json")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ClusterIngestArgs {
    /// The engine binary (`cargo build -p aiops-server --bin aiops`).
    #[arg(long = "bin", default_value = "target/debug/aiops")]
    aiops_bin: PathBuf,
    /// Setups in run order: `embedded`, or `r<1|3>[-always]-n<1..3>` (R replicas, every
    /// nats-server with `sync_interval: always` or the default, K ingest nodes).
    #[arg(long, value_delimiter = ',', default_value = aiops_bench::cluster_ingest::DEFAULT_SETUPS)]
    setups: Vec<aiops_bench::cluster_ingest::Setup>,
    /// Load before the measured window, per setup.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// The measured window, per setup.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    measure: Duration,
    /// Keep-alive HTTP/1.1 connections over all nodes of a setup (round-robin).
    #[arg(long, default_value_t = 6)]
    connections: usize,
    /// Distinct series the bodies cycle through.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Samples per remote_write request.
    #[arg(long, default_value_t = 2000)]
    samples_per_request: usize,
    /// Distinct pre-encoded bodies (cycled).
    #[arg(long, default_value_t = 512)]
    pool: usize,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Parent directory for temporary data directories (default: $TMPDIR).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Results file (JSON); default `bench/results/cluster-ingest-<date>.json`.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct FailoverArgs {
    /// The engine binary (`cargo build -p aiops-server --bin aiops`).
    #[arg(long = "bin", default_value = "target/debug/aiops")]
    aiops_bin: PathBuf,
    /// Kills of the alerting owner.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// `[cluster] lease_ttl` of every node.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// `[cluster] poll` of every node.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    poll: Duration,
    /// Alerts per second of the steady load.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Alerts per POST.
    #[arg(long, default_value_t = 10)]
    alerts_per_post: usize,
    /// Load time after every unit is owned again, before the next kill.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Give up when a takeover, the outputs after it or a rejoin take longer.
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Parent directory for temporary data directories (default: $TMPDIR).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Keep the nodes' data directories and stderr files (kept anyway when the run fails).
    #[arg(long)]
    keep: bool,
    /// Results file (JSON).
    #[arg(long, default_value = "bench/results/failover.json")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct SyslogArgs {
    /// Client connections per phase.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Warm-up before the measured window.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// The measured window.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    measure: Duration,
    /// Lines per TCP write and per JSON request.
    #[arg(long, default_value_t = 200)]
    lines_per_write: usize,
    /// Leave out the JSON phase.
    #[arg(long)]
    skip_json: bool,
    /// The engine binary (`cargo build --release -p aiops-server`).
    #[arg(long, default_value = "target/release/aiops")]
    aiops_bin: PathBuf,
    /// Parent directory for the engines' temporary data directories (default: $TMPDIR).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Results file (JSON).
    #[arg(long, default_value = "bench/results/syslog.json")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct DemoRateArgs {
    /// Event time to generate (e.g. `1d`).
    #[arg(long, default_value = "1d", value_parser = humantime::parse_duration)]
    event_time: Duration,
    /// Simulated hosts.
    #[arg(long, default_value_t = 6)]
    hosts: usize,
    /// Simulated services.
    #[arg(long, default_value_t = 4)]
    services: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Results file (JSON).
    #[arg(long, default_value = "bench/results/demo-rate.json")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct PipelineArgs {
    /// Distinct series (groups per window).
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Metric names per host (1–16): series are `names` names × `series / names` hosts.
    #[arg(long, default_value_t = 10)]
    names: usize,
    /// Minutes of event time (1-minute windows).
    #[arg(long, default_value_t = 120)]
    minutes: usize,
    /// Scrape interval of every series (must divide a minute).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Rows per micro-batch (one log message).
    #[arg(long, default_value_t = 8192)]
    batch_rows: usize,
    /// Alternating streaming/batch rounds; the median of each is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// fsync policy of the embedded log the windows are appended to: `always` or e.g. `100ms`.
    #[arg(long, default_value = "always")]
    fsync: String,
    /// Parent directory of the temporary log (default: $TMPDIR).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Groups in the one window of the state-memory runs.
    #[arg(long, default_value_t = 1_000_000)]
    rss_groups: usize,
    /// Rows per group per window of each state-memory run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    rss_multipliers: Vec<usize>,
    /// Leave out the state-memory runs.
    #[arg(long)]
    skip_rss: bool,
    /// Leave out the throughput, batch and latency runs.
    #[arg(long)]
    skip_throughput: bool,
    /// Results file (JSON).
    #[arg(long, default_value = "bench/results/pipeline.json")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct PipelineRssArgs {
    /// Groups in the window.
    #[arg(long)]
    groups: usize,
    /// Rows per group.
    #[arg(long)]
    rows_per_group: usize,
    /// Metric names per host.
    #[arg(long, default_value_t = 10)]
    names: usize,
    /// Rows per micro-batch.
    #[arg(long, default_value_t = 8192)]
    batch_rows: usize,
}

#[derive(Debug, clap::Args)]
struct AlertingArgs {
    /// Distinct alerts of the in-process stream.
    #[arg(long, default_value_t = 10_000)]
    fingerprints: usize,
    /// Alert observations of the in-process stream (re-sends round-robin).
    #[arg(long, default_value_t = 1_000_000)]
    observations: usize,
    /// Minutes of event time the in-process stream spans.
    #[arg(long, default_value_t = 10)]
    minutes: i64,
    /// Rows per Arrow alert batch.
    #[arg(long, default_value_t = 1000)]
    batch_rows: usize,
    /// In-process runs over the same stream (the first also encodes the decisions); the median
    /// is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// New alerts posted in the latency run (one per request).
    #[arg(long, default_value_t = 2000)]
    latency_alerts: usize,
    /// Requests per second of the latency run.
    #[arg(long, default_value_t = 200.0)]
    latency_rate: f64,
    /// `[alerting] tick_interval` of the engine in the latency run.
    #[arg(long, default_value = "10ms")]
    tick_interval: String,
    /// Fingerprints of the unpaced side-by-side stream.
    #[arg(long, default_value_t = 5_000)]
    blast_fingerprints: usize,
    /// Times each is sent in the unpaced stream.
    #[arg(long, default_value_t = 10)]
    blast_rounds: usize,
    /// Alerts per request in the side-by-side streams.
    #[arg(long, default_value_t = 100)]
    alerts_per_request: usize,
    /// Keep-alive connections of the unpaced stream.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Rounds of the paced stream (one per second; the expected counts assume 20).
    #[arg(long, default_value_t = 20)]
    paced_rounds: usize,
    /// Wait after each side-by-side stream before counting notifications.
    #[arg(long, default_value = "7s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// The engine binary (`cargo build --release -p aiops-server`).
    #[arg(long, default_value = "target/release/aiops")]
    aiops_bin: PathBuf,
    /// Parent directory for temporary data directories (default: $TMPDIR).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Leave out the in-process engine runs.
    #[arg(long)]
    skip_engine: bool,
    /// Leave out the latency run.
    #[arg(long)]
    skip_latency: bool,
    /// Leave out the side-by-side run with Alertmanager.
    #[arg(long)]
    skip_compare: bool,
    /// Results file (JSON).
    #[arg(long, default_value = "bench/results/alerting.json")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Ingest(args) => cmd_ingest(args),
        Cmd::DemoRate(args) => cmd_demo_rate(args),
        Cmd::Pipeline(args) => cmd_pipeline(args),
        Cmd::PipelineRss(args) => cmd_pipeline_rss(args),
        Cmd::Alerting(args) => cmd_alerting(args),
        Cmd::Runtime(args) => cmd_runtime(args),
        Cmd::Failover(args) => cmd_failover(args),
        Cmd::ClusterIngest(args) => cmd_cluster_ingest(args),
        Cmd::Partitioned(args) => cmd_partitioned(args),
        Cmd::Otlp(args) => cmd_otlp(args),
        Cmd::Readside {
            series,
            queries,
            postgres,
        } => {
            let rt = runtime(2)?;
            let r = rt.block_on(aiops_bench::readside::run(
                series,
                queries,
                postgres.as_deref(),
            ))?;
            println!(
                "{}",
                serde_json::json!({"readside": r, "machine": aiops_bench::machine::Machine::describe()})
            );
            Ok(())
        }
        Cmd::Workflows {
            executions,
            runs,
            latency_alerts,
            latency_rate,
        } => {
            let t = aiops_bench::workflows::run_throughput(executions, runs)?;
            let rt = runtime(2)?;
            let l = rt.block_on(aiops_bench::workflows::run_latency(
                latency_alerts,
                latency_rate,
            ))?;
            println!(
                "{}",
                serde_json::json!({"throughput": t, "latency": l, "machine": aiops_bench::machine::Machine::describe()})
            );
            Ok(())
        }
        Cmd::Syslog(args) => cmd_syslog(args),
        Cmd::Knowledge(args) => aiops_bench::knowledge::run(&args),
        Cmd::Nab(args) => Ok(aiops_bench::nab::run(args)?),
        Cmd::Loghub(args) => Ok(aiops_bench::loghub::run(args)?),
        Cmd::Masking(args) => aiops_bench::masking::run(args)
            .map(|_| ())
            .map_err(Into::into),
        Cmd::DeployVerify(args) => aiops_bench::deploy_verify::run(&args)
            .map(|_| ())
            .map_err(Into::into),
        Cmd::DeployLog(args) => runtime(2)?
            .block_on(aiops_bench::deploy_log::run(&args))
            .map(|_| ())
            .map_err(Into::into),
        Cmd::ConsoleRender(args) => runtime(1)?
            .block_on(aiops_bench::console::run(&args))
            .map(|_| ())
            .map_err(Into::into),
        Cmd::Compare { a, b } => cmd_compare(&a, &b),
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    rt.context("cannot build the tokio runtime")
}

fn cmd_ingest(args: IngestArgs) -> anyhow::Result<()> {
    let backends = match args.backend {
        BackendChoice::Embedded => vec![Backend::Embedded],
        BackendChoice::Nats => vec![Backend::Nats],
        BackendChoice::Both => vec![Backend::Embedded, Backend::Nats],
    };
    if args.warmup >= args.duration {
        anyhow::bail!(
            "--warmup ({:?}) must be shorter than --duration ({:?})",
            args.warmup,
            args.duration
        );
    }
    let params = IngestParams {
        backends,
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        connections: args.connections,
        series: args.series,
        samples_per_request: args.samples_per_request,
        pool: args.pool,
        aiops_bin: args.aiops_bin,
        replay_batch: args.replay_batch,
        perf_out: args.perf_out,
        tmp_dir: args.tmp_dir,
    };
    let provenance = Provenance::current();
    let details = runtime(args.client_threads)?.block_on(ingest::run(&params))?;
    let figures = ingest::figures(&details);
    for run in &details.runs {
        for p in &run.problems {
            eprintln!("{}: {p}", run.backend.as_str());
        }
        if run.replay_matches_accepted == Some(false) {
            eprintln!(
                "{}: replay found {} events but {} samples were accepted",
                run.backend.as_str(),
                run.replay.as_ref().map(|r| r.events).unwrap_or(0),
                run.load.accepted_samples
            );
        }
        eprintln!(
            "{}: {} requests accepted, {} backpressure answers, {} errors{}",
            run.backend.as_str(),
            run.load.accepted_requests,
            run.load.backpressure,
            run.load.errors,
            run.load
                .first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
    }
    print!("{}", report::table(&figures));
    for line in ingest::aims_summary(&figures) {
        println!("{line}");
    }
    write_report(&args.out, "ingest", provenance, details, figures)
}

fn cmd_syslog(args: SyslogArgs) -> anyhow::Result<()> {
    use aiops_bench::syslog;
    let provenance = Provenance::current();
    let plan = syslog::SyslogPlan {
        aiops_bin: args.aiops_bin,
        connections: args.connections,
        warmup: args.warmup,
        measure: args.measure,
        lines_per_write: args.lines_per_write,
        tmp_dir: args.tmp_dir,
        skip_json: args.skip_json,
    };
    let result = runtime(args.client_threads)?.block_on(syslog::run(&plan))?;
    let figures = syslog::figures(&result);
    print!("{}", report::table(&figures));
    if let (Some(lf), Some(oc)) = (result.ratio_lf_to_json, result.ratio_octet_to_json) {
        println!("syslog/json lines/s: LF {lf:.2}x, octet-counted {oc:.2}x");
    }
    let problems = syslog::problems(&result);
    for p in &problems {
        eprintln!("{p}");
    }
    write_report(&args.out, "syslog", provenance, &result, figures)?;
    if !problems.is_empty() {
        anyhow::bail!("stored lines differ from received lines");
    }
    Ok(())
}

fn cmd_demo_rate(args: DemoRateArgs) -> anyhow::Result<()> {
    let provenance = Provenance::current();
    let plan = demo_rate::DemoRatePlan {
        event_time: args.event_time,
        hosts: args.hosts,
        services: args.services,
        seed: args.seed,
    };
    let result = runtime(1)?.block_on(demo_rate::run(&plan))?;
    let figures = demo_rate::figures(&result);
    print!("{}", report::table(&figures));
    write_report(&args.out, "demo-rate", provenance, result, figures)
}

fn cmd_pipeline(args: PipelineArgs) -> anyhow::Result<()> {
    let provenance = Provenance::current();
    let mut details = pipeline::PipelineDetails::default();
    if !args.skip_throughput {
        let plan = pipeline::ThroughputPlan {
            series: args.series,
            names: args.names,
            minutes: args.minutes,
            interval_ms: i64::try_from(args.interval.as_millis()).unwrap_or(i64::MAX),
            batch_rows: args.batch_rows,
            rounds: args.rounds,
            tmp_dir: args.tmp_dir.clone(),
            fsync: args.fsync.clone(),
        };
        let t = runtime(1)?.block_on(pipeline::run_throughput(&plan))?;
        println!(
            "throughput: {} rows ({} series × {} min at {} ms, {} rows/window) in batches of {}; \
             {} windows emitted per round",
            report::human(t.rows as f64),
            t.series,
            t.minutes,
            t.interval_ms,
            report::human(t.rows_per_window as f64),
            t.batch_rows,
            t.streaming.windows
        );
        let per_round = |v: Vec<f64>| {
            v.into_iter()
                .map(report::human)
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "rows/s per round: streaming {}; batch {} (median reported)",
            per_round(t.streaming_rounds.iter().map(|r| r.rows_per_s).collect()),
            per_round(t.batch_rounds.iter().map(|r| r.rows_per_s).collect())
        );
        details.throughput = Some(t);
    }
    if !args.skip_rss {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let mut runs = Vec::new();
        for &m in &args.rss_multipliers {
            let run =
                pipeline::rss_in_child(&exe, args.rss_groups, m, args.names, args.batch_rows)?;
            println!(
                "state memory: {} groups × {} rows: peak RSS {} MiB aggregating, {} MiB with \
                 emission (baseline {} MiB), state_bytes {} MiB, {} rows/s",
                report::human(run.groups as f64),
                run.rows_per_group,
                run.peak_rss_aggregating_bytes >> 20,
                run.peak_rss_bytes >> 20,
                run.baseline_rss_bytes >> 20,
                run.state_bytes >> 20,
                report::human(run.rows_per_s)
            );
            runs.push(run);
        }
        details.rss = Some(pipeline::RssResult::of(runs));
    }
    let figures = pipeline::figures(&details);
    print!("{}", report::table(&figures));
    for line in pipeline::aims_summary(&details) {
        println!("{line}");
    }
    write_report(&args.out, "pipeline", provenance, details, figures)
}

fn cmd_pipeline_rss(args: PipelineRssArgs) -> anyhow::Result<()> {
    let run = runtime(1)?.block_on(pipeline::rss_one(
        args.groups,
        args.rows_per_group,
        args.names,
        args.batch_rows,
    ))?;
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}

fn cmd_alerting(args: AlertingArgs) -> anyhow::Result<()> {
    let provenance = Provenance::current();
    let mut details = alerting::AlertingDetails::default();
    if !args.skip_engine {
        let plan = alerting::StreamPlan {
            fingerprints: args.fingerprints,
            observations: args.observations,
            names: alerting::NAMES.len(),
            services: alerting::SERVICES.len(),
            span_ms: args.minutes.saturating_mul(60_000),
            batch_rows: args.batch_rows,
        };
        details.engine = Some(alerting::run_engine_rounds(&plan, args.runs)?);
    }
    let rt = runtime(1)?;
    if !args.skip_latency {
        let plan = alerting::LatencyPlan {
            alerts: args.latency_alerts,
            rate_per_s: args.latency_rate,
            aiops_bin: args.aiops_bin.clone(),
            tmp_dir: args.tmp_dir.clone(),
            tick_interval: args.tick_interval.clone(),
            poll_us: 1000,
        };
        details.latency = Some(rt.block_on(alerting::run_latency(&plan))?);
    }
    if !args.skip_compare {
        let plan = alerting::ComparePlan {
            blast_fingerprints: args.blast_fingerprints,
            blast_rounds: args.blast_rounds,
            alerts_per_request: args.alerts_per_request,
            connections: args.connections,
            paced_rounds: args.paced_rounds,
            round_interval_ms: 1000,
            settle_ms: u64::try_from(args.settle.as_millis()).unwrap_or(u64::MAX),
            aiops_bin: args.aiops_bin.clone(),
            tmp_dir: args.tmp_dir.clone(),
        };
        details.compare = Some(rt.block_on(alerting::run_compare(&plan))?);
    }
    for line in alerting::summary(&details) {
        println!("{line}");
    }
    let figures = alerting::figures(&details);
    print!("{}", report::table(&figures));
    write_report(&args.out, "alerting", provenance, details, figures)
}

fn cmd_runtime(args: RuntimeArgs) -> anyhow::Result<()> {
    let provenance = Provenance::current();
    let plan = aiops_bench::runtime::RuntimePlan {
        aiops_bin: args.aiops_bin,
        tmp_dir: args.tmp_dir,
        rates: args.rates,
        duration: args.duration,
        warmup: args.warmup,
        interval: args.interval,
        drain: args.drain,
        p99_bound: args.p99_bound,
        intent_rate: args.intent_rate,
        intent_duration: args.intent_duration,
        idle_alerts: args.idle_alerts,
        idle_every: args.idle_every,
        poll: args.poll,
    };
    let details = runtime(args.client_threads)?.block_on(aiops_bench::runtime::run(&plan))?;
    let figures = aiops_bench::runtime::figures(&details);
    print!("{}", report::table(&figures));
    write_report(&args.out, "runtime", provenance, details, figures)
}

fn cmd_failover(args: FailoverArgs) -> anyhow::Result<()> {
    let provenance = Provenance::current();
    let plan = aiops_bench::failover::FailoverPlan {
        aiops_bin: args.aiops_bin,
        tmp_dir: args.tmp_dir,
        kills: args.kills,
        lease_ttl: args.lease_ttl,
        poll: args.poll,
        rate: args.rate,
        alerts_per_post: args.alerts_per_post,
        settle: args.settle,
        timeout: args.timeout,
        keep: args.keep,
    };
    let d = runtime(2)?.block_on(aiops_bench::failover::run(&plan))?;
    println!(
        "{} kills of the alerting owner; lease TTL {} ms, poll {} ms; {} alerts/s ({} POSTs ok, \
         {} failed)",
        d.kills.len(),
        d.lease_ttl_ms,
        d.poll_ms,
        d.alerts_per_s,
        d.posts_ok,
        d.posts_failed
    );
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>8}",
        "ms from kill -9", "min", "p50", "p99", "max"
    );
    for (what, s) in [
        ("kill → takeover (fence)", &d.takeover),
        ("kill → outputs resume", &d.resume),
        ("takeover → outputs (restore)", &d.restore),
        ("restart → all units owned", &d.rejoin),
    ] {
        println!(
            "{what:<34} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
            s.min_ms, s.p50_ms, s.p99_ms, s.max_ms
        );
    }
    let figures = aiops_bench::failover::figures(&d);
    write_report(&args.out, "failover", provenance, d, figures)
}

fn cmd_otlp(args: OtlpArgs) -> anyhow::Result<()> {
    use aiops_bench::otlp;
    let provenance = Provenance::current();
    let plan = otlp::OtlpPlan {
        aiops_bin: args.aiops_bin,
        connections: args.connections,
        warmup: args.warmup,
        measure: args.measure,
        samples_per_request: args.samples_per_request,
        records_per_request: args.records_per_request,
        tmp_dir: args.tmp_dir,
    };
    let result = runtime(args.client_threads)?.block_on(otlp::run(&plan))?;
    let figures = otlp::figures(&result);
    print!("{}", report::table(&figures));
    if let (Some(h), Some(g)) = (
        result.ratio_http_to_remote_write,
        result.ratio_grpc_to_remote_write,
    ) {
        println!("otlp/remote_write samples/s: HTTP {h:.2}x, gRPC {g:.2}x");
    }
    write_report(&args.out, "otlp", provenance, &result, figures)
}

fn cmd_partitioned(args: PartitionedArgs) -> anyhow::Result<()> {
    let plan = aiops_bench::partitioned::PartitionedPlan {
        series: args.series,
        minutes: args.minutes,
        interval_ms: i64::try_from(args.interval.as_millis()).unwrap_or(i64::MAX),
        batch_rows: args.batch_rows,
        log_partitions: args.log_partitions,
        units: args.units,
        tmp_dir: args.tmp_dir,
    };
    let r = runtime(1)?.block_on(aiops_bench::partitioned::run(&plan))?;
    println!(
        "{} rows in {} messages over {} log partitions; {} derived window messages",
        report::human(r.rows as f64),
        r.messages,
        plan.log_partitions,
        r.derived_events
    );
    println!(
        "{:<14} {:>8} {:>8} {:>9}",
        "unit", "cpu s", "wall s", "appended"
    );
    for u in &r.units {
        println!(
            "{:<14} {:>8.2} {:>8.2} {:>9}",
            u.unit, u.cpu_s, u.wall_s, u.appended
        );
    }
    println!(
        "speed-up with one core per unit: {:.2}x; total CPU of the split: {:.2}x the whole run's; partial records: {:.1} bytes per input row",
        r.speedup_bound, r.cpu_overhead, r.partial_bytes_per_row
    );
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let body = serde_json::json!({
        "bench": "partitioned",
        "machine": Machine::describe(),
        "provenance": Provenance::current(),
        "plan": {
            "series": plan.series, "minutes": plan.minutes, "interval_ms": plan.interval_ms,
            "batch_rows": plan.batch_rows,
            "log_partitions": plan.log_partitions, "units": plan.units,
        },
        "result": r,
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&body)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

fn cmd_cluster_ingest(args: ClusterIngestArgs) -> anyhow::Result<()> {
    let provenance = Provenance::current();
    let out = args.out.unwrap_or_else(|| {
        let date = provenance.started_at.get(..10).unwrap_or("undated");
        PathBuf::from(format!("bench/results/cluster-ingest-{date}.json"))
    });
    let plan = aiops_bench::cluster_ingest::ClusterIngestPlan {
        aiops_bin: args.aiops_bin,
        tmp_dir: args.tmp_dir,
        setups: args.setups,
        warmup: args.warmup,
        measure: args.measure,
        connections: args.connections,
        series: args.series,
        samples_per_request: args.samples_per_request,
        pool: args.pool,
    };
    let d = runtime(args.client_threads)?.block_on(aiops_bench::cluster_ingest::run(&plan))?;
    println!(
        "nats-server {}; {} connections; {} s warm-up + {} s measured per setup; {} cores",
        d.nats_server,
        plan.connections,
        plan.warmup.as_secs_f64(),
        plan.measure.as_secs_f64(),
        Machine::describe().nproc
    );
    print!("{}", aiops_bench::cluster_ingest::table(&d));
    let figures = aiops_bench::cluster_ingest::figures(&d);
    write_report(&out, "cluster-ingest", provenance, d, figures)
}

fn write_report<T: Serialize>(
    out: &Path,
    benchmark: &str,
    provenance: Provenance,
    details: T,
    figures: Vec<Figure>,
) -> anyhow::Result<()> {
    let report = Report {
        benchmark: benchmark.to_string(),
        machine: Machine::describe(),
        provenance,
        details,
        figures,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(out, json + "\n").with_context(|| format!("cannot write {}", out.display()))?;
    println!("results written to {}", out.display());
    Ok(())
}

fn read_figures(path: &Path) -> Result<Vec<Figure>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::io(path, e))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| BenchError::Results {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let figures = value.get("figures").cloned().ok_or(BenchError::Results {
        path: path.to_path_buf(),
        reason: "no `figures` list: not an aiops-bench results file".into(),
    })?;
    serde_json::from_value(figures).map_err(|e| BenchError::Results {
        path: path.to_path_buf(),
        reason: format!("bad `figures`: {e}"),
    })
}

fn cmd_compare(a: &Path, b: &Path) -> anyhow::Result<()> {
    let fa = read_figures(a)?;
    let fb = read_figures(b)?;
    println!("B = {}  vs  baseline A = {}", b.display(), a.display());
    print!("{}", report::compare(&fa, &fb));
    Ok(())
}
