//! The watcher: lists the Deployments of one namespace (optionally a label selector) through the
//! outbound guard, judges each, and reports the ones whose rollout changed since the last poll.

use super::KubernetesSettings;
use super::status::{RolloutError, report_from};
use crate::outbound::{OutboundPolicy, refusal_reason};
use aiops_schemas::deploy::{DeployReport, SourceStatus};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a poll failed. Each variant says who must act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The settings cannot work (URL, namespace, CA file, outbound refusal, a 404 for the
    /// namespace): the operator must fix `[deploys.kubernetes]`.
    #[error("kubernetes watcher settings: {0}")]
    Config(String),
    /// The API refused the token (401) or the service account may not list Deployments (403):
    /// the operator must fix the token or its RBAC role (`list` on `deployments.apps`).
    #[error("kubernetes API refused access: {0}")]
    Unauthorized(String),
    /// The API did not answer, timed out, or answered 429/5xx: the next poll retries.
    #[error("kubernetes API unavailable (retried at the next poll): {0}")]
    Unavailable(String),
    /// The API answered something that is not a DeploymentList: whoever runs the endpoint must
    /// look (a proxy's error page, a wrong URL).
    #[error("kubernetes API answer is not a DeploymentList: {0}")]
    BadResponse(String),
    /// The answer is larger than `max_body_bytes`: narrow `label_selector` or raise the limit.
    #[error(
        "kubernetes API answer exceeds {limit} bytes: narrow label_selector or raise max_body_bytes"
    )]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
}

impl WatchError {
    /// Whether polling again may succeed without anyone changing anything.
    pub fn retryable(&self) -> bool {
        matches!(self, WatchError::Unavailable(_))
    }
}

/// What the watcher last saw of one Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// The rollout (`external_id`'s last part).
    rollout: String,
    status: SourceStatus,
    version: String,
}

/// Follows the Deployments of one namespace. Poll it every [`KubernetesWatcher::interval`].
///
/// Reporting rule: a Deployment is reported when its rollout (revision) or its status differs
/// from the last poll. On the first poll (nothing seen yet) rollouts still in progress or failed
/// are reported, rollouts completed before the watcher started are not — they are history, not
/// deploys happening now. [`KubernetesWatcher::remember`] seeds what the log already knows, so a
/// rollout that finished while aiops was down is still reported as finished.
pub struct KubernetesWatcher {
    settings: KubernetesSettings,
    client: reqwest::Client,
    url: url::Url,
    seen: BTreeMap<(String, String), Seen>,
    first_poll: bool,
    problems: Vec<RolloutError>,
    truncated: bool,
}

impl std::fmt::Debug for KubernetesWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesWatcher")
            .field("settings", &self.settings)
            .field("url", &self.url.as_str())
            .field("seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn bounded(s: &str, max: usize) -> String {
    crate::error::bound_text(s, max)
}

