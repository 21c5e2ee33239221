//! [`ApiError`]: the one error type of the HTTP API. Every handler returns
//! `Result<_, ApiError>`; the error carries its status, its JSON body and any extra headers, and
//! turns into the answer the API has always given:
//!
//! - `{"error": message, "reason": reason}` ([`ApiError::with_reason`]) for most routes;
//! - `{"error": message}` for the workflow and incident routes;
//! - a bare JSON string for Alertmanager's API v2 ([`ApiError::alertmanager`]), as `amtool` reads it;
//! - a prebuilt body ([`ApiError::json`]), e.g. a query error with its `sqlstate`.
//!
//! A 500 is aiops' fault: it gets a correlation id, in the `x-correlation-id` header, as
//! `correlation_id` in an object body, and on one error line in the log.

use axum::http::header::{self, HeaderName};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Header naming a failure inside aiops: the same id is in the engine's log line.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// An HTTP API error: status, JSON body, extra headers. Boxed, so a `Result<_, ApiError>` stays
/// one word wide.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    body: Value,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// What a handler returns.
pub type ApiResult<T = Response> = Result<T, ApiError>;

impl ApiError {
    /// `status` with the body `{"error": message}`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::json(status, json!({ "error": message.into() }))
    }

    /// `status` with the body `{"error": message, "reason": reason}`.
    pub fn reason(status: StatusCode, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(status, message).with_reason(reason)
    }

    /// `status` with a prebuilt JSON body.
    pub fn json(status: StatusCode, body: Value) -> ApiError {
        ApiError(Box::new(Inner {
            status,
            body,
            headers: Vec::new(),
        }))
    }

    /// Alertmanager's form: the message as a bare JSON string.
    pub fn alertmanager(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::json(status, Value::String(message.into()))
    }

    /// 400, `{"error": message}`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401, `{"error": message}`.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403, `{"error": message}`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404, `{"error": message}`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 409, `{"error": message}`.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 503, `{"error": message}`: a part of aiops that is not running here.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500, `{"error": message}` (a correlation id is added when it is answered).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 503 `unavailable`: the read side is not running in this process.
    pub fn no_read_side() -> ApiError {
        ApiError::reason(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the read side is not running in this process",
        )
    }

    /// Adds `"reason": reason` to an object body.
    #[must_use]
    pub fn with_reason(mut self, reason: &str) -> ApiError {
        if let Some(o) = self.0.body.as_object_mut() {
            o.insert("reason".into(), Value::String(reason.to_string()));
        }
        self
    }

    /// The same body under another status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.0.status = status;
        self
    }

    /// Adds a header to the answer.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.0.headers.push((name, value));
        self
    }

    /// `Retry-After: secs`.
    #[must_use]
    pub fn retry_after(self, secs: u64) -> ApiError {
        self.with_header(header::RETRY_AFTER, HeaderValue::from(secs))
    }

    /// `Retry-After: 1` when the status says "later" (429 or 503): backpressure, not a refusal.
    #[must_use]
    pub fn with_retry_hint(self) -> ApiError {
        match self.0.status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => self.retry_after(1),
            _ => self,
        }
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The body it answers with (before a correlation id is added).
    pub fn body(&self) -> &Value {
        &self.0.body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.body {
            Value::String(s) => write!(f, "{}: {s}", self.0.status),
            Value::Object(o) => match o.get("error") {
                Some(Value::String(s)) => write!(f, "{}: {s}", self.0.status),
                _ => write!(f, "{}: {}", self.0.status, self.0.body),
            },
            other => write!(f, "{}: {other}", self.0.status),
        }
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Inner {
            status,
            mut body,
            headers,
        } = *self.0;
        let mut correlation = None;
        if status == StatusCode::INTERNAL_SERVER_ERROR
            && !headers.iter().any(|(n, _)| n == CORRELATION_HEADER)
        {
            // A 500 is aiops' fault: the answer carries an id the operator finds in the log.
            let id = format!("{:016x}", rand::random::<u64>());
            let reason = body.get("reason").and_then(Value::as_str).unwrap_or("");
            let message = match &body {
                Value::String(s) => s.as_str(),
                b => b.get("error").and_then(Value::as_str).unwrap_or(""),
            };
            tracing::error!(correlation_id = %id, reason, error = %message, "API request failed");
            if let Some(o) = body.as_object_mut() {
                o.insert("correlation_id".into(), Value::String(id.clone()));
            }
            correlation = HeaderValue::from_str(&id).ok();
        }
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        for (name, value) in headers {
            h.insert(name, value);
        }
        if let Some(v) = correlation {
            h.insert(CORRELATION_HEADER, v);
        }
        resp
    }
}

