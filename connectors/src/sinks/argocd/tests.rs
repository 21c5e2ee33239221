//! `argocd` against a local server that checks each request against Argo CD's
//! `ApplicationService.Sync` contract (swagger `applicationApplicationSyncRequest`) and answers
//! like the API server: 200 with the Application, gRPC-gateway errors `{error, code, message}`.

use crate::sinks::testing::{
    MockServer, Recorded, assert_no_secrets, build_local, local_ctx, obj, reply, reply_json,
};
use crate::sinks::{EffectCall, ProviderContext, SinkError, build_provider};
use axum::response::Response;
use serde_json::{Value, json};

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

/// Argo CD served under the root path `/argocd`.
fn argo_like(r: &Recorded) -> Response {
    if r.header("authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
        return argo_error(401, 16, "invalid session: token signature is invalid");
    }
    let Some(name) = r
        .path
        .strip_prefix("/argocd/api/v1/applications/")
        .and_then(|p| p.strip_suffix("/sync"))
    else {
        return argo_error(404, 5, "Not Found");
    };
    if let Some(v) = contract_violation(r, name) {
        return reply(418, "text/plain", format!("contract: {v}"));
    }
    let body = r.json();
    match name {
        "checkout" => reply_json(200, application(name, &body, None)),
        "running" => reply_json(200, application(name, &body, Some("Running"))),
        "busy" => argo_error(400, 9, "another operation is already in progress"),
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

fn config(server: &MockServer) -> Value {
    json!({"kind": "argocd", "server": server.url("/argocd"), "token": TOKEN})
}

async fn call(
    p: &dyn crate::sinks::Provider,
    params: Value,
) -> Result<crate::sinks::EffectOutput, SinkError> {
    let params = obj(params);
    p.call(&EffectCall {
        idempotency_key: KEY,
        params: &params,
    })
    .await
}

#[tokio::test]
async fn syncs_with_the_documented_request() {
    let server = MockServer::start(argo_like).await;
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
    let server = MockServer::start(argo_like).await;
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
    let server = MockServer::start(argo_like).await;
    let p = build_local(config(&server));
    let out = call(p.as_ref(), json!({"application": "huge"}))
        .await
        .unwrap();
    assert_eq!(out.status, "sync started");
    assert_eq!(out.response, json!({"application": "huge"}));
}

async fn failure(token: &str, application: &str) -> (SinkError, String) {
    let server = MockServer::start(argo_like).await;
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