impl KubernetesWatcher {
    /// A watcher for validated settings; reads `ca_file` when set.
    ///
    /// # Errors
    /// [`WatchError::Config`] when the settings do not validate, the outbound guard refuses the
    /// API URL, or the CA file cannot be read or holds no certificate.
    pub fn new(
        settings: KubernetesSettings,
        outbound: &OutboundPolicy,
    ) -> Result<KubernetesWatcher, WatchError> {
        settings.validate()?;
        let base = outbound
            .check(&settings.api_url)
            .map_err(|e| WatchError::Config(format!("api_url: {e}")))?;
        let client = match &settings.ca_file {
            None => outbound.client(settings.timeout),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| WatchError::Config(format!("ca_file {}: {e}", path.display())))?;
                outbound.client_with_ca(settings.timeout, &pem)
            }
        }
        .map_err(|e| WatchError::Config(format!("http client: {e}")))?;
        let mut url = base;
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| WatchError::Config("api_url: cannot hold a path".into()))?;
            path.pop_if_empty();
            path.extend([
                "apis",
                "apps",
                "v1",
                "namespaces",
                settings.namespace.as_str(),
                "deployments",
            ]);
        }
        {
            let mut q = url.query_pairs_mut();
            if !settings.label_selector.is_empty() {
                q.append_pair("labelSelector", &settings.label_selector);
            }
            q.append_pair("limit", &settings.max_deployments.to_string());
        }
        Ok(KubernetesWatcher {
            settings,
            client,
            url,
            seen: BTreeMap::new(),
            first_poll: true,
            problems: Vec::new(),
            truncated: false,
        })
    }

    /// How often to poll.
    pub fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// The URL listed (no secret in it).
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Seeds what the log already holds for a deploy of this source (`external_id`
    /// `<namespace>/<name>/<revision>`), so the next poll reports only what changed since.
    /// Returns `false` (and remembers nothing) for an id not of that form.
    pub fn remember(&mut self, external_id: &str, status: SourceStatus, version: &str) -> bool {
        let mut parts = external_id.rsplitn(3, '/');
        let (Some(rollout), Some(name), Some(ns)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        if ns.is_empty() || name.is_empty() || rollout.is_empty() {
            return false;
        }
        let key = (ns.to_owned(), name.to_owned());
        // A later rollout of the same Deployment wins over an earlier one.
        if let Some(prev) = self.seen.get(&key)
            && rollout_order(&prev.rollout) > rollout_order(rollout)
        {
            return true;
        }
        self.seen.insert(
            key,
            Seen {
                rollout: rollout.to_owned(),
                status,
                version: version.to_owned(),
            },
        );
        true
    }

    /// Deployments of the last poll that could not be judged (the others were).
    pub fn last_problems(&self) -> &[RolloutError] {
        &self.problems
    }

    /// Whether the last answer held more Deployments than `max_deployments` (the rest were not
    /// looked at).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Lists the Deployments and returns a report for each whose rollout or status changed since
    /// the last poll (see the type's reporting rule), in namespace/name order. A Deployment that
    /// cannot be judged is skipped and kept in [`KubernetesWatcher::last_problems`]; its
    /// previous state is kept.
    ///
    /// Cancel-safe: dropping the future loses nothing but the poll.
    ///
    /// # Errors
    /// [`WatchError`]: unreachable or refusing API, an answer that is not a DeploymentList or is
    /// too large. The state is unchanged then.
    pub async fn poll(&mut self) -> Result<Vec<DeployReport>, WatchError> {
        let body = self.fetch().await?;
        let list: Value = serde_json::from_slice(&body)
            .map_err(|e| WatchError::BadResponse(format!("not JSON ({e}): {}", preview(&body))))?;
        let items = deployment_items(&list)?;
        let limit = usize::try_from(self.settings.max_deployments).unwrap_or(usize::MAX);
        let continues = list
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty());
        self.truncated = continues || items.len() > limit;
        if self.truncated {
            tracing::warn!(
                url = %self.url,
                max_deployments = limit,
                "more Deployments match than max_deployments; the rest are not watched (narrow label_selector or raise max_deployments)"
            );
        }
        let mut problems = Vec::new();
        let mut judged: Vec<((String, String), DeployReport)> = Vec::new();
        // Every Deployment in the answer, judged or not: the ones absent are forgotten below.
        let mut present = std::collections::BTreeSet::new();
        for item in items.iter().take(limit) {
            let key = item_key(item);
            if let Some(k) = &key {
                present.insert(k.clone());
            }
            match (report_from(item, &self.settings), key) {
                (Ok(Some(report)), Some(key)) => judged.push((key, report)),
                // Not observed yet: reported at a later poll.
                (Ok(None), _) => {}
                // report_from requires namespace and name, so a report always has a key.
                (Ok(Some(_)), None) => {}
                (Err(e), _) => problems.push(e),
            }
        }
        if let Some(first) = problems.first() {
            tracing::warn!(
                url = %self.url,
                count = problems.len(),
                first = %first,
                "Deployments skipped: they lack fields every apps/v1 Deployment has"
            );
        }
        judged.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for (key, mut report) in judged {
            let rollout = report
                .external_id
                .as_deref()
                .and_then(|id| id.rsplit('/').next())
                .unwrap_or_default()
                .to_owned();
            let now = Seen {
                rollout,
                status: report.status,
                version: report.version.clone(),
            };
            let report_it = match self.seen.get(&key) {
                None => !(self.first_poll && now.status == SourceStatus::Succeeded),
                Some(prev) => {
                    if prev.rollout != now.rollout && prev.version != now.version {
                        report.previous_version = Some(prev.version.clone());
                    }
                    prev.rollout != now.rollout || prev.status != now.status
                }
            };
            if report_it {
                out.push(report);
            }
            self.seen.insert(key, now);
        }
        // Deployments gone from a complete answer are forgotten (a re-created one is new).
        if !self.truncated {
            self.seen.retain(|k, _| present.contains(k));
        }
        self.problems = problems;
        self.first_poll = false;
        Ok(out)
    }

    /// GETs the list; the body of a 2xx answer, at most `max_body_bytes`.
    async fn fetch(&self) -> Result<Vec<u8>, WatchError> {
        let mut req = self
            .client
            .get(self.url.clone())
            .header("accept", "application/json");
        if !self.settings.token.is_empty() {
            req = req.bearer_auth(&self.settings.token);
        }
        let mut resp = req.send().await.map_err(|e| match refusal_reason(&e) {
            Some(r) => WatchError::Config(format!("api_url: refused by the outbound guard: {r}")),
            None if e.is_timeout() => WatchError::Unavailable(format!(
                "no answer within {} (timeout)",
                humantime_serde::re::humantime::format_duration(self.settings.timeout)
            )),
            None => WatchError::Unavailable(e.without_url().to_string()),
        })?;
        let limit = self.settings.max_body_bytes;
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(WatchError::TooLarge { limit });
        }
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            WatchError::Unavailable(format!("reading the answer: {}", e.without_url()))
        })? {
            if body.len() + chunk.len() > limit {
                return Err(WatchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(body);
        }
        // The API explains refusals in a `Status` object: {"kind":"Status","message":…}.
        let why = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| preview(&body));
        let msg = format!("HTTP {}: {}", status.as_u16(), bounded(why.trim(), 512));
        Err(match status.as_u16() {
            401 | 403 => WatchError::Unauthorized(msg),
            404 => WatchError::Config(format!(
                "namespace {:?} or the apps/v1 API not found: {msg}",
                self.settings.namespace
            )),
            408 | 429 | 500..=599 => WatchError::Unavailable(msg),
            _ => WatchError::BadResponse(msg),
        })
    }
}

