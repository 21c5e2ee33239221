//! Postable alerts as Prometheus sends them, Alertmanager's firing/resolved rule, and the
//! rejections.

use super::*;
use crate::sources::json_alerts::common::test_util::{m, rows};

/// 2026-11-24T10:10:00Z.
const NOW: i64 = 1_795_515_000_000;
const T10_00: i64 = 1_795_514_400_000;

fn req() -> PushRequest<'static> {
    PushRequest {
        content_type: Some("application/json"),
        content_encoding: None,
        now_ms: NOW,
        limits: crate::sources::IngestLimits::any_time(),
    }
}

fn decode(body: &str) -> Result<Vec<SourceBatch>, DecodeError> {
    AlertmanagerApiDecoder.decode(body.as_bytes(), &req())
}

/// The body shape of <https://prometheus.io/docs/alerting/latest/clients/> (and `postableAlerts`
/// in <https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml>), with the values
/// Prometheus fills in: a firing alert carries an `endsAt` a few evaluation intervals ahead.
const PAYLOAD: &str = r#"[
  {
    "labels": {"alertname": "HighLatency", "job": "api", "instance": "api-1:9090", "severity": "page"},
    "annotations": {"summary": "p99 latency above 1s", "runbook_url": ""},
    "startsAt": "2026-11-24T10:00:00Z",
    "endsAt": "2026-11-24T10:16:00Z",
    "generatorURL": "http://prometheus:9090/graph?g0.expr=latency_p99+%3E+1&g0.tab=1"
  },
  {
    "labels": {"alertname": "DiskFull", "instance": "db-1", "team": ""},
    "annotations": {},
    "startsAt": "2026-11-24T09:00:00.5Z",
    "endsAt": "2026-11-24T10:05:00Z",
    "generatorURL": ""
  },
  {"labels": {"alertname": "Watchdog"}},
  {"labels": {"alertname": "Gone"}, "endsAt": "2026-11-24T10:10:00Z", "status": {"state": "x"}}
]"#;

#[test]
fn normalizes_prometheus_alerts() {
    let out = decode(PAYLOAD).unwrap();
    assert_eq!(out[0].source, "alertmanager_api");
    let r = rows(&out);
    assert_eq!(r.len(), 4);

    // Future endsAt: firing, and ends_at keeps the expiry.
    assert_eq!(r[0].status, "firing");
    assert_eq!(r[0].starts_at, T10_00);
    assert_eq!(r[0].ends_at, Some(T10_00 + 16 * 60_000));
    assert_eq!(r[0].time, T10_00, "a firing alert's time is its start");
    assert_eq!(
        r[0].labels,
        m(&[
            ("alertname", "HighLatency"),
            ("instance", "api-1:9090"),
            ("job", "api"),
            ("severity", "page"),
        ])
    );
    assert_eq!(
        r[0].annotations,
        m(&[("summary", "p99 latency above 1s")]),
        "empty annotations are dropped"
    );
    assert_eq!(r[0].fingerprint, labels_fingerprint(&r[0].labels));
    assert_eq!(
        r[0].generator_url.as_deref(),
        Some("http://prometheus:9090/graph?g0.expr=latency_p99+%3E+1&g0.tab=1")
    );
    assert_eq!(r[0].source, "alertmanager_api");

    // Past endsAt: resolved at endsAt; the empty label is dropped before hashing.
    assert_eq!(r[1].status, "resolved");
    assert_eq!(r[1].starts_at, T10_00 - 3_600_000 + 500);
    assert_eq!(r[1].ends_at, Some(T10_00 + 5 * 60_000));
    assert_eq!(
        r[1].time,
        T10_00 + 5 * 60_000,
        "a resolved alert's time is its end"
    );
    assert_eq!(
        r[1].labels,
        m(&[("alertname", "DiskFull"), ("instance", "db-1")])
    );
    assert_eq!(r[1].fingerprint, labels_fingerprint(&r[1].labels));
    assert_eq!(r[1].generator_url, None);

    // No times: firing since now, no expiry.
    assert_eq!(
        (r[2].status.as_str(), r[2].starts_at, r[2].ends_at),
        ("firing", NOW, None)
    );
    assert!(r[2].annotations.is_empty());

    // endsAt == now is resolved; startsAt defaults to endsAt; unknown fields are ignored.
    assert_eq!(
        (r[3].status.as_str(), r[3].starts_at, r[3].ends_at),
        ("resolved", NOW, Some(NOW))
    );
    assert_eq!(out[0].time_range, Some((T10_00, NOW)));
}

