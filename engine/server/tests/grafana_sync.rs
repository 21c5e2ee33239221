//! Grafana automation through the real binary against a local stand-in of Grafana's HTTP API
//! that validates requests as Grafana does: the data source (with a viewer token that works on
//! the Postgres endpoint), a dashboard per pipeline and the overview, annotations for incidents
//! and deploys, and alert rules; a second sync writes nothing, a changed pipeline rewrites only
//! its dashboard (one new version), a removed one loses its dashboard. Every generated panel
//! query, expanded as Grafana expands it, runs on the Postgres endpoint over tokio-postgres and
//! returns rows of the types Grafana needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aiops_grafana::macros::{QueryRange, expand};
use common::grafana::{FakeGrafana, TOKEN};
use common::{Aiops, wait_until};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio_postgres::types::Type;

const CPU: &str = "-- Average CPU per host per minute.\nINSERT INTO cpu_1m\nSELECT tumble(time, INTERVAL '1 minute') AS window_start, labels['host'] AS host, avg(value) AS avg_cpu, max(value) AS max_cpu\nFROM metrics WHERE name = 'cpu'\nGROUP BY tumble(time, INTERVAL '1 minute'), labels['host'];\n";

fn repo_pipeline(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../pipelines")
            .join(name),
    )
    .unwrap()
}

