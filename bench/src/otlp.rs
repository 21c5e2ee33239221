//! `aiops-bench otlp`: OTLP ingest beside remote_write, in one run against one aiops process on
//! the embedded log — metric samples/s over OTLP/HTTP (protobuf) and OTLP/gRPC against
//! remote_write, and log records/s over OTLP/HTTP and OTLP/gRPC.
//!
//! One engine (`<bin> run` with `[otlp] grpc_listen` on a free port) serves every phase, one
//! after the other. Each phase sends from `connections` clients as fast as the engine answers,
//! for `warmup` + `measure`; the rate is the growth of
//! `aiops_ingest_events_total{kind, source}` (rows the log accepted) over the measured window,
//! so backpressure shows as a lower rate, never as lost rows. Also reported: the engine's CPU
//! seconds per million rows (`/proc/<pid>/stat`).
//!
//! Bodies are encoded before the clock starts. OTLP bodies are protobuf whose point times are
//! patched in place per request (a fixed64 field at known offsets), so every request is new
//! data (the engine identifies a retried body by its content); remote_write bodies (snappy)
//! carry a fresh `Idempotency-Key` per request instead. gRPC requests send the same
//! pre-encoded bytes through a pass-through codec, so neither transport pays for encoding in
//! the measured window.

use crate::bodies::{PoolShape, build_pool};
use crate::engine::{spawn_engine, stop_engine};
use crate::error::BenchError;
use crate::report::{Figure, FigureKind};
use aiops_connectors::sources::otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use aiops_connectors::sources::otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use aiops_connectors::sources::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use aiops_connectors::sources::otlp::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use aiops_connectors::sources::otlp::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use aiops_connectors::sources::otlp::proto::resource::v1::Resource;
use aiops_testkit::{AiopsCommand, free_port};
use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct OtlpPlan {
    /// The `aiops` binary.
    pub aiops_bin: PathBuf,
    /// Client connections per phase.
    pub connections: usize,
    /// Warm-up before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// Metric samples (data points) per request.
    pub samples_per_request: usize,
    /// Log records per request.
    pub records_per_request: usize,
    /// Parent of the engine's temporary data directory.
    pub tmp_dir: Option<PathBuf>,
}

/// One phase's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseResult {
    /// `remote_write`, `otlp-http`, `otlp-grpc`, `otlp-http-logs`, `otlp-grpc-logs`.
    pub phase: String,
    /// Rows (samples or log records) the log accepted per second over the measured window.
    pub rows_per_s: f64,
    /// Rows accepted over the measured window.
    pub rows: f64,
    /// Engine CPU seconds per million rows over the window.
    pub cpu_s_per_million: f64,
    /// Requests answered with success over the whole phase.
    pub requests_ok: u64,
    /// Requests answered otherwise (backpressure included) over the whole phase.
    pub requests_refused: u64,
    /// Bytes per request body as sent.
    pub body_bytes: usize,
}

/// All phases.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtlpResult {
    /// Client connections per phase.
    pub connections: usize,
    /// Measured window, seconds.
    pub measure_s: f64,
    /// Samples per metrics request, records per logs request.
    pub samples_per_request: usize,
    /// Log records per request.
    pub records_per_request: usize,
    /// The phases in the order run.
    pub phases: Vec<PhaseResult>,
    /// OTLP/HTTP samples/s ÷ remote_write samples/s.
    pub ratio_http_to_remote_write: Option<f64>,
    /// OTLP/gRPC samples/s ÷ remote_write samples/s.
    pub ratio_grpc_to_remote_write: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    RemoteWrite,
    OtlpHttp,
    OtlpGrpc,
    OtlpHttpLogs,
    OtlpGrpcLogs,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::RemoteWrite => "remote_write",
            Phase::OtlpHttp => "otlp-http",
            Phase::OtlpGrpc => "otlp-grpc",
            Phase::OtlpHttpLogs => "otlp-http-logs",
            Phase::OtlpGrpcLogs => "otlp-grpc-logs",
        }
    }

    /// The `aiops_ingest_events_total` series the phase grows.
    fn stored_metric(self) -> &'static str {
        match self {
            Phase::RemoteWrite => {
                "aiops_ingest_events_total{kind=\"metrics\",source=\"remote_write\"}"
            }
            Phase::OtlpHttp | Phase::OtlpGrpc => {
                "aiops_ingest_events_total{kind=\"metrics\",source=\"otlp_metrics\"}"
            }
            Phase::OtlpHttpLogs | Phase::OtlpGrpcLogs => {
                "aiops_ingest_events_total{kind=\"logs\",source=\"otlp_logs\"}"
            }
        }
    }
}

