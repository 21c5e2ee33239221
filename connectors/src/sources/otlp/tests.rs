//! The OTLP mapping without a network: the proto repository's example files, delta totals,
//! exponential bucket bounds, names, severities, partial rejections and malformed bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::delta::{DeltaStage, DeltaState, ExpAcc, ExpBuckets};
use super::metrics::{STALE_NAN, exponential_buckets, exponential_upper_bound};
use super::names::{NameKind, label_name, metric_name, severity, severity_word};
use super::proto::collector::logs::v1::ExportLogsServiceRequest;
use super::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use super::proto::common::v1::{AnyValue, KeyValue, any_value};
use super::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use super::proto::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use super::proto::resource::v1::Resource;
use super::*;
use crate::sources::{IngestLimits, PushDecoder, PushRequest, SourceBatch};
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
use aiops_schemas::arrow_array::{Array, RecordBatch};
use prost::Message as _;
use std::io::Write as _;

/// One metric row: name, labels (sorted as stored), value.
type Row = (String, Vec<(String, String)>, f64);

fn map_strings(b: &RecordBatch, col: usize, row: usize) -> Vec<(String, String)> {
    let m = b.column(col).as_map();
    let entries = m.value(row);
    let k = entries.column(0).as_string::<i32>();
    let v = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .map(|i| (k.value(i).to_string(), v.value(i).to_string()))
        .collect()
}

fn metric_rows(out: &[SourceBatch]) -> Vec<Row> {
    let mut rows = Vec::new();
    for sb in out {
        let b = &sb.batch;
        let names = b.column(1).as_string::<i32>();
        let values = b.column(3).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            rows.push((
                names.value(i).to_string(),
                map_strings(b, 2, i),
                values.value(i),
            ));
        }
    }
    rows
}

fn label<'a>(r: &'a Row, k: &str) -> Option<&'a str> {
    r.1.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn req(ct: Option<&'static str>, enc: Option<&'static str>) -> PushRequest<'static> {
    PushRequest {
        content_type: ct,
        content_encoding: enc,
        now_ms: 1_800_000_000_000,
        limits: IngestLimits::any_time(),
    }
}

fn corpus(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/otlp")
        .join(name);
    std::fs::read(p).unwrap()
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        key_strindex: 0,
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("service.namespace", "shop"),
                    kv("service.instance.id", "pod-1"),
                    kv("k8s.pod.name", "checkout-7d"),
                ],
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn number(t_ms: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: 0,
        time_unix_nano: t_ms * 1_000_000,
        exemplars: Vec::new(),
        flags: 0,
        value: Some(number_data_point::Value::AsDouble(v)),
    }
}

fn sum(name: &str, temporality: i32, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: String::new(),
        unit: String::new(),
        metadata: Vec::new(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: true,
        })),
    }
}

/// Decodes a request as the engine does and commits its delta totals (as once stored).
fn decode_metrics(d: &OtlpDecoder, r: &ExportMetricsServiceRequest) -> Vec<Row> {
    let body = r.encode_to_vec();
    let (m, stage) = d
        .decode_body(&body, &req(Some("application/x-protobuf"), None))
        .unwrap();
    assert_eq!(m.first_error, None);
    d.commit(stage);
    metric_rows(&m.batches)
}

