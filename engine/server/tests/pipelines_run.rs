//! SQL pipelines inside the real `aiops` binary: derived events after `kill -9` equal an
//! uninterrupted run on both log backends, `aiops rebuild` is byte-identical whatever the input
//! batching, a bad pipeline file is refused while the running set goes on, and a forensic
//! replay reports windows without writing to the log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_log::{AppendMessage, LogSpec};
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::derived::{DERIVED_PREFIX, decode_derived};
use aiops_schemas::{Envelope, EventBatchBuilder, Kind};
use common::{Aiops, aiops_cmd, wait_until};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// 2026-11-01T00:00:00Z: event times of the generated orders start here.
const BASE: i64 = 1_793_491_200_000;

const ORDERS_BY_SERVICE: &str = "INSERT INTO orders_by_service_1m
SELECT tumble(time, INTERVAL '1 minute') AS window_start, labels['service'] AS service,
       count(*) AS orders, count(DISTINCT attributes['customer']) AS customers
FROM events WHERE type = 'order'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['service'];
";

/// Reads another pipeline's output: five-minute order counts from the one-minute ones.
const ORDERS_5M: &str = "INSERT INTO orders_5m
SELECT tumble(window_start, INTERVAL '5 minutes') AS window_start, sum(orders) AS orders
FROM orders_1m WHERE revision = 0
GROUP BY tumble(window_start, INTERVAL '5 minutes');
";

fn repo_pipelines() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines")).to_path_buf()
}

/// A pipeline directory with the shipped orders pipeline and one grouping by service.
fn pipeline_dir(root: &Path) -> PathBuf {
    let dir = root.join("pipelines");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        repo_pipelines().join("orders_per_minute.sql"),
        dir.join("orders_per_minute.sql"),
    )
    .unwrap();
    std::fs::write(dir.join("orders_by_service.sql"), ORDERS_BY_SERVICE).unwrap();
    std::fs::write(dir.join("orders_5m.sql"), ORDERS_5M).unwrap();
    dir
}

