//! The knowledge base from the whole log (`aiops rebuild`): the checkpoint is dropped, every
//! knowledge command and recorded LLM call is read again, and a fresh checkpoint is written.

use super::processor::{KnowledgeHandle, KnowledgeProcessor, KnowledgeRunSummary};
use crate::driver::Driver;
use crate::store::Store;
use aiops_log::EventLog;
use std::path::Path;
use std::sync::Arc;

/// Rebuilds the knowledge base; `progress` is called about once a second. Returns the counts
/// and the hash of the rebuilt entries (equal to a live engine's over the same log).
///
/// # Errors
/// A message naming what failed: the store (stop the engine first) or the log.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    store_dir: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<(KnowledgeRunSummary, u64), String> {
    let store = Store::open(store_dir)
        .map_err(|e| format!("{e} (is the engine running? stop it before a rebuild)"))?;
    let processor = KnowledgeProcessor::new(KnowledgeHandle::new());
    let driver = Driver::rebuild(log, processor, store, progress)
        .await
        .map_err(|e| e.to_string())?;
    let hash = driver.processor().handle().kb.read().state_hash();
    Ok((driver.processor().summary(), hash))
}
