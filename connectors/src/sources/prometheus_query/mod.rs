//! Prometheus / VictoriaMetrics HTTP query API as a range source: a PromQL expression evaluated
//! with `query_range` over each scheduled range, its matrix result stored as metric rows.
//!
//! - [`config`]: `[[sources]] type = "prometheus"` settings, validated into a source.
//! - [`source`]: the running [`RangeSource`](crate::sources::range::RangeSource).

pub mod config;
pub mod source;

pub use config::PrometheusQueryConfig;
pub use source::PrometheusQuerySource;

#[cfg(test)]
mod tests;
