//! Configuration of the `http` provider.

use crate::sinks::Secret;
use std::collections::BTreeMap;

/// `[providers.NAME]` with `kind = "http"`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Base URL that relative `url` params are resolved against.
    #[serde(default)]
    pub url: Option<String>,
    /// Headers sent with every request (e.g. an API token).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
}
