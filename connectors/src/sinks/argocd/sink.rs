//! The running `argocd` provider: one application sync per call.

use super::config::ArgoCdConfig;
use crate::sinks::params::{self, Params, type_name};
use crate::sinks::registry::ProviderContext;
use crate::sinks::transport::{
    EXCERPT_BYTES, HttpSink, check_token, error_message, host_of, join, truncate,
};
use crate::sinks::{EffectCall, EffectOutput, Provider, Secret, SinkError};
use serde_json::{Map, Value, json};

const KNOWN: &[&str] = &["application", "revision", "prune"];
/// Kubernetes' limit on a resource name (RFC 1123 subdomain).
const MAX_NAME: usize = 253;
/// Kubernetes' limit on a namespace name (RFC 1123 label).
const MAX_NAMESPACE: usize = 63;
/// Longest revision accepted (a commit, branch, tag or chart version).
const MAX_REVISION_BYTES: usize = 255;
/// The answer is the whole Application, whose status lists every resource: large apps answer
/// megabytes. Read this much at most (see [`ArgoCd::call`] for a bigger answer).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Longest string kept from the answer in the output.
const OUTPUT_STRING_BYTES: usize = 256;
/// The name of the operation info carrying the effect's idempotency key.
const INFO_NAME: &str = "aiops-effect";
/// Argo CD's message when the application already has an operation (gRPC FailedPrecondition,
/// HTTP 400).
const IN_PROGRESS: &str = "another operation is already in progress";

/// The parts of an Application this provider reads; serde skips the rest (the resource list
/// can be megabytes) without keeping it.
#[derive(Debug, Default, serde::Deserialize)]
struct App {
    /// The requested operation; set until the controller finishes it.
    #[serde(default)]
    operation: Option<Operation>,
    #[serde(default)]
    status: Option<AppStatus>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AppStatus {
    #[serde(default, rename = "operationState")]
    operation_state: Option<OperationState>,
}

/// The state of the operation the controller runs or ran last.
#[derive(Debug, Default, serde::Deserialize)]
struct OperationState {
    #[serde(default)]
    phase: Option<String>,
    /// The operation this state is of.
    #[serde(default)]
    operation: Option<Operation>,
    #[serde(default, rename = "syncResult")]
    sync_result: Option<SyncResult>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct Operation {
    #[serde(default)]
    sync: Option<SyncResult>,
    #[serde(default)]
    info: Option<Vec<Info>>,
}

/// `operation.sync` and `operationState.syncResult`: only the revision is read.
#[derive(Debug, Default, serde::Deserialize)]
struct SyncResult {
    #[serde(default)]
    revision: Option<String>,
}

/// One `{name, value}` of an operation's `info`.
#[derive(Debug, Default, serde::Deserialize)]
struct Info {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

impl Operation {
    /// Whether this operation was started by the effect with idempotency key `key`.
    fn carries(&self, key: &str) -> bool {
        self.info
            .iter()
            .flatten()
            .any(|i| i.name.as_deref() == Some(INFO_NAME) && i.value.as_deref() == Some(key))
    }
}

/// Syncs applications of one Argo CD.
#[derive(Debug)]
pub struct ArgoCd {
    base: url::Url,
    host: String,
    token: Secret,
    app_namespace: Option<String>,
    http: HttpSink,
}

/// A checked call.
#[derive(Debug)]
struct SyncCall<'a> {
    application: &'a str,
    body: Value,
}

impl ArgoCd {
    /// Checks the settings and the server URL and builds the client.
    ///
    /// # Errors
    /// [`SinkError::Config`] for an empty or malformed token or namespace, or a URL with
    /// credentials; [`SinkError::Refused`] for a server URL the outbound policy refuses;
    /// [`SinkError::Params`] (field `server`) for one that does not parse.
    pub fn new(config: ArgoCdConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        check_token(config.token.expose())?;
        if let Some(ns) = &config.app_namespace
            && !is_dns1123_label(ns)
        {
            return Err(SinkError::Config(format!(
                "app_namespace must be a Kubernetes namespace name (lowercase letters, digits, \
                 '-'; at most {MAX_NAMESPACE})"
            )));
        }
        let http = HttpSink::new("argocd", ctx, vec![config.token.expose().to_owned()])?;
        let base = http.check_url("server", &config.server)?;
        if !base.username().is_empty() || base.password().is_some() {
            return Err(SinkError::Config(
                "server must not contain credentials (put the token in `token`)".into(),
            ));
        }
        Ok(ArgoCd {
            host: host_of(&base),
            base,
            token: config.token,
            app_namespace: config.app_namespace,
            http,
        })
    }

