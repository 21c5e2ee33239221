//! `aiops-bench ingest`: per backend, start the engine, drive remote_write load from this process,
//! stop the engine, measure the log on disk and replay it.

use crate::bodies::{PoolShape, build_pool};
use crate::engine::{Backend, Engine, dir_size};
use crate::error::BenchError;
use crate::load::{self, LoadPlan, LoadResult};
use crate::replay::{ReplayResult, replay};
use crate::report::{Figure, FigureKind};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything `ingest` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestParams {
    /// Backends in run order.
    pub backends: Vec<Backend>,
    /// Load duration per backend, warm-up included, seconds.
    pub duration_s: f64,
    /// Warm-up excluded from steady figures, seconds.
    pub warmup_s: f64,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Distinct series.
    pub series: usize,
    /// Samples per request.
    pub samples_per_request: usize,
    /// Bodies in the pre-encoded pool.
    pub pool: usize,
    /// The engine binary.
    pub aiops_bin: PathBuf,
    /// Messages per reader batch in the replay.
    pub replay_batch: usize,
    /// Where `perf record` output goes, if profiling was asked for.
    pub perf_out: Option<PathBuf>,
    /// Parent directory of the engine's temporary data directory.
    pub tmp_dir: Option<PathBuf>,
}

/// Bytes the log takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskResult {
    /// What was measured: a directory, or `stream stats` for JetStream.
    pub measured: String,
    /// Sum of file lengths (or the stream's bytes).
    pub bytes: u64,
    /// Blocks allocated on disk (0 when not measured from a directory).
    pub allocated_bytes: u64,
    /// Bytes the backend's own stats report.
    pub stats_bytes: Option<u64>,
    /// Messages the backend's stats report.
    pub stats_messages: Option<u64>,
    /// `bytes / accepted samples`.
    pub bytes_per_sample: f64,
}

/// The result for one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendRun {
    /// Which backend.
    pub backend: Backend,
    /// Load generator figures.
    pub load: LoadResult,
    /// Size of the log.
    pub disk: Option<DiskResult>,
    /// Replay figures.
    pub replay: Option<ReplayResult>,
    /// Whether every accepted sample came back in the replay (invariant 4: nothing lost).
    pub replay_matches_accepted: Option<bool>,
    /// How the engine exited after SIGTERM.
    pub engine_exit: String,
    /// Problems that left a figure out, in order.
    pub problems: Vec<String>,
}

/// What `ingest` writes as `details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestDetails {
    /// The parameters.
    pub params: IngestParams,
    /// Seconds spent pre-encoding the body pool (not measured in any figure).
    pub pool_encode_s: f64,
    /// Compressed bytes of the whole pool.
    pub pool_bytes: u64,
    /// One entry per backend.
    pub runs: Vec<BackendRun>,
}

/// The aims of the issue, as (figure suffix, backend, minimum).
pub const AIMS: [(&str, Backend, f64); 3] = [
    ("ingest.samples_per_s", Backend::Embedded, 1_000_000.0),
    ("replay.events_per_s", Backend::Embedded, 3_000_000.0),
    ("ingest.samples_per_s", Backend::Nats, 500_000.0),
];

/// The wall clock, to the minute: the bench is an edge (a client), and its samples must fall
/// inside ingest's time window around now.
#[allow(clippy::disallowed_methods)]
fn wall_minute_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
        / 60_000
        * 60_000
}

