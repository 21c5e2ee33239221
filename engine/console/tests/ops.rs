//! The ops pages (logs, deploys, knowledge, automation, administration): each renders from
//! recorded API answers (tests/fixtures/ops, captured from a running `aiops run --demo`), with
//! every fetch failing, and with hostile strings everywhere in the answers and the query; every
//! fetch names a route of the API; templates obey the Content-Security-Policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_console::Console;
use aiops_console::pages::{self, Method, MinRole, Page, ops};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

const SCRIPT: &str = "<script>alert(1)</script>";
const ATTR: &str = "\"onerror=\"alert(1)";
const NOW_MS: i64 = 1_764_900_000_000;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ops")
}

/// The fixture of a page: `{"q", "params", "data", "expect", "expect_admin"}` (texts the page
/// shows anyone, and an admin only); named after the page path
/// (`/logs/templates` → `logs_templates.json`, `/deploys/{id}` → `deploys_id.json`).
fn fixture(page: &Page) -> Value {
    let name = page
        .path
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.trim_matches(['{', '}', '*']))
        .collect::<Vec<_>>()
        .join("_");
    let path = fixtures_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} of {}: {e}", path.display(), page.path));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The context the server builds (src/pages/mod.rs), for `page` with `fx`'s query, parameters
/// and answers.
fn context(page: &Page, fx: &Value, lang: &str, role: &str) -> Value {
    let mut q: Map<String, Value> = page
        .defaults
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    if let Some(o) = fx["q"].as_object() {
        q.extend(o.clone());
    }
    let nav: Vec<Value> = pages::all()
        .filter(|p| p.nav)
        .map(|p| {
            json!({"path": p.path, "title_en": p.title_en, "title_zh": p.title_zh,
                   "section": p.section, "active": p.path == page.path})
        })
        .collect();
    json!({
        "lang": lang, "theme": "auto", "path": page.path, "url": page.path,
        "q": q, "params": fx["params"].clone(),
        "user": {"name": "alice", "role": role, "kind": "user"},
        "csrf": "csrf-token-1", "now_ms": NOW_MS, "from_ms": NOW_MS - 3_600_000, "to_ms": NOW_MS,
        "nav": nav,
        "page": {"path": page.path, "title_en": page.title_en, "title_zh": page.title_zh,
                 "section": page.section, "live_ms": page.live_ms},
        "data": fx["data"].clone(),
    })
}

/// Text as minijinja's HTML escaping writes it.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

fn console() -> Console {
    Console::new().expect("templates load")
}

/// Renders the page whole and its live block; both must succeed.
fn render(c: &Console, page: &Page, ctx: &Value) -> (String, String) {
    let whole = c
        .render(page.template, ctx)
        .unwrap_or_else(|e| panic!("{} ({}): {e}", page.path, page.template));
    let main = c
        .render_block(page.template, "main", ctx)
        .unwrap_or_else(|e| panic!("{} ({}) block main: {e}", page.path, page.template));
    (whole, main)
}

