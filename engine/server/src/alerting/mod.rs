//! Alert management at the edge: Alertmanager's API v2 subset, incidents and statistics over
//! HTTP ([`api`]). The processor, its codec and settings live in [`aiops_runtime::alerting`].

pub mod api;

pub use aiops_runtime::alerting::*;
