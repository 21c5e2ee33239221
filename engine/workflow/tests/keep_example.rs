//! The users' Keep-style example workflow (pipelines/workflows/examples/alert-workflow.yaml)
//! compiles unchanged and runs in the engine: hyphenated step and provider names resolve as Keep
//! resolves them, the built-in `context-provider` and `incident-db` need no configuration,
//! `to_json_pretty` keeps Chinese readable, `{{ providers.NAME }}` resolves a configured provider
//! and its type must match. Plus properties of the hyphenated-path rewrite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_alerting::Decision;
use aiops_workflow::template::{keep_paths, keep_paths_expr};
use aiops_workflow::{
    EffectResult, EngineConfig, Limits, Renderer, StaticCatalog, WorkflowEngine, WorkflowEvent,
    compile_text,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[test]
fn an_unclosed_action_ending_in_chinese_is_left_for_the_template_engine() {
    let t = "{{ steps.a-b 告警";
    assert_eq!(keep_paths(t), "{{ steps[\"a-b\"] 告警");
}

fn example() -> String {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../pipelines/workflows/examples/alert-workflow.yaml"
    );
    std::fs::read_to_string(p).unwrap()
}

fn catalog() -> StaticCatalog {
    StaticCatalog {
        providers: BTreeMap::from([
            ("oncall-slack".to_string(), "slack".to_string()),
            ("jira".to_string(), "jira".to_string()),
        ]),
        secrets: vec![],
    }
}

fn engine() -> WorkflowEngine {
    let cat = catalog();
    let r = Renderer::default();
    let wf = compile_text("alert-workflow.yaml", &example(), &cat, &r).unwrap();
    WorkflowEngine::new(
        EngineConfig {
            workflows: BTreeMap::from([(wf.id.clone(), Arc::new(wf))]),
            strategies: vec![],
            limits: Limits::default(),
            catalog: Arc::new(cat),
        },
        r,
    )
}

fn alert(at: i64, service: &str, severity: &str) -> Decision {
    serde_json::from_value(json!({
        "type": "alert_state", "at_ms": at, "fingerprint": format!("fp-{service}"),
        "name": "HighErrorRate", "severity": severity, "service": service,
        "source": "api", "change": "firing", "count": 1,
        "labels": {"alertname": "HighErrorRate", "service": service, "description": "错误率超过 5%"},
    }))
    .unwrap()
}

