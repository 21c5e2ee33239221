//! The `llm` adapters against a local contract server that checks each API's documented request
//! shape (OpenAI chat completions; Anthropic Messages: path, method, headers, body, tool calls and
//! tool results, system placement) and answers with scripted responses: a tool call first, then
//! a text answer citing a passage. The assistant loop with an in-memory recorder: the first run
//! calls out and records, a replay sends nothing and returns the same answer. Errors: 5xx and
//! 429 retryable, 401 permanent with the API's message and without the key, timeouts, the
//! outbound guard, unknown config fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_connectors::outbound::OutboundPolicy;
use aiops_connectors::sinks::llm::{
    self, CallRecorder, ChatMessage, ChatModel, ChatRequest, ChatResponse, Passage, Role, ToolHost,
    ToolSpec, build_chat_model, call_key, run_assistant,
};
use aiops_connectors::sinks::{EffectCall, ProviderContext, SinkError, build_provider};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-K3yV4lue-0123456789abcdef";
const PASSAGE: &str = "etcd/etcdHighFsyncDurations#Mitigation";

// ───────────────────────────── the contract server ─────────────────────────────

#[derive(Clone, Copy, PartialEq, Debug)]
enum Api {
    OpenAi,
    Anthropic,
}

/// How the server answers a request that passes the contract.
#[derive(Clone)]
enum Mode {
    /// A tool call when the conversation has no tool result yet, else a text answer.
    Script,
    /// Always the same tool call (the model never stops asking).
    AlwaysTools,
    /// A fixed status and JSON body.
    Status(u16, Value),
    /// The script, after a delay.
    Delay(Duration),
    /// A 2xx answer of this many bytes.
    Huge(usize),
    /// A tool call whose arguments are not JSON (OpenAI only).
    BadArguments,
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Value,
    violations: Vec<String>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Server {
    api: Api,
    /// The key the server expects (None: no key at all).
    key: Option<&'static str>,
    model: &'static str,
    mode: Mode,
    seen: Mutex<Vec<Seen>>,
    addr: std::net::SocketAddr,
}

impl Server {
    async fn start(api: Api, key: Option<&'static str>, mode: Mode) -> Arc<Server> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let model = match api {
            Api::OpenAi => "gpt-test",
            Api::Anthropic => "claude-test",
        };
        let server = Arc::new(Server {
            api,
            key,
            model,
            mode,
            seen: Mutex::new(Vec::new()),
            addr,
        });
        let s = server.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let s = s.clone();
                async move { s.handle(method, uri, headers, body).await }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        server
    }

    /// The base URL a user would configure for this API.
    fn base_url(&self) -> String {
        match self.api {
            Api::OpenAi => format!("http://{}/v1", self.addr),
            Api::Anthropic => format!("http://{}", self.addr),
        }
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The provider table for this server.
    fn config(&self) -> Value {
        let mut c = json!({
            "kind": "llm",
            "api": match self.api { Api::OpenAi => "openai", Api::Anthropic => "anthropic" },
            "base_url": self.base_url(),
            "model": self.model,
            "max_tokens": 512,
            "timeout": "2s",
            "input_price_per_mtok": 3.0,
            "output_price_per_mtok": 15.0,
        });
        if let Some(k) = self.key {
            c["api_key"] = json!(k);
        }
        c
    }

    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut violations = Vec::new();
        match self.api {
            Api::OpenAi => check_openai(self, &method, &uri, &headers, &parsed, &mut violations),
            Api::Anthropic => {
                check_anthropic(self, &method, &uri, &headers, &parsed, &mut violations)
            }
        }
        self.seen.lock().unwrap().push(Seen {
            method,
            path: uri.path().to_owned(),
            headers,
            body: parsed.clone(),
            violations: violations.clone(),
        });
        if !violations.is_empty() {
            let msg = format!("contract: {}", violations.join("; "));
            return json_reply(
                400,
                json!({"error": {"message": msg, "type": "invalid_request_error"}}),
            );
        }
        match &self.mode {
            Mode::Script => self.scripted(&parsed),
            Mode::AlwaysTools => self.tool_call_answer(),
            Mode::Status(status, body) => json_reply(*status, body.clone()),
            Mode::Delay(d) => {
                tokio::time::sleep(*d).await;
                self.scripted(&parsed)
            }
            Mode::Huge(n) => {
                let filler = "x".repeat(*n);
                json_reply(200, json!({"choices": [{"message": {"content": filler}}]}))
            }
            Mode::BadArguments => json_reply(
                200,
                json!({"model": self.model, "choices": [{"index": 0, "finish_reason": "tool_calls",
                    "message": {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "metric_query", "arguments": "{\"query\": \"up"}}]}}]}),
            ),
        }
    }

    /// Round 1 (no tool result yet): two tool calls; round 2: a text answer citing a passage
    /// and a tool.
    fn scripted(&self, body: &Value) -> Response {
        let has_result =
            body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| match self.api {
                    Api::OpenAi => m["role"] == "tool",
                    Api::Anthropic => m["content"]
                        .as_array()
                        .is_some_and(|b| b.iter().any(|x| x["type"] == "tool_result")),
                });
        if has_result {
            self.text_answer()
        } else {
            self.tool_call_answer()
        }
    }

    fn tool_call_answer(&self) -> Response {
        match self.api {
            Api::OpenAi => json_reply(
                200,
                json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                    "model": "gpt-test-0125",
                    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                        "role": "assistant", "content": null,
                        "tool_calls": [
                            {"id": "call_abc", "type": "function", "function": {
                                "name": "metric_query",
                                "arguments": "{\"query\":\"histogram_quantile(0.99, etcd_disk_wal_fsync_duration_seconds_bucket)\"}"}},
                            {"id": "call_def", "type": "function", "function": {
                                "name": "log_search", "arguments": "{\"service\":\"etcd\"}"}}
                        ]}}],
                    "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140}
                }),
            ),
            Api::Anthropic => json_reply(
                200,
                json!({
                    "id": "msg_1", "type": "message", "role": "assistant",
                    "model": "claude-test-20250101",
                    "content": [
                        {"type": "text", "text": "Let me check the fsync latency."},
                        {"type": "tool_use", "id": "toolu_01", "name": "metric_query",
                         "input": {"query": "histogram_quantile(0.99, etcd_disk_wal_fsync_duration_seconds_bucket)"}},
                        {"type": "tool_use", "id": "toolu_02", "name": "log_search",
                         "input": {"service": "etcd"}}
                    ],
                    "stop_reason": "tool_use", "stop_sequence": null,
                    "usage": {"input_tokens": 120, "output_tokens": 20}
                }),
            ),
        }
    }

    fn text_answer(&self) -> Response {
        let text = format!(
            "WAL fsync p99 is 0.8 s [metric_query]. Move etcd to SSDs and check disk \
             contention [{PASSAGE}]. Also see [unknown/entry#X]."
        );
        match self.api {
            Api::OpenAi => json_reply(
                200,
                json!({
                    "id": "chatcmpl-2", "object": "chat.completion", "model": "gpt-test-0125",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240}
                }),
            ),
            Api::Anthropic => json_reply(
                200,
                json!({
                    "id": "msg_2", "type": "message", "role": "assistant",
                    "model": "claude-test-20250101",
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn", "stop_sequence": null,
                    "usage": {"input_tokens": 200, "output_tokens": 40}
                }),
            ),
        }
    }
}

