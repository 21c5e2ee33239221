#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

//! Argo CD sends what the template in docs/deploys.md renders; the fixtures are that template
//! rendered for an app after a successful sync, a failed sync and during a sync (values as
//! Argo CD's Application status reports them). A test checks the docs' template and the
//! fixtures have the same fields, so the two cannot drift apart.

use super::*;
use crate::deploys::webhook::testing::headers;
use crate::deploys::webhook::{MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES};
use proptest::prelude::*;

const SECRET: &str = "argo-shared-secret";
const DEPLOYED: &[u8] = include_bytes!("fixtures/app-deployed.json");
const SYNC_FAILED: &[u8] = include_bytes!("fixtures/app-sync-failed.json");
const SYNC_RUNNING: &[u8] = include_bytes!("fixtures/app-sync-running.json");
const DOCS: &str = include_str!("../../../../docs/deploys.md");

fn hook_with(extra: serde_json::Value) -> ArgocdHook {
    let mut v = serde_json::json!({ "secret": SECRET });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ArgocdHook::new(serde_json::from_value(v).unwrap()).unwrap()
}

fn hook() -> ArgocdHook {
    hook_with(serde_json::json!({}))
}

fn parse(hook: &ArgocdHook, body: &[u8]) -> Result<Vec<DeployReport>, DeployHookError> {
    let h = headers(&[("Authorization", &format!("Bearer {SECRET}"))]);
    hook.parse(&HookRequest { headers: &h, body })
}

fn edit(body: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn expected_deployed() -> DeployReport {
    DeployReport {
        source: "argocd".into(),
        external_id: Some("guestbook@53e28ff20cc530b9ada2173fbbd64d48338583ba".into()),
        service: "guestbook".into(),
        environment: "shop".into(),
        version: "53e28ff20cc530b9ada2173fbbd64d48338583ba".into(),
        previous_version: None,
        strategy: Default::default(),
        requested_by: Some("admin".into()),
        status: SourceStatus::Succeeded,
        at_ms: 1_709_287_242_000, // 2024-03-01T10:00:42Z, finishedAt
        description: Some("successfully synced (all tasks run)".into()),
        change: None,
        url: Some("https://argocd.example.com/applications/guestbook".into()),
    }
}

#[test]
fn deployed_notification_is_a_succeeded_deploy() {
    assert_eq!(parse(&hook(), DEPLOYED).unwrap(), vec![expected_deployed()]);
}

#[test]
fn failed_and_running_notifications_are_the_same_deploy() {
    let failed = parse(&hook(), SYNC_FAILED).unwrap();
    assert_eq!(
        failed,
        vec![DeployReport {
            status: SourceStatus::Failed,
            requested_by: Some("automated".into()),
            description: Some(
                "one or more objects failed to apply, reason: Deployment.apps \"guestbook-ui\" is invalid"
                    .into()
            ),
            ..expected_deployed()
        }]
    );
    let running = parse(&hook(), SYNC_RUNNING).unwrap();
    assert_eq!(
        running,
        vec![DeployReport {
            status: SourceStatus::InProgress,
            at_ms: 1_709_287_203_000, // no finishedAt yet: startedAt 2024-03-01T10:00:03Z
            description: Some("waiting for healthy state of apps/Deployment/guestbook-ui".into()),
            ..expected_deployed()
        }]
    );
}

#[test]
fn status_rules() {
    let cases = [
        (
            "Succeeded",
            "Synced",
            "Healthy",
            Some(SourceStatus::Succeeded),
        ),
        (
            "Succeeded",
            "Synced",
            "Degraded",
            Some(SourceStatus::Failed),
        ),
        ("Error", "Synced", "Healthy", Some(SourceStatus::Failed)),
        ("Failed", "OutOfSync", "Missing", Some(SourceStatus::Failed)),
        (
            "Succeeded",
            "Synced",
            "Progressing",
            Some(SourceStatus::InProgress),
        ),
        (
            "Running",
            "OutOfSync",
            "Healthy",
            Some(SourceStatus::InProgress),
        ),
        (
            "Succeeded",
            "OutOfSync",
            "Healthy",
            Some(SourceStatus::InProgress),
        ),
        ("Terminating", "Unknown", "Missing", None),
    ];
    for (phase, sync, health, want) in cases {
        let body = edit(DEPLOYED, |v| {
            v["phase"] = phase.into();
            v["syncStatus"] = sync.into();
            v["healthStatus"] = health.into();
        });
        match (parse(&hook(), &body), want) {
            (Ok(r), Some(w)) => assert_eq!(r[0].status, w, "{phase}/{sync}/{health}"),
            (Err(DeployHookError::Ignored(m)), None) => assert!(m.contains("guestbook"), "{m}"),
            (got, _) => panic!("{phase}/{sync}/{health}: {got:?}"),
        }
    }
}

#[test]
fn service_and_environment_from_labels_or_settings() {
    let h = hook_with(serde_json::json!({
        "service_label": "app.kubernetes.io/part-of",
        "environment_label": "env",
    }));
    let r = &parse(&h, DEPLOYED).unwrap()[0];
    assert_eq!(
        (r.service.as_str(), r.environment.as_str()),
        ("storefront", "production")
    );
    // Labels absent (null in the sync-failed fixture): the app name and the fixed environment.
    let h = hook_with(serde_json::json!({
        "service_label": "app.kubernetes.io/part-of",
        "environment_label": "env",
        "environment": "prod-eu",
    }));
    let r = &parse(&h, SYNC_FAILED).unwrap()[0];
    assert_eq!(
        (r.service.as_str(), r.environment.as_str()),
        ("guestbook", "prod-eu")
    );
    // An annotation serves when no label has the key.
    let body = edit(DEPLOYED, |v| {
        v["annotations"]["team/service"] = "books".into()
    });
    let h = hook_with(serde_json::json!({ "service_label": "team/service" }));
    assert_eq!(parse(&h, &body).unwrap()[0].service, "books");
}

#[test]
fn quoted_templates_rendering_no_value_count_as_absent() {
    let body = edit(DEPLOYED, |v| {
        v["finishedAt"] = "<no value>".into();
        v["message"] = "<no value>".into();
    });
    let r = &parse(&hook(), &body).unwrap()[0];
    assert_eq!(r.at_ms, 1_709_287_203_000);
    assert_eq!(r.description, None);
    let body = edit(DEPLOYED, |v| v["revision"] = "<no value>".into());
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("revision"))
    );
}

