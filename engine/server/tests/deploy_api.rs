//! Deploy sources and risk against the real binary: GitHub and GitLab webhooks with their
//! documented example payloads (a bad signature or token is refused and records nothing), the
//! same deploy reported twice is one record, an open critical incident on a dependency raises
//! the risk with a reason naming it, a freeze window refuses with a clear error, and the
//! `deploys` table on the read side; `run: true` runs the shipped deploy-run example through the
//! `github_actions` provider once per deploy (an approval first in production).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::recorder::{Contract, Received, Recorder};
use common::{Aiops, http_get, wait_until};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const GH_SECRET: &str = "gh-secret-for-the-test";
const GL_TOKEN: &str = "gl-token-for-the-test";

fn fixture(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/src/deploys")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// HMAC-SHA256 of `body` under `key`, hex (what GitHub puts after `sha256=`), by Python's
/// standard library so the test does not share the engine's HMAC code.
fn hmac_hex(key: &str, body: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())",
            key,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(body.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `curl` with headers; returns the status and the JSON body (Null when not JSON).
fn curl(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut c = std::process::Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    for (k, v) in headers {
        c.args(["-H", &format!("{k}: {v}")]);
    }
    c.args([
        "-H",
        "content-type: application/json",
        "--data-binary",
        "@-",
        url,
    ]);
    let out = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(body.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (b, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(b).unwrap_or(Value::Null),
    )
}

fn get(a: &Aiops, path: &str) -> Value {
    serde_json::from_str(&http_get(&a.url(path)).unwrap()).unwrap()
}

fn start(dir: &Path, freeze: bool) -> Aiops {
    std::fs::write(dir.join("gitlab.token"), format!("{GL_TOKEN}\n")).unwrap();
    let freeze = if freeze {
        r#"
[[deploys.risk.freezes]]
name = "year-end"
from = "2020-01-01T00:00:00Z"
until = "2099-01-01T00:00:00Z"
environments = ["production"]
"#
    } else {
        ""
    };
    let cfg = format!(
        r#"
[deploys]
verification_window = "1h"
[deploys.dependencies]
checkout = ["payments"]
[deploys.hooks.github]
secret_env = "TEST_GH_SECRET"
[deploys.hooks.gitlab]
secret_file = "{dir}/gitlab.token"
service_from = "project_name"
{freeze}
"#,
        dir = dir.display()
    );
    let path = dir.join("aiops.toml");
    std::fs::write(&path, cfg).unwrap();
    Aiops::start_env(
        &dir.join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &["--config", path.to_str().unwrap()],
        &[("TEST_GH_SECRET", GH_SECRET)],
    )
}

#[test]
fn webhooks_record_deploys_and_bad_signatures_record_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), false);
    let hook = |kind: &str| a.url(&format!("/api/deploy/hooks/{kind}"));
    let deployment = fixture("github/fixtures/deployment.json");
    // A wrong signature, a missing one, a signature of another body: 401, nothing recorded.
    for sig in [
        Some(format!("sha256={}", hmac_hex("wrong", &deployment))),
        None,
        Some(format!("sha256={}", hmac_hex(GH_SECRET, "{}"))),
    ] {
        let mut h = vec![("x-github-event", "deployment")];
        if let Some(s) = &sig {
            h.push(("x-hub-signature-256", s.as_str()));
        }
        let (code, body) = curl("POST", &hook("github"), &h, &deployment);
        assert_eq!(code, 401, "{sig:?}: {body}");
    }
    let (code, _) = curl(
        "POST",
        &hook("gitlab"),
        &[
            ("x-gitlab-event", "Deployment Hook"),
            ("x-gitlab-token", "nope"),
        ],
        &fixture("gitlab/fixtures/deployment.json"),
    );
    assert_eq!(code, 401);
    // A kind that is not configured.
    let (code, _) = curl("POST", &hook("flux"), &[], "{}");
    assert_eq!(code, 404);
    assert_eq!(get(&a, "/api/deploys")["total"], 0);
    // GitHub: the documented `deployment`, then its `deployment_status` (success): one record.
    let sig = format!("sha256={}", hmac_hex(GH_SECRET, &deployment));
    let (code, body) = curl(
        "POST",
        &hook("github"),
        &[
            ("x-github-event", "deployment"),
            ("x-hub-signature-256", &sig),
        ],
        &deployment,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["recorded"], json!(["github-145988746"]));
    let status = fixture("github/fixtures/deployment_status.json");
    let sig = format!("sha256={}", hmac_hex(GH_SECRET, &status));
    let (code, body) = curl(
        "POST",
        &hook("github"),
        &[
            ("x-github-event", "deployment_status"),
            ("x-hub-signature-256", &sig),
        ],
        &status,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["recorded"], json!(["github-145988746"]));
    let d = &get(&a, "/api/deploy/status?id=github-145988746")["deploy"];
    assert_eq!(d["source"], "github");
    assert_eq!(d["service"], "Hello-World");
    assert_eq!(d["environment"], "production");
    assert_eq!(d["version"], "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    assert_eq!(d["external_id"], "145988746");
    // GitLab: the documented deployment event.
    let (code, body) = curl(
        "POST",
        &hook("gitlab"),
        &[
            ("x-gitlab-event", "Deployment Hook"),
            ("x-gitlab-token", GL_TOKEN),
        ],
        &fixture("gitlab/fixtures/deployment.json"),
    );
    assert_eq!(code, 200, "{body}");
    let id = body["recorded"][0].as_str().unwrap().to_string();
    let d = &get(&a, &format!("/api/deploy/status?id={id}"))["deploy"];
    assert_eq!(d["source"], "gitlab");
    assert_eq!(d["environment"], "staging");
    assert_eq!(d["version"], "279484c0");
    let all = get(&a, "/api/deploys");
    assert_eq!(all["total"], 2, "{all}");
    // The same records on the read side.
    let (code, rows) = curl(
        "POST",
        &a.url("/api/sql"),
        &[],
        &json!({"sql": "SELECT id, source, status FROM deploys ORDER BY id"}).to_string(),
    );
    assert_eq!(code, 200, "{rows}");
    let text = rows.to_string();
    assert!(
        text.contains("github-145988746") && text.contains(&id),
        "{text}"
    );
}

#[test]
fn an_incident_on_a_dependency_raises_the_risk_and_a_freeze_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), false);
    let deploy = |service: &str, id: &str| {
        curl(
            "POST",
            &a.url("/api/deploy"),
            &[],
            &json!({"id": id, "service": service, "version": "2", "previous_version": "1"})
                .to_string(),
        )
    };
    let (code, calm) = deploy("checkout", "calm");
    assert_eq!(code, 201, "{calm}");
    let calm_score = calm["deploy"]["risk"]["score"].as_f64().unwrap();
    // A critical alert on the dependency opens an incident.
    let now = chrono_now();
    let (code, body) = curl(
        "POST",
        &a.url("/api/v2/alerts"),
        &[],
        &json!([{"labels": {"alertname": "PaymentsDown", "severity": "critical", "service": "payments"},
                 "annotations": {"summary": "payments is down"}, "startsAt": now}])
        .to_string(),
    );
    assert!(code < 300, "{code} {body}");
    wait_until(Duration::from_secs(30), "an open incident", || {
        get(&a, "/api/incidents")
            .to_string()
            .contains("PaymentsDown")
    });
    let (code, risky) = deploy("checkout", "risky");
    assert_eq!(code, 201, "{risky}");
    let risk = &risky["deploy"]["risk"];
    assert!(
        risk["score"].as_f64().unwrap() > calm_score,
        "{calm_score} vs {risk}"
    );
    let reasons = risk["reasons"].to_string();
    assert!(
        reasons.contains("payments") && reasons.contains("INC-"),
        "the reason names the incident and the dependency: {reasons}"
    );
    drop(a);
    // A freeze window: refused with its name, nothing recorded.
    let tmp = tempfile::tempdir().unwrap();
    let a = start(tmp.path(), true);
    let (code, body) = curl(
        "POST",
        &a.url("/api/deploy"),
        &[],
        &json!({"service": "checkout", "version": "2"}).to_string(),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.to_string().contains("year-end"), "{body}");
    assert_eq!(get(&a, "/api/deploys")["total"], 0);
    // Staging is not frozen.
    let (code, body) = curl(
        "POST",
        &a.url("/api/deploy"),
        &[],
        &json!({"service": "checkout", "version": "2", "environment": "staging"}).to_string(),
    );
    assert_eq!(code, 201, "{body}");
}

