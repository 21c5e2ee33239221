//! `webhook` against a local receiver that checks the documented headers and signature.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply, reply_json};
use crate::sinks::{EffectCall, SinkError};
use hmac::{Hmac, Mac};
use serde_json::json;

const SECRET: &str = "whsec-very-secret-key";

/// The documented algorithm, written independently of the provider's code.
fn expected_signature(ts: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn posts_signed_json_with_idempotency_key() {
    let server = MockServer::start(|r| {
        let ok = r.method == "POST"
            && r.header("content-type") == Some("application/json")
            && r.header("idempotency-key") == Some("effect-1");
        let ts = r.header("x-aiops-timestamp").unwrap_or("");
        let sig_ok =
            r.header("x-aiops-signature") == Some(expected_signature(ts, &r.body).as_str());
        if ok && sig_ok {
            reply_json(200, json!({"received": true}))
        } else {
            reply(401, "text/plain", "bad signature")
        }
    })
    .await;
    let p = build_local(json!({
        "kind": "webhook", "url": server.url("/hook?token=tok-in-query"), "secret": SECRET,
        "headers": {"Authorization": "Bearer header-secret"}
    }));
    let params = obj(json!({"alert": "disk full", "host": "web-1", "headers": {"X-Team": "ops"}}));
    let out = p
        .call(&EffectCall {
            idempotency_key: "effect-1",
            params: &params,
        })
        .await
        .unwrap();
    assert_eq!(out.status, "200");
    assert_eq!(out.response, json!({"received": true}));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/hook");
    assert_eq!(r.json(), json!({"alert": "disk full", "host": "web-1"}));
    assert_eq!(r.header("x-team"), Some("ops"));
    assert_eq!(r.header("authorization"), Some("Bearer header-secret"));
    let ts: u64 = r.header("x-aiops-timestamp").unwrap().parse().unwrap();
    assert!(ts > 1_700_000_000);
    assert_eq!(
        p.target(&EffectCall {
            idempotency_key: "k",
            params: &params
        }),
        format!("127.0.0.1:{}", server.addr.port())
    );
    assert_no_secrets(p.as_ref(), &[], &[SECRET, "tok-in-query", "header-secret"]);
}

#[tokio::test]
async fn explicit_body_and_error_statuses() {
    let server = MockServer::start(|r| {
        if r.json() == json!([1, 2, 3]) {
            reply(503, "text/plain", "busy; token=tok-in-query")
        } else {
            reply(400, "text/plain", "nope")
        }
    })
    .await;
    let p = build_local(json!({"kind": "webhook", "url": server.url("/h?token=tok-in-query")}));
    let params = obj(json!({"body": [1, 2, 3]}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Http { status: 503, .. }), "{err}");
    assert!(err.retryable());
    assert!(!err.to_string().contains("tok-in-query"), "{err}");
    let params = obj(json!({"body": {"x": 1}}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Http { status: 400, .. }) && !err.retryable());
    // No signature header without a secret.
    assert!(server.requests()[0].header("x-aiops-signature").is_none());
}

#[tokio::test]
async fn network_errors_are_retryable_and_name_no_url() {
    // Bind then drop a listener: the port is closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = build_local(
        json!({"kind": "webhook", "url": format!("http://127.0.0.1:{port}/x?token=tok-closed")}),
    );
    let params = obj(json!({}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Network(_)), "{err}");
    assert!(err.retryable());
    let msg = err.to_string();
    assert!(
        msg.contains("webhook") && msg.contains("127.0.0.1"),
        "{msg}"
    );
    assert!(!msg.contains("tok-closed") && !msg.contains("/x"), "{msg}");
}

#[test]
fn bad_params_and_config_name_the_field() {
    let p = build_local(json!({"kind": "webhook", "url": "http://127.0.0.1:9/"}));
    let err = p
        .validate(&obj(json!({"headers": {"X": ["a"]}})))
        .unwrap_err();
    assert!(
        matches!(&err, SinkError::Params { field, .. } if field == "headers.X"),
        "{err}"
    );
    let err = crate::sinks::build_provider(
        "w",
        &json!({"kind": "webhook", "url": "http://127.0.0.1:9/", "secrte": "whsec-very-secret-key"}),
        &crate::sinks::testing::local_ctx(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("secrte") && !msg.contains(SECRET), "{msg}");
}
