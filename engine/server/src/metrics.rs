//! Self-metrics of the engine, exposed at `GET /metrics` in the Prometheus text format.
//!
//! Metric names are defined once here. Counters are updated per request or per batch, never per
//! event. Label sets are small and bounded (kinds, source names, rejection reasons).

use aiops_schemas::Kind;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the append-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Events and bytes accepted, by kind and source.
type IngestCounts = BTreeMap<(Kind, &'static str), (u64, u64)>;

/// All self-metrics of one engine process.
#[derive(Debug)]
pub struct Metrics {
    ingested: Mutex<IngestCounts>,
    rejected: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    append_latency: Mutex<Histogram<u64>>,
    append_latency_sum_us: AtomicU64,
    log_events: Mutex<BTreeMap<Kind, u64>>,
    consumer_lag: AtomicU64,
    consumer_position: AtomicU64,
    duplicates: AtomicU64,
    /// Masking matches per rule (`[masking]`); rule names are validated `[a-z][a-z0-9_]*`.
    masking_matches: Mutex<BTreeMap<String, u64>>,
    masking_dropped_records: AtomicU64,
    masking_dropped_entries: AtomicU64,
    /// The syslog listeners' counters (`aiops_syslog_*`).
    pub syslog: crate::syslog::SyslogMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ingested: Mutex::new(BTreeMap::new()),
            rejected: Mutex::new(BTreeMap::new()),
            append_latency: Mutex::new(latency_histogram()),
            append_latency_sum_us: AtomicU64::new(0),
            log_events: Mutex::new(BTreeMap::new()),
            consumer_lag: AtomicU64::new(0),
            consumer_position: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            masking_matches: Mutex::new(BTreeMap::new()),
            masking_dropped_records: AtomicU64::new(0),
            masking_dropped_entries: AtomicU64::new(0),
            syslog: crate::syslog::SyslogMetrics::default(),
        }
    }
}

/// 1 µs .. 60 s with 3 significant digits.
#[allow(clippy::expect_used)]
fn latency_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail at run time.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

impl Metrics {
    /// Counts one accepted batch of `events` events and `bytes` encoded bytes.
    pub fn ingested(&self, kind: Kind, source: &'static str, events: u64, bytes: u64) {
        let mut m = self.ingested.lock();
        let e = m.entry((kind, source)).or_default();
        e.0 += events;
        e.1 += bytes;
    }

    /// Counts one rejected request.
    pub fn rejected(&self, endpoint: &'static str, reason: &'static str) {
        *self.rejected.lock().entry((endpoint, reason)).or_default() += 1;
    }