fn json_reply(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn only_keys(v: &Value, allowed: &[&str], at: &str, out: &mut Vec<String>) {
    if let Some(o) = v.as_object() {
        for k in o.keys() {
            if !allowed.contains(&k.as_str()) {
                out.push(format!("{at}: unexpected field {k:?}"));
            }
        }
    } else {
        out.push(format!("{at}: not an object"));
    }
}

/// OpenAI chat completions (platform.openai.com/docs/api-reference/chat/create).
fn check_openai(
    s: &Server,
    method: &Method,
    uri: &Uri,
    h: &HeaderMap,
    b: &Value,
    out: &mut Vec<String>,
) {
    if method != Method::POST {
        out.push(format!("method {method}, want POST"));
    }
    if uri.path() != "/v1/chat/completions" {
        out.push(format!("path {}, want /v1/chat/completions", uri.path()));
    }
    match (s.key, header(h, "authorization")) {
        (Some(k), Some(a)) if a == format!("Bearer {k}") => {}
        (None, None) => {}
        (want, got) => out.push(format!(
            "authorization {:?}, want {:?}",
            got.map(|_| "(set)"),
            want.map(|_| "Bearer KEY")
        )),
    }
    if h.contains_key("x-api-key") {
        out.push("x-api-key sent to an OpenAI endpoint".into());
    }
    if !header(h, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        out.push("content-type is not application/json".into());
    }
    only_keys(
        b,
        &["model", "messages", "max_tokens", "temperature", "tools"],
        "body",
        out,
    );
    if b["model"] != s.model {
        out.push(format!("model {}, want {}", b["model"], s.model));
    }
    if b["max_tokens"].as_u64().unwrap_or(0) == 0 {
        out.push("max_tokens missing or not a positive integer".into());
    }
    if let Some(t) = b.get("temperature")
        && !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        out.push("temperature out of 0..2".into());
    }
    if let Some(tools) = b.get("tools") {
        for (i, t) in tools.as_array().into_iter().flatten().enumerate() {
            only_keys(t, &["type", "function"], &format!("tools[{i}]"), out);
            only_keys(
                &t["function"],
                &["name", "description", "parameters"],
                &format!("tools[{i}].function"),
                out,
            );
            if t["type"] != "function"
                || !t["function"]["name"].is_string()
                || !t["function"]["parameters"].is_object()
            {
                out.push(format!(
                    "tools[{i}] is not {{type: function, function: {{name, parameters}}}}"
                ));
            }
        }
    }
    let Some(msgs) = b["messages"].as_array().filter(|m| !m.is_empty()) else {
        out.push("messages missing or empty".into());
        return;
    };
    let mut open_calls: Vec<String> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let at = format!("messages[{i}]");
        match m["role"].as_str() {
            Some("system") | Some("user") => {
                only_keys(m, &["role", "content"], &at, out);
                if !m["content"].is_string() {
                    out.push(format!("{at}: content is not a string"));
                }
            }
            Some("assistant") => {
                only_keys(m, &["role", "content", "tool_calls"], &at, out);
                if let Some(calls) = m.get("tool_calls") {
                    for (j, c) in calls.as_array().into_iter().flatten().enumerate() {
                        let args = c["function"]["arguments"].as_str();
                        let args_ok = args
                            .and_then(|a| serde_json::from_str::<Value>(a).ok())
                            .is_some_and(|v| v.is_object());
                        if c["type"] != "function"
                            || !c["id"].is_string()
                            || !c["function"]["name"].is_string()
                            || !args_ok
                        {
                            out.push(format!(
                                "{at}.tool_calls[{j}]: want {{id, type: function, function: {{name, arguments: JSON string}}}}"
                            ));
                        }
                        open_calls.push(c["id"].as_str().unwrap_or("").to_owned());
                    }
                }
            }
            Some("tool") => {
                only_keys(m, &["role", "content", "tool_call_id"], &at, out);
                let id = m["tool_call_id"].as_str().unwrap_or("");
                if !open_calls.iter().any(|c| c == id) {
                    out.push(format!("{at}: tool_call_id {id:?} answers no call"));
                }
                if !m["content"].is_string() {
                    out.push(format!("{at}: tool content is not a string"));
                }
            }
            other => out.push(format!("{at}: role {other:?}")),
        }
    }
}

