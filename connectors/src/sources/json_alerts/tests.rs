//! The generic JSON alert API: every accepted form and every rejection.

use super::*;
use crate::sources::json_alerts::common::test_util::{m, rows};

/// 2026-11-24T10:10:00Z.
const NOW: i64 = 1_795_515_000_000;
const T10_00: i64 = 1_795_514_400_000;

fn req(ct: Option<&'static str>) -> PushRequest<'static> {
    PushRequest {
        content_type: ct,
        content_encoding: None,
        now_ms: NOW,
        limits: crate::sources::IngestLimits::any_time(),
    }
}

fn decode(body: &str) -> Result<Vec<SourceBatch>, DecodeError> {
    JsonAlertsDecoder.decode(body.as_bytes(), &req(Some("application/json")))
}

/// The example of docs/alerts-ingest.md (`POST /api/alerts`).
const PAYLOAD: &str = r#"[
  {"name": "CheckoutErrors", "severity": "critical", "service": "checkout",
   "labels": {"env": "prod", "service": "checkout"},
   "annotations": {"summary": "5xx above 2%", "runbook_url": "https://runbooks/checkout"},
   "starts_at": "2026-11-24T10:00:00Z", "generator_url": "https://ci/job/42"},
  {"name": "BackupFailed", "status": "resolved", "fingerprint": "backup-nightly",
   "starts_at": 1795514400000, "ends_at": "2026-11-24T11:05:00+01:00"},
  {"name": "Cron"}
]"#;

#[test]
fn normalizes_every_field() {
    let out = decode(PAYLOAD).unwrap();
    assert_eq!(out[0].source, "api");
    let r = rows(&out);
    assert_eq!(r.len(), 3);

    assert_eq!(r[0].status, "firing");
    assert_eq!(
        r[0].labels,
        m(&[
            ("alertname", "CheckoutErrors"),
            ("env", "prod"),
            ("service", "checkout"),
            ("severity", "critical"),
        ])
    );
    assert_eq!(
        r[0].annotations,
        m(&[
            ("runbook_url", "https://runbooks/checkout"),
            ("summary", "5xx above 2%"),
        ])
    );
    assert_eq!(
        (r[0].starts_at, r[0].ends_at, r[0].time),
        (T10_00, None, T10_00)
    );
    assert_eq!(r[0].fingerprint, labels_fingerprint(&r[0].labels));
    assert_eq!(r[0].generator_url.as_deref(), Some("https://ci/job/42"));
    assert_eq!(r[0].source, "api");

    assert_eq!(r[1].status, "resolved");
    assert_eq!(r[1].fingerprint, "backup-nightly");
    assert_eq!(r[1].labels, m(&[("alertname", "BackupFailed")]));
    assert!(r[1].annotations.is_empty());
    assert_eq!(r[1].starts_at, T10_00);
    assert_eq!(r[1].ends_at, Some(T10_00 + 5 * 60_000));
    assert_eq!(r[1].time, T10_00 + 5 * 60_000);
    assert_eq!(r[1].generator_url, None);

    assert_eq!(
        (r[2].status.as_str(), r[2].starts_at, r[2].ends_at),
        ("firing", NOW, None)
    );
}