async fn call(c: &reqwest::Client, a: &Aiops, post: bool, path: &str) -> (u16, Value) {
    let r = if post {
        c.post(a.url(path))
    } else {
        c.get(a.url(path))
    };
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

fn count(v: &Value, k: &str) -> usize {
    v[k].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_provisions_grafana_idempotently_and_panels_run_on_the_pg_endpoint() {
    let g = FakeGrafana::start().await;
    let root = tempfile::tempdir().unwrap();
    let pipelines = root.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    std::fs::write(pipelines.join("cpu_per_host.sql"), CPU).unwrap();
    std::fs::write(
        pipelines.join("orders_drop_alert.sql"),
        repo_pipeline("orders_drop_alert.sql"),
    )
    .unwrap();
    let cfg = root.path().join("aiops.toml");
    std::fs::write(
        &cfg,
        format!(
            "[pipelines]\ndir = {:?}\nreload_interval = \"200ms\"\n[alerting]\ntick_interval = \"100ms\"\n",
            pipelines.display().to_string()
        ),
    )
    .unwrap();
    let data = root.path().join("data");
    let a = Aiops::start_env(
        &data,
        "embedded",
        aiops_testkit::free_port(),
        &["--config", cfg.to_str().unwrap()],
        &[
            ("AIOPS__GRAFANA__URL", &g.url),
            // The fake Grafana listens on loopback: the outbound guard must allow it.
            ("AIOPS__OUTBOUND__ALLOW", "[\"127.0.0.1\"]"),
            ("AIOPS__GRAFANA__TOKEN", TOKEN),
        ],
    );
    let c = reqwest::Client::new();

    // Ten minutes of CPU for two hosts and a few orders (the drop rule fires), then a deploy.
    let now = aiops_server::clock::now_ms() / 60_000 * 60_000;
    let start = now - 10 * 60_000;
    // One request per 15 s step, in time order: each host's series is its own log partition, so
    // one request with all steps would make the second host's samples late.
    let deploy_t = start + 5 * 60_000;
    for s in 0..(11 * 60 / 15) {
        let t = start + s * 15_000;
        let metrics: String = [("a", 20.0), ("b", 60.0)]
            .iter()
            .map(|(host, base)| {
                format!(
                    "{{\"name\":\"cpu\",\"labels\":{{\"host\":\"{host}\"}},\"value\":{},\"time\":{t}}}\n",
                    base + (s % 4) as f64
                )
            })
            .collect();
        let mut events = format!(
            "{{\"type\":\"order\",\"time\":{t},\"labels\":{{\"service\":\"checkout\"}}}}\n"
        );
        if t == deploy_t {
            events.push_str(&format!("{{\"type\":\"deploy\",\"time\":{deploy_t},\"message\":\"checkout v2\",\"labels\":{{\"service\":\"checkout\",\"version\":\"v2\"}}}}\n"));
        }
        common::post_ndjson(&a, "/api/ingest/metrics", &metrics);
        common::post_ndjson(&a, "/api/ingest/events", &events);
    }

    // Until the streams have columns, the rule has fired and its incident is open.
    wait_until(
        Duration::from_secs(60),
        "derived streams, alert and incident",
        || {
            let body = common::http_get(&a.url("/api/sql/tables")).unwrap_or_default();
            let alerts = common::http_get(&a.url("/api/v2/alerts")).unwrap_or_default();
            let incidents = common::http_get(&a.url("/api/incidents")).unwrap_or_default();
            body.contains("\"cpu_1m\"")
                && alerts.contains("OrdersPerMinuteLow")
                && incidents.contains("\"open\"")
        },
    );

    // Preview: nothing written yet.
    let (s, preview) = call(&c, &a, false, "/api/grafana/dashboards").await;
    assert_eq!(s, 200, "{preview}");
    assert!(g.writes().is_empty());
    let uids: Vec<&str> = preview["dashboards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uid"].as_str().unwrap())
        .collect();
    assert_eq!(
        uids,
        vec![
            "aiops-overview",
            "aiops-p-cpu_per_host",
            "aiops-p-orders_drop_alert"
        ]
    );

    // First sync: folder, data source, three dashboards, incident and deploy annotations.
    let (s, first) = call(&c, &a, true, "/api/grafana/dashboards").await;
    assert_eq!(s, 200, "{first}");
    assert!(g.violations().is_empty(), "{:?}", g.violations());
    let created: Vec<String> = serde_json::from_value(first["created"].clone()).unwrap();
    for want in [
        "folder aiops",
        "datasource aiops",
        "dashboard aiops-overview",
        "dashboard aiops-p-cpu_per_host",
        "dashboard aiops-p-orders_drop_alert",
    ] {
        assert!(created.contains(&want.to_string()), "{want}: {first}");
    }
    {
        let st = g.state.lock().unwrap();
        let tags: Vec<Vec<String>> = st
            .annotations
            .iter()
            .map(|a| serde_json::from_value(a["tags"].clone()).unwrap())
            .collect();
        assert!(
            tags.iter()
                .any(|t| t.contains(&"deploy".into()) && t.contains(&"checkout".into()))
        );
        assert!(
            tags.iter().any(|t| t.contains(&"incident".into())),
            "{tags:?}"
        );
        let deploy = st
            .annotations
            .iter()
            .find(|a| a["text"] == "checkout v2")
            .unwrap();
        assert_eq!(deploy["time"], json!(deploy_t));
        let ds = &st.datasources["aiops"];
        assert_eq!(ds["type"], "grafana-postgresql-datasource");
        assert_eq!(ds["url"], format!("127.0.0.1:{}", a.pg_port()));
    }

    // The data source's password is a viewer token that works on the Postgres endpoint.
    let password = g.state.lock().unwrap().secure["aiops"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    let cs = format!(
        "host=127.0.0.1 port={} user=grafana dbname=aiops password={password}",
        a.pg_port()
    );
    let (pg, conn) = tokio_postgres::connect(&cs, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });

    // Every panel query, expanded as Grafana expands it, runs over the extended protocol.
    let range = QueryRange {
        from_ms: start,
        to_ms: now + 60_000,
        interval_ms: 60_000,
    };
    let mut ran = 0;
    for d in preview["dashboards"].as_array().unwrap() {
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let sql = expand(t["rawSql"].as_str().unwrap(), &range).unwrap();
                let rows = pg
                    .query(sql.as_str(), &[])
                    .await
                    .unwrap_or_else(|e| panic!("{} / {}: {e}\n{sql}", d["title"], p["title"]));
                ran += 1;
                if t["format"] == "time_series" {
                    // Grafana's time series: a numeric or timestamp `time`, numeric values.
                    if let Some(r) = rows.first() {
                        let cols = r.columns();
                        assert_eq!(cols[0].name(), "time", "{sql}");
                        assert!(
                            [Type::FLOAT8, Type::INT8, Type::TIMESTAMPTZ, Type::TIMESTAMP]
                                .contains(cols[0].type_()),
                            "{sql}: time is {}",
                            cols[0].type_()
                        );
                        let last = cols.last().unwrap();
                        assert!(
                            [Type::FLOAT8, Type::INT8, Type::FLOAT4, Type::INT4]
                                .contains(last.type_()),
                            "{sql}: value is {}",
                            last.type_()
                        );
                    }
                }
                if p["title"] == "avg_cpu" {
                    // Two hosts, about ten closed minutes each; host a averages 21.5.
                    let series: std::collections::BTreeSet<String> =
                        rows.iter().map(|r| r.get::<_, String>("metric")).collect();
                    assert_eq!(series.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
                    assert!(rows.len() >= 16, "{} rows", rows.len());
                    let a_vals: Vec<f64> = rows
                        .iter()
                        .filter(|r| r.get::<_, String>("metric") == "a")
                        .map(|r| r.get::<_, f64>("avg_cpu"))
                        .collect();
                    assert!(
                        a_vals.iter().all(|v| (*v - 21.5).abs() < 1e-9),
                        "{a_vals:?}"
                    );
                }
                if p["title"] == "Firing alerts" {
                    assert_eq!(rows[0].get::<_, i64>(0), 1, "the drop rule fires");
                }
            }
        }
    }
    assert!(ran >= 12, "{ran} panel queries");

    // A second sync writes nothing.
    let before = g.writes().len();
    let (s, second) = call(&c, &a, true, "/api/grafana/dashboards").await;
    assert_eq!(s, 200, "{second}");
    assert_eq!(g.writes().len(), before, "{:?}", &g.writes()[before..]);
    assert_eq!(
        count(&second, "created") + count(&second, "updated"),
        0,
        "{second}"
    );
    assert_eq!(second["requests"]["writes"], 0);

    // A changed pipeline rewrites its dashboard only (version 2); a removed one loses its own.
    std::fs::write(
        pipelines.join("cpu_per_host.sql"),
        CPU.replace(
            "max(value) AS max_cpu",
            "max(value) AS max_cpu, min(value) AS min_cpu",
        ),
    )
    .unwrap();
    let more: String = (0..8)
        .map(|s| {
            format!(
                "{{\"name\":\"cpu\",\"labels\":{{\"host\":\"a\"}},\"value\":5,\"time\":{}}}\n",
                now + 60_000 + s * 15_000
            )
        })
        .collect();
    common::post_ndjson(&a, "/api/ingest/metrics", &more);
    wait_until(
        Duration::from_secs(60),
        "the new column on the read side",
        || {
            common::http_get(&a.url("/api/sql/tables"))
                .unwrap_or_default()
                .contains("min_cpu")
        },
    );
    let (_, third) = call(&c, &a, true, "/api/grafana/dashboards").await;
    let updated: Vec<String> = serde_json::from_value(third["updated"].clone()).unwrap();
    assert!(
        updated.contains(&"dashboard aiops-p-cpu_per_host".to_string()),
        "{third}"
    );
    assert!(
        !updated.iter().any(|u| u.contains("orders_drop_alert")),
        "{third}"
    );
    assert_eq!(
        g.state.lock().unwrap().dashboards["aiops-p-cpu_per_host"].2,
        2
    );
    assert_eq!(
        g.state.lock().unwrap().dashboards["aiops-p-orders_drop_alert"].2,
        1
    );

    // Alert rules: the SQL rule becomes a Grafana rule whose query sees the firing alert.
    let (s, rules) = call(&c, &a, false, "/api/grafana/alerts").await;
    assert_eq!(s, 200, "{rules}");
    let rule = &rules["rules"][0];
    assert_eq!(rule["title"], "OrdersPerMinuteLow");
    assert_eq!(rule["labels"]["severity"], "critical");
    let sql = rule["data"][0]["model"]["rawSql"].as_str().unwrap();
    assert_eq!(pg.query(sql, &[]).await.unwrap().len(), 1);
    let (s, r1) = call(&c, &a, true, "/api/grafana/alerts").await;
    assert_eq!(s, 200, "{r1}");
    assert_eq!(count(&r1, "created"), 1, "{r1}");
    let (_, r2) = call(&c, &a, true, "/api/grafana/alerts").await;
    assert_eq!(r2["requests"]["writes"], 0, "{r2}");
    assert!(g.violations().is_empty(), "{:?}", g.violations());

    std::fs::remove_file(pipelines.join("orders_drop_alert.sql")).unwrap();
    wait_until(Duration::from_secs(30), "the pipeline to stop", || {
        !common::http_get(&a.url("/api/pipelines"))
            .unwrap_or_default()
            .contains("orders_drop_alert")
    });
    let (_, fourth) = call(&c, &a, true, "/api/grafana/dashboards").await;
    assert_eq!(
        fourth["deleted"],
        json!(["dashboard aiops-p-orders_drop_alert"]),
        "{fourth}"
    );
    let (_, r3) = call(&c, &a, true, "/api/grafana/alerts").await;
    assert_eq!(
        r3["deleted"],
        json!(["alert rule aiops-r-orders_drop_alert"]),
        "{r3}"
    );

    // The Grafana token is never written by aiops: not in its output, its data or its log.
    let stderr = std::fs::read_to_string(&a.stderr).unwrap();
    assert!(!stderr.contains(TOKEN));
    assert!(!stderr.contains(&password));
    let out = common::aiops_cmd(&data, "embedded", &["replay", "--format", "ndjson"]);
    assert!(!out.contains(TOKEN) && !out.contains(&password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_or_unreachable_grafana_is_a_clear_error_and_the_cli_reports() {
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start(dir.path(), "embedded", &[]);
    let c = reqwest::Client::new();
    let (s, v) = call(&c, &a, true, "/api/grafana/dashboards").await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("grafana.url"), "{v}");
    drop(a);

    // A Grafana that refuses the token: 502 naming the request, token not echoed.
    let g = FakeGrafana::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start_env(
        dir.path(),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &[
            ("AIOPS__GRAFANA__URL", &g.url),
            // The fake Grafana listens on loopback: the outbound guard must allow it.
            ("AIOPS__OUTBOUND__ALLOW", "[\"127.0.0.1\"]"),
            ("AIOPS__GRAFANA__TOKEN", "glsa_wrong_token"),
        ],
    );
    let (s, v) = call(&c, &a, true, "/api/grafana/dashboards").await;
    assert_eq!(s, 502, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("HTTP 401") && e.contains("api/folders"), "{e}");
    assert!(!e.contains("glsa_wrong_token"));

    // `aiops grafana sync` goes through the engine and exits non-zero with the reason.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["grafana", "sync", "--api", &a.url("")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 502") && err.contains("401"), "{err}");
    let dry = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["grafana", "sync", "--dry-run", "--api", &a.url("")])
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(plan["dashboards"][0]["uid"], "aiops-overview");
    assert!(g.writes().is_empty());
}
