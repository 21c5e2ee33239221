//! Workflows in the running engine: effects exactly once across `kill -9` at many points (a
//! PagerDuty-contract receiver deduplicating on `dedup_key` sees each effect once; a resend only
//! ever carries the same key), `aiops replay --workflows` sends nothing and lists what would have
//! run, an approval step blocks until a user with the right role approves the exact call through
//! the API, and the configured secret never shows in the log, stderr, /metrics or API answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::recorder::{Recorder, pagerduty};
use common::{Aiops, aiops_cmd, http_get, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const PD_KEY: &str = "R0UT1NGKEYsecretvalue0123456789a";
const ANN_TOKEN: &str = "ann-token-7f3a9c";
const BOB_TOKEN: &str = "bob-token-1d2e4b";

const PAGE: &str = r#"
workflow:
  id: page
  description: Page for every firing alert
  triggers:
    - type: alert
      filters:
        - key: status
          value: firing
  actions:
    - name: pagerduty
      retry: {count: 5, backoff: 200ms}
      timeout: 5s
      provider:
        type: pagerduty
        config: "{{ providers.pd }}"
        with:
          summary: "{{ alert.name }} on {{ alert.service }}"
          source: "{{ alert.service }}"
          severity: critical
"#;

const DRAIN: &str = r#"
workflow:
  id: drain
  triggers: [{type: manual}]
  actions:
    - name: page-oncall
      approval: {required: true, role: sre, timeout: 10m}
      provider:
        type: pagerduty
        config: pd
        with:
          summary: "drain {{ inputs.node }}"
          source: "{{ inputs.node }}"
          severity: warning
"#;

fn setup(dir: &Path, rec: &Recorder, workflows: &[(&str, &str)]) -> String {
    let wdir = dir.join("workflows");
    std::fs::create_dir_all(&wdir).unwrap();
    for (name, text) in workflows {
        std::fs::write(wdir.join(name), text).unwrap();
    }
    let toml = dir.join("aiops.toml");
    std::fs::write(
        &toml,
        format!(
            r#"[alerting]
tick_interval = "100ms"
checkpoint_interval = "200ms"

[workflows]
dir = {wdir:?}
autoheal_dir = {ah:?}
outbound_allow = ["127.0.0.1"]
checkpoint_interval = "300ms"
tick_interval = "100ms"

[workflows.secrets]
PD_KEY = {{ env = "TEST_PD_KEY" }}
ANN = {{ env = "TEST_ANN_TOKEN" }}
BOB = {{ env = "TEST_BOB_TOKEN" }}

[workflows.users.ann]
token_secret = "ANN"
roles = ["sre"]

[workflows.users.bob]
token_secret = "BOB"
roles = ["viewer"]

[workflows.rate_limits]
default_per_provider = "1000/1s"
per_target = "1000/1s"

[workflows.providers.pd]
kind = "pagerduty"
routing_key = "{{{{ secrets.PD_KEY }}}}"
url = "{url}"
"#,
            wdir = wdir.to_str().unwrap(),
            ah = dir.join("autoheal").to_str().unwrap(),
            url = rec.url("/v2/enqueue"),
        ),
    )
    .unwrap();
    toml.to_str().unwrap().to_string()
}

fn start(dir: &Path, cfg: &str, extra_env: &[(&str, &str)]) -> Aiops {
    let mut env = vec![
        ("TEST_PD_KEY", PD_KEY),
        ("TEST_ANN_TOKEN", ANN_TOKEN),
        ("TEST_BOB_TOKEN", BOB_TOKEN),
    ];
    env.extend_from_slice(extra_env);
    Aiops::start_env(
        &dir.join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &["--config", cfg],
        &env,
    )
}

fn curl(method: &str, url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut c = std::process::Command::new("curl");
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

fn post_alerts(a: &Aiops, names: &[String]) {
    let body: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "severity": "critical", "service": format!("svc-{n}")}))
        .collect();
    let (code, resp) = curl(
        "POST",
        &a.url("/api/alerts"),
        None,
        &Value::Array(body).to_string(),
    );
    assert!(
        (200..300).contains(&code),
        "POST /api/alerts: {code} {resp}"
    );
}

