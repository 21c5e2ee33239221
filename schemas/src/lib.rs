//! Event kinds, their Arrow schemas and the codec that puts a batch of events into one log message.
//!
//! Every input to aiops is an event of one [`Kind`]; events travel as Arrow [`RecordBatch`]es whose
//! schema is fixed per kind and [`SCHEMA_VERSION`]. This crate does no I/O.
//!
//! - [`kind`]: the event kinds and their log subjects.
//! - [`schema`]: one Arrow schema per kind.
//! - [`builders`]: append-only builders that produce batches of each kind without per-event allocation.
//! - [`codec`]: the versioned binary form of one batch in one log message, with its [`Envelope`].
//! - [`partition`]: the stable hash that assigns each event to a log partition.
//! - [`deploy`]: what a source of deployments reports (one observation of one deploy).
//! - [`reference`]: the human-readable reference of every kind (docs/events.md is checked against it).
//!
//! [`RecordBatch`]: arrow_array::RecordBatch

pub mod builders;
pub mod codec;
pub mod deploy;
pub mod derived;
pub mod kind;
pub mod partition;
pub mod reference;
pub mod schema;

pub use builders::{AlertBatchBuilder, EventBatchBuilder, LogBatchBuilder, MetricBatchBuilder};
pub use codec::{CodecError, Envelope, decode, decode_envelope, encode};
pub use kind::Kind;
pub use schema::{SCHEMA_VERSION, schema_for};

/// Re-exported so dependants use the same Arrow version as the schemas.
pub use arrow_array;
/// Re-exported so dependants use the same Arrow version as the schemas.
pub use arrow_schema;