/// The point time every template carries; found in the encoded bytes and patched per request.
const SENTINEL_NS: u64 = 1_700_000_000_123_456_789;

/// A protobuf body and where its point times are.
#[derive(Debug, Clone)]
struct Template {
    bytes: Vec<u8>,
    offsets: Vec<usize>,
}

impl Template {
    fn new(bytes: Vec<u8>, expected: usize) -> Result<Template, BenchError> {
        let needle = SENTINEL_NS.to_le_bytes();
        let offsets: Vec<usize> = bytes
            .windows(8)
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect();
        if offsets.len() != expected {
            return Err(BenchError::Encode(format!(
                "found {} time fields in an OTLP template, expected {expected}",
                offsets.len()
            )));
        }
        Ok(Template { bytes, offsets })
    }

    /// The body with every point at `t_ns`.
    fn at(&self, t_ns: u64) -> Bytes {
        let mut b = self.bytes.clone();
        let t = t_ns.to_le_bytes();
        for &o in &self.offsets {
            b[o..o + 8].copy_from_slice(&t);
        }
        Bytes::from(b)
    }
}

fn kv(k: &str, v: String) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        key_strindex: 0,
    }
}

fn resource(k: usize) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", "checkout".into()),
            kv("service.instance.id", format!("pod-{k}")),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    })
}

/// Metrics body `k`: `n` gauge points over 8 metric names and `n / 8` series each, with the
/// same label shape as the remote_write pool (`series`, `host`).
fn metrics_template(k: usize, n: usize) -> Result<Template, BenchError> {
    const NAMES: [&str; 8] = [
        "node.cpu.time",
        "node.memory.available",
        "node.network.receive",
        "node.disk.read",
        "http.requests",
        "http.duration",
        "process.memory.rss",
        "go.goroutines",
    ];
    let per = n.div_ceil(NAMES.len());
    let mut left = n;
    let metrics = NAMES
        .iter()
        .map(|name| {
            let m = per.min(left);
            left -= m;
            Metric {
                name: (*name).to_string(),
                description: String::new(),
                unit: String::new(),
                metadata: Vec::new(),
                data: Some(Data::Gauge(Gauge {
                    data_points: (0..m)
                        .map(|i| NumberDataPoint {
                            attributes: vec![
                                kv("host", format!("host-{:04}", (k * per + i) / 100)),
                                kv("series", (k * per + i).to_string()),
                            ],
                            start_time_unix_nano: 0,
                            time_unix_nano: SENTINEL_NS,
                            exemplars: Vec::new(),
                            flags: 0,
                            value: Some(number_data_point::Value::AsDouble(i as f64 * 0.5)),
                        })
                        .collect(),
                })),
            }
        })
        .collect();
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(k),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    Template::new(req.encode_to_vec(), n)
}

/// Logs body `k`: `n` records of ~150-byte bodies with three attributes.
fn logs_template(k: usize, n: usize) -> Result<Template, BenchError> {
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: SENTINEL_NS,
            observed_time_unix_nano: 0,
            severity_number: if i % 10 == 0 { 17 } else { 9 },
            severity_text: String::new(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "order {} paid in {} ms by card for customer u{} from region eu-1 via checkout-{}",
                    k * n + i,
                    i % 250,
                    i % 977,
                    i % 4
                ))),
            }),
            attributes: vec![
                kv("http.route", "/api/pay".into()),
                kv("user.id", format!("u{}", i % 977)),
                kv("team", "payments".into()),
            ],
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: vec![7; 16],
            span_id: vec![9; 8],
            event_name: String::new(),
        })
        .collect();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(k),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    Template::new(req.encode_to_vec(), n)
}

/// A pass-through gRPC codec: the request is already-encoded protobuf; the answer is kept as
/// bytes (its content is not needed).
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// `utime + stime` of a process, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
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

/// The wall clock (the bench is a client: its point times must fall inside ingest's window).
#[allow(clippy::disallowed_methods)]
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0))
}

/// What a phase's senders share.
struct Shared {
    stop: AtomicBool,
    /// Request counter: each request gets its own time (1 µs apart) or key.
    seq: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    base_ns: u64,
}

