//! Provider sinks: the services a workflow action calls (notifications, tickets, paging, Grafana
//! annotations, enrichment GETs, local commands). One trait ([`Provider`]), one list
//! ([`registry`]), one folder per provider.
//!
//! Contracts every provider keeps:
//! - **Idempotent on the effect.** [`EffectCall::idempotency_key`] is stable per effect; a provider
//!   passes it to the service where the service supports one (webhook `Idempotency-Key`, PagerDuty
//!   `dedup_key`, email `Message-ID`, a Jira label looked up before creating), so a retry after a
//!   crash does not act twice where the service lets us prevent it.
//! - **No secrets out.** `Debug`, [`SinkError`] messages, logs and [`EffectOutput`] never carry
//!   tokens, passwords, HMAC keys or webhook URLs (which embed tokens); errors name the provider
//!   kind and at most the host.
//! - **Guarded egress.** Every HTTP provider goes through [`outbound::OutboundPolicy`], which
//!   refuses loopback, private, link-local and metadata targets unless explicitly allowed — on the
//!   URL, after DNS resolution and on every redirect hop.
//!
//! Modules: [`error`] (retryable vs permanent), [`outbound`] (SSRF guard and the HTTP client),
//! [`registry`] (config → running provider), and the providers [`webhook`], [`slack`], [`teams`],
//! [`feishu`], [`dingtalk`], [`email`], [`jira`], [`pagerduty`], [`grafana`], [`http`], [`exec`],
//! [`github_actions`] and [`argocd`] (deploy actions: a workflow dispatch, an application sync),
//! and [`llm`] (chat models — OpenAI-compatible and Anthropic — for workflow steps and the
//! knowledge assistant, whose calls are recorded before use).

pub mod error;
/// The outbound guard moved to [`crate::outbound`] (pull sources and the engine use it too).
pub use crate::outbound;
pub mod registry;

pub mod argocd;
pub mod dingtalk;
pub mod email;
pub mod exec;
pub mod feishu;
pub mod github_actions;
pub mod grafana;
pub mod http;
pub mod jira;
pub mod llm;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod webhook;

mod clock;
mod params;
mod secret;
pub(crate) mod transport;

#[cfg(test)]
pub(crate) mod testing;

pub use error::SinkError;
pub use outbound::OutboundPolicy;
pub use registry::{ProviderContext, build_provider, provider_kinds};
pub use secret::{REDACTED, Redactor, Secret};

/// A rendered call: what a workflow action asks a provider to do (templates already rendered,
/// secrets already substituted).
#[derive(Debug, Clone, Copy)]
pub struct EffectCall<'a> {
    /// Stable per effect; providers pass it to the service where it supports one.
    pub idempotency_key: &'a str,
    /// The action's `with:` block.
    pub params: &'a serde_json::Map<String, serde_json::Value>,
}

/// What came back, small and secret-free: it is written to the event log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EffectOutput {
    /// The outcome in the service's terms, e.g. `"200"`, `"202"`, `"exit 0"`.
    pub status: String,
    /// A parsed, size-limited answer, e.g. a Jira issue key or the tail of a command's stdout.
    pub response: serde_json::Value,
}

/// A service a workflow action can call. Built from configuration by [`build_provider`].
///
/// Implementations MUST be idempotent on [`EffectCall::idempotency_key`] where the service allows
/// it, MUST NOT print secrets in `Debug`, and MUST classify failures with [`SinkError::retryable`]
/// truthfully: the engine retries only what is retryable.
///
/// Cancellation: dropping the future of [`Provider::call`] aborts the request (or kills the
/// process, for `exec`); whether the service acted is then unknown, which is why the idempotency
/// key exists.
///
/// ```
/// # async fn demo() -> Result<(), aiops_connectors::sinks::SinkError> {
/// use aiops_connectors::sinks::{EffectCall, ProviderContext, build_provider};
/// let config = serde_json::json!({"kind": "exec", "commands": {"hello": {"argv": ["/bin/echo"]}}});
/// let provider = build_provider("hello", &config, &ProviderContext::default())?;
/// let params = serde_json::json!({"command": "hello", "args": ["world"]});
/// let params = params.as_object().cloned().unwrap_or_default();
/// provider.validate(&params)?;
/// let out = provider.call(&EffectCall { idempotency_key: "k1", params: &params }).await?;
/// assert_eq!(out.status, "exit 0");
/// # Ok(()) }
/// ```
#[async_trait::async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider kind, as written in `kind = "..."` (e.g. `"slack"`).
    fn kind(&self) -> &'static str;

    /// The target of this call for rate limiting and audit (e.g. `"hooks.slack.com"`,
    /// `"ops@example.com,b@x"`, `"PROJ"`, `"restart-service"`). Never contains secrets.
    fn target(&self, call: &EffectCall<'_>) -> String;

    /// Checks params without side effects (at workflow load and before an approval).
    ///
    /// # Errors
    /// [`SinkError::Params`] naming the bad field.
    fn validate(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), SinkError>;

    /// Performs the effect.
    ///
    /// # Errors
    /// Any [`SinkError`]; [`SinkError::retryable`] tells whether trying again can help.
    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError>;
}
