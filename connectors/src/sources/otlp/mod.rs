//! OTLP ingest (OpenTelemetry protocol): metrics and logs from OTel SDKs and collectors, as
//! protobuf or OTLP/JSON, optionally gzip-compressed. The engine serves it over HTTP
//! (`/v1/metrics`, `/v1/logs`, and `/api/otlp/v1/*` on the API listener) and gRPC; this folder
//! turns a request into rows.
//!
//! - [`source`]: media type, gzip, protobuf / JSON decoding, the decoder with its delta state;
//! - [`bound`]: what a protobuf body may make the decoder allocate, checked first;
//! - [`json`]: OTLP/JSON into the protobuf types (not the crate's serde path, which drops data);
//! - [`metrics`]: the Prometheus-compatible mapping of metrics;
//! - [`logs`]: the mapping of log records;
//! - [`delta`]: running totals of delta series;
//! - [`names`]: metric and label names, units, severities;
//! - [`values`]: attribute values as text;
//! - [`status`]: `google.rpc.Status`, the body of error answers.
//!
//! The OTel project's generated types (`opentelemetry-proto`) are re-exported as [`proto`].

pub mod bound;
pub mod delta;
pub mod json;
pub mod logs;
pub mod metrics;
pub mod names;
pub mod source;
pub mod status;
#[cfg(test)]
mod tests;
pub mod values;

pub use metrics::Mapped;
pub use source::{
    Encoding, OtlpDecoder, Signal, decompress, encoding, has_delta, parse_logs, parse_metrics,
};
pub use status::RpcStatus;

/// The OTel project's generated protobuf types (`opentelemetry-proto`).
pub use opentelemetry_proto::tonic as proto;
