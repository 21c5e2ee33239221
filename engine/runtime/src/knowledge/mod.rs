//! The knowledge base inside the engine: [`aiops_knowledge`] entries run over the log.
//!
//! Entries change only through commands in the log (`type = "knowledge"` control events, id
//! prefix [`crate::wire::ids::KNOWLEDGE`]): create/replace, delete, feedback, verify. The
//! processor applies them in log order, so every node and every rebuild holds the same entries
//! and the same derived search index, and a concurrent update loses deterministically (the
//! later command in the log is refused, naming the revision that won).
//!
//! LLM calls the assistant made are recorded in the log too (id prefix
//! [`crate::wire::ids::LLM_CALLS`] on [`crate::wire::EFFECTS_SUBJECT`]), before their answer is
//! used; the processor keeps them by call key so a replay, a rebuild or a retry reuses the
//! recorded answer instead of calling out.
//!
//! The processor appends nothing, so it runs on every node of a cluster (each serves search).
//!
//! - [`processor`]: the [`crate::Processor`] and the handle the API reads.
//! - [`rebuild`]: the state from the whole log (`aiops rebuild`).

pub mod processor;
pub mod rebuild;

use crate::wire::{self, ids};
use aiops_knowledge::Command;
use aiops_log::AppendMessage;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `type` of knowledge control events.
pub const CONTROL_TYPE: &str = "knowledge";
/// The `type` of recorded LLM calls.
pub const LLM_CALL_TYPE: &str = "llm_call";

/// Knowledge base settings (`[knowledge]` in the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeSettings {
    /// Whether the engine keeps a knowledge base. Default true.
    pub enabled: bool,
    /// A folder of Markdown runbooks imported at start and re-read every `watch_interval`
    /// (changed files are updated, removed files deleted). Unset: entries come from the API
    /// and `aiops knowledge import` only.
    pub dir: Option<PathBuf>,
    /// How often `dir` is re-read. Default 5s.
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
    /// How often the state is checkpointed. Default 30s.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// The name of a workflow provider (`[workflows.providers.NAME]`, `kind = "llm"`) that
    /// `POST /api/knowledge/ask` uses to answer from retrieved passages and read-only tools.
    /// Unset: answers are the cited sentences of the entries only.
    pub llm: Option<String>,
    /// The whole time an LLM answer may take (every round). Default 60s.
    #[serde(with = "humantime_serde")]
    pub llm_timeout: Duration,
    /// LLM rounds (tool calls then an answer) at most. Default 4.
    pub llm_max_rounds: u32,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        KnowledgeSettings {
            enabled: true,
            dir: None,
            watch_interval: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(30),
            llm: None,
            llm_timeout: Duration::from_secs(60),
            llm_max_rounds: 4,
        }
    }
}

/// Why a command was refused, as the processor reports it: what happened, prefixed by its kind
/// so that the API can answer 409 / 404 / 400 ([`refusal_kind`]).
pub fn refusal(e: &aiops_knowledge::KnowledgeError) -> String {
    use aiops_knowledge::KnowledgeError as E;
    let kind = match e {
        E::Conflict(_) => RefusalKind::Conflict,
        E::NotFound(_) => RefusalKind::NotFound,
        E::Invalid(_) => RefusalKind::Invalid,
        _ => RefusalKind::Failed,
    };
    format!("{}: {e}", kind.as_str())
}

/// What kind of refusal a reason made by [`refusal`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Another change won (the entry is at another revision).
    Conflict,
    /// No such entry.
    NotFound,
    /// The input is not a valid entry.
    Invalid,
    /// Anything else (the index failed: a bug).
    Failed,
}

impl RefusalKind {
    fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Conflict => "conflict",
            RefusalKind::NotFound => "not found",
            RefusalKind::Invalid => "invalid",
            RefusalKind::Failed => "failed",
        }
    }
}

/// The kind of a refusal reason and its message without the prefix.
pub fn refusal_kind(reason: &str) -> (RefusalKind, &str) {
    for k in [
        RefusalKind::Conflict,
        RefusalKind::NotFound,
        RefusalKind::Invalid,
        RefusalKind::Failed,
    ] {
        if let Some(rest) = reason
            .strip_prefix(k.as_str())
            .and_then(|r| r.strip_prefix(": "))
        {
            return (k, rest);
        }
    }
    (RefusalKind::Invalid, reason)
}

/// Where the engine keeps the knowledge checkpoint under its data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    crate::store::store_dir(data_dir, "knowledge")
}

/// A knowledge command as it is written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlEvent {
    /// Always [`CONTROL_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The change.
    pub command: Command,
}

/// The log message of `command`, made at `at_ms`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn command_message(command: &Command, at_ms: i64) -> Result<AppendMessage, serde_json::Error> {
    wire::control_message(
        ids::KNOWLEDGE,
        at_ms,
        &ControlEvent {
            kind: CONTROL_TYPE.into(),
            command: command.clone(),
        },
    )
}

/// One recorded LLM call: what was asked (never a secret: prompts hold questions, entry text
/// and tool results) and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    /// Always [`LLM_CALL_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The call key (a hash of API, model and request): the idempotency key.
    pub key: String,
    /// The provider's name in the configuration.
    pub provider: String,
    /// The model.
    pub model: String,
    /// The request as sent (without headers, so without the API key).
    pub request: serde_json::Value,
    /// The response as used.
    pub response: serde_json::Value,
    /// When it was recorded.
    pub at_ms: i64,
}

/// The log message recording `call` (id `m.<key>`, so recording the same call twice is one
/// message to a log that deduplicates ids, and one entry in the processor either way).
///
/// # Errors
/// Serialization failure (a bug).
pub fn llm_call_message(call: &LlmCall) -> Result<AppendMessage, serde_json::Error> {
    let payload = serde_json::to_vec(call)?;
    Ok(AppendMessage {
        subject: wire::EFFECTS_SUBJECT.into(),
        msg_id: format!("{}{}", ids::LLM_CALLS, call.key),
        time_min_ms: call.at_ms,
        time_max_ms: call.at_ms,
        payload: bytes::Bytes::from(payload),
    })
}
