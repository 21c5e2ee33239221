//! Alert management as a deterministic state machine over the event log.
//!
//! The engine takes alert observations (from every source, already in the log) and control events
//! (silences, acknowledgements) in log order, with time taken from the log itself, and produces
//! decisions — alert state changes, notification intents, incident changes — that the server
//! appends back to the log. Nothing here reads a clock or does I/O, so replaying the same log
//! gives the same decisions (DESIGN.md invariants 1 and 2).

pub mod config;
pub mod decision;
pub mod engine;
pub mod incident;
pub mod matcher;
pub mod model;
pub mod route;
pub mod secret_fields;
pub mod silence;
pub mod stats;
pub mod timeinterval;
pub mod yaml;

pub use config::AlertingConfig;
pub use decision::Decision;
pub use engine::{AlertEngine, Control, Gauges};
