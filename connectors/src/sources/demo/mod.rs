//! The demo telemetry generator: a small simulated fleet so a newcomer sees realistic data flow
//! (`aiops run --demo`), and the same data drives benchmarks and detection tests.
//!
//! Deterministic: everything follows from `seed` and `start` (which defaults to the wall clock at
//! build time — the only wall-clock read; `speed` only paces delivery). Each tick of `interval`
//! event time yields one batch per kind (metrics, logs, events, alerts; empty kinds omitted).
//!
//! With `backfill` (`aiops run --demo` sets 3 hours on a fresh log) event time begins that long
//! before now and the ticks up to now are handed out at once, several per call (bounded), before
//! pacing begins: the same fleet and incident script, so history exists from the first minute.
//!
//! # What it simulates
//! - **Hosts** (`host-1` …, labels `host`, `instance` (the same name, as a scrape adds it),
//!   `job="node"`): `node_cpu_seconds_total{cpu,mode}`
//!   counters (user/system/iowait/idle), `node_memory_MemAvailable_bytes`,
//!   `node_memory_MemTotal_bytes`, `node_filesystem_avail_bytes` / `node_filesystem_size_bytes`
//!   `{mountpoint="/"}`, `node_load1`, `node_network_receive_bytes_total{device="eth0"}`.
//! - **Services** (`checkout`, `payments`, `search`, `frontend`, …):
//!   `http_requests_total{service,method,status}` counters (200/500),
//!   `http_request_duration_seconds_bucket{service,le}` (log-normal latencies) with `_sum` and
//!   `_count`, and `orders_total{service="checkout"}`. Access, warning and error logs with labels
//!   `{service, host}` and attributes (`method`, `path`, `status`, `duration_ms`, `error`).
//! - Traffic and CPU follow a daily sinusoid (peak 12:00 UTC, trough 00:00) with noise. Counters
//!   are monotone except for the one scripted reset below.
//! - Routine `deploy` events (labels `service`, `version`) about every six hours per service.
//!
//! # Scripted incidents
//! Every two hours of event time (counted from `start`) one of each, at offsets drawn from the
//! seed (see [`incidents::schedule`]):
//! 1. **Error burst after a deploy** (5–30 min into the cycle, 8–15 min long): a `deploy` event
//!    for one service, then 20% of its requests answer 500, latencies triple and error logs
//!    (`connection refused to db-1:5432`, `upstream … returned 503`) flood in; `HighErrorRate`
//!    fires two minutes in; at the end a rollback `deploy` and the alert resolves.
//! 2. **Memory leak** (45–65 min in, 15–25 min long): `node_memory_MemAvailable_bytes` of one
//!    host falls towards 1.5% of total and its load climbs; `HostMemoryLow` fires at 70%; at the
//!    end an OOM kill log, a `restart` event, and the host's counters
//!    (`node_cpu_seconds_total`, `node_network_receive_bytes_total`) **reset to zero** — the
//!    only counter decrease; the alert resolves.
//! 3. **Disk filling up** (90–105 min in, 8–15 min long): `node_filesystem_avail_bytes` of one
//!    host falls to 1% with `disk usage N% on /` warnings; `DiskAlmostFull` fires at 70%; log
//!    rotation frees the space at the end and the alert resolves.
//!
//! Alerts are emitted as alert rows with source `demo`, once when firing and once when resolved.

mod config;
mod fleet;
pub mod incidents;
mod source;
#[cfg(test)]
mod tests;

pub use config::DemoConfig;
pub use source::{CATCH_UP_ROWS, CATCH_UP_TICKS, DemoSource, SOURCE_NAME};
