//! Prometheus-style scrapes: GET targets' `/metrics` in the text exposition format 0.0.4 on an
//! interval, with `job`/`instance` labels and an `up` sample per target, like Prometheus does.

mod config;
mod parse;
mod source;
#[cfg(test)]
mod tests;

pub use config::ScrapeConfig;
pub use parse::{ParseError, parse_text};
pub use source::ScrapeSource;
