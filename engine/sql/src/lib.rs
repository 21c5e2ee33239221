//! SQL pipelines: what aiops computes, written as SQL files and planned by DataFusion.
//!
//! A pipeline file holds one statement, `INSERT INTO <output> SELECT … FROM <input> …`, over the
//! input streams `metrics`, `logs`, `alerts` and `events` (the Arrow schemas of
//! `aiops-schemas`). This crate parses and plans such files and reports problems as
//! `file:line:column: reason`; [`runtime`] executes them over micro-batches in event time.
//!
//! - [`catalog`]: the DataFusion session pipelines are planned in: input tables and functions.
//! - [`window`]: event-time window functions (`tumble`, `hop`, `session`).
//! - [`runtime`]: the streaming runtime: windows, watermarks, lateness, state, checkpoints.
//! - [`counter`]: counter-aware aggregates (`increase`, `rate`) with Prometheus reset semantics.
//! - [`pipeline`]: parsing and checking one pipeline file.
//! - [`reference`]: static reference tables (CSV or Parquet files) pipelines can join with.
//! - [`error`]: the positioned error of a pipeline file.
//! - [`settings`]: the `-- @key: value` settings of a pipeline's header comment.
//! - [`alert_rule`]: the stage that turns an alert rule's rows into alerts with `for` semantics.
//! - [`detect`]: `anomaly()` and `time_until()`: per-series detectors run after each window.

pub mod alert_rule;
pub mod catalog;
pub mod counter;
pub mod detect;
pub mod error;
pub mod pipeline;
pub mod reference;
pub mod runtime;
pub mod settings;
pub mod window;

pub use alert_rule::AlertRule;
pub use detect::DetectStage;
pub use error::PipelineError;
pub use pipeline::{CheckedPipeline, check, check_file};
pub use runtime::{Emission, EmissionKind, RuntimeConfig, StreamingPipeline};
pub use settings::PipelineSettings;