/// Now as RFC 3339 (UTC), from `date`.
fn chrono_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const DISPATCH_TOKEN: &str = "ghp-dispatch-token-for-the-test";
const ANN_TOKEN: &str = "ann-token-deploy-run-9d2e";

/// What GitHub's "Create a workflow dispatch event" accepts: `POST
/// /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches` with a bearer token, the
/// JSON media type, the API version header, a User-Agent and `{"ref", "inputs"}` (string
/// values here); GitHub answers 204 with no body.
fn dispatch_contract() -> Arc<Contract> {
    Arc::new(|r: &Received| {
        if r.method != "POST" || r.path != "/repos/acme/web/actions/workflows/deploy.yml/dispatches"
        {
            return Err(format!("{} {} is not the dispatch route", r.method, r.path));
        }
        if r.header("authorization") != Some(&format!("Bearer {DISPATCH_TOKEN}")) {
            return Err("Authorization must be the bearer token".into());
        }
        if r.header("accept") != Some("application/vnd.github+json") {
            return Err("Accept must be application/vnd.github+json".into());
        }
        if r.header("x-github-api-version") != Some("2022-11-28") {
            return Err("X-GitHub-Api-Version must be 2022-11-28".into());
        }
        if r.header("user-agent").is_none_or(str::is_empty) {
            return Err("GitHub refuses requests without a User-Agent".into());
        }
        let b = &r.body;
        if b["ref"] != "main" {
            return Err(format!("ref must be main: {b}"));
        }
        let inputs = b["inputs"].as_object().ok_or("inputs must be an object")?;
        if inputs.len() > 25 {
            return Err("at most 25 inputs".into());
        }
        for k in [
            "deploy_id",
            "service",
            "environment",
            "version",
            "aiops_key",
        ] {
            if inputs
                .get(k)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(format!("input {k} must be a non-empty string: {b}"));
            }
        }
        Ok((204, String::new()))
    })
}

