//! The aiops engine process: everything between the HTTP edge and the event log.
//!
//! - [`config`]: the typed configuration tree (TOML + `AIOPS__` environment overrides).
//! - [`clock`]: the one place that reads the wall clock (the runtime's).
//! - [`ingest`]: decoded batches → partitioned, encoded log messages, with backpressure.
//! - [`pull`]: runs pull sources (scrapes, demo) into the ingestor.
//! - [`range_pull`]: the range scheduler of query-style sources (positions, backfill, health).
//! - [`datasources`]: pull sources managed at run time (config file and API).
//! - [`syslog`]: the syslog listeners (UDP, TCP) into the ingestor.
//! - [`otlp`]: OTLP/HTTP and OTLP/gRPC ingest (the dedicated listeners, the gRPC services).
//! - [`follower`]: the first log consumer; counts events and measures lag.
//! - [`metrics`]: self-metrics in the Prometheus text format.
//! - [`replay`]: reads a time range of the log back as events (NDJSON, table).
//! - [`log_stats`]: counts, time range and bytes per kind, from message headers.
//! - [`logs_analysis`]: log templates of a range against a baseline (new, surging, samples).
//! - [`pipelines`]: the pipeline files the API manages, and the pipelines' metrics.
//! - [`alerting`]: the alerting engine's metrics.
//! - [`submit`]: what became of a command appended to the log and waited for (one error type).
//! - [`deploys`]: deploy commands to the log and the book they build; Kubernetes rollout watchers.
//! - [`knowledge`]: knowledge commands, folder imports, runbook links, similar incidents, the
//!   LLM assistant with recorded calls.
//! - [`workflows`]: the workflow service (users, deploys, metrics); `sql`/`verify` answered by
//!   the read side.
//! - [`auth`]: bearer tokens, roles, rate limits and audit events on the HTTP API.
//! - [`read`]: the Postgres endpoint, the archive's compaction, `aiops sql`.
//! - [`http`]: the HTTP API — one router, a small state per area, one error type
//!   ([`http::ApiError`]), the listener. Services never import it.
//! - [`server`]: wires all of the above into `aiops run`.
//!
//! Everything that follows the log and appends back (the processors, the executor, pipelines,
//! checkpoints) is in `aiops-runtime`; provisioning dashboards, alert rules and annotations in
//! Grafana is `aiops-grafana` (the server gives it the read side and serves `/api/grafana/*`).

pub mod alerting;
pub mod auth;
pub mod cluster;
pub use aiops_runtime::clock;
pub mod config;
pub mod console;
pub mod datasources;
pub mod deploys;
pub mod follower;
pub mod http;
pub mod ingest;
pub mod knowledge;
pub mod log_stats;
pub mod logs_analysis;
pub mod metrics;
pub mod otlp;
pub mod pipelines;
pub mod pull;
pub mod range_pull;
pub mod read;
pub mod replay;
pub mod server;
pub mod submit;
pub mod syslog;
pub mod workflows;
