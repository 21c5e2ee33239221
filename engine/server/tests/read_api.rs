//! The read side through the real binary with the default security: the bootstrap admin token,
//! tokens per role, the auth matrix over every documented route and every table (HTTP and
//! Postgres), audit events in the log, secrets never readable, body and query limits while
//! `/api/health` keeps answering, the rate limit, and `aiops sql` beside the running engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Aiops;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut r = c.request(m, a.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn expect_refused_base(who: &str, need: &str, is_ingest: bool) -> bool {
    match who {
        _ if need == "none" => false,
        "none" => !is_ingest,
        "wrong" => true,
        r => !allows(r, need),
    }
}

fn allows(have: &str, need: &str) -> bool {
    match need {
        "none" => true,
        "ingest" => matches!(have, "ingest" | "admin"),
        "viewer" => matches!(have, "viewer" | "operator" | "admin"),
        "operator" => matches!(have, "operator" | "admin"),
        _ => have == "admin",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_audit_limits_and_sql() {
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start_env(
        dir.path(),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &[("AIOPS_TEST_SECURE", "1"), ("AIOPS__SQL__TIMEOUT", "2s")],
    );
    let c = reqwest::Client::new();
    let admin = bootstrap_token(&a);
    // Tokens per role, created through the API.
    let mut tokens = vec![("admin".to_string(), admin.clone())];
    for role in ["viewer", "operator", "ingest"] {
        let (s, v) = send(
            &c,
            &a,
            "post",
            "/api/tokens",
            Some(&admin),
            Some(json!({"name": format!("t-{role}"), "role": role})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        tokens.push((role.to_string(), v["token"].as_str().unwrap().to_string()));
    }
    let token_of = |r: &str| tokens.iter().find(|t| t.0 == r).unwrap().1.clone();

    // Some data to read.
    let now = aiops_testkit_now();
    let body = json!({"time": now, "severity": "error", "body": "payment failed for order 42", "labels": {"service": "checkout"}});
    let (s, v) = send(&c, &a, "post", "/api/logs", None, Some(body)).await;
    assert!(s < 300, "ingest is open on loopback: {s} {v}");

    // The matrix: every documented route × no token, a wrong token and every role.
    let (s, doc) = send(&c, &a, "get", "/api/openapi.json", None, None).await;
    assert_eq!(s, 200);
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let need = op["x-aiops-role"].as_str().unwrap();
            let concrete = path
                .replace("{rest}", "nope/approve")
                .replace("{id}", "nope");
            let body = matches!(method.as_str(), "post" | "put").then(|| json!({}));
            let is_ingest = need == "ingest";
            let approval = path.starts_with("/api/workflows/executions/") && method == "post";
            for who in ["none", "wrong", "ingest", "viewer", "operator", "admin"] {
                let tok = match who {
                    "none" => None,
                    "wrong" => Some("aiops_not_a_token".to_string()),
                    r => Some(token_of(r)),
                };
                let (s, v) = send(&c, &a, method, &concrete, tok.as_deref(), body.clone()).await;
                let refused = s == 401 || s == 403;
                let expect_refused = match who {
                    _ if need == "none" => false,
                    "none" => !is_ingest,
                    "wrong" => true,
                    r => !allows(r, need),
                };
                if approval && !expect_refused_base(who, need, is_ingest) {
                    // Past the token check, the approval handler binds the approver to the
                    // step's role among [workflows.users] (none configured here).
                    assert!(
                        s == 404 || (s == 403 && v.to_string().contains("approvals")),
                        "{method} {path} as {who}: {s} {v}"
                    );
                    continue;
                }
                if approval && who == "wrong" {
                    // A workflow approver's token is checked by the approval handler itself.
                    assert!(refused || s == 404, "{method} {path} as {who}: {s} {v}");
                    continue;
                }
                assert_eq!(
                    refused, expect_refused,
                    "{method} {path} as {who} (needs {need}): {s} {v}"
                );
                if expect_refused {
                    let want = if matches!(who, "none" | "wrong") {
                        401
                    } else {
                        403
                    };
                    assert_eq!(s, want, "{method} {path} as {who}: {v}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 250, "{checked}");

    // Every write is an audit event in the log (refused ones too), without tokens or bodies.
    let viewer = token_of("viewer");
    let (s, v) = send(&c, &a, "post", "/api/sql", Some(&viewer), Some(json!({"sql":
        "SELECT attributes['route'] AS route, attributes['status'] AS status, labels['actor'] AS actor FROM events WHERE type = 'audit' AND attributes['route'] = '/api/tokens' AND attributes['method'] = 'POST' ORDER BY time"}))).await;
    assert_eq!(s, 200, "{v}");
    let rows = v["rows"].as_array().unwrap();
    let created: Vec<&Value> = rows.iter().filter(|r| r["status"] == "201").collect();
    assert!(created.len() >= 3, "{rows:?}");
    assert!(created.iter().all(|r| r["actor"] == "bootstrap admin"));
    assert!(
        rows.iter().any(|r| r["status"] == "401"),
        "refused writes are audited: {rows:?}"
    );
    let (_, all) = send(
        &c,
        &a,
        "post",
        "/api/sql",
        Some(&viewer),
        Some(json!({"sql": "SELECT * FROM events"})),
    )
    .await;
    let (_, list) = send(&c, &a, "get", "/api/tokens", Some(&admin), None).await;
    for (_, t) in &tokens {
        assert!(
            !all.to_string().contains(t.as_str()),
            "a token is readable through SQL"
        );
        assert!(
            !list.to_string().contains(t.as_str()),
            "a token is readable through the API"
        );
    }
    // Only hashes on disk.
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().ends_with(".stderr") {
                let bytes = std::fs::read(&p).unwrap_or_default();
                for (_, t) in &tokens {
                    assert!(
                        !bytes.windows(t.len()).any(|w| w == t.as_bytes()),
                        "token in {}",
                        p.display()
                    );
                }
            }
        }
    }

    // Postgres: the same tokens are the passwords; every table answers every reading role.
    let pg = a.pg_port();
    let conn = |tok: String| async move {
        let cs = format!("host=127.0.0.1 port={pg} user=u dbname=aiops password={tok}");
        let (client, conn) = tokio_postgres::connect(&cs, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok::<_, tokio_postgres::Error>(client)
    };
    assert!(conn(String::new()).await.is_err());
    assert!(conn("aiops_wrong".into()).await.is_err());
    let e = conn(token_of("ingest")).await.err().unwrap();
    assert_eq!(e.as_db_error().unwrap().code().code(), "28000");
    let tables = [
        "metrics",
        "logs",
        "alerts",
        "events",
        "alert_states",
        "silences",
        "incidents",
        "workflow_executions",
    ];
    for role in ["viewer", "operator", "admin"] {
        let client = conn(token_of(role)).await.unwrap();
        for t in tables {
            client
                .simple_query(&format!("SELECT * FROM {t} LIMIT 1"))
                .await
                .unwrap_or_else(|e| panic!("{role} {t}: {e}"));
        }
    }
    let client = conn(viewer.clone()).await.unwrap();
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM logs WHERE strpos(body, $1) > 0",
            &[&"payment failed"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // Log search and metric range over the API.
    let (s, v) = send(
        &c,
        &a,
        "get",
        "/api/logs/search?q=PAYMENT&label.service=checkout&from=1h",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["logs"].as_array().unwrap().len(), 1, "{v}");
    let (s, v) = send(
        &c,
        &a,
        "get",
        "/api/logs/search?bogus=1",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(s, 400, "{v}");

    // Limits: a 10 MB body is refused; a runaway query is cancelled while health answers.
    let big = "x".repeat(10 << 20);
    for path in ["/api/sql", "/api/ingest/logs"] {
        match c
            .post(a.url(path))
            .bearer_auth(&admin)
            .body(big.clone())
            .send()
            .await
        {
            Ok(r) => assert_eq!(r.status().as_u16(), 413, "{path}"),
            // The server may answer 413 from the declared length and close before the client
            // has sent the body; the client then sees the connection end instead.
            Err(e) => assert!(e.is_request() || e.is_body(), "{path}: {e}"),
        }
    }
    let heavy = {
        let (c, url, t) = (c.clone(), a.url("/api/sql"), viewer.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let r = c.post(url).bearer_auth(t)
                .json(&json!({"sql": "SELECT count(*) FROM generate_series(1, 3000) a, generate_series(1, 3000) b, generate_series(1, 3000) c WHERE a.value * b.value > c.value * 7"}))
                .send().await.unwrap();
            (
                r.status().as_u16(),
                r.text().await.unwrap(),
                started.elapsed(),
            )
        })
    };
    let mut health_ok = 0;
    while !heavy.is_finished() {
        let t = Instant::now();
        let r = c
            .get(a.url("/api/health"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        assert!(
            r.is_ok_and(|r| r.status().is_success()),
            "health stopped answering during a heavy query"
        );
        assert!(t.elapsed() < Duration::from_secs(1));
        health_ok += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, text, took) = heavy.await.unwrap();
    assert_eq!(s, 422, "{text}");
    assert!(text.contains("57014"), "{text}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(health_ok >= 3);

    // Rate limit per token.
    let mut limited = None;
    for _ in 0..600 {
        let r = c
            .get(a.url("/api/log/stats"))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            break;
        }
    }
    assert!(
        limited.is_some(),
        "600 requests at once never hit the limit"
    );

    // `aiops sql` beside the running engine.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["sql", "--data-dir"])
        .arg(dir.path())
        .args([
            "--format",
            "csv",
            "SELECT count(*) AS n FROM logs WHERE severity = 'error'",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "n\n1");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["sql", "--data-dir"])
        .arg(dir.path())
        .arg("SELECT * FROM nope")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("42P01"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[allow(clippy::disallowed_methods)] // the test's own clock, for data near "now"
fn aiops_testkit_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
