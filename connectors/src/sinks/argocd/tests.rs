//! `argocd` against a local server that checks each request against Argo CD's
//! `ApplicationService.Sync` contract (swagger `applicationApplicationSyncRequest`) and answers
//! like the API server: 200 with the Application, gRPC-gateway errors `{error, code, message}`.

use crate::sinks::testing::{
    MockServer, Recorded, assert_no_secrets, build_local, local_ctx, obj, reply, reply_json,
};
use crate::sinks::{EffectCall, ProviderContext, SinkError, build_provider};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.argocd-api-token-SECRET.sig";
const KEY: &str = "deploy-run/deploy-17/sync";
const SHA: &str = "8b7f3c2a1d9e0f4b5a6c7d8e9f0a1b2c3d4e5f60";

/// Argo CD's error body (grpc-gateway's runtime error).
fn argo_error(status: u16, code: i64, message: &str) -> Response {
    reply_json(
        status,
        json!({"error": message, "code": code, "message": message, "details": []}),
    )
}

/// Why a request breaks the documented contract, if it does.
fn contract_violation(r: &Recorded, name: &str) -> Option<String> {
    if r.method != "POST" {
        return Some(format!("method {}", r.method));
    }
    if r.header("content-type") != Some("application/json") {
        return Some("content-type".into());
    }
    if !r
        .header("user-agent")
        .is_some_and(|u| u.starts_with("aiops/"))
    {
        return Some("user-agent".into());
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&r.body) else {
        return Some("body is not a JSON object".into());
    };
    const DOCUMENTED: &[&str] = &[
        "name",
        "revision",
        "dryRun",
        "prune",
        "strategy",
        "resources",
        "manifests",
        "infos",
        "retryStrategy",
        "syncOptions",
        "appNamespace",
        "project",
        "sourcePositions",
        "revisions",
    ];
    if let Some(k) = body.keys().find(|k| !DOCUMENTED.contains(&k.as_str())) {
        return Some(format!("undocumented field {k}"));
    }
    if body.get("name").and_then(Value::as_str) != Some(name) {
        return Some("name differs from the path".into());
    }
    for (k, ok) in [
        (
            "revision",
            body.get("revision").is_none_or(Value::is_string),
        ),
        (
            "appNamespace",
            body.get("appNamespace").is_none_or(Value::is_string),
        ),
        ("prune", body.get("prune").is_none_or(Value::is_boolean)),
        ("dryRun", body.get("dryRun") == Some(&json!(false))),
        (
            "strategy",
            body.get("strategy") == Some(&json!({"hook": {}})),
        ),
    ] {
        if !ok {
            return Some(format!("{k} has the wrong type or value"));
        }
    }
    let infos_ok = body.get("infos").is_none_or(|i| {
        i.as_array().is_some_and(|a| {
            a.iter().all(|x| {
                x.as_object().is_some_and(|o| {
                    o.len() == 2
                        && o.get("name").is_some_and(Value::is_string)
                        && o.get("value").is_some_and(Value::is_string)
                })
            })
        })
    });
    if !infos_ok {
        return Some("infos is not a list of {name, value}".into());
    }
    None
}

/// The Application the API server answers with right after setting the sync operation (the
/// controller has not started it: no operationState yet).
fn application(name: &str, body: &Value, phase: Option<&str>) -> Value {
    let mut app = json!({
        "metadata": {"name": name, "namespace": body.get("appNamespace").cloned().unwrap_or(json!("argocd")), "resourceVersion": "123"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://github.com/acme/deploy.git", "path": name, "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name}
        },
        "operation": {
            "sync": {"revision": SHA, "prune": body["prune"], "syncStrategy": {"hook": {}}},
            "initiatedBy": {"username": "aiops"},
            "info": body["infos"]
        },
        "status": {
            "sync": {"status": "OutOfSync", "revision": "0000000000000000000000000000000000000000"},
            "health": {"status": "Healthy"}
        }
    });
    if let Some(p) = phase {
        app["status"]["operationState"] =
            json!({"phase": p, "message": "running", "operation": app["operation"].clone()});
    }
    app
}

/// The applications with an operation set, by `(namespace, name)`.
type Operations = Arc<Mutex<HashMap<(String, String), Value>>>;

