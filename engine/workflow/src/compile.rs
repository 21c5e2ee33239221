//! Checks a workflow file and compiles it: triggers with their filters, steps and actions with
//! their templates checked, durations parsed, provider instances resolved. A file that does not
//! compile is refused with file, line and reason (DESIGN.md invariant 5).

use crate::filter::Filter;
use crate::spec::{ApprovalSpec, ProviderSpec, StepSpec, TriggerSpec, WorkflowFile, WorkflowSpec};
use crate::template::Renderer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Kinds the engine runs itself (no provider instance needed). The built-in providers
/// ([`crate::builtin::PROVIDER_KINDS`]) need none either.
pub const BUILTIN_KINDS: &[&str] = &["sql", "verify"];
/// Default per-action blast radius.
pub const DEFAULT_BLAST_RADIUS: usize = 10;

/// Why a workflow file was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{file}:{line}: {message}")]
pub struct CompileError {
    /// The file.
    pub file: String,
    /// 1-based line (the closest line the problem can be tied to).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// At most 1,024 characters of a parser's message, control characters escaped: serde quotes
/// the offending scalar whole (`invalid type: string "<a megabyte>"`), and the message goes into
/// API answers and the log.
pub fn bounded_message(s: &str) -> String {
    const MAX: usize = 1024;
    let n = s.chars().count();
    if n <= MAX && !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars().take(MAX) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if n > MAX {
        out.push_str(&format!("… ({} bytes)", s.len()));
    }
    out
}

/// What the compiler needs to know about configured providers and secrets.
pub trait Catalog: Send + Sync {
    /// The kind of the configured provider instance `name`.
    fn provider_kind(&self, name: &str) -> Option<String>;
    /// Names of configured providers (for error messages).
    fn provider_names(&self) -> Vec<String>;
    /// True when a secret with this name is configured.
    fn has_secret(&self, name: &str) -> bool;
    /// Names of configured secrets (the values stay out of the engine).
    fn secret_names(&self) -> Vec<String>;
    /// Checks rendered parameters for provider `name` (no side effects).
    ///
    /// # Errors
    /// What is wrong with them.
    fn validate(&self, name: &str, params: &Map<String, Value>) -> Result<(), String>;
    /// The target of a call (rate limits, audit).
    fn target(&self, name: &str, params: &Map<String, Value>) -> String;
    /// Checks a literal (template-free) absolute URL a step gives provider `name` against the
    /// outbound guard, so a private or metadata target is refused when the workflow is saved
    /// rather than when it runs. The default allows everything (no guard known).
    ///
    /// # Errors
    /// Why the guard refuses it (the address class and where to allow it).
    fn check_url(&self, name: &str, url: &str) -> Result<(), String> {
        let _ = (name, url);
        Ok(())
    }
}

/// A catalog with no providers or secrets (checks of built-in-only workflows, tests).
#[derive(Debug, Default, Clone)]
pub struct StaticCatalog {
    /// Provider name → kind.
    pub providers: std::collections::BTreeMap<String, String>,
    /// Secret names.
    pub secrets: Vec<String>,
}

impl Catalog for StaticCatalog {
    fn provider_kind(&self, name: &str) -> Option<String> {
        self.providers.get(name).cloned()
    }
    fn provider_names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }
    fn has_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name)
    }
    fn secret_names(&self) -> Vec<String> {
        self.secrets.clone()
    }
    fn validate(&self, _: &str, _: &Map<String, Value>) -> Result<(), String> {
        Ok(())
    }
    fn target(&self, name: &str, params: &Map<String, Value>) -> String {
        for k in ["target", "url", "to", "command", "project", "channel"] {
            if let Some(v) = params.get(k) {
                return match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
            }
        }
        name.to_string()
    }
}

/// A compiled trigger.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Alert state changes (`alert.status`: firing, resolved, stale_resolved, flapping, …).
    Alert(Vec<Filter>),
    /// Incident changes of the listed kinds.
    Incident(Vec<Filter>, Vec<String>),
    /// Notification intents of the alerting engine (after routing, grouping, silences).
    Notification(Vec<Filter>),
    /// Events of a kind (`anomaly`, `deploy`, …).
    Event(Option<String>, Vec<Filter>),
    /// A cron schedule (UTC, in log time).
    Schedule(Box<cron::Schedule>, String),
    /// `POST /api/workflows/{id}/execute`.
    Manual,
}

