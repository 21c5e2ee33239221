//! The remote_write load generator: `connections` keep-alive HTTP/1.1 clients posting a pool of
//! pre-encoded bodies as fast as the engine accepts them.
//!
//! Each connection is one task with its own client (so exactly one TCP connection each) posting
//! the next body of the shared pool. Every answer's latency goes into that task's
//! [`Histogram`] (µs); histograms are merged at the end. 429/503 answers are counted as
//! backpressure and the same body is retried after `Retry-After`; they never count as accepted.
//! Requests that complete in the warm-up are counted in the totals but not in the steady-state
//! rate or the latency percentiles.
//!
//! The engine derives a remote_write request's log message ids from the body's hash, so a body
//! sent twice is stored once. The pool is cycled when the run needs more bodies than it holds,
//! so every request carries a fresh `Idempotency-Key` (kept across its own 429/503 retries):
//! a repeat is then stored again, as a real sender's next request (with later timestamps) would
//! be. Answers reporting duplicates are counted, so a run that stored less than it sent shows.

use crate::error::BenchError;
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One pre-encoded remote_write request body.
#[derive(Debug, Clone)]
pub struct Body {
    /// Snappy-compressed protobuf `WriteRequest`.
    pub bytes: Bytes,
    /// Samples it carries.
    pub samples: u64,
}

/// How to drive the load.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// `http://HOST:PORT/api/v1/write`.
    pub url: String,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Total run time, warm-up included.
    pub duration: Duration,
    /// Time at the start excluded from the steady-state figures.
    pub warmup: Duration,
    /// Per-request timeout; a request that takes longer counts as an error.
    pub request_timeout: Duration,
    /// Prefix of the `Idempotency-Key`s, unique per run.
    pub key_prefix: String,
}

/// What the load run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// Requests answered 2xx (whole run).
    pub accepted_requests: u64,
    /// Samples in those requests (whole run).
    pub accepted_samples: u64,
    /// Samples accepted after the warm-up.
    pub steady_samples: u64,
    /// Seconds of the steady part (run time minus warm-up, to the last completion).
    pub steady_seconds: f64,
    /// `steady_samples / steady_seconds`.
    pub samples_per_s: f64,
    /// Steady-state requests per second.
    pub requests_per_s: f64,
    /// Steady-state request body megabytes (10^6) per second, compressed as sent.
    pub body_mb_per_s: f64,
    /// Answers 429 or 503 (backpressure), each retried.
    pub backpressure: u64,
    /// Other non-2xx answers, timeouts and connection errors (not retried).
    pub errors: u64,
    /// Accepted answers saying some messages were already in the log (should stay 0).
    pub duplicate_answers: u64,
    /// The first error's description, if any.
    pub first_error: Option<String>,
    /// Latency percentiles of steady-state requests, µs.
    pub latency_us: Latency,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Requests recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    /// Percentiles of a histogram in µs.
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Per-connection tallies, merged at the end.
#[derive(Debug)]
struct Tally {
    hist: Histogram<u64>,
    accepted_requests: u64,
    accepted_samples: u64,
    steady_samples: u64,
    steady_requests: u64,
    steady_body_bytes: u64,
    backpressure: u64,
    errors: u64,
    duplicate_answers: u64,
    first_error: Option<String>,
    last_done: Duration,
}

fn new_histogram() -> Result<Histogram<u64>, BenchError> {
    // 1 µs .. 10 min at 3 significant digits; constant bounds, so an error here is a bug.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| BenchError::Internal(format!("histogram bounds: {e}")))
}

/// Runs the load until `plan.duration` has passed, then waits for in-flight requests.
///
/// # Errors
/// [`BenchError::Http`] when a client cannot be built; [`BenchError::NothingAccepted`] when no
/// request was accepted after the warm-up (the engine refused everything or is down).
pub async fn run(plan: &LoadPlan, pool: Arc<Vec<Body>>) -> Result<LoadResult, BenchError> {
    if pool.is_empty() {
        return Err(BenchError::Encode("empty body pool".into()));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..plan.connections.max(1) {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(plan.request_timeout)
            .build()?;
        let hist = new_histogram()?;
        tasks.spawn(connection(
            client,
            hist,
            plan.clone(),
            Arc::clone(&pool),
            Arc::clone(&next),
            t0,
        ));
    }
    let mut hist = new_histogram()?;
    let mut out = LoadResult::default();
    let mut last_done = Duration::ZERO;
    let mut steady_requests = 0;
    let mut steady_body_bytes = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok(t) = joined else {
            out.errors += 1;
            continue;
        };
        let _ = hist.add(&t.hist);
        out.accepted_requests += t.accepted_requests;
        out.accepted_samples += t.accepted_samples;
        out.steady_samples += t.steady_samples;
        steady_requests += t.steady_requests;
        steady_body_bytes += t.steady_body_bytes;
        out.backpressure += t.backpressure;
        out.errors += t.errors;
        out.duplicate_answers += t.duplicate_answers;
        if out.first_error.is_none() {
            out.first_error = t.first_error;
        }
        last_done = last_done.max(t.last_done);
    }
    out.steady_seconds = last_done.saturating_sub(plan.warmup).as_secs_f64();
    if out.steady_samples == 0 || out.steady_seconds <= 0.0 {
        return Err(BenchError::NothingAccepted(format!(
            "{} accepted in warm-up, {} backpressure answers, {} errors, first error: {}",
            out.accepted_requests,
            out.backpressure,
            out.errors,
            out.first_error.as_deref().unwrap_or("none")
        )));
    }
    out.samples_per_s = out.steady_samples as f64 / out.steady_seconds;
    out.requests_per_s = steady_requests as f64 / out.steady_seconds;
    out.body_mb_per_s = steady_body_bytes as f64 / 1e6 / out.steady_seconds;
    out.latency_us = Latency::of(&hist);
    Ok(out)
}

