//! A recording HTTP server for provider tests: accepts requests on a free loopback port in a
//! thread, checks each against a contract function, records it with its receive time, and answers
//! what the contract function says.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    pub at_ms: i64,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The contract: `Err(reason)` answers 400 with the reason (and counts a violation).
pub type Contract = dyn Fn(&Received) -> Result<(u16, String), String> + Send + Sync;

/// The running recorder.
pub struct Recorder {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub violations: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start(contract: Arc<Contract>) -> Recorder {
        Self::start_delayed(contract, std::time::Duration::ZERO)
    }

    /// Like [`Recorder::start`], answering each request only after `delay` (recorded at once),
    /// so a crash test can land between a request and its answer.
    pub fn start_delayed(contract: Arc<Contract>, delay: std::time::Duration) -> Recorder {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let (r2, v2) = (received.clone(), violations.clone());
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (r3, v3, c3) = (r2.clone(), v2.clone(), contract.clone());
                std::thread::spawn(move || {
                    let _ = handle(s, &r3, &v3, c3.as_ref(), delay);
                });
            }
        });
        Recorder {
            port,
            received,
            violations,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

// The receiver stamps arrival in wall time: compared with result times the engine's executor
// stamps in wall time too (both are edges).
#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn handle(
    s: std::net::TcpStream,
    rec: &Mutex<Vec<Received>>,
    viol: &Mutex<Vec<String>>,
    contract: &Contract,
    delay: std::time::Duration,
) -> std::io::Result<()> {
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let at_ms = now_ms();
    let req = Received {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        at_ms,
    };
    let (status, answer) = match contract(&req) {
        Ok(x) => x,
        Err(reason) => {
            viol.lock().unwrap().push(reason.clone());
            (
                400,
                serde_json::json!({"status": "invalid event", "message": reason}).to_string(),
            )
        }
    };
    rec.lock().unwrap().push(req);
    std::thread::sleep(delay);
    write!(
        w,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    w.flush()
}

/// PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
/// POST /v2/enqueue, JSON with routing_key (32 chars here), event_action, dedup_key, and for a
/// trigger payload.summary (≤ 1024), payload.source, payload.severity in
/// critical|error|warning|info. Answers 202 with the dedup key.
pub fn pagerduty(routing_key: &'static str) -> Arc<Contract> {
    Arc::new(move |r: &Received| {
        if r.method != "POST" || r.path != "/v2/enqueue" {
            return Err(format!("{} {} is not POST /v2/enqueue", r.method, r.path));
        }
        if !r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err("content-type must be application/json".into());
        }
        let b = &r.body;
        if b["routing_key"] != routing_key {
            return Err("wrong routing_key".into());
        }
        let action = b["event_action"].as_str().unwrap_or("");
        if !matches!(action, "trigger" | "acknowledge" | "resolve") {
            return Err(format!("bad event_action {action:?}"));
        }
        let key = b["dedup_key"].as_str().ok_or("dedup_key missing")?;
        if action == "trigger" {
            let p = &b["payload"];
            let summary = p["summary"].as_str().ok_or("payload.summary missing")?;
            if summary.is_empty() || summary.len() > 1024 {
                return Err("payload.summary must be 1..1024 chars".into());
            }
            p["source"].as_str().ok_or("payload.source missing")?;
            let sev = p["severity"].as_str().ok_or("payload.severity missing")?;
            if !matches!(sev, "critical" | "error" | "warning" | "info") {
                return Err(format!("bad severity {sev:?}"));
            }
        }
        Ok((
            202,
            serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": key}).to_string(),
        ))
    })
}

