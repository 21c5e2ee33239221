//! `aiops-bench runtime`: the runtime measured through the real `aiops` binary (issue 16).
//!
//! One engine configuration for every run: the embedded log with fsync `always` (the default),
//! alerting with `group_wait: 0s` (each new alert is its own group and notifies at once), and one
//! workflow (alert firing → webhook) whose target is a loopback receiver in this process that
//! records, per alert name, when it read the request. Every run starts a fresh engine.
//!
//! 1. **Workflow executions/s and trigger → request latency** ([`run_rate`]): distinct new alerts
//!    are posted to `POST /api/v2/alerts` (Alertmanager v2 JSON) at a target rate, open loop, one
//!    POST every `interval` carrying `rate × interval` alerts (one alert per POST at low rates).
//!    Latency is POST start → the receiver reading the webhook request; executions/s is requests
//!    received over the steady window (after the warm-up, until the last POST).
//! 2. **Alert → notification intent** ([`run_intent`] at a rate): POST start → the alerting
//!    decision of type `notification` readable in the log by another process, which opens the
//!    embedded log read-only once (`aiops_log::embedded`, `read_only = true`) and every poll
//!    (1 ms sleep between rounds) refreshes it (`EmbeddedLog::refresh`: reads only what was
//!    appended since the last round) and reads on.
//! 3. **Idle reaction** ([`run_intent`] with one alert every 200 ms): the same, engine idle.

use crate::alerting::{notifications_in, open_log_read_only, rfc3339_ms, wall_ms};
use aiops_log::EventLog;
use aiops_testkit::{AiopsCommand, AiopsProcess};
use anyhow::Context;
use axum::extract::State;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The alerting configuration: every new alert is its own group and notifies at once.
pub const ALERTING_CONFIG: &str = r#"
route:
  receiver: oncall
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers: [{name: oncall}]
"#;

/// The one workflow (as bench/scripts/workflow_e2e.py): firing alert → webhook `hook`.
pub const WORKFLOW: &str = r#"
workflow:
  id: hook
  concurrency: 1000
  queue: 100000
  triggers: [{type: alert, filters: [{key: status, value: firing}]}]
  actions:
    - name: hook
      provider: {type: webhook, config: hook, with: {body: {name: "{{ alert.name }}"}}}
"#;

/// The engine configuration (`{DIR}`, `{WF}`, `{ALERTING}`, `{SINK}` are filled in).
pub const ENGINE_TOML: &str = r#"
[alerting]
config = "{ALERTING}"
tick_interval = "10ms"

[pipelines]
dir = "{DIR}/no-pipelines"

[workflows]
dir = "{WF}"
outbound_allow = ["127.0.0.1"]
max_in_flight = 64

[workflows.rate_limits]
default_per_provider = "100000/1s"
per_target = "100000/1s"

[workflows.providers.hook]
kind = "webhook"
url = "{SINK}/hook"
secret = "bench-hmac-key"
"#;

/// What to run.
#[derive(Debug, Clone)]
pub struct RuntimePlan {
    /// The `aiops` binary.
    pub aiops_bin: PathBuf,
    /// Parent of the temporary directories (default `$TMPDIR`).
    pub tmp_dir: Option<PathBuf>,
    /// Target alert rates of the executions run, in order (the ramp stops after the first rate
    /// that is not sustainable).
    pub rates: Vec<f64>,
    /// Sending time per rate.
    pub duration: Duration,
    /// Start of each run left out of executions/s.
    pub warmup: Duration,
    /// Interval between POSTs at rates above `1 / interval`.
    pub interval: Duration,
    /// How long to wait for the last webhook requests after the last POST.
    pub drain: Duration,
    /// A rate is sustainable when every request arrives and p99 stays below this.
    pub p99_bound: Duration,
    /// Alert rate of the intent run.
    pub intent_rate: f64,
    /// Sending time of the intent run.
    pub intent_duration: Duration,
    /// Alerts of the idle run.
    pub idle_alerts: usize,
    /// Their spacing.
    pub idle_every: Duration,
    /// Sleep between reader rounds.
    pub poll: Duration,
}

