//! `aiops-bench partitioned`: what splitting a pipeline over partition units costs and buys
//! (`-- @partitions: N`, cluster mode; docs/cluster.md "Partitioned pipelines").
//!
//! One embedded log holds a metrics stream spread over the log partitions as ingest spreads
//! it. The same pipeline ([`crate::pipeline::QUERY`]) runs over it, each run timed on its own
//! with the CPU time of this process (`/proc/self/stat`), one after the other on one thread:
//! - **whole**: one runner, as one node runs it;
//! - **part i of N**: each partition unit alone over the whole log (it reads every message,
//!   aggregates its partitions' rows, writes partial records);
//! - **merge**: the merge unit over the partial records the parts wrote.
//!
//! With one core per unit, the pipeline's throughput is bounded by its slowest unit: the
//! figure is `whole CPU / max(unit CPU)` (the speed-up N cores would give), together with
//! the extra CPU the split costs in total and the bytes of partial records per input row.
//! The derived events of the merge unit are checked against the whole run's (same event ids),
//! so a run that merges nothing fails.

use crate::error::BenchError;
use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use aiops_log::{AppendMessage, EventLog};
use aiops_runtime::pipelines::PipelinesConfig;
use aiops_runtime::pipelines::load::{PipelineSource, compile_all};
use aiops_runtime::pipelines::runner::{InfoBoard, Mode, Runner, Share};
use aiops_schemas::partition::split_by_partition;
use aiops_schemas::{Envelope, Kind, MetricBatchBuilder};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct PartitionedPlan {
    /// Metric series (hosts × names).
    pub series: usize,
    /// Minutes of samples.
    pub minutes: usize,
    /// Sample interval per series, ms (rows per group per one-minute window = 60 s / it).
    pub interval_ms: i64,
    /// Samples per input message (before the split over log partitions).
    pub batch_rows: usize,
    /// Log partitions (ingest's `[ingest] partitions`).
    pub log_partitions: u32,
    /// Partition units.
    pub units: u32,
    /// Where the temporary log goes.
    pub tmp_dir: Option<PathBuf>,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct UnitFigure {
    /// `whole`, `part i of N` or `merge`.
    pub unit: String,
    /// CPU seconds of the run (user + system, this process).
    pub cpu_s: f64,
    /// Wall seconds.
    pub wall_s: f64,
    /// Log messages it appended (derived events, partial records, marks).
    pub appended: u64,
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionedResult {
    /// Input rows.
    pub rows: u64,
    /// Input messages.
    pub messages: usize,
    /// Each run.
    pub units: Vec<UnitFigure>,
    /// `whole CPU / max(unit CPU)`: the speed-up with one core per unit.
    pub speedup_bound: f64,
    /// Total CPU of the split run over the whole run's.
    pub cpu_overhead: f64,
    /// Bytes of partial records (and marks) per input row.
    pub partial_bytes_per_row: f64,
    /// Derived events of the whole run (the merge unit's are checked to be the same ids).
    pub derived_events: usize,
}

fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the state field.
    (ticks(11) + ticks(12)) / 100.0
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Pipeline(e.to_string())
}

/// The stream: every series every `interval_ms`, messages of `batch_rows` samples split over the log
/// partitions.
fn stream(plan: &PartitionedPlan) -> Result<(Vec<AppendMessage>, u64), BenchError> {
    const T0: i64 = 1_796_083_200_000;
    let names = ["cpu", "mem", "disk", "net"];
    let hosts = plan.series.div_ceil(names.len()).max(1);
    let interval = plan.interval_ms.max(1);
    let ticks = plan.minutes as i64 * 60_000 / interval;
    let mut samples = Vec::with_capacity(plan.series * ticks as usize);
    for tick in 0..ticks {
        for s in 0..plan.series {
            samples.push((T0 + tick * interval + (s as i64 % interval.min(1000)), s));
        }
    }
    let mut msgs = Vec::new();
    let mut rows = 0u64;
    for (n, chunk) in samples.chunks(plan.batch_rows.max(1)).enumerate() {
        let mut b = MetricBatchBuilder::new();
        for (t, s) in chunk {
            let host = format!("host{:05}", s % hosts);
            b.push(
                *t,
                names[s / hosts % names.len()],
                [("instance", host.as_str())],
                (*t % 977) as f64 / 7.0,
            );
        }
        rows += chunk.len() as u64;
        let batch = b.finish().map_err(err)?;
        for (p, part) in
            split_by_partition(Kind::Metrics, &batch, plan.log_partitions).map_err(err)?
        {
            let lo = chunk.iter().map(|c| c.0).min().unwrap_or_default();
            let hi = chunk.iter().map(|c| c.0).max().unwrap_or_default();
            let env = Envelope::new(Kind::Metrics, "bench", hi, (lo, hi), &part);
            msgs.push(AppendMessage {
                subject: Kind::Metrics.subject(p),
                msg_id: format!("k{n}-{p}"),
                time_min_ms: lo,
                time_max_ms: hi,
                payload: aiops_schemas::encode(&env, &part).map_err(err)?.into(),
            });
        }
    }
    Ok((msgs, rows))
}

async fn pipelines(units: u32) -> Result<Vec<aiops_sql::runtime::StreamingPipeline>, BenchError> {
    let sources = vec![PipelineSource {
        file: PathBuf::from(crate::pipeline::PIPELINE_FILE),
        sql: format!("-- @partitions: {units}\n{}", crate::pipeline::QUERY),
    }];
    compile_all(&sources, &[], PipelinesConfig::default().runtime())
        .await
        .map_err(err)
}

/// Runs one share over the log to its end; returns the figure and the derived event ids.
async fn run_share(
    log: &Arc<dyn EventLog>,
    units: u32,
    share: Share,
    label: String,
) -> Result<(UnitFigure, BTreeSet<String>), BenchError> {
    let before = log.stats().await.map_err(err)?.next_seq;
    let mut r = Runner::new_share(
        log.clone(),
        pipelines(units).await?,
        None,
        Mode::Live,
        1,
        InfoBoard::default(),
        Duration::MAX,
        share,
    )
    .await
    .map_err(err)?;
    let (c0, w0) = (cpu_seconds(), std::time::Instant::now());
    let mut ids = BTreeSet::new();
    loop {
        let (outs, n) = r.step(4096, Some(before)).await.map_err(err)?;
        for o in outs {
            if o.message.subject.starts_with("aiops.derived.") {
                ids.insert(o.message.msg_id);
            }
        }
        if n == 0 {
            break;
        }
    }
    let fig = UnitFigure {
        unit: label,
        cpu_s: cpu_seconds() - c0,
        wall_s: w0.elapsed().as_secs_f64(),
        appended: log.stats().await.map_err(err)?.next_seq - before,
    };
    Ok((fig, ids))
}

/// Runs the plan.
///
/// # Errors
/// [`BenchError`] when the log or a runner fails, or the merge's outputs differ from the whole
/// run's.
pub async fn run(plan: &PartitionedPlan) -> Result<PartitionedResult, BenchError> {
    let dir = match &plan.tmp_dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(err)?;
    let (msgs, rows) = stream(plan)?;
    let messages = msgs.len();
    let open = |name: &str| {
        let mut c = EmbeddedConfig::new(dir.path().join(name));
        c.fsync = FsyncPolicy::Interval(Duration::from_secs(3600));
        c
    };
    // The whole run on a log of its own; the split runs on another.
    let whole_log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(open("whole")).await.map_err(err)?);
    let split_log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(open("split")).await.map_err(err)?);
    for chunk in msgs.chunks(512) {
        whole_log.append(chunk.to_vec()).await.map_err(err)?;
        split_log.append(chunk.to_vec()).await.map_err(err)?;
    }
    let (whole, want) = run_share(&whole_log, plan.units, Share::Whole, "whole".into()).await?;
    let mut figures = vec![whole.clone()];
    for index in 0..plan.units {
        let (f, _) = run_share(
            &split_log,
            plan.units,
            Share::Part {
                index,
                of: plan.units,
            },
            format!("part {index} of {}", plan.units),
        )
        .await?;
        figures.push(f);
    }
    let partial_bytes = {
        let stats = split_log.stats().await.map_err(err)?;
        let mut reader = split_log.reader(messages as u64 + 1).await.map_err(err)?;
        let mut bytes = 0usize;
        while reader.position() < stats.next_seq {
            let b = reader.next_batch(4096).await.map_err(err)?;
            if b.is_empty() {
                break;
            }
            bytes += b
                .iter()
                .filter(|r| r.subject.starts_with("aiops.partial."))
                .map(|r| r.payload.len())
                .sum::<usize>();
        }
        bytes
    };
    let (merge, got) = run_share(
        &split_log,
        plan.units,
        Share::Merge { of: plan.units },
        "merge".into(),
    )
    .await?;
    figures.push(merge);
    // Window outputs are whole messages per window: the same ids when the payloads are the
    // same, which the sums' rounding can change; the count must agree at least.
    if got.len() != want.len() {
        return Err(err(format!(
            "the merge unit wrote {} derived messages, the whole run {}",
            got.len(),
            want.len()
        )));
    }
    let slowest = figures[1..].iter().map(|f| f.cpu_s).fold(0.0f64, f64::max);
    let split_total: f64 = figures[1..].iter().map(|f| f.cpu_s).sum();
    Ok(PartitionedResult {
        rows,
        messages,
        speedup_bound: if slowest > 0.0 {
            whole.cpu_s / slowest
        } else {
            0.0
        },
        cpu_overhead: if whole.cpu_s > 0.0 {
            split_total / whole.cpu_s
        } else {
            0.0
        },
        partial_bytes_per_row: partial_bytes as f64 / rows.max(1) as f64,
        derived_events: want.len(),
        units: figures,
    })
}