/// Why a GET of an application breaks the documented contract, if it does.
fn get_violation(r: &Recorded) -> Option<String> {
    if !r
        .header("user-agent")
        .is_some_and(|u| u.starts_with("aiops/"))
    {
        return Some("user-agent".into());
    }
    if !r.body.is_empty() {
        return Some("a GET with a body".into());
    }
    // `ApplicationQuery` fields are query parameters; only appNamespace is expected.
    if let Some(q) = &r.query
        && !q.starts_with("appNamespace=")
    {
        return Some(format!("query {q}"));
    }
    None
}

/// `GET /api/v1/applications/{name}[?appNamespace=]`: the Application with its operation.
fn get_application(r: &Recorded, name: &str, running: &Operations) -> Response {
    if let Some(v) = get_violation(r) {
        return reply(418, "text/plain", format!("contract: {v}"));
    }
    let ns = r
        .query
        .as_deref()
        .and_then(|q| q.strip_prefix("appNamespace="))
        .unwrap_or("argocd")
        .to_owned();
    if let Some(app) = running.lock().unwrap().get(&(ns, name.to_owned())) {
        return reply_json(200, app.clone());
    }
    match name {
        // Someone ran a sync by hand: an operation without aiops' info.
        "busy" => {
            let mut app = application(
                name,
                &json!({"prune": false, "infos": null}),
                Some("Running"),
            );
            app["operation"]["initiatedBy"] = json!({"username": "admin"});
            app["status"]["operationState"]["operation"] = app["operation"].clone();
            reply_json(200, app)
        }
        "busy-flaky" => reply(503, "text/plain", "upstream connect error"),
        _ => argo_error(403, 7, "permission denied"),
    }
}

/// Argo CD served under the root path `/argocd`. `deploying` and `queued` keep their operation
/// after the first sync (the controller runs it, or has not picked it up yet), as Argo CD does
/// until the operation completes: a second sync is refused as in progress.
fn argo_like() -> impl Fn(&Recorded) -> Response + Send + Sync + 'static {
    let running: Operations = Arc::default();
    move |r: &Recorded| {
        if r.header("authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
            return argo_error(401, 16, "invalid session: token signature is invalid");
        }
        let Some(rest) = r.path.strip_prefix("/argocd/api/v1/applications/") else {
            return argo_error(404, 5, "Not Found");
        };
        let Some(name) = rest.strip_suffix("/sync") else {
            if r.method == "GET" && !rest.contains('/') {
                return get_application(r, rest, &running);
            }
            return argo_error(404, 5, "Not Found");
        };
        if let Some(v) = contract_violation(r, name) {
            return reply(418, "text/plain", format!("contract: {v}"));
        }
        let body = r.json();
        match name {
            "checkout" => reply_json(200, application(name, &body, None)),
            "running" => reply_json(200, application(name, &body, Some("Running"))),
            "deploying" | "queued" => {
                let ns = body["appNamespace"].as_str().unwrap_or("argocd").to_owned();
                let mut running = running.lock().unwrap();
                let slot = (ns, name.to_owned());
                if running.contains_key(&slot) {
                    return argo_error(400, 9, "another operation is already in progress");
                }
                let answer = application(name, &body, None);
                let mut app = answer.clone();
                if name == "deploying" {
                    app["status"]["operationState"] = json!({
                        "phase": "Running", "message": "one or more tasks are running",
                        "operation": app["operation"].clone(),
                        "startedAt": "2026-12-05T11:00:00Z"
                    });
                }
                app["status"]["resources"] = json!([{"kind": "Deployment", "name": name}]);
                running.insert(slot, app);
                reply_json(200, answer)
            }
            "busy" | "busy-flaky" => argo_error(400, 9, "another operation is already in progress"),
            "secret-app" => argo_error(403, 7, "permission denied"),
            "windowed" => argo_error(403, 7, "cannot sync: blocked by sync window"),
            "gone" => argo_error(404, 5, "applications.argoproj.io \"gone\" not found"),
            "flaky" => reply(503, "text/plain", "upstream connect error"),
            "throttled" => reply(429, "text/plain", "Too Many Requests"),
            "echo" => argo_error(
                400,
                3,
                &format!(
                    "bad request from {}",
                    r.header("authorization").unwrap_or_default()
                ),
            ),
            "huge" => {
                // An application with very many resources: an answer beyond what is kept.
                let mut app = application(name, &body, None);
                app["status"]["resources"] = json!("x".repeat(17 * 1024 * 1024));
                reply_json(200, app)
            }
            _ => argo_error(403, 7, "permission denied"),
        }
    }
}

fn config(server: &MockServer) -> Value {
    json!({"kind": "argocd", "server": server.url("/argocd"), "token": TOKEN})
}

