#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

//! The fixture is GitLab's documented Deployment event example (docs.gitlab.com, "Webhook
//! events", Deployment events; doc/user/project/integrations/webhook_events.md), verbatim.

use super::*;
use crate::deploys::webhook::testing::headers;
use crate::deploys::webhook::{MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES};
use proptest::prelude::*;

const TOKEN: &str = "gl-hook-token-1";
const EXAMPLE: &[u8] = include_bytes!("fixtures/deployment.json");

fn hook() -> GitlabHook {
    GitlabHook::new(serde_json::from_value(serde_json::json!({ "secret": TOKEN })).unwrap())
        .unwrap()
}

fn parse(hook: &GitlabHook, body: &[u8]) -> Result<Vec<DeployReport>, DeployHookError> {
    let h = headers(&[
        ("X-Gitlab-Event", "Deployment Hook"),
        ("X-Gitlab-Token", TOKEN),
    ]);
    hook.parse(&HookRequest { headers: &h, body })
}

fn edit(body: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn documented_example_is_a_succeeded_deploy() {
    assert_eq!(
        parse(&hook(), EXAMPLE).unwrap(),
        vec![DeployReport {
            source: "gitlab".into(),
            external_id: Some("15".into()),
            service: "root/test-deployment-webhooks".into(),
            environment: "staging".into(),
            version: "279484c0".into(),
            previous_version: None,
            strategy: Default::default(),
            requested_by: Some("root".into()),
            status: SourceStatus::Succeeded,
            at_ms: 1_619_639_400_000, // 2021-04-28 21:50:00 +0200 = 19:50:00Z
            description: Some("Add new file".into()),
            change: None,
            url: Some("http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796".into()),
        }]
    );
}

#[test]
fn service_from_project_name() {
    let h = GitlabHook::new(
        serde_json::from_value(
            serde_json::json!({ "secret": TOKEN, "service_from": "project_name" }),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        parse(&h, EXAMPLE).unwrap()[0].service,
        "test-deployment-webhooks"
    );
}

#[test]
fn statuses_map_and_approval_events_are_ignored() {
    let cases = [
        ("created", SourceStatus::Pending),
        ("blocked", SourceStatus::Pending),
        ("running", SourceStatus::InProgress),
        ("success", SourceStatus::Succeeded),
        ("failed", SourceStatus::Failed),
        ("canceled", SourceStatus::Cancelled),
    ];
    for (status, want) in cases {
        let body = edit(EXAMPLE, |v| v["status"] = status.into());
        let r = parse(&hook(), &body).unwrap();
        assert_eq!(r[0].status, want, "{status}");
        assert_eq!(
            r[0].external_id.as_deref(),
            Some("15"),
            "one deployment, one id"
        );
    }
    for status in ["approved", "rejected"] {
        let body = edit(EXAMPLE, |v| v["status"] = status.into());
        assert!(
            matches!(parse(&hook(), &body), Err(DeployHookError::Ignored(m)) if m.contains(status))
        );
    }
}

#[test]
fn api_deployments_without_a_job_link_to_the_commit_and_utc_times_parse() {
    let body = edit(EXAMPLE, |v| {
        v["deployable_url"] = serde_json::Value::Null;
        v["deployable_id"] = serde_json::Value::Null;
        v["status_changed_at"] = "2021-04-28 19:50:00 UTC".into();
    });
    let r = &parse(&hook(), &body).unwrap()[0];
    assert_eq!(
        r.url.as_deref(),
        Some(
            "http://10.126.0.2:3000/root/test-deployment-webhooks/-/commit/279484c09fbe69ededfced8c1bb6e6d24616b468"
        )
    );
    assert_eq!(r.at_ms, 1_619_639_400_000);
}

#[test]
fn missing_or_wrong_tokens_are_refused() {
    for h in [
        headers(&[("X-Gitlab-Event", "Deployment Hook")]),
        headers(&[
            ("X-Gitlab-Event", "Deployment Hook"),
            ("X-Gitlab-Token", "gl-hook-token-2"),
        ]),
        headers(&[
            ("X-Gitlab-Event", "Deployment Hook"),
            ("X-Gitlab-Token", ""),
        ]),
        headers(&[
            ("X-Gitlab-Event", "Deployment Hook"),
            ("X-Gitlab-Token", "gl-hook-token-1x"),
        ]),
    ] {
        let got = hook().parse(&HookRequest {
            headers: &h,
            body: EXAMPLE,
        });
        assert!(
            matches!(got, Err(DeployHookError::Unauthenticated(_))),
            "{h:?}: {got:?}"
        );
    }
}

#[test]
fn an_empty_secret_refuses_to_build() {
    let s: GitlabSettings = serde_json::from_value(serde_json::json!({ "secret": "" })).unwrap();
    assert_eq!(
        GitlabHook::new(s).unwrap_err(),
        HookConfigError::EmptySecret { kind: "gitlab" }
    );
    assert!(!format!("{:?}", hook()).contains(TOKEN));
}

#[test]
fn other_events_and_kinds_are_ignored() {
    let h = headers(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", TOKEN)]);
    assert!(matches!(
        hook().parse(&HookRequest { headers: &h, body: EXAMPLE }),
        Err(DeployHookError::Ignored(m)) if m.contains("Push Hook")
    ));
    let body = edit(EXAMPLE, |v| v["object_kind"] = "pipeline".into());
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::Ignored(m)) if m.contains("pipeline"))
    );
    let h = headers(&[("X-Gitlab-Token", TOKEN)]);
    assert!(matches!(
        hook().parse(&HookRequest { headers: &h, body: EXAMPLE }),
        Err(DeployHookError::BadPayload(m)) if m.contains("X-Gitlab-Event")
    ));
}

