//! JSON and NDJSON ingest of metrics, logs and events (`POST /api/ingest/{metrics,logs,events}`).
//!
//! A body is one object, an array of objects, or NDJSON (one object per line). Every record is
//! checked before anything is kept: unknown fields, wrong types and missing fields reject the
//! whole body with the line (or array element) and field named.

mod decode;
#[cfg(test)]
mod tests;
mod time;

pub use decode::{JsonDecoder, JsonKind};
pub use time::parse_rfc3339_ms;
