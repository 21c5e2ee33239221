//! `llm`: chat models behind two wire APIs, for workflow steps and the knowledge assistant.
//!
//! One trait ([`ChatModel`]) and two adapters cover the six providers users name:
//! - [`openai`]: OpenAI chat completions — OpenAI, DeepSeek, Ollama's `/v1`, llama.cpp's server,
//!   vLLM and Gemini's OpenAI-compatible endpoint;
//! - [`anthropic`]: Anthropic Messages.
//!
//! Config ([`LlmConfig`], `kind = "llm"`): `api`, `base_url?`, `model`, `api_key?` (a secret),
//! `max_tokens` (default 1024), `temperature?`, `timeout?`, `input_price_per_mtok?`,
//! `output_price_per_mtok?`, `anthropic_version?`. Built by [`build_chat_model`] (for the
//! assistant) or by the provider registry (for workflow steps, [`LlmProvider`]).
//!
//! Contracts:
//! - **Recorded before use.** An LLM answer is not reproducible, so every call is an effect:
//!   workflow steps go through the executor (intent and result in the log), and the assistant
//!   ([`assistant::run_assistant`]) asks a [`assistant::CallRecorder`] for a recorded answer
//!   under [`assistant::call_key`] before calling out and records a new one before using it.
//!   Replay and rebuild therefore never call a model.
//! - **No secrets out.** The key is sent only in its header; `Debug`, errors, logs and outputs
//!   never carry it (errors are redacted). Prompts carry only what the caller passes: the
//!   caller passes masked data.
//! - **Guarded egress.** `base_url` passes [`crate::outbound::OutboundPolicy`]; a model on a
//!   private or loopback address needs `[outbound] allow`.
//! - **Errors say who acts.** HTTP 429, 5xx, network errors and timeouts are retryable; other
//!   4xx are permanent. Messages name the API, the host, the status and the API's own error
//!   message (truncated), never the key or the prompt. Answers are read up to 4 MiB.

pub mod anthropic;
pub mod assistant;
mod client;
mod config;
mod counters;
pub mod openai;
mod sink;

#[cfg(test)]
mod tests;

pub use assistant::{
    AssistantAnswer, CallRecorder, Passage, ToolHost, ToolUse, call_key, run_assistant,
};
pub use config::{Api, DEFAULT_ANTHROPIC_VERSION, LlmConfig, MAX_TOKENS_LIMIT};
pub use counters::{CounterSnapshot, LlmCounters};
pub use sink::{LlmProvider, MAX_OUTPUT_TEXT};

use crate::sinks::SinkError;
use crate::sinks::registry::{ProviderContext, parse};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions (OpenAI: a `system` message; Anthropic: appended to `system`).
    System,
    /// The person asking (or the caller on their behalf).
    User,
    /// The model; may carry tool calls.
    Assistant,
    /// A tool's result, answering the assistant's tool call `tool_call_id`.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// The text (for [`Role::Tool`]: the tool's result as text).
    pub content: String,
    /// The tools an assistant message asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For [`Role::Tool`]: the id of the call this result answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A plain message of `role`.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A tool result answering call `id`.
    pub fn tool_result(id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(id.into()),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by (`[A-Za-z0-9_-]`, at most 64 characters for both APIs).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// A JSON Schema object of its arguments.
    pub parameters: serde_json::Value,
}

/// A call of a tool, as the model asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The API's id of the call, echoed in the result.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments (a JSON object).
    pub arguments: serde_json::Value,
}

/// One request to a chat model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Instructions; empty for none.
    pub system: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call; empty for none.
    pub tools: Vec<ToolSpec>,
    /// Most tokens of the answer; `0` means the model's configured `max_tokens`.
    pub max_tokens: u32,
    /// Sampling temperature; `None` means the configured one (or the server's).
    pub temperature: Option<f32>,
}