#[test]
fn every_page_renders_its_recorded_answers() {
    let c = console();
    for page in ops::PAGES {
        let fx = fixture(page);
        for lang in ["en", "zh"] {
            for role in ["admin", "viewer"] {
                let ctx = context(page, &fx, lang, role);
                let (whole, main) = render(&c, page, &ctx);
                assert!(
                    whole.contains("<main id=\"main\""),
                    "{}: no layout",
                    page.path
                );
                assert!(
                    !main.contains("error-box"),
                    "{} shows an error box for good answers:\n{main}",
                    page.path
                );
                // What the answers hold shows on the page (names, ids, lines).
                let writer = (role == "admin")
                    .then(|| fx["expect_admin"].as_array())
                    .flatten();
                for want in fx["expect"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(writer.into_iter().flatten())
                {
                    let want = want.as_str().unwrap();
                    assert!(
                        main.contains(want) || main.contains(&escape(want)),
                        "{} ({lang}, {role}) lacks {want:?}:\n{main}",
                        page.path
                    );
                }
            }
        }
    }
}

#[test]
fn a_viewer_gets_no_write_forms_and_an_admin_does() {
    let c = console();
    for page in ops::PAGES.iter().filter(|p| p.role == MinRole::Viewer) {
        let fx = fixture(page);
        let (_, viewer) = render(&c, page, &context(page, &fx, "en", "viewer"));
        // Viewers may ask questions (diagnose, test-less reads): only writes are hidden.
        for write in [
            "data-method=\"PUT\"",
            "data-method=\"DELETE\"",
            "data-url=\"/api/deploy\"",
            "data-url=\"/api/deploy/rollback\"",
            "/execute\"",
            "data-url=\"/api/knowledge/update\"",
            "data-url=\"/api/workflows\"",
            "data-url=\"/api/datasources\"",
            "/approve\"",
        ] {
            assert!(
                !viewer.contains(write),
                "{}: a viewer sees a write ({write})",
                page.path
            );
        }
    }
    let deploys = ops::PAGES.iter().find(|p| p.path == "/deploys").unwrap();
    let (_, admin) = render(
        &c,
        deploys,
        &context(deploys, &fixture(deploys), "en", "admin"),
    );
    assert!(admin.contains("data-url=\"/api/deploy\""));
    let admin_page = ops::PAGES.iter().find(|p| p.path == "/admin").unwrap();
    assert_eq!(admin_page.role, MinRole::Admin);
}

#[test]
fn a_failed_fetch_is_a_message_not_a_broken_page() {
    let c = console();
    for page in ops::PAGES {
        let fx = fixture(page);
        let mut failing = fx.clone();
        let mut data = Map::new();
        for f in page.fetch {
            data.insert(
                f.key.to_string(),
                json!({"error": {"status": 403, "message": "needs role admin (viewer given)"}}),
            );
        }
        failing["data"] = Value::Object(data);
        // Every `when` parameter set, so every fetch's answer is read.
        let mut q = fx["q"].as_object().cloned().unwrap_or_default();
        for f in page.fetch {
            if let Some(w) = f.when {
                q.entry(w.to_string()).or_insert(json!("x"));
            }
        }
        failing["q"] = Value::Object(q);
        let (_, main) = render(&c, page, &context(page, &failing, "en", "admin"));
        assert!(
            main.contains("needs role admin (viewer given)") && main.contains("error-box"),
            "{}: the error is not shown:\n{main}",
            page.path
        );
        // No answer at all (a `when` fetch not made): still a page.
        let mut empty = fx.clone();
        empty["data"] = json!({});
        render(&c, page, &context(page, &empty, "zh", "viewer"));
    }
}

/// Every string of `v` (not the keys) becomes a hostile one, keeping a prefix of the original so
/// values stay distinct.
fn poison(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let keep: String = s.chars().take(8).collect();
            Value::String(format!("{keep}{SCRIPT}{ATTR}"))
        }
        Value::Array(a) => Value::Array(a.iter().map(poison).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), poison(v))).collect()),
        other => other.clone(),
    }
}

fn assert_escaped(what: &str, html: &str) {
    assert!(
        !html.contains("<script>alert"),
        "{what}: a raw <script> from the data:\n{html}"
    );
    assert!(
        !html.contains("onerror=\"alert"),
        "{what}: a raw attribute from the data:\n{html}"
    );
    assert!(
        !html.contains("href=\"javascript:"),
        "{what}: a javascript: link:\n{html}"
    );
}

#[test]
fn hostile_strings_in_answers_and_query_render_as_text() {
    let c = console();
    for page in ops::PAGES {
        let fx = fixture(page);
        let mut bad = fx.clone();
        bad["data"] = poison(&fx["data"]);
        bad["q"] = poison(&fx["q"]);
        bad["params"] = poison(&fx["params"]);
        for role in ["admin", "viewer"] {
            let (whole, main) = render(&c, page, &context(page, &bad, "en", role));
            assert_escaped(page.path, &whole);
            assert!(
                main.contains("&lt;script&gt;alert(1)"),
                "{}: the hostile strings were not rendered at all (as text):\n{main}",
                page.path
            );
        }
    }
}

