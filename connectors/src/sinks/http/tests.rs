//! `http` against a local server: JSON, text, the size limit, relative URLs and refusals.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply, reply_json};
use crate::sinks::{EffectCall, SinkError};
use serde_json::json;

#[tokio::test]
async fn gets_json_text_and_refuses_big_answers() {
    let server = MockServer::start(|r| {
        if r.header("x-api-key") != Some("cmdb-api-secret") {
            return reply(401, "text/plain", "no key");
        }
        match r.path.as_str() {
            "/cmdb/hosts/web-1" => reply_json(200, json!({"owner": "team-web"})),
            "/cmdb/text" => reply(200, "text/plain", "plain words"),
            "/cmdb/big" => reply(200, "application/json", "x".repeat(super::MAX_BODY + 10)),
            _ => reply(404, "text/plain", "not found"),
        }
    })
    .await;
    let p = build_local(
        json!({"kind": "http", "url": server.url("/cmdb"), "headers": {"X-Api-Key": "cmdb-api-secret"}}),
    );
    let params = obj(json!({"url": "hosts/web-1"}));
    let out = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap();
    assert_eq!(out.response, json!({"owner": "team-web"}));
    let params = obj(json!({"url": server.url("/cmdb/text")}));
    let out = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap();
    assert_eq!(out.response, json!("plain words"));
    let params = obj(json!({"url": "/big"}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Refused { .. }) && err.to_string().contains("exceeds"),
        "{err}"
    );
    let params = obj(json!({"url": "missing"}));
    let err = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Http { status: 404, .. }), "{err}");
    assert_no_secrets(p.as_ref(), &[err.to_string()], &["cmdb-api-secret"]);
}

#[test]
fn refuses_local_targets_in_params() {
    let p = build_local(json!({"kind": "http"}));
    for bad in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
    ] {
        let e = p.validate(&obj(json!({"url": bad}))).unwrap_err();
        assert!(matches!(e, SinkError::Refused { .. }), "{bad}: {e}");
    }
    let e = p.validate(&obj(json!({"url": "relative"}))).unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "url"),
        "{e}"
    );
}
