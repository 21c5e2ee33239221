//! Answers through a configured LLM (`[knowledge] llm = "NAME"`, a `kind = "llm"` workflow
//! provider): the retrieved passages plus read-only tools over the engine's own data (incident
//! timeline, alert history, log search, metric query). Every call is recorded in the log
//! before its answer is used ([`LogRecorder`]), so a replay, a rebuild or the same question
//! again reuses the recorded answer and never calls out.
//!
//! Prompts hold the question, entry text and tool results only — never a secret (entries and
//! logs are masked at ingest; provider keys live in the provider).

use super::Knowledge;
use aiops_connectors::sinks::SinkError;
use aiops_connectors::sinks::llm::{
    AssistantAnswer, CallRecorder, ChatModel, ChatRequest, ChatResponse, Passage, ToolHost,
    ToolSpec, run_assistant,
};
use aiops_runtime::alerting::processor::AlertingHandle;
use aiops_runtime::knowledge::{LLM_CALL_TYPE, LlmCall, llm_call_message};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Rows a tool returns at most (the prompt stays small).
const TOOL_ROWS: usize = 20;

/// The configured assistant.
pub struct Assistant {
    /// The provider's name in the configuration.
    pub provider: String,
    /// The model behind it.
    pub model: Arc<dyn ChatModel>,
    /// Where calls are recorded and entries read.
    pub kb: Knowledge,
    /// The tools' data.
    pub tools: Arc<EngineTools>,
    /// The whole time an answer may take.
    pub timeout: Duration,
    /// Rounds at most.
    pub max_rounds: u32,
}

impl std::fmt::Debug for Assistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assistant")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// Why the assistant gave no answer (the caller falls back to the retrieval-only answer).
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// The provider failed or refused.
    #[error("the LLM provider failed: {0}")]
    Provider(#[from] SinkError),
    /// It took longer than `[knowledge] llm_timeout`.
    #[error("the LLM answer took longer than {0:?} (knowledge.llm_timeout)")]
    Timeout(Duration),
}

impl Assistant {
    /// The model's call, token and cost counters in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (name, help) in aiops_connectors::sinks::llm::CounterSnapshot::help() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        }
        out + &self.model.counters().snapshot().prometheus_lines(
            &self.provider,
            self.model.api(),
            self.model.model(),
        )
    }

    /// Answers `question` from `passages` and the tools.
    ///
    /// # Errors
    /// [`AssistantError`].
    pub async fn answer(
        &self,
        question: &str,
        passages: &[Passage],
    ) -> Result<AssistantAnswer, AssistantError> {
        let recorder = LogRecorder {
            kb: self.kb.clone(),
            provider: self.provider.clone(),
        };
        let run = run_assistant(
            &*self.model,
            &recorder,
            &*self.tools,
            question,
            passages,
            self.max_rounds,
        );
        let res = match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(AssistantError::Provider(e)),
            Err(_) => Err(AssistantError::Timeout(self.timeout)),
        };
        // Calls, tokens and cost are counted by the model (recorded answers as hits).
        if let Err(e) = &res {
            tracing::warn!(provider = %self.provider, error = %e, "LLM answer failed; answering from the entries only");
        }
        res
    }
}

/// Records LLM calls in the log (and reads them back from the knowledge processor's state).
struct LogRecorder {
    kb: Knowledge,
    provider: String,
}

#[async_trait::async_trait]
impl CallRecorder for LogRecorder {
    async fn lookup(&self, key: &str) -> Option<ChatResponse> {
        let calls = self.kb.handle.llm_calls.read();
        let c = calls.get(key)?;
        serde_json::from_value(c.response.clone()).ok()
    }

    async fn record(
        &self,
        key: &str,
        model: &str,
        req: &ChatRequest,
        resp: &ChatResponse,
    ) -> Result<(), String> {
        let call = LlmCall {
            kind: LLM_CALL_TYPE.into(),
            key: key.to_string(),
            provider: self.provider.clone(),
            model: model.to_string(),
            request: serde_json::to_value(req).map_err(|e| e.to_string())?,
            response: serde_json::to_value(resp).map_err(|e| e.to_string())?,
            at_ms: crate::clock::now_ms(),
        };
        let msg = llm_call_message(&call).map_err(|e| e.to_string())?;
        let appended = self
            .kb
            .log
            .append(vec![msg])
            .await
            .map_err(|e| format!("the event log did not take the LLM call record: {e}"))?;
        if let Some(a) = appended.first() {
            // Wait until the processor holds it, so the same question again finds it.
            let _ = self
                .kb
                .handle
                .progress
                .wait_for(a.seq, super::APPLY_TIMEOUT, "knowledge base")
                .await;
        }
        Ok(())
    }
}

/// The read-only tools an LLM may call: the engine's own data, nothing that changes state.
pub struct EngineTools {
    /// Incidents and alerts.
    pub alerting: Option<Arc<AlertingHandle>>,
    /// Logs and metrics (the read side's sandboxed SQL).
    pub read: Option<crate::read::ReadSide>,
}

impl std::fmt::Debug for EngineTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineTools").finish_non_exhaustive()
    }
}

fn schema(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

/// A SQL string literal (quotes doubled): tool arguments come from the model.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn minutes(args: &Value) -> i64 {
    args.get("minutes")
        .and_then(Value::as_i64)
        .unwrap_or(60)
        .clamp(1, 7 * 24 * 60)
}