/// What an item does after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flow {
    /// Next item.
    Next,
    /// Finish the execution as succeeded.
    Finish,
    /// Fail the execution (and escalate).
    Fail,
    /// Jump to item `n`.
    Goto(usize),
}

/// A provider call as compiled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Call {
    /// Provider kind.
    pub kind: String,
    /// Provider instance (none for built-ins).
    pub provider: Option<String>,
    /// Parameters (templates).
    pub with: Map<String, Value>,
}

/// Approval settings of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Role the approver must have.
    pub role: String,
    /// Then escalate.
    pub timeout_ms: i64,
}

/// A step or action, compiled.
#[derive(Debug, Clone)]
pub struct Item {
    /// Name (unique in its workflow).
    pub name: String,
    /// True for actions (rate limits and blast radius apply), false for enrichment steps.
    pub is_action: bool,
    /// Condition.
    pub if_: Option<String>,
    /// List expression.
    pub foreach: Option<String>,
    /// The call.
    pub call: Call,
    /// Attempts in all (1 + retries).
    pub attempts: u32,
    /// First backoff.
    pub backoff_ms: i64,
    /// Per attempt.
    pub timeout_ms: i64,
    /// Approval, when required.
    pub approval: Option<Approval>,
    /// Most targets.
    pub blast_radius: usize,
    /// After success.
    pub on_success: Flow,
    /// After failure.
    pub on_failure: Flow,
}

/// Throttle settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    /// Key template.
    pub key: String,
    /// Until the alert or incident resolves.
    pub until_resolved: bool,
    /// Or this long.
    pub for_ms: Option<i64>,
}

/// A compiled workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Id.
    pub id: String,
    /// Description.
    pub description: String,
    /// Never triggered when set.
    pub disabled: bool,
    /// Triggers.
    pub triggers: Vec<Trigger>,
    /// Steps then actions.
    pub items: Arc<Vec<Item>>,
    /// Running executions at once.
    pub concurrency: usize,
    /// Waiting executions.
    pub queue: usize,
    /// Throttle.
    pub throttle: Option<Throttle>,
    /// Escalation call.
    pub escalate: Option<Call>,
    /// The source file.
    pub file: String,
    /// The workflow as written (served by the API).
    pub spec: WorkflowSpec,
}

/// The line of the first occurrence of `needle` in `text` (1 when absent).
pub fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map(|i| text[..i].matches('\n').count() + 1)
        .unwrap_or(1)
}

/// Parses a duration (`30s`, `5m`, `1h30m`) to ms.
///
/// # Errors
/// The reason.
pub fn duration_ms(s: &str) -> Result<i64, String> {
    humantime::parse_duration(s.trim())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|e| format!("bad duration {s:?}: {e}"))
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    renderer: &'a Renderer,
    catalog: &'a dyn Catalog,
}

impl Ctx<'_> {
    fn err(&self, near: &str, message: impl Into<String>) -> CompileError {
        CompileError {
            file: self.file.to_string(),
            line: line_of(self.text, near),
            message: message.into(),
        }
    }
}

/// Parses and compiles a workflow file's text.
///
/// # Errors
/// [`CompileError`] with the line.
pub fn compile_text(
    file: &str,
    text: &str,
    catalog: &dyn Catalog,
    renderer: &Renderer,
) -> Result<Workflow, CompileError> {
    let parsed: WorkflowFile = aiops_alerting::yaml::from_str(text).map_err(|e| CompileError {
        file: file.to_string(),
        line: e.line().unwrap_or(1),
        message: bounded_message(&e.to_string()),
    })?;
    let cx = Ctx {
        file,
        text,
        renderer,
        catalog,
    };
    compile_spec(&cx, parsed.workflow)
}

/// The rule every id that becomes a file name or a storage key follows (workflow and strategy
/// ids): it keeps `..`, `/`, case-folding file systems and over-long names out of paths.
pub const ID_RULE: &str = "[a-z0-9][a-z0-9_-]{0,62}";

