//! `aiops-bench console-render`: how long the console takes to render its heaviest pages
//! (issue 21's figure: "server time to render (p50/p99) the overview, the alerts page with
//! 10,000 active alerts, a log search over 1,000,000 lines, and a chart of 10,000 points; bytes
//! per page. Aim: every page p99 < 200 ms").
//!
//! Two layers, one command:
//!
//! 1. **Pure rendering** ([`run_pure`]): `aiops_console::Console::render` of the overview, alerts,
//!    log search and monitoring templates with a context the server would build, whose API
//!    answers are generated here in the shapes the API returns (10,000 firing alerts as
//!    `/api/v2/alerts` and `/api/v2/alerts/groups` list them, a 10,000-point `/api/metrics`
//!    series, 200 `/api/logs/search` lines), and the chart functions alone
//!    (`series_from_json` + `line_svg` on 10,000 points). The template and chart cost, no I/O.
//! 2. **The real binary** ([`run_engine`]): `aiops run` (embedded log, secure: no anonymous
//!    role, the first start's admin token read from its stderr, the per-token rate limit
//!    raised so N page loads are not refused) gets 10,000 firing alerts, 1,000,000 log lines and
//!    a 10,000-point metric series through its ingest routes; once the read side and the
//!    alerting engine show all of them, every page is requested N times with
//!    `Authorization: Bearer <admin token>` over ONE kept-alive loopback connection, one request
//!    at a time. The time is measured by this client from sending the request to the last byte of
//!    the body: server time plus a loopback round trip (tens of µs). Bytes are the body as sent
//!    (no compression). The live refresh (`X-Console-Fragment: main`, `If-None-Match`) is
//!    measured the same way.
//!
//! Where the time goes, per page ([`PageProfile`]): each API route the page fetches
//! (`aiops_console::pages`) is called directly (same token), its JSON parsed here, and the page's
//! context rebuilt from those answers and rendered with the same `Console` (same build profile
//! as the server when both are built together): API time vs JSON parse vs template. When `perf`
//! is installed the slowest page is also sampled with `perf record` for `--perf-secs` and the
//! top symbols, and their sum per crate, are kept in the result.

use crate::machine::{Machine, Provenance};
use crate::report::{Figure, FigureKind, Report};
use aiops_console::Console;
use aiops_console::pages::{Fetch, Method as FetchMethod, Page};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `aiops-bench console-render` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleRenderArgs {
    /// The engine binary.
    #[arg(long = "bin", default_value = "target/debug/aiops")]
    pub aiops_bin: PathBuf,
    /// Firing alerts (engine layer and pure layer).
    #[arg(long, default_value_t = 10_000)]
    pub alerts: usize,
    /// Log lines ingested before the log search (engine layer).
    #[arg(long, default_value_t = 1_000_000)]
    pub log_lines: usize,
    /// Lines per NDJSON ingest request.
    #[arg(long, default_value_t = 10_000)]
    pub log_batch: usize,
    /// Points of the charted metric series.
    #[arg(long, default_value_t = 10_000)]
    pub points: usize,
    /// Timed requests per page.
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
    /// Live-refresh requests per page.
    #[arg(long, default_value_t = 20)]
    pub live_requests: usize,
    /// Untimed requests per page before the timed ones.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed renders per template of the pure layer.
    #[arg(long, default_value_t = 30)]
    pub pure_rounds: usize,
    /// Repetitions of each direct API call and render of the per-page profile (median kept).
    #[arg(long, default_value_t = 5)]
    pub profile_rounds: usize,
    /// The text the log search looks for (the generated lines hold it in 1 of 100 lines).
    #[arg(long, default_value = "timeout")]
    pub search: String,
    /// Query string of the metric explorer, `{metric}` = the generated series' name; it must
    /// reach back over the series' `--points` seconds.
    #[arg(long, default_value = "metric={metric}&range=3h&step=1s")]
    pub monitoring_query: String,
    /// Only the pure layer (no engine).
    #[arg(long)]
    pub pure_only: bool,
    /// Which page `perf` samples (`overview`, `alerts`, `log_search`, `logs_latest`,
    /// `monitoring`); default the slowest by p99.
    #[arg(long)]
    pub perf_page: Option<String>,
    /// Sampling time of `perf record` on the slowest page (0: no profile).
    #[arg(long, default_value_t = 10)]
    pub perf_secs: u64,
    /// Parent directory of the engine's temporary data directory (default: $TMPDIR).
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
    /// Keep the engine's data directory (printed) instead of removing it.
    #[arg(long)]
    pub keep: bool,
    /// Where to write the JSON result.
    #[arg(long, default_value = "bench/results/console-render.json")]
    pub out: PathBuf,
}

/// Why `aiops-bench console-render` failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleBenchError {
    /// The console's templates did not load or a page failed to render.
    #[error("console: {0}")]
    Console(#[from] aiops_console::ConsoleError),
    /// The engine did not start, or a step against it failed.
    #[error("engine: {0}")]
    Engine(String),
    /// An HTTP request failed.
    #[error("{what}: {detail}")]
    Http {
        /// The request.
        what: String,
        /// What went wrong.
        detail: String,
    },
    /// Data did not show up in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Nothing to measure.
    #[error("--requests, --pure-rounds and --profile-rounds must be at least 1")]
    Empty,
}

