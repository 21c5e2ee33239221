//! Deploy verification end to end with the real binary: a Python service
//! (`tests/fixtures/deploy_service.py`) runs a stable and a canary version of three services,
//! aiops scrapes them every second, the shipped pipelines (`pipelines/deploy_series.sql` →
//! `pipelines/deploy_metrics.sql`) turn the scrapes into `deploy_metrics_10s`, and three canary
//! deploys are verified at once by one engine:
//! - `bad` (canary error ratio ×5, p99 ×3) → `rollback`, the rollback workflow
//!   (`pipelines/workflows/examples/deploy-rollback.yaml`) calls the receiver for it with one
//!   idempotency key even though the engine is killed with SIGKILL right after the verdict
//!   (`AIOPS_FAULT_EFFECT_DELAY_MS` holds the call back after its intent), and it ends
//!   `rolled_back`;
//! - `good` (A/A: the same profile, another seed) → `promote`, nothing sent;
//! - `borderline` (only p99 ×2: one non-critical metric fails, score 75) → `inconclusive`, paused
//!   with the rollback waiting for an `sre` approval, nothing sent; rejecting it keeps the
//!   version (`promoted`).
//!
//! Then `aiops replay --workflows` over the whole range sends nothing and `aiops deploy verify`
//! re-derives each verdict from the log. A second test checks the deploy API's refusals in
//! secure mode.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::recorder::{Contract, Received, Recorder};
use common::{Aiops, aiops_cmd, http_get, wait_until};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROLLBACK_KEY: &str = "rollback-hmac-key-5b1e0c9d";
const ANN_TOKEN: &str = "ann-token-deploys-3c7f1a";
/// Verification window and grace of the test config.
const WINDOW_S: u64 = 80;
const GRACE_S: u64 = 25;
/// How long each call is held after its intent is logged, so a kill lands before the call.
const EFFECT_DELAY_MS: &str = "3000";

/// The test is a client of wall-clock systems (the scrapes happen now).
#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python service: one process, one port per instance; killed on drop (its stdin closes
/// too, which also ends it).
struct Service {
    child: Child,
    ports: BTreeMap<(String, String), u16>,
}

impl Service {
    fn start(instances: &[Value]) -> Service {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deploy_service.py");
        let spec = json!({"rps": 50, "instances": instances}).to_string();
        let mut child = Command::new("python3")
            .arg(script)
            .arg(spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the deploy service");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the service did not start ({e}): {line:?}"));
        let ports = ready["ready"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    (
                        r["service"].as_str().unwrap().to_string(),
                        r["version"].as_str().unwrap().to_string(),
                    ),
                    u16::try_from(r["port"].as_u64().unwrap()).unwrap(),
                )
            })
            .collect();
        Service { child, ports }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the rollback endpoint accepts: the webhook provider's POST (JSON, signed, with an
/// `Idempotency-Key`) carrying the body `deploy-rollback.yaml` renders.
fn rollback_contract() -> Arc<Contract> {
    Arc::new(|r: &Received| {
        if r.method != "POST" || r.path != "/rollback" {
            return Err(format!("{} {} is not POST /rollback", r.method, r.path));
        }
        if !r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err("content-type must be application/json".into());
        }
        if r.header("idempotency-key").is_none_or(str::is_empty) {
            return Err("Idempotency-Key missing".into());
        }
        r.header("x-aiops-timestamp")
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or("X-Aiops-Timestamp missing or not a number")?;
        let sig = r.header("x-aiops-signature").unwrap_or("");
        let hex = sig.strip_prefix("sha256=").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("X-Aiops-Signature {sig:?} is not sha256=<64 hex>"));
        }
        let b = &r.body;
        if b["action"] != "rollback" {
            return Err(format!("action must be rollback: {b}"));
        }
        for field in [
            "deploy_id",
            "service",
            "environment",
            "version",
            "from_version",
            "reason",
            "requested_by",
        ] {
            if b[field].as_str().is_none_or(str::is_empty) {
                return Err(format!("{field} must be a non-empty string: {b}"));
            }
        }
        if !b["approved"].is_boolean() {
            return Err(format!("approved must be a boolean: {b}"));
        }
        Ok((
            202,
            json!({"status": "accepted", "rollback": b["deploy_id"]}).to_string(),
        ))
    })
}

