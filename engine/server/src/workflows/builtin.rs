//! The built-in workflow providers, named by `type` alone (Keep's spelling), answered from the
//! engine's own data: `context-provider` (a service's recent metrics, error logs and log
//! templates, firing alerts and deploys over a lookback) and `incident-db` (past incidents by a
//! small query language, [`aiops_workflow::builtin`]). Their calls are effects like any
//! provider's: the executor logs each result, so a replay or rebuild reuses it and never reads
//! the live state again. Answers are bounded (lists capped, strings cut) since they go into the
//! log.

use super::query::QueryEngine;
use aiops_connectors::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use aiops_runtime::alerting::processor::AlertingHandle;
use aiops_runtime::templates::processor::TemplatesHandle;
use aiops_workflow::builtin::{self as spec, IncidentFacts, IncidentQuery};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Metric names listed at most.
const MAX_METRICS: usize = 20;
/// Log templates listed at most.
const MAX_TEMPLATES: usize = 5;
/// Firing alerts listed at most.
const MAX_ALERTS: usize = 20;
/// Deploys listed at most.
const MAX_DEPLOYS: usize = 10;
/// Characters of one string value at most.
const MAX_TEXT: usize = 300;
/// Log severities counted as errors.
const ERROR_SEVERITIES: &str =
    "'error','err','fatal','critical','crit','alert','emerg','emergency'";

/// The built-in providers, for [`aiops_runtime::workflows::catalog::ProviderSet::with_builtins`].
pub fn providers(
    alerting: Arc<AlertingHandle>,
    templates: Option<Arc<TemplatesHandle>>,
    query: Arc<QueryEngine>,
) -> Vec<Arc<dyn Provider>> {
    vec![
        Arc::new(ContextProvider {
            alerting: alerting.clone(),
            templates,
            query,
        }),
        Arc::new(IncidentDb { alerting }),
    ]
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `2026-12-03 10:00` (UTC) of a Unix ms time.
fn minute(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.get(..16).unwrap_or(&s).replace('T', " ")
}

fn params_error(field: &str, reason: impl Into<String>) -> SinkError {
    SinkError::params(field, reason.into())
}

/// `context-provider`.
pub struct ContextProvider {
    alerting: Arc<AlertingHandle>,
    templates: Option<Arc<TemplatesHandle>>,
    query: Arc<QueryEngine>,
}

impl std::fmt::Debug for ContextProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextProvider").finish()
    }
}

impl ContextProvider {
    /// Rows of a SQL query over `[at − lookback, at]`, or the error as a value (one section that
    /// fails does not lose the others).
    async fn rows(&self, sql: &str, service: &str, at: i64, lookback: i64) -> Value {
        let mut p = Map::new();
        p.insert("query".into(), json!(sql));
        p.insert("params".into(), json!({"service": service}));
        match self.query.sql(&p, at, lookback).await {
            Ok(v) => v,
            Err(e) => json!({"error": cut(&e.message)}),
        }
    }

    fn firing(&self, service: &str) -> Vec<Value> {
        let engine = self.alerting.engine.read();
        let mut out: Vec<Value> = engine
            .alerts()
            .into_iter()
            .filter(|v| {
                v.entry.status == aiops_alerting::model::Status::Firing
                    && v.entry.alert.service == service
            })
            .map(|v| {
                let a = &v.entry.alert;
                json!({
                    "name": cut(&a.name), "severity": a.severity, "fingerprint": a.fingerprint,
                    "since": minute(v.entry.first_seen_ms), "state": v.state(),
                    "summary": cut(a.annotations.get("summary").or_else(|| a.annotations.get("description")).map_or("", String::as_str)),
                })
            })
            .collect();
        out.truncate(MAX_ALERTS);
        out
    }

    fn templates(&self, service: &str, from: i64) -> Vec<Value> {
        let Some(h) = &self.templates else {
            return Vec::new();
        };
        let miner = h.miner.read();
        let Some(drain) = miner.drain(service) else {
            return Vec::new();
        };
        let mut t: Vec<_> = drain
            .templates()
            .filter(|t| t.last_seen.is_none_or(|l| l >= from))
            .collect();
        t.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.0.cmp(&b.id.0)));
        t.into_iter()
            .take(MAX_TEMPLATES)
            .map(|t| json!({"id": t.id.to_string(), "template": cut(t.template), "count": t.count}))
            .collect()
    }
}

