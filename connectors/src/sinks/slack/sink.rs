//! The running `slack` provider: builds the Block Kit payload and posts it.

use super::config::SlackConfig;
use crate::sinks::params::{self, Params};
use crate::sinks::registry::ProviderContext;
use crate::sinks::secret::SecretUrl;
use crate::sinks::transport::{DEFAULT_READ_LIMIT, HttpSink, host_of, truncate};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use serde_json::{Value, json};

const KNOWN: &[&str] = &["text", "blocks", "title", "fields", "color", "footer"];
/// Slack's limits: header text 150 characters, section text 3000, 10 fields per section.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELDS_PER_SECTION: usize = 10;

/// Posts to one Slack incoming webhook.
#[derive(Debug)]
pub struct Slack {
    url: SecretUrl,
    host: String,
    http: HttpSink,
}

impl Slack {
    /// Checks the webhook URL against the outbound policy and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a refused URL, [`SinkError::Params`] for one that does not parse.
    pub fn new(config: SlackConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let http = HttpSink::new("slack", ctx, vec![config.url.expose().to_owned()])?;
        let url = http.check_url("url", config.url.expose())?;
        Ok(Slack {
            host: host_of(&url),
            url: SecretUrl::new(url),
            http,
        })
    }

    /// The JSON body Slack receives for these params.
    pub fn payload(p: &Params) -> Result<Value, SinkError> {
        params::only_known(p, KNOWN)?;
        let text = params::req_str(p, "text")?;
        let blocks = match params::opt_array(p, "blocks")? {
            Some(raw) => {
                for (i, b) in raw.iter().enumerate() {
                    if b.get("type").and_then(Value::as_str).is_none() {
                        return Err(SinkError::params(
                            format!("blocks[{i}]"),
                            "must be a Block Kit block (an object with \"type\")",
                        ));
                    }
                }
                raw.clone()
            }
            None => generated_blocks(p, text)?,
        };
        let color = params::opt_str(p, "color")?;
        Ok(match color {
            Some(c) => json!({"text": text, "attachments": [{"color": c, "blocks": blocks}]}),
            None => json!({"text": text, "blocks": blocks}),
        })
    }
}

fn generated_blocks(p: &Params, text: &str) -> Result<Vec<Value>, SinkError> {
    let mut blocks = Vec::new();
    if let Some(title) = params::opt_str(p, "title")? {
        blocks.push(json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate_chars(title, HEADER_MAX), "emoji": true}
        }));
    }
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate_chars(text, SECTION_MAX)}
    }));
    let fields = params::opt_string_map(p, "fields")?;
    for chunk in fields.chunks(FIELDS_PER_SECTION) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| json!({"type": "mrkdwn", "text": truncate(&format!("*{k}*\n{v}"), 2000)}))
            .collect();
        blocks.push(json!({"type": "section", "fields": items}));
    }
    if let Some(footer) = params::opt_str(p, "footer")? {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate_chars(footer, SECTION_MAX)}]
        }));
    }
    Ok(blocks)
}

/// At most `max` characters (Slack counts characters, not bytes).
fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

#[async_trait::async_trait]
impl Provider for Slack {
    fn kind(&self) -> &'static str {
        "slack"
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
