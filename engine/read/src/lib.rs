//! The read side of aiops: everything that answers questions about the log without changing it.
//!
//! - [`auth`]: API tokens (stored hashed) with roles, and a per-token rate limit.
//! - [`timerange`]: the event-time range a query's filters allow, for pruning.
//! - [`archive`]: compaction of old log messages into Parquet files (zstd, kind/hour), retention,
//!   and time-pruned reads.
//! - [`table`]: a table over one stream (a kind or a pipeline's output) reading archive + log.
//! - [`directory`]: which derived streams exist and their schemas.
//! - [`state`]: tables over live engine state (alerts, silences, incidents, executions).
//! - [`catalog`]: the DataFusion session the Postgres endpoint and `aiops sql` query.
//! - [`sandbox`]: the read-only gates every statement passes (size, depth, allowlist, plan check).
//! - [`limits`]: time, memory and result-size limits of one query.
//! - [`pg`]: the Postgres wire endpoint (pgwire) with token authentication.
//! - [`pgconn`]: connection admission of the Postgres endpoint (login timeout, slots).
//! - [`pgguard`]: the sandbox on the Postgres endpoint (statement hook, guarded parser).
//! - [`pgmaps`]: label maps leave the endpoint as JSON text.
//! - [`json`]: query results (Arrow batches) as JSON rows and columns.

pub mod archive;
pub mod auth;
pub mod catalog;
pub mod directory;
pub mod json;
pub mod limits;
pub mod pg;
pub mod pgconn;
pub mod pgguard;
pub mod pgmaps;
pub mod sandbox;
pub mod state;
pub mod table;
pub mod timerange;
