//! The read-side HTTP API: SQL queries, a metric series over a range, log search, API tokens,
//! and the OpenAPI document of every route. Queries run on the read side's runtime within its
//! limits, with user values bound as parameters, never spliced into SQL.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::auth::{Caller, Need, required};
use crate::read::json::{columns_json, rows_json};
use aiops_read::auth::{Role, TokenStore};
use aiops_schemas::arrow_array::RecordBatch;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
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
        .route("/api/openapi.json", get(openapi))
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
pub(super) fn parse_time(v: &str, what: &str) -> ApiResult<i64> {
    crate::replay::parse_time_arg(v, crate::clock::now_ms())
        .map_err(|e| ApiError::reason(StatusCode::BAD_REQUEST, "bad_time", format!("{what}: {e}")))
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
    let now = crate::clock::now_ms();
    let to_ms = to
        .as_deref()
        .map(|v| parse_time(v, "to"))
        .transpose()?
        .unwrap_or(now);
    let from_ms = from
        .as_deref()
        .map(|v| parse_time(v, "from"))
        .transpose()?
        .unwrap_or(to_ms - 3_600_000);
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
    for (k, v) in &labels {
        params.push(ScalarValue::Utf8(Some(k.clone())));
        params.push(ScalarValue::Utf8(Some(v.clone())));
        let n = params.len();
        filter.push_str(&format!(" AND element_at(labels, ${})[1] = ${n}", n - 1));
    }
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
    let now = crate::clock::now_ms();
    let to_ms = to
        .as_deref()
        .map(|v| parse_time(v, "to"))
        .transpose()?
        .unwrap_or(now);
    let from_ms = from
        .as_deref()
        .map(|v| parse_time(v, "from"))
        .transpose()?
        .unwrap_or(to_ms - 3_600_000);
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
    for (k, v) in &labels {
        params.push(ScalarValue::Utf8(Some(k.clone())));
        params.push(ScalarValue::Utf8(Some(v.clone())));
        let n = params.len();
        filter.push_str(&format!(" AND element_at(labels, ${})[1] = ${n}", n - 1));
    }
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

/// Every route of the API: method, path template, summary. The OpenAPI document is generated
/// from it, and a test checks it against the routes the code registers.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("get", "/api/health", "Liveness and log reachability."),
    (
        "get",
        "/metrics",
        "Self-metrics in the Prometheus text format.",
    ),
    ("get", "/api/openapi.json", "This document."),
    (
        "get",
        "/api/log/stats",
        "Counts, time range and bytes per kind.",
    ),
    (
        "get",
        "/api/pipelines",
        "The running pipelines with watermarks and lag.",
    ),
    (
        "get",
        "/api/logs/templates",
        "Mined log templates per service.",
    ),
    (
        "post",
        "/api/v1/write",
        "Prometheus remote_write (snappy protobuf).",
    ),
    ("post", "/api/ingest/metrics", "Metrics as JSON."),
    ("post", "/api/ingest/logs", "Logs as JSON."),
    (
        "post",
        "/api/logs",
        "Submit logs as JSON (same as /api/ingest/logs).",
    ),
    (
        "post",
        "/api/ingest/events",
        "Events (deploys, changes) as JSON.",
    ),
    (
        "post",
        "/api/alerts/webhook/alertmanager",
        "Alertmanager webhook receiver.",
    ),
    (
        "post",
        "/api/alerts/webhook/grafana",
        "Grafana alerting webhook receiver.",
    ),
    (
        "post",
        "/api/alerts/webhook/datadog",
        "Datadog webhook receiver.",
    ),
    (
        "post",
        "/api/alerts/webhook/cloudwatch",
        "CloudWatch (SNS) alarm receiver.",
    ),
    ("post", "/api/alerts", "Alerts as JSON."),
    (
        "post",
        "/api/v2/alerts",
        "Alertmanager API v2: post alerts.",
    ),
    ("get", "/api/v2/alerts", "Alertmanager API v2: list alerts."),
    (
        "get",
        "/api/v2/alerts/groups",
        "Alertmanager API v2: alert groups.",
    ),
    (
        "get",
        "/api/v2/silences",
        "Alertmanager API v2: list silences.",
    ),
    (
        "post",
        "/api/v2/silences",
        "Alertmanager API v2: create or update a silence.",
    ),
    (
        "get",
        "/api/v2/silence/{id}",
        "Alertmanager API v2: one silence.",
    ),
    (
        "delete",
        "/api/v2/silence/{id}",
        "Alertmanager API v2: expire a silence.",
    ),
    (
        "get",
        "/api/v2/status",
        "Alertmanager API v2: status and configuration.",
    ),
    (
        "get",
        "/api/v2/receivers",
        "Alertmanager API v2: receivers.",
    ),
    (
        "get",
        "/api/incidents",
        "Incidents (open, resolved or all).",
    ),
    (
        "get",
        "/api/incidents/{id}",
        "One incident with its timeline.",
    ),
    (
        "post",
        "/api/incidents/{id}/ack",
        "Acknowledge an incident.",
    ),
    (
        "post",
        "/api/incidents/{id}/resolve",
        "Resolve an incident.",
    ),
    (
        "get",
        "/api/alerting/stats",
        "Alerting statistics (noise, budgets).",
    ),
    ("get", "/api/alerting/inhibit_rules", "Inhibition rules."),
    (
        "post",
        "/api/alerting/inhibit_rules",
        "Add an inhibition rule.",
    ),
    (
        "delete",
        "/api/alerting/inhibit_rules/{id}",
        "Remove an inhibition rule.",
    ),
    ("get", "/api/workflows", "Deployed workflows."),
    ("post", "/api/workflows", "Create a workflow (YAML body)."),
    ("get", "/api/workflows/{id}", "One workflow's YAML."),
    ("put", "/api/workflows/{id}", "Replace a workflow."),
    ("delete", "/api/workflows/{id}", "Remove a workflow."),
    (
        "post",
        "/api/workflows/{id}/execute",
        "Run a workflow manually.",
    ),
    (
        "get",
        "/api/workflows/{id}/executions",
        "A workflow's executions.",
    ),
    ("get", "/api/workflows/executions/{*rest}", "One execution."),
    (
        "post",
        "/api/workflows/executions/{*rest}",
        "Approve or reject an execution's step (`{id}/approve`, `{id}/reject`).",
    ),
    ("get", "/api/autoheal/strategies", "Auto-heal strategies."),
    (
        "post",
        "/api/autoheal/diagnose",
        "Which strategy an incident would get.",
    ),
    (
        "post",
        "/api/autoheal/fix",
        "Run an incident's strategy now.",
    ),
    (
        "post",
        "/api/sql",
        "Run a SQL query over the archive, the log and live state.",
    ),
    (
        "get",
        "/api/sql/tables",
        "Tables and columns queryable with SQL.",
    ),
    (
        "get",
        "/api/metrics",
        "A metric's series over a range (name, from, to, step, label.<name>).",
    ),
    (
        "get",
        "/api/logs/search",
        "Search logs by text, labels, severity and time range.",
    ),
    (
        "get",
        "/api/tokens",
        "API tokens (ids, names, roles; never the tokens).",
    ),
    (
        "post",
        "/api/tokens",
        "Create an API token; the answer shows it once.",
    ),
    ("delete", "/api/tokens/{id}", "Revoke an API token."),
    ("get", "/api/archive", "Parquet archive statistics."),
    (
        "get",
        "/api/grafana/dashboards",
        "The Grafana data source, dashboards and annotations a sync would write.",
    ),
    (
        "post",
        "/api/grafana/dashboards",
        "Sync the folder, data source, dashboards and annotations to Grafana.",
    ),
    (
        "get",
        "/api/grafana/alerts",
        "The Grafana alert rules for the SQL alert rules.",
    ),
    (
        "post",
        "/api/grafana/alerts",
        "Sync the Grafana alert rules for the SQL alert rules.",
    ),
    (
        "get",
        "/api/business-metrics",
        "Business metrics: the pipelines writing a derived stream.",
    ),
    (
        "post",
        "/api/business-metrics",
        "Create a business metric {name, sql, description?}; compiled with the directory first.",
    ),
    (
        "get",
        "/api/business-metrics/{name}",
        "One business metric.",
    ),
    (
        "put",
        "/api/business-metrics/{name}",
        "Replace a business metric's SQL.",
    ),
    (
        "delete",
        "/api/business-metrics/{name}",
        "Remove a business metric (its stream stays queryable).",
    ),
    (
        "get",
        "/api/business-metrics/{name}/data",
        "A business metric's windows in a range (from, to, limit).",
    ),
    (
        "get",
        "/api/alerts/rules",
        "SQL alert rules with their state.",
    ),
    (
        "post",
        "/api/alerts/rules",
        "Create a SQL alert rule {name, sql, description?}.",
    ),
    ("get", "/api/alerts/rules/{name}", "One SQL alert rule."),
    (
        "put",
        "/api/alerts/rules/{name}",
        "Replace a SQL alert rule.",
    ),
    (
        "delete",
        "/api/alerts/rules/{name}",
        "Remove a SQL alert rule.",
    ),
    (
        "get",
        "/api/datasources",
        "Pull sources (scrapes, demo): from the config file and created through the API.",
    ),
    (
        "post",
        "/api/datasources",
        "Create and start a pull source {id, type, …settings}; kept across restarts.",
    ),
    ("get", "/api/datasources/{id}", "One pull source."),
    (
        "put",
        "/api/datasources/{id}",
        "Replace an API-created pull source (restarts it).",
    ),
    (
        "delete",
        "/api/datasources/{id}",
        "Stop and remove an API-created pull source.",
    ),
    (
        "post",
        "/api/datasources/{id}/test",
        "Pull once from a source and report what came back; nothing is written.",
    ),
];

