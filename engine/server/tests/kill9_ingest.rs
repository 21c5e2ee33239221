//! `kill -9` of `aiops run` during a sustained remote_write ingest of over 1,000,000 samples: after
//! a restart, every acknowledged sample is in the log exactly once — on both log backends.
//!
//! The load generator keeps retrying every request until it is acknowledged (as Prometheus does),
//! so by the end every sample has been acknowledged once; requests that were stored but whose
//! answer was lost in the kill must not be stored twice (message ids de-duplicate the retry).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use common::Aiops;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const REQUESTS: usize = 220;
const SERIES: usize = 1000;
const SAMPLES_PER_SERIES: usize = 5;
const BASE_TS: i64 = 1_790_000_000_000;

fn body(r: usize) -> Vec<u8> {
    let series: Vec<aiops_connectors::sources::remote_write::Series> = (0..SERIES)
        .map(|s| {
            let labels = vec![
                ("__name__".to_string(), "load_test".to_string()),
                ("s".to_string(), s.to_string()),
            ];
            let samples = (0..SAMPLES_PER_SERIES)
                .map(|j| {
                    (
                        BASE_TS + (r * SAMPLES_PER_SERIES + j) as i64,
                        (r * j) as f64,
                    )
                })
                .collect();
            (labels, samples)
        })
        .collect();
    aiops_connectors::sources::remote_write::encode_write_request(&series)
}

async fn run_load(port: Arc<std::sync::atomic::AtomicU16>, acked: Arc<AtomicUsize>) {
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..REQUESTS).map(body).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (bodies, next, client, acked, port) = (
            bodies.clone(),
            next.clone(),
            client.clone(),
            acked.clone(),
            port.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let r = next.fetch_add(1, Ordering::SeqCst);
                if r >= REQUESTS {
                    return;
                }
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    assert!(Instant::now() < deadline, "request {r} never acknowledged");
                    let url = format!(
                        "http://127.0.0.1:{}/api/v1/write",
                        port.load(Ordering::SeqCst)
                    );
                    let res = client
                        .post(url)
                        .header("content-type", "application/x-protobuf")
                        .header("content-encoding", "snappy")
                        .header("x-prometheus-remote-write-version", "0.1.0")
                        .body(bodies[r].clone())
                        .send()
                        .await;
                    match res {
                        Ok(resp) if resp.status().is_success() => {
                            acked.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        Ok(resp)
                            if resp.status().is_client_error() && resp.status().as_u16() != 429 =>
                        {
                            panic!(
                                "request {r} refused: {}",
                                resp.text().await.unwrap_or_default()
                            )
                        }
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
}

/// Every (series, timestamp) in the log, with how often it is there.
async fn samples_in_log(data_dir: &std::path::Path, log: &str) -> HashMap<(u32, i64), u32> {
    let spec = aiops_log::LogSpec::parse(log, data_dir).unwrap();
    let log = aiops_log::open(&spec).await.unwrap();
    let stats = log.stats().await.unwrap();
    let mut reader = log.reader(stats.first_seq).await.unwrap();
    let mut seen = HashMap::new();
    while reader.position() < stats.next_seq {
        let records = reader.next_batch(512).await.unwrap();
        assert!(!records.is_empty(), "log ended before next_seq");
        for rec in records {
            // The log also holds control events (deployed workflows, …); only samples count here.
            if !rec.subject.starts_with("aiops.metrics.") {
                continue;
            }
            let (env, batch) = aiops_schemas::decode(&rec.payload).unwrap();
            assert_eq!(env.kind, aiops_schemas::Kind::Metrics);
            let ts = batch.column(0).as_primitive::<TimestampMillisecondType>();
            let labels = batch.column_by_name("labels").unwrap().as_map();
            let keys = labels.keys().as_string::<i32>();
            let vals = labels.values().as_string::<i32>();
            let offsets = labels.value_offsets();
            for row in 0..batch.num_rows() {
                let s = (offsets[row] as usize..offsets[row + 1] as usize)
                    .find(|&i| keys.value(i) == "s")
                    .map(|i| vals.value(i).parse::<u32>().unwrap())
                    .expect("series label");
                *seen.entry((s, ts.value(row))).or_insert(0) += 1;
            }
            assert!(!ts.is_empty());
        }
    }
    log.close().await.unwrap();
    seen
}

async fn kill9_during_ingest(log: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut aiops = Aiops::start(dir.path(), log, &[]);
    let port = Arc::new(std::sync::atomic::AtomicU16::new(aiops.port));
    let acked = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(run_load(port.clone(), acked.clone()));

    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::SeqCst) < REQUESTS / 3 {
        assert!(Instant::now() < deadline, "ingest too slow before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    aiops.kill9();
    let at_kill = acked.load(Ordering::SeqCst);
    assert!(at_kill < REQUESTS, "the kill came after the load finished");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut restarted = Aiops::start_on(dir.path(), log, aiops.port, &[]);
    port.store(restarted.port, Ordering::SeqCst);
    load.await.unwrap();
    assert_eq!(acked.load(Ordering::SeqCst), REQUESTS);
    restarted.stop();

    let seen = samples_in_log(dir.path(), log).await;
    let mut missing = 0usize;
    let mut twice = 0usize;
    let mut expected = HashSet::new();
    for r in 0..REQUESTS {
        for j in 0..SAMPLES_PER_SERIES {
            let ts = BASE_TS + (r * SAMPLES_PER_SERIES + j) as i64;
            for s in 0..SERIES as u32 {
                expected.insert((s, ts));
                match seen.get(&(s, ts)) {
                    None => missing += 1,
                    Some(1) => {}
                    Some(_) => twice += 1,
                }
            }
        }
    }
    let extra = seen.keys().filter(|k| !expected.contains(k)).count();
    assert_eq!(
        (missing, twice, extra),
        (0, 0, 0),
        "acknowledged samples missing / stored more than once / unexpected (acked {at_kill} requests before the kill)"
    );
    assert_eq!(expected.len(), REQUESTS * SERIES * SAMPLES_PER_SERIES);
    assert!(expected.len() >= 1_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_embedded_keeps_every_acknowledged_sample_once() {
    kill9_during_ingest("embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_nats_keeps_every_acknowledged_sample_once() {
    let nats = aiops_testkit::NatsServer::start().unwrap();
    kill9_during_ingest(&nats.url()).await;
}
