//! The read-side HTTP API: SQL queries, a metric series over a range, log search, API tokens,
//! and the OpenAPI document of every route. Queries run on the read side's runtime within its
//! limits, with user values bound as parameters, never spliced into SQL.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::auth::Caller;
use aiops_read::auth::{Role, TokenStore};
use aiops_read::json::{columns_json, rows_json};
use aiops_schemas::arrow_array::RecordBatch;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use datafusion::scalar::ScalarValue;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the read-side handlers need.
#[derive(Debug, Clone)]
pub struct ReadState {
    /// The read side (queries), when it runs.
    pub read: Option<crate::read::ReadSide>,
    /// The API tokens.
    pub tokens: Arc<TokenStore>,
}

/// Adds the read-side routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/sql", post(sql))
        .route("/api/sql/tables", get(tables))
        .route("/api/metrics", get(metrics_range))
        .route("/api/logs/search", get(log_search))
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{id}", delete(revoke_token))
        .route("/api/archive", get(archive_stats))
}

/// The JSON error response every API handler returns: `{"error": message, "reason": reason}`.
fn read_side(st: &ReadState) -> ApiResult<&crate::read::ReadSide> {
    st.read.as_ref().ok_or_else(ApiError::no_read_side)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
}

async fn sql(State(st): State<ReadState>, body: axum::body::Bytes) -> ApiResult {
    let rs = read_side(&st)?;
    let req: SqlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Err(ApiError::reason(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("expected {{\"sql\": \"SELECT …\"}}: {e}"),
            ));
        }
    };
    let b = rs.query(&req.sql).await?;
    let rows = rows_json(&b).map_err(|e| {
        ApiError::reason(StatusCode::INTERNAL_SERVER_ERROR, "encode", e.to_string())
    })?;
    Ok(axum::Json(json!({"columns": columns_json(&b), "rows": rows})).into_response())
}

async fn tables(State(st): State<ReadState>) -> ApiResult {
    let rs = read_side(&st)?;
    let q = "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position";
    let b = rs.query(q).await?;
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in rows_json(&b).unwrap_or_default() {
        let t = r["table_name"].as_str().unwrap_or("").to_string();
        out.entry(t)
            .or_default()
            .push(json!({"name": r["column_name"], "type": r["data_type"]}));
    }
    Ok(axum::Json(json!({"tables": out})).into_response())
}

/// Time in a query string: RFC 3339 or Unix ms.
fn parse_time(v: &str, what: &str) -> ApiResult<i64> {
    crate::replay::parse_time_arg(v, crate::clock::now_ms())
        .map_err(|e| ApiError::reason(StatusCode::BAD_REQUEST, "bad_time", format!("{what}: {e}")))
}

/// `from` and `to` of a query string, Unix ms: `to` defaults to now, `from` to an hour before
/// `to`.
pub(super) fn time_range(from: Option<&str>, to: Option<&str>) -> ApiResult<(i64, i64)> {
    let to_ms = to
        .map(|v| parse_time(v, "to"))
        .transpose()?
        .unwrap_or_else(crate::clock::now_ms);
    let from_ms = from
        .map(|v| parse_time(v, "from"))
        .transpose()?
        .unwrap_or(to_ms - 3_600_000);
    Ok((from_ms, to_ms))
}

/// Binds each `label.<name>=<value>` as two parameters and adds its condition to `filter`.
fn label_filter(labels: &[(String, String)], params: &mut Vec<ScalarValue>, filter: &mut String) {
    for (k, v) in labels {
        params.push(ScalarValue::Utf8(Some(k.clone())));
        params.push(ScalarValue::Utf8(Some(v.clone())));
        let n = params.len();
        filter.push_str(&format!(" AND element_at(labels, ${})[1] = ${n}", n - 1));
    }
}

fn ts(ms: i64) -> ScalarValue {
    ScalarValue::TimestampMillisecond(Some(ms), Some(aiops_schemas::schema::TIME_ZONE.into()))
}

