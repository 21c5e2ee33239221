//! Crate edges follow DESIGN.md's picture and point one way: schemas ← connectors ← engine, and
//! bench on all. A dependency added against the direction fails here, not in review.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};

/// `cargo metadata` of the workspace (its own packages only).
fn metadata() -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn workspace_dependencies_point_one_way() {
    let meta = metadata();
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    // Normal (non-dev) dependencies on other workspace crates.
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        let deps = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_string())
            .filter(|d| members.contains(d))
            .collect();
        edges.insert(name, deps);
    }
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("aiops-schemas", &[][..]),
        ("aiops-connectors", &["aiops-schemas"][..]),
        ("aiops-log", &[][..]),
        ("aiops-sql", &["aiops-schemas", "aiops-detect"][..]),
        ("aiops-alerting", &["aiops-schemas"][..]),
        ("aiops-detect", &[][..]),
        ("aiops-testkit", &[][..]),
        ("aiops-workflow", &["aiops-alerting"][..]),
        ("aiops-knowledge", &["aiops-alerting"][..]),
        ("aiops-deploy", &["aiops-schemas"][..]),
        // The console's pages are pure: templates and charts over API answers.
        ("aiops-console", &[][..]),
        (
            "aiops-read",
            &["aiops-schemas", "aiops-log", "aiops-sql"][..],
        ),
        (
            "aiops-runtime",
            &[
                "aiops-schemas",
                "aiops-connectors",
                "aiops-log",
                "aiops-sql",
                "aiops-alerting",
                "aiops-detect",
                "aiops-workflow",
                "aiops-knowledge",
                "aiops-deploy",
            ][..],
        ),
        (
            "aiops-grafana",
            &[
                "aiops-schemas",
                "aiops-connectors",
                "aiops-sql",
                "aiops-alerting",
                "aiops-read",
                "aiops-runtime",
            ][..],
        ),
        (
            "aiops-server",
            &[
                "aiops-runtime",
                "aiops-grafana",
                "aiops-schemas",
                "aiops-connectors",
                "aiops-log",
                "aiops-sql",
                "aiops-alerting",
                "aiops-detect",
                "aiops-workflow",
                "aiops-read",
                "aiops-knowledge",
                "aiops-deploy",
                "aiops-console",
            ][..],
        ),
        (
            "aiops-bench",
            &[
                "aiops-schemas",
                "aiops-connectors",
                "aiops-log",
                "aiops-sql",
                "aiops-alerting",
                "aiops-detect",
                "aiops-testkit",
                "aiops-server",
                "aiops-workflow",
                "aiops-read",
                "aiops-runtime",
                "aiops-knowledge",
                "aiops-deploy",
                "aiops-console",
            ][..],
        ),
    ]);
    for (name, deps) in &edges {
        let ok = allowed.get(name.as_str()).unwrap_or_else(|| {
            panic!("new crate {name}: add it to this test with its allowed edges")
        });
        for d in deps {
            assert!(
                ok.contains(&d.as_str()),
                "{name} must not depend on {d} (edges point one way)"
            );
        }
    }
}

/// External crates a library must not pull in, by crate: the runtime follows the log and appends
/// back, and the Grafana automation is a client of Grafana — no HTTP server, CLI or Postgres wire
/// (the server crate is the edge); the pure state machines do no I/O at all.
#[test]
fn edge_crates_stay_at_the_edge() {
    let meta = metadata();
    let edge = [
        "axum",
        "hyper",
        "hyper-util",
        "clap",
        "pgwire",
        "datafusion-postgres",
        "tokio-postgres",
        "tracing-subscriber",
    ];
    let io = ["tokio", "reqwest", "sled", "async-nats", "hyper", "axum"];
    let rules: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("aiops-runtime", edge.to_vec()),
        ("aiops-grafana", edge.to_vec()),
        ("aiops-log", edge.to_vec()),
        ("aiops-alerting", [&edge[..], &io[..]].concat()),
        ("aiops-workflow", [&edge[..], &io[..]].concat()),
        ("aiops-detect", [&edge[..], &io[..]].concat()),
        ("aiops-knowledge", [&edge[..], &io[..]].concat()),
        ("aiops-deploy", [&edge[..], &io[..]].concat()),
    ]);
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let Some(forbidden) = rules.get(name) else {
            continue;
        };
        for d in p["dependencies"].as_array().unwrap() {
            if !d["kind"].is_null() {
                continue;
            }
            let dep = d["name"].as_str().unwrap();
            assert!(
                !forbidden.contains(&dep),
                "{name} must not depend on {dep}: it belongs at the edge (engine/server)"
            );
        }
    }
}
