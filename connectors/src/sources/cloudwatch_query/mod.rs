//! CloudWatch `GetMetricData` (`type = "cloudwatch"`): the configured metric queries (a metric
//! with dimensions and a statistic, or a metric math expression) for each range, as metric rows.
//!
//! Protocol: AWS JSON 1.0 (`POST /` with `X-Amz-Target: GraniteServiceVersion20100801.GetMetricData`
//! and `Content-Type: application/x-amz-json-1.0`), which CloudWatch serves beside its older query
//! protocol; JSON keeps the request and answer one serde type each and timestamps plain epoch
//! seconds. Requests are signed with SigV4 ([`sigv4`], service `monitoring`); pages follow
//! `NextToken`.

pub mod config;
pub mod sigv4;
pub mod source;

#[cfg(test)]
mod tests;

pub use config::{CloudWatchQuery, CloudWatchQueryConfig};
pub use source::CloudWatchQuerySource;
