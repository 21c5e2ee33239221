//! Alertmanager receivers that deliver: the `receivers` of the alerting YAML (`webhook_configs`,
//! `slack_configs`, `email_configs`, `pagerduty_configs`, `msteams_configs`,
//! `msteamsv2_configs`, and aiops' `feishu_configs`/`dingtalk_configs` under
//! `aiops: {receivers: …}`) compiled into provider instances and one generated workflow per
//! receiver, triggered by the alerting engine's notification intents for that receiver.
//!
//! Delivery therefore takes the one effects path (intent logged first with a key derived from the
//! notification id, run once by the executor, nothing on replay), and the payloads follow
//! Alertmanager's: the webhook body version "4" (`groupKey`, `truncatedAlerts`, `status`,
//! `receiver`, `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`, `alerts`),
//! `send_resolved` (resolved alerts left out, and nothing sent when none fire) and `max_alerts`,
//! and the default titles of Alertmanager's `default.tmpl` (`[FIRING:2] HighLatency api (…)`).
//!
//! The payload builders are pure functions of the notification (registered in the template
//! renderer as `am_webhook`, `am_subject`, `am_text`, `am_color`, `am_pagerduty`), so the same
//! log renders the same intents. Reading `*_file` secrets is the caller's: this module returns
//! where each secret comes from, and provider settings only carry `{{ secrets.NAME }}` markers.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a receiver's secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// Written in the alerting YAML.
    Literal(String),
    /// Read from a file (`api_url_file`, `auth_password_file`, …), as Alertmanager does.
    File(PathBuf),
}

/// Receivers compiled for the workflow engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverSet {
    /// Provider settings by provider name (`kind` plus settings; secrets as markers).
    pub providers: BTreeMap<String, Value>,
    /// Secrets the provider settings refer to, by name.
    pub secrets: BTreeMap<String, SecretValue>,
    /// Generated workflow files (YAML) by file name (`alertmanager/<receiver>.yaml`).
    pub workflows: BTreeMap<String, String>,
    /// Integrations accepted but not delivered (kind not supported), one line each.
    pub unsupported: Vec<String>,
}

/// File-name prefix of generated receiver workflows in the deployed set.
pub const FILE_PREFIX: &str = "alertmanager/";

/// Options of the compilation.
#[derive(Debug, Clone, Default)]
pub struct ReceiverOptions {
    /// Alertmanager's `--web.external-url`: links in messages and `externalURL` in webhooks.
    pub external_url: String,
}

fn short_hash(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// `[a-z0-9-]` slug of a receiver name, with a hash so distinct names never collide.
fn slug(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    s = s.trim_matches('-').to_string();
    if s.is_empty() {
        s.push('r');
    }
    format!("{s}-{}", short_hash(name))
}

fn str_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn bool_of(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => default,
    }
}

/// One integration being compiled: its settings, the receiver-level names, and what it adds.
struct Ctx<'a> {
    set: &'a mut ReceiverSet,
    slug: &'a str,
    receiver: &'a str,
    opts: &'a ReceiverOptions,
    actions: Vec<Value>,
}

impl Ctx<'_> {
    /// A secret from `field` or `field_file` of `cfg` (then of `global` under `gname`), as a
    /// marker; `None` when neither is set.
    fn secret(
        &mut self,
        cfg: &Map<String, Value>,
        global: &Map<String, Value>,
        field: &str,
        gname: Option<&str>,
        tag: &str,
    ) -> Option<String> {
        let pick = |m: &Map<String, Value>, f: &str| -> Option<SecretValue> {
            if let Some(v) = str_of(m.get(f)).filter(|v| !v.is_empty()) {
                return Some(SecretValue::Literal(v));
            }
            str_of(m.get(&format!("{f}_file")))
                .filter(|v| !v.is_empty())
                .map(|p| SecretValue::File(PathBuf::from(p)))
        };
        let v = pick(cfg, field).or_else(|| gname.and_then(|g| pick(global, g)))?;
        let name = format!(
            "AM_{}_{}",
            self.slug.replace('-', "_").to_ascii_uppercase(),
            tag.to_ascii_uppercase()
        );
        self.set.secrets.insert(name.clone(), v);
        Some(format!("{{{{ secrets.{name} }}}}"))
    }

    fn provider(&mut self, kind: &str, i: usize, mut settings: Map<String, Value>) -> String {
        let name = format!("am-{}-{kind}-{i}", self.slug);
        settings.insert("kind".into(), Value::String(kind.into()));
        self.set
            .providers
            .insert(name.clone(), Value::Object(settings));
        name
    }

    fn action(&mut self, name: String, provider: &str, send_resolved: bool, with: Value) {
        let mut a = json!({
            "name": name,
            // Each integration is delivered on its own, as Alertmanager does: one failing
            // integration does not hold back the others.
            "continue_on_failure": true,
            "retry": {"count": 5, "backoff": "2s"},
            "provider": {"type": provider_kind(&self.set.providers, provider), "config": provider, "with": with},
        });
        if !send_resolved {
            // Alertmanager sends nothing when only resolved alerts remain and the integration
            // does not send resolved ones.
            a["if"] =
                Value::String("notification.firing | length > 0 or notification.summary".into());
        }
        self.actions.push(a);
    }
}

