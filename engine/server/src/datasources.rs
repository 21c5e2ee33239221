//! Pull sources managed at run time: the ones of the config file (`[[sources]]`, read-only
//! here) and the ones created through `/api/datasources`, which are kept in
//! `DATA_DIR/datasources.json` (written atomically: temp file, fsync, rename, fsync of the
//! directory) and started again on the next start. Two kinds run here: stream sources
//! (scrapes, the demo generator; [`crate::pull`]) and range sources (Prometheus `query_range`,
//! HTTP JSON, SQL, …; [`crate::range_pull`], with positions, backfill and health).
//! `POST /api/datasources/{id}/test` pulls once from a source and reports what came back
//! without writing anything to the log; `GET /api/datasources/{id}/metrics` shows a source's
//! health and counters.

use crate::ingest::Ingestor;
use crate::range_pull::{Health, Positions, RangeTask};
use aiops_connectors::outbound::OutboundPolicy;
use aiops_connectors::registry::{BuiltSource, PullSourceConfig};
use aiops_connectors::sources::range::redact_settings;
use aiops_log::coord::{Kv, KvWrite};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One managed source.
#[derive(Debug)]
struct Entry {
    /// `config` or `api`.
    origin: &'static str,
    /// The source's settings as given (with `type`).
    config: Value,
    /// The source's type name.
    type_name: &'static str,
    /// Range sources: their health and counters (kept across gated restarts).
    health: Option<Arc<Health>>,
    stop: watch::Sender<bool>,
}

/// The running pull sources.
#[derive(Debug)]
pub struct DataSources {
    file: PathBuf,
    ingestor: Arc<Ingestor>,
    /// The guard every source's requests pass (`[outbound] allow`).
    outbound: OutboundPolicy,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Serializes changes (file writes and restarts).
    write: tokio::sync::Mutex<()>,
    /// Cluster mode: whether this node pulls now (it owns the `sources` work unit, see
    /// [`DataSources::run_pulls`]). `None` single-node: every source pulls from its start.
    gate: Option<watch::Sender<bool>>,
    /// Cluster mode: where the API sources are kept instead of the file (see
    /// [`DataSources::share`]).
    shared: std::sync::OnceLock<Arc<dyn Kv>>,
    /// Where range sources keep their positions.
    positions: Arc<Positions>,
}