fn config(root: &Path, pipelines: &Path) -> String {
    let p = root.join("aiops.toml");
    std::fs::write(
        &p,
        format!(
            "[pipelines]\ndir = {:?}\ncheckpoint_interval = \"200ms\"\nreload_interval = \"200ms\"\n",
            pipelines.display().to_string()
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// Orders over `minutes` minutes (about 40 a minute), in arrival order: event time plus a
/// random delay below 3 s, under the 5 s watermark delay.
fn orders(minutes: i64, seed: u64) -> Vec<(i64, String, u32)> {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        s >> 33
    };
    let services = ["checkout", "cart", "search"];
    let mut v: Vec<(i64, i64, String, u32)> = (0..minutes * 40)
        .map(|_| {
            let t = BASE + (next() % (minutes as u64 * 60_000)) as i64;
            let arrive = t + (next() % 3_000) as i64;
            let svc = services[(next() % 3) as usize].to_string();
            (arrive, t, svc, (next() % 50) as u32)
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, t, s, c)| (t, s, c)).collect()
}

fn ndjson(chunk: &[(i64, String, u32)]) -> String {
    chunk
        .iter()
        .map(|(t, s, c)| {
            format!(
                "{{\"type\":\"order\",\"time\":{t},\"labels\":{{\"service\":\"{s}\"}},\"attributes\":{{\"customer\":\"c{c}\"}}}}\n"
            )
        })
        .collect()
}

fn post(a: &Aiops, body: String) {
    common::post_ndjson(a, "/api/ingest/events", &body);
}

fn pipelines_api(a: &Aiops) -> Value {
    let body = common::http_get(&a.url("/api/pipelines")).unwrap_or_default();
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Waits until every pipeline has read the whole log and the `rows` events posted so far.
fn wait_caught_up(a: &Aiops, rows: usize) {
    wait_until(Duration::from_secs(60), "pipelines to catch up", || {
        let v = pipelines_api(a);
        let ps = v["pipelines"].as_array().cloned().unwrap_or_default();
        !ps.is_empty()
            && ps.iter().all(|p| {
                p["lag"] == 0
                    && p["state"] == "running"
                    && (p["input"] != "events"
                        || p["counters"]["rows_in"].as_u64() == Some(rows as u64))
            })
    });
}

/// Every derived message in the log: (msg id, event ids).
async fn derived_in_log(data_dir: &Path, log: &str) -> Vec<(String, Vec<String>)> {
    let spec = LogSpec::parse(log, data_dir).unwrap();
    let log = aiops_log::open(&spec).await.unwrap();
    let stats = log.stats().await.unwrap();
    let mut reader = log.reader(stats.first_seq).await.unwrap();
    let mut out = Vec::new();
    while reader.position() < stats.next_seq {
        let records = reader.next_batch(512).await.unwrap();
        assert!(!records.is_empty());
        for r in records {
            if r.subject.starts_with(DERIVED_PREFIX) {
                let (_, b) = decode_derived(&r.payload).unwrap();
                let ids = b.column(0).as_string::<i32>();
                out.push((
                    r.msg_id,
                    ids.iter().map(|s| s.unwrap().to_string()).collect(),
                ));
            }
        }
    }
    log.close().await.unwrap();
    out
}

async fn kill9_mid_stream(log: &str) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dir = pipeline_dir(root.path());
    let cfg = config(root.path(), &dir);
    let all = orders(30, 11);
    let chunks: Vec<&[(i64, String, u32)]> = all.chunks(40).collect();
    let mut a = Aiops::start(&data, log, &["--config", &cfg]);
    let half = chunks.len() / 2;
    for c in &chunks[..half] {
        post(&a, ndjson(c));
    }
    wait_caught_up(&a, chunks[..half].iter().map(|c| c.len()).sum());
    std::thread::sleep(Duration::from_millis(500)); // a checkpoint is written
    for c in &chunks[half..half + 3] {
        post(&a, ndjson(c));
    }
    a.kill9(); // mid-stream: the last chunks are not all processed or checkpointed
    let mut b = Aiops::start(&data, log, &["--config", &cfg]);
    for c in &chunks[half + 3..] {
        post(&b, ndjson(c));
    }
    wait_caught_up(&b, all.len());
    b.stop();
    let log_text = std::fs::read_to_string(&b.stderr).unwrap();
    assert!(
        log_text.contains("resumes from its checkpoint"),
        "{log_text}"
    );

    let derived = derived_in_log(&data, log).await;
    let mut ids = HashSet::new();
    let mut msgs = HashSet::new();
    for (m, evs) in &derived {
        assert!(msgs.insert(m.clone()), "derived message {m} appended twice");
        for e in evs {
            assert!(ids.insert(e.clone()), "derived event {e} appended twice");
        }
    }
    assert!(
        derived.len() >= 2 * 25,
        "expected most windows fired: {}",
        derived.len()
    );
    // An uninterrupted run over the same log (a rebuild) derives exactly these: none missing
    // (everything it derives is already there), none extra.
    let out = aiops_cmd(
        &data,
        log,
        &[
            "rebuild",
            "--config",
            &cfg,
            "--output",
            root.path().join("rebuilt").to_str().unwrap(),
        ],
    );
    let sum: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(sum["outputs"], sum["already_in_log"], "{sum}");
    assert_eq!(
        sum["outputs"].as_u64().unwrap() as usize,
        derived.len(),
        "{sum}"
    );
    assert_eq!(
        derived_in_log(&data, log).await.len(),
        derived.len(),
        "rebuild appended nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_embedded_derived_events_equal_an_uninterrupted_run() {
    kill9_mid_stream("embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_nats_derived_events_equal_an_uninterrupted_run() {
    let nats = aiops_testkit::NatsServer::start().unwrap();
    kill9_mid_stream(&nats.url()).await;
}

/// Writes `events` into a fresh embedded log in messages of `size` events.
async fn write_log(data: &Path, events: &[(i64, String, u32)], size: usize) {
    let spec = LogSpec::parse("embedded", data).unwrap();
    let log = aiops_log::open(&spec).await.unwrap();
    for (i, chunk) in events.chunks(size).enumerate() {
        let mut b = EventBatchBuilder::new();
        for (t, s, c) in chunk {
            let customer = format!("c{c}");
            b.push(
                *t,
                "order",
                "",
                [("service", s.as_str())],
                [("customer", customer.as_str())],
            );
        }
        let range = b.time_range().unwrap();
        let batch = b.finish().unwrap();
        let env = Envelope::new(Kind::Events, "test", 0, range, &batch);
        let payload = aiops_schemas::encode(&env, &batch).unwrap();
        log.append(vec![AppendMessage {
            subject: Kind::Events.subject(0),
            msg_id: format!("m{i}"),
            time_min_ms: range.0,
            time_max_ms: range.1,
            payload: payload.into(),
        }])
        .await
        .unwrap();
    }
    log.close().await.unwrap();
}

fn dir_contents(d: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn rebuild_is_byte_identical_across_batch_sizes_and_runs() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = pipeline_dir(root.path());
    let cfg = config(root.path(), &dir);
    let events = orders(20, 5);
    let mut reference: Option<BTreeMap<String, Vec<u8>>> = None;
    for size in [1usize, 7, 1024, 8192] {
        let data = root.path().join(format!("data{size}"));
        rt.block_on(write_log(&data, &events, size));
        for run in 0..(if size == 1 { 2 } else { 1 }) {
            let out = root.path().join(format!("out{size}.{run}"));
            aiops_cmd(
                &data,
                "embedded",
                &[
                    "rebuild",
                    "--config",
                    &cfg,
                    "--output",
                    out.to_str().unwrap(),
                ],
            );
            let got = dir_contents(&out);
            assert_eq!(got.len(), 3, "{:?}", got.keys());
            assert!(
                got.values().all(|v| v.len() > 300),
                "{:?}",
                got.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
            );
            match &reference {
                None => reference = Some(got),
                Some(r) => assert!(
                    *r == got,
                    "batch size {size}, run {run}: derived events differ"
                ),
            }
        }
    }
    // A forensic replay of minutes 5..10 reports those five windows with the right counts and
    // writes nothing to the log.
    let data = root.path().join("data1024");
    let before = aiops_cmd(&data, "embedded", &["log", "stats", "--json"]);
    let from = (BASE + 5 * 60_000).to_string();
    let to = (BASE + 10 * 60_000).to_string();
    let replay: Vec<&str> = vec![
        "replay",
        "--from",
        &from,
        "--to",
        &to,
        "--pipelines",
        dir.to_str().unwrap(),
        "--config",
        &cfg,
    ];
    let out = aiops_cmd(&data, "embedded", &replay);
    let mut windows = BTreeMap::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["stream"] == "orders_1m" {
            windows.insert(
                v["window_start"].as_str().unwrap().to_string(),
                v["orders"].as_i64().unwrap(),
            );
        }
    }
    assert_eq!(windows.len(), 5, "{out}");
    // The pipeline reading orders_1m gets them in the replay too: minutes 5..10 are one window.
    let five: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["stream"] == "orders_5m")
        .collect();
    assert_eq!(five.len(), 1, "{out}");
    assert_eq!(
        five[0]["orders"].as_i64().unwrap(),
        windows.values().sum::<i64>()
    );
    for m in 5..10 {
        let n = events
            .iter()
            .filter(|(t, _, _)| *t >= BASE + m * 60_000 && *t < BASE + (m + 1) * 60_000)
            .count() as i64;
        assert!(
            windows.values().any(|v| *v == n),
            "minute {m}: {n} orders not in {windows:?}"
        );
    }
    // The same as Parquet files, one per stream.
    let pq = root.path().join("parquet");
    let mut to_parquet = replay.clone();
    to_parquet.extend(["--parquet", pq.to_str().unwrap()]);
    aiops_cmd(&data, "embedded", &to_parquet);
    let file = std::fs::File::open(pq.join("orders_1m.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut total = 0i64;
    for b in reader {
        let b = b.unwrap();
        let n = b
            .column_by_name("orders")
            .unwrap()
            .as_primitive::<aiops_schemas::arrow_array::types::Int64Type>();
        total += n.values().iter().sum::<i64>();
    }
    assert_eq!(total, windows.values().sum::<i64>());
    assert!(pq.join("orders_5m.parquet").exists());
    assert!(pq.join("orders_by_service_1m.parquet").exists());
    assert_eq!(
        aiops_cmd(&data, "embedded", &["log", "stats", "--json"]),
        before
    );
}

#[test]
fn a_bad_pipeline_file_is_refused_and_the_running_set_goes_on() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let dir = root.path().join("pipelines");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        repo_pipelines().join("orders_per_minute.sql"),
        dir.join("orders_per_minute.sql"),
    )
    .unwrap();
    let cfg = config(root.path(), &dir);
    let mut a = Aiops::start(&data, "embedded", &["--config", &cfg]);
    let first = orders(3, 1);
    post(&a, ndjson(&first));
    wait_caught_up(&a, first.len());
    std::fs::write(
        dir.join("broken.sql"),
        "INSERT INTO x\nSELECT count(*) AS n FROM nowhere\n",
    )
    .unwrap();
    wait_until(
        Duration::from_secs(20),
        "the bad file to be refused",
        || {
            let v = pipelines_api(&a);
            v["refused"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|p| p.as_str().unwrap_or("").contains("broken.sql:2:"))
            })
        },
    );
    assert_eq!(a.metric("aiops_pipeline_refused_files"), 1.0);
    assert_eq!(
        a.metric("aiops_pipeline_rows_in_total{pipeline=\"orders_per_minute\"}"),
        first.len() as f64
    );
    let v = pipelines_api(&a);
    let names: Vec<&str> = v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders_per_minute"]);
    assert_eq!(v["pipelines"][0]["state"], "running");
    // Fixing the directory applies the change: the new pipeline runs, the old one keeps its
    // state (its counters go on), and the change is a control event in the log.
    let rows_before = v["pipelines"][0]["counters"]["rows_in"].as_u64().unwrap();
    std::fs::remove_file(dir.join("broken.sql")).unwrap();
    std::fs::write(dir.join("orders_by_service.sql"), ORDERS_BY_SERVICE).unwrap();
    wait_until(Duration::from_secs(20), "the new pipeline to run", || {
        let v = pipelines_api(&a);
        v["pipelines"].as_array().is_some_and(|p| p.len() == 2)
            && v["refused"].as_array().is_some_and(|r| r.is_empty())
    });
    wait_caught_up(&a, first.len());
    let v = pipelines_api(&a);
    let old = v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "orders_per_minute")
        .unwrap();
    assert_eq!(
        old["counters"]["rows_in"].as_u64().unwrap(),
        rows_before,
        "resumed, not recomputed"
    );
    let new = v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "orders_by_service")
        .unwrap();
    assert_eq!(
        new["counters"]["rows_in"].as_u64().unwrap(),
        rows_before,
        "built from the log"
    );
    a.stop();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let control = rt.block_on(async {
        let log = aiops_log::open(&LogSpec::parse("embedded", &data).unwrap())
            .await
            .unwrap();
        let stats = log.stats().await.unwrap();
        let mut r = log.reader(stats.first_seq).await.unwrap();
        let mut found = Vec::new();
        loop {
            let recs = r.next_batch(256).await.unwrap();
            if recs.is_empty() {
                break;
            }
            found.extend(
                recs.into_iter()
                    .filter(|r| r.subject == "aiops.control")
                    .map(|r| r.payload),
            );
        }
        log.close().await.unwrap();
        found
    });
    assert_eq!(control.len(), 1);
    let ev: Value = serde_json::from_slice(&control[0]).unwrap();
    assert_eq!(ev["added"], serde_json::json!(["orders_by_service"]));
    assert!(
        ev["pipelines"]["orders_by_service"]
            .as_str()
            .unwrap()
            .contains("INSERT INTO")
    );
}

