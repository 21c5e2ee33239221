//! Workflows and auto-healing inside the engine: the [`aiops_workflow`] state machine run over
//! the log, and the executor that performs its effects exactly once.
//!
//! - [`secrets`]: `[workflows.secrets]`, read at start, redacted from everything that leaves.
//! - [`receivers`]: the alerting YAML's receivers as providers and generated workflows.
//! - [`catalog`]: the configured providers (connectors' sinks) with secrets filled in.
//! - [`codec`]: events and results on `aiops.effects`, commands on `aiops.control`.
//! - [`processor`]: decisions, events, results, commands and ticks in; engine events out (a
//!   [`crate::Processor`]).
//! - [`executor`]: runs intents without results (retries, timeouts), appends results in
//!   batches.
//! - [`dry`]: `replay --workflows` and `rebuild`, with no effect.
//! - [`unit`]: the engine and its executor as one cluster work unit.

pub mod catalog;
pub mod codec;
pub mod dry;
pub mod executor;
pub mod processor;
pub mod receivers;
pub mod secrets;
pub mod unit;

use aiops_workflow::alertmanager::ReceiverSet;
use aiops_workflow::autoheal::compile_strategies;
use aiops_workflow::{CompileError, EngineConfig, Limits, Rate, Renderer, compile_text};
use catalog::ProviderSet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// An API user allowed to approve and run workflows.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// Name of the secret holding the user's bearer token.
    pub token_secret: String,
    /// Roles (`sre`, `approver`, `admin`, …).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Rate limits as `"N/duration"` (`"10/1m"`).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RateSettings {
    /// Per provider name.
    pub per_provider: BTreeMap<String, String>,
    /// For providers not listed. Default `60/1m`.
    pub default_per_provider: Option<String>,
    /// Per provider and target. Default `20/1m`.
    pub per_target: Option<String>,
}

/// Workflow settings (`[workflows]` in the config file).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowSettings {
    /// Run workflows at all. Default true.
    pub enabled: bool,
    /// Workflow files (`*.yaml`). Default `pipelines/workflows`.
    pub dir: PathBuf,
    /// Auto-heal strategy files (`*.yaml`). Default `pipelines/autoheal`.
    pub autoheal_dir: PathBuf,
    /// Provider instances: `[workflows.providers.NAME]` with `kind` and its settings; strings may
    /// use `{{ secrets.NAME }}`.
    pub providers: BTreeMap<String, toml::Value>,
    /// Secrets: `NAME = { env = "VAR" }` or `{ file = "/path" }`.
    pub secrets: BTreeMap<String, secrets::SecretSource>,
    /// Outbound hosts, IPs or CIDRs allowed although private, loopback or link-local.
    pub outbound_allow: Vec<String>,
    /// Rate limits on actions (log time).
    pub rate_limits: RateSettings,
    /// API users by name.
    pub users: BTreeMap<String, UserSettings>,
    /// Effects running at once. Default 32.
    pub max_in_flight: usize,
    /// How far back `sql` steps see metrics, logs and alerts. Default 15m.
    #[serde(with = "humantime_serde")]
    pub sql_window: Duration,
    /// How often the state is checkpointed. Default 10s.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// While timers are pending, a clock tick at most this often. Default 1s.
    #[serde(with = "humantime_serde")]
    pub tick_interval: Duration,
    /// Per-call timeout of providers when a step sets none. Default 30s.
    #[serde(with = "humantime_serde")]
    pub provider_timeout: Duration,
    /// The alerting configuration's receivers, compiled (not a setting: attached by
    /// [`WorkflowSettings::with_receivers`]); their providers, secrets and generated workflows
    /// join the configured ones.
    #[serde(skip)]
    pub receivers: Option<Arc<ReceiverSet>>,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        WorkflowSettings {
            enabled: true,
            dir: PathBuf::from("pipelines/workflows"),
            autoheal_dir: PathBuf::from("pipelines/autoheal"),
            providers: BTreeMap::new(),
            secrets: BTreeMap::new(),
            outbound_allow: Vec::new(),
            rate_limits: RateSettings::default(),
            users: BTreeMap::new(),
            max_in_flight: 32,
            sql_window: Duration::from_secs(900),
            checkpoint_interval: Duration::from_secs(10),
            tick_interval: Duration::from_secs(1),
            provider_timeout: Duration::from_secs(30),
            receivers: None,
        }
    }
}