/// Why the sources could not start.
#[derive(Debug, thiserror::Error)]
pub enum DataSourceError {
    /// A source's settings are invalid.
    #[error("data source {id}: {message}")]
    Invalid {
        /// The source.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A target is loopback, private, link-local or cloud metadata and not in
    /// `[outbound] allow`: the operator must list it there or use another target.
    #[error("data source {id}: {}", reasons.join("; "))]
    Refused {
        /// The source.
        id: String,
        /// Each refused target with its address class.
        reasons: Vec<String>,
    },
    /// A source's settings do not build into a source.
    #[error("{0}")]
    Build(String),
    /// No source has this id.
    #[error("no data source {0}")]
    NotFound(String),
    /// A source with this id exists (create).
    #[error("data source {0} exists; PUT replaces it")]
    Exists(String),
    /// The source is defined in the config file: the operator changes it there.
    #[error("data source {id} is defined in the config file; {verb} it there")]
    InConfig {
        /// The source.
        id: String,
        /// `change` or `remove`.
        verb: &'static str,
    },
    /// The stored sources cannot be read or written.
    #[error("{path}: {detail}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

/// Cluster mode: the JetStream key-value bucket of the API sources (key `source.<id>`, value
/// the source's settings as given, as in `datasources.json`).
pub const DATASOURCES_BUCKET: &str = "AIOPS_DATASOURCES";

/// The key prefix of a source in [`DATASOURCES_BUCKET`].
const SOURCE_PREFIX: &str = "source.";

/// Cluster mode: how often a node reads the data source bucket whole, besides following its
/// changes.
pub const SHARED_REFRESH: Duration = Duration::from_secs(5);

/// The path of the stored API sources.
pub fn store_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("datasources.json")
}

/// An id for config source `index`: `<type>-<job>` for a scrape, `<type>-<index>` otherwise.
fn config_id(index: usize, c: &PullSourceConfig) -> String {
    match c {
        PullSourceConfig::Scrape(s) => format!("scrape-{}", s.job),
        other => format!("{}-{index}", other.type_name()),
    }
}

fn parse(id: &str, v: &Value) -> Result<PullSourceConfig, DataSourceError> {
    PullSourceConfig::from_json(v).map_err(|message| DataSourceError::Invalid {
        id: id.to_string(),
        message,
    })
}

impl DataSources {
    /// Starts the sources of the config file (`config`, with their JSON form) and the stored
    /// API sources; every source stops when `shutdown` flips. With `gated` (cluster mode) the
    /// sources are defined but pull only while [`DataSources::run_pulls`] runs — on the owner
    /// of the `sources` work unit.
    ///
    /// # Errors
    /// [`DataSourceError`] for an unreadable store or a source that does not build.
    pub fn start(
        data_dir: &std::path::Path,
        config: &[PullSourceConfig],
        config_json: &[Value],
        ingestor: Arc<Ingestor>,
        outbound: OutboundPolicy,
        gated: bool,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<DataSources>, DataSourceError> {
        let file = store_path(data_dir);
        let ds = Arc::new(DataSources {
            file: file.clone(),
            ingestor,
            outbound,
            entries: Mutex::new(BTreeMap::new()),
            write: tokio::sync::Mutex::new(()),
            gate: gated.then(|| watch::channel(false).0),
            shared: std::sync::OnceLock::new(),
            positions: Arc::new(Positions::new(data_dir, gated)),
        });
        for (i, c) in config.iter().enumerate() {
            let v = config_json.get(i).cloned().unwrap_or(Value::Null);
            ds.launch(config_id(i, c), "config", c, v)?;
        }
        for (id, v) in ds.stored()? {
            let c = parse(&id, &v)?;
            ds.launch(id, "api", &c, v)?;
        }
        let stop_all = ds.clone();
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|s| *s).await;
            for e in stop_all.entries.lock().values() {
                let _ = e.stop.send(true);
            }
        });
        Ok(ds)
    }

    fn stored(&self) -> Result<BTreeMap<String, Value>, DataSourceError> {
        match std::fs::read(&self.file) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| DataSourceError::Store {
                path: self.file.clone(),
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(DataSourceError::Store {
                path: self.file.clone(),
                detail: e.to_string(),
            }),
        }
    }

    fn persist(&self) -> Result<(), DataSourceError> {
        let api: BTreeMap<String, Value> = self
            .entries
            .lock()
            .iter()
            .filter(|(_, e)| e.origin == "api")
            .map(|(k, e)| (k.clone(), e.config.clone()))
            .collect();
        let store = |detail: String| DataSourceError::Store {
            path: self.file.clone(),
            detail,
        };
        let bytes = serde_json::to_vec_pretty(&api).map_err(|e| store(e.to_string()))?;
        let dir = self
            .file
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        // Temp file, fsync, rename, fsync of the directory: a crash leaves the old or the new
        // set, never a torn file.
        crate::range_pull::write_atomic(&dir, &self.file, &bytes).map_err(|e| store(e.to_string()))
    }

    /// Stores one API source's change: `config` written (`creating`: only if no node has that
    /// id) or, `None`, removed. Single-node the whole file is rewritten from the entries; in
    /// cluster mode the source's key of the bucket is written.
    async fn store_one(
        &self,
        id: &str,
        config: Option<&Value>,
        creating: bool,
    ) -> Result<(), DataSourceError> {
        let Some(kv) = self.shared.get() else {
            return self.persist();
        };
        let key = format!("{SOURCE_PREFIX}{id}");
        let failed = |e: aiops_log::LogError| DataSourceError::Store {
            path: PathBuf::from(format!("cluster bucket {DATASOURCES_BUCKET}")),
            detail: e.to_string(),
        };
        match config {
            Some(v) => {
                let body = serde_json::to_vec(v).map_err(|e| DataSourceError::Store {
                    path: PathBuf::from(format!("cluster bucket {DATASOURCES_BUCKET}")),
                    detail: e.to_string(),
                })?;
                if creating {
                    if kv.create(&key, body.into()).await.map_err(failed)? == KvWrite::Conflict {
                        return Err(DataSourceError::Exists(id.to_string()));
                    }
                } else {
                    kv.put(&key, body.into()).await.map_err(failed)?;
                }
            }
            None => {
                kv.delete(&key, None).await.map_err(failed)?;
            }
        }
        Ok(())
    }

    /// Cluster mode: the API sources are kept in the cluster's bucket `kv`
    /// ([`DATASOURCES_BUCKET`]) from now on, so every node lists — and defines, for whichever
    /// node pulls — the same ones. Sources of this node's `datasources.json` that the bucket
    /// does not have are copied to it once (the file is then renamed `datasources.json.imported`);
    /// the bucket's sources replace this node's API sources, and a task follows the bucket's
    /// changes (and reads it whole every [`SHARED_REFRESH`]) until `shutdown`.
    ///
    /// # Errors
    /// [`DataSourceError::Store`] when the bucket cannot be read or written.
    pub async fn share(
        self: &Arc<Self>,
        kv: Arc<dyn Kv>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), DataSourceError> {
        let failed = |e: aiops_log::LogError| DataSourceError::Store {
            path: PathBuf::from(format!("cluster bucket {DATASOURCES_BUCKET}")),
            detail: e.to_string(),
        };
        let local = self.stored()?;
        for (id, v) in &local {
            let body = serde_json::to_vec(v).map_err(|e| DataSourceError::Store {
                path: self.file.clone(),
                detail: e.to_string(),
            })?;
            // Another node's source of the same id wins.
            kv.create(&format!("{SOURCE_PREFIX}{id}"), body.into())
                .await
                .map_err(failed)?;
        }
        if !local.is_empty() {
            let to = self.file.with_extension("json.imported");
            match std::fs::rename(&self.file, &to) {
                Ok(()) => tracing::info!(
                    sources = local.len(),
                    file = %to.display(),
                    "cluster mode: this node's API data sources were copied to the cluster"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, file = %self.file.display(), "cannot rename the imported data source file")
                }
            }
        }
        // Watch first, then read whole: no change between the two is missed.
        let mut watch = kv.watch().await.map_err(failed)?;
        let _ = self.shared.set(kv.clone());
        // Range sources keep their positions in the same bucket (`position.<id>`), where the
        // next owner of the `sources` unit finds them.
        self.positions.share(kv.clone());
        self.sync_shared(&kv).await.map_err(failed)?;
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SHARED_REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                /// What woke the follower.
                enum Step {
                    Shutdown,
                    Resync,
                    Rewatch,
                }
                let step = tokio::select! {
                    r = shutdown.changed() => if r.is_err() { Step::Shutdown } else { Step::Resync },
                    _ = tick.tick() => Step::Resync,
                    c = watch.next() => if matches!(c, Some(Ok(_))) { Step::Resync } else { Step::Rewatch },
                };
                if matches!(step, Step::Shutdown) || *shutdown.borrow() {
                    return;
                }
                if matches!(step, Step::Rewatch) {
                    // The feed broke: start it again, then read whole.
                    match kv.watch().await {
                        Ok(w) => watch = w,
                        Err(e) => {
                            tracing::warn!(error = %e, "data source bucket change feed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
                let Some(ds) = me.upgrade() else { return };
                if let Err(e) = ds.sync_shared(&kv).await {
                    tracing::warn!(error = %e, "reading the data source bucket");
                }
            }
        });
        Ok(())
    }

    /// Cluster mode: makes this node's API sources those of the bucket — defines the new and
    /// changed ones ([`DataSources::launch`]), stops and forgets the removed ones. A source of
    /// the config file keeps its id.
    async fn sync_shared(&self, kv: &Arc<dyn Kv>) -> Result<(), aiops_log::LogError> {
        // Under the change lock: a source created here meanwhile is in the listing.
        let _one = self.write.lock().await;
        let listed = kv.list(SOURCE_PREFIX).await?;
        let mut want: BTreeMap<String, Value> = BTreeMap::new();
        for e in listed {
            let id = e.key[SOURCE_PREFIX.len()..].to_string();
            match serde_json::from_slice::<Value>(&e.value) {
                Ok(v) => {
                    want.insert(id, v);
                }
                Err(err) => {
                    tracing::warn!(id = %id, error = %err, "data source in the cluster bucket is not JSON; skipped");
                }
            }
        }
        let (stale, changed): (Vec<String>, Vec<(String, Value)>) = {
            let entries = self.entries.lock();
            let stale = entries
                .iter()
                .filter(|(k, e)| e.origin == "api" && !want.contains_key(*k))
                .map(|(k, _)| k.clone())
                .collect();
            let changed = want
                .into_iter()
                .filter(|(k, v)| match entries.get(k) {
                    None => true,
                    Some(e) => e.origin == "api" && e.config != *v,
                })
                .collect();
            (stale, changed)
        };
        for id in stale {
            if let Some(e) = self.entries.lock().remove(&id) {
                let _ = e.stop.send(true);
            }
        }
        for (id, v) in changed {
            let launched = parse(&id, &v).and_then(|c| self.launch(id.clone(), "api", &c, v));
            if let Err(e) = launched {
                tracing::warn!(id = %id, error = %e, "data source of the cluster bucket not defined on this node");
            }
        }
        Ok(())
    }

    fn launch(
        &self,
        id: String,
        origin: &'static str,
        c: &PullSourceConfig,
        config: Value,
    ) -> Result<(), DataSourceError> {
        let reasons = c.refused_targets(&self.outbound);
        if !reasons.is_empty() {
            tracing::warn!(id = %id, origin, "data source refused: a target is not public and not in outbound.allow");
            return Err(DataSourceError::Refused { id, reasons });
        }
        let src = c
            .build_any(&self.outbound)
            .map_err(|e| DataSourceError::Invalid {
                id: id.clone(),
                message: e.to_string(),
            })?;
        let health = matches!(src, BuiltSource::Range(_)).then(|| Arc::new(Health::default()));
        let task = health.as_ref().map(|h| RangeTask {
            id: id.clone(),
            ingestor: self.ingestor.clone(),
            positions: self.positions.clone(),
            health: h.clone(),
        });
        let (tx, rx) = watch::channel(false);
        // The old instance stops before the new one starts: two tasks of one range source
        // would race on its position.
        if let Some(old) = self.entries.lock().remove(&id) {
            let _ = old.stop.send(true);
        }
        match &self.gate {
            None => {
                tracing::info!(id = %id, origin, kind = c.type_name(), "starting pull source");
                match (src, task) {
                    (BuiltSource::Range(s), Some(t)) => {
                        tokio::spawn(crate::range_pull::run(t, s, rx));
                    }
                    (BuiltSource::Stream(s), _) => {
                        tokio::spawn(crate::pull::run(s, self.ingestor.clone(), rx));
                    }
                    (BuiltSource::Range(_), None) => {}
                }
            }
            Some(gate) => {
                tracing::info!(id = %id, origin, kind = c.type_name(), "pull source defined (pulls on the owner of the sources unit)");
                tokio::spawn(gated_pull(
                    id.clone(),
                    c.clone(),
                    self.outbound.clone(),
                    self.ingestor.clone(),
                    task,
                    gate.subscribe(),
                    rx,
                ));
            }
        }
        self.entries.lock().insert(
            id,
            Entry {
                origin,
                config,
                type_name: c.type_name(),
                health,
                stop: tx,
            },
        );
        Ok(())
    }

    /// Cluster mode: pulls every source — of the config file and of the API, including ones
    /// created or changed while this runs — until `stop` flips (or this future is dropped: the
    /// member aborts an owner that lost its lease). Only the owner of the `sources` work unit
    /// calls it. Single-node (not gated) the sources pull anyway and this only waits.
    pub async fn run_pulls(&self, mut stop: watch::Receiver<bool>) {
        /// Closes the gate however the future ends.
        struct Open<'a>(&'a watch::Sender<bool>);
        impl Drop for Open<'_> {
            fn drop(&mut self) {
                self.0.send_replace(false);
            }
        }
        let _open = self.gate.as_ref().map(|g| {
            g.send_replace(true);
            tracing::info!(
                sources = self.entries.lock().len(),
                "this node pulls the data sources"
            );
            Open(g)
        });
        let _ = stop.wait_for(|s| *s).await;
    }

    /// Whether this node pulls now: always single-node, only the `sources` owner in cluster
    /// mode.
    pub fn pulling_here(&self) -> bool {
        self.gate.as_ref().is_none_or(|g| *g.borrow())
    }

    /// `running`: the source is defined and not stopped (cluster-wide); `pulled_here`: this
    /// node pulls it now (in cluster mode only the `sources` owner does).
    fn view(id: &str, e: &Entry, here: bool) -> Value {
        let running = !*e.stop.borrow();
        json!({"id": id, "origin": e.origin, "type": e.type_name,
               "config": redact_settings(&e.config), "running": running,
               "pulled_here": running && here})
    }

    /// A source's health and counters: for a range source its state (`ok`, `backfilling`,
    /// `failing` with the last error, `idle` where it does not pull), last success, position,
    /// lag, rows and series per kind, pulls, failures, backfilled ranges; for a stream source
    /// only whether it runs. `None` for an unknown id.
    pub fn metrics(&self, id: &str) -> Option<Value> {
        let here = self.pulling_here();
        let now = crate::clock::now_ms();
        let entries = self.entries.lock();
        let e = entries.get(id)?;
        let running = !*e.stop.borrow();
        let mut v = match &e.health {
            Some(h) => h.to_json(now),
            None => json!({}),
        };
        v["id"] = json!(id);
        v["type"] = json!(e.type_name);
        v["range"] = json!(e.health.is_some());
        v["running"] = json!(running);
        v["pulled_here"] = json!(running && here);
        Some(v)
    }

    /// The `aiops_datasource_*{id="…"}` lines of `/metrics` (range sources).
    pub fn metrics_text(&self) -> String {
        let now = crate::clock::now_ms();
        let entries = self.entries.lock();
        let mut out = String::new();
        if entries.values().any(|e| e.health.is_some()) {
            crate::range_pull::metrics_header(&mut out);
        }
        for (id, e) in entries.iter() {
            if let Some(h) = &e.health {
                h.metrics_text(id, now, &mut out);
            }
        }
        out
    }

    /// Every source, as `{"id", "origin", "config", "running", "pulled_here"}`.
    pub fn list(&self) -> Vec<Value> {
        let here = self.pulling_here();
        self.entries
            .lock()
            .iter()
            .map(|(k, e)| DataSources::view(k, e, here))
            .collect()
    }

    /// One source.
    pub fn get(&self, id: &str) -> Option<Value> {
        let here = self.pulling_here();
        self.entries
            .lock()
            .get(id)
            .map(|e| DataSources::view(id, e, here))
    }

    /// Creates (`creating`) or replaces an API source, starts it and stores the API sources;
    /// returns its view.
    ///
    /// # Errors
    /// [`DataSourceError`]: exists, not found, from the config file, invalid, refused, store.
    pub async fn upsert(
        &self,
        id: String,
        config: Value,
        creating: bool,
    ) -> Result<Value, DataSourceError> {
        let _one = self.write.lock().await;
        let existing = self.entries.lock().get(&id).map(|e| e.origin);
        match (existing, creating) {
            (Some(_), true) => return Err(DataSourceError::Exists(id)),
            (None, false) => return Err(DataSourceError::NotFound(id)),
            (Some("config"), false) => {
                return Err(DataSourceError::InConfig { id, verb: "change" });
            }
            _ => {}
        }
        let c = parse(&id, &config)?;
        self.launch(id.clone(), "api", &c, config.clone())?;
        if let Err(e) = self.store_one(&id, Some(&config), creating).await {
            if creating && let Some(e) = self.entries.lock().remove(&id) {
                // Created on another node meanwhile (cluster mode): not ours to run.
                let _ = e.stop.send(true);
            }
            return Err(e);
        }
        Ok(self.get(&id).unwrap_or(Value::Null))
    }

    /// Stops and removes an API source.
    ///
    /// # Errors
    /// [`DataSourceError`]: not found, from the config file, store.
    pub async fn remove(&self, id: &str) -> Result<(), DataSourceError> {
        let _one = self.write.lock().await;
        let origin = self.entries.lock().get(id).map(|e| e.origin);
        match origin {
            None => return Err(DataSourceError::NotFound(id.to_string())),
            Some("config") => {
                return Err(DataSourceError::InConfig {
                    id: id.to_string(),
                    verb: "remove",
                });
            }
            Some(_) => {}
        }
        if let Some(e) = self.entries.lock().remove(id) {
            let _ = e.stop.send(true);
        }
        self.store_one(id, None, false).await?;
        // A source created again under this id starts afresh.
        self.positions.forget(id).await;
        Ok(())
    }

    /// Pulls once from a fresh instance of the source (nothing is written) and reports the
    /// batches: `ok`, rows per kind, targets up or down, elapsed time.
    ///
    /// # Errors
    /// [`DataSourceError`]: not found, invalid, refused. A source that does not answer is an
    /// `ok: false` report, not an error.
    pub async fn test(&self, id: &str) -> Result<Value, DataSourceError> {
        let config = self
            .entries
            .lock()
            .get(id)
            .map(|e| e.config.clone())
            .ok_or_else(|| DataSourceError::NotFound(id.to_string()))?;
        let c = parse(id, &config)?;
        let limit = match &c {
            PullSourceConfig::Scrape(s) => s
                .timeout
                .min(s.interval)
                .saturating_add(Duration::from_secs(2)),
            _ => Duration::from_secs(15),
        };
        let reasons = c.refused_targets(&self.outbound);
        if !reasons.is_empty() {
            return Err(DataSourceError::Refused {
                id: id.to_string(),
                reasons,
            });
        }
        if let Some(built) = c.build_range(&self.outbound) {
            let src = built.map_err(|e| DataSourceError::Build(e.to_string()))?;
            return Ok(test_range(src.as_ref()).await);
        }
        let mut src = c
            .build_with(&self.outbound)
            .map_err(|e| DataSourceError::Build(e.to_string()))?;
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(limit, src.next_batch()).await;
        let ms = started.elapsed().as_millis() as u64;
        Ok(match outcome {
            Err(_) => {
                json!({"ok": false, "error": format!("no answer within {}", humantime::format_duration(limit)), "elapsed_ms": ms})
            }
            Ok(Err(e)) => json!({"ok": false, "error": e.to_string(), "elapsed_ms": ms}),
            Ok(Ok(None)) => {
                json!({"ok": false, "error": "the source has nothing more to give", "elapsed_ms": ms})
            }
            Ok(Ok(Some(batches))) => {
                let mut rows: BTreeMap<String, usize> = BTreeMap::new();
                let mut targets: BTreeMap<String, bool> = BTreeMap::new();
                for b in &batches {
                    *rows.entry(b.kind.as_str().to_string()).or_default() += b.batch.num_rows();
                    up_samples(&b.batch, &mut targets);
                }
                let down: Vec<&String> = targets
                    .iter()
                    .filter(|(_, up)| !**up)
                    .map(|(t, _)| t)
                    .collect();
                let mut v = json!({"ok": down.is_empty(), "batches": batches.len(), "rows": rows, "elapsed_ms": ms});
                if !targets.is_empty() {
                    v["targets"] = json!(targets);
                }
                if !down.is_empty() {
                    v["error"] = json!(format!(
                        "scrape target(s) down: {}",
                        down.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                v
            }
        })
    }
}

/// Runs a range source's `test` (bounded in time) as the API's report: `ok` (reachable and no
/// problem), `reachable`, `rows` per kind, `problems`, `examples`, the sampled range and the
/// elapsed time. Nothing is written.
async fn test_range(src: &dyn aiops_connectors::sources::range::RangeSource) -> Value {
    let limit = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(limit, src.test(crate::clock::now_ms())).await;
    let ms = started.elapsed().as_millis() as u64;
    match outcome {
        Err(_) => {
            json!({"ok": false, "reachable": false, "error": "no answer within 1m", "elapsed_ms": ms})
        }
        Ok(Err(e)) => json!({"ok": false, "error": e.to_string(), "elapsed_ms": ms}),
        Ok(Ok(r)) => {
            let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
            v["ok"] = json!(r.reachable && r.problems.is_empty());
            v["elapsed_ms"] = json!(ms);
            if let Some(p) = r.problems.first() {
                v["error"] = json!(p);
            }
            v
        }
    }
}

/// One source in cluster mode: pulls (a fresh instance each time) while `gate` is open, until
/// `stop` flips or the entry is dropped. A range source resumes from the position its last
/// owner stored in the cluster bucket.
async fn gated_pull(
    id: String,
    config: PullSourceConfig,
    outbound: OutboundPolicy,
    ingestor: Arc<Ingestor>,
    range: Option<RangeTask>,
    mut gate: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = gate.wait_for(|g| *g) => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        if *stop.borrow() {
            return;
        }
        let src = match config.build_any(&outbound) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "pull source does not build; not pulled");
                return;
            }
        };
        tracing::info!(id = %id, kind = config.type_name(), "starting pull source");
        let (tx, rx) = watch::channel(false);
        let run = match (src, &range) {
            (BuiltSource::Range(s), Some(t)) => {
                tokio::spawn(crate::range_pull::run(t.clone(), s, rx))
            }
            (BuiltSource::Stream(s), _) => tokio::spawn(crate::pull::run(s, ingestor.clone(), rx)),
            (BuiltSource::Range(_), None) => return,
        };
        tokio::select! {
            _ = gate.wait_for(|g| !*g) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        let _ = tx.send(true);
        let _ = run.await;
        if let Some(t) = &range {
            t.health.idle();
        }
        tracing::info!(id = %id, "pull source stopped on this node");
    }
}

