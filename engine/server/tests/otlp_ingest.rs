//! OTLP ingest through the running binary with real peers: the OpenTelemetry Python SDK's
//! OTLP/HTTP (protobuf) and OTLP/gRPC exporters send known metrics (a cumulative counter, a delta
//! counter exported twice, a gauge, a histogram, an exponential histogram) and logs, and the
//! OTel proto repository's example files are posted as OTLP/JSON (plain and gzip). Every point
//! sent is counted against the rows stored (read back with `aiops replay`). Malformed protobuf,
//! JSON and gzip are refused with a `google.rpc.Status` and store nothing; points outside the
//! time window come back as partial success; auth on all three listeners (no token 401 /
//! UNAUTHENTICATED, viewer 403 / PERMISSION_DENIED, ingest token accepted).
//!
//! Needs `scripts/test-deps/otlp.sh` (the Python SDK and exporters from PyPI).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_connectors::sources::otlp::RpcStatus;
use aiops_connectors::sources::otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use aiops_connectors::sources::otlp::proto::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use common::{Aiops, replay_json};
use prost::Message as _;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

/// The sender: the SDK's own exporters, flushed explicitly so every export is known.
const SENDER: &str = r#"
import json, logging, os, sys
from opentelemetry.sdk.metrics import MeterProvider, Counter
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader, AggregationTemporality, MetricExportResult
from opentelemetry.sdk.metrics.view import View, ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

proto, endpoint, token = sys.argv[1], sys.argv[2], sys.argv[3]
headers = {"authorization": "Bearer " + token} if token else None
if proto == "http":
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    mkw = dict(endpoint=endpoint + "/v1/metrics", headers=headers)
    lkw = dict(endpoint=endpoint + "/v1/logs", headers=headers)
else:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from grpc import Compression
    mkw = dict(endpoint=endpoint, insecure=True, headers=headers, compression=Compression.Gzip)
    lkw = dict(endpoint=endpoint, insecure=True, headers=headers)

report = {"results": [], "exp": None}

class Recording(OTLPMetricExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kw):
        for rm in metrics_data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == "test.exp":
                        p = m.data.data_points[0]
                        report["exp"] = {"scale": p.scale, "offset": p.positive.offset,
                                         "counts": list(p.positive.bucket_counts),
                                         "neg_offset": p.negative.offset,
                                         "neg_counts": list(p.negative.bucket_counts),
                                         "zero_count": p.zero_count, "count": p.count, "sum": p.sum}
        r = super().export(metrics_data, timeout_millis=timeout_millis, **kw)
        report["results"].append(r == MetricExportResult.SUCCESS)
        return r

res = Resource.create({"service.name": "otlp-test", "service.namespace": "shop",
                       "service.instance.id": proto + "-1", "deployment.environment": "test"})

def provider(temporality=None, views=()):
    kw = dict(mkw)
    if temporality:
        kw["preferred_temporality"] = temporality
    reader = PeriodicExportingMetricReader(Recording(**kw), export_interval_millis=3_600_000)
    return MeterProvider(resource=res, metric_readers=[reader], views=list(views), shutdown_on_exit=False)

cum = provider(views=[View(instrument_name="test.exp", aggregation=ExponentialBucketHistogramAggregation())])
m = cum.get_meter("otlp.test", "1.0")
c = m.create_counter("test.requests", unit="{request}")
c.add(3, {"route": "/a"})
c.add(4, {"route": "/a"})
m.create_gauge("test.temperature", unit="Cel").set(21.5, {"room": "lab"})
h = m.create_histogram("test.latency", unit="ms")
for v in (3, 7, 120):
    h.record(v, {"route": "/a"})
e = m.create_histogram("test.exp", unit="s")
for v in (1.5, 3, 3, 10):
    e.record(v)
cum.force_flush()

