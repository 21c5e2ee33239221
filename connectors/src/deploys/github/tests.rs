#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

//! The fixtures are GitHub's documented example payloads for `deployment`, `deployment_status`
//! and `ping` (docs.github.com "Webhook events and payloads"; the files as published in
//! octokit/webhooks `payload-examples/api.github.com/*/payload.json`), byte for byte.

use super::*;
use crate::deploys::webhook::testing::{headers, sign};
use crate::deploys::webhook::{MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES};
use proptest::prelude::*;

const SECRET: &str = "It's a Secret to Everybody";
const DEPLOYMENT: &[u8] = include_bytes!("fixtures/deployment.json");
const DEPLOYMENT_STATUS: &[u8] = include_bytes!("fixtures/deployment_status.json");
const PING: &[u8] = include_bytes!("fixtures/ping.json");

fn hook() -> GithubHook {
    GithubHook::new(settings()).unwrap()
}

fn settings() -> GithubSettings {
    serde_json::from_value(serde_json::json!({ "secret": SECRET })).unwrap()
}

fn signed(event: &str, body: &[u8]) -> Vec<(String, String)> {
    let sig = format!("sha256={}", sign("sha256", SECRET, body));
    headers(&[("X-GitHub-Event", event), ("X-Hub-Signature-256", &sig)])
}

fn parse(
    hook: &GithubHook,
    event: &str,
    body: &[u8],
) -> Result<Vec<DeployReport>, DeployHookError> {
    let h = signed(event, body);
    hook.parse(&HookRequest { headers: &h, body })
}