#[test]
fn missing_bad_or_misplaced_secrets_are_refused() {
    for h in [
        headers(&[]),
        headers(&[("Authorization", SECRET)]),
        headers(&[("Authorization", "Bearer wrong")]),
        headers(&[("Authorization", "Basic YWRtaW46cGFzcw==")]),
        headers(&[("Authorization", "Bearer ")]),
        headers(&[("X-Aiops-Token", SECRET)]),
    ] {
        let got = hook().parse(&HookRequest {
            headers: &h,
            body: DEPLOYED,
        });
        assert!(
            matches!(got, Err(DeployHookError::Unauthenticated(_))),
            "{h:?}: {got:?}"
        );
    }
    // The scheme is case-insensitive; a custom header carries the bare secret.
    let h = headers(&[("Authorization", &format!("bearer {SECRET}"))]);
    assert!(
        hook()
            .parse(&HookRequest {
                headers: &h,
                body: DEPLOYED
            })
            .is_ok()
    );
    let custom = hook_with(serde_json::json!({ "header": "X-Aiops-Token" }));
    let h = headers(&[("X-Aiops-Token", SECRET)]);
    assert!(
        custom
            .parse(&HookRequest {
                headers: &h,
                body: DEPLOYED
            })
            .is_ok()
    );
    let h = headers(&[("Authorization", &format!("Bearer {SECRET}"))]);
    assert!(matches!(
        custom.parse(&HookRequest {
            headers: &h,
            body: DEPLOYED
        }),
        Err(DeployHookError::Unauthenticated(_))
    ));
}

#[test]
fn an_empty_secret_or_header_refuses_to_build() {
    let s: ArgocdSettings = serde_json::from_value(serde_json::json!({ "secret": " " })).unwrap();
    assert_eq!(
        ArgocdHook::new(s).unwrap_err(),
        HookConfigError::EmptySecret { kind: "argocd" }
    );
    let s: ArgocdSettings =
        serde_json::from_value(serde_json::json!({ "secret": SECRET, "header": "" })).unwrap();
    assert!(matches!(
        ArgocdHook::new(s),
        Err(HookConfigError::BadSettings { kind: "argocd", .. })
    ));
    assert!(!format!("{:?}", hook()).contains(SECRET));
}

