//! HTTP authentication and authorization: bearer API tokens with roles, a per-token rate limit,
//! and an audit event in the log for every write. Which role a route needs is decided in one
//! place, [`required`], so the OpenAPI document and the tests can check every route.

use crate::ingest::{IdBasis, Ingestor};
use crate::metrics::Metrics;
use aiops_connectors::sources::SourceBatch;
use aiops_read::auth::{ConfiguredToken, RateLimiter, Role, TokenStore};
use aiops_schemas::{EventBatchBuilder, Kind};
use axum::http::{Method, StatusCode};
use serde::Deserialize;
use std::sync::Arc;

/// `[auth]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Tokens given by hash (`printf %s TOKEN | sha256sum`), beside those aiops creates.
    pub tokens: Vec<ConfiguredToken>,
    /// Ingest routes take requests without a token while the HTTP API listens on loopback only
    /// (so the one-command start works). Default true; set false to require an `ingest` token.
    pub open_ingest_on_loopback: bool,
    /// Routes (exact paths, e.g. `/metrics`) that need no token.
    pub open_routes: Vec<String>,
    /// The role of a request without a token. Default none (401). Only for trusted
    /// single-user setups and tests.
    pub anonymous_role: Option<Role>,
    /// Requests per second per token (token bucket) on non-ingest routes; 0 disables.
    /// Default 50.
    pub rate_limit_per_second: f64,
    /// Burst of the rate limit. Default 200.
    pub rate_limit_burst: f64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            tokens: Vec::new(),
            open_ingest_on_loopback: true,
            open_routes: Vec::new(),
            anonymous_role: None,
            rate_limit_per_second: 50.0,
            rate_limit_burst: 200.0,
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing (health, the OpenAPI document).
    Open,
    /// A role.
    Role(Role),
}

/// The paths of the ingest routes (from the connector registry, plus `POST /api/logs` and the
/// OTLP/HTTP paths `/v1/metrics`, `/v1/logs`).
pub fn ingest_paths() -> Vec<&'static str> {
    let mut p: Vec<&'static str> = aiops_connectors::registry::push_endpoints()
        .iter()
        .map(|e| e.path)
        .collect();
    p.push("/api/logs");
    p.extend(crate::otlp::HTTP_PATHS);
    p
}

/// The role `method route` needs (`route` is the route template, e.g. `/api/workflows/{id}`).
pub fn required(method: &Method, route: &str) -> Need {
    // Deploy webhooks carry no token (GitHub, GitLab, Argo CD and Flux cannot send one): each
    // hook checks the request's signature or shared secret itself.
    if matches!(route, "/api/health" | "/api/openapi.json")
        || (*method == Method::POST && route == "/api/deploy/hooks/{kind}")
    {
        return Need::Open;
    }
    if *method == Method::POST && ingest_paths().contains(&route) {
        return Need::Role(Role::Ingest);
    }
    let read = matches!(*method, Method::GET | Method::HEAD);
    if read {
        return Need::Role(
            if route.starts_with("/api/tokens")
                || route.starts_with("/api/console/")
                || route == "/api/audit"
            {
                Role::Admin
            } else {
                Role::Viewer
            },
        );
    }
    // Writes that are queries, not changes.
    if matches!(
        route,
        "/api/sql" | "/api/autoheal/diagnose" | "/api/metrics/query" | "/api/knowledge/ask"
    ) {
        return Need::Role(Role::Viewer);
    }
    let operator = route.starts_with("/api/v2/silence")
        || route.starts_with("/api/incidents/")
        || route.ends_with("/execute")
        || route.starts_with("/api/workflows/executions/")
        || route == "/api/autoheal/fix"
        || route.starts_with("/api/knowledge/")
        || route == "/api/deploy"
        || route == "/api/deploy/rollback";
    Need::Role(if operator {
        Role::Operator
    } else {
        Role::Admin
    })
}

/// Authentication state shared by every request.
#[derive(Debug)]
pub struct HttpAuth {
    /// The tokens.
    pub tokens: Arc<TokenStore>,
    /// The per-token rate limit.
    pub limiter: RateLimiter,
    /// `[auth]`.
    pub settings: AuthSettings,
    /// The HTTP API listens on a loopback address only.
    pub loopback_only: bool,
    /// Where audit events are appended.
    ingestor: Arc<Ingestor>,
    /// Refusals are counted here.
    pub metrics: Arc<Metrics>,
    /// Console sessions: a signed-in browser's cookie stands for its user's role.
    pub sessions: Option<Arc<crate::console::sessions::Sessions>>,
}

/// Marks a request a console page makes to fill itself: a read, even when it is a query
/// `POST` (`/api/sql`), so it is not audited as a write at every live refresh.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleRead;

impl HttpAuth {
    /// Auth over `tokens`; `loopback_only` = the HTTP API listens on a loopback address. Audit
    /// events go through `ingestor`; refusals are counted in `metrics`.
    pub fn new(
        tokens: Arc<TokenStore>,
        settings: AuthSettings,
        loopback_only: bool,
        ingestor: Arc<Ingestor>,
        metrics: Arc<Metrics>,
    ) -> HttpAuth {
        HttpAuth {
            tokens,
            limiter: RateLimiter::new(settings.rate_limit_per_second, settings.rate_limit_burst),
            settings,
            loopback_only,
            ingestor,
            metrics,
            sessions: None,
        }
    }

    /// Accepts console session cookies from `sessions`.
    pub fn with_sessions(mut self, sessions: Arc<crate::console::sessions::Sessions>) -> HttpAuth {
        self.sessions = Some(sessions);
        self
    }

    /// Appends an audit event (`type = 'audit'` on the events stream): who, what, the outcome.
    /// Never the body, never a token.
    pub async fn audit(&self, caller: &Caller, method: &Method, route: &str, status: StatusCode) {
        let now = crate::clock::now_ms();
        let mut b = EventBatchBuilder::new();
        let role = caller.role.map(Role::as_str).unwrap_or("none");
        let code = status.as_u16().to_string();
        b.push(
            now,
            "audit",
            &format!("{method} {route} → {code}"),
            [
                ("actor", caller.name.as_str()),
                ("token", caller.token.as_str()),
            ],
            [
                ("method", method.as_str()),
                ("route", route),
                ("status", code.as_str()),
                ("role", role),
            ],
        );
        let Ok(batch) = b.finish() else {
            return;
        };
        let sb = SourceBatch {
            kind: Kind::Events,
            source: "audit",
            batch,
            time_range: Some((now, now)),
        };
        if let Err(e) = self.ingestor.ingest(vec![sb], IdBasis::Unique).await {
            tracing::error!(error = %e, route, "audit event could not be appended");
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Token id, or `anonymous`.
    pub token: String,
    /// Token name.
    pub name: String,
    /// Its role, if any.
    pub role: Option<Role>,
}