/// `Retry-After` in seconds (integer or fractional); an HTTP date or garbage means 100 ms.
pub fn retry_after(value: Option<&str>) -> Duration {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(30.0)))
        .unwrap_or(Duration::from_millis(100))
}

async fn connection(
    client: reqwest::Client,
    hist: Histogram<u64>,
    plan: LoadPlan,
    pool: Arc<Vec<Body>>,
    next: Arc<AtomicUsize>,
    t0: Instant,
) -> Tally {
    let mut t = Tally {
        hist,
        accepted_requests: 0,
        accepted_samples: 0,
        steady_samples: 0,
        steady_requests: 0,
        steady_body_bytes: 0,
        backpressure: 0,
        errors: 0,
        duplicate_answers: 0,
        first_error: None,
        last_done: Duration::ZERO,
    };
    let mut body: Option<(&Body, String)> = None;
    while t0.elapsed() < plan.duration {
        // A body refused with backpressure is sent again with its key; otherwise take the next.
        let (b, key) = match body.take() {
            Some(pending) => pending,
            None => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                (&pool[n % pool.len()], format!("{}-{n}", plan.key_prefix))
            }
        };
        let sent = Instant::now();
        let resp = client
            .post(&plan.url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("Idempotency-Key", key.as_str())
            .body(b.bytes.clone())
            .send()
            .await;
        let (status, retry) = match resp {
            Ok(r) => {
                let status = r.status().as_u16();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // Drain the body so the connection goes back to the pool for keep-alive.
                let drained = r.bytes().await;
                match drained {
                    Ok(text) if !(200..300).contains(&status) && t.first_error.is_none() => {
                        t.first_error = Some(format!(
                            "HTTP {status}: {}",
                            String::from_utf8_lossy(&text[..text.len().min(300)])
                        ));
                    }
                    Ok(text) if (200..300).contains(&status) && reports_duplicates(&text) => {
                        t.duplicate_answers += 1;
                    }
                    _ => {}
                }
                (Some(status), retry)
            }
            Err(e) => {
                if t.first_error.is_none() {
                    t.first_error = Some(e.to_string());
                }
                (None, None)
            }
        };
        let done = t0.elapsed();
        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let steady = done >= plan.warmup;
        match status {
            Some(s) if (200..300).contains(&s) => {
                t.accepted_requests += 1;
                t.accepted_samples += b.samples;
                if steady {
                    t.steady_samples += b.samples;
                    t.steady_requests += 1;
                    t.steady_body_bytes += b.bytes.len() as u64;
                    t.hist.saturating_record(micros.max(1));
                }
                t.last_done = done;
            }
            Some(429 | 503) => {
                t.backpressure += 1;
                body = Some((b, key));
                tokio::time::sleep(retry_after(retry.as_deref())).await;
            }
            _ => {
                t.errors += 1;
                // Do not spin on a dead engine.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    t
}

/// Whether an accepted answer's JSON says some messages were duplicates (`"duplicates": N > 0`).
pub fn reports_duplicates(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let Some(at) = text.find("\"duplicates\"") else {
        return false;
    };
    let rest = text[at + 12..].trim_start_matches([':', ' ']);
    !rest.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_seconds() {
        assert_eq!(retry_after(Some("1")), Duration::from_secs(1));
        assert_eq!(retry_after(Some("0.25")), Duration::from_millis(250));
        assert_eq!(
            retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Duration::from_millis(100)
        );
        assert_eq!(retry_after(None), Duration::from_millis(100));
        assert_eq!(retry_after(Some("3600")), Duration::from_secs(30));
    }

    #[test]
    fn duplicates_in_answers() {
        assert!(!reports_duplicates(
            br#"{"accepted":2000,"messages":4,"duplicates":0}"#
        ));
        assert!(reports_duplicates(
            br#"{"accepted":2000,"messages":4,"duplicates": 4}"#
        ));
        assert!(!reports_duplicates(b""));
    }

    #[test]
    fn latency_percentiles() {
        let mut h = new_histogram().unwrap();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let l = Latency::of(&h);
        assert_eq!(l.count, 1000);
        assert!((495..=505).contains(&l.p50), "{l:?}");
        assert!((985..=995).contains(&l.p99), "{l:?}");
        assert_eq!(l.max, 1000);
    }
}
