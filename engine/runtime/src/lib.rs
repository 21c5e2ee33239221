//! The aiops runtime: everything that reads the event log in order and appends back.
//!
//! Every state machine over the log is a [`Processor`] (deterministic, synchronous per record)
//! run by the one [`Driver`], which owns the recovery protocol: restore a matching checkpoint,
//! skip outputs already in the log, append a step's outputs in one call, checkpoint only after
//! them, tick when timers are due, wake on append (docs/runtime.md).
//!
//! - [`wire`]: every subject and message-id prefix, the content hash, the envelopes.
//! - [`processor`]: the trait, its outputs and its contract.
//! - [`driver`]: the driver and its blocks (dedup, checkpoint cadence, idle wait).
//! - [`store`]: the one checkpoint store.
//! - [`progress`]: a processor's position and command outcomes; append-and-wait.
//! - [`clock`]: the one place the runtime reads the wall clock.
//! - [`alerting`], [`templates`], [`workflows`], [`knowledge`], [`deploys`]: the processors (and
//!   the workflow executor).
//! - [`cluster`]: cluster mode — work units, leases, fences, checkpoints every node reads.
//! - [`pipelines`]: SQL pipelines — one position per pipeline and async DataFusion, so they
//!   keep their own loop, built from the driver's blocks.
//!
//! This crate has no HTTP server, CLI or Postgres wire: the server crate is the edge.

pub mod alerting;
pub mod clock;
pub mod cluster;
pub mod deploys;
pub mod driver;
pub mod knowledge;
pub mod pipelines;
pub mod processor;
pub mod progress;
pub mod store;
pub mod templates;
pub mod wire;
pub mod workflows;

pub use driver::{Driver, DriverError, DriverOptions};
pub use processor::{Outputs, Processor, ProcessorError, StepInfo};
pub use progress::{CommandError, CommandProgress};