fn edit(body: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn documented_deployment_example_is_a_pending_deploy() {
    let reports = parse(&hook(), "deployment", DEPLOYMENT).unwrap();
    assert_eq!(
        reports,
        vec![DeployReport {
            source: "github".into(),
            external_id: Some("145988746".into()),
            service: "Hello-World".into(),
            environment: "production".into(),
            version: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
            previous_version: None,
            strategy: Default::default(),
            requested_by: Some("Codertocat".into()),
            status: SourceStatus::Pending,
            at_ms: 1_557_933_653_000, // 2019-05-15T15:20:53Z, deployment.created_at
            description: None,
            change: None,
            url: None,
        }]
    );
}

#[test]
fn documented_deployment_status_example_is_a_success_of_the_same_deploy() {
    let reports = parse(&hook(), "deployment_status", DEPLOYMENT_STATUS).unwrap();
    assert_eq!(
        reports,
        vec![DeployReport {
            source: "github".into(),
            external_id: Some("145988746".into()),
            service: "Hello-World".into(),
            environment: "production".into(),
            version: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
            previous_version: None,
            strategy: Default::default(),
            requested_by: Some("Codertocat".into()),
            status: SourceStatus::Succeeded,
            at_ms: 1_557_933_655_000, // 2019-05-15T15:20:55Z, deployment_status.updated_at
            description: None,        // "" in the example
            change: None,
            url: None, // target_url is "" and there is no log_url
        }]
    );
    let created = parse(&hook(), "deployment", DEPLOYMENT).unwrap();
    assert_eq!(created[0].external_id, reports[0].external_id);
    assert_eq!(created[0].source, reports[0].source);
}

#[test]
fn every_documented_state_maps_and_links_come_from_target_or_log_url() {
    let cases = [
        ("pending", SourceStatus::Pending),
        ("queued", SourceStatus::Pending),
        ("in_progress", SourceStatus::InProgress),
        ("success", SourceStatus::Succeeded),
        ("failure", SourceStatus::Failed),
        ("error", SourceStatus::Failed),
        ("inactive", SourceStatus::Cancelled),
    ];
    for (state, want) in cases {
        let body = edit(DEPLOYMENT_STATUS, |v| {
            v["deployment_status"]["state"] = state.into();
            v["deployment_status"]["log_url"] = "https://ci.example.com/run/7".into();
        });
        let r = parse(&hook(), "deployment_status", &body).unwrap();
        assert_eq!(r[0].status, want, "{state}");
        assert_eq!(r[0].url.as_deref(), Some("https://ci.example.com/run/7"));
    }
    let body = edit(DEPLOYMENT_STATUS, |v| {
        v["deployment_status"]["target_url"] = "https://example.com/t".into();
        v["deployment_status"]["log_url"] = "https://example.com/l".into();
    });
    assert_eq!(
        parse(&hook(), "deployment_status", &body).unwrap()[0]
            .url
            .as_deref(),
        Some("https://example.com/t")
    );
    let body = edit(DEPLOYMENT_STATUS, |v| {
        v["deployment_status"]["state"] = "exploded".into()
    });
    assert!(matches!(
        parse(&hook(), "deployment_status", &body),
        Err(DeployHookError::Ignored(m)) if m.contains("exploded")
    ));
}

#[test]
fn payload_service_and_version_win_and_fallbacks_follow_settings() {
    let body = edit(DEPLOYMENT, |v| {
        v["deployment"]["payload"] =
            serde_json::json!({"service": "checkout", "version": "v1.4.2"});
    });
    let r = &parse(&hook(), "deployment", &body).unwrap()[0];
    assert_eq!(
        (r.service.as_str(), r.version.as_str()),
        ("checkout", "v1.4.2")
    );

    // The REST API also accepts the payload as a JSON string.
    let body = edit(DEPLOYMENT, |v| {
        v["deployment"]["payload"] = r#"{"service":"cart","version":"9"}"#.into();
    });
    let r = &parse(&hook(), "deployment", &body).unwrap()[0];
    assert_eq!((r.service.as_str(), r.version.as_str()), ("cart", "9"));

    for (from, want) in [("ref", "master"), ("short_sha", "f95f852b")] {
        let mut s = settings();
        s.version_from = serde_json::from_value(from.into()).unwrap();
        s.service_from = GithubServiceFrom::RepositoryFullName;
        let r = &parse(&GithubHook::new(s).unwrap(), "deployment", DEPLOYMENT).unwrap()[0];
        assert_eq!(r.version, want);
        assert_eq!(r.service, "Codertocat/Hello-World");
    }
}

#[test]
fn requested_by_falls_back_to_the_sender() {
    let body = edit(DEPLOYMENT, |v| {
        v["deployment"]["creator"] = serde_json::Value::Null;
        v["sender"]["login"] = "octo-bot".into();
    });
    assert_eq!(
        parse(&hook(), "deployment", &body).unwrap()[0]
            .requested_by
            .as_deref(),
        Some("octo-bot")
    );
}

#[test]
fn ping_is_ignored_but_still_authenticated() {
    assert!(matches!(
        parse(&hook(), "ping", PING),
        Err(DeployHookError::Ignored(_))
    ));
    let h = headers(&[("X-GitHub-Event", "ping")]);
    assert!(matches!(
        hook().parse(&HookRequest {
            headers: &h,
            body: PING
        }),
        Err(DeployHookError::Unauthenticated(_))
    ));
}

#[test]
fn bad_missing_or_malformed_signatures_are_refused() {
    let cases: Vec<Vec<(String, String)>> = vec![
        headers(&[("X-GitHub-Event", "deployment")]),
        headers(&[
            ("X-GitHub-Event", "deployment"),
            (
                "X-Hub-Signature-256",
                &format!("sha256={}", sign("sha256", "wrong", DEPLOYMENT)),
            ),
        ]),
        // The old SHA-1 header format is not accepted in place of SHA-256.
        headers(&[
            ("X-GitHub-Event", "deployment"),
            (
                "X-Hub-Signature-256",
                &format!("sha1={}", sign("sha256", SECRET, DEPLOYMENT)),
            ),
        ]),
        headers(&[
            ("X-GitHub-Event", "deployment"),
            ("X-Hub-Signature-256", "sha256=not-hex"),
        ]),
        headers(&[
            ("X-GitHub-Event", "deployment"),
            ("X-Hub-Signature-256", "sha256="),
        ]),
    ];
    for h in cases {
        let got = hook().parse(&HookRequest {
            headers: &h,
            body: DEPLOYMENT,
        });
        assert!(
            matches!(got, Err(DeployHookError::Unauthenticated(_))),
            "{h:?}: {got:?}"
        );
    }
    // A body changed after signing.
    let h = signed("deployment", DEPLOYMENT);
    let tampered = edit(DEPLOYMENT, |v| {
        v["deployment"]["environment"] = "staging".into()
    });
    assert!(matches!(
        hook().parse(&HookRequest {
            headers: &h,
            body: &tampered
        }),
        Err(DeployHookError::Unauthenticated(_))
    ));
}

#[test]
fn an_empty_secret_refuses_to_build() {
    for secret in ["", "   "] {
        let mut s = settings();
        s.secret = secret.into();
        assert_eq!(
            GithubHook::new(s).unwrap_err(),
            HookConfigError::EmptySecret { kind: "github" }
        );
    }
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let h = hook();
    assert!(!format!("{h:?}").contains(SECRET));
}

#[test]
fn other_events_are_ignored_and_a_missing_event_header_is_refused() {
    assert!(matches!(
        parse(&hook(), "push", DEPLOYMENT),
        Err(DeployHookError::Ignored(m)) if m.contains("push")
    ));
    let sig = format!("sha256={}", sign("sha256", SECRET, DEPLOYMENT));
    let h = headers(&[("X-Hub-Signature-256", &sig)]);
    assert!(matches!(
        hook().parse(&HookRequest { headers: &h, body: DEPLOYMENT }),
        Err(DeployHookError::BadPayload(m)) if m.contains("X-GitHub-Event")
    ));
}

#[test]
fn bodies_that_are_not_json_or_not_utf8_are_bad_payloads() {
    for body in [
        &b"not json"[..],
        b"",
        b"{\"deployment\": ",
        b"{\"a\":\"\xff\xfe\"}",
    ] {
        let got = parse(&hook(), "deployment", body);
        assert!(
            matches!(got, Err(DeployHookError::BadPayload(_))),
            "{body:?}: {got:?}"
        );
    }
    assert!(matches!(
        parse(&hook(), "deployment", b"\xff\xfe"),
        Err(DeployHookError::BadPayload(m)) if m.contains("UTF-8")
    ));
}

#[test]
fn missing_fields_are_named() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 5] = [
        ("deployment", |v| {
            v.as_object_mut().unwrap().remove("deployment");
        }),
        ("id", |v| {
            v["deployment"].as_object_mut().unwrap().remove("id");
        }),
        ("deployment.environment", |v| {
            v["deployment"]
                .as_object_mut()
                .unwrap()
                .remove("environment");
        }),
        ("deployment.sha", |v| {
            v["deployment"].as_object_mut().unwrap().remove("sha");
        }),
        ("repository.name", |v| {
            v["repository"].as_object_mut().unwrap().remove("name");
        }),
    ];
    for (field, f) in cases {
        let body = edit(DEPLOYMENT, f);
        match parse(&hook(), "deployment", &body) {
            Err(DeployHookError::BadPayload(m)) => assert!(m.contains(field), "{field}: {m}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let body = edit(DEPLOYMENT_STATUS, |v| {
        let st = v["deployment_status"].as_object_mut().unwrap();
        st.remove("updated_at");
        st.remove("created_at");
    });
    assert!(matches!(
        parse(&hook(), "deployment_status", &body),
        Err(DeployHookError::BadPayload(m)) if m.contains("deployment_status.updated_at")
    ));
    let body = edit(DEPLOYMENT, |v| {
        v["deployment"]["created_at"] = "last tuesday".into()
    });
    assert!(matches!(
        parse(&hook(), "deployment", &body),
        Err(DeployHookError::BadPayload(m)) if m.contains("deployment.created_at")
    ));
}