fn start_runner(dir: &Path, rec: &Recorder, port: u16) -> Aiops {
    let wdir = dir.join("workflows");
    let adir = dir.join("autoheal");
    for d in [&wdir, &adir] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../pipelines/workflows/examples/deploy-run.yaml"),
        wdir.join("deploy-run.yaml"),
    )
    .unwrap();
    let cfg = format!(
        r#"
[outbound]
allow = ["127.0.0.1"]

[workflows]
dir = {wdir:?}
autoheal_dir = {adir:?}
tick_interval = "100ms"

[workflows.secrets]
GH_DISPATCH_TOKEN = {{ env = "TEST_DISPATCH_TOKEN" }}
ANN = {{ env = "TEST_ANN_TOKEN" }}

[workflows.users.ann]
token_secret = "ANN"
roles = ["sre"]

[workflows.providers.gha]
kind = "github_actions"
api_url = "{api}"
token = "{{{{ secrets.GH_DISPATCH_TOKEN }}}}"
owner = "acme"
repo = "web"
workflow = "deploy.yml"
key_input = "aiops_key"

[deploys]
verification_window = "1h"
deploy_workflow = "deploy-run"

[deploys.risk]
approval_threshold = 0
approval_environments = ["production"]
"#,
        wdir = wdir.to_str().unwrap(),
        adir = adir.to_str().unwrap(),
        api = rec.url(""),
    );
    let path = dir.join("aiops.toml");
    std::fs::write(&path, cfg).unwrap();
    Aiops::start_env(
        &dir.join("data"),
        "embedded",
        port,
        &["--config", path.to_str().unwrap()],
        &[
            ("TEST_DISPATCH_TOKEN", DISPATCH_TOKEN),
            ("TEST_ANN_TOKEN", ANN_TOKEN),
            // Every call is held 3 s after its intent is logged, so a kill can land between.
            ("AIOPS_FAULT_EFFECT_DELAY_MS", "3000"),
        ],
    )
}