/// Alert events of a rule in the log: (status, starts_at ms, ends_at ms or None).
async fn rule_alerts(data: &Path) -> Vec<(String, i64, Option<i64>)> {
    let log = aiops_log::open(&LogSpec::parse("embedded", data).unwrap())
        .await
        .unwrap();
    let stats = log.stats().await.unwrap();
    let mut r = log.reader(stats.first_seq).await.unwrap();
    let mut out = Vec::new();
    loop {
        let recs = r.next_batch(256).await.unwrap();
        if recs.is_empty() {
            break;
        }
        for rec in recs {
            if rec.subject.starts_with("aiops.alerts.") && rec.msg_id.starts_with("a.") {
                let (_, b) = aiops_schemas::decode(&rec.payload).unwrap();
                let status = b.column_by_name("status").unwrap().as_string::<i32>();
                let ts = |name: &str| {
                    b.column_by_name(name)
                        .unwrap()
                        .as_primitive::<aiops_schemas::arrow_array::types::TimestampMillisecondType>()
                        .clone()
                };
                let (starts, ends) = (ts("starts_at"), ts("ends_at"));
                for i in 0..b.num_rows() {
                    out.push((
                        status.value(i).to_string(),
                        starts.value(i),
                        aiops_schemas::arrow_array::Array::is_valid(&ends, i)
                            .then(|| ends.value(i)),
                    ));
                }
            }
        }
    }
    log.close().await.unwrap();
    out
}