fn str_param<'a>(p: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str)
}

#[async_trait::async_trait]
impl Provider for ContextProvider {
    fn kind(&self) -> &'static str {
        spec::CONTEXT_PROVIDER
    }

    fn target(&self, call: &EffectCall<'_>) -> String {
        str_param(call.params, "service").unwrap_or("").to_string()
    }

    fn validate(&self, p: &Map<String, Value>) -> Result<(), SinkError> {
        spec::lookback_ms(p).map_err(|e| params_error("lookbackPeriod", e))?;
        if !p.get("at_ms").is_some_and(Value::is_i64) {
            return Err(params_error(
                "at_ms",
                "must be the time of the call (Unix ms)",
            ));
        }
        Ok(())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let p = call.params;
        self.validate(p)?;
        let lookback = spec::lookback_ms(p).map_err(|e| params_error("lookbackPeriod", e))?;
        let at = p.get("at_ms").and_then(Value::as_i64).unwrap_or(0);
        let service = str_param(p, "service").unwrap_or("").to_string();
        let from = at.saturating_sub(lookback);
        let metrics = self
            .rows(
                &format!(
                    "SELECT name, count(*) AS samples, min(value) AS min, max(value) AS max, \
                     avg(value) AS avg, last_value(value ORDER BY time) AS last \
                     FROM metrics WHERE labels['service'] = $service \
                     GROUP BY name ORDER BY name LIMIT {MAX_METRICS}"
                ),
                &service,
                at,
                lookback,
            )
            .await;
        let errors = self
            .rows(
                &format!(
                    "SELECT count(*) AS errors FROM logs WHERE labels['service'] = $service \
                     AND lower(severity) IN ({ERROR_SEVERITIES})"
                ),
                &service,
                at,
                lookback,
            )
            .await;
        let errors = match errors.get(0).and_then(|r| r.get("errors")) {
            Some(n) => n.clone(),
            None => errors,
        };
        let deploys = self
            .rows(
                &format!(
                    "SELECT time, message, labels FROM events WHERE type = 'deploy' \
                     AND labels['service'] = $service ORDER BY time DESC LIMIT {MAX_DEPLOYS}"
                ),
                &service,
                at,
                lookback,
            )
            .await;
        let lookback_text = str_param(p, "lookbackPeriod").unwrap_or("30m").to_string();
        let out = json!({
            "results": {
                "service": service,
                "lookback": lookback_text,
                "from_ms": from,
                "to_ms": at,
                "metrics": metrics,
                "logs": {"errors": errors, "top_templates": self.templates(&service, from)},
                "firing_alerts": self.firing(&service),
                "deploys": deploys,
            }
        });
        Ok(EffectOutput {
            status: "ok".into(),
            response: out,
        })
    }
}

/// `incident-db`.
pub struct IncidentDb {
    alerting: Arc<AlertingHandle>,
}

impl std::fmt::Debug for IncidentDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncidentDb").finish()
    }
}

/// The one-line form: `INC-7 [resolved 2026-12-03 10:00] title — root cause: X — resolution: Y`.
fn incident_line(i: &aiops_alerting::incident::Incident) -> (String, Value) {
    let when = match i.resolved_at_ms {
        Some(t) => format!("resolved {}", minute(t)),
        None => format!("{} since {}", status_word(i), minute(i.opened_at_ms)),
    };
    let root = i.root_causes.first().map(|r| match r.reasons.first() {
        Some(why) => format!("{} ({})", r.service, why),
        None => r.service.clone(),
    });
    let resolution = i
        .timeline
        .iter()
        .rev()
        .find(|t| matches!(t.kind.as_str(), "resolution" | "resolved"))
        .map(|t| t.text.clone());
    let line = format!(
        "{} [{when}] {} — root cause: {} — resolution: {}",
        i.id,
        cut(&i.title),
        cut(root.as_deref().unwrap_or("unknown")),
        cut(resolution.as_deref().unwrap_or("none yet")),
    );
    let obj = json!({
        "id": i.id, "title": cut(&i.title), "status": status_word(i), "severity": i.severity,
        "services": services(i), "alertnames": alert_names(i),
        "opened_at_ms": i.opened_at_ms, "resolved_at_ms": i.resolved_at_ms,
        "root_cause": root, "resolution": resolution,
    });
    (line, obj)
}

