//! Secrets for workflows and providers: `[secrets]` names mapped to an environment variable or a
//! file, read at start. Values live only here and in the providers built from them; templates
//! see markers, and every string that leaves the executor (errors, responses) is passed through
//! [`Secrets::redact`] first — which removes a value in every encoding a receiver may echo it in
//! (raw, percent, base64, JSON-escaped, hex; see [`Redactor`]) — so no value reaches the log,
//! metrics or API answers.

use aiops_connectors::sinks::Redactor;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where one secret comes from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable.
    #[serde(default)]
    pub env: Option<String>,
    /// A file (its content, trailing newline trimmed).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Resolved secrets.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    /// Built from `values` whenever they change.
    redactor: Redactor,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Secrets {
    /// Reads every configured secret.
    ///
    /// # Errors
    /// The name of a secret whose variable is unset or whose file cannot be read.
    pub fn load(cfg: &BTreeMap<String, SecretSource>) -> Result<Secrets, String> {
        let mut values = BTreeMap::new();
        for (name, src) in cfg {
            let v = match (&src.env, &src.file) {
                (Some(var), None) => std::env::var(var)
                    .map_err(|_| format!("secret {name}: environment variable {var} is not set"))?,
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| format!("secret {name}: cannot read {}: {e}", path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
                _ => return Err(format!("secret {name}: set exactly one of `env` or `file`")),
            };
            if v.chars().count() < 4 {
                return Err(format!(
                    "secret {name} is shorter than 4 characters (too short to be redacted reliably)"
                ));
            }
            values.insert(name.clone(), v);
        }
        Ok(Secrets::from_values(values))
    }

    /// Secrets from literal values (tests).
    pub fn from_values(values: BTreeMap<String, String>) -> Secrets {
        let refs: Vec<&str> = values.values().map(String::as_str).collect();
        let redactor = Redactor::new(&refs);
        Secrets { values, redactor }
    }

    /// Adds values (placeholders of dry runs).
    pub fn extend(&mut self, more: BTreeMap<String, String>) {
        let mut values = std::mem::take(&mut self.values);
        values.extend(more);
        *self = Secrets::from_values(values);
    }

    /// Names.
    pub fn names(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }

    /// A value.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// `s` with every secret value, in every encoding [`Redactor`] knows, replaced by `***`.
    pub fn redact(&self, s: &str) -> String {
        self.redactor.redact(s)
    }

    /// Redacts every string and every object key in a JSON tree (a receiver may echo a secret
    /// as a key as well as a value).
    pub fn redact_value(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = self.redact(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.redact_value(x)),
            serde_json::Value::Object(o) => {
                let old = std::mem::take(o);
                for (k, mut x) in old {
                    self.redact_value(&mut x);
                    o.insert(self.redact(&k), x);
                }
            }
            _ => {}
        }
    }
}