/// Runs the benchmark for every backend in `params`.
///
/// # Errors
/// Only when the body pool cannot be built; a failing backend is recorded in its run's `problems`
/// (so `both` still reports the other one), except when it produces no figure at all, which is
/// returned as that backend's error.
pub async fn run(params: &IngestParams) -> Result<IngestDetails, BenchError> {
    let shape = PoolShape {
        series: params.series,
        samples_per_request: params.samples_per_request,
        bodies: params.pool,
        // Recent times: ingest refuses events older than `ingest.max_age` (365 days by default)
        // or newer than `max_future`; 30 days back leaves room for 259,200 rounds of 10 s.
        start_ms: wall_minute_ms() - 30 * 86_400_000,
        step_ms: 10_000,
    };
    let t0 = Instant::now();
    let pool = build_pool(&shape)?;
    let pool_encode_s = t0.elapsed().as_secs_f64();
    let pool_bytes = pool.iter().map(|b| b.bytes.len() as u64).sum();
    tracing::info!(
        bodies = pool.len(),
        pool_bytes,
        pool_encode_s,
        "body pool ready"
    );
    let pool = Arc::new(pool);
    let mut runs = Vec::new();
    for &backend in &params.backends {
        runs.push(run_backend(params, backend, Arc::clone(&pool)).await?);
    }
    Ok(IngestDetails {
        params: params.clone(),
        pool_encode_s,
        pool_bytes,
        runs,
    })
}

async fn run_backend(
    params: &IngestParams,
    backend: Backend,
    pool: Arc<Vec<load::Body>>,
) -> Result<BackendRun, BenchError> {
    tracing::info!(backend = backend.as_str(), "starting engine");
    let mut engine = Engine::start(
        &params.aiops_bin,
        backend,
        params.tmp_dir.as_deref(),
        Duration::from_secs(30),
    )
    .await?;
    let plan = LoadPlan {
        url: format!("{}/api/v1/write", engine.base_url()),
        connections: params.connections,
        duration: Duration::from_secs_f64(params.duration_s),
        warmup: Duration::from_secs_f64(params.warmup_s),
        request_timeout: Duration::from_secs(30),
        key_prefix: format!("bench-{}-{}", backend.as_str(), engine.pid),
    };
    let perf = match &params.perf_out {
        Some(out) => Some(start_perf(engine.pid, out, &plan)?),
        None => None,
    };
    tracing::info!(backend = backend.as_str(), url = %plan.url, "load running");
    let load = load::run(&plan, pool).await;
    if let Some(mut p) = perf {
        let _ = p.wait().await;
    }
    let mut problems = Vec::new();
    let engine_exit = match engine.stop(Duration::from_secs(30)).await {
        Ok(status) => status.to_string(),
        Err(e) => {
            problems.push(e.to_string());
            "killed".to_string()
        }
    };
    let load = match load {
        Ok(l) => l,
        Err(e) => {
            return Err(BenchError::NothingAccepted(format!(
                "{}: {e}; engine stderr tail:\n{}",
                backend.as_str(),
                engine.stderr_tail(3000)
            )));
        }
    };
    let mut run = BackendRun {
        backend,
        load,
        disk: None,
        replay: None,
        replay_matches_accepted: None,
        engine_exit,
        problems,
    };
    measure_log(params, &engine, &mut run).await;
    Ok(run)
}

