//! Workflows at the edge: the service the HTTP API and the read side share ([`service`]) and the
//! built-in `sql`/`verify` calls answered by the read side ([`query`]). The processor, the
//! executor and the settings live in [`aiops_runtime::workflows`].

pub mod query;
pub mod service;

pub use aiops_runtime::workflows::*;
