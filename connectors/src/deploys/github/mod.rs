//! GitHub deployments: the `deployment` and `deployment_status` webhook events
//! (docs.github.com, "Webhook events and payloads"). The request is authenticated by
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` under the webhook's secret; the
//! event is named by `X-GitHub-Event` (`ping` is accepted and ignored). A deployment and all its
//! later statuses share the deployment id as `external_id`, so they are one deploy.

#[cfg(test)]
mod tests;

use super::webhook::{self, HmacAlg};
use super::{DeployHook, DeployHookError, HookConfigError, HookRequest};
use aiops_schemas::deploy::{DeployReport, SourceStatus};
use serde::{Deserialize, Serialize};

/// Where `version` comes from when the deployment's `payload` does not carry one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GithubVersionFrom {
    /// The full commit SHA (`deployment.sha`).
    #[default]
    Sha,
    /// The first 8 hex digits of the SHA (what GitLab calls `short_sha`).
    ShortSha,
    /// The ref that was deployed (`deployment.ref`: a branch, tag or SHA).
    Ref,
}

/// Where `service` comes from when the deployment's `payload` does not carry one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GithubServiceFrom {
    /// `repository.name` (`Hello-World`).
    #[default]
    RepositoryName,
    /// `repository.full_name` (`Codertocat/Hello-World`).
    RepositoryFullName,
}

/// Settings of the `github` hook.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// The webhook secret (resolved by the server from the environment or a secret file; never
    /// logged). Must not be empty.
    pub secret: String,
    /// Key of `deployment.payload` that names the service; when absent, see `service_from`.
    #[serde(default = "default_service_key")]
    pub service_key: String,
    /// Where the service comes from when the payload has no `service_key`.
    #[serde(default)]
    pub service_from: GithubServiceFrom,
    /// Key of `deployment.payload` that names the version; when absent, see `version_from`.
    #[serde(default = "default_version_key")]
    pub version_key: String,
    /// Where the version comes from when the payload has no `version_key`.
    #[serde(default)]
    pub version_from: GithubVersionFrom,
}

fn default_service_key() -> String {
    "service".into()
}
fn default_version_key() -> String {
    "version".into()
}

impl std::fmt::Debug for GithubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubSettings")
            .field("secret", &"***")
            .field("service_key", &self.service_key)
            .field("service_from", &self.service_from)
            .field("version_key", &self.version_key)
            .field("version_from", &self.version_from)
            .finish()
    }
}

/// The `github` deploy webhook.
#[derive(Debug)]
pub struct GithubHook {
    settings: GithubSettings,
}

impl GithubHook {
    /// Builds the hook.
    ///
    /// # Errors
    /// [`HookConfigError::EmptySecret`] when the secret is blank.
    pub fn new(settings: GithubSettings) -> Result<Self, HookConfigError> {
        webhook::require_secret("github", &settings.secret)?;
        Ok(Self { settings })
    }
}

// The parts of GitHub's payloads aiops reads; everything else is ignored.
#[derive(Deserialize)]
struct User {
    login: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    name: Option<String>,
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct Deployment {
    id: u64,
    sha: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    #[serde(default)]
    payload: serde_json::Value,
    environment: Option<String>,
    description: Option<String>,
    creator: Option<User>,
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct DeploymentStatus {
    state: String,
    description: Option<String>,
    target_url: Option<String>,
    log_url: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct DeploymentEvent {
    deployment: Deployment,
    repository: Repository,
    sender: Option<User>,
}

#[derive(Deserialize)]
struct DeploymentStatusEvent {
    deployment_status: DeploymentStatus,
    deployment: Deployment,
    repository: Repository,
    sender: Option<User>,
}

/// GitHub's deployment status `state` as aiops tracks it; `None` for a state it does not know.
fn status_of(state: &str) -> Option<SourceStatus> {
    Some(match state {
        "pending" | "queued" | "waiting" => SourceStatus::Pending,
        "in_progress" => SourceStatus::InProgress,
        "success" => SourceStatus::Succeeded,
        "failure" | "error" => SourceStatus::Failed,
        "inactive" => SourceStatus::Cancelled,
        _ => return None,
    })
}

/// A string value of `payload[key]`; the payload may be an object or a JSON string holding one
/// (the REST API accepts both).
fn payload_str(payload: &serde_json::Value, key: &str) -> Option<String> {
    match payload {
        serde_json::Value::Object(m) => m.get(key).and_then(|v| v.as_str()).map(str::to_string),
        serde_json::Value::String(s) => serde_json::from_str::<serde_json::Value>(s)
            .ok()
            .and_then(|v| v.get(key).and_then(|v| v.as_str()).map(str::to_string)),
        _ => None,
    }
}

impl GithubHook {
    /// The report common to both events: who, what, where.
    fn base(
        &self,
        d: &Deployment,
        repo: &Repository,
        sender: Option<&User>,
    ) -> Result<DeployReport, DeployHookError> {
        let s = &self.settings;
        let service = match payload_str(&d.payload, &s.service_key) {
            Some(v) => {
                webhook::name_field(&format!("deployment.payload.{}", s.service_key), Some(&v))?
            }
            None => match s.service_from {
                GithubServiceFrom::RepositoryName => {
                    webhook::name_field("repository.name", repo.name.as_deref())?
                }
                GithubServiceFrom::RepositoryFullName => {
                    webhook::name_field("repository.full_name", repo.full_name.as_deref())?
                }
            },
        };
        let version = match payload_str(&d.payload, &s.version_key) {
            Some(v) => {
                webhook::name_field(&format!("deployment.payload.{}", s.version_key), Some(&v))?
            }
            None => match s.version_from {
                GithubVersionFrom::Sha => webhook::name_field("deployment.sha", d.sha.as_deref())?,
                GithubVersionFrom::ShortSha => {
                    let sha = webhook::name_field("deployment.sha", d.sha.as_deref())?;
                    webhook::truncate_on_char_boundary(&sha, 8).to_string()
                }
                GithubVersionFrom::Ref => {
                    webhook::name_field("deployment.ref", d.git_ref.as_deref())?
                }
            },
        };
        let environment = webhook::name_field("deployment.environment", d.environment.as_deref())?;
        let requested_by = match d.creator.as_ref().and_then(|u| u.login.as_deref()) {
            Some(login) => webhook::optional_name("deployment.creator.login", Some(login))?,
            None => {
                webhook::optional_name("sender.login", sender.and_then(|u| u.login.as_deref()))?
            }
        };
        Ok(DeployReport {
            source: "github".into(),
            external_id: Some(d.id.to_string()),
            service,
            environment,
            version,
            requested_by,
            description: webhook::description(d.description.as_deref()),
            ..DeployReport::default()
        })
    }
}

impl DeployHook for GithubHook {
    fn parse(&self, req: &HookRequest<'_>) -> Result<Vec<DeployReport>, DeployHookError> {
        let header = req.header("x-hub-signature-256").ok_or_else(|| {
            DeployHookError::Unauthenticated("missing X-Hub-Signature-256 header".into())
        })?;
        let hex_sig = header.trim().strip_prefix("sha256=").ok_or_else(|| {
            DeployHookError::Unauthenticated("X-Hub-Signature-256 must be `sha256=<hex>`".into())
        })?;
        webhook::verify_hmac(HmacAlg::Sha256, &self.settings.secret, req.body, hex_sig)?;

        let event = req.header("x-github-event").map(str::trim).unwrap_or("");
        match event {
            "ping" => Err(DeployHookError::Ignored("ping".into())),
            "deployment" => {
                let ev: DeploymentEvent = webhook::parse_json(req.body)?;
                let mut r = self.base(&ev.deployment, &ev.repository, ev.sender.as_ref())?;
                r.status = SourceStatus::Pending;
                let at = ev.deployment.created_at.as_deref().ok_or_else(|| {
                    DeployHookError::BadPayload("missing field `deployment.created_at`".into())
                })?;
                r.at_ms = webhook::rfc3339_ms("deployment.created_at", at)?;
                Ok(vec![r])
            }
            "deployment_status" => {
                let ev: DeploymentStatusEvent = webhook::parse_json(req.body)?;
                let st = &ev.deployment_status;
                let Some(status) = status_of(&st.state) else {
                    return Err(DeployHookError::Ignored(format!(
                        "deployment status state {:?} is not tracked",
                        webhook::truncate_on_char_boundary(&st.state, 64)
                    )));
                };
                let mut r = self.base(&ev.deployment, &ev.repository, ev.sender.as_ref())?;
                r.status = status;
                let (field, at) = match (&st.updated_at, &st.created_at) {
                    (Some(t), _) => ("deployment_status.updated_at", t),
                    (None, Some(t)) => ("deployment_status.created_at", t),
                    (None, None) => {
                        return Err(DeployHookError::BadPayload(
                            "missing field `deployment_status.updated_at`".into(),
                        ));
                    }
                };
                r.at_ms = webhook::rfc3339_ms(field, at)?;
                r.url = webhook::url(st.target_url.as_deref())
                    .or_else(|| webhook::url(st.log_url.as_deref()));
                if let Some(d) = webhook::description(st.description.as_deref()) {
                    r.description = Some(d);
                }
                Ok(vec![r])
            }
            "" => Err(DeployHookError::BadPayload(
                "missing X-GitHub-Event header".into(),
            )),
            other => Err(DeployHookError::Ignored(format!(
                "GitHub event {:?} reports no deploy (subscribe the webhook to `deployment` and `deployment_status` only)",
                webhook::truncate_on_char_boundary(other, 64)
            ))),
        }
    }
}
