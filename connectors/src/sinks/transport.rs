//! Shared HTTP plumbing of the HTTP providers: the guarded client, sending, reading a limited
//! body, and turning failures into secret-free [`SinkError`]s.

use crate::sinks::outbound::Refusal;
use crate::sinks::registry::ProviderContext;
use crate::sinks::secret::redact;
use crate::sinks::{OutboundPolicy, SinkError};
use serde_json::Value;
use std::error::Error as _;

/// Longest excerpt of an answer put into an error.
pub(crate) const EXCERPT_BYTES: usize = 512;
/// Longest answer kept in an [`crate::sinks::EffectOutput`] by notification providers.
pub(crate) const OUTPUT_BYTES: usize = 4096;
/// Longest service message [`error_message`] keeps.
pub(crate) const MESSAGE_BYTES: usize = 300;
/// How much of an answer notification providers read at most.
pub(crate) const DEFAULT_READ_LIMIT: usize = 256 * 1024;

/// The HTTP side of one provider: its client, its policy and the secrets to keep out of text.
#[derive(Clone)]
pub(crate) struct HttpSink {
    kind: &'static str,
    client: reqwest::Client,
    policy: OutboundPolicy,
    secrets: Vec<String>,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("kind", &self.kind)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// An answer with a success status.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, at most the read limit.
    pub body: Vec<u8>,
    /// Whether the answer was longer than the read limit: `body` is then only its first
    /// `limit` bytes. Only [`HttpSink::send_capped`] returns such a reply; [`HttpSink::send`]
    /// refuses the answer instead.
    pub truncated: bool,
}

impl Reply {
    /// The body as JSON, if it is JSON.
    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body parsed into `T` (fields `T` does not name are skipped, not kept), if the answer
    /// is whole and parses.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        if self.truncated {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }
}

impl HttpSink {
    /// Builds the client for provider `kind`; `secrets` are removed from any text it reports.
    pub(crate) fn new(
        kind: &'static str,
        ctx: &ProviderContext,
        secrets: Vec<String>,
    ) -> Result<Self, SinkError> {
        Ok(HttpSink {
            kind,
            client: ctx.outbound.client(ctx.timeout)?,
            policy: ctx.outbound.clone(),
            secrets,
        })
    }

    /// The client, to build requests with.
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Parses and checks a URL (`field` names it in errors); the error names at most the host.
    pub(crate) fn check_url(&self, field: &str, url: &str) -> Result<url::Url, SinkError> {
        match self.policy.check_url(url) {
            Ok(u) => Ok(u),
            Err(SinkError::Params { message, .. }) => Err(SinkError::params(field, message)),
            Err(SinkError::Refused { reason }) => Err(SinkError::refused(format!(
                "{}: {field}: {reason}",
                self.kind
            ))),
            Err(other) => Err(other),
        }
    }

