//! Alerting state from the whole log (`aiops rebuild`): the checkpoint is dropped, every alert,
//! command and tick is replayed, decisions already in the log are recognized by id and not
//! appended again, and a fresh checkpoint is written. Optionally the decisions are written to
//! `alerting.ndjson` (when there are any) so two rebuilds (or a rebuild and the live log) can be
//! compared.

use super::AlertingSettings;
use super::codec::parse_decisions;
use super::processor::{AlertProcessor, AlertRunSummary, AlertingHandle};
use crate::driver::{BATCH, Driver};
use crate::store::Store;
use aiops_alerting::AlertEngine;
use aiops_log::EventLog;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rebuilds the alerting state; `progress` is called about once a second.
///
/// # Errors
/// A message naming what failed: the configuration, the store (stop the engine first), the log,
/// or the output file.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    settings: &AlertingSettings,
    store_dir: &Path,
    output: Option<&Path>,
    mut progress: impl FnMut(u64, u64),
) -> Result<AlertRunSummary, String> {
    let (cfg, text) = settings.load()?;
    let store = Store::open(store_dir)
        .map_err(|e| format!("{e} (is the engine running? stop it before a rebuild)"))?;
    let head = log.stats().await.map_err(|e| e.to_string())?.next_seq;
    let handle = AlertingHandle::new(AlertEngine::new(cfg), text);
    let mut driver = Driver::prepare_rebuild(log, AlertProcessor::new(handle), store)
        .await
        .map_err(|e| e.to_string())?
        .collecting();
    // Created with the first decision, so a log without alerts leaves no empty file behind.
    let mut file: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut last = Instant::now();
    loop {
        let n = driver.step(BATCH).await.map_err(|e| e.to_string())?;
        let msgs = driver.take_collected();
        if let (Some(dir), None, false) = (output, file.as_ref(), msgs.is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = dir.join("alerting.ndjson");
            let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            file = Some(std::io::BufWriter::new(f));
        }
        if let Some(f) = file.as_mut() {
            for m in &msgs {
                for d in parse_decisions(&m.payload).map_err(|e| e.to_string())? {
                    serde_json::to_writer(&mut *f, &d).map_err(|e| e.to_string())?;
                    f.write_all(b"\n").map_err(|e| e.to_string())?;
                }
            }
        }
        if last.elapsed() >= Duration::from_secs(1) {
            progress(driver.position(), head);
            last = Instant::now();
        }
        if n == 0 {
            break;
        }
    }
    driver.checkpoint().await.map_err(|e| e.to_string())?;
    if let Some(mut f) = file {
        f.flush().map_err(|e| e.to_string())?;
    }
    Ok(driver.processor().summary())
}