/// Latency percentiles in ms.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub n: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    fn of(mut v: Vec<f64>) -> Latency {
        if v.is_empty() {
            return Latency::default();
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((p * v.len() as f64) as usize).min(v.len() - 1)];
        Latency {
            n: v.len() as u64,
            p50_ms: round2(q(0.5)),
            p99_ms: round2(q(0.99)),
            max_ms: round2(v[v.len() - 1]),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One rate of the executions run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RateRun {
    /// Target alerts/s.
    pub target_per_s: f64,
    /// Alerts per POST.
    pub alerts_per_post: usize,
    /// Alerts posted and accepted (HTTP 200).
    pub accepted: u64,
    /// POSTs that failed (first error below).
    pub post_errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Alerts actually posted per second over the sending time.
    pub offered_per_s: f64,
    /// Webhook requests received (distinct alert names).
    pub received: u64,
    /// Requests received per second between warm-up and the last POST.
    pub executions_per_s: f64,
    /// Requests received / (last arrival − first POST).
    pub executions_per_s_overall: f64,
    /// POST start → receiver read the webhook request, every alert.
    pub latency: Latency,
    /// The same for the alerts posted after the warm-up (the window executions/s counts),
    /// without the engine's first seconds.
    #[serde(default)]
    pub latency_steady: Latency,
    /// POST round trips.
    pub post_latency: Latency,
    /// Every request arrived and p99 stayed below the bound.
    pub sustainable: bool,
    /// Bytes of the log's segment files at the end / alerts accepted (what one alert costs the
    /// log: the alert, its decisions, the intent and the result).
    #[serde(default)]
    pub log_bytes_per_alert: f64,
}

/// The intent run (and the idle run).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IntentRun {
    /// Alerts/s posted (target).
    pub rate_per_s: f64,
    /// Alerts accepted.
    pub accepted: u64,
    /// Notification intents (reason `new`) found for them.
    pub found: u64,
    /// POST start → notification intent readable by the read-only reader.
    pub latency: Latency,
    /// Sleep between reader rounds (part of the measurement error).
    pub poll_ms: f64,
    /// Reader rounds (refresh of the read-only log + read of what it found).
    pub reader_rounds: u64,
    /// Mean time of one refresh + read round (also part of the error: up to poll + round).
    pub reader_round_mean_ms: f64,
    /// Longest reader round.
    pub reader_round_max_ms: f64,
}

/// Everything `runtime` measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuntimeDetails {
    /// The engine configuration (aiops.toml; paths are per run).
    pub engine_toml: String,
    /// The alerting configuration.
    pub alerting_yaml: String,
    /// The workflow.
    pub workflow_yaml: String,
    /// The binary measured.
    pub aiops_bin: String,
    /// Executions run, per rate.
    pub rates: Vec<RateRun>,
    /// The highest sustainable target rate of the ramp.
    pub highest_sustainable_per_s: Option<f64>,
    /// Alert → notification intent under load.
    pub intent: Option<IntentRun>,
    /// Alert → notification intent, engine idle.
    pub idle: Option<IntentRun>,
}

/// Arrival times per alert name at the webhook receiver.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn hook(State(arr): State<Arrivals>, body: Bytes) -> &'static str {
    let t = Instant::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(n) = v.get("name").and_then(|n| n.as_str())
        && let Ok(mut g) = arr.lock()
    {
        g.entry(n.to_string()).or_insert(t);
    }
    "ok"
}