fn status_word(i: &aiops_alerting::incident::Incident) -> &'static str {
    match i.status {
        aiops_alerting::incident::IncidentStatus::Open => "open",
        aiops_alerting::incident::IncidentStatus::Acknowledged => "acknowledged",
        aiops_alerting::incident::IncidentStatus::Resolved => "resolved",
    }
}

fn services(i: &aiops_alerting::incident::Incident) -> Vec<&str> {
    let mut s: Vec<&str> = i
        .alerts
        .values()
        .map(|a| a.service.as_str())
        .chain(i.root_causes.iter().map(|r| r.service.as_str()))
        .filter(|s| !s.is_empty())
        .collect();
    s.sort_unstable();
    s.dedup();
    s
}

fn alert_names(i: &aiops_alerting::incident::Incident) -> Vec<&str> {
    let mut s: Vec<&str> = i.alerts.values().map(|a| a.name.as_str()).collect();
    s.sort_unstable();
    s.dedup();
    s
}

#[async_trait::async_trait]
impl Provider for IncidentDb {
    fn kind(&self) -> &'static str {
        spec::INCIDENT_DB
    }

    fn target(&self, _call: &EffectCall<'_>) -> String {
        "incidents".into()
    }

    fn validate(&self, p: &Map<String, Value>) -> Result<(), SinkError> {
        let q = str_param(p, "query").ok_or_else(|| params_error("query", "is required"))?;
        IncidentQuery::parse(q).map_err(|e| params_error("query", e.to_string()))?;
        spec::limit(p).map_err(|e| params_error("limit", e))?;
        Ok(())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let p = call.params;
        let q = str_param(p, "query").ok_or_else(|| params_error("query", "is required"))?;
        let query = IncidentQuery::parse(q).map_err(|e| params_error("query", e.to_string()))?;
        let limit = spec::limit(p).map_err(|e| params_error("limit", e))?;
        let engine = self.alerting.engine.read();
        let incidents = engine.incidents();
        let mut hits: Vec<&aiops_alerting::incident::Incident> = incidents
            .open()
            .chain(incidents.closed())
            .filter(|i| {
                query.matches(&IncidentFacts {
                    services: services(i),
                    resolved: i.status == aiops_alerting::incident::IncidentStatus::Resolved,
                    alert_names: alert_names(i),
                    severity: &i.severity,
                    status: status_word(i),
                    title: &i.title,
                })
            })
            .collect();
        // Newest first: by when it opened, then by id.
        hits.sort_by(|a, b| {
            b.opened_at_ms
                .cmp(&a.opened_at_ms)
                .then_with(|| b.id.cmp(&a.id))
        });
        hits.truncate(limit);
        let (lines, objs): (Vec<String>, Vec<Value>) = hits.into_iter().map(incident_line).unzip();
        Ok(EffectOutput {
            status: "ok".into(),
            response: json!({"results": lines, "incidents": objs, "query": q}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> IncidentDb {
        IncidentDb {
            alerting: AlertingHandle::new(
                aiops_alerting::AlertEngine::new(aiops_alerting::AlertingConfig::default()),
                String::new(),
            ),
        }
    }

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn a_bad_query_fails_naming_the_term_and_is_not_retried() {
        let p = params(json!({"query": "service:api AND colour:red", "limit": 5}));
        let e = db()
            .call(&EffectCall {
                idempotency_key: "k",
                params: &p,
            })
            .await
            .err()
            .map(|e| (e.to_string(), e.retryable()));
        let (msg, retryable) = e.unwrap_or_default();
        assert!(msg.contains("\"colour:red\""), "{msg}");
        assert!(msg.contains("unknown field"), "{msg}");
        assert!(!retryable);
        let p = params(json!({"query": "service:api", "limit": 500}));
        assert!(db().validate(&p).is_err());
    }

    #[tokio::test]
    async fn no_incident_matches_an_empty_engine() {
        let p = params(json!({"query": "service:api AND resolved:true"}));
        let out = db()
            .call(&EffectCall {
                idempotency_key: "k",
                params: &p,
            })
            .await
            .map(|o| o.response)
            .unwrap_or_default();
        assert_eq!(out["results"], json!([]));
        assert_eq!(out["incidents"], json!([]));
    }

    #[test]
    fn minutes_are_utc() {
        assert_eq!(minute(1_796_205_600_000), "2026-12-02 10:00");
    }
}