/// The HTTP status of a failed query: the user's mistake (syntax, names, data, refused
/// statements) is 400; a limit the query ran into (time, memory, size, complexity) is 422; only
/// an internal error (class XX, or 58 — the system) is 500.
pub fn query_status(code: &str) -> StatusCode {
    match code {
        "57014" | "53200" => StatusCode::UNPROCESSABLE_ENTITY,
        c if c.starts_with("54") => StatusCode::UNPROCESSABLE_ENTITY,
        c if c.starts_with("XX") || c.starts_with("58") => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A failed query of the read side, with the status of [`query_status`] (a 500 gets a correlation
/// id). The body carries the SQLSTATE.
impl From<aiops_read::limits::QueryError> for ApiError {
    fn from(e: aiops_read::limits::QueryError) -> ApiError {
        ApiError::json(
            query_status(e.code),
            json!({"error": e.message, "reason": "query", "sqlstate": e.code}),
        )
    }
}

impl From<aiops_grafana::GrafanaError> for ApiError {
    fn from(e: aiops_grafana::GrafanaError) -> ApiError {
        use aiops_grafana::GrafanaError;
        let (status, reason) = match &e {
            GrafanaError::NotConfigured(_) => (StatusCode::CONFLICT, "not_configured"),
            GrafanaError::Transport { .. } => (StatusCode::BAD_GATEWAY, "grafana_unreachable"),
            GrafanaError::Status { .. } => (StatusCode::BAD_GATEWAY, "grafana_refused"),
            GrafanaError::Query { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "generated_query"),
            GrafanaError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::reason(status, reason, e.to_string())
    }
}

impl From<crate::datasources::DataSourceError> for ApiError {
    fn from(e: crate::datasources::DataSourceError) -> ApiError {
        use crate::datasources::DataSourceError;
        match e {
            DataSourceError::Invalid { .. } | DataSourceError::Build(_) => {
                ApiError::reason(StatusCode::BAD_REQUEST, "invalid", e.to_string())
            }
            DataSourceError::NotFound(_) => {
                ApiError::reason(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            DataSourceError::Exists(_) => {
                ApiError::reason(StatusCode::CONFLICT, "exists", e.to_string())
            }
            DataSourceError::InConfig { .. } => {
                ApiError::reason(StatusCode::CONFLICT, "config", e.to_string())
            }
            DataSourceError::Refused { .. } => ApiError::reason(
                StatusCode::UNPROCESSABLE_ENTITY,
                "outbound_refused",
                format!("{e} (list the target in [outbound] allow to reach it)"),
            ),
            DataSourceError::Store { .. } => {
                ApiError::reason(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
            }
        }
    }
}

/// A workflow change or command: the user's invalid set is 400, a refusal 409, a log that did
/// not take the command 503, a file not written or a command not encoded 500.
impl From<crate::workflows::service::ChangeError> for ApiError {
    fn from(e: crate::workflows::service::ChangeError) -> ApiError {
        use crate::workflows::service::ChangeError;
        let status = match &e {
            ChangeError::Invalid(_) => StatusCode::BAD_REQUEST,
            ChangeError::Refused(_) => StatusCode::CONFLICT,
            ChangeError::Log(_) => StatusCode::SERVICE_UNAVAILABLE,
            ChangeError::Write { .. } | ChangeError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<crate::submit::SubmitError> for ApiError {
    fn from(e: crate::submit::SubmitError) -> ApiError {
        use crate::submit::SubmitError as S;
        match e {
            S::Invalid(m) => ApiError::reason(StatusCode::BAD_REQUEST, "invalid", m),
            S::Conflict(m) => ApiError::reason(StatusCode::CONFLICT, "conflict", m),
            S::NotFound(m) => ApiError::reason(StatusCode::NOT_FOUND, "not_found", m),
            S::Unavailable(m) => ApiError::unavailable(m).with_retry_hint(),
            S::Pending(m) => ApiError::reason(StatusCode::ACCEPTED, "pending", m),
            S::Failed(m) => ApiError::internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn body_of(r: Response) -> Value {
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn is_one_word() {
        assert_eq!(
            std::mem::size_of::<ApiError>(),
            std::mem::size_of::<usize>()
        );
    }

    #[tokio::test]
    async fn bodies_and_correlation() {
        let r = ApiError::reason(StatusCode::BAD_REQUEST, "bad_json", "nope").into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.headers().get(CORRELATION_HEADER).is_none());
        assert_eq!(
            body_of(r).await,
            json!({"error": "nope", "reason": "bad_json"})
        );

        let r =
            ApiError::alertmanager(StatusCode::NOT_FOUND, "silence x not found").into_response();
        assert_eq!(body_of(r).await, json!("silence x not found"));

        let r =
            ApiError::reason(StatusCode::INTERNAL_SERVER_ERROR, "write", "disk").into_response();
        let id = r.headers()[CORRELATION_HEADER]
            .to_str()
            .unwrap()
            .to_string();
        let b = body_of(r).await;
        assert_eq!(b["correlation_id"], json!(id));
        assert_eq!(b["reason"], "write");

        let r = ApiError::reason(StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", "x")
            .with_retry_hint()
            .into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = ApiError::not_found("x").with_retry_hint().into_response();
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }
}
