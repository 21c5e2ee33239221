//! Pipelines managed over HTTP: business metrics (`/api/business-metrics`, a business metric is a
//! named SQL pipeline writing a derived stream) and SQL alert rules (`/api/alerts/rules`,
//! pipelines writing `alerts`). Both are files of the pipeline directory, so the API, `aiops
//! pipeline check`, git and the supervisor all see the same thing.
//!
//! A change is compiled together with every other file of the directory — as the supervisor will
//! compile it — before anything is written; a refused change writes nothing and answers 422 with
//! `file:line:col: reason`. Files are written to a temporary name and renamed, so the supervisor
//! never reads half a file.

// Handlers return the error response itself; it is built once per failed request.
#![allow(clippy::result_large_err)]

use super::PipelinesConfig;
use super::load::{self, PipelineSource};
use crate::api::err;
use crate::http::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;

/// What the pipeline file API needs.
#[derive(Debug)]
pub struct PipelineFiles {
    /// `[pipelines]`: the directory and the runtime settings changes are compiled with.
    pub cfg: PipelinesConfig,
    /// One change at a time.
    pub lock: tokio::sync::Mutex<()>,
}

/// Which pipelines a route manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Writes a derived stream.
    Metric,
    /// Writes `alerts`.
    Rule,
}

impl Kind {
    fn matches(self, output: &str) -> bool {
        (output == "alerts") == (self == Kind::Rule)
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Metric => "business metric",
            Kind::Rule => "alert rule",
        }
    }

    fn other_route(self) -> &'static str {
        match self {
            Kind::Metric => "/api/alerts/rules",
            Kind::Rule => "/api/business-metrics",
        }
    }
}

/// Adds the routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(
        "/api/business-metrics",
        get(|st: State<AppState>| list(st, Kind::Metric))
            .post(|st: State<AppState>, b: axum::body::Bytes| create(st, Kind::Metric, b)),
    )
    .route(
        "/api/business-metrics/{name}",
        get(|st: State<AppState>, n: Path<String>| show(st, Kind::Metric, n))
            .put(
                |st: State<AppState>, n: Path<String>, b: axum::body::Bytes| {
                    replace(st, Kind::Metric, n, b)
                },
            )
            .delete(|st: State<AppState>, n: Path<String>| remove(st, Kind::Metric, n)),
    )
    .route("/api/business-metrics/{name}/data", get(data))
    .route(
        "/api/alerts/rules",
        get(|st: State<AppState>| list(st, Kind::Rule))
            .post(|st: State<AppState>, b: axum::body::Bytes| create(st, Kind::Rule, b)),
    )
    .route(
        "/api/alerts/rules/{name}",
        get(|st: State<AppState>, n: Path<String>| show(st, Kind::Rule, n))
            .put(
                |st: State<AppState>, n: Path<String>, b: axum::body::Bytes| {
                    replace(st, Kind::Rule, n, b)
                },
            )
            .delete(|st: State<AppState>, n: Path<String>| remove(st, Kind::Rule, n)),
    )
}

/// A pipeline name: it becomes a file name and a Grafana uid.
fn valid_name(name: &str) -> Result<(), Response> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(err(
            StatusCode::BAD_REQUEST,
            "bad_name",
            format!("name {name:?}: use 1 to 63 of a-z, 0-9 and _, starting with a letter"),
        ))
    }
}

fn file_of(cfg: &PipelinesConfig, name: &str) -> PathBuf {
    cfg.dir.join(format!("{name}.sql"))
}

fn stem(s: &PipelineSource) -> String {
    s.file
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sources(cfg: &PipelinesConfig) -> Result<Vec<PipelineSource>, Response> {
    load::read_dir(&cfg.dir)
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, "read", e.to_string()))
}

/// The output a pipeline file writes (`INSERT INTO <output>`), without compiling it.
fn output_of(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let i = lower.find("insert into")? + "insert into".len();
    let rest = sql[i..].trim_start();
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '"')
        .collect();
    Some(name.trim_matches('"').to_string())
}

fn view(st: &AppState, s: &PipelineSource) -> Value {
    let name = stem(s);
    let board = st.pipelines.read();
    let running = board.pipelines.iter().find(|p| p.name == name);
    let refused: Vec<&String> = board
        .refused
        .iter()
        .filter(|r| r.contains(&format!("{name}.sql")))
        .collect();
    let settings = aiops_sql::settings::parse(&s.file, &s.sql).unwrap_or_default();
    let mut v = json!({
        "name": name,
        "file": s.file.display().to_string(),
        "output": running.map(|p| p.output.clone()).or_else(|| output_of(&s.sql)),
        "state": running.map_or("not running", |p| p.state.as_str()),
        "refused": refused,
        "sql": s.sql,
    });
    if output_of(&s.sql).as_deref() == Some("alerts") {
        v["severity"] = json!(settings.severity);
        v["summary"] = json!(settings.summary);
        v["for"] = json!(settings.hold_for.map(|h| format!("{h:?}")));
    }
    if let Some(p) = running {
        v["position"] = json!(p.position);
        v["lag"] = json!(p.lag);
    }
    v
}