/// Slack incoming webhooks (https://api.slack.com/messaging/webhooks): POST to the webhook's
/// path as JSON with a non-empty `text` (the notification fallback) and, when present, `blocks`
/// that each have a `type`. Answers 200 `ok` (Slack's plain-text answer).
pub fn slack(path: &'static str) -> Arc<Contract> {
    Arc::new(move |r: &Received| {
        if r.method != "POST" || r.path != path {
            return Err(format!("{} {} is not POST {path}", r.method, r.path));
        }
        if !r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err("content-type must be application/json".into());
        }
        let text = r.body["text"].as_str().ok_or("text missing")?;
        if text.trim().is_empty() {
            return Err("text is empty".into());
        }
        if let Some(blocks) = r.body.get("blocks") {
            let ok = blocks
                .as_array()
                .is_some_and(|b| b.iter().all(|x| x["type"].is_string()));
            if !ok {
                return Err("blocks must be a list of objects with a type".into());
            }
        }
        Ok((200, "ok".into()))
    })
}

/// Standard base64 (RFC 4648, with padding), for Basic credentials.
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Jira Cloud REST API v2 with Basic auth (account email and API token,
/// https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/): every request
/// carries `Authorization: Basic base64(email:token)`. `GET /rest/api/2/search/jql` (or the
/// classic `/rest/api/2/search`) with a `jql` query answers no issues; `POST /rest/api/2/issue`
/// (https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issues/#api-rest-api-2-issue-post)
/// takes JSON `fields` with `project.key`, `issuetype.name`, a one-line `summary` of at most 255
/// characters, a string `description` (v2 takes wiki text) and optionally `priority.name` and
/// `labels` (no spaces), and answers 201 with the new issue's id, key and self link.
pub fn jira(email: &'static str, token: &'static str) -> Arc<Contract> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(1));
    Arc::new(move |r: &Received| {
        let want = format!("Basic {}", base64(format!("{email}:{token}").as_bytes()));
        if r.header("authorization") != Some(want.as_str()) {
            return Err("Authorization must be Basic base64(email:token)".into());
        }
        let path = r.path.split('?').next().unwrap_or("");
        match (r.method.as_str(), path) {
            ("GET", "/rest/api/2/search/jql" | "/rest/api/2/search") => {
                if !r.path.contains("jql=") {
                    return Err("search without jql".into());
                }
                Ok((
                    200,
                    serde_json::json!({"issues": [], "total": 0}).to_string(),
                ))
            }
            ("POST", "/rest/api/2/issue") => {
                if !r
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("application/json"))
                {
                    return Err("content-type must be application/json".into());
                }
                let f = &r.body["fields"];
                f["project"]["key"]
                    .as_str()
                    .filter(|k| !k.is_empty())
                    .ok_or("fields.project.key missing")?;
                f["issuetype"]["name"]
                    .as_str()
                    .ok_or("fields.issuetype.name missing")?;
                let summary = f["summary"].as_str().ok_or("fields.summary missing")?;
                if summary.is_empty() || summary.contains('\n') || summary.chars().count() > 255 {
                    return Err("fields.summary must be one line of 1..=255 characters".into());
                }
                if !f["description"].is_null() && !f["description"].is_string() {
                    return Err("fields.description must be a string in API v2".into());
                }
                if !f["priority"].is_null() && !f["priority"]["name"].is_string() {
                    return Err("fields.priority must be {\"name\": …}".into());
                }
                if let Some(labels) = f.get("labels") {
                    let ok = labels.as_array().is_some_and(|l| {
                        l.iter().all(|x| {
                            x.as_str()
                                .is_some_and(|s| !s.is_empty() && !s.contains(' '))
                        })
                    });
                    if !ok {
                        return Err("fields.labels must be strings without spaces".into());
                    }
                }
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let key = format!("{}-{n}", f["project"]["key"].as_str().unwrap_or(""));
                Ok((
                    201,
                    serde_json::json!({"id": (10_000 + n).to_string(), "key": key, "self": format!("http://jira.invalid/rest/api/2/issue/{}", 10_000 + n)}).to_string(),
                ))
            }
            (m, p) => Err(format!(
                "{m} {p} is not a Jira API route this contract knows"
            )),
        }
    })
}
