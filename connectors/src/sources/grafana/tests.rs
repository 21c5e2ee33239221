//! A Grafana webhook payload as its documentation shows it.

use super::*;
use aiops_schemas::arrow_array::cast::AsArray;

#[test]
fn grafana_payload_is_normalized() {
    let body = r#"{
      "receiver": "aiops", "status": "firing", "orgId": 1,
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "High CPU", "grafana_folder": "infra", "instance": "h1"},
        "annotations": {"summary": "CPU above 90%"},
        "startsAt": "2026-11-24T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://grafana/alerting/grafana/abc/view",
        "fingerprint": "57c6d9296de2ad39",
        "silenceURL": "http://grafana/alerting/silence/new", "dashboardURL": "", "panelURL": "",
        "values": {"B": 95.2, "C": 1}, "valueString": "[ var='B' labels={instance=h1} value=95.2 ]"
      }],
      "groupLabels": {"alertname": "High CPU"}, "commonLabels": {}, "commonAnnotations": {},
      "externalURL": "http://grafana/", "version": "1", "groupKey": "{}",
      "truncatedAlerts": 0, "title": "[FIRING:1] High CPU", "state": "alerting", "message": "…"
    }"#;
    let req = PushRequest {
        content_type: Some("application/json"),
        content_encoding: None,
        now_ms: 0,
        limits: crate::sources::IngestLimits::any_time(),
    };
    let out = GrafanaDecoder.decode(body.as_bytes(), &req).unwrap();
    assert_eq!(out[0].source, "grafana");
    let b = &out[0].batch;
    assert_eq!(
        b.column_by_name("fingerprint")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "57c6d9296de2ad39"
    );
    assert_eq!(
        b.column_by_name("source")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "grafana"
    );
}
