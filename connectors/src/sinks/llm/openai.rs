//! OpenAI chat completions, the API OpenAI, DeepSeek, Ollama (`/v1`), llama.cpp's server, vLLM
//! and Gemini's OpenAI-compatible endpoint all speak.
//!
//! `POST {base_url}/chat/completions` with `Authorization: Bearer KEY` (only when a key is set)
//! and `{model, messages, max_tokens, temperature?, tools?}`; the system prompt is the first
//! `system` message, tool calls are `{id, type: "function", function: {name, arguments}}` with
//! the arguments as a JSON *string*, tool results are `tool` messages with `tool_call_id`.
//! The answer's `choices[0].message.{content, tool_calls}`, `choices[0].finish_reason`,
//! `usage.{prompt_tokens, completion_tokens}` and `model` are read.

use super::client::ApiClient;
use super::config::LlmConfig;
use super::{ChatModel, ChatRequest, ChatResponse, LlmCounters, Role, ToolCall, Usage};
use crate::sinks::SinkError;
use crate::sinks::registry::ProviderContext;
use serde_json::{Map, Value, json};

/// A model behind an OpenAI-compatible chat completions endpoint.
#[derive(Debug)]
pub struct OpenAiChat {
    c: ApiClient,
}

impl OpenAiChat {
    /// Checks the config's URL and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a `base_url` the outbound guard refuses, [`SinkError::Params`]
    /// for one that does not parse.
    pub fn new(cfg: &LlmConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        Ok(OpenAiChat {
            c: ApiClient::new("openai", cfg, ctx)?,
        })
    }
}

/// The JSON body of a chat completions request for `model`, with the effective `max_tokens`
/// and `temperature`.
pub fn request_body(
    model: &str,
    req: &ChatRequest,
    max_tokens: u32,
    temperature: Option<f32>,
) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        messages.push(match m.role {
            Role::System => json!({"role": "system", "content": m.content}),
            Role::User => json!({"role": "user", "content": m.content}),
            Role::Assistant => {
                let mut o = Map::new();
                o.insert("role".into(), json!("assistant"));
                // OpenAI documents `content` as null for a message that only calls tools.
                o.insert(
                    "content".into(),
                    if m.content.is_empty() && !m.tool_calls.is_empty() {
                        Value::Null
                    } else {
                        json!(m.content)
                    },
                );
                if !m.tool_calls.is_empty() {
                    let calls: Vec<Value> = m
                        .tool_calls
                        .iter()
                        .map(|c| {
                            json!({
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": c.arguments.to_string()}
                            })
                        })
                        .collect();
                    o.insert("tool_calls".into(), Value::Array(calls));
                }
                Value::Object(o)
            }
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
                "content": m.content
            }),
        });
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(t) = temperature {
        body.insert("temperature".into(), json!(t));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": schema_object(&t.parameters),
                    }
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body)
}

/// A tool's parameter schema; an absent one is the empty object schema both APIs require.
pub(crate) fn schema_object(v: &Value) -> Value {
    match v {
        Value::Null => json!({"type": "object", "properties": {}}),
        other => other.clone(),
    }
}

/// Reads a chat completions answer.
///
/// # Errors
/// A message naming what is missing, or the tool whose arguments are not a JSON object.
pub fn parse_response(v: &Value) -> Result<ChatResponse, String> {
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or("the answer has no choices[0]")?;
    let message = choice
        .get("message")
        .ok_or("the answer has no choices[0].message")?;
    let text = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        // Some servers answer with content parts; keep their text.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        Some(_) => return Err("choices[0].message.content is not text".into()),
    };
    let mut tool_calls = Vec::new();
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (i, c) in calls.iter().enumerate() {
            let f = c
                .get("function")
                .ok_or_else(|| format!("tool_calls[{i}] has no function"))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("tool_calls[{i}] has no function name"))?
                .to_owned();
            let arguments = match f.get("arguments") {
                None | Some(Value::Null) => json!({}),
                Some(Value::String(s)) if s.trim().is_empty() => json!({}),
                Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|_| {
                    format!("the arguments of tool call {name:?} are not valid JSON")
                })?,
                // Lenient servers send the object itself.
                Some(o @ Value::Object(_)) => o.clone(),
                Some(_) => {
                    return Err(format!(
                        "the arguments of tool call {name:?} are not a JSON string"
                    ));
                }
            };
            if !arguments.is_object() {
                return Err(format!(
                    "the arguments of tool call {name:?} are not a JSON object"
                ));
            }
            // Some local servers leave the id out; the result must still be matched to it.
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("call_{i}"), str::to_owned);
            tool_calls.push(ToolCall {
                id,
                name,
                arguments,
            });
        }
    }
    let stop_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
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
            input_tokens: count("prompt_tokens"),
            output_tokens: count("completion_tokens"),
        },
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        stop_reason,
    })
}

#[async_trait::async_trait]
impl ChatModel for OpenAiChat {
    fn api(&self) -> &'static str {
        "openai"
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
        let auth = self
            .c
            .key
            .as_ref()
            .map(|k| format!("Bearer {}", k.expose()));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let result = async {
            let answer = self
                .c
                .post(self.c.url("chat/completions"), &headers, &body, req)
                .await?;
            parse_response(&answer).map_err(|m| self.c.malformed(m))
        }
        .await;
        self.c.finish(result)
    }
}