#[test]
fn bad_bodies_and_missing_fields_are_named() {
    for body in [&b"<xml/>"[..], b"", b"\xc3\x28"] {
        assert!(
            matches!(parse(&hook(), body), Err(DeployHookError::BadPayload(_))),
            "{body:?}"
        );
    }
    for field in [
        "object_kind",
        "deployment_id",
        "environment",
        "short_sha",
        "status_changed_at",
        "project",
        "status",
    ] {
        let body = edit(EXAMPLE, |v| {
            v.as_object_mut().unwrap().remove(field);
        });
        match parse(&hook(), &body) {
            Err(DeployHookError::BadPayload(m)) => assert!(m.contains(field), "{field}: {m}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let body = edit(EXAMPLE, |v| {
        v["project"]
            .as_object_mut()
            .unwrap()
            .remove("path_with_namespace");
    });
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("project.path_with_namespace"))
    );
    let body = edit(EXAMPLE, |v| v["status_changed_at"] = "28/04/2021".into());
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("status_changed_at"))
    );
    let body = edit(EXAMPLE, |v| v["deployment_id"] = "fifteen".into());
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("deployment_id"))
    );
}

#[test]
fn huge_names_are_refused_and_descriptions_cut() {
    let long = "é".repeat(MAX_NAME_BYTES / 2 + 1);
    for field in ["environment", "short_sha"] {
        let body = edit(EXAMPLE, |v| v[field] = long.clone().into());
        assert!(
            matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains(field))
        );
    }
    let body = edit(EXAMPLE, |v| v["commit_title"] = "ß".repeat(400).into());
    let d = parse(&hook(), &body).unwrap()[0]
        .description
        .clone()
        .unwrap();
    assert_eq!(d.len(), MAX_DESCRIPTION_BYTES);
    assert!(d.chars().all(|c| c == 'ß'));
}

proptest! {
    #[test]
    fn arbitrary_authenticated_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&hook(), &body);
    }

    #[test]
    fn arbitrary_field_values_never_panic(s in ".{0,600}", t in ".{0,40}") {
        let body = edit(EXAMPLE, |v| {
            v["environment"] = s.clone().into();
            v["short_sha"] = s.clone().into();
            v["commit_title"] = s.clone().into();
            v["status"] = t.clone().into();
            v["status_changed_at"] = t.clone().into();
        });
        if let Ok(r) = parse(&hook(), &body) {
            prop_assert!(r[0].version.len() <= MAX_NAME_BYTES);
        }
    }
}
