//! Configuration of the `pagerduty` provider.

use crate::sinks::Secret;

/// The Events API v2 endpoint.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// `[providers.NAME]` with `kind = "pagerduty"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The service integration's routing key; a secret.
    pub routing_key: Secret,
    /// The enqueue endpoint (EU accounts: `https://events.eu.pagerduty.com/v2/enqueue`).
    #[serde(default = "default_url")]
    pub url: String,
}

fn default_url() -> String {
    DEFAULT_URL.to_owned()
}
