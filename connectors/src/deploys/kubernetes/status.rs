//! One Deployment judged the way `kubectl rollout status` judges it, and turned into a
//! [`DeployReport`]. Pure: a `serde_json::Value` of an apps/v1 Deployment in, a status or a
//! report out.
//!
//! kubectl's `DeploymentStatusViewer`, in its order:
//! 1. `metadata.generation > status.observedGeneration`: the controller has not seen the spec
//!    yet → in progress, "Waiting for deployment spec update to be observed...".
//! 2. condition `Progressing` with reason `ProgressDeadlineExceeded` → failed.
//! 3. `status.updatedReplicas < spec.replicas` → in progress, "n out of m new replicas have been
//!    updated".
//! 4. `status.replicas > status.updatedReplicas` → in progress, old replicas pending termination.
//! 5. `status.availableReplicas < status.updatedReplicas` → in progress, "n of m updated replicas
//!    are available".
//! 6. Otherwise → succeeded, "successfully rolled out".
//!
//! The API server leaves out integer status fields that are zero (`omitempty`), so an absent
//! count is 0; an absent `spec.replicas` skips step 3, as kubectl does.

use super::KubernetesSettings;
use aiops_schemas::deploy::{DeployReport, DeployStrategy, SourceStatus};
use serde_json::Value;

/// The label that names the version, when the Deployment carries it.
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
/// The annotation the deployment controller sets to the revision of the current ReplicaSet; it
/// changes only when the pod template changes (a rollout or a rollback), not on scaling.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The annotation `kubectl --record` and many CD tools set to what caused the change.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
/// The condition reason of a rollout that missed `progressDeadlineSeconds`.
pub const DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
/// Longest description kept, bytes.
const DESCRIPTION_MAX: usize = 400;

/// Why one Deployment object could not be judged: the API (or whatever answered in its place)
/// returned an object without a field every apps/v1 Deployment has. Nothing to retry; the other
/// Deployments of the same answer are still judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// A required field is absent.
    #[error("deployment {deployment}: {field} is missing")]
    MissingField {
        /// `namespace/name` when known, else `?`.
        deployment: String,
        /// JSON path of the field.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("deployment {deployment}: {field} must be {expected}")]
    WrongType {
        /// `namespace/name` when known, else `?`.
        deployment: String,
        /// JSON path of the field.
        field: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A field has the right type and an unusable value.
    #[error("deployment {deployment}: {field}: {why}")]
    InvalidValue {
        /// `namespace/name` when known, else `?`.
        deployment: String,
        /// JSON path of the field.
        field: String,
        /// What is wrong.
        why: String,
    },
}

/// Field access with errors that name the Deployment and the path.
struct Obj<'a> {
    root: &'a Value,
    who: String,
}

impl<'a> Obj<'a> {
    fn new(root: &'a Value) -> Obj<'a> {
        let name = root.pointer("/metadata/name").and_then(Value::as_str);
        let ns = root.pointer("/metadata/namespace").and_then(Value::as_str);
        let who = match (ns, name) {
            (Some(ns), Some(n)) => format!("{}/{}", bound(ns, 64), bound(n, 260)),
            (None, Some(n)) => bound(n, 260),
            _ => "?".to_owned(),
        };
        Obj { root, who }
    }

    fn missing(&self, field: &str) -> RolloutError {
        RolloutError::MissingField {
            deployment: self.who.clone(),
            field: field.to_owned(),
        }
    }

    fn wrong(&self, field: &str, expected: &'static str) -> RolloutError {
        RolloutError::WrongType {
            deployment: self.who.clone(),
            field: field.to_owned(),
            expected,
        }
    }

    fn invalid(&self, field: &str, why: impl Into<String>) -> RolloutError {
        RolloutError::InvalidValue {
            deployment: self.who.clone(),
            field: field.to_owned(),
            why: why.into(),
        }
    }

    /// `pointer` is a JSON pointer; `field` the dotted path shown.
    fn get(&self, pointer: &str) -> Option<&'a Value> {
        self.root.pointer(pointer).filter(|v| !v.is_null())
    }

