//! A data directory written by the previous release (engine/runtime/tests/fixtures/
//! release-data.tar.gz, made by make-release-data.sh with that release's binary) works with this
//! one: `rebuild` re-appends nothing, and `run` resumes every processor from its checkpoint —
//! no replay, no output twice, the same alerting state as the old binary had.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_log::EventLog;
use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use common::{Aiops, http_get};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn unpack() -> (tempfile::TempDir, PathBuf) {
    let tar =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/release-data.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let root = dir.path().to_path_buf();
    // The fixture's configuration names its files relative to its root.
    let cfg = root.join("config/aiops.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("= \"config/", &format!("= \"{}/config/", root.display()));
    std::fs::write(&cfg, text).unwrap();
    (dir, root)
}

/// Every record as (seq, subject, id).
fn records(data: &Path) -> Vec<(u64, String, String)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = EmbeddedConfig::new(data.join("log"));
        c.read_only = true;
        let log = EmbeddedLog::open(c).await.unwrap();
        let mut r = log.reader(1).await.unwrap();
        let mut out = Vec::new();
        loop {
            let b = r.next_batch(1024).await.unwrap();
            if b.is_empty() {
                return out;
            }
            out.extend(b.into_iter().map(|x| (x.seq, x.subject, x.msg_id)));
        }
    })
}

fn no_id_twice(recs: &[(u64, String, String)]) {
    let mut seen = BTreeMap::new();
    for (seq, _, id) in recs {
        if let Some(first) = seen.insert(id.clone(), *seq) {
            panic!("id {id} is in the log twice: at {first} and {seq}");
        }
    }
}

#[test]
fn rebuild_of_a_previous_release_data_dir_appends_nothing() {
    let (_tmp, root) = unpack();
    let data = root.join("data");
    let before = records(&data);
    assert!(
        before.len() > 20,
        "the fixture is too small: {}",
        before.len()
    );
    no_id_twice(&before);
    let out = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .current_dir(&root)
        .args([
            "--config",
            "config/aiops.toml",
            "rebuild",
            "--data-dir",
            "data",
        ])
        .env("AIOPS__INGEST__MAX_AGE", "36500d")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rebuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = records(&data);
    assert_eq!(
        after.len(),
        before.len(),
        "rebuild appended to the log: {:?}",
        &after[before.len().min(after.len())..]
    );
}

/// Alert states of `/api/v2/alerts` as (fingerprint, state) pairs.
fn alert_states(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["fingerprint"].as_str().unwrap_or_default().to_string(),
                a["status"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_previous_release_data_dir_resumes_without_a_replay() {
    let (_tmp, root) = unpack();
    let data = root.join("data");
    let before = records(&data);
    let head = before.last().map(|r| r.0).unwrap_or(0);
    let cfg = root.join("config/aiops.toml");
    // No ticks while we look: what is appended is only what resuming appends.
    let mut aiops = Aiops::start_env(
        &data,
        "embedded",
        aiops_testkit::free_port(),
        &["--config", cfg.to_str().unwrap()],
        &[
            ("AIOPS__ALERTING__TICK_INTERVAL", "1h"),
            ("AIOPS__WORKFLOWS__TICK_INTERVAL", "1h"),
        ],
    );
    // A window for the processors to do what they would wrongly do (re-derive and append old
    // outputs): absence cannot be waited for as a condition.
    std::thread::sleep(Duration::from_secs(2));
    let old: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/alerts.json")).unwrap())
            .unwrap();
    let now: Value =
        serde_json::from_str(&http_get(&aiops.url("/api/v2/alerts")).unwrap()).unwrap();
    assert_eq!(
        alert_states(&now),
        alert_states(&old),
        "alert states differ"
    );
    let old_sil: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("state/silences.json")).unwrap())
            .unwrap();
    let now_sil: Value =
        serde_json::from_str(&http_get(&aiops.url("/api/v2/silences")).unwrap()).unwrap();
    assert_eq!(
        now_sil.as_array().map(Vec::len),
        old_sil.as_array().map(Vec::len)
    );
    aiops.stop();
    let stderr = std::fs::read_to_string(&aiops.stderr).unwrap_or_default();
    for p in ["alerting", "templates", "workflows"] {
        let resumed = stderr
            .lines()
            .any(|l| l.contains("resumes from its checkpoint") && l.contains(p));
        // Issue 22 changed the template miner's defaults (similarity 0.85 → 0.75, learned
        // sibling merging): its configuration hash differs from the previous release's, so its
        // state is rebuilt from the log — without appending anything again (checked below).
        let rebuilt = p == "templates"
            && stderr
                .lines()
                .any(|l| l.contains("configuration changed: state is rebuilt") && l.contains(p));
        assert!(
            resumed || rebuilt,
            "{p} did not resume from its checkpoint:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("pipeline resumes from its checkpoint"),
        "the pipeline did not resume:\n{stderr}"
    );
    let after = records(&data);
    no_id_twice(&after);
    // What this run appended: only the deployment of the workflow files (re-recorded at every
    // start) — no output of an input the old binary had processed.
    let new: Vec<&(u64, String, String)> = after.iter().filter(|r| r.0 > head).collect();
    assert!(
        new.iter()
            .all(|(_, subject, id)| subject == "aiops.control" && id.starts_with("wc.")),
        "the new binary appended more than the deployment: {new:?}"
    );
}
