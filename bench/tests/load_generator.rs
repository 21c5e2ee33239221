//! The load generator against a real HTTP server on loopback (axum): accepted samples,
//! backpressure retries with the same Idempotency-Key, and latency recording.

// Test helpers outside `#[test]` functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use aiops_bench::load::{Body, LoadPlan, run};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Seen {
    /// Attempts per Idempotency-Key.
    attempts: HashMap<String, u32>,
}

async fn serve(seen: Arc<Mutex<Seen>>) -> String {
    let app = Router::new().route(
        "/api/v1/write",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                assert_eq!(headers["content-encoding"], "snappy");
                assert_eq!(body.len(), 100);
                let key = headers["idempotency-key"].to_str().unwrap().to_string();
                let n = {
                    let mut s = seen.lock().unwrap();
                    let n = s.attempts.entry(key).or_insert(0);
                    *n += 1;
                    *n
                };
                // Every request is refused once with backpressure, then accepted.
                if n == 1 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "0.001")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    (
                        StatusCode::OK,
                        r#"{"accepted":10,"messages":1,"duplicates":0}"#,
                    )
                        .into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/api/v1/write")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_accepted_and_retries_backpressure_with_the_same_key() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve(seen.clone()).await;
    let pool = Arc::new(
        (0..4)
            .map(|i| Body {
                bytes: Bytes::from(vec![i as u8; 100]),
                samples: 10,
            })
            .collect::<Vec<_>>(),
    );
    let plan = LoadPlan {
        url,
        connections: 3,
        duration: Duration::from_millis(600),
        warmup: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        key_prefix: "t".into(),
    };
    let r = run(&plan, pool).await.unwrap();
    assert!(r.accepted_requests > 10, "{r:?}");
    assert_eq!(r.accepted_samples, r.accepted_requests * 10);
    assert!(r.steady_samples <= r.accepted_samples);
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.duplicate_answers, 0);
    // Each accepted key was refused exactly once before (a run may end between the two).
    let s = seen.lock().unwrap();
    let accepted_keys = s.attempts.values().filter(|&&n| n >= 2).count() as u64;
    assert_eq!(accepted_keys, r.accepted_requests);
    assert!(
        s.attempts.values().all(|&n| n <= 2),
        "a key was retried after acceptance"
    );
    assert!(r.backpressure >= r.accepted_requests);
    assert!(r.latency_us.count > 0 && r.latency_us.p50 > 0);
    assert!(r.samples_per_s > 0.0);
}

#[tokio::test]
async fn a_dead_engine_is_an_error_not_a_result() {
    // Nothing listens on this port (bound then dropped).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let plan = LoadPlan {
        url: format!("http://127.0.0.1:{port}/api/v1/write"),
        connections: 1,
        duration: Duration::from_millis(200),
        warmup: Duration::from_millis(50),
        request_timeout: Duration::from_secs(1),
        key_prefix: "t".into(),
    };
    let pool = Arc::new(vec![Body {
        bytes: Bytes::from_static(b"x"),
        samples: 1,
    }]);
    let err = run(&plan, pool).await.unwrap_err();
    assert!(err.to_string().contains("no request was accepted"), "{err}");
}
