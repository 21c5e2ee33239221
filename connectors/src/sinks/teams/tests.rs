//! `teams` against a local server that checks the Workflows webhook contract.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply};
use crate::sinks::{EffectCall, SinkError};
use serde_json::json;

#[tokio::test]
async fn sends_an_adaptive_card() {
    let server = MockServer::start(|r| {
        let v = r.json();
        let a = &v["attachments"][0];
        let ok = r.method == "POST"
            && r.header("content-type") == Some("application/json")
            && v["type"] == "message"
            && a["contentType"] == "application/vnd.microsoft.card.adaptive"
            && a["contentUrl"].is_null()
            && a["content"]["type"] == "AdaptiveCard"
            && a["content"]["version"].is_string()
            && a["content"]["body"].is_array();
        if ok {
            reply(202, "text/plain", "")
        } else {
            reply(
                400,
                "application/json",
                r#"{"error":{"code":"InvalidRequestContent"}}"#,
            )
        }
    })
    .await;
    let p = build_local(
        json!({"kind": "teams", "url": server.url("/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SIGSECRET")}),
    );
    let params = obj(
        json!({"title": "Disk full", "text": "web-1 at 99%", "facts": {"service": "web", "severity": "critical"}}),
    );
    let out = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap();
    assert_eq!(out.status, "202");
    let body = server.requests()[0].json();
    let card = &body["attachments"][0]["content"];
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["body"][0]["text"], "Disk full");
    assert_eq!(card["body"][1]["wrap"], true);
    assert_eq!(card["body"][2]["type"], "FactSet");
    assert_eq!(
        card["body"][2]["facts"][0],
        json!({"title": "service", "value": "web"})
    );
    assert_no_secrets(p.as_ref(), &[], &["SIGSECRET"]);
}

#[tokio::test]
async fn errors_keep_the_signature_out() {
    let server = MockServer::start(|_| reply(400, "application/json", r#"{"error":"bad"}"#)).await;
    let p = build_local(json!({"kind": "teams", "url": server.url("/invoke?sig=SIGSECRET")}));
    let params = obj(json!({"title": "t", "text": "x"}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Http { status: 400, .. }));
    assert!(!err.to_string().contains("SIGSECRET"));
    let e = p.validate(&obj(json!({"text": "x"}))).unwrap_err();
    assert!(matches!(&e, SinkError::Params { field, .. } if field == "title"));
}