delta = provider(temporality={Counter: AggregationTemporality.DELTA})
d = delta.get_meter("otlp.test.delta").create_counter("test.jobs")
d.add(5, {"queue": "q1"})
delta.force_flush()
d.add(2, {"queue": "q1"})
delta.force_flush()

lp = LoggerProvider(resource=res, shutdown_on_exit=False)
exporter = OTLPLogExporter(**lkw)
outcomes = []
orig = exporter.export
def export(batch, *a, **kw):
    r = orig(batch, *a, **kw)
    outcomes.append(r.name)
    return r
exporter.export = export
lp.add_log_record_processor(SimpleLogRecordProcessor(exporter))
log = logging.getLogger("otlp.test.app")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=lp))
tracer = TracerProvider().get_tracer("otlp.test")
with tracer.start_as_current_span("checkout") as span:
    log.warning("disk %s is %d%% full", "sda", 91, extra={"user.id": "42"})
    ctx = span.get_span_context()
    report["trace_id"] = format(ctx.trace_id, "032x")
    report["span_id"] = format(ctx.span_id, "016x")
log.error("payment failed")
lp.force_flush()
report["logs"] = outcomes
print(json.dumps(report), flush=True)
os._exit(0)
"#;

fn python_ok() {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the OpenTelemetry Python SDK and OTLP exporters are missing: run scripts/test-deps/otlp.sh"
    );
}

/// Runs the sender; returns its report.
fn send(dir: &Path, proto: &str, endpoint: &str, token: &str) -> Value {
    let script = dir.join("sender.py");
    std::fs::write(&script, SENDER).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .args([proto, endpoint, token])
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "10")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{proto} sender failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "{proto} sender printed no report ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn label<'a>(e: &'a Value, k: &str) -> Option<&'a str> {
    e["labels"][k].as_str()
}

/// Rows of one sender run (by `instance`), by name.
fn rows_of<'a>(events: &'a [Value], instance: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| label(e, "instance") == Some(instance))
        .collect()
}

fn value_of(rows: &[&Value], name: &str) -> Vec<f64> {
    rows.iter()
        .filter(|e| e["name"] == name)
        .map(|e| e["value"].as_f64().unwrap())
        .collect()
}

