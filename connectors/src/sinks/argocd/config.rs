//! Configuration of the `argocd` provider.

use crate::sinks::Secret;

/// `[providers.NAME]` with `kind = "argocd"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgoCdConfig {
    /// The Argo CD API server, e.g. `https://argocd.example.com` (with the server's
    /// `--rootpath`, if it has one: `https://example.com/argocd`).
    pub server: String,
    /// An Argo CD API token (`argocd account generate-token`); a secret.
    pub token: Secret,
    /// The namespace of the Application resources, when applications live outside Argo CD's
    /// own namespace ("apps in any namespace").
    #[serde(default)]
    pub app_namespace: Option<String>,
}
