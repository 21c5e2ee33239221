//! Auto-healing: a strategy library in YAML (`pipelines/autoheal/*.yaml`). A strategy matches
//! an incident (its services, alert names, severity, anomaly evidence) and lists ordered remedies;
//! each remedy is an action and a *verify* — a SQL condition over metrics evaluated in log time
//! after a settle delay. The loop diagnose → select → apply → verify → next remedy or escalate is
//! an ordinary execution of the workflow engine, so every step is an event in the log (and in the
//! incident's timeline).

use crate::compile::{
    Call, Catalog, CompileError, Flow, Item, compile_call_in, compile_step_in, duration_ms, line_of,
};
use crate::filter::{Filter, all_match};
use crate::spec::{ApprovalSpec, FilterSpec, ProviderSpec, RetrySpec, StepSpec};
use crate::template::Renderer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A strategy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyFile {
    /// Strategies, most preferred first.
    pub strategies: Vec<StrategySpec>,
}

/// A strategy as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySpec {
    /// Unique id.
    pub id: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Conditions on the incident (all must hold; across lists any element).
    #[serde(default, rename = "match")]
    pub match_: Vec<FilterSpec>,
    /// Remedies in order.
    pub remedies: Vec<RemedySpec>,
    /// When every remedy failed.
    #[serde(default)]
    pub escalate: Option<ProviderSpec>,
}

/// A remedy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemedySpec {
    /// Name.
    pub name: String,
    /// The action.
    pub provider: ProviderSpec,
    /// Retries.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// Per attempt.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Approval before applying.
    #[serde(default)]
    pub approval: Option<ApprovalSpec>,
    /// How to tell it worked.
    #[serde(default)]
    pub verify: Option<VerifySpec>,
}

/// A verify condition.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// A SQL query over `metrics` (rows with time in the window) whose first column of the first
    /// row is true when healthy. `$name` placeholders take `params`.
    pub sql: String,
    /// Placeholder values (templated).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Wait after the remedy before judging. Default 30s.
    #[serde(default)]
    pub settle: Option<String>,
    /// Metrics window ending at the settle point. Default 1m.
    #[serde(default)]
    pub window: Option<String>,
}

/// A compiled strategy.
#[derive(Debug, Clone)]
pub struct Strategy {
    /// Id.
    pub id: String,
    /// Description.
    pub description: String,
    filters: Vec<Filter>,
    /// Remedy actions and verifies, with the flow between them.
    pub items: Arc<Vec<Item>>,
    /// Escalation.
    pub escalate: Option<Call>,
    /// As written.
    pub spec: StrategySpec,
}

impl Strategy {
    /// True when the strategy applies to the incident object.
    pub fn matches(&self, incident: &Value) -> bool {
        all_match(&self.filters, incident)
    }
}

/// Parses and compiles a strategy file.
///
/// # Errors
/// [`CompileError`] with the line.
pub fn compile_strategies(
    file: &str,
    text: &str,
    catalog: &dyn Catalog,
    renderer: &Renderer,
) -> Result<Vec<Strategy>, CompileError> {
    let err = |near: &str, m: String| CompileError {
        file: file.to_string(),
        line: line_of(text, near),
        message: m,
    };
    let parsed: StrategyFile = aiops_alerting::yaml::from_str(text).map_err(|e| CompileError {
        file: file.to_string(),
        line: e.line().unwrap_or(1),
        message: crate::compile::bounded_message(&e.to_string()),
    })?;
    let mut out = Vec::new();
    for s in parsed.strategies {
        // Strategy ids become parts of execution ids and keys.
        crate::compile::check_id("strategy id", &s.id).map_err(|m| err(&s.id, m))?;
        if s.remedies.is_empty() {
            return Err(err(
                &s.id,
                format!("strategy {}: needs at least one remedy", s.id),
            ));
        }
        let filters = s
            .match_
            .iter()
            .map(|f| Filter::new(&f.key, &f.value).map_err(|e| err(&f.key, e)))
            .collect::<Result<Vec<_>, _>>()?;
        // Item index where each remedy starts.
        let starts: Vec<usize> = s
            .remedies
            .iter()
            .scan(0usize, |acc, r| {
                let at = *acc;
                *acc += 1 + usize::from(r.verify.is_some());
                Some(at)
            })
            .collect();
        let mut items = Vec::new();
        for (j, r) in s.remedies.iter().enumerate() {
            let on_fail = starts.get(j + 1).map_or(Flow::Fail, |n| Flow::Goto(*n));
            let step = StepSpec {
                name: r.name.clone(),
                if_: None,
                foreach: None,
                provider: r.provider.clone(),
                retry: r.retry.clone(),
                timeout: r.timeout.clone(),
                approval: r.approval.clone(),
                blast_radius: None,
                continue_on_failure: false,
            };
            let mut action = compile_step_in(file, text, &step, true, catalog, renderer)?;
            action.on_failure = on_fail;
            action.on_success = if r.verify.is_some() {
                Flow::Next
            } else {
                Flow::Finish
            };
            items.push(action);
            if let Some(v) = &r.verify {
                for d in [&v.settle, &v.window].into_iter().flatten() {
                    duration_ms(d)
                        .map_err(|e| err(d, format!("remedy {}: verify: {e}", r.name)))?;
                }
                let mut with = Map::new();
                with.insert("sql".into(), Value::String(v.sql.clone()));
                with.insert("params".into(), Value::Object(v.params.clone()));
                with.insert(
                    "settle".into(),
                    Value::String(v.settle.clone().unwrap_or_else(|| "30s".into())),
                );
                with.insert(
                    "window".into(),
                    Value::String(v.window.clone().unwrap_or_else(|| "1m".into())),
                );
                let vstep = StepSpec {
                    name: format!("{}.verify", r.name),
                    if_: None,
                    foreach: None,
                    provider: ProviderSpec {
                        kind: "verify".into(),
                        config: None,
                        with,
                    },
                    retry: None,
                    timeout: Some("5m".into()),
                    approval: None,
                    blast_radius: None,
                    continue_on_failure: false,
                };
                let mut verify = compile_step_in(file, text, &vstep, false, catalog, renderer)?;
                verify.on_success = Flow::Finish;
                verify.on_failure = on_fail;
                items.push(verify);
            }
        }
        let escalate = s
            .escalate
            .as_ref()
            .map(|p| compile_call_in(file, text, p, catalog, renderer))
            .transpose()?;
        out.push(Strategy {
            id: s.id.clone(),
            description: s.description.clone(),
            filters,
            items: Arc::new(items),
            escalate,
            spec: s,
        });
    }
    Ok(out)
}
