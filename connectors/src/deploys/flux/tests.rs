#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

//! `event-validation-failed.json` is Flux's documented Event example (notification-controller
//! docs/spec/v1beta3/providers.md, "Generic webhook"), verbatim: its revision key still carries
//! the controller's API group. `event-reconciliation-succeeded.json` is the same Kustomization's
//! next event as notification-controller forwards it: metadata keys stripped of the group
//! (`revision`) plus the Alert's `.spec.eventMetadata` (`environment`).

use super::*;
use crate::deploys::webhook::testing::{headers, sign};
use crate::deploys::webhook::{MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES};
use proptest::prelude::*;

const SECRET: &str = "flux-hmac-token";
const FAILED: &[u8] = include_bytes!("fixtures/event-validation-failed.json");
const SUCCEEDED: &[u8] = include_bytes!("fixtures/event-reconciliation-succeeded.json");

fn hook_with(extra: serde_json::Value) -> FluxHook {
    let mut v = serde_json::json!({ "secret": SECRET });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    FluxHook::new(serde_json::from_value(v).unwrap()).unwrap()
}

fn hook() -> FluxHook {
    hook_with(serde_json::json!({}))
}

fn parse_alg(
    hook: &FluxHook,
    alg: &str,
    body: &[u8],
) -> Result<Vec<DeployReport>, DeployHookError> {
    let sig = format!("{alg}={}", sign(alg, SECRET, body));
    let h = headers(&[
        ("X-Signature", &sig),
        ("Gotk-Component", "kustomize-controller"),
    ]);
    hook.parse(&HookRequest { headers: &h, body })
}

fn parse(hook: &FluxHook, body: &[u8]) -> Result<Vec<DeployReport>, DeployHookError> {
    parse_alg(hook, "sha256", body)
}

