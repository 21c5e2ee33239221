//! Configuration of the `grafana` provider.

use crate::sinks::Secret;

/// `[providers.NAME]` with `kind = "grafana"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrafanaConfig {
    /// Grafana's base URL, e.g. `https://grafana.example.com` or `https://x/grafana`.
    pub url: String,
    /// A service-account token with annotation write access; a secret.
    pub token: Secret,
}
