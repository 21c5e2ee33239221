//! The running `feishu` provider.

use super::config::FeishuConfig;
use crate::sinks::params::{self, Params};
use crate::sinks::registry::ProviderContext;
use crate::sinks::secret::SecretUrl;
use crate::sinks::transport::{DEFAULT_READ_LIMIT, HttpSink, host_of, truncate};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError, clock};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const KNOWN: &[&str] = &["text", "title", "content", "color"];
/// Feishu's "frequency limited" code: the only one documented as transient.
const FREQUENCY_LIMITED: i64 = 11232;

/// Posts to one Feishu custom bot.
#[derive(Debug)]
pub struct Feishu {
    config: FeishuConfig,
    url: SecretUrl,
    host: String,
    http: HttpSink,
}

/// Feishu's signature: `base64(HMAC-SHA256(key = "<timestamp>\n<secret>", message = ""))`.
pub fn sign(timestamp: u64, secret: &str) -> String {
    let key = format!("{timestamp}\n{secret}");
    match Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mac) => base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => String::new(),
    }
}

impl Feishu {
    /// Checks the URL against the outbound policy and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a refused URL, [`SinkError::Params`] for one that does not parse.
    pub fn new(config: FeishuConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let mut secrets = vec![config.url.expose().to_owned()];
        secrets.extend(config.secret.iter().map(|s| s.expose().to_owned()));
        let http = HttpSink::new("feishu", ctx, secrets)?;
        let url = http.check_url("url", config.url.expose())?;
        Ok(Feishu {
            host: host_of(&url),
            url: SecretUrl::new(url),
            config,
            http,
        })
    }

    /// The message part of the body (without `timestamp` and `sign`).
    pub fn payload(p: &Params) -> Result<Value, SinkError> {
        params::only_known(p, KNOWN)?;
        if let Some(content) = params::opt_str(p, "content")? {
            let title = params::req_str(p, "title")?;
            if content.trim().is_empty() {
                return Err(SinkError::params("content", "must not be empty"));
            }
            let template = params::opt_str(p, "color")?.unwrap_or("blue");
            return Ok(json!({
                "msg_type": "interactive",
                "card": {
                    "config": {"wide_screen_mode": true},
                    "header": {"title": {"tag": "plain_text", "content": title}, "template": template},
                    "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}]
                }
            }));
        }
        let text = params::req_str(p, "text").map_err(|_| {
            SinkError::params("text", "is required (or title and content for a card)")
        })?;
        Ok(json!({"msg_type": "text", "content": {"text": text}}))
    }

    fn check_code(&self, v: &Value) -> Result<(), SinkError> {
        // New bots answer `code`; old ones `StatusCode`.
        let code = v
            .get("code")
            .or_else(|| v.get("StatusCode"))
            .and_then(Value::as_i64);
        match code {
            Some(0) => Ok(()),
            Some(code) => {
                let msg = v
                    .get("msg")
                    .or_else(|| v.get("StatusMessage"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Err(SinkError::Service {
                    code,
                    message: truncate(&self.http.redact(msg), 512).to_owned(),
                    retryable: code == FREQUENCY_LIMITED,
                })
            }
            None => Err(SinkError::Service {
                code: -1,
                message: "answer without a code".into(),
                retryable: false,
            }),
        }
    }
}

#[async_trait::async_trait]
impl Provider for Feishu {
    fn kind(&self) -> &'static str {
        "feishu"
    }

    fn target(&self, _call: &EffectCall<'_>) -> String {
        self.host.clone()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        Self::payload(p).map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let mut body = Self::payload(call.params)?;
        if let (Some(secret), Some(obj)) = (&self.config.secret, body.as_object_mut()) {
            let ts = clock::unix_secs();
            obj.insert("timestamp".into(), Value::String(ts.to_string()));
            obj.insert("sign".into(), Value::String(sign(ts, secret.expose())));
        }
        let req = self.http.client().post(self.url.get()).json(&body);
        let reply = match self.http.send(req, &self.host, DEFAULT_READ_LIMIT).await {
            Ok(r) => r,
            // Feishu may put its code in a 4xx answer too; the code says more than the status.
            Err(SinkError::Http {
                status,
                body_excerpt,
            }) => {
                if let Ok(v) = serde_json::from_str::<Value>(&body_excerpt)
                    && v.get("code").and_then(Value::as_i64).is_some()
                    && status < 500
                    && status != 429
                {
                    self.check_code(&v)?;
                }
                return Err(SinkError::Http {
                    status,
                    body_excerpt,
                });
            }
            Err(e) => return Err(e),
        };
        let v = reply.json().unwrap_or(Value::Null);
        self.check_code(&v)?;
        Ok(EffectOutput {
            status: reply.status.to_string(),
            response: self.http.small_output(&reply.body),
        })
    }
}
