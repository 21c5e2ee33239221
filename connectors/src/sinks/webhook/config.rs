//! Configuration of the `webhook` provider.

use crate::sinks::Secret;
use std::collections::BTreeMap;

/// `[providers.NAME]` with `kind = "webhook"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint (may carry a token, so it is treated as a secret).
    pub url: Secret,
    /// HMAC-SHA256 key for `X-Aiops-Signature`; no signature when absent.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Extra headers sent with every call (values may be credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
}
