//! HTTP JSON APIs (business systems) as a range source: a request per range (with `$__from` /
//! `$__to` substituted into query parameters or a JSON body), pagination, and a mapping from
//! JSON paths to metric, log or event rows.
//!
//! - [`config`]: `[[sources]] type = "http_json"` settings.
//! - [`path`]: the small JSON path syntax of the mapping.
//! - [`time`]: Unix ms ⇄ seconds, milliseconds and RFC 3339.
//! - [`source`]: the running [`RangeSource`](crate::sources::range::RangeSource).

pub mod config;
pub mod path;
pub mod source;
pub mod time;

pub use config::HttpJsonConfig;
pub use source::HttpJsonSource;

#[cfg(test)]
mod tests;