async fn list(State(st): State<AppState>, kind: Kind) -> Response {
    let files = match sources(&st.pipeline_files.cfg) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let items: Vec<Value> = files
        .iter()
        .filter(|s| kind.matches(output_of(&s.sql).as_deref().unwrap_or("")))
        .map(|s| view(&st, s))
        .collect();
    let key = match kind {
        Kind::Metric => "business_metrics",
        Kind::Rule => "rules",
    };
    axum::Json(json!({ key: items })).into_response()
}

fn find(files: &[PipelineSource], kind: Kind, name: &str) -> Result<usize, Response> {
    match files.iter().position(|s| stem(s) == name) {
        Some(i) if kind.matches(output_of(&files[i].sql).as_deref().unwrap_or("")) => Ok(i),
        Some(_) => Err(err(
            StatusCode::NOT_FOUND,
            "other_kind",
            format!(
                "{name} is not a {}; see {}",
                kind.what(),
                kind.other_route()
            ),
        )),
        None => Err(err(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {} named {name}", kind.what()),
        )),
    }
}

async fn show(State(st): State<AppState>, kind: Kind, Path(name): Path<String>) -> Response {
    let files = match sources(&st.pipeline_files.cfg) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match find(&files, kind, &name) {
        Ok(i) => axum::Json(view(&st, &files[i])).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    name: Option<String>,
    sql: String,
    description: Option<String>,
}

fn parse_body(b: &[u8]) -> Result<Body, Response> {
    serde_json::from_slice(b).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("expected {{\"name\": \"…\", \"sql\": \"INSERT INTO … SELECT …\", \"description\": \"…\"}}: {e}"),
        )
    })
}

/// The file text: the description as a leading comment unless the SQL starts with one.
fn text(body: &Body) -> String {
    let sql = body.sql.trim();
    match &body.description {
        Some(d) if !sql.starts_with("--") => {
            let comment: String = d.lines().map(|l| format!("-- {}\n", l.trim())).collect();
            format!("{comment}{sql}\n")
        }
        _ => format!("{sql}\n"),
    }
}

