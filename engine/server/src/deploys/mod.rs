//! Deployments at the edge: where deploy commands go (the log) and the state they build (the
//! deploy processor's book), plus the sources that are not HTTP handlers — the Kubernetes rollout
//! watchers. Handlers and the CLI submit [`aiops_deploy::DeployCommand`]s through [`Deploys`] and
//! answer once the processor applied them.

use crate::submit::Refused;
use aiops_deploy::DeployCommand;
use aiops_log::EventLog;
use aiops_runtime::deploys::processor::DeployHandle;
use aiops_runtime::deploys::{RefusalKind, command_message, refusal_kind};
use std::sync::Arc;
use std::time::Duration;

/// How long a command may take to be applied before the caller hears "pending".
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::submit::SubmitError;

/// The deploys of this process: where commands go and the state they build.
#[derive(Clone)]
pub struct Deploys {
    /// The log commands are appended to.
    pub log: Arc<dyn EventLog>,
    /// The processor's state.
    pub handle: Arc<DeployHandle>,
}

impl std::fmt::Debug for Deploys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deploys").finish_non_exhaustive()
    }
}

impl Deploys {
    /// Appends `cmd` and waits until the processor applied it; returns the command's log
    /// sequence.
    ///
    /// # Errors
    /// [`SubmitError`]: refused (with the kind), the log unavailable, or not applied in time.
    pub async fn submit(&self, cmd: &DeployCommand) -> Result<u64, SubmitError> {
        let msg = command_message(cmd, crate::clock::now_ms())
            .map_err(|e| SubmitError::Failed(e.to_string()))?;
        aiops_runtime::progress::command(
            &*self.log,
            &self.handle.progress,
            "deploy book",
            msg,
            APPLY_TIMEOUT,
        )
        .await
        .map_err(|e| {
            SubmitError::from_command(e, |r| {
                let (kind, msg) = refusal_kind(r);
                let kind = match kind {
                    RefusalKind::Conflict => Refused::Conflict,
                    RefusalKind::NotFound => Refused::NotFound,
                    RefusalKind::Invalid => Refused::Invalid,
                };
                (kind, msg.to_string())
            })
        })
    }

    /// The processor's counters in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let s = *self.handle.summary.lock();
        let book = self.handle.book.read();
        let mut by_status: std::collections::BTreeMap<&str, u64> = Default::default();
        for d in book.deploys() {
            *by_status.entry(d.status.as_str()).or_default() += 1;
        }
        let mut out = String::new();
        out.push_str(
            "# HELP aiops_deploys Deploy records by status.\n# TYPE aiops_deploys gauge\n",
        );
        for (status, n) in by_status {
            out.push_str(&format!("aiops_deploys{{status=\"{status}\"}} {n}\n"));
        }
        for (name, help, v) in [
            (
                "aiops_deploy_commands_applied_total",
                "Deploy commands applied.",
                s.applied,
            ),
            (
                "aiops_deploy_commands_refused_total",
                "Deploy commands refused (invalid, unknown deploy, freeze, conflict).",
                s.refused,
            ),
            (
                "aiops_deploy_verdicts_total",
                "Verification verdicts reached.",
                s.verdicts,
            ),
            (
                "aiops_deploy_workflow_runs_total",
                "Deploy and rollback workflow runs asked for.",
                s.workflow_runs,
            ),
            (
                "aiops_deploy_samples_total",
                "Verification samples taken from pipeline outputs.",
                s.samples,
            ),
            (
                "aiops_deploy_log_counts_total",
                "Template count rows taken from the log template miner (log signals).",
                s.log_counts,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP aiops_deploy_sample_series Verification sample series held.\n# TYPE aiops_deploy_sample_series gauge\naiops_deploy_sample_series {}\n",
            book.sample_series()
        ));
        out
    }
}