fn curl(method: &str, url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "-H",
        "content-type: application/json",
    ]);
    if let Some(t) = token {
        c.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out = c.args(["--data-binary", body, url]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (b, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(b).unwrap_or(Value::String(b.to_string())),
    )
}

fn get_json(url: &str) -> Value {
    http_get(url)
        .ok()
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(Value::Null)
}

fn deploy(a: &Aiops, id: &str) -> Value {
    get_json(&a.url(&format!("/api/deploy/status?id={id}")))["deploy"].clone()
}

/// Writes the config, the shipped pipelines and the rollback workflow under `dir`.
fn setup(dir: &Path, svc: &Service, rec: &Recorder) -> String {
    let pdir = dir.join("pipelines");
    let wdir = dir.join("workflows");
    let adir = dir.join("autoheal");
    for d in [&pdir, &wdir, &adir] {
        std::fs::create_dir_all(d).unwrap();
    }
    for f in ["deploy_series.sql", "deploy_metrics.sql"] {
        std::fs::copy(repo().join("pipelines").join(f), pdir.join(f)).unwrap();
    }
    std::fs::copy(
        repo().join("pipelines/workflows/examples/deploy-rollback.yaml"),
        wdir.join("deploy-rollback.yaml"),
    )
    .unwrap();
    let targets: Vec<String> = svc
        .ports
        .values()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let cfg = dir.join("aiops.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[[sources]]
type = "scrape"
job = "shop"
targets = [{targets}]
interval = "1s"
timeout = "800ms"

[outbound]
allow = ["127.0.0.1"]

[pipelines]
dir = {pdir:?}
watermark_delay = "1s"
checkpoint_interval = "1s"

[workflows]
dir = {wdir:?}
autoheal_dir = {adir:?}
tick_interval = "100ms"
checkpoint_interval = "300ms"

[workflows.secrets]
ROLLBACK_KEY = {{ env = "TEST_ROLLBACK_KEY" }}
ANN = {{ env = "TEST_ANN_TOKEN" }}

[workflows.users.ann]
token_secret = "ANN"
roles = ["sre"]

[workflows.providers.rollback]
kind = "webhook"
url = "{url}"
secret = "{{{{ secrets.ROLLBACK_KEY }}}}"

[deploys]
verification_window = "{WINDOW_S}s"
grace = "{GRACE_S}s"
rollback_workflow = "deploy-rollback"
checkpoint_interval = "1s"
"#,
            targets = targets.join(", "),
            pdir = pdir.to_str().unwrap(),
            wdir = wdir.to_str().unwrap(),
            adir = adir.to_str().unwrap(),
            url = rec.url("/rollback"),
        ),
    )
    .unwrap();
    cfg.to_str().unwrap().to_string()
}

fn start(dir: &Path, cfg: &str) -> Aiops {
    Aiops::start_env(
        &dir.join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &["--config", cfg],
        &[
            ("TEST_ROLLBACK_KEY", ROLLBACK_KEY),
            ("TEST_ANN_TOKEN", ANN_TOKEN),
            ("AIOPS_FAULT_EFFECT_DELAY_MS", EFFECT_DELAY_MS),
        ],
    )
}

