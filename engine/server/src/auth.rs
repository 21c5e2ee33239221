//! HTTP authentication and authorization: bearer API tokens with roles, a per-token rate limit,
//! and an audit event in the log for every write. Which role a route needs is decided in one
//! place, [`required`], so the OpenAPI document and the tests can check every route.

use crate::http::AppState;
use aiops_connectors::sources::SourceBatch;
use aiops_read::auth::{ConfiguredToken, RateLimiter, Role, TokenStore};
use aiops_schemas::{EventBatchBuilder, Kind};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

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

/// The paths of the ingest routes (from the connector registry, plus `POST /api/logs`).
pub fn ingest_paths() -> Vec<&'static str> {
    let mut p: Vec<&'static str> = aiops_connectors::registry::push_endpoints()
        .iter()
        .map(|e| e.path)
        .collect();
    p.push("/api/logs");
    p
}

/// The role `method route` needs (`route` is the route template, e.g. `/api/workflows/{id}`).
pub fn required(method: &Method, route: &str) -> Need {
    if matches!(route, "/api/health" | "/api/openapi.json") {
        return Need::Open;
    }
    if *method == Method::POST && ingest_paths().contains(&route) {
        return Need::Role(Role::Ingest);
    }
    let read = matches!(*method, Method::GET | Method::HEAD);
    if read {
        return Need::Role(
            if route.starts_with("/api/tokens") || route == "/api/audit" {
                Role::Admin
            } else {
                Role::Viewer
            },
        );
    }
    // Writes that are queries, not changes.
    if matches!(
        route,
        "/api/sql" | "/api/autoheal/diagnose" | "/api/metrics/query"
    ) {
        return Need::Role(Role::Viewer);
    }
    let operator = route.starts_with("/api/v2/silence")
        || route.starts_with("/api/incidents/")
        || route.ends_with("/execute")
        || route.starts_with("/api/workflows/executions/")
        || route == "/api/autoheal/fix";
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
    limiter: RateLimiter,
    settings: AuthSettings,
    loopback_only: bool,
}

impl HttpAuth {
    /// Auth over `tokens`; `loopback_only` = the HTTP API listens on a loopback address.
    pub fn new(tokens: Arc<TokenStore>, settings: AuthSettings, loopback_only: bool) -> HttpAuth {
        HttpAuth {
            tokens,
            limiter: RateLimiter::new(settings.rate_limit_per_second, settings.rate_limit_burst),
            settings,
            loopback_only,
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

fn refuse(status: StatusCode, reason: &str, message: String) -> Response {
    let mut r = (
        status,
        axum::Json(json!({"error": message, "reason": reason})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"aiops\""),
        );
    }
    r
}

/// Which approval routes accept a workflow user's bearer token instead (checked by the handler).
fn approval_route(route: &str) -> bool {
    route.starts_with("/api/workflows/executions/")
}

/// The middleware: authenticate, authorize, rate-limit, run, audit writes.
pub async fn layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let auth = st.auth.clone();
    let need = if auth.settings.open_routes.contains(&route) {
        Need::Open
    } else {
        required(&method, &route)
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_string);
    let record = bearer.as_deref().and_then(|t| auth.tokens.verify(t));
    let caller = match (&record, &bearer) {
        (Some(r), _) => Caller {
            token: r.id.clone(),
            name: r.name.clone(),
            role: Some(r.role),
        },
        (None, _) => Caller {
            token: "anonymous".into(),
            name: "anonymous".into(),
            role: auth.settings.anonymous_role,
        },
    };
    let write = !matches!(method, Method::GET | Method::HEAD);
    let is_ingest = need == Need::Role(Role::Ingest);
    let decision: Result<(), Response> = match need {
        Need::Open => Ok(()),
        Need::Role(Role::Ingest)
            if bearer.is_none() && auth.settings.open_ingest_on_loopback && auth.loopback_only =>
        {
            Ok(())
        }
        // A workflow approver's own bearer token is checked by the approval handler.
        Need::Role(_)
            if record.is_none()
                && bearer.is_some()
                && method == Method::POST
                && approval_route(&route) =>
        {
            Ok(())
        }
        Need::Role(need) => match caller.role {
            None if bearer.is_some() => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the bearer token is not a valid aiops API token".into(),
            )),
            None => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!(
                    "{method} {route} needs a bearer token with role {} (Authorization: Bearer <token>)",
                    need.as_str()
                ),
            )),
            Some(have) if !have.allows(need) => Err(refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{method} {route} needs role {}; token {:?} has role {}",
                    need.as_str(),
                    caller.name,
                    have.as_str()
                ),
            )),
            Some(_) => Ok(()),
        },
    };
    if let Err(resp) = decision {
        st.metrics.rejected("api", "unauthorized");
        if write && !is_ingest {
            audit(&st, &caller, &method, &route, resp.status()).await;
        }
        return resp;
    }
    let key = if record.is_some() {
        caller.token.clone()
    } else {
        "anonymous".to_string()
    };
    // Ingest volume is governed by the log's backpressure, not by a per-token request rate.
    if need != Need::Open
        && !is_ingest
        && let Err(wait) = auth.limiter.check(&key, Instant::now())
    {
        st.metrics.rejected("api", "rate_limited");
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "rate limit of {} requests/s per token exceeded (auth.rate_limit_per_second)",
                auth.settings.rate_limit_per_second
            ),
        );
        let secs = wait.ceil().max(1.0) as u64;
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let mut req = req;
    req.extensions_mut().insert(caller.clone());
    let resp = next.run(req).await;
    if write && !is_ingest {
        audit(&st, &caller, &method, &route, resp.status()).await;
    }
    resp
}

/// Appends an audit event (`type = 'audit'` on the events stream): who, what, the outcome.
/// Never the body, never a token.
async fn audit(st: &AppState, caller: &Caller, method: &Method, route: &str, status: StatusCode) {
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
    if let Err(e) = st
        .ingestor
        .ingest(vec![sb], crate::ingest::IdBasis::Unique)
        .await
    {
        tracing::error!(error = %e, route, "audit event could not be appended");
    }
}