fn intents(out: &[WorkflowEvent]) -> Vec<aiops_workflow::Intent> {
    out.iter()
        .filter_map(|e| match e {
            WorkflowEvent::Intent(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

fn ok(key: &str, response: Value) -> EffectResult {
    EffectResult {
        key: key.into(),
        ok: true,
        status: "ok".into(),
        response,
        error: None,
        attempts: 1,
        at_ms: 0,
    }
}

#[test]
fn the_example_runs_its_steps_then_slack_and_jira_with_the_rendered_text() {
    let mut e = engine();
    let mut out = Vec::new();
    e.on_decision(&alert(1_000, "api", "critical"), &mut out);
    let i = intents(&out);
    assert_eq!(i.len(), 1, "{out:?}");
    assert_eq!(i[0].kind, "context-provider");
    assert_eq!(i[0].provider, None);
    assert_eq!(i[0].params["lookbackPeriod"], "30m");
    assert_eq!(i[0].params["service"], "api");
    assert_eq!(i[0].params["at_ms"], 1_000);
    let context = json!({"results": {"service": "api", "lookback": "30m", "metrics": [], "logs": {"errors": 3, "top_templates": []}, "firing_alerts": [], "deploys": []}});
    let mut out = Vec::new();
    e.on_result(&ok(&i[0].key, context), &mut out);
    let i = intents(&out);
    assert_eq!(i.len(), 1, "{out:?}");
    assert_eq!(i[0].kind, "incident-db");
    assert_eq!(i[0].params["query"], "service:api AND resolved:true");
    assert_eq!(i[0].params["limit"], 5);
    let similar = json!({
        "results": ["INC-1 [resolved 2026-12-03 10:00] HighErrorRate on api — root cause: api — resolution: 回滚了版本"],
        "incidents": [{"id": "INC-1"}],
    });
    let mut out = Vec::new();
    e.on_result(&ok(&i[0].key, similar), &mut out);
    let i = intents(&out);
    assert_eq!(i.len(), 1, "{out:?}");
    assert_eq!(i[0].kind, "slack");
    assert_eq!(i[0].provider.as_deref(), Some("oncall-slack"));
    // Keep's `message` is the Slack provider's `text`.
    let text = i[0].params["text"].as_str().unwrap();
    assert!(
        text.contains("🔴 系统关键告警: HighErrorRate - 错误率超过 5%"),
        "{text}"
    );
    assert!(text.contains("服务: api"), "{text}");
    assert!(text.contains("相似事件: INC-1 [resolved"), "{text}");
    assert!(text.contains("resolution: 回滚了版本"), "{text}");
    assert!(
        text.contains("description=错误率超过 5%"),
        "details: {text}"
    );
    let mut out = Vec::new();
    e.on_result(&ok(&i[0].key, json!({})), &mut out);
    let i = intents(&out);
    assert_eq!(i.len(), 1, "the ticket is created (no ticket_id): {out:?}");
    assert_eq!(i[0].kind, "jira");
    assert_eq!(i[0].params["summary"], "[critical] HighErrorRate");
    let d = i[0].params["description"].as_str().unwrap();
    // The alert as pretty JSON: 2-space indent, Chinese as is.
    assert!(d.contains("\n  \"description\": \"错误率超过 5%\""), "{d}");
    assert!(d.contains("\"errors\": 3"), "{d}");
    assert!(d.contains("\"INC-1 [resolved"), "{d}");
    assert!(!d.contains("\\u"), "no escaped non-ASCII: {d}");
}

#[test]
fn the_trigger_filters_service_by_regex_and_severity() {
    let mut e = engine();
    for (svc, sev, runs) in [
        ("web", "critical", false),
        ("api", "warning", false),
        ("database", "critical", true),
        ("core", "critical", true),
        ("api-gateway", "critical", false),
    ] {
        let mut out = Vec::new();
        e.on_decision(&alert(1_000, svc, sev), &mut out);
        assert_eq!(!intents(&out).is_empty(), runs, "{svc} {sev}: {out:?}");
    }
}

#[test]
fn a_ticket_id_skips_the_jira_action() {
    let mut e = engine();
    let mut d = alert(1_000, "api", "critical");
    if let Decision::AlertState(c) = &mut d {
        c.labels.insert("ticket_id".into(), "OPS-9".into());
    }
    let mut out = Vec::new();
    e.on_decision(&d, &mut out);
    let mut next = intents(&out);
    let mut kinds = Vec::new();
    while let Some(i) = next.pop() {
        kinds.push(i.kind.clone());
        let resp = if i.kind == "incident-db" {
            json!({"results": [], "incidents": []})
        } else {
            json!({"results": {}})
        };
        let mut out = Vec::new();
        e.on_result(&ok(&i.key, resp), &mut out);
        next = intents(&out);
    }
    assert_eq!(kinds, ["context-provider", "incident-db", "slack"]);
}

#[test]
fn providers_name_must_be_configured_and_of_the_type() {
    let r = Renderer::default();
    let text = example();
    let mut cat = catalog();
    cat.providers.remove("oncall-slack");
    let e = compile_text("a.yaml", &text, &cat, &r).unwrap_err();
    assert!(e.message.contains("\"oncall-slack\""), "{e}");
    assert!(e.message.contains("configured: jira"), "{e}");
    assert_eq!(
        e.line,
        aiops_workflow::compile::line_of(&text, "oncall-slack")
    );
    let mut cat = catalog();
    cat.providers.insert("oncall-slack".into(), "teams".into());
    let e = compile_text("a.yaml", &text, &cat, &r).unwrap_err();
    assert!(
        e.message.contains("is of type \"teams\", not \"slack\""),
        "{e}"
    );
    // Built-ins take no config; their literal parameters are checked at load.
    for (bad, want) in [
        ("lookbackPeriod: \"30m\"", "lookbackPeriod: \"48h\""),
        ("limit: 5", "limit: 500"),
        ("AND resolved:true", "AND fixed:true"),
    ] {
        let t = text.replace(bad, want);
        let e = compile_text("a.yaml", &t, &catalog(), &r).unwrap_err();
        assert!(!e.message.is_empty(), "{want}");
    }
    let t = text.replace(
        "type: incident-db",
        "type: incident-db\n        config: \"{{ providers.jira }}\"",
    );
    let e = compile_text("a.yaml", &t, &catalog(), &r).unwrap_err();
    assert!(e.message.contains("built in"), "{e}");
}

#[test]
fn to_json_pretty_indents_two_spaces_and_keeps_chinese() {
    let r = Renderer::default();
    let ctx = json!({"a": {"名字": "数据库", "n": [1, 2]}});
    let s = r.render_str("{{ a | to_json_pretty }}", &ctx).unwrap();
    assert_eq!(
        s,
        "{\n  \"n\": [\n    1,\n    2\n  ],\n  \"名字\": \"数据库\"\n}"
    );
    let v: Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v, ctx["a"]);
}

#[test]
fn hyphenated_paths_resolve_and_subtraction_stays() {
    let r = Renderer::default();
    let ctx =
        json!({"steps": {"check-similar": {"results": ["x"]}, "a": {"n": 5}}, "b": 2, "a": 7});
    assert_eq!(
        r.render_str("{{ steps.check-similar.results | join(',') }}", &ctx)
            .unwrap(),
        "x"
    );
    assert_eq!(
        r.eval("{{ steps.check-similar.results }}", &ctx).unwrap(),
        json!(["x"])
    );
    assert!(r.truthy("steps.check-similar.results", &ctx).unwrap());
    assert_eq!(r.render_str("{{ a - b }}", &ctx).unwrap(), "5");
    assert_eq!(r.render_str("{{ steps.a.n-1 }}", &ctx).unwrap(), "4");
    assert_eq!(r.render_str("{{ steps.a.n - b }}", &ctx).unwrap(), "3");
    assert_eq!(
        r.render_str("{% if steps.check-similar.results %}yes{% endif %}", &ctx)
            .unwrap(),
        "yes"
    );
    // Text outside tags and string literals are not touched.
    assert_eq!(
        r.render_str("steps.check-similar {{ 'steps.check-similar' }}", &ctx)
            .unwrap(),
        "steps.check-similar steps.check-similar"
    );
    assert_eq!(
        keep_paths_expr("providers.oncall-slack"),
        "providers[\"oncall-slack\"]"
    );
    assert_eq!(
        keep_paths("{{ secrets.my-token }} and {{ x.my-token }}"),
        "{{ secrets[\"my-token\"] }} and {{ x.my-token }}"
    );
}

fn name() -> impl Strategy<Value = String> {
    // Step names: words joined by `-`, the word after a `-` not all digits.
    prop::collection::vec("[a-z_][a-z0-9_]{0,6}", 1..4).prop_map(|w| w.join("-"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `steps.NAME.results` renders exactly as `steps["NAME"].results` does.
    #[test]
    fn dotted_equals_subscript(n in name(), v in "[a-zA-Z0-9 中文]{0,12}") {
        let r = Renderer::default();
        let ctx = json!({"steps": {n.clone(): {"results": v.clone()}}});
        let dotted = r.render_str(&format!("<{{{{ steps.{n}.results }}}}>"), &ctx).unwrap();
        let sub = r.render_str(&format!("<{{{{ steps[\"{n}\"].results }}}}>"), &ctx).unwrap();
        prop_assert_eq!(&dotted, &sub);
        prop_assert_eq!(dotted, format!("<{v}>"));
    }

    /// Templates without a hyphen after a steps/providers/secrets root are left exactly as
    /// written, subtraction included.
    #[test]
    fn other_templates_are_unchanged(a in "[a-z]{1,5}", b in "[a-z]{1,5}", k in 0i64..100) {
        for t in [
            format!("{{{{ {a} - {b} }}}}"),
            format!("{{{{ {a}-{b} }}}}"),
            format!("{{{{ steps.{a} - {b} }}}}"),
            format!("{{{{ steps.{a}-{k} }}}}"),
            format!("{{{{ alert.{a}-{b} }}}}"),
            format!("{{{{ '{{{{ steps.{a}-{b} }}}}' }}}}"),
            format!("text steps.{a}-{b}"),
        ] {
            prop_assert_eq!(keep_paths(&t), t.as_str());
        }
    }

    /// Any text, closed or not, ASCII or not, is rewritten without a panic (an unclosed
    /// action ending in a multi-byte character used to be cut inside it).
    #[test]
    fn any_text_is_rewritten_without_panic(t in "(\\{\\{|\\{%| |steps\\.|a-b|告警|é|\"|\\}\\})*") {
        let _ = keep_paths(&t);
    }

    /// Real subtraction still computes.
    #[test]
    fn subtraction_computes(x in -1000i64..1000, y in 0i64..1000) {
        let r = Renderer::default();
        let ctx = json!({"steps": {"s": {"n": x}}, "y": y});
        prop_assert_eq!(r.render_str("{{ steps.s.n - y }}", &ctx).unwrap(), (x - y).to_string());
        prop_assert_eq!(r.render_str(&format!("{{{{ steps.s.n-{y} }}}}"), &ctx).unwrap(), (x - y).to_string());
    }
}
