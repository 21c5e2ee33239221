//! Configuration of the `teams` provider.

use crate::sinks::Secret;

/// `[providers.NAME]` with `kind = "teams"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The workflow's HTTP trigger URL (its `sig` query parameter is a credential); a secret.
    pub url: Secret,
}