fn provider_kind(providers: &BTreeMap<String, Value>, name: &str) -> String {
    providers
        .get(name)
        .and_then(|p| p.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// A template call with the notification and literal options, as one expression (so the value
/// keeps its type: the webhook body stays an object).
fn call(func: &str, args: &[Value]) -> String {
    let mut s = format!("{{{{ {func}(notification");
    for a in args {
        s.push_str(", ");
        s.push_str(&a.to_string());
    }
    s.push_str(") }}");
    s
}

/// A user's field or the default. A field with Go template syntax is parsed as Alertmanager's
/// templates are ([`crate::gotmpl`]) and rendered over Alertmanager's template data when the
/// notification is sent; one that uses what aiops does not support falls back to the default,
/// and the fallback is reported.
fn text_field(
    cfg: &Map<String, Value>,
    field: &str,
    func: &str,
    go: &[Value; 3],
    unsupported: &mut Vec<String>,
    at: &str,
) -> String {
    match str_of(cfg.get(field)) {
        Some(v) if v.contains("{{") => match crate::gotmpl::GoTemplate::parse(&v) {
            Ok(_) => {
                // am_go(notification, source, default function, send_resolved, external URL,
                // receiver): the default is what a runtime error of the template falls back to.
                call(
                    "am_go",
                    &[
                        Value::String(v),
                        Value::String(func.into()),
                        Value::Array(go.to_vec()),
                    ],
                )
            }
            Err(e) => {
                unsupported.push(format!(
                    "{at}.{field}: {e}; the default {field} is sent instead"
                ));
                default_call(func, go)
            }
        },
        // A literal: escaped for Jinja by wrapping it as a string literal expression.
        Some(v) => format!("{{{{ {} }}}}", Value::String(v)),
        None => default_call(func, go),
    }
}

/// A default text's call: the subject and the colour need only `send_resolved`, the others
/// also the external URL and the receiver (`go` holds the three).
fn default_call(func: &str, go: &[Value; 3]) -> String {
    match func {
        "am_subject" | "am_color" => call(func, &go[..1]),
        _ => call(func, go),
    }
}

/// Integrations of Alertmanager that aiops keeps but does not deliver.
const NOT_DELIVERED: &[&str] = &[
    "opsgenie_configs",
    "pushover_configs",
    "victorops_configs",
    "wechat_configs",
    "telegram_configs",
    "discord_configs",
    "sns_configs",
    "webex_configs",
    "jira_configs",
    "rocketchat_configs",
];

/// Compiles the receivers. `global` is Alertmanager's `global:` section; `receivers` maps a
/// receiver name to its integrations as written (`slack_configs: […]`, …); `extra` maps a
/// receiver name to aiops' own integrations (`feishu_configs`, `dingtalk_configs`).
///
/// # Errors
/// A message naming the receiver, integration and field that is wrong (a missing URL, a bad
/// `max_alerts`, …).
pub fn compile_receivers(
    global: &Map<String, Value>,
    receivers: &[(String, Map<String, Value>)],
    extra: &BTreeMap<String, Map<String, Value>>,
    opts: &ReceiverOptions,
) -> Result<ReceiverSet, String> {
    let mut set = ReceiverSet::default();
    for name in extra.keys() {
        if !receivers.iter().any(|(n, _)| n == name) {
            return Err(format!(
                "aiops.receivers.{name}: no receiver named {name:?} in `receivers`"
            ));
        }
    }
    for (name, integrations) in receivers {
        let s = slug(name);
        let mut cx = Ctx {
            set: &mut set,
            slug: &s,
            receiver: name,
            opts,
            actions: Vec::new(),
        };
        let empty = Map::new();
        let mine = extra.get(name).unwrap_or(&empty);
        for (key, list) in integrations.iter().chain(mine.iter()) {
            let at = format!("receivers.{name}.{key}");
            let items: Vec<&Map<String, Value>> = match list {
                Value::Array(a) => a
                    .iter()
                    .map(|v| {
                        v.as_object()
                            .ok_or_else(|| format!("{at}: each entry must be a mapping"))
                    })
                    .collect::<Result<_, _>>()?,
                Value::Null => Vec::new(),
                _ => return Err(format!("{at}: must be a list")),
            };
            for (i, cfg) in items.into_iter().enumerate() {
                let at = format!("{at}[{i}]");
                compile_one(&mut cx, key, i, cfg, global, &at)?;
            }
        }
        let actions = std::mem::take(&mut cx.actions);
        if actions.is_empty() {
            continue;
        }
        let id = format!("am-{s}");
        let wf = json!({"workflow": {
            "id": id,
            "description": format!("Alertmanager receiver {name:?} (generated from the alerting configuration)"),
            "triggers": [{"type": "notification",
                          "filters": [{"key": "receiver", "value": format!("r\"{}\"", regex::escape(name))}]}],
            "concurrency": 16,
            "queue": 10000,
            "actions": actions,
        }});
        let text = serde_yaml_ng::to_string(&wf)
            .map_err(|e| format!("receivers.{name}: cannot generate its workflow: {e}"))?;
        set.workflows.insert(format!("{FILE_PREFIX}{s}.yaml"), text);
    }
    Ok(set)
}

fn compile_one(
    cx: &mut Ctx<'_>,
    key: &str,
    i: usize,
    cfg: &Map<String, Value>,
    global: &Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    let ext = Value::String(cx.opts.external_url.clone());
    let receiver = cx.receiver.to_string();
    let missing = |f: &str| format!("{at}: `{f}` (or `{f}_file`) is required");
    match key {
        "webhook_configs" => {
            let send_resolved = bool_of(cfg.get("send_resolved"), true);
            let max_alerts = match cfg.get("max_alerts") {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| format!("{at}.max_alerts: must be a non-negative integer"))?,
            };
            let url = cx
                .secret(cfg, global, "url", None, &format!("webhook_{i}_url"))
                .ok_or_else(|| missing("url"))?;
            let mut settings = Map::new();
            settings.insert("url".into(), Value::String(url));
            if let Some(h) = auth_header(cx, cfg, &format!("webhook_{i}"), at)? {
                settings.insert("headers".into(), json!({"Authorization": h}));
            }
            let p = cx.provider("webhook", i, settings);
            let body = call(
                "am_webhook",
                &[
                    json!(max_alerts),
                    json!(send_resolved),
                    ext,
                    json!(receiver),
                ],
            );
            cx.action(
                format!("webhook-{i}"),
                &p,
                send_resolved,
                json!({"body": body}),
            );
        }
        "slack_configs" => {
            let send_resolved = bool_of(cfg.get("send_resolved"), false);
            let url = cx
                .secret(
                    cfg,
                    global,
                    "api_url",
                    Some("slack_api_url"),
                    &format!("slack_{i}_url"),
                )
                .ok_or_else(|| missing("api_url"))?;
            let p = cx.provider(
                "slack",
                i,
                Map::from_iter([("url".into(), Value::String(url))]),
            );
            let sr = json!(send_resolved);
            let go = [sr.clone(), ext.clone(), json!(receiver)];
            let unsupported = &mut cx.set.unsupported;
            let title = text_field(cfg, "title", "am_subject", &go, unsupported, at);
            let text = text_field(cfg, "text", "am_fallback", &go, unsupported, at);
            let color = text_field(cfg, "color", "am_color", &go, unsupported, at);
            cx.action(
                format!("slack-{i}"),
                &p,
                send_resolved,
                json!({"title": title, "text": text, "color": color}),
            );
        }
        "email_configs" => {
            let send_resolved = bool_of(cfg.get("send_resolved"), false);
            let to = str_of(cfg.get("to")).ok_or_else(|| format!("{at}: `to` is required"))?;
            let from = str_of(cfg.get("from"))
                .or_else(|| str_of(global.get("smtp_from")))
                .ok_or_else(|| format!("{at}: `from` (or global `smtp_from`) is required"))?;
            let smarthost = str_of(cfg.get("smarthost"))
                .or_else(|| str_of(global.get("smtp_smarthost")))
                .ok_or_else(|| {
                    format!("{at}: `smarthost` (or global `smtp_smarthost`) is required")
                })?;
            let (host, port) = smarthost
                .rsplit_once(':')
                .and_then(|(h, p)| {
                    Some((
                        h.trim_matches(['[', ']']).to_string(),
                        p.parse::<u16>().ok()?,
                    ))
                })
                .ok_or_else(|| format!("{at}.smarthost: {smarthost:?} must be host:port"))?;
            let require_tls = bool_of(
                cfg.get("require_tls"),
                bool_of(global.get("smtp_require_tls"), true),
            );
            let mut settings = Map::new();
            settings.insert("host".into(), Value::String(host));
            settings.insert("port".into(), json!(port));
            settings.insert("from".into(), Value::String(from));
            // Alertmanager: implicit TLS on 465, STARTTLS when required, plain otherwise.
            let tls = if port == 465 {
                "tls"
            } else if require_tls {
                "starttls"
            } else {
                "none"
            };
            settings.insert("tls".into(), Value::String(tls.into()));
            if let Some(u) = str_of(cfg.get("auth_username"))
                .or_else(|| str_of(global.get("smtp_auth_username")))
            {
                settings.insert("username".into(), Value::String(u));
                if let Some(pw) = cx.secret(
                    cfg,
                    global,
                    "auth_password",
                    Some("smtp_auth_password"),
                    &format!("email_{i}_password"),
                ) {
                    settings.insert("password".into(), Value::String(pw));
                }
            }
            let p = cx.provider("email", i, settings);
            let sr = json!(send_resolved);
            let go = [sr.clone(), ext.clone(), json!(receiver)];
            let subject_override = cfg
                .get("headers")
                .and_then(Value::as_object)
                .and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("subject"))
                        .map(|(_, v)| v)
                })
                .and_then(|v| str_of(Some(v)));
            let mut unsupported = std::mem::take(&mut cx.set.unsupported);
            let subject = match subject_override {
                Some(s) => text_field(
                    &Map::from_iter([("subject".to_string(), Value::String(s))]),
                    "subject",
                    "am_subject",
                    &go,
                    &mut unsupported,
                    &format!("{at}.headers"),
                ),
                None => call("am_subject", std::slice::from_ref(&sr)),
            };
            let body = text_field(cfg, "text", "am_text", &go, &mut unsupported, at);
            cx.set.unsupported = unsupported;
            let to_list: Vec<Value> = to
                .split(',')
                .map(|s| Value::String(s.trim().to_string()))
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                .collect();
            cx.action(
                format!("email-{i}"),
                &p,
                send_resolved,
                json!({"to": to_list, "subject": subject, "body": body}),
            );
        }
        "pagerduty_configs" => {
            let send_resolved = bool_of(cfg.get("send_resolved"), true);
            if (cfg.contains_key("service_key") || cfg.contains_key("service_key_file"))
                && !cfg.contains_key("routing_key")
                && !cfg.contains_key("routing_key_file")
            {
                return Err(format!(
                    "{at}: `service_key` is PagerDuty's Events API v1, which aiops does not \
                     speak; use an Events API v2 integration key as `routing_key`"
                ));
            }
            let key = cx
                .secret(cfg, global, "routing_key", None, &format!("pd_{i}_key"))
                .ok_or_else(|| missing("routing_key"))?;
            let mut settings = Map::from_iter([("routing_key".into(), Value::String(key))]);
            if let Some(u) = str_of(cfg.get("url")).or_else(|| str_of(global.get("pagerduty_url")))
            {
                settings.insert("url".into(), Value::String(u));
            }
            let p = cx.provider("pagerduty", i, settings);
            let severity = str_of(cfg.get("severity")).unwrap_or_else(|| "error".into());
            let args = [json!([
                send_resolved,
                ext,
                receiver,
                severity,
                str_of(cfg.get("client")).unwrap_or_else(|| "aiops".into()),
            ])];
            // One call per parameter: the provider takes the event's fields as parameters.
            let with: Map<String, Value> = [
                "event_action",
                "dedup_key",
                "summary",
                "source",
                "severity",
                "custom_details",
                "links",
            ]
            .iter()
            .map(|f| {
                let c = call("am_pagerduty", &args);
                let expr = c.trim_end_matches(" }}").to_string() + &format!(".{f} }}}}");
                ((*f).to_string(), Value::String(expr))
            })
            .collect();
            cx.action(
                format!("pagerduty-{i}"),
                &p,
                send_resolved,
                Value::Object(with),
            );
        }
        "msteams_configs" | "msteamsv2_configs" => {
            let send_resolved = bool_of(cfg.get("send_resolved"), true);
            let url = cx
                .secret(cfg, global, "webhook_url", None, &format!("teams_{i}_url"))
                .ok_or_else(|| missing("webhook_url"))?;
            let p = cx.provider(
                "teams",
                i,
                Map::from_iter([("url".into(), Value::String(url))]),
            );
            let sr = json!(send_resolved);
            let go = [sr.clone(), ext.clone(), json!(receiver)];
            let unsupported = &mut cx.set.unsupported;
            let title = text_field(cfg, "title", "am_subject", &go, unsupported, at);
            let text = text_field(cfg, "text", "am_text", &go, unsupported, at);
            cx.action(
                format!("teams-{i}"),
                &p,
                send_resolved,
                json!({"title": title, "text": text}),
            );
        }
        "feishu_configs" | "dingtalk_configs" => {
            let kind = if key == "feishu_configs" {
                "feishu"
            } else {
                "dingtalk"
            };
            let send_resolved = bool_of(cfg.get("send_resolved"), true);
            let url = cx
                .secret(cfg, global, "webhook_url", None, &format!("{kind}_{i}_url"))
                .ok_or_else(|| missing("webhook_url"))?;
            let mut settings = Map::from_iter([("url".into(), Value::String(url))]);
            if let Some(sec) = cx.secret(cfg, global, "secret", None, &format!("{kind}_{i}_secret"))
            {
                settings.insert("secret".into(), Value::String(sec));
            }
            let p = cx.provider(kind, i, settings);
            let sr = json!(send_resolved);
            let title = call("am_subject", std::slice::from_ref(&sr));
            let text = call("am_text", &[sr, ext, json!(receiver)]);
            let with = if kind == "feishu" {
                json!({"title": title, "content": text})
            } else {
                json!({"title": title, "text": text})
            };
            cx.action(format!("{kind}-{i}"), &p, send_resolved, with);
        }
        k if NOT_DELIVERED.contains(&k) => cx.set.unsupported.push(format!(
            "{at}: {k} is accepted but not delivered by aiops (use a workflow)"
        )),
        // Other keys of a receiver (Alertmanager may add integrations) are kept as written.
        k => cx
            .set
            .unsupported
            .push(format!("{at}: unknown integration {k:?} is ignored")),
    }
    Ok(())
}