#[test]
fn huge_names_are_refused_and_huge_descriptions_cut_on_a_char_boundary() {
    let long = "x".repeat(MAX_NAME_BYTES + 1);
    for field in ["environment", "sha"] {
        let body = edit(DEPLOYMENT, |v| v["deployment"][field] = long.clone().into());
        assert!(matches!(
            parse(&hook(), "deployment", &body),
            Err(DeployHookError::BadPayload(m)) if m.contains(&format!("deployment.{field}"))
        ));
    }
    let body = edit(DEPLOYMENT, |v| {
        v["deployment"]["payload"]["service"] = long.clone().into()
    });
    assert!(matches!(
        parse(&hook(), "deployment", &body),
        Err(DeployHookError::BadPayload(m)) if m.contains("deployment.payload.service")
    ));
    // 3-byte chars straddle the 512-byte limit: 170 chars = 510 bytes fit, the 171st does not.
    let body = edit(DEPLOYMENT, |v| {
        v["deployment"]["description"] = "€".repeat(1000).into()
    });
    let d = parse(&hook(), "deployment", &body).unwrap()[0]
        .description
        .clone()
        .unwrap();
    assert_eq!(d.len(), 510);
    assert!(d.len() <= MAX_DESCRIPTION_BYTES && d.chars().all(|c| c == '€'));
}

proptest! {
    #[test]
    fn arbitrary_signed_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512),
                                          event in prop_oneof![Just("deployment"), Just("deployment_status"), Just("ping")]) {
        let _ = parse(&hook(), event, &body);
    }

    #[test]
    fn arbitrary_field_values_never_panic(s in ".{0,600}", state in ".{0,20}") {
        let body = edit(DEPLOYMENT_STATUS, |v| {
            v["deployment"]["environment"] = s.clone().into();
            v["deployment"]["description"] = s.clone().into();
            v["deployment"]["payload"] = serde_json::json!({"service": s.clone(), "version": s.clone()});
            v["deployment_status"]["state"] = state.clone().into();
            v["deployment_status"]["description"] = s.clone().into();
        });
        if let Ok(r) = parse(&hook(), "deployment_status", &body) {
            prop_assert!(r[0].service.len() <= MAX_NAME_BYTES);
            prop_assert!(r[0].description.as_ref().is_none_or(|d| d.len() <= MAX_DESCRIPTION_BYTES));
        }
    }
}
