//! Round trips and every rejection of the remote_write decoder.

use super::*;
use crate::error::DecodeError;
use crate::sources::{PushDecoder, PushRequest};
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
use proptest::prelude::*;

fn req() -> PushRequest<'static> {
    PushRequest {
        content_type: Some("application/x-protobuf"),
        content_encoding: Some("snappy"),
        now_ms: 0,
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
