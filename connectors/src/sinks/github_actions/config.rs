//! Configuration of the `github_actions` provider.

use crate::sinks::Secret;

/// The REST API of github.com.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// `[providers.NAME]` with `kind = "github_actions"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubActionsConfig {
    /// REST API base: `https://api.github.com` (default) or GitHub Enterprise Server's
    /// `https://HOST/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// A token allowed to dispatch workflows (fine-grained: Actions write; classic: `repo`); a
    /// secret, sent as `Authorization: Bearer`.
    pub token: Secret,
    /// The account (user or organization) owning the repository.
    pub owner: String,
    /// The repository, without `.git`.
    pub repo: String,
    /// The workflow dispatched when a call names none: a file name (`deploy.yml`) or an id.
    #[serde(default)]
    pub workflow: Option<String>,
    /// An input of the workflow that receives the effect's idempotency key, so the workflow can
    /// deduplicate a dispatch sent again after a crash (GitHub itself cannot).
    #[serde(default)]
    pub key_input: Option<String>,
    /// Ask GitHub for the run's id and URL (`return_run_details`; answered with 200). Off by
    /// default: older GitHub Enterprise Server versions do not know the field.
    #[serde(default)]
    pub return_run_details: bool,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_owned()
}
