//! Datadog webhook payloads (the documented template, filled in with the documentation's example
//! values), the default payload, and the rejections.

use super::*;
use crate::sources::json_alerts::common::test_util::{m, rows};

const NOW: i64 = 1_795_515_000_000;
/// `$DATE` of Datadog's documentation example.
const DATE: i64 = 1_406_662_672_000;

fn req(ct: &'static str) -> PushRequest<'static> {
    PushRequest {
        content_type: Some(ct),
        content_encoding: None,
        now_ms: NOW,
        limits: crate::sources::IngestLimits::any_time(),
    }
}

fn decode(body: &str) -> Result<Vec<SourceBatch>, DecodeError> {
    DatadogDecoder.decode(body.as_bytes(), &req("application/json"))
}

/// The payload template of this module's docs, with the example values of the variables listed at
/// <https://docs.datadoghq.com/integrations/webhooks/> (`$ALERT_ID` 1234, `$ALERT_METRIC`
/// system.load.1, `$ALERT_STATUS`, `$ALERT_TITLE`, `$DATE` 1406662672000, …).
const TRIGGERED: &str = r#"{
  "id": "7261958302859021321",
  "alert_id": "1234",
  "title": "[P2] [Triggered on {host:ip-012345}] Host is Down",
  "body": "%%%\nHost ip-012345 stopped reporting.\n@webhook-aiops\n%%%",
  "alert_transition": "Triggered",
  "alert_status": "system.load.1 over host:ip-012345 was > 0 at least once during the last 1m",
  "alert_type": "error",
  "priority": "normal",
  "alert_priority": "P2",
  "hostname": "ip-012345",
  "tags": "availability-zone:us-east-1a, host:ip-012345, monitor, role:computing-node, team:infra",
  "alert_scope": "host:ip-012345",
  "alert_metric": "system.load.1",
  "alert_query": "avg(last_1m):avg:system.load.1{*} by {host} > 0",
  "link": "https://app.datadoghq.com/event/event?id=7261958302859021321",
  "date": "1406662672000",
  "last_updated": "1406662672000",
  "org": {"id": "11287", "name": "Acme"}
}"#;

#[test]
fn triggered_monitor() {
    let out = decode(TRIGGERED).unwrap();
    assert_eq!(out[0].source, "datadog");
    let r = rows(&out);
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.status, "firing");
    assert_eq!(r.fingerprint, "dd-1234@host:ip-012345");
    assert_eq!(
        r.labels,
        m(&[
            ("alert_id", "1234"),
            ("alertname", "Host is Down"),
            ("availability-zone", "us-east-1a"),
            ("host", "ip-012345"),
            ("metric", "system.load.1"),
            ("monitor", "true"),
            ("org", "Acme"),
            ("priority", "P2"),
            ("role", "computing-node"),
            ("severity", "critical"),
            ("team", "infra"),
        ])
    );
    assert_eq!(
        r.annotations,
        m(&[
            (
                "alert_status",
                "system.load.1 over host:ip-012345 was > 0 at least once during the last 1m"
            ),
            (
                "description",
                "%%%\nHost ip-012345 stopped reporting.\n@webhook-aiops\n%%%"
            ),
            ("event_id", "7261958302859021321"),
            (
                "link",
                "https://app.datadoghq.com/event/event?id=7261958302859021321"
            ),
            ("query", "avg(last_1m):avg:system.load.1{*} by {host} > 0"),
            (
                "summary",
                "[P2] [Triggered on {host:ip-012345}] Host is Down"
            ),
            ("transition", "Triggered"),
        ])
    );
    assert_eq!((r.starts_at, r.ends_at, r.time), (DATE, None, DATE));
    assert_eq!(r.source, "datadog");
    assert_eq!(
        r.generator_url.as_deref(),
        Some("https://app.datadoghq.com/event/event?id=7261958302859021321")
    );
}

#[test]
fn recovered_monitor_is_the_same_alert_resolved() {
    let body = TRIGGERED
        .replace("[Triggered on", "[Recovered on")
        .replace("\"Triggered\"", "\"Recovered\"")
        .replace("\"error\"", "\"success\"")
        .replace("\"1406662672000\"", "1406662972");
    let r = rows(&decode(&body).unwrap());
    assert_eq!(r[0].status, "resolved");
    assert_eq!(r[0].fingerprint, "dd-1234@host:ip-012345");
    let triggered = rows(&decode(TRIGGERED).unwrap());
    assert_eq!(
        r[0].labels, triggered[0].labels,
        "the recovery carries the labels of the alert it resolves (severity from the P2 priority)"
    );
    let end = DATE + 300_000;
    assert_eq!(
        (r[0].starts_at, r[0].ends_at, r[0].time),
        (end, Some(end), end)
    );
}