fn method_of(m: &str) -> Method {
    match m {
        "post" => Method::POST,
        "put" => Method::PUT,
        "delete" => Method::DELETE,
        _ => Method::GET,
    }
}

/// The OpenAPI 3.0 document of [`ROUTES`], with each route's required role.
pub fn openapi_doc() -> Value {
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for (m, p, summary) in ROUTES {
        let need = required(&method_of(m), p);
        let (security, role) = match need {
            Need::Open => (json!([]), "none".to_string()),
            Need::Role(r) => (json!([{"bearer": []}]), r.as_str().to_string()),
        };
        let params: Vec<Value> = p
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|n| json!({"name": n.trim_start_matches('*'), "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = serde_json::Map::new();
        responses.insert("200".into(), json!({"description": "Success."}));
        responses.insert(
            "400".into(),
            json!({"description": "Bad request: the body names what is wrong."}),
        );
        if need != Need::Open {
            responses.insert("401".into(), json!({"description": "No or unknown token."}));
            responses.insert(
                "403".into(),
                json!({"description": "The token's role does not allow this."}),
            );
            responses.insert(
                "429".into(),
                json!({"description": "Rate limit of the token exceeded."}),
            );
        }
        let mut op = json!({
            "summary": summary,
            "operationId": format!("{m}_{}", p.trim_start_matches('/').replace(['/', '{', '}', '*', '.'], "_")),
            "security": security,
            "x-aiops-role": role,
            "responses": responses,
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if matches!(*m, "post" | "put") {
            op["requestBody"] =
                json!({"content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let openapi_path = p.replace("{*rest}", "{rest}");
        paths
            .entry(openapi_path)
            .or_default()
            .insert((*m).to_string(), op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "aiops HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Ingest, alerting, workflows and the read side of aiops. Bearer API tokens with roles ingest, viewer, operator, admin.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}

async fn openapi() -> axum::Json<Value> {
    axum::Json(openapi_doc())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every `.route("…")` in the sources (and every push endpoint) is in the document, and the
    /// document lists no route the code does not register.
    #[test]
    fn openapi_matches_the_registered_routes() {
        let mut code = std::collections::BTreeSet::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let mut rest = text.as_str();
                    while let Some(i) = rest.find(".route(") {
                        rest = &rest[i + 7..];
                        let t = rest.trim_start();
                        if let Some(s) = t.strip_prefix('"') {
                            let end = s.find('"').unwrap();
                            if s.starts_with('/') {
                                code.insert(s[..end].to_string());
                            }
                        }
                    }
                }
            }
        }
        for p in crate::auth::ingest_paths() {
            code.insert(p.to_string());
        }
        let documented: std::collections::BTreeSet<String> =
            ROUTES.iter().map(|r| r.1.to_string()).collect();
        let missing: Vec<_> = code.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes without documentation: {missing:?}"
        );
        let extra: Vec<_> = documented.difference(&code).collect();
        assert!(extra.is_empty(), "documented but not registered: {extra:?}");
        let doc = openapi_doc();
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(doc["paths"]["/api/health"]["get"]["security"], json!([]));
        assert_eq!(doc["paths"]["/api/tokens"]["post"]["x-aiops-role"], "admin");
    }
}