#[test]
fn hostile_log_lines_entry_titles_workflow_names_and_versions_are_text() {
    let c = console();
    let payload = format!("{SCRIPT}{ATTR}");
    let cases: [(&str, Value); 5] = [
        (
            "/logs",
            json!({"logs": {"logs": [{"time": NOW_MS - 5000, "severity": "error", "body": payload,
                    "labels": {"service": payload, "host": payload}, "attributes": {}}]}}),
        ),
        (
            "/knowledge",
            json!({"entries": {"entries": [{"id": "a/b", "title": payload, "tags": [payload],
                    "owner": payload, "revision": 1, "updated_at_ms": NOW_MS, "updated_by": payload,
                    "draft": false, "last_verified_ms": null, "helpful": 0, "not_helpful": 0}],
                    "count": 1}}),
        ),
        (
            "/workflows",
            json!({"workflows": {"workflows": [{"id": payload, "description": payload,
                    "file": payload, "disabled": false, "triggers": [{"type": payload}],
                    "steps": [payload], "actions": []}], "counters": {}, "active_executions": 0}}),
        ),
        (
            "/deploys",
            json!({"deploys": {"deploys": [{"id": "d1", "service": payload, "environment": payload,
                    "version": payload, "previous_version": payload, "strategy": "canary",
                    "status": payload, "started_at_ms": NOW_MS, "requested_by": payload,
                    "risk": {"score": 10.0, "level": payload, "reasons": []}}],
                    "total": 1, "dora": {}, "lookback_ms": 86_400_000}}),
        ),
        (
            "/deploys/{id}",
            json!({"deploy": {"deploy": {"id": "d1", "service": "shop", "environment": "prod",
                    "version": payload, "source": "api", "strategy": "canary",
                    "started_at_ms": NOW_MS, "status": "verifying", "source_status": "in_progress",
                    "url": "javascript:alert(1)", "description": payload,
                    "risk": {"score": 10.0, "level": "low", "reasons": [{"factor": payload, "points": 1.0, "detail": payload}]},
                    "policy": {"decision": "allow"}, "history": []}}}),
        ),
    ];
    for (path, data) in cases {
        let page = ops::PAGES.iter().find(|p| p.path == path).unwrap();
        let fx = json!({"q": {}, "params": {"id": "d1"}, "data": data});
        let (whole, main) = render(&c, page, &context(page, &fx, "en", "admin"));
        assert_escaped(path, &whole);
        assert!(
            main.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;onerror=&quot;alert(1)"),
            "{path}: the payload is not shown as text:\n{main}"
        );
    }
}