/// A webhook receiver on a loopback port.
struct Sink {
    url: String,
    arrivals: Arrivals,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    async fn start() -> anyhow::Result<Sink> {
        let arrivals: Arrivals = Arc::new(Mutex::new(HashMap::new()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(arrivals.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", l.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Ok(Sink {
            url,
            arrivals,
            task,
        })
    }

    fn count(&self) -> usize {
        self.arrivals.lock().map_or(0, |g| g.len())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh engine in its own temporary directory.
struct Engine {
    proc: Option<AiopsProcess>,
    root: tempfile::TempDir,
    base: String,
}

impl Engine {
    async fn start(plan: &RuntimePlan, sink_url: &str) -> anyhow::Result<Engine> {
        let root = match &plan.tmp_dir {
            Some(p) => tempfile::Builder::new()
                .prefix("aiops-bench-runtime-")
                .tempdir_in(p),
            None => tempfile::Builder::new()
                .prefix("aiops-bench-runtime-")
                .tempdir(),
        }
        .context("temporary directory")?;
        let dir = root.path();
        let wf = dir.join("wf");
        std::fs::create_dir_all(&wf)?;
        std::fs::create_dir_all(dir.join("no-pipelines"))?;
        std::fs::write(wf.join("hook.yaml"), WORKFLOW)?;
        let alerting = dir.join("alerting.yaml");
        std::fs::write(&alerting, ALERTING_CONFIG)?;
        let toml = engine_toml(dir, &wf, &alerting, sink_url);
        let cfg = dir.join("aiops.toml");
        std::fs::write(&cfg, toml)?;
        let bin = std::path::absolute(&plan.aiops_bin)?;
        let cmd = AiopsCommand::new(&bin, dir.join("data"))
            .config_file(&cfg)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .ingest_max_age(None)
            .log_level(None)
            .stderr_file(dir.join("engine.stderr"));
        let proc = tokio::task::spawn_blocking(move || cmd.spawn())
            .await?
            .with_context(|| format!("starting {}", bin.display()))?;
        let base = proc.base_url();
        Ok(Engine {
            proc: Some(proc),
            root,
            base,
        })
    }

    fn log_dir(&self) -> PathBuf {
        self.root.path().join("data").join("log")
    }

    async fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = tokio::task::spawn_blocking(move || p.stop(Duration::from_secs(10))).await;
        }
    }
}

fn engine_toml(dir: &Path, wf: &Path, alerting: &Path, sink: &str) -> String {
    ENGINE_TOML
        .replace("{DIR}", &dir.display().to_string())
        .replace("{WF}", &wf.display().to_string())
        .replace("{ALERTING}", &alerting.display().to_string())
        .replace("{SINK}", sink)
}

/// The alert name of probe `k` of run `run`.
fn probe_name(run: usize, k: usize) -> String {
    format!("RtProbe{run}x{k:07}")
}

/// An Alertmanager v2 body of probes `ks` (distinct alertname; the rest constant).
fn body(run: usize, ks: std::ops::Range<usize>, starts: &str) -> Bytes {
    let alerts: Vec<serde_json::Value> = ks
        .map(|k| {
            serde_json::json!({
                "labels": {"alertname": probe_name(run, k), "service": "checkout",
                           "severity": "critical", "instance": "bench"},
                "annotations": {"summary": "runtime probe"},
                "startsAt": starts,
            })
        })
        .collect();
    Bytes::from(serde_json::Value::Array(alerts).to_string())
}

/// What the load generator saw.
struct Sent {
    /// POST start per probe (None when the POST failed).
    starts: Vec<Option<Instant>>,
    origin: Instant,
    last_post: Instant,
    accepted: u64,
    errors: u64,
    first_error: Option<String>,
    post_latency: Vec<f64>,
}

/// Posts `n` probes, `per` per POST, one POST every `every`, open loop.
async fn send(base: &str, run: usize, n: usize, per: usize, every: Duration) -> Sent {
    let client = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let url = format!("{base}/api/v2/alerts");
    let origin = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let starts_at = rfc3339_ms(wall_ms());
    let mut i = 0usize;
    let mut post = 0u32;
    while i < n {
        let due = origin + every * post;
        tokio::time::sleep_until(due.into()).await;
        let ks = i..(i + per).min(n);
        i = ks.end;
        post += 1;
        let b = body(run, ks.clone(), &starts_at);
        let (c, url) = (client.clone(), url.clone());
        set.spawn(async move {
            let start = Instant::now();
            let r = c
                .post(&url)
                .header("content-type", "application/json")
                .body(b)
                .send()
                .await;
            let res = match r {
                Ok(resp) if resp.status().is_success() => {
                    let _ = resp.bytes().await;
                    Ok(())
                }
                Ok(resp) => {
                    let s = resp.status();
                    let t = resp.text().await.unwrap_or_default();
                    Err(format!("HTTP {s}: {}", &t[..t.len().min(200)]))
                }
                Err(e) => Err(e.to_string()),
            };
            (ks, start, start.elapsed(), res)
        });
    }
    let last_post = Instant::now();
    let mut out = Sent {
        starts: vec![None; n],
        origin,
        last_post,
        accepted: 0,
        errors: 0,
        first_error: None,
        post_latency: Vec::new(),
    };
    while let Some(j) = set.join_next().await {
        match j {
            Ok((ks, start, took, Ok(()))) => {
                out.accepted += ks.len() as u64;
                out.post_latency.push(took.as_secs_f64() * 1e3);
                for k in ks {
                    out.starts[k] = Some(start);
                }
            }
            Ok((_, _, _, Err(e))) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e.to_string());
            }
        }
    }
    out
}