    /// Checks `p` and builds the `ApplicationSyncRequest`; `key` is the idempotency key.
    fn sync<'a>(&self, p: &'a Params, key: &str) -> Result<SyncCall<'a>, SinkError> {
        params::only_known(p, KNOWN)?;
        let application = params::req_str(p, "application")?;
        if !is_dns1123_subdomain(application) {
            return Err(SinkError::params(
                "application",
                format!(
                    "must be an application name: lowercase letters, digits, '-' and '.', \
                     starting and ending with a letter or digit, at most {MAX_NAME}"
                ),
            ));
        }
        let revision = params::opt_str(p, "revision")?;
        if let Some(r) = revision {
            let bad = r.is_empty()
                || r.len() > MAX_REVISION_BYTES
                || r.chars().any(|c| c.is_whitespace() || c.is_control());
            if bad {
                return Err(SinkError::params(
                    "revision",
                    format!(
                        "must be a commit, branch, tag or chart version without spaces, at most \
                         {MAX_REVISION_BYTES} bytes"
                    ),
                ));
            }
        }
        let prune = opt_bool(p, "prune")?.unwrap_or(false);
        let mut body = Map::new();
        body.insert("name".into(), json!(application));
        if let Some(r) = revision {
            body.insert("revision".into(), json!(r));
        }
        body.insert("prune".into(), json!(prune));
        body.insert("dryRun".into(), json!(false));
        body.insert("strategy".into(), json!({"hook": {}}));
        if let Some(ns) = &self.app_namespace {
            body.insert("appNamespace".into(), json!(ns));
        }
        body.insert("infos".into(), json!([{"name": INFO_NAME, "value": key}]));
        Ok(SyncCall {
            application,
            body: Value::Object(body),
        })
    }

    /// `namespace/application`, or the application alone without `app_namespace`.
    fn app_target(&self, application: &str) -> String {
        match &self.app_namespace {
            Some(ns) => format!("{ns}/{application}"),
            None => application.to_owned(),
        }
    }

    /// Rewrites an error answer into one that says who must act.
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
        let hint = match status {
            401 => "the token is invalid, expired or revoked",
            403 if lower.contains("sync window") => "a sync window of the project blocks syncs now",
            403 => {
                "the token's account lacks RBAC `applications, sync` on this application, or the \
                 application does not exist (Argo CD answers 403 for both; check the name and \
                 app_namespace)"
            }
            404 => "the application does not exist",
            400 if lower.contains(IN_PROGRESS) => {
                "another operation (a sync) is already in progress on this application: wait \
                 for it to finish, or terminate it (argocd app terminate-op)"
            }
            _ => "",
        };
        let text = if hint.is_empty() {
            format!("argocd {target}: {message}")
        } else {
            format!("argocd {target}: {message} ({hint})")
        };
        SinkError::Http {
            status,
            body_excerpt: truncate(&self.http.redact(&text), EXCERPT_BYTES).to_owned(),
        }
    }

    /// What the answer says about the operation: a bounded, secret-free summary. `op` is the
    /// operation requested, `state` the state of that operation when known.
    fn summary(
        &self,
        application: &str,
        op: Option<&Operation>,
        state: Option<&OperationState>,
    ) -> (String, Value) {
        let mut out = json!({"application": self.app_target(application)});
        let text = |v: Option<&String>| {
            v.filter(|s| !s.is_empty())
                .map(|s| truncate(&self.http.redact(s), OUTPUT_STRING_BYTES).to_owned())
        };
        // The server resolves the revision it was asked for (or the target revision) into the
        // operation it sets; the operation state is usually still empty in this answer (the
        // controller starts it), so both are optional.
        let revision = text(op.and_then(|o| o.sync.as_ref()?.revision.as_ref()))
            .or_else(|| text(state.and_then(|s| s.sync_result.as_ref()?.revision.as_ref())));
        if let Some(r) = revision {
            out["revision"] = json!(r);
        }
        let phase = text(state.and_then(|s| s.phase.as_ref()));
        if let Some(p) = &phase {
            out["phase"] = json!(p);
        }
        (phase.unwrap_or_else(|| "sync started".into()), out)
    }

    /// After "another operation is already in progress": reads the application and answers
    /// for the effect if the operation in progress (or just finished) is its own, one sent
    /// before a crash whose result was never logged. Otherwise `refused` stands, explained.
    async fn resent(
        &self,
        application: &str,
        key: &str,
        target: &str,
        refused: SinkError,
    ) -> Result<EffectOutput, SinkError> {
        let mut url = join(&self.base, &format!("api/v1/applications/{application}"));
        if let Some(ns) = &self.app_namespace {
            // For a GET the namespace is a query parameter (there is no body).
            url.query_pairs_mut().append_pair("appNamespace", ns);
        }
        let req = self.http.client().get(url).bearer_auth(self.token.expose());
        let app = match self
            .http
            .send_capped(req, &self.host, MAX_ANSWER_BYTES)
            .await
        {
            Ok(reply) => reply.parse::<App>(),
            // Could not look: retrying may find out (the sync is sent again, refused again
            // while it runs, and the application read again).
            Err(e) if e.retryable() => return Err(self.explain(e, target)),
            // Not allowed to read it (RBAC `applications, get`) or gone: the refusal stands.
            Err(_) => None,
        };
        let Some(app) = app else {
            return Err(self.explain(refused, target));
        };
        let state = app.status.and_then(|s| s.operation_state);
        let state_ours = state
            .as_ref()
            .and_then(|s| s.operation.as_ref())
            .is_some_and(|o| o.carries(key));
        let op_ours = app.operation.as_ref().is_some_and(|o| o.carries(key));
        if !op_ours && !state_ours {
            return Err(self.explain(refused, target));
        }
        let state = state.filter(|_| state_ours);
        let op = if op_ours {
            app.operation.as_ref()
        } else {
            state.as_ref().and_then(|s| s.operation.as_ref())
        };
        let (phase, mut response) = self.summary(application, op, state.as_ref());
        response["resent"] = json!(true);
        let status = format!("{phase} (resent)");
        tracing::info!(kind = "argocd", host = %self.host, application = %target, status = %status, "sync already running for this effect");
        Ok(EffectOutput { status, response })
    }
}

