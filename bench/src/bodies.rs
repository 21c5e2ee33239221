//! The pool of pre-encoded remote_write bodies, built before the clock starts so encoding is not
//! measured.
//!
//! Body `k` carries samples `k*spr .. (k+1)*spr` of an endless sequence that walks all series in
//! order, one timestamp step per full walk: every body is distinct (different series or later
//! timestamps) and, like a real Prometheus, sends each series' samples in time order.

use crate::error::BenchError;
use crate::load::Body;
use bytes::Bytes;
use std::collections::BTreeMap;

/// Metric names the synthetic series cycle through (node_exporter-like).
const NAMES: [&str; 8] = [
    "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
    "node_network_receive_bytes_total",
    "node_disk_read_bytes_total",
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "process_resident_memory_bytes",
    "go_goroutines",
];

/// Shape of the synthetic workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    /// Distinct series.
    pub series: usize,
    /// Samples per request body.
    pub samples_per_request: usize,
    /// Bodies in the pool.
    pub bodies: usize,
    /// Timestamp of the first sample, Unix ms.
    pub start_ms: i64,
    /// Timestamp step between two walks over all series, ms (a scrape interval).
    pub step_ms: i64,
}

/// One series' labels (sorted by name, `__name__` first) and samples, as the encoder takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    /// Label pairs, `__name__` included.
    pub labels: Vec<(String, String)>,
    /// `(timestamp ms, value)` in time order.
    pub samples: Vec<(i64, f64)>,
}

/// The labels of series `i`: `__name__`, `instance`, `job`, `series`.
pub fn series_labels(i: usize) -> Vec<(String, String)> {
    vec![
        ("__name__".to_string(), NAMES[i % NAMES.len()].to_string()),
        ("instance".to_string(), format!("host-{:04}:9100", i / 100)),
        ("job".to_string(), "node".to_string()),
        ("series".to_string(), i.to_string()),
    ]
}

/// The series and samples of body `k`.
pub fn body_series(shape: &PoolShape, k: usize) -> Vec<SeriesSamples> {
    let series = shape.series.max(1);
    let mut by_series: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
    for j in 0..shape.samples_per_request {
        let g = k * shape.samples_per_request + j;
        let s = g % series;
        let round = (g / series) as i64;
        let ts = shape.start_ms + round * shape.step_ms;
        // A counter-like value that grows with time and differs per series.
        let value = (round as f64) * 10.0 + (s % 97) as f64;
        by_series.entry(s).or_default().push((ts, value));
    }
    by_series
        .into_iter()
        .map(|(s, samples)| SeriesSamples {
            labels: series_labels(s),
            samples,
        })
        .collect()
}

/// Encodes one body (snappy-compressed protobuf `WriteRequest`) with the connectors' encoder.
///
/// # Errors
/// [`BenchError::Encode`] if the encoder refuses the request (a harness bug).
pub fn encode(series: &[SeriesSamples]) -> Result<Vec<u8>, BenchError> {
    crate::rw::encode(series)
}

/// Builds the whole pool.
///
/// # Errors
/// As [`encode`].
pub fn build_pool(shape: &PoolShape) -> Result<Vec<Body>, BenchError> {
    (0..shape.bodies)
        .map(|k| {
            let series = body_series(shape, k);
            let samples = series.iter().map(|s| s.samples.len() as u64).sum();
            Ok(Body {
                bytes: Bytes::from(encode(&series)?),
                samples,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn shape(series: usize, spr: usize) -> PoolShape {
        PoolShape {
            series,
            samples_per_request: spr,
            bodies: 8,
            start_ms: 1_700_000_000_000,
            step_ms: 10_000,
        }
    }

    #[test]
    fn bodies_are_distinct_and_complete() {
        let sh = shape(5, 3);
        let mut seen = HashSet::new();
        for k in 0..sh.bodies {
            let body = body_series(&sh, k);
            let n: usize = body.iter().map(|s| s.samples.len()).sum();
            assert_eq!(n, 3);
            for s in &body {
                assert!(s.samples.windows(2).all(|w| w[0].0 < w[1].0));
                for &(ts, _) in &s.samples {
                    assert!(seen.insert((s.labels.clone(), ts)), "sample repeated");
                }
            }
        }
        assert_eq!(seen.len(), 24);
    }

    #[test]
    fn fewer_series_than_samples_groups_per_series() {
        let sh = shape(2, 6);
        let body = body_series(&sh, 0);
        assert_eq!(body.len(), 2);
        assert_eq!(body[0].samples.len(), 3);
        assert_eq!(body[0].labels[0].0, "__name__");
    }
}