async fn http_sender(
    shared: Arc<Shared>,
    phase: Phase,
    url: String,
    rw: Arc<Vec<Bytes>>,
    templates: Arc<Vec<Template>>,
) {
    let client = reqwest::Client::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let n = shared.seq.fetch_add(1, Ordering::Relaxed);
        let req = match phase {
            Phase::RemoteWrite => client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "snappy")
                .header("x-prometheus-remote-write-version", "0.1.0")
                .header("idempotency-key", format!("otlp-bench-{n}"))
                .body(rw[n as usize % rw.len()].clone()),
            _ => client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(templates[n as usize % templates.len()].at(shared.base_ns + n * 1_000)),
        };
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn grpc_sender(
    shared: Arc<Shared>,
    path: &'static str,
    endpoint: String,
    templates: Arc<Vec<Template>>,
) -> Result<(), String> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let mut grpc = tonic::client::Grpc::new(channel);
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    while !shared.stop.load(Ordering::Relaxed) {
        let n = shared.seq.fetch_add(1, Ordering::Relaxed);
        let body = templates[n as usize % templates.len()].at(shared.base_ns + n * 1_000);
        let sent = async {
            grpc.ready().await.map_err(|e| e.to_string())?;
            grpc.unary(tonic::Request::new(body), path.clone(), RawCodec)
                .await
                .map_err(|e| e.to_string())
        };
        match sent.await {
            Ok(_) => {
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    Ok(())
}

/// Runs one phase against the running engine.
#[allow(clippy::too_many_arguments)]
async fn run_phase(
    plan: &OtlpPlan,
    phase: Phase,
    pid: u32,
    base: &str,
    grpc: &str,
    rw: &Arc<Vec<Bytes>>,
    metrics: &Arc<Vec<Template>>,
    logs: &Arc<Vec<Template>>,
) -> PhaseResult {
    let client = reqwest::Client::new();
    // Each request is 1 µs of event time after the one before, starting an hour ago.
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        seq: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        base_ns: now_ns().saturating_sub(3_600_000_000_000),
    });
    let templates = match phase {
        Phase::OtlpHttpLogs | Phase::OtlpGrpcLogs => logs.clone(),
        _ => metrics.clone(),
    };
    let body_bytes = match phase {
        Phase::RemoteWrite => rw.first().map_or(0, Bytes::len),
        _ => templates.first().map_or(0, |t| t.bytes.len()),
    };
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..plan.connections {
        let (s, t, r) = (shared.clone(), templates.clone(), rw.clone());
        match phase {
            Phase::RemoteWrite => {
                let url = format!("{base}/api/v1/write");
                senders.spawn(async move {
                    http_sender(s, phase, url, r, t).await;
                    Ok::<(), String>(())
                });
            }
            Phase::OtlpHttp | Phase::OtlpHttpLogs => {
                let path = if phase == Phase::OtlpHttp {
                    "/v1/metrics"
                } else {
                    "/v1/logs"
                };
                let url = format!("{base}{path}");
                senders.spawn(async move {
                    http_sender(s, phase, url, r, t).await;
                    Ok(())
                });
            }
            Phase::OtlpGrpc | Phase::OtlpGrpcLogs => {
                let path = if phase == Phase::OtlpGrpc {
                    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
                } else {
                    "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
                };
                let endpoint = format!("http://{grpc}");
                senders.spawn(grpc_sender(s, path, endpoint, t));
            }
        }
    }
    let stored = phase.stored_metric();
    tokio::time::sleep(plan.warmup).await;
    let (n0, c0, t0) = (
        metric(&client, base, stored).await,
        cpu_seconds(pid),
        Instant::now(),
    );
    tokio::time::sleep(plan.measure).await;
    let (n1, c1, secs) = (
        metric(&client, base, stored).await,
        cpu_seconds(pid),
        t0.elapsed().as_secs_f64(),
    );
    shared.stop.store(true, Ordering::Relaxed);
    while let Some(r) = senders.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!(phase = phase.name(), error = %e, "a sender failed");
        }
    }
    let rows = n1 - n0;
    PhaseResult {
        phase: phase.name().to_string(),
        rows_per_s: rows / secs,
        rows,
        cpu_s_per_million: if rows > 0.0 {
            (c1 - c0) / rows * 1e6
        } else {
            0.0
        },
        requests_ok: shared.ok.load(Ordering::Relaxed),
        requests_refused: shared.refused.load(Ordering::Relaxed),
        body_bytes,
    }
}