/// The `Authorization` header of a webhook's `http_config` (`authorization`, `bearer_token`,
/// `basic_auth`), as a secret marker.
fn auth_header(
    cx: &mut Ctx<'_>,
    cfg: &Map<String, Value>,
    tag: &str,
    at: &str,
) -> Result<Option<String>, String> {
    let Some(hc) = cfg.get("http_config").and_then(Value::as_object) else {
        return Ok(None);
    };
    let none = Map::new();
    if let Some(a) = hc.get("authorization").and_then(Value::as_object) {
        let scheme = str_of(a.get("type")).unwrap_or_else(|| "Bearer".into());
        let cred = cx
            .secret(a, &none, "credentials", None, &format!("{tag}_auth"))
            .ok_or_else(|| format!("{at}.http_config.authorization: `credentials` is required"))?;
        return Ok(Some(format!("{scheme} {cred}")));
    }
    if let Some(cred) = cx.secret(hc, &none, "bearer_token", None, &format!("{tag}_auth")) {
        return Ok(Some(format!("Bearer {cred}")));
    }
    if hc.contains_key("basic_auth") {
        // Not refused: a real alertmanager.yml must still load. Sent without it, and said so.
        cx.set.unsupported.push(format!(
            "{at}.http_config.basic_auth: not supported for webhooks yet, sent without it; use \
             `authorization: {{type: Basic, credentials: <base64 of user:password>}}`"
        ));
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Payloads: pure functions of the notification context (`notification` in templates).

/// The alerts of a notification as Alertmanager passes them to an integration: firing, then
/// resolved unless `send_resolved` is off.
fn alerts_of(n: &Value, send_resolved: bool) -> Vec<&Value> {
    let list = |k: &str| {
        n.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut out = list("firing");
    if send_resolved {
        out.extend(list("resolved"));
    }
    out
}

fn labels_of<'a>(a: &'a Value, k: &str) -> BTreeMap<&'a str, &'a str> {
    a.get(k)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Labels (or annotations) with the same value on every alert.
fn common<'a>(alerts: &[&'a Value], k: &str) -> BTreeMap<&'a str, &'a str> {
    let mut it = alerts.iter();
    let Some(first) = it.next() else {
        return BTreeMap::new();
    };
    let mut c = labels_of(first, k);
    for a in it {
        let l = labels_of(a, k);
        c.retain(|k, v| l.get(k) == Some(v));
    }
    c
}

fn rfc3339(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        // Alertmanager's zero time for an alert that has not ended.
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

fn status_of(alerts: &[&Value]) -> &'static str {
    if alerts
        .iter()
        .any(|a| a.get("status").and_then(Value::as_str) == Some("firing"))
    {
        "firing"
    } else {
        "resolved"
    }
}

fn group_labels(n: &Value) -> BTreeMap<&str, &str> {
    labels_of(n, "group_labels")
}

fn go_time(ms: Option<i64>) -> String {
    // Go's time.Time String(): what `{{ .StartsAt }}` prints in Alertmanager.
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| {
            let frac = t.timestamp_subsec_millis();
            if frac == 0 {
                t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()
            } else {
                let f = format!("{frac:03}");
                format!(
                    "{}.{} +0000 UTC",
                    t.format("%Y-%m-%d %H:%M:%S"),
                    f.trim_end_matches('0')
                )
            }
        })
        .unwrap_or_else(|| "0001-01-01 00:00:00 +0000 UTC".into())
}