#[test]
fn proto_repository_metrics_example_decodes_every_point() {
    let d = OtlpDecoder::metrics(100);
    let out = d
        .decode(
            &corpus("metrics.json"),
            &req(Some("application/json"), None),
        )
        .unwrap();
    let rows = metric_rows(&out);
    // 4 points: a delta counter (1 row), a gauge (1), a histogram with one bound (2 buckets +
    // sum + count), an exponential histogram (zero bucket, 2 positive buckets, +Inf, sum, count).
    assert_eq!(rows.len(), 12, "{rows:#?}");
    let counter = rows.iter().find(|r| r.0 == "my_counter_total").unwrap();
    assert_eq!(counter.2, 5.0);
    assert_eq!(label(counter, "job"), Some("my.service"));
    assert_eq!(label(counter, "my_counter_attr"), Some("some value"));
    assert_eq!(label(counter, "otel_scope_name"), Some("my.library"));
    assert_eq!(label(counter, "otel_scope_version"), Some("1.0.0"));
    let gauge = rows.iter().find(|r| r.0 == "my_gauge_ratio").unwrap();
    assert_eq!(gauge.2, 10.0);
    let hist: Vec<_> = rows
        .iter()
        .filter(|r| r.0.starts_with("my_histogram"))
        .map(|r| (r.0.as_str(), label(r, "le"), r.2))
        .collect();
    assert_eq!(
        hist,
        vec![
            ("my_histogram_bucket", Some("1"), 1.0),
            ("my_histogram_bucket", Some("+Inf"), 2.0),
            ("my_histogram_sum", None, 2.0),
            ("my_histogram_count", None, 2.0),
        ]
    );
    let exp: Vec<_> = rows
        .iter()
        .filter(|r| r.0.starts_with("my_exponential_histogram"))
        .map(|r| (r.0.as_str(), label(r, "le"), r.2))
        .collect();
    // scale 0: base 2; zero bucket 1; positive offset 1: bucket 1 = (2, 4] count 0, bucket 2 =
    // (4, 8] count 2.
    assert_eq!(
        exp,
        vec![
            ("my_exponential_histogram_bucket", Some("0"), 1.0),
            ("my_exponential_histogram_bucket", Some("4"), 1.0),
            ("my_exponential_histogram_bucket", Some("8"), 3.0),
            ("my_exponential_histogram_bucket", Some("+Inf"), 3.0),
            ("my_exponential_histogram_sum", None, 10.0),
            ("my_exponential_histogram_count", None, 3.0),
        ]
    );
    // Times: 1544712660300000000 ns.
    let ts = out[0]
        .batch
        .column(0)
        .as_primitive::<TimestampMillisecondType>();
    assert!(ts.iter().all(|t| t == Some(1_544_712_660_300)));
}

#[test]
fn proto_repository_logs_example_decodes() {
    let d = OtlpDecoder::logs();
    let out = d
        .decode(&corpus("logs.json"), &req(Some("application/json"), None))
        .unwrap();
    assert_eq!(out.len(), 1);
    let b = &out[0].batch;
    assert_eq!(b.num_rows(), 1);
    assert_eq!(
        b.column(0)
            .as_primitive::<TimestampMillisecondType>()
            .value(0),
        1_544_712_660_300
    );
    assert_eq!(b.column(1).as_string::<i32>().value(0), "info");
    assert_eq!(
        b.column(2).as_string::<i32>().value(0),
        "Example log record"
    );
    assert_eq!(
        map_strings(b, 3, 0),
        vec![("service".to_string(), "my.service".to_string())]
    );
    let attrs = map_strings(b, 4, 0);
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("string.attribute"), Some("some string"));
    assert_eq!(get("boolean.attribute"), Some("true"));
    assert_eq!(get("int.attribute"), Some("10"));
    assert_eq!(get("double.attribute"), Some("637.704"));
    assert_eq!(get("array.attribute"), Some(r#"["many","values"]"#));
    assert_eq!(
        get("map.attribute"),
        Some(r#"{"some.map.key":"some value"}"#)
    );
    assert_eq!(get("severity_text"), Some("Information"));
    assert_eq!(get("severity_number"), Some("10"));
    assert_eq!(get("trace_id"), Some("5b8efff798038103d269b633813fc60c"));
    assert_eq!(get("span_id"), Some("eee19b7ec3c1b174"));
    assert_eq!(get("otel.scope.name"), Some("my.library"));
}

#[test]
fn json_and_protobuf_of_one_request_give_the_same_rows() {
    let json = corpus("metrics.json");
    let parsed = json::metrics_request(&json).unwrap();
    let pb = parsed.encode_to_vec();
    let a = metric_rows(
        &OtlpDecoder::metrics(10)
            .decode(&json, &req(Some("application/json"), None))
            .unwrap(),
    );
    let b = metric_rows(
        &OtlpDecoder::metrics(10)
            .decode(&pb, &req(Some("application/x-protobuf"), None))
            .unwrap(),
    );
    assert_eq!(a, b);
    // gzip of either gives the same again.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&pb).unwrap();
    let c = metric_rows(
        &OtlpDecoder::metrics(10)
            .decode(
                &gz.finish().unwrap(),
                &req(Some("application/x-protobuf"), Some("gzip")),
            )
            .unwrap(),
    );
    assert_eq!(a, c);
}

#[test]
fn resource_attributes_become_job_instance_and_labels() {
    let d = OtlpDecoder::metrics(10);
    let rows = decode_metrics(
        &d,
        &request(vec![sum(
            "http.requests",
            2,
            vec![number(
                1_000,
                7.0,
                vec![kv("http.method", "GET"), kv("http_method", "x")],
            )],
        )]),
    );
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.0, "http_requests_total");
    assert_eq!(label(r, "job"), Some("shop/checkout"));
    assert_eq!(label(r, "instance"), Some("pod-1"));
    assert_eq!(label(r, "k8s_pod_name"), Some("checkout-7d"));
    // Two keys that sanitise to one name: values joined in key order.
    assert_eq!(label(r, "http_method"), Some("GET;x"));
    let names: Vec<_> = r.1.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "labels are stored sorted");
}

