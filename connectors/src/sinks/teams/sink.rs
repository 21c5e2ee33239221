//! The running `teams` provider: builds the Adaptive Card message and posts it.

use super::config::TeamsConfig;
use crate::sinks::params::{self, Params};
use crate::sinks::registry::ProviderContext;
use crate::sinks::secret::SecretUrl;
use crate::sinks::transport::{DEFAULT_READ_LIMIT, HttpSink, host_of};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use serde_json::{Value, json};

const KNOWN: &[&str] = &["title", "text", "facts"];

/// Posts to one Teams workflow webhook.
#[derive(Debug)]
pub struct Teams {
    url: SecretUrl,
    host: String,
    http: HttpSink,
}

impl Teams {
    /// Checks the URL against the outbound policy and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a refused URL, [`SinkError::Params`] for one that does not parse.
    pub fn new(config: TeamsConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let http = HttpSink::new("teams", ctx, vec![config.url.expose().to_owned()])?;
        let url = http.check_url("url", config.url.expose())?;
        Ok(Teams {
            host: host_of(&url),
            url: SecretUrl::new(url),
            http,
        })
    }

    /// The JSON body the workflow receives for these params.
    pub fn payload(p: &Params) -> Result<Value, SinkError> {
        params::only_known(p, KNOWN)?;
        let title = params::req_str(p, "title")?;
        let text = params::req_str(p, "text")?;
        let mut body = vec![
            json!({"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true}),
            json!({"type": "TextBlock", "text": text, "wrap": true}),
        ];
        let facts = params::opt_string_map(p, "facts")?;
        if !facts.is_empty() {
            let facts: Vec<Value> = facts
                .into_iter()
                .map(|(k, v)| json!({"title": k, "value": v}))
                .collect();
            body.push(json!({"type": "FactSet", "facts": facts}));
        }
        Ok(json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body
                }
            }]
        }))
    }
}

#[async_trait::async_trait]
impl Provider for Teams {
    fn kind(&self) -> &'static str {
        "teams"
    }

    fn target(&self, _call: &EffectCall<'_>) -> String {
        self.host.clone()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        Self::payload(p).map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let body = Self::payload(call.params)?;
        let req = self.http.client().post(self.url.get()).json(&body);
        let reply = self.http.send(req, &self.host, DEFAULT_READ_LIMIT).await?;
        Ok(EffectOutput {
            status: reply.status.to_string(),
            response: self.http.small_output(&reply.body),
        })
    }
}
