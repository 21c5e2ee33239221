//! `github_actions` against a local server that checks each request against GitHub's documented
//! contract for "Create a workflow dispatch event" and answers like GitHub does.

use crate::sinks::testing::{
    MockServer, Recorded, assert_no_secrets, build_local, local_ctx, obj, reply, reply_json,
};
use crate::sinks::{EffectCall, ProviderContext, SinkError, build_provider};
use axum::response::Response;
use serde_json::{Value, json};

const TOKEN: &str = "github_pat_11AAAAA0SECRETdispatchTOKEN";
const READ_ONLY: &str = "github_pat_readONLYtokenSECRET";
const THROTTLED: &str = "github_pat_throttledTOKENsecret";
/// The inputs `deploy.yml` declares (GitHub answers 422 for any other).
const DECLARED: &[&str] = &["version", "environment", "dry_run", "aiops_key"];

fn gh_error(status: u16, message: &str) -> Response {
    reply_json(
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"}),
    )
}

/// Why a request breaks the documented contract, if it does.
fn contract_violation(r: &Recorded) -> Option<String> {
    if r.method != "POST" {
        return Some(format!("method {}", r.method));
    }
    if r.header("accept") != Some("application/vnd.github+json") {
        return Some(format!("accept {:?}", r.header("accept")));
    }
    if r.header("x-github-api-version") != Some("2022-11-28") {
        return Some("x-github-api-version".into());
    }
    if !r
        .header("user-agent")
        .is_some_and(|u| u.starts_with("aiops/"))
    {
        return Some("user-agent missing".into());
    }
    if r.header("content-type") != Some("application/json") {
        return Some(format!("content-type {:?}", r.header("content-type")));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&r.body) else {
        return Some("body is not JSON".into());
    };
    let Some(body) = body.as_object() else {
        return Some("body is not an object".into());
    };
    for key in body.keys() {
        if !["ref", "inputs", "return_run_details"].contains(&key.as_str()) {
            return Some(format!("undocumented body field {key}"));
        }
    }
    if !body.get("ref").is_some_and(Value::is_string) {
        return Some("ref missing or not a string".into());
    }
    if let Some(rd) = body.get("return_run_details")
        && !rd.is_boolean()
    {
        return Some("return_run_details not a boolean".into());
    }
    if let Some(inputs) = body.get("inputs") {
        let Some(m) = inputs.as_object() else {
            return Some("inputs not an object".into());
        };
        if m.len() > 25 {
            return Some("more than 25 inputs".into());
        }
        // GitHub types each input from the workflow's declaration; GitHub Enterprise Server
        // versions and clients answer 422 for a value that is not a string.
        if !m.values().all(Value::is_string) {
            return Some("an input value is not a string".into());
        }
    }
    None
}

