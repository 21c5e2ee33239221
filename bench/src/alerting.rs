//! `aiops-bench alerting`: alert management (`aiops-alerting`) in three measurements.
//!
//! - **Engine throughput** ([`run_engine_rounds`]): a stream of alert observations (by default
//!   1,000,000 from 10,000 fingerprints over 10 minutes of event time, some resolving and firing
//!   again) is built as Arrow alert batches before the clock starts; each run feeds them through
//!   a fresh [`AlertEngine`] — normalize ([`alerts_from_batch`]), dedup, route, group, inhibit,
//!   budget, incidents — and reports alerts/s, the decisions made, and the cost of encoding those
//!   decisions as the server does (NDJSON).
//! - **Notification latency** ([`run_latency`]): the real `aiops` binary with `group_wait: 0s`;
//!   new alerts are posted at a steady rate, and a thread in this process follows the embedded
//!   log read-only (`aiops_log` refreshes it every poll, reading only what was appended since)
//!   and timestamps each `aiops.alerting` record the moment it is readable.
//!   Latency = that moment − the start of the POST of the alert the notification is about.
//! - **Side by side with Alertmanager** ([`run_compare`]): the same alert stream, the same
//!   `alertmanager.yml`, to `aiops` and to a real `prometheus-alertmanager` whose webhook points
//!   at a sink in this process: alerts/s accepted over HTTP (unpaced), then a paced stream with
//!   new, resolved and re-firing alerts for the number of notifications each emits.

use crate::engine::{spawn_engine, stop_engine};
use crate::error::BenchError;
use crate::load::{Latency, reports_duplicates, retry_after};
use crate::report::{Figure, FigureKind, human};
use aiops_alerting::decision::{Change, Decision};
use aiops_alerting::model::{Labels, alerts_from_batch, fingerprint};
use aiops_alerting::{AlertEngine, AlertingConfig};
use aiops_log::EventLog;
use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use aiops_schemas::AlertBatchBuilder;
use aiops_schemas::arrow_array::RecordBatch;
use aiops_schemas::builders::AlertRow;
use aiops_testkit::{AiopsCommand, AiopsProcess};
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why an alerting benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    /// A step shared with the other benchmarks (engine start, I/O, HTTP client).
    #[error(transparent)]
    Bench(#[from] BenchError),
    /// The HTTP client failed to build.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// The alerting configuration was refused (a bug in the benchmark's YAML).
    #[error("alerting config: {0}")]
    Config(String),
    /// Normalizing or processing alerts failed.
    #[error("alerting engine: {0}")]
    Engine(String),
    /// Alertmanager or the webhook sink could not be started or read.
    #[error("alertmanager: {0}")]
    Alertmanager(String),
    /// Tailing the engine's log failed.
    #[error("log tailer: {0}")]
    Tail(String),
    /// A sanity check failed: the benchmark would be measuring something else.
    #[error("check failed: {0}")]
    Check(String),
}

/// Event time of the first observation of the in-process stream: 2024-05-01T00:00:00Z.
pub const T0_MS: i64 = 1_714_521_600_000;

/// Alert names (`alertname`), cycled over fingerprints.
pub const NAMES: [&str; 50] = [
    "HighCpuUsage",
    "HighMemoryUsage",
    "DiskSpaceLow",
    "DiskIoSaturated",
    "NodeDown",
    "InstanceDown",
    "HighLatency",
    "HighErrorRate",
    "PodCrashLooping",
    "PodNotReady",
    "ReplicasMismatch",
    "ContainerOomKilled",
    "NetworkReceiveErrors",
    "NetworkTransmitErrors",
    "TooManyOpenFiles",
    "ClockSkew",
    "CertificateExpiring",
    "TargetDown",
    "ScrapeFailed",
    "QueueBacklog",
    "ConsumerLagHigh",
    "KafkaUnderReplicated",
    "PostgresReplicationLag",
    "PostgresTooManyConnections",
    "RedisMemoryHigh",
    "RedisRejectedConnections",
    "NginxHigh5xx",
    "Http5xxBurst",
    "SloBurnRateFast",
    "SloBurnRateSlow",
    "JobFailed",
    "CronMissed",
    "BackupFailed",
    "DnsResolutionErrors",
    "LoadBalancerUnhealthy",
    "ThreadPoolExhausted",
    "GcPauseLong",
    "HeapNearLimit",
    "FileDescriptorsHigh",
    "SwapUsageHigh",
    "InodeExhaustion",
    "RaidDegraded",
    "TemperatureHigh",
    "PowerSupplyFailed",
    "ApiQuotaNearLimit",
    "CacheHitRateLow",
    "SearchIndexLag",
    "MessageDeadLettered",
    "WebhookDeliveryFailing",
    "ConfigReloadFailed",
];

/// Services (`service` label), by host.
pub const SERVICES: [&str; 20] = [
    "checkout",
    "payments",
    "cart",
    "catalog",
    "search",
    "auth",
    "users",
    "orders",
    "shipping",
    "inventory",
    "recommendations",
    "frontend",
    "api-gateway",
    "notifications",
    "billing",
    "postgres",
    "redis",
    "kafka",
    "ingest",
    "reporting",
];

/// The configuration of the in-process run: Alertmanager's default timings, critical alerts to a
/// pager route with a storm budget, critical inhibits warning on the same alert and instance, and
/// incidents correlated by service and a small dependency map.
pub const ENGINE_CONFIG: &str = r#"
route:
  receiver: oncall
  group_by: [alertname, service]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - receiver: pager
      matchers: ['severity="critical"']
      notification_budget: {max: 20, per: 1m}
receivers: [{name: oncall}, {name: pager}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname, service, instance]
aiops:
  incidents:
    window: 10m
    correlate_labels: [service]
    dependencies:
      frontend: [api-gateway]
      api-gateway: [checkout, search, auth]
      checkout: [payments, cart, orders]
      payments: [postgres]
      cart: [redis]
      orders: [kafka, postgres]
"#;

/// The latency run's configuration: every new group notifies at once (`group_wait: 0s`).
pub const LATENCY_CONFIG: &str = r#"
route:
  receiver: oncall
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers: [{name: oncall}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname, service, instance]
"#;

/// The side-by-side configuration, one file for both systems (`{WEBHOOK}` is the sink's URL):
/// short timings so the paced stream spans several group intervals within seconds.
pub const COMPARE_CONFIG: &str = r#"
global:
  resolve_timeout: 5m
route:
  receiver: oncall
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: oncall
    webhook_configs:
      - url: '{WEBHOOK}'
        send_resolved: true
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname, service, instance]
"#;

/// Wall-clock Unix ms. Alerts posted over HTTP carry wall-clock times as a real sender's do, and
/// latency is measured on the wall clock: the benchmark is an edge, not the engine.
#[allow(clippy::disallowed_methods)]
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 with milliseconds, as Alertmanager clients send times.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Who an alert of the stream is: its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `alertname`.
    pub name: &'static str,
    /// `instance`: `host-NNNNN`.
    pub instance: String,
    /// `service`.
    pub service: &'static str,
    /// `severity`: `critical`, `warning` or `info`.
    pub severity: &'static str,
}

