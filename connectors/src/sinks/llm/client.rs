//! The HTTP side both adapters share: the guarded client, the checked base URL, posting a JSON
//! body, and turning an error answer into a short message with the API's own reason.

use super::config::{LlmConfig, Prices};
use super::{ChatRequest, ChatResponse, LlmCounters};
use crate::sinks::registry::ProviderContext;
use crate::sinks::transport::{HttpSink, host_of, join, truncate};
use crate::sinks::{Secret, SinkError};
use serde_json::Value;
use std::sync::Arc;

/// Largest answer read from a model (a long answer is a few hundred KiB at most).
pub(crate) const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Longest API error message kept in an error.
const MESSAGE_BYTES: usize = 300;

/// One configured model's connection: everything but the wire format.
pub(crate) struct ApiClient {
    pub api: &'static str,
    pub model: String,
    pub host: String,
    pub key: Option<Secret>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    pub prices: Prices,
    pub counters: Arc<LlmCounters>,
    base: url::Url,
    http: HttpSink,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("api", &self.api)
            .field("model", &self.model)
            .field("host", &self.host)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// Checks `base_url` against the outbound guard and builds the client with the configured
    /// timeout.
    pub(crate) fn new(
        api: &'static str,
        cfg: &LlmConfig,
        ctx: &ProviderContext,
    ) -> Result<Self, SinkError> {
        let ctx = ProviderContext {
            outbound: ctx.outbound.clone(),
            timeout: cfg.timeout.unwrap_or(ctx.timeout),
        };
        let secrets = cfg.api_key.iter().map(|k| k.expose().to_owned()).collect();
        let http = HttpSink::new(api, &ctx, secrets)?;
        let base = http.check_url("base_url", cfg.base_url())?;
        if !base.username().is_empty() || base.password().is_some() || base.query().is_some() {
            return Err(SinkError::params(
                "base_url",
                "must not carry credentials or a query (put the key in api_key)",
            ));
        }
        Ok(ApiClient {
            api,
            model: cfg.model.clone(),
            host: host_of(&base),
            key: cfg.api_key.clone(),
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
            prices: Prices::from_config(cfg),
            counters: Arc::new(LlmCounters::default()),
            base,
            http,
        })
    }

    /// The request's `max_tokens`, or the configured one for `0`.
    pub(crate) fn max_tokens(&self, req: &ChatRequest) -> u32 {
        if req.max_tokens == 0 {
            self.max_tokens
        } else {
            req.max_tokens
        }
    }

    /// The request's temperature, or the configured one.
    pub(crate) fn temperature(&self, req: &ChatRequest) -> Option<f32> {
        req.temperature.or(self.temperature)
    }

    /// `{base_url}/{path}`.
    pub(crate) fn url(&self, path: &str) -> url::Url {
        join(&self.base, path)
    }

    /// POSTs `body` as JSON to `url` with `headers` and returns the parsed JSON answer.
    ///
    /// # Errors
    /// [`SinkError::Http`] whose excerpt is `llm API HOST: <the API's error message>` (without
    /// the key or the prompt); transport errors as [`HttpSink::send`]; a 2xx answer that is not
    /// JSON → [`SinkError::Service`].
    pub(crate) async fn post(
        &self,
        url: url::Url,
        headers: &[(&str, &str)],
        body: &Value,
        req: &ChatRequest,
    ) -> Result<Value, SinkError> {
        let mut builder = self.http.client().post(url).json(body);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        match self.http.send(builder, &self.host, MAX_ANSWER_BYTES).await {
            Ok(reply) => serde_json::from_slice(&reply.body)
                .map_err(|e| self.malformed(format!("the answer is not JSON ({e})"))),
            Err(SinkError::Http {
                status,
                body_excerpt,
            }) => Err(SinkError::Http {
                status,
                body_excerpt: format!(
                    "llm {} {}: {}",
                    self.api,
                    self.host,
                    truncate(
                        &scrub_prompt(&api_message(&body_excerpt), req),
                        MESSAGE_BYTES
                    )
                ),
            }),
            Err(other) => Err(other),
        }
    }

    /// An answer that does not have the API's shape: permanent (asking again gets the same).
    pub(crate) fn malformed(&self, what: impl std::fmt::Display) -> SinkError {
        SinkError::Service {
            code: 0,
            message: format!("llm {} {}: {what}", self.api, self.host),
            retryable: false,
        }
    }

    /// Counts and logs the outcome of a call.
    pub(crate) fn finish(
        &self,
        result: Result<ChatResponse, SinkError>,
    ) -> Result<ChatResponse, SinkError> {
        match &result {
            Ok(resp) => {
                let cost = self.prices.cost(&resp.usage);
                self.counters.answered(&resp.usage, cost);
                tracing::info!(
                    api = self.api,
                    host = %self.host,
                    model = %self.model,
                    input_tokens = resp.usage.input_tokens,
                    output_tokens = resp.usage.output_tokens,
                    cost_usd = cost,
                    tool_calls = resp.tool_calls.len(),
                    stop_reason = %resp.stop_reason,
                    "llm call answered"
                );
            }
            Err(e) => {
                self.counters.failed();
                tracing::warn!(
                    api = self.api,
                    host = %self.host,
                    model = %self.model,
                    retryable = e.retryable(),
                    "llm call failed"
                );
            }
        }
        result
    }
}

/// What a JSON error answer says in `error.message` (OpenAI, Anthropic, llama.cpp, vLLM,
/// Ollama and Gemini all use that field), else the excerpt itself.
///
/// The excerpt may be cut off, so the message is read as the first JSON string after
/// `"message"` rather than by parsing the whole body.
pub(crate) fn api_message(excerpt: &str) -> String {
    let from_json = serde_json::from_str::<Value>(excerpt).ok().and_then(|v| {
        let e = v.get("error")?;
        e.get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| e.as_str().map(str::to_owned))
    });
    let msg = from_json
        .or_else(|| first_message_field(excerpt))
        .unwrap_or_else(|| excerpt.trim().to_owned());
    if msg.is_empty() {
        "(no error message)".to_owned()
    } else {
        msg
    }
}

fn first_message_field(text: &str) -> Option<String> {
    let at = text.find("\"message\"")?;
    let rest = text[at + "\"message\"".len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    serde_json::Deserializer::from_str(rest)
        .into_iter::<String>()
        .next()?
        .ok()
}

/// Shortest prompt text that is scrubbed from error messages (shorter ones are ordinary words).
const MIN_SCRUB: usize = 16;

/// `text` without any part of the prompt a server may have echoed (the system prompt, a
/// message's content, or a line of them): errors go to logs and operators, prompts do not.
pub(crate) fn scrub_prompt(text: &str, req: &ChatRequest) -> String {
    let mut out = text.to_owned();
    let sources =
        std::iter::once(req.system.as_str()).chain(req.messages.iter().map(|m| m.content.as_str()));
    let mut pieces: Vec<&str> = Vec::new();
    for s in sources {
        if s.len() >= MIN_SCRUB {
            pieces.push(s);
        }
        pieces.extend(
            s.lines()
                .map(str::trim)
                .filter(|line| line.len() >= MIN_SCRUB),
        );
    }
    // Longest first, so a line is not left behind by a shorter piece removed inside it.
    pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in pieces {
        if out.contains(p) {
            out = out.replace(p, "[prompt]");
        }
    }
    out
}
