//! `grafana` against a local annotations API.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply_json};
use crate::sinks::{EffectCall, SinkError};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "glsa_servicetokensecret";

#[tokio::test]
async fn adds_once_per_effect() {
    let store: Arc<Mutex<Vec<Value>>> = Arc::default();
    let s = store.clone();
    let server = MockServer::start(move |r| {
        if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return reply_json(401, json!({"message": "Unauthorized"}));
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/grafana/api/annotations") => {
                let q = r.query.clone().unwrap_or_default();
                let tag = url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "tags")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let found: Vec<Value> = s
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|a| {
                        a["tags"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|t| t == &json!(tag))
                    })
                    .cloned()
                    .collect();
                reply_json(200, json!(found))
            }
            ("POST", "/grafana/api/annotations")
                if r.header("content-type") == Some("application/json") =>
            {
                let mut a = r.json();
                if !a["text"].is_string() {
                    return reply_json(400, json!({"message": "bad"}));
                }
                let mut st = s.lock().unwrap();
                let id = st.len() as i64 + 1;
                a["id"] = json!(id);
                st.push(a);
                reply_json(200, json!({"id": id, "message": "Annotation added"}))
            }
            _ => reply_json(404, json!({"message": "Not found"})),
        }
    })
    .await;
    let p = build_local(json!({"kind": "grafana", "url": server.url("/grafana/"), "token": TOKEN}));
    let params = obj(
        json!({"text": "deploy web v2", "tags": ["deploy"], "time": 1700000000000_i64, "time_end": "1700000060000", "dashboard_uid": "abc", "panel_id": 2}),
    );
    let call = EffectCall {
        idempotency_key: "eff-1",
        params: &params,
    };
    let first = p.call(&call).await.unwrap();
    assert_eq!(first.response, json!({"id": 1}));
    let again = p.call(&call).await.unwrap();
    assert_eq!(again.response, json!({"id": 1, "existing": true}));
    let st = store.lock().unwrap().clone();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["timeEnd"], 1700000060000_i64);
    assert_eq!(st[0]["dashboardUID"], "abc");
    assert_eq!(st[0]["panelId"], 2);
    assert_eq!(st[0]["tags"][0], "deploy");
    assert!(st[0]["tags"][1].as_str().unwrap().starts_with("aiops-"));
    assert_no_secrets(p.as_ref(), &[], &[TOKEN]);

    let e = p
        .validate(&obj(json!({"text": "x", "time": "soon"})))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "time"),
        "{e}"
    );
}
