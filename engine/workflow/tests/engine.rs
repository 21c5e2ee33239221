//! Behaviour of the workflow engine: triggers and filters, steps feeding actions, foreach and the
//! blast-radius guard, approvals bound to the rendered call, throttles, concurrency, template
//! injection and size limits, secrets as markers, auto-heal's remedy loop, determinism across a
//! checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_alerting::Decision;
use aiops_workflow::autoheal::compile_strategies;
use aiops_workflow::{
    EffectResult, EngineConfig, Limits, Rate, Renderer, StaticCatalog, WorkflowControl,
    WorkflowEngine, WorkflowEvent, compile_text,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn catalog() -> StaticCatalog {
    let mut providers = BTreeMap::new();
    providers.insert("slack-ops".to_string(), "slack".to_string());
    providers.insert("pd".to_string(), "pagerduty".to_string());
    providers.insert("local".to_string(), "exec".to_string());
    StaticCatalog {
        providers,
        secrets: vec!["PD_KEY".into()],
    }
}

fn engine_with(files: &[&str], strategies: Option<&str>, limits: Limits) -> WorkflowEngine {
    let cat = catalog();
    let r = Renderer::default();
    let mut workflows = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let wf = compile_text(&format!("wf{i}.yaml"), f, &cat, &r).unwrap();
        workflows.insert(wf.id.clone(), Arc::new(wf));
    }
    let strategies = strategies
        .map(|t| {
            compile_strategies("s.yaml", t, &cat, &r)
                .unwrap()
                .into_iter()
                .map(Arc::new)
                .collect()
        })
        .unwrap_or_default();
    WorkflowEngine::new(
        EngineConfig {
            workflows,
            strategies,
            limits,
            catalog: Arc::new(cat),
        },
        r,
    )
}

fn engine(files: &[&str]) -> WorkflowEngine {
    engine_with(files, None, Limits::default())
}

fn alert(at: i64, fp: &str, name: &str, change: &str, labels: Value) -> Decision {
    serde_json::from_value(json!({
        "type": "alert_state", "at_ms": at, "fingerprint": fp, "name": name,
        "severity": labels.get("severity").and_then(Value::as_str).unwrap_or("critical"),
        "service": labels.get("service").and_then(Value::as_str).unwrap_or("checkout"),
        "source": "rule", "change": change, "count": 1, "labels": labels,
    }))
    .unwrap()
}