/// Parses `"N/duration"`.
///
/// # Errors
/// The reason.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let (n, d) = s
        .split_once('/')
        .ok_or_else(|| format!("rate {s:?} must be N/duration, e.g. 10/1m"))?;
    let count: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("rate {s:?}: {n:?} is not a count"))?;
    let per = humantime::parse_duration(d.trim()).map_err(|e| format!("rate {s:?}: {e}"))?;
    Ok(Rate {
        count,
        per_ms: i64::try_from(per.as_millis()).unwrap_or(i64::MAX).max(1),
    })
}

impl WorkflowSettings {
    /// The rate limits.
    ///
    /// # Errors
    /// A malformed rate.
    pub fn limits(&self) -> Result<Limits, String> {
        let r = &self.rate_limits;
        Ok(Limits {
            provider: r
                .per_provider
                .iter()
                .map(|(k, v)| Ok((k.clone(), parse_rate(v)?)))
                .collect::<Result<_, String>>()?,
            default_provider: Some(parse_rate(
                r.default_per_provider.as_deref().unwrap_or("60/1m"),
            )?),
            per_target: Some(parse_rate(r.per_target.as_deref().unwrap_or("20/1m"))?),
            unlimited: self
                .receivers
                .iter()
                .flat_map(|r| r.providers.keys().cloned())
                .collect(),
        })
    }

    /// These settings with the receivers of an alerting configuration compiled in
    /// ([`aiops_workflow::alertmanager`]).
    ///
    /// # Errors
    /// A receiver that does not compile, naming it and the field.
    pub fn with_receivers(
        &self,
        cfg: &aiops_alerting::AlertingConfig,
        external_url: &str,
    ) -> Result<WorkflowSettings, String> {
        let set = receivers::compile(cfg, external_url)?;
        let mut s = self.clone();
        s.receivers = Some(Arc::new(set));
        Ok(s)
    }

    /// The generated receiver workflows (file name → YAML), to deploy beside the files.
    pub fn receiver_workflows(&self) -> BTreeMap<String, String> {
        self.receivers
            .as_ref()
            .map(|r| r.workflows.clone())
            .unwrap_or_default()
    }

    /// Providers for dry runs: a secret that is not set here gets a placeholder value, since
    /// nothing is sent.
    ///
    /// # Errors
    /// A provider whose settings are invalid.
    pub fn providers_lenient(&self) -> Result<ProviderSet, String> {
        let mut s = self.clone();
        let mut placeholders = BTreeMap::new();
        for (name, src) in &self.secrets {
            if secrets::Secrets::load(&BTreeMap::from([(name.clone(), src.clone())])).is_err() {
                // A placeholder that also parses as a URL, since many secrets are webhook URLs.
                placeholders.insert(name.clone(), format!("https://unset-secret.invalid/{name}"));
            }
        }
        s.secrets.retain(|n, _| !placeholders.contains_key(n));
        let mut loaded = secrets::Secrets::load(&s.secrets)?;
        loaded.extend(placeholders);
        loaded.extend(receivers::secrets(self.receivers.as_deref(), true)?);
        s.build_with(loaded)
    }

    /// Builds the providers (secrets read, settings checked).
    ///
    /// # Errors
    /// What is wrong, naming the provider or secret.
    pub fn providers(&self) -> Result<ProviderSet, String> {
        let mut secrets = secrets::Secrets::load(&self.secrets)?;
        secrets.extend(receivers::secrets(self.receivers.as_deref(), false)?);
        self.build_with(secrets)
    }

