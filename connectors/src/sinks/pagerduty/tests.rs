//! `pagerduty` against a local Events API v2 endpoint that checks the documented event shape.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply_json};
use crate::sinks::{EffectCall, SinkError};
use serde_json::{Value, json};

const KEY: &str = "R0UT1NGKEYSECRET0000000000000000";

fn events_api(r: &crate::sinks::testing::Recorded) -> axum::response::Response {
    let v: Value = r.json();
    if v["payload"]["summary"] == "throttle me" {
        return reply_json(
            429,
            json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly."}),
        );
    }
    let action = v["event_action"].as_str().unwrap_or("");
    let key_ok = v["routing_key"].as_str().is_some_and(|k| k.len() == 32);
    let payload_ok = action != "trigger"
        || (v["payload"]["summary"].is_string()
            && v["payload"]["source"].is_string()
            && ["critical", "error", "warning", "info"]
                .contains(&v["payload"]["severity"].as_str().unwrap_or("")));
    let no_payload_otherwise = action == "trigger" || v.get("payload").is_none();
    if r.path == "/v2/enqueue"
        && key_ok
        && payload_ok
        && no_payload_otherwise
        && v["dedup_key"].is_string()
    {
        reply_json(
            202,
            json!({"status": "success", "message": "Event processed", "dedup_key": v["dedup_key"]}),
        )
    } else {
        reply_json(
            400,
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["bad"]}),
        )
    }
}

#[tokio::test]
async fn trigger_uses_the_idempotency_key_and_resolve_needs_one() {
    let server = MockServer::start(events_api).await;
    let p = build_local(
        json!({"kind": "pagerduty", "routing_key": KEY, "url": server.url("/v2/enqueue")}),
    );
    let params = obj(json!({
        "summary": "disk full on web-1", "source": "web-1", "severity": "critical",
        "component": "disk", "custom_details": {"used": "99%"},
        "links": [{"href": "https://grafana.example/d/x", "text": "dashboard"}]
    }));
    let out = p
        .call(&EffectCall {
            idempotency_key: "eff-42",
            params: &params,
        })
        .await
        .unwrap();
    assert_eq!(out.status, "202");
    assert_eq!(out.response["dedup_key"], "eff-42");
    let sent = server.requests()[0].json();
    assert_eq!(sent["event_action"], "trigger");
    assert_eq!(sent["dedup_key"], "eff-42");
    assert_eq!(sent["payload"]["component"], "disk");
    assert_eq!(sent["payload"]["custom_details"]["used"], "99%");
    assert_eq!(sent["links"][0]["text"], "dashboard");
    assert_no_secrets(p.as_ref(), &[format!("{out:?}")], &[KEY]);

    let resolve = obj(json!({"event_action": "resolve", "dedup_key": "eff-42"}));
    p.call(&EffectCall {
        idempotency_key: "eff-43",
        params: &resolve,
    })
    .await
    .unwrap();
    let sent = server.requests()[1].json();
    assert_eq!(sent["event_action"], "resolve");
    assert!(sent.get("payload").is_none());
    let e = p
        .validate(&obj(json!({"event_action": "resolve"})))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "dedup_key"),
        "{e}"
    );
}

#[tokio::test]
async fn invalid_and_throttled() {
    let server = MockServer::start(events_api).await;
    let p = build_local(
        json!({"kind": "pagerduty", "routing_key": KEY, "url": server.url("/v2/enqueue")}),
    );
    let throttled = obj(json!({"summary": "throttle me", "source": "s", "severity": "info"}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &throttled,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Http { status: 429, .. }) && err.retryable(),
        "{err}"
    );
    let e = p
        .validate(&obj(
            json!({"summary": "s", "source": "s", "severity": "fatal"}),
        ))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "severity"),
        "{e}"
    );
    // A 400 from the service is permanent and its message does not echo the key.
    let bad_key = build_local(
        json!({"kind": "pagerduty", "routing_key": "short-secret-key", "url": server.url("/v2/enqueue")}),
    );
    let ok = obj(json!({"summary": "s", "source": "s", "severity": "info"}));
    let err = bad_key
        .call(&EffectCall {
            idempotency_key: "k",
            params: &ok,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Http { status: 400, .. }) && !err.retryable(),
        "{err}"
    );
    assert!(!err.to_string().contains("short-secret-key"));
}
