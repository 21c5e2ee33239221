//! `aiops-bench syslog`: syslog lines/s over TCP into one aiops process on the embedded log,
//! LF-framed and octet-counted, beside JSON logs ingest (`POST /api/ingest/logs`, NDJSON) of the
//! same lines in the same run, as a ratio.
//!
//! One engine (`<bin> run`, `[syslog] tcp_listen` on a free port) per phase. Each phase sends
//! from `connections` client connections as fast as the engine takes them for `warmup` +
//! `measure`; the rate is the growth of `aiops_ingest_events_total{kind="logs",source=…}`
//! (rows the log accepted) over the measured window, so backpressure shows as a lower rate, not
//! as lost lines. Also reported: the engine's CPU seconds per million lines (`/proc/<pid>/stat`)
//! and, for syslog, lines the engine received against lines stored (they must match once the
//! senders stop: TCP is never dropped).

use crate::engine::{spawn_engine, stop_engine};
use crate::error::BenchError;
use crate::report::{Figure, FigureKind};
use aiops_testkit::{AiopsCommand, AiopsProcess, free_port};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// What to run.
#[derive(Debug, Clone)]
pub struct SyslogPlan {
    /// The `aiops` binary.
    pub aiops_bin: PathBuf,
    /// Client connections per phase.
    pub connections: usize,
    /// Warm-up before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// Lines per write (TCP) or per request (JSON).
    pub lines_per_write: usize,
    /// Parent of the engines' temporary data directories.
    pub tmp_dir: Option<PathBuf>,
    /// Leave out the JSON phase.
    pub skip_json: bool,
}

/// One phase's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseResult {
    /// `syslog-lf`, `syslog-octet` or `json`.
    pub phase: String,
    /// Rows the log accepted per second over the measured window.
    pub lines_per_s: f64,
    /// Engine CPU seconds per million rows over the window.
    pub cpu_s_per_million: f64,
    /// Rows accepted over the measured window.
    pub lines: f64,
    /// Syslog: lines the engine received in the whole phase; JSON: rows accepted.
    pub received: f64,
    /// Rows stored in the whole phase (after the senders stopped and the engine settled).
    pub stored: f64,
    /// Syslog: `aiops_syslog_append_retries_total` (times the log pushed back).
    pub append_retries: f64,
    /// Bytes per line as sent.
    pub line_bytes: usize,
}

/// All phases.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyslogResult {
    /// Client connections per phase.
    pub connections: usize,
    /// Measured window, seconds.
    pub measure_s: f64,
    /// The phases in the order run.
    pub phases: Vec<PhaseResult>,
    /// syslog LF lines/s ÷ JSON lines/s.
    pub ratio_lf_to_json: Option<f64>,
    /// syslog octet-counted lines/s ÷ JSON lines/s.
    pub ratio_octet_to_json: Option<f64>,
}

/// A realistic RFC 5424 line (~200 bytes) with structured data; `i` varies the host and app.
fn line(i: usize) -> String {
    format!(
        "<165>1 2026-12-04T10:00:00.{:03}Z web-{:02} checkout-{} {} ID47 [origin@32473 team=\"payments\" dc=\"eu-1\"] order {} paid in {} ms by card, user=u{}",
        i % 1000,
        i % 16,
        i % 4,
        1000 + i % 500,
        i,
        i % 250,
        i % 977
    )
}

/// The same line as a JSON log record (what `/api/ingest/logs` reads), with the same fields.
fn json_line(i: usize) -> String {
    serde_json::json!({
        "time": format!("2026-12-04T10:00:00.{:03}Z", i % 1000),
        "severity": "info",
        "body": format!("order {} paid in {} ms by card, user=u{}", i, i % 250, i % 977),
        "labels": {"host": format!("web-{:02}", i % 16), "service": format!("checkout-{}", i % 4)},
        "attributes": {"syslog.facility": "local4", "syslog.severity": "5", "syslog.procid": (1000 + i % 500).to_string(), "syslog.msgid": "ID47", "sd.origin@32473.team": "payments", "sd.origin@32473.dc": "eu-1"},
    })
    .to_string()
}