/// The labels of fingerprint `i`: each host carries every one of `names` alert names twice, at
/// two severities (critical + warning on even hosts, so inhibition has work; warning + info on
/// odd hosts); hosts are spread over the first `services` services.
pub fn identity(i: usize, names: usize, services: usize) -> Identity {
    let names = names.clamp(1, NAMES.len());
    let services = services.clamp(1, SERVICES.len());
    let host = i / (2 * names);
    let j = i % (2 * names);
    let severity = match (host % 2, j / names) {
        (0, 0) => "critical",
        (0, _) | (_, 0) => "warning",
        _ => "info",
    };
    Identity {
        name: NAMES[j % names],
        instance: format!("host-{host:05}"),
        service: SERVICES[host % services],
        severity,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The engine in process.
// ---------------------------------------------------------------------------------------------

/// The in-process alert stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamPlan {
    /// Distinct alerts (fingerprints).
    pub fingerprints: usize,
    /// Alert observations in all (each fingerprint is re-sent `observations / fingerprints`
    /// times, round-robin).
    pub observations: usize,
    /// Alert names (≤ 50).
    pub names: usize,
    /// Services (≤ 20).
    pub services: usize,
    /// Event time the stream spans, ms.
    pub span_ms: i64,
    /// Rows per Arrow batch (one log message's worth).
    pub batch_rows: usize,
}

/// One pre-built batch and the time the engine observes it at (its last row's time, the
/// analogue of the log message's ingest stamp).
#[derive(Debug, Clone)]
pub struct StreamBatch {
    /// Observation time, Unix ms.
    pub at_ms: i64,
    /// Rows in the `alerts` schema.
    pub batch: RecordBatch,
}

/// The pre-built stream.
#[derive(Debug, Clone)]
pub struct AlertStream {
    /// Batches in time order.
    pub batches: Vec<StreamBatch>,
    /// Rows over all batches.
    pub rows: u64,
    /// Bytes of the Arrow arrays.
    pub bytes: u64,
    /// Time of the last observation, Unix ms.
    pub end_ms: i64,
    /// Wall seconds it took to build.
    pub seconds: f64,
}

/// Whether fingerprint `i` is resolved in `round` of `rounds`: one fingerprint in ten resolves
/// for 20% of the rounds, fires again for 30%, and resolves again for the last 20% (3 changes
/// per such alert, below the default flapping threshold).
pub fn resolved_in(i: usize, round: usize, rounds: usize) -> bool {
    if i % 10 != 3 {
        return false;
    }
    let decile = round * 10 / rounds.max(1);
    matches!(decile, 3 | 4 | 8 | 9)
}

/// Builds the stream: observation `k` is fingerprint `k % fingerprints` at event time
/// `T0 + k · span / observations`; firing alerts carry Prometheus' `endsAt` (4 min ahead), the
/// source is `alertmanager_api` (what `POST /api/v2/alerts` stores), with one annotation.
///
/// # Errors
/// [`AlertingError::Check`] for an empty plan; [`AlertingError::Engine`] if a batch cannot be
/// built (a bug).
pub fn build_stream(plan: &StreamPlan) -> Result<AlertStream, AlertingError> {
    if plan.fingerprints == 0 || plan.observations < plan.fingerprints || plan.span_ms <= 0 {
        return Err(AlertingError::Check(format!(
            "need at least one fingerprint, as many observations as fingerprints and a span, got \
             {} / {} / {} ms",
            plan.fingerprints, plan.observations, plan.span_ms
        )));
    }
    let t0 = Instant::now();
    let f = plan.fingerprints;
    let total = plan.observations;
    let rounds = total.div_ceil(f);
    let time = |k: usize| T0_MS + (k as i128 * plan.span_ms as i128 / total as i128) as i64;
    // Per fingerprint: labels, sender fingerprint, summary annotation.
    struct Fp {
        labels: [(&'static str, String); 4],
        fp: String,
        summary: String,
    }
    let fps: Vec<Fp> = (0..f)
        .map(|i| {
            let id = identity(i, plan.names, plan.services);
            let labels = [
                ("alertname", id.name.to_string()),
                ("instance", id.instance.clone()),
                ("service", id.service.to_string()),
                ("severity", id.severity.to_string()),
            ];
            let map: Labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            Fp {
                fp: fingerprint(&map, None),
                summary: format!("{} on {} ({})", id.name, id.instance, id.service),
                labels,
            }
        })
        .collect();
    // Round at which the current run (firing or resolved) of a resolving fingerprint started.
    let mut run_start = vec![0usize; rounds];
    for r in 1..rounds {
        run_start[r] = if resolved_in(3, r, rounds) == resolved_in(3, r - 1, rounds) {
            run_start[r - 1]
        } else {
            r
        };
    }
    let mut b = AlertBatchBuilder::new();
    let mut batches = Vec::with_capacity(total.div_ceil(plan.batch_rows.max(1)));
    let batch_rows = plan.batch_rows.max(1);
    let mut last_t = T0_MS;
    for k in 0..total {
        let i = k % f;
        let r = k / f;
        let t = time(k);
        last_t = t;
        let resolved = resolved_in(i, r, rounds);
        let (starts, ends) = if i % 10 != 3 {
            (time(i), Some(t + 240_000))
        } else if resolved {
            let fired = run_start[run_start[r].saturating_sub(1)];
            (time(fired * f + i), Some(time(run_start[r] * f + i)))
        } else {
            (time(run_start[r] * f + i), Some(t + 240_000))
        };
        let x = &fps[i];
        b.push(AlertRow {
            fingerprint: &x.fp,
            resolved,
            labels: x.labels.iter().map(|(k, v)| (*k, v.as_str())),
            annotations: [("summary", x.summary.as_str())],
            starts_at_ms: starts,
            ends_at_ms: ends,
            source: "alertmanager_api",
            generator_url: None,
        });
        if b.len() == batch_rows || k + 1 == total {
            let batch = b
                .finish()
                .map_err(|e| AlertingError::Engine(format!("alert batch: {e}")))?;
            batches.push(StreamBatch { at_ms: t, batch });
        }
    }
    let rows = batches.iter().map(|b| b.batch.num_rows() as u64).sum();
    let bytes = batches
        .iter()
        .map(|b| b.batch.get_array_memory_size() as u64)
        .sum();
    Ok(AlertStream {
        batches,
        rows,
        bytes,
        end_ms: last_t,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// What one pass of the stream through a fresh engine measured and decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineRun {
    /// Alert observations processed.
    pub alerts: u64,
    /// Batches (`observe` calls).
    pub batches: u64,
    /// Seconds in normalize + `observe` + the final `advance` (encoding excluded).
    pub seconds: f64,
    /// `alerts / seconds`.
    pub alerts_per_s: f64,
    /// Seconds in `alerts_from_batch` (Arrow → alert model).
    pub normalize_s: f64,
    /// Seconds in the engine (`observe`, `advance`, dropping the decisions).
    pub engine_s: f64,
    /// Seconds encoding the decisions as the server appends them (one NDJSON line each); 0
    /// when this run did not encode.
    pub encode_s: f64,
    /// Bytes of NDJSON the decisions make (0 when this run did not encode).
    pub decision_bytes: u64,
    /// Decisions of every kind.
    pub decisions: u64,
    /// Notification intents for a group (not summaries).
    pub notifications: u64,
    /// Storm summaries (notifications held by a budget, told in one).
    pub summaries: u64,
    /// Firing alerts carried by the notifications.
    pub notified_firing: u64,
    /// Resolved alerts carried by the notifications.
    pub notified_resolved: u64,
    /// Alert state changes to firing.
    pub firings: u64,
    /// Alert state changes to resolved (by the sender).
    pub resolves: u64,
    /// Alert state changes to resolved by expiry.
    pub stale_resolves: u64,
    /// Alerts marked flapping.
    pub flapping: u64,
    /// Incidents opened.
    pub incidents_opened: u64,
    /// Incident changes of any kind.
    pub incident_changes: u64,
    /// The engine's own count of observations (must equal `alerts`).
    pub raw_counted: u64,
    /// The engine's count of distinct firings.
    pub deduplicated: u64,
}

/// Adds one batch's decisions to the run's counts and, with `buf`, encodes them as the server
/// does (`serde_json::to_value`, `id` and `message` added, one line each); returns the encoding
/// time.
fn tally(run: &mut EngineRun, ds: &[Decision], buf: Option<&mut Vec<u8>>) -> Duration {
    for d in ds {
        run.decisions += 1;
        match d {
            Decision::Notification(n) => {
                if n.summary.is_some() {
                    run.summaries += 1;
                } else {
                    run.notifications += 1;
                }
                run.notified_firing += n.firing.len() as u64;
                run.notified_resolved += n.resolved.len() as u64;
            }
            Decision::AlertState(c) => match c.change {
                Change::Firing => run.firings += 1,
                Change::Resolved => run.resolves += 1,
                Change::StaleResolved => run.stale_resolves += 1,
                Change::Flapping => run.flapping += 1,
                Change::FlappingEnded => {}
            },
            Decision::Incident(i) => {
                run.incident_changes += 1;
                if i.change == "opened" {
                    run.incidents_opened += 1;
                }
            }
            Decision::Stats(_) => {}
        }
    }
    let Some(buf) = buf else {
        return Duration::ZERO;
    };
    let t = Instant::now();
    buf.clear();
    for d in ds {
        if let Ok(mut v) = serde_json::to_value(d) {
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), Value::String(d.id()));
                o.insert("message".into(), Value::String(d.message()));
            }
            if serde_json::to_writer(&mut *buf, &v).is_ok() {
                buf.push(b'\n');
            }
        }
    }
    run.decision_bytes += buf.len() as u64;
    t.elapsed()
}

/// Feeds `stream` through a fresh engine with `cfg`, then advances the clock `drain_ms` past the
/// last observation so pending group flushes and budget summaries are decided too. With
/// `encode`, the decisions are also encoded as the server appends them (timed apart).
///
/// # Errors
/// [`AlertingError::Engine`] if a batch does not normalize; [`AlertingError::Check`] if the
/// engine did not count every observation.
pub fn run_engine(
    cfg: &AlertingConfig,
    stream: &AlertStream,
    drain_ms: i64,
    encode: bool,
) -> Result<EngineRun, AlertingError> {
    let mut e = AlertEngine::new(cfg.clone());
    let mut run = EngineRun::default();
    let mut buf = Vec::with_capacity(if encode { 1 << 20 } else { 0 });
    let mut normalize = Duration::ZERO;
    let mut engine = Duration::ZERO;
    let mut encoding = Duration::ZERO;
    for b in &stream.batches {
        let t0 = Instant::now();
        let alerts =
            alerts_from_batch(&b.batch).map_err(|e| AlertingError::Engine(e.to_string()))?;
        let t1 = Instant::now();
        run.alerts += alerts.len() as u64;
        let ds = e.observe(b.at_ms, alerts);
        // Counting is negligible; encoding is timed apart; dropping the decisions (incident
        // changes carry whole incidents) is the engine's cost.
        let enc = tally(&mut run, &ds, encode_buf(encode, &mut buf));
        drop(ds);
        let t2 = Instant::now();
        normalize += t1 - t0;
        engine += (t2 - t1).saturating_sub(enc);
        encoding += enc;
        run.batches += 1;
    }
    let t = Instant::now();
    let ds = e.advance(stream.end_ms + drain_ms);
    let enc = tally(&mut run, &ds, encode_buf(encode, &mut buf));
    drop(ds);
    engine += t.elapsed().saturating_sub(enc);
    encoding += enc;
    let s = e.stats();
    run.raw_counted = s.total.raw;
    run.deduplicated = s.total.deduplicated;
    run.normalize_s = normalize.as_secs_f64();
    run.engine_s = engine.as_secs_f64();
    run.encode_s = encoding.as_secs_f64();
    run.seconds = run.normalize_s + run.engine_s;
    if run.seconds > 0.0 {
        run.alerts_per_s = run.alerts as f64 / run.seconds;
    }
    if run.raw_counted != run.alerts {
        return Err(AlertingError::Check(format!(
            "the engine counted {} observations of {} fed",
            run.raw_counted, run.alerts
        )));
    }
    Ok(run)
}

/// The in-process part of the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineResult {
    /// The stream.
    pub plan: Option<StreamPlan>,
    /// The alerting YAML.
    pub config: String,
    /// Rows (observations) in the stream.
    pub rows: u64,
    /// Batches.
    pub batches: u64,
    /// Bytes of the Arrow arrays.
    pub input_bytes: u64,
    /// Seconds to build the stream (before any clock).
    pub generate_s: f64,
    /// Every run, in order.
    pub runs: Vec<EngineRun>,
    /// The run with the median alerts/s.
    pub median: EngineRun,
    /// Seconds the first run spent encoding its decisions as NDJSON (only it encodes: the
    /// decisions are the same in every run).
    pub encode_s: f64,
    /// Bytes of NDJSON the decisions make.
    pub decision_bytes: u64,
    /// `alerts / (median seconds + encode_s)`: with the decisions encoded as the server does.
    pub end_to_end_alerts_per_s: f64,
    /// Whether every run made the same decisions (the engine is deterministic).
    pub runs_agree: bool,
}

/// Builds the stream once and runs it `runs` times through fresh engines with
/// [`ENGINE_CONFIG`] (the first run also encodes the decisions); reports the median run.
///
/// # Errors
/// As [`build_stream`] and [`run_engine`]; [`AlertingError::Check`] if runs decide differently.
pub fn run_engine_rounds(plan: &StreamPlan, runs: usize) -> Result<EngineResult, AlertingError> {
    let cfg =
        AlertingConfig::parse(ENGINE_CONFIG).map_err(|e| AlertingError::Config(e.to_string()))?;
    let stream = build_stream(plan)?;
    tracing::info!(
        rows = stream.rows,
        batches = stream.batches.len(),
        mib = stream.bytes >> 20,
        seconds = stream.seconds,
        "built the alert stream"
    );
    let mut out = EngineResult {
        plan: Some(plan.clone()),
        config: ENGINE_CONFIG.trim_start().to_string(),
        rows: stream.rows,
        batches: stream.batches.len() as u64,
        input_bytes: stream.bytes,
        generate_s: stream.seconds,
        ..EngineResult::default()
    };
    // One budget period past the last observation, so the last storm summary is decided; less
    // than the 4 minutes firing alerts stay valid (`endsAt`), so none expires because the
    // stream stopped.
    let drain = 60_000;
    for round in 0..runs.max(1) {
        let r = run_engine(&cfg, &stream, drain, round == 0)?;
        tracing::info!(
            round,
            alerts_per_s = r.alerts_per_s as u64,
            notifications = r.notifications,
            "engine run"
        );
        out.runs.push(r);
    }
    let key = |r: &EngineRun| {
        (
            r.decisions,
            r.notifications,
            r.summaries,
            r.incidents_opened,
            r.notified_firing,
        )
    };
    out.runs_agree = out.runs.windows(2).all(|w| key(&w[0]) == key(&w[1]));
    out.median = crate::pipeline::median_by(&out.runs, |r| r.alerts_per_s);
    if let Some(first) = out.runs.first() {
        out.encode_s = first.encode_s;
        out.decision_bytes = first.decision_bytes;
    }
    let t = out.median.seconds + out.encode_s;
    if t > 0.0 {
        out.end_to_end_alerts_per_s = out.median.alerts as f64 / t;
    }
    if !out.runs_agree {
        return Err(AlertingError::Check(
            "two runs over the same stream made different decisions".into(),
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The engine as a child process, and its log tailed from this process.
// ---------------------------------------------------------------------------------------------

/// A running `aiops run` with an alerting configuration, in its own temporary directory; killed
/// on drop. Started and stopped by the test kit's launcher ([`AiopsCommand`]).
#[derive(Debug)]
pub struct Aiops {
    /// `None` only after a stop task panicked (the process was killed then).
    proc: Option<AiopsProcess>,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    root: tempfile::TempDir,
    bin: PathBuf,
}

impl Aiops {
    /// Writes `yaml` and a config file (`[alerting] config`, `tick_interval`, no pipelines), starts
    /// `<bin> --config CFG run --data-dir DIR --http 127.0.0.1:PORT --pg 127.0.0.1:0` and waits for
    /// `GET /api/health` → 200.
    ///
    /// # Errors
    /// [`BenchError::Spawn`] when the binary cannot run, [`BenchError::NotReady`] when it exits or
    /// stays unhealthy for 30 s (with its stderr), [`BenchError::Io`] for the files.
    pub async fn start(
        bin: &Path,
        tmp_parent: Option<&Path>,
        yaml: &str,
        tick_interval: &str,
    ) -> Result<Aiops, AlertingError> {
        let root = match tmp_parent {
            Some(p) => tempfile::Builder::new()
                .prefix("aiops-bench-alerting-")
                .tempdir_in(p),
            None => tempfile::Builder::new()
                .prefix("aiops-bench-alerting-")
                .tempdir(),
        }
        .map_err(|e| BenchError::io(tmp_parent.unwrap_or(Path::new("$TMPDIR")), e))?;
        let yaml_path = root.path().join("alerting.yaml");
        std::fs::write(&yaml_path, yaml).map_err(|e| BenchError::io(&yaml_path, e))?;
        let cfg_path = root.path().join("aiops.toml");
        let toml = format!(
            "[alerting]\nconfig = {:?}\ntick_interval = {tick_interval:?}\n\n[pipelines]\ndir = {:?}\n",
            yaml_path.display().to_string(),
            root.path().join("no-pipelines").display().to_string(),
        );
        std::fs::write(&cfg_path, toml).map_err(|e| BenchError::io(&cfg_path, e))?;
        // The child runs in its own directory: a relative binary path would resolve there.
        let bin = std::path::absolute(bin).map_err(|e| BenchError::io(bin, e))?;
        // The engine's own ingest age limit and log level (the bench measures it as shipped);
        // `RUST_LOG=warn` keeps the dependencies that read it quiet.
        let cmd = AiopsCommand::new(&bin, root.path().join("data"))
            .config_file(&cfg_path)
            .current_dir(root.path())
            .env("RUST_LOG", "warn")
            .ingest_max_age(None)
            .log_level(None)
            .stderr_file(root.path().join("engine.stderr"));
        let proc = spawn_engine(cmd).await?;
        Ok(Aiops {
            addr: proc.addr(),
            proc: Some(proc),
            root,
            bin,
        })
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The embedded log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir().join("log")
    }

    /// The last `max` bytes of the engine's stderr.
    pub fn stderr_tail(&self, max: usize) -> String {
        self.proc
            .as_ref()
            .map(|p| p.stderr_tail(max))
            .unwrap_or_default()
    }

    /// The notification intents in its log, as `aiops alerting log --type notification` prints
    /// them (the log is opened read-only beside the running engine).
    ///
    /// # Errors
    /// [`BenchError::Spawn`] if the command cannot run; [`AlertingError::Check`] if it fails.
    pub async fn notification_log(&self) -> Result<Vec<Value>, AlertingError> {
        let out = tokio::process::Command::new(&self.bin)
            .args(["alerting", "log", "--type", "notification", "--data-dir"])
            .arg(self.data_dir())
            .current_dir(self.root.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| BenchError::Spawn {
                bin: self.bin.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(AlertingError::Check(format!(
                "aiops alerting log failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect())
    }

    /// Sends SIGTERM and waits up to 10 s (kills it after that).
    pub async fn stop(&mut self) {
        // Only how it ended is lost: a timeout kills it, and the runs read the log before.
        if let Err(e) = stop_engine(&mut self.proc, Duration::from_secs(10)).await {
            tracing::warn!(error = %e, "stopping aiops");
        }
    }
}

/// A notification intent found in the log by the [`Tailer`], per alert it carries as firing.
#[derive(Debug, Clone)]
pub struct Notified {
    /// The alert's `alertname`.
    pub alertname: String,
    /// The notification's reason (`new`, `resolved`, …).
    pub reason: String,
    /// When this process could first read the record.
    pub seen: Instant,
    /// The record's append stamp (the log writer's wall clock, ms).
    pub append_ts_ms: i64,
}

/// What the tailer read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailStats {
    /// Records read.
    pub records: u64,
    /// `aiops.alerting` records among them.
    pub alerting_records: u64,
    /// Notification intents among their decisions.
    pub notifications: u64,
    /// Bytes of the records read, as framed in the log's segments.
    pub bytes: u64,
}

/// Follows an embedded log directory from its first record: the log opened once read-only with
/// `follow` (`aiops_log::embedded::EmbeddedConfig::follow`), so every `poll` it reads only what
/// the engine appended since (checksums verified, a record still being written left for the
/// next refresh) and wakes this thread's reader through `subscribe`. The append stamp
/// `append_stamp_latency_us` uses is the record's [`aiops_log::Record::append_ts_ms`].
#[derive(Debug)]
pub struct Tailer {
    stop: Arc<AtomicBool>,
    found: Arc<Mutex<Vec<Notified>>>,
    handle: Option<std::thread::JoinHandle<Result<TailStats, String>>>,
}

/// The notification intents of one `aiops.alerting` payload (NDJSON decisions), per firing alert:
/// (alertname, reason).
pub fn notifications_in(payload: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in payload.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if v.get("type").and_then(Value::as_str) != Some("notification") {
            continue;
        }
        let reason = v
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        for a in v
            .get("firing")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = a.pointer("/labels/alertname").and_then(Value::as_str) {
                out.push((n.to_string(), reason.clone()));
            }
        }
        if v.get("firing")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            out.push((String::new(), reason));
        }
    }
    out
}

/// The subject alerting decisions are appended under.
const SUBJECT: &str = "aiops.alerting";

/// How long the tailer waits for the log's signal before looking at its stop flag again.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Opens the engine's log in `dir` read-only, refreshed every `follow` on a background thread
/// (`None`: only when the caller calls `refresh`); tries again every `retry` until the engine has
/// created it, and gives up with the last error once `stop` is set.
///
/// # Errors
/// The open's error, once `stop` is set.
pub async fn open_log_read_only(
    dir: &Path,
    stop: &AtomicBool,
    retry: Duration,
    follow: Option<Duration>,
) -> Result<EmbeddedLog, String> {
    loop {
        let mut cfg = EmbeddedConfig::new(dir.to_path_buf());
        cfg.read_only = true;
        cfg.follow = follow;
        // Sealed segments older than the window are not rescanned for message ids at open.
        cfg.dedup_window = Duration::ZERO;
        match EmbeddedLog::open(cfg).await {
            Ok(log) => return Ok(log),
            Err(_) if !stop.load(Ordering::Acquire) => tokio::time::sleep(retry).await,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Notes the records of one batch, readable since `seen`.
fn tally_records(
    batch: Vec<aiops_log::Record>,
    seen: Instant,
    st: &mut TailStats,
    found: &Mutex<Vec<Notified>>,
) {
    for rec in batch {
        st.records += 1;
        // The record as framed in the segment: 48 bytes of header, subject, id, payload.
        st.bytes += (48 + rec.subject.len() + rec.msg_id.len() + rec.payload.len()) as u64;
        if rec.subject != SUBJECT {
            continue;
        }
        st.alerting_records += 1;
        let ns = notifications_in(&rec.payload);
        if ns.is_empty() {
            continue;
        }
        st.notifications += ns.len() as u64;
        if let Ok(mut g) = found.lock() {
            g.extend(ns.into_iter().map(|(alertname, reason)| Notified {
                alertname,
                reason,
                seen,
                append_ts_ms: rec.append_ts_ms,
            }));
        }
    }
}

/// Follows the log from its first record until `stop`, then reads what is left.
async fn tail_loop(
    dir: &Path,
    stop: &AtomicBool,
    found: &Mutex<Vec<Notified>>,
    poll: Duration,
) -> Result<TailStats, String> {
    let mut st = TailStats::default();
    let log = open_log_read_only(dir, stop, poll, Some(poll)).await?;
    let mut wake = log.subscribe();
    let mut reader = log.reader(1).await.map_err(|e| e.to_string())?;
    let mut last_look = false;
    loop {
        wake.borrow_and_update();
        let batch = reader.next_batch(4096).await.map_err(|e| e.to_string())?;
        if !batch.is_empty() {
            tally_records(batch, Instant::now(), &mut st, found);
            continue;
        }
        if last_look {
            let _ = log.close().await;
            return Ok(st);
        }
        if stop.load(Ordering::Acquire) {
            // Whatever the engine appended before the stop: one more refresh, then read it.
            log.refresh().map_err(|e| e.to_string())?;
            last_look = true;
            continue;
        }
        // The follow thread signals within `poll` of an append; the timeout is for the stop flag.
        let _ = tokio::time::timeout(STOP_CHECK, wake.changed()).await;
    }
}

impl Tailer {
    /// Starts a thread following the log in `dir` from its first record, the log refreshed every
    /// `poll` (what the engine appended since becomes readable then).
    ///
    /// # Errors
    /// [`AlertingError::Tail`] if the thread cannot start.
    pub fn start(dir: PathBuf, poll: Duration) -> Result<Tailer, AlertingError> {
        let stop = Arc::new(AtomicBool::new(false));
        let found = Arc::new(Mutex::new(Vec::new()));
        let (s, f) = (stop.clone(), found.clone());
        let handle = std::thread::Builder::new()
            .name("log-tailer".into())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
                    .and_then(|rt| rt.block_on(tail_loop(&dir, &s, &f, poll)))
            })
            .map_err(|e| AlertingError::Tail(e.to_string()))?;
        Ok(Tailer {
            stop,
            found,
            handle: Some(handle),
        })
    }

    /// Notifications found so far (one entry per firing alert they carry).
    pub fn found(&self) -> usize {
        self.found.lock().map_or(0, |g| g.len())
    }

    /// Reads what is left, stops the thread and returns everything found.
    ///
    /// # Errors
    /// [`AlertingError::Tail`] when the log could not be read.
    pub fn finish(mut self) -> Result<(Vec<Notified>, TailStats), AlertingError> {
        self.stop.store(true, Ordering::Release);
        let st = match self.handle.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r.map_err(AlertingError::Tail)?,
            _ => return Err(AlertingError::Tail("the tailer thread panicked".into())),
        };
        let found = self
            .found
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default();
        Ok((found, st))
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn encode_buf(encode: bool, buf: &mut Vec<u8>) -> Option<&mut Vec<u8>> {
    encode.then_some(buf)
}

fn new_histogram() -> Result<Histogram<u64>, AlertingError> {
    // 1 µs .. 10 min at 3 significant digits; constant bounds, so an error is a bug.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| AlertingError::Check(format!("histogram bounds: {e}")))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

// ---------------------------------------------------------------------------------------------
// 2. Latency from ingest to the notification intent in the log.
// ---------------------------------------------------------------------------------------------

/// How the latency run posts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyPlan {
    /// New alerts to post (one per request, each its own group).
    pub alerts: usize,
    /// Requests per second (open loop: each starts at its time, whatever the previous did).
    pub rate_per_s: f64,
    /// The engine binary.
    pub aiops_bin: PathBuf,
    /// Parent of the engine's temporary directory.
    pub tmp_dir: Option<PathBuf>,
    /// `[alerting] tick_interval` of the engine.
    pub tick_interval: String,
    /// How often the tailer's read-only log is refreshed (reads what the engine appended), µs.
    pub poll_us: u64,
}

/// What the latency run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyResult {
    /// The alerting YAML.
    pub config: String,
    /// Alerts posted.
    pub alerts: u64,
    /// The rate asked for.
    pub rate_per_s: f64,
    /// Seconds from the first to the last request start.
    pub send_s: f64,
    /// Requests answered 200.
    pub accepted: u64,
    /// Requests that failed.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Accepted alerts whose notification intent was found.
    pub notified: u64,
    /// Accepted alerts without one within the wait.
    pub missing: u64,
    /// Notification intents the tailer found (per firing alert carried).
    pub tail_notifications: u64,
    /// Notification intents `aiops alerting log --type notification` prints (must agree).
    pub log_notifications: u64,
    /// What the tailer read.
    pub tail: TailStats,
    /// POST start → the notification intent readable in the log, µs.
    pub latency_us: Latency,
    /// POST start → the record's append stamp (ms resolution, the writer's clock), µs.
    pub append_stamp_latency_us: Latency,
    /// POST start → its 200 answer (the alert is in the log), µs.
    pub post_latency_us: Latency,
    /// The tailer's poll interval, µs (an upper bound on what it adds).
    pub poll_us: u64,
}

/// Posts `plan.alerts` new alerts to `POST /api/alerts` at a steady rate, each with its own
/// `alertname` and `instance` (so its own group, notified at once with `group_wait: 0s`), and
/// measures when each one's notification intent becomes readable in the log.
///
/// # Errors
/// Engine start, client or tailer failures; [`AlertingError::Check`] when no alert was accepted.
pub async fn run_latency(plan: &LatencyPlan) -> Result<LatencyResult, AlertingError> {
    let mut aiops = Aiops::start(
        &plan.aiops_bin,
        plan.tmp_dir.as_deref(),
        LATENCY_CONFIG,
        &plan.tick_interval,
    )
    .await?;
    let tailer = Tailer::start(aiops.log_dir(), Duration::from_micros(plan.poll_us.max(1)))?;
    let client = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(32)
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{}/api/alerts", aiops.base_url());
    // Each probe carries its own fingerprint: the default one, the sum of per-label hashes
    // (`aiops_schemas::partition::hash_labels`), makes about half of these label sets (alertname
    // and instance ending in the same counter) collide, and a collided probe is deduplicated
    // into another alert instead of notifying.
    let bodies: Vec<Bytes> = (0..plan.alerts)
        .map(|k| {
            let body = serde_json::json!([{
                "fingerprint": format!("probe-{k:06}"),
                "name": format!("latency-Probe{k:06}"),
                "severity": if k % 2 == 0 { "warning" } else { "critical" },
                "service": SERVICES[k % SERVICES.len()],
                "labels": {"instance": format!("probe-{k:06}")},
                "annotations": {"summary": "latency probe"},
            }]);
            Bytes::from(body.to_string())
        })
        .collect();
    let wall0 = wall_ms();
    let origin = Instant::now();
    let rate = plan.rate_per_s.max(0.001);
    let mut set = tokio::task::JoinSet::new();
    for (k, body) in bodies.into_iter().enumerate() {
        let due = origin + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let c = client.clone();
        let url = url.clone();
        set.spawn(async move {
            let start = Instant::now();
            let r = c
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let res = match r {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.bytes().await.unwrap_or_default();
                    if status == 200 {
                        Ok(())
                    } else {
                        Err(format!(
                            "HTTP {status}: {}",
                            String::from_utf8_lossy(&text[..text.len().min(300)])
                        ))
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            (k, start, Instant::now(), res)
        });
    }
    let send_s = origin.elapsed().as_secs_f64();
    let mut starts: Vec<Option<Instant>> = vec![None; plan.alerts];
    let mut out = LatencyResult {
        config: LATENCY_CONFIG.trim_start().to_string(),
        alerts: plan.alerts as u64,
        rate_per_s: plan.rate_per_s,
        send_s,
        poll_us: plan.poll_us,
        ..LatencyResult::default()
    };
    let mut post_hist = new_histogram()?;
    while let Some(j) = set.join_next().await {
        let Ok((k, start, end, res)) = j else {
            out.errors += 1;
            continue;
        };
        match res {
            Ok(()) => {
                out.accepted += 1;
                starts[k] = Some(start);
                post_hist.saturating_record(micros(end - start));
            }
            Err(e) => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(e);
                }
            }
        }
    }
    // Wait for the last notifications (the engine polls its log every 50 ms when idle).
    let deadline = Instant::now() + Duration::from_secs(10);
    while tailer.found() < out.accepted as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = aiops.notification_log().await?;
    aiops.stop().await;
    let (found, tail) = tailer.finish()?;
    out.tail = tail;
    out.tail_notifications = tail.notifications;
    out.log_notifications = log
        .iter()
        .map(|n| {
            n.get("firing")
                .and_then(Value::as_array)
                .map_or(1, Vec::len) as u64
        })
        .sum();
    let mut hist = new_histogram()?;
    let mut stamp = new_histogram()?;
    let mut seen_once = vec![false; plan.alerts];
    for n in &found {
        let Some(k) = n
            .alertname
            .strip_prefix("latency-Probe")
            .and_then(|s| s.parse::<usize>().ok())
        else {
            continue;
        };
        let (Some(Some(start)), Some(once)) = (starts.get(k), seen_once.get_mut(k)) else {
            continue;
        };
        if *once || n.reason != "new" {
            continue;
        }
        *once = true;
        hist.saturating_record(micros(n.seen.saturating_duration_since(*start)));
        let start_wall_ms = wall0 as f64 + (*start - origin).as_secs_f64() * 1000.0;
        let d_ms = (n.append_ts_ms as f64 - start_wall_ms).max(0.001);
        stamp.saturating_record((d_ms * 1000.0) as u64);
    }
    out.notified = seen_once.iter().filter(|x| **x).count() as u64;
    out.missing = out.accepted - out.notified.min(out.accepted);
    out.latency_us = Latency::of(&hist);
    out.append_stamp_latency_us = Latency::of(&stamp);
    out.post_latency_us = Latency::of(&post_hist);
    if out.accepted == 0 {
        return Err(AlertingError::Check(format!(
            "no alert was accepted; first error: {}",
            out.first_error.as_deref().unwrap_or("none")
        )));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// 3. Side by side with Alertmanager.
// ---------------------------------------------------------------------------------------------

/// How the side-by-side run posts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparePlan {
    /// Fingerprints of the unpaced (throughput) stream.
    pub blast_fingerprints: usize,
    /// Times each is sent in the unpaced stream.
    pub blast_rounds: usize,
    /// Alerts per request (both systems).
    pub alerts_per_request: usize,
    /// Keep-alive connections of the unpaced stream (per system, one system at a time).
    pub connections: usize,
    /// Rounds of the paced stream (one per `round_interval_ms`).
    pub paced_rounds: usize,
    /// Time between rounds of the paced stream, ms.
    pub round_interval_ms: u64,
    /// Wait after the last paced round, and after the unpaced stream, before counting
    /// notifications, ms.
    pub settle_ms: u64,
    /// The engine binary.
    pub aiops_bin: PathBuf,
    /// Parent of the temporary directories.
    pub tmp_dir: Option<PathBuf>,
}

/// One request body of postable alerts.
#[derive(Debug, Clone)]
pub struct PostBody {
    /// JSON array of `postableAlert`s.
    pub bytes: Bytes,
    /// Alerts in it.
    pub alerts: u64,
}

/// One system's HTTP intake of a stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRun {
    /// `aiops` or `alertmanager`.
    pub system: String,
    /// Alerts in requests answered 2xx.
    pub alerts: u64,
    /// Requests answered 2xx.
    pub requests: u64,
    /// Seconds from the first request to the last answer.
    pub seconds: f64,
    /// `alerts / seconds`.
    pub alerts_per_s: f64,
    /// Request latency, µs.
    pub latency_us: Latency,
    /// 429/503 answers (retried).
    pub backpressure: u64,
    /// Other failures (not retried).
    pub errors: u64,
    /// Answers saying part of the request was already stored.
    pub duplicate_answers: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// aiops: seconds from the first request until the alerting engine had observed every
    /// accepted alert (its `raw` count).
    pub processed_s: Option<f64>,
    /// aiops: `alerts / processed_s`.
    pub processed_alerts_per_s: Option<f64>,
}

/// Notifications one system emitted for one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCounts {
    /// Notifications (webhook posts; notification intents).
    pub notifications: u64,
    /// Firing alerts they carried.
    pub firing_alerts: u64,
    /// Resolved alerts they carried.
    pub resolved_alerts: u64,
    /// By reason (aiops: `new`, `resolved`, `repeat`, `summary`) or status (Alertmanager:
    /// `firing`, `resolved`).
    pub by_reason: BTreeMap<String, u64>,
}

impl NotificationCounts {
    fn add(&mut self, reason: &str, firing: u64, resolved: u64) {
        self.notifications += 1;
        self.firing_alerts += firing;
        self.resolved_alerts += resolved;
        *self.by_reason.entry(reason.to_string()).or_default() += 1;
    }
}

/// The unpaced stream: both systems' intake.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlastResult {
    /// Alerts in the stream.
    pub alerts: u64,
    /// Requests in the stream.
    pub requests: u64,
    /// aiops' intake.
    pub aiops: HttpRun,
    /// Alertmanager's intake.
    pub alertmanager: HttpRun,
    /// Wait after both intakes before counting notifications, ms.
    pub settle_ms: u64,
    /// Seconds after the settle wait until aiops' engine had caught up with its log (its
    /// decisions for the stream made); `None` if it had not within a minute.
    pub aiops_caught_up_s: Option<f64>,
    /// Bytes this stream added to aiops' log (the alerts and every decision).
    pub aiops_log_bytes: u64,
    /// aiops' notifications for this stream (they depend on how fast each system takes the
    /// stream in relative to its timers: informative, not a like-for-like comparison).
    pub aiops_notifications: NotificationCounts,
    /// Alertmanager's notifications for this stream (informative).
    pub alertmanager_notifications: NotificationCounts,
}

/// The paced stream: what each system notified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PacedResult {
    /// Alerts sent to each system.
    pub alerts: u64,
    /// Rounds.
    pub rounds: usize,
    /// Time between rounds, ms.
    pub round_interval_ms: u64,
    /// Requests each system refused or failed (should be 0).
    pub aiops_errors: u64,
    /// Requests Alertmanager refused or failed (should be 0).
    pub alertmanager_errors: u64,
    /// Notifications Alertmanager's semantics give for the schedule.
    pub expected_notifications: u64,
    /// Alert observations aiops' engine had made when its notifications were counted (less than
    /// `alerts` means its engine was still behind its log).
    pub aiops_observed: u64,
    /// Bytes of aiops' log after this stream (the alerts and every decision).
    pub aiops_log_bytes: u64,
    /// aiops' notification intents.
    pub aiops: NotificationCounts,
    /// Alertmanager's webhook notifications.
    pub alertmanager: NotificationCounts,
}

/// The side-by-side part of the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareResult {
    /// The shared configuration (with the sink's URL).
    pub config: String,
    /// `prometheus-alertmanager --version`, first line.
    pub alertmanager_version: String,
    /// The unpaced stream.
    pub blast: BlastResult,
    /// The paced stream.
    pub paced: PacedResult,
}

/// One postable alert (Alertmanager API v2) as JSON.
fn postable(id: &Identity, prefix: &str, starts_ms: i64, ends_ms: i64) -> Value {
    serde_json::json!({
        "labels": {
            "alertname": format!("{prefix}-{}", id.name),
            "instance": id.instance,
            "service": id.service,
            "severity": id.severity,
        },
        "annotations": {"summary": format!("{} on {}", id.name, id.instance)},
        "startsAt": rfc3339_ms(starts_ms),
        "endsAt": rfc3339_ms(ends_ms),
        "generatorURL": "http://prometheus:9090/graph",
    })
}

fn bodies_of(alerts: Vec<Value>, per: usize) -> Vec<PostBody> {
    alerts
        .chunks(per.max(1))
        .map(|c| PostBody {
            bytes: Bytes::from(Value::Array(c.to_vec()).to_string()),
            alerts: c.len() as u64,
        })
        .collect()
}

/// The unpaced stream: `rounds` × `fingerprints` alerts (50 names × hosts, 20 services) starting
/// at `now_ms`, all firing with an `endsAt` an hour ahead, except one in ten resolved from the
/// second round on (so well before any group's first flush, however fast it is taken in).
pub fn blast_stream(fingerprints: usize, rounds: usize, per: usize, now_ms: i64) -> Vec<PostBody> {
    let mut alerts = Vec::with_capacity(fingerprints * rounds);
    for r in 0..rounds {
        for i in 0..fingerprints {
            let id = identity(i, NAMES.len(), SERVICES.len());
            // Each round's endsAt differs, as Prometheus' re-sends do.
            let ends = if i % 10 == 3 && r >= 1 {
                now_ms + 1
            } else {
                now_ms + 3_600_000 + r as i64
            };
            alerts.push(postable(&id, "blast", now_ms, ends));
        }
    }
    bodies_of(alerts, per)
}

/// Posts every body over `connections` keep-alive connections as fast as answered.
///
/// # Errors
/// [`AlertingError::Http`] when a client cannot be built.
pub async fn post_all(
    system: &str,
    url: &str,
    bodies: Arc<Vec<PostBody>>,
    connections: usize,
) -> Result<HttpRun, AlertingError> {
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()?;
        let (bodies, next, url) = (bodies.clone(), next.clone(), url.to_string());
        let mut hist = new_histogram()?;
        set.spawn(async move {
            let mut r = HttpRun::default();
            let mut last = Duration::ZERO;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(b) = bodies.get(n) else { break };
                loop {
                    let sent = Instant::now();
                    let resp = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(b.bytes.clone())
                        .send()
                        .await;
                    let (status, retry, text) = match resp {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let retry = resp
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            (Some(status), retry, resp.bytes().await.unwrap_or_default())
                        }
                        Err(e) => {
                            if r.first_error.is_none() {
                                r.first_error = Some(e.to_string());
                            }
                            (None, None, Bytes::new())
                        }
                    };
                    match status {
                        Some(s) if (200..300).contains(&s) => {
                            hist.saturating_record(micros(sent.elapsed()));
                            r.requests += 1;
                            r.alerts += b.alerts;
                            if reports_duplicates(&text) {
                                r.duplicate_answers += 1;
                            }
                            last = t0.elapsed();
                            break;
                        }
                        Some(429 | 503) => {
                            r.backpressure += 1;
                            tokio::time::sleep(retry_after(retry.as_deref())).await;
                        }
                        other => {
                            r.errors += 1;
                            if r.first_error.is_none() {
                                r.first_error = Some(format!(
                                    "HTTP {other:?}: {}",
                                    String::from_utf8_lossy(&text[..text.len().min(300)])
                                ));
                            }
                            break;
                        }
                    }
                }
            }
            (r, hist, last)
        });
    }
    let mut out = HttpRun {
        system: system.to_string(),
        ..HttpRun::default()
    };
    let mut hist = new_histogram()?;
    let mut last = Duration::ZERO;
    while let Some(j) = set.join_next().await {
        let Ok((r, h, l)) = j else {
            out.errors += 1;
            continue;
        };
        let _ = hist.add(&h);
        out.alerts += r.alerts;
        out.requests += r.requests;
        out.backpressure += r.backpressure;
        out.errors += r.errors;
        out.duplicate_answers += r.duplicate_answers;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
        last = last.max(l);
    }
    out.seconds = last.as_secs_f64();
    if out.seconds > 0.0 {
        out.alerts_per_s = out.alerts as f64 / out.seconds;
    }
    out.latency_us = Latency::of(&hist);
    Ok(out)
}