/// The demo has no canary service, so its deploys are never judged: this fixture is a judged
/// deploy written after the judge's types (engine/deploy/src/judge.rs), with verification series
/// shaped as `deploy_metrics_10s` rows.
#[test]
fn a_judged_deploy_shows_each_metric_and_charts_canary_against_baseline() {
    let c = console();
    let page = ops::PAGES
        .iter()
        .find(|p| p.path == "/deploys/{id}")
        .unwrap();
    let text = std::fs::read_to_string(fixtures_dir().join("deploys_id_judged.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    for lang in ["en", "zh"] {
        let (_, main) = render(&c, page, &context(page, &fx, lang, "operator"));
        // The per-metric row: classification, figures, change, p-value and reason.
        for want in [
            "error_ratio",
            "0.05 / 0.05 (30)",
            "+400.0%",
            "1e-05",
            "error_ratio 5× the baseline",
        ] {
            assert!(
                main.contains(want) || main.contains(&escape(want)),
                "{lang}: lacks {want:?}:\n{main}"
            );
        }
        // A time chart per metric with one series per version, and the change chart.
        assert!(
            main.matches("chart-svg").count() >= 2,
            "{lang}: charts missing:\n{main}"
        );
        assert!(
            main.contains(">v1<") && main.contains(">v2<"),
            "{lang}: versions not in the legend"
        );
    }
    // Without series (no verification stream): the page still renders, without time charts.
    let mut bare = fx.clone();
    bare["data"]["series"] =
        json!({"error": {"status": 400, "message": "no table deploy_metrics_10s"}});
    let (_, main) = render(&c, page, &context(page, &bare, "en", "viewer"));
    assert!(main.contains("error_ratio"));
    assert_eq!(
        main.matches("chart-svg").count(),
        1,
        "only the change chart:\n{main}"
    );
}

#[test]
fn lines_of_new_and_anomalous_templates_are_highlighted() {
    let c = console();
    let page = ops::PAGES.iter().find(|p| p.path == "/logs").unwrap();
    let line = |body: &str| {
        json!({"time": NOW_MS - 1000, "severity": "error", "body": body,
               "labels": {"service": "shop"}, "attributes": {}})
    };
    let fx = json!({"q": {"q": ""}, "data": {
        "logs": {"logs": [
            line("payment 4411 declined by gateway eu-2"),
            line("GET /health 200 in 3 ms"),
            line("cache miss for key user:17"),
        ]},
        "analysis": {"templates": [
            {"service": "shop", "template_id": "a1", "template": "payment <*> declined by gateway <*>",
             "count": 3, "new": true, "surge": false, "error_surge": false, "anomalies": [], "samples": []},
            {"service": "shop", "template_id": "a2", "template": "cache miss for key <*>",
             "count": 90, "new": false, "surge": true, "error_surge": false,
             "anomalies": [{"kind": "rate_surge", "window_start_ms": NOW_MS - 60_000}], "samples": []},
            {"service": "shop", "template_id": "a3", "template": "GET <*> <*> in <*> ms",
             "count": 900, "new": false, "surge": false, "error_surge": false, "anomalies": [], "samples": []},
            {"service": "other", "template_id": "a4", "template": "<*> <*>",
             "count": 1, "new": true, "surge": false, "error_surge": false, "anomalies": [], "samples": []}
        ]}
    }});
    let (_, main) = render(&c, page, &context(page, &fx, "en", "viewer"));
    let rows: Vec<&str> = main.split("<tr").skip(2).collect();
    assert_eq!(rows.len(), 3, "{main}");
    assert!(
        rows[0].contains("hl-new"),
        "new template not marked: {}",
        rows[0]
    );
    assert!(
        !rows[1].contains("class=\"hl"),
        "plain line marked: {}",
        rows[1]
    );
    assert!(
        rows[2].contains("hl-anomaly"),
        "surging template not marked: {}",
        rows[2]
    );
}

/// `(method, path)` of every route in the API's route table (engine/server/src/http/openapi.rs,
/// read as text: this crate does not depend on the server).
fn api_routes() -> BTreeSet<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/src/http/openapi.rs");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("pub const ROUTES").expect("ROUTES in openapi.rs");
    let end = start + text[start..].find("\n];").expect("end of ROUTES");
    let body = &text[start..end];
    // Every string literal in order; a method literal followed by a path literal is a route.
    let mut lits = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('"') {
        let after = &rest[i + 1..];
        let mut j = 0;
        let bytes = after.as_bytes();
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        lits.push(after[..j.min(after.len())].to_string());
        rest = &after[(j + 1).min(after.len())..];
    }
    let mut out = BTreeSet::new();
    for w in lits.windows(2) {
        if ["get", "post", "put", "delete"].contains(&w[0].as_str()) && w[1].starts_with('/') {
            out.insert((w[0].clone(), normalize(&w[1])));
        }
    }
    assert!(
        out.len() > 50,
        "too few routes read from openapi.rs: {out:?}"
    );
    out
}