async fn run_bound(
    rs: &crate::read::ReadSide,
    sql: &str,
    params: Vec<ScalarValue>,
) -> Result<Vec<RecordBatch>, aiops_read::limits::QueryError> {
    let ctx = rs.ctx.clone();
    let limits = rs.limits.clone();
    let sql = sql.to_string();
    let task = rs.runtime.spawn(async move {
        aiops_read::sandbox::query(&ctx, &sql, Some(params.into()), &limits).await
    });
    task.await
        .unwrap_or_else(|e| Err(aiops_read::limits::QueryError::new("XX000", e.to_string())))
}

async fn metrics_range(
    State(st): State<ReadState>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let rs = read_side(&st)?;
    let mut name = None;
    let (mut from, mut to, mut step) = (None, None, None);
    let mut labels = Vec::new();
    for (k, v) in &q {
        match k.as_str() {
            "name" => name = Some(v.clone()),
            "from" => from = Some(v.clone()),
            "to" => to = Some(v.clone()),
            "step" => step = Some(v.clone()),
            k if k.starts_with("label.") => {
                labels.push((k["label.".len()..].to_string(), v.clone()))
            }
            other => {
                return Err(ApiError::reason(
                    StatusCode::BAD_REQUEST,
                    "bad_parameter",
                    format!(
                        "unknown parameter {other:?}: expected name, from, to, step, label.<name>"
                    ),
                ));
            }
        }
    }
    let Some(name) = name else {
        return Err(ApiError::reason(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "`name` (the metric name) is required",
        ));
    };
    let (from_ms, to_ms) = time_range(from.as_deref(), to.as_deref())?;
    let step_ms = match step
        .as_deref()
        .map(aiops_workflow::compile::duration_ms)
        .transpose()
    {
        Ok(s) => s.unwrap_or(0),
        Err(e) => {
            return Err(ApiError::reason(
                StatusCode::BAD_REQUEST,
                "bad_parameter",
                format!("step: {e}"),
            ));
        }
    };
    if from_ms > to_ms {
        return Err(ApiError::reason(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            "`from` is after `to`",
        ));
    }
    let mut params = vec![
        ScalarValue::Utf8(Some(name.clone())),
        ts(from_ms),
        ts(to_ms),
    ];
    let mut filter = String::new();
    label_filter(&labels, &mut params, &mut filter);
    let sql = if step_ms > 0 {
        params.push(ScalarValue::Int64(Some(step_ms)));
        let n = params.len();
        format!(
            "SELECT CAST(to_unixtime(time) * 1000 AS BIGINT) / ${n} * ${n} AS t, labels, avg(value) AS v FROM metrics WHERE name = $1 AND time >= $2 AND time <= $3{filter} GROUP BY 1, 2 ORDER BY 1"
        )
    } else {
        format!(
            "SELECT CAST(to_unixtime(time) * 1000 AS BIGINT) AS t, labels, value AS v FROM metrics WHERE name = $1 AND time >= $2 AND time <= $3{filter} ORDER BY 1"
        )
    };
    let batches = run_bound(rs, &sql, params).await?;
    let mut series: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    for r in rows_json(&batches).unwrap_or_default() {
        let key = r["labels"].to_string();
        series
            .entry(key)
            .or_insert_with(|| (r["labels"].clone(), Vec::new()))
            .1
            .push(json!([r["t"], r["v"]]));
    }
    let out: Vec<Value> = series
        .into_values()
        .map(|(l, p)| json!({"name": name, "labels": l, "points": p}))
        .collect();
    Ok(
        axum::Json(json!({"from": from_ms, "to": to_ms, "step_ms": step_ms, "series": out}))
            .into_response(),
    )
}

