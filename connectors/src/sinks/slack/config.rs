//! Configuration of the `slack` provider.

use crate::sinks::Secret;

/// `[providers.NAME]` with `kind = "slack"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL (`https://hooks.slack.com/services/…`); a secret.
    pub url: Secret,
}
