//! ClickHouse over its HTTP interface (`type = "clickhouse"`): the configured query for each
//! range, the range bound as ClickHouse query parameters (`{aiops_from:DateTime64(3, 'UTC')}`
//! with `param_aiops_from=…`), run with `readonly=1`, `max_execution_time` and a result-row
//! limit, answered as `JSONCompact`; rows mapped like the SQL sources
//! ([`crate::sources::sql::mapping`]).

pub mod config;
pub mod source;

#[cfg(test)]
mod tests;

pub use config::{ClickHouseConfig, ParameterMode};
pub use source::ClickHouseSource;