/// `POST /api/deploy {"run": true}` runs the shipped deploy-run example through the
/// `github_actions` provider against a GitHub contract server: a staging deploy is dispatched
/// once and goes on to its verification; a production deploy (the policy asks for an approval)
/// waits for a person: approved → dispatched once, rejected → cancelled and nothing sent. A
/// `kill -9` between the dispatch's intent and its call, and another after every result is
/// logged: each dispatch is sent once.
#[test]
fn run_true_dispatches_the_deploy_workflow_once() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::start(dispatch_contract());
    let port = aiops_testkit::free_port();
    let mut a = start_runner(tmp.path(), &rec, port);
    let post = |a: &Aiops, id: &str, env: &str| {
        curl(
            "POST",
            &a.url("/api/deploy"),
            &[],
            &json!({"id": id, "service": "web", "version": id, "previous_version": "6",
                    "environment": env, "run": true})
            .to_string(),
        )
    };
    let status =
        |a: &Aiops, id: &str| get(a, &format!("/api/deploy/status?id={id}"))["deploy"].clone();
    // Staging: no approval. kill -9 once the dispatch's intent is logged (its call is held):
    // the restarted engine sends it, once.
    let (code, body) = post(&a, "web-7", "staging");
    assert_eq!(code, 201, "{body}");
    wait_until(Duration::from_secs(20), "the dispatch's intent", || {
        a.metric("aiops_workflow_intents_total") >= 1.0
    });
    a.kill9();
    assert_eq!(rec.count(), 0, "the call was held past the kill");
    let mut a = start_runner(tmp.path(), &rec, port);
    wait_until(Duration::from_secs(20), "the staging dispatch", || {
        rec.count() == 1
    });
    let sent = rec.all();
    assert_eq!(sent[0].body["inputs"]["deploy_id"], "web-7");
    assert_eq!(sent[0].body["inputs"]["environment"], "staging");
    wait_until(Duration::from_secs(20), "web-7 verifying", || {
        status(&a, "web-7")["status"] == "verifying"
    });
    // Production: the policy asks for an approval; nothing is sent before it.
    let execution = |a: &Aiops, id: &str| -> (String, Value) {
        let exec = status(a, id)["action_execution"]
            .as_str()
            .unwrap()
            .to_string();
        let e = get(a, &format!("/api/workflows/executions/{exec}"));
        (exec, e)
    };
    for id in ["web-8", "web-9"] {
        let (code, body) = post(&a, id, "production");
        assert_eq!(code, 201, "{body}");
        assert_eq!(body["deploy"]["status"], "awaiting_approval", "{body}");
        wait_until(
            Duration::from_secs(20),
            "the dispatch to wait for approval",
            || execution(&a, id).1["status"] == "waiting_approval",
        );
    }
    assert_eq!(rec.count(), 1, "nothing is dispatched before an approval");
    let decide = |a: &Aiops, id: &str, what: &str| {
        let (exec, e) = execution(a, id);
        let digest = e["approval"]["digest"].as_str().unwrap().to_string();
        let (code, v) = curl(
            "POST",
            &a.url(&format!("/api/workflows/executions/{exec}/{what}")),
            &[("authorization", &format!("Bearer {ANN_TOKEN}"))],
            &json!({"digest": digest}).to_string(),
        );
        assert_eq!(code, 200, "{what} {id}: {v}");
    };
    decide(&a, "web-8", "approve");
    wait_until(Duration::from_secs(20), "the approved dispatch", || {
        rec.count() == 2
    });
    assert_eq!(rec.all()[1].body["inputs"]["deploy_id"], "web-8");
    wait_until(Duration::from_secs(20), "web-8 verifying", || {
        status(&a, "web-8")["status"] == "verifying"
    });
    decide(&a, "web-9", "reject");
    wait_until(Duration::from_secs(20), "web-9 cancelled", || {
        status(&a, "web-9")["status"] == "cancelled"
    });
    // Each dispatch carried its own key.
    let keys: std::collections::BTreeSet<String> = rec
        .all()
        .iter()
        .map(|r| r.body["inputs"]["aiops_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    // kill -9 and a restart: the dispatches' results are in the log, nothing is sent again.
    a.kill9();
    let a = start_runner(tmp.path(), &rec, port);
    wait_until(
        Duration::from_secs(20),
        "the deploys back after the restart",
        || {
            status(&a, "web-8")["status"] == "verifying"
                && status(&a, "web-9")["status"] == "cancelled"
        },
    );
    let quiet = std::time::Instant::now();
    while quiet.elapsed() < Duration::from_secs(2) {
        assert_eq!(
            rec.count(),
            2,
            "a dispatch was sent again after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        rec.violations.lock().unwrap().is_empty(),
        "{:?}",
        rec.violations.lock().unwrap()
    );
}