/// Checks the rows of one sender run against what it sent; returns how many there are.
fn check_metrics(events: &[Value], instance: &str, report: &Value) -> usize {
    let rows = rows_of(events, instance);
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r == true),
        "{instance}: an export failed: {report}"
    );
    for r in &rows {
        assert_eq!(label(r, "job"), Some("shop/otlp-test"), "{r}");
        assert_eq!(label(r, "deployment_environment"), Some("test"), "{r}");
    }
    // Cumulative counter: one point, 3 + 4; `{request}` is an annotation, not a unit.
    assert_eq!(
        value_of(&rows, "test_requests_total"),
        vec![7.0],
        "{instance}"
    );
    // Delta counter exported twice (5, then 2): the running total.
    assert_eq!(
        value_of(&rows, "test_jobs_total"),
        vec![5.0, 7.0],
        "{instance}"
    );
    assert_eq!(
        value_of(&rows, "test_temperature_celsius"),
        vec![21.5],
        "{instance}"
    );
    // Histogram with the SDK's default bounds (15) → 16 buckets + sum + count.
    let buckets: Vec<(String, f64)> = rows
        .iter()
        .filter(|e| e["name"] == "test_latency_milliseconds_bucket")
        .map(|e| {
            (
                label(e, "le").unwrap().to_string(),
                e["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(buckets.len(), 16, "{buckets:?}");
    let le = |b: &str| buckets.iter().find(|(l, _)| l == b).map(|(_, v)| *v);
    assert_eq!(
        (le("0"), le("5"), le("10"), le("100"), le("250"), le("+Inf")),
        (
            Some(0.0),
            Some(1.0),
            Some(2.0),
            Some(2.0),
            Some(3.0),
            Some(3.0)
        )
    );
    assert_eq!(
        value_of(&rows, "test_latency_milliseconds_sum"),
        vec![130.0]
    );
    assert_eq!(
        value_of(&rows, "test_latency_milliseconds_count"),
        vec![3.0]
    );
    // Exponential histogram: one row per bucket the SDK sent (plus the zero bucket), bounds
    // base^(i+1) with base = 2^(2^-scale), cumulative counts.
    let exp = &report["exp"];
    let scale = exp["scale"].as_i64().unwrap() as i32;
    let offset = exp["offset"].as_i64().unwrap() as i32;
    let counts: Vec<u64> = exp["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    let neg_offset = exp["neg_offset"].as_i64().unwrap() as i32;
    let neg_counts: Vec<u64> = exp["neg_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    // The SDK sends a negative side too (empty buckets when nothing was negative): bucket i
    // covers [-base^(i+1), -base^i), most negative first.
    let mut want: Vec<(f64, f64)> = Vec::new();
    let mut cum = 0.0;
    for (i, c) in neg_counts.iter().enumerate().rev() {
        cum += *c as f64;
        let bound = -((f64::from(neg_offset + i as i32)) * 2f64.powi(-scale)).exp2();
        want.push((bound, cum));
    }
    cum += exp["zero_count"].as_f64().unwrap();
    want.push((0.0, cum));
    for (i, c) in counts.iter().enumerate() {
        cum += *c as f64;
        let bound = ((f64::from(offset + i as i32 + 1)) * 2f64.powi(-scale)).exp2();
        want.push((bound, cum));
    }
    let mut got: Vec<(f64, f64)> = rows
        .iter()
        .filter(|e| e["name"] == "test_exp_seconds_bucket" && label(e, "le") != Some("+Inf"))
        .map(|e| {
            (
                label(e, "le").unwrap().parse::<f64>().unwrap(),
                e["value"].as_f64().unwrap(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for ((gl, gv), (wl, wv)) in got.iter().zip(&want) {
        assert!((gl - wl).abs() <= wl.abs() * 1e-12, "bound {gl} vs {wl}");
        assert_eq!(gv, wv, "count at le={gl}");
    }
    // Every recorded value is counted at or below a bound that holds it.
    let at = |x: f64| got.iter().find(|(l, _)| *l >= x).map(|(_, v)| *v);
    assert_eq!(at(10.0), Some(4.0));
    assert_eq!(at(1.5).map(|v| v >= 1.0), Some(true));
    let inf: Vec<_> = rows
        .iter()
        .filter(|e| e["name"] == "test_exp_seconds_bucket" && label(e, "le") == Some("+Inf"))
        .collect();
    assert_eq!(inf.len(), 1);
    assert_eq!(value_of(&rows, "test_exp_seconds_count"), vec![4.0]);
    assert_eq!(value_of(&rows, "test_exp_seconds_sum"), vec![17.5]);
    // Points in = rows out: 1 + 2 + 1 + 18 + (exp buckets + zero + inf + sum + count).
    let expected = 1 + 2 + 1 + 18 + (neg_counts.len() + counts.len() + 1 + 3);
    assert_eq!(rows.len(), expected, "{instance}: {rows:#?}");
    rows.len()
}

fn check_logs(events: &[Value], service: &str, instance: &str, report: &Value) {
    assert_eq!(report["logs"], json!(["SUCCESS", "SUCCESS"]), "{report}");
    let rows: Vec<_> = events
        .iter()
        .filter(|e| {
            label(e, "service") == Some(service)
                && label(e, "service.instance.id") == Some(instance)
        })
        .collect();
    assert_eq!(rows.len(), 2, "{instance}: {rows:#?}");
    let warn = rows.iter().find(|e| e["severity"] == "warn").unwrap();
    assert_eq!(warn["body"], "disk sda is 91% full");
    assert_eq!(warn["attributes"]["user.id"], "42");
    assert_eq!(warn["attributes"]["severity_text"], "WARN");
    assert_eq!(warn["attributes"]["trace_id"], report["trace_id"]);
    assert_eq!(warn["attributes"]["span_id"], report["span_id"]);
    assert_eq!(warn["attributes"]["otel.scope.name"], "otlp.test.app");
    assert_eq!(label(warn, "service.namespace"), Some("shop"));
    let err = rows.iter().find(|e| e["severity"] == "error").unwrap();
    assert_eq!(err["body"], "payment failed");
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../connectors/tests/corpus/otlp")
            .join(name),
    )
    .unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    ct: &str,
    gz: bool,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut r = c.post(url).header("content-type", ct).body(body);
    if gz {
        r = r.header("content-encoding", "gzip");
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

/// The test is a client: its points must fall inside ingest's window around the wall clock.
#[allow(clippy::disallowed_methods)]
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exporters_and_proto_examples_land_as_exactly_their_rows() {
    python_ok();
    let dir = tempfile::tempdir().unwrap();
    let (http_port, grpc_port) = (aiops_testkit::free_port(), aiops_testkit::free_port());
    let http_listen = format!("127.0.0.1:{http_port}");
    let grpc_listen = format!("127.0.0.1:{grpc_port}");
    let mut a = Aiops::start_env(
        &dir.path().join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &[
            ("AIOPS__OTLP__HTTP_LISTEN", http_listen.as_str()),
            ("AIOPS__OTLP__GRPC_LISTEN", grpc_listen.as_str()),
            ("AIOPS__INGEST__MAX_AGE", "36500d"),
        ],
    );
    let c = reqwest::Client::new();

    // The SDK's OTLP/HTTP exporter on the dedicated listener, its gRPC exporter on the gRPC one.
    let http_report = send(dir.path(), "http", &format!("http://{http_listen}"), "");
    let grpc_report = send(dir.path(), "grpc", &format!("http://{grpc_listen}"), "");

    // OTLP/JSON: the proto repository's examples on the API listener (plain, then gzip on the
    // /api/otlp alias).
    let (s, ct, body) = post(
        &c,
        &a.url("/v1/metrics"),
        "application/json",
        false,
        None,
        corpus("metrics.json"),
    )
    .await;
    assert_eq!(
        (s, ct.as_str()),
        (200, "application/json"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({}));
    let (s, _, body) = post(
        &c,
        &a.url("/api/otlp/v1/logs"),
        "application/json",
        true,
        None,
        gzip(&corpus("logs.json")),
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));

    // Partial success: one point an hour and a half ahead (past ingest.max_future), one now.
    let now = now_ns();
    let partial = json!({"resourceMetrics": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "partial"}}]},
    "scopeMetrics": [{"metrics": [{"name": "p.gauge", "gauge": {"dataPoints": [
        {"asInt": "1", "timeUnixNano": now.to_string()},
        {"asInt": "2", "timeUnixNano": (now + 5_400_000_000_000).to_string()}
    ]}}]}]}]});
    let (s, _, body) = post(
        &c,
        &a.url("/v1/metrics"),
        "application/json",
        false,
        None,
        partial.to_string().into_bytes(),
    )
    .await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "1", "{v}");
    let msg = v["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("timeUnixNano") && msg.contains("ingest.max_future"),
        "{msg}"
    );

    // Malformed bodies: 400 with a google.rpc.Status in the request's encoding; nothing stored.
    let before = a.metric("aiops_ingest_events_total");
    let cases: Vec<(&str, &str, bool, Vec<u8>, &str)> = vec![
        (
            "/v1/metrics",
            "application/x-protobuf",
            false,
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
            "ExportMetricsServiceRequest",
        ),
        (
            "/v1/logs",
            "application/x-protobuf",
            false,
            vec![0x0a, 0x05, 0x01],
            "ExportLogsServiceRequest",
        ),
        (
            "/v1/metrics",
            "application/json",
            false,
            b"{\"resourceMetrics\": [".to_vec(),
            "JSON",
        ),
        (
            "/v1/metrics",
            "application/json",
            false,
            br#"{"resourceMetrics":{"x":1}}"#.to_vec(),
            "resourceMetrics",
        ),
        (
            "/v1/logs",
            "application/json",
            false,
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}"#.to_vec(),
            "traceId",
        ),
        (
            "/v1/metrics",
            "application/x-protobuf",
            true,
            b"definitely not gzip".to_vec(),
            "gzip",
        ),
    ];
    for (path, ct, gz, body, want) in cases {
        for url in [a.url(path), format!("http://{http_listen}{path}")] {
            let (s, got_ct, answer) = post(&c, &url, ct, gz, None, body.clone()).await;
            assert_eq!(s, 400, "{url} {want}: {}", String::from_utf8_lossy(&answer));
            assert_eq!(
                got_ct, ct,
                "{url}: the status comes in the request's encoding"
            );
            let (code, message) = if ct == "application/json" {
                let v: Value = serde_json::from_slice(&answer).unwrap();
                (
                    v["code"].as_i64().unwrap() as i32,
                    v["message"].as_str().unwrap().to_string(),
                )
            } else {
                let st = RpcStatus::decode(answer.as_slice()).unwrap();
                (st.code, st.message)
            };
            assert_eq!(code, 3, "INVALID_ARGUMENT");
            assert!(message.contains(want), "{url}: {message:?} lacks {want:?}");
        }
    }
    // Over gRPC, a point with an unspecified temporality comes back as partial success.
    let mut client = MetricsServiceClient::connect(format!("http://{grpc_listen}"))
        .await
        .unwrap();
    let bad: ExportMetricsServiceRequest = aiops_connectors::sources::otlp::json::metrics_request(
        &serde_json::to_vec(&json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "x", "sum": {"aggregationTemporality": 0, "dataPoints": [{"asInt": "1", "timeUnixNano": now.to_string()}]}}]}]}]})).unwrap(),
    ).unwrap();
    let resp = client.export(bad).await.unwrap().into_inner();
    let p = resp.partial_success.unwrap();
    assert_eq!(p.rejected_data_points, 1);
    assert!(
        p.error_message.contains("aggregationTemporality"),
        "{}",
        p.error_message
    );
    assert_eq!(
        a.metric("aiops_ingest_events_total"),
        before,
        "refused requests stored nothing"
    );

    a.stop();
    let metrics = replay_json(&a.data_dir, "embedded", "metrics");
    let logs = replay_json(&a.data_dir, "embedded", "logs");

    let n_http = check_metrics(&metrics, "http-1", &http_report);
    let n_grpc = check_metrics(&metrics, "grpc-1", &grpc_report);
    check_logs(&logs, "otlp-test", "http-1", &http_report);
    check_logs(&logs, "otlp-test", "grpc-1", &grpc_report);
    // The proto examples: 4 points → 12 rows; 1 log record.
    let example: Vec<_> = metrics
        .iter()
        .filter(|e| label(e, "job") == Some("my.service"))
        .collect();
    assert_eq!(example.len(), 12, "{example:#?}");
    let example_logs: Vec<_> = logs
        .iter()
        .filter(|e| label(e, "service") == Some("my.service"))
        .collect();
    assert_eq!(example_logs.len(), 1);
    assert_eq!(
        example_logs[0]["attributes"]["trace_id"],
        "5b8efff798038103d269b633813fc60c"
    );
    // Partial success stored the one valid point only.
    let partial: Vec<_> = metrics
        .iter()
        .filter(|e| label(e, "job") == Some("partial"))
        .collect();
    assert_eq!(partial.len(), 1);
    assert_eq!(partial[0]["value"], 1.0);
    // Nothing else: every metric row is one of the above.
    assert_eq!(metrics.len(), n_http + n_grpc + 12 + 1, "unexpected rows");
    assert_eq!(logs.len(), 2 + 2 + 1);
}

