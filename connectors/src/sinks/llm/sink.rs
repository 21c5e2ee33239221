//! The `llm` provider for workflow steps: one prompt (or a short conversation) → the model's
//! text, usage and cost. The workflow executor records intent and result in the log, so a
//! replay reuses the recorded text and never calls the model.

use super::config::{LlmConfig, MAX_TOKENS_LIMIT};
use super::{ChatMessage, ChatModel, ChatRequest, Role, model_from_config};
use crate::sinks::params::{self, Params, type_name};
use crate::sinks::registry::ProviderContext;
use crate::sinks::transport::truncate;
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use serde_json::{Value, json};
use std::sync::Arc;

const KNOWN: &[&str] = &["prompt", "messages", "system", "max_tokens"];

/// Longest answer text kept in the step's output (it is written to the log).
pub const MAX_OUTPUT_TEXT: usize = 16 * 1024;
/// Longest prompt a step may send (system and messages together).
const MAX_PROMPT_BYTES: usize = 256 * 1024;

/// A workflow provider calling one chat model.
#[derive(Debug, Clone)]
pub struct LlmProvider {
    model: Arc<dyn ChatModel>,
}

impl LlmProvider {
    /// Builds the model from its config.
    ///
    /// # Errors
    /// [`SinkError::Params`] naming a bad field, [`SinkError::Refused`] for a refused `base_url`.
    pub fn new(config: LlmConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        Ok(LlmProvider {
            model: model_from_config(config, ctx)?,
        })
    }

    /// The chat model (for the assistant, sharing this provider's client and counters).
    pub fn model(&self) -> Arc<dyn ChatModel> {
        self.model.clone()
    }

    /// The request a step's params describe.
    ///
    /// # Errors
    /// [`SinkError::Params`] naming the bad field.
    pub fn request(p: &Params) -> Result<ChatRequest, SinkError> {
        params::only_known(p, KNOWN)?;
        let system = params::opt_str(p, "system")?.unwrap_or("").to_owned();
        let messages = match (p.get("prompt"), params::opt_array(p, "messages")?) {
            (Some(_), Some(_)) => {
                return Err(SinkError::params(
                    "messages",
                    "give either prompt or messages, not both",
                ));
            }
            (Some(_), None) => vec![ChatMessage::text(Role::User, params::req_str(p, "prompt")?)],
            (None, Some(list)) => messages(list)?,
            (None, None) => {
                return Err(SinkError::params(
                    "prompt",
                    "is required (or messages: a list of {role, content})",
                ));
            }
        };
        let max_tokens = match params::opt_i64(p, "max_tokens")? {
            None => 0,
            Some(n) if (1..=i64::from(MAX_TOKENS_LIMIT)).contains(&n) => n as u32,
            Some(_) => {
                return Err(SinkError::params(
                    "max_tokens",
                    format!("must be between 1 and {MAX_TOKENS_LIMIT}"),
                ));
            }
        };
        let size = system.len() + messages.iter().map(|m| m.content.len()).sum::<usize>();
        if size > MAX_PROMPT_BYTES {
            return Err(SinkError::params(
                "prompt",
                format!("the prompt has {size} bytes, more than {MAX_PROMPT_BYTES}"),
            ));
        }
        Ok(ChatRequest {
            system,
            messages,
            tools: Vec::new(),
            max_tokens,
            temperature: None,
        })
    }
}

fn messages(list: &[Value]) -> Result<Vec<ChatMessage>, SinkError> {
    if list.is_empty() {
        return Err(SinkError::params("messages", "must not be empty"));
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let at = |f: &str| format!("messages[{i}].{f}");
            let Some(o) = m.as_object() else {
                return Err(SinkError::params(
                    format!("messages[{i}]"),
                    format!("must be an object {{role, content}}, got {}", type_name(m)),
                ));
            };
            if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "role" | "content")) {
                return Err(SinkError::params(
                    at(k),
                    "unknown field (allowed: role, content)",
                ));
            }
            let role = match o.get("role").and_then(Value::as_str) {
                Some("system") => Role::System,
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                _ => {
                    return Err(SinkError::params(
                        at("role"),
                        "must be system, user or assistant",
                    ));
                }
            };
            let content = match o.get("content") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                Some(Value::String(_)) => {
                    return Err(SinkError::params(at("content"), "must not be empty"));
                }
                Some(v) => {
                    return Err(SinkError::params(
                        at("content"),
                        format!("must be a string, got {}", type_name(v)),
                    ));
                }
                None => return Err(SinkError::params(at("content"), "is required")),
            };
            Ok(ChatMessage::text(role, content))
        })
        .collect()
}

#[async_trait::async_trait]
impl Provider for LlmProvider {
    fn kind(&self) -> &'static str {
        "llm"
    }

    fn target(&self, _call: &EffectCall<'_>) -> String {
        self.model.target()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        Self::request(p).map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let req = Self::request(call.params)?;
        let resp = self.model.chat(&req).await?;
        let text = truncate(&resp.text, MAX_OUTPUT_TEXT);
        let mut response = json!({
            "text": text,
            "model": resp.model,
            "stop_reason": resp.stop_reason,
            "usage": {
                "input_tokens": resp.usage.input_tokens,
                "output_tokens": resp.usage.output_tokens,
            },
            "cost_usd": self.model.cost_usd(&resp.usage),
        });
        if text.len() < resp.text.len() {
            response["truncated"] = json!(true);
        }
        Ok(EffectOutput {
            status: "200".to_owned(),
            response,
        })
    }
}
