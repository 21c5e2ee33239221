//! `GET /api/logs/analysis` and the read side's `log_analysis(…)` through the real binary, with
//! the default security: an hour of a service's logs as the baseline, then a range with a new
//! template and a surge of an error template. The analysis lists the new template as new with
//! samples, the surging one with its surge flags and the error surge, counts equal to what was
//! pushed; viewers may read it, no token is 401 and an ingest token 403; bad parameters are 400
//! naming the parameter; the answer is identical after `kill -9` and a restart, and after
//! `aiops rebuild`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, aiops_cmd};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// 2026-11-01T00:00:00Z.
const BASE: i64 = 1_793_491_200_000;
const MIN: i64 = 60_000;
/// Minutes pushed: 0..=LAST (the last ones only move the miner's watermark past the range).
const LAST: i64 = 95;
/// The range analysed: minutes 60..90; its default baseline is 30..60.
const FROM_MIN: i64 = 60;
const TO_MIN: i64 = 90;
/// The error template surges in these minutes.
const SURGE: std::ops::Range<i64> = 75..78;
/// The new template appears in these minutes.
const NEW_AT: [i64; 2] = [70, 71];

/// One pushed line and the template family it belongs to (a constant word of its template).
struct Line {
    service: &'static str,
    marker: &'static str,
    severity: &'static str,
    body: String,
    time: i64,
}

/// The lines of minute `m`: checkout's requests, payments and one db timeout (an error) per
/// minute, 40 timeouts a minute during the surge, the new OutOfMemoryError lines; search's
/// queries.
fn lines_of(m: i64) -> Vec<Line> {
    let t0 = BASE + m * MIN;
    let mut v = Vec::new();
    let mut push = |service, marker, severity, body: String, time| {
        v.push(Line {
            service,
            marker,
            severity,
            body,
            time,
        })
    };
    for k in 0..3 {
        push(
            "checkout",
            "GET",
            "info",
            format!(
                "GET /api/orders/{} 200 in {} ms",
                m * 10 + k,
                3 + (m + k) % 40
            ),
            t0 + k * 15_000 + 1,
        );
    }
    for k in 0..2 {
        push(
            "checkout",
            "authorized",
            "info",
            format!("payment {} authorized for customer c{k}", m * 31 + k),
            t0 + k * 20_000 + 7,
        );
    }
    let timeouts = if SURGE.contains(&m) { 40 } else { 1 };
    for k in 0..timeouts {
        push(
            "checkout",
            "timed",
            "error",
            format!(
                "connection to db-{} timed out after {} ms",
                k % 3 + 1,
                100 + k
            ),
            t0 + 500 + k * 1000,
        );
    }
    if NEW_AT.contains(&m) {
        for k in 0..2 {
            push(
                "checkout",
                "OutOfMemoryError:",
                "error",
                format!("OutOfMemoryError: Java heap space in thread pool-{}", k + 3),
                t0 + 30_000 + k * 5000,
            );
        }
    }
    for k in 0..2 {
        push(
            "search",
            "returned",
            "info",
            format!(
                "query q{} returned {} hits in {} ms",
                m * 7 + k,
                (m * 13 + k) % 50,
                2 + k
            ),
            t0 + 10_000 + k * 20_000,
        );
    }
    v
}

fn all_lines() -> Vec<Line> {
    (0..=LAST).flat_map(lines_of).collect()
}

/// (lines, error lines) of `service`'s `marker` family with times in `[from, to)`.
fn expected(lines: &[Line], service: &str, marker: &str, from: i64, to: i64) -> (u64, u64) {
    let sel: Vec<_> = lines
        .iter()
        .filter(|l| l.service == service && l.marker == marker && l.time >= from && l.time < to)
        .collect();
    (
        sel.len() as u64,
        sel.iter().filter(|l| l.severity == "error").count() as u64,
    )
}

fn bootstrap_token(a: &Aiops) -> String {
    let text = std::fs::read_to_string(&a.stderr).unwrap();
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("aiops_") && l.len() > 40)
        .expect("the first start prints an admin token")
        .to_string()
}

