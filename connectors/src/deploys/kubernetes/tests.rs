//! Tests without a cluster: DeploymentList answers in the apps/v1 shape (fixtures/), judged one
//! by one, and served in sequence by a local server that checks the request contract (path,
//! `labelSelector`, `limit`, bearer token; 401 without it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use super::*;
use crate::outbound::OutboundPolicy;
use crate::sinks::testing::{MockServer, Recorded, reply, reply_json};
use aiops_schemas::deploy::SourceStatus;
use axum::response::Response;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const PROGRESSING: &str = include_str!("fixtures/progressing.json");
const TERMINATING: &str = include_str!("fixtures/terminating.json");
const COMPLETE: &str = include_str!("fixtures/complete.json");
const OBSERVED_BEHIND: &str = include_str!("fixtures/observed_behind.json");
const DEADLINE: &str = include_str!("fixtures/deadline.json");
const UNAUTHORIZED: &str = include_str!("fixtures/unauthorized.json");

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.sa-token-for-tests";
const SELECTOR: &str = "app.kubernetes.io/part-of=shop";

/// The `checkout` Deployment of a fixture.
fn checkout(fixture: &str) -> Value {
    let list: Value = serde_json::from_str(fixture).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metadata"]["name"] == "checkout")
        .unwrap()
        .clone()
}

fn settings(api_url: &str) -> KubernetesSettings {
    KubernetesSettings {
        label_selector: SELECTOR.into(),
        token: TOKEN.into(),
        ..KubernetesSettings::new(api_url, "shop")
    }
}

#[test]
fn rollout_status_follows_kubectl() {
    let cases = [
        (
            PROGRESSING,
            SourceStatus::InProgress,
            "Waiting for deployment \"checkout\" rollout to finish: 1 out of 3 new replicas have been updated...",
        ),
        (
            TERMINATING,
            SourceStatus::InProgress,
            "Waiting for deployment \"checkout\" rollout to finish: 1 old replicas are pending termination...",
        ),
        (
            COMPLETE,
            SourceStatus::Succeeded,
            "deployment \"checkout\" successfully rolled out",
        ),
        (
            OBSERVED_BEHIND,
            SourceStatus::InProgress,
            "Waiting for deployment spec update to be observed...",
        ),
        (
            DEADLINE,
            SourceStatus::Failed,
            "deployment \"checkout\" exceeded its progress deadline",
        ),
    ];
    for (fixture, status, message) in cases {
        assert_eq!(
            rollout_status(&checkout(fixture)).unwrap(),
            (status, message.to_owned())
        );
    }
}

#[test]
fn updated_but_not_yet_available() {
    let mut d = checkout(COMPLETE);
    d["status"]["availableReplicas"] = json!(1);
    assert_eq!(
        rollout_status(&d).unwrap(),
        (
            SourceStatus::InProgress,
            "Waiting for deployment \"checkout\" rollout to finish: 1 of 3 updated replicas are available..."
                .to_owned()
        )
    );
    // The API omits zero counts: none available yet.
    d["status"]
        .as_object_mut()
        .unwrap()
        .remove("availableReplicas");
    assert!(rollout_status(&d).unwrap().1.contains("0 of 3 updated"));
    // Without spec.replicas kubectl skips the updated-vs-wanted check.
    let mut d = checkout(PROGRESSING);
    d["spec"].as_object_mut().unwrap().remove("replicas");
    assert!(
        rollout_status(&d)
            .unwrap()
            .1
            .contains("3 old replicas are pending termination")
    );
    // The deadline wins over the counts only once the spec is observed.
    let mut d = checkout(DEADLINE);
    d["metadata"]["generation"] = json!(9);
    assert_eq!(rollout_status(&d).unwrap().0, SourceStatus::InProgress);
}

