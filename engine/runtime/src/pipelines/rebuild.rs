//! `aiops rebuild`: throws the pipeline checkpoints away, replays the whole log through the
//! pipelines and writes fresh checkpoints, reaching the state an uninterrupted run would have.
//! Derived events it re-derives that the log already holds are recognized by id and not
//! appended again; any missing one is appended. Optionally writes every derived event to NDJSON
//! files (one per stream) so two rebuilds can be compared byte for byte.

use super::PipelinesConfig;
use super::load::load_dir;
use super::runner::{InfoBoard, Mode, Output, RunSummary, Runner};
use super::store::Store;
use aiops_log::EventLog;
use aiops_sql::runtime::EmissionKind;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writes outputs as NDJSON, one file per stream.
#[derive(Default)]
struct NdjsonFiles {
    files: BTreeMap<String, std::io::BufWriter<std::fs::File>>,
}

impl NdjsonFiles {
    fn add(&mut self, dir: &Path, o: &Output) -> Result<(), String> {
        let name = match o.emission.kind {
            EmissionKind::Output => o.output.clone(),
            EmissionKind::Late => format!("late.{}", o.pipeline),
        };
        if !self.files.contains_key(&name) {
            let path = dir.join(format!("{name}.ndjson"));
            let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            self.files.insert(name.clone(), std::io::BufWriter::new(f));
        }
        let Some(f) = self.files.get_mut(&name) else {
            return Ok(());
        };
        let mut w = arrow_json::LineDelimitedWriter::new(f);
        w.write(&o.emission.batch)
            .map_err(|e| format!("{name}: {e}"))?;
        w.finish().map_err(|e| format!("{name}: {e}"))
    }

    fn close(self) -> Result<(), String> {
        for (name, mut f) in self.files {
            f.flush().map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    }
}

/// Rebuilds pipeline state from the log. `progress` is called about once a second with the
/// position and the log end.
///
/// # Errors
/// A message naming what failed: a refused pipeline, the store (another process holds it: stop
/// the engine first), the log, or writing the output.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    cfg: &PipelinesConfig,
    store_dir: &Path,
    output: Option<&Path>,
    mut progress: impl FnMut(u64, u64),
) -> Result<RunSummary, String> {
    let pipelines = load_dir(&cfg.dir, cfg.runtime())
        .await
        .map_err(|e| e.to_string())?;
    let store = Store::open(store_dir)
        .map_err(|e| format!("{e} (is the engine running? stop it before a rebuild)"))?;
    store.clear().await.map_err(|e| e.to_string())?;
    let stats = log.stats().await.map_err(|e| e.to_string())?;
    let end = stats.next_seq;
    let mut runner = Runner::new(
        log,
        pipelines,
        Some(store),
        Mode::Live,
        stats.first_seq,
        InfoBoard::default(),
        Duration::MAX,
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some(dir) = output {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut files = NdjsonFiles::default();
    let mut last = Instant::now();
    loop {
        // No end bound: pipelines reading other pipelines' outputs must also read the outputs
        // this rebuild appends; with the engine stopped, the log ends when they are consumed.
        let (outs, n) = runner.step(1024, None).await.map_err(|e| e.to_string())?;
        if let Some(dir) = output {
            for o in &outs {
                files.add(dir, o)?;
            }
        }
        if last.elapsed() >= Duration::from_secs(1) {
            progress(runner.position(), end);
            last = Instant::now();
        }
        if n == 0 {
            break;
        }
    }
    runner.checkpoint().await.map_err(|e| e.to_string())?;
    files.close()?;
    Ok(runner.summary())
}

/// Where the engine keeps pipeline checkpoints under its data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    crate::store::store_dir(data_dir, "pipelines")
}
