//! Configuration of the `jira` provider.

use crate::sinks::Secret;

/// `[providers.NAME]` with `kind = "jira"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// Base URL, e.g. `https://example.atlassian.net` or `https://jira.example.com/jira`.
    pub url: String,
    /// Account email (Cloud) or user name, for Basic auth with `token`.
    #[serde(default)]
    pub user: Option<String>,
    /// API token for Basic auth with `user`; a secret.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Personal access token sent as `Authorization: Bearer` (instead of `user` + `token`).
    #[serde(default)]
    pub bearer: Option<Secret>,
}
