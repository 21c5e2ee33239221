//! The HTTP API. One router; each area's handlers take a small state holding just the handles
//! they need (axum substates of [`AppState`] through [`FromRef`]), and every handler answers
//! errors as an [`ApiError`]. Push handlers answer 2xx only after the log accepted the request's
//! batches.
//!
//! - [`error`]: [`ApiError`], the one error type of every route.
//! - [`auth`]: the middleware (tokens, roles, rate limit, audit); the rules are [`crate::auth`].
//! - [`ingest`]: one route per push endpoint of the connector registry.
//! - [`status`]: health, self-metrics, log stats, running pipelines, mined templates.
//! - [`read`]: SQL, metric ranges, log search, API tokens, the archive.
//! - [`logs`]: log analysis over a range (templates, baseline, surges, samples).
//! - [`openapi`]: the OpenAPI document of every route, with the role each needs.
//! - [`alerting`]: Alertmanager's API v2 subset, incidents, statistics, inhibition rules.
//! - [`workflows`]: workflows, executions, approvals, auto-heal.
//! - [`pipelines`]: business metrics and SQL alert rules as pipeline files.
//! - [`grafana`]: preview and sync of what aiops writes to Grafana.
//! - [`datasources`]: pull sources managed at run time.
//! - [`deploys`]: record deploys, status with risk and verification, rollback, history with DORA
//!   figures, CI/CD webhooks.
//! - [`knowledge`]: knowledge base search, cited answers, entries, imports, drafts, links.
//! - [`console`]: the web console at `/` (pages, sign-in with password and TOTP, sessions), and
//!   the console users API.
//! - [`conn`]: the listener (connection cap, header and body read timeouts).
//!
//! Nothing outside this folder (and the composition root, `server.rs`) imports from it.

pub mod alerting;
pub mod auth;
pub mod conn;
pub mod console;
pub mod datasources;
pub mod deploys;
pub mod error;
pub mod grafana;
pub mod ingest;
pub mod knowledge;
pub mod logs;
pub mod openapi;
pub mod pipelines;
pub mod read;
pub mod status;
pub mod workflows;

pub use error::{ApiError, ApiResult, CORRELATION_HEADER};
pub use openapi::{ROUTES, openapi_doc};

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use std::sync::Arc;

/// The router's state: the composition of each area's state. Handlers never take it whole.
#[derive(Clone)]
pub struct AppState {
    /// Push endpoints.
    pub ingest: ingest::IngestState,
    /// Health, metrics, log stats, pipelines, templates.
    pub status: status::StatusState,
    /// Queries, tokens, archive.
    pub read: read::ReadState,
    /// Log analysis.
    pub logs: logs::LogsState,
    /// Alerting routes.
    pub alerting: alerting::AlertingState,
    /// Knowledge base routes.
    pub knowledge: knowledge::KnowledgeState,
    /// Deploy routes.
    pub deploys: deploys::DeploysState,
    /// Workflow and auto-heal routes.
    pub workflows: workflows::WorkflowsState,
    /// Pipeline file routes.
    pub pipelines: pipelines::PipelinesState,
    /// Grafana routes.
    pub grafana: grafana::GrafanaState,
    /// Pull source routes.
    pub datasources: Arc<crate::datasources::DataSources>,
    /// Tokens, roles and rate limits (the middleware's only state).
    pub auth: Arc<crate::auth::HttpAuth>,
    /// The console (`None` when `[console] enabled = false`).
    pub console: Option<console::ConsoleState>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("max_body_bytes", &self.ingest.max_body_bytes)
            .field("alerting", &self.alerting.alerting)
            .finish_non_exhaustive()
    }
}

/// Each area's state is a field of [`AppState`]; a handler extracting `State<Area>` gets a clone.
macro_rules! substates {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(impl FromRef<AppState> for $ty {
            fn from_ref(st: &AppState) -> $ty {
                st.$field.clone()
            }
        })*
    };
}

substates! {
    ingest: ingest::IngestState,
    status: status::StatusState,
    read: read::ReadState,
    logs: logs::LogsState,
    alerting: alerting::AlertingState,
    knowledge: knowledge::KnowledgeState,
    deploys: deploys::DeploysState,
    workflows: workflows::WorkflowsState,
    pipelines: pipelines::PipelinesState,
    grafana: grafana::GrafanaState,
    datasources: Arc<crate::datasources::DataSources>,
    console: Option<console::ConsoleState>,
}

/// Largest body of a non-ingest API request.
pub const API_BODY_LIMIT: usize = 1 << 20;

/// The router with every endpoint of this build: the API, and the console at `/` when enabled.
pub fn router(state: AppState) -> Router {
    let console = state.console.clone();
    let api = api_router(state);
    match console {
        Some(c) => api.clone().merge(console::router(c, api)),
        None => api,
    }
}

/// Every API route, under the auth middleware.
fn api_router(state: AppState) -> Router {
    let r = Router::new();
    let r = status::routes(r);
    let r = ingest::routes(r);
    let r = alerting::routes(r);
    let r = knowledge::routes(r);
    let r = deploys::routes(r);
    let r = workflows::routes(r);
    let r = read::routes(r);
    let r = logs::routes(r);
    let r = openapi::routes(r);
    let r = grafana::routes(r);
    let r = pipelines::routes(r);
    let r = datasources::routes(r);
    let r = console::api_routes(r);
    r.route_layer(axum::middleware::from_fn_with_state(
        state.auth.clone(),
        auth::layer,
    ))
    // API bodies (silences, workflows, queries) are small; ingest routes read their body with
    // their own limit (http.max_body_bytes).
    .layer(axum::extract::DefaultBodyLimit::max(API_BODY_LIMIT))
    .layer(axum::middleware::map_response(correlate))
    .with_state(state)
}

/// Every 500 answer is aiops' fault: it gets a correlation id (header, and `correlation_id` in
/// JSON bodies made by [`ApiError`]) and one error line in the log carrying the same id.
/// Answers that already carry an id (an [`ApiError`] logged it) keep theirs.
async fn correlate(mut resp: Response) -> Response {
    if resp.status() != StatusCode::INTERNAL_SERVER_ERROR
        || resp.headers().contains_key(CORRELATION_HEADER)
    {
        return resp;
    }
    let id = format!("{:016x}", rand::random::<u64>());
    tracing::error!(correlation_id = %id, status = resp.status().as_u16(), "request failed inside aiops");
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(CORRELATION_HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Services never import the HTTP layer: only `http/`, the composition root (`server.rs`),
    /// the binary (`main.rs`, `cli/`) and `lib.rs` may name `crate::http`.
    #[test]
    fn services_do_not_import_http() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let allowed = |rel: &std::path::Path| {
            rel.starts_with("http")
                || rel.starts_with("cli")
                || ["server.rs", "main.rs", "lib.rs"]
                    .iter()
                    .any(|f| rel == std::path::Path::new(f))
        };
        let mut offenders = Vec::new();
        let mut stack = vec![src.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(&src).unwrap().to_path_buf();
                if p.is_dir() {
                    if !allowed(&rel) {
                        stack.push(p);
                    }
                } else if p.extension().is_some_and(|x| x == "rs")
                    && !allowed(&rel)
                    && std::fs::read_to_string(&p)
                        .unwrap()
                        .contains(concat!("crate::", "http"))
                {
                    offenders.push(rel.display().to_string());
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "services importing crate::http: {offenders:?}"
        );
    }
}
