//! `email` against a real SMTP server on loopback (aiosmtpd, see scripts/install-test-deps.sh).

use crate::sinks::testing::{assert_no_secrets, obj};
use crate::sinks::{EffectCall, ProviderContext, SinkError, build_provider};
use serde_json::json;
use std::io::BufRead;
use std::time::Duration;

/// The server process, killed on drop.
struct Smtp {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_smtp() -> Smtp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with aiosmtpd (run scripts/install-test-deps.sh)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        "ready",
        "aiosmtpd did not start (run scripts/install-test-deps.sh)"
    );
    Smtp { child, port, dir }
}

fn provider(port: u16) -> std::sync::Arc<dyn crate::sinks::Provider> {
    let ctx = ProviderContext {
        timeout: Duration::from_secs(10),
        ..ProviderContext::default()
    };
    build_provider("mail", &json!({"kind": "email", "host": "127.0.0.1", "port": port, "from": "aiops <aiops@example.com>", "tls": "none"}), &ctx).unwrap()
}

#[tokio::test]
async fn delivers_with_a_stable_message_id() {
    let smtp = start_smtp();
    let p = provider(smtp.port);
    let params = obj(
        json!({"to": ["ops@example.com", "b@example.org"], "cc": "lead@example.com", "subject": "Disk full on web-1", "body": "web-1 /var is 99% full.\nRunbook: https://wiki/disk"}),
    );
    let call = EffectCall {
        idempotency_key: "incident-7/mail",
        params: &params,
    };
    assert_eq!(
        p.target(&call),
        "ops@example.com,b@example.org,lead@example.com"
    );
    let out = p.call(&call).await.unwrap();
    assert_eq!(out.status, "250");
    let id = super::message_id("incident-7/mail");
    assert_eq!(out.response["message_id"], id);
    assert!(
        id.starts_with('<') && id.ends_with("@aiops>") && id.len() == 32 + 8,
        "{id}"
    );
    let mail = std::fs::read_to_string(smtp.dir.path().join("1.eml")).unwrap();
    assert!(
        mail.contains("X-Envelope-From: aiops@example.com"),
        "{mail}"
    );
    assert!(
        mail.contains("X-Envelope-To: ops@example.com,b@example.org,lead@example.com"),
        "{mail}"
    );
    assert!(mail.contains(&format!("Message-ID: {id}")), "{mail}");
    assert!(mail.contains("Subject: Disk full on web-1"), "{mail}");
    assert!(mail.contains("From: aiops <aiops@example.com>"), "{mail}");
    assert!(
        mail.contains("To: ops@example.com, b@example.org"),
        "{mail}"
    );
    assert!(mail.contains("Cc: lead@example.com"), "{mail}");
    assert!(
        mail.contains("Content-Type: text/plain; charset=utf-8"),
        "{mail}"
    );
    assert!(mail.contains("web-1 /var is 99% full."), "{mail}");
    // A retry of the same effect carries the same Message-ID (receivers dedup on it).
    p.call(&call).await.unwrap();
    let again = std::fs::read_to_string(smtp.dir.path().join("2.eml")).unwrap();
    assert!(again.contains(&format!("Message-ID: {id}")));
}

#[tokio::test]
async fn smtp_answers_map_to_retryable_or_not() {
    let smtp = start_smtp();
    let p = provider(smtp.port);
    let params = obj(json!({"to": "reject@example.com", "subject": "s", "body": "b"}));
    let e = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SinkError::Service {
                code: 550,
                retryable: false,
                ..
            }
        ),
        "{e}"
    );
    let params = obj(json!({"to": "later@example.com", "subject": "s", "body": "b"}));
    let e = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SinkError::Service {
                code: 451,
                retryable: true,
                ..
            }
        ),
        "{e}"
    );
    drop(smtp);
    let params = obj(json!({"to": "ops@example.com", "subject": "s", "body": "b"}));
    let e = p
        .call(&EffectCall {
            idempotency_key: "k",
            params: &params,
        })
        .await
        .unwrap_err();
    assert!(e.retryable(), "connection refused is retryable: {e}");
}

#[test]
fn config_and_params_are_checked() {
    let ctx = ProviderContext::default();
    let e = build_provider("m", &json!({"kind": "email", "host": "smtp.example.com", "from": "a@example.com", "tls": "none"}), &ctx).unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
    let e = build_provider("m", &json!({"kind": "email", "host": "smtp.example.com", "from": "a@example.com", "username": "u"}), &ctx).unwrap_err();
    assert!(e.to_string().contains("together"), "{e}");
    let p = build_provider("m", &json!({"kind": "email", "host": "smtp.example.com", "from": "a@example.com", "username": "u", "password": "smtp-pass-secret"}), &ctx).unwrap();
    assert_no_secrets(p.as_ref(), &[], &["smtp-pass-secret"]);
    let e = p
        .validate(&obj(
            json!({"to": ["ok@example.com", "not an address"], "subject": "s", "body": "b"}),
        ))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "to[1]"),
        "{e}"
    );
    let e = p
        .validate(&obj(json!({"to": "a@example.com", "body": "b"})))
        .unwrap_err();
    assert!(
        matches!(&e, SinkError::Params { field, .. } if field == "subject"),
        "{e}"
    );
}
