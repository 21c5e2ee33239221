//! Pipelines at the edge: business metrics and SQL alert rules as pipeline files over HTTP
//! ([`api`]). Loading, running, rebuilding and replaying pipelines live in
//! [`aiops_runtime::pipelines`].

pub mod api;

pub use aiops_runtime::pipelines::*;
