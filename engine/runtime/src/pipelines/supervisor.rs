//! Keeps the engine's pipelines in step with the pipeline directory while it runs. Every
//! `reload_interval` the directory is read; when files were added, changed or removed, the new
//! set is compiled as a whole. A set that compiles is recorded as a control event in the log
//! (`aiops.control`, with the SQL of every file, so a replay knows which rules were live) and
//! replaces the running set: unchanged pipelines resume from their checkpoints, changed and new
//! ones rebuild their state from the log, removed ones lose theirs. A set with a bad file is
//! refused: the running set stays, and the problems show in `GET /api/pipelines`.

use super::PipelinesConfig;
use super::load::{self, PipelineSource};
use super::runner::{InfoBoard, Mode, Runner, Share};
use super::store::Store;
use crate::wire::{self, ids};
use aiops_log::{AppendMessage, EventLog};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn names(sources: &[PipelineSource]) -> BTreeMap<String, &str> {
    sources
        .iter()
        .map(|s| {
            let name = s
                .file
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, s.sql.as_str())
        })
        .collect()
}

/// The control event recording a change from `old` to `new`.
fn control_event(
    old: &[PipelineSource],
    new: &[PipelineSource],
    now_ms: i64,
) -> Result<AppendMessage, serde_json::Error> {
    let (o, n) = (names(old), names(new));
    let added: Vec<&String> = n.keys().filter(|k| !o.contains_key(*k)).collect();
    let removed: Vec<&String> = o.keys().filter(|k| !n.contains_key(*k)).collect();
    let changed: Vec<&String> = n
        .iter()
        .filter(|(k, v)| o.get(*k).is_some_and(|ov| ov != *v))
        .map(|(k, _)| k)
        .collect();
    let body = serde_json::json!({
        "type": "pipelines_changed",
        "added": added,
        "changed": changed,
        "removed": removed,
        "pipelines": n,
    });
    wire::control_message(ids::CONTROL, now_ms, &body)
}