#[test]
fn delta_sums_are_accumulated_per_series_and_committed_only_when_told() {
    let d = OtlpDecoder::metrics(10);
    let r = |v: f64, host: &str| {
        request(vec![sum(
            "jobs",
            1,
            vec![number(1_000, v, vec![kv("host", host)])],
        )])
    };
    assert!(has_delta(&r(1.0, "a")));
    // The generic decoder path does not commit: the same body decodes the same way twice.
    let body = r(5.0, "a").encode_to_vec();
    let pb = req(Some("application/x-protobuf"), None);
    for _ in 0..2 {
        assert_eq!(metric_rows(&d.decode(&body, &pb).unwrap())[0].2, 5.0);
    }
    assert_eq!(decode_metrics(&d, &r(5.0, "a"))[0].2, 5.0);
    assert_eq!(decode_metrics(&d, &r(3.0, "a"))[0].2, 8.0);
    // Another series has its own total.
    assert_eq!(decode_metrics(&d, &r(2.0, "b"))[0].2, 2.0);
    // Staged but not committed (the log refused the request): the retry starts from the same
    // committed total, so nothing is counted twice.
    let lim = IngestLimits::any_time();
    let (m, stage) = d.map_metrics(&r(4.0, "a"), 0, &lim).unwrap();
    assert_eq!(metric_rows(&m.batches)[0].2, 12.0);
    drop(stage);
    let (m, stage) = d.map_metrics(&r(4.0, "a"), 0, &lim).unwrap();
    assert_eq!(metric_rows(&m.batches)[0].2, 12.0);
    d.commit(stage);
    assert_eq!(decode_metrics(&d, &r(1.0, "a"))[0].2, 13.0);
    assert_eq!(d.delta_series(), 2);
    // Cumulative sums are not touched by the state.
    let c = request(vec![sum(
        "jobs",
        2,
        vec![number(1_000, 1.0, vec![kv("host", "a")])],
    )]);
    assert!(!has_delta(&c));
    assert_eq!(decode_metrics(&d, &c)[0].2, 1.0);
}

#[test]
fn delta_state_is_bounded() {
    let mut s = DeltaState::new(4);
    for i in 0..10 {
        let mut st = DeltaStage::default();
        st.add(&s, format!("k{i}"), super::delta::Acc::Sum(1.0));
        s.commit(st);
        assert!(s.len() <= 4, "{}", s.len());
    }
}

#[test]
fn exponential_bounds_follow_the_specification() {
    // base = 2^(2^-scale); bucket i covers (base^i, base^(i+1)].
    assert_eq!(exponential_upper_bound(0, 0), 2.0);
    assert_eq!(exponential_upper_bound(0, 1), 4.0);
    assert_eq!(exponential_upper_bound(0, -1), 1.0);
    assert_eq!(exponential_upper_bound(-1, 0), 4.0);
    assert_eq!(exponential_upper_bound(-2, 1), 256.0);
    let b = exponential_upper_bound(1, 0);
    assert!((b - 2f64.sqrt()).abs() < 1e-12, "{b}");
    let b = exponential_upper_bound(3, 7);
    assert!((b - 2.0).abs() < 1e-12, "{b}");
    // Negative buckets, zero bucket, positive buckets, cumulative.
    let h = ExpAcc {
        scale: 0,
        zero_count: 1,
        zero_threshold: 0.0,
        positive: ExpBuckets {
            offset: 0,
            counts: vec![2, 3],
        },
        negative: ExpBuckets {
            offset: 1,
            counts: vec![4, 5],
        },
        count: 15,
        sum: Some(0.0),
    };
    // negative index 2 covers [-8, -4): le -4 → 5; index 1 covers [-4, -2): le -2 → 9;
    // zero: le 0 → 10; positive index 0 (1, 2] → 12; index 1 (2, 4] → 15.
    assert_eq!(
        exponential_buckets(&h),
        vec![(-4.0, 5), (-2.0, 9), (0.0, 10), (2.0, 12), (4.0, 15)]
    );
}

