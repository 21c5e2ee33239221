//! The template miner's state from the whole log (`aiops rebuild`): the checkpoint is dropped,
//! every log record is mined again, outputs already in the log are recognized by id and not
//! appended again, and a fresh checkpoint is written.

use super::TemplateSettings;
use super::processor::{TemplateProcessor, TemplateRunSummary};
use crate::driver::Driver;
use crate::store::Store;
use aiops_log::EventLog;
use std::path::Path;
use std::sync::Arc;

/// Rebuilds the miner's state; `progress` is called about once a second.
///
/// # Errors
/// A message naming what failed: the configuration, the store (stop the engine first) or the
/// log.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    settings: &TemplateSettings,
    store_dir: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<TemplateRunSummary, String> {
    let store = Store::open(store_dir)
        .map_err(|e| format!("{e} (is the engine running? stop it before a rebuild)"))?;
    let processor = TemplateProcessor::new(settings).map_err(|e| e.to_string())?;
    let driver = Driver::rebuild(log, processor, store, progress)
        .await
        .map_err(|e| e.to_string())?;
    Ok(driver.processor().summary())
}