/// GitHub for repository `acme/web` under a GHES-style base path `/api/v3`.
fn github_like(r: &Recorded) -> Response {
    if let Some(v) = contract_violation(r) {
        return reply(418, "text/plain", format!("contract: {v}"));
    }
    let auth = r.header("authorization").unwrap_or_default();
    match auth.strip_prefix("Bearer ") {
        Some(TOKEN) => {}
        Some(READ_ONLY) => {
            return gh_error(403, "Resource not accessible by personal access token");
        }
        Some(THROTTLED) => {
            return gh_error(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
        }
        _ => return gh_error(401, "Bad credentials"),
    }
    let Some(rest) = r
        .path
        .strip_prefix("/api/v3/repos/acme/web/actions/workflows/")
    else {
        return gh_error(404, "Not Found");
    };
    let Some(workflow) = rest.strip_suffix("/dispatches") else {
        return gh_error(404, "Not Found");
    };
    match workflow {
        "deploy.yml" | "161335" => {}
        "flaky.yml" => return reply(502, "text/html", "<html>Bad gateway</html>"),
        "busy.yml" => return gh_error(429, "Too many requests"),
        _ => return gh_error(404, "Not Found"),
    }
    let body = r.json();
    let git_ref = body["ref"].as_str().unwrap_or_default();
    match git_ref {
        "main" | "v1.4.2" => {}
        // A receiver that quotes the credential back: it must not reach the error text.
        "echo" => return gh_error(422, &format!("No ref found for: {auth}")),
        other => return gh_error(422, &format!("No ref found for: {other}")),
    }
    if let Some(inputs) = body["inputs"].as_object() {
        let unexpected: Vec<&String> = inputs
            .keys()
            .filter(|k| !DECLARED.contains(&k.as_str()))
            .collect();
        if !unexpected.is_empty() {
            return gh_error(
                422,
                &format!("Unexpected inputs provided: {}", json!(unexpected)),
            );
        }
    }
    if body["return_run_details"] == true {
        return reply_json(
            200,
            json!({
                "workflow_run_id": 22452,
                "run_url": "https://api.github.com/repos/acme/web/actions/runs/22452",
                "html_url": "https://github.com/acme/web/actions/runs/22452"
            }),
        );
    }
    reply(204, "text/plain", "")
}

fn config(server: &MockServer, token: &str) -> Value {
    json!({
        "kind": "github_actions",
        "api_url": server.url("/api/v3"),
        "token": token,
        "owner": "acme",
        "repo": "web",
        "workflow": "deploy.yml",
        "key_input": "aiops_key",
    })
}

async fn call(
    p: &dyn crate::sinks::Provider,
    params: Value,
) -> Result<crate::sinks::EffectOutput, SinkError> {
    let params = obj(params);
    p.call(&EffectCall {
        idempotency_key: "deploy-run/deploy-17/dispatch",
        params: &params,
    })
    .await
}

#[tokio::test]
async fn dispatches_with_the_documented_request() {
    let server = MockServer::start(github_like).await;
    let p = build_local(config(&server, TOKEN));
    let params = json!({"ref": "main", "inputs": {"version": "1.4.2", "environment": "production", "dry_run": false}});
    let out = call(p.as_ref(), params.clone()).await.unwrap();
    assert_eq!(out.status, "dispatched");
    assert_eq!(
        out.response,
        json!({"workflow": "acme/web/deploy.yml", "ref": "main"})
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(
        r.path,
        "/api/v3/repos/acme/web/actions/workflows/deploy.yml/dispatches"
    );
    assert_eq!(r.query, None);
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        r.json(),
        json!({"ref": "main", "inputs": {
            "version": "1.4.2", "environment": "production", "dry_run": "false",
            "aiops_key": "deploy-run/deploy-17/dispatch"
        }})
    );
    let params = obj(params);
    let c = EffectCall {
        idempotency_key: "k",
        params: &params,
    };
    assert_eq!(p.target(&c), "acme/web/deploy.yml");
    assert_no_secrets(
        p.as_ref(),
        &[p.target(&c), out.response.to_string()],
        &[TOKEN],
    );

    // A numeric workflow id in the params, no inputs and no key_input: only the ref is sent.
    let mut cfg = config(&server, TOKEN);
    cfg.as_object_mut().unwrap().remove("key_input");
    let plain = build_local(cfg);
    let out = call(
        plain.as_ref(),
        json!({"ref": "v1.4.2", "workflow": "161335"}),
    )
    .await
    .unwrap();
    assert_eq!(out.response["workflow"], "acme/web/161335");
    let last = server.requests().pop().unwrap();
    assert_eq!(last.json(), json!({"ref": "v1.4.2"}));
}

#[tokio::test]
async fn number_and_boolean_inputs_are_sent_as_strings() {
    let server = MockServer::start(github_like).await;
    let p = build_local(config(&server, TOKEN));
    call(
        p.as_ref(),
        json!({"ref": "main", "inputs": {"version": 3, "environment": 1.5, "dry_run": true}}),
    )
    .await
    .unwrap();
    assert_eq!(
        server.requests().pop().unwrap().json()["inputs"],
        json!({
            "version": "3", "environment": "1.5", "dry_run": "true",
            "aiops_key": "deploy-run/deploy-17/dispatch"
        })
    );
}

#[tokio::test]
async fn run_details_are_reported_when_asked_for() {
    let server = MockServer::start(github_like).await;
    let mut cfg = config(&server, TOKEN);
    cfg["return_run_details"] = json!(true);
    let p = build_local(cfg);
    let out = call(p.as_ref(), json!({"ref": "main"})).await.unwrap();
    assert_eq!(out.status, "dispatched");
    assert_eq!(out.response["workflow_run_id"], 22452);
    assert_eq!(
        out.response["html_url"],
        "https://github.com/acme/web/actions/runs/22452"
    );
    let sent = server.requests().pop().unwrap().json();
    assert_eq!(sent["return_run_details"], true);
}

/// The status, whether it is retryable, and the error text, for one failing call.
async fn failure(token: &str, params: Value) -> (SinkError, String) {
    let server = MockServer::start(github_like).await;
    let p = build_local(config(&server, token));
    let err = call(p.as_ref(), params).await.unwrap_err();
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
    let (e, t) = failure("github_pat_wrongTOKENvalue123", json!({"ref": "main"})).await;
    assert!(matches!(e, SinkError::Http { status: 401, .. }), "{t}");
    assert!(!e.retryable());
    assert!(
        t.contains("Bad credentials") && t.contains("invalid, expired"),
        "{t}"
    );

    let (e, t) = failure(READ_ONLY, json!({"ref": "main"})).await;
    assert!(matches!(e, SinkError::Http { status: 403, .. }), "{t}");
    assert!(!e.retryable());
    assert!(t.contains("Actions") && t.contains("write"), "{t}");

    let (e, t) = failure(THROTTLED, json!({"ref": "main"})).await;
    assert!(matches!(e, SinkError::Service { code: 403, .. }), "{t}");
    assert!(e.retryable(), "a secondary rate limit passes: {t}");

    let (e, t) = failure(TOKEN, json!({"ref": "main", "workflow": "missing.yml"})).await;
    assert!(matches!(e, SinkError::Http { status: 404, .. }), "{t}");
    assert!(!e.retryable());
    assert!(
        t.contains("acme/web/missing.yml") && t.contains("does not exist"),
        "{t}"
    );

    let (e, t) = failure(TOKEN, json!({"ref": "nope"})).await;
    assert!(matches!(e, SinkError::Http { status: 422, .. }), "{t}");
    assert!(!e.retryable());
    assert!(t.contains("No ref found for: nope"), "{t}");

    let (e, t) = failure(TOKEN, json!({"ref": "main", "inputs": {"colour": "red"}})).await;
    assert!(matches!(e, SinkError::Http { status: 422, .. }), "{t}");
    assert!(
        t.contains("Unexpected inputs provided") && t.contains("colour"),
        "{t}"
    );

    let (e, t) = failure(TOKEN, json!({"ref": "echo"})).await;
    assert!(matches!(e, SinkError::Http { status: 422, .. }), "{t}");
    assert!(t.contains("***"), "the echoed token is redacted: {t}");

    let (e, t) = failure(TOKEN, json!({"ref": "main", "workflow": "busy.yml"})).await;
    assert!(matches!(e, SinkError::Http { status: 429, .. }), "{t}");
    assert!(e.retryable());

    let (e, t) = failure(TOKEN, json!({"ref": "main", "workflow": "flaky.yml"})).await;
    assert!(matches!(e, SinkError::Http { status: 502, .. }), "{t}");
    assert!(e.retryable());
}

#[tokio::test]
async fn an_unreachable_api_is_a_retryable_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = build_local(json!({
        "kind": "github_actions", "api_url": format!("http://{addr}/api/v3"),
        "token": TOKEN, "owner": "acme", "repo": "web", "workflow": "deploy.yml"
    }));
    let err = call(p.as_ref(), json!({"ref": "main"})).await.unwrap_err();
    assert!(matches!(err, SinkError::Network(_)), "{err}");
    assert!(err.retryable());
    assert!(!err.to_string().contains(TOKEN));
}

