//! `dingtalk` against a local robot endpoint that verifies the documented signature.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply_json};
use crate::sinks::{EffectCall, SinkError};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;

const SECRET: &str = "SECdingtalk-robot-secret";

/// DingTalk's documented algorithm: HMAC-SHA256 keyed with the secret over "timestamp\nsecret".
fn expected_sign(ts: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}\n{SECRET}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn query_pairs(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test]
async fn signed_markdown_and_text() {
    let server = MockServer::start(|r| {
        let pairs = query_pairs(r.query.as_deref().unwrap_or(""));
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let token_ok = get("access_token").as_deref() == Some("ROBOTTOKEN");
        let ts = get("timestamp").unwrap_or_default();
        let sign_ok = get("sign") == Some(expected_sign(&ts));
        let v = r.json();
        if token_ok && sign_ok && v["msgtype"].is_string() && r.path == "/robot/send" {
            reply_json(200, json!({"errcode": 0, "errmsg": "ok"}))
        } else {
            reply_json(200, json!({"errcode": 310000, "errmsg": "sign not match"}))
        }
    })
    .await;
    let p = build_local(
        json!({"kind": "dingtalk", "url": server.url("/robot/send?access_token=ROBOTTOKEN"), "secret": SECRET}),
    );
    let params = obj(json!({"title": "Incident", "text": "### web-1 down", "at_all": true}));
    let out = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap();
    assert_eq!(out.response, json!({"errcode": 0, "errmsg": "ok"}));
    let r = &server.requests()[0];
    let body = r.json();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(
        body["markdown"],
        json!({"title": "Incident", "text": "### web-1 down"})
    );
    assert_eq!(body["at"]["isAtAll"], true);
    // The raw query must percent-encode base64's + / = (urlencode), not leave them bare.
    let raw = r.query.clone().unwrap();
    let sign_raw = raw.split('&').find(|kv| kv.starts_with("sign=")).unwrap();
    assert!(!sign_raw[5..].contains(['+', '/', '=']), "{sign_raw}");
    let ts: u128 = query_pairs(&raw)
        .into_iter()
        .find(|(k, _)| k == "timestamp")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(ts > 1_700_000_000_000, "milliseconds");

    let params = obj(json!({"text": "plain"}));
    p.call(&EffectCall {
        idempotency_key: "k",
        params: &params,
    })
    .await
    .unwrap();
    assert_eq!(
        server.requests()[1].json(),
        json!({"msgtype": "text", "text": {"content": "plain"}})
    );
    assert_no_secrets(p.as_ref(), &[], &[SECRET, "ROBOTTOKEN"]);
}

#[tokio::test]
async fn errcodes_become_errors() {
    let server = MockServer::start(|r| {
        if r.json()["text"]["content"] == "fast" {
            reply_json(
                200,
                json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
            )
        } else {
            reply_json(
                200,
                json!({"errcode": 300001, "errmsg": "token is not exist"}),
            )
        }
    })
    .await;
    let p = build_local(
        json!({"kind": "dingtalk", "url": server.url("/robot/send?access_token=ROBOTTOKEN")}),
    );
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &obj(json!({"text": "fast"})),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Service { code: 130101, .. }) && err.retryable(),
        "{err}"
    );
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &obj(json!({"text": "x"})),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Service { code: 300001, .. }) && !err.retryable(),
        "{err}"
    );
    assert!(!err.to_string().contains("ROBOTTOKEN"));
    let q = server.requests()[0].query.clone().unwrap();
    assert!(!q.contains("sign="), "no secret, no sign: {q}");
}
