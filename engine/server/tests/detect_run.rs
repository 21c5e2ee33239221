//! Detection inside the real `aiops` binary: a pipeline's `anomaly()` column and the log
//! template miner over metrics and logs posted over HTTP. After `kill -9` in the middle and a
//! restart, the log holds every detector output exactly once, and `aiops rebuild` (an
//! uninterrupted run over the same log) derives exactly the same messages, bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_log::LogSpec;
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use common::{Aiops, aiops_cmd, wait_until};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// 2026-11-01T00:00:00Z.
const BASE: i64 = 1_793_491_200_000;
const MIN: i64 = 60_000;
const MINUTES: i64 = 240;
const SPIKE_AT: i64 = 200;
const NEW_TEMPLATE_AT: i64 = 150;
const HOSTS: [&str; 3] = ["web-1", "web-2", "db-1"];

const LOAD_ANOMALY: &str = "INSERT INTO load_scored
SELECT tumble(time, INTERVAL '1 minute') AS window_start, labels['instance'] AS host,
       avg(value) AS load, anomaly(avg(value), 'robust_z', 0.9) AS score
FROM metrics WHERE name = 'node_load1'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'];
";

/// A deterministic noise in [-0.5, 0.5).
fn noise(i: u64) -> f64 {
    let mut z = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z >> 11) as f64 / (1u64 << 53) as f64) - 0.5
}

/// One minute of data: four load samples per host (web-2 spikes at `SPIKE_AT`), and the log
/// lines of service checkout (a new message at `NEW_TEMPLATE_AT`).
fn minute(m: i64) -> (String, String) {
    let mut metrics = String::new();
    for (h, host) in HOSTS.iter().enumerate() {
        for k in 0..4 {
            let t = BASE + m * MIN + k * 15_000;
            let base = 2.0 + h as f64;
            let mut v = base + 0.2 * noise((m * 4 + k) as u64 * 7 + h as u64);
            if *host == "web-2" && (SPIKE_AT..SPIKE_AT + 3).contains(&m) {
                v = base * 6.0;
            }
            metrics.push_str(&format!(
                "{{\"name\":\"node_load1\",\"labels\":{{\"instance\":\"{host}\"}},\"value\":{v},\"time\":{t}}}\n"
            ));
        }
    }
    let mut logs = String::new();
    for k in 0..6 {
        let t = BASE + m * MIN + k * 10_000 + 3;
        let body = if k % 2 == 0 {
            format!(
                "GET /api/orders/{} 200 in {} ms",
                m * 10 + k,
                3 + (m + k) % 40
            )
        } else {
            format!("payment {} authorized for customer c{}", m * 31 + k, k)
        };
        logs.push_str(&format!(
            "{{\"time\":{t},\"severity\":\"info\",\"body\":\"{body}\",\"labels\":{{\"service\":\"checkout\"}},\"attributes\":{{}}}}\n"
        ));
    }
    if m == NEW_TEMPLATE_AT {
        let t = BASE + m * MIN + 30_000;
        logs.push_str(&format!(
            "{{\"time\":{t},\"severity\":\"error\",\"body\":\"OutOfMemoryError: Java heap space in thread pool-3\",\"labels\":{{\"service\":\"checkout\"}},\"attributes\":{{}}}}\n"
        ));
    }
    (metrics, logs)
}

fn post(a: &Aiops, path: &str, body: &str) {
    common::post_ndjson(a, path, body);
}

/// Posts minutes `from..to` in chunks of two minutes (ingest splits a body by partition, and a
/// partition more than 5 minutes of event time behind the others counts as idle, so larger
/// chunks would make the other partitions' rows late); returns the log lines posted.
fn post_minutes(a: &Aiops, from: i64, to: i64) -> u64 {
    let mut lines = 0;
    let mut m = from;
    while m < to {
        let end = (m + 2).min(to);
        let (mut metrics, mut logs) = (String::new(), String::new());
        for k in m..end {
            let (mm, ll) = minute(k);
            metrics.push_str(&mm);
            logs.push_str(&ll);
        }
        lines += logs.lines().count() as u64;
        post(a, "/api/ingest/metrics", &metrics);
        post(a, "/api/ingest/logs", &logs);
        m = end;
    }
    lines
}