    /// The chat model of provider `name` (`kind = "llm"`), secrets substituted: the knowledge
    /// assistant uses the same configured provider as workflow `llm` steps.
    ///
    /// # Errors
    /// No such provider, not an `llm` provider, a missing secret or invalid settings.
    pub fn chat_model(
        &self,
        name: &str,
    ) -> Result<Arc<dyn aiops_connectors::sinks::llm::ChatModel>, String> {
        let at = format!("workflows.providers.{name}");
        let raw = self.providers.get(name).ok_or_else(|| {
            format!(
                "{at} is not configured (configured: {})",
                self.providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let mut v = serde_json::to_value(raw).map_err(|e| format!("{at}: {e}"))?;
        let secrets = secrets::Secrets::load(&self.secrets)?;
        catalog::fill_secrets(&mut v, &secrets, &at)?;
        let ctx = aiops_connectors::sinks::ProviderContext {
            outbound: aiops_connectors::sinks::OutboundPolicy {
                allow: self.outbound_allow.clone(),
            },
            timeout: self.provider_timeout,
        };
        aiops_connectors::sinks::llm::build_chat_model(name, &v, &ctx)
            .map_err(|e| secrets.redact(&format!("{at}: {e}")))
    }

    fn build_with(&self, secrets: secrets::Secrets) -> Result<ProviderSet, String> {
        let mut cfg = BTreeMap::new();
        for (name, v) in &self.providers {
            let json =
                serde_json::to_value(v).map_err(|e| format!("workflows.providers.{name}: {e}"))?;
            cfg.insert(name.clone(), json);
        }
        for (name, v) in self.receivers.iter().flat_map(|r| r.providers.iter()) {
            if cfg.contains_key(name) {
                return Err(format!(
                    "workflows.providers.{name}: the name is taken by an alerting receiver's \
                     integration (names starting with `am-` are reserved)"
                ));
            }
            cfg.insert(name.clone(), v.clone());
        }
        let ctx = aiops_connectors::sinks::ProviderContext {
            outbound: aiops_connectors::sinks::OutboundPolicy {
                allow: self.outbound_allow.clone(),
            },
            timeout: self.provider_timeout,
        };
        ProviderSet::build(&cfg, secrets, &ctx)
    }
}

/// The `*.yaml`/`*.yml` files of a directory by file name (none when it does not exist).
///
/// # Errors
/// A file that cannot be read.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in rd.flatten() {
        let p = e.path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        if !matches!(ext, "yaml" | "yml") {
            continue;
        }
        let name = p
            .file_name()
            .and_then(|x| x.to_str())
            .unwrap_or("")
            .to_string();
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        out.insert(name, text);
    }
    Ok(out)
}

/// Compiles a set of workflow and strategy files. Every problem is reported, each with its file
/// and line.
///
/// # Errors
/// The problems.
pub fn compile_set(
    workflows: &BTreeMap<String, String>,
    strategies: &BTreeMap<String, String>,
    providers: Arc<ProviderSet>,
    limits: Limits,
) -> Result<EngineConfig, Vec<CompileError>> {
    let renderer = Renderer::default();
    let mut errors = Vec::new();
    let mut wfs = BTreeMap::new();
    for (name, text) in workflows {
        match compile_text(name, text, providers.as_ref(), &renderer) {
            Ok(w) => {
                if wfs.contains_key(&w.id) || w.id == aiops_workflow::engine::AUTOHEAL {
                    errors.push(CompileError {
                        file: name.clone(),
                        line: aiops_workflow::compile::line_of(text, "id:"),
                        message: format!("workflow id {:?} is already used", w.id),
                    });
                } else {
                    wfs.insert(w.id.clone(), Arc::new(w));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    let mut strats = Vec::new();
    for (name, text) in strategies {
        match compile_strategies(name, text, providers.as_ref(), &renderer) {
            Ok(s) => strats.extend(s.into_iter().map(Arc::new)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(EngineConfig {
        workflows: wfs,
        strategies: strats,
        limits,
        catalog: providers,
    })
}

/// Where the engine keeps the workflow checkpoint under its data directory.
pub fn store_dir(data_dir: &Path) -> PathBuf {
    crate::store::store_dir(data_dir, "workflows")
}
