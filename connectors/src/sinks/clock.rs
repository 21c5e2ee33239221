//! The wall clock, read only here: signatures and event timestamps sent to services are an edge
//! of the system (DESIGN.md, "Determinism"), and services check them against their own clocks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch now.
#[allow(clippy::disallowed_methods)] // An effect happens now; the service compares with its clock.
pub(crate) fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Unix seconds now.
pub(crate) fn unix_secs() -> u64 {
    since_epoch().as_secs()
}

/// Unix milliseconds now.
pub(crate) fn unix_millis() -> u128 {
    since_epoch().as_millis()
}
