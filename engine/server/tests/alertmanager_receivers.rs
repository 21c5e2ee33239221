//! A real `alertmanager.yml` (checked by the real `amtool check-config`) drives aiops' receivers:
//! the alerts routed to its webhook, Slack and email receivers reach a loopback webhook server
//! (the body checked field by field against Alertmanager's webhook format), a Slack contract
//! server and a real SMTP server (aiosmtpd) — once each, also across `kill -9`, none on replay;
//! `send_resolved` and `max_alerts` as Alertmanager applies them; the secrets (a webhook URL with
//! a token, a Slack URL read from `slack_api_url_file`) never reach the data dir or stderr. And the
//! same file run by the real Alertmanager sends a webhook body of the same shape and content.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::recorder::{Contract, Received, Recorder};
use common::{Aiops, aiops_cmd, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const HOOK_TOKEN: &str = "HOOKTOKENc0ffee9876";
const SLACK_TOKEN: &str = "SLACKTOKENdeadbeef4321";

fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).is_ok()
            || s.starts_with("0001-01-01T00:00:00")
    })
}

fn string_map(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Value::is_string))
}

/// Alertmanager's webhook body (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config):
/// version "4", groupKey, truncatedAlerts, status, receiver, groupLabels, commonLabels,
/// commonAnnotations, externalURL, alerts[] with status, labels, annotations, startsAt, endsAt,
/// generatorURL, fingerprint.
fn webhook_contract() -> Arc<Contract> {
    Arc::new(|r: &Received| {
        if r.method != "POST" {
            return Err(format!("{} is not POST", r.method));
        }
        if !r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err("content-type must be application/json".into());
        }
        let b = &r.body;
        if b["version"] != "4" {
            return Err(format!("version {} is not \"4\"", b["version"]));
        }
        for k in ["groupKey", "receiver", "externalURL"] {
            if !b[k].is_string() {
                return Err(format!("{k} must be a string"));
            }
        }
        if !b["truncatedAlerts"].is_u64() {
            return Err("truncatedAlerts must be a count".into());
        }
        if !matches!(b["status"].as_str(), Some("firing" | "resolved")) {
            return Err(format!("bad status {}", b["status"]));
        }
        for k in ["groupLabels", "commonLabels", "commonAnnotations"] {
            if !string_map(&b[k]) {
                return Err(format!("{k} must be a map of strings"));
            }
        }
        let alerts = b["alerts"].as_array().ok_or("alerts must be a list")?;
        for a in alerts {
            if !matches!(a["status"].as_str(), Some("firing" | "resolved")) {
                return Err(format!("bad alert status {}", a["status"]));
            }
            if !string_map(&a["labels"]) || !string_map(&a["annotations"]) {
                return Err("alert labels/annotations must be maps of strings".into());
            }
            if !is_rfc3339(&a["startsAt"]) || !is_rfc3339(&a["endsAt"]) {
                return Err(format!("bad times {} {}", a["startsAt"], a["endsAt"]));
            }
            if !a["generatorURL"].is_string() || !a["fingerprint"].is_string() {
                return Err("generatorURL and fingerprint must be strings".into());
            }
        }
        Ok((200, "{}".into()))
    })
}

/// Slack incoming webhooks (https://api.slack.com/messaging/webhooks): POST JSON to
/// /services/T…/B…/<token>; `text` is required (it is the notification fallback when blocks or
/// attachments are present); blocks and attachments, when present, are lists of objects with a
/// type / a colour. Answers 200 `ok`, or 400 `invalid_payload`.
fn slack_contract() -> Arc<Contract> {
    Arc::new(|r: &Received| {
        if r.method != "POST" || r.path != format!("/services/T000/B000/{SLACK_TOKEN}") {
            return Err(format!("{} {} is not the webhook URL", r.method, r.path));
        }
        if !r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err("content-type must be application/json".into());
        }
        let text = r.body["text"].as_str().ok_or("invalid_payload: no text")?;
        if text.is_empty() || text.len() > 40_000 {
            return Err("invalid_payload: text must be 1..40000 chars".into());
        }
        if let Some(blocks) = r.body.get("blocks") {
            let blocks = blocks.as_array().ok_or("invalid_blocks")?;
            if blocks.len() > 50 || blocks.iter().any(|b| !b["type"].is_string()) {
                return Err("invalid_blocks".into());
            }
        }
        if let Some(att) = r.body.get("attachments") {
            let att = att.as_array().ok_or("invalid_attachments")?;
            if att.iter().any(|a| !a.is_object()) {
                return Err("invalid_attachments".into());
            }
        }
        Ok((200, "ok".into()))
    })
}

