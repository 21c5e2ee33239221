//! What a source of deployments reports: one observation of one deploy (GitHub `deployment` /
//! `deployment_status`, GitLab deployment events, Argo CD and Flux notifications, the Kubernetes
//! rollout watcher, `POST /api/deploy`). Sources in `aiops-connectors` produce these; the deploy
//! processor turns them into records. Plain data, no I/O.

use serde::{Deserialize, Serialize};

/// How a deploy replaces the running version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployStrategy {
    /// Every instance at once (or rolling): the baseline is the window before the deploy.
    #[default]
    AllAtOnce,
    /// A canary beside the stable version: the baseline is the stable version at the same time.
    Canary,
    /// A second environment switched over: like all-at-once for verification.
    BlueGreen,
}

/// Where the source says the deploy stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Requested, not started (GitHub `pending`/`queued`, GitLab `created`).
    Pending,
    /// Rolling out (GitHub `in_progress`, GitLab `running`, Argo CD `Progressing`, a Kubernetes
    /// rollout not complete).
    #[default]
    InProgress,
    /// The new version runs everywhere it should (GitHub `success`, GitLab `success`, Argo CD
    /// `Synced`+`Healthy`, Flux `ReconciliationSucceeded`, `kubectl rollout status` done).
    Succeeded,
    /// The rollout failed (GitHub `failure`/`error`, GitLab `failed`, Argo CD `Degraded`,
    /// Flux error events, Kubernetes `ProgressDeadlineExceeded`).
    Failed,
    /// Cancelled or superseded (GitLab `canceled`, GitHub `inactive`).
    Cancelled,
}

/// Size of the change, when the source knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeSize {
    /// Commits since the previous version.
    #[serde(default)]
    pub commits: u32,
    /// Files changed.
    #[serde(default)]
    pub files: u32,
    /// Lines added plus lines removed.
    #[serde(default)]
    pub lines: u32,
}

/// One observation of one deploy by one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeployReport {
    /// Who reported it: `api`, `github`, `gitlab`, `argocd`, `flux`, `kubernetes`.
    pub source: String,
    /// The source's own id of this deploy (GitHub deployment id, GitLab deployment id, Argo CD
    /// app + revision, Kubernetes namespace/name + generation). Reports with the same
    /// `(source, external_id)` are the same deploy; `None` for `POST /api/deploy` without an id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The service deployed (label `service` on its metrics).
    pub service: String,
    /// The environment, e.g. `production`, `staging`.
    pub environment: String,
    /// The version deployed (label `version` on its metrics when canary vs stable is compared).
    pub version: String,
    /// The version it replaces, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// How it replaces the running version.
    #[serde(default)]
    pub strategy: DeployStrategy,
    /// Who asked for it (a login, a token name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Where the source says it stands.
    #[serde(default)]
    pub status: SourceStatus,
    /// When the source says this happened (Unix ms).
    pub at_ms: i64,
    /// Free text (commit message, sync message), at most a few hundred bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Size of the change, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeSize>,
    /// A link to the run, pipeline or application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
