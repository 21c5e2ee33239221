//! Sources of deployments: webhooks that CI/CD systems call when a deploy starts, progresses or
//! ends (GitHub `deployment` / `deployment_status`, GitLab deployment events, Argo CD and Flux
//! notifications) and the Kubernetes rollout watcher that follows a Deployment the way
//! `kubectl rollout status` judges it. Each turns what it sees into
//! [`aiops_schemas::deploy::DeployReport`]s; the engine records them. One folder per source, one
//! [`DeployHook`] trait and one registry ([`hook_kinds`], [`build_hook`]) for the webhooks.

pub mod argocd;
pub mod flux;
pub mod github;
pub mod gitlab;
pub mod kubernetes;
mod webhook;

use aiops_schemas::deploy::DeployReport;

/// A webhook request as the hook sees it: header names lower-cased, the raw body (signatures
/// are computed over the exact bytes).
#[derive(Debug, Clone, Copy)]
pub struct HookRequest<'a> {
    /// Headers, names lower-cased; a name may repeat.
    pub headers: &'a [(String, String)],
    /// The body as received.
    pub body: &'a [u8],
}

impl HookRequest<'_> {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a webhook request was not accepted. Every variant is the caller's to fix (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeployHookError {
    /// The signature or token is missing or wrong (401): nothing is recorded.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The body is not the documented payload (400), naming what is wrong.
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// A valid event that reports no deploy (e.g. a `ping`, or a status aiops does not track):
    /// accepted, nothing recorded (202 with this reason).
    #[error("ignored: {0}")]
    Ignored(String),
}

/// A webhook that reports deploys.
pub trait DeployHook: Send + Sync + std::fmt::Debug {
    /// Checks the request's authenticity (signature or token, compared in constant time) and
    /// parses it into reports.
    ///
    /// # Errors
    /// [`DeployHookError`]: unauthenticated, bad payload, or nothing to record.
    fn parse(&self, req: &HookRequest<'_>) -> Result<Vec<DeployReport>, DeployHookError>;
}

/// One webhook kind of this build: the `{kind}` of `POST /api/deploy/hooks/{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookKind {
    /// The name used in the route and in the config (`github`, `gitlab`, `argocd`, `flux`).
    pub name: &'static str,
    /// One sentence for the docs and `--help`.
    pub doc: &'static str,
}

/// Every deploy webhook of this build, in the order the docs list them.
pub fn hook_kinds() -> &'static [HookKind] {
    &[
        HookKind {
            name: "github",
            doc: "GitHub `deployment` and `deployment_status` events, `X-Hub-Signature-256` checked.",
        },
        HookKind {
            name: "gitlab",
            doc: "GitLab deployment events (`Deployment Hook`), `X-Gitlab-Token` checked.",
        },
        HookKind {
            name: "argocd",
            doc: "Argo CD Notifications webhook with the aiops template, a shared-secret header checked.",
        },
        HookKind {
            name: "flux",
            doc: "Flux notification-controller `generic-hmac` provider events, `X-Signature` checked.",
        },
    ]
}

/// Why a deploy webhook could not be built from its settings: the operator's to fix in the
/// config before the route can accept anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookConfigError {
    /// No webhook of that kind exists in this build.
    #[error("unknown deploy webhook kind {0:?} (known: github, gitlab, argocd, flux)")]
    UnknownKind(String),
    /// The secret resolved to nothing: refusing, since an empty secret would accept anyone.
    #[error(
        "deploy webhook `{kind}`: the secret is empty; set it (an empty secret would accept any request)"
    )]
    EmptySecret {
        /// The webhook kind.
        kind: &'static str,
    },
    /// A setting is missing, unknown or of the wrong type; the message names it.
    #[error("deploy webhook `{kind}` settings: {reason}")]
    BadSettings {
        /// The webhook kind.
        kind: &'static str,
        /// What is wrong, prefixed with the setting's path when known.
        reason: String,
    },
}

/// Builds the webhook `kind` from its settings (JSON: the hook's settings struct, with the secret
/// already resolved from the environment or secret file by the caller).
///
/// # Errors
/// [`HookConfigError`]: unknown kind, empty secret, or a bad setting (named).
pub fn build_hook(
    kind: &str,
    settings: &serde_json::Value,
) -> Result<Box<dyn DeployHook>, HookConfigError> {
    fn settings_of<T: serde::de::DeserializeOwned>(
        kind: &'static str,
        v: &serde_json::Value,
    ) -> Result<T, HookConfigError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let reason = if path == "." || path.is_empty() {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            };
            HookConfigError::BadSettings { kind, reason }
        })
    }
    match kind {
        "github" => Ok(Box::new(github::GithubHook::new(settings_of(
            "github", settings,
        )?)?)),
        "gitlab" => Ok(Box::new(gitlab::GitlabHook::new(settings_of(
            "gitlab", settings,
        )?)?)),
        "argocd" => Ok(Box::new(argocd::ArgocdHook::new(settings_of(
            "argocd", settings,
        )?)?)),
        "flux" => Ok(Box::new(flux::FluxHook::new(settings_of(
            "flux", settings,
        )?)?)),
        other => Err(HookConfigError::UnknownKind(other.to_string())),
    }
}

#[cfg(test)]
mod registry_tests;
