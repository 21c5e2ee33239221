//! Every accepted form and every rejection of the JSON decoders.

use super::*;
use crate::sources::{PushDecoder, PushRequest};
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;

fn req(ct: &'static str) -> PushRequest<'static> {
    PushRequest {
        content_type: Some(ct),
        content_encoding: None,
        now_ms: 42,
        limits: crate::sources::IngestLimits::any_time(),
    }
}

#[test]
fn object_array_and_ndjson() {
    let d = JsonDecoder::metrics();
    let one = d
        .decode(
            br#"{"name":"cpu","labels":{"host":"a"},"value":0.5,"time":"1970-01-01T00:00:01Z"}"#,
            &req("application/json"),
        )
        .unwrap();
    assert_eq!(one[0].batch.num_rows(), 1);
    assert_eq!(one[0].time_range, Some((1000, 1000)));
    let arr = d
        .decode(
            br#"[{"name":"a","value":1,"time":5},{"name":"b","value":"NaN"}]"#,
            &req("application/json"),
        )
        .unwrap();
    assert_eq!(arr[0].batch.num_rows(), 2);
    let ts = arr[0]
        .batch
        .column(0)
        .as_primitive::<TimestampMillisecondType>();
    assert_eq!(
        (ts.value(0), ts.value(1)),
        (5, 42),
        "missing time is the ingest time"
    );
    let nd = d
        .decode(
            b"{\"name\":\"a\",\"value\":1}\n\n{\"name\":\"b\",\"value\":2}\n",
            &req("application/x-ndjson"),
        )
        .unwrap();
    assert_eq!(nd[0].batch.num_rows(), 2);
    let sniffed = d
        .decode(
            b"{\"name\":\"a\",\"value\":1}\n{\"name\":\"b\",\"value\":2}",
            &PushRequest {
                content_type: None,
                ..req("x")
            },
        )
        .unwrap();
    assert_eq!(sniffed[0].batch.num_rows(), 2);
}

#[test]
fn logs_and_events() {
    let logs = JsonDecoder::logs()
        .decode(br#"{"body":"boom","severity":"ERROR","labels":{"service":"api"},"attributes":{"status":500,"ok":false}}"#, &req("application/json"))
        .unwrap();
    let sev = logs[0].batch.column(1).as_string::<i32>();
    assert_eq!(sev.value(0), "error");
    let ev = JsonDecoder::events()
        .decode(
            br#"{"type":"deploy","labels":{"service":"api","version":"2"}}"#,
            &req("application/json"),
        )
        .unwrap();
    assert_eq!(ev[0].batch.num_rows(), 1);
}

#[test]
fn rejections_name_line_and_field() {
    let d = JsonDecoder::metrics();
    let cases: Vec<(&[u8], &str, &str, &str)> = vec![
        (
            br#"{"name": "cpu", "value": 1.0,"#,
            "application/json",
            "bad_json",
            "line 1",
        ),
        (
            b"{\"name\":\"a\",\"value\":1}\n{\"name\":\"a\",\"value\":\"high\"}",
            "application/x-ndjson",
            "wrong_type",
            "line 2: field \"value\" must be a number",
        ),
        (
            b"{\"name\":\"a\",\"value\":1}\n{\"value\":1}",
            "application/x-ndjson",
            "missing_field",
            "line 2: missing required field \"name\"",
        ),
        (
            br#"{"name":"a","value":1,"lables":{}}"#,
            "application/json",
            "unknown_field",
            "unknown field \"lables\"",
        ),
        (
            br#"{"name":"a","value":1,"time":"yesterday"}"#,
            "application/json",
            "invalid_value",
            "field \"time\"",
        ),
        (
            br#"{"name":"a","value":1,"labels":{"x":1}}"#,
            "application/json",
            "wrong_type",
            "labels.x",
        ),
        (
            br#"[{"name":"a","value":1}, 3]"#,
            "application/json",
            "wrong_type",
            "element 1",
        ),
        (b"   ", "application/json", "bad_json", "line 1"),
        (b"[]", "application/json", "empty", "empty"),
        (b"{}", "text/csv", "unsupported_media_type", "text/csv"),
    ];
    for (body, ct, reason, msg) in cases {
        let e = d.decode(body, &req(ct)).unwrap_err();
        assert_eq!(e.reason(), reason, "{e}");
        assert!(e.to_string().contains(msg), "{e:?} lacks {msg:?}");
    }
    let e = JsonDecoder::logs()
        .decode(br#"{"severity":"info"}"#, &req("application/json"))
        .unwrap_err();
    assert!(e.to_string().contains("\"body\""), "{e}");
}

/// 2026-11-24T10:00:00Z.
const NOW: i64 = 1_795_514_400_000;

fn strict(ct: Option<&'static str>, enc: Option<&'static str>) -> PushRequest<'static> {
    PushRequest {
        content_type: ct,
        content_encoding: enc,
        now_ms: NOW,
        limits: crate::sources::IngestLimits::default(),
    }
}

#[test]
fn what_no_query_can_use_is_refused_with_row_and_field() {
    let json = Some("application/json");
    let cases: Vec<(JsonDecoder, &str, &str, &str)> = vec![
        (
            JsonDecoder::metrics(),
            r#"{"name":"a","value":1,"time":9223372036854775807}"#,
            "time_out_of_window",
            "line 1: field \"time\"",
        ),
        (
            JsonDecoder::logs(),
            r#"[{"body":"x"},{"body":"y","time":"9999-12-31T23:59:59Z"}]"#,
            "time_out_of_window",
            "element 1: field \"time\"",
        ),
        (
            JsonDecoder::metrics(),
            r#"{"name":"a","value":1,"labels":{"__name__":"b"}}"#,
            "invalid_label",
            "reserved",
        ),
        (
            JsonDecoder::metrics(),
            r#"{"name":"a","value":1,"labels":{"":"b"}}"#,
            "invalid_label",
            "empty label name",
        ),
        (
            JsonDecoder::metrics(),
            r#"{"name":"a","value":1,"labels":{"a-b":"c"}}"#,
            "invalid_label",
            "Prometheus label name",
        ),
        (
            JsonDecoder::logs(),
            "{\"body\":\"x\",\"labels\":{\"a\\u0000b\":\"c\"}}",
            "invalid_label",
            "control character",
        ),
        (
            JsonDecoder::events(),
            r#"{"type":"deploy","labels":{"service":"a","service":"b"}}"#,
            "bad_json",
            "duplicate key",
        ),
        (
            JsonDecoder::metrics(),
            r#"{"name":"","value":1}"#,
            "invalid_label",
            "field \"name\" is empty",
        ),
    ];
    for (d, body, reason, msg) in cases {
        let e = d.decode(body.as_bytes(), &strict(json, None)).unwrap_err();
        assert_eq!(e.reason(), reason, "{body}: {e}");
        assert!(e.to_string().contains(msg), "{e} lacks {msg:?}");
    }
    // Logs and events keep the labels real senders use (dots, dashes, slashes).
    let ok = JsonDecoder::logs().decode(
        br#"{"body":"x","labels":{"k8s.pod/name":"a-1","service":"api"}}"#,
        &strict(json, None),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn engine_owned_event_types_are_refused() {
    for ty in ["audit", "anomaly", "log_template", "AUDIT"] {
        let body = format!(r#"{{"type":"{ty}","message":"forged"}}"#);
        let e = JsonDecoder::events()
            .decode(body.as_bytes(), &strict(Some("application/json"), None))
            .unwrap_err();
        assert_eq!(e.reason(), "invalid_value");
        assert!(
            e.to_string().contains("line 1: field \"type\"")
                && e.to_string().contains("only aiops itself writes"),
            "{e}"
        );
    }
}

#[test]
fn content_type_and_encoding_are_checked() {
    let body = br#"{"name":"a","value":1}"#;
    for (ct, enc, want) in [
        (
            Some("application/xml"),
            None,
            "Content-Type \"application/xml\"",
        ),
        (
            Some("application/json"),
            Some("gzip"),
            "Content-Encoding \"gzip\"",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            None,
            "content-type: application/json",
        ),
    ] {
        let e = JsonDecoder::metrics()
            .decode(body, &strict(ct, enc))
            .unwrap_err();
        assert_eq!(e.reason(), "unsupported_media_type");
        assert!(e.to_string().contains(want), "{e}");
    }
    for (ct, enc) in [
        (None, None),
        (Some("application/json; charset=utf-8"), Some("identity")),
        (Some("application/x-ndjson"), None),
    ] {
        assert!(
            JsonDecoder::metrics()
                .decode(body, &strict(ct, enc))
                .is_ok()
        );
    }
}