fn batching(rate: f64, interval: Duration) -> (usize, Duration) {
    let rate = rate.max(0.001);
    if rate * interval.as_secs_f64() <= 1.0 {
        (1, Duration::from_secs_f64(1.0 / rate))
    } else {
        let per = (rate * interval.as_secs_f64()).round().max(1.0) as usize;
        (per, Duration::from_secs_f64(per as f64 / rate))
    }
}

/// Part 1 at one rate: a fresh engine, `rate × duration` distinct alerts, webhook arrivals.
///
/// # Errors
/// Engine start or receiver failures.
pub async fn run_rate(plan: &RuntimePlan, run: usize, rate: f64) -> anyhow::Result<RateRun> {
    let sink = Sink::start().await?;
    let mut engine = Engine::start(plan, &sink.url).await?;
    let n = (rate * plan.duration.as_secs_f64()).round().max(1.0) as usize;
    let (per, every) = batching(rate, plan.interval);
    let sent = send(&engine.base, run, n, per, every).await;
    let deadline = Instant::now() + plan.drain;
    while sink.count() < sent.accepted as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.stop().await;
    let log_bytes = dir_bytes(&engine.log_dir());
    let arrivals = sink.arrivals.lock().map(|g| g.clone()).unwrap_or_default();
    let mut lat = Vec::with_capacity(n);
    let mut steady = Vec::with_capacity(n);
    let mut last = sent.origin;
    let w0 = sent.origin + plan.warmup;
    for (k, s) in sent.starts.iter().enumerate() {
        if let (Some(s), Some(a)) = (s, arrivals.get(&probe_name(run, k))) {
            let ms = a.saturating_duration_since(*s).as_secs_f64() * 1e3;
            lat.push(ms);
            if *s >= w0 {
                steady.push(ms);
            }
            last = last.max(*a);
        }
    }
    let w1 = sent.last_post;
    let in_window = arrivals.values().filter(|a| **a >= w0 && **a < w1).count();
    let window = w1.saturating_duration_since(w0).as_secs_f64();
    let send_s = w1.saturating_duration_since(sent.origin).as_secs_f64();
    let latency = Latency::of(lat);
    let received = latency.n;
    let sustainable = sent.errors == 0
        && received == sent.accepted
        && latency.p99_ms < plan.p99_bound.as_secs_f64() * 1e3;
    Ok(RateRun {
        target_per_s: rate,
        alerts_per_post: per,
        accepted: sent.accepted,
        post_errors: sent.errors,
        first_error: sent.first_error,
        offered_per_s: if send_s > 0.0 { n as f64 / send_s } else { 0.0 },
        received,
        executions_per_s: if window > 0.0 {
            in_window as f64 / window
        } else {
            0.0
        },
        executions_per_s_overall: {
            let t = last.saturating_duration_since(sent.origin).as_secs_f64();
            if t > 0.0 { received as f64 / t } else { 0.0 }
        },
        latency,
        latency_steady: Latency::of(steady),
        post_latency: Latency::of(sent.post_latency),
        sustainable,
        log_bytes_per_alert: if sent.accepted > 0 {
            (log_bytes as f64 / sent.accepted as f64).round()
        } else {
            0.0
        },
    })
}

