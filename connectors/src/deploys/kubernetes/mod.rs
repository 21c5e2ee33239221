//! The Kubernetes rollout watcher: a pull source of deploys that follows the Deployments of one
//! namespace the way `kubectl rollout status` judges them, and reports each rollout when it
//! starts, progresses to a new status, fails (`ProgressDeadlineExceeded`) or completes.
//!
//! - [`status`]: the pure part — one Deployment object judged ([`rollout_status`]) and turned
//!   into a [`DeployReport`](aiops_schemas::deploy::DeployReport) ([`report_from`]).
//! - [`watcher`]: [`KubernetesWatcher`], which lists
//!   `GET {api_url}/apis/apps/v1/namespaces/{namespace}/deployments?labelSelector=…&limit=…`
//!   with `Authorization: Bearer <token>` through the outbound guard and reports changes.
//!
//! The server owns the task that polls every [`KubernetesSettings::interval`] and records the
//! reports. The service account needs `list` on `deployments.apps` in the namespace.

pub mod status;
pub mod watcher;

#[cfg(test)]
mod tests;

pub use status::{RolloutError, image_version, report_from, rollout_status};
pub use watcher::{KubernetesWatcher, WatchError};

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one watcher (`[deploys.kubernetes]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    /// The API server, e.g. `https://kubernetes.default.svc` in a cluster or
    /// `https://10.0.0.1:6443`; private addresses must be in `[outbound] allow`.
    pub api_url: String,
    /// The namespace watched.
    pub namespace: String,
    /// A label selector (`app.kubernetes.io/part-of=shop`), empty: every Deployment.
    #[serde(default)]
    pub label_selector: String,
    /// The bearer token, already resolved by the server from its secret reference; empty: no
    /// `Authorization` header (e.g. through `kubectl proxy`). Never logged ([`std::fmt::Debug`]
    /// redacts it).
    #[serde(default)]
    pub token: String,
    /// A PEM file of CA certificates trusted besides the system's (in a pod:
    /// `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How often to poll. Default 10 s, at least 1 s.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Whole-request timeout. Default 10 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The environment of the reports; default: the namespace.
    #[serde(default)]
    pub environment: Option<String>,
    /// The label naming the service (on the Deployment, then its pod template); default
    /// `app.kubernetes.io/name`; without it, the Deployment's name.
    #[serde(default = "default_service_label")]
    pub service_label: String,
    /// At most this many Deployments per poll (sent as `limit`; the rest are not watched and a
    /// warning says so). Default 500.
    #[serde(default = "default_max_deployments")]
    pub max_deployments: u32,
    /// Largest answer read, bytes. Default 16 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_service_label() -> String {
    "app.kubernetes.io/name".to_owned()
}
fn default_max_deployments() -> u32 {
    500
}
fn default_max_body_bytes() -> usize {
    16 << 20
}

impl std::fmt::Debug for KubernetesSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSettings")
            .field("api_url", &self.api_url)
            .field("namespace", &self.namespace)
            .field("label_selector", &self.label_selector)
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    crate::sinks::REDACTED
                },
            )
            .field("ca_file", &self.ca_file)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("environment", &self.environment)
            .field("service_label", &self.service_label)
            .field("max_deployments", &self.max_deployments)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl KubernetesSettings {
    /// Settings for `api_url` and `namespace` with every default.
    pub fn new(api_url: impl Into<String>, namespace: impl Into<String>) -> KubernetesSettings {
        KubernetesSettings {
            api_url: api_url.into(),
            namespace: namespace.into(),
            label_selector: String::new(),
            token: String::new(),
            ca_file: None,
            interval: default_interval(),
            timeout: default_timeout(),
            environment: None,
            service_label: default_service_label(),
            max_deployments: default_max_deployments(),
            max_body_bytes: default_max_body_bytes(),
        }
    }

    /// Checks the settings; the outbound guard is checked when the watcher is built.
    ///
    /// # Errors
    /// [`WatchError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), WatchError> {
        let bad = |field: &str, why: String| Err(WatchError::Config(format!("{field}: {why}")));
        match url::Url::parse(&self.api_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                if u.query().is_some() || u.fragment().is_some() {
                    return bad("api_url", "must not hold a query or fragment".into());
                }
            }
            Ok(u) => return bad("api_url", format!("scheme {:?}: http or https", u.scheme())),
            Err(e) => return bad("api_url", format!("not a valid absolute URL: {e}")),
        }
        if !is_dns_label(&self.namespace) {
            return bad(
                "namespace",
                format!(
                    "{:?} is not a namespace name (lower-case letters, digits, '-', at most 63)",
                    crate::error::bound_text(&self.namespace, 80)
                ),
            );
        }
        if self.label_selector.len() > 4096 {
            return bad("label_selector", "longer than 4096 bytes".into());
        }
        if self.interval < Duration::from_secs(1) {
            return bad("interval", "at least 1s".into());
        }
        if self.timeout.is_zero() {
            return bad("timeout", "must be more than 0".into());
        }
        if self.service_label.trim().is_empty() {
            return bad("service_label", "empty".into());
        }
        if self
            .environment
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            return bad(
                "environment",
                "empty (leave it out for the namespace)".into(),
            );
        }
        if !(1..=10_000).contains(&self.max_deployments) {
            return bad("max_deployments", "1 … 10000".into());
        }
        if self.max_body_bytes < 64 << 10 {
            return bad("max_body_bytes", "at least 64 KiB".into());
        }
        if self.token.chars().any(char::is_control) {
            return bad(
                "token",
                "holds control characters (a trailing newline?)".into(),
            );
        }
        Ok(())
    }
}

/// RFC 1123 label: what a namespace name must be.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}
