//! The authentication middleware: authenticate, authorize, rate-limit, run, audit writes. Which
//! role a route needs, the tokens and the audit event are [`crate::auth`]'s.

use super::error::ApiError;
use crate::auth::{Caller, ConsoleRead, HttpAuth, Need, required};
use crate::console::sessions::{Kind, SESSION_COOKIE, Session, Sessions, Stage, same};
use aiops_read::auth::Role;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

fn refuse(status: StatusCode, reason: &str, message: String) -> ApiError {
    let e = ApiError::reason(status, reason, message);
    if status == StatusCode::UNAUTHORIZED {
        e.with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"aiops\""),
        )
    } else {
        e
    }
}

/// Which approval routes accept a workflow user's bearer token instead (checked by the handler).
fn approval_route(route: &str) -> bool {
    route.starts_with("/api/workflows/executions/")
}

/// The middleware: authenticate, authorize, rate-limit, run, audit writes.
pub async fn layer(State(auth): State<Arc<HttpAuth>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
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
    // Async: in cluster mode an unknown token is looked up in the cluster's token bucket.
    let record = match bearer.as_deref() {
        Some(t) => auth.tokens.verify_async(t).await,
        None => None,
    };
    // A browser signed in to the console: its session cookie, when no bearer token is given.
    let session = match (&bearer, &auth.sessions) {
        (None, Some(sessions)) => console_session(sessions, &auth, req.headers()),
        _ => None,
    };
    let caller = match (&record, &session) {
        (Some(r), _) => Caller {
            token: r.id.clone(),
            name: r.name.clone(),
            role: Some(r.role),
        },
        (None, Some(s)) => Caller {
            token: match &s.kind {
                Kind::User => format!("user:{}", s.user),
                Kind::Token(id) => id.clone(),
            },
            name: s.user.clone(),
            role: Some(s.role),
        },
        (None, None) => Caller {
            token: "anonymous".into(),
            name: "anonymous".into(),
            role: auth.settings.anonymous_role,
        },
    };
    let write = !matches!(method, Method::GET | Method::HEAD);
    let is_ingest = need == Need::Role(Role::Ingest);
    // A console page filling itself with a query route reads; it is not audited as a write.
    let write = write
        && !(need == Need::Role(Role::Viewer) && req.extensions().get::<ConsoleRead>().is_some());
    // Cookie-authenticated writes need the session's CSRF token and, when the browser says
    // where the request comes from, this listener as its origin: another site's form or script
    // cannot act with a signed-in user's cookie.
    if let Some(s) = &session
        && !matches!(method, Method::GET | Method::HEAD)
    {
        let token = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same(token, &s.csrf) || !super::console::same_origin(req.headers()) {
            auth.metrics.rejected("api", "csrf");
            let resp = refuse(
                StatusCode::FORBIDDEN,
                "csrf",
                format!(
                    "{method} {route}: a console request must come from the console (X-CSRF-Token header of the session, same origin)"
                ),
            )
            .into_response();
            auth.audit(&caller, &method, &route, resp.status()).await;
            return resp;
        }
    }
    let decision: Result<(), ApiError> = match need {
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
    if let Err(refusal) = decision {
        let resp = refusal.into_response();
        auth.metrics.rejected("api", "unauthorized");
        if write && !is_ingest {
            auth.audit(&caller, &method, &route, resp.status()).await;
        }
        return resp;
    }
    let key = if record.is_some() || session.is_some() {
        caller.token.clone()
    } else {
        "anonymous".to_string()
    };
    // Ingest volume is governed by the log's backpressure, not by a per-token request rate.
    if need != Need::Open
        && !is_ingest
        && let Err(wait) = auth.limiter.check(&key, Instant::now())
    {
        auth.metrics.rejected("api", "rate_limited");
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "rate limit of {} requests/s per token exceeded (auth.rate_limit_per_second)",
                auth.settings.rate_limit_per_second
            ),
        )
        .retry_after(wait.ceil().max(1.0) as u64)
        .into_response();
    }
    let mut req = req;
    req.extensions_mut().insert(caller.clone());
    let resp = next.run(req).await;
    if write && !is_ingest {
        auth.audit(&caller, &method, &route, resp.status()).await;
    }
    resp
}

/// The signed-in console session of a request's cookie; a session opened with an API token
/// that has since been revoked is ended.
fn console_session(
    sessions: &Sessions,
    auth: &HttpAuth,
    headers: &axum::http::HeaderMap,
) -> Option<Session> {
    let c = super::console::cookie(headers, SESSION_COOKIE)?;
    let s = sessions.get(c, Instant::now())?;
    if s.stage != Stage::Active {
        return None;
    }
    if let Kind::Token(id) = &s.kind
        && !auth.tokens.list().iter().any(|t| &t.id == id)
    {
        sessions.close_token(id);
        return None;
    }
    Some(s)
}
