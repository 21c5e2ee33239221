//! ClickHouse request shape against a local server (query parameters, settings, credential
//! headers) and the JSONCompact cell conversion. The real server is tested in
//! `connectors/tests/pull_databases.rs`.

use super::config::ClickHouseConfig;
use crate::outbound::OutboundPolicy;
use crate::sources::range::RangeSource;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// 2026-01-01T00:00:00Z.
const FROM: i64 = 1_767_225_600_000;

type Seen = Arc<Mutex<Vec<(HashMap<String, String>, String)>>>;

async fn handler(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> axum::response::Response {
    seen.lock().unwrap().push((q.clone(), body.clone()));
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if h("x-clickhouse-user") != "reader" || h("x-clickhouse-key") != "ch-Secret-42" {
        return (
            StatusCode::FORBIDDEN,
            "Code: 516, e.displayText() = DB::Exception: reader: Authentication failed: password is incorrect",
        )
            .into_response();
    }
    let json = serde_json::json!({
        "meta": [
            {"name": "ts", "type": "DateTime64(3, 'UTC')"},
            {"name": "host", "type": "LowCardinality(String)"},
            {"name": "hits", "type": "UInt64"},
            {"name": "ratio", "type": "Nullable(Float64)"}
        ],
        "data": [
            ["2026-01-01 00:00:00.000", "web-1", "18446744073709551615", 0.5],
            ["2026-01-01 00:00:30.500", "web-2", "7", null]
        ],
        "rows": 2
    });
    axum::Json(json).into_response()
}

async fn server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/", axum::routing::post(handler))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/"), seen)
}

fn config(url: &str, password: &str) -> ClickHouseConfig {
    toml::from_str(&format!(
        "url = {url:?}\nuser = \"reader\"\npassword = {{ value = {password:?} }}\n\
         query = \"SELECT ts, host, hits, ratio FROM hits WHERE ts >= $__from AND ts < $__to AND id > $__from_ms\"\n\
         [mapping]\nkind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"hits\", \"ratio\"]\n"
    ))
    .unwrap()
}

#[tokio::test]
async fn binds_the_range_as_query_parameters_with_readonly_settings() {
    let (url, seen) = server().await;
    let src = config(&url, "ch-Secret-42")
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap();
    let out = src.pull(FROM, FROM + 60_000).await.unwrap();
    let (q, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(
        body,
        "SELECT ts, host, hits, ratio FROM hits WHERE ts >= {aiops_from:DateTime64(3, 'UTC')} \
         AND ts < {aiops_to:DateTime64(3, 'UTC')} AND id > {aiops_from_ms:Int64}"
    );
    assert_eq!(q["param_aiops_from"], "2026-01-01 00:00:00.000");
    assert_eq!(q["param_aiops_to"], "2026-01-01 00:01:00.000");
    assert_eq!(q["param_aiops_from_ms"], FROM.to_string());
    assert_eq!(q["readonly"], "1");
    assert_eq!(q["max_execution_time"], "10");
    assert_eq!(q["max_result_rows"], "100000");
    assert_eq!(q["result_overflow_mode"], "throw");
    assert_eq!(q["default_format"], "JSONCompact");
    // Row 1: hits (u64 max) and ratio; row 2: hits only (NULL ratio).
    assert_eq!(out[0].batch.num_rows(), 3);
    assert_eq!(out[0].time_range, Some((FROM, FROM + 30_500)));
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error_without_the_password() {
    let (url, _) = server().await;
    let src = config(&url, "Wrong-ch-pass")
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap();
    let e = src.pull(FROM, FROM + 60_000).await.unwrap_err().to_string();
    assert!(
        e.contains("authentication failed for user \"reader\""),
        "{e}"
    );
    assert!(!e.contains("Wrong-ch-pass"), "{e}");
    let r = src.test(FROM).await.unwrap();
    assert!(!r.reachable);
}

#[test]
fn urls_with_credentials_are_refused() {
    let c = config("http://u:p@127.0.0.1:8123/", "x1234");
    let e = c
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("must not hold credentials"), "{e}");
    assert!(!e.contains("u:p"), "{e}");
}
