//! Detectors of aiops: per-series anomaly detection, forecasting and log template mining.
//!
//! Everything here is a deterministic state machine over event time: the same points in the same
//! order give the same verdicts, bit for bit, and every state serializes (serde) so the engine
//! can checkpoint it and `rebuild` can recreate it from the log. No I/O, no wall clock, no
//! DataFusion: the SQL core and the bench harness drive these types.
//!
//! - [`series`]: the [`Detector`] trait every anomaly detector implements, its [`Verdict`].
//! - [`registry`]: the one list of detectors, built from a [`DetectorConfig`].
//! - [`robust_z`], [`ewma`], [`seasonal`], [`changepoint`] (CUSUM): the per-series detectors;
//!   [`ensemble`]: all of them combined into one calibrated score (the default detector).
//! - [`forecast`]: trend + seasonality forecast with a prediction interval, time until a
//!   threshold is crossed.
//! - [`calibrate`]: the common score scale (tail probability → surprise → score);
//!   [`stats`]: rolling median/MAD, cadence and gap detection, counter rates.
//! - [`drain`]: streaming Drain log template mining with masking and stable template ids.
//! - [`templates`]: per-service template mining over event time: changes, per-window counts,
//!   new-template and surge anomalies.

pub mod calibrate;
pub mod changepoint;
pub mod context;
pub mod drain;
pub mod ensemble;
pub mod ewma;
pub mod forecast;
pub mod registry;
pub mod robust_z;
pub mod seasonal;
pub mod series;
pub mod stats;
pub mod templates;

pub use registry::{AnyDetector, DetectorConfig, DetectorError};
pub use series::{Detector, Direction, Signal, Verdict};