/// What the webhook sink counted, per stream (the `alertname` prefix before `-`).
type SinkCounts = Arc<Mutex<BTreeMap<String, NotificationCounts>>>;

async fn hook(
    axum::extract::State(counts): axum::extract::State<SinkCounts>,
    body: Bytes,
) -> axum::http::StatusCode {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let name = v
        .pointer("/groupLabels/alertname")
        .and_then(Value::as_str)
        .unwrap_or("");
    let stream = name.split_once('-').map_or("other", |(p, _)| p).to_string();
    let alerts = v.get("alerts").and_then(Value::as_array);
    let count = |st: &str| {
        alerts.map_or(0, |a| {
            a.iter()
                .filter(|x| x.get("status").and_then(Value::as_str) == Some(st))
                .count() as u64
        })
    };
    let (firing, resolved) = (count("firing"), count("resolved"));
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    if let Ok(mut g) = counts.lock() {
        g.entry(stream).or_default().add(status, firing, resolved);
    }
    axum::http::StatusCode::OK
}

/// aiops' notification intents per stream (the `alertname` prefix of the group).
fn aiops_counts(log: &[Value]) -> BTreeMap<String, NotificationCounts> {
    let mut out: BTreeMap<String, NotificationCounts> = BTreeMap::new();
    for n in log {
        let name = n
            .pointer("/group_labels/alertname")
            .and_then(Value::as_str)
            .unwrap_or("");
        let stream = name.split_once('-').map_or("other", |(p, _)| p).to_string();
        let len = |k: &str| n.get(k).and_then(Value::as_array).map_or(0, Vec::len) as u64;
        let reason = n.get("reason").and_then(Value::as_str).unwrap_or("");
        out.entry(stream)
            .or_default()
            .add(reason, len("firing"), len("resolved"));
    }
    out
}

