//! Workflows at the edge: `/api/workflows…` and `/api/autoheal/…` ([`api`]) and the built-in
//! `sql`/`verify` calls answered by the read side ([`query`]). The processor, the executor and
//! the settings live in [`aiops_runtime::workflows`].

pub mod api;
pub mod query;

pub use aiops_runtime::workflows::*;