struct Smtp {
    child: std::process::Child,
    out: PathBuf,
    port: u16,
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        let out = dir.join("mail");
        std::fs::create_dir_all(&out).unwrap();
        let port = aiops_testkit::free_port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../connectors/tests/smtp_sink.py"
        );
        let mut child = std::process::Command::new("python3")
            .args([script, &port.to_string(), out.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Smtp { child, out, port }
    }

    fn messages(&self) -> Vec<String> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        v.sort();
        v.iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager_yml(hook: &str, slack_file: &Path, smtp_port: u16) -> String {
    format!(
        r#"global:
  smtp_smarthost: '127.0.0.1:{smtp_port}'
  smtp_from: 'alerts@example.com'
  smtp_require_tls: false
  slack_api_url_file: '{slack}'
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 300ms
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['team="chat"']
      receiver: chat
    - matchers: ['team="mail"']
      receiver: mail
receivers:
  - name: hook
    webhook_configs:
      - url: '{hook}'
        max_alerts: 2
  - name: chat
    slack_configs:
      - channel: '#ops'
        send_resolved: true
  - name: mail
    email_configs:
      - to: 'oncall@example.com'
"#,
        slack = slack_file.display()
    )
}

fn write_config(dir: &Path, am_yml: &str) -> String {
    let am = dir.join("alertmanager.yml");
    std::fs::write(&am, am_yml).unwrap();
    let wdir = dir.join("workflows");
    std::fs::create_dir_all(&wdir).unwrap();
    let toml = dir.join("aiops.toml");
    std::fs::write(
        &toml,
        format!(
            r#"[alerting]
config = {am:?}
external_url = "http://aiops.example:9464"
tick_interval = "100ms"
checkpoint_interval = "200ms"

[workflows]
dir = {wdir:?}
autoheal_dir = {ah:?}
outbound_allow = ["127.0.0.1"]
checkpoint_interval = "300ms"
tick_interval = "100ms"
"#,
            am = am.to_str().unwrap(),
            wdir = wdir.to_str().unwrap(),
            ah = dir.join("autoheal").to_str().unwrap(),
        ),
    )
    .unwrap();
    toml.to_str().unwrap().to_string()
}

// Alerts carry wall-clock times, as Prometheus stamps them (the test is the sender: an edge).
#[allow(clippy::disallowed_methods)]
fn rfc3339_now(offset_s: i64) -> String {
    let t = std::time::SystemTime::now();
    let t = if offset_s >= 0 {
        t + Duration::from_secs(offset_s.unsigned_abs())
    } else {
        t - Duration::from_secs(offset_s.unsigned_abs())
    };
    humantime::format_rfc3339_millis(t).to_string()
}

/// Posts Alertmanager API v2 alerts (what Prometheus sends) to `base`.
fn post_v2(base: &str, alerts: &[Value]) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            &Value::Array(alerts.to_vec()).to_string(),
            &format!("{base}/api/v2/alerts"),
        ])
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(code.starts_with('2'), "POST {base}/api/v2/alerts: {code}");
}

fn alert(name: &str, labels: Value, ends_in_s: Option<i64>) -> Value {
    let mut l = labels;
    l["alertname"] = json!(name);
    let mut a = json!({
        "labels": l,
        "annotations": {"summary": format!("{name} is broken"), "runbook_url": "https://runbooks.example/x"},
        "startsAt": rfc3339_now(-5),
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
    });
    if let Some(e) = ends_in_s {
        a["endsAt"] = json!(rfc3339_now(e));
    }
    a
}