/// `utime + stime` of a process, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the command and state.
    (ticks(11) + ticks(12)) / 100.0
}

/// The sum of a self-metric's lines starting with `prefix`.
async fn metric(client: &reqwest::Client, base: &str, prefix: &str) -> f64 {
    let Ok(r) = client.get(format!("{base}/metrics")).send().await else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn start_engine(
    plan: &SyslogPlan,
    tcp: u16,
) -> Result<(AiopsProcess, tempfile::TempDir), BenchError> {
    let root = match &plan.tmp_dir {
        Some(p) => tempfile::Builder::new()
            .prefix("aiops-bench-syslog-")
            .tempdir_in(p),
        None => tempfile::Builder::new()
            .prefix("aiops-bench-syslog-")
            .tempdir(),
    }
    .map_err(|e| BenchError::io(plan.tmp_dir.clone().unwrap_or_else(|| "$TMPDIR".into()), e))?;
    let cmd = AiopsCommand::new(&plan.aiops_bin, root.path().join("data"))
        .log("embedded")
        .log_level(Some("warn"))
        .env("AIOPS__SYSLOG__TCP_LISTEN", format!("127.0.0.1:{tcp}"))
        // The fixed 2026 times of the lines stay inside the window whenever this runs.
        .ingest_max_age(Some("36500d"))
        .env("AIOPS__INGEST__MAX_FUTURE", "36500d");
    Ok((spawn_engine(cmd).await?, root))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Lf,
    Octet,
    Json,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Lf => "syslog-lf",
            Phase::Octet => "syslog-octet",
            Phase::Json => "json",
        }
    }
    fn source(self) -> &'static str {
        match self {
            Phase::Json => "json_logs",
            _ => "syslog",
        }
    }
}

/// Pre-built payloads: each write (or request) carries `n` lines.
fn payloads(phase: Phase, n: usize, pool: usize) -> (Vec<bytes::Bytes>, usize) {
    let mut out = Vec::with_capacity(pool);
    let mut line_bytes = 0;
    for p in 0..pool {
        let mut buf = Vec::new();
        for k in 0..n {
            let i = p * n + k;
            match phase {
                Phase::Lf => {
                    let l = line(i);
                    line_bytes = l.len();
                    buf.extend_from_slice(l.as_bytes());
                    buf.push(b'\n');
                }
                Phase::Octet => {
                    let l = line(i);
                    line_bytes = l.len();
                    buf.extend_from_slice(format!("{} {l}", l.len()).as_bytes());
                }
                Phase::Json => {
                    let l = json_line(i);
                    line_bytes = l.len();
                    buf.extend_from_slice(l.as_bytes());
                    buf.push(b'\n');
                }
            }
        }
        out.push(bytes::Bytes::from(buf));
    }
    (out, line_bytes)
}