/// Anthropic Messages (docs.anthropic.com/en/api/messages).
fn check_anthropic(
    s: &Server,
    method: &Method,
    uri: &Uri,
    h: &HeaderMap,
    b: &Value,
    out: &mut Vec<String>,
) {
    if method != Method::POST {
        out.push(format!("method {method}, want POST"));
    }
    if uri.path() != "/v1/messages" {
        out.push(format!("path {}, want /v1/messages", uri.path()));
    }
    if header(h, "x-api-key") != s.key {
        out.push("x-api-key missing or wrong".into());
    }
    if header(h, "anthropic-version") != Some("2023-06-01") {
        out.push(format!(
            "anthropic-version {:?}, want 2023-06-01",
            header(h, "anthropic-version")
        ));
    }
    if header(h, "content-type") != Some("application/json") {
        out.push("content-type is not application/json".into());
    }
    if h.contains_key("authorization") {
        out.push("authorization header sent to Anthropic".into());
    }
    only_keys(
        b,
        &[
            "model",
            "max_tokens",
            "system",
            "messages",
            "tools",
            "temperature",
        ],
        "body",
        out,
    );
    if b["model"] != s.model {
        out.push(format!("model {}, want {}", b["model"], s.model));
    }
    if b["max_tokens"].as_u64().unwrap_or(0) == 0 {
        out.push("max_tokens (required) missing or not a positive integer".into());
    }
    if let Some(sys) = b.get("system")
        && !sys.is_string()
    {
        out.push("system is not a string".into());
    }
    if let Some(t) = b.get("temperature")
        && !t.as_f64().is_some_and(|t| (0.0..=1.0).contains(&t))
    {
        out.push("temperature out of 0..1".into());
    }
    if let Some(tools) = b.get("tools") {
        for (i, t) in tools.as_array().into_iter().flatten().enumerate() {
            only_keys(
                t,
                &["name", "description", "input_schema"],
                &format!("tools[{i}]"),
                out,
            );
            if !t["name"].is_string() || t["input_schema"]["type"] != "object" {
                out.push(format!(
                    "tools[{i}] is not {{name, description, input_schema}}"
                ));
            }
        }
    }
    let Some(msgs) = b["messages"].as_array().filter(|m| !m.is_empty()) else {
        out.push("messages missing or empty".into());
        return;
    };
    let mut last_tool_uses: Vec<String> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let at = format!("messages[{i}]");
        only_keys(m, &["role", "content"], &at, out);
        let role = m["role"].as_str().unwrap_or("");
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if role != want {
            out.push(format!(
                "{at}: role {role:?}, want {want} (roles alternate, user first)"
            ));
        }
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(t) => {
                if t.is_empty() {
                    out.push(format!("{at}: empty content"));
                }
                Vec::new()
            }
            Value::Array(b) => b.clone(),
            _ => {
                out.push(format!("{at}: content is neither text nor blocks"));
                Vec::new()
            }
        };
        let mut seen_other = false;
        let mut tool_uses = Vec::new();
        for (j, blk) in blocks.iter().enumerate() {
            let bat = format!("{at}.content[{j}]");
            match (role, blk["type"].as_str()) {
                (_, Some("text")) => {
                    only_keys(blk, &["type", "text"], &bat, out);
                    seen_other = true;
                }
                ("assistant", Some("tool_use")) => {
                    only_keys(blk, &["type", "id", "name", "input"], &bat, out);
                    if !blk["id"].is_string()
                        || !blk["name"].is_string()
                        || !blk["input"].is_object()
                    {
                        out.push(format!("{bat}: tool_use needs id, name, input object"));
                    }
                    tool_uses.push(blk["id"].as_str().unwrap_or("").to_owned());
                }
                ("user", Some("tool_result")) => {
                    only_keys(
                        blk,
                        &["type", "tool_use_id", "content", "is_error"],
                        &bat,
                        out,
                    );
                    let id = blk["tool_use_id"].as_str().unwrap_or("");
                    if !last_tool_uses.iter().any(|t| t == id) {
                        out.push(format!(
                            "{bat}: tool_use_id {id:?} answers no tool_use of the previous message"
                        ));
                    }
                    if seen_other {
                        out.push(format!("{bat}: tool_result after other content"));
                    }
                    if !blk["content"].is_string() && !blk["content"].is_array() {
                        out.push(format!("{bat}: tool_result content"));
                    }
                }
                (r, t) => out.push(format!("{bat}: block {t:?} not allowed in a {r} message")),
            }
        }
        if role == "assistant" {
            last_tool_uses = tool_uses;
        } else if !last_tool_uses.is_empty() {
            // Every tool_use of the previous assistant turn must be answered here.
            for id in &last_tool_uses {
                let answered = blocks
                    .iter()
                    .any(|b| b["type"] == "tool_result" && b["tool_use_id"] == id.as_str());
                if !answered {
                    out.push(format!("{at}: tool_use {id:?} has no tool_result"));
                }
            }
            last_tool_uses.clear();
        }
    }
}