/// A path without its query, each `{…}` segment as `{}`.
fn normalize(p: &str) -> String {
    let p = p.split('?').next().unwrap_or("");
    p.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_fetch_names_an_api_route() {
    let routes = api_routes();
    for page in ops::PAGES {
        for f in page.fetch {
            let m = match f.method {
                Method::Get => "get",
                Method::Post => "post",
            };
            // A concrete segment may fill a `{}` of the route (`/api/workflows/autoheal/…`).
            let want = normalize(f.path);
            let found = routes.iter().any(|(rm, rp)| {
                rm == m && {
                    let a: Vec<&str> = rp.split('/').collect();
                    let b: Vec<&str> = want.split('/').collect();
                    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || *x == "{}")
                }
            });
            assert!(
                found,
                "{} fetch {:?}: {m} {want} is not an API route",
                page.path, f.key
            );
            assert_eq!(f.body.is_some(), f.method == Method::Post, "{}", f.key);
        }
    }
}

#[test]
fn the_page_table_is_consistent() {
    let c = console();
    let names: BTreeSet<String> = c.template_names().into_iter().collect();
    let mut paths = BTreeSet::new();
    for page in pages::all() {
        assert!(paths.insert(page.path), "two pages at {}", page.path);
    }
    for page in ops::PAGES {
        assert!(
            names.contains(page.template),
            "{} has no template",
            page.path
        );
        assert!(
            ["logs", "deploys", "knowledge", "automation", "admin"].contains(&page.section),
            "{}",
            page.path
        );
        assert!(
            !(page.nav && page.path.contains('{')),
            "{} has a parameter but is in the navigation",
            page.path
        );
        let mut keys = BTreeSet::new();
        for f in page.fetch {
            assert!(
                keys.insert(f.key),
                "{}: fetch key {} twice",
                page.path,
                f.key
            );
        }
    }
    for (name, _) in ops::TEMPLATES {
        assert!(names.contains(*name), "{name} is not loaded");
    }
    // Lists that change by themselves reload.
    for live in [
        "/logs",
        "/deploys",
        "/deploys/{id}",
        "/approvals",
        "/autoheal",
        "/workflows/{id}",
        "/executions/{*id}",
    ] {
        let p = ops::PAGES.iter().find(|p| p.path == live).unwrap();
        assert_eq!(p.live_ms, 5000, "{live}");
    }
}

#[test]
fn templates_obey_the_content_security_policy() {
    for (name, src) in ops::TEMPLATES {
        let lower = src.to_ascii_lowercase();
        for bad in ["style=", "<style", "<script", "javascript:"] {
            assert!(!lower.contains(bad), "{name} contains {bad}");
        }
        // Inline handlers: ` on<letters>=`.
        let b = lower.as_bytes();
        for i in 0..b.len().saturating_sub(3) {
            if b[i].is_ascii_whitespace() && b[i + 1] == b'o' && b[i + 2] == b'n' {
                let mut j = i + 3;
                while j < b.len() && b[j].is_ascii_lowercase() {
                    j += 1;
                }
                assert!(
                    !(j > i + 3 && j < b.len() && b[j] == b'='),
                    "{name}: inline handler at byte {i}: {}",
                    &src[i..j + 1]
                );
            }
        }
        // Labels: every input, select and textarea with an id has a <label for>.
        let mut rest: &str = src;
        while let Some(k) = rest.find(" id=\"") {
            let tail = &rest[k + 5..];
            let id = &tail[..tail.find('"').unwrap()];
            let tag_start = rest[..k].rfind('<').unwrap();
            let tag = &rest[tag_start..k];
            if ["<input", "<select", "<textarea"]
                .iter()
                .any(|t| tag.starts_with(t))
                && !tag.contains("type=\"hidden\"")
            {
                assert!(
                    src.contains(&format!("for=\"{id}\"")),
                    "{name}: field {id} has no label"
                );
            }
            rest = tail;
        }
    }
}

/// The `{name}` placeholders of a path or body.
fn placeholders(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i + 1..];
        match tail.find('}') {
            Some(j)
                if j > 0
                    && tail[..j]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
            {
                out.push(tail[..j].to_string());
                rest = &tail[j + 1..];
            }
            _ => rest = tail,
        }
    }
    out
}

