//! Masking at the door (issue 18, item 5), through the real binary: secrets sent in a metric
//! label (JSON metrics and remote_write), a JSON log attribute and log bodies never reach the
//! data directory (every file, as bytes, including the archive once compacted), the decoded log,
//! `/api/sql`, `/api/logs/search` or stderr; the masked forms do, and the per-rule counters rise.
//! With `[masking] enabled = false` the same values are found in the same places — so the checks
//! can fail. A bad user rule stops the start with a message naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Aiops, replay_json, wait_until};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// The secrets: distinct, without repeated 4-byte sequences (the log's LZ4 keeps them literal,
/// so the byte sweep finds them when masking is off).
const LABEL_SECRET: &str = "Qz8vKp3Lw7Tn";
const RW_SECRET: &str = "Hy4rXc9Bm2Fd";
const BODY_SECRET: &str = "Jw6sNq1Vz5Rg";
const ATTR_SECRET: &str = "Pk2tLx8Dc4Ye";
const CARD: &str = "4539148803436467";
const ALL: [&str; 5] = [LABEL_SECRET, RW_SECRET, BODY_SECRET, ATTR_SECRET, CARD];

const ARCHIVE_ENV: [(&str, &str); 3] = [
    ("AIOPS__ARCHIVE__AFTER", "1s"),
    ("AIOPS__ARCHIVE__INTERVAL", "200ms"),
    ("AIOPS__ARCHIVE__MAX_ROWS_PER_PASS", "1000"),
];

async fn post(c: &reqwest::Client, a: &Aiops, path: &str, ctype: &str, body: Vec<u8>) -> u16 {
    let mut r = c.post(a.url(path)).header("content-type", ctype).body(body);
    if path == "/api/v1/write" {
        r = r
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0");
    }
    r.send().await.unwrap().status().as_u16()
}

async fn sql(c: &reqwest::Client, a: &Aiops, q: &str) -> String {
    let r = c
        .post(a.url("/api/sql"))
        .json(&json!({ "sql": q }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "sql {q}");
    r.text().await.unwrap()
}

async fn search(c: &reqwest::Client, a: &Aiops, q: &str) -> Value {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", q)
        .finish();
    let r = c
        .get(a.url(&format!("/api/logs/search?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "search {q}");
    r.json().await.unwrap()
}

/// Sends one secret through each route; returns once all were acknowledged.
async fn send_secrets(c: &reqwest::Client, a: &Aiops) {
    let metric = json!({
        "name": "login_attempts",
        "labels": { "service": "auth", "password": LABEL_SECRET },
        "value": 1
    });
    let code = post(
        c,
        a,
        "/api/ingest/metrics",
        "application/json",
        metric.to_string().into_bytes(),
    )
    .await;
    assert!((200..300).contains(&code), "metrics answered {code}");
    let now = now_ms();
    let rw = aiops_connectors::sources::remote_write::encode_write_request(&[(
        vec![
            ("__name__".to_string(), "db_pool_open".to_string()),
            ("job".to_string(), "api".to_string()),
            (
                "dsn".to_string(),
                format!("postgres://app:{RW_SECRET}@db.internal:5432/orders"),
            ),
        ],
        vec![(now, 3.0)],
    )]);
    let code = post(c, a, "/api/v1/write", "application/x-protobuf", rw).await;
    assert!((200..300).contains(&code), "remote_write answered {code}");
    let logs = [
        json!({
            "body": format!("user alice logged in token={BODY_SECRET} from 10.0.0.7"),
            "severity": "info",
            "labels": { "service": "auth" },
            "attributes": { "request": format!("{{\"user\":\"alice\",\"password\":\"{ATTR_SECRET}\"}}") }
        }),
        json!({
            "body": format!("订单已支付 paid with card {CARD} order 1234567890123456"),
            "severity": "info",
            "labels": { "service": "checkout" }
        }),
    ];
    let ndjson: String = logs.iter().map(|l| format!("{l}\n")).collect();
    let code = post(
        c,
        a,
        "/api/ingest/logs",
        "application/x-ndjson",
        ndjson.into_bytes(),
    )
    .await;
    assert!((200..300).contains(&code), "logs answered {code}");
}

#[allow(clippy::disallowed_methods)] // remote_write samples carry their own time: "now"
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Which of `needles` occur in any file under `dir` (as bytes).
fn found_in_files(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for n in needles {
                    if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                        found.push(format!("{n} in {}", p.display()));
                    }
                }
            }
        }
    }
    found
}