fn incident(
    at: i64,
    id: &str,
    change: &str,
    service: &str,
    alert_name: &str,
    evidence: bool,
) -> Decision {
    let reasons: Vec<&str> = if evidence {
        vec!["anomaly on this service before the alerts"]
    } else {
        vec!["earliest alert"]
    };
    serde_json::from_value(json!({
        "type": "incident", "at_ms": at, "change": change,
        "incident": {
            "id": id, "title": format!("{alert_name} on {service}"), "status": if change == "resolved" {"resolved"} else {"open"},
            "severity": "critical", "opened_at_ms": at, "acknowledged_at_ms": null, "acknowledged_by": null,
            "resolved_at_ms": null, "resolved_by": null, "last_activity_ms": at,
            "alerts": {"fp1": {"name": alert_name, "service": service, "severity": "critical", "first_firing_ms": at, "status": "firing"}},
            "keys": [], "root_causes": [{"service": service, "score": 0.9, "reasons": reasons}],
            "timeline": [], "timeline_dropped": 0
        }
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
        status: "200".into(),
        response,
        error: None,
        attempts: 1,
        at_ms: 0,
    }
}

fn failed(key: &str) -> EffectResult {
    EffectResult {
        key: key.into(),
        ok: false,
        status: "500".into(),
        response: Value::Null,
        error: Some("server error".into()),
        attempts: 3,
        at_ms: 0,
    }
}

fn finished(out: &[WorkflowEvent]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|e| match e {
            WorkflowEvent::ExecutionFinished { id, status, .. } => {
                Some((id.clone(), status.clone()))
            }
            _ => None,
        })
        .collect()
}

const PAGE: &str = r#"
workflow:
  id: page-critical
  description: Page on critical checkout alerts
  triggers:
    - type: alert
      filters:
        - key: severity
          value: critical
        - key: labels.service
          value: r"check.*"
        - key: status
          value: firing
  steps:
    - name: owner
      provider:
        type: sql
        with:
          query: "SELECT team FROM services WHERE service = $service"
          params: { service: "{{ alert.service }}" }
  actions:
    - name: page
      if: "alert.severity == 'critical'"
      provider:
        type: pagerduty
        config: "{{ providers.pd }}"
        with:
          summary: "{{ alert.name }} on {{ alert.service }} (team {{ steps.owner.results.team }})"
          routing_key: "{{ secrets.PD_KEY }}"
          labels: "{{ alert.labels | tojson }}"
          tags: "{{ alert.labels | list | sort | join(',') }}"
"#;

#[test]
fn alert_trigger_runs_steps_then_actions_with_rendered_params() {
    let mut e = engine(&[PAGE]);
    let mut out = Vec::new();
    // Filtered out: warning, other service.
    e.on_decision(
        &alert(
            1000,
            "a",
            "HighErrors",
            "firing",
            json!({"service": "checkout", "severity": "warning"}),
        ),
        &mut out,
    );
    e.on_decision(
        &alert(
            1000,
            "b",
            "HighErrors",
            "firing",
            json!({"service": "search", "severity": "critical"}),
        ),
        &mut out,
    );
    assert!(intents(&out).is_empty(), "{out:?}");
    e.on_decision(
        &alert(
            2000,
            "c",
            "HighErrors",
            "firing",
            json!({"service": "checkout", "severity": "critical"}),
        ),
        &mut out,
    );
    let i = intents(&out);
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].kind, "sql");
    assert_eq!(i[0].params["params"]["service"], "checkout");
    let key = i[0].key.clone();
    assert_eq!(key, "page-critical/alert/c/firing/2000/owner");
    out.clear();
    e.on_result(&ok(&key, json!({"team": "payments"})), &mut out);
    let i = intents(&out);
    assert_eq!(i.len(), 1, "{out:?}");
    assert_eq!(i[0].provider.as_deref(), Some("pd"));
    assert_eq!(
        i[0].params["summary"],
        "HighErrors on checkout (team payments)"
    );
    // The secret is a marker, never its value.
    assert_eq!(i[0].params["routing_key"], "⟦secret:PD_KEY⟧");
    assert_eq!(i[0].params["tags"], "service,severity");
    let labels: Value = serde_json::from_str(i[0].params["labels"].as_str().unwrap()).unwrap();
    assert_eq!(labels["service"], "checkout");
    out.clear();
    e.on_result(&ok(&i[0].key, json!({"dedup_key": "x"})), &mut out);
    assert_eq!(
        finished(&out),
        vec![(
            "page-critical/alert/c/firing/2000".into(),
            "succeeded".into()
        )]
    );
    assert_eq!(e.pending_intents().count(), 0);
    // The same decision again (a replayed input) starts nothing new.
    out.clear();
    e.on_decision(
        &alert(
            2000,
            "c",
            "HighErrors",
            "firing",
            json!({"service": "checkout", "severity": "critical"}),
        ),
        &mut out,
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn failure_escalates_and_condition_skips() {
    let wf = r#"
workflow:
  id: restart
  triggers: [{type: alert}]
  actions:
    - name: only-critical
      if: "alert.severity == 'critical'"
      provider: {type: exec, config: local, with: {command: restart, args: ["{{ alert.service }}"]}}
  escalate:
    type: slack
    config: slack-ops
    with: {text: "restart failed: {{ failure.reason }}"}
"#;
    let mut e = engine(&[wf]);
    let mut out = Vec::new();
    e.on_decision(
        &alert(1, "w", "X", "firing", json!({"severity": "warning"})),
        &mut out,
    );
    assert!(
        matches!(&out[1], WorkflowEvent::StepSkipped { refused: false, .. }),
        "{out:?}"
    );
    assert_eq!(finished(&out)[0].1, "succeeded");
    out.clear();
    e.on_decision(
        &alert(2, "c", "X", "firing", json!({"severity": "critical"})),
        &mut out,
    );
    let k = intents(&out)[0].key.clone();
    out.clear();
    e.on_result(&failed(&k), &mut out);
    let esc = intents(&out);
    assert_eq!(esc.len(), 1);
    assert_eq!(esc[0].provider.as_deref(), Some("slack-ops"));
    assert!(
        esc[0].params["text"]
            .as_str()
            .unwrap()
            .contains("server error")
    );
    out.clear();
    e.on_result(&ok(&esc[0].key, Value::Null), &mut out);
    assert_eq!(finished(&out)[0].1, "escalated");
}

#[test]
fn foreach_and_blast_radius() {
    let wf = r#"
workflow:
  id: fanout
  triggers: [{type: manual}]
  actions:
    - name: restart-each
      foreach: "inputs.hosts"
      blast_radius: 3
      provider: {type: exec, config: local, with: {command: restart, args: ["{{ foreach.value }}"]}}
"#;
    let mut e = engine(&[wf]);
    let mut out = Vec::new();
    let run = |e: &mut WorkflowEngine, out: &mut Vec<WorkflowEvent>, id: &str, hosts: Value| {
        e.on_control(
            &WorkflowControl::Execute {
                workflow: "fanout".into(),
                request_id: id.into(),
                by: "ann".into(),
                inputs: json!({"hosts": hosts}),
            },
            10,
            out,
        )
    };
    run(&mut e, &mut out, "r1", json!(["a", "b"])).unwrap();
    let i = intents(&out);
    assert_eq!(i.len(), 2);
    assert_eq!(i[0].key, "fanout/manual/r1/restart-each#0");
    assert_eq!(i[1].params["args"], json!(["b"]));
    out.clear();
    run(&mut e, &mut out, "r2", json!(["a", "b", "c", "d"])).unwrap();
    assert!(intents(&out).is_empty());
    let reason = out.iter().find_map(|x| match x {
        WorkflowEvent::StepSkipped {
            reason,
            refused: true,
            ..
        } => Some(reason.clone()),
        _ => None,
    });
    assert!(
        reason
            .unwrap()
            .contains("4 targets, more than its blast radius of 3")
    );
    assert_eq!(finished(&out)[0].1, "failed");
    out.clear();
    run(&mut e, &mut out, "r3", json!([])).unwrap();
    assert!(intents(&out).is_empty());
    assert!(format!("{out:?}").contains("target set is empty"));
    // Unknown workflow and a workflow without a manual trigger are refused.
    assert!(
        e.on_control(
            &WorkflowControl::Execute {
                workflow: "nope".into(),
                request_id: "x".into(),
                by: "a".into(),
                inputs: Value::Null
            },
            11,
            &mut out
        )
        .is_err()
    );
}

const APPROVE: &str = r#"
workflow:
  id: drain-node
  triggers: [{type: alert}]
  actions:
    - name: drain
      approval: {required: true, role: sre, timeout: 10m}
      provider: {type: exec, config: local, with: {command: drain, args: ["{{ alert.labels.node }}"]}}
  escalate: {type: slack, config: slack-ops, with: {text: "not approved: {{ failure.reason }}"}}
"#;

#[test]
fn approval_blocks_until_approved_by_the_right_role_for_the_same_call() {
    let mut e = engine(&[APPROVE]);
    let mut out = Vec::new();
    e.on_decision(
        &alert(1000, "n1", "NodeBad", "firing", json!({"node": "n1"})),
        &mut out,
    );
    assert!(intents(&out).is_empty());
    let (exec, digest) = out
        .iter()
        .find_map(|x| match x {
            WorkflowEvent::ApprovalRequested {
                execution,
                digest,
                role,
                calls,
                ..
            } => {
                assert_eq!(role, "sre");
                assert_eq!(calls[0]["params"]["args"], json!(["n1"]));
                Some((execution.clone(), digest.clone()))
            }
            _ => None,
        })
        .unwrap();
    out.clear();
    // Wrong role.
    let r = e.on_control(
        &WorkflowControl::Approve {
            execution: exec.clone(),
            digest: digest.clone(),
            by: "bob".into(),
            roles: vec!["viewer".into()],
        },
        2000,
        &mut out,
    );
    assert!(r.unwrap_err().contains("needs role \"sre\""));
    // Right role, digest of another call.
    let r = e.on_control(
        &WorkflowControl::Approve {
            execution: exec.clone(),
            digest: "0".repeat(64),
            by: "ann".into(),
            roles: vec!["sre".into()],
        },
        2000,
        &mut out,
    );
    assert!(r.unwrap_err().contains("not the one approved"));
    assert!(intents(&out).is_empty());
    out.clear();
    e.on_control(
        &WorkflowControl::Approve {
            execution: exec.clone(),
            digest,
            by: "ann".into(),
            roles: vec!["sre".into()],
        },
        3000,
        &mut out,
    )
    .unwrap();
    let i = intents(&out);
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].params["args"], json!(["n1"]));

    // A second alert is never approved: it times out and escalates.
    out.clear();
    e.on_decision(
        &alert(4000, "n2", "NodeBad", "firing", json!({"node": "n2"})),
        &mut out,
    );
    assert!(e.next_timer_ms().unwrap() <= 4000 + 600_000);
    e.on_tick(4000 + 599_000, &mut out);
    assert!(!format!("{out:?}").contains("ApprovalTimedOut"));
    e.on_tick(4000 + 600_000, &mut out);
    assert!(format!("{out:?}").contains("ApprovalTimedOut"));
    let esc = intents(&out);
    assert_eq!(esc.last().unwrap().provider.as_deref(), Some("slack-ops"));
}