/// The paced stream's schedule for host `h` in `round`: `None` (not sent yet), or whether it is
/// resolved and the round its current state started. Hosts 0–39 fire from round 0, hosts 40–49
/// from round 3 (new alerts in existing groups); hosts ≡ 3 (mod 10) resolve at round 8; hosts
/// ≡ 3 (mod 20) fire again at round 13.
pub fn paced_state(h: usize, round: usize) -> Option<(bool, usize)> {
    let first = if h < 40 { 0 } else { 3 };
    if round < first {
        return None;
    }
    if h % 20 == 3 && round >= 13 {
        return Some((false, 13));
    }
    if h % 10 == 3 && round >= 8 {
        return Some((true, 8));
    }
    Some((false, first))
}

/// Labels of the paced stream: 20 alert names × 50 hosts over 5 services (100 groups of 10).
fn paced_identity(i: usize) -> (usize, Identity) {
    let name = i % 20;
    let h = i / 20;
    (
        h,
        Identity {
            name: NAMES[name],
            instance: format!("host-{h:05}"),
            service: SERVICES[h % 5],
            severity: if name.is_multiple_of(4) {
                "critical"
            } else {
                "warning"
            },
        },
    )
}

/// Notifications Alertmanager's semantics give for [`paced_state`] with group_wait 1 s and
/// group_interval 5 s at one round per second: 100 groups notify at first; all 100 again for
/// the new hosts (round 3, flushed at 6 s); the 20 groups of service 3 for the resolutions
/// (round 8, at 11 s) and again for the re-firings (round 13, at 16 s).
pub const PACED_EXPECTED: u64 = 240;

