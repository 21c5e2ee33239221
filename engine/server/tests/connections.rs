//! Hostile connections and outbound targets against the real `aiops` binary on loopback:
//! - HTTP: a client that stalls in its request head is disconnected after
//!   `http.header_read_timeout`; a slow-loris body is answered 408 and closed after
//!   `http.body_read_timeout`; idle sockets beyond `http.max_connections` delay `/api/health` by
//!   at most the header timeout.
//! - Outbound guard: data sources whose targets are metadata, private or loopback addresses (in
//!   every spelling) are refused at save time with 422 naming the address class; a name that
//!   resolves to a refused address is refused when scraped (nothing is sent); a workflow step
//!   with a literal metadata URL is refused by `aiops workflow check` with file:line, and
//!   accepted once the address is listed in `[outbound] allow`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Aiops;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TIMEOUTS: [(&str, &str); 3] = [
    ("AIOPS__HTTP__HEADER_READ_TIMEOUT", "1s"),
    ("AIOPS__HTTP__BODY_READ_TIMEOUT", "1s"),
    ("AIOPS__HTTP__MAX_CONNECTIONS", "16"),
];

/// Reads until the server closes the socket; returns what it sent and how long that took, or
/// `None` when it is still open after `limit`.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => {
                return Some((
                    String::from_utf8_lossy(&got).into_owned(),
                    started.elapsed(),
                ));
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return Some((
                    String::from_utf8_lossy(&got).into_owned(),
                    started.elapsed(),
                ));
            }
        }
    }
    None
}

fn connect(a: &Aiops) -> TcpStream {
    TcpStream::connect(("127.0.0.1", a.port)).unwrap()
}

#[test]
fn a_client_stalling_in_its_request_head_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start_env(
        dir.path(),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &TIMEOUTS,
    );
    let mut s = connect(&a);
    s.write_all(b"GET /api/health HTTP/1.1\r\nHost: aiops\r\nX-Slow: ")
        .unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(8))
        .expect("the server closes a connection whose head does not arrive");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // A socket that never sends a byte is closed the same way.
    let mut idle = connect(&a);
    assert!(read_until_closed(&mut idle, Duration::from_secs(8)).is_some());
}

#[test]
fn a_slow_loris_body_is_answered_408_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start_env(
        dir.path(),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &TIMEOUTS,
    );
    let before = common::http_get(&a.url("/api/log/stats")).unwrap();
    let mut s = connect(&a);
    s.write_all(
        b"POST /api/ingest/metrics HTTP/1.1\r\nHost: aiops\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\": \"x\", ",
    )
    .unwrap();
    let (answer, took) = read_until_closed(&mut s, Duration::from_secs(8))
        .expect("the server ends a request whose body does not arrive");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_read_timeout"), "{answer}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Nothing was stored, and the server still answers.
    assert_eq!(common::http_get(&a.url("/api/log/stats")).unwrap(), before);
}

#[test]
fn idle_connections_beyond_the_cap_delay_health_by_at_most_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start_env(
        dir.path(),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &TIMEOUTS,
    );
    // Three times the cap of 16, all idle.
    let idle: Vec<TcpStream> = (0..48).map(|_| connect(&a)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let body = common::http_get(&a.url("/api/health")).expect("health answers");
    assert!(body.contains("\"ok\""), "{body}");
    let took = started.elapsed();
    // Idle sockets leave after 1 s each round; at most three rounds of 16 are ahead of us.
    assert!(took < Duration::from_secs(5), "{took:?}");
    drop(idle);
}

