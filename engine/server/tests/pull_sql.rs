//! A PostgreSQL data source through the `aiops` binary: created with `POST /api/datasources`
//! (password as an environment reference), its first start backfills the recent past, and the
//! rows read back with `/api/sql` are exactly the table's rows of that range, each once; the
//! password is never shown. PostgreSQL is started by the test in a temp dir on a free port
//! (`scripts/test-deps/databases.sh` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "../../../connectors/tests/dbpeers/mod.rs"]
mod dbpeers;

use common::{Aiops, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "pg-e2e-Secret-2718";

/// The test writes rows a few minutes before now, which the first start backfills.
#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn send(
    c: &reqwest::Client,
    a: &Aiops,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = c.request(m, a.url(path));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

async fn sql(c: &reqwest::Client, a: &Aiops, q: &str) -> Vec<Value> {
    let (s, v) = send(c, a, "POST", "/api/sql", Some(json!({ "sql": q }))).await;
    assert_eq!(s, 200, "{q}: {v}");
    v["rows"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_source_rows_reach_sql_exactly_once() {
    let pg = dbpeers::Postgres::start(PASSWORD);
    // Six rows one minute apart, ending two minutes ago (whole seconds), plus one row in the
    // future that no range pulled during the test may contain.
    let end_s = now_ms() / 1000 - 120;
    let mut values = Vec::new();
    for i in 0..6 {
        values.push(format!(
            "(to_timestamp({}), 'db{}', {}, {}.5)",
            end_s - 60 * (5 - i),
            i % 2,
            i + 1,
            i
        ));
    }
    values.push(format!("(to_timestamp({}), 'late', 99, 99)", end_s + 3600));
    pg.exec(&format!(
        "CREATE TABLE checkouts (ts timestamptz NOT NULL, shard text, orders int8, revenue numeric(10,2)); \
         INSERT INTO checkouts VALUES {};",
        values.join(", ")
    ));

    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start_env(
        dir.path(),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &[
            ("AIOPS__OUTBOUND__ALLOW", "[\"127.0.0.1\"]"),
            ("AIOPS_TEST_PG_PASSWORD", PASSWORD),
        ],
    );
    let c = reqwest::Client::new();
    let (s, v) = send(&c, &a, "POST", "/api/datasources", Some(json!({
        "id": "shop_db",
        "type": "postgres",
        "url": format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port),
        "password": {"env": "AIOPS_TEST_PG_PASSWORD"},
        "query": "SELECT ts, shard, orders, revenue FROM checkouts WHERE ts >= $__from AND ts < $__to",
        "interval": "30s",
        "max_range": "5m",
        "schedule": {"delay": "1s", "initial_backfill": "15m"},
        "mapping": {"kind": "metrics", "time_column": "ts", "value_columns": ["orders", "revenue"],
                    "metric_prefix": "shop_", "labels": {"origin": "pg"}}
    }))).await;
    assert_eq!(s, 201, "{v}");

    // A test pull writes nothing and sees the table.
    let (s, report) = send(&c, &a, "POST", "/api/datasources/shop_db/test", None).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["reachable"], true, "{report}");

    let count = "SELECT count(*) AS n FROM metrics WHERE labels['origin'] = 'pg'";
    let mut last = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        last = sql(&c, &a, count).await[0]["n"].as_i64().unwrap_or(0);
        if last >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last, 12, "6 rows x 2 value columns");
    let rows = sql(
        &c,
        &a,
        "SELECT name, labels['shard'] AS shard, CAST(time AS BIGINT) AS t, value FROM metrics \
         WHERE labels['origin'] = 'pg' ORDER BY t, name",
    )
    .await;
    let got: Vec<(String, String, i64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["shard"].as_str().unwrap().to_string(),
                r["t"].as_i64().unwrap(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect();
    let mut want = Vec::new();
    for i in 0..6i64 {
        let t = (end_s - 60 * (5 - i)) * 1000;
        want.push((
            "shop_orders".to_string(),
            format!("db{}", i % 2),
            t,
            (i + 1) as f64,
        ));
        want.push((
            "shop_revenue".to_string(),
            format!("db{}", i % 2),
            t,
            i as f64 + 0.5,
        ));
    }
    assert_eq!(got, want);

    // More pulls happen; nothing is stored twice.
    let m = send(&c, &a, "GET", "/api/datasources/shop_db/metrics", None)
        .await
        .1;
    let pulls = m["pulls"].as_u64().unwrap_or(0);
    wait_until(Duration::from_secs(60), "another pull", || {
        let body = common::http_get(&a.url("/api/datasources/shop_db/metrics")).unwrap_or_default();
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["pulls"].as_u64())
            .is_some_and(|p| p > pulls)
    });
    assert_eq!(sql(&c, &a, count).await[0]["n"].as_i64(), Some(12));

    // The password is shown as its reference, never as the value.
    let (_, list) = send(&c, &a, "GET", "/api/datasources", None).await;
    let text = list.to_string();
    assert!(text.contains("AIOPS_TEST_PG_PASSWORD"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!report.to_string().contains(PASSWORD));
}
