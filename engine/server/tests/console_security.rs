//! The console's security at the HTTP level, against the real binary in its secure mode
//! (`AIOPS_TEST_SECURE=1`: no anonymous role, a bootstrap admin token printed once):
//! - hostile label values, log lines and knowledge entry titles (`<script>…</script>`,
//!   `"onerror="…`) are printed as text by the pages, never as markup (the browser half of this,
//!   `window.__xss` staying undefined, is in `console_browser.rs`);
//! - a cookie-authenticated write from another origin, or without the session's CSRF token, is
//!   refused (403) and writes nothing; the sign-in and sign-out forms check theirs too;
//! - a viewer cannot open `/admin` nor call the admin API;
//! - a wrong TOTP code is refused and counted in `aiops_console_logins_total{result="bad_totp"}`;
//! - the session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, with a `Max-Age`; a new id
//!   is given at each sign-in step;
//! - sign-in attempts are rate-limited per user name (429 with `Retry-After`, even for the right
//!   password, until the window passes);
//! - without credentials the API is 401 and pages redirect to `/login`;
//! - signing out ends the session: the old cookie is refused afterwards;
//! - every console answer carries the strict Content-Security-Policy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::Aiops;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::Duration;

/// The policy every console answer must carry (docs/security.md).
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Hostile text: an element, and an attribute break-out.
const XSS_TAG: &str = "<script>window.__xss=1</script>";
const XSS_ATTR: &str = "\"onerror=\"window.__xss=1";