#[async_trait::async_trait]
impl ToolHost for EngineTools {
    fn tools(&self) -> Vec<ToolSpec> {
        let mut t = Vec::new();
        if self.alerting.is_some() {
            t.push(ToolSpec {
                name: "incident_timeline".into(),
                description: "The timeline, alerts and root-cause candidates of one incident."
                    .into(),
                parameters: schema(json!({"id": {"type": "string"}}), &["id"]),
            });
            t.push(ToolSpec {
                name: "alert_history".into(),
                description: "Current state of the alerts with this alertname and the past incidents they were part of.".into(),
                parameters: schema(json!({"alertname": {"type": "string"}}), &["alertname"]),
            });
        }
        if self.read.is_some() {
            t.push(ToolSpec {
                name: "log_search".into(),
                description: "Recent log lines, newest first, filtered by service label and/or text.".into(),
                parameters: schema(
                    json!({"service": {"type": "string"}, "text": {"type": "string"}, "minutes": {"type": "integer"}}),
                    &[],
                ),
            });
            t.push(ToolSpec {
                name: "metric_query".into(),
                description: "Recent samples of one metric (min, max, avg and last per series)."
                    .into(),
                parameters: schema(
                    json!({"name": {"type": "string"}, "minutes": {"type": "integer"}}),
                    &["name"],
                ),
            });
        }
        t
    }

    async fn call(&self, name: &str, args: &Value) -> Result<Value, String> {
        let s = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
        match name {
            "incident_timeline" => {
                let h = self.alerting.as_ref().ok_or("alerting is not running")?;
                let id = s("id").ok_or("id is required")?;
                let e = h.engine.read();
                let i = e
                    .incidents()
                    .get(&id)
                    .ok_or_else(|| format!("no incident {id}"))?;
                let mut v = serde_json::to_value(i.view(None, 0)).map_err(|e| e.to_string())?;
                if let Some(t) = v.get_mut("timeline").and_then(Value::as_array_mut) {
                    let n = t.len();
                    t.drain(..n.saturating_sub(50));
                }
                Ok(v)
            }
            "alert_history" => {
                let h = self.alerting.as_ref().ok_or("alerting is not running")?;
                let name = s("alertname").ok_or("alertname is required")?;
                let e = h.engine.read();
                let alerts: Vec<Value> = e
                    .alerts()
                    .iter()
                    .filter(|a| a.entry.alert.name == name)
                    .take(TOOL_ROWS)
                    .map(|a| {
                        json!({"status": a.entry.alert.status, "labels": a.entry.alert.labels,
                               "starts_at_ms": a.entry.alert.starts_at_ms, "ends_at_ms": a.entry.alert.ends_at_ms})
                    })
                    .collect();
                let incidents: Vec<Value> = e
                    .incidents()
                    .open()
                    .chain(e.incidents().closed())
                    .filter(|i| i.alerts.values().any(|a| a.name == name))
                    .take(TOOL_ROWS)
                    .map(|i| json!({"id": i.id, "title": i.title, "status": i.status, "opened_at_ms": i.opened_at_ms, "resolved_at_ms": i.resolved_at_ms}))
                    .collect();
                Ok(json!({"alerts": alerts, "incidents": incidents}))
            }
            "log_search" => {
                let r = self.read.as_ref().ok_or("the read side is not running")?;
                let mut filter = format!("time >= now() - INTERVAL '{} minutes'", minutes(args));
                if let Some(svc) = s("service") {
                    filter.push_str(&format!(" AND labels['service'] = {}", lit(&svc)));
                }
                if let Some(t) = s("text") {
                    filter.push_str(&format!(
                        " AND strpos(lower(body), {}) > 0",
                        lit(&t.to_lowercase())
                    ));
                }
                let sql = format!(
                    "SELECT CAST(time AS VARCHAR) AS time, severity, body FROM logs WHERE {filter} ORDER BY time DESC LIMIT {TOOL_ROWS}"
                );
                rows(r, &sql).await
            }
            "metric_query" => {
                let r = self.read.as_ref().ok_or("the read side is not running")?;
                let name = s("name").ok_or("name is required")?;
                let sql = format!(
                    "SELECT CAST(labels AS VARCHAR) AS series, min(value) AS min, max(value) AS max, avg(value) AS avg, last_value(value ORDER BY time) AS last \
                     FROM metrics WHERE name = {} AND time >= now() - INTERVAL '{} minutes' GROUP BY CAST(labels AS VARCHAR) LIMIT {TOOL_ROWS}",
                    lit(&name),
                    minutes(args)
                );
                rows(r, &sql).await
            }
            other => Err(format!("no tool {other}")),
        }
    }
}

/// A query's rows as JSON objects (the sandbox keeps it read-only and bounded).
async fn rows(r: &crate::read::ReadSide, sql: &str) -> Result<Value, String> {
    let batches = r.query(sql).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    {
        let mut w = arrow_json::ArrayWriter::new(&mut buf);
        for b in &batches {
            w.write(b).map_err(|e| e.to_string())?;
        }
        w.finish().map_err(|e| e.to_string())?;
    }
    if buf.is_empty() {
        return Ok(json!([]));
    }
    serde_json::from_slice(&buf).map_err(|e| e.to_string())
}
