//! GitLab deployments: the deployment webhook event (docs.gitlab.com, "Webhook events",
//! Deployment events), sent with `X-Gitlab-Event: Deployment Hook` and `object_kind:
//! "deployment"`. The request is authenticated by the webhook's secret token, which GitLab sends
//! as is in `X-Gitlab-Token` (compared in constant time). One deployment keeps its
//! `deployment_id` from `running` to `success`, so that id is the `external_id` (`deployable_id`
//! is the CI job that ran it, and is absent for deployments created through the API).

#[cfg(test)]
mod tests;

use super::webhook;
use super::{DeployHook, DeployHookError, HookConfigError, HookRequest};
use aiops_schemas::deploy::{DeployReport, SourceStatus};
use serde::{Deserialize, Serialize};

/// Where `service` comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitlabServiceFrom {
    /// `project.path_with_namespace` (`root/test-deployment-webhooks`).
    #[default]
    ProjectPath,
    /// `project.name` (`test-deployment-webhooks`).
    ProjectName,
}

/// Settings of the `gitlab` hook.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabSettings {
    /// The webhook's secret token (resolved by the server; never logged). Must not be empty.
    pub secret: String,
    /// Where the service comes from.
    #[serde(default)]
    pub service_from: GitlabServiceFrom,
}

impl std::fmt::Debug for GitlabSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitlabSettings")
            .field("secret", &"***")
            .field("service_from", &self.service_from)
            .finish()
    }
}

/// The `gitlab` deploy webhook.
#[derive(Debug)]
pub struct GitlabHook {
    settings: GitlabSettings,
}

impl GitlabHook {
    /// Builds the hook.
    ///
    /// # Errors
    /// [`HookConfigError::EmptySecret`] when the secret is blank.
    pub fn new(settings: GitlabSettings) -> Result<Self, HookConfigError> {
        webhook::require_secret("gitlab", &settings.secret)?;
        Ok(Self { settings })
    }
}

// The parts of GitLab's deployment payload aiops reads.
#[derive(Deserialize)]
struct Project {
    name: Option<String>,
    path_with_namespace: Option<String>,
}

#[derive(Deserialize)]
struct User {
    username: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    object_kind: String,
    status: Option<String>,
    status_changed_at: Option<String>,
    deployment_id: Option<u64>,
    deployable_url: Option<String>,
    environment: Option<String>,
    project: Option<Project>,
    short_sha: Option<String>,
    user: Option<User>,
    commit_url: Option<String>,
    commit_title: Option<String>,
}

/// A deployment `status` as aiops tracks it; `None` for states that are not a deploy's progress
/// (`approved`/`rejected` approval events, or a state this build does not know).
fn status_of(status: &str) -> Option<SourceStatus> {
    Some(match status {
        "created" | "blocked" => SourceStatus::Pending,
        "running" => SourceStatus::InProgress,
        "success" => SourceStatus::Succeeded,
        "failed" => SourceStatus::Failed,
        "canceled" | "skipped" => SourceStatus::Cancelled,
        _ => return None,
    })
}

/// GitLab's webhook times: `2021-04-28 21:50:00 +0200` (the documented deployment example),
/// `2025-01-15 12:20:00 UTC`, or RFC 3339.
fn gitlab_time_ms(field: &str, value: &str) -> Result<i64, DeployHookError> {
    let v = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S %z") {
        return Ok(t.timestamp_millis());
    }
    if let Some(naive) = v.strip_suffix(" UTC")
        && let Ok(t) = chrono::NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S")
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    webhook::rfc3339_ms(field, v).map_err(|_| {
        DeployHookError::BadPayload(format!(
            "field `{field}` is not a time like `2021-04-28 21:50:00 +0200`: {:?}",
            webhook::truncate_on_char_boundary(v, 64)
        ))
    })
}

impl DeployHook for GitlabHook {
    fn parse(&self, req: &HookRequest<'_>) -> Result<Vec<DeployReport>, DeployHookError> {
        let token = req.header("x-gitlab-token").ok_or_else(|| {
            DeployHookError::Unauthenticated("missing X-Gitlab-Token header".into())
        })?;
        if !webhook::token_matches(&self.settings.secret, token) {
            return Err(DeployHookError::Unauthenticated(
                "X-Gitlab-Token does not match the configured secret token".into(),
            ));
        }
        match req.header("x-gitlab-event").map(str::trim) {
            Some("Deployment Hook") => {}
            None => {
                return Err(DeployHookError::BadPayload(
                    "missing X-Gitlab-Event header".into(),
                ));
            }
            Some(other) => {
                return Err(DeployHookError::Ignored(format!(
                    "GitLab event {:?} reports no deploy (enable only \"Deployment events\" on this webhook)",
                    webhook::truncate_on_char_boundary(other, 64)
                )));
            }
        }
        let p: Payload = webhook::parse_json(req.body)?;
        if p.object_kind != "deployment" {
            return Err(DeployHookError::Ignored(format!(
                "object_kind {:?} is not a deployment",
                webhook::truncate_on_char_boundary(&p.object_kind, 64)
            )));
        }
        let status_text = webhook::name_field("status", p.status.as_deref())?;
        let Some(status) = status_of(&status_text) else {
            return Err(DeployHookError::Ignored(format!(
                "deployment status {status_text:?} is not tracked"
            )));
        };
        let id = p
            .deployment_id
            .ok_or_else(|| DeployHookError::BadPayload("missing field `deployment_id`".into()))?;
        let project = p
            .project
            .as_ref()
            .ok_or_else(|| DeployHookError::BadPayload("missing field `project`".into()))?;
        let service = match self.settings.service_from {
            GitlabServiceFrom::ProjectPath => webhook::name_field(
                "project.path_with_namespace",
                project.path_with_namespace.as_deref(),
            )?,
            GitlabServiceFrom::ProjectName => {
                webhook::name_field("project.name", project.name.as_deref())?
            }
        };
        let at = p.status_changed_at.as_deref().ok_or_else(|| {
            DeployHookError::BadPayload("missing field `status_changed_at`".into())
        })?;
        Ok(vec![DeployReport {
            source: "gitlab".into(),
            external_id: Some(id.to_string()),
            service,
            environment: webhook::name_field("environment", p.environment.as_deref())?,
            version: webhook::name_field("short_sha", p.short_sha.as_deref())?,
            previous_version: None,
            strategy: Default::default(),
            requested_by: webhook::optional_name(
                "user.username",
                p.user.as_ref().and_then(|u| u.username.as_deref()),
            )?,
            status,
            at_ms: gitlab_time_ms("status_changed_at", at)?,
            description: webhook::description(p.commit_title.as_deref()),
            change: None,
            url: webhook::url(p.deployable_url.as_deref())
                .or_else(|| webhook::url(p.commit_url.as_deref())),
        }])
    }
}