async fn call(
    p: &dyn crate::sinks::Provider,
    params: Value,
) -> Result<crate::sinks::EffectOutput, SinkError> {
    call_as(p, params, KEY).await
}

/// A call of the effect with idempotency key `key`.
async fn call_as(
    p: &dyn crate::sinks::Provider,
    params: Value,
    key: &str,
) -> Result<crate::sinks::EffectOutput, SinkError> {
    let params = obj(params);
    p.call(&EffectCall {
        idempotency_key: key,
        params: &params,
    })
    .await
}

#[tokio::test]
async fn syncs_with_the_documented_request() {
    let server = MockServer::start(argo_like()).await;
    let p = build_local(config(&server));
    let out = call(
        p.as_ref(),
        json!({"application": "checkout", "revision": "v1.4.2", "prune": "true"}),
    )
    .await
    .unwrap();
    assert_eq!(out.status, "sync started");
    assert_eq!(
        out.response,
        json!({"application": "checkout", "revision": SHA})
    );
    let r = server.requests().pop().unwrap();
    assert_eq!(r.path, "/argocd/api/v1/applications/checkout/sync");
    assert_eq!(r.query, None);
    assert_eq!(
        r.json(),
        json!({
            "name": "checkout", "revision": "v1.4.2", "prune": true, "dryRun": false,
            "strategy": {"hook": {}},
            "infos": [{"name": "aiops-effect", "value": KEY}]
        })
    );
    // Defaults: no revision (the app's target revision), no prune.
    let out = call(p.as_ref(), json!({"application": "running"}))
        .await
        .unwrap();
    assert_eq!(out.status, "Running");
    assert_eq!(out.response["phase"], "Running");
    let sent = server.requests().pop().unwrap().json();
    assert_eq!(sent["prune"], false);
    assert!(sent.get("revision").is_none() && sent.get("appNamespace").is_none());
    let params = obj(json!({"application": "checkout"}));
    let c = EffectCall {
        idempotency_key: KEY,
        params: &params,
    };
    assert_eq!(p.target(&c), "checkout");
    assert_no_secrets(
        p.as_ref(),
        &[p.target(&c), out.response.to_string()],
        &[TOKEN],
    );
}

#[tokio::test]
async fn the_app_namespace_goes_in_the_body() {
    let server = MockServer::start(argo_like()).await;
    let mut cfg = config(&server);
    cfg["app_namespace"] = json!("team-payments");
    let p = build_local(cfg);
    let out = call(p.as_ref(), json!({"application": "checkout"}))
        .await
        .unwrap();
    assert_eq!(out.response["application"], "team-payments/checkout");
    let r = server.requests().pop().unwrap();
    assert_eq!(r.json()["appNamespace"], "team-payments");
    let e = call(p.as_ref(), json!({"application": "gone"}))
        .await
        .unwrap_err();
    assert!(matches!(e, SinkError::Http { status: 404, .. }), "{e}");
    assert!(e.to_string().contains("team-payments/gone"), "{e}");
}

#[tokio::test]
async fn an_answer_too_big_to_keep_is_still_a_started_sync() {
    let server = MockServer::start(argo_like()).await;
    let p = build_local(config(&server));
    let out = call(p.as_ref(), json!({"application": "huge"}))
        .await
        .unwrap();
    assert_eq!(out.status, "sync started");
    assert_eq!(out.response, json!({"application": "huge"}));
}

