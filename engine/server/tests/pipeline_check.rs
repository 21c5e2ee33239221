//! `aiops pipeline check`: shipped pipelines pass; a bad file is named with line and column and
//! the command fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

#[test]
fn pipeline_check_reports_file_line_column() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines");
    let ok = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["pipeline", "check", root])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("node_memory_1m ← metrics"));

    let bad = format!("{root}/tests/bad/unknown_input.sql");
    let out = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["pipeline", "check", &bad])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown_input.sql:4:6: "), "{err}");
    assert!(err.contains("metricz"), "{err}");
}