/// Alertmanager's template data (what `{{ . }}` is in a receiver field): `Receiver`, `Status`,
/// `Alerts` (`Status`, `Labels`, `Annotations`, `StartsAt`, `EndsAt`, `GeneratorURL`,
/// `Fingerprint`), `GroupLabels`, `CommonLabels`, `CommonAnnotations`, `ExternalURL`.
pub fn template_data(n: &Value, send_resolved: bool, external_url: &str, receiver: &str) -> Value {
    let alerts = alerts_of(n, send_resolved);
    let list: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let status = a.get("status").and_then(Value::as_str).unwrap_or("firing");
            json!({
                "Status": status,
                "Labels": a.get("labels").cloned().unwrap_or_else(|| json!({})),
                "Annotations": a.get("annotations").cloned().unwrap_or_else(|| json!({})),
                "StartsAt": go_time(a.get("starts_at_ms").and_then(Value::as_i64)),
                "EndsAt": go_time(if status == "resolved" { a.get("ends_at_ms").and_then(Value::as_i64) } else { None }),
                "GeneratorURL": a.get("generator_url").and_then(Value::as_str).unwrap_or(""),
                "Fingerprint": a.get("fingerprint").and_then(Value::as_str).unwrap_or(""),
            })
        })
        .collect();
    json!({
        "Receiver": receiver,
        "Status": status_of(&alerts),
        "Alerts": list,
        "GroupLabels": group_labels(n),
        "CommonLabels": common(&alerts, "labels"),
        "CommonAnnotations": common(&alerts, "annotations"),
        "ExternalURL": external_url,
    })
}