async fn run_phase(plan: &SyslogPlan, phase: Phase) -> Result<PhaseResult, BenchError> {
    let tcp = free_port();
    let (proc, _root) = start_engine(plan, tcp).await?;
    let mut slot = Some(proc);
    let (pid, base) = match &slot {
        Some(p) => (p.pid(), p.base_url()),
        None => return Err(BenchError::Internal("engine lost".into())),
    };
    let (pool, line_bytes) = payloads(phase, plan.lines_per_write, 64);
    let pool = std::sync::Arc::new(pool);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = reqwest::Client::new();
    let mut senders = tokio::task::JoinSet::new();
    for c in 0..plan.connections {
        let (pool, stop) = (pool.clone(), stop.clone());
        let (client, url) = (client.clone(), format!("{base}/api/ingest/logs"));
        senders.spawn(async move {
            let mut i = c * 7;
            if phase == Phase::Json {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = pool[i % pool.len()].clone();
                    i += 1;
                    match client
                        .post(&url)
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {}
                        // Backpressure or an error: back off a little and go on.
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                return Ok::<(), std::io::Error>(());
            }
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", tcp)).await?;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                s.write_all(&pool[i % pool.len()]).await?;
                i += 1;
            }
            s.shutdown().await
        });
    }
    let source = phase.source();
    let stored_metric = format!("aiops_ingest_events_total{{kind=\"logs\",source=\"{source}\"}}");
    tokio::time::sleep(plan.warmup).await;
    let (n0, c0, t0) = (
        metric(&client, &base, &stored_metric).await,
        cpu_seconds(pid),
        Instant::now(),
    );
    tokio::time::sleep(plan.measure).await;
    let (n1, c1, secs) = (
        metric(&client, &base, &stored_metric).await,
        cpu_seconds(pid),
        t0.elapsed().as_secs_f64(),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(r) = senders.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "a sender failed");
        }
    }
    // Let the engine append what it holds, then compare received with stored.
    let received_metric = match phase {
        Phase::Json => stored_metric.clone(),
        _ => "aiops_syslog_lines_received_total".to_string(),
    };
    let mut settled = (0.0, 0.0);
    for _ in 0..50 {
        let r = metric(&client, &base, &received_metric).await;
        let s = metric(&client, &base, &stored_metric).await;
        settled = (r, s);
        if r == s {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let retries = metric(&client, &base, "aiops_syslog_append_retries_total").await;
    stop_engine(&mut slot, Duration::from_secs(30)).await?;
    let lines = n1 - n0;
    Ok(PhaseResult {
        phase: phase.name().to_string(),
        lines_per_s: lines / secs,
        cpu_s_per_million: if lines > 0.0 {
            (c1 - c0) / lines * 1e6
        } else {
            0.0
        },
        lines,
        received: settled.0,
        stored: settled.1,
        append_retries: retries,
        line_bytes,
    })
}

/// Runs the phases one after the other, each on a fresh engine.
///
/// # Errors
/// [`BenchError`] when an engine cannot start or stop, or nothing was stored.
pub async fn run(plan: &SyslogPlan) -> Result<SyslogResult, BenchError> {
    let mut phases = vec![Phase::Lf, Phase::Octet];
    if !plan.skip_json {
        phases.push(Phase::Json);
    }
    let mut out = SyslogResult {
        connections: plan.connections,
        measure_s: plan.measure.as_secs_f64(),
        ..SyslogResult::default()
    };
    for p in phases {
        let r = run_phase(plan, p).await?;
        if r.lines <= 0.0 {
            return Err(BenchError::NothingAccepted(format!(
                "{} stored nothing",
                r.phase
            )));
        }
        eprintln!(
            "{}: {:.0} lines/s, {:.2} CPU s per million, received {} stored {} (retries {})",
            r.phase, r.lines_per_s, r.cpu_s_per_million, r.received, r.stored, r.append_retries
        );
        out.phases.push(r);
    }
    let rate = |name: &str| {
        out.phases
            .iter()
            .find(|p| p.phase == name)
            .map(|p| p.lines_per_s)
    };
    if let Some(json) = rate("json").filter(|j| *j > 0.0) {
        out.ratio_lf_to_json = rate("syslog-lf").map(|s| s / json);
        out.ratio_octet_to_json = rate("syslog-octet").map(|s| s / json);
    }
    Ok(out)
}

/// The flat figures of a result.
pub fn figures(r: &SyslogResult) -> Vec<Figure> {
    let mut f = Vec::new();
    for p in &r.phases {
        f.push(Figure::new(
            format!("syslog.{}.lines_per_s", p.phase),
            p.lines_per_s,
            "lines/s",
            FigureKind::Rate,
        ));
        f.push(Figure::new(
            format!("syslog.{}.cpu_s_per_million", p.phase),
            p.cpu_s_per_million,
            "CPU s/M lines",
            FigureKind::Latency,
        ));
    }
    f
}

/// Whether the stored rows match what the engine received (TCP never drops).
pub fn problems(r: &SyslogResult) -> Vec<String> {
    r.phases
        .iter()
        .filter(|p| p.phase != "json" && p.received != p.stored)
        .map(|p| {
            format!(
                "{}: received {} lines but stored {}",
                p.phase, p.received, p.stored
            )
        })
        .collect()
}