/// The workflow replay report: would-run lines by key.
fn report(dir: &Path, cfg: &str) -> BTreeMap<String, Value> {
    aiops_cmd(
        &dir.join("data"),
        "embedded",
        &["replay", "--workflows", "--config", cfg],
    )
    .lines()
    .map(|l| serde_json::from_str::<Value>(l).unwrap())
    .filter(|v| v["type"] == "would_run")
    .map(|v| (v["key"].as_str().unwrap().to_string(), v))
    .collect()
}

#[test]
fn effects_run_exactly_once_across_kill9_and_replay_sends_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The receiver answers 250 ms after it recorded a request, and every call waits 150 ms after
    // its intent is logged: kills land before requests, between request and result, and after.
    let rec = Recorder::start_delayed(pagerduty(PD_KEY), Duration::from_millis(250));
    let cfg = setup(dir, &rec, &[("page.yaml", PAGE)]);
    let mut a = start(dir, &cfg, &[("AIOPS_FAULT_EFFECT_DELAY_MS", "150")]);
    let mut names = Vec::new();
    let rounds = 8;
    for round in 0..rounds {
        let batch: Vec<String> = (0..6).map(|i| format!("Alert{round}x{i}")).collect();
        post_alerts(&a, &batch);
        names.extend(batch);
        // Kill at varying points: right away, mid-flight, after some results.
        std::thread::sleep(Duration::from_millis(60 + 90 * (round % 4)));
        a.kill9();
        a = start(dir, &cfg, &[("AIOPS_FAULT_EFFECT_DELAY_MS", "150")]);
    }
    // Let everything finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let body = http_get(&a.url("/api/workflows/page/executions")).unwrap_or_default();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let done = a.metric("aiops_workflow_pending_effects") == 0.0
            && v["active"].as_array().is_some_and(Vec::is_empty)
            && v["finished"]
                .as_array()
                .is_some_and(|f| f.len() >= names.len());
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "effects unfinished: {} finished of {}, active {}, metrics:\n{}\nstderr:\n{}",
            v["finished"].as_array().map_or(0, Vec::len),
            names.len(),
            v["active"],
            http_get(&a.url("/metrics"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("aiops_workflow") || l.starts_with("aiops_effect"))
                .collect::<Vec<_>>()
                .join("\n"),
            std::fs::read_to_string(&a.stderr)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    a.stop();
    assert!(
        rec.violations.lock().unwrap().is_empty(),
        "{:?}",
        rec.violations.lock().unwrap()
    );

    let rep = report(dir, &cfg);
    assert_eq!(rep.len(), names.len(), "one effect per alert");
    let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in rec.all() {
        by_key
            .entry(r.body["dedup_key"].as_str().unwrap().to_string())
            .or_default()
            .push(r.at_ms);
    }
    let (mut once, mut resent) = (0, 0);
    for (key, line) in &rep {
        let result = &line["logged_result"];
        assert_eq!(result["ok"], true, "{key}: {line}");
        let got = by_key
            .get(key)
            .unwrap_or_else(|| panic!("{key} never reached the receiver"));
        // Nothing is sent after its result is in the log.
        let logged_at = result["at_ms"].as_i64().unwrap();
        assert!(
            got.iter().all(|t| *t <= logged_at),
            "{key} sent after its result was logged"
        );
        if got.len() == 1 {
            once += 1
        } else {
            resent += 1
        }
    }
    assert_eq!(
        by_key.len(),
        rep.len(),
        "the receiver saw keys no intent has"
    );
    println!(
        "effects: {once} sent once, {resent} resent with the same key after a kill -9 (receiver dedups them)"
    );
    assert_eq!(once + resent, names.len());
    assert!(
        resent > 0,
        "no kill landed between a request and its result; the test lost its point"
    );

    // Replay over the whole range: nothing is sent, everything is listed.
    let before = rec.count();
    let out = aiops_cmd(
        &dir.join("data"),
        "embedded",
        &["replay", "--workflows", "--config", &cfg],
    );
    assert_eq!(rec.count(), before, "replay must not send anything");
    let listed = out
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["type"] == "would_run")
        .count();
    assert_eq!(listed, names.len());
    let rebuilt = aiops_cmd(
        &dir.join("data"),
        "embedded",
        &["rebuild", "--config", &cfg],
    );
    assert_eq!(rec.count(), before, "rebuild must not send anything");
    assert!(rebuilt.contains("\"workflows\""), "{rebuilt}");

    // The secret never leaves: not in the log, not in stderr, not in metrics or API answers.
    let a = start(dir, &cfg, &[]);
    let api = http_get(&a.url("/api/workflows/page/executions")).unwrap()
        + &http_get(&a.url("/api/workflows")).unwrap()
        + &http_get(&a.url("/metrics")).unwrap();
    assert!(!api.contains(PD_KEY));
    let mut hay = Vec::new();
    for e in walk(dir) {
        hay.extend(std::fs::read(e).unwrap_or_default());
    }
    assert!(
        !contains(&hay, PD_KEY.as_bytes()),
        "the routing key is written somewhere under the data dir or in a log"
    );
    // …while every request carried it (the contract checks routing_key).
    assert!(rec.count() >= names.len());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if !p.ends_with("aiops.toml") {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn approval_blocks_until_a_user_with_the_role_approves_the_exact_call() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rec = Recorder::start(pagerduty(PD_KEY));
    let cfg = setup(dir, &rec, &[("drain.yaml", DRAIN)]);
    let a = start(dir, &cfg, &[]);
    // Unauthenticated execute is refused; ann runs it.
    let (code, _) = curl(
        "POST",
        &a.url("/api/workflows/drain/execute"),
        None,
        r#"{"node":"n7"}"#,
    );
    assert_eq!(code, 401);
    let (code, v) = curl(
        "POST",
        &a.url("/api/workflows/drain/execute"),
        Some(ANN_TOKEN),
        r#"{"node":"n7"}"#,
    );
    assert_eq!(code, 403, "ann is sre, not operator: {v}");
    let (code, v) = curl(
        "POST",
        &a.url("/api/workflows/drain/execute"),
        Some(BOB_TOKEN),
        r#"{"node":"n7"}"#,
    );
    assert_eq!(code, 403, "{v}");
    // Give ann operator too: restart with a config where she has both roles.
    drop(a);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("roles = [\"sre\"]", "roles = [\"sre\", \"operator\"]");
    std::fs::write(&cfg, text).unwrap();
    let a = start(dir, &cfg, &[]);
    let (code, v) = curl(
        "POST",
        &a.url("/api/workflows/drain/execute"),
        Some(ANN_TOKEN),
        r#"{"node":"n7"}"#,
    );
    assert_eq!(code, 202, "{v}");
    let exec = v["execution"].as_str().unwrap().to_string();
    let get = || -> Value {
        serde_json::from_str(
            &http_get(&a.url(&format!("/api/workflows/executions/{exec}"))).unwrap(),
        )
        .unwrap()
    };
    wait_until(Duration::from_secs(10), "the approval request", || {
        get()["status"] == "waiting_approval"
    });
    let e = get();
    let digest = e["approval"]["digest"].as_str().unwrap().to_string();
    assert_eq!(e["approval"]["calls"][0]["params"]["summary"], "drain n7");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rec.count(), 0, "nothing runs before the approval");
    let approve = |token: &str, digest: &str| {
        curl(
            "POST",
            &a.url(&format!("/api/workflows/executions/{exec}/approve")),
            Some(token),
            &json!({"digest": digest}).to_string(),
        )
    };
    let (code, v) = approve(BOB_TOKEN, &digest);
    assert_eq!(code, 403, "bob lacks the role: {v}");
    let (code, v) = approve(ANN_TOKEN, &"0".repeat(64));
    assert_eq!(code, 403, "a different call needs its own approval: {v}");
    let (code, v) = approve("wrong-token", &digest);
    assert_eq!(code, 401, "{v}");
    assert_eq!(rec.count(), 0);
    let (code, v) = approve(ANN_TOKEN, &digest);
    assert_eq!(code, 200, "{v}");
    wait_until(Duration::from_secs(10), "the approved call", || {
        rec.count() == 1
    });
    let r = &rec.all()[0];
    assert_eq!(r.body["payload"]["summary"], "drain n7");
    assert_eq!(r.body["dedup_key"], format!("{exec}/page-oncall"));
}