/// Opens the log the engine wrote (directly, the engine being stopped), measures its size and
/// replays it; failures become `problems` rather than aborting the other figures.
async fn measure_log(params: &IngestParams, engine: &Engine, run: &mut BackendRun) {
    let data_dir = engine.data_dir();
    let spec_text = engine.nats_url().unwrap_or_else(|| "embedded".to_string());
    let spec = match aiops_log::LogSpec::parse(&spec_text, &data_dir) {
        Ok(s) => s,
        Err(e) => {
            run.problems.push(format!("log spec: {e}"));
            return;
        }
    };
    let mut disk = DiskResult::default();
    if run.backend == Backend::Embedded {
        let dir = data_dir.join("log");
        match dir_size(&dir) {
            Ok((bytes, allocated)) => {
                disk.measured = dir.display().to_string();
                disk.bytes = bytes;
                disk.allocated_bytes = allocated;
            }
            Err(e) => run.problems.push(format!("log size: {e}")),
        }
    }
    let log = match aiops_log::open(&spec).await {
        Ok(l) => l,
        Err(e) => {
            run.problems.push(format!("open log for replay: {e}"));
            return;
        }
    };
    match log.stats().await {
        Ok(stats) => {
            disk.stats_bytes = Some(stats.bytes);
            disk.stats_messages = Some(stats.messages);
            if run.backend == Backend::Nats {
                disk.measured = "JetStream stream bytes (log stats)".to_string();
                disk.bytes = stats.bytes;
            }
        }
        Err(e) => run.problems.push(format!("log stats: {e}")),
    }
    if run.load.accepted_samples > 0 && disk.bytes > 0 {
        disk.bytes_per_sample = disk.bytes as f64 / run.load.accepted_samples as f64;
    }
    run.disk = Some(disk);
    tracing::info!(backend = run.backend.as_str(), "replaying log");
    match replay(log.as_ref(), params.replay_batch).await {
        Ok(r) => {
            run.replay_matches_accepted = Some(r.events == run.load.accepted_samples);
            run.replay = Some(r);
        }
        Err(e) => run.problems.push(e.to_string()),
    }
    let _ = log.close().await;
}

/// `perf record -g` on the engine for the steady part of the run.
fn start_perf(
    pid: u32,
    out: &std::path::Path,
    plan: &LoadPlan,
) -> Result<tokio::process::Child, BenchError> {
    let secs = plan.duration.saturating_sub(plan.warmup).as_secs_f64();
    // cpu-clock (a software event) works in VMs without hardware counters.
    tokio::process::Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(out)
        .arg("--")
        .arg("sleep")
        .arg(format!("{secs:.1}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| BenchError::Spawn {
            bin: PathBuf::from("perf"),
            source,
        })
}

/// The flat figures of an ingest result.
pub fn figures(d: &IngestDetails) -> Vec<Figure> {
    let mut out = Vec::new();
    for r in &d.runs {
        let b = r.backend.as_str();
        let l = &r.load;
        out.push(Figure::new(
            format!("{b}.ingest.samples_per_s"),
            l.samples_per_s,
            "samples/s",
            FigureKind::Rate,
        ));
        out.push(Figure::new(
            format!("{b}.ingest.requests_per_s"),
            l.requests_per_s,
            "req/s",
            FigureKind::Rate,
        ));
        for (name, v) in [
            ("p50", l.latency_us.p50),
            ("p99", l.latency_us.p99),
            ("p999", l.latency_us.p999),
            ("max", l.latency_us.max),
        ] {
            out.push(Figure::new(
                format!("{b}.ingest.latency_{name}_us"),
                v as f64,
                "µs",
                FigureKind::Latency,
            ));
        }
        if let Some(disk) = &r.disk {
            out.push(Figure::new(
                format!("{b}.disk.bytes_per_sample"),
                disk.bytes_per_sample,
                "B/sample",
                FigureKind::Size,
            ));
        }
        if let Some(rep) = &r.replay {
            out.push(Figure::new(
                format!("{b}.replay.events_per_s"),
                rep.events_per_s,
                "events/s",
                FigureKind::Rate,
            ));
            out.push(Figure::new(
                format!("{b}.replay.mb_per_s"),
                rep.mb_per_s,
                "MB/s",
                FigureKind::Rate,
            ));
        }
    }
    out
}

/// Lines saying whether each aim of the issue was met, for the figures present.
pub fn aims_summary(figs: &[Figure]) -> Vec<String> {
    AIMS.iter()
        .filter_map(|(suffix, backend, min)| {
            let name = format!("{}.{suffix}", backend.as_str());
            figs.iter().find(|f| f.name == name).map(|f| {
                let met = if f.value >= *min { "met" } else { "NOT met" };
                format!(
                    "aim {name} ≥ {}: {} ({met})",
                    crate::report::human(*min),
                    crate::report::human(f.value)
                )
            })
        })
        .collect()
}