/// A receiver field written as a Go template, rendered over [`template_data`]. Alertmanager's
/// default templates (`{{ template "slack.default.title" . }}`) render as aiops renders the
/// defaults. A template that fails at run time (a field of a string, an index out of range)
/// gives the default (`fallback`: `am_subject`, `am_text`, `am_fallback` or `am_color`), so a
/// notification is never lost to its text.
pub fn go_field(
    n: &Value,
    src: &str,
    fallback: &str,
    send_resolved: bool,
    external_url: &str,
    receiver: &str,
) -> String {
    let default = |f: &str| match f {
        "am_subject" => subject(n, send_resolved),
        "am_color" => color(n, send_resolved).to_string(),
        "am_fallback" => self::fallback(n, send_resolved, external_url, receiver),
        _ => text(n, send_resolved, external_url, receiver),
    };
    let named = |name: &str, arg: &Value| -> Option<String> {
        // Alertmanager's defaults take the whole data; other arguments are not supported.
        arg.get("Receiver")?;
        Some(match name {
            "__alertmanagerURL" | "slack.default.titlelink" => alerts_link(external_url, receiver),
            "slack.default.username" => "aiops".into(),
            "slack.default.fallback" => default("am_fallback"),
            "slack.default.text" | "slack.default.pretext" | "slack.default.footer" => {
                String::new()
            }
            "email.default.html"
            | "msteams.default.text"
            | "msteamsv2.default.text"
            | "__text_alert_list"
            | "webex.default.message" => default("am_text"),
            _ => default("am_subject"),
        })
    };
    let data = template_data(n, send_resolved, external_url, receiver);
    match crate::gotmpl::GoTemplate::parse(src).and_then(|t| t.render(&data, &named)) {
        Ok(s) => s,
        Err(_) => default(fallback),
    }
}