#[tokio::test]
async fn a_sync_resent_while_it_runs_is_answered_as_its_own() {
    for ns in [None, Some("team-payments")] {
        let server = MockServer::start(argo_like()).await;
        let mut cfg = config(&server);
        if let Some(ns) = ns {
            cfg["app_namespace"] = json!(ns);
        }
        let p = build_local(cfg);
        let target = match ns {
            Some(ns) => format!("{ns}/deploying"),
            None => "deploying".to_owned(),
        };
        let params = json!({"application": "deploying", "revision": "v1.4.2"});
        let out = call(p.as_ref(), params.clone()).await.unwrap();
        assert_eq!(out.status, "sync started");
        // aiops dies before logging the result; the engine resends the intent with its key.
        let out = call(p.as_ref(), params.clone()).await.unwrap();
        assert_eq!(out.status, "Running (resent)");
        assert_eq!(
            out.response,
            json!({"application": target, "revision": SHA, "phase": "Running", "resent": true})
        );
        let seen = server.requests();
        assert_eq!(seen.len(), 3, "sync, refused sync, read");
        let get = &seen[2];
        assert_eq!(get.method, "GET");
        assert_eq!(get.path, "/argocd/api/v1/applications/deploying");
        assert_eq!(get.query, ns.map(|n| format!("appNamespace={n}")));
        assert_eq!(
            get.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );

        // Another effect's sync while this one runs: refused as before.
        let e = call_as(p.as_ref(), params.clone(), "deploy-run/deploy-18/sync")
            .await
            .unwrap_err();
        assert!(matches!(e, SinkError::Http { status: 400, .. }), "{e}");
        assert!(!e.retryable());
        let t = e.to_string();
        assert!(
            t.contains("another operation is already in progress") && t.contains("terminate"),
            "{t}"
        );
        assert_no_secrets(
            p.as_ref(),
            &[t, out.response.to_string(), out.status.clone()],
            &[TOKEN],
        );
    }

    // The controller has not started the operation yet: no phase, but it is this effect's.
    let server = MockServer::start(argo_like()).await;
    let p = build_local(config(&server));
    call(p.as_ref(), json!({"application": "queued"}))
        .await
        .unwrap();
    let out = call(p.as_ref(), json!({"application": "queued"}))
        .await
        .unwrap();
    assert_eq!(out.status, "sync started (resent)");
    assert_eq!(
        out.response,
        json!({"application": "queued", "revision": SHA, "resent": true})
    );
    let e = call_as(p.as_ref(), json!({"application": "queued"}), "other")
        .await
        .unwrap_err();
    assert!(matches!(e, SinkError::Http { status: 400, .. }), "{e}");
}

#[tokio::test]
async fn a_refused_sync_that_cannot_be_checked_is_retried() {
    let (e, t) = failure(TOKEN, "busy-flaky").await;
    assert!(matches!(e, SinkError::Http { status: 503, .. }), "{t}");
    assert!(e.retryable(), "{t}");
}

async fn failure(token: &str, application: &str) -> (SinkError, String) {
    let server = MockServer::start(argo_like()).await;
    let mut cfg = config(&server);
    cfg["token"] = json!(token);
    let p = build_local(cfg);
    let err = call(p.as_ref(), json!({"application": application}))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_no_secrets(
        p.as_ref(),
        &[text.clone(), format!("{err:?}")],
        &[token, TOKEN],
    );
    assert!(!text.contains("contract:"), "{text}");
    (err, text)
}

#[tokio::test]
async fn each_error_class_says_who_must_act() {
    let (e, t) = failure("wrong-argocd-token-value", "checkout").await;
    assert!(matches!(e, SinkError::Http { status: 401, .. }), "{t}");
    assert!(!e.retryable());
    assert!(t.contains("invalid, expired"), "{t}");

    let (e, t) = failure(TOKEN, "secret-app").await;
    assert!(matches!(e, SinkError::Http { status: 403, .. }), "{t}");
    assert!(!e.retryable());
    assert!(
        t.contains("applications, sync") && t.contains("does not exist"),
        "{t}"
    );

    let (e, t) = failure(TOKEN, "windowed").await;
    assert!(matches!(e, SinkError::Http { status: 403, .. }), "{t}");
    assert!(t.contains("sync window"), "{t}");

    let (e, t) = failure(TOKEN, "gone").await;
    assert!(matches!(e, SinkError::Http { status: 404, .. }), "{t}");
    assert!(!e.retryable());
    assert!(t.contains("does not exist"), "{t}");

    let (e, t) = failure(TOKEN, "busy").await;
    assert!(matches!(e, SinkError::Http { status: 400, .. }), "{t}");
    assert!(!e.retryable());
    assert!(
        t.contains("another operation is already in progress") && t.contains("terminate"),
        "{t}"
    );

    let (e, t) = failure(TOKEN, "echo").await;
    assert!(matches!(e, SinkError::Http { status: 400, .. }), "{t}");
    assert!(t.contains("***"), "{t}");

    let (e, t) = failure(TOKEN, "flaky").await;
    assert!(matches!(e, SinkError::Http { status: 503, .. }), "{t}");
    assert!(e.retryable());

    let (e, t) = failure(TOKEN, "throttled").await;
    assert!(matches!(e, SinkError::Http { status: 429, .. }), "{t}");
    assert!(e.retryable());
}