#[test]
fn an_approval_expires_on_time_live_and_after_a_restore_with_records_in_between() {
    let mut live = engine(&[APPROVE]);
    let mut out = Vec::new();
    live.on_decision(
        &alert(4000, "n2", "NodeBad", "firing", json!({"node": "n2"})),
        &mut out,
    );
    let mut restored = engine(&[APPROVE]);
    restored.restore(&live.snapshot().unwrap()).unwrap();
    for e in [&mut live, &mut restored] {
        let mut out = Vec::new();
        assert_eq!(e.next_timer_ms(), Some(4000 + 600_000));
        // Records that move the time without reaching the expiry (other alerts' decisions).
        for k in 0..50 {
            e.on_decision(
                &alert(5000 + k, &format!("o{k}"), "Other", "resolved", json!({})),
                &mut out,
            );
        }
        e.on_tick(4000 + 599_999, &mut out);
        assert!(!format!("{out:?}").contains("ApprovalTimedOut"));
        assert_eq!(e.next_timer_ms(), Some(4000 + 600_000));
        e.on_tick(4000 + 600_000, &mut out);
        assert!(format!("{out:?}").contains("ApprovalTimedOut"));
        assert_ne!(
            e.next_timer_ms(),
            Some(4000 + 600_000),
            "the expired approval is gone"
        );
    }
}

