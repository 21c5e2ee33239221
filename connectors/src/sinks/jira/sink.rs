//! The running `jira` provider: find by idempotency label, else create.

use super::config::JiraConfig;
use crate::sinks::params::{self, Params, key_hash16};
use crate::sinks::registry::ProviderContext;
use crate::sinks::transport::{DEFAULT_READ_LIMIT, HttpSink, host_of, join};
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use serde_json::{Value, json};

const KNOWN: &[&str] = &[
    "project",
    "summary",
    "description",
    "issuetype",
    "labels",
    "priority",
];

/// How requests authenticate.
#[derive(Debug)]
enum Auth {
    Basic {
        user: String,
        token: crate::sinks::Secret,
    },
    Bearer(crate::sinks::Secret),
}

/// Creates issues in one Jira.
#[derive(Debug)]
pub struct Jira {
    base: url::Url,
    host: String,
    auth: Auth,
    http: HttpSink,
}

impl Jira {
    /// Checks the base URL and the auth settings and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Config`] unless exactly one of `user`+`token` or `bearer` is set;
    /// [`SinkError::Refused`] for a refused URL.
    pub fn new(config: JiraConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let auth = match (config.user, config.token, config.bearer) {
            (Some(user), Some(token), None) => Auth::Basic { user, token },
            (None, None, Some(bearer)) => Auth::Bearer(bearer),
            _ => {
                return Err(SinkError::Config(
                    "set either user and token (Basic auth) or bearer".into(),
                ));
            }
        };
        let secrets = match &auth {
            Auth::Basic { token, .. } => vec![token.expose().to_owned()],
            Auth::Bearer(b) => vec![b.expose().to_owned()],
        };
        let http = HttpSink::new("jira", ctx, secrets)?;
        let base = http.check_url("url", &config.url)?;
        Ok(Jira {
            host: host_of(&base),
            base,
            auth,
            http,
        })
    }

    /// The create-issue body; `marker` is the idempotency label.
    pub fn issue(p: &Params, marker: &str) -> Result<Value, SinkError> {
        params::only_known(p, KNOWN)?;
        let project = project_key(p)?;
        let summary = params::req_str(p, "summary")?;
        if summary.contains('\n') || summary.chars().count() > 255 {
            return Err(SinkError::params(
                "summary",
                "must be one line of at most 255 characters",
            ));
        }
        let issuetype = params::opt_str(p, "issuetype")?.unwrap_or("Task");
        let mut labels = params::opt_str_list(p, "labels")?;
        for (i, l) in labels.iter().enumerate() {
            if l.is_empty() || l.chars().any(char::is_whitespace) {
                return Err(SinkError::params(
                    format!("labels[{i}]"),
                    "labels cannot be empty or contain spaces",
                ));
            }
        }
        labels.push(marker.to_owned());
        let mut fields = json!({
            "project": {"key": project},
            "issuetype": {"name": issuetype},
            "summary": summary,
            "labels": labels,
        });
        if let Some(d) = params::opt_str(p, "description")? {
            fields["description"] = json!(d);
        }
        if let Some(pr) = params::opt_str(p, "priority")? {
            fields["priority"] = json!({"name": pr});
        }
        Ok(json!({"fields": fields}))
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::Basic { user, token } => req.basic_auth(user, Some(token.expose())),
            Auth::Bearer(b) => req.bearer_auth(b.expose()),
        }
    }

    /// The issue already carrying `marker` in `project`, if any.
    async fn existing(&self, project: &str, marker: &str) -> Result<Option<Value>, SinkError> {
        // Both values are validated to [A-Za-z0-9_-], so quoting them is enough for JQL.
        let jql = format!("project = \"{project}\" AND labels = \"{marker}\"");
        let mut result = Err(SinkError::Timeout);
        for path in ["rest/api/2/search/jql", "rest/api/2/search"] {
            let mut url = join(&self.base, path);
            url.query_pairs_mut()
                .append_pair("jql", &jql)
                .append_pair("maxResults", "1")
                .append_pair("fields", "key");
            let req = self.authed(self.http.client().get(url));
            result = self.http.send(req, &self.host, DEFAULT_READ_LIMIT).await;
            // 404: a server without the Cloud endpoint; try the classic one.
            if !matches!(result, Err(SinkError::Http { status: 404, .. })) {
                break;
            }
        }
        let reply = result?;
        let issue = reply.json().and_then(|v| {
            v.get("issues")
                .and_then(|i| i.as_array())
                .and_then(|a| a.first().cloned())
        });
        Ok(issue.map(|i| json!({"key": i.get("key"), "id": i.get("id")})))
    }
}

fn project_key(p: &Params) -> Result<&str, SinkError> {
    let project = params::req_str(p, "project")?;
    let ok = project
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(SinkError::params(
            "project",
            "must be a project key such as OPS",
        ));
    }
    Ok(project)
}

#[async_trait::async_trait]
impl Provider for Jira {
    fn kind(&self) -> &'static str {
        "jira"
    }

    fn target(&self, call: &EffectCall<'_>) -> String {
        params::opt_str(call.params, "project")
            .ok()
            .flatten()
            .unwrap_or("")
            .to_owned()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        Self::issue(p, "aiops-0").map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let marker = format!("aiops-{}", key_hash16(call.idempotency_key));
        let body = Self::issue(call.params, &marker)?;
        let project = project_key(call.params)?;
        if let Some(mut found) = self.existing(project, &marker).await? {
            tracing::info!(kind = "jira", host = %self.host, project, "issue already exists for this effect");
            found["existing"] = json!(true);
            return Ok(EffectOutput {
                status: "200".into(),
                response: found,
            });
        }
        let url = join(&self.base, "rest/api/2/issue");
        let req = self.authed(self.http.client().post(url)).json(&body);
        let reply = self.http.send(req, &self.host, DEFAULT_READ_LIMIT).await?;
        let v = reply.json().unwrap_or(Value::Null);
        Ok(EffectOutput {
            status: reply.status.to_string(),
            response: json!({"key": v.get("key"), "id": v.get("id")}),
        })
    }
}