#[test]
fn reports_from_deployments() {
    let s = settings("http://127.0.0.1:1");
    let r = report_from(&checkout(PROGRESSING), &s).unwrap().unwrap();
    assert_eq!(r.source, "kubernetes");
    assert_eq!(r.external_id.as_deref(), Some("shop/checkout/5"));
    assert_eq!(r.service, "checkout");
    assert_eq!(r.environment, "shop");
    assert_eq!(r.version, "1.8.0");
    assert_eq!(r.status, SourceStatus::InProgress);
    assert_eq!(r.requested_by, None);
    // Progressing's lastUpdateTime 2026-12-04T10:15:30Z.
    assert_eq!(r.at_ms, 1_796_379_330_000);
    let desc = r.description.unwrap();
    assert!(
        desc.starts_with("kubectl set image deployment/checkout"),
        "{desc}"
    );
    assert!(desc.contains("1 out of 3 new replicas"), "{desc}");

    // Not yet observed: nothing to report (its revision annotation is the previous rollout's).
    assert_eq!(report_from(&checkout(OBSERVED_BEHIND), &s).unwrap(), None);

    // Environment and service label from the settings; version from the image when unlabelled.
    let s2 = KubernetesSettings {
        environment: Some("production".into()),
        service_label: "app.kubernetes.io/part-of".into(),
        ..settings("http://127.0.0.1:1")
    };
    let mut d = checkout(DEADLINE);
    d["spec"]["template"]["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("app.kubernetes.io/version");
    d["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example.com:5000/shop/checkout:1.9.1");
    let r = report_from(&d, &s2).unwrap().unwrap();
    assert_eq!(r.environment, "production");
    assert_eq!(r.service, "shop");
    assert_eq!(r.version, "1.9.1");
    assert_eq!(r.status, SourceStatus::Failed);
    assert_eq!(r.external_id.as_deref(), Some("shop/checkout/6"));
    // No service label anywhere: the Deployment's name.
    let s3 = KubernetesSettings {
        service_label: "team".into(),
        ..settings("http://127.0.0.1:1")
    };
    assert_eq!(report_from(&d, &s3).unwrap().unwrap().service, "checkout");
    // No revision annotation: the generation.
    d["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("deployment.kubernetes.io/revision");
    assert_eq!(
        report_from(&d, &s3)
            .unwrap()
            .unwrap()
            .external_id
            .as_deref(),
        Some("shop/checkout/g8")
    );
}

#[test]
fn image_versions() {
    assert_eq!(image_version("nginx:1.27"), "1.27");
    assert_eq!(image_version("nginx"), "latest");
    assert_eq!(image_version("registry:5000/team/app"), "latest");
    assert_eq!(image_version("registry:5000/team/app:2.0.1"), "2.0.1");
    assert_eq!(image_version("app@sha256:abc123"), "sha256:abc123");
    assert_eq!(image_version("app:1.2@sha256:abc123"), "1.2");
    assert_eq!(image_version(""), "latest");
}

#[test]
fn deployments_missing_fields_are_typed_errors() {
    let s = settings("http://127.0.0.1:1");
    let full = checkout(COMPLETE);
    type Break = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Break)> = vec![
        (
            "metadata.name",
            Box::new(|d| {
                d["metadata"].as_object_mut().unwrap().remove("name");
            }),
        ),
        (
            "metadata.generation",
            Box::new(|d| {
                d["metadata"].as_object_mut().unwrap().remove("generation");
            }),
        ),
        (
            "metadata.namespace",
            Box::new(|d| {
                d["metadata"].as_object_mut().unwrap().remove("namespace");
            }),
        ),
        (
            "spec.template.spec.containers[0].image",
            Box::new(|d| {
                d["spec"]["template"]["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("app.kubernetes.io/version");
                d["spec"]["template"]["spec"]["containers"] = json!([]);
            }),
        ),
        (
            "status.updatedReplicas",
            Box::new(|d| d["status"]["updatedReplicas"] = json!("three")),
        ),
        (
            "status.conditions",
            Box::new(|d| d["status"]["conditions"] = json!({"type": "Progressing"})),
        ),
        (
            "status.conditions[Progressing].lastUpdateTime",
            Box::new(|d| d["status"]["conditions"][1]["lastUpdateTime"] = json!("yesterday")),
        ),
        (
            "metadata.labels",
            Box::new(|d| d["metadata"]["labels"] = json!(["checkout"])),
        ),
    ];
    for (field, break_it) in cases {
        let mut d = full.clone();
        break_it(&mut d);
        let e = report_from(&d, &s).expect_err(field);
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    // Not an object at all.
    assert!(rollout_status(&json!("checkout")).is_err());
    assert!(rollout_status(&json!(null)).is_err());
}

/// Serves `answers` in order (the last one repeats), checking the contract first.
async fn cluster(answers: Vec<&'static str>) -> (MockServer, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let served2 = served.clone();
    let server = MockServer::start(move |req: &Recorded| -> Response {
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return reply(401, "application/json", UNAUTHORIZED);
        }
        if req.method != axum::http::Method::GET
            || req.path != "/apis/apps/v1/namespaces/shop/deployments"
        {
            return reply_json(404, json!({"kind": "Status", "message": "not found", "code": 404}));
        }
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let want = |k: &str, v: &str| query.iter().any(|(a, b)| a == k && b == v);
        if !want("labelSelector", SELECTOR) || !want("limit", "500") {
            return reply_json(
                400,
                json!({"kind": "Status", "message": format!("unexpected query {query:?}"), "code": 400}),
            );
        }
        let i = served2.fetch_add(1, Ordering::SeqCst);
        let body = answers[i.min(answers.len() - 1)];
        reply(200, "application/json", body)
    })
    .await;
    (server, served)
}

fn local() -> OutboundPolicy {
    OutboundPolicy::allowing(["127.0.0.1"])
}

#[tokio::test]
async fn a_rollout_followed_across_polls() {
    let (server, served) = cluster(vec![
        PROGRESSING,
        TERMINATING,
        COMPLETE,
        OBSERVED_BEHIND,
        DEADLINE,
        DEADLINE,
    ])
    .await;
    let mut w = KubernetesWatcher::new(settings(&server.url("")), &local()).unwrap();

    // 1: checkout's rollout is in progress and reported; payments completed long ago and is not.
    let r = w.poll().await.unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].external_id.as_deref(), Some("shop/checkout/5"));
    assert_eq!(r[0].status, SourceStatus::InProgress);
    assert_eq!(r[0].previous_version, None);

    // 2: still in progress (old replicas terminating): no change, no report.
    assert!(w.poll().await.unwrap().is_empty());

    // 3: complete.
    let r = w.poll().await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, SourceStatus::Succeeded);
    assert_eq!(r[0].external_id.as_deref(), Some("shop/checkout/5"));
    assert!(
        r[0].description
            .as_deref()
            .unwrap()
            .contains("successfully rolled out")
    );

    // 4: a new spec the controller has not observed yet: wait.
    assert!(w.poll().await.unwrap().is_empty());

    // 5: the new rollout (revision 6) failed its deadline; the version it replaces is known.
    let r = w.poll().await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].external_id.as_deref(), Some("shop/checkout/6"));
    assert_eq!(r[0].status, SourceStatus::Failed);
    assert_eq!(r[0].version, "1.9.0");
    assert_eq!(r[0].previous_version.as_deref(), Some("1.8.0"));
    assert!(
        r[0].description
            .as_deref()
            .unwrap()
            .contains("exceeded its progress deadline")
    );

    // 6: nothing changed.
    assert!(w.poll().await.unwrap().is_empty());
    assert_eq!(served.load(Ordering::SeqCst), 6);
    assert!(w.last_problems().is_empty());
    assert!(!w.truncated());

    // Every request carried the token, and the token never shows in Debug.
    for req in server.requests() {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(req.header("accept"), Some("application/json"));
    }
    assert!(!format!("{w:?}").contains(TOKEN));
    assert!(!format!("{:?}", settings("http://x")).contains(TOKEN));
}