#[test]
fn throttle_until_resolved_and_concurrency_queue() {
    let wf = r#"
workflow:
  id: t
  concurrency: 1
  queue: 1
  throttle: {key: "{{ alert.fingerprint }}", until: resolved}
  triggers: [{type: alert, filters: [{key: status, value: firing}]}]
  actions:
    - name: notify
      provider: {type: slack, config: slack-ops, with: {text: "{{ alert.name }}"}}
"#;
    let mut e = engine(&[wf]);
    let mut out = Vec::new();
    e.on_decision(&alert(1, "a", "A", "firing", json!({})), &mut out);
    e.on_decision(&alert(2, "a", "A", "firing", json!({})), &mut out);
    assert_eq!(e.counters().throttled, 1);
    e.on_decision(&alert(3, "b", "B", "firing", json!({})), &mut out);
    e.on_decision(&alert(4, "c", "C", "firing", json!({})), &mut out);
    let c = e.counters();
    assert_eq!((c.started, c.queued, c.cancelled), (1, 1, 1), "{out:?}");
    let first = intents(&out)[0].key.clone();
    out.clear();
    e.on_result(&ok(&first, Value::Null), &mut out);
    // The queued one starts when the slot frees.
    assert_eq!(intents(&out).len(), 1);
    assert_eq!(intents(&out)[0].params["text"], "B");
    // Resolved releases the throttle of `a`.
    out.clear();
    e.on_decision(&alert(5, "a", "A", "resolved", json!({})), &mut out);
    e.on_decision(&alert(6, "a", "A", "firing", json!({})), &mut out);
    assert_eq!(e.counters().throttled, 1);
    assert!(format!("{out:?}").contains("ExecutionQueued"));
}

