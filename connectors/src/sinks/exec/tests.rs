//! `exec`: argv stays as configured plus one element per arg; injection attempts are inert or
//! refused; unknown commands, timeouts and failures.

use crate::sinks::testing::{assert_no_secrets, build_local, obj};
use crate::sinks::{EffectCall, SinkError};
use serde_json::{Value, json};

/// A script that prints each argv element on its own line between markers, and its env.
fn script(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("show-args.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\nfor a in \"$@\"; do printf '<%s>\\n' \"$a\"; done\nprintf 'key=%s\\n' \"$AIOPS_IDEMPOTENCY_KEY\"\nprintf 'token=%s\\n' \"$API_TOKEN\"\nprintf 'home=%s\\n' \"$HOME\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn provider(script: &str) -> std::sync::Arc<dyn crate::sinks::Provider> {
    build_local(json!({"kind": "exec", "commands": {
        "show": {"argv": [script, "fixed"], "env": {"API_TOKEN": "exec-env-secret"}},
        "free": {"argv": [script], "arg_pattern": "(?s).*", "allow_dash_args": true, "max_args": 3},
        "sleep": {"argv": ["/bin/sleep"], "timeout": "300ms"},
        "fail": {"argv": ["/bin/sh", "-c", "echo oops >&2; exit 3"], "max_args": 0},
        "flaky": {"argv": ["/bin/sh", "-c", "exit 1"], "retry_on_failure": true}
    }}))
}

async fn run(
    p: &dyn crate::sinks::Provider,
    params: Value,
) -> Result<crate::sinks::EffectOutput, SinkError> {
    let params = obj(params);
    p.call(&EffectCall {
        idempotency_key: "eff-9",
        params: &params,
    })
    .await
}

#[tokio::test]
async fn each_arg_is_one_argv_element() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path());
    let p = provider(&s);
    let out = run(
        p.as_ref(),
        json!({"command": "show", "args": ["web-1", "a=b", "x:y/z"]}),
    )
    .await
    .unwrap();
    assert_eq!(out.status, "exit 0");
    let stdout = out.response["stdout"].as_str().unwrap();
    assert!(
        stdout.starts_with("<fixed>\n<web-1>\n<a=b>\n<x:y/z>\nkey=eff-9\n"),
        "{stdout}"
    );
    assert!(stdout.contains("home=\n"), "env is cleared: {stdout}");
    // The configured env value reaches the command but not the output.
    assert!(stdout.contains("token=***"), "{stdout}");
    assert_no_secrets(p.as_ref(), &[format!("{out:?}")], &["exec-env-secret"]);
    assert_eq!(
        p.target(&EffectCall {
            idempotency_key: "k",
            params: &obj(json!({"command": "show"}))
        }),
        "show"
    );

    // With a permissive pattern, hostile values are still single, uninterpreted arguments.
    let hostile = [
        "; rm -rf /",
        "$(id)",
        "{{ x }}",
        "--help",
        "a b",
        "line\nbreak",
        "`id`",
    ];
    for chunk in hostile.chunks(3) {
        let out = run(p.as_ref(), json!({"command": "free", "args": chunk}))
            .await
            .unwrap();
        let stdout = out.response["stdout"].as_str().unwrap();
        let expected: String = chunk.iter().map(|a| format!("<{a}>\n")).collect();
        assert!(stdout.starts_with(&expected), "{stdout:?} vs {expected:?}");
    }
}

#[tokio::test]
async fn injection_attempts_are_refused_by_the_default_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let p = provider(&script(dir.path()));
    for bad in [
        "; rm -rf /",
        "$(id)",
        "{{ x }}",
        "--help",
        "-rf",
        "a b",
        "x\ny",
        "`id`",
        "a|b",
        "a&b",
        "a>b",
    ] {
        let params = obj(json!({"command": "show", "args": ["ok", bad]}));
        let e = p.validate(&params).unwrap_err();
        assert!(matches!(e, SinkError::Refused { .. }), "{bad:?}: {e}");
        assert!(e.to_string().contains("args[1]"), "{e}");
        assert!(!e.retryable());
    }
    let e = p
        .validate(&obj(json!({"command": "show", "args": [1]})))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "args[0]"),
        "{e}"
    );
    let e = p
        .validate(&obj(json!({"command": "show", "args": [["a"]]})))
        .unwrap_err();
    assert!(matches!(&e, SinkError::Params { .. }), "{e}");
    let e = p
        .validate(&obj(
            json!({"command": "free", "args": ["a", "b", "c", "d"]}),
        ))
        .unwrap_err();
    assert!(e.to_string().contains("at most 3"), "{e}");
    let e = p.validate(&obj(json!({"command": "rm"}))).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, SinkError::Refused { .. }) && msg.contains("fail, flaky, free, show, sleep"),
        "{msg}"
    );
}

#[tokio::test]
async fn timeout_kills_and_failures_are_permanent_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let p = provider(&script(dir.path()));
    let started = std::time::Instant::now();
    let e = run(p.as_ref(), json!({"command": "sleep", "args": ["30"]}))
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        matches!(e, SinkError::Exec(_)) && e.to_string().contains("timed out"),
        "{e}"
    );
    let e = run(p.as_ref(), json!({"command": "fail"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Exec(m) if m.contains("exited with 3") && m.contains("oops")),
        "{e}"
    );
    assert!(!e.retryable());
    let e = run(p.as_ref(), json!({"command": "flaky"}))
        .await
        .unwrap_err();
    assert!(e.retryable(), "{e}");
}

#[test]
fn config_is_checked() {
    let ctx = crate::sinks::testing::local_ctx();
    let e = crate::sinks::build_provider(
        "x",
        &json!({"kind": "exec", "commands": {"a": {"argv": ["echo"]}}}),
        &ctx,
    )
    .unwrap_err();
    assert!(e.to_string().contains("absolute"), "{e}");
    let e = crate::sinks::build_provider(
        "x",
        &json!({"kind": "exec", "commands": {"a": {"argv": ["/bin/echo"], "arg_pattern": "("}}}),
        &ctx,
    )
    .unwrap_err();
    assert!(e.to_string().contains("arg_pattern"), "{e}");
    let e = crate::sinks::build_provider(
        "x",
        &json!({"kind": "exec", "commands": {"a": {"argv": ["/bin/echo"], "max_arg": 2}}}),
        &ctx,
    )
    .unwrap_err();
    assert!(e.to_string().contains("max_arg"), "{e}");
}
