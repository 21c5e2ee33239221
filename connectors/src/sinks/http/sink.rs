//! The running `http` provider.

use super::config::HttpConfig;
use crate::sinks::params::{self, Params};
use crate::sinks::registry::ProviderContext;
use crate::sinks::transport::{HttpSink, host_of};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// The largest answer accepted (1 MiB).
pub const MAX_BODY: usize = 1024 * 1024;
const KNOWN: &[&str] = &["url", "headers"];

/// GETs JSON or text.
#[derive(Debug)]
pub struct Http {
    base: Option<url::Url>,
    headers: HeaderMap,
    http: HttpSink,
}

impl Http {
    /// Checks the base URL and headers and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a refused base URL, [`SinkError::Config`] for a bad header.
    pub fn new(config: HttpConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let secrets = config
            .headers
            .values()
            .map(|s| s.expose().to_owned())
            .collect();
        let http = HttpSink::new("http", ctx, secrets)?;
        let base = match &config.url {
            Some(u) => Some(http.check_url("url", u)?),
            None => None,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let (n, v) = header(name, value.expose())
                .ok_or_else(|| SinkError::Config(format!("headers.{name}: not a valid header")))?;
            headers.insert(n, v);
        }
        Ok(Http {
            base,
            headers,
            http,
        })
    }

    fn resolve(&self, p: &Params) -> Result<url::Url, SinkError> {
        params::only_known(p, KNOWN)?;
        let raw = params::req_str(p, "url")?;
        let absolute = match url::Url::parse(raw) {
            Ok(u) => u,
            Err(url::ParseError::RelativeUrlWithoutBase) => match &self.base {
                Some(base) => {
                    // Keep the base's path: "api/x" under "https://h/cmdb/" is "/cmdb/api/x".
                    let mut b = base.clone();
                    if !b.path().ends_with('/') {
                        let path = format!("{}/", b.path());
                        b.set_path(&path);
                    }
                    b.join(raw.trim_start_matches('/'))
                        .map_err(|e| SinkError::params("url", e.to_string()))?
                }
                None => {
                    return Err(SinkError::params(
                        "url",
                        "is relative but the provider has no base url",
                    ));
                }
            },
            Err(e) => return Err(SinkError::params("url", e.to_string())),
        };
        self.http.check_url("url", absolute.as_str())
    }
}

fn header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let n = HeaderName::from_bytes(name.as_bytes()).ok()?;
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some((n, v))
}

#[async_trait::async_trait]
impl Provider for Http {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn target(&self, call: &EffectCall<'_>) -> String {
        match self.resolve(call.params) {
            Ok(u) => host_of(&u),
            Err(_) => self.base.as_ref().map(host_of).unwrap_or_default(),
        }
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        self.resolve(p)?;
        for (name, value) in params::opt_string_map(p, "headers")? {
            header(&name, &value).ok_or_else(|| {
                SinkError::params(format!("headers.{name}"), "not a valid HTTP header")
            })?;
        }
        Ok(())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        self.validate(call.params)?;
        let url = self.resolve(call.params)?;
        let host = host_of(&url);
        let mut headers = self.headers.clone();
        for (name, value) in params::opt_string_map(call.params, "headers")? {
            if let Some((n, v)) = header(&name, &value) {
                headers.insert(n, v);
            }
        }
        let req = self.http.client().get(url).headers(headers);
        let reply = self.http.send(req, &host, MAX_BODY).await?;
        let response = match serde_json::from_slice::<Value>(&reply.body) {
            Ok(v) => v,
            Err(_) => Value::String(String::from_utf8_lossy(&reply.body).into_owned()),
        };
        Ok(EffectOutput {
            status: reply.status.to_string(),
            response,
        })
    }
}