#[test]
fn rate_limit_per_provider_delays_in_log_time() {
    let wf = r#"
workflow:
  id: r
  concurrency: 100
  triggers: [{type: alert}]
  actions:
    - name: notify
      provider: {type: slack, config: slack-ops, with: {text: "{{ alert.name }}"}}
"#;
    let mut limits = Limits::default();
    limits.provider.insert(
        "slack-ops".into(),
        Rate {
            count: 2,
            per_ms: 60_000,
        },
    );
    let mut e = engine_with(&[wf], None, limits);
    let mut out = Vec::new();
    for i in 0..5 {
        e.on_decision(
            &alert(1000 + i, &format!("f{i}"), "A", "firing", json!({})),
            &mut out,
        );
    }
    assert_eq!(intents(&out).len(), 2);
    assert_eq!(e.counters().rate_limited, 3);
    out.clear();
    e.on_tick(30_000, &mut out);
    assert_eq!(intents(&out).len(), 0);
    e.on_tick(61_500, &mut out);
    assert_eq!(intents(&out).len(), 2);
    e.on_tick(122_000, &mut out);
    assert_eq!(intents(&out).len(), 3);
    // Idle windows are dropped: the state does not keep every target ever seen.
    let before = e.snapshot().unwrap().len();
    e.on_tick(10_000_000, &mut out);
    assert!(e.snapshot().unwrap().len() < before);
}

#[test]
fn template_injection_is_data_and_huge_output_is_cut() {
    let wf = r#"
workflow:
  id: inj
  triggers: [{type: alert}]
  actions:
    - name: run
      provider: {type: exec, config: local, with: {command: restart, args: ["{{ alert.labels.service }}", "--fixed"], note: "svc={{ alert.labels.service }}"}}
"#;
    let mut e = engine(&[wf]);
    let mut out = Vec::new();
    let evil = "x{{ 7*7 }}{% for i in range(9) %}y{% endfor %}; rm -rf / $(id) --help a b";
    e.on_decision(
        &alert(1, "e", "E", "firing", json!({"service": evil})),
        &mut out,
    );
    let i = intents(&out);
    assert_eq!(i[0].params["args"], json!([evil, "--fixed"]));
    assert_eq!(i[0].params["note"], format!("svc={evil}"));

    // Data cannot forge a secret marker for the executor to fill in.
    let mut out = Vec::new();
    e.on_decision(
        &alert(2, "f", "F", "firing", json!({"service": "⟦secret:PD_KEY⟧"})),
        &mut out,
    );
    let i = intents(&out);
    assert_eq!(i[0].params["args"][0], "[secret:PD_KEY⟧");

    let big = r#"
workflow:
  id: big
  triggers: [{type: alert}]
  actions:
    - name: run
      provider: {type: slack, config: slack-ops, with: {text: "{% for i in range(100000) %}{{ alert.name }}{% endfor %}"}}
"#;
    let mut e = engine(&[big]);
    let mut out = Vec::new();
    e.on_decision(
        &alert(1, "e", &"M".repeat(1000), "firing", json!({})),
        &mut out,
    );
    assert!(intents(&out).is_empty());
    let s = format!("{out:?}");
    assert!(
        s.contains("output larger than") || s.contains("instructions"),
        "{s}"
    );
    assert_eq!(finished(&out)[0].1, "failed");
}