fn edit(body: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn documented_example_is_a_failed_deploy() {
    assert_eq!(
        parse(&hook(), FAILED).unwrap(),
        vec![DeployReport {
            source: "flux".into(),
            external_id: Some(
                "Kustomization/apps/webapp@main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1".into()
            ),
            service: "webapp".into(),
            environment: "apps".into(),
            version: "main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1".into(),
            previous_version: None,
            strategy: Default::default(),
            requested_by: None,
            status: SourceStatus::Failed,
            at_ms: 1_666_941_979_000, // 2022-10-28T07:26:19Z
            description: Some(
                "service/apps/webapp validation error: spec.type: Unsupported value: Ingress"
                    .into()
            ),
            change: None,
            url: None,
        }]
    );
}

#[test]
fn forwarded_success_is_a_succeeded_deploy_with_alert_metadata() {
    assert_eq!(
        parse(&hook(), SUCCEEDED).unwrap(),
        vec![DeployReport {
            source: "flux".into(),
            external_id: Some(
                "Kustomization/apps/webapp@main@sha1:731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"
                    .into()
            ),
            service: "webapp".into(),
            environment: "production".into(),
            version: "main@sha1:731f7eaddfb6af01cb2173e18f0f75b0ba780ef1".into(),
            previous_version: None,
            strategy: Default::default(),
            requested_by: None,
            status: SourceStatus::Succeeded,
            at_ms: 1_666_942_262_000, // 2022-10-28T07:31:02Z
            description: Some("Reconciliation finished in 2.5s, next run in 10m0s".into()),
            change: None,
            url: None,
        }]
    );
}

#[test]
fn reasons_map_and_progress_shares_the_external_id() {
    let cases = [
        (
            "ReconciliationSucceeded",
            "info",
            Some(SourceStatus::Succeeded),
        ),
        ("UpgradeSucceeded", "info", Some(SourceStatus::Succeeded)),
        ("InstallSucceeded", "info", Some(SourceStatus::Succeeded)),
        ("Progressing", "info", Some(SourceStatus::InProgress)),
        ("HealthCheckFailed", "error", Some(SourceStatus::Failed)),
        ("UpgradeFailed", "info", Some(SourceStatus::Failed)),
        ("BuildError", "error", Some(SourceStatus::Failed)),
        ("DependencyNotReady", "info", None),
        ("RollbackSucceeded", "info", None),
    ];
    let succeeded_id = parse(&hook(), SUCCEEDED).unwrap()[0].external_id.clone();
    for (reason, severity, want) in cases {
        let body = edit(SUCCEEDED, |v| {
            v["reason"] = reason.into();
            v["severity"] = severity.into();
        });
        match (parse(&hook(), &body), want) {
            (Ok(r), Some(w)) => {
                assert_eq!(r[0].status, w, "{reason}");
                assert_eq!(r[0].external_id, succeeded_id, "{reason}");
            }
            (Err(DeployHookError::Ignored(m)), None) => assert!(m.contains(reason), "{m}"),
            (got, _) => panic!("{reason}: {got:?}"),
        }
    }
}

#[test]
fn service_and_environment_keys_and_fallbacks() {
    let body = edit(SUCCEEDED, |v| {
        v["metadata"]["app"] = "storefront".into();
        v["metadata"].as_object_mut().unwrap().remove("environment");
    });
    let r = &parse(
        &hook_with(serde_json::json!({"service_key": "app", "environment": "prod"})),
        &body,
    )
    .unwrap()[0];
    assert_eq!(
        (r.service.as_str(), r.environment.as_str()),
        ("storefront", "prod")
    );
    let r = &parse(
        &hook_with(serde_json::json!({"environment_key": "env"})),
        SUCCEEDED,
    )
    .unwrap()[0];
    assert_eq!(
        r.environment, "apps",
        "no `env` key and no setting: the namespace"
    );
}

#[test]
fn every_flux_hash_function_is_accepted_and_others_refused_by_name() {
    for alg in ["sha224", "sha256", "sha384", "sha512"] {
        assert!(parse_alg(&hook(), alg, SUCCEEDED).is_ok(), "{alg}");
    }
    let sig = format!("md5={}", sign("sha256", SECRET, SUCCEEDED));
    let h = headers(&[("X-Signature", &sig)]);
    assert!(matches!(
        hook().parse(&HookRequest { headers: &h, body: SUCCEEDED }),
        Err(DeployHookError::Unauthenticated(m)) if m.contains("md5")
    ));
    // A sha512 MAC presented as sha256 does not pass.
    let sig = format!("sha256={}", sign("sha512", SECRET, SUCCEEDED));
    let h = headers(&[("X-Signature", &sig)]);
    assert!(matches!(
        hook().parse(&HookRequest {
            headers: &h,
            body: SUCCEEDED
        }),
        Err(DeployHookError::Unauthenticated(_))
    ));
}

#[test]
fn missing_wrong_or_malformed_signatures_are_refused() {
    let wrong = format!("sha256={}", sign("sha256", "other", SUCCEEDED));
    let bare = sign("sha256", SECRET, SUCCEEDED);
    for h in [
        headers(&[]),
        headers(&[("X-Signature", &wrong)]),
        headers(&[("X-Signature", &bare)]),
        headers(&[("X-Signature", "sha256=")]),
        headers(&[("X-Signature", "sha256=xyz")]),
    ] {
        let got = hook().parse(&HookRequest {
            headers: &h,
            body: SUCCEEDED,
        });
        assert!(
            matches!(got, Err(DeployHookError::Unauthenticated(_))),
            "{h:?}: {got:?}"
        );
    }
    let h = headers(&[("X-Signature", &format!("sha256={bare}"))]);
    let tampered = edit(SUCCEEDED, |v| v["reason"] = "Progressing".into());
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
    let s: FluxSettings = serde_json::from_value(serde_json::json!({ "secret": "" })).unwrap();
    assert_eq!(
        FluxHook::new(s).unwrap_err(),
        HookConfigError::EmptySecret { kind: "flux" }
    );
    assert!(!format!("{:?}", hook()).contains(SECRET));
}

#[test]
fn bad_bodies_and_missing_fields_are_named() {
    for body in [&b"[1,2"[..], b"   ", b"\x80\x81"] {
        assert!(
            matches!(parse(&hook(), body), Err(DeployHookError::BadPayload(_))),
            "{body:?}"
        );
    }
    for field in ["involvedObject", "severity", "timestamp", "reason"] {
        let body = edit(SUCCEEDED, |v| {
            v.as_object_mut().unwrap().remove(field);
        });
        match parse(&hook(), &body) {
            Err(DeployHookError::BadPayload(m)) => assert!(m.contains(field), "{field}: {m}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    for field in ["kind", "name", "namespace"] {
        let body = edit(SUCCEEDED, |v| {
            v["involvedObject"].as_object_mut().unwrap().remove(field);
        });
        assert!(matches!(
            parse(&hook(), &body),
            Err(DeployHookError::BadPayload(m)) if m.contains(&format!("involvedObject.{field}"))
        ));
    }
    let body = edit(SUCCEEDED, |v| {
        v["metadata"].as_object_mut().unwrap().remove("revision");
    });
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("metadata.revision"))
    );
    let body = edit(SUCCEEDED, |v| v["timestamp"] = "2022-10-28 07:31".into());
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("timestamp"))
    );
}

#[test]
fn huge_names_are_refused_and_messages_cut() {
    // Flux allows messages up to 39,000 characters.
    let body = edit(SUCCEEDED, |v| v["message"] = "ü".repeat(39_000).into());
    let d = parse(&hook(), &body).unwrap()[0]
        .description
        .clone()
        .unwrap();
    assert_eq!(d.len(), MAX_DESCRIPTION_BYTES);
    let long = "r".repeat(MAX_NAME_BYTES + 1);
    let body = edit(SUCCEEDED, |v| {
        v["metadata"]["revision"] = long.clone().into()
    });
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("metadata.revision"))
    );
    let body = edit(SUCCEEDED, |v| {
        v["involvedObject"]["name"] = long.clone().into()
    });
    assert!(
        matches!(parse(&hook(), &body), Err(DeployHookError::BadPayload(m)) if m.contains("involvedObject.name"))
    );
}

proptest! {
    #[test]
    fn arbitrary_signed_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&hook(), &body);
    }

    #[test]
    fn arbitrary_field_values_never_panic(s in ".{0,600}", t in ".{0,30}") {
        let body = edit(SUCCEEDED, |v| {
            v["involvedObject"]["name"] = s.clone().into();
            v["metadata"]["revision"] = s.clone().into();
            v["message"] = s.clone().into();
            v["reason"] = t.clone().into();
            v["timestamp"] = t.clone().into();
        });
        if let Ok(r) = parse(&hook(), &body) {
            prop_assert!(r[0].service.len() <= MAX_NAME_BYTES);
        }
    }
}
