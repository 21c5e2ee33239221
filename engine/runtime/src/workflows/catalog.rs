//! The configured providers (`[workflows.providers.NAME]`) built from the connectors' registry,
//! with secrets substituted into their settings, behind the workflow compiler's [`Catalog`].

use super::secrets::Secrets;
use aiops_connectors::sinks::{EffectCall, Provider, ProviderContext, build_provider};
use aiops_workflow::Catalog;
use aiops_workflow::template::substitute_secrets;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Providers by name, and the secrets.
#[derive(Clone, Default)]
pub struct ProviderSet {
    providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Built-in providers by kind (`context-provider`, `incident-db`): no configuration, named
    /// by `type` alone; the server adds them ([`ProviderSet::with_builtins`]) since they read the
    /// engine's own data.
    builtins: BTreeMap<String, Arc<dyn Provider>>,
    secrets: Secrets,
    /// The guard of every provider call, for save-time checks of literal step URLs.
    outbound: aiops_connectors::outbound::OutboundPolicy,
}

impl std::fmt::Debug for ProviderSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSet")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("builtins", &self.builtins.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Replaces `{{ secrets.NAME }}` in every string of a provider's settings with the value.
pub(crate) fn fill_secrets(v: &mut Value, secrets: &Secrets, at: &str) -> Result<(), String> {
    match v {
        Value::String(s) if s.contains("secrets.") => {
            let re = regex::Regex::new(r"\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}")
                .map_err(|e| e.to_string())?;
            let mut missing = None;
            let out = re.replace_all(s, |c: &regex::Captures<'_>| match secrets.get(&c[1]) {
                Some(v) => v,
                None => {
                    missing = Some(c[1].to_string());
                    String::new()
                }
            });
            if let Some(m) = missing {
                return Err(format!(
                    "{at}: secret {m:?} is not configured under [workflows.secrets]"
                ));
            }
            *s = out.into_owned();
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| fill_secrets(x, secrets, at)),
        Value::Object(o) => o
            .values_mut()
            .try_for_each(|x| fill_secrets(x, secrets, at)),
        _ => Ok(()),
    }
}

impl ProviderSet {
    /// Builds every configured provider.
    ///
    /// # Errors
    /// `providers.NAME: reason` for the first provider that cannot be built (secrets redacted).
    pub fn build(
        cfg: &BTreeMap<String, Value>,
        secrets: Secrets,
        ctx: &ProviderContext,
    ) -> Result<ProviderSet, String> {
        let mut providers = BTreeMap::new();
        for (name, raw) in cfg {
            let at = format!("workflows.providers.{name}");
            let mut v = raw.clone();
            fill_secrets(&mut v, &secrets, &at)?;
            let p =
                build_provider(name, &v, ctx).map_err(|e| secrets.redact(&format!("{at}: {e}")))?;
            providers.insert(name.clone(), p);
        }
        Ok(ProviderSet {
            providers,
            builtins: BTreeMap::new(),
            secrets,
            outbound: ctx.outbound.clone(),
        })
    }

    /// A provider.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(name).cloned()
    }

    /// This set with built-in providers added, each under its kind (a later one of the same
    /// kind replaces an earlier one). Without them a built-in step fails with a logged result
    /// naming the kind (dry runs and checks never call one).
    #[must_use]
    pub fn with_builtins(mut self, builtins: Vec<Arc<dyn Provider>>) -> ProviderSet {
        for p in builtins {
            self.builtins.insert(p.kind().to_string(), p);
        }
        self
    }

    /// The built-in provider of a kind.
    pub fn builtin(&self, kind: &str) -> Option<Arc<dyn Provider>> {
        self.builtins.get(kind).cloned()
    }

    /// The secrets.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Parameters with secret markers replaced by values.
    ///
    /// # Errors
    /// A marker naming an unknown secret.
    pub fn reveal(&self, params: &Map<String, Value>) -> Result<Map<String, Value>, String> {
        let mut v = Value::Object(params.clone());
        substitute_secrets(&mut v, &|n| self.secrets.get(n))?;
        Ok(match v {
            Value::Object(o) => o,
            _ => Map::new(),
        })
    }
}

impl Catalog for ProviderSet {
    fn provider_kind(&self, name: &str) -> Option<String> {
        self.providers.get(name).map(|p| p.kind().to_string())
    }
    fn provider_names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }
    fn has_secret(&self, name: &str) -> bool {
        self.secrets.get(name).is_some()
    }
    fn secret_names(&self) -> Vec<String> {
        self.secrets.names()
    }
    fn validate(&self, name: &str, params: &Map<String, Value>) -> Result<(), String> {
        let p = self
            .providers
            .get(name)
            .ok_or_else(|| format!("no provider {name:?}"))?;
        // Validated with the markers in place: the engine's decision must not depend on secret
        // values, which are not in the log (a rebuild would decide differently). What only the
        // real value can show fails at the call, as a logged result.
        p.validate(params)
            .map_err(|e| self.secrets.redact(&e.to_string()))
    }
    fn check_url(&self, _name: &str, url: &str) -> Result<(), String> {
        match self.outbound.check(url) {
            Err(aiops_connectors::outbound::OutboundError::Refused(why)) => Err(format!(
                "{why}; list it in [outbound] allow if this target is meant to be called"
            )),
            // A URL that does not parse is the provider's to report, with its own message.
            _ => Ok(()),
        }
    }
    fn target(&self, name: &str, params: &Map<String, Value>) -> String {
        match self.providers.get(name) {
            Some(p) => self.secrets.redact(&p.target(&EffectCall {
                idempotency_key: "",
                params,
            })),
            None => name.to_string(),
        }
    }
}