#[test]
fn delta_exponential_histograms_merge_at_the_coarser_scale() {
    let point = |scale: i32, offset: i32, counts: Vec<u64>| ExponentialHistogramDataPoint {
        attributes: vec![],
        start_time_unix_nano: 0,
        time_unix_nano: 1_000_000_000,
        count: counts.iter().sum(),
        sum: Some(1.0),
        scale,
        zero_count: 0,
        positive: Some(exponential_histogram_data_point::Buckets {
            offset,
            bucket_counts: counts,
        }),
        negative: None,
        flags: 0,
        exemplars: vec![],
        min: None,
        max: None,
        zero_threshold: 0.0,
    };
    let r = |p| {
        request(vec![Metric {
            name: "latency".into(),
            description: String::new(),
            unit: "s".into(),
            metadata: vec![],
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![p],
                aggregation_temporality: 1,
            })),
        }])
    };
    let d = OtlpDecoder::metrics(10);
    // Scale 1: buckets 2 and 3 = (2, 2.83], (2.83, 4].
    let first = decode_metrics(&d, &r(point(1, 2, vec![1, 1])));
    assert!(first.iter().all(|r| r.0.starts_with("latency_seconds")));
    // Scale 0: bucket 1 = (2, 4] gets 3 more; merged at scale 0: (2, 4] holds 5.
    let rows = decode_metrics(&d, &r(point(0, 1, vec![3])));
    let buckets: Vec<_> = rows
        .iter()
        .filter(|r| r.0 == "latency_seconds_bucket")
        .map(|r| (label(r, "le").unwrap().to_string(), r.2))
        .collect();
    assert_eq!(
        buckets,
        vec![
            ("0".to_string(), 0.0),
            ("4".to_string(), 5.0),
            ("+Inf".to_string(), 5.0)
        ]
    );
    let count = rows
        .iter()
        .find(|r| r.0 == "latency_seconds_count")
        .unwrap();
    assert_eq!(count.2, 5.0);
}

#[test]
fn names_are_sanitised_with_units_and_one_total() {
    assert_eq!(
        metric_name("http.server.duration", "ms", NameKind::Other),
        "http_server_duration_milliseconds"
    );
    assert_eq!(
        metric_name("requests", "", NameKind::Counter),
        "requests_total"
    );
    assert_eq!(
        metric_name("requests_total", "", NameKind::Counter),
        "requests_total"
    );
    assert_eq!(
        metric_name("requests.total", "{request}", NameKind::Counter),
        "requests_total"
    );
    assert_eq!(
        metric_name("cpu.utilization", "1", NameKind::Gauge),
        "cpu_utilization_ratio"
    );
    assert_eq!(
        metric_name("cpu.count", "1", NameKind::Counter),
        "cpu_count_total"
    );
    assert_eq!(
        metric_name("net.io", "By/s", NameKind::Gauge),
        "net_io_bytes_per_second"
    );
    assert_eq!(
        metric_name("disk.io.bytes", "By", NameKind::Counter),
        "disk_io_bytes_total"
    );
    assert_eq!(metric_name("2xx-rate", "", NameKind::Gauge), "_2xx_rate");
    assert_eq!(metric_name("a..b", "", NameKind::Gauge), "a_b");
    assert_eq!(metric_name("ns:sub", "", NameKind::Gauge), "ns:sub");
    assert_eq!(label_name("k8s.pod.name"), "k8s_pod_name");
    assert_eq!(label_name("0abc"), "key_0abc");
    assert_eq!(label_name("__x"), "key__x");
    assert_eq!(label_name("host"), "host");
}

#[test]
fn severity_numbers_map_to_the_specification_ranges() {
    for (n, w) in [
        (1, "trace"),
        (4, "trace"),
        (5, "debug"),
        (8, "debug"),
        (9, "info"),
        (12, "info"),
        (13, "warn"),
        (16, "warn"),
        (17, "error"),
        (20, "error"),
        (21, "fatal"),
        (24, "fatal"),
    ] {
        assert_eq!(severity_word(n), Some(w), "{n}");
        assert_eq!(severity(n, "whatever"), w);
    }
    assert_eq!(severity_word(0), None);
    assert_eq!(severity_word(25), None);
    assert_eq!(severity(0, "WARNING"), "warn");
    assert_eq!(severity(0, "Error"), "error");
    assert_eq!(severity(0, ""), "info");
    assert_eq!(severity(0, "chatty"), "info");
}

