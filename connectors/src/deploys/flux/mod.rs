//! Flux deployments: events posted by notification-controller through a Provider of `type:
//! generic-hmac` (fluxcd.io, notification Providers, "Generic webhook with HMAC"). The body is
//! Flux's Event JSON (`involvedObject`, `severity`, `timestamp`, `message`, `reason`,
//! `metadata`, `reportingController`); the header `X-Signature: <hash-function>=<hex HMAC of the
//! body>` is keyed with the Provider secret's `token`. notification-controller strips the API
//! group from the controller's metadata keys, so the revision arrives as `metadata.revision`
//! (the group-prefixed key of Flux's Event example is read too);
//! keys of the Alert's `.spec.eventMetadata` arrive as written (e.g. `environment`).
//! `external_id` is `<Kind>/<namespace>/<name>@<revision>`: a `Progressing` event and the
//! `ReconciliationSucceeded` that follows for the same revision are one deploy.

#[cfg(test)]
mod tests;

use super::webhook::{self, HmacAlg};
use super::{DeployHook, DeployHookError, HookConfigError, HookRequest};
use aiops_schemas::deploy::{DeployReport, SourceStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of the `flux` hook.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FluxSettings {
    /// The Provider secret's `token` (resolved by the server; never logged). Must not be empty.
    pub secret: String,
    /// Event metadata key naming the service (set it with the Alert's `.spec.eventMetadata`);
    /// when absent, `involvedObject.name`.
    #[serde(default = "default_service_key")]
    pub service_key: String,
    /// Event metadata key naming the environment; when absent, `environment`.
    #[serde(default = "default_environment_key")]
    pub environment_key: String,
    /// The environment when the event names none; when unset, `involvedObject.namespace`.
    #[serde(default)]
    pub environment: Option<String>,
}

fn default_service_key() -> String {
    "service".into()
}
fn default_environment_key() -> String {
    "environment".into()
}

impl std::fmt::Debug for FluxSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluxSettings")
            .field("secret", &"***")
            .field("service_key", &self.service_key)
            .field("environment_key", &self.environment_key)
            .field("environment", &self.environment)
            .finish()
    }
}

/// The `flux` deploy webhook.
#[derive(Debug)]
pub struct FluxHook {
    settings: FluxSettings,
}

impl FluxHook {
    /// Builds the hook.
    ///
    /// # Errors
    /// [`HookConfigError::EmptySecret`] when the secret is blank.
    pub fn new(settings: FluxSettings) -> Result<Self, HookConfigError> {
        webhook::require_secret("flux", &settings.secret)?;
        Ok(Self { settings })
    }
}

#[derive(Deserialize)]
struct InvolvedObject {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

/// Flux's Event (fluxcd/pkg apis/event/v1beta1), the fields aiops reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    involved_object: InvolvedObject,
    severity: String,
    timestamp: String,
    message: Option<String>,
    reason: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// The event's reason and severity as a deploy status; `None` for events that are not a
/// deploy's progress (`DependencyNotReady`, `ArtifactUpToDate`, a rollback, …).
fn status_of(reason: &str, severity: &str) -> Option<SourceStatus> {
    match reason {
        "ReconciliationSucceeded" | "UpgradeSucceeded" | "InstallSucceeded" => {
            return Some(SourceStatus::Succeeded);
        }
        "Progressing" => return Some(SourceStatus::InProgress),
        _ => {}
    }
    if reason.ends_with("Failed") || severity == "error" {
        return Some(SourceStatus::Failed);
    }
    None
}

/// The revision: `revision` as notification-controller forwards it, else a key still carrying
/// the controller's API group (`kustomize.toolkit.fluxcd.io/revision`, as Flux's Event example
/// shows it).
fn revision_of(metadata: &BTreeMap<String, String>) -> Option<&str> {
    metadata
        .get("revision")
        .or_else(|| {
            metadata
                .iter()
                .find(|(k, _)| k.ends_with(".fluxcd.io/revision"))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

impl DeployHook for FluxHook {
    fn parse(&self, req: &HookRequest<'_>) -> Result<Vec<DeployReport>, DeployHookError> {
        let header = req.header("x-signature").ok_or_else(|| {
            DeployHookError::Unauthenticated(
                "missing X-Signature header (use a Provider of type generic-hmac)".into(),
            )
        })?;
        let (alg_name, hex_sig) = header.trim().split_once('=').ok_or_else(|| {
            DeployHookError::Unauthenticated("X-Signature must be `<hash-function>=<hex>`".into())
        })?;
        let alg = HmacAlg::from_name(alg_name).ok_or_else(|| {
            DeployHookError::Unauthenticated(format!(
                "X-Signature hash function {:?} is not supported (sha224, sha256, sha384, sha512 are)",
                webhook::truncate_on_char_boundary(alg_name, 32)
            ))
        })?;
        webhook::verify_hmac(alg, &self.settings.secret, req.body, hex_sig)?;

        let ev: Event = webhook::parse_json(req.body)?;
        let Some(status) = status_of(&ev.reason, &ev.severity) else {
            return Err(DeployHookError::Ignored(format!(
                "Flux event reason {:?} (severity {:?}) is not a deploy's progress",
                webhook::truncate_on_char_boundary(&ev.reason, 64),
                webhook::truncate_on_char_boundary(&ev.severity, 16)
            )));
        };
        let o = &ev.involved_object;
        let kind = webhook::name_field("involvedObject.kind", o.kind.as_deref())?;
        let name = webhook::name_field("involvedObject.name", o.name.as_deref())?;
        let namespace = webhook::name_field("involvedObject.namespace", o.namespace.as_deref())?;
        let version = webhook::name_field("metadata.revision", revision_of(&ev.metadata))?;
        let s = &self.settings;
        let service = match ev.metadata.get(&s.service_key) {
            Some(v) => webhook::name_field(&format!("metadata.{}", s.service_key), Some(v))?,
            None => name.clone(),
        };
        let environment = match ev.metadata.get(&s.environment_key) {
            Some(v) => webhook::name_field(&format!("metadata.{}", s.environment_key), Some(v))?,
            None => match &s.environment {
                Some(e) => webhook::name_field("environment (setting)", Some(e))?,
                None => namespace.clone(),
            },
        };
        let external_id = webhook::name_field(
            "involvedObject@revision",
            Some(&format!("{kind}/{namespace}/{name}@{version}")),
        )?;
        Ok(vec![DeployReport {
            source: "flux".into(),
            external_id: Some(external_id),
            service,
            environment,
            version,
            previous_version: None,
            strategy: Default::default(),
            requested_by: None,
            status,
            at_ms: webhook::rfc3339_ms("timestamp", &ev.timestamp)?,
            description: webhook::description(ev.message.as_deref()),
            change: None,
            url: None,
        }])
    }
}
