//! Round trips and every rejection of the remote_write decoder.

use super::*;
use crate::error::DecodeError;
use crate::sources::{PushDecoder, PushRequest};
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
use proptest::prelude::*;
use prost::Message as _;

fn req() -> PushRequest<'static> {
    PushRequest {
        content_type: Some("application/x-protobuf"),
        content_encoding: Some("snappy"),
        now_ms: 0,
        limits: crate::sources::IngestLimits::any_time(),
    }
}

fn series(name: &str, host: &str, samples: &[(i64, f64)]) -> Series {
    (
        vec![
            ("__name__".into(), name.into()),
            ("host".into(), host.into()),
        ],
        samples.to_vec(),
    )
}

#[test]
fn round_trip_keeps_names_labels_times_values() {
    let body = encode_write_request(&[
        series("up", "a", &[(1000, 1.0), (2000, 0.0)]),
        series("cpu", "b", &[(1500, f64::NAN)]),
    ]);
    let out = RemoteWriteDecoder.decode(&body, &req()).unwrap();
    assert_eq!(out.len(), 1);
    let b = &out[0].batch;
    assert_eq!(b.num_rows(), 3);
    assert_eq!(out[0].time_range, Some((1000, 2000)));
    let names = b.column(1).as_string::<i32>();
    assert_eq!(names.value(0), "up");
    assert_eq!(names.value(2), "cpu");
    let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts.value(1), 2000);
    let v = b.column(3).as_primitive::<Float64Type>();
    assert!(v.value(2).is_nan());
    let labels = b.column(2).as_map();
    assert_eq!(labels.value(0).len(), 1, "__name__ is not a label");
}

#[test]
fn rejections_name_the_problem() {
    let e = RemoteWriteDecoder
        .decode(b"definitely not snappy", &req())
        .unwrap_err();
    assert_eq!(e.reason(), "bad_snappy");
    let garbage = snap::raw::Encoder::new()
        .compress_vec(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])
        .unwrap();
    let e = RemoteWriteDecoder.decode(&garbage, &req()).unwrap_err();
    assert_eq!(e.reason(), "bad_protobuf");
    assert!(e.to_string().contains("protobuf"), "{e}");
    let nameless = encode_write_request(&[(vec![("job".into(), "x".into())], vec![(1, 1.0)])]);
    let e = RemoteWriteDecoder.decode(&nameless, &req()).unwrap_err();
    assert_eq!(
        e,
        DecodeError::MissingField {
            at: "series 0".into(),
            field: "__name__"
        }
    );
    let gz = PushRequest {
        content_encoding: Some("gzip"),
        ..req()
    };
    let body = encode_write_request(&[series("up", "a", &[(1, 1.0)])]);
    assert_eq!(
        RemoteWriteDecoder.decode(&body, &gz).unwrap_err().reason(),
        "unsupported_media_type"
    );
}

#[test]
fn empty_request_is_no_batch() {
    let body = encode_write_request(&[]);
    assert!(RemoteWriteDecoder.decode(&body, &req()).unwrap().is_empty());
}

proptest! {
    #[test]
    fn any_series_round_trip(data in proptest::collection::vec(
        ("[a-z_]{1,12}", "[ -~]{0,12}", proptest::collection::vec((any::<i64>(), any::<f64>()), 1..5)), 1..20)) {
        let input: Vec<_> = data.iter().map(|(n, h, s)| series(n, h, s)).collect();
        let out = RemoteWriteDecoder.decode(&encode_write_request(&input), &req()).unwrap();
        let b = &out[0].batch;
        let total: usize = input.iter().map(|s| s.1.len()).sum();
        prop_assert_eq!(b.num_rows(), total);
        let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
        let v = b.column(3).as_primitive::<Float64Type>();
        let mut row = 0;
        for (_, samples) in &input {
            for (t, x) in samples {
                prop_assert_eq!(ts.value(row), *t);
                prop_assert!(v.value(row) == *x || (x.is_nan() && v.value(row).is_nan()));
                row += 1;
            }
        }
    }
}

fn req_with(limits: crate::sources::IngestLimits, now_ms: i64) -> PushRequest<'static> {
    PushRequest {
        limits,
        now_ms,
        ..req()
    }
}

