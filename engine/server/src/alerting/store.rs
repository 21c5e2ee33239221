//! The alerting checkpoint: the engine's single-state checkpoint store ([`crate::checkpoint`]).

pub use crate::checkpoint::{Checkpoint, Store, StoreError};