/// Checks `id` against [`ID_RULE`].
///
/// # Errors
/// `"{what} {id:?} must match {ID_RULE} …"`: the author must choose another id.
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    let ok = id.len() <= 63
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {id:?} must match {ID_RULE} (lowercase letters, digits, `_` and `-`, \
             starting with a letter or digit, at most 63 characters)"
        ))
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn compile_spec(cx: &Ctx<'_>, spec: WorkflowSpec) -> Result<Workflow, CompileError> {
    if let Err(m) = check_id("workflow id", &spec.id) {
        return Err(cx.err("id:", m));
    }
    if spec.triggers.is_empty() {
        return Err(cx.err("triggers", "a workflow needs at least one trigger"));
    }
    let triggers = spec
        .triggers
        .iter()
        .map(|t| compile_trigger(cx, t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut items = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (is_action, list) in [(false, &spec.steps), (true, &spec.actions)] {
        for s in list {
            if !names.insert(s.name.clone()) {
                return Err(cx.err(
                    &format!("name: {}", s.name),
                    format!("step name {:?} is used twice", s.name),
                ));
            }
            items.push(compile_item(cx, s, is_action)?);
        }
    }
    if items.is_empty() {
        return Err(cx.err("workflow:", "a workflow needs at least one step or action"));
    }
    let throttle = match &spec.throttle {
        None => None,
        Some(t) => {
            let key = t
                .key
                .clone()
                .unwrap_or_else(|| "{{ alert.fingerprint }}".into());
            cx.renderer
                .check(&key)
                .map_err(|e| cx.err("throttle", e.to_string()))?;
            let until_resolved = match t.until.as_deref() {
                None => false,
                Some("resolved") => true,
                Some(o) => {
                    return Err(cx.err(
                        "until:",
                        format!("throttle.until must be \"resolved\", got {o:?}"),
                    ));
                }
            };
            let for_ms = t
                .for_
                .as_deref()
                .map(duration_ms)
                .transpose()
                .map_err(|e| cx.err("throttle", format!("throttle.for: {e}")))?;
            if !until_resolved && for_ms.is_none() {
                return Err(cx.err(
                    "throttle",
                    "throttle needs `until: resolved` or `for: <duration>`",
                ));
            }
            Some(Throttle {
                key,
                until_resolved,
                for_ms,
            })
        }
    };
    let escalate = spec
        .escalate
        .as_ref()
        .map(|p| compile_call(cx, p, "escalate"))
        .transpose()?;
    Ok(Workflow {
        id: spec.id.clone(),
        description: spec.description.clone(),
        disabled: spec.disabled,
        triggers,
        items: Arc::new(items),
        concurrency: spec.concurrency.unwrap_or(4).max(1),
        queue: spec.queue.unwrap_or(100),
        throttle,
        escalate,
        file: cx.file.to_string(),
        spec,
    })
}

fn compile_trigger(cx: &Ctx<'_>, t: &TriggerSpec) -> Result<Trigger, CompileError> {
    let near = format!("type: {}", t.kind);
    let filters = t
        .filters
        .iter()
        .map(|f| Filter::new(&f.key, &f.value).map_err(|e| cx.err(&f.key, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let only = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(cx.err(
                &near,
                format!("`{what}` is not allowed on a {} trigger", t.kind),
            ))
        }
    };
    only("events", t.events.is_empty() || t.kind == "incident")?;
    only("cron", t.cron.is_none() || t.kind == "schedule")?;
    only("kind", t.event_kind.is_none() || t.kind == "event")?;
    Ok(match t.kind.as_str() {
        "alert" => Trigger::Alert(filters),
        "notification" => Trigger::Notification(filters),
        "incident" => {
            let events = if t.events.is_empty() {
                vec!["opened".to_string()]
            } else {
                t.events.clone()
            };
            for e in &events {
                if !matches!(
                    e.as_str(),
                    "opened" | "updated" | "acknowledged" | "resolved"
                ) {
                    return Err(cx.err(
                        e,
                        format!(
                            "incident event {e:?} is not one of opened, updated, acknowledged, resolved"
                        ),
                    ));
                }
            }
            Trigger::Incident(filters, events)
        }
        "event" => Trigger::Event(t.event_kind.clone(), filters),
        "schedule" => {
            let Some(expr) = &t.cron else {
                return Err(cx.err(&near, "a schedule trigger needs `cron: \"<expression>\"`"));
            };
            Trigger::Schedule(
                Box::new(parse_cron(expr).map_err(|e| cx.err(expr, e))?),
                expr.clone(),
            )
        }
        "manual" => {
            only("filters", filters.is_empty())?;
            Trigger::Manual
        }
        other => {
            return Err(cx.err(
                &near,
                format!(
                    "unknown trigger type {other:?} (alert, incident, notification, event, schedule, manual)"
                ),
            ));
        }
    })
}

/// Parses a cron expression: 5 fields (minute first) or 6–7 (seconds first).
///
/// # Errors
/// The reason.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    use std::str::FromStr;
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("bad cron expression {expr:?}: {e}"))
}

fn compile_call(cx: &Ctx<'_>, p: &ProviderSpec, near: &str) -> Result<Call, CompileError> {
    let provider = match &p.config {
        None => None,
        Some(c) => {
            let c = c.trim();
            let name = c
                .strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
                .map(str::trim)
                .map(|r| r.strip_prefix("providers.").unwrap_or(r))
                .unwrap_or(c);
            Some(name.to_string())
        }
    };
    if crate::builtin::is_builtin_provider(&p.kind) {
        return compile_builtin_provider(cx, p, provider.as_deref(), near);
    }
    let builtin = BUILTIN_KINDS.contains(&p.kind.as_str());
    match (&provider, builtin) {
        (Some(name), false) => match cx.catalog.provider_kind(name) {
            None => {
                return Err(cx.err(
                    name,
                    format!(
                        "{near}: no provider {name:?} is configured (configured: {})",
                        configured_names(cx.catalog)
                    ),
                ));
            }
            Some(kind) if kind != p.kind => {
                return Err(cx.err(
                    name,
                    format!(
                        "{near}: provider {name:?} is of type {kind:?}, not {:?}",
                        p.kind
                    ),
                ));
            }
            Some(_) => {}
        },
        (None, false) => {
            return Err(cx.err(
                &format!("type: {}", p.kind),
                format!(
                    "{near}: provider type {:?} needs `config: \"{{{{ providers.NAME }}}}\"` naming a configured provider",
                    p.kind
                ),
            ));
        }
        (_, true) => {}
    }
    check_templates(cx, &Value::Object(p.with.clone()), near)?;
    if let (Some(name), false) = (&provider, builtin) {
        // A literal absolute URL is checked against the outbound guard now (file:line), not
        // first when the step runs.
        if let Some(Value::String(url)) = p.with.get("url")
            && !url.contains("{{")
            && url.contains("://")
        {
            cx.catalog
                .check_url(name, url)
                .map_err(|e| cx.err(url, format!("{near}: url: {e}")))?;
        }
    }
    Ok(Call {
        kind: p.kind.clone(),
        provider: if builtin { None } else { provider },
        with: keep_aliases(&p.kind, &p.with),
    })
}

/// Keep's parameter names where an aiops provider spells them differently, so a Keep workflow
/// runs unchanged: Slack's `message` is aiops' `text` (taken only when `text` is not also set).
fn keep_aliases(kind: &str, with: &Map<String, Value>) -> Map<String, Value> {
    let mut out = with.clone();
    if kind == "slack"
        && !out.contains_key("text")
        && let Some(m) = out.remove("message")
    {
        out.insert("text".into(), m);
    }
    out
}

/// A built-in provider (`context-provider`, `incident-db`): named by `type` alone, served by the
/// engine's own data ([`crate::builtin`]).
fn compile_builtin_provider(
    cx: &Ctx<'_>,
    p: &ProviderSpec,
    config: Option<&str>,
    near: &str,
) -> Result<Call, CompileError> {
    let at = format!("type: {}", p.kind);
    if let Some(name) = config {
        return Err(cx.err(
            &at,
            format!(
                "{near}: {:?} is built in and takes no `config` (got {name:?}); remove it",
                p.kind
            ),
        ));
    }
    crate::builtin::check_params(&p.kind, &p.with)
        .map_err(|e| cx.err(&at, format!("{near}: {e}")))?;
    check_templates(cx, &Value::Object(p.with.clone()), near)?;
    let mut with = p.with.clone();
    for (k, v) in crate::builtin::default_params(&p.kind) {
        with.entry(k).or_insert(v);
    }
    Ok(Call {
        kind: p.kind.clone(),
        provider: None,
        with,
    })
}

/// The configured provider names for an error message.
fn configured_names(catalog: &dyn Catalog) -> String {
    let names = catalog.provider_names();
    if names.is_empty() {
        "none; add [workflows.providers.NAME] to the config".into()
    } else {
        names.join(", ")
    }
}

fn check_templates(cx: &Ctx<'_>, v: &Value, near: &str) -> Result<(), CompileError> {
    match v {
        Value::String(s) => {
            cx.renderer
                .check(s)
                .map_err(|e| cx.err(s, format!("{near}: {e}")))?;
            for name in secret_refs(s) {
                if !cx.catalog.has_secret(&name) {
                    return Err(cx.err(
                        s,
                        format!(
                            "{near}: secret {name:?} is not configured (set it under [secrets])"
                        ),
                    ));
                }
            }
            Ok(())
        }
        Value::Array(a) => a.iter().try_for_each(|x| check_templates(cx, x, near)),
        Value::Object(o) => o.values().try_for_each(|x| check_templates(cx, x, near)),
        _ => Ok(()),
    }
}

/// Names used as `secrets.NAME` in a template (a plain scan, enough to check them at load).
pub fn secret_refs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("secrets.") {
        let after = &rest[i + "secrets.".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name.clone());
        }
        rest = &after[name.len()..];
    }
    out
}