async fn log_search(
    State(st): State<ReadState>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let rs = read_side(&st)?;
    let (mut text, mut from, mut to, mut limit, mut severity) = (None, None, None, 100usize, None);
    let mut labels = Vec::new();
    for (k, v) in &q {
        match k.as_str() {
            "q" => text = Some(v.clone()),
            "from" => from = Some(v.clone()),
            "to" => to = Some(v.clone()),
            "severity" => severity = Some(v.clone()),
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => limit = n,
                _ => {
                    return Err(ApiError::reason(
                        StatusCode::BAD_REQUEST,
                        "bad_parameter",
                        "limit must be 1 to 10000",
                    ));
                }
            },
            k if k.starts_with("label.") => {
                labels.push((k["label.".len()..].to_string(), v.clone()))
            }
            other => {
                return Err(ApiError::reason(
                    StatusCode::BAD_REQUEST,
                    "bad_parameter",
                    format!(
                        "unknown parameter {other:?}: expected q, from, to, severity, limit, label.<name>"
                    ),
                ));
            }
        }
    }
    let (from_ms, to_ms) = time_range(from.as_deref(), to.as_deref())?;
    let mut params = vec![ts(from_ms), ts(to_ms)];
    let mut filter = String::new();
    if let Some(t) = text {
        params.push(ScalarValue::Utf8(Some(t.to_lowercase())));
        filter.push_str(&format!(" AND strpos(lower(body), ${}) > 0", params.len()));
    }
    if let Some(s) = severity {
        params.push(ScalarValue::Utf8(Some(s)));
        filter.push_str(&format!(" AND severity = ${}", params.len()));
    }
    label_filter(&labels, &mut params, &mut filter);
    let sql = format!(
        "SELECT time, severity, body, labels, attributes FROM logs WHERE time >= $1 AND time <= $2{filter} ORDER BY time DESC LIMIT {limit}"
    );
    let b = run_bound(rs, &sql, params).await?;
    Ok(axum::Json(json!({"logs": rows_json(&b).unwrap_or_default()})).into_response())
}

async fn list_tokens(State(st): State<ReadState>) -> Response {
    let list: Vec<Value> = st
        .tokens
        .list()
        .into_iter()
        .map(|t| json!({"id": t.id, "name": t.name, "role": t.role, "created_ms": t.created_ms, "origin": t.origin}))
        .collect();
    axum::Json(json!({"tokens": list})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: Role,
}

async fn create_token(State(st): State<ReadState>, body: axum::body::Bytes) -> ApiResult {
    let req: NewToken = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Err(ApiError::reason(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!(
                    "expected {{\"name\": …, \"role\": \"viewer|operator|admin|ingest\"}}: {e}"
                ),
            ));
        }
    };
    match st
        .tokens
        .create(&req.name, req.role, crate::clock::now_ms())
    {
        Ok((rec, token)) => Ok((
            StatusCode::CREATED,
            axum::Json(
                json!({"id": rec.id, "name": rec.name, "role": rec.role, "token": token,
                "note": "shown once: aiops stores only its SHA-256"}),
            ),
        )
            .into_response()),
        Err(e) => Err(ApiError::reason(
            StatusCode::BAD_REQUEST,
            "invalid",
            e.to_string(),
        )),
    }
}

async fn revoke_token(
    State(st): State<ReadState>,
    Path(id): Path<String>,
    caller: Option<axum::Extension<Caller>>,
) -> ApiResult {
    if caller.is_some_and(|c| c.token == id) {
        return Err(ApiError::reason(
            StatusCode::BAD_REQUEST,
            "invalid",
            "a token cannot revoke itself",
        ));
    }
    match st.tokens.revoke(&id) {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(ApiError::reason(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no token {id}"),
        )),
        Err(e) => Err(ApiError::reason(
            StatusCode::BAD_REQUEST,
            "invalid",
            e.to_string(),
        )),
    }
}

async fn archive_stats(State(st): State<ReadState>) -> Response {
    let a = st.read.as_ref().and_then(|r| r.archive.as_ref());
    match a {
        Some(a) => axum::Json(json!({"enabled": true, "stats": a.stats(), "streams": a.streams()}))
            .into_response(),
        None => axum::Json(json!({"enabled": false})).into_response(),
    }
}