#[test]
fn object_and_ndjson() {
    let one = decode(r#"{"name":"A","status":"resolved"}"#).unwrap();
    let r = rows(&one);
    assert_eq!((r[0].starts_at, r[0].ends_at), (NOW, Some(NOW)));
    let r = rows(
        &decode(r#"{"name":"A","status":"resolved","ends_at":"2026-11-24T10:00:00Z"}"#).unwrap(),
    );
    assert_eq!(
        (r[0].starts_at, r[0].ends_at),
        (T10_00, Some(T10_00)),
        "starts_at defaults to ends_at"
    );
    let nd = "{\"name\":\"A\"}\n\n{\"name\":\"B\",\"severity\":\"info\"}\n";
    for ct in [Some("application/x-ndjson"), None] {
        let out = JsonAlertsDecoder.decode(nd.as_bytes(), &req(ct)).unwrap();
        assert_eq!(rows(&out).len(), 2);
    }
}

#[test]
fn rejects_malformed_records_whole() {
    let cases: [(&str, DecodeError); 9] = [
        (
            r#"[{"name":"A"},{"severity":"info"}]"#,
            DecodeError::MissingField {
                at: "element 1".into(),
                field: "name",
            },
        ),
        (
            r#"[{"name":"A"},{"name":"B","status":"open"}]"#,
            DecodeError::InvalidValue {
                at: "element 1".into(),
                field: "status".into(),
                message: "must be \"firing\" or \"resolved\", got \"open\"".into(),
            },
        ),
        (
            r#"{"name":"A","starts_at":"yesterday"}"#,
            DecodeError::InvalidValue {
                at: "line 1".into(),
                field: "starts_at".into(),
                message: "\"yesterday\" is not an RFC 3339 time (e.g. 2026-11-24T10:00:00Z)".into(),
            },
        ),
        (
            r#"{"name":"A","starts_at":1.5}"#,
            DecodeError::InvalidValue {
                at: "line 1".into(),
                field: "starts_at".into(),
                message: "must be integer Unix milliseconds or an RFC 3339 string, got 1.5".into(),
            },
        ),
        (
            r#"{"name":"A","ends_at":"2026-11-24T10:00:00Z"}"#,
            DecodeError::InvalidValue {
                at: "line 1".into(),
                field: "ends_at".into(),
                message: "is only allowed with status \"resolved\" (a firing alert has not ended)"
                    .into(),
            },
        ),
        (
            r#"{"name":"A","status":"resolved","starts_at":"2026-11-24T10:00:00Z","ends_at":"2026-11-24T09:00:00Z"}"#,
            DecodeError::InvalidValue {
                at: "line 1".into(),
                field: "ends_at".into(),
                message: "is before starts_at".into(),
            },
        ),
        (
            r#"{"name":"A","severity":"page","labels":{"severity":"info"}}"#,
            DecodeError::InvalidValue {
                at: "line 1".into(),
                field: "severity".into(),
                message: "is \"page\" but labels.severity is \"info\": give one, or equal values"
                    .into(),
            },
        ),
        (
            r#"{"name":"A","labels":{"alertname":"B"}}"#,
            DecodeError::InvalidValue {
                at: "line 1".into(),
                field: "name".into(),
                message: "is \"A\" but labels.alertname is \"B\": give one, or equal values".into(),
            },
        ),
        (
            r#"{"name":"A","startsAt":"2026-11-24T10:00:00Z"}"#,
            DecodeError::UnknownField {
                at: "line 1".into(),
                field: "startsAt".into(),
                allowed: FIELDS,
            },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(decode(body).unwrap_err(), want, "{body}");
    }
    for (body, reason) in [
        ("{not json", "bad_json"),
        ("[]", "empty"),
        ("[1]", "wrong_type"),
        (r#"{"name":"A","labels":{"env":1}}"#, "wrong_type"),
        (
            r#"{"name":"A","service":"x","labels":{"service":"y"}}"#,
            "invalid_value",
        ),
    ] {
        assert_eq!(decode(body).unwrap_err().reason(), reason, "{body}");
    }
    let e = JsonAlertsDecoder
        .decode(
            b"{\"name\":\"A\"}\n{\"name\":\"B\",\"status\":7}\n",
            &req(None),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2: field \"status\" must be a string, got a number"
    );
    let e = JsonAlertsDecoder
        .decode(b"<alerts/>", &req(Some("text/xml")))
        .unwrap_err();
    assert_eq!(e.reason(), "unsupported_media_type");
}

#[test]
fn shared_checks_apply_to_json_alerts() {
    let strict = |ct: Option<&'static str>| PushRequest {
        content_type: ct,
        content_encoding: None,
        now_ms: NOW,
        limits: crate::sources::IngestLimits::default(),
    };
    let d = |body: &str, ct| JsonAlertsDecoder.decode(body.as_bytes(), &strict(ct));
    assert!(d(PAYLOAD, Some("application/json")).is_ok());
    let e = d(PAYLOAD, Some("application/xml")).unwrap_err();
    assert_eq!(e.reason(), "unsupported_media_type");
    let e = d(r#"{"name":"A","starts_at":-9223372036854775808}"#, None).unwrap_err();
    assert_eq!(e.reason(), "time_out_of_window", "{e}");
    assert!(e.to_string().contains("line 1: field \"starts_at\""), "{e}");
    let e = d(r#"{"name":"A","labels":{"__x":"1"}}"#, None).unwrap_err();
    assert_eq!(e.reason(), "invalid_label", "{e}");
}
