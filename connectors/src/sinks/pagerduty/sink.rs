//! The running `pagerduty` provider.

use super::config::PagerDutyConfig;
use crate::sinks::params::{self, Params};
use crate::sinks::registry::ProviderContext;
use crate::sinks::transport::{DEFAULT_READ_LIMIT, HttpSink, host_of};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use serde_json::{Map, Value, json};

const KNOWN: &[&str] = &[
    "event_action",
    "dedup_key",
    "summary",
    "source",
    "severity",
    "timestamp",
    "component",
    "group",
    "class",
    "custom_details",
    "links",
    "images",
];
const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

/// Sends events to one PagerDuty service.
#[derive(Debug)]
pub struct PagerDuty {
    config: PagerDutyConfig,
    url: url::Url,
    host: String,
    http: HttpSink,
}

impl PagerDuty {
    /// Checks the URL against the outbound policy and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Refused`] for a refused URL, [`SinkError::Params`] for one that does not parse.
    pub fn new(config: PagerDutyConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let http = HttpSink::new(
            "pagerduty",
            ctx,
            vec![config.routing_key.expose().to_owned()],
        )?;
        let url = http.check_url("url", &config.url)?;
        Ok(PagerDuty {
            host: host_of(&url),
            url,
            config,
            http,
        })
    }

    /// The event without the routing key (added at send time).
    pub fn event(p: &Params, idempotency_key: &str) -> Result<Value, SinkError> {
        params::only_known(p, KNOWN)?;
        let action = params::opt_str(p, "event_action")?.unwrap_or("trigger");
        let dedup = params::opt_str(p, "dedup_key")?;
        let mut event = Map::new();
        event.insert("event_action".into(), json!(action));
        match action {
            "trigger" => {
                let dedup = dedup.unwrap_or(idempotency_key);
                check_dedup(dedup)?;
                event.insert("dedup_key".into(), json!(dedup));
                event.insert("payload".into(), payload(p)?);
                for field in ["links", "images"] {
                    if let Some(items) = params::opt_array(p, field)? {
                        event.insert(field.into(), Value::Array(items.clone()));
                    }
                }
            }
            "acknowledge" | "resolve" => {
                let dedup = dedup.ok_or_else(|| {
                    SinkError::params(
                        "dedup_key",
                        format!("is required for {action}: use the dedup_key of the trigger"),
                    )
                })?;
                check_dedup(dedup)?;
                event.insert("dedup_key".into(), json!(dedup));
            }
            other => {
                return Err(SinkError::params(
                    "event_action",
                    format!("{other:?} is not one of trigger, acknowledge, resolve"),
                ));
            }
        }
        event.insert("client".into(), json!("aiops"));
        Ok(Value::Object(event))
    }
}

fn check_dedup(key: &str) -> Result<(), SinkError> {
    // PagerDuty's documented maximum.
    if key.is_empty() || key.len() > 255 {
        return Err(SinkError::params(
            "dedup_key",
            "must be 1 to 255 characters",
        ));
    }
    Ok(())
}

fn payload(p: &Params) -> Result<Value, SinkError> {
    let summary = params::req_str(p, "summary")?;
    if summary.chars().count() > 1024 {
        return Err(SinkError::params(
            "summary",
            "must be at most 1024 characters",
        ));
    }
    let source = params::req_str(p, "source")?;
    let severity = params::req_str(p, "severity")?;
    if !SEVERITIES.contains(&severity) {
        return Err(SinkError::params(
            "severity",
            format!("{severity:?} is not one of {}", SEVERITIES.join(", ")),
        ));
    }
    let mut payload = Map::new();
    payload.insert("summary".into(), json!(summary));
    payload.insert("source".into(), json!(source));
    payload.insert("severity".into(), json!(severity));
    for field in ["timestamp", "component", "group", "class"] {
        if let Some(v) = params::opt_str(p, field)? {
            payload.insert(field.into(), json!(v));
        }
    }
    if let Some(details) = p.get("custom_details").filter(|v| !v.is_null()) {
        payload.insert("custom_details".into(), details.clone());
    }
    Ok(Value::Object(payload))
}

#[async_trait::async_trait]
impl Provider for PagerDuty {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn target(&self, _call: &EffectCall<'_>) -> String {
        self.host.clone()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        // A placeholder key: validation only checks shape.
        Self::event(p, "validate").map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let mut event = Self::event(call.params, call.idempotency_key)?;
        if let Some(o) = event.as_object_mut() {
            o.insert(
                "routing_key".into(),
                json!(self.config.routing_key.expose()),
            );
        }
        let req = self.http.client().post(self.url.clone()).json(&event);
        let reply = self.http.send(req, &self.host, DEFAULT_READ_LIMIT).await?;
        let v = reply.json().unwrap_or(Value::Null);
        let response = json!({
            "status": v.get("status").cloned().unwrap_or(Value::Null),
            "dedup_key": v.get("dedup_key").cloned().unwrap_or(Value::Null),
        });
        Ok(EffectOutput {
            status: reply.status.to_string(),
            response,
        })
    }
}