fn bootstrap_token(a: &Aiops) -> String {
    let text = std::fs::read_to_string(&a.stderr).unwrap();
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("aiops_") && l.len() > 40)
        .expect("the first start prints an admin token")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_otlp_listener_needs_an_ingest_token() {
    let dir = tempfile::tempdir().unwrap();
    let (http_port, grpc_port) = (aiops_testkit::free_port(), aiops_testkit::free_port());
    let http_listen = format!("127.0.0.1:{http_port}");
    let grpc_listen = format!("127.0.0.1:{grpc_port}");
    let mut a = Aiops::start_env(
        &dir.path().join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &[
            ("AIOPS_TEST_SECURE", "1"),
            ("AIOPS__AUTH__OPEN_INGEST_ON_LOOPBACK", "false"),
            ("AIOPS__OTLP__HTTP_LISTEN", http_listen.as_str()),
            ("AIOPS__OTLP__GRPC_LISTEN", grpc_listen.as_str()),
        ],
    );
    let c = reqwest::Client::new();
    let admin = bootstrap_token(&a);
    let mut tokens = std::collections::BTreeMap::new();
    for role in ["viewer", "ingest"] {
        let r = c
            .post(a.url("/api/tokens"))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("otlp-{role}"), "role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.unwrap();
        tokens.insert(role, v["token"].as_str().unwrap().to_string());
    }
    let body = corpus("metrics.json");
    for base in [a.url(""), format!("http://{http_listen}")] {
        let url = format!("{base}/v1/metrics");
        let (s, _, _) = post(&c, &url, "application/json", false, None, body.clone()).await;
        assert_eq!(s, 401, "{url} without a token");
        let (s, _, _) = post(
            &c,
            &url,
            "application/json",
            false,
            Some("aiops_not_a_token_at_all_0000000000000000"),
            body.clone(),
        )
        .await;
        assert_eq!(s, 401, "{url} with an unknown token");
        let (s, _, _) = post(
            &c,
            &url,
            "application/json",
            false,
            Some(&tokens["viewer"]),
            body.clone(),
        )
        .await;
        assert_eq!(s, 403, "{url} with a viewer token");
        let (s, _, answer) = post(
            &c,
            &url,
            "application/json",
            false,
            Some(&tokens["ingest"]),
            body.clone(),
        )
        .await;
        assert_eq!(
            s,
            200,
            "{url} with an ingest token: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    // gRPC: the token travels as `authorization` metadata.
    let req: ExportMetricsServiceRequest =
        aiops_connectors::sources::otlp::json::metrics_request(&body).unwrap();
    let mut client = MetricsServiceClient::connect(format!("http://{grpc_listen}"))
        .await
        .unwrap();
    let e = client.export(req.clone()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e}");
    let with = |t: &str| {
        let mut r = tonic::Request::new(req.clone());
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
        r
    };
    let e = client.export(with(&tokens["viewer"])).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");
    client.export(with(&tokens["ingest"])).await.unwrap();
    // The Python gRPC exporter with its token.
    python_ok();
    let report = send(
        dir.path(),
        "grpc",
        &format!("http://{grpc_listen}"),
        &tokens["ingest"],
    );
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r == true),
        "{report}"
    );
    a.stop();
    let metrics = replay_json(&a.data_dir, "embedded", "metrics");
    // Three accepted copies of the example (two HTTP listeners, one gRPC): the same body is the
    // same data, stored once per content id on the HTTP side; gRPC re-encodes the message.
    let example = metrics
        .iter()
        .filter(|e| e["labels"]["job"] == "my.service")
        .count();
    assert!(example >= 12 && example % 12 == 0, "{example}");
    assert!(metrics.iter().any(|e| e["labels"]["instance"] == "grpc-1"));
}