/// Posts the paced stream's rounds to both systems at once; returns alerts sent and errors.
async fn send_paced(
    aiops_url: &str,
    am_url: &str,
    plan: &ComparePlan,
) -> Result<(u64, u64, u64), AlertingError> {
    let origin = Instant::now();
    let mut starts: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    let (mut sent, mut aiops_err, mut am_err) = (0u64, 0u64, 0u64);
    for round in 0..plan.paced_rounds {
        let due = origin + Duration::from_millis(plan.round_interval_ms * round as u64);
        tokio::time::sleep_until(due.into()).await;
        let now = wall_ms();
        let mut alerts = Vec::new();
        for i in 0..1000 {
            let (h, id) = paced_identity(i);
            let Some((resolved, since)) = paced_state(h, round) else {
                continue;
            };
            // Wall-clock time of the round each state began, remembered when first sent.
            let began = *starts.entry((i, since)).or_insert(now);
            let (s, e) = if resolved {
                let fired = starts.get(&(i, 0)).copied().unwrap_or(began - 1);
                (fired, began)
            } else {
                (began, now + 240_000)
            };
            alerts.push(postable(&id, "paced", s, e));
        }
        sent += alerts.len() as u64;
        let bodies = Arc::new(bodies_of(alerts, plan.alerts_per_request));
        let (a, m) = tokio::join!(
            post_all("aiops", aiops_url, bodies.clone(), 2),
            post_all("alertmanager", am_url, bodies, 2)
        );
        let (a, m) = (a?, m?);
        aiops_err += a.errors;
        am_err += m.errors;
    }
    Ok((sent, aiops_err, am_err))
}

