//! The alerting configuration's receivers as providers and generated workflows
//! ([`aiops_workflow::alertmanager`]), and their secrets read as Alertmanager reads them: a
//! value written in the YAML, or the content of its `*_file` (trailing newline trimmed).

use aiops_alerting::AlertingConfig;
use aiops_workflow::alertmanager::{ReceiverOptions, ReceiverSet, SecretValue, compile_receivers};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn json_map<T: serde::Serialize>(v: &T, at: &str) -> Result<Map<String, Value>, String> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(format!("{at}: must be a mapping")),
        Err(e) => Err(format!("{at}: {e}")),
    }
}

/// Compiles the receivers of `cfg`; `external_url` is what links in messages point at.
///
/// # Errors
/// A receiver that does not compile, naming the receiver, integration and field.
pub fn compile(cfg: &AlertingConfig, external_url: &str) -> Result<ReceiverSet, String> {
    let global = json_map(&cfg.global, "global")?;
    let receivers = cfg
        .receivers
        .iter()
        .map(|r| {
            Ok((
                r.name.clone(),
                json_map(&r.integrations, &format!("receivers.{}", r.name))?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let extra = cfg
        .aiops
        .receivers
        .iter()
        .map(|(n, m)| Ok((n.clone(), json_map(m, &format!("aiops.receivers.{n}"))?)))
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    let set = compile_receivers(
        &global,
        &receivers,
        &extra,
        &ReceiverOptions {
            external_url: external_url.to_string(),
        },
    )?;
    for u in &set.unsupported {
        tracing::warn!(integration = %u, "alerting receiver integration not delivered");
    }
    Ok(set)
}

/// The values of the receivers' secrets. With `lenient` (dry runs, checks), a file that cannot
/// be read gets a placeholder, since nothing is sent.
///
/// # Errors
/// A `*_file` that cannot be read, naming the file (never a value).
pub fn secrets(
    set: Option<&ReceiverSet>,
    lenient: bool,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (name, v) in set.iter().flat_map(|s| s.secrets.iter()) {
        let value = match v {
            SecretValue::Literal(s) => s.clone(),
            SecretValue::File(p) => match std::fs::read_to_string(p) {
                Ok(t) => t.trim_end_matches(['\n', '\r']).to_string(),
                Err(_) if lenient => format!("https://unset-secret.invalid/{name}"),
                Err(e) => {
                    return Err(format!(
                        "alerting receivers: cannot read the secret file {}: {e}",
                        p.display()
                    ));
                }
            },
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}