    /// Removes secrets from `text`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let refs: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(text, &refs)
    }

    /// Sends `req` to `host` and reads at most `limit` bytes of the answer.
    ///
    /// # Errors
    /// Non-2xx → [`SinkError::Http`] with a redacted excerpt; an answer over `limit` →
    /// [`SinkError::Refused`]; transport failures → `Network`, `Timeout` or `Refused` (guard).
    pub(crate) async fn send(
        &self,
        req: reqwest::RequestBuilder,
        host: &str,
        limit: usize,
    ) -> Result<Reply, SinkError> {
        let result = self.send_inner(req, host, limit).await.and_then(|reply| {
            if reply.truncated {
                Err(SinkError::refused(format!(
                    "{}: answer from {host} exceeds {limit} bytes",
                    self.kind
                )))
            } else {
                Ok(reply)
            }
        });
        self.log(host, &result);
        result
    }

    /// Like [`HttpSink::send`], but a success answer over `limit` is not an error: it comes
    /// back as its first `limit` bytes with [`Reply::truncated`] set (for calls whose success
    /// matters more than the answer's content).
    ///
    /// # Errors
    /// Non-2xx → [`SinkError::Http`] with a redacted excerpt; transport failures → `Network`,
    /// `Timeout` or `Refused` (guard).
    pub(crate) async fn send_capped(
        &self,
        req: reqwest::RequestBuilder,
        host: &str,
        limit: usize,
    ) -> Result<Reply, SinkError> {
        let result = self.send_inner(req, host, limit).await;
        self.log(host, &result);
        result
    }

    fn log(&self, host: &str, result: &Result<Reply, SinkError>) {
        match result {
            Ok(reply) => {
                tracing::debug!(
                    kind = self.kind,
                    host,
                    status = reply.status,
                    truncated = reply.truncated,
                    "provider call answered"
                )
            }
            Err(e) => {
                // Not the error text: it may quote a receiver echoing a secret of the call's
                // parameters, which only the executor knows. The executor logs the reason
                // redacted, with the effect's key.
                tracing::warn!(
                    kind = self.kind,
                    host,
                    retryable = e.retryable(),
                    "provider call failed"
                )
            }
        }
    }

    async fn send_inner(
        &self,
        req: reqwest::RequestBuilder,
        host: &str,
        limit: usize,
    ) -> Result<Reply, SinkError> {
        let mut resp = req.send().await.map_err(|e| self.map_err(e, host))?;
        let status = resp.status().as_u16();
        let success = resp.status().is_success();
        // Error answers only need an excerpt; do not read megabytes of an HTML error page.
        let cap = if success { limit } else { EXCERPT_BYTES * 4 };
        let mut body = Vec::new();
        let mut over = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.map_err(e, host))? {
            if body.len() + chunk.len() > cap {
                body.extend_from_slice(&chunk[..cap - body.len()]);
                over = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        if !success {
            return Err(SinkError::Http {
                status,
                body_excerpt: self.excerpt(&body),
            });
        }
        Ok(Reply {
            status,
            body,
            truncated: over,
        })
    }

    /// At most [`EXCERPT_BYTES`] of `body` as text, secrets removed.
    pub(crate) fn excerpt(&self, body: &[u8]) -> String {
        let text = self.redact(&String::from_utf8_lossy(body));
        truncate(&text, EXCERPT_BYTES).to_owned()
    }

    /// A small output value: the JSON answer if it fits in [`OUTPUT_BYTES`], else a text excerpt.
    pub(crate) fn small_output(&self, body: &[u8]) -> Value {
        if body.is_empty() {
            return Value::Null;
        }
        if body.len() <= OUTPUT_BYTES
            && let Ok(v) = serde_json::from_slice::<Value>(body)
        {
            let text = v.to_string();
            let clean = self.redact(&text);
            if clean == text {
                return v;
            }
            return Value::String(truncate(&clean, OUTPUT_BYTES).to_owned());
        }
        let text = self.redact(&String::from_utf8_lossy(body));
        Value::String(truncate(&text, OUTPUT_BYTES).to_owned())
    }

    fn map_err(&self, e: reqwest::Error, host: &str) -> SinkError {
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(r) = s.downcast_ref::<Refusal>() {
                return SinkError::refused(format!("{}: {}", self.kind, r.0));
            }
            source = s.source();
        }
        if e.is_timeout() {
            return SinkError::Timeout;
        }
        // reqwest puts the full URL (with webhook tokens) into its message: drop it.
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        SinkError::Network(self.redact(&format!("{} {host}: {msg}", self.kind)))
    }
}

/// Checks an API token from the config (never quoting it: it is the secret).
///
/// # Errors
/// [`SinkError::Config`] for an empty token or one with spaces or control characters (which
/// would also bend the `Authorization` header).
pub(crate) fn check_token(token: &str) -> Result<(), SinkError> {
    if token.trim().is_empty() {
        return Err(SinkError::Config("token must not be empty".into()));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SinkError::Config(
            "token must not contain spaces or control characters".into(),
        ));
    }
    Ok(())
}

/// The service's message in an error answer's excerpt: the first non-empty string of `message`
/// or `error` in a JSON object (GitHub's `{message, documentation_url}`, gRPC-gateway's
/// `{error, code, message}`), else the excerpt itself; at most [`MESSAGE_BYTES`].
pub(crate) fn error_message(excerpt: &str) -> String {
    let parsed = serde_json::from_str::<Value>(excerpt).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| {
            ["message", "error"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        })
        .unwrap_or_else(|| excerpt.trim());
    if msg.is_empty() {
        return "no message".to_owned();
    }
    truncate(msg, MESSAGE_BYTES).to_owned()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The host of a URL for targets and messages (never the path or query).
pub(crate) fn host_of(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    }
}

/// `base` with `path` appended (keeps a base path such as `/grafana`).
pub(crate) fn join(base: &url::Url, path: &str) -> url::Url {
    let mut u = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    u.set_path(&joined);
    u.set_query(None);
    u
}

#[cfg(test)]
mod tests {
    use super::{MESSAGE_BYTES, check_token, error_message};
    use crate::sinks::SinkError;

    #[test]
    fn tokens_are_checked_without_quoting_them() {
        check_token("ghp_abc123").unwrap();
        for bad in ["", "   ", "abc def-secret", "abc\r\nX-Evil: 1"] {
            let e = check_token(bad).unwrap_err();
            assert!(
                matches!(&e, SinkError::Config(m) if m.contains("token")),
                "{e}"
            );
            assert!(!e.to_string().contains("def-secret"), "{e}");
        }
    }

    #[test]
    fn error_messages_of_github_and_grpc_gateway() {
        assert_eq!(
            error_message(r#"{"message": "Bad credentials", "documentation_url": "x"}"#),
            "Bad credentials"
        );
        assert_eq!(
            error_message(r#"{"error": "denied", "code": 7, "message": ""}"#),
            "denied"
        );
        assert_eq!(
            error_message("  <html>Bad gateway</html> "),
            "<html>Bad gateway</html>"
        );
        assert_eq!(error_message(r#"{"message": ""}"#), r#"{"message": ""}"#);
        assert_eq!(error_message(" "), "no message");
        assert_eq!(error_message(&"é".repeat(400)).len(), MESSAGE_BYTES);
    }
}