/// Alertmanager's webhook body, version 4.
pub fn webhook_body(
    n: &Value,
    max_alerts: usize,
    send_resolved: bool,
    external_url: &str,
    receiver: &str,
) -> Value {
    let alerts = alerts_of(n, send_resolved);
    let shown = if max_alerts > 0 && alerts.len() > max_alerts {
        &alerts[..max_alerts]
    } else {
        &alerts[..]
    };
    let list: Vec<Value> = shown
        .iter()
        .map(|a| {
            let status = a.get("status").and_then(Value::as_str).unwrap_or("firing");
            json!({
                "status": status,
                "labels": a.get("labels").cloned().unwrap_or_else(|| json!({})),
                "annotations": a.get("annotations").cloned().unwrap_or_else(|| json!({})),
                "startsAt": rfc3339(a.get("starts_at_ms").and_then(Value::as_i64)),
                "endsAt": rfc3339(if status == "resolved" { a.get("ends_at_ms").and_then(Value::as_i64) } else { None }),
                "generatorURL": a.get("generator_url").and_then(Value::as_str).unwrap_or(""),
                "fingerprint": a.get("fingerprint").and_then(Value::as_str).unwrap_or(""),
            })
        })
        .collect();
    let mut body = json!({
        "version": "4",
        "groupKey": n.get("group_key").and_then(Value::as_str).unwrap_or(""),
        "truncatedAlerts": alerts.len() - shown.len(),
        "status": status_of(&alerts),
        "receiver": receiver,
        "groupLabels": group_labels(n),
        "commonLabels": common(&alerts, "labels"),
        "commonAnnotations": common(&alerts, "annotations"),
        "externalURL": external_url,
        "alerts": list,
    });
    if let Some(s) = n.get("summary").filter(|s| !s.is_null()) {
        // A storm summary (aiops' notification budget): no alerts, what was held back.
        body["status"] = Value::String("firing".into());
        body["aiopsSummary"] = s.clone();
    }
    body
}

/// Alertmanager's `__subject`: `[FIRING:2] <group label values> (<other common label values>)`.
pub fn subject(n: &Value, send_resolved: bool) -> String {
    if let Some(s) = n.get("summary").filter(|s| !s.is_null()) {
        let count = s.get("alerts").and_then(Value::as_u64).unwrap_or(0);
        return format!("[FIRING:{count}] alerts held back by the notification budget");
    }
    let alerts = alerts_of(n, send_resolved);
    let status = status_of(&alerts);
    let firing = alerts
        .iter()
        .filter(|a| a.get("status").and_then(Value::as_str) == Some("firing"))
        .count();
    let gl = group_labels(n);
    let cl = common(&alerts, "labels");
    let mut s = format!("[{}", status.to_ascii_uppercase());
    if status == "firing" {
        s.push_str(&format!(":{firing}"));
    }
    s.push_str("] ");
    s.push_str(&gl.values().copied().collect::<Vec<_>>().join(" "));
    s.push(' ');
    if cl.len() > gl.len() {
        let rest: Vec<&str> = cl
            .iter()
            .filter(|(k, _)| !gl.contains_key(*k))
            .map(|(_, v)| *v)
            .collect();
        s.push_str(&format!("({})", rest.join(" ")));
    }
    s
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `<external URL>/#/alerts?receiver=<receiver>` (Alertmanager's link to the receiver's alerts).
pub fn alerts_link(external_url: &str, receiver: &str) -> String {
    format!(
        "{}/#/alerts?receiver={}",
        external_url.trim_end_matches('/'),
        percent(receiver)
    )
}

/// Alertmanager's Slack fallback: `<subject> | <link>`.
pub fn fallback(n: &Value, send_resolved: bool, external_url: &str, receiver: &str) -> String {
    format!(
        "{} | {}",
        subject(n, send_resolved),
        alerts_link(external_url, receiver)
    )
}

/// `danger` while something fires, else `good` (Alertmanager's Slack default colour).
pub fn color(n: &Value, send_resolved: bool) -> &'static str {
    if status_of(&alerts_of(n, send_resolved)) == "firing" {
        "danger"
    } else {
        "good"
    }
}

/// A plain-text body listing the alerts with their labels and annotations (the text form of
/// Alertmanager's default email and Teams templates).
pub fn text(n: &Value, send_resolved: bool, external_url: &str, receiver: &str) -> String {
    let mut s = String::new();
    if let Some(sm) = n.get("summary").filter(|s| !s.is_null()) {
        s.push_str(&format!(
            "{} notifications with {} firing alerts were held back by the notification budget.\n",
            sm.get("notifications").and_then(Value::as_u64).unwrap_or(0),
            sm.get("alerts").and_then(Value::as_u64).unwrap_or(0)
        ));
    }
    let alerts = alerts_of(n, send_resolved);
    for (title, status) in [("Firing", "firing"), ("Resolved", "resolved")] {
        let part: Vec<&&Value> = alerts
            .iter()
            .filter(|a| a.get("status").and_then(Value::as_str) == Some(status))
            .collect();
        if part.is_empty() {
            continue;
        }
        s.push_str(&format!("Alerts {title}:\n"));
        for a in part {
            s.push_str("Labels:\n");
            for (k, v) in labels_of(a, "labels") {
                s.push_str(&format!(" - {k} = {v}\n"));
            }
            let ann = labels_of(a, "annotations");
            if !ann.is_empty() {
                s.push_str("Annotations:\n");
                for (k, v) in ann {
                    s.push_str(&format!(" - {k} = {v}\n"));
                }
            }
            if let Some(u) = a
                .get("generator_url")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
            {
                s.push_str(&format!("Source: {u}\n"));
            }
            s.push('\n');
        }
    }
    s.push_str(&alerts_link(external_url, receiver));
    s
}