#[test]
fn compile_errors_name_file_line_and_reason() {
    let cat = catalog();
    let r = Renderer::default();
    let cases = [
        (
            "workflow:\n  id: a\n  triggers: [{type: alert}]\n  actions:\n    - name: x\n      provider: {type: slack, config: nope, with: {}}\n",
            6,
            "no provider \"nope\"",
        ),
        (
            "workflow:\n  id: a\n  triggers: [{type: alert}]\n  actions:\n    - name: x\n      provider: {type: pagerduty, config: slack-ops}\n",
            6,
            "is of type \"slack\"",
        ),
        (
            "workflow:\n  id: a\n  triggers: [{type: alert}]\n  actions:\n    - name: x\n      provider: {type: slack, config: slack-ops, with: {text: \"{{ alert.name \"}}\n",
            6,
            "template",
        ),
        (
            "workflow:\n  id: a\n  triggers: [{type: alert}]\n  actions:\n    - name: x\n      providr: {type: slack}\n",
            6,
            "unknown field `providr`",
        ),
        (
            "workflow:\n  id: a\n  triggers:\n    - type: cron\n  actions: []\n",
            4,
            "unknown trigger type",
        ),
        (
            "workflow:\n  id: a\n  triggers: [{type: alert}]\n  actions:\n    - name: x\n      provider: {type: slack, config: slack-ops, with: {text: \"{{ secrets.NOPE }}\"}}\n",
            6,
            "secret \"NOPE\" is not configured",
        ),
        (
            "workflow:\n  id: a\n  triggers:\n    - type: schedule\n      cron: \"61 * * * *\"\n  actions:\n    - name: x\n      provider: {type: sql, with: {query: \"SELECT 1\"}}\n",
            5,
            "bad cron",
        ),
    ];
    for (text, line, msg) in cases {
        let err = compile_text("f.yaml", text, &cat, &r).unwrap_err();
        assert_eq!(err.line, line, "{err}");
        assert!(err.to_string().contains(msg), "{err}");
        assert!(
            err.to_string().starts_with(&format!("f.yaml:{line}:")),
            "{err}"
        );
    }
}

#[test]
fn data_cannot_forge_a_marker_through_keys_nesting_or_concatenation() {
    // Labels and inputs are rendered whole (keys included), as JSON, and concatenated: none of
    // these may produce a marker the executor would fill in with a secret's value.
    let wf = r#"
workflow:
  id: keys
  triggers: [{type: alert}, {type: manual}]
  actions:
    - name: run
      provider: {type: exec, config: local, with: {command: send, args: ["l={{ alert.labels if alert is defined else inputs }}", "{{ (alert.labels if alert is defined else inputs) | tojson }}", "{{ (alert.labels if alert is defined else inputs) | list | join(',') }}", "{{ alert.labels.a ~ alert.labels.b if alert is defined else inputs.a ~ inputs.b }}"], whole: "{{ alert.labels if alert is defined else inputs }}"}}
"#;
    let check = |out: &[WorkflowEvent]| {
        let i = intents(out);
        assert_eq!(i.len(), 1, "{out:?}");
        let params = serde_json::to_string(&i[0].params).unwrap();
        assert!(!params.contains('\u{27e6}'), "{params}");
        assert!(params.contains("[secret:PD_KEY"), "{params}");
        // What the executor would substitute: nothing (no marker left, keys included).
        let mut v = Value::Object(i[0].params.clone());
        aiops_workflow::template::substitute_secrets(&mut v, &|_| Some("THE-VALUE".into()))
            .unwrap();
        assert!(!v.to_string().contains("THE-VALUE"), "{v}");
    };
    let mut e = engine(&[wf]);
    let mut out = Vec::new();
    let labels = json!({"⟦secret:PD_KEY⟧": "x", "a": "⟦secret:", "b": "PD_KEY⟧"});
    e.on_decision(&alert(1, "k", "K", "firing", labels), &mut out);
    check(&out);
    // Nested objects: keys at every depth.
    let mut out = Vec::new();
    e.on_control(
        &WorkflowControl::Execute {
            workflow: "keys".into(),
            request_id: "n1".into(),
            by: "ann".into(),
            inputs: json!({
                "a": "⟦secret:", "b": "PD_KEY⟧",
                "nested": {"deep": [{"⟦secret:PD_KEY⟧": "⟦secret:PD_KEY⟧"}]},
            }),
        },
        10,
        &mut out,
    )
    .unwrap();
    check(&out);
}

