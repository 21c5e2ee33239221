//! Anthropic Messages.
//!
//! `POST {base_url}/v1/messages` with `x-api-key`, `anthropic-version` and
//! `content-type: application/json`; body `{model, max_tokens, system?, messages, tools?,
//! temperature?}`. Messages alternate `user` and `assistant`; an assistant's tool calls are
//! `tool_use` blocks `{id, name, input}`; tool results go back in a `user` message as
//! `tool_result` blocks `{tool_use_id, content}` (consecutive results in one message, first in
//! it). `system`-role messages are appended to the top-level `system`. The answer's `content[]`
//! text and `tool_use` blocks, `stop_reason`, `usage.{input_tokens, output_tokens}` and `model`
//! are read.

use super::client::ApiClient;
use super::config::{DEFAULT_ANTHROPIC_VERSION, LlmConfig};
use super::openai::schema_object;
use super::{ChatModel, ChatRequest, ChatResponse, LlmCounters, Role, ToolCall, Usage};
use crate::sinks::SinkError;
use crate::sinks::registry::ProviderContext;
use serde_json::{Map, Value, json};

/// A model behind the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicChat {
    c: ApiClient,
    version: String,
}

impl AnthropicChat {
    /// Checks the config's URL and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a `base_url` the outbound guard refuses, [`SinkError::Params`]
    /// for one that does not parse or a missing key.
    pub fn new(cfg: &LlmConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        if cfg.api_key.is_none() {
            return Err(SinkError::params(
                "api_key",
                "is required for api = \"anthropic\"",
            ));
        }
        Ok(AnthropicChat {
            c: ApiClient::new("anthropic", cfg, ctx)?,
            version: cfg
                .anthropic_version
                .clone()
                .unwrap_or_else(|| DEFAULT_ANTHROPIC_VERSION.to_owned()),
        })
    }
}

/// Appends `block` to the last message when it has the same role (the API wants alternating
/// roles), else starts a new message.
fn push_block(out: &mut Vec<(String, Vec<Value>)>, role: &str, block: Value) {
    match out.last_mut() {
        Some((r, blocks)) if r == role => blocks.push(block),
        _ => out.push((role.to_owned(), vec![block])),
    }
}

/// The JSON body of a Messages request for `model`, with the effective `max_tokens` and
/// `temperature`.
pub fn request_body(
    model: &str,
    req: &ChatRequest,
    max_tokens: u32,
    temperature: Option<f32>,
) -> Value {
    let mut system = req.system.clone();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::System => {
                if !system.is_empty() {
                    system.push_str("\n\n");
                }
                system.push_str(&m.content);
            }
            Role::User => push_block(
                &mut turns,
                "user",
                json!({"type": "text", "text": m.content}),
            ),
            Role::Assistant => {
                if !m.content.is_empty() || m.tool_calls.is_empty() {
                    push_block(
                        &mut turns,
                        "assistant",
                        json!({"type": "text", "text": m.content}),
                    );
                }
                for c in &m.tool_calls {
                    push_block(
                        &mut turns,
                        "assistant",
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}),
                    );
                }
            }
            Role::Tool => push_block(
                &mut turns,
                "user",
                json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": m.content
                }),
            ),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, blocks)| {
            // A lone text block is sent as a plain string, the API's simple form.
            let content = match blocks.as_slice() {
                [b] if b.get("type").and_then(Value::as_str) == Some("text") => {
                    b.get("text").cloned().unwrap_or(Value::Null)
                }
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(max_tokens));
    if !system.is_empty() {
        body.insert("system".into(), json!(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    if let Some(t) = temperature {
        // Anthropic's range is 0–1 (OpenAI's 0–2).
        body.insert("temperature".into(), json!(t.min(1.0)));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "input_schema": schema_object(&t.parameters),
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body)
}

/// Reads a Messages answer.
///
/// # Errors
/// A message naming what is missing, or the tool whose input is not a JSON object.
pub fn parse_response(v: &Value) -> Result<ChatResponse, String> {
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or("the answer has no content[]")?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = b.get("text").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
            Some("tool_use") => {
                let name = b
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| format!("content[{i}] (tool_use) has no name"))?
                    .to_owned();
                let id = b
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| format!("tool_use {name:?} has no id"))?
                    .to_owned();
                let arguments = match b.get("input") {
                    None | Some(Value::Null) => json!({}),
                    Some(o @ Value::Object(_)) => o.clone(),
                    Some(_) => {
                        return Err(format!(
                            "the input of tool_use {name:?} is not a JSON object"
                        ));
                    }
                };
                tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments,
                });
            }
            // Thinking and other block kinds carry nothing the caller uses.
            _ => {}
        }
    }
    let usage = v.get("usage");
    let count = |field: &str| {
        usage
            .and_then(|u| u.get(field))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(ChatResponse {
        text,
        tool_calls,
        usage: Usage {
            input_tokens: count("input_tokens"),
            output_tokens: count("output_tokens"),
        },
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        stop_reason: v
            .get("stop_reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    })
}

#[async_trait::async_trait]
impl ChatModel for AnthropicChat {
    fn api(&self) -> &'static str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.c.model
    }

    fn target(&self) -> String {
        self.c.host.clone()
    }

    fn cost_usd(&self, usage: &Usage) -> f64 {
        self.c.prices.cost(usage)
    }

    fn counters(&self) -> &LlmCounters {
        &self.c.counters
    }

    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, SinkError> {
        let body = request_body(
            &self.c.model,
            req,
            self.c.max_tokens(req),
            self.c.temperature(req),
        );
        let key = self.c.key.as_ref().map(|k| k.expose()).unwrap_or_default();
        let headers = [
            ("x-api-key", key),
            ("anthropic-version", self.version.as_str()),
        ];
        // `https://api.anthropic.com/v1` is a common way to write the base: do not double it.
        let path = if self.c.url("").path().trim_end_matches('/').ends_with("/v1") {
            "messages"
        } else {
            "v1/messages"
        };
        let result = async {
            let answer = self.c.post(self.c.url(path), &headers, &body, req).await?;
            parse_response(&answer).map_err(|m| self.c.malformed(m))
        }
        .await;
        self.c.finish(result)
    }
}