/// The PagerDuty Events API v2 parameters Alertmanager would send: one PagerDuty incident per
/// alert group (`dedup_key` = SHA-256 of the group key), `resolve` once nothing fires.
pub fn pagerduty(
    n: &Value,
    send_resolved: bool,
    external_url: &str,
    receiver: &str,
    severity: &str,
    client: &str,
) -> Value {
    let alerts = alerts_of(n, send_resolved);
    let key = n.get("group_key").and_then(Value::as_str).unwrap_or("");
    let dedup: String = Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let firing = alerts
        .iter()
        .filter(|a| a.get("status").and_then(Value::as_str) == Some("firing"))
        .count();
    let resolved = status_of(&alerts) == "resolved" && n.get("summary").is_none_or(Value::is_null);
    let mut summary = subject(n, send_resolved);
    if summary.chars().count() > 1024 {
        summary = summary.chars().take(1023).collect::<String>() + "…";
    }
    // A resolve carries the trigger's fields too; PagerDuty reads only the action and the key.
    json!({
        "event_action": if resolved { "resolve" } else { "trigger" },
        "dedup_key": dedup,
        "summary": summary,
        "source": client,
        "severity": severity,
        "custom_details": {
            "firing": text(&json!({"firing": n.get("firing")}), false, external_url, receiver),
            "num_firing": firing,
            "num_resolved": alerts.len() - firing,
        },
        "links": [{"href": alerts_link(external_url, receiver), "text": client}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Value {
        json!({
            "id": "notify/r/abc/1", "receiver": "team-x", "route": "r", "group_key": "{}:{alertname=\"HighLatency\"}",
            "group_labels": {"alertname": "HighLatency"},
            "firing": [
                {"fingerprint": "f1", "status": "firing", "labels": {"alertname": "HighLatency", "service": "api", "env": "prod"},
                 "annotations": {"summary": "p99 high"}, "starts_at_ms": 1_700_000_000_000_i64, "ends_at_ms": null, "count": 1, "generator_url": "http://prom/graph"},
                {"fingerprint": "f2", "status": "firing", "labels": {"alertname": "HighLatency", "service": "api", "env": "prod", "instance": "b"},
                 "annotations": {"summary": "p99 high"}, "starts_at_ms": 1_700_000_001_000_i64, "ends_at_ms": null, "count": 1, "generator_url": null}
            ],
            "resolved": [
                {"fingerprint": "f3", "status": "resolved", "labels": {"alertname": "HighLatency", "service": "web"},
                 "annotations": {}, "starts_at_ms": 1_699_999_000_000_i64, "ends_at_ms": 1_700_000_002_000_i64, "count": 2, "generator_url": null}
            ],
            "reason": "new", "summary": null, "status": "firing",
        })
    }

    #[test]
    fn webhook_body_has_alertmanagers_fields() {
        let b = webhook_body(&note(), 0, true, "http://am:9093", "team-x");
        assert_eq!(b["version"], "4");
        assert_eq!(b["status"], "firing");
        assert_eq!(b["receiver"], "team-x");
        assert_eq!(b["truncatedAlerts"], 0);
        assert_eq!(b["alerts"].as_array().map(Vec::len), Some(3));
        assert_eq!(b["commonLabels"], json!({"alertname": "HighLatency"}));
        assert_eq!(b["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(b["alerts"][0]["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(b["alerts"][2]["endsAt"], "2023-11-14T22:13:22.000Z");
        // send_resolved off: the resolved alert is gone and common labels widen.
        let b = webhook_body(&note(), 1, false, "", "team-x");
        assert_eq!(b["alerts"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["truncatedAlerts"], 1);
        assert_eq!(
            b["commonLabels"],
            json!({"alertname": "HighLatency", "env": "prod", "service": "api"})
        );
        assert_eq!(b["commonAnnotations"], json!({"summary": "p99 high"}));
    }

    #[test]
    fn subject_is_alertmanagers() {
        assert_eq!(subject(&note(), false), "[FIRING:2] HighLatency (prod api)");
        assert_eq!(subject(&note(), true), "[FIRING:2] HighLatency ");
        let mut r = note();
        r["firing"] = json!([]);
        assert_eq!(subject(&r, true), "[RESOLVED] HighLatency (web)");
        assert_eq!(color(&r, true), "good");
        assert_eq!(color(&note(), true), "danger");
    }

    #[test]
    fn pagerduty_triggers_then_resolves_the_same_incident() {
        let t = pagerduty(&note(), true, "http://x", "team-x", "critical", "aiops");
        assert_eq!(t["event_action"], "trigger");
        let mut r = note();
        r["firing"] = json!([]);
        let res = pagerduty(&r, true, "http://x", "team-x", "critical", "aiops");
        assert_eq!(res["event_action"], "resolve");
        assert_eq!(res["dedup_key"], t["dedup_key"]);
    }

    #[test]
    fn receivers_compile_with_secrets_as_markers() {
        let receivers = vec![(
            "team X".to_string(),
            serde_json::from_value::<Map<String, Value>>(json!({
                "webhook_configs": [{"url": "http://hook/secret-path", "max_alerts": 5}],
                "slack_configs": [{"api_url_file": "/etc/am/slack"}],
                "email_configs": [{"to": "a@b.c, d@e.f"}],
                "pushover_configs": [{"user_key": "x", "token": "y"}],
            }))
            .unwrap_or_default(),
        )];
        let global = serde_json::from_value::<Map<String, Value>>(json!({
            "smtp_smarthost": "127.0.0.1:2525", "smtp_from": "am@x", "smtp_require_tls": false
        }))
        .unwrap_or_default();
        let set = compile_receivers(
            &global,
            &receivers,
            &BTreeMap::new(),
            &ReceiverOptions::default(),
        );
        let set = match set {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(set.providers.len(), 3);
        assert_eq!(set.workflows.len(), 1);
        assert_eq!(set.unsupported.len(), 1);
        let all = serde_json::to_string(&set.providers).unwrap_or_default();
        assert!(!all.contains("secret-path"), "{all}");
        assert!(
            set.secrets
                .values()
                .any(|v| *v == SecretValue::File("/etc/am/slack".into()))
        );
        let wf = set.workflows.values().next().cloned().unwrap_or_default();
        assert!(!wf.contains("secret-path"));
        assert!(wf.contains("am_webhook(notification, 5, true"), "{wf}");
        // Missing URL: named.
        let bad = vec![(
            "r".to_string(),
            serde_json::from_value::<Map<String, Value>>(json!({"webhook_configs": [{}]}))
                .unwrap_or_default(),
        )];
        let e = compile_receivers(&global, &bad, &BTreeMap::new(), &ReceiverOptions::default());
        assert!(
            matches!(e, Err(m) if m.contains("receivers.r.webhook_configs[0]") && m.contains("url"))
        );
    }

    #[test]
    fn go_template_fields_render_over_alertmanagers_data() {
        let receivers = vec![(
            "chat".to_string(),
            serde_json::from_value::<Map<String, Value>>(json!({
                "slack_configs": [{
                    "api_url": "http://slack/x",
                    "title": "{{ template \"slack.default.title\" . }}",
                    "text": "{{ range .Alerts }}{{ .Labels.instance }}: {{ .Annotations.summary }}\n{{ end }}",
                    "color": "{{ if eq .Status \"firing\" }}#ff0000{{ else }}#00ff00{{ end }}",
                }],
                "msteams_configs": [{"webhook_url": "http://t/x", "title": "{{ humanize 3 }}"}],
            }))
            .unwrap_or_default(),
        )];
        let set = compile_receivers(
            &Map::new(),
            &receivers,
            &BTreeMap::new(),
            &ReceiverOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // The unsupported function falls back to the default title, reported.
        assert_eq!(set.unsupported.len(), 1, "{:?}", set.unsupported);
        assert!(set.unsupported[0].contains("humanize"));
        let wf: Value =
            serde_yaml_ng::from_str(set.workflows.values().next().map_or("", String::as_str))
                .unwrap_or(Value::Null);
        let slack = wf["workflow"]["actions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == "slack-0"))
            .cloned()
            .unwrap_or(Value::Null);
        let with = &slack["provider"]["with"];
        assert_eq!(
            go_field(
                &note(),
                "{{ template \"slack.default.title\" . }}",
                "am_text",
                false,
                "",
                "chat"
            ),
            "[FIRING:2] HighLatency (prod api)"
        );
        let r = crate::Renderer::default();
        let ctx = json!({"notification": note()});
        let get = |k: &str| {
            r.render_str(with[k].as_str().unwrap_or(""), &ctx)
                .unwrap_or_else(|e| panic!("{k}: {e}"))
        };
        assert_eq!(get("title"), "[FIRING:2] HighLatency (prod api)");
        assert_eq!(
            get("text"),
            "None: p99 high\nb: p99 high\n".replace("None", "<no value>")
        );
        assert_eq!(get("color"), "#ff0000");
        // A run-time error (a method of a string) gives the default, not a lost notification.
        assert_eq!(
            go_field(
                &note(),
                "{{ .Status.Format \"x\" }}",
                "am_subject",
                false,
                "",
                "chat"
            ),
            subject(&note(), false)
        );
    }

    #[test]
    fn label_values_are_data_not_templates() {
        let mut n = note();
        n["group_labels"]["alertname"] = json!("{{ 7*7 }}{{ .Status }}{% if true %}x{% endif %}");
        let set = compile_receivers(
            &Map::new(),
            &[(
                "r".to_string(),
                serde_json::from_value::<Map<String, Value>>(json!({"slack_configs": [{
                    "api_url": "http://s/x", "title": "{{ .GroupLabels.alertname }}"}]}))
                .unwrap_or_default(),
            )],
            &BTreeMap::new(),
            &ReceiverOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let wf: Value =
            serde_yaml_ng::from_str(set.workflows.values().next().map_or("", String::as_str))
                .unwrap_or(Value::Null);
        let with = &wf["workflow"]["actions"][0]["provider"]["with"];
        let ctx = json!({"notification": n});
        let r = crate::Renderer::default();
        let title = r
            .render_str(with["title"].as_str().unwrap_or(""), &ctx)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(title, "{{ 7*7 }}{{ .Status }}{% if true %}x{% endif %}");
        let text = r
            .render_str(with["text"].as_str().unwrap_or(""), &ctx)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains("{{ 7*7 }}"), "{text}");
    }
}