async fn aiops_raw(client: &reqwest::Client, base: &str) -> Option<u64> {
    let r = client
        .get(format!("{base}/api/alerting/stats"))
        .send()
        .await
        .ok()?;
    let v: Value = serde_json::from_slice(&r.bytes().await.ok()?).ok()?;
    v.pointer("/stats/total/raw").and_then(Value::as_u64)
}

fn alertmanager_version() -> String {
    aiops_testkit::require_binary("prometheus-alertmanager")
        .ok()
        .and_then(|b| std::process::Command::new(b).arg("--version").output().ok())
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

/// Whether aiops' alerting engine has consumed its whole log: its position (`messages_read` of
/// the runner, counted from an empty log) has reached the log's `next_seq`, less the decision
/// and tick messages it appended itself after the last input it read.
async fn aiops_progress(client: &reqwest::Client, base: &str) -> Option<(u64, u64)> {
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let r = client.get(url).send().await.ok()?;
            serde_json::from_slice::<Value>(&r.bytes().await.ok()?).ok()
        }
    };
    let stats = get("/api/alerting/stats").await?;
    let health = get("/api/health").await?;
    let read = stats
        .pointer("/runner/messages_read")
        .and_then(Value::as_u64)?;
    let next = health.get("next_seq").and_then(Value::as_u64)?;
    Some((read, next.saturating_sub(1)))
}

