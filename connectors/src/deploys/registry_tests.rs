#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

//! The webhook registry: names, building from settings, docs, and one deploy told by two sources.

use super::webhook::testing::{headers, sign};
use super::*;
use aiops_schemas::deploy::SourceStatus;

const DOCS: &str = include_str!("../../../docs/deploys.md");

#[test]
fn kinds_are_unique_documented_and_buildable() {
    let kinds = hook_kinds();
    let mut names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), kinds.len());
    assert_eq!(names, ["argocd", "flux", "github", "gitlab"]);
    for k in kinds {
        assert!(!k.doc.is_empty(), "{}", k.name);
        assert!(
            DOCS.contains(&format!("| `{}` |", k.name)),
            "{} missing from docs/deploys.md",
            k.name
        );
        let hook = build_hook(k.name, &serde_json::json!({ "secret": "s" }));
        assert!(hook.is_ok(), "{}: {hook:?}", k.name);
    }
}

#[test]
fn build_refuses_unknown_kinds_settings_and_empty_secrets() {
    assert_eq!(
        build_hook("jenkins", &serde_json::json!({ "secret": "s" })).unwrap_err(),
        HookConfigError::UnknownKind("jenkins".into())
    );
    for k in hook_kinds() {
        assert_eq!(
            build_hook(k.name, &serde_json::json!({ "secret": "" })).unwrap_err(),
            HookConfigError::EmptySecret { kind: k.name }
        );
        match build_hook(
            k.name,
            &serde_json::json!({ "secret": "s", "secrte": "typo" }),
        ) {
            Err(HookConfigError::BadSettings { reason, .. }) => {
                assert!(reason.contains("secrte"), "{reason}")
            }
            other => panic!("{}: {other:?}", k.name),
        }
        match build_hook(k.name, &serde_json::json!({})) {
            Err(HookConfigError::BadSettings { reason, .. }) => {
                assert!(reason.contains("secret"), "{reason}")
            }
            other => panic!("{}: {other:?}", k.name),
        }
    }
    match build_hook(
        "github",
        &serde_json::json!({ "secret": "s", "version_from": "tag" }),
    ) {
        Err(HookConfigError::BadSettings { reason, .. }) => {
            assert!(reason.starts_with("version_from"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// GitHub's documented `deployment_status` example and GitLab's documented deployment example,
/// edited so both describe one deploy: the same service, environment, commit and time.
#[test]
fn the_same_deploy_from_github_and_gitlab_differs_only_in_source_fields() {
    let github = build_hook(
        "github",
        &serde_json::json!({ "secret": "gh", "version_from": "short_sha" }),
    )
    .unwrap();
    let gitlab = build_hook(
        "gitlab",
        &serde_json::json!({ "secret": "gl", "service_from": "project_name" }),
    )
    .unwrap();

    let mut gh: serde_json::Value =
        serde_json::from_slice(include_bytes!("github/fixtures/deployment_status.json")).unwrap();
    gh["repository"]["name"] = "test-deployment-webhooks".into();
    gh["deployment"]["environment"] = "staging".into();
    gh["deployment"]["sha"] = "279484c09fbe69ededfced8c1bb6e6d24616b468".into();
    gh["deployment"]["description"] = "Add new file".into();
    gh["deployment_status"]["updated_at"] = "2021-04-28T19:50:00Z".into();
    let gh_body = serde_json::to_vec(&gh).unwrap();
    let gh_sig = format!("sha256={}", sign("sha256", "gh", &gh_body));
    let gh_headers = headers(&[
        ("X-GitHub-Event", "deployment_status"),
        ("X-Hub-Signature-256", &gh_sig),
    ]);
    let from_github = github
        .parse(&HookRequest {
            headers: &gh_headers,
            body: &gh_body,
        })
        .unwrap();

    let gl_body = include_bytes!("gitlab/fixtures/deployment.json");
    let gl_headers = headers(&[
        ("X-Gitlab-Event", "Deployment Hook"),
        ("X-Gitlab-Token", "gl"),
    ]);
    let from_gitlab = gitlab
        .parse(&HookRequest {
            headers: &gl_headers,
            body: gl_body,
        })
        .unwrap();

    let (a, b) = (&from_github[0], &from_gitlab[0]);
    assert_eq!(a.status, SourceStatus::Succeeded);
    assert_ne!(a.source, b.source);
    assert_ne!(a.external_id, b.external_id);
    assert_ne!(a.requested_by, b.requested_by);
    assert_ne!(a.url, b.url);
    let strip = |r: &DeployReport| DeployReport {
        source: String::new(),
        external_id: None,
        url: None,
        requested_by: None,
        ..r.clone()
    };
    assert_eq!(strip(a), strip(b));
}
