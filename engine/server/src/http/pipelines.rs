//! Pipelines managed over HTTP: business metrics (`/api/business-metrics`, a business metric is a
//! named SQL pipeline writing a derived stream) and SQL alert rules (`/api/alerts/rules`,
//! pipelines writing `alerts`). Both are files of the pipeline directory, so the API, `aiops
//! pipeline check`, git and the supervisor all see the same thing.
//!
//! A change is compiled together with every other file of the directory — as the supervisor will
//! compile it — before anything is written; a refused change writes nothing and answers 422 with
//! `file:line:col: reason`. Files are written to a temporary name and renamed, so the supervisor
//! never reads half a file.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::pipelines::load::{self, PipelineSource};
use crate::pipelines::{PipelineFiles, PipelinesConfig};
use aiops_read::json::{columns_json, rows_json};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// What the pipeline file handlers need.
#[derive(Debug, Clone)]
pub struct PipelinesState {
    /// The pipeline directory.
    pub files: Arc<PipelineFiles>,
    /// The running pipelines (state, position, lag).
    pub board: crate::pipelines::runner::InfoBoard,
    /// The read side (a business metric's data), when it runs.
    pub read: Option<crate::read::ReadSide>,
    /// Grafana's description of the pipelines (the query of a metric's latest windows).
    pub grafana: Arc<aiops_grafana::sync::GrafanaContext>,
}

/// `{"error": message, "reason": reason}` with `status`.
fn err(status: StatusCode, reason: &str, message: impl Into<String>) -> ApiError {
    ApiError::reason(status, reason, message)
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
        get(|st: State<PipelinesState>| list(st, Kind::Metric))
            .post(|st: State<PipelinesState>, b: axum::body::Bytes| create(st, Kind::Metric, b)),
    )
    .route(
        "/api/business-metrics/{name}",
        get(|st: State<PipelinesState>, n: Path<String>| show(st, Kind::Metric, n))
            .put(
                |st: State<PipelinesState>, n: Path<String>, b: axum::body::Bytes| {
                    replace(st, Kind::Metric, n, b)
                },
            )
            .delete(|st: State<PipelinesState>, n: Path<String>| remove(st, Kind::Metric, n)),
    )
    .route("/api/business-metrics/{name}/data", get(data))
    .route(
        "/api/alerts/rules",
        get(|st: State<PipelinesState>| list(st, Kind::Rule))
            .post(|st: State<PipelinesState>, b: axum::body::Bytes| create(st, Kind::Rule, b)),
    )
    .route(
        "/api/alerts/rules/{name}",
        get(|st: State<PipelinesState>, n: Path<String>| show(st, Kind::Rule, n))
            .put(
                |st: State<PipelinesState>, n: Path<String>, b: axum::body::Bytes| {
                    replace(st, Kind::Rule, n, b)
                },
            )
            .delete(|st: State<PipelinesState>, n: Path<String>| remove(st, Kind::Rule, n)),
    )
}