async fn get(c: &reqwest::Client, a: &Aiops, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = c.get(a.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_json(
    c: &reqwest::Client,
    a: &Aiops,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let resp = c
        .post(a.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Posts every minute as one NDJSON body (both services' lines; each service is one partition,
/// and the miner's delay covers the order between them).
async fn push(c: &reqwest::Client, a: &Aiops, lines: &[Line]) {
    for m in 0..=LAST {
        let (lo, hi) = (BASE + m * MIN, BASE + (m + 1) * MIN);
        let mut body = String::new();
        for l in lines.iter().filter(|l| l.time >= lo && l.time < hi) {
            body.push_str(
                &json!({"time": l.time, "severity": l.severity, "body": l.body,
                    "labels": {"service": l.service}, "attributes": {}})
                .to_string(),
            );
            body.push('\n');
        }
        let resp = c
            .post(a.url("/api/ingest/logs"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "ingest: {}", resp.status());
    }
}

fn analysis_path(service: Option<&str>) -> String {
    let mut p = format!(
        "/api/logs/analysis?from={}&to={}",
        BASE + FROM_MIN * MIN,
        BASE + TO_MIN * MIN
    );
    if let Some(s) = service {
        p.push_str(&format!("&service={s}"));
    }
    p
}

/// Polls the analysis until `done` holds for it (or panics after `within`).
async fn analysis_when(
    c: &reqwest::Client,
    a: &Aiops,
    path: &str,
    token: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (s, v) = get(c, a, path, Some(token)).await;
        if s == 200 && done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn row<'a>(v: &'a Value, service: &str, marker: &str) -> &'a Value {
    v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["service"] == service
                && t["template"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .any(|w| w == marker)
        })
        .unwrap_or_else(|| panic!("no {service} template with {marker:?}: {v}"))
}

fn start(data: &Path, cfg: &str) -> Aiops {
    Aiops::start_env(
        data,
        "embedded",
        aiops_testkit::free_port(),
        &["--config", cfg],
        &[("AIOPS_TEST_SECURE", "1")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_finds_new_and_surging_templates_and_survives_restart_and_rebuild() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let cfg = root.path().join("aiops.toml");
    std::fs::write(
        &cfg,
        "[templates]\ncheckpoint_interval = \"200ms\"\n\n[templates.miner]\nwarmup_windows = 30\ndelay_ms = 120000\n",
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let mut a = start(&data, &cfg);
    let c = reqwest::Client::new();
    let admin = bootstrap_token(&a);
    let mut tokens = Vec::new();
    for role in ["viewer", "ingest"] {
        let (s, v) = post_json(
            &c,
            &a,
            "/api/tokens",
            &admin,
            json!({"name": format!("t-{role}"), "role": role}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    let (viewer, ingest) = (tokens[0].clone(), tokens[1].clone());

    let lines = all_lines();
    push(&c, &a, &lines).await;
    let (from, to) = (BASE + FROM_MIN * MIN, BASE + TO_MIN * MIN);
    let len = to - from;
    let in_range = lines
        .iter()
        .filter(|l| l.service == "checkout" && l.time >= from && l.time < to)
        .count() as u64;
    // Every window of the range closed, and the surge judged.
    let v = analysis_when(
        &c,
        &a,
        &analysis_path(Some("checkout")),
        &viewer,
        Duration::from_secs(90),
        "the range's windows to close",
        |v| v["totals"]["count"] == in_range && !v["error_surges"].as_array().unwrap().is_empty(),
    )
    .await;

    // Ranges as asked, the default baseline just before, of the same length.
    assert_eq!(v["from_ms"], from);
    assert_eq!(v["to_ms"], to);
    assert_eq!(v["baseline_from_ms"], from - len);
    assert_eq!(v["baseline_to_ms"], from);
    assert_eq!(v["truncated"], false);
    assert_eq!(v["samples_complete"], true, "{v}");
    let rows = v["templates"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["service"] == "checkout"), "{v}");
    assert_eq!(rows.len(), 4, "four checkout templates: {v}");
    // Counts equal what was pushed, in the range and in the baseline.
    for marker in ["GET", "authorized", "timed", "OutOfMemoryError:"] {
        let r = row(&v, "checkout", marker);
        let (n, errs) = expected(&lines, "checkout", marker, from, to);
        let (bn, berrs) = expected(&lines, "checkout", marker, from - len, from);
        assert_eq!(r["count"], n, "{marker}: {r}");
        assert_eq!(r["errors"], errs, "{marker}: {r}");
        assert_eq!(r["baseline_count"], bn, "{marker}: {r}");
        assert_eq!(r["baseline_errors"], berrs, "{marker}: {r}");
        assert_eq!(r["runbooks"], json!([]));
        assert_eq!(r["similar_incidents"], json!([]));
        // Samples: lines that were pushed, of this family, inside the range, earliest first.
        let samples = r["samples"].as_array().unwrap();
        assert_eq!(samples.len() as u64, n.min(3), "{marker}: {r}");
        let mut last = i64::MIN;
        for s in samples {
            let t = s["time_ms"].as_i64().unwrap();
            assert!(t >= from && t < to && t >= last, "{marker}: {r}");
            last = t;
            assert!(
                lines.iter().any(|l| l.marker == marker
                    && l.time == t
                    && l.body == s["body"].as_str().unwrap()),
                "{marker}: sample not pushed: {s}"
            );
        }
    }
    // The steady template: no change, not new, no surge.
    let get_row = row(&v, "checkout", "GET");
    assert_eq!(get_row["change"], 0.0, "{get_row}");
    assert_eq!(get_row["new"], false);
    assert_eq!(get_row["surge"], false);
    assert!(
        get_row["first_seen_ms"].as_i64().unwrap() < from,
        "{get_row}"
    );
    // The new template: new, first seen inside the range, with its samples.
    let oom = row(&v, "checkout", "OutOfMemoryError:");
    assert_eq!(oom["new"], true, "{oom}");
    let first = oom["first_seen_ms"].as_i64().unwrap();
    assert_eq!((first - BASE) / MIN, NEW_AT[0], "{oom}");
    assert!(oom["change"].is_null(), "no baseline: {oom}");
    assert!(
        oom["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "new_template"),
        "{oom}"
    );
    // The surging error template: a rate surge, part of the error surge, change far up.
    let db = row(&v, "checkout", "timed");
    assert_eq!(db["surge"], true, "{db}");
    assert_eq!(db["error_surge"], true, "{db}");
    assert_eq!(db["new"], false);
    assert!(db["change"].as_f64().unwrap() > 1.0, "{db}");
    let surge_windows: Vec<i64> = db["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "rate_surge")
        .map(|a| (a["window_start_ms"].as_i64().unwrap() - BASE) / MIN)
        .collect();
    assert!(
        !surge_windows.is_empty() && surge_windows.iter().all(|m| SURGE.contains(m)),
        "{db}"
    );
    // The error surge of the service, with the timeout template and error lines of its window.
    for e in v["error_surges"].as_array().unwrap() {
        assert_eq!(e["service"], "checkout");
        let ws = e["window_start_ms"].as_i64().unwrap();
        assert!(SURGE.contains(&((ws - BASE) / MIN)), "{e}");
        assert_eq!(e["template_ids"][0], db["template_id"], "{e}");
        let samples = e["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 3, "{e}");
        for s in samples {
            let t = s["time_ms"].as_i64().unwrap();
            assert!(t >= ws && t < ws + MIN && s["severity"] == "error", "{e}");
        }
    }
    // New and surging first.
    let pos = |id: &Value| rows.iter().position(|r| r["template_id"] == *id).unwrap();
    assert!(
        pos(&oom["template_id"]) < pos(&get_row["template_id"]),
        "{v}"
    );
    assert!(
        pos(&db["template_id"]) < pos(&get_row["template_id"]),
        "{v}"
    );

    // Every service: search's template too, its counts what was pushed.
    let (s, all) = get(&c, &a, &analysis_path(None), Some(&viewer)).await;
    assert_eq!(s, 200, "{all}");
    let search = row(&all, "search", "returned");
    assert_eq!(
        search["count"],
        expected(&lines, "search", "returned", from, to).0
    );
    assert_eq!(all["templates"].as_array().unwrap().len(), 5, "{all}");
    // An unknown service is an empty answer, not an error.
    let (s, none) = get(
        &c,
        &a,
        &analysis_path(Some("no-such-service")),
        Some(&viewer),
    )
    .await;
    assert_eq!(s, 200, "{none}");
    assert_eq!(none["templates"], json!([]));
    assert_eq!(none["totals"]["count"], 0);

    // Roles: viewer reads (above), no token 401, an ingest token 403.
    let (s, _) = get(&c, &a, &analysis_path(Some("checkout")), None).await;
    assert_eq!(s, 401);
    let (s, _) = get(&c, &a, &analysis_path(Some("checkout")), Some(&ingest)).await;
    assert_eq!(s, 403);

    // Bad parameters: 400 naming the parameter.
    let bad = [
        ("/api/logs/analysis?from=yesterday-ish", "from"),
        ("/api/logs/analysis?to=later", "to"),
        (
            &format!("/api/logs/analysis?from={to}&to={from}") as &str,
            "from",
        ),
        (
            &format!("/api/logs/analysis?from={}&to={to}", to - 8 * 86_400_000),
            "to",
        ),
        ("/api/logs/analysis?baseline_from=garbage", "baseline_from"),
        ("/api/logs/analysis?servce=checkout", "servce"),
        ("/api/logs/analysis?service=a&service=b", "service"),
    ];
    for (path, param) in bad {
        let (s, e) = get(&c, &a, path, Some(&viewer)).await;
        assert_eq!(s, 400, "{path}: {e}");
        assert_eq!(e["parameter"], param, "{path}: {e}");
        assert!(e["error"].as_str().unwrap().contains(param), "{path}: {e}");
    }

    // The read side: the same rows from `log_analysis(…)`.
    let sql = format!(
        "SELECT template_id, count, baseline_count, errors, is_new, surge, error_surge, samples \
         FROM log_analysis('checkout', '{from}', '{to}') ORDER BY template_id"
    );
    let (s, t) = post_json(&c, &a, "/api/sql", &viewer, json!({ "sql": sql })).await;
    assert_eq!(s, 200, "{t}");
    let sql_rows = t["rows"].as_array().unwrap();
    assert_eq!(sql_rows.len(), rows.len(), "{t}");
    for r in rows {
        let m = sql_rows
            .iter()
            .find(|x| x["template_id"] == r["template_id"])
            .unwrap_or_else(|| panic!("{r} not in {t}"));
        assert_eq!(m["count"], r["count"], "{m} vs {r}");
        assert_eq!(m["baseline_count"], r["baseline_count"]);
        assert_eq!(m["errors"], r["errors"]);
        assert_eq!(m["is_new"], r["new"]);
        assert_eq!(m["surge"], r["surge"]);
        assert_eq!(m["error_surge"], r["error_surge"]);
        let bodies: Vec<Value> = r["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["body"].clone())
            .collect();
        let sql_bodies: Value = serde_json::from_str(m["samples"].as_str().unwrap()).unwrap();
        assert_eq!(sql_bodies, Value::Array(bodies));
    }
    let (s, e) = post_json(
        &c,
        &a,
        "/api/sql",
        &viewer,
        json!({"sql": "SELECT * FROM log_analysis('checkout', 'not a time')"}),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("from"), "{e}");

    // kill -9 and a restart: the same answer once the miner has caught up.
    a.kill9();
    let mut b = start(&data, &cfg);
    let want = v.clone();
    analysis_when(
        &c,
        &b,
        &analysis_path(Some("checkout")),
        &viewer,
        Duration::from_secs(60),
        "the same analysis after kill -9",
        |x| *x == want,
    )
    .await;
    b.stop();

    // `aiops rebuild` recreates the miner from the log: the same answer again.
    let out = aiops_cmd(&data, "embedded", &["rebuild", "--config", &cfg]);
    let sum: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        sum["templates"]["outputs"], sum["templates"]["already_in_log"],
        "{sum}"
    );
    let mut d = start(&data, &cfg);
    analysis_when(
        &c,
        &d,
        &analysis_path(Some("checkout")),
        &viewer,
        Duration::from_secs(60),
        "the same analysis after rebuild",
        |x| *x == want,
    )
    .await;
    d.stop();
}