#[test]
fn ids_follow_one_rule_and_alias_bombs_are_refused_fast() {
    let cat = catalog();
    let r = Renderer::default();
    let body = "\n  triggers: [{type: alert}]\n  actions:\n    - name: x\n      provider: {type: exec, config: local, with: {command: x, args: []}}\n";
    for bad in ["..", "a/b", "Page", "", "-x", "a.b", &"a".repeat(64)] {
        let text = format!("workflow:\n  id: \"{bad}\"{body}");
        let err = compile_text("f.yaml", &text, &cat, &r).unwrap_err();
        assert!(
            err.to_string().contains("[a-z0-9][a-z0-9_-]{0,62}"),
            "{bad:?}: {err}"
        );
    }
    for good in ["a", "0", "page-critical_2", &"a".repeat(63)] {
        let text = format!("workflow:\n  id: \"{good}\"{body}");
        compile_text("f.yaml", &text, &cat, &r).unwrap();
    }
    let strategy = "strategies:\n  - id: ../x\n    remedies:\n      - name: x\n        provider: {type: exec, config: local, with: {command: x, args: []}}\n";
    let err = compile_strategies("s.yaml", strategy, &cat, &r).unwrap_err();
    assert!(err.to_string().contains("strategy id"), "{err}");

    // Billion laughs inside a workflow file: refused in well under a second, the limit named.
    let mut bomb = String::from("x0: &x0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    for i in 1..9 {
        let refs = vec![format!("*x{}", i - 1); 9].join(",");
        bomb.push_str(&format!("x{i}: &x{i} [{refs}]\n"));
    }
    let text = format!("{bomb}workflow:\n  id: bomb{body}");
    let t = std::time::Instant::now();
    let err = compile_text("f.yaml", &text, &cat, &r).unwrap_err();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );
    assert!(err.to_string().contains("aliases expand"), "{err}");
}

const STRATEGIES: &str = r#"
strategies:
  - id: restart-then-rollback
    match:
      - key: services
        value: checkout
      - key: evidence
        value: anomaly
    remedies:
      - name: restart
        provider: {type: exec, config: local, with: {command: restart, args: ["{{ incident.service }}"]}}
        verify:
          sql: "SELECT max(value) < 0.05 FROM metrics WHERE name = 'error_ratio'"
          settle: 30s
          window: 1m
      - name: rollback
        provider: {type: exec, config: local, with: {command: rollback, args: ["{{ incident.service }}"]}}
        verify:
          sql: "SELECT max(value) < 0.05 FROM metrics WHERE name = 'error_ratio'"
    escalate: {type: slack, config: slack-ops, with: {text: "auto-heal gave up on {{ incident.id }}: {{ failure.reason }}"}}
  - id: never
    match: [{key: services, value: other}]
    remedies:
      - name: x
        provider: {type: exec, config: local, with: {command: x, args: []}}
"#;

#[test]
fn autoheal_tries_remedies_in_order_and_escalates() {
    let mut e = engine_with(&[], Some(STRATEGIES), Limits::default());
    let mut out = Vec::new();
    // No anomaly evidence: nothing matches.
    e.on_decision(
        &incident(1000, "INC-1", "opened", "checkout", "HighErrors", false),
        &mut out,
    );
    assert!(format!("{out:?}").contains("strategy: None"));
    assert!(intents(&out).is_empty());
    out.clear();
    e.on_decision(
        &incident(2000, "INC-2", "opened", "checkout", "HighErrors", true),
        &mut out,
    );
    let i = intents(&out);
    assert_eq!(i[0].params["command"], "restart");
    assert_eq!(i[0].incident.as_deref(), Some("INC-2"));
    out.clear();
    e.on_result(&ok(&i[0].key, Value::Null), &mut out);
    let v = intents(&out);
    assert_eq!(v[0].kind, "verify");
    assert_eq!(v[0].not_before_ms, Some(2000 + 30_000));
    out.clear();
    // Verify says still unhealthy: next remedy.
    e.on_result(
        &EffectResult {
            ok: false,
            status: "condition false".into(),
            ..ok(&v[0].key, json!({"value": false}))
        },
        &mut out,
    );
    let r = intents(&out);
    assert_eq!(r[0].params["command"], "rollback");
    out.clear();
    e.on_result(&ok(&r[0].key, Value::Null), &mut out);
    let v2 = intents(&out);
    out.clear();
    e.on_result(&ok(&v2[0].key, json!({"value": true})), &mut out);
    assert_eq!(
        finished(&out),
        vec![(
            "autoheal/incident/INC-2/opened/2000".into(),
            "succeeded".into()
        )]
    );

    // Both remedies fail: escalation with the reason.
    out.clear();
    e.on_decision(
        &incident(5000, "INC-3", "opened", "checkout", "HighErrors", true),
        &mut out,
    );
    for _ in 0..2 {
        let k = intents(&out).last().unwrap().key.clone();
        out.clear();
        e.on_result(&failed(&k), &mut out);
    }
    let esc = intents(&out);
    assert_eq!(esc[0].provider.as_deref(), Some("slack-ops"));
    assert!(esc[0].params["text"].as_str().unwrap().contains("INC-3"));
}

