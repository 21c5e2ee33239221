//! `feishu` against a local bot endpoint that verifies the documented signature.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply_json};
use crate::sinks::{EffectCall, SinkError};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;

const SECRET: &str = "feishu-bot-secret-123";

/// Feishu's documented algorithm: HMAC-SHA256 keyed with "timestamp\nsecret" over nothing.
fn expected_sign(ts: &str) -> String {
    let mac = Hmac::<sha2::Sha256>::new_from_slice(format!("{ts}\n{SECRET}").as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn signed_text_and_card() {
    let server = MockServer::start(|r| {
        let v = r.json();
        let ts = v["timestamp"].as_str().unwrap_or("");
        if v["sign"].as_str() == Some(expected_sign(ts).as_str()) && v["msg_type"].is_string() {
            reply_json(200, json!({"code": 0, "data": {}, "msg": "success"}))
        } else {
            reply_json(200, json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}))
        }
    })
    .await;
    let p = build_local(
        json!({"kind": "feishu", "url": server.url("/open-apis/bot/v2/hook/HOOKTOKEN"), "secret": SECRET}),
    );
    let params = obj(json!({"text": "disk full"}));
    let out = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap();
    assert_eq!(out.status, "200");
    let body = server.requests()[0].json();
    assert_eq!(body["msg_type"], "text");
    assert_eq!(body["content"]["text"], "disk full");
    let ts: u64 = body["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(ts > 1_700_000_000 && ts < 10_000_000_000, "seconds, not ms");

    let params = obj(json!({"title": "Incident", "content": "**web-1** down"}));
    p.call(&EffectCall {
        idempotency_key: "k",
        params: &params,
    })
    .await
    .unwrap();
    let body = server.requests()[1].json();
    assert_eq!(body["msg_type"], "interactive");
    assert_eq!(body["card"]["header"]["title"]["content"], "Incident");
    assert_eq!(body["card"]["elements"][0]["text"]["tag"], "lark_md");
    assert_eq!(
        body["card"]["elements"][0]["text"]["content"],
        "**web-1** down"
    );
    assert_no_secrets(p.as_ref(), &[], &[SECRET, "HOOKTOKEN"]);
}

#[tokio::test]
async fn codes_become_errors() {
    let server = MockServer::start(|r| {
        if r.json()["content"]["text"] == "fast" {
            reply_json(200, json!({"code": 11232, "msg": "frequency limited"}))
        } else {
            reply_json(400, json!({"code": 9499, "msg": "Bad Request", "data": {}}))
        }
    })
    .await;
    let p = build_local(
        json!({"kind": "feishu", "url": server.url("/open-apis/bot/v2/hook/HOOKTOKEN")}),
    );
    let fast = obj(json!({"text": "fast"}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &fast,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Service { code: 11232, .. }) && err.retryable(),
        "{err}"
    );
    let bad = obj(json!({"text": "bad"}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &bad,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Service { code: 9499, .. }) && !err.retryable(),
        "{err}"
    );
    assert!(
        server.requests()[0].json().get("sign").is_none(),
        "no secret, no sign"
    );
    let e = p.validate(&obj(json!({"content": "x"}))).unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "title"),
        "{e}"
    );
}

#[test]
fn sign_matches_a_known_vector() {
    // Independent recomputation for a fixed timestamp.
    assert_eq!(
        super::sign(1_599_360_473, SECRET),
        expected_sign("1599360473")
    );
}