#[test]
fn default_payload_and_tag_rules() {
    // Datadog's default payload: no alert id, transition only in the title.
    let body = r#"{"body": "@webhook-aiops", "last_updated": "1406662672000",
      "event_type": "metric_alert_monitor", "title": "[Recovered] [Memory Alert]",
      "date": "", "org": {"id": "11287", "name": "Acme"}, "id": "7261958302859021321"}"#;
    let r = rows(&decode(body).unwrap());
    assert_eq!(r[0].status, "resolved");
    assert_eq!(r[0].annotations["transition"], "Recovered");
    assert_eq!(
        r[0].labels,
        m(&[("alertname", "[Memory Alert]"), ("org", "Acme")])
    );
    assert_eq!(r[0].fingerprint, labels_fingerprint(&r[0].labels));
    assert_eq!(r[0].ends_at, Some(DATE), "last_updated when date is empty");

    let r = rows(&decode(r#"{"title": "a", "alert_type": "error", "priority": "P4"}"#).unwrap());
    assert_eq!(
        r[0].labels["severity"], "info",
        "the priority wins over the alert type"
    );
    let r = rows(&decode(r#"{"title": "a", "alert_type": "warning", "priority": "low"}"#).unwrap());
    assert_eq!(r[0].labels["severity"], "warning");

    let body = r#"[{"title": "Disk", "alert_id": 99, "alert_type": "warning",
        "tags": "role:a,role:b,role:a,severity:page,:x", "alert_scope": "role:b, az:1",
        "hostname": "h"}]"#;
    let r = rows(&decode(body).unwrap());
    assert_eq!(r[0].status, "firing");
    assert_eq!(r[0].starts_at, NOW);
    assert_eq!(
        r[0].fingerprint, "dd-99@az:1,role:b",
        "scope wins over hostname"
    );
    assert_eq!(
        r[0].labels,
        m(&[
            ("alert_id", "99"),
            ("alertname", "Disk"),
            ("az", "1"),
            ("host", "h"),
            ("role", "a,b"),
            ("severity", "page"),
        ]),
        "a severity tag wins over the alert type"
    );
}

#[test]
fn rejects_malformed_notifications() {
    let cases: [(&str, DecodeError); 6] = [
        (
            r#"{"alert_id": "1", "body": "x"}"#,
            DecodeError::MissingField {
                at: "alert 0".into(),
                field: "title",
            },
        ),
        (
            r#"[{"title": "a"}, {"title": "b", "alert_transition": "Exploded"}]"#,
            DecodeError::InvalidValue {
                at: "alert 1".into(),
                field: "alert_transition".into(),
                message:
                    "\"Exploded\" is not a Datadog alert transition (Triggered, Re-Triggered, \
                          Recovered, Warn, Re-Warn, No Data, Re-No Data, Renotify)"
                        .into(),
            },
        ),
        (
            r#"{"title": "a", "alert_type": "panic"}"#,
            DecodeError::InvalidValue {
                at: "alert 0".into(),
                field: "alert_type".into(),
                message: "must be error, warning, info or success, got \"panic\"".into(),
            },
        ),
        (
            r#"{"title": "a", "date": "yesterday"}"#,
            DecodeError::InvalidValue {
                at: "alert 0".into(),
                field: "date".into(),
                message: "\"yesterday\" is not an epoch time (ms or s) nor an RFC 3339 time".into(),
            },
        ),
        (
            r#"{"title": "a", "tags": 5}"#,
            DecodeError::WrongType {
                at: "alert 0".into(),
                field: "tags".into(),
                expected: "a comma-separated string of tags",
                got: "a number",
            },
        ),
        (
            r#"[{"title": "a"}, "b"]"#,
            DecodeError::WrongType {
                at: "alert 1".into(),
                field: "(alert)".into(),
                expected: "an object",
                got: "a string",
            },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(decode(body).unwrap_err(), want, "{body}");
    }
    assert_eq!(decode("{\"title\":").unwrap_err().reason(), "bad_json");
    let e = DatadogDecoder
        .decode(
            b"title=x",
            &req("application/x-www-form-urlencoded; charset=utf-8"),
        )
        .unwrap_err();
    assert_eq!(e.reason(), "unsupported_media_type");
}
