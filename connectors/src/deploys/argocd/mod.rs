//! Argo CD deployments through Argo CD Notifications' webhook service. Argo CD sends whatever
//! body a template renders, so aiops defines the template users configure (docs/deploys.md,
//! "Argo CD": `service.webhook.aiops`, `template.aiops-app-deployed` … and the triggers
//! `on-deployed`, `on-sync-failed`, `on-health-degraded`, `on-sync-running`). Argo CD does not
//! sign requests: the service adds a shared secret header (by default `Authorization: Bearer
//! $aiops-token`), compared here in constant time. `external_id` is `<app>@<revision>`, so all
//! notifications about one revision of one app are one deploy.

#[cfg(test)]
mod tests;

use super::webhook;
use super::{DeployHook, DeployHookError, HookConfigError, HookRequest};
use aiops_schemas::deploy::{DeployReport, SourceStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of the `argocd` hook.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArgocdSettings {
    /// The shared secret (resolved by the server; never logged). Must not be empty.
    pub secret: String,
    /// The header carrying it (lower-case). With `authorization`, the value is `Bearer
    /// <secret>`; with any other header, the value is the secret itself.
    #[serde(default = "default_header")]
    pub header: String,
    /// A label or annotation of the Application naming the service (labels are looked up
    /// first); when unset or absent, the Application's name is the service.
    #[serde(default)]
    pub service_label: Option<String>,
    /// A label or annotation naming the environment; when unset or absent, `environment`.
    #[serde(default)]
    pub environment_label: Option<String>,
    /// The environment when no label names one; when unset, the destination namespace.
    #[serde(default)]
    pub environment: Option<String>,
}

fn default_header() -> String {
    "authorization".into()
}

impl std::fmt::Debug for ArgocdSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgocdSettings")
            .field("secret", &"***")
            .field("header", &self.header)
            .field("service_label", &self.service_label)
            .field("environment_label", &self.environment_label)
            .field("environment", &self.environment)
            .finish()
    }
}

/// The `argocd` deploy webhook.
#[derive(Debug)]
pub struct ArgocdHook {
    settings: ArgocdSettings,
}

impl ArgocdHook {
    /// Builds the hook.
    ///
    /// # Errors
    /// [`HookConfigError::EmptySecret`] when the secret is blank, [`HookConfigError::BadSettings`]
    /// when the header name is blank.
    pub fn new(mut settings: ArgocdSettings) -> Result<Self, HookConfigError> {
        webhook::require_secret("argocd", &settings.secret)?;
        settings.header = settings.header.trim().to_ascii_lowercase();
        if settings.header.is_empty() {
            return Err(HookConfigError::BadSettings {
                kind: "argocd",
                reason: "header: must name the header carrying the secret".into(),
            });
        }
        Ok(Self { settings })
    }
}

/// Who started the sync (`.app.status.operationState.operation.initiatedBy`).
#[derive(Deserialize)]
struct InitiatedBy {
    username: Option<String>,
    #[serde(default)]
    automated: bool,
}

/// The body the aiops template renders. Every field may be `null` (toJson of a missing key) or
/// `"<no value>"` (a quoted template of a missing key): both mean absent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    app: Option<String>,
    namespace: Option<String>,
    revision: Option<String>,
    sync_status: Option<String>,
    health_status: Option<String>,
    phase: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
    message: Option<String>,
    initiated_by: Option<InitiatedBy>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    url: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "<no value>")
}

/// Where the notification says the app stands. Failure wins (a degraded app or a failed
/// operation), then completion (Succeeded + Synced + Healthy), then progress.
fn status_of(b: &Body) -> Option<SourceStatus> {
    let phase = present(&b.phase);
    let health = present(&b.health_status);
    let sync = present(&b.sync_status);
    if matches!(phase, Some("Failed" | "Error")) || health == Some("Degraded") {
        return Some(SourceStatus::Failed);
    }
    if phase == Some("Succeeded") && sync == Some("Synced") && health == Some("Healthy") {
        return Some(SourceStatus::Succeeded);
    }
    if matches!(phase, Some("Running" | "Succeeded")) || health == Some("Progressing") {
        return Some(SourceStatus::InProgress);
    }
    None
}

impl ArgocdHook {
    fn label<'a>(&self, b: &'a Body, key: &str) -> Option<&'a str> {
        b.labels
            .as_ref()
            .and_then(|m| m.get(key))
            .or_else(|| b.annotations.as_ref().and_then(|m| m.get(key)))
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }
}

impl DeployHook for ArgocdHook {
    fn parse(&self, req: &HookRequest<'_>) -> Result<Vec<DeployReport>, DeployHookError> {
        let s = &self.settings;
        let presented = req.header(&s.header).ok_or_else(|| {
            DeployHookError::Unauthenticated(format!("missing {} header", s.header))
        })?;
        let token = if s.header == "authorization" {
            let p = presented.trim();
            match p.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => p[7..].trim(),
                _ => {
                    return Err(DeployHookError::Unauthenticated(
                        "Authorization must be `Bearer <secret>`".into(),
                    ));
                }
            }
        } else {
            presented.trim()
        };
        if !webhook::token_matches(&s.secret, token) {
            return Err(DeployHookError::Unauthenticated(format!(
                "{} does not match the configured secret",
                s.header
            )));
        }

        let b: Body = webhook::parse_json(req.body)?;
        let app = webhook::name_field("app", present(&b.app))?;
        let Some(status) = status_of(&b) else {
            return Err(DeployHookError::Ignored(format!(
                "app {app}: phase {:?}, sync {:?}, health {:?} is not a deploy's progress",
                present(&b.phase).unwrap_or(""),
                present(&b.sync_status).unwrap_or(""),
                present(&b.health_status).unwrap_or("")
            )));
        };
        let revision = webhook::name_field("revision", present(&b.revision))?;
        let service = match s.service_label.as_deref().and_then(|k| self.label(&b, k)) {
            Some(v) => webhook::name_field("labels.<service_label>", Some(v))?,
            None => app.clone(),
        };
        let environment = match s
            .environment_label
            .as_deref()
            .and_then(|k| self.label(&b, k))
        {
            Some(v) => webhook::name_field("labels.<environment_label>", Some(v))?,
            None => match &s.environment {
                Some(e) => webhook::name_field("environment (setting)", Some(e))?,
                None => webhook::name_field("namespace", present(&b.namespace))?,
            },
        };
        let at_ms = match (present(&b.finished_at), present(&b.started_at)) {
            (Some(t), _) => webhook::rfc3339_ms("finishedAt", t)?,
            (None, Some(t)) => webhook::rfc3339_ms("startedAt", t)?,
            (None, None) => {
                return Err(DeployHookError::BadPayload(
                    "missing field `finishedAt` (and no `startedAt`)".into(),
                ));
            }
        };
        let requested_by = match &b.initiated_by {
            Some(i) => match i.username.as_deref() {
                Some(u) => webhook::optional_name("initiatedBy.username", Some(u))?,
                None if i.automated => Some("automated".to_string()),
                None => None,
            },
            None => None,
        };
        let external_id = webhook::name_field("app@revision", Some(&format!("{app}@{revision}")))?;
        Ok(vec![DeployReport {
            source: "argocd".into(),
            external_id: Some(external_id),
            service,
            environment,
            version: revision,
            previous_version: None,
            strategy: Default::default(),
            requested_by,
            status,
            at_ms,
            description: webhook::description(present(&b.message)),
            change: None,
            url: webhook::url(present(&b.url)),
        }])
    }
}
