//! The console in a real browser: Debian's `chromium`, driven through `chromedriver` by the test
//! kit's WebDriver client, against the real binary with the demo (`--demo`, its history
//! backfilled) in the secure mode (no anonymous role).
//!
//! A console user is created with the bootstrap admin token, signs in through the login form,
//! enrols TOTP from the enrol page (the code computed from the secret it shows, as an app would),
//! and then every page of the navigation, an incident, a deploy, a knowledge entry, a workflow
//! and an execution page are opened: each loads with no browser console error (a CSP violation,
//! a failed load or a script error is `SEVERE`), requests nothing but the aiops listener, and is
//! written as a screenshot to `target/console-screenshots/<page>.png`.
//!
//! Hostile label values, log lines and an entry title (`<script>…`, `"onerror=…`) are shown as
//! text: `window.__xss` stays undefined and the page's text contains the payload.
//!
//! Real actions, end to end through the console's own forms and buttons:
//! - a silence created on the alerts page is listed by the real `amtool silence query`;
//! - an incident acknowledged on its page is acknowledged in `GET /api/incidents/{id}`;
//! - a workflow step waiting for approval, approved on its execution page, reaches the loopback
//!   receiver;
//! - a SQL alert rule with an error is refused with the error at its line, and nothing is written
//!   (`GET /api/alerts/rules` unchanged).
//!
//! A missing chromium or chromedriver fails the test (scripts/install-test-deps.sh installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use aiops_testkit::webdriver::Browser;
use aiops_testkit::{AiopsCommand, AiopsProcess};
use common::recorder::{Recorder, pagerduty};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PD_KEY: &str = "R0UT1NGKEYsecretvalue0123456789a";
const PASSWORD: &str = "ann-console-password-1";

/// Hostile text: an element, and an attribute break-out.
const XSS_TAG: &str = "<script>window.__xss=1</script>";
const XSS_ATTR: &str = "\"onerror=\"window.__xss=1";

/// A manual workflow whose only step waits for an approval by a user with role `sre`.
const DRAIN: &str = r#"
workflow:
  id: drain
  description: Drain a node (asks an SRE first)
  triggers: [{type: manual}]
  actions:
    - name: page-oncall
      approval: {required: true, role: sre, timeout: 1h}
      provider:
        type: pagerduty
        config: pd
        with:
          summary: "drain {{ inputs.node }}"
          source: "{{ inputs.node }}"
          severity: warning
"#;

/// The configuration: the workflow, its provider pointing at the loopback receiver, and the
/// workflow user `ann` (role `sre`) — the console user of the same name approves as her.
fn config(dir: &Path, rec: &Recorder) -> PathBuf {
    let wdir = dir.join("workflows");
    std::fs::create_dir_all(&wdir).unwrap();
    std::fs::write(wdir.join("drain.yaml"), DRAIN).unwrap();
    let toml = dir.join("aiops.toml");
    std::fs::write(
        &toml,
        format!(
            r#"[workflows]
dir = {wdir:?}
autoheal_dir = {ah:?}
outbound_allow = ["127.0.0.1"]
tick_interval = "100ms"

[workflows.secrets]
PD_KEY = {{ env = "TEST_PD_KEY" }}
ANN = {{ env = "TEST_ANN_TOKEN" }}

[workflows.users.ann]
token_secret = "ANN"
roles = ["sre", "operator"]

[workflows.providers.pd]
kind = "pagerduty"
routing_key = "{{{{ secrets.PD_KEY }}}}"
url = "{url}"
"#,
            wdir = wdir.to_str().unwrap(),
            ah = dir.join("autoheal").to_str().unwrap(),
            url = rec.url("/v2/enqueue"),
        ),
    )
    .unwrap();
    toml
}