/// Total size of the files under `dir` (0 when it cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// What the log reader found.
#[derive(Default)]
struct ReaderOut {
    seen: HashMap<String, Instant>,
    rounds: u64,
    round_total: Duration,
    round_max: Duration,
}

/// Opens the log read-only once; every round (`poll` apart) refreshes it — reads what the engine
/// appended since the last round, the new bytes of the active segment only — and reads on. The
/// round is what a log opened with `follow = poll` does on its own thread, done here to time it.
async fn reader_loop(
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    found: Arc<AtomicU64>,
    poll: Duration,
) -> anyhow::Result<ReaderOut> {
    let mut out = ReaderOut::default();
    let log = open_log_read_only(&dir, &stop, poll, None)
        .await
        .map_err(|e| anyhow::anyhow!("opening the log read-only: {e}"))?;
    let mut r = log.reader(1).await?;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let t = Instant::now();
        log.refresh()?;
        loop {
            let batch = r.next_batch(4096).await?;
            if batch.is_empty() {
                break;
            }
            let seen = Instant::now();
            for rec in batch {
                if rec.subject != aiops_runtime_subject() {
                    continue;
                }
                for (name, reason) in notifications_in(&rec.payload) {
                    if reason == "new" && !name.is_empty() {
                        out.seen.entry(name).or_insert(seen);
                    }
                }
            }
            found.store(out.seen.len() as u64, Ordering::Release);
        }
        let took = t.elapsed();
        out.rounds += 1;
        out.round_total += took;
        out.round_max = out.round_max.max(took);
        if stopping {
            let _ = log.close().await;
            return Ok(out);
        }
        tokio::time::sleep(poll).await;
    }
}

/// The subject alerting decisions are appended under (`aiops_runtime::wire::DECISIONS_SUBJECT`).
fn aiops_runtime_subject() -> &'static str {
    "aiops.alerting"
}

/// Parts 2 and 3: `n` alerts, `per` per POST every `every`; POST start → notification intent
/// readable by a read-only reader in this process (on its own thread).
///
/// # Errors
/// Engine start, receiver or reader failures.
pub async fn run_intent(
    plan: &RuntimePlan,
    run: usize,
    n: usize,
    per: usize,
    every: Duration,
) -> anyhow::Result<IntentRun> {
    let sink = Sink::start().await?;
    let mut engine = Engine::start(plan, &sink.url).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let found = Arc::new(AtomicU64::new(0));
    let (dir, s, f, poll) = (engine.log_dir(), stop.clone(), found.clone(), plan.poll);
    let reader = std::thread::Builder::new()
        .name("log-reader".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(reader_loop(dir, s, f, poll)))
        })?;
    // Let the reader's first rounds (engine start-up records) pass.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = send(&engine.base, run, n, per, every).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while found.load(Ordering::Acquire) < sent.accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Release);
    let out = reader
        .join()
        .map_err(|_| anyhow::anyhow!("log reader panicked"))??;
    engine.stop().await;
    let mut lat = Vec::new();
    for (k, s) in sent.starts.iter().enumerate() {
        if let (Some(s), Some(t)) = (s, out.seen.get(&probe_name(run, k))) {
            lat.push(t.saturating_duration_since(*s).as_secs_f64() * 1e3);
        }
    }
    let latency = Latency::of(lat);
    let send_s = sent
        .last_post
        .saturating_duration_since(sent.origin)
        .as_secs_f64();
    Ok(IntentRun {
        rate_per_s: if send_s > 0.0 { n as f64 / send_s } else { 0.0 },
        accepted: sent.accepted,
        found: latency.n,
        latency,
        poll_ms: plan.poll.as_secs_f64() * 1e3,
        reader_rounds: out.rounds,
        reader_round_mean_ms: round2(
            out.round_total.as_secs_f64() * 1e3 / out.rounds.max(1) as f64,
        ),
        reader_round_max_ms: round2(out.round_max.as_secs_f64() * 1e3),
    })
}