/// The `up` samples of a scrape batch (`instance` → up), which say whether each target answered.
fn up_samples(b: &aiops_schemas::arrow_array::RecordBatch, out: &mut BTreeMap<String, bool>) {
    use aiops_schemas::arrow_array::Array;
    use aiops_schemas::arrow_array::cast::AsArray;
    use aiops_schemas::arrow_array::types::Float64Type;
    let (Some(name), Some(value), Some(labels)) = (
        b.column_by_name("name"),
        b.column_by_name("value"),
        b.column_by_name("labels"),
    ) else {
        return;
    };
    let (Some(name), Some(value), Some(labels)) = (
        name.as_string_opt::<i32>(),
        value.as_primitive_opt::<Float64Type>(),
        labels.as_map_opt(),
    ) else {
        return;
    };
    for i in 0..b.num_rows() {
        if name.is_null(i) || name.value(i) != "up" {
            continue;
        }
        let entry = labels.value(i);
        let (Some(k), Some(v)) = (
            entry.column(0).as_string_opt::<i32>(),
            entry.column(1).as_string_opt::<i32>(),
        ) else {
            continue;
        };
        if let Some(j) = (0..k.len()).find(|&j| k.value(j) == "instance") {
            out.insert(v.value(j).to_string(), value.value(i) == 1.0);
        }
    }
}
