//! Malformed requests get the right 4xx with a message naming the problem, and the log is
//! unchanged (DESIGN.md invariant 5). Runs the real `aiops` binary on the embedded log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, http_get};
use serde_json::Value;

fn next_seq(a: &Aiops) -> u64 {
    let body = http_get(&a.url("/api/log/stats")).unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["next_seq"].as_u64().unwrap()
}

struct Case {
    path: &'static str,
    content_type: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    reason: &'static str,
    message_contains: &'static str,
}

fn snappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(b).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_rejected_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start(
        dir.path(),
        "embedded",
        &["--config", &write_small_limit_config(dir.path())],
    );
    let before = next_seq(&a);
    let cases = vec![
        Case {
            path: "/api/v1/write",
            content_type: "application/x-protobuf",
            encoding: Some("snappy"),
            body: b"this is not snappy at all".to_vec(),
            status: 400,
            reason: "bad_snappy",
            message_contains: "snappy",
        },
        Case {
            path: "/api/v1/write",
            content_type: "application/x-protobuf",
            encoding: Some("snappy"),
            body: snappy(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]),
            status: 400,
            reason: "bad_protobuf",
            message_contains: "protobuf",
        },
        Case {
            path: "/api/ingest/metrics",
            content_type: "application/json",
            encoding: None,
            body: br#"{"name": "cpu", "value": 1.0,"#.to_vec(),
            status: 400,
            reason: "bad_json",
            message_contains: "line 1",
        },
        Case {
            path: "/api/ingest/metrics",
            content_type: "application/x-ndjson",
            encoding: None,
            body: b"{\"name\":\"cpu\",\"value\":1}\n{\"name\":\"cpu\",\"value\":\"high\"}\n"
                .to_vec(),
            status: 400,
            reason: "wrong_type",
            message_contains: "line 2",
        },
        Case {
            path: "/api/ingest/metrics",
            content_type: "application/x-ndjson",
            encoding: None,
            body: b"{\"name\":\"cpu\",\"value\":1}\n{\"value\":2}\n".to_vec(),
            status: 400,
            reason: "missing_field",
            message_contains: "name",
        },
        Case {
            path: "/api/ingest/logs",
            content_type: "application/json",
            encoding: None,
            body: br#"{"severity": "info"}"#.to_vec(),
            status: 400,
            reason: "missing_field",
            message_contains: "body",
        },
        Case {
            path: "/api/ingest/events",
            content_type: "application/json",
            encoding: None,
            body: br#"{"type": "deploy", "time": "yesterday"}"#.to_vec(),
            status: 400,
            reason: "invalid_value",
            message_contains: "time",
        },
        Case {
            path: "/api/alerts/webhook/alertmanager",
            content_type: "application/json",
            encoding: None,
            body: b"[1,2,3]".to_vec(),
            status: 400,
            reason: "",
            message_contains: "",
        },
        Case {
            path: "/api/ingest/logs",
            content_type: "application/json",
            encoding: None,
            body: vec![b' '; 70 * 1024],
            status: 413,
            reason: "too_large",
            message_contains: "65536",
        },
    ];
    let client = reqwest::Client::new();
    for c in &cases {
        let mut req = client
            .post(a.url(c.path))
            .header("content-type", c.content_type)
            .body(c.body.clone());
        if let Some(e) = c.encoding {
            req = req.header("content-encoding", e);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, c.status, "{} {:?}: {text}", c.path, c.reason);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(!msg.is_empty(), "empty error message for {}", c.path);
        if !c.reason.is_empty() {
            assert_eq!(v["reason"], c.reason, "{}: {text}", c.path);
        }
        assert!(
            msg.contains(c.message_contains),
            "{}: message {msg:?} lacks {:?}",
            c.path,
            c.message_contains
        );
    }
    assert_eq!(
        next_seq(&a),
        before,
        "a rejected request appended to the log"
    );
    assert!(a.metric("aiops_ingest_rejected_total") >= cases.len() as f64);

    // A good request after all that is accepted and appended.
    let resp = client
        .post(a.url("/api/ingest/metrics"))
        .header("content-type", "application/json")
        .body(r#"{"name":"cpu","labels":{"host":"a"},"value":0.5,"time":"2026-11-24T10:00:00Z"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
    assert!(next_seq(&a) > before);

    // `aiops log stats` reads the log beside the running engine (read-only, no lock).
    let stats = common::aiops_cmd(dir.path(), "embedded", &["log", "stats", "--json"]);
    let v: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["kinds"]["metrics"]["events"], 1, "{stats}");
    assert_eq!(v["log"]["backend"], "embedded");
}

fn write_small_limit_config(dir: &std::path::Path) -> String {
    let p = dir.join("small.toml");
    std::fs::write(&p, "[http]\nmax_body_bytes = 65536\n").unwrap();
    p.display().to_string()
}
