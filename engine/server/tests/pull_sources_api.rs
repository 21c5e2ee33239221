//! The data source API for range sources against the real binary, no peer needed: roles (no
//! token 401, ingest 403, viewer reads health but cannot create), bad settings refused with 400
//! naming the field, metadata and private URLs refused by the outbound guard, secrets never
//! shown, config-file sources shown as their settings, API sources kept across a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::Aiops;
use serde_json::{Value, json};

fn bootstrap_token(a: &Aiops) -> String {
    let text = std::fs::read_to_string(&a.stderr).unwrap();
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("aiops_") && l.len() > 40)
        .expect("the first start prints an admin token")
        .to_string()
}

async fn send(
    c: &reqwest::Client,
    a: &Aiops,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = c.request(m, a.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

const SECRET: &str = "pr0m-basic-secret-for-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_sources_api_roles_validation_guard_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // A config-file source: shown as its settings, the password as ***.
    let cfg = dir.path().join("aiops.toml");
    std::fs::write(
        &cfg,
        format!(
            "[outbound]\nallow = [\"127.0.0.1\"]\n\n[[sources]]\ntype = \"prometheus\"\nurl = \"http://127.0.0.1:1\"\nquery = \"up\"\ninterval = \"1h\"\nmax_range = \"1h\"\nbasic_auth = {{ username = \"u\", password = {{ value = \"{SECRET}\" }} }}\n"
        ),
    )
    .unwrap();
    let port = aiops_testkit::free_port();
    let mut a = Aiops::start_env(
        dir.path(),
        "embedded",
        port,
        &["--config", cfg.to_str().unwrap()],
        &[("AIOPS_TEST_SECURE", "1")],
    );
    let c = reqwest::Client::new();
    let admin = bootstrap_token(&a);
    let mut tokens = std::collections::BTreeMap::new();
    for role in ["viewer", "ingest"] {
        let (s, v) = send(
            &c,
            &a,
            "POST",
            "/api/tokens",
            Some(&admin),
            Some(json!({"name": format!("ds-{role}"), "role": role})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        tokens.insert(role, v["token"].as_str().unwrap().to_string());
    }
    let good = json!({"id": "p1", "type": "prometheus", "url": "http://127.0.0.1:1",
                      "query": "up", "interval": "1h", "max_range": "1h",
                      "bearer_token": {"value": SECRET}});
    // Roles.
    let (s, _) = send(&c, &a, "POST", "/api/datasources", None, Some(good.clone())).await;
    assert_eq!(s, 401);
    let (s, _) = send(
        &c,
        &a,
        "POST",
        "/api/datasources",
        Some(&tokens["ingest"]),
        Some(good.clone()),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(
        &c,
        &a,
        "POST",
        "/api/datasources",
        Some(&tokens["viewer"]),
        Some(good.clone()),
    )
    .await;
    assert_eq!(s, 403);
    let (s, v) = send(
        &c,
        &a,
        "POST",
        "/api/datasources",
        Some(&admin),
        Some(good.clone()),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, m) = send(
        &c,
        &a,
        "GET",
        "/api/datasources/p1/metrics",
        Some(&tokens["viewer"]),
        None,
    )
    .await;
    assert_eq!(s, 200, "{m}");
    for k in [
        "state",
        "position_ms",
        "lag_ms",
        "pulls",
        "failures",
        "backfilled_ranges",
        "kinds",
        "last_success_ms",
        "last_error",
    ] {
        assert!(m.get(k).is_some(), "{k} in {m}");
    }
    assert_eq!(m["type"], "prometheus");
    let (s, _) = send(&c, &a, "GET", "/api/datasources/p1/metrics", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = send(
        &c,
        &a,
        "GET",
        "/api/datasources/p1/metrics",
        Some(&tokens["ingest"]),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(
        &c,
        &a,
        "GET",
        "/api/datasources/none/metrics",
        Some(&tokens["viewer"]),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &c,
        &a,
        "POST",
        "/api/datasources/p1/test",
        Some(&tokens["viewer"]),
        None,
    )
    .await;
    assert_eq!(s, 403, "a test makes outbound calls: not for viewers");

    // Bad settings: 400 naming the field.
    let bad = [
        (
            json!({"id": "b1", "type": "prometheus", "url": "http://127.0.0.1:1"}),
            "query",
        ),
        (
            json!({"id": "b2", "type": "prometheus", "url": "http://127.0.0.1:1", "qeury": "up"}),
            "qeury",
        ),
        (
            json!({"id": "b3", "type": "prometheus", "url": "http://127.0.0.1:1", "query": "up", "step": "1s", "max_range": "30d"}),
            "max_range",
        ),
        (
            json!({"id": "b5", "type": "prometheus", "url": "http://127.0.0.1:1", "query": "up", "step": "soon"}),
            "step",
        ),
        (
            json!({"id": "b6", "type": "http_json", "url": "http://127.0.0.1:1/x",
                "mapping": {"rows": "$.data[", "kind": "log", "time": "ts", "message": "m"}}),
            "mapping.rows",
        ),
        (
            json!({"id": "b7", "type": "http_json", "url": "http://127.0.0.1:1/x",
                "mapping": {"kind": "metric", "time": "ts", "name": "x"}}),
            "mapping.value",
        ),
        (
            json!({"id": "b8", "type": "http_json", "url": "http://127.0.0.1:1/x", "pagination": {"type": "page", "param": ""},
                "mapping": {"kind": "event", "time": "ts", "event_type": "order"}}),
            "pagination.param",
        ),
        (json!({"id": "b9", "type": "nosuch"}), "nosuch"),
        (
            json!({"id": "b10", "type": "prometheus", "url": "http://127.0.0.1:1", "query": "up",
                "bearer_token": {"env": "AIOPS_TEST_UNSET_VARIABLE_X"}}),
            "bearer_token",
        ),
    ];
    for (body, field) in bad {
        let (s, v) = send(
            &c,
            &a,
            "POST",
            "/api/datasources",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap_or_default().contains(field),
            "{field} named in {v}"
        );
    }
    // Metadata and private addresses: refused by the outbound guard.
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3:9090",
        "http://[fd00:ec2::254]/",
    ] {
        for body in [
            json!({"id": "g1", "type": "prometheus", "url": url, "query": "up"}),
            json!({"id": "g2", "type": "http_json", "url": url,
                   "mapping": {"kind": "log", "time": "ts", "message": "m"}}),
        ] {
            let (s, v) = send(&c, &a, "POST", "/api/datasources", Some(&admin), Some(body)).await;
            assert_eq!(s, 422, "{url}: {v}");
            assert_eq!(v["reason"], "outbound_refused", "{v}");
        }
    }

    // Secrets are never shown; the config-file source is shown as settings.
    let (s, list) = send(
        &c,
        &a,
        "GET",
        "/api/datasources",
        Some(&tokens["viewer"]),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let text = list.to_string();
    assert!(!text.contains(SECRET), "{text}");
    let conf = list["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["origin"] == "config")
        .unwrap()
        .clone();
    assert_eq!(conf["config"]["type"], "prometheus", "{conf}");
    assert_eq!(conf["config"]["query"], "up", "{conf}");
    assert_eq!(conf["config"]["basic_auth"]["password"], "***", "{conf}");
    let api = list["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "p1")
        .unwrap();
    assert_eq!(api["config"]["bearer_token"], "***", "{api}");
    let (_, one) = send(
        &c,
        &a,
        "GET",
        "/api/datasources/p1",
        Some(&tokens["viewer"]),
        None,
    )
    .await;
    assert!(!one.to_string().contains(SECRET));
    let (_, metrics) = send(
        &c,
        &a,
        "GET",
        "/api/datasources/p1/metrics",
        Some(&admin),
        None,
    )
    .await;
    assert!(!metrics.to_string().contains(SECRET));
    let (_, t) = send(
        &c,
        &a,
        "POST",
        "/api/datasources/p1/test",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(t["ok"], false, "nothing listens on port 1: {t}");
    assert_eq!(t["reachable"], false, "{t}");
    assert!(!t.to_string().contains(SECRET));
    assert!(
        !std::fs::read_to_string(&a.stderr).unwrap().contains(SECRET),
        "never logged"
    );

    // API sources persist (atomically written) and come back after a restart.
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("datasources.json")).unwrap())
            .unwrap();
    assert!(stored.get("p1").is_some(), "{stored}");
    assert!(!dir.path().join("datasources.json.tmp").exists());
    a.stop();
    let a = Aiops::start_env(
        dir.path(),
        "embedded",
        port,
        &["--config", cfg.to_str().unwrap()],
        &[("AIOPS_TEST_SECURE", "1")],
    );
    let (s, v) = send(
        &c,
        &a,
        "GET",
        "/api/datasources/p1/metrics",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = send(&c, &a, "DELETE", "/api/datasources/p1", Some(&admin), None).await;
    assert_eq!(s, 200);
    let (s, _) = send(
        &c,
        &a,
        "GET",
        "/api/datasources/p1/metrics",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 404);
}