/// One HTTP answer.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Set-Cookie` header that sets `name`, whole.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .find(|v| v.starts_with(&format!("{name}=")))
    }

    /// The value `Set-Cookie` gives `name`.
    fn cookie_value(&self, name: &str) -> Option<String> {
        self.set_cookie(name).map(|c| {
            c[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or("")
                .to_string()
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::String(self.body.clone()))
    }
}

/// A raw HTTP/1.0 exchange with the engine (the answer ends when it closes), so every header
/// (`Cookie`, `Origin`, `X-CSRF-Token`) is exactly what the test says.
fn http(a: &Aiops, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut s = std::net::TcpStream::connect(a.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n",
        a.port,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

/// An API call with the bootstrap (or another) bearer token and a JSON body.
fn api(a: &Aiops, method: &str, path: &str, token: &str, body: Option<&Value>) -> Resp {
    let auth = format!("Bearer {token}");
    let b = body.map(Value::to_string).unwrap_or_default();
    http(
        a,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &b,
    )
}

/// `application/x-www-form-urlencoded` of `fields`.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The unix time of the wall clock: TOTP codes are computed from it, as an authenticator app
/// does (an edge, like the engine's own TOTP check).
#[allow(clippy::disallowed_methods)]
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The current code for a base32 secret, `steps_ahead` 30 s steps in the future (the engine
/// accepts ±1 step, and each step once: a second sign-in within 30 s uses the next step).
fn totp(secret_b32: &str, steps_ahead: u64) -> String {
    let secret = aiops_console::totp::base32_decode(secret_b32).expect("a base32 secret");
    format!(
        "{:06}",
        aiops_console::totp::code(&secret, unix_secs() + 30 * steps_ahead)
    )
}

/// The text of the element with `id`, else of the first `<dd class="mono">` (the enrol page's
/// base32 secret).
fn enrol_secret(html: &str) -> String {
    let at = html
        .find("id=\"totp-secret\"")
        .or_else(|| html.find("class=\"mono\""))
        .unwrap_or_else(|| panic!("no TOTP secret on the enrol page: {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].trim().to_string()
}

/// The `value` of the hidden input named `name`.
fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The session CSRF token a page carries in `<meta name="csrf-token">`.
fn meta_csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf-token\" content=\"")
        .unwrap_or_else(|| panic!("no csrf meta in {html}"));
    let rest = &html[at + 27..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The first step: `GET /login` then `POST /login` with user name and password. The answer of
/// the POST.
fn post_password(a: &Aiops, user: &str, password: &str) -> Resp {
    let page = http(a, "GET", "/login", &[], "");
    assert_eq!(page.status, 200);
    let login_cookie = page.cookie_value("aiops_login").expect("the login cookie");
    assert_eq!(hidden(&page.body, "csrf"), login_cookie, "double submit");
    http(
        a,
        "POST",
        "/login",
        &[
            ("Cookie", &format!("aiops_login={login_cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &a.base_url()),
        ],
        &form(&[
            ("username", user),
            ("password", password),
            ("csrf", &login_cookie),
            ("next", "/"),
        ]),
    )
}

/// A signed-in console session: the cookie value and the CSRF token of its pages.
#[derive(Debug, Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    fn cookie_header(&self) -> String {
        format!("aiops_session={}", self.cookie)
    }
}

/// Posts a TOTP form (`/login/enrol` or `/login/totp`) for the half-signed-in `cookie`.
fn post_code(a: &Aiops, path: &str, cookie: &str, csrf: &str, code: &str) -> Resp {
    http(
        a,
        "POST",
        path,
        &[
            ("Cookie", &format!("aiops_session={cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form(&[("code", code), ("csrf", csrf)]),
    )
}

/// Reads the session's CSRF token from the overview.
fn open_session(a: &Aiops, cookie: String) -> Session {
    let home = http(
        a,
        "GET",
        "/",
        &[("Cookie", &format!("aiops_session={cookie}"))],
        "",
    );
    assert_eq!(home.status, 200, "the overview for a signed-in user");
    Session {
        csrf: meta_csrf(&home.body),
        cookie,
    }
}

/// Signs a new user in: password, then enrols TOTP from the enrol page's secret. The session
/// and the base32 secret.
fn sign_in_new(a: &Aiops, user: &str, password: &str) -> (Session, String) {
    let r = post_password(a, user, password);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/login/enrol"));
    let half = r.cookie_value("aiops_session").unwrap();
    let page = http(
        a,
        "GET",
        "/login/enrol",
        &[("Cookie", &format!("aiops_session={half}"))],
        "",
    );
    assert_eq!(page.status, 200);
    let secret = enrol_secret(&page.body);
    let csrf = hidden(&page.body, "csrf");
    let r = post_code(a, "/login/enrol", &half, &csrf, &totp(&secret, 0));
    assert_eq!(r.status, 303, "{}", r.body);
    let full = r.cookie_value("aiops_session").unwrap();
    assert_ne!(full, half, "a new session id once signed in");
    (open_session(a, full), secret)
}

/// The bootstrap admin token the secure engine printed on stderr.
fn bootstrap_token(a: &Aiops) -> String {
    std::fs::read_to_string(&a.stderr)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("aiops_") && l.len() > 40)
        .expect("the secure engine prints a bootstrap admin token")
        .to_string()
}

/// A secure engine (no anonymous role) with extra environment.
fn secure(dir: &std::path::Path, env: &[(&str, &str)]) -> (Aiops, String) {
    let mut all = vec![("AIOPS_TEST_SECURE", "1")];
    all.extend_from_slice(env);
    let a = Aiops::start_env(
        &dir.join("data"),
        "embedded",
        aiops_testkit::free_port(),
        &[],
        &all,
    );
    let token = bootstrap_token(&a);
    (a, token)
}

fn create_user(a: &Aiops, admin: &str, name: &str, role: &str, password: &str) {
    let r = api(
        a,
        "POST",
        "/api/console/users",
        admin,
        Some(&json!({"name": name, "role": role, "password": password})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// `aiops_console_logins_total{result="<result>"}` (`/metrics` needs a token in the secure
/// mode).
fn logins(a: &Aiops, admin: &str, result: &str) -> f64 {
    let m = api(a, "GET", "/metrics", admin, None);
    m.body
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "aiops_console_logins_total{{result=\"{result}\"}}"
            ))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {result} line in /metrics (status {})", m.status))
}

/// Whether `html` shows `payload` escaped and never raw.
fn assert_text_only(html: &str, payload: &str, page: &str) {
    assert!(
        !html.contains(payload),
        "{page} printed the hostile text as markup: {payload}"
    );
}

#[test]
fn hostile_labels_log_lines_and_titles_render_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let (a, admin) = secure(dir.path(), &[]);
    // An alert whose label values and annotation carry both payloads.
    let alerts = json!([{
        "labels": {"alertname": "XssProbe", "service": XSS_TAG, "instance": XSS_ATTR},
        "annotations": {"summary": format!("{XSS_TAG} {XSS_ATTR}")},
    }]);
    let r = api(&a, "POST", "/api/v2/alerts", &admin, Some(&alerts));
    assert!(r.status < 300, "alert ingest: {} {}", r.status, r.body);
    // Log lines with the payloads in the body and a label.
    let logs = format!(
        "{}\n{}\n",
        json!({"severity": "error", "body": format!("xssprobe {XSS_TAG}"),
               "labels": {"service": "xssprobe", "pod": XSS_ATTR}}),
        json!({"severity": "error", "body": format!("xssprobe {XSS_ATTR}"),
               "labels": {"service": "xssprobe"}}),
    );
    let auth = format!("Bearer {admin}");
    let r = http(
        &a,
        "POST",
        "/api/ingest/logs",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-ndjson"),
        ],
        &logs,
    );
    assert!(r.status < 300, "log ingest: {} {}", r.status, r.body);
    // A knowledge entry whose title is hostile.
    let entry = json!({"entry": {"id": "xss/probe", "title": format!("{XSS_TAG} {XSS_ATTR}"),
        "body": format!("# Probe\n\n{XSS_TAG}\n\n{XSS_ATTR}\n"), "tags": ["xssprobe"]}});
    let r = api(&a, "POST", "/api/knowledge/update", &admin, Some(&entry));
    assert_eq!(r.status, 200, "{}", r.body);

    // The pages, read with the admin token as a script would (the page fetches the API with it).
    let page = |path: &str| {
        let r = http(&a, "GET", path, &[("Authorization", &auth)], "");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.body
    };
    for path in [
        "/alerts",
        "/logs?q=xssprobe&range=24h",
        "/knowledge",
        "/knowledge/entry?id=xss/probe",
    ] {
        // Printed, escaped: the text is there for a person to read (once ingested and indexed).
        common::wait_until(
            Duration::from_secs(20),
            &format!("{path} showing the hostile text"),
            || page(path).contains("&lt;script&gt;window.__xss=1"),
        );
        let html = page(path);
        assert_text_only(&html, XSS_TAG, path);
        assert_text_only(&html, XSS_ATTR, path);
        assert_eq!(
            http(&a, "GET", path, &[("Authorization", &auth)], "")
                .header("content-security-policy"),
            Some(CSP),
            "{path}"
        );
    }
}

#[test]
fn csrf_roles_cookies_and_sign_out() {
    let dir = tempfile::tempdir().unwrap();
    let (a, admin) = secure(dir.path(), &[]);
    create_user(&a, &admin, "olga", "operator", "olga-password-123");
    create_user(&a, &admin, "vic", "viewer", "vic-password-1234");

    // No credentials: the API says 401, pages send the browser to the sign-in page.
    let r = http(&a, "GET", "/api/incidents", &[], "");
    assert_eq!(r.status, 401, "{}", r.body);
    for page in ["/", "/alerts", "/admin"] {
        let r = http(&a, "GET", page, &[], "");
        assert_eq!(r.status, 303, "{page}");
        assert_eq!(
            r.header("location"),
            Some(format!("/login?next={}", enc(page)).as_str()),
            "{page}"
        );
        assert_eq!(r.header("content-security-policy"), Some(CSP), "{page}");
    }
    for path in ["/login", "/console/app.js", "/console/app.css"] {
        let r = http(&a, "GET", path, &[], "");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-security-policy"), Some(CSP), "{path}");
    }

    // The session cookie's flags, at each step of the sign-in.
    let r = post_password(&a, "olga", "olga-password-123");
    {
        let c = r.set_cookie("aiops_session").unwrap();
        let flags: Vec<&str> = c.split(';').map(str::trim).collect();
        assert!(flags.contains(&"HttpOnly"), "{c}");
        assert!(flags.contains(&"SameSite=Strict"), "{c}");
        assert!(flags.contains(&"Path=/"), "{c}");
        let max_age: u64 = flags
            .iter()
            .find_map(|f| f.strip_prefix("Max-Age="))
            .unwrap_or_else(|| panic!("no Max-Age: {c}"))
            .parse()
            .unwrap();
        assert!(max_age > 0 && max_age <= 7 * 24 * 3600, "{c}");
    }
    let half = r.cookie_value("aiops_session").unwrap();
    // Half-way (password only): the API and the pages do not take the cookie yet.
    let r = http(
        &a,
        "GET",
        "/api/incidents",
        &[("Cookie", &format!("aiops_session={half}"))],
        "",
    );
    assert_eq!(r.status, 401, "a password alone is not a session");
    let (olga, _secret) = {
        let page = http(
            &a,
            "GET",
            "/login/enrol",
            &[("Cookie", &format!("aiops_session={half}"))],
            "",
        );
        let secret = enrol_secret(&page.body);
        let csrf = hidden(&page.body, "csrf");
        let r = post_code(&a, "/login/enrol", &half, &csrf, &totp(&secret, 0));
        assert_eq!(r.status, 303);
        let c = r.set_cookie("aiops_session").unwrap().to_string();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Max-Age="));
        (
            open_session(&a, r.cookie_value("aiops_session").unwrap()),
            secret,
        )
    };
    // The old half-way cookie is gone with the new id.
    let r = http(
        &a,
        "GET",
        "/",
        &[("Cookie", &format!("aiops_session={half}"))],
        "",
    );
    assert_eq!(r.status, 303, "the pre-TOTP cookie is not the session");

    // CSRF: a cookie-authenticated write needs the session's token and this listener's origin.
    let silences = |s: &Session| {
        let r = http(
            &a,
            "GET",
            "/api/v2/silences",
            &[("Cookie", &s.cookie_header())],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_array().unwrap().len()
    };
    let before = silences(&olga);
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "CsrfProbe", "isRegex": false, "isEqual": true}],
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "olga", "comment": "csrf probe"
    })
    .to_string();
    let cookie = olga.cookie_header();
    let evil = [
        // A cross-site form: cookie only, form-encoded.
        vec![
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
        // No token.
        vec![
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/json"),
        ],
        // A wrong token.
        vec![
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", "0123456789abcdef"),
        ],
        // The right token from another origin.
        vec![
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", olga.csrf.as_str()),
            ("Origin", "http://evil.example"),
        ],
    ];
    for headers in &evil {
        let r = http(&a, "POST", "/api/v2/silences", headers, &silence);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
        assert_eq!(r.json()["reason"], "csrf", "{}", r.body);
    }
    assert_eq!(
        silences(&olga),
        before,
        "nothing written by a refused request"
    );
    // The same request from the console (token, same origin) is taken.
    let origin = a.base_url();
    let r = http(
        &a,
        "POST",
        "/api/v2/silences",
        &[
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", olga.csrf.as_str()),
            ("Origin", origin.as_str()),
        ],
        &silence,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(silences(&olga), before + 1);
    // The sign-in form from another site is refused too, and counted.
    let bad_csrf = logins(&a, &admin, "bad_csrf");
    let page = http(&a, "GET", "/login", &[], "");
    let lc = page.cookie_value("aiops_login").unwrap();
    let r = http(
        &a,
        "POST",
        "/login",
        &[
            ("Cookie", &format!("aiops_login={lc}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
        &form(&[
            ("username", "olga"),
            ("password", "olga-password-123"),
            ("csrf", &lc),
        ]),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.set_cookie("aiops_session").is_none());
    // Without the login cookie (another site cannot read it): refused.
    let r = http(
        &a,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&[
            ("username", "olga"),
            ("password", "olga-password-123"),
            ("csrf", &lc),
        ]),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(logins(&a, &admin, "bad_csrf") >= bad_csrf + 2.0);

    // A viewer: no admin page (403 page, not in the navigation), no admin API.
    let (vic, _) = sign_in_new(&a, "vic", "vic-password-1234");
    let r = http(&a, "GET", "/admin", &[("Cookie", &vic.cookie_header())], "");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("403"), "{}", r.body);
    assert_eq!(r.header("content-security-policy"), Some(CSP));
    let home = http(&a, "GET", "/", &[("Cookie", &vic.cookie_header())], "");
    assert!(
        !home.body.contains("href=\"/admin\""),
        "no admin link for a viewer"
    );
    let viewer_write = |method: &str, path: &str, body: &str| {
        http(
            &a,
            method,
            path,
            &[
                ("Cookie", &vic.cookie_header()),
                ("Content-Type", "application/json"),
                ("X-CSRF-Token", &vic.csrf),
                ("Origin", &origin),
            ],
            body,
        )
    };
    let r = viewer_write(
        "POST",
        "/api/console/users",
        &json!({"name": "mallory", "role": "admin", "password": "mallory-password-1"}).to_string(),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = viewer_write(
        "POST",
        "/api/tokens",
        &json!({"name": "x", "role": "admin"}).to_string(),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = viewer_write("DELETE", "/api/console/users/olga", "");
    assert_eq!(r.status, 403, "{}", r.body);
    let r = viewer_write("POST", "/api/v2/silences", &silence);
    assert_eq!(r.status, 403, "a viewer cannot silence: {}", r.body);
    for path in ["/api/tokens", "/api/console/users"] {
        let r = http(&a, "GET", path, &[("Cookie", &vic.cookie_header())], "");
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let users = api(&a, "GET", "/api/console/users", &admin, None).json();
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "nothing created by the viewer: {users}");
    assert!(names.contains(&"olga") && names.contains(&"vic"), "{users}");

    // Sign-out: a cross-site sign-out is refused; the console's ends the session for good.
    let r = http(
        &a,
        "POST",
        "/logout",
        &[
            ("Cookie", &olga.cookie_header()),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
        &form(&[("csrf", &olga.csrf)]),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = http(
        &a,
        "GET",
        "/api/incidents",
        &[("Cookie", &olga.cookie_header())],
        "",
    );
    assert_eq!(r.status, 200, "still signed in after a refused sign-out");
    let r = http(
        &a,
        "POST",
        "/logout",
        &[
            ("Cookie", &olga.cookie_header()),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &origin),
        ],
        &form(&[("csrf", &olga.csrf)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/login"));
    let cleared = r.set_cookie("aiops_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie, replayed: refused by the API and the pages.
    let r = http(
        &a,
        "GET",
        "/api/incidents",
        &[("Cookie", &olga.cookie_header())],
        "",
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = http(&a, "GET", "/", &[("Cookie", &olga.cookie_header())], "");
    assert_eq!(r.status, 303);
    let r = http(
        &a,
        "POST",
        "/api/v2/silences",
        &[
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/json"),
            ("X-CSRF-Token", olga.csrf.as_str()),
            ("Origin", origin.as_str()),
        ],
        &silence,
    );
    assert_eq!(r.status, 401, "{}", r.body);
    // The viewer's session is untouched by olga's sign-out.
    let r = http(
        &a,
        "GET",
        "/api/incidents",
        &[("Cookie", &vic.cookie_header())],
        "",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn wrong_totp_codes_are_refused_and_counted_and_sign_in_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    // Ten attempts at once per user name, then one every 10 s: a window short enough to wait
    // out in a test.
    let (a, admin) = secure(
        dir.path(),
        &[
            ("AIOPS__CONSOLE__LOGIN_PER_MINUTE", "6"),
            ("AIOPS__CONSOLE__LOGIN_BURST", "10"),
        ],
    );
    create_user(&a, &admin, "tess", "operator", "tess-password-123");
    create_user(&a, &admin, "rudy", "operator", "rudy-password-123");

    // Enrolment: a wrong code is refused (and counted), the right one signs in.
    let bad0 = logins(&a, &admin, "bad_totp");
    let r = post_password(&a, "tess", "tess-password-123");
    assert_eq!(r.status, 303);
    let half = r.cookie_value("aiops_session").unwrap();
    let page = http(
        &a,
        "GET",
        "/login/enrol",
        &[("Cookie", &format!("aiops_session={half}"))],
        "",
    );
    let secret = enrol_secret(&page.body);
    let csrf = hidden(&page.body, "csrf");
    let right = totp(&secret, 0);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let r = post_code(&a, "/login/enrol", &half, &csrf, &wrong);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.set_cookie("aiops_session").is_none());
    assert_eq!(logins(&a, &admin, "bad_totp"), bad0 + 1.0);
    let r = post_code(&a, "/login/enrol", &half, &csrf, &right);
    assert_eq!(r.status, 303, "{}", r.body);
    let tess = open_session(&a, r.cookie_value("aiops_session").unwrap());
    let r = http(
        &a,
        "POST",
        "/logout",
        &[
            ("Cookie", &tess.cookie_header()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form(&[("csrf", &tess.csrf)]),
    );
    assert_eq!(r.status, 303);

    // An enrolled user: a wrong code is refused, counted, and shown to the admin; the code
    // just used cannot be used again; the next one works.
    let r = post_password(&a, "tess", "tess-password-123");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/login/totp"));
    let half = r.cookie_value("aiops_session").unwrap();
    let page = http(
        &a,
        "GET",
        "/login/totp",
        &[("Cookie", &format!("aiops_session={half}"))],
        "",
    );
    let csrf = hidden(&page.body, "csrf");
    let bad1 = logins(&a, &admin, "bad_totp");
    let r = post_code(&a, "/login/totp", &half, &csrf, &wrong);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post_code(&a, "/login/totp", &half, &csrf, &right);
    assert_eq!(r.status, 401, "a code is good once: {}", r.body);
    assert_eq!(logins(&a, &admin, "bad_totp"), bad1 + 2.0);
    let users = api(&a, "GET", "/api/console/users", &admin, None).json();
    let t = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "tess")
        .unwrap()
        .clone();
    assert_eq!(t["failed_totp"], 2, "{t}");
    assert_eq!(t["enrolled"], true, "{t}");
    let r = post_code(&a, "/login/totp", &half, &csrf, &totp(&secret, 1));
    assert_eq!(r.status, 303, "{}", r.body);

    // Rate limit: wrong passwords until 429; then the right one is refused as well, with
    // Retry-After, and counted; once the window passes it is taken.
    let ok0 = logins(&a, &admin, "ok");
    let limited0 = logins(&a, &admin, "rate_limited");
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..14 {
        let r = post_password(&a, "rudy", "wrong-password-999");
        statuses.push(r.status);
        if r.status == 429 {
            last = Some(r);
            break;
        }
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let limited = last.unwrap_or_else(|| panic!("never rate-limited: {statuses:?}"));
    assert!(
        (11..=12).contains(&statuses.len()),
        "a burst of 10: {statuses:?}"
    );
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert!(limited.body.contains("too many"), "{}", limited.body);
    let r = post_password(&a, "rudy", "rudy-password-123");
    assert_eq!(r.status, 429, "the right password is refused while limited");
    assert!(r.set_cookie("aiops_session").is_none());
    assert!(logins(&a, &admin, "rate_limited") >= limited0 + 2.0);
    // Another user name is not held back by rudy's window.
    let r = post_password(&a, "tess", "tess-password-123");
    assert_eq!(r.status, 303, "{}", r.body);
    std::thread::sleep(Duration::from_secs(retry) + Duration::from_millis(200));
    let r = post_password(&a, "rudy", "rudy-password-123");
    assert_eq!(r.status, 303, "after the window: {}", r.body);
    assert_eq!(r.header("location"), Some("/login/enrol"));
    assert_eq!(
        logins(&a, &admin, "ok"),
        ok0,
        "a password alone is not a sign-in"
    );
}