#[tokio::test]
async fn a_first_poll_reports_failed_rollouts_and_remembered_ones_that_finished() {
    let (server, _) = cluster(vec![DEADLINE]).await;
    let mut w = KubernetesWatcher::new(settings(&server.url("")), &local()).unwrap();
    let r = w.poll().await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, SourceStatus::Failed);

    // The log knew the rollout as in progress (aiops was down when it completed): reported.
    let (server, _) = cluster(vec![COMPLETE]).await;
    let mut w = KubernetesWatcher::new(settings(&server.url("")), &local()).unwrap();
    assert!(w.remember("shop/checkout/5", SourceStatus::InProgress, "1.8.0"));
    assert!(!w.remember("checkout", SourceStatus::InProgress, "1.8.0"));
    let r = w.poll().await.unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].status, SourceStatus::Succeeded);
    // Already known as succeeded: nothing.
    let (server, _) = cluster(vec![COMPLETE]).await;
    let mut w = KubernetesWatcher::new(settings(&server.url("")), &local()).unwrap();
    w.remember("shop/checkout/5", SourceStatus::Succeeded, "1.8.0");
    assert!(w.poll().await.unwrap().is_empty());
}

#[tokio::test]
async fn without_the_token_the_api_says_401() {
    let (server, served) = cluster(vec![COMPLETE]).await;
    let no_token = KubernetesSettings {
        token: String::new(),
        ..settings(&server.url(""))
    };
    let mut w = KubernetesWatcher::new(no_token, &local()).unwrap();
    let e = w.poll().await.unwrap_err();
    assert!(
        matches!(e, WatchError::Unauthorized(ref m) if m == "HTTP 401: Unauthorized"),
        "{e:?}"
    );
    assert!(!e.retryable());
    let wrong = KubernetesSettings {
        token: "wrong".into(),
        ..settings(&server.url(""))
    };
    let mut w = KubernetesWatcher::new(wrong, &local()).unwrap();
    assert!(matches!(w.poll().await, Err(WatchError::Unauthorized(_))));
    assert_eq!(served.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_wrong_namespace_is_a_settings_error() {
    let (server, _) = cluster(vec![COMPLETE]).await;
    let other = KubernetesSettings {
        namespace: "other".into(),
        ..settings(&server.url(""))
    };
    let mut w = KubernetesWatcher::new(other, &local()).unwrap();
    let e = w.poll().await.unwrap_err();
    assert!(
        matches!(e, WatchError::Config(ref m) if m.contains("\"other\"")),
        "{e:?}"
    );
}

/// A server answering every request with `answer`.
async fn answering(
    answer: impl Fn() -> Response + Send + Sync + 'static,
) -> (MockServer, KubernetesWatcher) {
    let server = MockServer::start(move |_: &Recorded| answer()).await;
    let w = KubernetesWatcher::new(settings(&server.url("")), &local()).unwrap();
    (server, w)
}

#[tokio::test]
async fn hostile_answers_are_typed_errors() {
    let (_s, mut w) =
        answering(|| reply(200, "application/json", "<html>proxy error</html>")).await;
    let e = w.poll().await.unwrap_err();
    assert!(
        matches!(e, WatchError::BadResponse(ref m) if m.contains("not JSON")),
        "{e:?}"
    );

    let (_s, mut w) = answering(|| reply(500, "text/plain", "etcdserver: request timed out")).await;
    let e = w.poll().await.unwrap_err();
    assert!(
        matches!(e, WatchError::Unavailable(ref m) if m.contains("500") && m.contains("etcdserver")),
        "{e:?}"
    );
    assert!(e.retryable());

    let (_s, mut w) = answering(|| reply_json(200, json!({"kind": "PodList", "items": []}))).await;
    assert!(matches!(w.poll().await, Err(WatchError::BadResponse(ref m)) if m.contains("PodList")));
    let (_s, mut w) =
        answering(|| reply_json(200, json!({"kind": "DeploymentList", "items": {}}))).await;
    assert!(matches!(w.poll().await, Err(WatchError::BadResponse(_))));
    let (_s, mut w) = answering(|| reply_json(200, json!([1, 2]))).await;
    assert!(matches!(w.poll().await, Err(WatchError::BadResponse(_))));
    let (_s, mut w) = answering(|| reply_json(200, json!({"kind": "DeploymentList"}))).await;
    assert!(matches!(w.poll().await, Err(WatchError::BadResponse(ref m)) if m.contains("items")));
    // An empty namespace is fine (Go may write null).
    let (_s, mut w) =
        answering(|| reply_json(200, json!({"kind": "DeploymentList", "items": null}))).await;
    assert!(w.poll().await.unwrap().is_empty());

    // A huge body: refused at the limit, not buffered.
    let big = format!(
        "{{\"kind\":\"DeploymentList\",\"items\":[{}]}}",
        vec!["{}"; 40_000].join(",")
    );
    let server =
        MockServer::start(move |_: &Recorded| reply(200, "application/json", big.clone())).await;
    let small = KubernetesSettings {
        max_body_bytes: 64 << 10,
        ..settings(&server.url(""))
    };
    let mut w = KubernetesWatcher::new(small, &local()).unwrap();
    assert_eq!(
        w.poll().await.unwrap_err(),
        WatchError::TooLarge { limit: 64 << 10 }
    );
}

#[tokio::test]
async fn a_huge_streamed_body_is_cut_at_the_limit() {
    // No Content-Length: chunks of 16 KiB, endlessly many; the read stops at the limit.
    let server = MockServer::start(|_: &Recorded| {
        let chunk = axum::body::Bytes::from(vec![b' '; 16 << 10]);
        let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()))
            .take(100_000);
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(axum::body::Body::from_stream(stream))
            .unwrap()
    })
    .await;
    let small = KubernetesSettings {
        max_body_bytes: 64 << 10,
        ..settings(&server.url(""))
    };
    let mut w = KubernetesWatcher::new(small, &local()).unwrap();
    assert_eq!(
        w.poll().await.unwrap_err(),
        WatchError::TooLarge { limit: 64 << 10 }
    );
}