#[test]
fn workflow_check_reports_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rec = Recorder::start(pagerduty(PD_KEY));
    let cfg = setup(dir, &rec, &[]);
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, PAGE.replace("providers.pd", "providers.nope")).unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(&good, PAGE).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["workflow", "check", "--config", &cfg])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("good.yaml: ok (workflow page"), "{stdout}");
    let line = PAGE.lines().position(|l| l.contains("providers.")).unwrap() + 1;
    assert!(
        stderr.contains(&format!(
            "bad.yaml:{line}: step pagerduty: no provider \"nope\""
        )),
        "{stderr}"
    );
}

#[test]
fn workflow_api_creates_replaces_and_deletes_through_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rec = Recorder::start(pagerduty(PD_KEY));
    let cfg = setup(dir, &rec, &[]);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("roles = [\"sre\"]", "roles = [\"admin\"]");
    std::fs::write(&cfg, text).unwrap();
    let a = start(dir, &cfg, &[]);
    let url = a.url("/api/workflows");
    // Only an admin may write.
    let (code, _) = curl("POST", &url, Some(BOB_TOKEN), PAGE);
    assert_eq!(code, 403);
    // A bad file is refused with its line and changes nothing.
    let (code, v) = curl(
        "POST",
        &url,
        Some(ANN_TOKEN),
        &PAGE.replace("providers.pd", "providers.nope"),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("page.yaml:16: step pagerduty: no provider \"nope\""),
        "{v}"
    );
    assert!(!dir.join("workflows/page.yaml").exists());
    let (code, v) = curl("POST", &url, Some(ANN_TOKEN), PAGE);
    assert_eq!(code, 201, "{v}");
    assert!(dir.join("workflows/page.yaml").exists());
    let (code, _) = curl("POST", &url, Some(ANN_TOKEN), PAGE);
    assert_eq!(code, 409, "a second create is refused");
    let list: Value = serde_json::from_str(&http_get(&url).unwrap()).unwrap();
    assert_eq!(list["workflows"][0]["id"], "page");
    // Replace: the new text is served and runs.
    let changed = PAGE.replace("Page for every firing alert", "Page for every alert");
    let (code, v) = curl(
        "PUT",
        &a.url("/api/workflows/page"),
        Some(ANN_TOKEN),
        &changed,
    );
    assert_eq!(code, 200, "{v}");
    let one: Value =
        serde_json::from_str(&http_get(&a.url("/api/workflows/page")).unwrap()).unwrap();
    assert_eq!(one["description"], "Page for every alert");
    post_alerts(&a, &["Deployed1".to_string()]);
    wait_until(
        Duration::from_secs(10),
        "the deployed workflow to run",
        || rec.count() == 1,
    );
    let (code, _) = curl("DELETE", &a.url("/api/workflows/page"), Some(ANN_TOKEN), "");
    assert_eq!(code, 204);
    assert!(!dir.join("workflows/page.yaml").exists());
    post_alerts(&a, &["AfterDelete".to_string()]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rec.count(), 1, "a deleted workflow does not run");
    let (code, _) = curl("GET", &a.url("/api/workflows/page"), None, "");
    assert_eq!(code, 404);
}