async fn send(
    c: &reqwest::Client,
    a: &Aiops,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = c.request(m, a.url(path));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// A name from /etc/hosts that resolves to loopback (not `localhost`, which the guard refuses
/// by name already).
fn name_resolving_to_loopback() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let ip: std::net::IpAddr = f.next()?.parse().ok()?;
        if !ip.is_loopback() {
            return None;
        }
        f.find(|n| !n.starts_with('#') && !n.contains("localhost"))
            .map(str::to_string)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sources_with_private_or_metadata_targets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start(dir.path(), "embedded", &[]);
    let c = reqwest::Client::new();
    let cases = [
        ("169.254.169.254", "cloud metadata"),
        ("0xa9fea9fe", "cloud metadata"),
        ("2852039166", "cloud metadata"),
        ("[::ffff:169.254.169.254]", "cloud metadata"),
        ("metadata.google.internal", "cloud metadata"),
        ("[fd00:ec2::254]", "cloud metadata"),
        (
            "http://169.254.169.254/latest/meta-data/iam",
            "cloud metadata",
        ),
        ("10.1.2.3:9100", "private"),
        ("127.0.0.1:9100", "loopback"),
    ];
    for (i, (target, class)) in cases.iter().enumerate() {
        let body =
            json!({"id": format!("t{i}"), "type": "scrape", "job": "x", "targets": [target]});
        let (s, v) = send(&c, &a, "POST", "/api/datasources", Some(body)).await;
        assert_eq!(s, 422, "{target}: {v}");
        assert_eq!(v["reason"], "outbound_refused", "{target}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(class) && msg.contains("outbound"),
            "{target}: {msg}"
        );
    }
    let (_, l) = send(&c, &a, "GET", "/api/datasources", None).await;
    assert_eq!(l["datasources"].as_array().map(Vec::len), Some(0), "{l}");
    assert!(!dir.path().join("datasources.json").exists());

    // A name is not refused by its spelling; what it resolves to is refused when scraped.
    let Some(name) = name_resolving_to_loopback() else {
        eprintln!("no /etc/hosts name for 127.0.0.1 besides localhost; DNS case skipped");
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = json!({"id": "byname", "type": "scrape", "job": "x", "targets": [format!("{name}:{port}")], "interval": "1h"});
    let (s, v) = send(&c, &a, "POST", "/api/datasources", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = send(&c, &a, "POST", "/api/datasources/byname/test", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        listener.accept().is_err(),
        "nothing may reach a name that resolves to loopback"
    );
    let log = std::fs::read_to_string(&a.stderr).unwrap_or_default();
    assert!(log.contains("refused"), "the refusal is logged");
}

const META_WORKFLOW: &str = r#"workflow:
  id: meta
  triggers:
    - type: manual
  actions:
    - name: fetch
      provider:
        type: http
        config: "{{ providers.enrich }}"
        with:
          url: "http://169.254.169.254/latest/meta-data/"
"#;

#[test]
fn a_workflow_with_a_literal_metadata_url_is_refused_at_check_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("meta.yaml");
    std::fs::write(&wf, META_WORKFLOW).unwrap();
    let check = |allow: &str| {
        let cfg = dir.path().join("aiops.toml");
        std::fs::write(
            &cfg,
            format!(
                "[outbound]\nallow = [{allow}]\n\n[workflows.providers.enrich]\nkind = \"http\"\n"
            ),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
            .args(["workflow", "check", "--config", cfg.to_str().unwrap()])
            .arg(&wf)
            .output()
            .unwrap()
    };
    let out = check("");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = META_WORKFLOW
        .lines()
        .position(|l| l.contains("169.254.169.254"))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("meta.yaml:{line}:")), "{stderr}");
    assert!(stderr.contains("cloud metadata"), "{stderr}");
    let out = check("\"169.254.169.254\"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_config_with_a_literal_metadata_scrape_target_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("aiops.toml");
    std::fs::write(
        &cfg,
        "[[sources]]\ntype = \"scrape\"\njob = \"m\"\ntargets = [\"[::ffff:169.254.169.254]:80\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--http",
            &format!("127.0.0.1:{}", aiops_testkit::free_port()),
        ])
        .args(["--pg", &format!("127.0.0.1:{}", aiops_testkit::free_port())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sources[0]") && stderr.contains("cloud metadata"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grafana_url_on_an_unlisted_loopback_address_is_refused_by_the_guard() {
    // A listener that would answer, so only the guard can make the sync fail before any call.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let a = Aiops::start_env(
        dir.path(),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &[
            ("AIOPS__GRAFANA__URL", &url),
            ("AIOPS__GRAFANA__TOKEN", "glsa_test_token"),
        ],
    );
    let c = reqwest::Client::new();
    let (s, v) = send(&c, &a, "POST", "/api/grafana/dashboards", None).await;
    assert_eq!(s, 409, "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("loopback") && msg.contains("[outbound] allow"),
        "{msg}"
    );
    assert!(listener.accept().is_err(), "nothing reached the listener");
}
