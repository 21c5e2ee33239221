//! A real `prometheus-alertmanager` posts a firing and then a resolved alert to the webhook (the
//! alert is created and resolved with the real `amtool`): both are in the log as alert events with
//! the same fingerprint — Alertmanager's own.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, http_get, replay_json, wait_until};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn amtool(url: &str, args: &[&str]) {
    let bin = aiops_testkit::require_binary("amtool").unwrap();
    let out = Command::new(bin)
        .args(["alert", "add", "--alertmanager.url", url])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "amtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // amtool resolves the alert at wall-clock now
fn alertmanager_firing_then_resolved_share_a_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let mut aiops = Aiops::start(dir.path(), "embedded", &[]);
    let config = format!(
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
    let am = aiops_testkit::Alertmanager::start(&config).unwrap();
    let alert = ["alertname=DiskFull", "instance=db-1:9100", "severity=page"];
    let mut firing = alert.to_vec();
    firing.push("--annotation=summary=disk / is 97% full");
    amtool(&am.url(), &firing);
    wait_until(Duration::from_secs(30), "the firing notification", || {
        aiops.metric("aiops_ingest_events_total{kind=\"alerts\",source=\"alertmanager\"}") >= 1.0
    });
    let listed: Value =
        serde_json::from_str(&http_get(&format!("{}/api/v2/alerts", am.url())).unwrap()).unwrap();
    let am_fingerprint = listed[0]["fingerprint"].as_str().unwrap().to_string();

    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let end = format!("--end={now}");
    let mut resolved = alert.to_vec();
    resolved.push(&end);
    amtool(&am.url(), &resolved);
    wait_until(Duration::from_secs(30), "the resolved notification", || {
        aiops.metric("aiops_ingest_events_total{kind=\"alerts\",source=\"alertmanager\"}") >= 2.0
    });
    aiops.stop();

    let alerts = replay_json(dir.path(), "embedded", "alerts");
    let firing: Vec<&Value> = alerts.iter().filter(|a| a["status"] == "firing").collect();
    let resolved: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["status"] == "resolved")
        .collect();
    assert!(!firing.is_empty() && !resolved.is_empty(), "{alerts:?}");
    for a in firing.iter().chain(resolved.iter()) {
        assert_eq!(a["fingerprint"], am_fingerprint.as_str(), "{a}");
        assert_eq!(a["labels"]["alertname"], "DiskFull");
        assert_eq!(a["labels"]["instance"], "db-1:9100");
        assert_eq!(a["source"], "alertmanager");
    }
    assert_eq!(firing[0]["annotations"]["summary"], "disk / is 97% full");
    assert!(
        resolved[0]["ends_at"].is_string(),
        "resolved alert has an end: {}",
        resolved[0]
    );
}