// ───────────────────────────── test doubles ─────────────────────────────

#[derive(Default)]
struct MemRecorder {
    calls: Mutex<HashMap<String, (ChatRequest, ChatResponse)>>,
    fail: bool,
}

#[async_trait::async_trait]
impl CallRecorder for MemRecorder {
    async fn lookup(&self, key: &str) -> Option<ChatResponse> {
        self.calls.lock().unwrap().get(key).map(|(_, r)| r.clone())
    }
    async fn record(
        &self,
        key: &str,
        _model: &str,
        req: &ChatRequest,
        resp: &ChatResponse,
    ) -> Result<(), String> {
        if self.fail {
            return Err("log unavailable".into());
        }
        self.calls
            .lock()
            .unwrap()
            .insert(key.to_owned(), (req.clone(), resp.clone()));
        Ok(())
    }
}

/// `metric_query` answers; `log_search` fails.
#[derive(Default)]
struct Tools {
    calls: Mutex<Vec<(String, Value)>>,
}

#[async_trait::async_trait]
impl ToolHost for Tools {
    fn tools(&self) -> Vec<ToolSpec> {
        // Deliberately unsorted: the loop must not depend on the host's order.
        vec![
            ToolSpec {
                name: "metric_query".into(),
                description: "PromQL-like query over recent metrics".into(),
                parameters: json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
            },
            ToolSpec {
                name: "log_search".into(),
                description: "Search recent logs".into(),
                parameters: json!({"type": "object", "properties": {"service": {"type": "string"}}}),
            },
        ]
    }
    async fn call(&self, name: &str, args: &Value) -> Result<Value, String> {
        self.calls
            .lock()
            .unwrap()
            .push((name.to_owned(), args.clone()));
        match name {
            "metric_query" => Ok(json!({"p99_seconds": 0.8, "series": 3})),
            _ => Err("log store unavailable".into()),
        }
    }
}

fn passages() -> Vec<Passage> {
    vec![
        Passage {
            id: PASSAGE.into(),
            text: "Move etcd's data directory to SSDs; check disk contention.".into(),
        },
        Passage {
            id: "etcd/etcdHighFsyncDurations#Meaning".into(),
            text: "WAL fsync takes longer than 500 ms at p99.".into(),
        },
    ]
}

fn local_ctx() -> ProviderContext {
    ProviderContext {
        outbound: OutboundPolicy::allowing(["127.0.0.1"]),
        timeout: Duration::from_secs(5),
    }
}

fn model_for(server: &Server) -> Arc<dyn ChatModel> {
    build_chat_model("assistant", &server.config(), &local_ctx()).unwrap()
}

fn no_violations(server: &Server) {
    for r in server.requests() {
        assert!(
            r.violations.is_empty(),
            "{} {}: {:?}",
            r.method,
            r.path,
            r.violations
        );
    }
}

// ───────────────────────────── tests ─────────────────────────────

/// Runs the assistant twice against `api`: the first run calls out twice (tool call, answer)
/// and records both; the replay sends nothing and returns the same answer.
async fn assistant_round_trip_and_replay(api: Api) -> Arc<Server> {
    let server = Server::start(api, Some(KEY), Mode::Script).await;
    let model = model_for(&server);
    let recorder = MemRecorder::default();
    let tools = Tools::default();
    let question = "Why is etcd fsync slow and what do I do?";
    let first = run_assistant(model.as_ref(), &recorder, &tools, question, &passages(), 4)
        .await
        .unwrap();
    no_violations(&server);
    assert_eq!(server.count(), 2, "one tool round and one answer");
    assert_eq!(recorder.calls.lock().unwrap().len(), 2);
    assert_eq!(first.calls.len(), 2);
    assert_eq!(first.recorded_hits, 0);
    assert!(first.text.contains("Move etcd to SSDs"), "{}", first.text);
    // Cited: the passage and the tool, in order of mention; an unknown id is not cited.
    assert_eq!(
        first.cited,
        vec!["metric_query".to_owned(), PASSAGE.to_owned()]
    );
    assert_eq!(
        first
            .tool_uses
            .iter()
            .map(|t| (t.name.as_str(), t.ok))
            .collect::<Vec<_>>(),
        vec![("metric_query", true), ("log_search", false)]
    );
    assert_eq!(first.usage.input_tokens, 320);
    assert_eq!(first.usage.output_tokens, 60);
    let want_cost = (320.0 * 3.0 + 60.0 * 15.0) / 1e6;
    assert!(
        (first.cost_usd - want_cost).abs() < 1e-12,
        "{}",
        first.cost_usd
    );
    assert_eq!(tools.calls.lock().unwrap().len(), 2);
    // Each recorded call is keyed by its request.
    for (key, (req, _)) in recorder.calls.lock().unwrap().iter() {
        assert_eq!(*key, call_key(model.api(), model.model(), req));
    }
    // Keys are the ones the answer lists.
    for k in &first.calls {
        assert!(recorder.calls.lock().unwrap().contains_key(k));
    }

    // The prompt: passages numbered with their ids; the question.
    let req1 = &server.requests()[0].body;
    let user_text = match api {
        Api::OpenAi => req1["messages"][1]["content"].as_str().unwrap().to_owned(),
        Api::Anthropic => req1["messages"][0]["content"].as_str().unwrap().to_owned(),
    };
    assert!(user_text.contains(question), "{user_text}");
    assert!(
        user_text.contains(&format!("1. [{PASSAGE}]")),
        "{user_text}"
    );

    // Replay: same inputs, same recorder → zero requests, same answer.
    let tools2 = Tools::default();
    let replay = run_assistant(model.as_ref(), &recorder, &tools2, question, &passages(), 4)
        .await
        .unwrap();
    assert_eq!(server.count(), 2, "the replay must not call the model");
    assert_eq!(replay.recorded_hits, 2);
    assert_eq!(replay.text, first.text);
    assert_eq!(replay.cited, first.cited);
    assert_eq!(replay.calls, first.calls);
    assert_eq!(replay.tool_uses, first.tool_uses);
    let c = model.counters().snapshot();
    assert_eq!((c.calls, c.recorded_hits, c.failures), (2, 2, 0));
    assert_eq!((c.input_tokens, c.output_tokens), (320, 60));
    server
}