#[test]
fn checkpoint_restore_continues_exactly_like_an_uninterrupted_run() {
    let run = |cut: Option<usize>| -> Vec<WorkflowEvent> {
        let mut e = engine(&[PAGE, APPROVE]);
        let mut all = Vec::new();
        let inputs: Vec<Decision> = (0..6)
            .map(|i| {
                alert(
                    1000 * i,
                    &format!("f{i}"),
                    "HighErrors",
                    "firing",
                    json!({"service": "checkout", "severity": "critical", "node": format!("n{i}")}),
                )
            })
            .collect();
        for (n, d) in inputs.iter().enumerate() {
            if Some(n) == cut {
                let snap = e.snapshot().unwrap();
                e = engine(&[PAGE, APPROVE]);
                e.restore(&snap).unwrap();
            }
            let mut out = Vec::new();
            e.on_decision(d, &mut out);
            // Answer every intent immediately.
            let mut queue = intents(&out);
            all.extend(out);
            while let Some(i) = queue.pop() {
                let mut o = Vec::new();
                e.on_result(&ok(&i.key, json!({"team": "t"})), &mut o);
                queue.extend(intents(&o));
                all.extend(o);
            }
        }
        all
    };
    let whole = run(None);
    assert!(whole.len() > 20);
    for cut in 1..6 {
        assert_eq!(run(Some(cut)), whole, "cut at {cut}");
    }
}

#[test]
fn schedules_fire_in_log_time_once_per_slot() {
    let wf = r#"
workflow:
  id: hourly
  triggers: [{type: schedule, cron: "0 * * * *"}]
  steps:
    - name: q
      provider: {type: sql, with: {query: "SELECT 1"}}
"#;
    let mut e = engine(&[wf]);
    let mut out = Vec::new();
    let h = 3_600_000;
    e.on_tick(10 * h + 5, &mut out);
    assert!(intents(&out).is_empty());
    assert_eq!(e.next_timer_ms(), Some(11 * h));
    e.on_tick(11 * h + 1, &mut out);
    e.on_tick(11 * h + 2, &mut out);
    assert_eq!(intents(&out).len(), 1);
    assert_eq!(
        intents(&out)[0].execution,
        format!("hourly/schedule/{}", 11 * h)
    );
    // A long gap fires once, not once per missed hour.
    e.on_tick(20 * h + 1, &mut out);
    assert_eq!(intents(&out).len(), 2);
}

#[test]
fn event_triggers_match_kind_and_filters() {
    let wf = r#"
workflow:
  id: on-deploy
  triggers:
    - type: event
      kind: deploy
      filters: [{key: labels.service, value: checkout}]
  actions:
    - name: note
      provider: {type: slack, config: slack-ops, with: {text: "deploy of {{ event.labels.service }} {{ event.attributes.version }}"}}
"#;
    let mut e = engine(&[wf]);
    let mut out = Vec::new();
    let ev = |svc: &str| json!({"type": "deploy", "message": "", "time_ms": 5, "labels": {"service": svc}, "attributes": {"version": "1.2.3"}});
    e.on_event("anomaly", "1.0", 5, &ev("checkout"), &mut out);
    e.on_event("deploy", "1.1", 5, &ev("search"), &mut out);
    assert!(intents(&out).is_empty());
    e.on_event("deploy", "1.2", 5, &ev("checkout"), &mut out);
    let i = intents(&out);
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].params["text"], "deploy of checkout 1.2.3");
    assert_eq!(i[0].execution, "on-deploy/event/1.2");
}