fn hook_alerts(end: Option<i64>) -> Vec<Value> {
    ["a", "b", "c"]
        .iter()
        .map(|i| alert("HookAlert", json!({"instance": i, "severity": "page"}), end))
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn bodies_of(rec: &Recorder, alertname: &str, status: &str) -> Vec<Value> {
    rec.all()
        .into_iter()
        .filter(|r| r.body["groupLabels"]["alertname"] == alertname && r.body["status"] == status)
        .map(|r| r.body)
        .collect()
}

#[test]
fn alertmanager_yml_receivers_deliver_once_across_kill9_and_never_on_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hook = Recorder::start(webhook_contract());
    let slack = Recorder::start(slack_contract());
    let smtp = Smtp::start(dir);
    let slack_file = dir.join("slack-url");
    std::fs::write(
        &slack_file,
        format!(
            "{}\n",
            slack.url(&format!("/services/T000/B000/{SLACK_TOKEN}"))
        ),
    )
    .unwrap();
    let yml = alertmanager_yml(
        &hook.url(&format!("/alerts?token={HOOK_TOKEN}")),
        &slack_file,
        smtp.port,
    );
    // The same file is valid for the real Alertmanager.
    let am_file = dir.join("check.yml");
    std::fs::write(&am_file, &yml).unwrap();
    if let Ok(amtool) = aiops_testkit::require_binary("amtool") {
        let out = std::process::Command::new(amtool)
            .args(["check-config", am_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "amtool refuses the file: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let cfg = write_config(dir, &yml);
    let data = dir.join("data");
    let mut a = Aiops::start(&data, "embedded", &["--config", &cfg]);

    post_v2(&a.url(""), &hook_alerts(None));
    post_v2(
        &a.url(""),
        &[alert("ChatAlert", json!({"team": "chat"}), None)],
    );
    post_v2(
        &a.url(""),
        &[alert("MailAlert", json!({"team": "mail"}), None)],
    );
    wait_until(
        Duration::from_secs(30),
        "the three receivers delivered",
        || {
            !bodies_of(&hook, "HookAlert", "firing").is_empty()
                && slack.count() >= 1
                && !smtp.messages().is_empty()
        },
    );
    wait_until(Duration::from_secs(20), "no effect pending", || {
        a.metric("aiops_workflow_pending_effects") == 0.0
    });

    // The webhook body is Alertmanager's, with max_alerts applied.
    let b = &bodies_of(&hook, "HookAlert", "firing")[0];
    assert_eq!(b["receiver"], "hook");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["truncatedAlerts"], 1, "{b}");
    assert_eq!(b["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(b["groupLabels"], json!({"alertname": "HookAlert"}));
    assert_eq!(
        b["commonLabels"],
        json!({"alertname": "HookAlert", "severity": "page"})
    );
    assert_eq!(b["commonAnnotations"]["summary"], "HookAlert is broken");
    assert_eq!(b["externalURL"], "http://aiops.example:9464");
    assert_eq!(
        b["alerts"][0]["generatorURL"],
        "http://prometheus.example/graph?g0.expr=up"
    );
    let first_hook = hook.all().into_iter().next().unwrap();
    assert!(
        first_hook.path.contains(HOOK_TOKEN),
        "the URL's query is kept"
    );
    // Slack: Alertmanager's default title and colour.
    let s = &slack.all()[0];
    let shown = s.body.to_string();
    assert!(shown.contains("[FIRING:1] ChatAlert"), "{shown}");
    assert!(shown.contains("danger") || shown.contains("#"), "{shown}");
    // Email: Alertmanager's default subject, the alert's labels and annotations in the body.
    let mail = &smtp.messages()[0];
    assert!(mail.contains("X-Envelope-To: oncall@example.com"), "{mail}");
    assert!(mail.contains("Subject: [FIRING:1] MailAlert"), "{mail}");
    assert!(mail.contains("MailAlert is broken"), "{mail}");

    // A generated receiver workflow follows the YAML: the API refuses to replace or delete it.
    let listed = common::http_get(&a.url("/api/workflows")).unwrap();
    let id = serde_json::from_str::<Value>(&listed)
        .unwrap()
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            serde_json::from_str::<Value>(&listed).unwrap()["workflows"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .filter_map(|w| w["id"].as_str().map(str::to_string))
        .find(|i| i.starts_with("am-hook-"))
        .unwrap_or_else(|| panic!("no generated workflow in {listed}"));
    let del = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ])
        .arg(a.url(&format!("/api/workflows/{id}")))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&del.stdout), "409");

    // kill -9 after the results are in the log: the restarted engine sends nothing again.
    a.kill9();
    let a = Aiops::start(&data, "embedded", &["--config", &cfg]);
    // A marker notification through the same path proves the engine and its executor run.
    post_v2(&a.url(""), &[alert("Marker", json!({}), None)]);
    wait_until(Duration::from_secs(30), "the marker's webhook", || {
        !bodies_of(&hook, "Marker", "firing").is_empty()
    });
    assert_eq!(bodies_of(&hook, "HookAlert", "firing").len(), 1);
    assert_eq!(slack.count(), 1);
    assert_eq!(smtp.messages().len(), 1);

    // Resolve everything: webhook and Slack (send_resolved) tell, email (default false) does not.
    post_v2(&a.url(""), &hook_alerts(Some(-1)));
    post_v2(
        &a.url(""),
        &[alert("ChatAlert", json!({"team": "chat"}), Some(-1))],
    );
    post_v2(
        &a.url(""),
        &[alert("MailAlert", json!({"team": "mail"}), Some(-1))],
    );
    wait_until(Duration::from_secs(30), "resolved notifications", || {
        !bodies_of(&hook, "HookAlert", "resolved").is_empty() && slack.count() >= 2
    });
    let r = &bodies_of(&hook, "HookAlert", "resolved")[0];
    assert!(
        r["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "resolved" && x["endsAt"] != "0001-01-01T00:00:00Z"),
        "{r}"
    );
    assert!(
        slack.all()[1]
            .body
            .to_string()
            .contains("[RESOLVED] ChatAlert")
    );
    wait_until(Duration::from_secs(20), "no effect pending", || {
        a.metric("aiops_workflow_pending_effects") == 0.0
    });
    assert_eq!(
        smtp.messages().len(),
        1,
        "email_configs default send_resolved: false"
    );
    let mut a = a;
    a.stop();
    let violations = hook.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "webhook contract: {violations:?}");
    let violations = slack.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "slack contract: {violations:?}");

    // Replay and rebuild send nothing and list what ran.
    let (h, s, m) = (hook.count(), slack.count(), smtp.messages().len());
    let out = aiops_cmd(
        &data,
        "embedded",
        &["replay", "--workflows", "--config", &cfg],
    );
    let would: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "would_run")
        .collect();
    assert!(would.len() >= 5, "{out}");
    aiops_cmd(&data, "embedded", &["rebuild", "--config", &cfg]);
    assert_eq!(
        (hook.count(), slack.count(), smtp.messages().len()),
        (h, s, m)
    );

    // The secrets never reach the data dir or stderr.
    let mut files = Vec::new();
    walk(&data, &mut files);
    let mut hay = Vec::new();
    for f in files {
        hay.extend(std::fs::read(f).unwrap_or_default());
    }
    hay.extend(std::fs::read(&a.stderr).unwrap_or_default());
    assert!(
        !contains(&hay, HOOK_TOKEN.as_bytes()),
        "the webhook token leaked"
    );
    assert!(
        !contains(&hay, SLACK_TOKEN.as_bytes()),
        "the Slack token leaked"
    );
}

