//! Workflows at the edge: the service the HTTP API and the read side share ([`service`]), the
//! built-in `sql`/`verify` calls answered by the read side ([`query`]) and the built-in
//! providers `context-provider` and `incident-db` over the engine's own data ([`builtin`]). The
//! processor, the executor and the settings live in [`aiops_runtime::workflows`].

pub mod builtin;
pub mod query;
pub mod service;

pub use aiops_runtime::workflows::*;
