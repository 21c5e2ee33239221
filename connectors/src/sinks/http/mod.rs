//! `http`: an enrichment GET for workflow steps (fetch a runbook, a CMDB record, a status page).
//!
//! Config: `url?` (a base for relative paths), `headers?` (map; values may be credentials).
//! Params: `url` (absolute, or a path relative to the base), `headers?`. The GET goes through the
//! guarded client; the answer is parsed as JSON when it is JSON (else kept as a string) and may
//! be at most 1 MiB (an error beyond). Output response = the body.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::HttpConfig;
pub use sink::{Http, MAX_BODY};
