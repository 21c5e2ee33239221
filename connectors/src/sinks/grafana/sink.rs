//! The running `grafana` provider.

use super::config::GrafanaConfig;
use crate::sinks::params::{self, Params, key_hash16};
use crate::sinks::registry::ProviderContext;
use crate::sinks::transport::{DEFAULT_READ_LIMIT, HttpSink, host_of, join};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use serde_json::{Map, Value, json};

const KNOWN: &[&str] = &[
    "text",
    "tags",
    "time",
    "time_end",
    "dashboard_uid",
    "panel_id",
];

/// Adds annotations to one Grafana.
#[derive(Debug)]
pub struct Grafana {
    config: GrafanaConfig,
    base: url::Url,
    host: String,
    http: HttpSink,
}

impl Grafana {
    /// Checks the base URL against the outbound policy and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a refused URL, [`SinkError::Params`] for one that does not parse.
    pub fn new(config: GrafanaConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let http = HttpSink::new("grafana", ctx, vec![config.token.expose().to_owned()])?;
        let base = http.check_url("url", &config.url)?;
        Ok(Grafana {
            host: host_of(&base),
            base,
            config,
            http,
        })
    }

    /// The annotation body; `marker` is the idempotency tag.
    pub fn annotation(p: &Params, marker: &str) -> Result<Value, SinkError> {
        params::only_known(p, KNOWN)?;
        let text = params::req_str(p, "text")?;
        let mut tags = params::opt_str_list(p, "tags")?;
        tags.push(marker.to_owned());
        let mut body = Map::new();
        body.insert("text".into(), json!(text));
        body.insert("tags".into(), json!(tags));
        for (param, field) in [
            ("time", "time"),
            ("time_end", "timeEnd"),
            ("panel_id", "panelId"),
        ] {
            if let Some(v) = params::opt_i64(p, param)? {
                body.insert(field.into(), json!(v));
            }
        }
        if let Some(uid) = params::opt_str(p, "dashboard_uid")? {
            body.insert("dashboardUID".into(), json!(uid));
        }
        Ok(Value::Object(body))
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.bearer_auth(self.config.token.expose())
    }

    /// The id of an annotation already carrying `marker`, if any.
    async fn existing(&self, marker: &str) -> Result<Option<Value>, SinkError> {
        let mut url = join(&self.base, "api/annotations");
        url.query_pairs_mut()
            .append_pair("tags", marker)
            .append_pair("type", "annotation")
            .append_pair("limit", "1");
        let reply = self
            .http
            .send(
                self.authed(self.http.client().get(url)),
                &self.host,
                DEFAULT_READ_LIMIT,
            )
            .await?;
        Ok(reply
            .json()
            .and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
            .and_then(|a| a.get("id").cloned()))
    }
}

#[async_trait::async_trait]
impl Provider for Grafana {
    fn kind(&self) -> &'static str {
        "grafana"
    }

    fn target(&self, _call: &EffectCall<'_>) -> String {
        self.host.clone()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        Self::annotation(p, "aiops-0").map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let marker = format!("aiops-{}", key_hash16(call.idempotency_key));
        let body = Self::annotation(call.params, &marker)?;
        if let Some(id) = self.existing(&marker).await? {
            tracing::info!(kind = "grafana", host = %self.host, "annotation already exists for this effect");
            return Ok(EffectOutput {
                status: "200".into(),
                response: json!({"id": id, "existing": true}),
            });
        }
        let url = join(&self.base, "api/annotations");
        let req = self.authed(self.http.client().post(url)).json(&body);
        let reply = self.http.send(req, &self.host, DEFAULT_READ_LIMIT).await?;
        let id = reply
            .json()
            .and_then(|v| v.get("id").cloned())
            .unwrap_or(Value::Null);
        Ok(EffectOutput {
            status: reply.status.to_string(),
            response: json!({"id": id}),
        })
    }
}
