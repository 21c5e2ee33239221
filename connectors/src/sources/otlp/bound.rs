//! A bound on what a protobuf body can make prost allocate, checked before decoding it.
//!
//! An empty message is two bytes on the wire but a struct of 50-150 bytes once decoded, and a
//! packed varint one byte but eight; a body of 8 MiB of empty `ResourceMetrics` (or a gzip bomb
//! of them) would take gigabytes. This walk reads the wire format along the OTLP schema without
//! allocating and counts data points / log records (at most `ingest.max_series_per_request`)
//! and nested messages plus packed elements (at most 16 times that) before prost decodes.

use crate::error::DecodeError;

/// The OTLP messages the walk descends into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum M {
    MetricsReq,
    LogsReq,
    ResourceMetrics,
    ResourceLogs,
    Resource,
    ScopeMetrics,
    ScopeLogs,
    Scope,
    KeyValue,
    AnyValue,
    ArrayValue,
    KvList,
    Metric,
    NumberPoints,
    HistPoints,
    ExpPoints,
    SummaryPoints,
    NumberDp,
    HistDp,
    ExpDp,
    SummaryDp,
    Buckets,
    Exemplar,
    LogRecord,
    /// A message with no message fields (entity refs, quantiles): counted, not entered.
    Leaf,
}

/// The message type of field `f` of `m`, if it is a message.
fn child(m: M, f: u64) -> Option<M> {
    use M::*;
    Some(match (m, f) {
        (MetricsReq, 1) => ResourceMetrics,
        (LogsReq, 1) => ResourceLogs,
        (ResourceMetrics, 1) | (ResourceLogs, 1) => Resource,
        (ResourceMetrics, 2) => ScopeMetrics,
        (ResourceLogs, 2) => ScopeLogs,
        (Resource, 1) => KeyValue,
        (Resource, 3) => Leaf,
        (ScopeMetrics, 1) | (ScopeLogs, 1) => Scope,
        (ScopeMetrics, 2) => Metric,
        (ScopeLogs, 2) => LogRecord,
        (Scope, 3) => KeyValue,
        (KeyValue, 2) => AnyValue,
        (AnyValue, 5) => ArrayValue,
        (AnyValue, 6) => KvList,
        (ArrayValue, 1) => AnyValue,
        (KvList, 1) => KeyValue,
        (Metric, 5) | (Metric, 7) => NumberPoints,
        (Metric, 9) => HistPoints,
        (Metric, 10) => ExpPoints,
        (Metric, 11) => SummaryPoints,
        (Metric, 12) => KeyValue,
        (NumberPoints, 1) => NumberDp,
        (HistPoints, 1) => HistDp,
        (ExpPoints, 1) => ExpDp,
        (SummaryPoints, 1) => SummaryDp,
        (NumberDp, 7) | (HistDp, 9) | (ExpDp, 1) | (SummaryDp, 7) | (Exemplar, 7) => KeyValue,
        (NumberDp, 5) | (HistDp, 8) | (ExpDp, 11) => Exemplar,
        (ExpDp, 8) | (ExpDp, 9) => Buckets,
        (SummaryDp, 6) => Leaf,
        (LogRecord, 5) => AnyValue,
        (LogRecord, 6) => KeyValue,
        _ => return None,
    })
}

/// Packed varint fields (bucket counts): each byte can become an 8-byte element.
fn packed_varints(m: M, f: u64) -> bool {
    matches!((m, f), (M::HistDp, 6) | (M::Buckets, 2))
}

fn is_point(m: M) -> bool {
    matches!(
        m,
        M::NumberDp | M::HistDp | M::ExpDp | M::SummaryDp | M::LogRecord
    )
}

/// Deeper than prost's own recursion limit: prost reports it.
const MAX_DEPTH: usize = 100;

struct Budget {
    points: usize,
    max_points: usize,
    units: usize,
    max_units: usize,
    setting: &'static str,
}

impl Budget {
    fn too_many(what: &'static str, limit: usize, setting: &'static str) -> DecodeError {
        DecodeError::TooMany {
            at: "body".into(),
            what,
            limit,
            setting,
        }
    }

    fn add(&mut self, m: M, units: usize) -> Result<(), DecodeError> {
        self.units = self.units.saturating_add(units);
        if self.units > self.max_units {
            return Err(Self::too_many(
                "nested protobuf messages and bucket counts",
                self.max_units,
                self.setting,
            ));
        }
        if is_point(m) {
            self.points += 1;
            if self.points > self.max_points {
                return Err(Self::too_many(
                    "data points or log records",
                    self.max_points,
                    self.setting,
                ));
            }
        }
        Ok(())
    }
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Walks one message; malformed wire data stops the walk quietly (prost reports it).
fn walk(mut buf: &[u8], m: M, depth: usize, budget: &mut Budget) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    while !buf.is_empty() {
        let Some(key) = varint(&mut buf) else {
            return Ok(());
        };
        let (f, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                if varint(&mut buf).is_none() {
                    return Ok(());
                }
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if buf.len() < n {
                    return Ok(());
                }
                buf = &buf[n..];
            }
            2 => {
                let Some(n) = varint(&mut buf).and_then(|n| usize::try_from(n).ok()) else {
                    return Ok(());
                };
                if buf.len() < n {
                    return Ok(());
                }
                let (body, rest) = buf.split_at(n);
                buf = rest;
                if let Some(c) = child(m, f) {
                    budget.add(c, 1)?;
                    if c != M::Leaf {
                        walk(body, c, depth + 1, budget)?;
                    }
                } else if packed_varints(m, f) {
                    budget.add(M::Leaf, n)?;
                }
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Which request a body holds.
#[derive(Debug, Clone, Copy)]
pub enum Root {
    /// `ExportMetricsServiceRequest`.
    Metrics,
    /// `ExportLogsServiceRequest`.
    Logs,
}

/// Refuses a protobuf body with more than `max_points` data points / log records, or more than
/// `16 × max_points` nested messages and packed bucket counts, before anything is allocated.
///
/// # Errors
/// [`DecodeError::TooMany`] naming the limit and `ingest.max_series_per_request`.
pub fn check(raw: &[u8], root: Root, max_points: usize) -> Result<(), DecodeError> {
    let mut budget = Budget {
        points: 0,
        max_points,
        units: 0,
        max_units: max_points.saturating_mul(16),
        setting: "ingest.max_series_per_request",
    };
    let m = match root {
        Root::Metrics => M::MetricsReq,
        Root::Logs => M::LogsReq,
    };
    walk(raw, m, 0, &mut budget)
}
