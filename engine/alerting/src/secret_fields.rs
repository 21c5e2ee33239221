//! The alerting configuration as it may be shown (`GET /api/v2/status`, which a viewer can read):
//! every field Alertmanager types `Secret` or `SecretURL` replaced by `<secret>`, as
//! Alertmanager itself shows its configuration, and the password of any URL with credentials.

use serde_yaml_ng::Value;

/// What a secret field shows instead of its value (Alertmanager's spelling).
pub const SECRET_SHOWN: &str = "<secret>";

/// Keys whose value is a secret wherever they appear: Alertmanager's `Secret`/`SecretURL`
/// fields (global, receivers' integrations and `http_config` of every kind) plus the
/// credential-like names aiops may add.
const SECRET_KEYS: &[&str] = &[
    // global
    "slack_api_url",
    "smtp_auth_password",
    "smtp_auth_secret",
    "opsgenie_api_key",
    "victorops_api_key",
    "wechat_api_secret",
    "telegram_bot_token",
    "rocketchat_token",
    "rocketchat_token_id",
    "webex_api_token",
    "jira_api_token",
    // http_config (prometheus/common)
    "password",
    "credentials",
    "bearer_token",
    "client_secret",
    "secret_key",
    // receivers
    "routing_key",
    "service_key",
    "api_key",
    "api_secret",
    "auth_password",
    "auth_secret",
    "user_key",
    "token",
    "token_id",
    "bot_token",
    "webhook_url",
    "alert_source_token",
    "secret",
];

/// Keys whose value is a secret inside one kind of integration only.
const SECRET_IN: &[(&str, &str)] = &[
    // Slack's incoming-webhook URL carries its token.
    ("slack_configs", "api_url"),
    // A webhook receiver's URL is a SecretURL in Alertmanager.
    ("webhook_configs", "url"),
    // TLS private keys (prometheus/common types `key` as Secret).
    ("tls_config", "key"),
];

/// Maps whose every value is secret (proxy headers carry credentials).
const SECRET_MAPS: &[&str] = &["proxy_connect_header"];

/// The configuration text with every secret replaced by [`SECRET_SHOWN`], re-serialized.
///
/// # Errors
/// The YAML does not parse (cannot happen for a loaded configuration); the caller must show
/// nothing rather than the raw text.
pub fn redacted_yaml(text: &str) -> Result<String, crate::yaml::YamlError> {
    let mut v: Value = crate::yaml::from_str(text)?;
    redact(&mut v, "");
    Ok(serde_yaml_ng::to_string(&v)?)
}

fn hide(v: &mut Value) {
    match v {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::Sequence(items) => items.iter_mut().for_each(hide),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, x)| hide(x)),
        other => *other = Value::String(SECRET_SHOWN.into()),
    }
}

/// `url` with the password of its user info replaced (`https://user:<secret>@host/`).
fn hide_url_password(s: &str) -> Option<String> {
    let scheme_end = s.find("://")? + 3;
    let rest = &s[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(format!(
        "{}{}:{SECRET_SHOWN}{}",
        &s[..scheme_end],
        &authority[..colon],
        &rest[at..]
    ))
}

fn redact(v: &mut Value, parent: &str) {
    match v {
        Value::Mapping(m) => {
            for (k, x) in m.iter_mut() {
                let key = k.as_str().unwrap_or("");
                if SECRET_KEYS.contains(&key)
                    || SECRET_IN.iter().any(|(p, s)| *p == parent && *s == key)
                {
                    hide(x);
                } else if SECRET_MAPS.contains(&key) {
                    if let Value::Mapping(h) = x {
                        h.iter_mut().for_each(|(_, y)| hide(y));
                    } else {
                        hide(x);
                    }
                } else {
                    redact(x, key);
                }
            }
        }
        // A list keeps its key as the parent: `slack_configs: [{api_url: …}]`.
        Value::Sequence(items) => items.iter_mut().for_each(|x| redact(x, parent)),
        Value::String(s) => {
            if let Some(h) = hide_url_password(s) {
                *s = h;
            }
        }
        Value::Tagged(t) => redact(&mut t.value, parent),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_yaml;

    #[test]
    fn every_secret_field_is_shown_as_secret() {
        let text = r#"
global:
  slack_api_url: https://hooks.slack.com/services/T0/B0/GLOBALSLACK
  smtp_auth_password: SMTPPASS
  opsgenie_api_key: OPSGENIEKEY
  resolve_timeout: 5m
route: {receiver: team}
receivers:
  - name: team
    slack_configs:
      - api_url: https://hooks.slack.com/services/T0/B0/SLACKTOKEN
        channel: '#ops'
        http_config:
          basic_auth: {username: bob, password: BASICPASS}
          authorization: {type: Bearer, credentials: AUTHCRED}
          oauth2: {client_id: id, client_secret: OAUTHSECRET, token_url: http://127.0.0.1/t}
          proxy_connect_header: {Proxy-Authorization: [PROXYCRED]}
          tls_config: {key: TLSKEY, cert_file: /c.pem}
    pagerduty_configs: [{routing_key: PDROUTING, service_key: PDSERVICE}]
    webhook_configs: [{url: 'http://127.0.0.1:9/hook?token=HOOKTOKEN'}]
    email_configs: [{to: a@b.c, auth_password: EMAILPASS, auth_secret: EMAILSECRET}]
    pushover_configs: [{user_key: PUSHUSER, token: PUSHTOKEN}]
    telegram_configs: [{bot_token: TGTOKEN, chat_id: 1}]
    discord_configs: [{webhook_url: 'https://discord.example/DISCORDHOOK'}]
    msteams_configs: [{webhook_url: 'https://teams.example/TEAMSHOOK'}]
    wechat_configs: [{api_secret: WECHATSECRET}]
    victorops_configs: [{api_key: VOKEY, routing_key: VOROUTE}]
    opsgenie_configs: [{api_url: 'https://user:URLPASS@api.opsgenie.com/'}]
"#;
        let out = redacted_yaml(text).unwrap_or_default();
        for s in [
            "GLOBALSLACK",
            "SMTPPASS",
            "OPSGENIEKEY",
            "SLACKTOKEN",
            "BASICPASS",
            "AUTHCRED",
            "OAUTHSECRET",
            "PROXYCRED",
            "TLSKEY",
            "PDROUTING",
            "PDSERVICE",
            "HOOKTOKEN",
            "EMAILPASS",
            "EMAILSECRET",
            "PUSHUSER",
            "PUSHTOKEN",
            "TGTOKEN",
            "DISCORDHOOK",
            "TEAMSHOOK",
            "WECHATSECRET",
            "VOKEY",
            "VOROUTE",
            "URLPASS",
        ] {
            assert!(!out.contains(s), "{s} shown:\n{out}");
        }
        // What is not secret stays readable.
        for s in [
            "#ops",
            "bob",
            "/c.pem",
            "a@b.c",
            "resolve_timeout: 5m",
            "<secret>",
        ] {
            assert!(out.contains(s), "{s} missing:\n{out}");
        }
    }
}
