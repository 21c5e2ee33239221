//! Auto-heal end to end: a small service the test starts exports an error ratio that degrades;
//! aiops scrapes it, a SQL alert rule fires, the incident's strategy runs an `exec` remedy that
//! restarts the service, the verify condition (SQL over the scraped metrics, after a settle delay)
//! sees the metric recover, the alert and the incident resolve, and the incident's timeline has
//! every step. A remedy that does not help escalates to a notification.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::recorder::{Recorder, pagerduty};
use common::{Aiops, http_get, wait_until};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const PD_KEY: &str = "R0UT1NGKEYsecretvalue0123456789b";

const SERVICE: &str = r#"
import http.server, os, sys
port, state = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        bad = {s: os.path.exists(os.path.join(state, s + ".broken")) for s in ("shop", "ledger")}
        body = "".join('svc_error_ratio{service="%s"} %s\n' % (s, 0.9 if b else 0.01) for s, b in bad.items())
        self.send_response(200)
        self.send_header("content-type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *a):
        pass
open(os.path.join(state, "svc.pid"), "w").write(str(os.getpid()))
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"#;

// The remedy: "restart" the named service — clears its fault (only `shop` can be fixed this
// way) and kills the process; the test's supervisor starts it again, as systemd would.
const RESTART: &str = r#"#!/bin/sh
state="$1"; svc="$2"
echo "restart $svc" >> "$state/restarts.log"
if [ "$svc" = "shop" ]; then rm -f "$state/$svc.broken"; fi
kill "$(cat "$state/svc.pid")"
"#;

const RULE: &str = r#"-- Error ratio above 50% on a service.
-- @for: 1
-- @severity: critical
-- @delay: 1s
-- @summary: error ratio {{ratio}} on {{service}}
INSERT INTO alerts
SELECT
  tumble(time, INTERVAL '2 seconds') AS window_start,
  'HighErrorRatio' AS alertname,
  labels['service'] AS service,
  max(value) AS ratio
FROM metrics
WHERE name = 'svc_error_ratio'
GROUP BY tumble(time, INTERVAL '2 seconds'), labels['service']
HAVING max(value) > 0.5;
"#;

const STRATEGIES: &str = r#"
strategies:
  - id: restart-service
    description: Restart a service whose error ratio is high; escalate if that does not help.
    match:
      - key: alerts.name
        value: HighErrorRatio
    remedies:
      - name: restart
        timeout: 10s
        provider:
          type: exec
          config: local
          with:
            command: restart
            args: ["{{ incident.service }}"]
        verify:
          sql: "SELECT coalesce(max(value) < 0.5, false) FROM metrics WHERE name = 'svc_error_ratio' AND labels['service'] = $svc"
          params: {svc: "{{ incident.service }}"}
          settle: 4s
          window: 2s
    escalate:
      type: pagerduty
      config: pd
      with:
        summary: "auto-heal could not fix {{ incident.service }}: {{ failure.reason }}"
        source: "{{ incident.service }}"
        severity: critical
"#;

struct Supervisor {
    stop: Arc<AtomicBool>,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Runs the service and starts it again whenever it exits.
fn supervise(script: &Path, port: u16, state: &Path) -> Supervisor {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let (script, state) = (script.to_path_buf(), state.to_path_buf());
    std::thread::spawn(move || {
        let mut child: Option<Child> = None;
        while !s2.load(Ordering::SeqCst) {
            let running = child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
            if !running {
                child = Some(
                    Command::new("python3")
                        .arg(&script)
                        .arg(port.to_string())
                        .arg(&state)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
    });
    stop_guard(stop)
}

fn stop_guard(stop: Arc<AtomicBool>) -> Supervisor {
    Supervisor { stop }
}

fn incidents(a: &Aiops) -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&http_get(&a.url("/api/incidents?status=all")).unwrap_or_default())
            .unwrap_or(Value::Null);
    v["incidents"]
        .as_array()
        .cloned()
        .or_else(|| v.as_array().cloned())
        .unwrap_or_default()
}

fn incident(a: &Aiops, id: &str) -> Value {
    serde_json::from_str(&http_get(&a.url(&format!("/api/incidents/{id}"))).unwrap_or_default())
        .unwrap_or(Value::Null)
}

#[test]
fn a_degraded_service_is_restarted_verified_and_its_incident_resolves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let script = dir.join("svc.py");
    std::fs::write(&script, SERVICE).unwrap();
    let restart = dir.join("restart.sh");
    std::fs::write(&restart, RESTART).unwrap();
    let port = aiops_testkit::free_port();
    let _svc = supervise(&script, port, &state);
    let rec = Recorder::start(pagerduty(PD_KEY));
    for d in ["pipelines", "workflows", "autoheal"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("pipelines/svc_errors.sql"), RULE).unwrap();
    std::fs::write(dir.join("autoheal/restart.yaml"), STRATEGIES).unwrap();
    let alerting = dir.join("alerting.yaml");
    std::fs::write(&alerting, "route:\n  receiver: oncall\n  group_wait: 1s\nreceivers:\n  - name: oncall\naiops:\n  incidents:\n    window: 1m\n").unwrap();
    let cfg = dir.join("aiops.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[[sources]]
type = "scrape"
job = "svc"
targets = ["127.0.0.1:{port}"]
interval = "500ms"

[pipelines]
dir = {pipelines:?}
watermark_delay = "1s"
checkpoint_interval = "500ms"

[alerting]
config = {alerting:?}
tick_interval = "100ms"

[workflows]
dir = {workflows:?}
autoheal_dir = {autoheal:?}
outbound_allow = ["127.0.0.1"]
tick_interval = "100ms"

[workflows.secrets]
PD_KEY = {{ env = "TEST_PD_KEY" }}

[workflows.providers.pd]
kind = "pagerduty"
routing_key = "{{{{ secrets.PD_KEY }}}}"
url = "{pd}"

[workflows.providers.local]
kind = "exec"

[workflows.providers.local.commands.restart]
argv = ["/bin/sh", {restart:?}, {state:?}]
max_args = 1
"#,
            pipelines = dir.join("pipelines").to_str().unwrap(),
            alerting = alerting.to_str().unwrap(),
            workflows = dir.join("workflows").to_str().unwrap(),
            autoheal = dir.join("autoheal").to_str().unwrap(),
            pd = rec.url("/v2/enqueue"),
            restart = restart.to_str().unwrap(),
            state = state.to_str().unwrap(),
        ),
    )
    .unwrap();
    let a = Aiops::start_env(
        &dir.join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &["--config", cfg.to_str().unwrap()],
        &[("TEST_PD_KEY", PD_KEY)],
    );
    // Healthy for a few scrapes (two series each), then shop degrades.
    wait_until(Duration::from_secs(20), "healthy samples scraped", || {
        a.metric("aiops_ingest_events_total") >= 8.0
    });
    std::fs::write(state.join("shop.broken"), "").unwrap();
    wait_until(Duration::from_secs(40), "the shop incident", || {
        incidents(&a)
            .iter()
            .any(|i| i["title"].as_str().unwrap_or("").contains("shop"))
    });
    let id = incidents(&a)
        .into_iter()
        .find(|i| i["title"].as_str().unwrap_or("").contains("shop"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until(
        Duration::from_secs(60),
        "the incident to resolve and auto-heal to finish",
        || {
            let i = incident(&a, &id);
            i["status"] == "resolved"
                && i["timeline"]
                    .to_string()
                    .contains("workflow autoheal succeeded")
        },
    );
    let restarts = std::fs::read_to_string(state.join("restarts.log")).unwrap();
    assert_eq!(
        restarts.lines().collect::<Vec<_>>(),
        vec!["restart shop"],
        "one restart of shop"
    );
    let inc = incident(&a, &id);
    let timeline: Vec<String> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}: {}",
                t["kind"].as_str().unwrap_or(""),
                t["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    let text = timeline.join("\n");
    for want in [
        "autoheal: auto-heal chose strategy restart-service",
        "autoheal: restart exec via local to restart",
        "autoheal: step restart succeeded",
        "autoheal: step restart.verify succeeded",
        "autoheal: workflow autoheal succeeded",
    ] {
        assert!(text.contains(want), "timeline lacks {want:?}:\n{text}");
    }
    assert_eq!(rec.count(), 0, "no escalation when the remedy worked");

    // ledger degrades too: restarting does not fix it, verify fails, auto-heal escalates.
    std::fs::write(state.join("ledger.broken"), "").unwrap();
    wait_until(Duration::from_secs(60), "the escalation", || {
        rec.count() == 1
    });
    let r = &rec.all()[0];
    let summary = r.body["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("auto-heal could not fix ledger"),
        "{summary}"
    );
    assert!(summary.contains("restart.verify"), "{summary}");
    assert!(rec.violations.lock().unwrap().is_empty());

    // The API diagnoses the ledger incident the same way (nothing runs).
    let ledger = incidents(&a)
        .into_iter()
        .find(|i| i["title"].as_str().unwrap_or("").contains("ledger"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "-XPOST",
            "-H",
            "content-type: application/json",
            "--data-binary",
        ])
        .arg(format!("{{\"incident\": \"{ledger}\"}}"))
        .arg(a.url("/api/autoheal/diagnose"))
        .output()
        .unwrap();
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["strategy"], "restart-service", "{d}");
    assert_eq!(d["services"], serde_json::json!(["ledger"]), "{d}");
    let strategies: Value =
        serde_json::from_str(&http_get(&a.url("/api/autoheal/strategies")).unwrap()).unwrap();
    assert_eq!(
        strategies["strategies"][0]["remedies"],
        serde_json::json!(["restart"])
    );
    assert_eq!(rec.count(), 1);

    // A manual fix runs the strategy again for that incident: the restart still does not help,
    // so it escalates a second time, with a key of its own.
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "-XPOST",
            "-H",
            "content-type: application/json",
            "--data-binary",
        ])
        .arg(format!("{{\"incident\": \"{ledger}\"}}"))
        .arg(a.url("/api/autoheal/fix"))
        .output()
        .unwrap();
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        f["execution"]
            .as_str()
            .unwrap()
            .starts_with("autoheal/manual/"),
        "{f}"
    );
    wait_until(Duration::from_secs(30), "the second escalation", || {
        rec.count() == 2
    });
    let keys: Vec<String> = rec
        .all()
        .iter()
        .map(|r| r.body["dedup_key"].as_str().unwrap().to_string())
        .collect();
    assert_ne!(keys[0], keys[1]);
    let restarts = std::fs::read_to_string(state.join("restarts.log")).unwrap();
    assert_eq!(restarts.matches("restart ledger").count(), 2, "{restarts}");
}