#[test]
fn invalid_points_are_rejected_alone_for_partial_success() {
    let d = OtlpDecoder::metrics(10);
    let now = 1_800_000_000_000u64;
    let r = request(vec![
        sum(
            "ok",
            2,
            vec![number(now, 1.0, vec![]), number(now - 1, 2.0, vec![])],
        ),
        // Two years old: outside the default window.
        sum(
            "old",
            2,
            vec![number(now - 2 * 365 * 86_400_000, 1.0, vec![])],
        ),
        // Unspecified temporality.
        sum("unspecified", 0, vec![number(now, 1.0, vec![])]),
    ]);
    let limits = IngestLimits::default();
    let (m, _) = d.map_metrics(&r, now as i64, &limits).unwrap();
    assert_eq!((m.accepted, m.rejected, m.rows), (2, 2, 2));
    let msg = m.rejection_message("data points").unwrap();
    assert!(msg.starts_with("2 of 4 data points rejected"), "{msg}");
    assert!(
        msg.contains("timeUnixNano") && msg.contains("ingest.max_age"),
        "{msg}"
    );
    // Through the trait, the whole body is refused.
    let e = d
        .decode(
            &r.encode_to_vec(),
            &PushRequest {
                now_ms: now as i64,
                limits,
                ..req(Some("application/x-protobuf"), None)
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("2 rejected"), "{e}");
}

#[test]
fn no_recorded_value_is_a_stale_marker_and_summaries_have_quantiles() {
    let d = OtlpDecoder::metrics(10);
    let mut p = number(1_000, 3.0, vec![]);
    p.flags = 1;
    let g = Metric {
        name: "temp".into(),
        description: String::new(),
        unit: "Cel".into(),
        metadata: vec![],
        data: Some(Data::Gauge(Gauge {
            data_points: vec![p],
        })),
    };
    let s = Metric {
        name: "rpc.latency".into(),
        description: String::new(),
        unit: String::new(),
        metadata: vec![],
        data: Some(Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                attributes: vec![],
                start_time_unix_nano: 0,
                time_unix_nano: 1_000_000_000,
                count: 4,
                sum: 2.5,
                quantile_values: vec![
                    ValueAtQuantile {
                        quantile: 0.5,
                        value: 0.4,
                    },
                    ValueAtQuantile {
                        quantile: 0.99,
                        value: 1.2,
                    },
                ],
                flags: 0,
            }],
        })),
    };
    let rows = decode_metrics(&d, &request(vec![g, s]));
    assert_eq!(rows[0].0, "temp_celsius");
    assert_eq!(rows[0].2.to_bits(), STALE_NAN.to_bits());
    let got: Vec<_> = rows[1..]
        .iter()
        .map(|r| (r.0.as_str(), label(r, "quantile"), r.2))
        .collect();
    assert_eq!(
        got,
        vec![
            ("rpc_latency", Some("0.5"), 0.4),
            ("rpc_latency", Some("0.99"), 1.2),
            ("rpc_latency_sum", None, 2.5),
            ("rpc_latency_count", None, 4.0),
        ]
    );
}

#[test]
fn malformed_bodies_are_refused_naming_the_problem() {
    let d = OtlpDecoder::metrics(10);
    let pb = req(Some("application/x-protobuf"), None);
    let e = d.decode(&[0xff, 0xff, 0xff, 0xff], &pb).unwrap_err();
    assert_eq!(e.reason(), "bad_protobuf");
    assert!(e.to_string().contains("ExportMetricsServiceRequest"), "{e}");
    let js = req(Some("application/json"), None);
    let e = d.decode(b"{\"resourceMetrics\": [", &js).unwrap_err();
    assert_eq!(e.reason(), "bad_json");
    let e = d
        .decode(
            br#"{"resourceMetrics":[{"scopeMetrics":{"metrics":[]}}]}"#,
            &js,
        )
        .unwrap_err();
    assert_eq!(e.reason(), "wrong_type");
    assert!(
        e.to_string().contains("resourceMetrics[0]") && e.to_string().contains("scopeMetrics"),
        "{e}"
    );
    let e = d
        .decode(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asInt":"12x"}]}}]}]}]}"#,
            &js,
        )
        .unwrap_err();
    assert!(e.to_string().contains("asInt"), "{e}");
    let e = d
        .decode(
            b"not gzip",
            &req(Some("application/x-protobuf"), Some("gzip")),
        )
        .unwrap_err();
    assert_eq!(e.reason(), "bad_gzip");
    let e = d.decode(b"{}", &req(Some("text/plain"), None)).unwrap_err();
    assert_eq!(e.reason(), "unsupported_media_type");
    // A gzip bomb stops at the decoded-size limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 4 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    let mut small = req(Some("application/x-protobuf"), Some("gzip"));
    small.limits.max_decoded_bytes = 1 << 20;
    let e = d.decode(&bomb, &small).unwrap_err();
    assert_eq!(e.reason(), "too_large");
    // Snake-case proto names are read too; unknown fields are ignored (the specification).
    let ok = br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"name":"x","gauge":{"data_points":[{"as_int":"12","time_unix_nano":1000000000000,"someFutureField":1}]}}]}]}]}"#;
    let rows = metric_rows(&d.decode(ok, &js).unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, 12.0);
}