#[tokio::test]
async fn a_broken_deployment_does_not_hide_the_others() {
    let mut list: Value = serde_json::from_str(PROGRESSING).unwrap();
    let mut broken = list["items"][0].clone();
    broken["metadata"]["name"] = json!("broken");
    broken["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("generation");
    list["items"].as_array_mut().unwrap().push(broken);
    list["items"].as_array_mut().unwrap().push(json!(42));
    let body = list.to_string();
    let (_s, mut w) = answering(move || reply(200, "application/json", body.clone())).await;
    let r = w.poll().await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].service, "checkout");
    let problems: Vec<String> = w.last_problems().iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("shop/broken") && problems[0].contains("metadata.generation"));
}

#[tokio::test]
async fn at_most_max_deployments_are_looked_at() {
    let mut list: Value = serde_json::from_str(DEADLINE).unwrap();
    let template = list["items"][0].clone();
    let items: Vec<Value> = (0..5)
        .map(|i| {
            let mut d = template.clone();
            d["metadata"]["name"] = json!(format!("svc-{i}"));
            d["metadata"]["labels"]["app.kubernetes.io/name"] = json!(format!("svc-{i}"));
            d
        })
        .collect();
    list["items"] = json!(items);
    list["metadata"]["continue"] = json!("eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ");
    let body = list.to_string();
    let server =
        MockServer::start(move |_: &Recorded| reply(200, "application/json", body.clone())).await;
    let s = KubernetesSettings {
        max_deployments: 3,
        ..settings(&server.url(""))
    };
    let mut w = KubernetesWatcher::new(s, &local()).unwrap();
    let r = w.poll().await.unwrap();
    assert_eq!(r.len(), 3);
    assert!(w.truncated());
    assert!(
        server.requests()[0]
            .query
            .as_deref()
            .unwrap()
            .contains("limit=3")
    );
}

