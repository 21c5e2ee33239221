//! Cluster mode: several engine processes on one clustered log (NATS JetStream), each stateful
//! processor a **work unit** with exactly one owner at a time (docs/cluster.md).
//!
//! - [`assign`]: which live node should own which unit (pure, the same on every node).
//! - [`member`]: a node's membership loop — its liveness lease, the leases of the units it
//!   owns, taking units over (lease, then fence, then the unit's driver) and handing them on.
//! - [`unit`]: the [`Unit`] trait and [`DriverUnit`], a [`crate::Processor`] as a unit: owned,
//!   it runs the driver appending fenced outputs and writing checkpoints to the cluster's blob
//!   store; otherwise it follows the log without appending, so every node answers reads.
//! - [`task`]: [`TaskUnit`], a background task only the owner runs (archive compaction, pull
//!   sources).
//!
//! Safety does not rest on timing alone: a unit's appends carry a fence
//! ([`aiops_log::Fence`]) that its successor's takeover invalidates, so an owner that was
//! paused past its lease (SIGSTOP, a long GC-like stall, a partition) has its appends refused
//! and stops instead of duplicating outputs.

pub mod assign;
pub mod member;
pub mod task;
pub mod unit;

pub use member::{ClusterBoard, ClusterSettings, Member, UnitStatus};
pub use task::{TaskFuture, TaskUnit};
pub use unit::{DriverUnit, Unit, UnitError};