/// Tokens a call used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The text (possibly empty when the model only calls tools).
    pub text: String,
    /// Tools the model asks to be called before it answers.
    pub tool_calls: Vec<ToolCall>,
    /// Tokens used.
    pub usage: Usage,
    /// The model that answered, as the server names it.
    pub model: String,
    /// Why it stopped, in the API's terms (`stop`, `tool_calls`, `end_turn`, `tool_use`,
    /// `length`, `max_tokens`, …).
    pub stop_reason: String,
}

/// A chat model: one configured model behind one API.
///
/// Implementations MUST send the key only in the API's header, MUST NOT put it or the prompt in
/// `Debug` or errors, and MUST classify failures truthfully with [`SinkError::retryable`].
/// A call is not idempotent and its answer not reproducible: callers record answers before use
/// (see [`assistant::CallRecorder`]).
///
/// Cancellation: dropping the future of [`ChatModel::chat`] aborts the request; the server may
/// still have processed (and billed) it.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync + std::fmt::Debug {
    /// The wire API: `"openai"` or `"anthropic"`.
    fn api(&self) -> &'static str;
    /// The configured model name.
    fn model(&self) -> &str;
    /// The host (and port) called, for audit and metrics; never the key.
    fn target(&self) -> String;
    /// The cost of `usage` in USD from the configured prices (0 without prices).
    fn cost_usd(&self, usage: &Usage) -> f64;
    /// Counters of this model's calls (live calls, failures, tokens, cost, recorded hits).
    fn counters(&self) -> &LlmCounters;
    /// Sends `req` and parses the answer.
    ///
    /// # Errors
    /// [`SinkError::Http`] for a non-2xx answer (429/5xx retryable), [`SinkError::Timeout`],
    /// [`SinkError::Network`], [`SinkError::Refused`] (outbound guard, answer over 4 MiB),
    /// [`SinkError::Service`] for an answer that does not have the API's shape (e.g. tool
    /// arguments that are not JSON, naming the tool).
    async fn chat(&self, req: &ChatRequest) -> Result<ChatResponse, SinkError>;
}

/// Builds the chat model `name` from its provider table (`kind = "llm"` or no `kind`; secrets
/// already substituted).
///
/// # Errors
/// [`SinkError::Config`] naming the provider and the bad field (never a value);
/// [`SinkError::Refused`] when `base_url` is refused by the outbound guard.
pub fn build_chat_model(
    name: &str,
    config: &serde_json::Value,
    ctx: &ProviderContext,
) -> Result<Arc<dyn ChatModel>, SinkError> {
    let Some(table) = config.as_object() else {
        return Err(SinkError::Config(format!(
            "provider {name}: config must be a table"
        )));
    };
    match table.get("kind") {
        None => {}
        Some(serde_json::Value::String(k)) if k == "llm" => {}
        Some(_) => {
            return Err(SinkError::Config(format!(
                "provider {name}: kind must be \"llm\" for a chat model"
            )));
        }
    }
    let mut rest = table.clone();
    rest.remove("kind");
    let cfg: LlmConfig = parse(name, "llm", serde_json::Value::Object(rest))?;
    model_from_config(cfg, ctx).map_err(|e| in_provider(name, e))
}

/// The running model for a parsed config.
///
/// # Errors
/// As [`build_chat_model`], without the provider's name.
pub fn model_from_config(
    cfg: LlmConfig,
    ctx: &ProviderContext,
) -> Result<Arc<dyn ChatModel>, SinkError> {
    cfg.check()?;
    Ok(match cfg.api {
        Api::Openai => Arc::new(openai::OpenAiChat::new(&cfg, ctx)?),
        Api::Anthropic => Arc::new(anthropic::AnthropicChat::new(&cfg, ctx)?),
    })
}

/// Puts the provider's name into a build error (as the registry does for every kind).
fn in_provider(name: &str, e: SinkError) -> SinkError {
    match e {
        SinkError::Config(m) => SinkError::Config(format!("provider {name} (kind llm): {m}")),
        SinkError::Refused { reason } => {
            SinkError::refused(format!("provider {name} (kind llm): {reason}"))
        }
        SinkError::Params { field, message } => SinkError::Config(format!(
            "provider {name} (kind llm): field \"{field}\": {message}"
        )),
        other => other,
    }
}