#[test]
fn an_alert_rule_fires_after_its_for_and_resolves_once_in_the_log() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("pipelines");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        repo_pipelines().join("orders_drop_alert.sql"),
        dir.join("orders_drop_alert.sql"),
    )
    .unwrap();
    let cfg = config(root.path(), &dir);
    // 150 orders a minute, but only 20 in minutes 3..8 (five minutes: the rule needs three).
    let mut events = Vec::new();
    for m in 0..14i64 {
        let n = if (3..8).contains(&m) { 20 } else { 150 };
        for i in 0..n {
            events.push((
                BASE + m * 60_000 + i * (60_000 / n),
                "checkout".to_string(),
                1,
            ));
        }
    }
    let data = root.path().join("data");
    rt.block_on(write_log(&data, &events, 64));
    let out = aiops_cmd(&data, "embedded", &["rebuild", "--config", &cfg]);
    let alerts = rt.block_on(rule_alerts(&data));
    assert_eq!(
        alerts,
        vec![
            ("firing".to_string(), BASE + 3 * 60_000, None),
            (
                "resolved".to_string(),
                BASE + 3 * 60_000,
                Some(BASE + 8 * 60_000)
            ),
        ],
        "{out}"
    );
    // A forensic replay shows the alert events and, apart, the rule's window results.
    let pq = root.path().join("what-if");
    aiops_cmd(
        &data,
        "embedded",
        &[
            "replay",
            "--pipelines",
            dir.to_str().unwrap(),
            "--config",
            &cfg,
            "--parquet",
            pq.to_str().unwrap(),
        ],
    );
    assert!(
        pq.join("alerts.parquet").exists() && pq.join("alerts.orders_drop_alert.parquet").exists()
    );
    // A second rebuild derives the same alerts and finds them already in the log.
    let again = aiops_cmd(&data, "embedded", &["rebuild", "--config", &cfg]);
    let sum: Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(sum["outputs"], sum["already_in_log"], "{sum}");
    assert_eq!(rt.block_on(rule_alerts(&data)).len(), 2);
}