#[tokio::test]
async fn openai_assistant_with_tools_then_replay_sends_nothing() {
    let server = assistant_round_trip_and_replay(Api::OpenAi).await;
    let reqs = server.requests();
    let r1 = &reqs[0];
    assert_eq!(
        r1.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    // System prompt first, as a system message.
    assert_eq!(r1.body["messages"][0]["role"], "system");
    assert!(
        r1.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("square brackets")
    );
    // Default max_tokens from config; tools in OpenAI's function shape, sorted by name.
    assert_eq!(r1.body["max_tokens"], 512);
    assert_eq!(r1.body["tools"][0]["type"], "function");
    assert_eq!(r1.body["tools"][0]["function"]["name"], "log_search");
    assert_eq!(
        r1.body["tools"][1]["function"]["parameters"]["required"][0],
        "query"
    );
    // Round 2 carries the assistant's tool calls and one tool message per result.
    let m = r1.body["messages"].as_array().unwrap().len();
    let msgs = reqs[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), m + 3);
    let asst = &msgs[m];
    assert_eq!(asst["role"], "assistant");
    assert_eq!(asst["content"], Value::Null);
    assert_eq!(asst["tool_calls"][0]["id"], "call_abc");
    let args: Value = serde_json::from_str(
        asst["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(args["query"].as_str().unwrap().contains("fsync"));
    assert_eq!(msgs[m + 1]["role"], "tool");
    assert_eq!(msgs[m + 1]["tool_call_id"], "call_abc");
    assert!(msgs[m + 1]["content"].as_str().unwrap().contains("0.8"));
    assert_eq!(msgs[m + 2]["tool_call_id"], "call_def");
    assert!(
        msgs[m + 2]["content"]
            .as_str()
            .unwrap()
            .contains("error: log store unavailable")
    );
}

#[tokio::test]
async fn anthropic_assistant_with_tools_then_replay_sends_nothing() {
    let server = assistant_round_trip_and_replay(Api::Anthropic).await;
    let reqs = server.requests();
    let r1 = &reqs[0];
    assert_eq!(r1.header("x-api-key"), Some(KEY));
    assert_eq!(r1.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r1.header("authorization"), None);
    // System at the top level, not a message; max_tokens present; tools with input_schema.
    assert!(
        r1.body["system"]
            .as_str()
            .unwrap()
            .contains("square brackets")
    );
    assert_eq!(r1.body["messages"][0]["role"], "user");
    assert_eq!(r1.body["max_tokens"], 512);
    assert_eq!(r1.body["tools"][0]["name"], "log_search");
    assert_eq!(r1.body["tools"][1]["input_schema"]["required"][0], "query");
    // Round 2: the assistant turn with text + tool_use blocks, then ONE user turn holding both
    // tool results.
    let msgs = reqs[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 3);
    let asst = msgs[1]["content"].as_array().unwrap();
    assert_eq!(asst[0]["type"], "text");
    assert_eq!(asst[1]["type"], "tool_use");
    assert_eq!(asst[1]["id"], "toolu_01");
    assert!(
        asst[1]["input"]["query"]
            .as_str()
            .unwrap()
            .contains("fsync")
    );
    let results = msgs[2]["content"].as_array().unwrap();
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["type"], "tool_result");
    assert_eq!(results[0]["tool_use_id"], "toolu_01");
    assert_eq!(results[1]["tool_use_id"], "toolu_02");
    assert!(
        results[1]["content"]
            .as_str()
            .unwrap()
            .starts_with("error:")
    );
}

#[tokio::test]
async fn direct_chat_round_trips_for_both_apis() {
    for api in [Api::OpenAi, Api::Anthropic] {
        let server = Server::start(api, Some(KEY), Mode::Script).await;
        let model = model_for(&server);
        let req = ChatRequest {
            system: "Be brief.".into(),
            messages: vec![
                ChatMessage::text(Role::System, "Answer in English."),
                ChatMessage::text(Role::User, "Status of etcd?"),
            ],
            tools: Vec::new(),
            max_tokens: 64,
            temperature: Some(0.2),
        };
        let resp = model.chat(&req).await.unwrap();
        no_violations(&server);
        // No tool result in the conversation: the script answers with tool calls.
        assert_eq!(resp.tool_calls.len(), 2, "{api:?}");
        assert_eq!(resp.tool_calls[0].name, "metric_query");
        assert!(resp.tool_calls[0].arguments["query"].is_string());
        assert_eq!(resp.tool_calls[1].arguments, json!({"service": "etcd"}));
        assert_eq!(resp.usage.input_tokens, 120);
        let body = &server.requests()[0].body;
        assert_eq!(body["max_tokens"], 64);
        assert!((body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
        match api {
            Api::OpenAi => {
                assert_eq!(resp.stop_reason, "tool_calls");
                assert_eq!(resp.model, "gpt-test-0125");
                assert_eq!(body["messages"][0]["content"], "Be brief.");
                assert_eq!(body["messages"][1]["role"], "system");
            }
            Api::Anthropic => {
                assert_eq!(resp.stop_reason, "tool_use");
                assert_eq!(resp.text, "Let me check the fsync latency.");
                assert_eq!(body["system"], "Be brief.\n\nAnswer in English.");
                assert_eq!(body["messages"].as_array().unwrap().len(), 1);
            }
        }
        assert_eq!(model.target(), server.addr.to_string());
    }
}

#[tokio::test]
async fn openai_compatible_server_without_a_key_gets_no_authorization() {
    // Ollama, llama.cpp and vLLM run without keys.
    let server = Server::start(Api::OpenAi, None, Mode::Script).await;
    let model = model_for(&server);
    let req = ChatRequest {
        system: String::new(),
        messages: vec![ChatMessage::text(Role::User, "hi")],
        tools: Vec::new(),
        max_tokens: 0,
        temperature: None,
    };
    model.chat(&req).await.unwrap();
    no_violations(&server);
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), None);
    // No system prompt → no system message; no temperature configured → none sent.
    assert_eq!(r.body["messages"][0]["role"], "user");
    assert!(r.body.get("temperature").is_none());
    assert!(r.body.get("tools").is_none());
}

fn one_question() -> ChatRequest {
    ChatRequest {
        system: "You are the operations assistant of an on-call engineer.".into(),
        messages: vec![ChatMessage::text(
            Role::User,
            "Question: why is checkout-service slow since the deploy?",
        )],
        tools: Vec::new(),
        max_tokens: 0,
        temperature: None,
    }
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable() {
    for api in [Api::OpenAi, Api::Anthropic] {
        for (status, message) in [
            (
                500,
                "The server had an error while processing your request.",
            ),
            (429, "Rate limit reached for requests"),
            (529, "Overloaded"),
        ] {
            let body = json!({"type": "error", "error": {"type": "api_error", "message": message}});
            let server = Server::start(api, Some(KEY), Mode::Status(status, body)).await;
            let model = model_for(&server);
            let err = model.chat(&one_question()).await.unwrap_err();
            assert!(err.retryable(), "{api:?} {status}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains(&status.to_string()) && msg.contains(message),
                "{msg}"
            );
            assert_eq!(model.counters().snapshot().failures, 1);
        }
    }
}

#[tokio::test]
async fn unauthorized_is_permanent_and_never_shows_the_key_or_prompt() {
    for api in [Api::OpenAi, Api::Anthropic] {
        // Servers echo what they got: the key, and sometimes the prompt.
        let body = json!({"error": {
            "message": format!("Incorrect API key provided: {KEY}. Question: why is checkout-service slow since the deploy?"),
            "type": "invalid_request_error", "code": "invalid_api_key"}});
        let server = Server::start(api, Some(KEY), Mode::Status(401, body)).await;
        let model = model_for(&server);
        let err = model.chat(&one_question()).await.unwrap_err();
        assert!(!err.retryable(), "{err}");
        assert!(matches!(err, SinkError::Http { status: 401, .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("401") && msg.contains("Incorrect API key provided"),
            "{msg}"
        );
        assert!(
            msg.contains(match api {
                Api::OpenAi => "openai",
                Api::Anthropic => "anthropic",
            }),
            "{msg}"
        );
        assert!(!msg.contains(KEY), "{msg}");
        assert!(!msg.contains("checkout-service slow"), "{msg}");
        let debug = format!("{model:?} {err:?}");
        assert!(!debug.contains(KEY), "{debug}");
        // The workflow provider's Debug neither.
        let p = build_provider("llm", &server.config(), &local_ctx()).unwrap();
        assert!(!format!("{p:?}").contains(KEY));
    }
}

#[tokio::test]
async fn a_slow_server_times_out_with_a_clear_retryable_error() {
    for api in [Api::OpenAi, Api::Anthropic] {
        let server = Server::start(api, Some(KEY), Mode::Delay(Duration::from_secs(3))).await;
        let mut cfg = server.config();
        cfg["timeout"] = json!("300ms");
        let model = build_chat_model("slow", &cfg, &local_ctx()).unwrap();
        let started = Instant::now();
        let err = model.chat(&one_question()).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err, SinkError::Timeout);
        assert!(err.retryable());
        assert_eq!(err.to_string(), "timed out");
    }
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let server = Server::start(Api::OpenAi, Some(KEY), Mode::Huge(5 * 1024 * 1024)).await;
    let err = model_for(&server).chat(&one_question()).await.unwrap_err();
    assert!(matches!(err, SinkError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("exceeds"), "{err}");
}

#[tokio::test]
async fn unparsable_tool_arguments_name_the_tool() {
    let server = Server::start(Api::OpenAi, Some(KEY), Mode::BadArguments).await;
    let err = model_for(&server).chat(&one_question()).await.unwrap_err();
    assert!(err.to_string().contains("metric_query"), "{err}");
    assert!(!err.retryable());
}

#[tokio::test]
async fn an_unrecorded_answer_is_not_used() {
    let server = Server::start(Api::OpenAi, Some(KEY), Mode::Script).await;
    let model = model_for(&server);
    let recorder = MemRecorder {
        fail: true,
        ..MemRecorder::default()
    };
    let tools = Tools::default();
    let err = run_assistant(model.as_ref(), &recorder, &tools, "q?", &passages(), 4)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not be recorded"), "{err}");
    assert!(err.retryable());
    // The tool call of the unrecorded answer was not acted on.
    assert!(tools.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_model_that_never_stops_calling_tools_is_cut_off() {
    let server = Server::start(Api::Anthropic, Some(KEY), Mode::AlwaysTools).await;
    let model = model_for(&server);
    let err = run_assistant(
        model.as_ref(),
        &MemRecorder::default(),
        &Tools::default(),
        "q?",
        &passages(),
        3,
    )
    .await
    .unwrap_err();
    no_violations(&server);
    assert_eq!(server.count(), 3);
    assert!(err.to_string().contains("after 3 rounds"), "{err}");
}

#[tokio::test]
async fn the_outbound_guard_refuses_local_models_unless_allowed() {
    let server = Server::start(Api::OpenAi, None, Mode::Script).await;
    let default_ctx = ProviderContext::default();
    for base in [
        server.base_url(),
        "http://localhost:11434/v1".to_owned(),
        "http://10.0.0.5:8000/v1".to_owned(),
        "http://169.254.169.254/v1".to_owned(),
    ] {
        let mut cfg = server.config();
        cfg["base_url"] = json!(base);
        let err = build_chat_model("local", &cfg, &default_ctx).unwrap_err();
        assert!(matches!(err, SinkError::Refused { .. }), "{base}: {err}");
        assert!(err.to_string().contains("outbound.allow"), "{err}");
        let err = build_provider("local", &cfg, &default_ctx).unwrap_err();
        assert!(matches!(err, SinkError::Refused { .. }), "{base}: {err}");
    }
    // Allowed explicitly, the local model answers.
    let ctx = ProviderContext {
        outbound: OutboundPolicy::allowing([server.addr.to_string()]),
        timeout: Duration::from_secs(5),
    };
    let model = build_chat_model("local", &server.config(), &ctx).unwrap();
    model.chat(&one_question()).await.unwrap();
    assert_eq!(server.count(), 1);
}

#[test]
fn config_errors_name_the_field_and_never_the_key() {
    let ctx = ProviderContext::default();
    let base = json!({"kind": "llm", "api": "openai", "model": "gpt-4o-mini", "api_key": KEY});
    let mut typo = base.clone();
    typo["modle"] = json!("gpt-4o");
    type Build = fn(&str, &Value, &ProviderContext) -> Result<(), SinkError>;
    let builds: [Build; 2] = [
        |n, c, x| build_chat_model(n, c, x).map(|_| ()),
        |n, c, x| build_provider(n, c, x).map(|_| ()),
    ];
    for build in builds {
        let err = build("my-llm", &typo, &ctx).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SinkError::Config(_)), "{msg}");
        assert!(msg.contains("modle") && msg.contains("my-llm"), "{msg}");
        assert!(!msg.contains(KEY), "{msg}");
        let mut bad = base.clone();
        bad["api"] = json!("gemini");
        let msg = build("my-llm", &bad, &ctx).unwrap_err().to_string();
        // The value itself is not quoted (values may be secrets); the accepted ones are.
        assert!(
            msg.contains("\"api\"") && msg.contains("anthropic"),
            "{msg}"
        );
        let mut bad = base.clone();
        bad["max_tokens"] = json!(0);
        let msg = build("my-llm", &bad, &ctx).unwrap_err().to_string();
        assert!(msg.contains("max_tokens") && !msg.contains(KEY), "{msg}");
        let mut bad = base.clone();
        bad["api"] = json!("anthropic");
        bad.as_object_mut().unwrap().remove("api_key");
        let msg = build("my-llm", &bad, &ctx).unwrap_err().to_string();
        assert!(msg.contains("api_key"), "{msg}");
        let mut bad = base.clone();
        bad["base_url"] = json!(format!("https://user:{KEY}@api.openai.com/v1"));
        let msg = build("my-llm", &bad, &ctx).unwrap_err().to_string();
        assert!(msg.contains("base_url") && !msg.contains(KEY), "{msg}");
    }
    // Defaults: the official endpoints.
    let m = build_chat_model("o", &base, &ctx).unwrap();
    assert_eq!((m.api(), m.target().as_str()), ("openai", "api.openai.com"));
    let a =
        json!({"kind": "llm", "api": "anthropic", "model": "claude-sonnet-4-5", "api_key": KEY});
    let m = build_chat_model("a", &a, &ctx).unwrap();
    assert_eq!(
        (m.api(), m.target().as_str()),
        ("anthropic", "api.anthropic.com")
    );
    assert!(!format!("{m:?}").contains(KEY));
    assert_eq!(
        m.cost_usd(&llm::Usage {
            input_tokens: 1_000_000,
            output_tokens: 5
        }),
        0.0
    );
}

#[test]
fn call_keys_are_stable_and_depend_on_every_part() {
    let r = one_question();
    let k = call_key("openai", "gpt-4o", &r);
    assert_eq!(k.len(), 64);
    assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(k, call_key("openai", "gpt-4o", &r.clone()));
    assert_ne!(k, call_key("anthropic", "gpt-4o", &r));
    assert_ne!(k, call_key("openai", "gpt-4o-mini", &r));
    let mut r2 = r.clone();
    r2.messages[0].content.push('!');
    assert_ne!(k, call_key("openai", "gpt-4o", &r2));
    let mut r3 = r.clone();
    r3.max_tokens = 10;
    assert_ne!(k, call_key("openai", "gpt-4o", &r3));
}

#[test]
fn cited_ids_match_passages_and_tools_only() {
    let tools = Tools::default().tools();
    let text = format!("A [{PASSAGE}, metric_query]; B [[{PASSAGE}]] C [nope] D [x [log_search]");
    assert_eq!(
        llm::assistant::cited_ids(&text, &passages(), &tools),
        vec![
            PASSAGE.to_owned(),
            "metric_query".to_owned(),
            "log_search".to_owned()
        ]
    );
    assert!(llm::assistant::cited_ids("no brackets [", &passages(), &tools).is_empty());
}

#[tokio::test]
async fn workflow_step_calls_the_model_and_returns_text_usage_and_cost() {
    for api in [Api::OpenAi, Api::Anthropic] {
        let server = Server::start(api, Some(KEY), Mode::Script).await;
        let p = build_provider("summarize", &server.config(), &local_ctx()).unwrap();
        assert_eq!(p.kind(), "llm");
        let params = json!({
            "system": "Summarize the incident for Slack.",
            "messages": [
                {"role": "user", "content": "INC-7: etcd fsync slow on node-7"},
                {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": "tool result follows"}
            ],
            "max_tokens": 200
        });
        let params = params.as_object().unwrap().clone();
        p.validate(&params).unwrap();
        let call = EffectCall {
            idempotency_key: "wf/inc-7/summarize",
            params: &params,
        };
        assert_eq!(p.target(&call), server.addr.to_string());
        let out = p.call(&call).await.unwrap();
        no_violations(&server);
        assert_eq!(out.status, "200");
        assert_eq!(out.response["usage"]["input_tokens"], 120);
        assert_eq!(out.response["usage"]["output_tokens"], 20);
        let cost = out.response["cost_usd"].as_f64().unwrap();
        assert!(
            (cost - (120.0 * 3.0 + 20.0 * 15.0) / 1e6).abs() < 1e-12,
            "{cost}"
        );
        assert!(out.response["model"].as_str().unwrap().contains("test"));
        assert!(out.response["text"].is_string());
        assert!(!out.response.to_string().contains(KEY));
        let body = &server.requests()[0].body;
        assert_eq!(body["max_tokens"], 200);
        assert!(body.get("tools").is_none());
        match api {
            Api::OpenAi => assert_eq!(
                body["messages"][0]["content"],
                "Summarize the incident for Slack."
            ),
            Api::Anthropic => assert_eq!(body["system"], "Summarize the incident for Slack."),
        }
        // A plain prompt works too.
        let params = json!({"prompt": "Summarize INC-7"})
            .as_object()
            .unwrap()
            .clone();
        p.call(&EffectCall {
            idempotency_key: "k2",
            params: &params,
        })
        .await
        .unwrap();
        assert_eq!(server.count(), 2);
    }
}

#[test]
fn workflow_step_params_are_checked_by_name() {
    let cfg = json!({"kind": "llm", "api": "openai", "model": "m", "base_url": "https://llm.example.com/v1"});
    let p = build_provider("s", &cfg, &ProviderContext::default()).unwrap();
    let cases = [
        (json!({}), "prompt"),
        (json!({"prompt": "  "}), "prompt"),
        (
            json!({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}),
            "messages",
        ),
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "tool", "content": "b"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": 3}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x", "name": "n"}]}),
            "messages[0].name",
        ),
        (json!({"prompt": "a", "max_tokens": 0}), "max_tokens"),
        (json!({"prompt": "a", "temperature": 0.1}), "temperature"),
        (json!({"prompt": "a", "system": 1}), "system"),
    ];
    for (params, field) in cases {
        let e = p.validate(params.as_object().unwrap()).unwrap_err();
        assert!(
            matches!(&e, SinkError::Params { field: f, .. } if f == field),
            "{params}: {e}"
        );
    }
    let huge = json!({"prompt": "x".repeat(300 * 1024)});
    assert!(p.validate(huge.as_object().unwrap()).is_err());
}