/// Waits until aiops' engine has read every message of its log twice in a row with nothing new
/// (its own decisions included), or `timeout` passes; returns the seconds waited if it did.
async fn aiops_catch_up(client: &reqwest::Client, base: &str, timeout: Duration) -> Option<f64> {
    let t0 = Instant::now();
    let mut last = None;
    while t0.elapsed() < timeout {
        if let Some((read, head)) = aiops_progress(client, base).await
            && read >= head
        {
            if last == Some(head) {
                return Some(t0.elapsed().as_secs_f64());
            }
            last = Some(head);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Starts the webhook sink, `aiops` and Alertmanager with [`COMPARE_CONFIG`]. First the paced
/// stream goes to both at once and, after it settles, each system's notifications are counted.
/// Then the unpaced stream goes to aiops (until its engine has observed every alert) and then to
/// Alertmanager, for alerts/s over HTTP, and after it settles its notifications are counted too.
///
/// # Errors
/// Start-up failures of either system or the sink, client failures.
pub async fn run_compare(plan: &ComparePlan) -> Result<CompareResult, AlertingError> {
    let counts: SinkCounts = Arc::new(Mutex::new(BTreeMap::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| AlertingError::Alertmanager(format!("webhook sink: {e}")))?;
    let sink_addr = listener
        .local_addr()
        .map_err(|e| AlertingError::Alertmanager(format!("webhook sink: {e}")))?;
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(counts.clone());
    let sink = tokio::spawn(async move { axum::serve(listener, app).await });
    let config = COMPARE_CONFIG
        .trim_start()
        .replace("{WEBHOOK}", &format!("http://{sink_addr}/hook"));
    AlertingConfig::parse(&config).map_err(|e| AlertingError::Config(e.to_string()))?;
    let mut aiops = Aiops::start(&plan.aiops_bin, plan.tmp_dir.as_deref(), &config, "1s").await?;
    let am_config = config.clone();
    let am = tokio::task::spawn_blocking(move || aiops_testkit::Alertmanager::start(&am_config))
        .await
        .map_err(|e| AlertingError::Alertmanager(e.to_string()))?
        .map_err(|e| AlertingError::Alertmanager(e.to_string()))?;
    let aiops_url = format!("{}/api/v2/alerts", aiops.base_url());
    let am_url = format!("{}/api/v2/alerts", am.url());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut out = CompareResult {
        config: config.clone(),
        alertmanager_version: alertmanager_version(),
        ..CompareResult::default()
    };
    let sink_counts = |stream: &str| {
        counts
            .lock()
            .ok()
            .and_then(|g| g.get(stream).cloned())
            .unwrap_or_default()
    };

    // Paced: the same bodies to both at once, on fresh state.
    let (sent, ae, me) = send_paced(&aiops_url, &am_url, plan).await?;
    tokio::time::sleep(Duration::from_millis(plan.settle_ms)).await;
    let observed = aiops_raw(&client, &aiops.base_url()).await.unwrap_or(0);
    let log = aiops.notification_log().await?;
    let paced_bytes = crate::engine::dir_size(&aiops.log_dir())
        .map(|(b, _)| b)
        .unwrap_or(0);
    out.paced = PacedResult {
        alerts: sent,
        rounds: plan.paced_rounds,
        round_interval_ms: plan.round_interval_ms,
        aiops_errors: ae,
        alertmanager_errors: me,
        expected_notifications: PACED_EXPECTED,
        aiops_observed: observed,
        aiops_log_bytes: paced_bytes,
        aiops: aiops_counts(&log).remove("paced").unwrap_or_default(),
        alertmanager: sink_counts("paced"),
    };

    // Unpaced: the same stream to each system in turn, each with the machine to itself. Its
    // bodies are built just before each intake, so `startsAt` is "now" for both (Alertmanager
    // flushes a group at once when its first alert started more than group_wait ago).
    let stream = || {
        Arc::new(blast_stream(
            plan.blast_fingerprints,
            plan.blast_rounds,
            plan.alerts_per_request,
            wall_ms(),
        ))
    };
    let bodies = stream();
    out.blast.alerts = bodies.iter().map(|b| b.alerts).sum();
    out.blast.requests = bodies.len() as u64;
    out.blast.settle_ms = plan.settle_ms;
    let t0 = Instant::now();
    let mut a = post_all("aiops", &aiops_url, bodies.clone(), plan.connections).await?;
    let target = observed + a.alerts;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if aiops_raw(&client, &aiops.base_url())
            .await
            .is_some_and(|n| n >= target)
        {
            let s = t0.elapsed().as_secs_f64();
            a.processed_s = Some(s);
            a.processed_alerts_per_s = Some(a.alerts as f64 / s);
            break;
        }
        if Instant::now() > deadline {
            tracing::warn!("aiops did not observe every accepted alert within 120 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::info!(alerts_per_s = a.alerts_per_s as u64, "aiops intake");
    out.blast.aiops = a;
    let m = post_all("alertmanager", &am_url, stream(), plan.connections).await?;
    tracing::info!(alerts_per_s = m.alerts_per_s as u64, "alertmanager intake");
    out.blast.alertmanager = m;
    tokio::time::sleep(Duration::from_millis(plan.settle_ms)).await;
    out.blast.aiops_caught_up_s =
        aiops_catch_up(&client, &aiops.base_url(), Duration::from_secs(60)).await;
    let log = aiops.notification_log().await?;
    out.blast.aiops_log_bytes = crate::engine::dir_size(&aiops.log_dir())
        .map(|(b, _)| b.saturating_sub(paced_bytes))
        .unwrap_or(0);
    out.blast.aiops_notifications = aiops_counts(&log).remove("blast").unwrap_or_default();
    out.blast.alertmanager_notifications = sink_counts("blast");
    aiops.stop().await;
    drop(am);
    sink.abort();
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Results.
// ---------------------------------------------------------------------------------------------

/// What `alerting` writes as `details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertingDetails {
    /// The engine in process (absent with `--skip-engine`).
    pub engine: Option<EngineResult>,
    /// Latency to the notification intent (absent with `--skip-latency`).
    pub latency: Option<LatencyResult>,
    /// Side by side with Alertmanager (absent with `--skip-compare`).
    pub compare: Option<CompareResult>,
}

/// The flat figures of an alerting result.
pub fn figures(d: &AlertingDetails) -> Vec<Figure> {
    let mut f = Vec::new();
    if let Some(e) = &d.engine {
        let m = &e.median;
        f.push(Figure::new(
            "alerting.engine.alerts_per_s",
            m.alerts_per_s,
            "alerts/s",
            FigureKind::Rate,
        ));
        f.push(Figure::new(
            "alerting.engine.end_to_end_alerts_per_s",
            e.end_to_end_alerts_per_s,
            "alerts/s",
            FigureKind::Rate,
        ));
        f.push(Figure::new(
            "alerting.engine.notifications",
            (m.notifications + m.summaries) as f64,
            "notifications",
            FigureKind::Size,
        ));
        f.push(Figure::new(
            "alerting.engine.incidents_opened",
            m.incidents_opened as f64,
            "incidents",
            FigureKind::Size,
        ));
    }
    if let Some(l) = &d.latency {
        for (name, v) in [
            ("p50", l.latency_us.p50),
            ("p99", l.latency_us.p99),
            ("max", l.latency_us.max),
        ] {
            f.push(Figure::new(
                format!("alerting.latency.{name}"),
                v as f64,
                "µs",
                FigureKind::Latency,
            ));
        }
    }
    if let Some(c) = &d.compare {
        for r in [&c.blast.aiops, &c.blast.alertmanager] {
            f.push(Figure::new(
                format!("alerting.http.{}.alerts_per_s", r.system),
                r.alerts_per_s,
                "alerts/s",
                FigureKind::Rate,
            ));
        }
        if let Some(p) = c.blast.aiops.processed_alerts_per_s {
            f.push(Figure::new(
                "alerting.http.aiops.processed_alerts_per_s",
                p,
                "alerts/s",
                FigureKind::Rate,
            ));
        }
        f.push(Figure::new(
            "alerting.paced.aiops.notifications",
            c.paced.aiops.notifications as f64,
            "notifications",
            FigureKind::Size,
        ));
        f.push(Figure::new(
            "alerting.paced.alertmanager.notifications",
            c.paced.alertmanager.notifications as f64,
            "notifications",
            FigureKind::Size,
        ));
    }
    f
}

/// Lines for humans: what was run and what came out.
pub fn summary(d: &AlertingDetails) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &d.engine {
        let m = &e.median;
        let per_run: Vec<String> = e.runs.iter().map(|r| human(r.alerts_per_s)).collect();
        out.push(format!(
            "engine: {} alerts in {} batches ({} MiB of Arrow, built in {:.2} s); alerts/s per run: {} (median reported)",
            human(e.rows as f64),
            e.batches,
            e.input_bytes >> 20,
            e.generate_s,
            per_run.join(", ")
        ));
        out.push(format!(
            "engine: median {} alerts/s ({:.2} s: normalize {:.2} s, engine {:.2} s); {} alerts/s with the decisions encoded as NDJSON (first run: {:.2} s, {} MiB)",
            human(m.alerts_per_s),
            m.seconds,
            m.normalize_s,
            m.engine_s,
            human(e.end_to_end_alerts_per_s),
            e.encode_s,
            e.decision_bytes >> 20
        ));
        out.push(format!(
            "engine: {} notifications ({} firing / {} resolved alerts carried) + {} storm summaries; {} firings, {} resolves, {} stale, {} flapping; {} incidents opened, {} incident changes",
            m.notifications,
            m.notified_firing,
            m.notified_resolved,
            m.summaries,
            m.firings,
            m.resolves,
            m.stale_resolves,
            m.flapping,
            m.incidents_opened,
            m.incident_changes
        ));
    }
    if let Some(l) = &d.latency {
        out.push(format!(
            "latency: {} alerts at {}/s, {} accepted, {} notified, {} missing; POST start → notification in the log p50 {} µs, p99 {} µs, max {} µs (append stamps: p50 {} µs, p99 {} µs); POST answered p50 {} µs, p99 {} µs",
            l.alerts,
            l.rate_per_s,
            l.accepted,
            l.notified,
            l.missing,
            l.latency_us.p50,
            l.latency_us.p99,
            l.latency_us.max,
            l.append_stamp_latency_us.p50,
            l.append_stamp_latency_us.p99,
            l.post_latency_us.p50,
            l.post_latency_us.p99
        ));
        out.push(format!(
            "latency: tailer found {} notification intents, `aiops alerting log` prints {}",
            l.tail_notifications, l.log_notifications
        ));
    }
    if let Some(c) = &d.compare {
        for r in [&c.blast.aiops, &c.blast.alertmanager] {
            out.push(format!(
                "http {}: {} alerts in {} requests, {} alerts/s, request p50 {} µs p99 {} µs, {} backpressure, {} errors{}{}",
                r.system,
                human(r.alerts as f64),
                r.requests,
                human(r.alerts_per_s),
                r.latency_us.p50,
                r.latency_us.p99,
                r.backpressure,
                r.errors,
                r.processed_alerts_per_s
                    .map(|p| format!(", all observed by the engine at {} alerts/s", human(p)))
                    .unwrap_or_default(),
                r.first_error
                    .as_deref()
                    .map(|e| format!(" (first error: {e})"))
                    .unwrap_or_default()
            ));
        }
        let p = &c.paced;
        out.push(format!(
            "paced: {} alerts to each system in {} rounds; aiops' engine had observed {} of them when its notifications were counted; its log grew {} MiB",
            p.alerts,
            p.rounds,
            p.aiops_observed,
            p.aiops_log_bytes >> 20
        ));
        for (name, n) in [("aiops", &p.aiops), ("alertmanager", &p.alertmanager)] {
            out.push(format!(
                "paced {name}: {} notifications (expected {}), {} firing / {} resolved alerts carried, {:?}",
                n.notifications, p.expected_notifications, n.firing_alerts, n.resolved_alerts, n.by_reason
            ));
        }
        out.push(format!(
            "unpaced stream notifications: aiops {}, alertmanager {}; aiops' log grew {} MiB; its engine caught up with its log {}",
            c.blast.aiops_notifications.notifications,
            c.blast.alertmanager_notifications.notifications,
            c.blast.aiops_log_bytes >> 20,
            c.blast
                .aiops_caught_up_s
                .map(|s| format!("{s:.1} s after the settle wait"))
                .unwrap_or_else(|| "NOT within 60 s after the settle wait".into())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_pair_critical_with_warning() {
        let a = identity(0, 50, 20);
        let b = identity(50, 50, 20);
        assert_eq!((a.name, a.severity), ("HighCpuUsage", "critical"));
        assert_eq!((b.name, b.severity), ("HighCpuUsage", "warning"));
        assert_eq!(a.instance, b.instance);
        let c = identity(150, 50, 20);
        assert_eq!((c.severity, c.instance.as_str()), ("info", "host-00001"));
    }

    #[test]
    fn resolving_schedule() {
        assert!(!resolved_in(4, 40, 100));
        assert!(resolved_in(3, 30, 100) && resolved_in(13, 49, 100));
        assert!(!resolved_in(3, 50, 100) && resolved_in(3, 99, 100));
    }

    #[test]
    fn paced_schedule() {
        assert_eq!(paced_state(0, 0), Some((false, 0)));
        assert_eq!(paced_state(45, 2), None);
        assert_eq!(paced_state(45, 3), Some((false, 3)));
        assert_eq!(paced_state(13, 9), Some((true, 8)));
        assert_eq!(paced_state(23, 14), Some((false, 13)));
        assert_eq!(paced_state(13, 14), Some((true, 8)));
    }

    #[test]
    fn notifications_are_found_in_decisions() {
        let payload = br#"{"type":"alert_state","at_ms":1}
{"type":"notification","reason":"new","firing":[{"labels":{"alertname":"a"}},{"labels":{"alertname":"b"}}],"resolved":[]}
"#;
        let n = notifications_in(payload);
        assert_eq!(
            n,
            vec![("a".into(), "new".into()), ("b".into(), "new".into())]
        );
    }

    #[test]
    fn rfc3339_has_millis() {
        assert_eq!(rfc3339_ms(T0_MS + 5), "2024-05-01T00:00:00.005Z");
    }
}