/// Runs all three parts.
///
/// # Errors
/// The first run that fails.
pub async fn run(plan: &RuntimePlan) -> anyhow::Result<RuntimeDetails> {
    let mut d = RuntimeDetails {
        engine_toml: ENGINE_TOML.trim_start().to_string(),
        alerting_yaml: ALERTING_CONFIG.trim_start().to_string(),
        workflow_yaml: WORKFLOW.trim_start().to_string(),
        aiops_bin: plan.aiops_bin.display().to_string(),
        ..RuntimeDetails::default()
    };
    for (i, &rate) in plan.rates.iter().enumerate() {
        let r = run_rate(plan, i, rate).await?;
        eprintln!(
            "rate {rate}/s: {} of {} received, {:.0} executions/s (overall {:.0}), latency p50 {} \
             p99 {} max {} ms (after warm-up p50 {} p99 {} max {} ms), sustainable {}, {} log \
             bytes per alert",
            r.received,
            r.accepted,
            r.executions_per_s,
            r.executions_per_s_overall,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            r.latency_steady.p50_ms,
            r.latency_steady.p99_ms,
            r.latency_steady.max_ms,
            r.sustainable,
            r.log_bytes_per_alert
        );
        let ok = r.sustainable;
        if ok {
            d.highest_sustainable_per_s = Some(rate);
        }
        d.rates.push(r);
        // The ramp: 100 and 1,000/s always run; above that, stop after the first failure.
        if !ok && rate >= 1000.0 {
            break;
        }
    }
    let run = plan.rates.len();
    if plan.intent_rate > 0.0 {
        let n = (plan.intent_rate * plan.intent_duration.as_secs_f64()).round() as usize;
        let (per, every) = batching(plan.intent_rate, plan.interval);
        let r = run_intent(plan, run, n.max(1), per, every).await?;
        eprintln!(
            "intent at {:.0}/s: {} of {}, p50 {} p99 {} max {} ms (reader round mean {} ms)",
            r.rate_per_s,
            r.found,
            r.accepted,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            r.reader_round_mean_ms
        );
        d.intent = Some(r);
    }
    if plan.idle_alerts > 0 {
        let r = run_intent(plan, run + 1, plan.idle_alerts, 1, plan.idle_every).await?;
        eprintln!(
            "idle: {} of {}, p50 {} p99 {} max {} ms (reader round mean {} ms)",
            r.found,
            r.accepted,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            r.reader_round_mean_ms
        );
        d.idle = Some(r);
    }
    Ok(d)
}

/// The flat figures for `compare`.
pub fn figures(d: &RuntimeDetails) -> Vec<crate::report::Figure> {
    use crate::report::{Figure, FigureKind};
    let mut f = Vec::new();
    for r in &d.rates {
        let p = format!("runtime.workflow.{}", r.target_per_s as u64);
        f.push(Figure::new(
            format!("{p}.executions_per_s"),
            r.executions_per_s,
            "executions/s",
            FigureKind::Rate,
        ));
        for (q, v) in [
            ("p50", r.latency.p50_ms),
            ("p99", r.latency.p99_ms),
            ("max", r.latency.max_ms),
            ("steady_p50", r.latency_steady.p50_ms),
            ("steady_p99", r.latency_steady.p99_ms),
            ("steady_max", r.latency_steady.max_ms),
        ] {
            f.push(Figure::new(
                format!("{p}.latency_{q}_ms"),
                v,
                "ms",
                FigureKind::Latency,
            ));
        }
    }
    if let Some(h) = d.highest_sustainable_per_s {
        f.push(Figure::new(
            "runtime.workflow.highest_sustainable_per_s",
            h,
            "alerts/s",
            FigureKind::Rate,
        ));
    }
    for (name, r) in [("intent", &d.intent), ("idle", &d.idle)] {
        if let Some(r) = r {
            f.push(Figure::new(
                format!("runtime.{name}.p50_ms"),
                r.latency.p50_ms,
                "ms",
                FigureKind::Latency,
            ));
            f.push(Figure::new(
                format!("runtime.{name}.p99_ms"),
                r.latency.p99_ms,
                "ms",
                FigureKind::Latency,
            ));
        }
    }
    f
}