/// The same alertmanager.yml and the same alerts through the real Alertmanager and through aiops:
/// the webhook bodies agree on everything but what names the sender (groupKey's spelling,
/// externalURL, fingerprints).
#[test]
fn webhook_body_matches_the_real_alertmanagers() {
    if aiops_testkit::require_binary("prometheus-alertmanager").is_err() {
        eprintln!(
            "prometheus-alertmanager not installed; scripts/install-test-deps.sh installs it"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hook = Recorder::start(webhook_contract());
    let yml = format!(
        r#"route:
  receiver: hook
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: '{}'
        send_resolved: true
"#,
        hook.url("/hook")
    );
    let am = aiops_testkit::Alertmanager::start(&yml).unwrap();
    let cfg = write_config(dir, &yml);
    let mut a = Aiops::start(&dir.join("data"), "embedded", &["--config", &cfg]);
    let alerts: Vec<Value> = ["x", "y"]
        .iter()
        .map(|i| {
            alert(
                "DiskFull",
                json!({"instance": i, "cluster": "eu1", "severity": "warning"}),
                None,
            )
        })
        .collect();
    post_v2(&am.url(), &alerts);
    post_v2(&a.url(""), &alerts);
    let from = |ua_am: bool| -> Vec<Value> {
        hook.all()
            .into_iter()
            .filter(|r| {
                r.header("user-agent")
                    .is_some_and(|u| u.starts_with("Alertmanager"))
                    == ua_am
            })
            .map(|r| r.body)
            .collect()
    };
    wait_until(Duration::from_secs(30), "both senders' webhooks", || {
        !from(true).is_empty() && !from(false).is_empty()
    });
    a.stop();
    let (am_body, ours) = (&from(true)[0], &from(false)[0]);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(am_body), keys(ours), "top-level fields");
    for k in [
        "version",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "truncatedAlerts",
    ] {
        assert_eq!(
            am_body[k], ours[k],
            "{k}: Alertmanager {am_body} aiops {ours}"
        );
    }
    let sorted = |v: &Value| {
        let mut a: Vec<Value> = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                json!({"status": x["status"], "labels": x["labels"], "annotations": x["annotations"],
                       "generatorURL": x["generatorURL"],
                       "keys": keys(x)})
            })
            .collect();
        a.sort_by_key(|x| x["labels"]["instance"].as_str().unwrap_or("").to_string());
        a
    };
    assert_eq!(sorted(am_body), sorted(ours));
    let v = hook.violations.lock().unwrap().clone();
    assert!(v.is_empty(), "{v:?}");
}
