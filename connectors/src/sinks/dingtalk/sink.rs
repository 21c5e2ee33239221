//! The running `dingtalk` provider.

use super::config::DingTalkConfig;
use crate::sinks::params::{self, Params};
use crate::sinks::registry::ProviderContext;
use crate::sinks::secret::SecretUrl;
use crate::sinks::transport::{DEFAULT_READ_LIMIT, HttpSink, host_of, truncate};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError, clock};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const KNOWN: &[&str] = &["title", "text", "at_all"];
/// DingTalk's "send too fast" code: transient.
const SEND_TOO_FAST: i64 = 130101;

/// Posts to one DingTalk robot.
#[derive(Debug)]
pub struct DingTalk {
    config: DingTalkConfig,
    url: SecretUrl,
    host: String,
    http: HttpSink,
}

/// DingTalk's signature before URL encoding:
/// `base64(HMAC-SHA256(key = secret, message = "<timestamp ms>\n<secret>"))`.
pub fn sign(timestamp_ms: u128, secret: &str) -> String {
    match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => String::new(),
    }
}

impl DingTalk {
    /// Checks the URL against the outbound policy and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a refused URL, [`SinkError::Params`] for one that does not parse.
    pub fn new(config: DingTalkConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let mut secrets = vec![config.url.expose().to_owned()];
        secrets.extend(config.secret.iter().map(|s| s.expose().to_owned()));
        let http = HttpSink::new("dingtalk", ctx, secrets)?;
        let url = http.check_url("url", config.url.expose())?;
        Ok(DingTalk {
            host: host_of(&url),
            url: SecretUrl::new(url),
            config,
            http,
        })
    }

    /// The JSON body DingTalk receives for these params.
    pub fn payload(p: &Params) -> Result<Value, SinkError> {
        params::only_known(p, KNOWN)?;
        let text = params::req_str(p, "text")?;
        let at_all = match p.get("at_all") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(SinkError::params("at_all", "must be a boolean")),
        };
        let mut body = match params::opt_str(p, "title")? {
            Some(title) => {
                json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}})
            }
            None => json!({"msgtype": "text", "text": {"content": text}}),
        };
        if at_all && let Some(o) = body.as_object_mut() {
            o.insert("at".into(), json!({"isAtAll": true}));
        }
        Ok(body)
    }
}

#[async_trait::async_trait]
impl Provider for DingTalk {
    fn kind(&self) -> &'static str {
        "dingtalk"
    }

    fn target(&self, _call: &EffectCall<'_>) -> String {
        self.host.clone()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        Self::payload(p).map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let body = Self::payload(call.params)?;
        let mut url = self.url.get();
        if let Some(secret) = &self.config.secret {
            let ts = clock::unix_millis();
            // query_pairs_mut form-encodes, which is the urlencode DingTalk expects (+ / = escaped).
            url.query_pairs_mut()
                .append_pair("timestamp", &ts.to_string())
                .append_pair("sign", &sign(ts, secret.expose()));
        }
        let req = self.http.client().post(url).json(&body);
        let reply = self.http.send(req, &self.host, DEFAULT_READ_LIMIT).await?;
        let v = reply.json().unwrap_or(Value::Null);
        match v.get("errcode").and_then(Value::as_i64) {
            Some(0) => {}
            Some(code) => {
                let msg = v.get("errmsg").and_then(Value::as_str).unwrap_or("");
                return Err(SinkError::Service {
                    code,
                    message: truncate(&self.http.redact(msg), 512).to_owned(),
                    retryable: code == SEND_TOO_FAST,
                });
            }
            None => {
                return Err(SinkError::Service {
                    code: -1,
                    message: "answer without an errcode".into(),
                    retryable: false,
                });
            }
        }
        Ok(EffectOutput {
            status: reply.status.to_string(),
            response: self.http.small_output(&reply.body),
        })
    }
}
