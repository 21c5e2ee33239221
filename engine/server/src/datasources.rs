//! Pull sources (Prometheus scrapes, the demo generator) managed at run time: the ones of the
//! config file (`[[sources]]`, read-only here) and the ones created through
//! `/api/datasources`, which are kept in `DATA_DIR/datasources.json` and started again on the
//! next start. `POST /api/datasources/{id}/test` pulls once from a source and reports what came
//! back without writing anything to the log.

// Handlers return the error response itself; it is built once per failed request.
#![allow(clippy::result_large_err)]

use crate::api::err;
use crate::http::AppState;
use crate::ingest::Ingestor;
use aiops_connectors::outbound::OutboundPolicy;
use aiops_connectors::registry::PullSourceConfig;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    /// The stored sources cannot be read or written.
    #[error("{path}: {detail}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

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
    serde_json::from_value(v.clone()).map_err(|e| DataSourceError::Invalid {
        id: id.to_string(),
        message: format!("{e} (types: scrape, demo)"),
    })
}

impl DataSources {
    /// Starts the sources of the config file (`config`, with their JSON form) and the stored
    /// API sources; every source stops when `shutdown` flips.
    ///
    /// # Errors
    /// [`DataSourceError`] for an unreadable store or a source that does not build.
    pub fn start(
        data_dir: &std::path::Path,
        config: &[PullSourceConfig],
        config_json: &[Value],
        ingestor: Arc<Ingestor>,
        outbound: OutboundPolicy,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<DataSources>, DataSourceError> {
        let file = store_path(data_dir);
        let ds = Arc::new(DataSources {
            file: file.clone(),
            ingestor,
            outbound,
            entries: Mutex::new(BTreeMap::new()),
            write: tokio::sync::Mutex::new(()),
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
        let tmp = self.file.with_extension("json.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| store(e.to_string()))?;
        std::fs::rename(&tmp, &self.file).map_err(|e| store(e.to_string()))
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
            .build_with(&self.outbound)
            .map_err(|e| DataSourceError::Invalid {
                id: id.clone(),
                message: e.to_string(),
            })?;
        let (tx, rx) = watch::channel(false);
        tracing::info!(source = src.name(), id = %id, origin, "starting pull source");
        tokio::spawn(crate::pull::run(src, self.ingestor.clone(), rx));
        if let Some(old) = self.entries.lock().insert(
            id,
            Entry {
                origin,
                config,
                stop: tx,
            },
        ) {
            let _ = old.stop.send(true);
        }
        Ok(())
    }

    fn view(id: &str, e: &Entry) -> Value {
        json!({"id": id, "origin": e.origin, "config": e.config, "running": !*e.stop.borrow()})
    }
}

/// Adds the routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/datasources", get(list).post(create))
        .route(
            "/api/datasources/{id}",
            get(show).put(replace).delete(remove),
        )
        .route("/api/datasources/{id}/test", post(test))
}

fn valid_id(id: &str) -> Result<(), Response> {
    let ok = (1..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(err(
            StatusCode::BAD_REQUEST,
            "bad_id",
            format!("id {id:?}: use 1 to 63 of a-z, 0-9, - and _"),
        ))
    }
}

fn body(b: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(b) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => Err(err(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "expected a JSON object: {\"id\": \"…\", \"type\": \"scrape\", \"job\": \"…\", \"targets\": [\"host:port\"]}",
        )),
    }
}

fn invalid(e: &DataSourceError) -> Response {
    match e {
        DataSourceError::Invalid { .. } => err(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
        DataSourceError::Refused { .. } => err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "outbound_refused",
            format!("{e} (list the target in [outbound] allow to reach it)"),
        ),
        DataSourceError::Store { .. } => {
            err(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
        }
    }
}

async fn list(State(st): State<AppState>) -> Response {
    let items: Vec<Value> = st
        .datasources
        .entries
        .lock()
        .iter()
        .map(|(k, e)| DataSources::view(k, e))
        .collect();
    axum::Json(json!({"datasources": items})).into_response()
}

async fn show(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match st.datasources.entries.lock().get(&id) {
        Some(e) => axum::Json(DataSources::view(&id, e)).into_response(),
        None => err(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no data source {id}"),
        ),
    }
}

async fn upsert(st: &AppState, id: String, config: Value, creating: bool) -> Response {
    let ds = &st.datasources;
    let _one = ds.write.lock().await;
    let existing = ds.entries.lock().get(&id).map(|e| e.origin);
    match (existing, creating) {
        (Some(_), true) => {
            return err(
                StatusCode::CONFLICT,
                "exists",
                format!("data source {id} exists; PUT replaces it"),
            );
        }
        (None, false) => {
            return err(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no data source {id}"),
            );
        }
        (Some("config"), false) => {
            return err(
                StatusCode::CONFLICT,
                "config",
                format!("data source {id} is defined in the config file; change it there"),
            );
        }
        _ => {}
    }
    let c = match parse(&id, &config) {
        Ok(c) => c,
        Err(e) => return invalid(&e),
    };
    if let Err(e) = ds.launch(id.clone(), "api", &c, config) {
        return invalid(&e);
    }
    if let Err(e) = ds.persist() {
        return invalid(&e);
    }
    let status = if creating {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let v = ds
        .entries
        .lock()
        .get(&id)
        .map(|e| DataSources::view(&id, e))
        .unwrap_or(Value::Null);
    (status, axum::Json(v)).into_response()
}

async fn create(State(st): State<AppState>, b: axum::body::Bytes) -> Response {
    let mut m = match body(&b) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(Value::String(id)) = m.remove("id") else {
        return err(
            StatusCode::BAD_REQUEST,
            "bad_id",
            "`id` (a string) is required",
        );
    };
    if let Err(r) = valid_id(&id) {
        return r;
    }
    upsert(&st, id, Value::Object(m), true).await
}

async fn replace(
    State(st): State<AppState>,
    Path(id): Path<String>,
    b: axum::body::Bytes,
) -> Response {
    let mut m = match body(&b) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if m.remove("id").is_some_and(|v| v != json!(id)) {
        return err(
            StatusCode::BAD_REQUEST,
            "bad_id",
            "the body's id differs from the path's",
        );
    }
    upsert(&st, id, Value::Object(m), false).await
}

async fn remove(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let ds = &st.datasources;
    let _one = ds.write.lock().await;
    let origin = ds.entries.lock().get(&id).map(|e| e.origin);
    match origin {
        None => {
            return err(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no data source {id}"),
            );
        }
        Some("config") => {
            return err(
                StatusCode::CONFLICT,
                "config",
                format!("data source {id} is defined in the config file; remove it there"),
            );
        }
        Some(_) => {}
    }
    if let Some(e) = ds.entries.lock().remove(&id) {
        let _ = e.stop.send(true);
    }
    if let Err(e) = ds.persist() {
        return invalid(&e);
    }
    axum::Json(json!({"removed": id})).into_response()
}

/// Pulls once from a fresh instance of the source (nothing is written) and reports the batches.
async fn test(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let config = match st.datasources.entries.lock().get(&id) {
        Some(e) => e.config.clone(),
        None => {
            return err(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no data source {id}"),
            );
        }
    };
    let c = match parse(&id, &config) {
        Ok(c) => c,
        Err(e) => return invalid(&e),
    };
    let limit = match &c {
        PullSourceConfig::Scrape(s) => s
            .timeout
            .min(s.interval)
            .saturating_add(Duration::from_secs(2)),
        _ => Duration::from_secs(15),
    };
    let reasons = c.refused_targets(&st.datasources.outbound);
    if !reasons.is_empty() {
        return invalid(&DataSourceError::Refused { id, reasons });
    }
    let mut src = match c.build_with(&st.datasources.outbound) {
        Ok(s) => s,
        Err(e) => return err(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
    };
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(limit, src.next_batch()).await;
    let ms = started.elapsed().as_millis() as u64;
    let v = match outcome {
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
    };
    axum::Json(v).into_response()
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
