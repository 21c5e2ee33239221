//! `jira`: create an issue through the Jira REST API v2 (Cloud, Server and Data Center).
//!
//! Config: `url` (base), and either `user` (email) + `token` (API token; Basic auth) or
//! `bearer` (a personal access token). Params: `project` (key), `summary`, `description?`,
//! `issuetype?` (default `Task`), `labels?`, `priority?`.
//!
//! Jira has no idempotency header, so each issue carries the label `aiops-<16 hex of the key's
//! SHA-256>` and the provider searches for it before creating (`GET /rest/api/2/search/jql`, the
//! Cloud endpoint, falling back to `GET /rest/api/2/search` on servers without it): a retry after
//! a crash returns the existing issue instead of creating a second one. Jira Cloud's search is
//! eventually consistent, so a retry within seconds of the first create may still miss it.
//! Creation is `POST /rest/api/2/issue`; Jira answers 201 `{id,key,self}` → output `{key,id}`.

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::JiraConfig;
pub use sink::Jira;