#[test]
fn fingerprint_is_the_label_set() {
    let a = rows(&decode(r#"[{"labels":{"a":"1","b":"2"},"annotations":{"x":"1"}}]"#).unwrap());
    let b = rows(&decode(r#"[{"labels":{"b":"2","a":"1"},"annotations":{"x":"2"}}]"#).unwrap());
    let c = rows(&decode(r#"[{"labels":{"a":"1","b":"3"}}]"#).unwrap());
    assert_eq!(a[0].fingerprint, b[0].fingerprint);
    assert_ne!(a[0].fingerprint, c[0].fingerprint);
}

#[test]
fn empty_array_stores_nothing() {
    assert!(decode("[]").unwrap().is_empty());
}

#[test]
fn rejects_malformed_alerts_whole() {
    let cases: [(&str, DecodeError); 8] = [
        (
            r#"{"labels":{"a":"b"}}"#,
            DecodeError::WrongType {
                at: "body".into(),
                field: "(body)".into(),
                expected: "a JSON array of alerts (postableAlerts)",
                got: "an object",
            },
        ),
        (
            r#"[{"labels":{"a":"b"}}, 3]"#,
            DecodeError::WrongType {
                at: "alert 1".into(),
                field: "(alert)".into(),
                expected: "an object",
                got: "a number",
            },
        ),
        (
            r#"[{"labels":{"a":"b"}}, {"annotations":{"s":"x"}}]"#,
            DecodeError::MissingField {
                at: "alert 1".into(),
                field: "labels",
            },
        ),
        (
            r#"[{"labels":{"team":""}}]"#,
            DecodeError::MissingField {
                at: "alert 0".into(),
                field: "labels",
            },
        ),
        (
            r#"[{"labels":{"a":"b"}}, {"labels":{"a":1}}]"#,
            DecodeError::WrongType {
                at: "alert 1".into(),
                field: "labels.a".into(),
                expected: "a string",
                got: "a number",
            },
        ),
        (
            r#"[{"labels":{"a":"b"},"startsAt":"noon"}]"#,
            DecodeError::InvalidValue {
                at: "alert 0".into(),
                field: "startsAt".into(),
                message: "\"noon\" is not an RFC 3339 time".into(),
            },
        ),
        (
            r#"[{"labels":{"a":"b"},"startsAt":"2026-11-24T10:00:00Z","endsAt":"2026-11-24T09:00:00Z"}]"#,
            DecodeError::InvalidValue {
                at: "alert 0".into(),
                field: "endsAt".into(),
                message: "is before startsAt".into(),
            },
        ),
        (
            r#"[{"labels":{"a":"b"},"endsAt":1795514400000}]"#,
            DecodeError::WrongType {
                at: "alert 0".into(),
                field: "endsAt".into(),
                expected: "a string",
                got: "a number",
            },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(decode(body).unwrap_err(), want, "{body}");
    }
    let e = decode("[{\"labels\":").unwrap_err();
    assert_eq!(e.reason(), "bad_json", "{e}");
    let e = decode(r#"[{"labels":{"a":"b"}},{"labels":{"a":"b"},"endsAt":"soon"}]"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "alert 1: field \"endsAt\" \"soon\" is not an RFC 3339 time"
    );
}
