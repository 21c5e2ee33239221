//! The running `webhook` provider.

use super::config::WebhookConfig;
use crate::sinks::params::{self, Params};
use crate::sinks::registry::ProviderContext;
use crate::sinks::secret::SecretUrl;
use crate::sinks::transport::{DEFAULT_READ_LIMIT, HttpSink, host_of};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError, clock};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// Params this provider reads; all others form the default body.
const KNOWN: &[&str] = &["body", "headers"];

/// Posts JSON to one endpoint.
#[derive(Debug)]
pub struct Webhook {
    config: WebhookConfig,
    url: SecretUrl,
    host: String,
    http: HttpSink,
}

/// `sha256=<hex(HMAC-SHA256(secret, "<timestamp>.<body>"))>`, the `X-Aiops-Signature` value.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Webhook {
    /// Checks the URL against the outbound policy and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a refused URL; [`SinkError::Config`] for a bad header.
    pub fn new(config: WebhookConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let mut secrets = vec![config.url.expose().to_owned()];
        secrets.extend(config.secret.iter().map(|s| s.expose().to_owned()));
        secrets.extend(config.headers.values().map(|s| s.expose().to_owned()));
        let http = HttpSink::new("webhook", ctx, secrets)?;
        let url = http.check_url("url", config.url.expose())?;
        for (name, value) in &config.headers {
            header_pair(name, value.expose())
                .map_err(|_| SinkError::Config(format!("headers.{name}: not a valid header")))?;
        }
        Ok(Webhook {
            host: host_of(&url),
            url: SecretUrl::new(url),
            config,
            http,
        })
    }

    fn body(params: &Params) -> Value {
        match params.get("body") {
            Some(b) => b.clone(),
            None => {
                let mut rest = params.clone();
                for k in KNOWN {
                    rest.remove(*k);
                }
                Value::Object(rest)
            }
        }
    }
}

fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), ()> {
    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| ())?;
    let mut v = HeaderValue::from_str(value).map_err(|_| ())?;
    v.set_sensitive(true);
    Ok((n, v))
}

#[async_trait::async_trait]
impl Provider for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn target(&self, _call: &EffectCall<'_>) -> String {
        self.host.clone()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        for (name, value) in params::opt_string_map(p, "headers")? {
            header_pair(&name, &value).map_err(|_| {
                SinkError::params(format!("headers.{name}"), "not a valid HTTP header")
            })?;
        }
        Ok(())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        self.validate(call.params)?;
        let body = serde_json::to_vec(&Self::body(call.params))
            .map_err(|e| SinkError::params("body", e.to_string()))?;
        let mut headers = HeaderMap::new();
        let extra = params::opt_string_map(call.params, "headers")?;
        let configured = self
            .config
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_owned()));
        for (name, value) in configured.chain(extra) {
            if let Ok((n, v)) = header_pair(&name, &value) {
                headers.insert(n, v);
            }
        }
        let ts = clock::unix_secs();
        let fixed = [
            ("content-type", "application/json".to_owned()),
            ("idempotency-key", call.idempotency_key.to_owned()),
            ("x-aiops-timestamp", ts.to_string()),
        ];
        for (name, value) in fixed {
            let v = HeaderValue::from_str(&value)
                .map_err(|_| SinkError::params("idempotency_key", "not a valid header value"))?;
            headers.insert(HeaderName::from_static(name), v);
        }
        if let Some(secret) = &self.config.secret {
            let sig = signature(secret.expose().as_bytes(), ts, &body);
            if let Ok(v) = HeaderValue::from_str(&sig) {
                headers.insert(HeaderName::from_static("x-aiops-signature"), v);
            }
        }
        let req = self
            .http
            .client()
            .post(self.url.get())
            .headers(headers)
            .body(body);
        let reply = self.http.send(req, &self.host, DEFAULT_READ_LIMIT).await?;
        Ok(EffectOutput {
            status: reply.status.to_string(),
            response: self.http.small_output(&reply.body),
        })
    }
}