#[test]
fn hostile_params_are_refused_naming_the_field() {
    let p = build_provider(
        "gh",
        &json!({"kind": "github_actions", "token": TOKEN, "owner": "acme", "repo": "web", "key_input": "aiops_key"}),
        &local_ctx(),
    )
    .unwrap();
    let many: serde_json::Map<String, Value> =
        (0..25).map(|i| (format!("in{i}"), json!("x"))).collect();
    let too_many_plain: serde_json::Map<String, Value> =
        (0..26).map(|i| (format!("in{i}"), json!("x"))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"ref": "main"}), "workflow"),
        (json!({"ref": "main", "workflow": "../x"}), "workflow"),
        (
            json!({"ref": "main", "workflow": "../../orgs/x.yml"}),
            "workflow",
        ),
        (json!({"ref": "main", "workflow": "a/b.yml"}), "workflow"),
        (
            json!({"ref": "main", "workflow": "deploy.yml?x=1"}),
            "workflow",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml%2F..%2F"}),
            "workflow",
        ),
        (json!({"ref": "main", "workflow": "deploy"}), "workflow"),
        (
            json!({"ref": "main", "workflow": format!("{}.yml", "a".repeat(300))}),
            "workflow",
        ),
        (json!({"ref": "main", "workflow": 12}), "workflow"),
        (json!({"workflow": "deploy.yml"}), "ref"),
        (json!({"ref": "", "workflow": "deploy.yml"}), "ref"),
        (
            json!({"ref": "main..evil", "workflow": "deploy.yml"}),
            "ref",
        ),
        (json!({"ref": "has space", "workflow": "deploy.yml"}), "ref"),
        (
            json!({"ref": "a".repeat(10_000), "workflow": "deploy.yml"}),
            "ref",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": ["a"]}),
            "inputs",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": "version=1"}),
            "inputs",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": many}),
            "inputs",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": {"v": {"nested": 1}}}),
            "inputs.v",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": {"v": [1]}}),
            "inputs.v",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": {"v": null}}),
            "inputs.v",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": {"bad name": "x"}}),
            "inputs.bad name",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": {"aiops_key": "forged"}}),
            "inputs.aiops_key",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "inputs": {"v": "x".repeat(70_000)}}),
            "inputs",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "owner": "other"}),
            "owner",
        ),
        (
            json!({"ref": "main", "workflow": "deploy.yml", "repo": "other"}),
            "repo",
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
    // 25 inputs without key_input are fine; 26 are not.
    let plain = build_provider(
        "gh",
        &json!({"kind": "github_actions", "token": TOKEN, "owner": "acme", "repo": "web", "workflow": "deploy.yml"}),
        &local_ctx(),
    )
    .unwrap();
    let mut ok = many.clone();
    ok.insert("flag".into(), json!(true));
    ok.remove("in0");
    plain
        .validate(&obj(json!({"ref": "main", "inputs": ok})))
        .unwrap();
    let e = plain
        .validate(&obj(json!({"ref": "main", "inputs": too_many_plain})))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "inputs")
            && e.to_string().contains("25"),
        "{e}"
    );
    p.validate(&obj(
        json!({"ref": "release/1.4", "workflow": "deploy.yaml", "inputs": {"n": 3, "b": true, "s": "x"}}),
    ))
    .unwrap();
}

