//! Business metrics, SQL alert rules and pull sources managed over HTTP, through the real binary:
//! a change is compiled with the whole directory before anything is written (refused changes
//! leave no file), the engine loads what the API wrote, a business metric's `/data` equals the
//! same aggregation run in batch over the raw events, and API-created pull sources scrape for
//! real, survive a restart and can be tested without writing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Aiops, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const METRIC: &str = "INSERT INTO checkout_orders_1m\nSELECT tumble(time, INTERVAL '1 minute') AS window_start, labels['service'] AS service, count(*) AS orders\nFROM events WHERE type = 'order'\nGROUP BY tumble(time, INTERVAL '1 minute'), labels['service']";

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

fn config(root: &std::path::Path) -> (std::path::PathBuf, String) {
    let dir = root.join("pipelines");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = root.join("aiops.toml");
    std::fs::write(
        &cfg,
        format!(
            "[pipelines]\ndir = {:?}\nreload_interval = \"200ms\"\n",
            dir.display().to_string()
        ),
    )
    .unwrap();
    (dir, cfg.display().to_string())
}

fn running(a: &Aiops, name: &str) -> bool {
    common::http_get(&a.url("/api/pipelines"))
        .unwrap_or_default()
        .contains(&format!("\"name\":\"{name}\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_metrics_and_alert_rules_are_pipeline_files_checked_before_writing() {
    let root = tempfile::tempdir().unwrap();
    let (dir, cfg) = config(root.path());
    let a = Aiops::start(&root.path().join("data"), "embedded", &["--config", &cfg]);
    let c = reqwest::Client::new();

    // Orders over six minutes, posted first: every API write appends an audit event (to `events`,
    // at wall-clock time), which moves the event-time watermark of pipelines reading `events`.
    let base = (aiops_server::clock::now_ms() / 60_000 - 8) * 60_000;
    let mut body = String::new();
    let mut want: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for i in 0..300i64 {
        let t = base + i * 1_300 + (i * 7919) % 900;
        let svc = ["cart", "checkout"][(i % 3 == 0) as usize];
        body.push_str(&format!(
            "{{\"type\":\"order\",\"time\":{t},\"labels\":{{\"service\":\"{svc}\"}}}}\n"
        ));
        *want
            .entry((t / 60_000 * 60_000, svc.to_string()))
            .or_default() += 1;
    }
    // A later event closes the last window.
    body.push_str(&format!(
        "{{\"type\":\"tick\",\"time\":{}}}\n",
        base + 7 * 60_000
    ));
    // In time order, a few seconds per request: each service is its own log partition, and a
    // partition first seen far behind the others would find its windows closed.
    let lines: Vec<&str> = body.lines().collect();
    for chunk in lines.chunks(8) {
        common::post_ndjson(&a, "/api/ingest/events", &(chunk.join("\n") + "\n"));
    }
    let last_closed = (base + 7 * 60_000 - 5_000) / 60_000 * 60_000;
    want.retain(|(w, _), _| *w < last_closed);

    // Refused: bad SQL (file:line:col, nothing written), an alert under business metrics, a bad name.
    let (s, v) = send(
        &c,
        &a,
        "POST",
        "/api/business-metrics",
        Some(json!({"name": "bad", "sql": "INSERT INTO x SELECT nope FROM events"})),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["problems"][0].as_str().unwrap().contains("bad.sql:"),
        "{v}"
    );
    let (s, v) = send(&c, &a, "POST", "/api/business-metrics", Some(json!({"name": "low", "sql": "INSERT INTO alerts SELECT tumble(time, INTERVAL '1 minute') AS window_start, count(*) AS n FROM events GROUP BY tumble(time, INTERVAL '1 minute') HAVING count(*) < 1"}))).await;
    assert_eq!((s, v["reason"].as_str()), (422, Some("other_kind")), "{v}");
    let (s, _) = send(
        &c,
        &a,
        "POST",
        "/api/business-metrics",
        Some(json!({"name": "../etc", "sql": METRIC})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = send(
        &c,
        &a,
        "POST",
        "/api/business-metrics",
        Some(json!({"name": "x", "sqll": METRIC})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "refused changes write nothing"
    );

    // Created: the file exists with the description as its comment, and the engine runs it.
    let (s, v) = send(&c, &a, "POST", "/api/business-metrics", Some(json!({"name": "checkout_orders", "sql": METRIC, "description": "Orders per service per minute."}))).await;
    assert_eq!(s, 201, "{v}");
    let text = std::fs::read_to_string(dir.join("checkout_orders.sql")).unwrap();
    assert!(text.starts_with("-- Orders per service per minute.\nINSERT INTO checkout_orders_1m"));
    let (s, _) = send(
        &c,
        &a,
        "POST",
        "/api/business-metrics",
        Some(json!({"name": "checkout_orders", "sql": METRIC})),
    )
    .await;
    assert_eq!(s, 409);
    wait_until(Duration::from_secs(30), "the metric to run", || {
        running(&a, "checkout_orders")
    });

    // Its /data equals the same count in batch over the raw events.

    let data = || async {
        let (s, v) = send(
            &c,
            &a,
            "GET",
            &format!(
                "/api/business-metrics/checkout_orders/data?from={base}&to={}",
                base + 10 * 60_000
            ),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    (
                        aiops_alerting::silence::parse_rfc3339_ms(
                            r["window_start"].as_str().unwrap_or(""),
                        )
                        .unwrap_or_else(|| r["window_start"].as_i64().unwrap()),
                        r["service"].as_str().unwrap().to_string(),
                    ),
                    r["orders"].as_i64().unwrap(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let mut got = BTreeMap::new();
    for _ in 0..100 {
        got = data().await;
        if want.keys().all(|k| got.contains_key(k)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    got.retain(|k, _| want.contains_key(k));
    assert_eq!(got, want);
    let (_, batch) = send(&c, &a, "POST", "/api/sql", Some(json!({"sql": format!("SELECT count(*) AS n FROM events WHERE type = 'order' AND time < '{}'", aiops_alerting::silence::format_rfc3339_ms(last_closed))}))).await;
    assert_eq!(
        batch["rows"][0]["n"].as_i64().unwrap(),
        want.values().sum::<i64>()
    );

    // An alert rule reading the metric: listed with its header settings.
    let rule = "-- @for: 2\n-- @severity: warning\nINSERT INTO alerts\nSELECT tumble(window_start, INTERVAL '1 minute') AS window_start, 'FewCheckoutOrders' AS alertname, service, sum(orders) AS orders\nFROM checkout_orders_1m GROUP BY tumble(window_start, INTERVAL '1 minute'), service HAVING sum(orders) < 1000";
    let (s, v) = send(
        &c,
        &a,
        "POST",
        "/api/alerts/rules",
        Some(json!({"name": "few_orders", "sql": rule})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (_, rules) = send(&c, &a, "GET", "/api/alerts/rules", None).await;
    assert_eq!(rules["rules"][0]["name"], "few_orders");
    assert_eq!(rules["rules"][0]["severity"], "warning");
    let (_, metrics) = send(&c, &a, "GET", "/api/business-metrics", None).await;
    assert_eq!(
        metrics["business_metrics"].as_array().unwrap().len(),
        1,
        "{metrics}"
    );
    let (s, _) = send(&c, &a, "GET", "/api/business-metrics/few_orders", None).await;
    assert_eq!(s, 404, "an alert rule is not a business metric");

    // The rule reads the metric: removing the metric is refused, the rule first is fine.
    let (s, v) = send(
        &c,
        &a,
        "DELETE",
        "/api/business-metrics/checkout_orders",
        None,
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(dir.join("checkout_orders.sql").exists());
    // PUT replaces (a changed metric the rule still compiles against).
    let (s, v) = send(&c, &a, "PUT", "/api/business-metrics/checkout_orders", Some(json!({"sql": METRIC.replace("count(*) AS orders", "count(*) AS orders, sum(1) AS units")}))).await;
    assert_eq!(s, 200, "{v}");
    assert!(
        std::fs::read_to_string(dir.join("checkout_orders.sql"))
            .unwrap()
            .contains("units")
    );
    let (s, _) = send(&c, &a, "DELETE", "/api/alerts/rules/few_orders", None).await;
    assert_eq!(s, 200);
    let (s, _) = send(
        &c,
        &a,
        "DELETE",
        "/api/business-metrics/checkout_orders",
        None,
    )
    .await;
    assert_eq!(s, 200);
    wait_until(Duration::from_secs(30), "the pipelines to stop", || {
        !running(&a, "checkout_orders")
    });
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_sources_over_the_api_scrape_for_real_and_survive_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // The engine scrapes a second engine's self-metrics (a real Prometheus text endpoint).
    let target = Aiops::start(&root.path().join("target"), "embedded", &[]);
    let port = aiops_testkit::free_port();
    // Loopback targets are reached only when the outbound allow list names them.
    let allow = [("AIOPS__OUTBOUND__ALLOW", "[\"127.0.0.1\"]")];
    let mut a = Aiops::start_env(&data, "embedded", port, &[], &allow);
    let c = reqwest::Client::new();
    let scrape = json!({"id": "self", "type": "scrape", "job": "aiops", "targets": [format!("127.0.0.1:{}", target.port)], "interval": "1s"});
    let (s, v) = send(&c, &a, "POST", "/api/datasources", Some(scrape.clone())).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["origin"], "api");
    let (s, _) = send(&c, &a, "POST", "/api/datasources", Some(scrape)).await;
    assert_eq!(s, 409);
    let (s, v) = send(
        &c,
        &a,
        "POST",
        "/api/datasources",
        Some(json!({"id": "x", "type": "ftp"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("ftp"), "{v}");
    let (s, _) = send(
        &c,
        &a,
        "POST",
        "/api/datasources",
        Some(json!({"id": "bad id", "type": "demo"})),
    )
    .await;
    assert_eq!(s, 400);

    // The test pulls once and writes nothing; the running source writes samples with job=aiops.
    let (s, t) = send(&c, &a, "POST", "/api/datasources/self/test", None).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["ok"], true, "{t}");
    assert!(t["rows"]["metrics"].as_u64().unwrap() > 10, "{t}");
    let count = |a: &Aiops| {
        let out = std::process::Command::new("curl")
            .args([
                "-sf",
                "-H",
                "content-type: application/json",
                "--data-binary",
            ])
            .arg(r#"{"sql": "SELECT count(*) AS n FROM metrics WHERE labels['job'] = 'aiops'"}"#)
            .arg(a.url("/api/sql"))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["rows"][0]["n"].as_i64().unwrap_or(0)
    };
    wait_until(Duration::from_secs(30), "scraped samples", || count(&a) > 0);

    // A target that does not answer: the test says so.
    let (s, _) = send(&c, &a, "POST", "/api/datasources", Some(json!({"id": "dead", "type": "scrape", "job": "dead", "targets": [format!("127.0.0.1:{}", aiops_testkit::free_port())], "timeout": "500ms", "interval": "1s"}))).await;
    assert_eq!(s, 201);
    let (_, t) = send(&c, &a, "POST", "/api/datasources/dead/test", None).await;
    assert_eq!(t["ok"], false, "{t}");
    assert!(t["error"].as_str().unwrap().contains("down"), "{t}");
    let (_, t) = send(&c, &a, "POST", "/api/datasources/self/test", None).await;
    assert_eq!(
        t["targets"][format!("127.0.0.1:{}", target.port)],
        true,
        "{t}"
    );

    // Kept across a restart (kill -9: the file was written before the answer).
    a.kill9();
    let a = Aiops::start_env(&data, "embedded", port, &[], &allow);
    let (_, l) = send(&c, &a, "GET", "/api/datasources", None).await;
    let ids: Vec<&str> = l["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["dead", "self"]);
    let n0 = count(&a);
    wait_until(Duration::from_secs(30), "scrapes after the restart", || {
        count(&a) > n0
    });
    let (s, _) = send(&c, &a, "DELETE", "/api/datasources/self", None).await;
    assert_eq!(s, 200);
    let (s, _) = send(&c, &a, "GET", "/api/datasources/self", None).await;
    assert_eq!(s, 404);
    let stored: Value =
        serde_json::from_slice(&std::fs::read(data.join("datasources.json")).unwrap()).unwrap();
    assert!(
        stored.get("self").is_none() && stored.get("dead").is_some(),
        "{stored}"
    );
}
