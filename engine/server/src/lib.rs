//! The aiops engine process: everything between the HTTP edge and the event log.
//!
//! - [`config`]: the typed configuration tree (TOML + `AIOPS__` environment overrides).
//! - [`clock`]: the one place that reads the wall clock (the runtime's).
//! - [`ingest`]: decoded batches → partitioned, encoded log messages, with backpressure.
//! - [`http`]: the HTTP API (push endpoints from the connector registry, health, metrics).
//! - [`http_conn`]: the HTTP listener: connection cap, header and body read timeouts.
//! - [`pull`]: runs pull sources (scrapes, demo) into the ingestor.
//! - [`follower`]: the first log consumer; counts events and measures lag.
//! - [`metrics`]: self-metrics in the Prometheus text format.
//! - [`replay`]: reads a time range of the log back as events (NDJSON, table).
//! - [`pipelines`]: business metrics and SQL alert rules as pipeline files over HTTP.
//! - [`alerting`]: Alertmanager's API v2 subset, incidents and statistics over HTTP.
//! - [`log_stats`]: counts, time range and bytes per kind, from message headers.
//! - [`workflows`]: the workflow and auto-heal API; `sql`/`verify` answered by the read side.
//!
//! Everything that follows the log and appends back (the processors, the executor, pipelines,
//! checkpoints) is in `aiops-runtime`.
//! - [`auth`]: bearer tokens, roles, rate limits and audit events on the HTTP API.
//! - [`read`]: the Postgres endpoint, the archive's compaction, `aiops sql`.
//! - [`api`]: the read-side HTTP API (queries, metrics, log search, tokens, OpenAPI).
//! - [`server`]: wires all of the above into `aiops run`.

pub mod alerting;
pub mod api;
pub mod auth;
pub use aiops_runtime::clock;
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
pub mod pull;
pub mod read;
pub mod replay;
pub mod server;
pub mod workflows;
