//! The Datadog source against a local contract server that checks the documented request
//! (`GET /api/v1/query` with `from`/`to` in seconds, `query`, the two key headers) and answers
//! with the documented response shape.

use super::config::DatadogQueryConfig;
use super::prometheus_name;
use super::source::DatadogQuerySource;
use crate::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sources::range::RangeSource;
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const API_KEY: &str = "dd-api-0123456789abcdef";
const APP_KEY: &str = "dd-app-fedcba9876543210";
const FROM: i64 = 1_767_225_600_000;

#[derive(Default)]
struct Seen {
    queries: Vec<HashMap<String, String>>,
}

async fn query(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    seen.lock().unwrap().queries.push(q.clone());
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if h("dd-api-key") != API_KEY || h("dd-application-key") != APP_KEY {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({"errors": ["Forbidden"]})),
        )
            .into_response();
    }
    let from: i64 = match q.get("from").and_then(|v| v.parse().ok()) {
        Some(v) => v,
        None => return (StatusCode::BAD_REQUEST, "from must be integer seconds").into_response(),
    };
    let to: i64 = match q.get("to").and_then(|v| v.parse().ok()) {
        Some(v) => v,
        None => return (StatusCode::BAD_REQUEST, "to must be integer seconds").into_response(),
    };
    let Some(qs) = q.get("query") else {
        return (StatusCode::BAD_REQUEST, "query is required").into_response();
    };
    if qs.contains("bad(") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"errors": ["Error parsing query: unexpected '('"]})),
        )
            .into_response();
    }
    let f = (from * 1000) as f64;
    // The documented shape: series[] with metric, scope, tag_set, pointlist [[ms, value|null]].
    axum::Json(serde_json::json!({
        "status": "ok",
        "res_type": "time_series",
        "from_date": from * 1000,
        "to_date": to * 1000,
        "query": qs,
        "message": "",
        "group_by": ["host"],
        "series": [
            {
                "metric": "system.cpu.user",
                "display_name": "system.cpu.user",
                "expression": "avg:system.cpu.user{env:prod,host:web-1}",
                "scope": "env:prod,host:web-1",
                "tag_set": ["env:prod", "host:web-1"],
                "aggr": "avg",
                "interval": 20,
                "length": 4,
                "start": from * 1000,
                "end": to * 1000,
                "unit": null,
                "pointlist": [[f - 1000.0, 9.0], [f, 1.5], [f + 20_000.0, null], [f + 40_000.0, 2.5], [(to * 1000) as f64, 9.0]]
            },
            {
                "metric": "system.cpu.user",
                "scope": "env:prod,host:web-2,standalone",
                "tag_set": [],
                "pointlist": [[f + 1.0, 7.0]]
            }
        ]
    }))
    .into_response()
}

async fn server() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new()
        .route("/api/v1/query", axum::routing::get(query))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

fn config(endpoint: &str, query: &str, app_key: &str) -> DatadogQueryConfig {
    toml::from_str(&format!(
        "query = {query:?}\nendpoint = {endpoint:?}\napi_key = {{ value = {API_KEY:?} }}\napp_key = {{ value = {app_key:?} }}\nlabels = {{ source = \"dd\" }}\n"
    ))
    .unwrap()
}

fn source(endpoint: &str, query: &str, app_key: &str) -> DatadogQuerySource {
    config(endpoint, query, app_key)
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap()
}

#[tokio::test]
async fn pulls_series_as_metric_rows_with_tags_as_labels() {
    let (url, seen) = server().await;
    let src = source(&url, "avg:system.cpu.user{env:prod} by {host}", APP_KEY);
    let out = src.pull(FROM, FROM + 60_000).await.unwrap();
    let q = seen.lock().unwrap().queries[0].clone();
    assert_eq!(q["from"], (FROM / 1000).to_string());
    assert_eq!(q["to"], ((FROM + 60_000) / 1000).to_string());
    assert_eq!(q["query"], "avg:system.cpu.user{env:prod} by {host}");
    assert_eq!(out.len(), 1);
    let b = &out[0].batch;
    // Points before the range, at its end and null ones are not stored.
    assert_eq!(b.num_rows(), 3);
    let t = b.column(0).as_primitive::<TimestampMillisecondType>();
    let v = b.column(3).as_primitive::<Float64Type>();
    assert_eq!(
        (0..3).map(|i| (t.value(i), v.value(i))).collect::<Vec<_>>(),
        [(FROM, 1.5), (FROM + 40_000, 2.5), (FROM + 1, 7.0)]
    );
    assert_eq!(b.column(1).as_string::<i32>().value(0), "system_cpu_user");
    let labels = |i: usize| {
        let m = b.column(2).as_map().value(i);
        let (k, v) = (
            m.column(0).as_string::<i32>(),
            m.column(1).as_string::<i32>(),
        );
        (0..k.len())
            .map(|j| format!("{}={}", k.value(j), v.value(j)))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(labels(0), "env=prod,host=web-1,source=dd");
    // Without a tag_set the scope is used; a tag without a value is "true".
    assert_eq!(labels(2), "env=prod,host=web-2,source=dd,standalone=true");
    let report = src.test(FROM + 60_000).await.unwrap();
    assert!(report.reachable && report.problems.is_empty(), "{report:?}");
    assert_eq!(report.rows.get("metrics"), Some(&3));
}

#[tokio::test]
async fn wrong_keys_and_bad_queries_are_clear_errors_without_the_keys() {
    let (url, _) = server().await;
    let wrong = "dd-app-WRONG-0000000000";
    let src = source(&url, "avg:system.cpu.user{*}", wrong);
    let e = src.pull(FROM, FROM + 60_000).await.unwrap_err();
    assert!(matches!(e, SourceError::Config(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("refused the keys (HTTP 403 Forbidden): Forbidden"),
        "{text}"
    );
    assert!(!text.contains(wrong) && !text.contains(API_KEY), "{text}");
    let report = src.test(FROM).await.unwrap();
    assert!(!report.reachable);

    let src = source(&url, "bad(system.cpu.user{*})", APP_KEY);
    let e = src.pull(FROM, FROM + 60_000).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("refused the query (HTTP 400 Bad Request): Error parsing query"),
        "{e}"
    );
}

#[test]
fn sites_endpoints_and_outbound() {
    let mut c = config("http://127.0.0.1:1", "q", APP_KEY);
    c.endpoint = None;
    assert_eq!(c.query_url(), "https://api.datadoghq.com/api/v1/query");
    c.site = "datadoghq.eu".into();
    assert_eq!(c.query_url(), "https://api.datadoghq.eu/api/v1/query");
    let c = config("http://127.0.0.1:1/", "q", APP_KEY);
    assert_eq!(c.query_url(), "http://127.0.0.1:1/api/v1/query");
    let e = c.build_with(&OutboundPolicy::default()).unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
    let mut c = config("http://127.0.0.1:1", "q", APP_KEY);
    c.app_key = toml::from_str::<toml::Value>("k = { env = \"AIOPS_TEST_DD_UNSET_KEY\" }")
        .unwrap()
        .get("k")
        .unwrap()
        .clone()
        .try_into()
        .unwrap();
    let e = c
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap_err();
    assert!(e.to_string().contains("AIOPS_TEST_DD_UNSET_KEY"), "{e}");
    assert_eq!(prometheus_name("system.cpu.user"), "system_cpu_user");
    assert_eq!(prometheus_name("9lives"), "_9lives");
    assert_eq!(prometheus_name("__x"), "_x");
}