#[test]
fn logs_map_time_severity_body_and_ids() {
    let rec = |t: u64, observed: u64, n: i32, body: Option<any_value::Value>| LogRecord {
        time_unix_nano: t,
        observed_time_unix_nano: observed,
        severity_number: n,
        severity_text: String::new(),
        body: body.map(|v| AnyValue { value: Some(v) }),
        attributes: vec![kv("user", "42")],
        dropped_attributes_count: 0,
        flags: 0,
        trace_id: vec![0xab; 16],
        span_id: vec![],
        event_name: String::new(),
    };
    let r = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api"), kv("host.name", "h1")],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: vec![
                    rec(
                        5_000_000,
                        0,
                        17,
                        Some(any_value::Value::StringValue("boom".into())),
                    ),
                    rec(0, 7_000_000, 13, Some(any_value::Value::IntValue(3))),
                    rec(0, 0, 0, None),
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let d = OtlpDecoder::logs();
    let out = d
        .decode(
            &r.encode_to_vec(),
            &req(Some("application/x-protobuf"), None),
        )
        .unwrap();
    let b = &out[0].batch;
    assert_eq!(b.num_rows(), 3);
    let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
    assert_eq!(
        (ts.value(0), ts.value(1), ts.value(2)),
        (5, 7, 1_800_000_000_000)
    );
    let sev = b.column(1).as_string::<i32>();
    assert_eq!(
        (sev.value(0), sev.value(1), sev.value(2)),
        ("error", "warn", "info")
    );
    let body = b.column(2).as_string::<i32>();
    assert_eq!(
        (body.value(0), body.value(1), body.value(2)),
        ("boom", "3", "")
    );
    assert_eq!(
        map_strings(b, 3, 0),
        vec![
            ("service".to_string(), "api".to_string()),
            ("host.name".to_string(), "h1".to_string())
        ]
    );
    let attrs = map_strings(b, 4, 0);
    assert!(attrs.contains(&("user".into(), "42".into())));
    assert!(attrs.contains(&("trace_id".into(), "ab".repeat(16))));
    assert!(
        !attrs.iter().any(|(k, _)| k == "span_id"),
        "empty ids are left out"
    );
}

#[test]
fn protobuf_bombs_are_refused_before_decoding() {
    let d = OtlpDecoder::metrics(10);
    let mut small = req(Some("application/x-protobuf"), None);
    small.limits.max_series = 100;
    // 100000 empty ResourceMetrics: 2 bytes each on the wire.
    let bomb = [0x0a, 0x00].repeat(100_000);
    let e = d.decode(&bomb, &small).unwrap_err();
    assert_eq!(e.reason(), "too_large");
    assert!(
        e.to_string().contains("ingest.max_series_per_request"),
        "{e}"
    );
    // 101 data points in one metric: over the point limit.
    let points: Vec<NumberDataPoint> = (0..101).map(|i| number(1_000, i as f64, vec![])).collect();
    let r = request(vec![Metric {
        name: "g".into(),
        description: String::new(),
        unit: String::new(),
        metadata: vec![],
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
    }]);
    let e = d.decode(&r.encode_to_vec(), &small).unwrap_err();
    assert!(e.to_string().contains("data points"), "{e}");
    // 100 points are fine.
    let mut ok = r.clone();
    if let Some(Data::Gauge(g)) = &mut ok.resource_metrics[0].scope_metrics[0].metrics[0].data {
        g.data_points.truncate(100);
    }
    assert_eq!(
        metric_rows(&d.decode(&ok.encode_to_vec(), &small).unwrap()).len(),
        100
    );
    let logs = OtlpDecoder::logs();
    let bomb = [0x0a, 0x02, 0x12, 0x00].repeat(50_000);
    let e = logs.decode(&bomb, &small).unwrap_err();
    assert_eq!(e.reason(), "too_large");
}
