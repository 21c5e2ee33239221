//! A real Alertmanager payload (from its documentation) and the rejections.

use super::*;
use crate::sources::{PushDecoder, PushRequest};
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;

const PAYLOAD: &str = r#"{
  "version": "4",
  "groupKey": "{}:{alertname=\"DiskFull\"}",
  "truncatedAlerts": 0,
  "status": "resolved",
  "receiver": "aiops",
  "groupLabels": {"alertname": "DiskFull"},
  "commonLabels": {"alertname": "DiskFull", "severity": "page"},
  "commonAnnotations": {},
  "externalURL": "http://am:9093",
  "alerts": [
    {"status": "firing", "labels": {"alertname": "DiskFull", "instance": "a", "severity": "page"},
     "annotations": {"summary": "disk full"}, "startsAt": "2026-11-24T10:00:00.123456789Z",
     "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "f1"},
    {"status": "resolved", "labels": {"alertname": "DiskFull", "instance": "b"},
     "annotations": {}, "startsAt": "2026-11-24T10:00:00Z", "endsAt": "2026-11-24T10:05:00Z",
     "generatorURL": "", "fingerprint": ""}
  ]
}"#;

fn req() -> PushRequest<'static> {
    PushRequest {
        content_type: Some("application/json"),
        content_encoding: None,
        now_ms: 7,
        limits: crate::sources::IngestLimits::any_time(),
    }
}

#[test]
fn normalizes_firing_and_resolved() {
    let out = AlertmanagerDecoder
        .decode(PAYLOAD.as_bytes(), &req())
        .unwrap();
    let b = &out[0].batch;
    assert_eq!(b.num_rows(), 2);
    let fp = b.column_by_name("fingerprint").unwrap().as_string::<i32>();
    assert_eq!(fp.value(0), "f1");
    assert_eq!(
        fp.value(1).len(),
        16,
        "hash of labels when the sender gives none"
    );
    let status = b.column_by_name("status").unwrap().as_string::<i32>();
    assert_eq!((status.value(0), status.value(1)), ("firing", "resolved"));
    let ends = b.column_by_name("ends_at").unwrap();
    assert!(ends.is_null(0) && !ends.is_null(1));
    let url = b.column_by_name("generator_url").unwrap();
    assert!(!url.is_null(0) && url.is_null(1));
    assert_eq!(
        out[0].time_range,
        Some((1_795_514_400_123, 1_795_514_700_000))
    );
}

#[test]
fn rejects_bad_payloads() {
    for (body, reason) in [
        (&b"[1,2,3]"[..], "bad_json"),
        (b"{}", "missing_field"),
        (
            br#"{"alerts":[{"status":"weird","labels":{"a":"b"}}]}"#,
            "invalid_value",
        ),
        (
            br#"{"alerts":[{"status":"firing","labels":{}}]}"#,
            "missing_field",
        ),
        (
            br#"{"alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"noon"}]}"#,
            "invalid_value",
        ),
        (b"{not json", "bad_json"),
    ] {
        let e = AlertmanagerDecoder.decode(body, &req()).unwrap_err();
        assert_eq!(e.reason(), reason, "{e}");
    }
}

#[test]
fn webhooks_check_media_times_and_labels() {
    let strict = |ct: Option<&'static str>, enc: Option<&'static str>| PushRequest {
        content_type: ct,
        content_encoding: enc,
        // 2026-11-24T10:10:00Z.
        now_ms: 1_795_515_000_000,
        limits: crate::sources::IngestLimits::default(),
    };
    let ok =
        AlertmanagerDecoder.decode(PAYLOAD.as_bytes(), &strict(Some("application/json"), None));
    assert!(ok.is_ok(), "{ok:?}");
    for (ct, enc) in [
        (Some("application/xml"), None),
        (Some("application/json"), Some("gzip")),
        (Some("text/plain"), None),
    ] {
        let e = crate::sources::grafana::GrafanaDecoder
            .decode(PAYLOAD.as_bytes(), &strict(ct, enc))
            .unwrap_err();
        assert_eq!(e.reason(), "unsupported_media_type", "{ct:?} {enc:?}");
    }
    let far = PAYLOAD.replace("2026-11-24T10:00:00.123456789Z", "33658-09-27T01:46:40Z");
    let e = AlertmanagerDecoder
        .decode(far.as_bytes(), &strict(None, None))
        .unwrap_err();
    assert!(
        matches!(e.reason(), "time_out_of_window" | "invalid_value"),
        "{e}"
    );
    let future = PAYLOAD.replace("2026-11-24T10:00:00.123456789Z", "2099-01-01T00:00:00Z");
    let e = AlertmanagerDecoder
        .decode(future.as_bytes(), &strict(None, None))
        .unwrap_err();
    assert_eq!(e.reason(), "time_out_of_window", "{e}");
    assert!(
        e.to_string().contains("alert 0: field \"starts_at\""),
        "{e}"
    );
    let reserved = PAYLOAD.replace("\"instance\": \"a\"", "\"__tenant\": \"a\"");
    let e = AlertmanagerDecoder
        .decode(reserved.as_bytes(), &strict(None, None))
        .unwrap_err();
    assert_eq!(e.reason(), "invalid_label", "{e}");
    let dup = PAYLOAD.replace(
        "\"instance\": \"a\"",
        "\"instance\": \"a\", \"instance\": \"z\"",
    );
    let e = AlertmanagerDecoder
        .decode(dup.as_bytes(), &strict(None, None))
        .unwrap_err();
    assert!(e.to_string().contains("duplicate key"), "{e}");
}
