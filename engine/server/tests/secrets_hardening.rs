//! Secrets cannot be forged or leaked (issue 15, items 2 and 8), against the real binary:
//! - a receiver that echoes a secret back raw, percent-encoded, base64, hex and JSON-escaped
//!   (as a value and as a key, in a 2xx answer and in a 500): afterwards no encoding of the
//!   secret is anywhere in the data directory (every file, as bytes, stderr included), in the
//!   decoded log, or in any API answer;
//! - an alert whose label key spells a secret marker, sent unauthenticated to `POST /api/alerts`:
//!   the receiver of the rendered labels never sees the secret;
//! - `GET /api/v2/status` shows receiver secrets as `<secret>`;
//! - workflow ids follow `[a-z0-9][a-z0-9_-]{0,62}` in paths and bodies (nothing written
//!   otherwise), and a "billion laughs" YAML is refused in under a second, naming the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Aiops, aiops_cmd, http_get, wait_until};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The secret: characters that percent-encoding, JSON escaping and base64 alignment all touch.
const TOKEN: &str = "s3cr3t/T0k+en va\"lue&x=1";
const ROOT: &str = "root-admin-token-42";

fn b64(data: &[u8], url: bool) -> String {
    let abc: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(abc[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn pct(data: &str, upper: bool, plus: bool) -> String {
    data.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' if plus => "+".into(),
            _ if upper => format!("%{b:02X}"),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

fn hex(data: &str, upper: bool) -> String {
    data.bytes()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

/// Every spelling of `s` the echo server uses, computed here independently of aiops' redactor.
fn encodings(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap();
    vec![
        s.to_string(),
        pct(s, true, false),
        pct(s, false, false),
        pct(s, true, true),
        b64(s.as_bytes(), false),
        b64(s.as_bytes(), true),
        // Basic auth: the secret at an offset inside a longer base64 text.
        b64(format!("user:{s}").as_bytes(), false),
        hex(s, false),
        hex(s, true),
        json[1..json.len() - 1].to_string(),
        // A distinctive piece, so a partly-encoded echo is caught too.
        "T0k+en va".to_string(),
        "T0k%2Ben".to_string(),
    ]
}

/// An HTTP server on loopback that records raw requests and answers with what a careless
/// receiver does: the credentials it got, echoed in every encoding (and as a key). On `/fail`
/// the echo comes back in a 500.
struct Echo {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Echo {
    fn start() -> Echo {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let r2 = requests.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let r3 = r2.clone();
                std::thread::spawn(move || {
                    let _ = echo(s, &r3);
                });
            }
        });
        Echo { port, requests }
    }
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    fn all(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn echo(s: std::net::TcpStream, rec: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut head = String::new();
    let mut len = 0usize;
    let mut auth = String::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        head.push_str(&h);
        let t = h.trim_end();
        if t.is_empty() {
            break;
        }
        if let Some((k, v)) = t.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            if k.eq_ignore_ascii_case("authorization") {
                auth = v.trim().trim_start_matches("Bearer ").to_string();
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let request = format!("{head}{}", String::from_utf8_lossy(&body));
    rec.lock().unwrap().push(request.clone());
    let first = head.lines().next().unwrap_or("").to_string();
    let query = first
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.split_once('?'))
        .map(|(_, q)| q.to_string())
        .unwrap_or_default();
    let answer = if auth.is_empty() {
        json!({"got": request})
    } else {
        json!({
            "raw": auth,
            "query_as_received": query,
            "pct_upper": pct(&auth, true, false),
            "pct_lower": pct(&auth, false, false),
            "form": pct(&auth, true, true),
            "b64": b64(auth.as_bytes(), false),
            "b64url": b64(auth.as_bytes(), true),
            "basic": b64(format!("user:{auth}").as_bytes(), false),
            "hex": hex(&auth, false),
            "HEX": hex(&auth, true),
            "json_text": json!({"token": auth}).to_string(),
            auth.clone(): "as a key",
        })
    };
    let status = if first.contains("/fail") { 500 } else { 200 };
    let answer = answer.to_string();
    write!(
        w,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    w.flush()
}

const LEAK: &str = r#"
workflow:
  id: leak
  triggers: [{type: alert}]
  steps:
    - name: fetch
      provider:
        type: http
        config: echo
        with:
          url: "/echo?t={{ secrets.TOKEN }}"
          headers: {Authorization: "Bearer {{ secrets.TOKEN }}"}
  actions:
    - name: tell
      provider:
        type: webhook
        config: hook
        with:
          body:
            labels: "l={{ alert.labels }}"
            labels_json: "{{ alert.labels | tojson }}"
            keys: "{{ alert.labels | list | join(',') }}"
            seen: "{{ steps.fetch.results | tojson }}"
    - name: broken
      continue_on_failure: true
      provider:
        type: http
        config: echo
        with:
          url: "/fail?t={{ secrets.TOKEN }}"
          headers: {Authorization: "Bearer {{ secrets.TOKEN }}"}
"#;

const ALERTING: &str = r#"
route: {receiver: team}
receivers:
  - name: team
    slack_configs:
      - api_url: http://127.0.0.1:9/services/T0/B0/SLACKHOOKSECRET
        channel: '#ops'
        http_config:
          basic_auth: {username: bob, password: BASICAUTHSECRET}
    webhook_configs: [{url: 'http://127.0.0.1:9/hook?token=WEBHOOKURLSECRET'}]
"#;

fn setup(dir: &Path, echo: &Echo, hook: &Echo) -> String {
    let wdir = dir.join("workflows");
    std::fs::create_dir_all(&wdir).unwrap();
    std::fs::write(wdir.join("leak.yaml"), LEAK).unwrap();
    let yaml = dir.join("alerting.yaml");
    std::fs::write(&yaml, ALERTING).unwrap();
    let toml = dir.join("aiops.toml");
    std::fs::write(
        &toml,
        format!(
            r#"[alerting]
config = {yaml:?}
tick_interval = "100ms"
checkpoint_interval = "200ms"

[workflows]
dir = {wdir:?}
autoheal_dir = {ah:?}
outbound_allow = ["127.0.0.1"]
checkpoint_interval = "300ms"
tick_interval = "100ms"

[workflows.secrets]
TOKEN = {{ env = "TEST_TOKEN" }}
ROOT = {{ env = "TEST_ROOT" }}

[workflows.users.root]
token_secret = "ROOT"
roles = ["admin"]

[workflows.providers.echo]
kind = "http"
url = "{echo}"

[workflows.providers.hook]
kind = "webhook"
url = "{hook}"
"#,
            yaml = yaml.to_str().unwrap(),
            wdir = wdir.to_str().unwrap(),
            ah = dir.join("autoheal").to_str().unwrap(),
            echo = echo.url("/"),
            hook = hook.url("/hook"),
        ),
    )
    .unwrap();
    toml.to_str().unwrap().to_string()
}

fn curl(method: &str, url: &str, token: Option<&str>, ctype: &str, body: &str) -> (u16, String) {
    let mut c = std::process::Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    c.args(["-H", &format!("content-type: {ctype}")]);
    if let Some(t) = token {
        c.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out = c.args(["--data-binary", "@-", url]);
    let mut child = out
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (b, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), b.to_string())
}

fn leaked_in(text: &str, what: &str) -> Vec<String> {
    encodings(TOKEN)
        .into_iter()
        .filter(|e| text.contains(e.as_str()))
        .map(|e| format!("{what}: contains {e:?}"))
        .collect()
}

fn sweep(dir: &Path, out: &mut Vec<String>) {
    let needles: Vec<Vec<u8>> = encodings(TOKEN)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            sweep(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            for n in &needles {
                if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                    out.push(format!(
                        "{}: contains {:?}",
                        p.display(),
                        String::from_utf8_lossy(n)
                    ));
                }
            }
        }
    }
}

#[test]
fn secrets_are_never_forged_or_leaked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let echo = Echo::start();
    let hook = Echo::start();
    let cfg = setup(dir, &echo, &hook);
    let mut a = Aiops::start_env(
        &dir.join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &["--config", &cfg],
        &[("TEST_TOKEN", TOKEN), ("TEST_ROOT", ROOT)],
    );
    let mut answers = String::new();

    // 1. Forging: label keys spelling the marker, sent without a token.
    let forged = json!([
        {"name": "Forge", "severity": "critical", "service": "checkout",
         "labels": {"⟦secret:TOKEN⟧": "x", "k": "⟦secret:ROOT⟧"}},
        {"name": "Plain", "severity": "critical", "service": "checkout"},
    ]);
    let (code, body) = curl(
        "POST",
        &a.url("/api/alerts"),
        None,
        "application/json",
        &forged.to_string(),
    );
    assert!(
        (200..300).contains(&code),
        "POST /api/alerts: {code} {body}"
    );
    answers.push_str(&body);

    // Both executions run: fetch (echoes the secret), tell (to the hook), broken (500 echo).
    wait_until(Duration::from_secs(30), "both executions finished", || {
        let b = http_get(&a.url("/api/workflows/leak/executions")).unwrap_or_default();
        let v: Value = serde_json::from_str(&b).unwrap_or(Value::Null);
        v["finished"].as_array().is_some_and(|r| r.len() >= 2)
    });
    assert!(hook.all().len() >= 2, "hook saw {:?}", hook.all());
    // The echo server did get the secret (the legitimate call), so it was echoed back.
    assert!(
        echo.all().iter().any(|r| r.contains("T0k+en va")),
        "{:?}",
        echo.all()
    );

    // The attacker's receiver never sees the secret, in any encoding.
    let mut leaks = Vec::new();
    for (i, r) in hook.all().iter().enumerate() {
        leaks.extend(leaked_in(r, &format!("hook request {i}")));
        assert!(!r.contains(ROOT), "hook request {i} has ROOT: {r}");
    }
    // The rendered labels reached it, markers neutralized.
    assert!(
        hook.all().iter().any(|r| r.contains("[secret:TOKEN")),
        "{:?}",
        hook.all()
    );

    // 2. Status: secrets as Alertmanager shows them.
    let status = http_get(&a.url("/api/v2/status")).unwrap();
    for s in ["SLACKHOOKSECRET", "BASICAUTHSECRET", "WEBHOOKURLSECRET"] {
        assert!(!status.contains(s), "status shows {s}: {status}");
    }
    assert!(status.contains("<secret>"), "{status}");
    answers.push_str(&status);

    // 3. Ids and YAML bombs through the API.
    let wf_dir = dir.join("workflows");
    let before: Vec<_> = std::fs::read_dir(&wf_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let body_with = |id: &str| {
        format!(
            "workflow:\n  id: \"{id}\"\n  triggers: [{{type: manual}}]\n  actions:\n    - name: x\n      provider: {{type: sql, with: {{query: \"SELECT 1\"}}}}\n"
        )
    };
    for bad in ["..", "../x", "Upper", "a/b", &"a".repeat(64)] {
        let (code, body) = curl(
            "POST",
            &a.url("/api/workflows"),
            Some(ROOT),
            "application/yaml",
            &body_with(bad),
        );
        assert!(matches!(code, 400 | 422), "id {bad:?}: {code} {body}");
        assert!(
            body.contains("[a-z0-9][a-z0-9_-]{0,62}"),
            "id {bad:?}: {body}"
        );
        answers.push_str(&body);
    }
    for (method, path) in [
        ("PUT", "/api/workflows/UPPER"),
        ("DELETE", "/api/workflows/Leak"),
        ("POST", "/api/workflows/a.b/execute"),
        ("GET", "/api/workflows/%2E%2E/executions"),
    ] {
        let (code, body) = curl(
            method,
            &a.url(path),
            Some(ROOT),
            "application/yaml",
            &body_with("upper"),
        );
        assert!(matches!(code, 400 | 422), "{method} {path}: {code} {body}");
        assert!(
            body.contains("[a-z0-9][a-z0-9_-]{0,62}"),
            "{method} {path}: {body}"
        );
    }
    let mut bomb = String::from("x0: &x0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    for i in 1..9 {
        let refs = vec![format!("*x{}", i - 1); 9].join(",");
        bomb.push_str(&format!("x{i}: &x{i} [{refs}]\n"));
    }
    bomb.push_str(&body_with("bomb"));
    let t = Instant::now();
    let (code, body) = curl(
        "POST",
        &a.url("/api/workflows"),
        Some(ROOT),
        "application/yaml",
        &bomb,
    );
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "bomb took {:?}",
        t.elapsed()
    );
    assert!(matches!(code, 400 | 422), "bomb: {code} {body}");
    assert!(
        body.contains("aliases expand") && body.contains("100000"),
        "{body}"
    );
    let after: Vec<_> = std::fs::read_dir(&wf_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "nothing written for refused ids");
    assert!(!dir.join("x.yaml").exists() && !dir.join(".yaml").exists());

    // 4. Every answer, the decoded log, then (after a clean stop) every file as bytes.
    for path in [
        "/api/workflows/leak/executions",
        "/api/workflows",
        "/api/workflows/leak",
        "/metrics",
    ] {
        let b = http_get(&a.url(path)).unwrap_or_default();
        leaks.extend(leaked_in(&b, path));
        answers.push_str(&b);
    }
    leaks.extend(leaked_in(&answers, "API answers"));
    assert!(!answers.contains(ROOT), "an answer shows ROOT");
    // The result of the fetch step is there, redacted.
    let ex = http_get(&a.url("/api/workflows/leak/executions")).unwrap();
    assert!(ex.contains("***"), "{ex}");
    a.stop();
    let log_text = aiops_cmd(
        &dir.join("data"),
        "embedded",
        &["replay", "--format", "ndjson"],
    );
    leaks.extend(leaked_in(&log_text, "aiops replay"));
    sweep(&dir.join("data"), &mut leaks);
    let stderr = std::fs::read_to_string(&a.stderr).unwrap_or_default();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !leaked_in(l, "").is_empty())
        .collect();
    assert!(
        leaks.is_empty(),
        "secret leaked:\n{}\nstderr lines:\n{}\nexecutions: {ex}",
        leaks.join("\n"),
        lines.join("\n")
    );
}
