//! The template miner's state from the whole log (`aiops rebuild`): the checkpoint is dropped,
//! every log record is mined again, outputs already in the log are recognized by id and not
//! appended again, and a fresh checkpoint is written.

use super::TemplateSettings;
use super::runner::{TemplateRunSummary, TemplateRunner};
use crate::checkpoint::Store;
use aiops_log::EventLog;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rebuilds the miner's state; `progress` is called about once a second.
///
/// # Errors
/// A message naming what failed: the configuration, the store (stop the engine first) or the
/// log.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    settings: &TemplateSettings,
    store_dir: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<TemplateRunSummary, String> {
    let store = Store::open(store_dir)
        .map_err(|e| format!("{e} (is the engine running? stop it before a rebuild)"))?;
    store.clear().await.map_err(|e| e.to_string())?;
    let stats = log.stats().await.map_err(|e| e.to_string())?;
    let settings = TemplateSettings {
        // One checkpoint at the end, not one per step.
        checkpoint_interval: Duration::MAX,
        ..settings.clone()
    };
    let mut runner = TemplateRunner::new(log, &settings, Some(store), true, stats.first_seq)
        .await
        .map_err(|e| e.to_string())?;
    let mut last = Instant::now();
    loop {
        let (_, n) = runner.step(1024).await.map_err(|e| e.to_string())?;
        if last.elapsed() >= Duration::from_secs(1) {
            progress(runner.position(), stats.next_seq);
            last = Instant::now();
        }
        if n == 0 {
            break;
        }
    }
    runner.checkpoint().await.map_err(|e| e.to_string())?;
    Ok(runner.summary())
}