    fn str_req(&self, pointer: &str, field: &str) -> Result<&'a str, RolloutError> {
        match self.get(pointer) {
            None => Err(self.missing(field)),
            Some(v) => v.as_str().ok_or_else(|| self.wrong(field, "a string")),
        }
    }

    fn str_opt(&self, pointer: &str, field: &str) -> Result<Option<&'a str>, RolloutError> {
        match self.get(pointer) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.wrong(field, "a string")),
        }
    }

    fn int_opt(&self, pointer: &str, field: &str) -> Result<Option<i64>, RolloutError> {
        match self.get(pointer) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong(field, "an integer")),
        }
    }

    fn int_or_zero(&self, pointer: &str, field: &str) -> Result<i64, RolloutError> {
        Ok(self.int_opt(pointer, field)?.unwrap_or(0))
    }

    /// A label or annotation value (`map` is `/metadata/labels` …).
    fn map_value(&self, map: &str, key: &str) -> Result<Option<&'a str>, RolloutError> {
        let field = format!("{}[{key}]", map.trim_start_matches('/').replace('/', "."));
        match self.get(map) {
            None => Ok(None),
            Some(Value::Object(m)) => match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(self.wrong(&field, "a string")),
            },
            Some(_) => Err(self.wrong(&field.replace(&format!("[{key}]"), ""), "an object")),
        }
    }

    /// The condition of `kind` in `status.conditions`, when there is one.
    fn condition(&self, kind: &str) -> Result<Option<&'a Value>, RolloutError> {
        let Some(conds) = self.get("/status/conditions") else {
            return Ok(None);
        };
        let list = conds
            .as_array()
            .ok_or_else(|| self.wrong("status.conditions", "an array"))?;
        for (i, c) in list.iter().enumerate() {
            let t = c
                .get("type")
                .ok_or_else(|| self.missing(&format!("status.conditions[{i}].type")))?;
            let t = t
                .as_str()
                .ok_or_else(|| self.wrong(&format!("status.conditions[{i}].type"), "a string"))?;
            if t == kind {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn bound(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Whether the controller has seen the Deployment's current spec
/// (`metadata.generation <= status.observedGeneration`).
///
/// # Errors
/// [`RolloutError`] when `metadata.generation` is missing or not an integer.
pub fn observed(deployment: &Value) -> Result<bool, RolloutError> {
    let o = Obj::new(deployment);
    let generation = o
        .int_opt("/metadata/generation", "metadata.generation")?
        .ok_or_else(|| o.missing("metadata.generation"))?;
    let observed = o.int_or_zero("/status/observedGeneration", "status.observedGeneration")?;
    Ok(generation <= observed)
}

/// Where a Deployment's rollout stands, judged as `kubectl rollout status` does, with kubectl's
/// message (`Waiting for deployment "checkout" rollout to finish: 1 out of 3 new replicas have
/// been updated...`, `deployment "checkout" successfully rolled out`).
///
/// # Errors
/// [`RolloutError`] when `metadata.name` or `metadata.generation` is missing, or a field has the
/// wrong type.
pub fn rollout_status(deployment: &Value) -> Result<(SourceStatus, String), RolloutError> {
    let o = Obj::new(deployment);
    let name = o.str_req("/metadata/name", "metadata.name")?;
    let q = format!("{:?}", bound(name, 260));
    if !observed(deployment)? {
        return Ok((
            SourceStatus::InProgress,
            "Waiting for deployment spec update to be observed...".to_owned(),
        ));
    }
    if let Some(cond) = o.condition("Progressing")?
        && cond.get("reason").and_then(Value::as_str) == Some(DEADLINE_EXCEEDED)
    {
        return Ok((
            SourceStatus::Failed,
            format!("deployment {q} exceeded its progress deadline"),
        ));
    }
    let updated = o.int_or_zero("/status/updatedReplicas", "status.updatedReplicas")?;
    let replicas = o.int_or_zero("/status/replicas", "status.replicas")?;
    let available = o.int_or_zero("/status/availableReplicas", "status.availableReplicas")?;
    if let Some(wanted) = o.int_opt("/spec/replicas", "spec.replicas")?
        && updated < wanted
    {
        return Ok((
            SourceStatus::InProgress,
            format!(
                "Waiting for deployment {q} rollout to finish: {updated} out of {wanted} new replicas have been updated..."
            ),
        ));
    }
    if replicas > updated {
        return Ok((
            SourceStatus::InProgress,
            format!(
                "Waiting for deployment {q} rollout to finish: {} old replicas are pending termination...",
                replicas - updated
            ),
        ));
    }
    if available < updated {
        return Ok((
            SourceStatus::InProgress,
            format!(
                "Waiting for deployment {q} rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        ));
    }
    Ok((
        SourceStatus::Succeeded,
        format!("deployment {q} successfully rolled out"),
    ))
}

/// The version in an image reference: its tag (`registry:5000/team/app:1.4.2` → `1.4.2`), else
/// its digest (`app@sha256:…` → `sha256:…`), else `latest` (what the runtime pulls).
pub fn image_version(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let after_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[after_slash..].rfind(':') {
        Some(i) => name[after_slash + i + 1..].to_owned(),
        None => digest.unwrap_or("latest").to_owned(),
    }
}

/// Parses a Kubernetes time (RFC 3339, e.g. `2026-12-04T10:15:30Z`) into Unix ms.
fn parse_time(o: &Obj<'_>, s: &str, field: &str) -> Result<i64, RolloutError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            o.invalid(
                field,
                format!("{:?} is not an RFC 3339 time: {e}", bound(s, 64)),
            )
        })
}

/// The report for a Deployment whose spec the controller has observed; `None` while it has not
/// (its revision annotation still names the previous rollout, so the report would be filed under
/// the wrong deploy; the next poll sees it observed).
///
/// - `source` `kubernetes`; `external_id` `<namespace>/<name>/<revision>` from the
///   `deployment.kubernetes.io/revision` annotation (one deploy per rollout: scaling, which
///   bumps `metadata.generation`, is not a deploy), or `<namespace>/<name>/g<generation>` when
///   the annotation is absent;
/// - `service` from label `settings.service_label` (the Deployment's, then its pod template's),
///   else `metadata.name`; `version` from label `app.kubernetes.io/version` (pod template, then
///   Deployment), else the first container's image tag; `environment` from settings, else the
///   namespace;
/// - `at_ms` from the `Progressing` condition's `lastUpdateTime`, else
///   `metadata.creationTimestamp`;
/// - `description`: the `kubernetes.io/change-cause` annotation (what caused the rollout) and
///   kubectl's message; `requested_by` stays empty (Kubernetes does not record who).
///
/// # Errors
/// [`RolloutError`] naming the missing or malformed field.
pub fn report_from(
    deployment: &Value,
    settings: &KubernetesSettings,
) -> Result<Option<DeployReport>, RolloutError> {
    let o = Obj::new(deployment);
    let (status, message) = rollout_status(deployment)?;
    if !observed(deployment)? {
        return Ok(None);
    }
    let name = o.str_req("/metadata/name", "metadata.name")?;
    let namespace = o.str_req("/metadata/namespace", "metadata.namespace")?;
    let generation = o
        .int_opt("/metadata/generation", "metadata.generation")?
        .ok_or_else(|| o.missing("metadata.generation"))?;
    let revision = o.map_value("/metadata/annotations", REVISION_ANNOTATION)?;
    let external_id = match revision {
        Some(r) if !r.is_empty() => format!("{namespace}/{name}/{}", bound(r, 20)),
        _ => format!("{namespace}/{name}/g{generation}"),
    };
    let service = match o.map_value("/metadata/labels", &settings.service_label)? {
        Some(s) if !s.is_empty() => s,
        _ => match o.map_value("/spec/template/metadata/labels", &settings.service_label)? {
            Some(s) if !s.is_empty() => s,
            _ => name,
        },
    };
    let version = match o.map_value("/spec/template/metadata/labels", VERSION_LABEL)? {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => match o.map_value("/metadata/labels", VERSION_LABEL)? {
            Some(v) if !v.is_empty() => v.to_owned(),
            _ => image_version(o.str_req(
                "/spec/template/spec/containers/0/image",
                "spec.template.spec.containers[0].image",
            )?),
        },
    };
    let progressing_time = match o.condition("Progressing")? {
        Some(c) => match c.get("lastUpdateTime").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => Some(v.as_str().ok_or_else(|| {
                o.wrong("status.conditions[Progressing].lastUpdateTime", "a string")
            })?),
        },
        None => None,
    };
    let at_ms = match progressing_time {
        Some(t) => parse_time(&o, t, "status.conditions[Progressing].lastUpdateTime")?,
        None => {
            let created = o.str_opt("/metadata/creationTimestamp", "metadata.creationTimestamp")?;
            let created = created.ok_or_else(|| {
                o.missing(
                    "status.conditions[Progressing].lastUpdateTime and metadata.creationTimestamp",
                )
            })?;
            parse_time(&o, created, "metadata.creationTimestamp")?
        }
    };
    let description = match o.map_value("/metadata/annotations", CHANGE_CAUSE_ANNOTATION)? {
        Some(cause) if !cause.trim().is_empty() => format!("{}; {message}", cause.trim()),
        _ => message,
    };
    Ok(Some(DeployReport {
        source: "kubernetes".to_owned(),
        external_id: Some(external_id),
        service: bound(service, 253),
        environment: settings
            .environment
            .clone()
            .unwrap_or_else(|| namespace.to_owned()),
        version: bound(&version, 128),
        previous_version: None,
        strategy: DeployStrategy::AllAtOnce,
        requested_by: None,
        status,
        at_ms,
        description: Some(bound(&description, DESCRIPTION_MAX)),
        change: None,
        url: None,
    }))
}
