//! The one list of provider kinds and how a `[providers.NAME]` table becomes a running provider.

use crate::sinks::{
    OutboundPolicy, Provider, SinkError, argocd, dingtalk, email, exec, feishu, github_actions,
    grafana, http, jira, llm, pagerduty, slack, teams, webhook,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What every provider is built with besides its own table.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderContext {
    /// Where HTTP providers may connect.
    pub outbound: OutboundPolicy,
    /// The whole-call timeout of HTTP and SMTP calls, and the default of `exec` commands.
    pub timeout: Duration,
}

impl Default for ProviderContext {
    fn default() -> Self {
        ProviderContext {
            outbound: OutboundPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Every provider kind of this build, as written in `kind = "..."`.
pub fn provider_kinds() -> &'static [&'static str] {
    &[
        "webhook",
        "slack",
        "teams",
        "feishu",
        "dingtalk",
        "email",
        "jira",
        "pagerduty",
        "grafana",
        "http",
        "exec",
        "llm",
        "github_actions",
        "argocd",
    ]
}

/// Builds provider `name` from `config`: a JSON object with `"kind"` plus that kind's settings
/// (secrets already substituted). Unknown fields are errors naming the field.
///
/// # Errors
/// [`SinkError::Config`] naming the provider and the bad field (never a secret value);
/// [`SinkError::Refused`] when a configured URL is refused by the outbound policy.
pub fn build_provider(
    name: &str,
    config: &Value,
    ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, SinkError> {
    let Some(table) = config.as_object() else {
        return Err(SinkError::Config(format!(
            "provider {name}: config must be a table"
        )));
    };
    let kind = match table.get("kind") {
        Some(Value::String(k)) => k.as_str(),
        Some(_) => {
            return Err(SinkError::Config(format!(
                "provider {name}: \"kind\" must be a string"
            )));
        }
        None => {
            return Err(SinkError::Config(format!(
                "provider {name}: missing \"kind\" (one of {})",
                provider_kinds().join(", ")
            )));
        }
    };
    let mut rest = table.clone();
    rest.remove("kind");
    let rest = Value::Object(rest);
    let cx = |e: SinkError| match e {
        SinkError::Config(m) => SinkError::Config(format!("provider {name} (kind {kind}): {m}")),
        SinkError::Refused { reason } => {
            SinkError::refused(format!("provider {name} (kind {kind}): {reason}"))
        }
        SinkError::Params { field, message } => SinkError::Config(format!(
            "provider {name} (kind {kind}): field \"{field}\": {message}"
        )),
        other => other,
    };
    let provider: Arc<dyn Provider> = match kind {
        "webhook" => Arc::new(webhook::Webhook::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "slack" => Arc::new(slack::Slack::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "teams" => Arc::new(teams::Teams::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "feishu" => Arc::new(feishu::Feishu::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "dingtalk" => Arc::new(dingtalk::DingTalk::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "email" => Arc::new(email::Email::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "jira" => Arc::new(jira::Jira::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "pagerduty" => {
            Arc::new(pagerduty::PagerDuty::new(parse(name, kind, rest)?, ctx).map_err(cx)?)
        }
        "grafana" => Arc::new(grafana::Grafana::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "http" => Arc::new(http::Http::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "exec" => Arc::new(exec::Exec::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "llm" => Arc::new(llm::LlmProvider::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        "github_actions" => {
            Arc::new(github_actions::GithubActions::new(parse(name, kind, rest)?, ctx).map_err(cx)?)
        }
        "argocd" => Arc::new(argocd::ArgoCd::new(parse(name, kind, rest)?, ctx).map_err(cx)?),
        other => {
            return Err(SinkError::Config(format!(
                "provider {name}: unknown kind {other:?} (one of {})",
                provider_kinds().join(", ")
            )));
        }
    };
    Ok(provider)
}

/// Deserializes one kind's table; the message names the field path and never contains a value
/// of the table (values may be secrets: serde quotes wrong values in its messages).
pub(crate) fn parse<T: DeserializeOwned>(
    name: &str,
    kind: &str,
    table: Value,
) -> Result<T, SinkError> {
    let mut values = Vec::new();
    collect_strings(&table, &mut values);
    serde_path_to_error::deserialize(table).map_err(|e| {
        let path = e.path().to_string();
        let mut msg = e.into_inner().to_string();
        for v in &values {
            if !v.is_empty() {
                msg = msg.replace(v.as_str(), "***");
            }
        }
        let at = if path == "." {
            String::new()
        } else {
            format!("field \"{path}\": ")
        };
        SinkError::Config(format!("provider {name} (kind {kind}): {at}{msg}"))
    })
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        // Short strings would blank out ordinary words of the message; secrets are longer.
        Value::String(s) if s.len() >= 6 => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
