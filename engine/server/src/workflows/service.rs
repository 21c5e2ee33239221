//! The workflow service the HTTP API and the read side share: the engine's handle, the
//! workflow directory, the executor (for its metrics) and the users who may approve steps.

use super::UserSettings;
use super::executor::Executor;
use super::processor::WorkflowsHandle;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An authenticated workflow user.
#[derive(Debug, Clone)]
pub struct User {
    /// Name.
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
    token: String,
}

impl User {
    /// The user of a setup without configured users: writes are open on the (loopback) listener.
    pub fn anonymous_admin() -> User {
        User {
            name: "anonymous".into(),
            roles: vec!["admin".into()],
            token: String::new(),
        }
    }
}

/// Why the workflow service could not be built: the operator must configure the secret.
#[derive(Debug, thiserror::Error)]
#[error("workflows.users.{user}: secret {secret:?} is not configured")]
pub struct MissingUserSecret {
    /// The user.
    pub user: String,
    /// The secret its token should come from.
    pub secret: String,
}

/// The workflow engine as the API sees it.
pub struct WorkflowsService {
    /// The engine's handle.
    pub handle: Arc<WorkflowsHandle>,
    /// Where workflow files live.
    pub dir: PathBuf,
    /// The executor (for its metrics), when effects run in this process.
    pub executor: Option<Arc<Executor>>,
    users: Vec<User>,
    /// Serializes create/replace/delete: each reads, changes and records the whole set.
    pub deploy_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for WorkflowsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowsService")
            .field("dir", &self.dir)
            .field(
                "users",
                &self.users.iter().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl WorkflowsService {
    /// The service over `handle`, with users whose tokens come from the secrets.
    ///
    /// # Errors
    /// [`MissingUserSecret`]: a user whose token secret is not configured.
    pub fn new(
        handle: Arc<WorkflowsHandle>,
        dir: PathBuf,
        users: &BTreeMap<String, UserSettings>,
    ) -> Result<WorkflowsService, MissingUserSecret> {
        let mut out = Vec::new();
        for (name, u) in users {
            let token = handle
                .providers
                .secrets()
                .get(&u.token_secret)
                .ok_or_else(|| MissingUserSecret {
                    user: name.clone(),
                    secret: u.token_secret.clone(),
                })?;
            out.push(User {
                name: name.clone(),
                roles: u.roles.clone(),
                token,
            });
        }
        Ok(WorkflowsService {
            handle,
            dir,
            executor: None,
            users: out,
            deploy_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether users are configured (`[workflows.users]`).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// The configured user whose token is `token`.
    pub fn user(&self, token: &str) -> Option<&User> {
        // Compare every token fully so timing does not tell how much of one matched.
        let mut found = None;
        for u in &self.users {
            let a = u.token.as_bytes();
            let b = token.as_bytes();
            let mut diff = a.len() ^ b.len();
            for i in 0..a.len().max(b.len()) {
                diff |=
                    usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
            }
            if diff == 0 {
                found = Some(u);
            }
        }
        found
    }

    /// The workflow engine's and executor's counters in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering;
        let e = self.handle.engine.read();
        let c = e.counters();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP aiops_workflow_executions_total Workflow executions by outcome."
        );
        let _ = writeln!(out, "# TYPE aiops_workflow_executions_total counter");
        for (k, v) in [
            ("started", c.started),
            ("succeeded", c.succeeded),
            ("failed", c.failed),
            ("escalated", c.escalated),
            ("cancelled", c.cancelled),
            ("throttled", c.throttled),
            ("queued", c.queued),
        ] {
            let _ = writeln!(
                out,
                "aiops_workflow_executions_total{{outcome=\"{k}\"}} {v}"
            );
        }
        for (name, help, v) in [
            (
                "aiops_workflow_intents_total",
                "Effect intents logged.",
                c.intents,
            ),
            (
                "aiops_workflow_results_total",
                "Effect results read back from the log.",
                c.results,
            ),
            (
                "aiops_workflow_rate_limited_total",
                "Times an action waited for a rate limit.",
                c.rate_limited,
            ),
            (
                "aiops_workflow_refused_total",
                "Steps refused (blast radius, parameters, templates).",
                c.refused,
            ),
            (
                "aiops_workflow_approvals_total",
                "Approvals requested.",
                c.approvals,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP aiops_workflow_active_executions Executions running or waiting.\n# TYPE aiops_workflow_active_executions gauge\naiops_workflow_active_executions {}",
            e.active().count()
        );
        let _ = writeln!(
            out,
            "# HELP aiops_workflow_pending_effects Intents without a result.\n# TYPE aiops_workflow_pending_effects gauge\naiops_workflow_pending_effects {}",
            e.pending_intents().count()
        );
        if let Some(x) = &self.executor {
            for (name, help, v) in [
                (
                    "aiops_effect_attempts_total",
                    "Provider calls made (attempts).",
                    &x.stats.attempts,
                ),
                (
                    "aiops_effect_succeeded_total",
                    "Effects that succeeded.",
                    &x.stats.succeeded,
                ),
                (
                    "aiops_effect_failed_total",
                    "Effects that failed after their retries.",
                    &x.stats.failed,
                ),
                (
                    "aiops_effect_resumed_total",
                    "Effects run again after a restart (no result logged).",
                    &x.stats.resumed,
                ),
            ] {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                    v.load(Ordering::Relaxed)
                );
            }
        }
        out
    }
}