/// Runs the pipelines of `cfg.dir` until `shutdown`, reloading on change.
///
/// # Errors
/// Only at start: when the directory's pipelines do not compile or the store cannot be opened
/// (the engine then refuses to start, naming every problem).
pub async fn start(
    log: Arc<dyn EventLog>,
    cfg: PipelinesConfig,
    store: Store,
    board: InfoBoard,
    shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<Result<(), String>>, String> {
    start_only(log, cfg, store, board, shutdown, None, Share::Whole).await
}

/// [`start`] running only the pipeline named `only` (cluster mode: one unit per pipeline; the
/// whole set is still compiled, so references between pipelines are checked, and the change
/// event is recorded by the unit of the first pipeline in name order only), doing `share` of
/// its work. A partition or merge unit whose pipeline no longer has that many partitions after
/// a change runs nothing until the new units replace it ([`follow_units`]).
///
/// # Errors
/// As [`start`].
pub async fn start_only(
    log: Arc<dyn EventLog>,
    cfg: PipelinesConfig,
    store: Store,
    board: InfoBoard,
    shutdown: watch::Receiver<bool>,
    only: Option<String>,
    share: Share,
) -> Result<tokio::task::JoinHandle<Result<(), String>>, String> {
    let sources = load::read_dir(&cfg.dir).map_err(|e| e.to_string())?;
    let tables = load::tables(&cfg.dir).map_err(|e| e.to_string())?;
    let mut compiled = load::compile_all(&sources, &tables, cfg.runtime())
        .await
        .map_err(|e| e.to_string())?;
    keep_only(&mut compiled, only.as_deref(), share);
    tracing::info!(dir = %cfg.dir.display(), pipelines = compiled.len(), "pipelines loaded");
    Ok(tokio::spawn(supervise(
        log, cfg, store, board, shutdown, sources, compiled, only, share,
    )))
}

fn keep_only(
    set: &mut Vec<aiops_sql::runtime::StreamingPipeline>,
    only: Option<&str>,
    share: Share,
) {
    if let Some(name) = only {
        set.retain(|p| p.name() == name);
    }
    let units = match share {
        Share::Whole => return,
        Share::Part { of, .. } | Share::Merge { of } => of,
    };
    set.retain(|p| {
        let same = p.partition_units() == units;
        if !same {
            tracing::warn!(
                pipeline = p.name(),
                partitions = p.partition_units(),
                running = units,
                "the pipeline's @partitions changed: its new units replace this one at the next reload; it runs nothing meanwhile"
            );
        }
        same
    });
}

#[allow(clippy::too_many_arguments)] // the state of one supervision, passed once
async fn supervise(
    log: Arc<dyn EventLog>,
    cfg: PipelinesConfig,
    store: Store,
    board: InfoBoard,
    mut shutdown: watch::Receiver<bool>,
    mut sources: Vec<PipelineSource>,
    mut compiled: Vec<aiops_sql::runtime::StreamingPipeline>,
    only: Option<String>,
    share: Share,
) -> Result<(), String> {
    loop {
        let first = match log.stats().await {
            Ok(s) => s.first_seq,
            Err(e) => {
                tracing::error!(error = %e, "pipelines cannot read the log; not running");
                return Err(e.to_string());
            }
        };
        let runner = match Runner::new_share(
            log.clone(),
            std::mem::take(&mut compiled),
            Some(store.clone()),
            Mode::Live,
            first,
            board.clone(),
            cfg.checkpoint_interval,
            share,
        )
        .await
        {
            Ok(mut r) => {
                if only.is_some() {
                    r.share_board();
                }
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "pipelines could not start");
                return Err(e.to_string());
            }
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut task = tokio::spawn(runner.follow(stop_rx));
        let interval = if cfg.reload_interval.is_zero() {
            Duration::from_secs(3600 * 24 * 365)
        } else {
            cfg.reload_interval
        };
        let next = loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    let _ = stop_tx.send(true);
                    if let Ok(Err(e)) = task.await {
                        tracing::error!(error = %e, "pipelines stopped with an error");
                    }
                    return Ok(());
                }
                res = &mut task => {
                    // The board shows the failure; single-node, the engine keeps serving, and
                    // in cluster mode the unit stops and starts again (or moves).
                    return match res {
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "pipelines stopped: restart the engine to resume from the last checkpoint");
                            Err(e.to_string())
                        }
                        Ok(Ok(())) => Ok(()),
                        Err(e) => {
                            tracing::error!(error = %e, "pipeline task panicked");
                            Err(e.to_string())
                        }
                    };
                }
                _ = tokio::time::sleep(interval) => {
                    let Ok(new) = load::read_dir(&cfg.dir) else { continue };
                    if new == sources {
                        continue;
                    }
                    let tables = match load::tables(&cfg.dir) {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::warn!(problems = %e, "pipeline change refused");
                            board.write().refused = e.problems;
                            continue;
                        }
                    };
                    match load::compile_all(&new, &tables, cfg.runtime()).await {
                        Ok(mut set) => {
                            // One record of the change: by the whole set's supervisor, or by
                            // the unit of the first pipeline in name order.
                            // A partitioned pipeline's merge unit records for it.
                            let records = !matches!(share, Share::Part { .. })
                                && only.as_deref().is_none_or(|o| {
                                    names(&new).keys().next().is_some_and(|first| first == o)
                                });
                            keep_only(&mut set, only.as_deref(), share);
                            let appended = if !records {
                                Ok(Vec::new())
                            } else {
                                match control_event(&sources, &new, crate::clock::now_ms()) {
                                    Ok(event) => log.append(vec![event]).await.map_err(|e| e.to_string()),
                                    Err(e) => Err(e.to_string()),
                                }
                            };
                            match appended {
                                Ok(_) => break (new, set),
                                Err(e) => tracing::error!(error = %e, "cannot record the pipeline change in the log; keeping the running set"),
                            }
                        }
                        Err(e) => {
                            tracing::warn!(problems = %e, "pipeline change refused; the running pipelines are unchanged");
                            board.write().refused = e.problems;
                        }
                    }
                }
            }
        };
        let (new_sources, set) = next;
        let _ = stop_tx.send(true);
        if let Ok(Err(e)) = task.await {
            tracing::error!(error = %e, "pipelines stopped with an error");
        }
        let kept: Vec<String> = set.iter().map(|p| p.name().to_string()).collect();
        for (name, _) in names(&sources) {
            if !kept.contains(&name)
                && let Err(e) = store.remove(&name).await
            {
                tracing::warn!(pipeline = %name, error = %e, "cannot remove the checkpoint of a removed pipeline");
            }
        }
        tracing::info!(pipelines = set.len(), "pipeline change applied");
        board.write().refused.clear();
        sources = new_sources;
        compiled = set;
    }
}

/// All SQL pipelines as one cluster work unit (`pipelines`): owned, the supervisor runs them
/// over the fenced log with their checkpoints in the cluster's blob store; followers run
/// nothing (pipeline outputs are in the log for every node to read).
pub struct PipelinesUnit {
    cfg: PipelinesConfig,
    board: InfoBoard,
    blobs: Arc<dyn aiops_log::Blobs>,
    /// `pipelines` (all of them), `pipeline.<name>`, or a partitioned pipeline's
    /// `pipeline.<name>.part<i>-of-<n>` / `pipeline.<name>.merge-of-<n>`.
    name: String,
    only: Option<String>,
    share: Share,
}

impl PipelinesUnit {
    /// The name of the unit running every pipeline.
    pub const NAME: &'static str = "pipelines";

    /// The unit over every pipeline of `cfg`, reporting to `board`.
    pub fn new(cfg: PipelinesConfig, board: InfoBoard, blobs: Arc<dyn aiops_log::Blobs>) -> Self {
        PipelinesUnit {
            cfg,
            board,
            blobs,
            name: Self::NAME.to_string(),
            only: None,
            share: Share::Whole,
        }
    }