fn http_err(what: impl Into<String>, detail: impl ToString) -> ConsoleBenchError {
    ConsoleBenchError::Http {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// Milliseconds: percentiles of a set of timings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stat {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank: with 50 samples it is the largest).
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Stat {
    /// The percentiles of `samples` (milliseconds).
    pub fn of(samples: &[f64]) -> Stat {
        let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        let rank = |p: f64| -> f64 {
            if s.is_empty() {
                return 0.0;
            }
            let i = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
            s[i]
        };
        Stat {
            n: s.len(),
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: s.last().copied().unwrap_or(0.0),
            mean_ms: if s.is_empty() {
                0.0
            } else {
                s.iter().sum::<f64>() / s.len() as f64
            },
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One template or chart rendered in process.
#[derive(Debug, Clone, Serialize)]
pub struct PureRun {
    /// Figure name (`alerts`, `chart`…).
    pub name: String,
    /// What was rendered.
    pub what: String,
    /// Whole page (`Console::render`), or the chart functions.
    pub render: Stat,
    /// The live refresh's `main` block (`Console::render_block`), when a page.
    pub block: Option<Stat>,
    /// The same context given to the tiny `error.html` (which reads a few fields): the cost
    /// of turning the context into template values (minijinja converts it whole, eagerly).
    pub context_convert: Option<Stat>,
    /// Bytes of the output.
    pub bytes: usize,
    /// Bytes of the context as JSON (what the template reads).
    pub context_bytes: usize,
}

/// Everything the pure layer measured.
#[derive(Debug, Clone, Serialize)]
pub struct PureResult {
    /// `Console::new()` (every template compiled).
    pub console_new_ms: f64,
    /// Each template / chart.
    pub runs: Vec<PureRun>,
    /// Pages the console does not define (yet).
    pub missing: Vec<String>,
}

/// One fetch of a page's profile: the API route called directly.
#[derive(Debug, Clone, Serialize)]
pub struct FetchProfile {
    /// `data.<key>`.
    pub key: String,
    /// `GET` or `POST`, and the path with its query as the server would fill it.
    pub request: String,
    /// HTTP status of the direct call.
    pub status: u16,
    /// Median time of the direct call, request to last byte.
    pub api_ms: f64,
    /// Bytes of the answer.
    pub bytes: usize,
    /// Median time to parse the answer into `serde_json::Value`.
    pub parse_ms: f64,
}

/// Where a page's time goes.
#[derive(Debug, Clone, Serialize)]
pub struct PageProfile {
    /// Every fetch of the page.
    pub fetches: Vec<FetchProfile>,
    /// Sum of the fetches' API times (the server runs them as one task, concurrently only
    /// where a handler awaits: read-side queries run on the read side's runtime).
    pub api_sum_ms: f64,
    /// The slowest fetch.
    pub api_max_ms: f64,
    /// Sum of the parse times.
    pub parse_sum_ms: f64,
    /// Median `Console::render` of the context rebuilt from those answers.
    pub render_ms: f64,
    /// Median render of the same context by the tiny `error.html`: the context's conversion
    /// into template values, part of `render_ms`.
    pub convert_ms: f64,
    /// Its output bytes.
    pub render_bytes: usize,
    /// Median page time − API sum − parse − render: routing, auth, context building,
    /// serialising the answers in process, HTTP.
    pub rest_ms: f64,
}

/// One page over HTTP.
#[derive(Debug, Clone, Serialize)]
pub struct PageRun {
    /// Figure name (`overview`, `alerts`, `log_search`, `logs_latest`, `monitoring`).
    pub name: String,
    /// The request (path and query).
    pub url: String,
    /// Status of the last answer.
    pub status: u16,
    /// Request to last byte, one kept-alive loopback connection, one request at a time.
    pub time: Stat,
    /// Bytes of the body (uncompressed; the server does not compress).
    pub bytes: usize,
    /// How often the page's marker text occurs in the body (alert rows, matching lines,
    /// chart paths): a check that the data is really on the page.
    pub marker: String,
    /// Its count.
    pub marker_count: usize,
    /// CPU time (user + system, all threads) the engine spent per timed request, from
    /// `/proc/<pid>/stat` before and after (10 ms ticks over the whole loop): the page's cost
    /// without the waiting a busy machine adds to the wall time (includes the engine's own
    /// background work during the loop, small when idle).
    pub cpu_ms_per_request: Option<f64>,
    /// Where the time goes.
    pub profile: Option<PageProfile>,
}

/// The live refresh of one page.
#[derive(Debug, Clone, Serialize)]
pub struct LiveRun {
    /// Which page.
    pub name: String,
    /// Every refresh request (`X-Console-Fragment: main` + `If-None-Match` of the last ETag).
    pub time: Stat,
    /// Of those, answered 304 Not Modified.
    pub not_modified: usize,
    /// Answered 200 (the block changed, e.g. a relative time ticked over).
    pub changed: usize,
    /// Time of the 304 answers only.
    pub time_304: Stat,
    /// Bytes of a 200 fragment.
    pub fragment_bytes: usize,
}

/// How the engine was filled.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Setup {
    /// Alerts posted.
    pub alerts: usize,
    /// Firing alerts the API listed before the pages were timed.
    pub alerts_listed: usize,
    /// Log lines posted.
    pub log_lines: usize,
    /// Log lines the read side counted before the pages were timed.
    pub log_lines_visible: u64,
    /// Lines per second of the log ingest (posting only).
    pub log_ingest_lines_per_s: f64,
    /// Seconds until the read side saw every line.
    pub log_visible_after_s: f64,
    /// Points of the metric series posted.
    pub points: usize,
    /// Points `/api/metrics` returned for the series.
    pub points_visible: usize,
    /// The series' metric name.
    pub metric: String,
    /// 429/503 answers retried during ingest.
    pub backpressure: u64,
}

/// Top symbols of a `perf record` on the slowest page.
#[derive(Debug, Clone, Serialize)]
pub struct PerfProfile {
    /// Which page.
    pub page: String,
    /// Seconds sampled.
    pub secs: u64,
    /// Requests made while sampling.
    pub requests: usize,
    /// `perf report --no-children`: self time per symbol (top lines).
    pub self_top: Vec<String>,
    /// The same self time summed per crate (first path segment of the symbol; `libc`,
    /// `kernel`): which layer the time is spent in. Call chains are not recorded: the binaries
    /// have no frame pointers, so `-g` unwinds into garbage.
    pub by_crate: Vec<String>,
}

/// Everything the engine layer measured.
#[derive(Debug, Clone, Serialize)]
pub struct EngineResult {
    /// The engine binary.
    pub bin: String,
    /// How it was filled.
    pub setup: Setup,
    /// Each page.
    pub pages: Vec<PageRun>,
    /// The live refresh.
    pub live: Vec<LiveRun>,
    /// `perf` on the slowest page, when installed.
    pub perf: Option<PerfProfile>,
    /// 1-minute load average before the pages were timed and after.
    pub load_average: (Option<f64>, Option<f64>),
    /// Why `perf` was not run or failed.
    pub perf_note: Option<String>,
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleRenderResult {
    /// `debug` or `release`: the bench's own build profile (the pure layer runs in it).
    pub bench_profile: &'static str,
    /// The aim: every page's p99 below this.
    pub aim_p99_ms: f64,
    /// Layer 1.
    pub pure: PureResult,
    /// Layer 2.
    pub engine: Option<EngineResult>,
    /// Pages whose p99 is over the aim.
    pub over_aim: Vec<String>,
}

/// The aim of the issue.
pub const AIM_P99_MS: f64 = 200.0;

/// Services of the generated alerts and lines.
const SERVICES: [&str; 8] = [
    "checkout",
    "payments",
    "inventory",
    "search",
    "auth",
    "gateway",
    "orders",
    "shipping",
];

/// Severities of the generated alerts, in turn.
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// The generated metric series' name.
const METRIC: &str = "console_bench_latency_ms";

/// SplitMix64: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// RFC 3339 UTC with milliseconds.
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 → civil date (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// Wall-clock Unix ms: the bench is a client, its data's times must fall inside ingest's window
/// and the pages' ranges, which the server reads on the wall clock.
#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The labels and annotations of generated alert `i`: 50 alert names, 8 services, a distinct
/// instance each, three severities.
fn alert_labels(i: usize) -> (Value, Value) {
    let service = SERVICES[i % SERVICES.len()];
    (
        json!({
            "alertname": format!("ConsoleBench{:02}", i % 50),
            "service": service,
            "instance": format!("node-{i:05}"),
            "severity": SEVERITIES[i % 3],
            "bench": "console",
        }),
        json!({
            "summary": format!("{service} latency above its objective on node-{i:05}"),
            "description": "p99 over 500 ms for 5 minutes; see the runbook",
        }),
    )
}

/// How long the posted alerts stay firing: the latest `endsAt` ingest accepts is an hour ahead
/// (`ingest.max_future`), and a run takes minutes.
const FIRING_MS: i64 = 3_540_000;

/// Alerts to post: `POST /api/v2/alerts` bodies (Alertmanager's postable alerts), firing for
/// [`FIRING_MS`] so they stay active however long the run takes.
fn alert_posts(n: usize, per: usize, now: i64) -> Vec<String> {
    let ends = rfc3339(now + FIRING_MS);
    (0..n)
        .step_by(per.max(1))
        .map(|start| {
            let alerts: Vec<Value> = (start..(start + per).min(n))
                .map(|i| {
                    let (labels, annotations) = alert_labels(i);
                    json!({
                        "labels": labels,
                        "annotations": annotations,
                        "startsAt": rfc3339(now - 1_800_000 + i as i64),
                        "endsAt": ends,
                        "generatorURL": format!("http://prometheus.local/graph?g0.expr=up&i={i}"),
                    })
                })
                .collect();
            Value::Array(alerts).to_string()
        })
        .collect()
}

/// Alert `i` as `GET /api/v2/alerts` answers (gettableAlert plus aiops' additions).
fn gettable_alert(i: usize, now: i64) -> Value {
    let (labels, annotations) = alert_labels(i);
    let service = SERVICES[i % SERVICES.len()];
    json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(now - 1_800_000 + i as i64),
        "endsAt": rfc3339(now + FIRING_MS),
        "updatedAt": rfc3339(now - 60_000),
        "generatorURL": format!("http://prometheus.local/graph?g0.expr=up&i={i}"),
        "fingerprint": format!("{:016x}", Rng(i as u64).next_u64()),
        "receivers": [{"name": "default"}],
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []},
        "aiops": {"status": "firing", "count": 1, "firstSeen": rfc3339(now - 1_800_000),
                  "flapping": false, "source": "am_api",
                  "severity": SEVERITIES[i % 3], "service": service},
    })
}

/// A generated log line: 1 in 100 holds "timeout" (the searched text), the rest come from
/// eight other shapes with numbers, so a search scans every line and matches 1%.
fn log_body(i: usize, rng: &mut Rng) -> (String, &'static str) {
    if i % 100 == 7 {
        return (
            format!(
                "upstream inventory timeout after {} ms (attempt {})",
                1000 + rng.below(4000),
                1 + rng.below(3)
            ),
            "error",
        );
    }
    let sev = if i.is_multiple_of(50) { "warn" } else { "info" };
    let body = match i % 8 {
        0 => format!(
            "GET /api/orders/{} 200 in {} ms",
            rng.below(1_000_000),
            rng.below(900)
        ),
        1 => format!(
            "user u{} signed in from 10.0.{}.{}",
            rng.below(50_000),
            rng.below(256),
            rng.below(256)
        ),
        2 => format!(
            "payment p{} authorised amount={}.{:02} EUR",
            rng.below(1_000_000),
            rng.below(500),
            rng.below(100)
        ),
        3 => format!("cache miss for key sku:{}", rng.below(200_000)),
        4 => format!(
            "db query took {} ms rows={}",
            rng.below(300),
            rng.below(5000)
        ),
        5 => format!(
            "order {} shipped to zone {} by carrier c{}",
            rng.below(1_000_000),
            rng.below(40),
            rng.below(9)
        ),
        6 => format!(
            "worker {} finished batch {} of {} items",
            rng.below(64),
            rng.below(100_000),
            rng.below(1000)
        ),
        _ => format!(
            "connection pool size={} idle={} waiting={}",
            rng.below(100),
            rng.below(50),
            rng.below(10)
        ),
    };
    (body, sev)
}

/// Line `i` of `n`, spread evenly over `[t0, t1)`: as `/api/ingest/logs` reads it.
fn log_record(i: usize, n: usize, t0: i64, t1: i64, rng: &mut Rng) -> Value {
    let (body, severity) = log_body(i, rng);
    let t = t0 + ((t1 - t0) as f64 * i as f64 / n.max(1) as f64) as i64;
    json!({
        "time": t,
        "severity": severity,
        "body": body,
        "labels": {"service": SERVICES[i % SERVICES.len()], "host": format!("node-{:02}", i % 24)},
    })
}

/// A line as `/api/logs/search` answers it (arrow_json rows of the `logs` table).
fn searched_line(i: usize, t: i64, rng: &mut Rng) -> Value {
    let (body, severity) = log_body(i, rng);
    json!({
        "time": rfc3339(t).replace('Z', "+00:00"),
        "severity": severity,
        "body": body,
        "labels": {"service": SERVICES[i % SERVICES.len()], "host": format!("node-{:02}", i % 24)},
        "attributes": {},
    })
}

/// A `/api/metrics` answer: one series of `n` points, one a second ending at `to`.
fn metric_answer(n: usize, to: i64) -> Value {
    let from = to - n as i64 * 1000;
    let points: Vec<Value> = (0..n)
        .map(|i| json!([from + i as i64 * 1000, metric_value(i)]))
        .collect();
    json!({"from": from, "to": to, "step_ms": 0, "series": [
        {"name": METRIC, "labels": {"service": "checkout", "instance": "bench-0"}, "points": points}
    ]})
}

/// The generated series: a daily-ish wave, noise and a spike every 1,000 points.
fn metric_value(i: usize) -> f64 {
    let x = i as f64;
    let spike = if i % 1000 == 500 { 400.0 } else { 0.0 };
    120.0 + 30.0 * (x / 600.0).sin() + 7.0 * ((x * 12.9898).sin() * 43758.55).fract() + spike
}

/// What the API would answer to `path` in the pure layer (the heavy routes only; others are
/// left out of `data`, which the templates render as empty).
fn synthetic_answer(path: &str, alerts: usize, points: usize, now: i64) -> Option<Value> {
    let route = path.split('?').next().unwrap_or(path);
    match route {
        "/api/v2/alerts" => Some(Value::Array(
            (0..alerts).map(|i| gettable_alert(i, now)).collect(),
        )),
        "/api/v2/alerts/groups" => {
            // Grouped by alert name and service (the default route's group_by): 50 names × 8
            // services cycle together into 200 groups of 50 alerts, as the engine groups the
            // posted alerts.
            let mut groups: BTreeMap<(String, &str), Vec<Value>> = BTreeMap::new();
            for i in 0..alerts {
                groups
                    .entry((
                        format!("ConsoleBench{:02}", i % 50),
                        SERVICES[i % SERVICES.len()],
                    ))
                    .or_default()
                    .push(gettable_alert(i, now));
            }
            Some(Value::Array(
                groups
                    .into_iter()
                    .map(|((name, service), alerts)| {
                        json!({"labels": {"alertname": name, "service": service},
                               "receiver": {"name": "default"}, "alerts": alerts})
                    })
                    .collect(),
            ))
        }
        "/api/metrics" => Some(metric_answer(points, now)),
        "/api/logs/search" => {
            let limit = query_pairs(path)
                .into_iter()
                .find(|(k, _)| k == "limit")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(200);
            let mut rng = Rng(21);
            Some(json!({"logs": (0..limit)
                .map(|k| searched_line(k * 100 + 7, now - k as i64 * 300, &mut rng))
                .collect::<Vec<_>>()}))
        }
        _ => None,
    }
}

/// `(key, value)` pairs of a path's query, decoded (`+` is a space, `%XX` a byte).
fn query_pairs(path: &str) -> Vec<(String, String)> {
    let Some((_, q)) = path.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The page a request path is served by (`/alerts?x` → the `/alerts` page).
fn page_for(path: &str) -> Option<&'static Page> {
    let route = path.split('?').next().unwrap_or(path);
    aiops_console::pages::all().find(|p| p.path == route)
}

/// `{name}` → the URL-encoded (or JSON-string-escaped) value, as the server fills a fetch
/// (`aiops_console::pages::Fetch::path`).
fn fill(template: &str, vars: &BTreeMap<String, String>, json_escape: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        out.push_str(&rest[..open]);
        if valid {
            let v = vars.get(name).map(String::as_str).unwrap_or("");
            if json_escape {
                let quoted = serde_json::to_string(v).unwrap_or_default();
                out.push_str(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or(""));
            } else {
                out.push_str(&urlencode(v));
            }
        } else {
            // Not a placeholder (e.g. the `{` opening a JSON body): keep the brace and look
            // for placeholders after it.
            out.push('{');
            rest = &rest[open + 1..];
            continue;
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A filled fetch path without the query pairs whose value is empty (an unset filter is no
/// filter: the pages' contract, see `aiops_console::pages::ops`).
fn drop_empty_pairs(path: &str) -> String {
    let Some((route, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            pair.split_once('=')
                .is_some_and(|(k, v)| !v.is_empty() && !k.is_empty() && !k.ends_with('.'))
        })
        .collect();
    if kept.is_empty() {
        route.to_string()
    } else {
        format!("{route}?{}", kept.join("&"))
    }
}

/// Variables of a page request, as the server computes them: the page's defaults under the
/// query, `from_ms`/`to_ms` from `range` (or given), `now_ms`.
fn page_vars(page: &Page, url: &str, now: i64) -> (BTreeMap<String, String>, i64, i64) {
    let mut q: BTreeMap<String, String> = page
        .defaults
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in query_pairs(url) {
        if seen.insert(k.clone()) {
            q.insert(k, v);
        }
    }
    let range_ms = q
        .get("range")
        .and_then(|r| humantime::parse_duration(r).ok())
        .map_or(3_600_000, |d| {
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
        });
    let to = q
        .get("to_ms")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(now);
    let from = q
        .get("from_ms")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(to.saturating_sub(range_ms));
    (q, from, to)
}

/// A fetch of a page with its filled path and body.
type Planned = (&'static Fetch, String, Option<String>);

/// The fetches a request makes (those with `when` only when that parameter is given), each
/// with its filled path and body; and the context's `q`, `now_ms`, `from_ms`, `to_ms`.
fn planned_fetches(page: &'static Page, url: &str, now: i64) -> (Vec<Planned>, Value) {
    let (q, from, to) = page_vars(page, url, now);
    let mut vars = q.clone();
    vars.insert("now_ms".into(), now.to_string());
    vars.insert("from_ms".into(), from.to_string());
    vars.insert("to_ms".into(), to.to_string());
    let fetches = page
        .fetch
        .iter()
        .filter(|f| {
            f.when
                .is_none_or(|w| q.get(w).is_some_and(|v| !v.is_empty()))
        })
        .map(|f| {
            (
                f,
                drop_empty_pairs(&fill(f.path, &vars, false)),
                f.body.map(|b| fill(b, &vars, true)),
            )
        })
        .collect();
    let base = json!({"q": q, "now_ms": now, "from_ms": from, "to_ms": to});
    (fetches, base)
}

/// The context the server gives a page template (see `aiops_console::pages`), for an admin.
fn page_context(
    page: &Page,
    url: &str,
    base: &Value,
    data: serde_json::Map<String, Value>,
) -> Value {
    let nav: Vec<Value> = aiops_console::pages::all()
        .filter(|n| n.nav)
        .map(|n| {
            json!({"path": n.path, "title_en": n.title_en, "title_zh": n.title_zh,
                   "section": n.section, "active": n.path == page.path})
        })
        .collect();
    json!({
        "lang": "en", "theme": "auto",
        "path": url.split('?').next().unwrap_or(url), "url": url,
        "q": base["q"], "params": {},
        "user": {"name": "bench", "role": "admin", "kind": "token"},
        "csrf": "", "now_ms": base["now_ms"], "from_ms": base["from_ms"], "to_ms": base["to_ms"],
        "nav": nav,
        "page": {"path": page.path, "title_en": page.title_en, "title_zh": page.title_zh,
                 "section": page.section, "live_ms": page.live_ms},
        "data": data,
        "assets_version": aiops_console::assets::version(),
    })
}

/// Times `f` `rounds` times.
fn time_rounds<T>(
    rounds: usize,
    mut f: impl FnMut() -> Result<T, ConsoleBenchError>,
) -> Result<(Vec<f64>, T), ConsoleBenchError> {
    let mut samples = Vec::with_capacity(rounds);
    let mut last = None;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let out = f()?;
        samples.push(ms(t.elapsed()));
        last = Some(out);
    }
    last.map(|l| (samples, l))
        .ok_or_else(|| ConsoleBenchError::Engine("no round ran".into()))
}

/// The pages the figure names, with the request each is timed with (`{search}`, `{metric}`
/// filled from the arguments).
fn page_requests(args: &ConsoleRenderArgs) -> Vec<(&'static str, String, &'static str)> {
    let search = urlencode(&args.search);
    let monitoring = args.monitoring_query.replace("{metric}", METRIC);
    vec![
        ("overview", "/".to_string(), "ConsoleBench"),
        ("alerts", "/alerts".to_string(), "ConsoleBench"),
        (
            "log_search",
            format!("/logs?q={search}&range=6h"),
            "timeout after",
        ),
        ("logs_latest", "/logs?range=6h".to_string(), "node-"),
        (
            "monitoring",
            format!("/monitoring?{monitoring}"),
            "<polyline",
        ),
    ]
}

/// Layer 1: templates and charts in process on generated answers.
///
/// # Errors
/// The console's templates fail to load or a page fails to render.
pub fn run_pure(args: &ConsoleRenderArgs) -> Result<PureResult, ConsoleBenchError> {
    let t = Instant::now();
    let console = Console::new()?;
    let console_new_ms = ms(t.elapsed());
    let now = now_ms();
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    for (name, url, _) in page_requests(args) {
        let Some(page) = page_for(&url) else {
            missing.push(url);
            continue;
        };
        let (fetches, base) = planned_fetches(page, &url, now);
        let mut data = serde_json::Map::new();
        let mut given = Vec::new();
        for (f, path, _) in &fetches {
            if let Some(v) = synthetic_answer(path, args.alerts, args.points, now) {
                given.push(format!(
                    "{}={}",
                    f.key,
                    path.split('?').next().unwrap_or("")
                ));
                data.insert(f.key.to_string(), v);
            }
        }
        let ctx = page_context(page, &url, &base, data);
        let context_bytes = serde_json::to_vec(&ctx).map(|v| v.len()).unwrap_or(0);
        let (render, out) =
            time_rounds(
                args.pure_rounds,
                || Ok(console.render(page.template, &ctx)?),
            )?;
        let (convert, _) =
            time_rounds(args.pure_rounds, || Ok(console.render("error.html", &ctx)?))?;
        let (block, _) = time_rounds(args.pure_rounds, || {
            Ok(console.render_block(page.template, "main", &ctx)?)
        })?;
        runs.push(PureRun {
            name: name.to_string(),
            what: format!(
                "{} {} with generated {}",
                page.template,
                url,
                if given.is_empty() {
                    "nothing (no heavy fetch)".to_string()
                } else {
                    given.join(", ")
                }
            ),
            render: Stat::of(&render),
            block: Some(Stat::of(&block)),
            context_convert: Some(Stat::of(&convert)),
            bytes: out.len(),
            context_bytes,
        });
    }
    // The chart functions alone: a 10,000-point /api/metrics answer → series → SVG.
    let answer = metric_answer(args.points, now);
    let pick = aiops_console::chart::Pick::default();
    let opts = aiops_console::chart::Options {
        title: "latency".into(),
        unit: "ms".into(),
        ..aiops_console::chart::Options::default()
    };
    let (chart, svg) = time_rounds(args.pure_rounds, || {
        let series = aiops_console::chart::series_from_json(&answer, &pick);
        Ok(aiops_console::chart::line_svg(&series, &opts))
    })?;
    runs.push(PureRun {
        name: "chart".into(),
        what: format!(
            "chart::series_from_json + line_svg, one /api/metrics series of {} points",
            args.points
        ),
        render: Stat::of(&chart),
        block: None,
        context_convert: None,
        bytes: svg.len(),
        context_bytes: serde_json::to_vec(&answer).map(|v| v.len()).unwrap_or(0),
    });
    let series = aiops_console::chart::series_from_json(&answer, &pick);
    let (svg_only, svg) = time_rounds(args.pure_rounds, || {
        Ok(aiops_console::chart::line_svg(&series, &opts))
    })?;
    runs.push(PureRun {
        name: "chart_svg".into(),
        what: format!(
            "chart::line_svg alone (decimation + SVG), {} points",
            args.points
        ),
        render: Stat::of(&svg_only),
        block: None,
        context_convert: None,
        bytes: svg.len(),
        context_bytes: 0,
    });
    Ok(PureResult {
        console_new_ms,
        runs,
        missing,
    })
}

/// An HTTP client for the engine: one kept-alive connection (requests are made one at a time).
fn client() -> Result<reqwest::Client, ConsoleBenchError> {
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| http_err("HTTP client", e))
}

/// The bench's handle on the engine: base URL, bearer token, client.
struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

/// One answer: status, headers we use, body, time to the last byte.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: bytes::Bytes,
    elapsed: Duration,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, ConsoleBenchError> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let t = Instant::now();
        let resp = req
            .send()
            .await
            .map_err(|e| http_err(format!("{method} {path}"), e))?;
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .bytes()
            .await
            .map_err(|e| http_err(format!("{method} {path} body"), e))?;
        Ok(Answer {
            status,
            etag,
            body,
            elapsed: t.elapsed(),
        })
    }

    async fn get(&self, path: &str) -> Result<Answer, ConsoleBenchError> {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    /// A POST retried after 429/503 (the log's backpressure); counts the retries.
    async fn post_ingest(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        backpressure: &mut u64,
    ) -> Result<(), ConsoleBenchError> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let resp = self
                .client
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .header("content-type", content_type)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| http_err(format!("POST {path}"), e))?;
            let status = resp.status();
            if status.is_success() {
                let _ = resp.bytes().await;
                return Ok(());
            }
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let text = resp.text().await.unwrap_or_default();
            if (status.as_u16() == 429 || status.as_u16() == 503) && Instant::now() < deadline {
                *backpressure += 1;
                tokio::time::sleep(Duration::from_millis(
                    retry.map_or(200, |s| (s * 1000).min(2000)),
                ))
                .await;
                continue;
            }
            return Err(http_err(
                format!("POST {path}"),
                format!("{status}: {}", text.chars().take(500).collect::<String>()),
            ));
        }
    }

    /// `POST /api/sql`, the first number of the first row.
    async fn sql_number(&self, sql: &str) -> Result<f64, ConsoleBenchError> {
        let a = self
            .send(
                reqwest::Method::POST,
                "/api/sql",
                Some(json!({ "sql": sql }).to_string()),
                &[],
            )
            .await?;
        let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        if a.status != 200 {
            return Err(http_err(
                format!("POST /api/sql {sql}"),
                format!("{}: {v}", a.status),
            ));
        }
        Ok(v["rows"]
            .get(0)
            .and_then(Value::as_object)
            .and_then(|r| r.values().find_map(Value::as_f64))
            .unwrap_or(0.0))
    }
}

/// A time limit for data to show up: [`Deadline::tick`] sleeps a second, or fails past it.
struct Deadline {
    start: Instant,
    limit: Duration,
    what: &'static str,
}

impl Deadline {
    fn new(what: &'static str, limit: Duration) -> Deadline {
        Deadline {
            start: Instant::now(),
            limit,
            what,
        }
    }

    async fn tick(&self) -> Result<(), ConsoleBenchError> {
        if self.start.elapsed() > self.limit {
            return Err(ConsoleBenchError::Timeout(self.what.to_string()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }

    fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// The admin token the first start printed to stderr (the line after "shown only now:").
fn admin_token(stderr: &Path) -> Option<String> {
    let text = std::fs::read_to_string(stderr).ok()?;
    let (_, after) = text.split_once("shown only now:")?;
    after
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// Fills the engine: alerts, log lines, the metric series; waits until all are visible.
async fn fill_engine(api: &Api, args: &ConsoleRenderArgs) -> Result<Setup, ConsoleBenchError> {
    let mut setup = Setup {
        alerts: args.alerts,
        log_lines: args.log_lines,
        points: args.points,
        metric: METRIC.to_string(),
        ..Setup::default()
    };
    let now = now_ms();
    let mut bp = 0u64;
    eprintln!("console-render: posting {} alerts", args.alerts);
    for body in alert_posts(args.alerts, 1000, now) {
        api.post_ingest("/api/v2/alerts", "application/json", body, &mut bp)
            .await?;
    }
    eprintln!(
        "console-render: posting the {}-point series {METRIC}",
        args.points
    );
    let from = now - args.points as i64 * 1000;
    for chunk in (0..args.points).collect::<Vec<_>>().chunks(5000) {
        let recs: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                json!({"name": METRIC, "labels": {"service": "checkout", "instance": "bench-0"},
                       "value": metric_value(i), "time": from + i as i64 * 1000})
            })
            .collect();
        api.post_ingest(
            "/api/ingest/metrics",
            "application/json",
            Value::Array(recs).to_string(),
            &mut bp,
        )
        .await?;
    }
    // Lines over the 50 minutes before now: inside the log page's 6h range for the whole run.
    eprintln!(
        "console-render: posting {} log lines in batches of {}",
        args.log_lines, args.log_batch
    );
    let t_log = Instant::now();
    let (t0, t1) = (now - 3_000_000, now - 1000);
    let mut rng = Rng(7);
    let batch = args.log_batch.max(1);
    let mut start = 0;
    while start < args.log_lines {
        let end = (start + batch).min(args.log_lines);
        let mut body = String::with_capacity((end - start) * 160);
        for i in start..end {
            body.push_str(&log_record(i, args.log_lines, t0, t1, &mut rng).to_string());
            body.push('\n');
        }
        api.post_ingest("/api/ingest/logs", "application/x-ndjson", body, &mut bp)
            .await?;
        start = end;
        if start % 100_000 == 0 {
            eprintln!("console-render:   {start} lines");
        }
    }
    let posted_s = t_log.elapsed().as_secs_f64();
    setup.log_ingest_lines_per_s = args.log_lines as f64 / posted_s.max(1e-9);
    setup.backpressure = bp;

    let want_lines = args.log_lines as u64;
    let count_sql = format!(
        "SELECT count(*) AS n FROM logs WHERE time >= to_timestamp_millis({t0}) AND time <= to_timestamp_millis({t1})"
    );
    let wait = Deadline::new("the log lines on the read side", Duration::from_secs(900));
    loop {
        setup.log_lines_visible = api.sql_number(&count_sql).await? as u64;
        if setup.log_lines_visible >= want_lines {
            break;
        }
        wait.tick().await?;
    }
    setup.log_visible_after_s = posted_s + wait.elapsed_s();

    let alerts_path = "/api/v2/alerts?filter=bench%3D%22console%22";
    let wait = Deadline::new("the alerts to be listed", Duration::from_secs(300));
    loop {
        let a = api.get(alerts_path).await?;
        setup.alerts_listed = serde_json::from_slice::<Vec<Value>>(&a.body)
            .map(|v| v.len())
            .unwrap_or(0);
        if setup.alerts_listed >= args.alerts {
            break;
        }
        wait.tick().await?;
    }

    let metric_path = format!(
        "/api/metrics?name={METRIC}&from={}&to={}",
        from - 1000,
        now + 1000
    );
    let wait = Deadline::new("the metric series", Duration::from_secs(300));
    let mut points;
    loop {
        let a = api.get(&metric_path).await?;
        let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        points = v["series"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|x| x["points"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
        if points >= args.points {
            break;
        }
        wait.tick().await?;
    }
    setup.points_visible = points;
    Ok(setup)
}

/// Times one page `args.requests` times after `args.warmup` untimed requests.
async fn time_page(
    api: &Api,
    args: &ConsoleRenderArgs,
    pid: u32,
    name: &str,
    url: &str,
    marker: &str,
) -> Result<PageRun, ConsoleBenchError> {
    for _ in 0..args.warmup {
        api.get(url).await?;
    }
    let mut samples = Vec::with_capacity(args.requests);
    let mut last = None;
    let cpu0 = process_cpu_ms(pid);
    for _ in 0..args.requests {
        let a = api.get(url).await?;
        samples.push(ms(a.elapsed));
        last = Some(a);
    }
    let cpu_ms_per_request = match (cpu0, process_cpu_ms(pid)) {
        (Some(a), Some(b)) => Some((b - a) / args.requests.max(1) as f64),
        _ => None,
    };
    let last = last.ok_or(ConsoleBenchError::Empty)?;
    let text = String::from_utf8_lossy(&last.body);
    Ok(PageRun {
        name: name.to_string(),
        url: url.to_string(),
        status: last.status,
        time: Stat::of(&samples),
        bytes: last.body.len(),
        marker: marker.to_string(),
        marker_count: text.matches(marker).count(),
        cpu_ms_per_request,
        profile: None,
    })
}

/// Where a page's time goes: its API calls made directly, their parse, the render.
async fn profile_page(
    api: &Api,
    console: &Console,
    args: &ConsoleRenderArgs,
    run: &PageRun,
) -> Result<Option<PageProfile>, ConsoleBenchError> {
    let Some(page) = page_for(&run.url) else {
        return Ok(None);
    };
    let now = now_ms();
    let (fetches, base) = planned_fetches(page, &run.url, now);
    let mut out = Vec::new();
    let mut data = serde_json::Map::new();
    for (f, path, body) in fetches {
        let method = match f.method {
            FetchMethod::Get => reqwest::Method::GET,
            FetchMethod::Post => reqwest::Method::POST,
        };
        let mut api_ms = Vec::new();
        let mut parse_ms = Vec::new();
        let mut last = None;
        for _ in 0..args.profile_rounds.max(1) {
            let a = api.send(method.clone(), &path, body.clone(), &[]).await?;
            api_ms.push(ms(a.elapsed));
            let t = Instant::now();
            let v: Value = serde_json::from_slice(&a.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&a.body).into_owned()));
            parse_ms.push(ms(t.elapsed()));
            last = Some((a.status, a.body.len(), v));
        }
        let Some((status, bytes, v)) = last else {
            continue;
        };
        let v = if (200..300).contains(&status) {
            v
        } else {
            json!({"error": {"status": status, "message": v.to_string()}})
        };
        data.insert(f.key.to_string(), v);
        out.push(FetchProfile {
            key: f.key.to_string(),
            request: format!("{method} {path}"),
            status,
            api_ms: Stat::of(&api_ms).p50_ms,
            bytes,
            parse_ms: Stat::of(&parse_ms).p50_ms,
        });
    }
    let ctx = page_context(page, &run.url, &base, data);
    let (render, html) = time_rounds(args.profile_rounds, || {
        Ok(console.render(page.template, &ctx)?)
    })?;
    let render_ms = Stat::of(&render).p50_ms;
    let (convert, _) = time_rounds(args.profile_rounds, || {
        Ok(console.render("error.html", &ctx)?)
    })?;
    let api_sum_ms: f64 = out.iter().map(|f| f.api_ms).sum();
    let api_max_ms = out.iter().map(|f| f.api_ms).fold(0.0, f64::max);
    let parse_sum_ms: f64 = out.iter().map(|f| f.parse_ms).sum();
    Ok(Some(PageProfile {
        fetches: out,
        api_sum_ms,
        api_max_ms,
        parse_sum_ms,
        render_ms,
        convert_ms: Stat::of(&convert).p50_ms,
        render_bytes: html.len(),
        rest_ms: run.time.p50_ms - api_sum_ms - parse_sum_ms - render_ms,
    }))
}

/// The live refresh: the `main` block with `If-None-Match` of the last ETag.
async fn time_live(
    api: &Api,
    args: &ConsoleRenderArgs,
    name: &str,
    url: &str,
) -> Result<LiveRun, ConsoleBenchError> {
    let first = api
        .send(
            reqwest::Method::GET,
            url,
            None,
            &[("x-console-fragment", "main")],
        )
        .await?;
    let mut etag = first.etag.clone().unwrap_or_default();
    let mut fragment_bytes = first.body.len();
    let (mut all, mut only_304) = (Vec::new(), Vec::new());
    let (mut not_modified, mut changed) = (0, 0);
    for _ in 0..args.live_requests {
        let a = api
            .send(
                reqwest::Method::GET,
                url,
                None,
                &[("x-console-fragment", "main"), ("if-none-match", &etag)],
            )
            .await?;
        all.push(ms(a.elapsed));
        if a.status == 304 {
            not_modified += 1;
            only_304.push(ms(a.elapsed));
        } else {
            changed += 1;
            fragment_bytes = a.body.len();
            if let Some(e) = a.etag {
                etag = e;
            }
        }
    }
    Ok(LiveRun {
        name: name.to_string(),
        time: Stat::of(&all),
        not_modified,
        changed,
        time_304: Stat::of(&only_304),
        fragment_bytes,
    })
}

/// `perf record` on the engine while the page is requested in a loop; the top symbols.
async fn perf_page(
    api: &Api,
    pid: u32,
    dir: &Path,
    name: &str,
    url: &str,
    secs: u64,
) -> Result<PerfProfile, String> {
    let data = dir.join("perf.data");
    // cpu-clock (a software event) works in VMs without hardware counters.
    let mut child = tokio::process::Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "999", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&data)
        .arg("--")
        .arg("sleep")
        .arg(secs.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("perf: {e}"))?;
    // perf needs a moment to attach.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let end = Instant::now() + Duration::from_secs(secs);
    let mut requests = 0;
    while Instant::now() < end {
        api.get(url).await.map_err(|e| e.to_string())?;
        requests += 1;
    }
    let status = child.wait().await.map_err(|e| format!("perf: {e}"))?;
    if !status.success() {
        let mut err = String::new();
        if let Some(mut s) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = s.read_to_string(&mut err).await;
        }
        return Err(format!("perf record: {status}: {}", err.trim()));
    }
    let out = tokio::process::Command::new("perf")
        .arg("report")
        .arg("-i")
        .arg(&data)
        .args([
            "--no-children",
            "--sort",
            "symbol",
            "--no-inline",
            "--percent-limit",
            "0",
            "--stdio",
        ])
        .output()
        .await
        .map_err(|e| format!("perf report: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(f64, String)> = text.lines().filter_map(perf_row).collect();
    let mut by_crate: BTreeMap<String, f64> = BTreeMap::new();
    for (pct, sym) in &rows {
        *by_crate.entry(crate_of(sym)).or_default() += pct;
    }
    let mut by_crate: Vec<(String, f64)> = by_crate.into_iter().collect();
    by_crate.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(PerfProfile {
        page: name.to_string(),
        secs,
        requests,
        self_top: rows
            .iter()
            .take(40)
            .map(|(p, sym)| format!("{p:5.2}% {sym}"))
            .collect(),
        by_crate: by_crate
            .into_iter()
            .take(25)
            .map(|(c, p)| format!("{p:5.2}% {c}"))
            .collect(),
    })
}

/// CPU time (user + system) of a process so far, ms, from `/proc/<pid>/stat` (fields 14 and 15,
/// in clock ticks of 10 ms: `CLK_TCK` is 100 on Linux).
fn process_cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are space-separated.
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

/// The 1-minute load average (how busy the machine was: the figures are wall times).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One line of `perf report --stdio --sort symbol`: `  8.55%  [.] symbol` → (8.55, `[.] symbol`).
fn perf_row(line: &str) -> Option<(f64, String)> {
    let line = line.trim();
    let (pct, rest) = line.split_once('%')?;
    let pct = pct.trim().parse::<f64>().ok()?;
    let sym = rest.split_whitespace().collect::<Vec<_>>().join(" ");
    let sym = sym
        .trim_end_matches(" - -")
        .trim_end_matches(" -")
        .to_string();
    Some((pct, sym))
}

/// The crate a `perf` symbol belongs to: `[k] …` → `kernel`, `[.] __memmove…`/`malloc` →
/// `libc`, `[.] <arrow_array::…> as …` → `arrow_array`, unresolved addresses → `?`.
fn crate_of(sym: &str) -> String {
    if sym.starts_with("[k]") {
        return "kernel".into();
    }
    let s = sym.trim_start_matches("[.]").trim();
    let s = s.trim_start_matches(['<', '&', '*', '(']);
    let s = s.trim_start_matches("dyn ").trim_start_matches("mut ");
    if s.starts_with("0x") || s.chars().all(|c| c.is_ascii_hexdigit()) {
        return "?".into();
    }
    match s.split_once("::") {
        Some((c, _)) => c.to_string(),
        None => "libc".into(),
    }
}

/// Layer 2: the real binary.
///
/// # Errors
/// The engine does not start, ingest fails, data does not show up, a request fails.
pub async fn run_engine(args: &ConsoleRenderArgs) -> Result<EngineResult, ConsoleBenchError> {
    let root = match &args.tmp_dir {
        Some(p) => tempfile::Builder::new()
            .prefix("aiops-bench-console-")
            .tempdir_in(p),
        None => tempfile::Builder::new()
            .prefix("aiops-bench-console-")
            .tempdir(),
    }
    .map_err(|source| ConsoleBenchError::Io {
        path: args
            .tmp_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("$TMPDIR")),
        source,
    })?;
    let stderr = root.path().join("engine.stderr");
    // Secure (tokens required, as shipped); the per-token rate limit (50/s by default) would
    // refuse a page's API calls after a few dozen page loads, so it is raised.
    let cmd = aiops_testkit::AiopsCommand::new(&args.aiops_bin, root.path().join("data"))
        .stderr_file(&stderr)
        .anonymous_admin(false)
        .env("AIOPS__AUTH__RATE_LIMIT_PER_SECOND", "1000000")
        .env("AIOPS__AUTH__RATE_LIMIT_BURST", "1000000")
        .ready_timeout(Duration::from_secs(180));
    let proc = crate::engine::spawn_engine(cmd)
        .await
        .map_err(|e| ConsoleBenchError::Engine(e.to_string()))?;
    let mut slot = Some(proc);
    let result = engine_phases(args, &mut slot, root.path(), &stderr).await;
    let _ = crate::engine::stop_engine(&mut slot, Duration::from_secs(30)).await;
    if args.keep {
        let kept = root.keep();
        eprintln!("console-render: kept {}", kept.display());
    }
    result
}

async fn engine_phases(
    args: &ConsoleRenderArgs,
    slot: &mut Option<aiops_testkit::AiopsProcess>,
    root: &Path,
    stderr: &Path,
) -> Result<EngineResult, ConsoleBenchError> {
    let (base, pid) = match slot.as_ref() {
        Some(p) => (p.base_url(), p.pid()),
        None => return Err(ConsoleBenchError::Engine("engine lost".into())),
    };
    let token = admin_token(stderr).ok_or_else(|| {
        ConsoleBenchError::Engine(format!(
            "no admin token in {} (the first start prints one)",
            stderr.display()
        ))
    })?;
    let api = Api {
        base,
        token,
        client: client()?,
    };
    let setup = fill_engine(&api, args).await?;
    eprintln!(
        "console-render: {} alerts listed, {} lines visible after {:.1} s, {} points",
        setup.alerts_listed,
        setup.log_lines_visible,
        setup.log_visible_after_s,
        setup.points_visible
    );
    let console = Console::new()?;
    let load_before = load_average();
    let mut pages = Vec::new();
    for (name, url, marker) in page_requests(args) {
        eprintln!("console-render: timing {url}");
        let mut run = time_page(&api, args, pid, name, &url, marker).await?;
        run.profile = profile_page(&api, &console, args, &run).await?;
        pages.push(run);
    }
    let mut live = Vec::new();
    for (name, url, _) in page_requests(args) {
        let live_page = page_for(&url).is_some_and(|p| p.live_ms > 0);
        if live_page {
            live.push(time_live(&api, args, name, &url).await?);
        }
    }
    let (mut perf, mut perf_note) = (None, None);
    let slowest = match &args.perf_page {
        Some(name) => pages.iter().find(|p| &p.name == name),
        None => pages
            .iter()
            .filter(|p| p.status == 200)
            .max_by(|a, b| a.time.p99_ms.total_cmp(&b.time.p99_ms)),
    };
    if args.perf_secs == 0 {
        perf_note = Some("--perf-secs 0".into());
    } else if aiops_testkit::require_binary("perf").is_err() {
        perf_note = Some("perf is not installed".into());
    } else if let Some(p) = slowest {
        eprintln!("console-render: perf on {} for {} s", p.url, args.perf_secs);
        match perf_page(&api, pid, root, &p.name, &p.url, args.perf_secs).await {
            Ok(r) => perf = Some(r),
            Err(e) => perf_note = Some(e),
        }
    }
    Ok(EngineResult {
        bin: args.aiops_bin.display().to_string(),
        setup,
        pages,
        live,
        perf,
        load_average: (load_before, load_average()),
        perf_note,
    })
}

/// The flat figures of a result.
pub fn figures(r: &ConsoleRenderResult) -> Vec<Figure> {
    let mut out = vec![Figure::new(
        "console.pure.console_new_ms",
        r.pure.console_new_ms,
        "ms",
        FigureKind::Latency,
    )];
    for p in &r.pure.runs {
        out.push(Figure::new(
            format!("console.pure.{}.p50_ms", p.name),
            p.render.p50_ms,
            "ms",
            FigureKind::Latency,
        ));
        out.push(Figure::new(
            format!("console.pure.{}.p99_ms", p.name),
            p.render.p99_ms,
            "ms",
            FigureKind::Latency,
        ));
        out.push(Figure::new(
            format!("console.pure.{}.bytes", p.name),
            p.bytes as f64,
            "B",
            FigureKind::Size,
        ));
    }
    if let Some(e) = &r.engine {
        for p in &e.pages {
            for (what, v, unit, kind) in [
                ("p50_ms", p.time.p50_ms, "ms", FigureKind::Latency),
                ("p99_ms", p.time.p99_ms, "ms", FigureKind::Latency),
                ("bytes", p.bytes as f64, "B", FigureKind::Size),
            ] {
                out.push(Figure::new(
                    format!("console.http.{}.{what}", p.name),
                    v,
                    unit,
                    kind,
                ));
            }
            if let Some(c) = p.cpu_ms_per_request {
                out.push(Figure::new(
                    format!("console.http.{}.engine_cpu_ms", p.name),
                    c,
                    "ms",
                    FigureKind::Latency,
                ));
            }
        }
        for l in &e.live {
            out.push(Figure::new(
                format!("console.live.{}.p50_ms", l.name),
                l.time.p50_ms,
                "ms",
                FigureKind::Latency,
            ));
            out.push(Figure::new(
                format!("console.live.{}.p99_ms", l.name),
                l.time.p99_ms,
                "ms",
                FigureKind::Latency,
            ));
        }
    }
    out
}

/// Runs both layers, prints a table and writes `args.out`.
///
/// # Errors
/// See [`run_pure`] and [`run_engine`]; the result file cannot be written.
pub async fn run(args: &ConsoleRenderArgs) -> Result<ConsoleRenderResult, ConsoleBenchError> {
    if args.requests == 0 || args.pure_rounds == 0 || args.profile_rounds == 0 {
        return Err(ConsoleBenchError::Empty);
    }
    let provenance = Provenance::current();
    let pure_args = args.clone();
    let pure = tokio::task::spawn_blocking(move || run_pure(&pure_args))
        .await
        .map_err(|e| ConsoleBenchError::Engine(format!("pure layer task: {e}")))??;
    println!(
        "pure rendering (this process, {} build): Console::new {:.1} ms",
        bench_profile(),
        pure.console_new_ms
    );
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11}",
        "template", "p50 ms", "p99 ms", "block p50", "convert p50", "bytes", "ctx bytes"
    );
    for p in &pure.runs {
        println!(
            "{:<14} {:>9.2} {:>9.2} {:>9} {:>11} {:>11} {:>11}",
            p.name,
            p.render.p50_ms,
            p.render.p99_ms,
            p.block
                .as_ref()
                .map_or("-".to_string(), |b| format!("{:.2}", b.p50_ms)),
            p.context_convert
                .as_ref()
                .map_or("-".to_string(), |b| format!("{:.2}", b.p50_ms)),
            p.bytes,
            p.context_bytes
        );
    }
    for m in &pure.missing {
        println!("(no page for {m} in aiops_console::pages yet)");
    }
    let engine = if args.pure_only {
        None
    } else {
        Some(run_engine(args).await?)
    };
    let mut over_aim = Vec::new();
    if let Some(e) = &engine {
        println!(
            "HTTP (aiops {}; client-side time, one kept-alive loopback connection, sequential; \
             load average {} before, {} after; cpu = the engine's CPU per request):",
            e.bin,
            e.load_average.0.map_or("?".into(), |l| format!("{l:.2}")),
            e.load_average.1.map_or("?".into(), |l| format!("{l:.2}"))
        );
        println!(
            "{:<12} {:>6} {:>9} {:>9} {:>9} {:>8} {:>11} {:>8}  where the p50 goes (API sum / parse / render (of which context conversion) / rest)",
            "page", "status", "p50 ms", "p99 ms", "max ms", "cpu ms", "bytes", "markers"
        );
        for p in &e.pages {
            let split = p.profile.as_ref().map_or(String::new(), |f| {
                format!(
                    "{:.1} / {:.1} / {:.1} ({:.1}) / {:.1}",
                    f.api_sum_ms, f.parse_sum_ms, f.render_ms, f.convert_ms, f.rest_ms
                )
            });
            println!(
                "{:<12} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>11} {:>8}  {split}",
                p.name,
                p.status,
                p.time.p50_ms,
                p.time.p99_ms,
                p.time.max_ms,
                p.cpu_ms_per_request
                    .map_or("-".to_string(), |c| format!("{c:.1}")),
                p.bytes,
                p.marker_count
            );
            if p.time.p99_ms >= AIM_P99_MS || p.status != 200 {
                over_aim.push(p.name.clone());
            }
        }
        for l in &e.live {
            println!(
                "live {:<12} p50 {:.1} ms p99 {:.1} ms; 304: {} of {} (p50 {:.1} ms); fragment {} B",
                l.name,
                l.time.p50_ms,
                l.time.p99_ms,
                l.not_modified,
                l.not_modified + l.changed,
                l.time_304.p50_ms,
                l.fragment_bytes
            );
        }
        if let Some(p) = &e.perf {
            println!(
                "perf on {} ({} requests in {} s), self time:",
                p.page, p.requests, p.secs
            );
            for l in p.self_top.iter().take(15) {
                println!("  {l}");
            }
            println!("  per crate: {}", p.by_crate.join(", "));
        }
        if let Some(n) = &e.perf_note {
            println!("perf: {n}");
        }
        for p in &e.pages {
            let met = if over_aim.contains(&p.name) {
                "NOT met"
            } else {
                "met"
            };
            println!(
                "aim console.http.{} p99 < {AIM_P99_MS} ms: {:.1} ms ({met})",
                p.name, p.time.p99_ms
            );
        }
    }
    let result = ConsoleRenderResult {
        bench_profile: bench_profile(),
        aim_p99_ms: AIM_P99_MS,
        pure,
        engine,
        over_aim,
    };
    let report = Report {
        benchmark: "console-render".to_string(),
        machine: Machine::describe(),
        provenance,
        details: result.clone(),
        figures: figures(&result),
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ConsoleBenchError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
    std::fs::write(&args.out, json).map_err(|source| ConsoleBenchError::Io {
        path: args.out.clone(),
        source,
    })?;
    println!("results written to {}", args.out.display());
    Ok(result)
}

/// The bench's own build profile.
fn bench_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        let st = Stat::of(&s);
        assert_eq!(st.p50_ms, 50.0);
        assert_eq!(st.p99_ms, 99.0);
        assert_eq!(st.max_ms, 100.0);
        assert_eq!(Stat::of(&[]).p99_ms, 0.0);
        // With 50 samples p99 is the largest.
        let s: Vec<f64> = (1..=50).map(f64::from).collect();
        assert_eq!(Stat::of(&s).p99_ms, 50.0);
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_440_329_123), "2026-12-05T03:12:09.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn fetch_paths_are_filled_and_empty_filters_dropped() {
        let mut vars = BTreeMap::new();
        vars.insert("q".to_string(), "a b&c".to_string());
        vars.insert("from_ms".to_string(), "10".to_string());
        let p = fill(
            "/api/logs/search?q={q}&severity={severity}&label.{label}={value}&from={from_ms}",
            &vars,
            false,
        );
        assert_eq!(p, "/api/logs/search?q=a%20b%26c&severity=&label.=&from=10");
        assert_eq!(drop_empty_pairs(&p), "/api/logs/search?q=a%20b%26c&from=10");
        assert_eq!(drop_empty_pairs("/api/x?a="), "/api/x");
        let body = fill(r#"{"sql": "{sql}"}"#, &vars, true);
        assert_eq!(body, r#"{"sql": ""}"#);
        vars.insert("sql".into(), "say \"hi\"".into());
        assert_eq!(
            fill(r#"{"sql": "{sql}"}"#, &vars, true),
            r#"{"sql": "say \"hi\""}"#
        );
    }

    #[test]
    fn generated_data_has_the_promised_shape() {
        let now = 1_796_440_329_000;
        let mut rng = Rng(7);
        let lines: Vec<Value> = (0..1000)
            .map(|i| log_record(i, 1000, now - 1000, now, &mut rng))
            .collect();
        let hits = lines
            .iter()
            .filter(|l| l["body"].as_str().unwrap().contains("timeout"))
            .count();
        assert_eq!(hits, 10, "1 line in 100 holds the searched text");
        assert!(
            lines
                .windows(2)
                .all(|w| w[0]["time"].as_i64() <= w[1]["time"].as_i64())
        );
        let m = metric_answer(10_000, now);
        assert_eq!(m["series"][0]["points"].as_array().unwrap().len(), 10_000);
        let groups = synthetic_answer("/api/v2/alerts/groups", 10_000, 0, now).unwrap();
        let total: usize = groups
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["alerts"].as_array().unwrap().len())
            .sum();
        assert_eq!(total, 10_000);
        assert_eq!(groups.as_array().unwrap().len(), 200);
        let posts = alert_posts(2500, 1000, now);
        assert_eq!(posts.len(), 3);
        let last: Vec<Value> = serde_json::from_str(&posts[2]).unwrap();
        assert_eq!(last.len(), 500);
        let logs = synthetic_answer("/api/logs/search?q=x&limit=50", 0, 0, now).unwrap();
        assert_eq!(logs["logs"].as_array().unwrap().len(), 50);
    }

    #[test]
    fn perf_lines_and_their_crates() {
        let (p, sym) =
            perf_row("     8.55%  [.] __memmove_avx512_unaligned_erms      -      -").unwrap();
        assert_eq!(p, 8.55);
        assert_eq!(sym, "[.] __memmove_avx512_unaligned_erms");
        assert_eq!(crate_of(&sym), "libc");
        assert_eq!(
            crate_of(
                "[.] <arrow_array::array::byte_array::GenericByteArray<T> as arrow_array::array::Array>::slice"
            ),
            "arrow_array"
        );
        assert_eq!(
            crate_of("[.] aiops_detect::drain::mask::Masker::mask_token"),
            "aiops_detect"
        );
        assert_eq!(crate_of("[k] _copy_to_iter"), "kernel");
        assert_eq!(crate_of("[.] 0x00007f8234001100"), "?");
        assert!(perf_row("# Samples: 3K of event 'cpu-clock'").is_none());
    }

    #[test]
    fn percent_decoding_of_page_queries() {
        assert_eq!(
            query_pairs("/logs?q=a+b%22c&range=6h&x"),
            vec![
                ("q".to_string(), "a b\"c".to_string()),
                ("range".to_string(), "6h".to_string()),
                ("x".to_string(), String::new())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn admin_token_is_read_from_the_first_start_banner() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("err");
        std::fs::write(
            &p,
            "log line\n\naiops: no API token existed, so an admin token was created. It is shown only now:\n\n    aiops_abc123\n\nUse it as …\n",
        )
        .unwrap();
        assert_eq!(admin_token(&p).as_deref(), Some("aiops_abc123"));
        std::fs::write(&p, "nothing\n").unwrap();
        assert_eq!(admin_token(&p), None);
    }
}
