//! The knowledge base in the running engine: a real runbook folder imported through the CLI,
//! searched in English and Chinese, asked (every sentence of an answer is in its cited entry),
//! updated concurrently (one winner, named), linked to incidents (runbooks and similar resolved
//! incidents), and identical after `kill -9` mid-import and after `aiops rebuild`. Roles: a
//! viewer reads, an operator writes, an ingest token and no token do neither.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, aiops_cmd, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/knowledge/runbooks")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn call(
    c: &reqwest::Client,
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = c.request(m, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn import(a: &Aiops, dir: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["knowledge", "import"])
        .arg(dir)
        .args(["--api", &a.url("")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aiops knowledge import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn state(c: &reqwest::Client, a: &Aiops) -> (u64, String) {
    let (s, v) = call(
        c,
        "GET",
        a.url("/api/knowledge/entries?drafts=true"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (
        v["count"].as_u64().unwrap(),
        v["state_hash"].as_str().unwrap().to_string(),
    )
}

async fn search(c: &reqwest::Client, a: &Aiops, q: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(&a.url("/api/knowledge/search"), [("q", q)]).unwrap();
    let (s, v) = call(c, "GET", url.to_string(), None, None).await;
    assert_eq!(s, 200, "search {q:?}: {v}");
    v["hits"].as_array().unwrap().clone()
}

/// Every hit's (entry, section, score bits): equal lists mean the same results and scores.
fn fingerprint(hits: &[Value]) -> Vec<(String, String, u64)> {
    hits.iter()
        .map(|h| {
            (
                h["entry_id"].as_str().unwrap().to_string(),
                h["section"].as_str().unwrap_or("").to_string(),
                h["score"].as_f64().unwrap().to_bits(),
            )
        })
        .collect()
}

const QUERIES: &[&str] = &[
    "etcd fsync duration high slow disk",
    "alertmanager failed to send notifications",
    "node filesystem almost out of space",
    "磁盘空间不足 怎么处理",
    "kube pod crash looping",
];

#[tokio::test(flavor = "multi_thread")]
async fn import_search_ask_update_and_rebuild_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut a = Aiops::start(&data, "embedded", &[]);
    let c = client();

    let r = import(&a, &corpus());
    let files = r["files"].as_u64().unwrap();
    assert!(files >= 117, "{r}");
    assert_eq!(r["failed"], 0, "{r}");
    // Empty index pages are skipped, not entries.
    let imported = r["imported"].as_u64().unwrap();
    assert_eq!(imported + r["skipped"].as_u64().unwrap(), files, "{r}");
    assert!(imported >= 100, "{r}");
    // Importing again changes nothing.
    let again = import(&a, &corpus());
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["unchanged"].as_u64().unwrap(), imported, "{again}");

    // English search finds the runbook by its content.
    let hits = search(&c, &a, "etcd fsync duration high slow disk").await;
    assert_eq!(
        hits[0]["entry_id"], "etcd/etcdHighFsyncDurations",
        "{hits:?}"
    );
    assert!(hits[0]["snippet"].as_str().unwrap().contains("<mark>"));

    // A Chinese entry, found by a Chinese query, and not by an unrelated one.
    let zh = json!({"entry": {
        "id": "zh/disk-full",
        "title": "磁盘空间不足处理手册",
        "body": "# 磁盘空间不足处理手册\n\n## 含义\n\n当节点的磁盘使用率超过百分之九十时触发此告警。\n\n## 处理\n\n先清理日志目录中的旧文件。然后扩容数据卷。最后确认告警已经恢复。\n",
        "tags": ["存储", "disk"],
        "links": {"services": ["storage"]}
    }});
    let (s, v) = call(&c, "POST", a.url("/api/knowledge/update"), None, Some(zh)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entry"]["revision"], 1);
    let hits = search(&c, &a, "磁盘空间不足 怎么处理").await;
    assert_eq!(hits[0]["entry_id"], "zh/disk-full", "{hits:?}");
    // An unrelated Chinese question shares at most a bigram (数据) with it: search may list it
    // low, but ask does not answer from it.
    let (s, ans) = call(
        &c,
        "POST",
        a.url("/api/knowledge/ask"),
        None,
        Some(json!({"question": "数据库连接池耗尽怎么办"})),
    )
    .await;
    assert_eq!(s, 200, "{ans}");
    assert!(
        ans["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["entry_id"] != "zh/disk-full"),
        "an unrelated Chinese question was answered from the disk entry: {ans}"
    );

    // Ask: every sentence is verbatim in the entry it cites.
    for q in [
        "How do I fix etcd high fsync durations?",
        "磁盘空间不足怎么处理？",
        "What is the impact of an Alertmanager cluster being down?",
    ] {
        let (s, ans) = call(
            &c,
            "POST",
            a.url("/api/knowledge/ask"),
            None,
            Some(json!({"question": q})),
        )
        .await;
        assert_eq!(s, 200, "{ans}");
        assert_eq!(ans["answered"], true, "{q}: {ans}");
        for sent in ans["sentences"].as_array().unwrap() {
            let id = sent["entry_id"].as_str().unwrap();
            let (s, e) = call(
                &c,
                "GET",
                a.url(&format!("/api/knowledge/entries/{id}")),
                None,
                None,
            )
            .await;
            assert_eq!(s, 200);
            let text = sent["text"].as_str().unwrap();
            assert!(
                e["entry"]["body"].as_str().unwrap().contains(text),
                "{q}: {text:?} is not in {id}"
            );
            assert!(!sent["section"].as_str().unwrap().is_empty());
        }
    }
    let (s, ans) = call(
        &c,
        "POST",
        a.url("/api/knowledge/ask"),
        None,
        Some(json!({"question": "quantum chromodynamics lattice gluon"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ans["answered"], false, "{ans}");
    assert!(ans["sentences"].as_array().unwrap().is_empty());

    // Two updates from the same revision: one wins, the other is refused naming the winner.
    let base = |body: &str| json!({"entry": {"id": "zh/disk-full", "title": "磁盘空间不足处理手册", "body": body}, "base_revision": 1});
    let (s1, v1) = call(
        &c,
        "POST",
        a.url("/api/knowledge/update"),
        None,
        Some(base("# 磁盘\n\n第一版修改。\n")),
    )
    .await;
    let (s2, v2) = call(
        &c,
        "POST",
        a.url("/api/knowledge/update"),
        None,
        Some(base("# 磁盘\n\n第二版修改。\n")),
    )
    .await;
    assert_eq!((s1, s2), (200, 409), "{v1} {v2}");
    let msg = v2["error"].as_str().unwrap();
    assert!(msg.contains('2') && msg.contains("revision"), "{msg}");

    // Feedback and verification are recorded.
    let (s, v) = call(
        &c,
        "POST",
        a.url("/api/knowledge/feedback"),
        None,
        Some(json!({"id": "etcd/etcdHighFsyncDurations", "helpful": true})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entry"]["helpful"], 1);
    let (s, v) = call(
        &c,
        "POST",
        a.url("/api/knowledge/verify"),
        None,
        Some(json!({"id": "etcd/etcdHighFsyncDurations"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["entry"]["last_verified_ms"].as_i64().is_some());
    let (s, _) = call(
        &c,
        "DELETE",
        a.url("/api/knowledge/entries/alertmanager/AlertmanagerClusterCrashlooping"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &c,
        "GET",
        a.url("/api/knowledge/entries/alertmanager/AlertmanagerClusterCrashlooping"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 404);

    let mut live = Vec::new();
    for q in QUERIES {
        live.push(fingerprint(&search(&c, &a, q).await));
    }
    let (n, hash) = state(&c, &a).await;

    // Restart: the checkpoint restores the same state.
    a.stop();
    let out = aiops_cmd(&data, "embedded", &["rebuild"]);
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["knowledge"]["state_hash"], hash.as_str(), "{v}");
    let a = Aiops::start(&data, "embedded", &[]);
    assert_eq!(state(&c, &a).await, (n, hash.clone()));
    for (q, want) in QUERIES.iter().zip(&live) {
        assert_eq!(&fingerprint(&search(&c, &a, q).await), want, "{q}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_mid_import_leaves_a_state_rebuild_agrees_with_and_import_completes() {
    // A larger folder: the corpus eight times under different directories.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..8 {
        let copy = big.join(format!("copy{i}"));
        let status = Command::new("cp")
            .arg("-r")
            .arg(corpus())
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let data = dir.path().join("data");
    let mut a = Aiops::start(&data, "embedded", &[]);
    let c = client();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["knowledge", "import"])
        .arg(&big)
        .args(["--api", &a.url("")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "the import to start", || {
        common::http_get(&a.url("/api/knowledge/entries"))
            .ok()
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .is_some_and(|v| v["count"].as_u64().unwrap_or(0) > 0)
    });
    a.kill9();
    let _ = child.kill();
    let _ = child.wait();

    let a = Aiops::start(&data, "embedded", &[]);
    let (n, hash) = state(&c, &a).await;
    let mut live = Vec::new();
    for q in QUERIES {
        live.push(fingerprint(&search(&c, &a, q).await));
    }
    let mut a = a;
    a.stop();
    let out = aiops_cmd(&data, "embedded", &["rebuild"]);
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["knowledge"]["state_hash"], hash.as_str(), "{v}");
    let a = Aiops::start(&data, "embedded", &[]);
    assert_eq!(state(&c, &a).await, (n, hash));
    for (q, want) in QUERIES.iter().zip(&live) {
        assert_eq!(&fingerprint(&search(&c, &a, q).await), want, "{q}");
    }
    // Importing again completes what the crash cut short, and only that.
    let r = import(&a, &big);
    let files = r["files"].as_u64().unwrap();
    let entries = files - r["skipped"].as_u64().unwrap();
    assert_eq!(
        r["imported"].as_u64().unwrap() + r["unchanged"].as_u64().unwrap(),
        entries,
        "{r}"
    );
    assert_eq!(r["unchanged"].as_u64().unwrap(), n, "{r}");
    assert_eq!(state(&c, &a).await.0, entries);
}

const ALERTING: &str = r#"
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: oncall
"#;

#[tokio::test(flavor = "multi_thread")]
async fn incidents_show_linked_runbooks_and_similar_resolved_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("alerting.yaml");
    std::fs::write(&yaml, ALERTING).unwrap();
    let toml = dir.path().join("aiops.toml");
    // The runbook folder is watched: entries come without an import command.
    std::fs::write(
        &toml,
        format!(
            "[alerting]\nconfig = {:?}\ntick_interval = \"100ms\"\n\n[knowledge]\ndir = {:?}\nwatch_interval = \"200ms\"\n",
            yaml.to_str().unwrap(),
            corpus().to_str().unwrap()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let a = Aiops::start(&data, "embedded", &["--config", toml.to_str().unwrap()]);
    let c = client();
    wait_until(Duration::from_secs(60), "the folder to be imported", || {
        common::http_get(&a.url("/api/knowledge/entries"))
            .ok()
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .is_some_and(|v| v["count"].as_u64().unwrap_or(0) >= 100)
    });
    let alert = |status_ends: Option<&str>| {
        let mut v = json!({
            "labels": {"alertname": "etcdHighFsyncDurations", "service": "etcd", "instance": "etcd-0", "severity": "warning"},
            "annotations": {"summary": "etcd cluster 99th percentile fsync durations are too high."},
        });
        if let Some(e) = status_ends {
            v["endsAt"] = json!(e);
        }
        json!([v])
    };
    let incident_of = |v: &Value| -> Option<String> {
        v["incidents"]
            .as_array()?
            .iter()
            .find(|i| {
                i["title"]
                    .as_str()
                    .is_some_and(|t| t.contains("etcdHighFsyncDurations"))
            })
            .and_then(|i| i["id"].as_str().map(str::to_string))
    };
    // First incident: fires, then is resolved by an operator.
    let (s, v) = call(&c, "POST", a.url("/api/v2/alerts"), None, Some(alert(None))).await;
    assert_eq!(s, 200, "{v}");
    let mut first = None;
    wait_until(Duration::from_secs(20), "the first incident", || {
        first = common::http_get(&a.url("/api/incidents"))
            .ok()
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| incident_of(&v));
        first.is_some()
    });
    let first = first.unwrap();
    let (s, v) = call(
        &c,
        "GET",
        a.url(&format!("/api/incidents/{first}")),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["runbooks"][0]["entry_id"], "etcd/etcdHighFsyncDurations",
        "{v}"
    );
    assert_eq!(v["runbooks"][0]["how"], "alertname", "{v}");
    assert!(v["similar_incidents"].as_array().unwrap().is_empty(), "{v}");
    let (s, v) = call(
        &c,
        "POST",
        a.url("/api/v2/alerts"),
        None,
        Some(alert(Some("2020-01-01T00:00:00Z"))),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The alert resolving resolves its incident.
    wait_until(
        Duration::from_secs(20),
        "the first incident to resolve",
        || {
            common::http_get(&a.url(&format!("/api/incidents/{first}")))
                .ok()
                .and_then(|b| serde_json::from_str::<Value>(&b).ok())
                .is_some_and(|v| v["status"] == "resolved")
        },
    );

    // The alert fires again: a new incident, which shows the first as similar, and a draft
    // is proposed from the resolved one.
    let (s, _) = call(&c, "POST", a.url("/api/v2/alerts"), None, Some(alert(None))).await;
    assert_eq!(s, 200);
    let mut second = None;
    wait_until(Duration::from_secs(20), "the second incident", || {
        second = common::http_get(&a.url("/api/incidents"))
            .ok()
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| incident_of(&v))
            .filter(|id| *id != first);
        second.is_some()
    });
    let second = second.unwrap();
    let (s, v) = call(
        &c,
        "GET",
        a.url(&format!("/api/incidents/{second}")),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let similar = v["similar_incidents"].as_array().unwrap();
    assert_eq!(similar.len(), 1, "{v}");
    assert_eq!(similar[0]["id"], first.as_str());
    let (s, v) = call(&c, "GET", a.url("/api/knowledge/drafts"), None, None).await;
    assert_eq!(s, 200, "{v}");
    let draft = v["drafts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["incident"] == first.as_str())
        .expect("a draft for the resolved incident")
        .clone();
    assert!(draft["entry"]["draft"].as_bool().unwrap());
    // Accepting it (edited) makes it an entry; it is no longer proposed.
    let mut entry = draft["entry"].clone();
    entry["draft"] = json!(false);
    let (s, v) = call(
        &c,
        "POST",
        a.url("/api/knowledge/update"),
        None,
        Some(json!({"entry": entry})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = call(&c, "GET", a.url("/api/knowledge/drafts"), None, None).await;
    assert!(
        v["drafts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["incident"] != first.as_str()),
        "{v}"
    );
    // Linking by labels through the API.
    let (s, v) = call(
        &c,
        "GET",
        a.url("/api/knowledge/link?alertname=AlertmanagerFailedReload&label.severity=critical"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["runbooks"][0]["entry_id"], "alertmanager/AlertmanagerFailedReload",
        "{v}"
    );
}

fn bootstrap_token(a: &Aiops) -> String {
    let text = std::fs::read_to_string(&a.stderr).unwrap();
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("aiops_") && l.len() > 40)
        .expect("the first start prints an admin token")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_and_bad_input_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = Aiops::start_env(
        &data,
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &[("AIOPS_TEST_SECURE", "1")],
    );
    let c = client();
    let admin = bootstrap_token(&a);
    let mut tok = std::collections::BTreeMap::new();
    for role in ["viewer", "operator", "ingest"] {
        let (s, v) = call(
            &c,
            "POST",
            a.url("/api/tokens"),
            Some(&admin),
            Some(json!({"name": format!("kb-{role}"), "role": role})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        tok.insert(role, v["token"].as_str().unwrap().to_string());
    }
    let entry = json!({"entry": {"id": "ops/one", "title": "One", "body": "# One\n\n## Mitigation\n\nRestart the service.\n"}});
    // Writes: no token 401, ingest and viewer 403, operator 200.
    let (s, _) = call(
        &c,
        "POST",
        a.url("/api/knowledge/update"),
        None,
        Some(entry.clone()),
    )
    .await;
    assert_eq!(s, 401);
    for who in ["ingest", "viewer"] {
        let (s, _) = call(
            &c,
            "POST",
            a.url("/api/knowledge/update"),
            Some(&tok[who]),
            Some(entry.clone()),
        )
        .await;
        assert_eq!(s, 403, "{who}");
    }
    let (s, v) = call(
        &c,
        "POST",
        a.url("/api/knowledge/update"),
        Some(&tok["operator"]),
        Some(entry.clone()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entry"]["updated_by"], "kb-operator");
    // Reads: viewer yes, ingest no.
    let (s, _) = call(
        &c,
        "GET",
        a.url("/api/knowledge/search?q=restart"),
        Some(&tok["viewer"]),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &c,
        "POST",
        a.url("/api/knowledge/ask"),
        Some(&tok["viewer"]),
        Some(json!({"question": "how to mitigate one"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &c,
        "GET",
        a.url("/api/knowledge/search?q=restart"),
        Some(&tok["ingest"]),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(
        &c,
        "DELETE",
        a.url("/api/knowledge/entries/ops/one"),
        Some(&tok["viewer"]),
        None,
    )
    .await;
    assert_eq!(s, 403);

    let op = Some(tok["operator"].as_str());
    let bad: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "POST",
            "/api/knowledge/ask",
            json!({"question": ""}),
            400,
            "question",
        ),
        (
            "POST",
            "/api/knowledge/ask",
            json!({"question": "x".repeat(5000)}),
            400,
            "question",
        ),
        (
            "POST",
            "/api/knowledge/ask",
            json!({"q": "typo"}),
            400,
            "question",
        ),
        (
            "POST",
            "/api/knowledge/update",
            json!({"entry": {"id": "a", "title": "t", "body": "b", "links": {"matchers": ["severity=~\"(\""]}}}),
            400,
            "matcher",
        ),
        (
            "POST",
            "/api/knowledge/update",
            json!({"entry": {"id": "../etc/passwd", "title": "t", "body": "b"}}),
            400,
            "id",
        ),
        (
            "POST",
            "/api/knowledge/update",
            json!({"entry": {"id": "a", "title": "", "body": "b"}}),
            400,
            "title",
        ),
        (
            "POST",
            "/api/knowledge/update",
            json!({"entry": {"id": "a", "title": "t", "body": "x".repeat(2 << 20)}}),
            400,
            "bytes",
        ),
        (
            "POST",
            "/api/knowledge/update",
            json!({"entry": {"id": "ops/one", "title": "t", "body": "b"}, "base_revision": 7}),
            409,
            "revision",
        ),
        (
            "POST",
            "/api/knowledge/feedback",
            json!({"id": "nope", "helpful": true}),
            404,
            "nope",
        ),
        (
            "POST",
            "/api/knowledge/import",
            json!({"files": [{"path": "bad.md", "text": "---\ntags: [unclosed\n---\n# x\n"}]}),
            200,
            "",
        ),
    ];
    for (m, p, body, want, word) in bad {
        let (s, v) = call(&c, m, a.url(p), op, Some(body)).await;
        assert_eq!(s, want, "{m} {p}: {v}");
        if want >= 400 {
            let msg = v["error"].as_str().unwrap_or("").to_lowercase();
            assert!(
                msg.contains(word),
                "{m} {p}: {msg:?} does not name {word:?}"
            );
        } else {
            // The malformed file is reported by path, not imported.
            assert_eq!(v["failed"][0]["path"], "bad.md", "{v}");
            assert_eq!(v["imported"], 0, "{v}");
        }
    }
    // A 10 MB entry is refused before it is read whole.
    let huge = json!({"entry": {"id": "big", "title": "t", "body": "x".repeat(10 << 20)}});
    let sent = c
        .post(a.url("/api/knowledge/update"))
        .bearer_auth(&tok["operator"])
        .json(&huge)
        .send()
        .await;
    match sent {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        // The engine answered 413 and closed the connection before the client finished
        // writing the body: the client sees its write fail. Either way it was not read whole.
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    let (s, _) = call(&c, "GET", a.url("/api/health"), None, None).await;
    assert_eq!(s, 200);
    // Nothing half-written: the refused changes left exactly one entry.
    let (s, v) = call(&c, "GET", a.url("/api/knowledge/entries"), op, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["count"], 1, "{v}");
}

/// An OpenAI-compatible chat completions endpoint (https://platform.openai.com/docs/api-reference/chat/create):
/// POST /v1/chat/completions with a bearer key, `model`, `messages` (system first), `tools` as
/// `{type: function, function: {name, description, parameters}}`. Round 1 answers a call of
/// `alert_history`; once a `tool` message is present, a text citing the first passage. A
/// question containing "provider-down" gets a 500.
fn openai_contract() -> std::sync::Arc<common::recorder::Contract> {
    std::sync::Arc::new(|r: &common::recorder::Received| {
        if r.method != "POST" || r.path != "/v1/chat/completions" {
            return Err(format!(
                "{} {} is not POST /v1/chat/completions",
                r.method, r.path
            ));
        }
        if r.header("authorization") != Some("Bearer sk-test-knowledge-secret") {
            return Err("no bearer key".into());
        }
        let b = &r.body;
        if b["model"] != "gpt-test" {
            return Err(format!("model {}", b["model"]));
        }
        let msgs = b["messages"].as_array().ok_or("no messages")?;
        if msgs.first().map(|m| &m["role"]) != Some(&json!("system")) {
            return Err("the system prompt is not the first message".into());
        }
        let tools = b["tools"].as_array().ok_or("no tools")?;
        if !tools.iter().all(|t| {
            t["type"] == "function"
                && t["function"]["name"].is_string()
                && t["function"]["parameters"].is_object()
        }) {
            return Err(format!("tools not in the function shape: {tools:?}"));
        }
        let user = msgs
            .get(1)
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        if user.contains("sk-test-knowledge-secret") {
            return Err("the prompt holds the API key".into());
        }
        if user.contains("provider-down") {
            return Ok((
                500,
                json!({"error": {"message": "upstream overloaded"}}).to_string(),
            ));
        }
        let answered_tool = msgs.iter().any(|m| m["role"] == "tool");
        let message = if answered_tool {
            let cite = user
                .split('[')
                .nth(1)
                .and_then(|x| x.split(']').next())
                .unwrap_or("none");
            json!({"role": "assistant", "content": format!("Defragment the etcd database [{cite}] [alert_history].")})
        } else {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "alert_history", "arguments": "{\"alertname\":\"etcdHighFsyncDurations\"}"}}]})
        };
        Ok((
            200,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
                   "choices": [{"index": 0, "message": message, "finish_reason": if answered_tool {"stop"} else {"tool_calls"}}],
                   "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}})
            .to_string(),
        ))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn llm_answers_are_recorded_and_reused_after_kill9_and_provider_errors_fall_back() {
    let rec = common::recorder::Recorder::start(openai_contract());
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("aiops.toml");
    std::fs::write(
        &toml,
        format!(
            "[outbound]\nallow = [\"127.0.0.1:{port}\"]\n\n[workflows.secrets]\nLLM_KEY = {{ env = \"KB_TEST_LLM_KEY\" }}\n\n\
             [workflows.providers.assistant]\nkind = \"llm\"\napi = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nmodel = \"gpt-test\"\napi_key = \"{{{{ secrets.LLM_KEY }}}}\"\n\n\
             [knowledge]\ndir = {dir:?}\nwatch_interval = \"1h\"\nllm = \"assistant\"\nllm_timeout = \"20s\"\n",
            port = rec.port,
            dir = corpus().to_str().unwrap()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let env = [("KB_TEST_LLM_KEY", "sk-test-knowledge-secret")];
    let start = || {
        Aiops::start_env(
            &data,
            "embedded",
            aiops_testkit::free_port(),
            &["--config", toml.to_str().unwrap()],
            &env,
        )
    };
    let mut a = start();
    let c = client();
    wait_until(Duration::from_secs(60), "the folder to be imported", || {
        common::http_get(&a.url("/api/knowledge/entries"))
            .ok()
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .is_some_and(|v| v["count"].as_u64().unwrap_or(0) >= 100)
    });
    let q = json!({"question": "How do I fix etcd high fsync durations?"});
    let (s, first) = call(
        &c,
        "POST",
        a.url("/api/knowledge/ask"),
        None,
        Some(q.clone()),
    )
    .await;
    assert_eq!(s, 200, "{first}");
    let llm = &first["llm"];
    assert!(
        llm["answer"].as_str().unwrap().starts_with("Defragment"),
        "{first}"
    );
    assert_eq!(llm["tool_uses"][0]["name"], "alert_history", "{first}");
    assert_eq!(rec.count(), 2, "one tool round and one answer");
    assert!(
        rec.violations.lock().unwrap().is_empty(),
        "{:?}",
        rec.violations.lock().unwrap()
    );
    // The retrieval-only answer is still there, cited.
    assert_eq!(first["answered"], true);

    // The same question again, and after kill -9: answered from the log, no request.
    let (_, again) = call(
        &c,
        "POST",
        a.url("/api/knowledge/ask"),
        None,
        Some(q.clone()),
    )
    .await;
    assert_eq!(again["llm"]["answer"], llm["answer"]);
    assert_eq!(again["llm"]["recorded_hits"], 2, "{again}");
    a.kill9();
    let a = start();
    let (_, third) = call(&c, "POST", a.url("/api/knowledge/ask"), None, Some(q)).await;
    assert_eq!(third["llm"]["answer"], llm["answer"], "{third}");
    assert_eq!(rec.count(), 2, "a replayed answer sends nothing");
    assert_eq!(a.metric("aiops_llm_recorded_hits_total"), 2.0);
    assert_eq!(a.metric("aiops_llm_calls_total"), 0.0);
    assert!(a.metric("aiops_knowledge_llm_calls_recorded") >= 2.0);

    // A provider error: a clear error beside the retrieval-only answer.
    let (s, down) = call(
        &c,
        "POST",
        a.url("/api/knowledge/ask"),
        None,
        Some(json!({"question": "provider-down: how do I fix etcd high fsync durations?"})),
    )
    .await;
    assert_eq!(s, 200, "{down}");
    let err = down["llm"]["error"].as_str().unwrap();
    assert!(
        err.contains("500") && err.contains("upstream overloaded"),
        "{err}"
    );
    assert!(!down["sentences"].as_array().unwrap().is_empty(), "{down}");
    // The key reached the provider only as the header: never the log, the answers or stderr.
    let stderr = std::fs::read_to_string(&a.stderr).unwrap();
    assert!(!stderr.contains("sk-test-knowledge-secret"));
    for v in [&first, &again, &third, &down] {
        assert!(!v.to_string().contains("sk-test-knowledge-secret"));
    }
    // Not in any byte of the data directory (the log holds the recorded calls).
    let mut stack = vec![data.clone()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                files += 1;
                assert!(
                    !bytes.windows(24).any(|w| w == b"sk-test-knowledge-secret"),
                    "the key is in {}",
                    p.display()
                );
            }
        }
    }
    assert!(files > 0);
}