/// Resolves secret references in one source's settings: `<field>_env = "VAR"` and
/// `<field>_file = "path"` become `<field>` with the variable's or file's content (trimmed), so
/// the secret never sits in the config file.
///
/// # Errors
/// The variable is unset, the file unreadable, or both forms are given (named).
fn resolve_secrets(
    what: &str,
    v: &toml::Value,
    fields: &[&str],
) -> Result<serde_json::Value, String> {
    let mut json = serde_json::to_value(v).map_err(|e| format!("{what}: {e}"))?;
    let Some(obj) = json.as_object_mut() else {
        return Err(format!("{what}: expected a table"));
    };
    for f in fields {
        let env = obj.remove(&format!("{f}_env"));
        let file = obj.remove(&format!("{f}_file"));
        let value = match (env, file) {
            (Some(_), Some(_)) => {
                return Err(format!("{what}: give {f}_env or {f}_file, not both"));
            }
            (Some(e), None) => {
                let name = e
                    .as_str()
                    .ok_or_else(|| format!("{what}.{f}_env: expected a variable name"))?;
                std::env::var(name).map_err(|_| {
                    format!("{what}.{f}_env: environment variable {name} is not set")
                })?
            }
            (None, Some(p)) => {
                let path = p
                    .as_str()
                    .ok_or_else(|| format!("{what}.{f}_file: expected a path"))?;
                std::fs::read_to_string(path)
                    .map_err(|e| format!("{what}.{f}_file: cannot read {path}: {e}"))?
            }
            (None, None) => continue,
        };
        obj.insert(
            (*f).to_string(),
            serde_json::Value::String(value.trim().to_string()),
        );
    }
    Ok(json)
}

/// The webhooks of `[deploys.hooks.<kind>]`, their secrets resolved.
///
/// # Errors
/// An unknown kind, an unresolvable or empty secret, a bad setting (each named).
pub fn build_hooks(
    settings: &aiops_runtime::deploys::DeploySettings,
) -> Result<
    std::collections::BTreeMap<String, Box<dyn aiops_connectors::deploys::DeployHook>>,
    String,
> {
    let mut out = std::collections::BTreeMap::new();
    for (kind, v) in &settings.hooks {
        let what = format!("deploys.hooks.{kind}");
        let json = resolve_secrets(&what, v, &["secret"])?;
        let hook = aiops_connectors::deploys::build_hook(kind, &json).map_err(|e| e.to_string())?;
        out.insert(kind.clone(), hook);
    }
    Ok(out)
}

/// Starts one task per `[[deploys.kubernetes]]` watcher: it polls the API server every
/// `interval` and records each rollout change as a deploy report (source `kubernetes`), once
/// the log's deploys are known so a restart does not report old rollouts again.
///
/// # Errors
/// A watcher's settings are invalid or its token cannot be resolved (named).
pub fn start_watchers(
    settings: &aiops_runtime::deploys::DeploySettings,
    outbound: &aiops_connectors::outbound::OutboundPolicy,
    deploys: &Deploys,
    stop_rx: &tokio::sync::watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), String> {
    use aiops_connectors::deploys::kubernetes::{KubernetesSettings, KubernetesWatcher};
    for (i, v) in settings.kubernetes.iter().enumerate() {
        let what = format!("deploys.kubernetes[{i}]");
        let json = resolve_secrets(&what, v, &["token"])?;
        let s: KubernetesSettings =
            serde_json::from_value(json).map_err(|e| format!("{what}: {e}"))?;
        let watcher = KubernetesWatcher::new(s, outbound).map_err(|e| format!("{what}: {e}"))?;
        tasks.spawn(watch(watcher, deploys.clone(), stop_rx.clone()));
    }
    Ok(())
}

/// One watcher's loop (a pull source at the edge; what it reports goes through the deploy
/// processor like any other report).
async fn watch(
    mut w: aiops_connectors::deploys::kubernetes::KubernetesWatcher,
    deploys: Deploys,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Wait until the processor has read the log as it was, then seed what it knows.
    while !deploys
        .handle
        .caught_up
        .load(std::sync::atomic::Ordering::Acquire)
        && !*stop.borrow()
    {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    {
        let book = deploys.handle.book.read();
        for d in book.deploys().filter(|d| d.source == "kubernetes") {
            if let Some(e) = &d.external_id {
                w.remember(e, d.source_status, &d.version);
            }
        }
    }
    loop {
        match w.poll().await {
            Ok(reports) => {
                for report in reports {
                    let cmd = DeployCommand::Report {
                        report,
                        id: None,
                        rollback_of: None,
                        run_action: false,
                    };
                    if let Err(e) = deploys.submit(&cmd).await {
                        tracing::warn!(url = w.url(), error = %e, "kubernetes rollout report not recorded");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(url = w.url(), error = %e, "kubernetes rollout watcher poll failed")
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(w.interval()) => {}
        }
    }
}