/// Whether `e` is Argo CD's refusal of a sync because the application has an operation.
fn is_in_progress(e: &SinkError) -> bool {
    match e {
        SinkError::Http {
            status: 400,
            body_excerpt,
        } => error_message(body_excerpt)
            .to_ascii_lowercase()
            .contains(IN_PROGRESS),
        _ => false,
    }
}

/// An optional boolean; `"true"`/`"false"` are accepted too, since rendered templates are text.
fn opt_bool(p: &Params, field: &str) -> Result<Option<bool>, SinkError> {
    match p.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.trim() == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s.trim() == "false" => Ok(Some(false)),
        Some(v) => Err(SinkError::params(
            field,
            format!("must be true or false, got {}", type_name(v)),
        )),
    }
}

/// A lowercase RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAMESPACE
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A lowercase RFC 1123 subdomain: labels joined by `.`, at most 253 in all (Kubernetes'
/// rule for resource names, so no `/`, `%`, `?` or `..` can reach the URL path).
fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[async_trait::async_trait]
impl Provider for ArgoCd {
    fn kind(&self) -> &'static str {
        "argocd"
    }

    fn target(&self, call: &EffectCall<'_>) -> String {
        match self.sync(call.params, call.idempotency_key) {
            Ok(s) => self.app_target(s.application),
            Err(_) => self.host.clone(),
        }
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        self.sync(p, "validate").map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let s = self.sync(call.params, call.idempotency_key)?;
        let target = self.app_target(s.application);
        // The name is an RFC 1123 subdomain: one plain path segment.
        let url = join(
            &self.base,
            &format!("api/v1/applications/{}/sync", s.application),
        );
        let req = self
            .http
            .client()
            .post(url)
            .bearer_auth(self.token.expose())
            .json(&s.body);
        let reply = match self
            .http
            .send_capped(req, &self.host, MAX_ANSWER_BYTES)
            .await
        {
            Ok(reply) => reply,
            Err(e) if is_in_progress(&e) => {
                return self
                    .resent(s.application, call.idempotency_key, &target, e)
                    .await;
            }
            Err(e) => return Err(self.explain(e, &target)),
        };
        // An answer too big to keep (`truncated`) is a started sync all the same: reporting a
        // failure would make an operator run it again.
        let app = reply.parse::<App>().unwrap_or_default();
        let state = app.status.and_then(|st| st.operation_state);
        let (status, response) =
            self.summary(s.application, app.operation.as_ref(), state.as_ref());
        tracing::info!(kind = "argocd", host = %self.host, application = %target, status = %status, "sync requested");
        Ok(EffectOutput { status, response })
    }
}
