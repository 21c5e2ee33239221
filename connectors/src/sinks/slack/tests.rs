//! `slack` against a local server that checks the incoming-webhook contract.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply};
use crate::sinks::{EffectCall, SinkError};
use serde_json::{Value, json};

/// Accepts what Slack accepts: POST JSON with a string `text` and, if present, an array of
/// blocks that each have a `type`; answers `ok`, or 400 `invalid_payload` like Slack.
fn slack_like(r: &crate::sinks::testing::Recorded) -> axum::response::Response {
    let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
        return reply(400, "text/plain", "invalid_payload");
    };
    let blocks_ok = match v.get("blocks") {
        None => true,
        Some(Value::Array(b)) => b
            .iter()
            .all(|x| x.get("type").is_some_and(Value::is_string)),
        Some(_) => false,
    };
    let text_ok = v.get("text").is_some_and(Value::is_string);
    if r.method == "POST"
        && r.header("content-type") == Some("application/json")
        && blocks_ok
        && text_ok
    {
        reply(200, "text/plain", "ok")
    } else {
        reply(400, "text/plain", "invalid_payload")
    }
}

#[tokio::test]
async fn sends_block_kit() {
    let server = MockServer::start(slack_like).await;
    let url = server.url("/services/T000/B000/XXXXSECRET");
    let p = build_local(json!({"kind": "slack", "url": url}));
    let params = obj(json!({
        "text": "Disk full on web-1", "title": "Incident INC-7",
        "fields": {"severity": "critical", "service": "web"}, "footer": "aiops"
    }));
    let out = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap();
    assert_eq!(out.status, "200");
    assert_eq!(out.response, json!("ok"));
    let body = server.requests()[0].json();
    assert_eq!(server.requests()[0].path, "/services/T000/B000/XXXXSECRET");
    assert_eq!(body["text"], "Disk full on web-1");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(blocks[0]["text"]["text"], "Incident INC-7");
    assert_eq!(blocks[1]["type"], "section");
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    assert_eq!(blocks[2]["fields"].as_array().unwrap().len(), 2);
    assert_eq!(blocks[2]["fields"][0]["text"], "*service*\nweb");
    assert_eq!(blocks[3]["type"], "context");
    assert_no_secrets(p.as_ref(), &[format!("{out:?}")], &["XXXXSECRET"]);
}

#[tokio::test]
async fn color_uses_an_attachment_and_raw_blocks_pass_through() {
    let server = MockServer::start(slack_like).await;
    let p = build_local(json!({"kind": "slack", "url": server.url("/services/T/B/S")}));
    let raw = json!([{"type": "divider"}]);
    let params = obj(json!({"text": "x", "color": "#ff0000", "blocks": raw}));
    p.call(&EffectCall {
        idempotency_key: "k",
        params: &params,
    })
    .await
    .unwrap();
    let body = server.requests()[0].json();
    assert_eq!(body["attachments"][0]["color"], "#ff0000");
    assert_eq!(body["attachments"][0]["blocks"], raw);
}

#[tokio::test]
async fn invalid_payload_is_a_permanent_error() {
    let server = MockServer::start(|_| reply(400, "text/plain", "invalid_payload")).await;
    let p = build_local(json!({"kind": "slack", "url": server.url("/services/T/B/TOKENSECRET")}));
    let params = obj(json!({"text": "x"}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    match &err {
        SinkError::Http {
            status: 400,
            body_excerpt,
        } => assert_eq!(body_excerpt, "invalid_payload"),
        other => panic!("{other}"),
    }
    assert!(!err.retryable());
    assert!(!err.to_string().contains("TOKENSECRET"));
}

#[tokio::test]
async fn rate_limit_is_retryable() {
    let server = MockServer::start(|_| reply(429, "text/plain", "rate_limited")).await;
    let p = build_local(json!({"kind": "slack", "url": server.url("/services/T/B/S")}));
    let params = obj(json!({"text": "x"}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
}

#[test]
fn validate_names_fields() {
    let p = build_local(json!({"kind": "slack", "url": "http://127.0.0.1:9/services/x"}));
    let e = p.validate(&obj(json!({"title": "t"}))).unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "text"),
        "{e}"
    );
    let e = p
        .validate(&obj(json!({"text": "t", "blocks": [{"x": 1}]})))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "blocks[0]"),
        "{e}"
    );
    let e = p
        .validate(&obj(json!({"text": "t", "colour": "red"})))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "colour"),
        "{e}"
    );
}
