//! Configuration of the `llm` provider: `[workflows.providers.NAME]` with `kind = "llm"`.

use crate::sinks::{Secret, SinkError};
use std::time::Duration;

/// Which wire API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// OpenAI chat completions (`POST {base_url}/chat/completions`): OpenAI, DeepSeek, Ollama's
    /// `/v1`, llama.cpp's server, vLLM, Gemini's OpenAI-compatible endpoint.
    Openai,
    /// Anthropic Messages (`POST {base_url}/v1/messages`).
    Anthropic,
}

impl Api {
    /// The name as written in `api = "..."`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Openai => "openai",
            Api::Anthropic => "anthropic",
        }
    }

    /// The official endpoint, used when `base_url` is not set.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Api::Openai => "https://api.openai.com/v1",
            Api::Anthropic => "https://api.anthropic.com",
        }
    }
}

/// `kind = "llm"`: one model behind one of the two wire APIs.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// `"openai"` (chat completions, also DeepSeek, Ollama, llama.cpp, vLLM, Gemini) or
    /// `"anthropic"` (Messages).
    pub api: Api,
    /// The API root, e.g. `https://api.deepseek.com/v1` or `http://10.0.0.5:11434/v1` (default:
    /// the official endpoint of `api`). Checked against the outbound guard: a local model needs
    /// its address in `[outbound] allow`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The model name as the server knows it (`gpt-4o-mini`, `deepseek-chat`, `llama3.1:8b`,
    /// `claude-sonnet-4-5`, …).
    pub model: String,
    /// The API key (a secret: write `{{ secrets.NAME }}`). Optional for local servers
    /// (OpenAI-compatible only); required for `api = "anthropic"`.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Most tokens an answer may have when a call does not say (default 1024).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Sampling temperature when a call does not say (default: the server's).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Whole-call timeout, e.g. `"90s"` (default: the workflow provider timeout).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Price of a million input tokens in USD, for the cost counter (default 0).
    #[serde(default)]
    pub input_price_per_mtok: Option<f64>,
    /// Price of a million output tokens in USD, for the cost counter (default 0).
    #[serde(default)]
    pub output_price_per_mtok: Option<f64>,
    /// The `anthropic-version` header (default `2023-06-01`); Anthropic only.
    #[serde(default)]
    pub anthropic_version: Option<String>,
}

fn default_max_tokens() -> u32 {
    1024
}

/// The default `anthropic-version` header.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// Highest `max_tokens` accepted in config or params (no model answers more).
pub const MAX_TOKENS_LIMIT: u32 = 1_000_000;

impl LlmConfig {
    /// Checks the values serde cannot: non-empty model, ranges, a key where the API needs one.
    ///
    /// # Errors
    /// [`SinkError::Params`] naming the field (never its value).
    pub fn check(&self) -> Result<(), SinkError> {
        if self.model.trim().is_empty() {
            return Err(SinkError::params("model", "must not be empty"));
        }
        if self.max_tokens == 0 || self.max_tokens > MAX_TOKENS_LIMIT {
            return Err(SinkError::params(
                "max_tokens",
                format!("must be between 1 and {MAX_TOKENS_LIMIT}"),
            ));
        }
        if let Some(t) = self.temperature
            && !(t.is_finite() && (0.0..=2.0).contains(&t))
        {
            return Err(SinkError::params("temperature", "must be between 0 and 2"));
        }
        for (field, price) in [
            ("input_price_per_mtok", self.input_price_per_mtok),
            ("output_price_per_mtok", self.output_price_per_mtok),
        ] {
            if let Some(p) = price
                && !(p.is_finite() && p >= 0.0)
            {
                return Err(SinkError::params(field, "must be a non-negative number"));
            }
        }
        match &self.api_key {
            Some(k) if k.expose().trim().is_empty() => {
                return Err(SinkError::params(
                    "api_key",
                    "is empty (leave it out for a local server without keys)",
                ));
            }
            Some(k) if k.expose().chars().any(char::is_control) => {
                return Err(SinkError::params(
                    "api_key",
                    "contains control characters (a trailing newline in the secret?)",
                ));
            }
            None if self.api == Api::Anthropic => {
                return Err(SinkError::params(
                    "api_key",
                    "is required for api = \"anthropic\"",
                ));
            }
            _ => {}
        }
        if self.api != Api::Anthropic && self.anthropic_version.is_some() {
            return Err(SinkError::params(
                "anthropic_version",
                "applies to api = \"anthropic\" only",
            ));
        }
        if let Some(v) = &self.anthropic_version
            && (v.trim().is_empty() || !v.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(SinkError::params(
                "anthropic_version",
                "must be a version such as 2023-06-01",
            ));
        }
        Ok(())
    }

    /// `base_url` or the official endpoint.
    pub fn base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .unwrap_or(self.api.default_base_url())
    }
}

/// Prices per million tokens, for [`crate::sinks::llm::ChatModel::cost_usd`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Prices {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Prices {
    pub(crate) fn from_config(c: &LlmConfig) -> Self {
        Prices {
            input_per_mtok: c.input_price_per_mtok.unwrap_or(0.0),
            output_per_mtok: c.output_price_per_mtok.unwrap_or(0.0),
        }
    }

    /// The USD cost of `usage`.
    pub(crate) fn cost(&self, usage: &super::Usage) -> f64 {
        // u64 → f64 loses precision only beyond 2^53 tokens.
        (usage.input_tokens as f64 * self.input_per_mtok
            + usage.output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}
