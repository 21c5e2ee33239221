//! The provider list: unique names, every kind builds from an example config, errors name the
//! provider and the field and never a value.

use super::{build_provider, provider_kinds};
use crate::sinks::SinkError;
use crate::sinks::testing::local_ctx;
use serde_json::{Value, json};

/// One working example per kind (as a `[providers.NAME]` table would deserialize).
fn example(kind: &str) -> Value {
    match kind {
        "webhook" => {
            json!({"kind": "webhook", "url": "https://hooks.example.com/x", "secret": "k123456"})
        }
        "slack" => json!({"kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}),
        "teams" => {
            json!({"kind": "teams", "url": "https://prod.westus.logic.azure.com/workflows/x?sig=abc"})
        }
        "feishu" => {
            json!({"kind": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/x", "secret": "s"})
        }
        "dingtalk" => {
            json!({"kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=x", "secret": "SEC1"})
        }
        "email" => {
            json!({"kind": "email", "host": "smtp.example.com", "port": 587, "from": "aiops <ops@example.com>", "username": "u", "password": "p"})
        }
        "jira" => {
            json!({"kind": "jira", "url": "https://example.atlassian.net", "user": "ops@example.com", "token": "t"})
        }
        "pagerduty" => {
            json!({"kind": "pagerduty", "routing_key": "R0123456789012345678901234567890"})
        }
        "grafana" => {
            json!({"kind": "grafana", "url": "https://grafana.example.com", "token": "glsa_x"})
        }
        "http" => json!({"kind": "http", "url": "https://cmdb.example.com/api/"}),
        "llm" => {
            json!({"kind": "llm", "api": "openai", "model": "gpt-4o-mini", "api_key": "k123456"})
        }
        "exec" => {
            json!({"kind": "exec", "commands": {"restart": {"argv": ["/usr/bin/systemctl", "restart"], "max_args": 1, "timeout": "30s"}}})
        }
        "github_actions" => {
            json!({"kind": "github_actions", "token": "ghp_dispatchTOKEN", "owner": "acme", "repo": "web", "workflow": "deploy.yml"})
        }
        "argocd" => {
            json!({"kind": "argocd", "server": "https://argocd.example.com", "token": "argocdTOKEN"})
        }
        other => panic!("no example for {other}"),
    }
}

#[test]
fn kinds_are_unique_and_all_build() {
    let kinds = provider_kinds();
    let mut sorted = kinds.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), kinds.len());
    for kind in kinds {
        let p = build_provider("p", &example(kind), &local_ctx())
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(p.kind(), *kind);
    }
}

#[test]
fn every_kind_refuses_unknown_fields_by_name() {
    for kind in provider_kinds() {
        let mut cfg = example(kind);
        cfg["urll"] = json!("https://typo.example.com/sekret-value");
        let err = build_provider("pagers", &cfg, &local_ctx()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SinkError::Config(_)), "{kind}: {msg}");
        assert!(
            msg.contains("urll") && msg.contains("pagers"),
            "{kind}: {msg}"
        );
        assert!(!msg.contains("sekret-value"), "{kind}: {msg}");
    }
}

#[test]
fn bad_tables() {
    let ctx = local_ctx();
    let e = build_provider("x", &json!({"url": "u"}), &ctx).unwrap_err();
    assert!(e.to_string().contains("missing \"kind\""), "{e}");
    let e = build_provider("x", &json!({"kind": "smoke-signal"}), &ctx).unwrap_err();
    assert!(
        e.to_string().contains("unknown kind") && e.to_string().contains("slack"),
        "{e}"
    );
    let e = build_provider("x", &json!("slack"), &ctx).unwrap_err();
    assert!(matches!(e, SinkError::Config(_)));
    // A wrong type names the field path and not the value.
    let e = build_provider("x", &json!({"kind": "exec", "commands": {"r": {"argv": ["/bin/true"], "max_args": "many-many"}}}), &ctx).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("commands.r.max_args") && !msg.contains("many-many"),
        "{msg}"
    );
    let e = build_provider("x", &json!({"kind": "slack", "url": 12}), &ctx).unwrap_err();
    assert!(e.to_string().contains("url"), "{e}");
}

#[test]
fn urls_in_config_are_checked_against_the_policy() {
    let ctx = crate::sinks::ProviderContext::default();
    for kind in [
        "webhook", "slack", "teams", "feishu", "dingtalk", "jira", "grafana", "http",
    ] {
        let mut cfg = example(kind);
        cfg["url"] = json!("http://169.254.169.254/latest/meta-data/TOKENPATH");
        let e = build_provider("meta", &cfg, &ctx).unwrap_err();
        assert!(matches!(e, SinkError::Refused { .. }), "{kind}: {e}");
        assert!(!e.to_string().contains("TOKENPATH"), "{kind}: {e}");
    }
    for (kind, field) in [("github_actions", "api_url"), ("argocd", "server")] {
        let mut cfg = example(kind);
        cfg[field] = json!("http://169.254.169.254/latest/meta-data/TOKENPATH");
        let e = build_provider("meta", &cfg, &ctx).unwrap_err();
        assert!(matches!(e, SinkError::Refused { .. }), "{kind}: {e}");
        assert!(!e.to_string().contains("TOKENPATH"), "{kind}: {e}");
    }
    let cfg = json!({"kind": "pagerduty", "routing_key": "R0123456789012345678901234567890", "url": "http://10.0.0.1/v2/enqueue"});
    assert!(matches!(
        build_provider("pd", &cfg, &ctx),
        Err(SinkError::Refused { .. })
    ));
}

#[test]
fn debug_of_every_provider_hides_secrets() {
    let secrets = [
        "k123456",
        "T/B/X",
        "sig=abc",
        "SEC1",
        "glsa_x",
        "R0123456789012345678901234567890",
        "ghp_dispatchTOKEN",
        "argocdTOKEN",
    ];
    for kind in provider_kinds() {
        let p = build_provider("p", &example(kind), &local_ctx()).unwrap();
        let debug = format!("{p:?}");
        for s in secrets {
            assert!(!debug.contains(s), "{kind} Debug leaks {s}: {debug}");
        }
        if *kind == "email" {
            assert!(!debug.contains("\"p\""), "{debug}");
        }
    }
}
