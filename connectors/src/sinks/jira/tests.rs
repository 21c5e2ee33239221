//! `jira` against a local REST v2 server: auth, create body, crash-retry, error answers.

use crate::sinks::testing::{MockServer, assert_no_secrets, build_local, obj, reply_json};
use crate::sinks::{EffectCall, SinkError};
use base64::Engine as _;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "ATATT-jira-api-token-secret";

/// A Jira that stores created issues, answers label searches on `/search/jql` (Cloud), and
/// refuses bad creates like Jira does (400 with errorMessages/errors).
fn jira_like(
    store: Arc<Mutex<Vec<Value>>>,
    cloud: bool,
) -> impl Fn(&crate::sinks::testing::Recorded) -> axum::response::Response {
    move |r| {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("ops@example.com:{TOKEN}"))
        );
        if r.header("authorization") != Some(basic.as_str()) {
            return reply_json(
                401,
                json!({"errorMessages": ["You are not authenticated."], "errors": {}}),
            );
        }
        let search_path = if cloud {
            "/jira/rest/api/2/search/jql"
        } else {
            "/jira/rest/api/2/search"
        };
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", p) if p == search_path => {
                let q = r.query.clone().unwrap_or_default();
                let jql = url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "jql")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let issues: Vec<Value> =
                    store
                        .lock()
                        .unwrap()
                        .iter()
                        .filter(|i| {
                            i["fields"]["labels"].as_array().unwrap().iter().any(|l| {
                                jql.contains(&format!("labels = \"{}\"", l.as_str().unwrap()))
                            })
                        })
                        .map(|i| json!({"id": i["id"], "key": i["key"]}))
                        .collect();
                reply_json(200, json!({"issues": issues}))
            }
            ("POST", "/jira/rest/api/2/issue") => {
                let mut v = r.json();
                let f = &v["fields"];
                if !f["summary"].is_string()
                    || !f["project"]["key"].is_string()
                    || !f["issuetype"]["name"].is_string()
                {
                    return reply_json(
                        400,
                        json!({"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}}),
                    );
                }
                if f["project"]["key"] != "OPS" {
                    return reply_json(
                        400,
                        json!({"errorMessages": [], "errors": {"project": "valid project is required"}}),
                    );
                }
                let mut st = store.lock().unwrap();
                let n = st.len() + 1;
                v["id"] = json!(format!("{}", 10000 + n));
                v["key"] = json!(format!("OPS-{n}"));
                st.push(v.clone());
                reply_json(
                    201,
                    json!({"id": v["id"], "key": v["key"], "self": format!("http://jira/rest/api/2/issue/{}", v["id"].as_str().unwrap())}),
                )
            }
            _ => reply_json(404, json!({"errorMessages": ["Not found"]})),
        }
    }
}

#[tokio::test]
async fn creates_once_across_a_crash_retry() {
    for cloud in [true, false] {
        let store: Arc<Mutex<Vec<Value>>> = Arc::default();
        let server = MockServer::start(jira_like(store.clone(), cloud)).await;
        let p = build_local(
            json!({"kind": "jira", "url": server.url("/jira"), "user": "ops@example.com", "token": TOKEN}),
        );
        let params = obj(
            json!({"project": "OPS", "summary": "Disk full on web-1", "description": "99% used", "labels": ["disk"], "priority": "High"}),
        );
        let call = EffectCall {
            idempotency_key: "incident-7/ticket",
            params: &params,
        };
        let first = p.call(&call).await.unwrap();
        assert_eq!(first.status, "201");
        assert_eq!(first.response, json!({"key": "OPS-1", "id": "10001"}));
        // The engine crashed before logging the result and runs the effect again.
        let again = p.call(&call).await.unwrap();
        assert_eq!(again.response["key"], "OPS-1");
        assert_eq!(again.response["existing"], true);
        let creates = server
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count();
        assert_eq!(creates, 1, "cloud={cloud}");
        let issue = store.lock().unwrap()[0].clone();
        assert_eq!(issue["fields"]["issuetype"]["name"], "Task");
        assert_eq!(issue["fields"]["priority"]["name"], "High");
        assert_eq!(issue["fields"]["labels"][0], "disk");
        let label = issue["fields"]["labels"][1].as_str().unwrap().to_owned();
        assert!(
            label.starts_with("aiops-") && label.len() == 6 + 16,
            "{label}"
        );
        assert_eq!(p.target(&call), "OPS");
        assert_no_secrets(p.as_ref(), &[], &[TOKEN]);
        // A different effect creates a second issue.
        let other = EffectCall {
            idempotency_key: "incident-8/ticket",
            params: &params,
        };
        assert_eq!(p.call(&other).await.unwrap().response["key"], "OPS-2");
    }
}

#[tokio::test]
async fn jira_errors_are_permanent_and_secret_free() {
    let store: Arc<Mutex<Vec<Value>>> = Arc::default();
    let server = MockServer::start(jira_like(store, true)).await;
    let p = build_local(
        json!({"kind": "jira", "url": server.url("/jira"), "user": "ops@example.com", "token": TOKEN}),
    );
    let params = obj(json!({"project": "NOPE", "summary": "x"}));
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
        } => assert!(body_excerpt.contains("valid project is required")),
        other => panic!("{other}"),
    }
    assert!(!err.retryable());
    let wrong = build_local(
        json!({"kind": "jira", "url": server.url("/jira"), "user": "ops@example.com", "token": "wrong-token-value"}),
    );
    let err = wrong
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Http { status: 401, .. }));
    assert!(!err.to_string().contains("wrong-token-value"));
    let e = p
        .validate(&obj(
            json!({"project": "OPS", "summary": "x", "labels": ["has space"]}),
        ))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "labels[0]"),
        "{e}"
    );
    let e = p
        .validate(&obj(json!({"project": "OPS\" OR 1=1", "summary": "x"})))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "project"),
        "{e}"
    );
    let e = crate::sinks::build_provider(
        "j",
        &json!({"kind": "jira", "url": server.url("/"), "user": "u"}),
        &crate::sinks::testing::local_ctx(),
    )
    .unwrap_err();
    assert!(matches!(e, SinkError::Config(_)), "{e}");
}