/// Runs every phase against one engine.
///
/// # Errors
/// [`BenchError`] when the engine cannot start or stop, a body cannot be built, or a phase
/// stored nothing.
pub async fn run(plan: &OtlpPlan) -> Result<OtlpResult, BenchError> {
    const POOL: usize = 16;
    let now_ms = i64::try_from(now_ns() / 1_000_000).unwrap_or(0);
    let rw: Vec<Bytes> = build_pool(&PoolShape {
        series: 10_000,
        samples_per_request: plan.samples_per_request,
        bodies: POOL,
        start_ms: now_ms - 3_600_000,
        step_ms: 10_000,
    })?
    .into_iter()
    .map(|b| b.bytes)
    .collect();
    let metrics = (0..POOL)
        .map(|k| metrics_template(k, plan.samples_per_request))
        .collect::<Result<Vec<_>, _>>()?;
    let logs = (0..POOL)
        .map(|k| logs_template(k, plan.records_per_request))
        .collect::<Result<Vec<_>, _>>()?;
    let (rw, metrics, logs) = (Arc::new(rw), Arc::new(metrics), Arc::new(logs));

    let root = match &plan.tmp_dir {
        Some(p) => tempfile::Builder::new()
            .prefix("aiops-bench-otlp-")
            .tempdir_in(p),
        None => tempfile::Builder::new()
            .prefix("aiops-bench-otlp-")
            .tempdir(),
    }
    .map_err(|e| BenchError::io(plan.tmp_dir.clone().unwrap_or_else(|| "$TMPDIR".into()), e))?;
    let grpc = format!("127.0.0.1:{}", free_port());
    let cmd = AiopsCommand::new(&plan.aiops_bin, root.path().join("data"))
        .log("embedded")
        .log_level(Some("warn"))
        .env("AIOPS__OTLP__GRPC_LISTEN", grpc.clone());
    let mut slot = Some(spawn_engine(cmd).await?);
    let (pid, base) = match &slot {
        Some(p) => (p.pid(), p.base_url()),
        None => return Err(BenchError::Internal("engine lost".into())),
    };
    let mut out = OtlpResult {
        connections: plan.connections,
        measure_s: plan.measure.as_secs_f64(),
        samples_per_request: plan.samples_per_request,
        records_per_request: plan.records_per_request,
        ..OtlpResult::default()
    };
    for phase in [
        Phase::RemoteWrite,
        Phase::OtlpHttp,
        Phase::OtlpGrpc,
        Phase::OtlpHttpLogs,
        Phase::OtlpGrpcLogs,
    ] {
        let r = run_phase(plan, phase, pid, &base, &grpc, &rw, &metrics, &logs).await;
        eprintln!(
            "{}: {:.0} rows/s, {:.2} CPU s per million, {} requests ok, {} refused",
            r.phase, r.rows_per_s, r.cpu_s_per_million, r.requests_ok, r.requests_refused
        );
        if r.rows <= 0.0 {
            let _ = stop_engine(&mut slot, Duration::from_secs(30)).await;
            return Err(BenchError::NothingAccepted(format!(
                "{} stored nothing",
                r.phase
            )));
        }
        out.phases.push(r);
    }
    stop_engine(&mut slot, Duration::from_secs(30)).await?;
    let rate = |name: &str| {
        out.phases
            .iter()
            .find(|p| p.phase == name)
            .map(|p| p.rows_per_s)
    };
    if let Some(rw) = rate("remote_write").filter(|r| *r > 0.0) {
        out.ratio_http_to_remote_write = rate("otlp-http").map(|s| s / rw);
        out.ratio_grpc_to_remote_write = rate("otlp-grpc").map(|s| s / rw);
    }
    Ok(out)
}

/// The flat figures of a result.
pub fn figures(r: &OtlpResult) -> Vec<Figure> {
    let mut f = Vec::new();
    for p in &r.phases {
        let unit = if p.phase.ends_with("logs") {
            "records/s"
        } else {
            "samples/s"
        };
        f.push(Figure::new(
            format!("otlp.{}.rows_per_s", p.phase),
            p.rows_per_s,
            unit,
            FigureKind::Rate,
        ));
        f.push(Figure::new(
            format!("otlp.{}.cpu_s_per_million", p.phase),
            p.cpu_s_per_million,
            "CPU s/M rows",
            FigureKind::Latency,
        ));
    }
    f
}
