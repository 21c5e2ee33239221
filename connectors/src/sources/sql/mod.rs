//! SQL pull sources: PostgreSQL (`type = "postgres"`) and MySQL / MariaDB (`type = "mysql"`).
//!
//! A configured query runs for each event-time range the scheduler asks for, with `$__from` /
//! `$__to` (timestamps) and `$__from_ms` / `$__to_ms` (Unix ms) bound as parameters (never
//! spliced: [`query`]), in a read-only session with a statement timeout ([`source`]); the rows
//! become metrics, logs or events through a column mapping ([`mapping`], shared with
//! ClickHouse). Passwords come from an environment variable or a file and are redacted from
//! every error ([`error`]).

pub mod config;
pub mod error;
pub mod mapping;
pub mod query;
pub mod source;

#[cfg(test)]
mod tests;

pub use config::SqlConfig;
pub use error::PullError;
pub use mapping::{Cell, MappingError, OutputKind, RowMapping, Table, TimeUnit};
pub use query::Dialect;
pub use source::SqlSource;
