//! The ask loop: a question, retrieved passages and read-only tools → a cited answer, with every
//! model call recorded before its answer is used.
//!
//! Each round builds a [`ChatRequest`], derives its key with [`call_key`] (a hash of the API,
//! the model and the request), and asks the [`CallRecorder`] for an answer recorded under that
//! key. Only when there is none does it call the model, and the answer is used only after
//! [`CallRecorder::record`] succeeded. Since the requests of a run depend only on the question,
//! the passages, the tools and the earlier (recorded) answers, a replay of the same inputs finds
//! every answer in the record and sends nothing.
//!
//! Prompts contain only the question, the passages and tool results: the caller passes masked
//! data (the log's masking has already run on logs and labels; tools must not return secrets).

use super::{ChatMessage, ChatModel, ChatRequest, ChatResponse, Role, ToolSpec, Usage};
use crate::sinks::SinkError;
use crate::sinks::transport::truncate;
use serde::Serialize;
use serde_json::Value;
use sha2::Digest;

/// Longest tool result put into a prompt.
pub const MAX_TOOL_RESULT_BYTES: usize = 16 * 1024;

/// The read-only tools the assistant may use (metric query, log search, incident timeline,
/// alert history, …).
#[async_trait::async_trait]
pub trait ToolHost: Send + Sync {
    /// The tools offered to the model.
    fn tools(&self) -> Vec<ToolSpec>;
    /// Runs tool `name` with `args`. An `Err` is shown to the model as the tool's result (it
    /// may try something else), so it must be a short, secret-free message.
    async fn call(&self, name: &str, args: &Value) -> Result<Value, String>;
}

/// Where model answers are recorded (the event log, as effects) and found again.
#[async_trait::async_trait]
pub trait CallRecorder: Send + Sync {
    /// A response recorded earlier under `key` (replay, rebuild, retry after a crash): used instead of calling out.
    async fn lookup(&self, key: &str) -> Option<ChatResponse>;
    /// Records request and response under `key`; must succeed before the response is used.
    async fn record(
        &self,
        key: &str,
        model: &str,
        req: &ChatRequest,
        resp: &ChatResponse,
    ) -> Result<(), String>;
}

/// A retrieved passage the answer may cite.
#[derive(Debug, Clone, Serialize)]
pub struct Passage {
    /// `"entry_id#section"`, e.g. `etcd/etcdHighFsyncDurations#Mitigation`.
    pub id: String,
    /// The passage's text (masked).
    pub text: String,
}

/// One tool call the model made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolUse {
    /// The tool.
    pub name: String,
    /// Its arguments.
    pub arguments: Value,
    /// Whether the tool succeeded.
    pub ok: bool,
}

/// The outcome of [`run_assistant`].
#[derive(Debug, Clone, Serialize)]
pub struct AssistantAnswer {
    /// The model's final answer.
    pub text: String,
    /// Passage ids and tool names the answer cites in `[…]`, in order of first mention.
    pub cited: Vec<String>,
    /// Every tool call, in order.
    pub tool_uses: Vec<ToolUse>,
    /// The keys of the model calls, in order.
    pub calls: Vec<String>,
    /// How many of them were served from the record.
    pub recorded_hits: u32,
    /// Tokens of all calls (recorded ones included: what the answer cost when it was made).
    pub usage: Usage,
    /// Cost of all calls in USD.
    pub cost_usd: f64,
}