#[test]
fn bad_bodies_and_missing_fields_are_named() {
    for body in [&b"app=guestbook"[..], b"", b"{\"app\": \"\xe2\x82\"}"] {
        assert!(
            matches!(parse(&hook(), body), Err(DeployHookError::BadPayload(_))),
            "{body:?}"
        );
    }
    for field in ["app", "revision", "namespace"] {
        let body = edit(DEPLOYED, |v| {
            v.as_object_mut().unwrap().remove(field);
        });
        match parse(&hook(), &body) {
            Err(DeployHookError::BadPayload(m)) => assert!(m.contains(field), "{field}: {m}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let body = edit(DEPLOYED, |v| {
        v["finishedAt"] = serde_json::Value::Null;
        v["startedAt"] = serde_json::Value::Null;
    });
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("finishedAt"))
    );
    let body = edit(DEPLOYED, |v| v["labels"] = serde_json::json!({"a": 1}));
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("labels"))
    );
}

#[test]
fn huge_names_are_refused_and_messages_cut() {
    let long = "a".repeat(MAX_NAME_BYTES + 1);
    for field in ["app", "revision", "namespace"] {
        let body = edit(DEPLOYED, |v| v[field] = long.clone().into());
        assert!(
            matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(_))),
            "{field}"
        );
    }
    let body = edit(DEPLOYED, |v| v["message"] = "日本".repeat(200).into());
    let d = parse(&hook(), &body).unwrap()[0]
        .description
        .clone()
        .unwrap();
    assert_eq!(d.len(), 510); // 170 three-byte chars; the 171st would pass 512
    assert!(d.len() <= MAX_DESCRIPTION_BYTES);
}

/// The JSON body of `template.aiops-deploy` in docs/deploys.md, with every `{{…}}` rendered as
/// `null`.
fn documented_body_fields() -> Vec<String> {
    let start = DOCS
        .find("template.aiops-deploy: |")
        .expect("template in docs/deploys.md");
    let rest = &DOCS[start..];
    let open = rest.find("body: |").unwrap() + "body: |".len();
    let rest = &rest[open..];
    let end = rest.find("\n          }\n").unwrap() + "\n          }".len();
    let mut body = String::new();
    let mut s = &rest[..end];
    while let Some(i) = s.find("{{") {
        body.push_str(&s[..i]);
        body.push_str("null");
        let j = s[i..].find("}}").unwrap();
        s = &s[i + j + 2..];
    }
    body.push_str(s);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn documented_template_and_fixtures_have_the_same_fields() {
    let documented = documented_body_fields();
    assert!(
        documented.contains(&"revision".to_string()),
        "{documented:?}"
    );
    for fixture in [DEPLOYED, SYNC_FAILED, SYNC_RUNNING] {
        let v: serde_json::Value = serde_json::from_slice(fixture).unwrap();
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, documented);
    }
    // What the template renders for an app with no labels or operation yet: refused by name,
    // never a panic.
    let all_null: serde_json::Map<String, serde_json::Value> = documented
        .iter()
        .map(|k| (k.clone(), serde_json::Value::Null))
        .collect();
    let body = serde_json::to_vec(&all_null).unwrap();
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("app"))
    );
}

proptest! {
    #[test]
    fn arbitrary_authenticated_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&hook(), &body);
    }

    #[test]
    fn arbitrary_field_values_never_panic(s in ".{0,600}", t in ".{0,30}") {
        let body = edit(DEPLOYED, |v| {
            v["app"] = s.clone().into();
            v["revision"] = s.clone().into();
            v["message"] = s.clone().into();
            v["phase"] = t.clone().into();
            v["finishedAt"] = t.clone().into();
        });
        if let Ok(r) = parse(&hook(), &body) {
            prop_assert!(r[0].external_id.as_ref().is_some_and(|id| id.len() <= MAX_NAME_BYTES));
        }
    }
}