fn stderr_tail(a: &Aiops) -> String {
    let text = std::fs::read_to_string(&a.stderr).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Requests the receiver got for one deploy.
fn sent_for(rec: &Recorder, id: &str) -> Vec<Received> {
    rec.all()
        .into_iter()
        .filter(|r| r.body["deploy_id"] == id)
        .collect()
}

fn metric<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["verification"]["judgement"]["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .unwrap_or(&Value::Null)
}

fn instance(service: &str, version: &str, err: f64, p99: f64, seed: u64) -> Value {
    json!({"service": service, "version": version, "error_rate": err, "p99_ms": p99,
           "saturation": 0.4, "seed": seed, "port": 0})
}

#[test]
fn canaries_are_judged_and_a_bad_one_is_rolled_back_once_across_kill9_and_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Stable v1 and canary v2 of each service: 1% errors and p99 100 ms, except the canaries of
    // `bad` (5% errors, p99 300 ms) and `borderline` (p99 200 ms).
    let svc = Service::start(&[
        instance("bad", "v1", 0.01, 100.0, 11),
        instance("bad", "v2", 0.05, 300.0, 12),
        instance("good", "v1", 0.01, 100.0, 21),
        instance("good", "v2", 0.01, 100.0, 22),
        instance("borderline", "v1", 0.01, 100.0, 31),
        instance("borderline", "v2", 0.01, 200.0, 32),
    ]);
    let rec = Recorder::start(rollback_contract());
    let cfg = setup(dir, &svc, &rec);
    let started = now_ms();
    let mut a = start(dir, &cfg);

    // Samples flow: two windows of every (service, version, metric) series.
    wait_until(
        Duration::from_secs(60),
        "verification samples from deploy_metrics_10s",
        || a.metric("aiops_deploy_samples_total") >= 36.0,
    );

    // Three canary deploys at once.
    let services = ["bad", "good", "borderline"];
    let mut window_end = BTreeMap::new();
    for s in services {
        let body = json!({"id": format!("{s}-v2"), "service": s, "version": "v2",
                          "previous_version": "v1", "environment": "production",
                          "strategy": "canary"});
        let (code, v) = curl("POST", &a.url("/api/deploy"), None, &body.to_string());
        assert_eq!(code, 201, "POST /api/deploy {s}: {v}");
        assert_eq!(v["deploy"]["status"], "verifying", "{v}");
        assert_eq!(v["deploy"]["strategy"], "canary", "{v}");
        window_end.insert(
            s,
            v["deploy"]["verification"]["window_end_ms"]
                .as_i64()
                .unwrap(),
        );
    }
    let posted = Instant::now();

    // The bad canary's verdict: kill -9 as soon as it shows, before the rollback call (held
    // back 3 s after its intent).
    let limit = Duration::from_secs(WINDOW_S + GRACE_S + 40);
    let verdict_seen_ms;
    loop {
        let d = deploy(&a, "bad-v2");
        if !d["decision"].is_null() {
            verdict_seen_ms = now_ms();
            break;
        }
        assert!(
            posted.elapsed() < limit,
            "no verdict for bad-v2 within {limit:?}: {d}\n{}",
            stderr_tail(&a)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    a.kill9();
    let sent_before_restart = sent_for(&rec, "bad-v2").len();
    a = start(dir, &cfg);
    // Whether the kill landed after the rollback's intent was logged (the restarted executor
    // resumes it with the same key) or before (the restarted engine asks for it again, under
    // the same request id).
    let resumed = std::fs::read_to_string(&a.stderr)
        .unwrap_or_default()
        .contains("resuming effects without a logged result");

    // 1. bad → rollback for its error ratio, one rollback request (one key), rolled back.
    let until = Instant::now() + Duration::from_secs(40);
    while deploy(&a, "bad-v2")["status"] != "rolled_back" {
        if Instant::now() > until {
            let d = deploy(&a, "bad-v2");
            let exec = d["rollback"]["execution"]
                .as_str()
                .unwrap_or("")
                .to_string();
            panic!(
                "bad-v2 not rolled back: {d}\nexecution: {}\nreceived: {:?}\nviolations: {:?}\n{}",
                get_json(&a.url(&format!("/api/workflows/executions/{exec}"))),
                rec.all()
                    .iter()
                    .map(|r| (
                        r.header("idempotency-key").map(str::to_string),
                        r.body.clone()
                    ))
                    .collect::<Vec<_>>(),
                rec.violations.lock().unwrap(),
                stderr_tail(&a)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let bad = deploy(&a, "bad-v2");
    assert_eq!(bad["decision"]["verdict"], "rollback", "{bad}");
    assert_eq!(bad["verification"]["baseline"], "canary", "{bad}");
    let reasons = bad["decision"]["reasons"].to_string();
    assert!(reasons.contains("error_ratio"), "{reasons}");
    assert_eq!(
        metric(&bad, "error_ratio")["classification"],
        "high",
        "{bad}"
    );
    assert_eq!(bad["verification"]["judgement"]["outcome"], "fail", "{bad}");
    assert_eq!(bad["rollback"]["status"], "succeeded", "{bad}");
    assert_eq!(bad["rollback"]["approval_required"], false, "{bad}");
    let sent = sent_for(&rec, "bad-v2");
    let keys: BTreeSet<&str> = sent
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "one rollback, one key, whatever the kill did: {keys:?}"
    );
    let r = &sent[0];
    assert_eq!(r.body["service"], "bad");
    assert_eq!(r.body["environment"], "production");
    assert_eq!(
        r.body["version"], "v1",
        "rolls back to the previous version"
    );
    assert_eq!(r.body["from_version"], "v2");
    assert_eq!(r.body["approved"], false);
    assert_eq!(r.body["requested_by"], "verification");
    println!(
        "kill -9 after the bad verdict: {sent_before_restart} request(s) before the kill, {} in all, \
         {} key ({}); the intent was {} when the engine died",
        sent.len(),
        keys.len(),
        if sent.len() == 1 {
            "sent once"
        } else {
            "resent with the same key: the receiver dedups"
        },
        if resumed {
            "logged (the restarted executor resumed it)"
        } else {
            "not logged yet (the restarted engine derived it again)"
        }
    );

    // 2. good (A/A) → promote, nothing sent.
    let good = deploy(&a, "good-v2");
    assert_eq!(good["decision"]["verdict"], "promote", "{good}");
    assert_eq!(good["status"], "promoted", "{good}");
    assert!(good["rollback"].is_null(), "{good}");
    for m in ["error_ratio", "latency_p99_ms", "saturation"] {
        assert_eq!(metric(&good, m)["classification"], "pass", "{m}: {good}");
    }

    // 3. borderline → inconclusive, paused, the rollback waits for an approval, nothing sent.
    let border = deploy(&a, "borderline-v2");
    assert_eq!(border["decision"]["verdict"], "inconclusive", "{border}");
    assert_eq!(border["status"], "paused", "{border}");
    assert_eq!(
        metric(&border, "latency_p99_ms")["classification"],
        "high",
        "{border}"
    );
    assert_eq!(
        metric(&border, "error_ratio")["classification"],
        "pass",
        "{border}"
    );
    assert_eq!(
        border["verification"]["judgement"]["score"], 75.0,
        "{border}"
    );
    assert_eq!(border["rollback"]["approval_required"], true, "{border}");
    let exec = border["rollback"]["execution"]
        .as_str()
        .unwrap()
        .to_string();
    let execution = || get_json(&a.url(&format!("/api/workflows/executions/{exec}")));
    wait_until(
        Duration::from_secs(20),
        "the borderline rollback to wait for approval",
        || execution()["status"] == "waiting_approval",
    );
    let e = execution();
    let call = &e["approval"]["calls"][0]["params"]["body"];
    assert_eq!(call["deploy_id"], "borderline-v2", "{e}");
    assert_eq!(call["version"], "v1", "{e}");
    for id in ["good-v2", "borderline-v2"] {
        assert!(sent_for(&rec, id).is_empty(), "{id}: nothing is sent");
    }
    // A person keeps the version: rejecting the rollback promotes it; still nothing sent.
    let (code, v) = curl(
        "POST",
        &a.url(&format!("/api/workflows/executions/{exec}/reject")),
        Some(ANN_TOKEN),
        "",
    );
    assert_eq!(code, 200, "{v}");
    wait_until(Duration::from_secs(20), "borderline-v2 promoted", || {
        deploy(&a, "borderline-v2")["status"] == "promoted"
    });
    assert_eq!(
        deploy(&a, "borderline-v2")["rollback"]["status"],
        "rejected"
    );
    assert!(sent_for(&rec, "borderline-v2").is_empty());
    assert!(
        rec.violations.lock().unwrap().is_empty(),
        "{:?}",
        rec.violations.lock().unwrap()
    );

    // History and DORA: one failed change (bad) of three.
    let hist = get_json(&a.url("/api/deploys"));
    assert_eq!(hist["total"], 3, "{hist}");
    assert_eq!(hist["dora"]["bad"]["failed"], 1, "{hist}");
    assert_eq!(hist["dora"]["good"]["failed"], 0, "{hist}");
    assert_eq!(hist["dora"]["borderline"]["failed"], 0, "{hist}");

    // Window end → verdict latency (for docs/benchmarks.md).
    for s in services {
        let d = deploy(&a, &format!("{s}-v2"));
        let end = d["verification"]["window_end_ms"].as_i64().unwrap();
        assert_eq!(end, window_end[s]);
        let at = d["decision"]["at_ms"].as_i64().unwrap();
        println!(
            "latency {s}: verdict at window end + {} ms (log time; grace {} ms){}",
            at - end,
            GRACE_S * 1000,
            if s == "bad" {
                format!(", first seen by the API at + {} ms", verdict_seen_ms - end)
            } else {
                String::new()
            }
        );
    }
    a.stop();

    // 5. Replay over the whole range sends nothing; every verdict re-derives the same.
    let count = rec.count();
    let to = now_ms() + 60_000;
    let replayed = aiops_cmd(
        &dir.join("data"),
        "embedded",
        &[
            "replay",
            "--workflows",
            "--config",
            &cfg,
            "--from",
            &started.to_string(),
            "--to",
            &to.to_string(),
        ],
    );
    // The engine is stopped and the replay has returned: anything it sent has arrived.
    assert_eq!(rec.count(), count, "replay must not send anything");
    let would: Vec<Value> = replayed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "would_run")
        .collect();
    assert!(
        would
            .iter()
            .any(|v| v["key"].as_str().unwrap_or("").contains("bad-v2")
                && v["logged_result"]["ok"] == true),
        "the replay lists the bad rollback with its logged result: {replayed}"
    );
    for (s, want) in [
        ("bad", "rollback"),
        ("good", "promote"),
        ("borderline", "inconclusive"),
    ] {
        let out = aiops_cmd(
            &dir.join("data"),
            "embedded",
            &["deploy", "verify", &format!("{s}-v2"), "--config", &cfg],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["same"], true, "{s}: {v}");
        assert_eq!(v["recorded_verdict"], want, "{s}: {v}");
        assert_eq!(v["derived_verdict"], want, "{s}: {v}");
    }
    assert_eq!(rec.count(), count, "verify must not send anything");
    drop(svc);
}

fn bootstrap_token(a: &Aiops) -> String {
    let text = std::fs::read_to_string(&a.stderr).unwrap();
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("aiops_") && l.len() > 40)
        .expect("the first start prints an admin token")
        .to_string()
}

#[test]
fn the_deploy_api_refuses_bad_callers_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rec = Recorder::start(rollback_contract());
    let wdir = dir.join("workflows");
    std::fs::create_dir_all(&wdir).unwrap();
    std::fs::copy(
        repo().join("pipelines/workflows/examples/deploy-rollback.yaml"),
        wdir.join("deploy-rollback.yaml"),
    )
    .unwrap();
    let cfg = dir.join("aiops.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[workflows]
dir = {wdir:?}
autoheal_dir = {adir:?}
outbound_allow = ["127.0.0.1"]

[workflows.secrets]
ROLLBACK_KEY = {{ env = "TEST_ROLLBACK_KEY" }}

[workflows.providers.rollback]
kind = "webhook"
url = "{url}"
secret = "{{{{ secrets.ROLLBACK_KEY }}}}"

[deploys]
rollback_workflow = "deploy-rollback"
"#,
            wdir = wdir.to_str().unwrap(),
            adir = dir.join("autoheal").to_str().unwrap(),
            url = rec.url("/rollback"),
        ),
    )
    .unwrap();
    let a = Aiops::start_env(
        &dir.join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &["--config", cfg.to_str().unwrap()],
        &[
            ("AIOPS_TEST_SECURE", "1"),
            ("TEST_ROLLBACK_KEY", ROLLBACK_KEY),
        ],
    );
    let admin = bootstrap_token(&a);
    let mut tok = BTreeMap::new();
    for role in ["viewer", "operator"] {
        let (code, v) = curl(
            "POST",
            &a.url("/api/tokens"),
            Some(&admin),
            &json!({"name": format!("deploy-{role}"), "role": role}).to_string(),
        );
        assert_eq!(code, 201, "{v}");
        tok.insert(role, v["token"].as_str().unwrap().to_string());
    }
    let op = tok["operator"].as_str();
    let url = a.url("/api/deploy");
    let good = json!({"id": "api-1", "service": "shop", "version": "v2", "previous_version": "v1",
                      "environment": "staging"});
    let error = |v: &Value| v["error"].as_str().unwrap_or("").to_string();

    let (code, v) = curl("POST", &url, None, &good.to_string());
    assert_eq!(code, 401, "no token: {v}");
    let (code, v) = curl("POST", &url, Some(&tok["viewer"]), &good.to_string());
    assert_eq!(code, 403, "a viewer cannot record deploys: {v}");
    let (code, v) = curl("POST", &url, Some(op), "{\"service\": \"shop\",");
    assert_eq!(code, 400, "{v}");
    assert!(error(&v).contains("bad deploy"), "names the problem: {v}");
    let (code, v) = curl("POST", &url, Some(op), r#"{"version": "v2"}"#);
    assert_eq!(code, 400, "{v}");
    assert!(
        error(&v).contains("service"),
        "names the missing field: {v}"
    );
    let mut unknown = good.clone();
    unknown["colour"] = json!("blue");
    let (code, v) = curl("POST", &url, Some(op), &unknown.to_string());
    assert_eq!(code, 400, "{v}");
    assert!(error(&v).contains("colour"), "names the unknown field: {v}");
    let mut slash = good.clone();
    slash["id"] = json!("a/b");
    let (code, v) = curl("POST", &url, Some(op), &slash.to_string());
    assert_eq!(code, 400, "{v}");
    assert!(error(&v).contains("id"), "{v}");
    let mut long = good.clone();
    long["service"] = json!("s".repeat(300));
    let (code, v) = curl("POST", &url, Some(op), &long.to_string());
    assert_eq!(code, 400, "{v}");
    assert!(error(&v).contains("service"), "{v}");
    // Nothing refused was recorded.
    let (code, v) = curl("GET", &a.url("/api/deploys"), Some(op), "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["total"], 0, "{v}");

    let (code, v) = curl("POST", &url, Some(op), &good.to_string());
    assert_eq!(code, 201, "{v}");
    // Reported as running (not a canary): its verification window opens at once.
    assert_eq!(v["deploy"]["status"], "verifying", "{v}");
    let rb = a.url("/api/deploy/rollback");
    let (code, v) = curl("POST", &rb, Some(&tok["viewer"]), r#"{"id": "api-1"}"#);
    assert_eq!(code, 403, "{v}");
    let (code, v) = curl("POST", &rb, Some(op), r#"{"id": "nope"}"#);
    assert_eq!(code, 404, "{v}");
    let (code, v) = curl(
        "POST",
        &rb,
        Some(op),
        r#"{"id": "api-1", "reason": "bad smell"}"#,
    );
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["deploy"]["status"], "rolling_back", "{v}");
    let (code, v) = curl("POST", &rb, Some(op), r#"{"id": "api-1"}"#);
    assert_eq!(code, 409, "a second rollback: {v}");
    wait_until(Duration::from_secs(20), "the asked-for rollback", || {
        rec.count() == 1
    });
    let status = || {
        let (_, v) = curl("GET", &a.url("/api/deploy/status?id=api-1"), Some(op), "");
        v
    };
    let until = Instant::now() + Duration::from_secs(20);
    while status()["deploy"]["status"] != "rolled_back" {
        assert!(
            Instant::now() < until,
            "api-1 not rolled back: {}",
            status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = &rec.all()[0];
    assert_eq!(r.body["deploy_id"], "api-1");
    assert_eq!(r.body["reason"], "bad smell");
    assert_eq!(r.body["requested_by"], "deploy-operator");
    assert!(rec.violations.lock().unwrap().is_empty());
}