/// A pipeline name: it becomes a file name and a Grafana uid.
fn valid_name(name: &str) -> ApiResult<()> {
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

fn sources(cfg: &PipelinesConfig) -> ApiResult<Vec<PipelineSource>> {
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

fn view(st: &PipelinesState, s: &PipelineSource) -> Value {
    let name = stem(s);
    let board = st.board.read();
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

async fn list(State(st): State<PipelinesState>, kind: Kind) -> ApiResult {
    let files = sources(&st.files.cfg)?;
    let items: Vec<Value> = files
        .iter()
        .filter(|s| kind.matches(output_of(&s.sql).as_deref().unwrap_or("")))
        .map(|s| view(&st, s))
        .collect();
    let key = match kind {
        Kind::Metric => "business_metrics",
        Kind::Rule => "rules",
    };
    Ok(axum::Json(json!({ key: items })).into_response())
}

fn find(files: &[PipelineSource], kind: Kind, name: &str) -> ApiResult<usize> {
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

async fn show(State(st): State<PipelinesState>, kind: Kind, Path(name): Path<String>) -> ApiResult {
    let files = sources(&st.files.cfg)?;
    let i = find(&files, kind, &name)?;
    Ok(axum::Json(view(&st, &files[i])).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    name: Option<String>,
    sql: String,
    description: Option<String>,
}

fn parse_body(b: &[u8]) -> ApiResult<Body> {
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
    st: &PipelinesState,
    kind: Kind,
    name: &str,
    new_text: Option<&str>,
) -> ApiResult<()> {
    let cfg = &st.files.cfg;
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
            ApiError::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": e.to_string(), "reason": "refused", "problems": e.problems}),
            )
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
fn write_file(cfg: &PipelinesConfig, name: &str, text: &str) -> ApiResult<()> {
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

fn accepted(st: &PipelinesState, name: &str, status: StatusCode) -> ApiResult {
    let cfg = &st.files.cfg;
    let files = sources(cfg).unwrap_or_default();
    let v = files
        .iter()
        .find(|s| stem(s) == name)
        .map(|s| view(st, s))
        .unwrap_or(Value::Null);
    Ok((
        status,
        axum::Json(json!({
            "pipeline": v,
            "note": format!("the engine loads it within {} (pipelines.reload_interval)", humantime::format_duration(cfg.reload_interval)),
        })),
    )
        .into_response())
}

async fn create(
    State(st): State<PipelinesState>,
    kind: Kind,
    body: axum::body::Bytes,
) -> ApiResult {
    let b = parse_body(&body)?;
    let Some(name) = b.name.clone() else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "bad_name",
            "`name` is required",
        ));
    };
    valid_name(&name)?;
    let _one = st.files.lock.lock().await;
    let cfg = &st.files.cfg;
    if file_of(cfg, &name).exists() {
        return Err(err(
            StatusCode::CONFLICT,
            "exists",
            format!("a pipeline named {name} exists; PUT replaces it"),
        ));
    }
    let t = text(&b);
    compile_with(&st, kind, &name, Some(&t)).await?;
    write_file(cfg, &name, &t)?;
    tracing::info!(pipeline = %name, kind = kind.what(), "pipeline created through the API");
    accepted(&st, &name, StatusCode::CREATED)
}

async fn replace(
    State(st): State<PipelinesState>,
    kind: Kind,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let b = parse_body(&body)?;
    if b.name.as_deref().is_some_and(|n| n != name) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "bad_name",
            "the body's name differs from the path's",
        ));
    }
    let _one = st.files.lock.lock().await;
    let files = sources(&st.files.cfg)?;
    find(&files, kind, &name)?;
    let t = text(&b);
    compile_with(&st, kind, &name, Some(&t)).await?;
    write_file(&st.files.cfg, &name, &t)?;
    tracing::info!(pipeline = %name, kind = kind.what(), "pipeline replaced through the API");
    accepted(&st, &name, StatusCode::OK)
}

async fn remove(
    State(st): State<PipelinesState>,
    kind: Kind,
    Path(name): Path<String>,
) -> ApiResult {
    let _one = st.files.lock.lock().await;
    let cfg = &st.files.cfg;
    let files = sources(cfg)?;
    let i = find(&files, kind, &name)?;
    // Pipelines reading this one's stream would no longer compile.
    compile_with(&st, kind, &name, None).await?;
    std::fs::remove_file(&files[i].file).map_err(|e| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "write",
            format!("{}: {e}", files[i].file.display()),
        )
    })?;
    tracing::info!(pipeline = %name, kind = kind.what(), "pipeline removed through the API");
    Ok(
        axum::Json(json!({"removed": name, "note": "its derived stream stays queryable"}))
            .into_response(),
    )
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
    State(st): State<PipelinesState>,
    Path(name): Path<String>,
    Query(q): Query<DataQuery>,
) -> ApiResult {
    let rs = st.read.as_ref().ok_or_else(ApiError::no_read_side)?;
    let files = sources(&st.files.cfg)?;
    find(&files, Kind::Metric, &name)?;
    let (from, to) = super::read::time_range(q.from.as_deref(), q.to.as_deref())?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let internal = |e: String| err(StatusCode::INTERNAL_SERVER_ERROR, "query", e);
    let descs = aiops_grafana::sync::describe(&st.grafana, &st.board, rs)
        .await
        .map_err(|e| internal(e.to_string()))?;
    let Some(sql) = descs
        .iter()
        .find(|d| d.name == name)
        .and_then(|d| aiops_grafana::dashboard::latest_sql(d, limit))
    else {
        return Ok(axum::Json(
            json!({"name": name, "from": from, "to": to, "columns": [], "rows": []}),
        )
        .into_response());
    };
    let range = aiops_grafana::macros::QueryRange {
        from_ms: from,
        to_ms: to,
        interval_ms: 60_000,
    };
    let sql = aiops_grafana::macros::expand(&sql, &range).map_err(|e| internal(e.to_string()))?;
    let b = rs.query(&sql).await.map_err(|e| {
        // The query is aiops' own: only a limit it ran into (time, memory, size) is not a fault.
        err(
            match super::error::query_status(e.code) {
                StatusCode::UNPROCESSABLE_ENTITY => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            "query",
            format!("{} (SQLSTATE {})", e.message, e.code),
        )
    })?;
    Ok(axum::Json(json!({
        "name": name,
        "from": from,
        "to": to,
        "columns": columns_json(&b),
        "rows": rows_json(&b).unwrap_or_default(),
    }))
    .into_response())
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
