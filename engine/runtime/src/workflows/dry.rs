//! Workflows without effects: `aiops replay --workflows` runs the engine over a past range and
//! reports what would have run (with what the log says became of it back then), and `aiops
//! rebuild` recreates the workflow state from the whole log. Neither starts the executor, so no
//! provider is ever called (DESIGN.md invariant 3).

use super::WorkflowSettings;
use super::processor::{Deployed, WorkflowProcessor, WorkflowRunSummary, WorkflowsHandle};
use crate::driver::{Driver, DriverOptions};
use crate::progress::CommandProgress;
use crate::store::Store;
use aiops_log::EventLog;
use aiops_workflow::WorkflowEvent;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Counts of a dry run.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct DryRunSummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Intents the engine made (effects that would have run).
    pub would_run: u64,
    /// Of those, the ones the log has a result for (they ran back then).
    pub ran_then: u64,
    /// Executions started.
    pub executions: u64,
}

/// Why a dry run or rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The workflow or strategy files, providers or limits are invalid: fix the configuration.
    #[error("{0}")]
    Config(String),
    /// The log, the store or the engine failed.
    #[error(transparent)]
    Driver(#[from] crate::driver::DriverError),
    /// The checkpoint store cannot be opened (is the engine running? stop it first).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] aiops_log::LogError),
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
    /// The report could not be serialized (a bug).
    #[error("writing the report: {0}")]
    Json(#[from] serde_json::Error),
}

fn handle_for(settings: &WorkflowSettings) -> Result<Arc<WorkflowsHandle>, DryRunError> {
    let providers = settings.providers_lenient().map_err(DryRunError::Config)?;
    let limits = settings.limits().map_err(DryRunError::Config)?;
    Ok(WorkflowsHandle::new(Arc::new(providers), limits))
}

/// Runs the deployed workflows (the files of `settings.dir` and `settings.autoheal_dir`, then
/// any deployment in the range) over `[from, to)` and writes one NDJSON line per would-be effect.
///
/// # Errors
/// Files that do not compile, a log that cannot be read, output that cannot be written.
pub async fn replay(
    log: Arc<dyn EventLog>,
    settings: &WorkflowSettings,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    out: &mut impl Write,
) -> Result<DryRunSummary, DryRunError> {
    let handle = handle_for(settings)?;
    let files = Deployed {
        workflows: super::read_dir(&settings.dir).map_err(DryRunError::Config)?,
        strategies: super::read_dir(&settings.autoheal_dir).map_err(DryRunError::Config)?,
    };
    handle.deploy(files).map_err(DryRunError::Config)?;
    let start = match from_ms {
        Some(t) => log.seek_time(t).await?,
        None => log.stats().await?.first_seq,
    };
    let end = match to_ms {
        Some(t) => Some(log.seek_time(t).await?),
        None => None,
    };
    let mut driver = Driver::open(
        log,
        WorkflowProcessor::new(handle).collecting(),
        DriverOptions {
            store: None,
            append: false,
            start,
            checkpoint_every: std::time::Duration::MAX,
            progress: Arc::new(CommandProgress::default()),
            write_checkpoints: true,
        },
    )
    .await?;
    driver.run_to_end(end).await?;
    let mut sum = DryRunSummary {
        messages_read: driver.counts().messages_read,
        ..DryRunSummary::default()
    };
    let results = driver.processor().results_seen().clone();
    for ev in driver.processor_mut().collected.take().unwrap_or_default() {
        match ev {
            WorkflowEvent::Intent(i) => {
                sum.would_run += 1;
                let then = results.get(&i.key);
                if then.is_some() {
                    sum.ran_then += 1;
                }
                let line = json!({
                    "type": "would_run", "key": i.key, "execution": i.execution, "workflow": i.workflow,
                    "step": i.step, "kind": i.kind, "provider": i.provider, "target": i.target,
                    "params": i.params, "at_ms": i.at_ms, "incident": i.incident, "logged_result": then,
                });
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
            }
            WorkflowEvent::ExecutionStarted { .. } => sum.executions += 1,
            _ => {}
        }
    }
    serde_json::to_writer(
        &mut *out,
        &json!({"type": "summary", "summary": sum, "note": "nothing was executed"}),
    )?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(sum)
}

/// Drops the workflow checkpoint and rebuilds the state from the whole log; events already in
/// the log are recognized and not appended again; nothing runs.
///
/// # Errors
/// The store or the log failed.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    settings: &WorkflowSettings,
    store_dir: &Path,
) -> Result<WorkflowRunSummary, DryRunError> {
    let handle = handle_for(settings)?;
    let store = Store::open(store_dir)?;
    let driver = Driver::rebuild(log, WorkflowProcessor::new(handle), store, |_, _| {}).await?;
    Ok(driver.processor().summary())
}