fn compile_item(cx: &Ctx<'_>, s: &StepSpec, is_action: bool) -> Result<Item, CompileError> {
    let near = format!("name: {}", s.name);
    if s.name == "escalate" {
        return Err(cx.err(
            &near,
            "step name \"escalate\" is reserved (the escalation's key)",
        ));
    }
    if !valid_id(&s.name) {
        return Err(cx.err(
            &near,
            format!("step name {:?} must be 1–128 of [A-Za-z0-9_.-]", s.name),
        ));
    }
    for e in [&s.if_, &s.foreach].into_iter().flatten() {
        cx.renderer
            .check_expression(e)
            .map_err(|er| cx.err(e, format!("step {}: {er}", s.name)))?;
    }
    let call = compile_call(cx, &s.provider, &format!("step {}", s.name))?;
    let (attempts, backoff_ms) = match &s.retry {
        None => (1, 1000),
        Some(r) => (
            r.count.unwrap_or(2).min(20) + 1,
            r.backoff
                .as_deref()
                .map(duration_ms)
                .transpose()
                .map_err(|e| cx.err(&near, format!("step {}: retry.backoff: {e}", s.name)))?
                .unwrap_or(1000),
        ),
    };
    let timeout_ms = s
        .timeout
        .as_deref()
        .map(duration_ms)
        .transpose()
        .map_err(|e| cx.err(&near, format!("step {}: timeout: {e}", s.name)))?
        .unwrap_or(30_000);
    let approval = match &s.approval {
        None => None,
        Some(ApprovalSpec::Word(w)) => match w.as_str() {
            "required" => Some(Approval {
                role: "approver".into(),
                timeout_ms: 3_600_000,
            }),
            "none" => None,
            o => {
                return Err(cx.err(
                    "approval",
                    format!(
                        "step {}: approval must be `required`, `none` or a table, got {o:?}",
                        s.name
                    ),
                ));
            }
        },
        Some(ApprovalSpec::Full {
            required,
            role,
            timeout,
        }) => {
            if required.unwrap_or(true) {
                Some(Approval {
                    role: role.clone().unwrap_or_else(|| "approver".into()),
                    timeout_ms: timeout
                        .as_deref()
                        .map(duration_ms)
                        .transpose()
                        .map_err(|e| {
                            cx.err(
                                "approval",
                                format!("step {}: approval.timeout: {e}", s.name),
                            )
                        })?
                        .unwrap_or(3_600_000),
                })
            } else {
                None
            }
        }
    };
    Ok(Item {
        name: s.name.clone(),
        is_action,
        if_: s.if_.clone(),
        foreach: s.foreach.clone(),
        call,
        attempts,
        backoff_ms,
        timeout_ms,
        approval,
        blast_radius: s.blast_radius.unwrap_or(DEFAULT_BLAST_RADIUS),
        on_success: Flow::Next,
        on_failure: if s.continue_on_failure {
            Flow::Next
        } else {
            Flow::Fail
        },
    })
}

/// Compiles a provider block outside a workflow (auto-heal remedies).
///
/// # Errors
/// [`CompileError`].
pub fn compile_step_in(
    file: &str,
    text: &str,
    spec: &StepSpec,
    is_action: bool,
    catalog: &dyn Catalog,
    renderer: &Renderer,
) -> Result<Item, CompileError> {
    let cx = Ctx {
        file,
        text,
        renderer,
        catalog,
    };
    compile_item(&cx, spec, is_action)
}

/// Compiles an escalation provider block outside a workflow (auto-heal strategies).
///
/// # Errors
/// [`CompileError`].
pub fn compile_call_in(
    file: &str,
    text: &str,
    spec: &ProviderSpec,
    catalog: &dyn Catalog,
    renderer: &Renderer,
) -> Result<Call, CompileError> {
    let cx = Ctx {
        file,
        text,
        renderer,
        catalog,
    };
    compile_call(&cx, spec, "escalate")
}
