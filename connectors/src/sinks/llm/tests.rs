//! Unit tests of the private helpers (no network). The adapters' wire contracts, the assistant
//! loop and replay are tested against a local server in `connectors/tests/llm_contract.rs`.

use super::client::{api_message, scrub_prompt};
use super::{ChatMessage, ChatRequest, LlmConfig, Role};
use serde_json::json;

fn req(system: &str, user: &str) -> ChatRequest {
    ChatRequest {
        system: system.into(),
        messages: vec![ChatMessage::text(Role::User, user)],
        tools: Vec::new(),
        max_tokens: 0,
        temperature: None,
    }
}

#[test]
fn api_message_reads_error_message_of_each_api() {
    let openai = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}});
    assert_eq!(
        api_message(&openai.to_string()),
        "Incorrect API key provided"
    );
    let anthropic = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
    assert_eq!(api_message(&anthropic.to_string()), "invalid x-api-key");
    // Ollama's native errors are `{"error": "text"}`.
    assert_eq!(
        api_message(r#"{"error":"model not found"}"#),
        "model not found"
    );
    // A body cut off by the excerpt limit still yields its message.
    let cut = r#"{"error":{"message":"context length exceeded","type":"invalid_request_error","param":"mess"#;
    assert_eq!(api_message(cut), "context length exceeded");
    assert_eq!(
        api_message("<html>Bad Gateway</html>"),
        "<html>Bad Gateway</html>"
    );
    assert_eq!(api_message("  "), "(no error message)");
}

#[test]
fn scrub_prompt_removes_echoed_prompt_text() {
    let r = req(
        "You are the operations assistant",
        "Question: why is etcd slow on node-7?\nPassages: disk latency above 10ms",
    );
    let echoed = "invalid request: 'Question: why is etcd slow on node-7?' is too long";
    let out = scrub_prompt(echoed, &r);
    assert!(!out.contains("etcd slow"), "{out}");
    assert!(out.starts_with("invalid request"), "{out}");
    // Text unrelated to the prompt stays.
    assert_eq!(scrub_prompt("rate limit reached", &r), "rate limit reached");
}

#[test]
fn config_check_names_fields() {
    let base = json!({"api": "openai", "model": "gpt-4o-mini"});
    let parse = |patch: serde_json::Value| {
        let mut v = base.clone();
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value::<LlmConfig>(v).unwrap()
    };
    assert!(parse(json!({})).check().is_ok());
    for (patch, field) in [
        (json!({"model": " "}), "model"),
        (json!({"max_tokens": 0}), "max_tokens"),
        (json!({"temperature": 3.5}), "temperature"),
        (
            json!({"input_price_per_mtok": -1.0}),
            "input_price_per_mtok",
        ),
        (json!({"api_key": ""}), "api_key"),
        (json!({"api_key": "sk-abcdef\n"}), "api_key"),
        (
            json!({"anthropic_version": "2023-06-01"}),
            "anthropic_version",
        ),
        (json!({"api": "anthropic"}), "api_key"),
    ] {
        let e = parse(patch.clone()).check().unwrap_err();
        assert!(
            matches!(&e, crate::sinks::SinkError::Params { field: f, .. } if f == field),
            "{patch}: {e}"
        );
        assert!(!e.to_string().contains("sk-abcdef"), "{e}");
    }
}
