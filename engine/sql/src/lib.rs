//! SQL pipelines: what aiops computes, written as SQL files and planned by DataFusion.
//!
//! A pipeline file holds one statement, `INSERT INTO <output> SELECT … FROM <input> …`, over the
//! input streams `metrics`, `logs`, `alerts` and `events` (the Arrow schemas of
//! `aiops-schemas`). This crate parses and plans such files and reports problems as
//! `file:line:column: reason`; the streaming runtime that executes the plans comes with the rest
//! of the streaming core.
//!
//! - [`catalog`]: the DataFusion session pipelines are planned in: input tables and functions.
//! - [`window`]: event-time window functions (`tumble`).
//! - [`pipeline`]: parsing and checking one pipeline file.
//! - [`error`]: the positioned error of a pipeline file.

pub mod catalog;
pub mod error;
pub mod pipeline;
pub mod window;

pub use error::PipelineError;
pub use pipeline::{CheckedPipeline, check, check_file};