    /// The unit `pipeline.<name>` running only pipeline `name` (its lease, fence subject and
    /// checkpoint blob are its own, so pipelines spread over the nodes).
    pub fn one(
        cfg: PipelinesConfig,
        board: InfoBoard,
        blobs: Arc<dyn aiops_log::Blobs>,
        name: &str,
    ) -> Self {
        PipelinesUnit {
            cfg,
            board,
            blobs,
            name: format!("pipeline.{name}"),
            only: Some(name.to_string()),
            share: Share::Whole,
        }
    }

    /// The units of pipeline `name` split over `partitions` partition units
    /// (`pipeline.<name>.part<i>-of-<n>`) and its merge unit (`pipeline.<name>.merge-of-<n>`);
    /// with one partition, the one unit of [`PipelinesUnit::one`]. The names hold the number
    /// of partitions, so changing `@partitions` replaces every unit of the pipeline.
    pub fn split(
        cfg: &PipelinesConfig,
        board: &InfoBoard,
        blobs: &Arc<dyn aiops_log::Blobs>,
        name: &str,
        partitions: u32,
    ) -> Vec<Self> {
        let one = Self::one(cfg.clone(), board.clone(), blobs.clone(), name);
        if partitions <= 1 {
            return vec![one];
        }
        let mut units: Vec<Self> = (0..partitions)
            .map(|index| PipelinesUnit {
                name: format!("pipeline.{name}.part{index}-of-{partitions}"),
                share: Share::Part {
                    index,
                    of: partitions,
                },
                ..Self::one(cfg.clone(), board.clone(), blobs.clone(), name)
            })
            .collect();
        units.push(PipelinesUnit {
            name: format!("pipeline.{name}.merge-of-{partitions}"),
            share: Share::Merge { of: partitions },
            ..one
        });
        units
    }
}

#[async_trait::async_trait]
impl crate::cluster::Unit for PipelinesUnit {
    fn name(&self) -> &str {
        &self.name
    }

    async fn own(
        self: Arc<Self>,
        log: Arc<dyn EventLog>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), crate::cluster::UnitError> {
        let err = |e: String| crate::cluster::UnitError::new(&self.name, e);
        let store = Store::from_store(
            crate::store::Store::open_blob(self.blobs.clone(), &self.name)
                .await
                .map_err(|e| err(e.to_string()))?,
        );
        let task = start_only(
            log,
            self.cfg.clone(),
            store,
            self.board.clone(),
            stop,
            self.only.clone(),
            self.share,
        )
        .await
        .map_err(err)?;
        match task.await {
            Ok(r) => r.map_err(err),
            Err(e) => Err(err(e.to_string())),
        }
    }
}

/// The cluster units of a compiled pipeline set: one per pipeline, or its partition units and
/// merge unit (`@partitions`).
pub fn units_of(
    cfg: &PipelinesConfig,
    board: &InfoBoard,
    blobs: &Arc<dyn aiops_log::Blobs>,
    set: &[aiops_sql::runtime::StreamingPipeline],
) -> Vec<Arc<dyn crate::cluster::Unit>> {
    set.iter()
        .flat_map(|p| PipelinesUnit::split(cfg, board, blobs, p.name(), p.partition_units()))
        .map(|u| Arc::new(u) as Arc<dyn crate::cluster::Unit>)
        .collect()
}

/// Cluster mode: follows the pipeline directory (every `reload_interval`) and publishes its
/// units on `units` whenever the set of files compiles to another list of units — a pipeline
/// file added while the nodes run gets its unit, a removed one loses it. A set that does not
/// compile leaves the list as it is (the units' supervisors show the problems). Runs until
/// `shutdown`.
pub async fn follow_units(
    cfg: PipelinesConfig,
    board: InfoBoard,
    blobs: Arc<dyn aiops_log::Blobs>,
    units: watch::Sender<Vec<Arc<dyn crate::cluster::Unit>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    if cfg.reload_interval.is_zero() {
        return;
    }
    let mut sources = load::read_dir(&cfg.dir).ok();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(cfg.reload_interval) => {}
        }
        let Ok(new) = load::read_dir(&cfg.dir) else {
            continue;
        };
        if sources.as_ref() == Some(&new) {
            continue;
        }
        let Ok(tables) = load::tables(&cfg.dir) else {
            continue;
        };
        let Ok(set) = load::compile_all(&new, &tables, cfg.runtime()).await else {
            continue;
        };
        sources = Some(new);
        let list = units_of(&cfg, &board, &blobs, &set);
        let names = |l: &[Arc<dyn crate::cluster::Unit>]| -> Vec<String> {
            l.iter().map(|u| u.name().to_string()).collect()
        };
        if names(&list) != names(&units.borrow()) {
            tracing::info!(units = list.len(), "pipeline units changed");
            let _ = units.send(list);
        }
    }
}