/// The key of a model call: SHA-256 (hex) of the canonical JSON (object keys sorted) of the
/// API, the model and the request. Stable across runs, builds and processes.
pub fn call_key(model_api: &str, model: &str, req: &ChatRequest) -> String {
    let req = serde_json::to_value(req).unwrap_or(Value::Null);
    let v = serde_json::json!({"api": model_api, "model": model, "request": req});
    let mut text = String::new();
    canonical(&v, &mut text);
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// JSON with object keys sorted, whatever map order serde_json was built with.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(k) {
                    canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Tool calls of one model reply that are run; more are answered with an error.
pub const MAX_TOOL_CALLS_PER_ROUND: usize = 8;

/// The rules the model answers by.
pub const SYSTEM_PROMPT: &str = "You are the operations assistant of an on-call engineer. \
Answer only from the numbered passages below and from the results of the tools you call; \
do not use outside knowledge and never invent commands, metrics or values. \
Cite every passage you use with its id in square brackets, exactly as given, e.g. \
[etcd/etcdHighFsyncDurations#Mitigation], and cite a tool's result with the tool's name in \
square brackets, e.g. [metric_query]. The tools are read-only; call them when live data \
(metrics, logs, incidents, alerts) would answer the question better than the passages. \
If neither the passages nor the tools answer the question, say that you do not know. \
Be brief: short steps an engineer can follow.";

/// The first user message: the question and the numbered passages.
pub fn user_prompt(question: &str, passages: &[Passage]) -> String {
    let mut s = format!("Question: {}\n\nPassages:\n", question.trim());
    if passages.is_empty() {
        s.push_str("(none)\n");
    }
    for (i, p) in passages.iter().enumerate() {
        s.push_str(&format!("\n{}. [{}]\n{}\n", i + 1, p.id, p.text.trim()));
    }
    s
}

/// Answers `question` from `passages` and `tools` with `model`, each model call looked up in or
/// recorded to `recorder` under [`call_key`] before its answer is used.
///
/// # Errors
/// The model's [`SinkError`] (retryable or not) when a call fails; [`SinkError::Service`]
/// (retryable) when recording fails — the answer is then not used; [`SinkError::Service`]
/// (permanent) when the model still asks for tools after `max_rounds` calls.
pub async fn run_assistant(
    model: &dyn ChatModel,
    recorder: &dyn CallRecorder,
    tools: &dyn ToolHost,
    question: &str,
    passages: &[Passage],
    max_rounds: u32,
) -> Result<AssistantAnswer, SinkError> {
    let mut specs = tools.tools();
    // Sorted, so the request (and its key) does not depend on the host's order.
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut messages = vec![ChatMessage::text(
        Role::User,
        user_prompt(question, passages),
    )];
    let mut answer = AssistantAnswer {
        text: String::new(),
        cited: Vec::new(),
        tool_uses: Vec::new(),
        calls: Vec::new(),
        recorded_hits: 0,
        usage: Usage::default(),
        cost_usd: 0.0,
    };
    for _round in 0..max_rounds {
        let req = ChatRequest {
            system: SYSTEM_PROMPT.to_owned(),
            messages: messages.clone(),
            tools: specs.clone(),
            max_tokens: 0,
            temperature: None,
        };
        let key = call_key(model.api(), model.model(), &req);
        let resp = match recorder.lookup(&key).await {
            Some(recorded) => {
                answer.recorded_hits += 1;
                model.counters().recorded_hit();
                recorded
            }
            None => {
                let resp = model.chat(&req).await?;
                recorder
                    .record(&key, model.model(), &req, &resp)
                    .await
                    .map_err(|e| SinkError::Service {
                        code: 0,
                        message: format!(
                            "llm {} {}: the answer could not be recorded, so it is not used: {}",
                            model.api(),
                            model.target(),
                            truncate(&e, 300)
                        ),
                        retryable: true,
                    })?;
                // Two identical asks at once both call out; the record keeps the first, and
                // both use what the record holds, so every answer given is the logged one.
                recorder.lookup(&key).await.unwrap_or(resp)
            }
        };
        tracing::debug!(
            api = model.api(),
            model = model.model(),
            key = %key,
            tool_calls = resp.tool_calls.len(),
            "assistant round"
        );
        answer.calls.push(key);
        answer.usage.add(&resp.usage);
        answer.cost_usd += model.cost_usd(&resp.usage);
        if resp.tool_calls.is_empty() {
            answer.cited = cited_ids(&resp.text, passages, &specs);
            answer.text = resp.text;
            return Ok(answer);
        }
        messages.push(ChatMessage {
            role: Role::Assistant,
            content: resp.text.clone(),
            tool_calls: resp.tool_calls.clone(),
            tool_call_id: None,
        });
        for (n, call) in resp.tool_calls.iter().enumerate() {
            let known = specs.iter().any(|s| s.name == call.name);
            // A model may ask for any number of calls in one reply; each is a query on the
            // engine. The first few run, the rest are answered with an error it can read.
            let result = if n >= MAX_TOOL_CALLS_PER_ROUND {
                Err(format!(
                    "not run: at most {MAX_TOOL_CALLS_PER_ROUND} tool calls per reply"
                ))
            } else if known {
                tools.call(&call.name, &call.arguments).await
            } else {
                Err(format!("unknown tool {:?}", call.name))
            };
            let (ok, text) = match result {
                Ok(v) => (true, tool_text(&v)),
                Err(e) => (false, format!("error: {e}")),
            };
            answer.tool_uses.push(ToolUse {
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                ok,
            });
            messages.push(ChatMessage::tool_result(
                call.id.clone(),
                truncate(&text, MAX_TOOL_RESULT_BYTES),
            ));
        }
    }
    Err(SinkError::Service {
        code: 0,
        message: format!(
            "llm {} {}: the model still asked for tools after {max_rounds} rounds",
            model.api(),
            model.target()
        ),
        retryable: false,
    })
}

/// A tool result as prompt text: strings as they are, other values as JSON.
fn tool_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `[…]` references of `text` that are passage ids or tool names, in order of first
/// mention; one bracket may hold several, separated by `,` or `;`.
pub fn cited_ids(text: &str, passages: &[Passage], tools: &[ToolSpec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inner = &after[..close];
        for part in inner.split([',', ';']) {
            let id = part.trim();
            let known = passages.iter().any(|p| p.id == id) || tools.iter().any(|t| t.name == id);
            if known && !out.iter().any(|x| x == id) {
                out.push(id.to_owned());
            }
        }
        // A `[` inside the brackets starts the next candidate (`[[a]]`, `[x [a]`).
        rest = match inner.rfind('[') {
            Some(i) => &after[i..],
            None => &after[close + 1..],
        };
    }
    out
}
