//! The workflow service the HTTP API uses: the engine's handle, the workflow directory, the
//! executor (for its metrics), the users who may approve steps, and the two ways to change the
//! engine — deploy a changed set of workflow files, or append a command — each answered once
//! the engine applied it.

use super::UserSettings;
use super::codec::{WorkflowCommand, control_message};
use super::executor::Executor;
use super::processor::{Deployed, WorkflowsHandle};
use aiops_log::{EventLog, LogError};
use aiops_runtime::CommandError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a change waits for the engine to apply it before answering.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Why a change was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The changed set of files does not compile (every problem, one a line): the user must fix
    /// the file. Nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The workflow file could not be written or removed: the operator must look at the disk.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The command could not be encoded: a bug in aiops.
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
    /// The log did not take the command; nothing happened and a retry may help.
    #[error("the log did not accept the command: {0}")]
    Log(LogError),
    /// The engine refused the command, or has not applied it yet (it is in the log and will).
    #[error("{0}")]
    Refused(String),
}

impl From<CommandError> for ChangeError {
    fn from(e: CommandError) -> ChangeError {
        match e {
            CommandError::Log(le) => ChangeError::Log(le),
            CommandError::Refused(reason) | CommandError::Timeout(reason) => {
                ChangeError::Refused(reason)
            }
        }
    }
}

/// The workflow engine as the API sees it.
pub struct WorkflowsService {
    /// The engine's handle.
    pub handle: Arc<WorkflowsHandle>,
    /// The log commands are appended to.
    log: Arc<dyn EventLog>,
    /// Where workflow files live.
    pub dir: PathBuf,
    /// The executor (for its metrics), when effects run in this process.
    pub executor: Option<Arc<Executor>>,
    users: Vec<User>,
    /// Serializes create/replace/delete: each reads, changes and records the whole set.
    deploy_lock: tokio::sync::Mutex<()>,
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
    /// The service over `handle`, appending to `log`, with users whose tokens come from the
    /// secrets.
    ///
    /// # Errors
    /// [`MissingUserSecret`]: a user whose token secret is not configured.
    pub fn new(
        handle: Arc<WorkflowsHandle>,
        log: Arc<dyn EventLog>,
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
            log,
            dir,
            executor: None,
            users: out,
            deploy_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Appends `command` and waits until the engine applied it.
    ///
    /// # Errors
    /// [`ChangeError`]: not encoded, not taken by the log, refused or not applied in time.
    pub async fn command(&self, command: WorkflowCommand) -> Result<(), ChangeError> {
        let msg = control_message(command, crate::clock::now_ms())?;
        aiops_runtime::progress::command(
            &*self.log,
            &self.handle.progress,
            "workflow engine",
            msg,
            APPLY_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    /// Writes (`Some(text)`) or removes (`None`) the workflow file `file` and records the new
    /// set as deployed. The whole set is compiled first; a set that does not compile writes
    /// nothing. One change at a time.
    ///
    /// # Errors
    /// [`ChangeError`]: invalid set, file not written, or the deploy command not applied.
    pub async fn deploy(&self, file: String, text: Option<String>) -> Result<(), ChangeError> {
        let _serial = self.deploy_lock.lock().await;
        let mut d: Deployed = self.handle.deployed.read().clone();
        match &text {
            Some(t) => {
                d.workflows.insert(file.clone(), t.clone());
            }
            None => {
                d.workflows.remove(&file);
            }
        }
        // Check before anything is written.
        super::compile_set(
            &d.workflows,
            &d.strategies,
            self.handle.providers.clone(),
            self.handle.limits.clone(),
        )
        .map_err(|errs| {
            ChangeError::Invalid(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        let path = self.dir.join(&file);
        let io = match &text {
            Some(t) => std::fs::create_dir_all(&self.dir).and_then(|_| {
                let tmp = self.dir.join(format!(".{file}.tmp"));
                std::fs::write(&tmp, t)?;
                std::fs::rename(&tmp, &path)
            }),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
        };
        io.map_err(|source| ChangeError::Write { path, source })?;
        self.command(WorkflowCommand::Deployed {
            workflows: d.workflows,
            strategies: d.strategies,
        })
        .await
    }

    /// Whether users are configured (`[workflows.users]`).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// The configured user named `name` (a console user signed in under that name approves
    /// with that user's roles).
    pub fn user_named(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
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