fn archived_rows(dir: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(dir.join("archive/manifest.json")) else {
        return 0;
    };
    let m: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    m["files"]
        .as_array()
        .map(|fs| fs.iter().filter_map(|f| f["rows"].as_u64()).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log_the_archive_sql_or_search() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut a = Aiops::start_env(
        &data,
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &ARCHIVE_ENV,
    );
    let c = reqwest::Client::new();
    // Every running rule is listed from zero.
    assert!(
        common::http_get(&a.url("/metrics"))
            .unwrap()
            .contains("aiops_masking_matches_total{rule=\"card\"} 0")
    );
    send_secrets(&c, &a).await;

    // The masked forms are what SQL and search show.
    let mut metrics_rows = String::new();
    wait_until(Duration::from_secs(20), "the metric rows in SQL", || {
        metrics_rows = futures_block(sql(
            &c,
            &a,
            "SELECT name, labels['password'] AS p, labels['dsn'] AS dsn FROM metrics \
             WHERE name IN ('login_attempts', 'db_pool_open') ORDER BY name",
        ));
        metrics_rows.contains("login_attempts") && metrics_rows.contains("db_pool_open")
    });
    assert!(metrics_rows.contains("[MASKED:secret]"), "{metrics_rows}");
    assert!(
        metrics_rows.contains("postgres://app:[MASKED:url_password]@db.internal:5432/orders"),
        "{metrics_rows}"
    );
    let mut log_rows = String::new();
    wait_until(Duration::from_secs(20), "the log rows in SQL", || {
        log_rows = futures_block(sql(
            &c,
            &a,
            "SELECT body, attributes['request'] AS r FROM logs ORDER BY body",
        ));
        log_rows.contains("logged in") && log_rows.contains("paid with card")
    });
    assert!(
        log_rows.contains("token=[MASKED:secret] from 10.0.0.7"),
        "{log_rows}"
    );
    assert!(
        log_rows.contains(r#"\"password\":\"[MASKED:secret]\""#),
        "{log_rows}"
    );
    assert!(
        log_rows.contains("paid with card [MASKED:card] order 1234567890123456"),
        "{log_rows}"
    );
    let hits = search(&c, &a, "logged in").await.to_string();
    assert!(hits.contains("token=[MASKED:secret]"), "{hits}");
    let hits = search(&c, &a, BODY_SECRET).await.to_string();
    assert!(
        !hits.contains(BODY_SECRET) || !hits.contains("logged in"),
        "{hits}"
    );

    // Counters: three `secret`s (label, body, JSON attribute), a URL password, a card.
    let metric = |rule: &str| a.metric(&format!("aiops_masking_matches_total{{rule=\"{rule}\"}}"));
    assert_eq!(metric("secret"), 3.0);
    assert_eq!(metric("url_password"), 1.0);
    assert_eq!(metric("card"), 1.0);

    // Nowhere in the decoded log.
    for kind in ["metrics", "logs"] {
        let events = serde_json::to_string(&replay_json(&data, "embedded", kind)).unwrap();
        for s in ALL {
            assert!(!events.contains(s), "{s} in the replayed {kind}");
        }
        assert!(events.contains("[MASKED:"), "{kind}: {events}");
    }
    for (what, text) in [("sql", &metrics_rows), ("sql", &log_rows)] {
        for s in ALL {
            assert!(!text.contains(s), "{s} in a {what} answer");
        }
    }

    // Let the archive compact what is older than a second, then sweep every file.
    wait_until(Duration::from_secs(30), "the archive to hold rows", || {
        archived_rows(&data) >= 2
    });
    let after_archive = futures_block(sql(&c, &a, "SELECT body FROM logs ORDER BY body"));
    assert!(
        after_archive.contains("token=[MASKED:secret]"),
        "{after_archive}"
    );
    a.stop();
    let found = found_in_files(&data, &ALL);
    assert!(found.is_empty(), "secrets on disk: {found:?}");
    let stderr = std::fs::read_to_string(&a.stderr).unwrap_or_default();
    for s in ALL {
        assert!(!stderr.contains(s), "{s} in stderr");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_masking_disabled_the_values_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut a = Aiops::start_env(
        &data,
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &[("AIOPS__MASKING__ENABLED", "false")],
    );
    let c = reqwest::Client::new();
    send_secrets(&c, &a).await;
    let mut rows = String::new();
    wait_until(Duration::from_secs(20), "the log rows in SQL", || {
        rows = futures_block(sql(&c, &a, "SELECT body FROM logs ORDER BY body"));
        rows.contains("logged in") && rows.contains("paid with card")
    });
    assert!(rows.contains(BODY_SECRET) && rows.contains(CARD), "{rows}");
    assert_eq!(a.metric("aiops_masking_matches_total"), 0.0);
    a.stop();
    // The same byte sweep that finds nothing with masking on finds each of them here.
    let found = found_in_files(&data, &[LABEL_SECRET, BODY_SECRET, RW_SECRET]);
    for s in [LABEL_SECRET, BODY_SECRET, RW_SECRET] {
        assert!(
            found.iter().any(|f| f.starts_with(s)),
            "the sweep must see {s} unmasked: {found:?}"
        );
    }
}

#[test]
fn a_bad_rule_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("aiops.toml");
    std::fs::write(
        &cfg,
        "[masking]\n[[masking.rules]]\nname = \"order_ref\"\npattern = \"(unclosed\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--http", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("masking.rules[0] (\"order_ref\"): bad pattern"),
        "{err}"
    );
}

/// Runs a future to completion from a synchronous closure inside the test's runtime.
fn futures_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
