//! A real `prometheus` scrapes a real `prometheus-node-exporter` and remote-writes to aiops: the
//! samples are in the log with their labels and timestamps — the very samples Prometheus stored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, http_get, replay_json, wait_until};
use serde_json::Value;
use std::time::Duration;

fn rfc3339_ms(v: &Value) -> i64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("time is not a string: {v}"));
    let t = humantime::parse_rfc3339_weak(s).unwrap_or_else(|e| panic!("bad time {s}: {e}"));
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn prometheus_remote_write_of_node_exporter_lands_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut aiops = Aiops::start(dir.path(), "embedded", &[]);
    let node = aiops_testkit::NodeExporter::start().unwrap();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['{node}']
remote_write:
  - url: {aiops}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 50ms
      max_backoff: 1s
"#,
        node = node.addr(),
        aiops = aiops.url("/api/v1/write"),
    );
    let mut prom = aiops_testkit::Prometheus::start(&config, &[]).unwrap();

    wait_until(
        Duration::from_secs(60),
        "remote_write samples from prometheus",
        || {
            aiops.metric("aiops_ingest_events_total{kind=\"metrics\",source=\"remote_write\"}")
                > 1000.0
        },
    );
    // Raw samples of `up` as Prometheus stored them (a range selector returns raw timestamps).
    let q = format!(
        "{}/api/v1/query?query=up%7Bjob%3D%22node%22%7D%5B1m%5D",
        prom.url()
    );
    let mut raw: Vec<(i64, String)> = Vec::new();
    wait_until(
        Duration::from_secs(30),
        "two raw `up` samples in prometheus",
        || {
            let Ok(body) = http_get(&q) else { return false };
            let v: Value = serde_json::from_str(&body).unwrap();
            raw = v["data"]["result"][0]["values"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            (
                                (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                                p[1].as_str().unwrap().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            raw.len() >= 2
        },
    );
    // Let remote_write deliver what Prometheus stored, then stop Prometheus (it flushes its
    // queue on shutdown) and the engine.
    let target = aiops
        .metric("aiops_ingest_events_total{kind=\"metrics\",source=\"remote_write\"}")
        + 2000.0;
    wait_until(Duration::from_secs(30), "more remote_write samples", || {
        aiops.metric("aiops_ingest_events_total{kind=\"metrics\",source=\"remote_write\"}") > target
    });
    prom.stop();
    aiops.stop();

    let events = replay_json(dir.path(), "embedded", "metrics");
    assert!(
        events.len() > 1000,
        "only {} samples in the log",
        events.len()
    );
    let instance = node.addr().to_string();
    // The `up` samples Prometheus stored are in the log with their exact timestamps and values.
    for (ts, value) in &raw {
        let found = events.iter().any(|e| {
            e["name"] == "up"
                && e["labels"]["job"] == "node"
                && e["labels"]["instance"] == instance.as_str()
                && rfc3339_ms(&e["time"]) == *ts
                && e["value"].as_f64() == value.parse::<f64>().ok()
        });
        assert!(
            found,
            "sample up@{ts}={value} from prometheus is not in the log"
        );
    }
    // node_exporter's own series arrive with their labels.
    let cpu = events
        .iter()
        .find(|e| e["name"] == "node_cpu_seconds_total")
        .expect("node_cpu_seconds_total in the log");
    assert_eq!(cpu["labels"]["job"], "node");
    assert!(
        cpu["labels"]["mode"].is_string() && cpu["labels"]["cpu"].is_string(),
        "{cpu}"
    );
    assert!(
        cpu["labels"].get("__name__").is_none(),
        "__name__ must not be a label: {cpu}"
    );
    assert_eq!(cpu["source"], "remote_write");
    assert_eq!(cpu["kind"], "metrics");
}

/// aiops scrapes a real node_exporter itself (a `[[sources]] type = "scrape"` in its config).
#[test]
fn aiops_scrapes_a_real_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let node = aiops_testkit::NodeExporter::start().unwrap();
    let conf = dir.path().join("scrape.toml");
    std::fs::write(
        &conf,
        format!(
            "[[sources]]\ntype = \"scrape\"\njob = \"node\"\ntargets = [\"{}\"]\ninterval = \"300ms\"\n[outbound]\nallow = [\"127.0.0.1\"]\n",
            node.addr()
        ),
    )
    .unwrap();
    let mut aiops = Aiops::start(
        dir.path(),
        "embedded",
        &["--config", conf.to_str().unwrap()],
    );
    wait_until(Duration::from_secs(30), "three scrape rounds", || {
        aiops.metric("aiops_ingest_events_total{kind=\"metrics\",source=\"scrape\"}") > 0.0
            && aiops.metric("aiops_log_events{kind=\"metrics\"}") > 0.0
            && replay_json(dir.path(), "embedded", "metrics")
                .iter()
                .filter(|e| e["name"] == "up")
                .count()
                >= 3
    });
    aiops.stop();
    let events = replay_json(dir.path(), "embedded", "metrics");
    let instance = node.addr();
    let up: Vec<&Value> = events.iter().filter(|e| e["name"] == "up").collect();
    assert!(up.len() >= 3, "one `up` per round");
    assert!(
        up.iter()
            .all(|e| e["value"] == 1.0 && e["labels"]["instance"] == instance.as_str())
    );
    let cpu = events
        .iter()
        .find(|e| e["name"] == "node_cpu_seconds_total")
        .expect("node_exporter's samples");
    assert_eq!(cpu["labels"]["job"], "node");
    assert_eq!(cpu["source"], "scrape");
    // Samples of one round share the scrape time; rounds are about an interval apart.
    let mut times: Vec<i64> = up.iter().map(|e| rfc3339_ms(&e["time"])).collect();
    times.dedup();
    assert!(times.windows(2).all(|w| w[1] - w[0] >= 200), "{times:?}");
}