#[test]
fn request_bodies_have_each_apis_shape() {
    use llm::ToolCall;
    let req = ChatRequest {
        system: "S".into(),
        messages: vec![
            ChatMessage::text(Role::User, "q"),
            ChatMessage {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "t".into(),
                    arguments: json!({"a": 1}),
                }],
                tool_call_id: None,
            },
            ChatMessage::tool_result("c1", "r1"),
            ChatMessage::text(Role::User, "and now?"),
        ],
        tools: vec![ToolSpec {
            name: "t".into(),
            description: "d".into(),
            parameters: Value::Null,
        }],
        max_tokens: 0,
        temperature: Some(1.5),
    };
    let o = llm::openai::request_body("m", &req, 100, req.temperature);
    assert_eq!(
        o["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_eq!(
        o["messages"][3],
        json!({"role": "tool", "tool_call_id": "c1", "content": "r1"})
    );
    assert_eq!(o["tools"][0]["function"]["parameters"]["type"], "object");
    let a = llm::anthropic::request_body("m", &req, 100, req.temperature);
    // Tool result and the following user text share one user turn, the result first.
    let turns = a["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[2]["content"][0]["type"], "tool_result");
    assert_eq!(
        turns[2]["content"][1],
        json!({"type": "text", "text": "and now?"})
    );
    assert_eq!(
        turns[1]["content"],
        json!([{"type": "tool_use", "id": "c1", "name": "t", "input": {"a": 1}}])
    );
    // Anthropic's temperature range is 0..1.
    assert_eq!(a["temperature"], 1.0);
    assert_eq!(a["tools"][0]["input_schema"]["type"], "object");
}
