//! Prometheus remote_write 1.0: snappy (block format) compressed protobuf `WriteRequest`s pushed
//! by Prometheus (or any compatible agent) to `POST /api/v1/write`, decoded into metric batches.
//! The encoder is here too, for tests, the load generator and the benchmarks.

mod proto;
mod source;
#[cfg(test)]
mod tests;

pub use proto::{Label, Sample, TimeSeries, WriteRequest};
pub use source::{MAX_DECOMPRESSED_BYTES, RemoteWriteDecoder, Series, encode_write_request};
