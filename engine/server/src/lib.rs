//! The aiops engine process: everything between the HTTP edge and the event log.
//!
//! - [`config`]: the typed configuration tree (TOML + `AIOPS__` environment overrides).
//! - [`clock`]: the one place that reads the wall clock.
//! - [`ingest`]: decoded batches → partitioned, encoded log messages, with backpressure.
//! - [`http`]: the HTTP API (push endpoints from the connector registry, health, metrics).
//! - [`http_conn`]: the HTTP listener: connection cap, header and body read timeouts.
//! - [`pull`]: runs pull sources (scrapes, demo) into the ingestor.
//! - [`follower`]: the first log consumer; counts events and measures lag.
//! - [`metrics`]: self-metrics in the Prometheus text format.
//! - [`replay`]: reads a time range of the log back as events (NDJSON, table).
//! - [`pipelines`]: SQL pipelines over the log: loading, running, checkpoints, forensic replay.
//! - [`alerting`]: alert management over the log: dedup, routing, silences, incidents, API v2.
//! - [`templates`]: log template mining over the log: template events, counts, anomalies.
//! - [`checkpoint`]: the single-state checkpoint store of the alerting and template runners.
//! - [`log_stats`]: counts, time range and bytes per kind, from message headers.
//! - [`workflows`]: workflows and auto-heal over the log; the executor of effects.
//! - [`progress`]: a runner's position and its commands' outcomes, for API handlers to wait on.
//! - [`auth`]: bearer tokens, roles, rate limits and audit events on the HTTP API.
//! - [`read`]: the Postgres endpoint, the archive's compaction, `aiops sql`.
//! - [`api`]: the read-side HTTP API (queries, metrics, log search, tokens, OpenAPI).
//! - [`server`]: wires all of the above into `aiops run`.

pub mod alerting;
pub mod api;
pub mod auth;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod datasources;
pub mod follower;
pub mod grafana;
pub mod http;
pub mod http_conn;
pub mod ingest;
pub mod log_stats;
pub mod metrics;
pub mod pipelines;
pub mod progress;
pub mod pull;
pub mod read;
pub mod replay;
pub mod server;
pub mod templates;
pub mod workflows;