#[test]
fn config_is_checked_without_quoting_secrets() {
    let ctx = local_ctx();
    let base = json!({"kind": "github_actions", "token": TOKEN, "owner": "acme", "repo": "web"});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    // Unknown field, empty or malformed token, bad names: Config errors naming the setting.
    for (cfg, needle) in [
        (with("tokne", json!("x")), "tokne"),
        (with("token", json!("")), "token"),
        (with("token", json!("   ")), "token"),
        (with("token", json!("ghp_abc\r\nX-Evil: 1")), "token"),
        (with("owner", json!("acme/other")), "owner"),
        (with("owner", json!("")), "owner"),
        (with("repo", json!("..")), "repo"),
        (with("repo", json!("web/../../x")), "repo"),
        (with("workflow", json!("../x.yml")), "workflow"),
        (with("key_input", json!("1bad")), "key_input"),
        (
            with(
                "api_url",
                json!(format!("https://user:{TOKEN}@ghe.example.com/api/v3")),
            ),
            "credentials",
        ),
    ] {
        let e = build_provider("gh", &cfg, &ctx).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SinkError::Config(_)), "{cfg}: {msg}");
        assert!(msg.contains(needle), "{cfg}: {msg}");
        assert!(!msg.contains(TOKEN) && !msg.contains("ghp_abc"), "{msg}");
    }
    let e = build_provider(
        "gh",
        &json!({"kind": "github_actions", "owner": "acme", "repo": "web"}),
        &ctx,
    )
    .unwrap_err();
    assert!(e.to_string().contains("token"), "{e}");
    // Only http(s), and no private targets unless the outbound policy lists them.
    let e = build_provider("gh", &with("api_url", json!("file:///etc/passwd")), &ctx).unwrap_err();
    assert!(matches!(e, SinkError::Refused { .. }), "{e}");
    let strict = ProviderContext::default();
    for url in [
        "http://127.0.0.1:8080/api/v3",
        "http://10.0.0.7/api/v3",
        "http://169.254.169.254/latest",
        "http://localhost/api/v3",
    ] {
        let e = build_provider("gh", &with("api_url", json!(url)), &strict).unwrap_err();
        assert!(matches!(e, SinkError::Refused { .. }), "{url}: {e}");
    }
    build_provider(
        "gh",
        &with("api_url", json!("http://127.0.0.1:8080/api/v3")),
        &ctx,
    )
    .unwrap();
    // The default is github.com, a public host.
    let p = build_provider("gh", &base, &strict).unwrap();
    assert!(format!("{p:?}").contains("api.github.com"));
    assert!(!format!("{p:?}").contains(TOKEN));
}
