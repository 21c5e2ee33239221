//! `/api/datasources`: pull sources (scrapes, the demo generator, and range sources such as
//! Prometheus `query_range` and HTTP JSON APIs) managed at run time. Those of the config file
//! are read-only here; those created through the API are kept in `DATA_DIR/datasources.json`
//! and started again on the next start. `POST /api/datasources/{id}/test` pulls once and
//! reports what came back, writing nothing; `GET /api/datasources/{id}/metrics` shows a
//! source's health and counters.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::datasources::DataSources;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

/// Adds the routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/api/datasources", get(list).post(create))
        .route(
            "/api/datasources/{id}",
            get(show).put(replace).delete(remove),
        )
        .route("/api/datasources/{id}/test", post(test))
        .route("/api/datasources/{id}/metrics", get(metrics))
}

fn bad(reason: &str, message: impl Into<String>) -> ApiError {
    ApiError::reason(StatusCode::BAD_REQUEST, reason, message)
}

fn valid_id(id: &str) -> ApiResult<()> {
    let ok = (1..=63).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "bad_id",
            format!("id {id:?}: use 1 to 63 of a-z, 0-9, - and _"),
        ))
    }
}

fn body(b: &[u8]) -> ApiResult<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(b) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => Err(bad(
            "bad_json",
            "expected a JSON object: {\"id\": \"…\", \"type\": \"scrape\", \"job\": \"…\", \"targets\": [\"host:port\"]}",
        )),
    }
}

async fn list(State(ds): State<Arc<DataSources>>) -> Response {
    axum::Json(json!({"datasources": ds.list()})).into_response()
}

async fn show(State(ds): State<Arc<DataSources>>, Path(id): Path<String>) -> ApiResult {
    let v = ds
        .get(&id)
        .ok_or(crate::datasources::DataSourceError::NotFound(id))?;
    Ok(axum::Json(v).into_response())
}

async fn create(State(ds): State<Arc<DataSources>>, b: axum::body::Bytes) -> ApiResult {
    let mut m = body(&b)?;
    let Some(Value::String(id)) = m.remove("id") else {
        return Err(bad("bad_id", "`id` (a string) is required"));
    };
    valid_id(&id)?;
    let v = ds.upsert(id, Value::Object(m), true).await?;
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

async fn replace(
    State(ds): State<Arc<DataSources>>,
    Path(id): Path<String>,
    b: axum::body::Bytes,
) -> ApiResult {
    let mut m = body(&b)?;
    if m.remove("id").is_some_and(|v| v != json!(id)) {
        return Err(bad("bad_id", "the body's id differs from the path's"));
    }
    let v = ds.upsert(id, Value::Object(m), false).await?;
    Ok(axum::Json(v).into_response())
}

async fn remove(State(ds): State<Arc<DataSources>>, Path(id): Path<String>) -> ApiResult {
    ds.remove(&id).await?;
    Ok(axum::Json(json!({"removed": id})).into_response())
}

/// Pulls once from a fresh instance of the source (nothing is written) and reports the batches.
async fn test(State(ds): State<Arc<DataSources>>, Path(id): Path<String>) -> ApiResult {
    Ok(axum::Json(ds.test(&id).await?).into_response())
}

/// A source's health and counters (range sources: state, position, lag, rows and series per
/// kind, pulls, failures, backfilled ranges).
async fn metrics(State(ds): State<Arc<DataSources>>, Path(id): Path<String>) -> ApiResult {
    let v = ds
        .metrics(&id)
        .ok_or(crate::datasources::DataSourceError::NotFound(id))?;
    Ok(axum::Json(v).into_response())
}
