//! The deploy book from the whole log (`aiops rebuild`), and the forensic re-verification of one
//! deploy (`aiops deploy verify`): the log read again from its start by a processor that appends
//! nothing, and the deploy's verdict compared with the one the live engine recorded.

use super::DeploySettings;
use super::processor::{DeployHandle, DeployProcessor, DeployRunSummary};
use crate::driver::{Driver, DriverOptions};
use crate::store::Store;
use aiops_deploy::Deploy;
use aiops_deploy::book::BookEvent;
use aiops_log::EventLog;
use std::path::Path;
use std::sync::Arc;

/// Rebuilds the deploy book; `progress` is called about once a second. Returns the counts and
/// the number of deploys.
///
/// # Errors
/// A message naming what failed: the store (stop the engine first) or the log.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    store_dir: &Path,
    settings: DeploySettings,
    progress: impl FnMut(u64, u64),
) -> Result<DeployRunSummary, String> {
    let store = Store::open(store_dir)
        .map_err(|e| format!("{e} (is the engine running? stop it before a rebuild)"))?;
    let processor = DeployProcessor::new(DeployHandle::new(settings));
    let driver = Driver::rebuild(log, processor, store, progress)
        .await
        .map_err(|e| e.to_string())?;
    Ok(driver.processor().summary())
}

/// What a forensic re-verification found for one deploy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reverified {
    /// The deploy as the log gives it now (re-derived).
    pub deploy: Option<Deploy>,
    /// Every change of the deploy re-derived, in log order (`change` names).
    pub changes: Vec<String>,
    /// The verdict the live engine recorded in the log (from `aiops.deploys`), if any.
    pub recorded_verdict: Option<String>,
    /// The verdict re-derived now.
    pub derived_verdict: Option<String>,
    /// Whether they agree.
    pub same: bool,
    /// Log messages read.
    pub messages_read: u64,
}

/// Reads the whole log with a processor that appends nothing and reports deploy `id`: the
/// re-derived record and verdict beside the verdict recorded in the log. Nothing is written.
///
/// # Errors
/// A message naming what failed (the log).
pub async fn reverify(
    log: Arc<dyn EventLog>,
    settings: DeploySettings,
    id: &str,
) -> Result<Reverified, String> {
    let processor = DeployProcessor::new(DeployHandle::new(settings)).collect();
    let mut driver = Driver::open(
        log,
        processor,
        DriverOptions {
            store: None,
            append: false,
            start: 0,
            checkpoint_every: std::time::Duration::MAX,
            progress: Arc::new(crate::progress::CommandProgress::default()),
            write_checkpoints: false,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    driver.run_to_end(None).await.map_err(|e| e.to_string())?;
    let p = driver.processor();
    let mut changes = Vec::new();
    let mut derived_verdict = None;
    for e in p.collected() {
        match e {
            BookEvent::Changed { change, deploy } if deploy.id == id => {
                changes.push(change.clone());
            }
            // The verdict derived now from the log's inputs (under the current settings).
            BookEvent::Verdict(v) if v.deploy == id => {
                derived_verdict = Some(super::processor::verdict_name(v));
            }
            _ => {}
        }
    }
    let deploy = p.handle().book.read().get(id).cloned();
    let recorded_verdict = p.recorded_verdicts().get(id).cloned();
    Ok(Reverified {
        same: recorded_verdict == derived_verdict,
        deploy,
        changes,
        recorded_verdict,
        derived_verdict,
        messages_read: p.summary().messages_read,
    })
}