#[test]
fn a_bomb_of_empty_series_is_refused_while_counting_not_after_allocating() {
    // 3 million empty `TimeSeries` (2 bytes each on the wire, a 48-byte struct each once decoded
    // into a `WriteRequest`): what took ~1.4 GB of RSS before series were decoded one by one.
    let raw: Vec<u8> = [0x0a, 0x00].repeat(3_000_000);
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    assert!(body.len() < 400_000, "{}", body.len());
    let e = RemoteWriteDecoder
        .decode(&body, &req_with(Default::default(), 0))
        .unwrap_err();
    assert_eq!(e.reason(), "too_large", "{e}");
    assert!(
        e.to_string().contains("100000 series") && e.to_string().contains("max_series_per_request"),
        "{e}"
    );
    // A declared decompressed size over the limit is refused before decompressing, with the
    // compression ratio named.
    let limits = crate::sources::IngestLimits {
        max_decoded_bytes: 1 << 20,
        ..Default::default()
    };
    let e = RemoteWriteDecoder
        .decode(&body, &req_with(limits, 0))
        .unwrap_err();
    assert!(
        matches!(e, DecodeError::TooLarge { size: 6_000_000, limit: 1_048_576, ratio, .. } if ratio > 10),
        "{e:?}"
    );
    assert!(e.to_string().contains(":1 from the"), "{e}");
}

#[test]
fn labels_and_timestamps_are_validated() {
    let now = 1_796_000_000_000;
    let r = req_with(Default::default(), now);
    let with = |labels: Vec<(&str, &str)>, ts: i64| {
        let mut l = vec![("__name__".to_string(), "up".to_string())];
        l.extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        encode_write_request(&[(l, vec![(ts, 1.0)])])
    };
    assert!(
        RemoteWriteDecoder
            .decode(&with(vec![("job", "a")], now), &r)
            .is_ok()
    );
    // UTF-8 label names, as Prometheus 3 sends them.
    assert!(
        RemoteWriteDecoder
            .decode(&with(vec![("k8s.pod.name", "a"), ("服务", "b")], now), &r)
            .is_ok()
    );
    let dup = vec![("job", "a"); 1_000_000];
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            with(vec![("", "x")], now),
            "invalid_label",
            "empty label name",
        ),
        (
            with(vec![("a\0b", "x")], now),
            "invalid_label",
            "control character",
        ),
        (
            with(vec![("__name__", "x")], now),
            "invalid_label",
            "reserved",
        ),
        (
            with(vec![("job", "a"), ("job", "b")], now),
            "invalid_label",
            "more than once",
        ),
        (with(dup, now), "invalid_label", "ingest.max_labels"),
        (
            with(vec![], i64::MAX),
            "time_out_of_window",
            "series 0 sample 0: field \"timestamp\"",
        ),
        (
            with(vec![], i64::MIN),
            "time_out_of_window",
            "ingest.max_age",
        ),
        // 1_000_000_000_000_000 ms is in year 33658.
        (
            with(vec![], 1_000_000_000_000_000),
            "time_out_of_window",
            "ingest.max_future",
        ),
    ];
    for (body, reason, msg) in cases {
        let e = RemoteWriteDecoder.decode(&body, &r).unwrap_err();
        assert_eq!(e.reason(), reason, "{e}");
        assert!(e.to_string().contains(msg), "{e} lacks {msg:?}");
    }
}

#[test]
fn media_types_and_encodings_of_remote_write() {
    let body = encode_write_request(&[series("up", "a", &[(1, 1.0)])]);
    for (ct, enc) in [
        (Some("application/x-protobuf"), Some("gzip")),
        (Some("application/json"), Some("snappy")),
        (
            Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
            Some("snappy"),
        ),
    ] {
        let r = PushRequest {
            content_type: ct,
            content_encoding: enc,
            ..req()
        };
        let e = RemoteWriteDecoder.decode(&body, &r).unwrap_err();
        assert_eq!(e.reason(), "unsupported_media_type", "{ct:?} {enc:?}");
    }
    let v1 = PushRequest {
        content_type: Some("application/x-protobuf;proto=prometheus.WriteRequest"),
        ..req()
    };
    assert!(RemoteWriteDecoder.decode(&body, &v1).is_ok());
}

#[test]
fn fields_it_does_not_read_are_skipped() {
    // A series with an exemplar (field 3) and a request with metadata (field 3).
    let mut raw = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: "up".into(),
            }],
            samples: vec![Sample {
                value: 1.0,
                timestamp: 5,
            }],
        }],
    }
    .encode_to_vec();
    raw.extend_from_slice(&[0x1a, 0x02, 0x08, 0x01]);
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let out = RemoteWriteDecoder.decode(&body, &req()).unwrap();
    assert_eq!(out[0].batch.num_rows(), 1);
    let truncated = snap::raw::Encoder::new()
        .compress_vec(&raw[..raw.len() - 1])
        .unwrap();
    let e = RemoteWriteDecoder.decode(&truncated, &req()).unwrap_err();
    assert_eq!(e.reason(), "bad_protobuf", "{e}");
}
