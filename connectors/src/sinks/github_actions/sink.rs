//! The running `github_actions` provider: one workflow dispatch per call.

use super::config::GithubActionsConfig;
use crate::sinks::params::{self, Params, type_name};
use crate::sinks::registry::ProviderContext;
use crate::sinks::transport::{
    EXCERPT_BYTES, HttpSink, check_token, error_message, host_of, join, truncate,
};
use crate::sinks::{EffectCall, EffectOutput, Provider, Secret, SinkError};
use serde_json::{Map, Value, json};

/// The REST API version asked for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
/// GitHub's limit on the number of top-level `inputs` of a dispatch.
pub const MAX_INPUTS: usize = 25;
/// GitHub's limit on the size of the `inputs` payload, in characters.
pub const MAX_INPUTS_CHARS: usize = 65_535;

const KNOWN: &[&str] = &["workflow", "ref", "inputs"];
/// Longest workflow file name or id accepted.
const MAX_WORKFLOW_BYTES: usize = 255;
/// Longest ref accepted (a branch or tag name).
const MAX_REF_BYTES: usize = 255;
/// A 200 answer is three small fields; anything bigger is not GitHub's answer.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest URL kept from an answer.
const MAX_URL_BYTES: usize = 512;

/// Dispatches workflows of one repository.
#[derive(Debug)]
pub struct GithubActions {
    base: url::Url,
    host: String,
    token: Secret,
    owner: String,
    repo: String,
    workflow: Option<String>,
    key_input: Option<String>,
    return_run_details: bool,
    http: HttpSink,
}

/// A checked call: what is dispatched.
#[derive(Debug)]
struct Dispatch<'a> {
    workflow: &'a str,
    git_ref: &'a str,
    body: Value,
}

impl GithubActions {
    /// Checks the settings and the API URL and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Config`] for an empty or malformed token, owner, repo, workflow or
    /// `key_input`; [`SinkError::Refused`] for an API URL the outbound policy refuses;
    /// [`SinkError::Params`] (field `api_url`) for one that does not parse.
    pub fn new(config: GithubActionsConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        check_token(config.token.expose())?;
        check_owner(&config.owner)?;
        check_repo(&config.repo)?;
        if let Some(w) = &config.workflow {
            check_workflow(w).map_err(|m| SinkError::Config(format!("workflow: {m}")))?;
        }
        if let Some(k) = &config.key_input {
            check_input_name(k).map_err(|m| SinkError::Config(format!("key_input: {m}")))?;
        }
        let http = HttpSink::new(
            "github_actions",
            ctx,
            vec![config.token.expose().to_owned()],
        )?;
        let base = http.check_url("api_url", &config.api_url)?;
        if !base.username().is_empty() || base.password().is_some() {
            // The token is the credential; a URL with user info would also leak into logs.
            return Err(SinkError::Config(
                "api_url must not contain credentials (put the token in `token`)".into(),
            ));
        }
        Ok(GithubActions {
            host: host_of(&base),
            base,
            token: config.token,
            owner: config.owner,
            repo: config.repo,
            workflow: config.workflow,
            key_input: config.key_input,
            return_run_details: config.return_run_details,
            http,
        })
    }