#[test]
fn settings_are_checked() {
    let ok = settings("https://kubernetes.default.svc");
    ok.validate().unwrap();
    let cases: Vec<(&str, KubernetesSettings)> = vec![
        ("api_url", KubernetesSettings::new("kubernetes", "shop")),
        ("api_url", KubernetesSettings::new("ftp://k8s", "shop")),
        ("namespace", KubernetesSettings::new("https://k8s", "Shop")),
        ("namespace", KubernetesSettings::new("https://k8s", "a/b")),
        ("namespace", KubernetesSettings::new("https://k8s", "")),
        (
            "interval",
            KubernetesSettings {
                interval: std::time::Duration::from_millis(10),
                ..ok.clone()
            },
        ),
        (
            "max_deployments",
            KubernetesSettings {
                max_deployments: 0,
                ..ok.clone()
            },
        ),
        (
            "token",
            KubernetesSettings {
                token: "abc\n".into(),
                ..ok.clone()
            },
        ),
    ];
    for (field, s) in cases {
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("{field}:")), "{field}: {e}");
    }
    // The outbound guard refuses a private API server unless allowed.
    let e = KubernetesWatcher::new(
        settings("https://10.0.0.1:6443"),
        &OutboundPolicy::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, WatchError::Config(ref m) if m.contains("10.0.0.1")),
        "{e:?}"
    );
    // A CA file that is not PEM is refused at build.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, "not a certificate").unwrap();
    let with_ca = KubernetesSettings {
        ca_file: Some(ca),
        ..settings("https://10.0.0.1:6443")
    };
    let e = KubernetesWatcher::new(with_ca, &local_and("10.0.0.1")).unwrap_err();
    assert!(
        matches!(e, WatchError::Config(ref m) if m.contains("ca_file") || m.contains("CA file")),
        "{e:?}"
    );
    // A PEM CA (a cluster's ca.crt) is accepted.
    let good = KubernetesSettings {
        ca_file: Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/deploys/kubernetes/fixtures/test-ca.crt"),
        ),
        ..settings("https://10.0.0.1:6443")
    };
    KubernetesWatcher::new(good, &local_and("10.0.0.1")).unwrap();
    // A missing CA file names the file.
    let missing = KubernetesSettings {
        ca_file: Some(dir.path().join("nope.crt")),
        ..settings("https://10.0.0.1:6443")
    };
    let e = KubernetesWatcher::new(missing, &local_and("10.0.0.1")).unwrap_err();
    assert!(
        matches!(e, WatchError::Config(ref m) if m.contains("nope.crt")),
        "{e:?}"
    );
    // Settings parse from config with defaults, unknown fields refused.
    let s: KubernetesSettings =
        toml::from_str("api_url = \"https://k8s:6443\"\nnamespace = \"shop\"\ninterval = \"30s\"")
            .unwrap();
    assert_eq!(s.interval, std::time::Duration::from_secs(30));
    assert_eq!(s.service_label, "app.kubernetes.io/name");
    assert_eq!(s.max_deployments, 500);
    assert!(
        toml::from_str::<KubernetesSettings>("api_url = \"x\"\nnamespace = \"y\"\nnamespaces = 1")
            .is_err()
    );
}

fn local_and(extra: &str) -> OutboundPolicy {
    OutboundPolicy::allowing(["127.0.0.1", extra])
}

#[test]
fn the_url_is_built_from_the_settings() {
    let w = KubernetesWatcher::new(
        settings("https://k8s.example.com:6443/prefix/"),
        &OutboundPolicy::default(),
    )
    .unwrap();
    assert_eq!(
        w.url(),
        "https://k8s.example.com:6443/prefix/apis/apps/v1/namespaces/shop/deployments?labelSelector=app.kubernetes.io%2Fpart-of%3Dshop&limit=500"
    );
    assert_eq!(w.interval(), std::time::Duration::from_secs(10));
}
