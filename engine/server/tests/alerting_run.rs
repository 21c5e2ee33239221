//! Alert management in the running engine, against real peers: a real `prometheus-alertmanager`
//! posts to the webhook and the real `amtool` lists alerts, adds and expires a silence against
//! aiops' Alertmanager API v2; silenced alerts produce no notification intent. Alerting state
//! after `kill -9` + restart and after `aiops rebuild` equals an uninterrupted run, and no
//! notification intent is in the log twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, aiops_cmd, http_get, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ALERTING: &str = r#"
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: oncall
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
aiops:
  incidents:
    correlate_labels: [instance]
"#;

/// Writes the alerting YAML and a config file pointing at it; returns the config path.
fn config(dir: &Path) -> String {
    let yaml = dir.join("alerting.yaml");
    std::fs::write(&yaml, ALERTING).unwrap();
    let toml = dir.join("aiops.toml");
    std::fs::write(
        &toml,
        format!(
            "[alerting]\nconfig = {:?}\ntick_interval = \"100ms\"\ncheckpoint_interval = \"200ms\"\n",
            yaml.to_str().unwrap()
        ),
    )
    .unwrap();
    toml.to_str().unwrap().to_string()
}

fn amtool(args: &[&str]) -> String {
    let bin = aiops_testkit::require_binary("amtool").unwrap();
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "amtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every decision in the log, in order.
fn decisions(data: &Path, cfg: &str, kind: &str) -> Vec<Value> {
    aiops_cmd(
        data,
        "embedded",
        &["alerting", "log", "--type", kind, "--config", cfg],
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

fn notified_names(ns: &[Value]) -> Vec<String> {
    ns.iter()
        .flat_map(|n| n["firing"].as_array().cloned().unwrap_or_default())
        .map(|a| a["labels"]["alertname"].as_str().unwrap_or("").to_string())
        .collect()
}

fn engine_clock(aiops: &Aiops) -> i64 {
    let s: Value =
        serde_json::from_str(&http_get(&aiops.url("/api/alerting/stats")).unwrap()).unwrap();
    s["clock_ms"].as_i64().unwrap()
}

#[test]
fn alertmanager_and_amtool_work_against_aiops_and_silences_hold_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    let aiops = Aiops::start(&data, "embedded", &["--config", &cfg]);
    let am_config = format!(
        r#"
route:
  receiver: aiops
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: aiops
    webhook_configs:
      - url: {}
        send_resolved: true
"#,
        aiops.url("/api/alerts/webhook/alertmanager")
    );
    let am = aiops_testkit::Alertmanager::start(&am_config).unwrap();
    let am_url = format!("--alertmanager.url={}", am.url());
    let aiops_url = format!("--alertmanager.url={}", aiops.url(""));

    // Alertmanager posts a firing alert to aiops' webhook; amtool lists it from aiops' API.
    amtool(&[
        "alert",
        "add",
        &am_url,
        "alertname=DiskFull",
        "instance=db-1",
        "severity=critical",
        "--annotation=summary=disk full",
    ]);
    wait_until(
        Duration::from_secs(30),
        "amtool lists DiskFull from aiops",
        || {
            let out = amtool(&["alert", "query", &aiops_url, "-o", "json"]);
            out.contains("DiskFull")
        },
    );
    let listed: Value =
        serde_json::from_str(&amtool(&["alert", "query", &aiops_url, "-o", "json"])).unwrap();
    assert_eq!(listed[0]["labels"]["instance"], "db-1");
    assert_eq!(listed[0]["status"]["state"], "active");
    wait_until(
        Duration::from_secs(30),
        "the DiskFull notification intent",
        || notified_names(&decisions(&data, &cfg, "notification")).contains(&"DiskFull".into()),
    );

    // amtool adds a silence in aiops; it is listed, and the silenced alert is suppressed.
    let id = amtool(&[
        "silence",
        "add",
        &aiops_url,
        "alertname=CpuHigh",
        "--comment=maintenance",
        "--author=tester",
        "--duration=1h",
    ])
    .trim()
    .to_string();
    assert!(!id.is_empty());
    let q = amtool(&["silence", "query", &aiops_url, "-o", "json"]);
    let silences: Value = serde_json::from_str(&q).unwrap();
    assert_eq!(silences[0]["id"], id.as_str(), "{q}");
    assert_eq!(silences[0]["status"]["state"], "active");
    assert_eq!(silences[0]["createdBy"], "tester");
    amtool(&[
        "alert",
        "add",
        &am_url,
        "alertname=CpuHigh",
        "instance=web-1",
    ]);
    wait_until(
        Duration::from_secs(30),
        "CpuHigh suppressed in aiops",
        || {
            let all: Value =
                serde_json::from_str(&http_get(&aiops.url("/api/v2/alerts")).unwrap()).unwrap();
            all.as_array().unwrap().iter().any(|a| {
                a["labels"]["alertname"] == "CpuHigh"
                    && a["status"]["state"] == "suppressed"
                    && a["status"]["silencedBy"][0] == id.as_str()
            })
        },
    );
    // Several group intervals pass in engine time: no intent carries the silenced alert.
    let seen = engine_clock(&aiops);
    wait_until(Duration::from_secs(30), "5 s of engine time", || {
        engine_clock(&aiops) >= seen + 5_000
    });
    assert!(
        !notified_names(&decisions(&data, &cfg, "notification")).contains(&"CpuHigh".into()),
        "a silenced alert was notified"
    );
    // Expired through amtool, the silence stops holding the alert back.
    amtool(&["silence", "expire", &aiops_url, &id]);
    let q: Value = serde_json::from_str(&amtool(&[
        "silence",
        "query",
        &aiops_url,
        "--expired",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(q[0]["status"]["state"], "expired");
    wait_until(Duration::from_secs(30), "the CpuHigh notification", || {
        notified_names(&decisions(&data, &cfg, "notification")).contains(&"CpuHigh".into())
    });
    // Groups are visible as Alertmanager shows them.
    let groups: Value =
        serde_json::from_str(&http_get(&aiops.url("/api/v2/alerts/groups")).unwrap()).unwrap();
    let names: BTreeSet<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["CpuHigh", "DiskFull"]));
    drop(aiops);
}

fn post(url: &str, body: &Value) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    })
}