/// `curl` with the admin token: (status, JSON or text).
fn api(
    a: &AiopsProcess,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg("-H")
        .arg(format!("authorization: Bearer {token}"));
    if let Some(b) = body {
        // Several lines of JSON are NDJSON.
        let ct = if b.trim_end().contains('\n') {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        cmd.arg("-H")
            .arg(format!("content-type: {ct}"))
            .arg("--data-binary")
            .arg(b);
    }
    let out = cmd.arg(a.url(path)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

/// Copies a folder tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `aiops token create` on the (not yet running) engine's data dir: the token.
fn token_create(data: &Path, name: &str, role: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args([
            "token", "create", "--name", name, "--role", role, "--log", "embedded",
        ])
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("aiops_"), "{token}");
    token
}

/// The wall clock's unix time: the TOTP code is computed from it, as an authenticator app does.
#[allow(clippy::disallowed_methods)]
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Where the screenshots go: `target/console-screenshots`.
fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("console-screenshots")
}

/// A file name for a page path: `/` → `overview`, `/logs/templates` → `logs-templates`.
fn shot_name(path: &str) -> String {
    let p = path.split('?').next().unwrap_or(path).trim_matches('/');
    if p.is_empty() {
        "overview".into()
    } else {
        p.replace('/', "-")
    }
}

/// The wait for anything the console or the engine does after a click.
const ACT: Duration = Duration::from_secs(20);

/// Everything the browser logged and requested since the last look must be clean: no `SEVERE`
/// console entry, no request outside the aiops listener.
fn assert_clean(b: &Browser, base: &str, what: &str) {
    assert_clean_but(b, base, what, None);
}

/// As [`assert_clean`], except the one failed load an action expects (`expected` is part of the
/// entry's message, e.g. the refused API call's URL and status).
fn assert_clean_but(b: &Browser, base: &str, what: &str, expected: Option<&str>) {
    let log = b.console_log().unwrap();
    let severe: Vec<_> = log
        .iter()
        .filter(|e| e.is_severe())
        .filter(|e| !expected.is_some_and(|x| e.source == "network" && e.message.contains(x)))
        .collect();
    assert!(
        severe.is_empty(),
        "{what}: browser console errors: {severe:#?}"
    );
    let urls = b.requested_urls().unwrap();
    let foreign: Vec<&String> = urls
        .iter()
        .filter(|u| !u.starts_with(&format!("{base}/")) && u.as_str() != base)
        .collect();
    assert!(
        foreign.is_empty(),
        "{what}: requests outside the aiops listener: {foreign:?}"
    );
}

/// Opens `path`, checks it is a console page (not an error page or a raw error), clean, and
/// free of injected script, and writes its screenshot.
fn visit(b: &Browser, base: &str, path: &str, name: &str) {
    b.goto(&format!("{base}{path}")).unwrap();
    b.wait_for_element("main#main", Duration::from_secs(10))
        .unwrap_or_else(|e| {
            panic!(
                "{path} is not a console page: {e}\n{}",
                b.page_source().unwrap_or_default()
            )
        });
    let h1 = b
        .execute(
            "const h = document.querySelector('h1'); return h ? h.textContent : '';",
            &[],
        )
        .unwrap();
    let h1 = h1.as_str().unwrap_or("");
    assert!(
        !h1.contains("Error") && !h1.contains("错误"),
        "{path} shows an error page: {h1}"
    );
    let url = b.current_url().unwrap();
    assert!(
        !url.contains("/login"),
        "{path} sent the signed-in user to {url}"
    );
    // The page's own requests (stylesheet, script) are done once the document is complete.
    b.wait_for(ACT, "the page's load to complete", |b| {
        Ok((b.execute("return document.readyState;", &[])? == "complete").then_some(()))
    })
    .unwrap();
    assert_clean(b, base, path);
    assert_eq!(
        b.execute("return typeof window.__xss;", &[]).unwrap(),
        "undefined",
        "{path}: injected script ran"
    );
    let file = screenshot_dir().join(format!("{name}.png"));
    b.save_screenshot(&file).unwrap();
}

/// The visible text of the page.
fn page_text(b: &Browser) -> String {
    b.execute("return document.body.innerText;", &[])
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Writes `amtool`'s HTTP client file with the bearer token (Prometheus' http_config format).
fn amtool_http_config(dir: &Path, token: &str) -> PathBuf {
    let p = dir.join("amtool-http.yml");
    std::fs::write(&p, format!("authorization:\n  credentials: {token}\n")).unwrap();
    p
}

fn amtool(args: &[&str]) -> String {
    let bin = aiops_testkit::require_binary("amtool").unwrap();
    let out = std::process::Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "amtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Types into a field after emptying it.
fn fill(b: &Browser, css: &str, text: &str) {
    let e = b.find(css).unwrap();
    e.clear().unwrap();
    e.send_keys(text).unwrap();
}

/// Opens a `<details>` (a collapsed form) unless it is open.
fn open_details(b: &Browser, css: &str) {
    let d = b.find(css).unwrap();
    if d.attribute("open").unwrap().is_none() {
        d.find("summary").unwrap().click().unwrap();
    }
}

#[test]
fn the_console_in_chromium_every_page_and_real_actions() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rec = Recorder::start(pagerduty(PD_KEY));
    let cfg = config(dir, &rec);
    let data = dir.join("data");
    let work = dir.join("work");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines"),
        &work.join("pipelines"),
    );
    // API tokens made before the start (so none is printed): the admin's, and ann's. With
    // workflow users configured, running a workflow takes a bearer token that is both a valid
    // API token (operator) and a workflow user's; ann's is both.
    let admin = token_create(&data, "admin", "admin");
    let ann_token = token_create(&data, "ann", "operator");
    let a = AiopsCommand::new(env!("CARGO_BIN_EXE_aiops"), &data)
        .log("embedded")
        .config_file(&cfg)
        .args(["--demo", "--demo-backfill", "3h"])
        // In a copy of the shipped pipelines and alerting configuration, found relative to the
        // working directory as when the README's command runs from the repository's root: a
        // rule the console saved would be written there, never into the repository.
        .current_dir(&work)
        .env("AIOPS_TEST_SECURE", "1")
        .env("TEST_PD_KEY", PD_KEY)
        .env("TEST_ANN_TOKEN", &ann_token)
        .ready_timeout(Duration::from_secs(90))
        .spawn()
        .unwrap_or_else(|e| panic!("aiops did not become healthy: {e}"));
    let base = a.base_url();
    eprintln!("engine up after {:?}", started.elapsed());

    // The console user (admin: every page is in the navigation).
    let (s, v) = api(
        &a,
        "POST",
        "/api/console/users",
        &admin,
        Some(&json!({"name": "ann", "role": "admin", "password": PASSWORD}).to_string()),
    );
    assert_eq!(s, 201, "{v}");

    // Hostile text in an alert's labels, log lines and a knowledge entry's title.
    let (s, v) = api(
        &a,
        "POST",
        "/api/v2/alerts",
        &admin,
        Some(
            &json!([{
                "labels": {"alertname": "XssProbe", "service": XSS_TAG, "instance": XSS_ATTR},
                "annotations": {"summary": format!("{XSS_TAG} {XSS_ATTR}")},
            }])
            .to_string(),
        ),
    );
    assert!(s < 300, "{s} {v}");
    let logs = format!(
        "{}\n{}\n",
        json!({"severity": "error", "body": format!("xssprobe {XSS_TAG}"),
               "labels": {"service": "xssprobe", "pod": XSS_ATTR}}),
        json!({"severity": "error", "body": format!("xssprobe {XSS_ATTR}"),
               "labels": {"service": "xssprobe"}}),
    );
    let (s, v) = api(&a, "POST", "/api/ingest/logs", &admin, Some(&logs));
    assert!(s < 300, "{s} {v}");
    let entry = json!({"entry": {"id": "xss/probe", "title": format!("{XSS_TAG} {XSS_ATTR}"),
        "body": format!("# Probe\n\n{XSS_TAG}\n\n{XSS_ATTR}\n"), "tags": ["xssprobe"]}});
    let (s, v) = api(
        &a,
        "POST",
        "/api/knowledge/update",
        &admin,
        Some(&entry.to_string()),
    );
    assert_eq!(s, 200, "{v}");

    // A firing alert: its incident is the one acknowledged from the console.
    let (s, v) = api(
        &a,
        "POST",
        "/api/v2/alerts",
        &admin,
        Some(
            &json!([{
                "labels": {"alertname": "AckProbe", "service": "checkout", "severity": "critical"},
                "annotations": {"summary": "acknowledged from the console"},
            }])
            .to_string(),
        ),
    );
    assert!(s < 300, "{s} {v}");

    // A workflow execution waiting for ann's approval.
    let (s, v) = api(
        &a,
        "POST",
        "/api/workflows/drain/execute",
        &ann_token,
        Some(r#"{"node":"n7"}"#),
    );
    assert_eq!(s, 202, "{v}");
    let exec = v["execution"].as_str().unwrap().to_string();

    // Sign in through the form: password, then TOTP enrolment from the page's secret.
    let b = Browser::start().expect("Debian's chromium and chromium-driver");
    b.goto(&format!("{base}/")).unwrap();
    let url = b.current_url().unwrap();
    assert_eq!(
        url,
        format!("{base}/login?next=%2F"),
        "not signed in: the sign-in page"
    );
    assert_clean(&b, &base, "/login");
    b.save_screenshot(&screenshot_dir().join("login.png"))
        .unwrap();
    fill(&b, "#login-username", "ann");
    fill(&b, "#login-password", PASSWORD);
    b.find("form[action='/login'] button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    b.wait_for(ACT, "the enrol page", |b| {
        Ok(b.current_url()?.ends_with("/login/enrol").then_some(()))
    })
    .unwrap();
    assert_clean(&b, &base, "/login/enrol");
    assert!(b.find(".qr svg").is_ok(), "the enrol page shows a QR code");
    b.save_screenshot(&screenshot_dir().join("enrol.png"))
        .unwrap();
    let secret = b.find("#totp-secret, .kv dd.mono").unwrap().text().unwrap();
    let key = aiops_console::totp::base32_decode(secret.trim())
        .unwrap_or_else(|| panic!("the enrol page's secret is base32: {secret:?}"));
    let code = format!("{:06}", aiops_console::totp::code(&key, unix_secs()));
    fill(&b, "#enrol-code", &code);
    b.find("form[action='/login/enrol'] button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    b.wait_for(ACT, "the overview after sign-in", |b| {
        Ok((b.current_url()? == format!("{base}/")).then_some(()))
    })
    .unwrap();
    // The session cookie: HttpOnly (no script sees it), SameSite=Strict, with an expiry.
    let c = b
        .cookie("aiops_session")
        .unwrap()
        .expect("a session cookie");
    assert_eq!(c["httpOnly"], true, "{c}");
    assert_eq!(c["sameSite"], "Strict", "{c}");
    assert!(c["expiry"].as_u64().unwrap_or(0) > unix_secs(), "{c}");
    let visible = b.execute("return document.cookie;", &[]).unwrap();
    assert!(
        !visible.as_str().unwrap_or("").contains("aiops_session"),
        "{visible}"
    );
    assert_eq!(
        b.find(".topbar .user")
            .unwrap()
            .text()
            .unwrap()
            .split_whitespace()
            .next(),
        Some("ann")
    );
    eprintln!("signed in after {:?}", started.elapsed());

    // Every page of the navigation.
    let nav = b
        .execute(
            "return Array.from(document.querySelectorAll('nav.side a')).map(a => a.getAttribute('href'));",
            &[],
        )
        .unwrap();
    let nav: Vec<String> = nav
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for expected in [
        "/",
        "/alerts",
        "/incidents",
        "/logs",
        "/deploys",
        "/knowledge",
        "/admin",
    ] {
        assert!(
            nav.iter().any(|p| p == expected),
            "{expected} in the navigation: {nav:?}"
        );
    }
    for path in &nav {
        visit(&b, &base, path, &shot_name(path));
    }
    eprintln!(
        "{} navigation pages after {:?}",
        nav.len(),
        started.elapsed()
    );

    // Pages reached from lists: an incident, a deploy, an entry, a workflow, an execution.
    let open = b
        .wait_for(Duration::from_secs(60), "the AckProbe incident", |_| {
            let (_, v) = api(&a, "GET", "/api/incidents?status=open", &admin, None);
            Ok(v["incidents"].as_array().and_then(|l| {
                l.iter()
                    .find(|i| i["status"] == "open" && i["title"] == "AckProbe on checkout")
                    .cloned()
            }))
        })
        .unwrap();
    let incident = open["id"].as_str().unwrap().to_string();
    let (_, v) = api(&a, "GET", "/api/deploys?limit=5", &admin, None);
    let deploy = v["deploys"]
        .as_array()
        .and_then(|d| d.first())
        .and_then(|d| d["id"].as_str())
        .map(str::to_string);
    let deploy = match deploy {
        Some(d) => d,
        None => {
            let (s, v) = api(
                &a,
                "POST",
                "/api/deploy",
                &admin,
                Some(
                    &json!({"id": "console-probe", "service": "checkout", "version": "v2",
                            "previous_version": "v1", "status": "succeeded"})
                    .to_string(),
                ),
            );
            assert!(s < 300, "{s} {v}");
            "console-probe".to_string()
        }
    };
    for (path, name) in [
        (format!("/incidents/{incident}"), "incident".to_string()),
        (format!("/deploys/{deploy}"), "deploy".to_string()),
        (
            "/knowledge/entry?id=xss/probe".to_string(),
            "entry".to_string(),
        ),
        ("/workflows/drain".to_string(), "workflow".to_string()),
        (format!("/executions/{exec}"), "execution".to_string()),
    ] {
        visit(&b, &base, &path, &name);
    }

    // Hostile text is text: present on the page, never run.
    for path in [
        "/alerts",
        "/logs?q=xssprobe&range=24h",
        "/knowledge",
        "/knowledge/entry?id=xss/probe",
    ] {
        b.goto(&format!("{base}{path}")).unwrap();
        let text = b
            .wait_for(ACT, &format!("the payload shown on {path}"), |b| {
                let t = page_text(b);
                Ok(t.contains(XSS_TAG).then_some(t))
            })
            .unwrap();
        assert!(text.contains("window.__xss=1"), "{path}");
        assert_eq!(
            b.execute("return typeof window.__xss;", &[]).unwrap(),
            "undefined",
            "{path}: injected script ran"
        );
        assert_clean(&b, &base, path);
    }

    // 1. Silence an alert from the console; amtool lists it.
    b.goto(&format!("{base}/alerts")).unwrap();
    open_details(&b, "#silence-form");
    fill(
        &b,
        "#silence-matchers",
        "alertname=\"ConsoleProbe\", service=\"checkout\"",
    );
    fill(&b, "#silence-comment", "silenced from the console");
    b.find("#silence-form button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    let http_cfg = amtool_http_config(dir, &admin);
    let am = [
        format!("--alertmanager.url={base}"),
        format!("--http.config.file={}", http_cfg.display()),
    ];
    let listed = b
        .wait_for(ACT, "amtool lists the console's silence", |_| {
            let out = amtool(&["silence", "query", &am[0], &am[1], "-o", "json"]);
            let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
            Ok(v.as_array().and_then(|a| {
                a.iter()
                    .find(|s| s["comment"] == "silenced from the console")
                    .cloned()
            }))
        })
        .unwrap();
    assert_eq!(listed["createdBy"], "ann", "{listed}");
    assert_eq!(listed["status"]["state"], "active", "{listed}");
    let matchers = listed["matchers"].as_array().unwrap();
    assert!(
        matchers
            .iter()
            .any(|m| m["name"] == "alertname" && m["value"] == "ConsoleProbe"),
        "{listed}"
    );
    let text = amtool(&["silence", "query", &am[0], &am[1], "alertname=ConsoleProbe"]);
    assert!(text.contains("silenced from the console"), "{text}");
    assert_clean(&b, &base, "silence");

    // 2. Acknowledge an incident from its page.
    b.goto(&format!("{base}/incidents/{incident}")).unwrap();
    b.find(".api-action[data-url$='/ack']")
        .unwrap()
        .click()
        .unwrap();
    let acked = b
        .wait_for(ACT, "the incident acknowledged", |_| {
            let (_, v) = api(
                &a,
                "GET",
                &format!("/api/incidents/{incident}"),
                &admin,
                None,
            );
            Ok((v["status"] == "acknowledged").then_some(v))
        })
        .unwrap();
    assert!(!acked["acknowledged_at_ms"].is_null(), "{acked}");
    assert_eq!(acked["acknowledged_by"], "ann", "{acked}");
    assert_clean(&b, &base, "acknowledge");

    // 3. Approve the waiting workflow step: from the approvals list to its execution page.
    assert_eq!(rec.count(), 0, "nothing runs before the approval");
    b.goto(&format!("{base}/approvals")).unwrap();
    // The list links to the execution (its id URL-encoded); mark that link to click it.
    b.wait_for(ACT, "the waiting execution listed", |b| {
        let found = b.execute(
            "const a = Array.from(document.querySelectorAll(\"a[href^='/executions/']\"))\
               .find(a => decodeURIComponent(a.getAttribute('href')) === '/executions/' + arguments[0]);\
             if (a) { a.id = 'approval-target'; } return !!a;",
            &[json!(exec)],
        )?;
        Ok((found == true).then_some(()))
    })
    .unwrap();
    b.find("#approval-target").unwrap().click().unwrap();
    let approve = b
        .wait_for_element(".api-action[data-url$='/approve']", ACT)
        .unwrap();
    approve.click().unwrap();
    // The button asks first (data-confirm).
    b.wait_for(Duration::from_secs(5), "the confirmation", |b| {
        b.alert_text().map(Some)
    })
    .unwrap();
    b.accept_alert().unwrap();
    b.wait_for(ACT, "the approved call at the receiver", |_| {
        Ok((rec.count() == 1).then_some(()))
    })
    .unwrap();
    let sent = &rec.all()[0];
    assert_eq!(sent.body["payload"]["summary"], "drain n7");
    assert_eq!(rec.violations.lock().unwrap().len(), 0);
    assert_clean(&b, &base, "approve");

    // 4. A bad SQL rule: the error at its line, nothing written.
    let (_, before) = api(&a, "GET", "/api/alerts/rules", &admin, None);
    b.goto(&format!("{base}/rules")).unwrap();
    open_details(&b, "#rule-new");
    fill(&b, "#new-rule-name", "console_bad_rule");
    fill(
        &b,
        "#new-rule-sql",
        "-- @for: 1\nINSERT INTO alerts\nSELECT window_start, 'X' AS alertname, service\nFROM no_such_table_here\nWHERE 1 = 1;",
    );
    b.find("#rule-new button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    let shown = b
        .wait_for(ACT, "the rule's error shown", |b| {
            let t = b.find("#rule-new output.result")?.text()?;
            Ok((!t.trim().is_empty()).then_some(t))
        })
        .unwrap();
    assert!(
        shown.contains("no_such_table_here"),
        "the error names the problem: {shown}"
    );
    assert!(
        shown.contains("line 4")
            || shown.contains(":4:")
            || shown.contains("行 4")
            || shown.contains("第 4 行"),
        "the error is shown at its line (4): {shown}"
    );
    let (_, after) = api(&a, "GET", "/api/alerts/rules", &admin, None);
    // The rules as written (their running positions move on).
    let rules = |v: &Value| -> Vec<(String, String)> {
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["sql"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        rules(&before),
        rules(&after),
        "a refused rule writes nothing"
    );
    assert!(!rules(&after).is_empty(), "the shipped rules are listed");
    assert!(
        !work.join("pipelines/console_bad_rule.sql").exists(),
        "no file for the refused rule"
    );
    assert!(
        b.current_url().unwrap().ends_with("/rules"),
        "no redirect to the (unsaved) rule"
    );
    // The refused save is the one failed request (the browser logs a 4xx answer as an error).
    assert_clean_but(
        &b,
        &base,
        "bad rule",
        Some(&format!(
            "{base}/api/alerts/rules - Failed to load resource: the server responded with a status of 422"
        )),
    );
    b.save_screenshot(&screenshot_dir().join("rules-error.png"))
        .unwrap();

    // The overview again, its charts filled by now (the screenshot the docs show).
    visit(&b, &base, "/", "overview");
    visit(&b, &base, "/monitoring", "monitoring");

    // Language and theme switches: cookies, then the page in Chinese and dark.
    b.find("button.set-pref[data-cookie='aiops_lang'][data-value='zh']")
        .unwrap()
        .click()
        .unwrap();
    b.wait_for(ACT, "the page in Chinese", |b| {
        Ok((b.execute("return document.documentElement.lang;", &[])? == "zh-CN").then_some(()))
    })
    .unwrap();
    b.find("button.set-pref[data-cookie='aiops_theme'][data-value='dark']")
        .unwrap()
        .click()
        .unwrap();
    b.wait_for(ACT, "the dark theme", |b| {
        Ok(
            (b.execute("return document.documentElement.dataset.theme || '';", &[])? == "dark")
                .then_some(()),
        )
    })
    .unwrap();
    assert_eq!(b.cookie("aiops_lang").unwrap().unwrap()["value"], "zh");
    assert_eq!(b.cookie("aiops_theme").unwrap().unwrap()["value"], "dark");
    visit(&b, &base, "/", "overview-zh-dark");
    let h1 = b.find("main h1, .page-head h1").unwrap().text().unwrap();
    assert_eq!(h1.split_whitespace().next(), Some("概览"), "{h1}");

    // Sign out from the top bar: back to the sign-in page, and the pages want a sign-in again.
    b.find("form[action='/logout'] button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    b.wait_for(ACT, "the sign-in page after sign-out", |b| {
        Ok(b.current_url()?.contains("/login").then_some(()))
    })
    .unwrap();
    assert!(
        b.cookie("aiops_session")
            .unwrap()
            .is_none_or(|c| c["value"] == "")
    );
    b.goto(&format!("{base}/alerts")).unwrap();
    assert_eq!(
        b.current_url().unwrap(),
        format!("{base}/login?next=%2Falerts")
    );
    assert_clean(&b, &base, "sign-out");

    eprintln!(
        "console browser test done in {:?}; screenshots in {}",
        started.elapsed(),
        screenshot_dir().display()
    );
}