/// The server fills a missing parameter with the empty string, and the API routes read an
/// empty value as a filter on "" (no line, no deploy): a fetch made on every visit may only name
/// parameters that always have a value — built-ins, path parameters, parameters with a default —
/// besides the two the API reads as "no filter" when empty. Optional filters go in fetches made
/// `when` they are given.
#[test]
fn a_fetch_made_on_every_visit_names_no_optional_filter() {
    // (API path, parameter): an empty value means no filter there.
    let empty_is_all = [("/api/logs/search", "q"), ("/api/logs/analysis", "service")];
    for page in ops::PAGES {
        let params: Vec<&str> = page
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|s| s.trim_start_matches('*'))
            .collect();
        for f in page.fetch {
            let route = f.path.split('?').next().unwrap();
            let mut names = placeholders(f.path);
            names.extend(f.body.map(placeholders).unwrap_or_default());
            if let Some(w) = f.when {
                assert!(
                    names.iter().any(|n| n == w),
                    "{} {}: `when` {w} is not one of its placeholders",
                    page.path,
                    f.key
                );
                continue;
            }
            for n in names {
                let ok = ["from_ms", "to_ms", "now_ms"].contains(&n.as_str())
                    || params.contains(&n.as_str())
                    || page.defaults.iter().any(|(k, _)| *k == n)
                    || empty_is_all.contains(&(route, n.as_str()));
                assert!(
                    ok,
                    "{} fetch {}: {{{n}}} may be empty on a visit without it",
                    page.path, f.key
                );
            }
        }
    }
}

/// The server's fill takes a body's opening `{` up to the first `}` as one (invalid)
/// placeholder and copies it unfilled: a placeholder is only filled after a `}`.
#[test]
fn body_placeholders_come_after_a_closing_brace() {
    for page in ops::PAGES {
        for f in page.fetch {
            let Some(body) = f.body else { continue };
            serde_json::from_str::<Value>(body)
                .unwrap_or_else(|e| panic!("{} {}: body is not JSON: {e}", page.path, f.key));
            if let Some(first) = placeholders(body).first() {
                let at = body.find(&format!("{{{first}}}")).unwrap();
                assert!(
                    body[..at].contains('}'),
                    "{} {}: {{{first}}} would not be filled",
                    page.path,
                    f.key
                );
            }
        }
    }
}

#[test]
fn the_answer_of_the_most_selective_filter_is_shown_with_the_others_applied() {
    let c = console();
    let page = ops::PAGES.iter().find(|p| p.path == "/logs").unwrap();
    let line = |svc: &str, sev: &str, body: &str| {
        json!({"time": NOW_MS - 1000, "severity": sev, "body": body,
               "labels": {"service": svc, "host": "h1"}, "attributes": {}})
    };
    let data = json!({
        "logs": {"logs": [line("shop", "error", "unfiltered-a"), line("cart", "info", "unfiltered-b")]},
        "logs_service": {"logs": [line("shop", "error", "shop-error"), line("shop", "info", "shop-info")]},
        "logs_severity": {"logs": [line("shop", "error", "severity-only"), line("cart", "error", "cart-error")]},
        "analysis": {"templates": []},
    });
    let shown = |q: Value| {
        let fx = json!({"q": q, "data": data});
        render(&c, page, &context(page, &fx, "en", "viewer")).1
    };
    let main = shown(json!({}));
    assert!(main.contains("unfiltered-a") && !main.contains("shop-error"));
    let main = shown(json!({"service": "shop"}));
    assert!(
        main.contains("shop-error") && main.contains("shop-info") && !main.contains("unfiltered")
    );
    let main = shown(json!({"service": "shop", "severity": "error"}));
    assert!(
        main.contains("shop-error") && !main.contains("shop-info"),
        "{main}"
    );
    let main = shown(json!({"severity": "error"}));
    assert!(main.contains("severity-only") && main.contains("cart-error"));
}