/// The observable alerting state: alerts, silences, incidents.
fn state(aiops: &Aiops) -> Value {
    let get =
        |p: &str| -> Value { serde_json::from_str(&http_get(&aiops.url(p)).unwrap()).unwrap() };
    json!({
        "incidents": get("/api/incidents?status=all"),
        "silences": get("/api/v2/silences"),
        "inhibit_rules": get("/api/alerting/inhibit_rules"),
        "alerts": get("/api/v2/alerts").as_array().unwrap().iter()
            .map(|a| json!([a["fingerprint"], a["status"], a["aiops"]["count"]]))
            .collect::<Vec<_>>(),
    })
}

#[test]
fn kill9_and_rebuild_give_the_uninterrupted_state_and_no_intent_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    let mut aiops = Aiops::start(&data, "embedded", &["--config", &cfg]);
    let port = aiops.port;
    let send = |aiops: &Aiops, round: usize| {
        let alerts: Vec<Value> = (0..20usize)
            .map(|k| {
                json!({
                    "name": format!("Alert{}", k % 4),
                    "severity": if k.is_multiple_of(5) { "critical" } else { "warning" },
                    "labels": {"instance": format!("host-{}", k % 7)},
                    "status": if (k + round).is_multiple_of(6) { "resolved" } else { "firing" },
                })
            })
            .collect();
        let (status, body) = post(&aiops.url("/api/alerts"), &json!(alerts));
        assert_eq!(status, 200, "{body}");
    };
    for round in 0..4 {
        send(&aiops, round);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (status, body) = post(
        &aiops.url("/api/v2/silences"),
        &json!({
            "matchers": [{"name": "instance", "value": "host-3", "isRegex": false}],
            "startsAt": "2020-01-01T00:00:00Z",
            "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "test",
            "comment": "noisy host",
        }),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &aiops.url("/api/alerting/inhibit_rules"),
        &json!({
            "id": "node-down-mutes-latency",
            "source_matchers": ["alertname=\"Alert0\""],
            "target_matchers": ["alertname=\"Alert1\""],
            "equal": ["instance"],
        }),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &aiops.url("/api/alerting/inhibit_rules"),
        &json!({"target_matchers": ["bad~matcher"]}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad matcher"), "{body}");
    wait_until(Duration::from_secs(30), "a notification", || {
        !decisions(&data, &cfg, "notification").is_empty()
    });
    // kill -9 in the middle of the run, restart on the same port, go on.
    aiops.kill9();
    let mut aiops = Aiops::start_on(&data, "embedded", port, &["--config", &cfg]);
    for round in 4..8 {
        send(&aiops, round);
        std::thread::sleep(Duration::from_millis(300));
    }
    let incidents: Value =
        serde_json::from_str(&http_get(&aiops.url("/api/incidents")).unwrap()).unwrap();
    let first = incidents["incidents"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = post(
        &aiops.url(&format!("/api/incidents/{first}/ack")),
        &json!({"by": "ann"}),
    );
    assert_eq!(status, 200, "{body}");
    let acked: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(acked["status"], "acknowledged");
    // Let group intervals pass so intents after the restart are in the log too.
    let seen = engine_clock(&aiops);
    wait_until(Duration::from_secs(30), "5 s of engine time", || {
        engine_clock(&aiops) >= seen + 5_000
    });
    aiops.stop();
    let before = {
        let a = Aiops::start_on(&data, "embedded", port, &["--config", &cfg]);
        let s = state(&a);
        drop(a);
        s
    };

    let logged = decisions(&data, &cfg, "notification");
    let ids: Vec<&str> = logged.iter().map(|n| n["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        ids.len(),
        unique.len(),
        "a notification intent is in the log twice"
    );
    assert!(ids.len() >= 2, "{ids:?}");

    // A rebuild from the log derives every decision already there and appends none.
    let out = aiops_cmd(
        &data,
        "embedded",
        &[
            "rebuild",
            "--config",
            &cfg,
            "--output",
            dir.path().join("rebuilt").to_str().unwrap(),
        ],
    );
    let sum: Value = serde_json::from_str(out.trim()).unwrap();
    let a = &sum["alerting"];
    assert!(a["decisions"].as_u64().unwrap() > 0, "{sum}");
    let all = decisions(&data, &cfg, "notification");
    assert_eq!(
        all.len(),
        logged.len(),
        "rebuild appended notifications: {sum}"
    );
    let rebuilt: Vec<Value> = std::fs::read_to_string(dir.path().join("rebuilt/alerting.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|d| d["type"] == "notification")
        .collect();
    let strip = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .map(|d| {
                let mut d = d.clone();
                d.as_object_mut().unwrap().remove("message");
                d.as_object_mut().unwrap().remove("id");
                d
            })
            .collect()
    };
    assert_eq!(
        strip(&rebuilt),
        strip(&logged),
        "rebuilt intents differ from the run's"
    );
    // And the state served from the rebuilt checkpoint equals the run's.
    let after = {
        let a = Aiops::start_on(&data, "embedded", port, &["--config", &cfg]);
        let s = state(&a);
        drop(a);
        s
    };
    assert_eq!(after, before);
}

/// Prometheus' own alerting client (`alerting.alertmanagers`, API v2) pointed at aiops: its
/// firing alert arrives at `POST /api/v2/alerts`, re-sends are deduplicated into one alert, and a
/// notification intent follows.
#[test]
fn prometheus_sends_its_alerts_to_aiops_as_to_an_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    let aiops = Aiops::start(&data, "embedded", &["--config", &cfg]);
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        r#"
groups:
  - name: test
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: warning, service: checkout}
        annotations: {summary: "it always fires"}
"#,
    )
    .unwrap();
    let prom_config = format!(
        r#"
global: {{evaluation_interval: 1s}}
rule_files: [{rules:?}]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs: [{{targets: ['127.0.0.1:{port}']}}]
"#,
        rules = rules.to_str().unwrap(),
        port = aiops.port
    );
    let _prom =
        aiops_testkit::Prometheus::start(&prom_config, &["--rules.alert.resend-delay=1s"]).unwrap();
    wait_until(
        Duration::from_secs(60),
        "Prometheus' alert, re-sent, in aiops",
        || {
            let all: Value =
                serde_json::from_str(&http_get(&aiops.url("/api/v2/alerts")).unwrap()).unwrap();
            all.as_array().unwrap().iter().any(|a| {
                a["labels"]["alertname"] == "AlwaysFiring"
                    && a["aiops"]["source"] == "alertmanager_api"
                    && a["aiops"]["count"].as_u64().unwrap_or(0) >= 2
            })
        },
    );
    let all: Value =
        serde_json::from_str(&http_get(&aiops.url("/api/v2/alerts")).unwrap()).unwrap();
    let ours: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "AlwaysFiring")
        .collect();
    assert_eq!(ours.len(), 1, "re-sends are one alert: {all}");
    assert_eq!(ours[0]["annotations"]["summary"], "it always fires");
    wait_until(Duration::from_secs(30), "its notification intent", || {
        notified_names(&decisions(&data, &cfg, "notification")).contains(&"AlwaysFiring".into())
    });
}
