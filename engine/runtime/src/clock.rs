//! The one place that reads the wall clock. Processing uses event time (DESIGN.md, invariant 2);
//! only the edges — stamping `ingest_ts`, defaulting a missing event time, CLI relative times —
//! ask for "now", and they ask here so it is easy to audit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
#[allow(clippy::disallowed_methods)]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
