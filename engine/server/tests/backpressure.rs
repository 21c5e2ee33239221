//! When the log cannot keep up, ingest answers 503 with Retry-After instead of queueing without
//! bound — and everything it acknowledged is in the log, nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::Aiops;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_gets_503_with_retry_after_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tight.toml");
    std::fs::write(
        &conf,
        // The rows carry 1970 times (`time: 1000 + j`): widen the accepted window back to them.
        "[ingest]\nmax_inflight_appends = 1\nqueue_timeout = \"1ms\"\nmax_age = \"30000d\"\n",
    )
    .unwrap();
    let a = Aiops::start(
        dir.path(),
        "embedded",
        &["--config", conf.to_str().unwrap()],
    );
    let client = reqwest::Client::new();
    let ok = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (client, ok, busy, url) = (
            client.clone(),
            ok.clone(),
            busy.clone(),
            a.url("/api/ingest/logs"),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let body: String = (0..500)
                    .map(|j| format!("{{\"body\":\"w{w} r{i} l{j}\",\"time\":{}}}\n", 1_000 + j))
                    .collect();
                let resp = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                match resp.status().as_u16() {
                    200 => {
                        ok.fetch_add(500, Ordering::SeqCst);
                    }
                    503 => {
                        assert_eq!(resp.headers()["retry-after"], "1");
                        let v: serde_json::Value =
                            serde_json::from_str(&resp.text().await.unwrap()).unwrap();
                        assert_eq!(v["reason"], "overloaded");
                        busy.fetch_add(1, Ordering::SeqCst);
                    }
                    other => panic!("unexpected status {other}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        busy.load(Ordering::SeqCst) > 0,
        "16 concurrent writers never saw backpressure"
    );
    let stats = common::aiops_cmd(dir.path(), "embedded", &["log", "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        v["kinds"]["logs"]["events"].as_u64().unwrap_or(0) as usize,
        ok.load(Ordering::SeqCst),
        "the log holds exactly what was acknowledged"
    );
    assert!(
        a.metric(
            "aiops_ingest_rejected_total{endpoint=\"/api/ingest/logs\",reason=\"overloaded\"}"
        ) >= 1.0
    );
}
