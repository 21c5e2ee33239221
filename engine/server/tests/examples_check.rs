//! Every shipped workflow and auto-heal example passes `aiops workflow check` with the shipped
//! example configuration, which configures the providers the examples use (secrets unset: a check
//! sends nothing, so they get placeholders).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

#[test]
fn shipped_examples_pass_their_check_with_the_example_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .current_dir(&root)
        .env_remove("PAGERDUTY_ROUTING_KEY")
        .env_remove("SLACK_WEBHOOK_URL")
        .args([
            "workflow",
            "check",
            "--config",
            "aiops.example.toml",
            "pipelines/workflows/examples",
            "pipelines/autoheal/examples",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // Every example file was checked (none skipped).
    for dir in [
        "pipelines/workflows/examples",
        "pipelines/autoheal/examples",
    ] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                assert!(text.contains(&name), "{name} not reported: {text}");
            }
        }
    }
}