/// `(namespace, name)` of a Deployment object, when both are strings.
fn item_key(item: &Value) -> Option<(String, String)> {
    let ns = item.pointer("/metadata/namespace")?.as_str()?;
    let name = item.pointer("/metadata/name")?.as_str()?;
    Some((ns.to_owned(), name.to_owned()))
}

/// The first bytes of a body, for an error message.
fn preview(body: &[u8]) -> String {
    bounded(
        String::from_utf8_lossy(&body[..body.len().min(256)]).trim(),
        256,
    )
}

/// `items` of a DeploymentList.
fn deployment_items(list: &Value) -> Result<&[Value], WatchError> {
    let Some(obj) = list.as_object() else {
        return Err(WatchError::BadResponse(format!(
            "expected a JSON object, got {}",
            json_kind(list)
        )));
    };
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("DeploymentList") => {}
        Some(other) => {
            return Err(WatchError::BadResponse(format!(
                "kind is {:?}, expected \"DeploymentList\"",
                bounded(other, 64)
            )));
        }
    }
    match obj.get("items") {
        // Go marshals an empty list as `null` in some versions.
        Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items.as_slice()),
        Some(other) => Err(WatchError::BadResponse(format!(
            "items must be an array, got {}",
            json_kind(other)
        ))),
        None => Err(WatchError::BadResponse("no items field".into())),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Orders rollouts of one Deployment: revisions are numbers (`g<generation>` ids order by their
/// generation); anything else orders as 0.
fn rollout_order(rollout: &str) -> u64 {
    rollout.trim_start_matches('g').parse::<u64>().unwrap_or(0)
}