/// Compiles the directory as it would be after the change; writes nothing.
async fn compile_with(
    st: &AppState,
    kind: Kind,
    name: &str,
    new_text: Option<&str>,
) -> Result<(), Response> {
    let cfg = &st.pipeline_files.cfg;
    let mut files = sources(cfg)?;
    files.retain(|s| stem(s) != name);
    if let Some(t) = new_text {
        files.push(PipelineSource {
            file: file_of(cfg, name),
            sql: t.to_string(),
        });
    }
    let tables = load::tables(&cfg.dir)
        .map_err(|e| err(StatusCode::UNPROCESSABLE_ENTITY, "tables", e.to_string()))?;
    let compiled = load::compile_all(&files, &tables, cfg.runtime())
        .await
        .map_err(|e| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(
                    json!({"error": e.to_string(), "reason": "refused", "problems": e.problems}),
                ),
            )
                .into_response()
        })?;
    if new_text.is_some() {
        let output = compiled
            .iter()
            .find(|p| p.name() == name)
            .map(|p| p.output().to_string())
            .unwrap_or_default();
        if !kind.matches(&output) {
            return Err(err(
                StatusCode::UNPROCESSABLE_ENTITY,
                "other_kind",
                format!(
                    "this SQL writes to {output}, which makes it no {}; create it under {}",
                    kind.what(),
                    kind.other_route()
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `text` to the pipeline file of `name` through a temporary file and a rename.
fn write_file(cfg: &PipelinesConfig, name: &str, text: &str) -> Result<(), Response> {
    let io = |e: std::io::Error| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "write",
            format!("{}: {e}", cfg.dir.display()),
        )
    };
    std::fs::create_dir_all(&cfg.dir).map_err(io)?;
    let tmp = cfg.dir.join(format!(".{name}.sql.tmp"));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, file_of(cfg, name)).map_err(io)
}

fn accepted(st: &AppState, name: &str, status: StatusCode) -> Response {
    let cfg = &st.pipeline_files.cfg;
    let files = sources(cfg).unwrap_or_default();
    let v = files
        .iter()
        .find(|s| stem(s) == name)
        .map(|s| view(st, s))
        .unwrap_or(Value::Null);
    (
        status,
        axum::Json(json!({
            "pipeline": v,
            "note": format!("the engine loads it within {} (pipelines.reload_interval)", humantime::format_duration(cfg.reload_interval)),
        })),
    )
        .into_response()
}

async fn create(State(st): State<AppState>, kind: Kind, body: axum::body::Bytes) -> Response {
    let b = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = b.name.clone() else {
        return err(StatusCode::BAD_REQUEST, "bad_name", "`name` is required");
    };
    if let Err(r) = valid_name(&name) {
        return r;
    }
    let _one = st.pipeline_files.lock.lock().await;
    let cfg = &st.pipeline_files.cfg;
    if file_of(cfg, &name).exists() {
        return err(
            StatusCode::CONFLICT,
            "exists",
            format!("a pipeline named {name} exists; PUT replaces it"),
        );
    }
    let t = text(&b);
    if let Err(r) = compile_with(&st, kind, &name, Some(&t)).await {
        return r;
    }
    if let Err(r) = write_file(cfg, &name, &t) {
        return r;
    }
    tracing::info!(pipeline = %name, kind = kind.what(), "pipeline created through the API");
    accepted(&st, &name, StatusCode::CREATED)
}

async fn replace(
    State(st): State<AppState>,
    kind: Kind,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let b = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.name.as_deref().is_some_and(|n| n != name) {
        return err(
            StatusCode::BAD_REQUEST,
            "bad_name",
            "the body's name differs from the path's",
        );
    }
    let _one = st.pipeline_files.lock.lock().await;
    let files = match sources(&st.pipeline_files.cfg) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = find(&files, kind, &name) {
        return r;
    }
    let t = text(&b);
    if let Err(r) = compile_with(&st, kind, &name, Some(&t)).await {
        return r;
    }
    if let Err(r) = write_file(&st.pipeline_files.cfg, &name, &t) {
        return r;
    }
    tracing::info!(pipeline = %name, kind = kind.what(), "pipeline replaced through the API");
    accepted(&st, &name, StatusCode::OK)
}

async fn remove(State(st): State<AppState>, kind: Kind, Path(name): Path<String>) -> Response {
    let _one = st.pipeline_files.lock.lock().await;
    let cfg = &st.pipeline_files.cfg;
    let files = match sources(cfg) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let i = match find(&files, kind, &name) {
        Ok(i) => i,
        Err(r) => return r,
    };
    // Pipelines reading this one's stream would no longer compile.
    if let Err(r) = compile_with(&st, kind, &name, None).await {
        return r;
    }
    if let Err(e) = std::fs::remove_file(&files[i].file) {
        return err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "write",
            format!("{}: {e}", files[i].file.display()),
        );
    }
    tracing::info!(pipeline = %name, kind = kind.what(), "pipeline removed through the API");
    axum::Json(json!({"removed": name, "note": "its derived stream stays queryable"}))
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/business-metrics/{name}/data`: the metric's windows in a range (latest revision of
/// each window and group), oldest first.
async fn data(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<DataQuery>,
) -> Response {
    let Some(rs) = st.read.as_ref() else {
        return err(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the read side is not running in this process",
        );
    };
    let files = match sources(&st.pipeline_files.cfg) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = find(&files, Kind::Metric, &name) {
        return r;
    }
    let now = crate::clock::now_ms();
    let parse = |v: &Option<String>, what: &str, default: i64| -> Result<i64, Response> {
        v.as_deref()
            .map(|t| crate::api::parse_time(t, what))
            .transpose()
            .map(|t| t.unwrap_or(default))
    };
    let to = match parse(&q.to, "to", now) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let from = match parse(&q.from, "from", to - 3_600_000) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let descs = match crate::grafana::sync::describe(&st.grafana, &st.pipelines, rs).await {
        Ok(d) => d,
        Err(e) => return err(StatusCode::INTERNAL_SERVER_ERROR, "query", e.to_string()),
    };
    let Some(sql) = descs
        .iter()
        .find(|d| d.name == name)
        .and_then(|d| crate::grafana::dashboard::latest_sql(d, limit))
    else {
        return axum::Json(
            json!({"name": name, "from": from, "to": to, "columns": [], "rows": []}),
        )
        .into_response();
    };
    let range = crate::grafana::macros::QueryRange {
        from_ms: from,
        to_ms: to,
        interval_ms: 60_000,
    };
    let sql = match crate::grafana::macros::expand(&sql, &range) {
        Ok(s) => s,
        Err(e) => return err(StatusCode::INTERNAL_SERVER_ERROR, "query", e.to_string()),
    };
    match rs.query(&sql).await {
        Ok(b) => {
            let cols = crate::api::columns_json(&b);
            axum::Json(json!({
                "name": name,
                "from": from,
                "to": to,
                "columns": cols,
                "rows": crate::api::rows_json(&b).unwrap_or_default(),
            }))
            .into_response()
        }
        // The query is aiops' own: only a limit it ran into (time, memory, size) is not a fault.
        Err(e) => err(
            match crate::api::query_status(e.code) {
                StatusCode::UNPROCESSABLE_ENTITY => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            "query",
            format!("{} (SQLSTATE {})", e.message, e.code),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_outputs_and_text() {
        assert!(valid_name("orders_per_minute").is_ok());
        for bad in ["", "Orders", "1x", "a-b", "../x", &"a".repeat(64)] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            output_of("-- x\nINSERT INTO orders_1m SELECT 1").as_deref(),
            Some("orders_1m")
        );
        assert_eq!(
            output_of("insert into \"alerts\" select 1").as_deref(),
            Some("alerts")
        );
        let b = Body {
            name: None,
            sql: "INSERT INTO x SELECT 1".into(),
            description: Some("Orders\nper minute".into()),
        };
        assert_eq!(
            text(&b),
            "-- Orders\n-- per minute\nINSERT INTO x SELECT 1\n"
        );
    }
}