fn json(a: &Aiops, path: &str) -> Value {
    let body = common::http_get(&a.url(path)).unwrap_or_default();
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Waits until the pipelines have read the whole log and the miner the `lines` posted.
fn wait_caught_up(a: &Aiops, lines: u64) {
    wait_until(Duration::from_secs(90), "detectors to catch up", || {
        let p = json(a, "/api/pipelines");
        let ps = p["pipelines"].as_array().cloned().unwrap_or_default();
        let t = json(a, "/api/logs/templates");
        !ps.is_empty()
            && ps.iter().all(|p| p["lag"] == 0 && p["state"] == "running")
            && t["records"].as_u64() == Some(lines)
    });
}

/// Every message a detector wrote: (subject, msg id) → the decoded events batch for events.
async fn outputs(data: &Path) -> (Vec<(String, String)>, Vec<RecordBatch>) {
    let spec = LogSpec::parse("embedded", data).unwrap();
    let log = aiops_log::open(&spec).await.unwrap();
    let stats = log.stats().await.unwrap();
    let mut reader = log.reader(stats.first_seq).await.unwrap();
    let mut ids = Vec::new();
    let mut events = Vec::new();
    while reader.position() < stats.next_seq {
        for r in reader.next_batch(512).await.unwrap() {
            let ours = r.msg_id.starts_with("d.")
                || r.msg_id.starts_with("n.")
                || r.msg_id.starts_with("t.");
            if !ours {
                continue;
            }
            if Kind::from_subject(&r.subject) == Some(Kind::Events) {
                events.push(aiops_schemas::decode(&r.payload).unwrap().1);
            }
            ids.push((r.subject, r.msg_id));
        }
    }
    log.close().await.unwrap();
    (ids, events)
}

/// One event: type, labels, attributes, time.
type EventRow = (
    String,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    i64,
);

/// (type, labels, attributes, time) of every event in `batches`.
fn rows(batches: &[RecordBatch]) -> Vec<EventRow> {
    let map = |b: &RecordBatch, col: &str, i: usize| -> BTreeMap<String, String> {
        let m = b.column_by_name(col).unwrap().as_map();
        let e = m.value(i);
        let k = e.column(0).as_string::<i32>();
        let v = e.column(1).as_string::<i32>();
        (0..e.len())
            .map(|j| (k.value(j).to_string(), v.value(j).to_string()))
            .collect()
    };
    let mut out = Vec::new();
    for b in batches {
        let ty = b.column_by_name("type").unwrap().as_string::<i32>();
        let time = b
            .column_by_name("time")
            .unwrap()
            .as_primitive::<aiops_schemas::arrow_array::types::TimestampMillisecondType>();
        for i in 0..b.num_rows() {
            out.push((
                ty.value(i).to_string(),
                map(b, "labels", i),
                map(b, "attributes", i),
                time.value(i),
            ));
        }
    }
    out
}

#[test]
fn detectors_after_kill9_and_rebuild_equal_an_uninterrupted_run() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dir = root.path().join("pipelines");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("load_anomaly.sql"), LOAD_ANOMALY).unwrap();
    let cfg = root.path().join("aiops.toml");
    std::fs::write(
        &cfg,
        format!(
            "[pipelines]\ndir = {:?}\ncheckpoint_interval = \"200ms\"\nreload_interval = \"200ms\"\n\n[templates]\ncheckpoint_interval = \"200ms\"\n\n[templates.miner]\nwarmup_windows = 30\n",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let cfg = cfg.display().to_string();

    let mut a = Aiops::start(&data, "embedded", &["--config", &cfg]);
    let half = MINUTES / 2;
    let mut lines = post_minutes(&a, 0, half);
    wait_caught_up(&a, lines);
    std::thread::sleep(Duration::from_millis(600)); // checkpoints are written
    lines += post_minutes(&a, half, half + 30);
    a.kill9(); // mid-stream: the last minutes are not all processed or checkpointed
    let mut b = Aiops::start(&data, "embedded", &["--config", &cfg]);
    lines += post_minutes(&b, half + 30, MINUTES);
    // The miner re-reads what it had not checkpointed: it counts those lines again.
    wait_until(Duration::from_secs(90), "pipelines to catch up", || {
        let p = json(&b, "/api/pipelines");
        let ps = p["pipelines"].as_array().cloned().unwrap_or_default();
        let t = json(&b, "/api/logs/templates");
        !ps.is_empty()
            && ps.iter().all(|p| p["lag"] == 0 && p["state"] == "running")
            && t["records"].as_u64().is_some_and(|r| r >= lines)
            && t["position"].as_u64() == p["pipelines"][0]["position"].as_u64()
    });
    let table = json(&b, "/api/logs/templates?service=checkout");
    b.stop();
    let log_text = std::fs::read_to_string(&b.stderr).unwrap();
    assert!(
        log_text.contains("template miner resumes from its checkpoint"),
        "{log_text}"
    );
    assert!(
        log_text.contains("pipeline resumes from its checkpoint"),
        "{log_text}"
    );
    // The template table: the two ordinary messages and the new one.
    let top = table["services"]["checkout"]["top"].as_array().unwrap();
    assert_eq!(table["services"]["checkout"]["templates"], 3, "{table}");
    assert!(
        top.iter()
            .any(|t| t["template"].as_str().unwrap().contains("OutOfMemoryError")),
        "{table}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ids, events) = rt.block_on(outputs(&data));
    let mut unique = HashSet::new();
    for id in &ids {
        assert!(unique.insert(id.clone()), "{id:?} appended twice");
    }
    let evs = rows(&events);
    let anomalies: Vec<_> = evs.iter().filter(|e| e.0 == "anomaly").collect();
    // The load spike of web-2 is found, at the spike, and nothing else on the load series.
    let load: Vec<_> = anomalies
        .iter()
        .filter(|e| e.1.get("pipeline").map(String::as_str) == Some("load_anomaly"))
        .collect();
    assert!(!load.is_empty(), "no load anomaly: {anomalies:?}");
    for e in &load {
        assert_eq!(e.1["host"], "web-2", "{e:?}");
        assert_eq!(e.1["series"], "score");
        assert_eq!(e.1["detector"], "robust_z");
        assert_eq!(e.2["direction"], "up");
        let at = (e.3 - BASE) / MIN;
        assert!((SPIKE_AT..SPIKE_AT + 3).contains(&at), "{e:?}");
        assert!(e.2["score"].parse::<f64>().unwrap() >= 0.9);
    }
    // The new message after the miner's warm-up is a new-template anomaly of checkout.
    let new: Vec<_> = anomalies
        .iter()
        .filter(|e| e.1.get("kind").map(String::as_str) == Some("new_template"))
        .collect();
    assert_eq!(new.len(), 1, "{anomalies:?}");
    assert_eq!(new[0].1["service"], "checkout");
    assert_eq!((new[0].3 - BASE) / MIN, NEW_TEMPLATE_AT);
    assert!(new[0].2["template"].contains("OutOfMemoryError"));
    let templates: Vec<_> = evs.iter().filter(|e| e.0 == "log_template").collect();
    assert!(
        templates.iter().filter(|e| e.2["change"] == "new").count() == 3,
        "{templates:?}"
    );

    // An uninterrupted run over the same log derives exactly these.
    let out = aiops_cmd(&data, "embedded", &["rebuild", "--config", &cfg]);
    let sum: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(sum["outputs"], sum["already_in_log"], "{sum}");
    assert_eq!(
        sum["templates"]["outputs"], sum["templates"]["already_in_log"],
        "{sum}"
    );
    assert!(
        sum["templates"]["outputs"].as_u64().unwrap() > MINUTES as u64 / 2,
        "{sum}"
    );
    let (again, _) = rt.block_on(outputs(&data));
    assert_eq!(again.len(), ids.len(), "rebuild appended nothing");
}