    /// Records how long one log append took.
    pub fn append_latency(&self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.append_latency.lock().record(us.min(60_000_000));
        self.append_latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Counts messages the log reported as duplicates of earlier appends (retries).
    pub fn duplicates(&self, n: u64) {
        self.duplicates.fetch_add(n, Ordering::Relaxed);
    }

    /// The masking rules that run: their counters are shown from zero; rules that matched
    /// earlier keep their counts.
    pub fn masking_rules(&self, names: impl IntoIterator<Item = String>) {
        let mut m = self.masking_matches.lock();
        m.retain(|_, n| *n > 0);
        for name in names {
            m.entry(name).or_default();
        }
    }

    /// Counts `n` masking matches of `rule` (per request).
    pub fn masking_matches(&self, rule: &str, n: u64) {
        let mut m = self.masking_matches.lock();
        match m.get_mut(rule) {
            Some(c) => *c += n,
            None => {
                m.insert(rule.to_string(), n);
            }
        }
    }

    /// Counts records and label/attribute entries removed by `drop` masking rules.
    pub fn masking_dropped(&self, records: u64, entries: u64) {
        self.masking_dropped_records
            .fetch_add(records, Ordering::Relaxed);
        self.masking_dropped_entries
            .fetch_add(entries, Ordering::Relaxed);
    }

    /// Counts events seen in the log by the log-follower, by kind.
    pub fn log_events(&self, kind: Kind, n: u64) {
        *self.log_events.lock().entry(kind).or_default() += n;
    }

    /// Sets the follower's position and lag behind the log head.
    pub fn consumer(&self, position: u64, lag: u64) {
        self.consumer_position.store(position, Ordering::Relaxed);
        self.consumer_lag.store(lag, Ordering::Relaxed);
    }

    /// Current consumer lag in messages.
    pub fn consumer_lag(&self) -> u64 {
        self.consumer_lag.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let _ = writeln!(
            s,
            "# HELP aiops_ingest_events_total Events accepted into the log, by kind and source.\n\
             # TYPE aiops_ingest_events_total counter"
        );
        let ingested = self.ingested.lock().clone();
        for ((kind, source), (events, _)) in &ingested {
            let _ = writeln!(
                s,
                "aiops_ingest_events_total{{kind=\"{kind}\",source=\"{source}\"}} {events}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP aiops_ingest_bytes_total Encoded bytes appended to the log, by kind and source.\n\
             # TYPE aiops_ingest_bytes_total counter"
        );
        for ((kind, source), (_, bytes)) in &ingested {
            let _ = writeln!(
                s,
                "aiops_ingest_bytes_total{{kind=\"{kind}\",source=\"{source}\"}} {bytes}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP aiops_ingest_rejected_total Requests answered with an error, by endpoint and reason.\n\
             # TYPE aiops_ingest_rejected_total counter"
        );
        for ((endpoint, reason), n) in self.rejected.lock().iter() {
            let _ = writeln!(
                s,
                "aiops_ingest_rejected_total{{endpoint=\"{endpoint}\",reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP aiops_log_duplicate_appends_total Appended messages the log already held (retried requests).\n\
             # TYPE aiops_log_duplicate_appends_total counter\n\
             aiops_log_duplicate_appends_total {}",
            self.duplicates.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP aiops_log_append_seconds Latency of one log append (all messages of a request).\n\
             # TYPE aiops_log_append_seconds histogram"
        );
        {
            let h = self.append_latency.lock();
            for le in LATENCY_BUCKETS {
                let n = h.count_between(0, (le * 1e6) as u64);
                let _ = writeln!(s, "aiops_log_append_seconds_bucket{{le=\"{le}\"}} {n}");
            }
            let _ = writeln!(
                s,
                "aiops_log_append_seconds_bucket{{le=\"+Inf\"}} {}",
                h.len()
            );
            let _ = writeln!(
                s,
                "aiops_log_append_seconds_sum {}",
                self.append_latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(s, "aiops_log_append_seconds_count {}", h.len());
        }
        let _ = writeln!(
            s,
            "# HELP aiops_log_events Events in the log seen by the log follower, by kind.\n\
             # TYPE aiops_log_events counter"
        );
        for (kind, n) in self.log_events.lock().iter() {
            let _ = writeln!(s, "aiops_log_events{{kind=\"{kind}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP aiops_consumer_lag_messages Messages between the log head and the follower.\n\
             # TYPE aiops_consumer_lag_messages gauge\n\
             aiops_consumer_lag_messages{{consumer=\"follower\"}} {}\n\
             # HELP aiops_consumer_position Next sequence the follower reads.\n\
             # TYPE aiops_consumer_position gauge\n\
             aiops_consumer_position{{consumer=\"follower\"}} {}",
            self.consumer_lag.load(Ordering::Relaxed),
            self.consumer_position.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP aiops_masking_matches_total Sensitive values masked at ingest before the log, by rule.\n\
             # TYPE aiops_masking_matches_total counter"
        );
        for (rule, n) in self.masking_matches.lock().iter() {
            let _ = writeln!(s, "aiops_masking_matches_total{{rule=\"{rule}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP aiops_masking_dropped_total Records and label/attribute entries removed by masking rules with action drop.\n\
             # TYPE aiops_masking_dropped_total counter\n\
             aiops_masking_dropped_total{{what=\"record\"}} {}\n\
             aiops_masking_dropped_total{{what=\"entry\"}} {}",
            self.masking_dropped_records.load(Ordering::Relaxed),
            self.masking_dropped_entries.load(Ordering::Relaxed)
        );
        self.syslog.render(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.ingested(Kind::Metrics, "remote_write", 10, 100);
        m.ingested(Kind::Metrics, "remote_write", 5, 50);
        m.rejected("/api/v1/write", "bad_snappy");
        m.append_latency(std::time::Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains("aiops_ingest_events_total{kind=\"metrics\",source=\"remote_write\"} 15")
        );
        assert!(
            text.contains("aiops_ingest_bytes_total{kind=\"metrics\",source=\"remote_write\"} 150")
        );
        assert!(text.contains("reason=\"bad_snappy\"} 1"));
        assert!(text.contains("aiops_log_append_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("aiops_log_append_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("aiops_log_append_seconds_count 1"));
    }
}