    /// Checks `p` and builds the request body; `key` is the idempotency key (sent only as the
    /// configured `key_input`).
    fn dispatch<'a>(&'a self, p: &'a Params, key: &str) -> Result<Dispatch<'a>, SinkError> {
        params::only_known(p, KNOWN)?;
        let workflow = match params::opt_str(p, "workflow")? {
            Some(w) => {
                check_workflow(w).map_err(|m| SinkError::params("workflow", m))?;
                w
            }
            None => self.workflow.as_deref().ok_or_else(|| {
                SinkError::params("workflow", "is required (the provider configures none)")
            })?,
        };
        let git_ref = params::req_str(p, "ref")?;
        check_ref(git_ref).map_err(|m| SinkError::params("ref", m))?;
        let mut inputs = Map::new();
        if let Some(given) = params::opt_object(p, "inputs")? {
            for (name, value) in given {
                let field = input_field(name);
                check_input_name(name).map_err(|m| SinkError::params(field.clone(), m))?;
                if self.key_input.as_deref() == Some(name.as_str()) {
                    return Err(SinkError::params(
                        field,
                        "is set by the provider to the idempotency key (key_input)",
                    ));
                }
                match value {
                    // Workflow inputs are strings, choices, numbers, booleans or environments:
                    // scalars, sent as strings. GitHub types each from the workflow's declared
                    // input type (a boolean input is a boolean in the `inputs` context), and
                    // GitHub Enterprise Server versions and clients answer 422 for a value that
                    // is not a string.
                    Value::String(_) => {
                        inputs.insert(name.clone(), value.clone());
                    }
                    Value::Number(n) => {
                        inputs.insert(name.clone(), Value::String(n.to_string()));
                    }
                    Value::Bool(b) => {
                        inputs.insert(name.clone(), Value::String(b.to_string()));
                    }
                    other => {
                        return Err(SinkError::params(
                            field,
                            format!(
                                "must be a string, number or boolean, got {}",
                                type_name(other)
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(k) = &self.key_input {
            inputs.insert(k.clone(), json!(key));
        }
        if inputs.len() > MAX_INPUTS {
            let own = if self.key_input.is_some() {
                " (one of them is key_input)"
            } else {
                ""
            };
            return Err(SinkError::params(
                "inputs",
                format!(
                    "{} inputs{own}; GitHub accepts at most {MAX_INPUTS}",
                    inputs.len()
                ),
            ));
        }
        let inputs = Value::Object(inputs);
        let chars = inputs.to_string().chars().count();
        if chars > MAX_INPUTS_CHARS {
            return Err(SinkError::params(
                "inputs",
                format!("{chars} characters; GitHub accepts at most {MAX_INPUTS_CHARS}"),
            ));
        }
        let mut body = Map::new();
        body.insert("ref".into(), json!(git_ref));
        if inputs.as_object().is_some_and(|m| !m.is_empty()) {
            body.insert("inputs".into(), inputs);
        }
        if self.return_run_details {
            body.insert("return_run_details".into(), json!(true));
        }
        Ok(Dispatch {
            workflow,
            git_ref,
            body: Value::Object(body),
        })
    }

    /// `owner/repo/workflow`: what a call acts on, for targets, outputs and messages.
    fn workflow_target(&self, workflow: &str) -> String {
        format!("{}/{}/{workflow}", self.owner, self.repo)
    }

    /// Rewrites an error answer into one that says who must act (GitHub's message and a hint).
    fn explain(&self, err: SinkError, target: &str) -> SinkError {
        let (status, body_excerpt) = match err {
            SinkError::Http {
                status,
                body_excerpt,
            } => (status, body_excerpt),
            other => return other,
        };
        let message = error_message(&body_excerpt);
        let lower = message.to_ascii_lowercase();
        if matches!(status, 403 | 429) && lower.contains("rate limit") {
            // GitHub answers a (secondary) rate limit with 403 as well as 429: both pass.
            return SinkError::Service {
                code: i64::from(status),
                message: format!("github_actions {target}: rate limited by GitHub: {message}"),
                retryable: true,
            };
        }
        let hint = match status {
            401 => "the token is invalid, expired or revoked",
            403 => {
                "the token may not dispatch workflows here: a fine-grained token needs Actions \
                 write on the repository, a classic token the repo scope, a GitHub App \
                 actions: write"
            }
            404 => {
                "the repository, the workflow or the ref does not exist, or the token cannot \
                 see the repository"
            }
            422 => {
                "GitHub refused the dispatch: check the ref, that the workflow has a \
                 workflow_dispatch trigger and declares every input sent"
            }
            _ => "",
        };
        let text = if hint.is_empty() {
            format!("github_actions {target}: {message}")
        } else {
            format!("github_actions {target}: {message} ({hint})")
        };
        SinkError::Http {
            status,
            body_excerpt: truncate(&self.http.redact(&text), EXCERPT_BYTES).to_owned(),
        }
    }
}

/// The field naming an input in errors: `inputs.NAME` for a short name, else `inputs` (a
/// hostile name should not make a huge field).
fn input_field(name: &str) -> String {
    if name.len() <= 64 && !name.chars().any(char::is_control) {
        format!("inputs.{name}")
    } else {
        "inputs".to_owned()
    }
}

/// GitHub account names: letters, digits and single hyphens, at most 39.
fn check_owner(owner: &str) -> Result<(), SinkError> {
    let ok = !owner.is_empty()
        && owner.len() <= 39
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(SinkError::Config(
            "owner must be a GitHub account name (letters, digits, hyphens; at most 39)".into(),
        ))
    }
}

/// Repository names: letters, digits, `.`, `_`, `-`, at most 100, not `.` or `..`.
fn check_repo(repo: &str) -> Result<(), SinkError> {
    let ok = !repo.is_empty()
        && repo.len() <= 100
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !repo.contains("..")
        && repo != ".";
    if ok {
        Ok(())
    } else {
        Err(SinkError::Config(
            "repo must be a repository name (letters, digits, '.', '_', '-'; at most 100)".into(),
        ))
    }
}

/// A workflow file name (`deploy.yml`) or numeric id: one safe path segment.
fn check_workflow(w: &str) -> Result<(), String> {
    if w.is_empty() {
        return Err("must not be empty".into());
    }
    if w.len() > MAX_WORKFLOW_BYTES {
        return Err(format!("must be at most {MAX_WORKFLOW_BYTES} bytes"));
    }
    if w.contains('/') || w.contains('\\') || w.contains("..") {
        return Err("must be a file name such as deploy.yml or a numeric id, not a path".into());
    }
    let charset = w
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let numeric = w.chars().all(|c| c.is_ascii_digit());
    let file = w.ends_with(".yml") || w.ends_with(".yaml");
    if !charset || !(numeric || file) {
        return Err("must be a workflow file name (.yml or .yaml) or a numeric id".into());
    }
    Ok(())
}

/// A branch or tag name as git accepts it (the parts of `git check-ref-format` that matter).
fn check_ref(r: &str) -> Result<(), String> {
    if r.len() > MAX_REF_BYTES {
        return Err(format!("must be at most {MAX_REF_BYTES} bytes"));
    }
    let bad_char = r
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad_char
        || r.contains("..")
        || r.contains("@{")
        || r.contains("//")
        || r.starts_with('/')
        || r.ends_with('/')
        || r.ends_with('.')
        || r.ends_with(".lock")
    {
        return Err("must be a branch or tag name".into());
    }
    Ok(())
}

/// Workflow input ids: a letter or `_` first, then letters, digits, `-`, `_`.
fn check_input_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
        Ok(())
    } else {
        Err(
            "an input name starts with a letter or '_' and has only letters, digits, '-', '_'"
                .into(),
        )
    }
}

/// A string of the answer, bounded and secret-free, for the output.
fn bounded(http: &HttpSink, v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?;
    Some(truncate(&http.redact(s), MAX_URL_BYTES).to_owned())
}

#[async_trait::async_trait]
impl Provider for GithubActions {
    fn kind(&self) -> &'static str {
        "github_actions"
    }

    fn target(&self, call: &EffectCall<'_>) -> String {
        match self.dispatch(call.params, call.idempotency_key) {
            Ok(d) => self.workflow_target(d.workflow),
            Err(_) => format!("{}/{}", self.owner, self.repo),
        }
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        self.dispatch(p, "validate").map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let d = self.dispatch(call.params, call.idempotency_key)?;
        let target = self.workflow_target(d.workflow);
        // Every part was checked to be one plain path segment, so the path cannot be bent.
        let url = join(
            &self.base,
            &format!(
                "repos/{}/{}/actions/workflows/{}/dispatches",
                self.owner, self.repo, d.workflow
            ),
        );
        let req = self
            .http
            .client()
            .post(url)
            .bearer_auth(self.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .json(&d.body);
        let reply = self
            .http
            .send(req, &self.host, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| self.explain(e, &target))?;
        let mut response = json!({"workflow": target, "ref": d.git_ref});
        if let Some(v) = reply.json() {
            if let Some(id) = v.get("workflow_run_id").and_then(Value::as_u64) {
                response["workflow_run_id"] = json!(id);
            }
            if let Some(u) = bounded(&self.http, v.get("html_url")) {
                response["html_url"] = json!(u);
            }
            if let Some(u) = bounded(&self.http, v.get("run_url")) {
                response["run_url"] = json!(u);
            }
        }
        tracing::info!(kind = "github_actions", host = %self.host, workflow = %target, status = reply.status, "workflow dispatched");
        Ok(EffectOutput {
            status: "dispatched".into(),
            response,
        })
    }
}