#[test]
fn hostile_params_are_refused_naming_the_field() {
    let p = build_provider(
        "argo",
        &json!({"kind": "argocd", "server": "https://argocd.example.com", "token": TOKEN}),
        &local_ctx(),
    )
    .unwrap();
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "application"),
        (json!({"application": ""}), "application"),
        (json!({"application": 7}), "application"),
        (json!({"application": "../../settings"}), "application"),
        (
            json!({"application": "checkout/../../session"}),
            "application",
        ),
        (json!({"application": "checkout%2F..%2Fx"}), "application"),
        (json!({"application": "checkout?x=1"}), "application"),
        (json!({"application": "Checkout"}), "application"),
        (json!({"application": "-checkout"}), "application"),
        (json!({"application": "a..b"}), "application"),
        (json!({"application": "a".repeat(254)}), "application"),
        (
            json!({"application": "checkout", "revision": ""}),
            "revision",
        ),
        (
            json!({"application": "checkout", "revision": "main; rm -rf"}),
            "revision",
        ),
        (
            json!({"application": "checkout", "revision": "x".repeat(100_000)}),
            "revision",
        ),
        (json!({"application": "checkout", "prune": "yes"}), "prune"),
        (json!({"application": "checkout", "prune": 1}), "prune"),
        (json!({"application": "checkout", "dryRun": true}), "dryRun"),
        (
            json!({"application": "checkout", "server": "https://evil.example.com"}),
            "server",
        ),
    ];
    for (params, field) in cases {
        let e = p.validate(&obj(params.clone())).unwrap_err();
        assert!(
            matches!(&e, SinkError::Params { field: f, .. } if f == field),
            "{params}: {e}"
        );
        assert!(e.to_string().len() < 600, "bounded: {e}");
    }
    for ok in [
        json!({"application": "checkout"}),
        json!({"application": "payments.eu-west-1", "revision": SHA, "prune": false}),
        json!({"application": "a".repeat(253), "revision": "1.4.2"}),
    ] {
        p.validate(&obj(ok.clone()))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn config_is_checked_without_quoting_secrets() {
    let ctx = local_ctx();
    let base = json!({"kind": "argocd", "server": "https://argocd.example.com", "token": TOKEN});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    for (cfg, needle) in [
        (with("insecure", json!(true)), "insecure"),
        (with("token", json!("")), "token"),
        (with("token", json!("abc def-secret")), "token"),
        (
            with("app_namespace", json!("Team_Payments")),
            "app_namespace",
        ),
        (
            with("app_namespace", json!("a".repeat(64))),
            "app_namespace",
        ),
        (
            with(
                "server",
                json!(format!("https://admin:{TOKEN}@argocd.example.com")),
            ),
            "credentials",
        ),
    ] {
        let e = build_provider("argo", &cfg, &ctx).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SinkError::Config(_)), "{cfg}: {msg}");
        assert!(msg.contains(needle), "{cfg}: {msg}");
        assert!(!msg.contains(TOKEN) && !msg.contains("def-secret"), "{msg}");
    }
    let e = build_provider("argo", &json!({"kind": "argocd", "token": TOKEN}), &ctx).unwrap_err();
    assert!(e.to_string().contains("server"), "{e}");
    let e = build_provider(
        "argo",
        &with("server", json!("ftp://argocd.example.com")),
        &ctx,
    )
    .unwrap_err();
    assert!(matches!(e, SinkError::Refused { .. }), "{e}");
    let e = build_provider("argo", &with("server", json!("argocd.example.com")), &ctx).unwrap_err();
    assert!(
        matches!(&e, SinkError::Config(m) if m.contains("server")),
        "{e}"
    );
    let strict = ProviderContext::default();
    for url in [
        "https://127.0.0.1:8443",
        "https://argocd-server.argocd.svc.cluster.local.localhost",
        "https://192.168.1.20",
        "https://[::1]:8080",
        "https://[fd00:ec2::254]",
    ] {
        let e = build_provider("argo", &with("server", json!(url)), &strict).unwrap_err();
        assert!(matches!(e, SinkError::Refused { .. }), "{url}: {e}");
        assert!(!e.to_string().contains(TOKEN));
    }
    build_provider(
        "argo",
        &with("server", json!("https://127.0.0.1:8443")),
        &ctx,
    )
    .unwrap();
    let allowed = ProviderContext {
        outbound: crate::sinks::OutboundPolicy::allowing(["192.168.1.0/24"]),
        ..ProviderContext::default()
    };
    build_provider(
        "argo",
        &with("server", json!("https://192.168.1.20")),
        &allowed,
    )
    .unwrap();
}
