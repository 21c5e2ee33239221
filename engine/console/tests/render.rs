//! Rendering tests of the core pages (pure, fast): every page renders from recorded API answers
//! in both languages and for each role, fetch errors and missing answers render a message rather
//! than failing, hostile text renders escaped, and templates, stylesheet and script keep to the
//! Content-Security-Policy (no inline style or script, nothing fetched from elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use aiops_console::pages::{self, MinRole, Page};
use aiops_console::{Console, assets, qr};
use serde_json::{Value, json};

const NOW_MS: i64 = 1_796_440_329_000;
const XSS_TAG: &str = "<script>alert(1)</script>";
const XSS_ATTR: &str = "\"onerror=\"alert(1)";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(stem: &str) -> Value {
    let path = crate_dir()
        .join("tests/fixtures/core")
        .join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn core_pages() -> impl Iterator<Item = &'static Page> {
    pages::core::PAGES.iter()
}

fn role_name(r: MinRole) -> &'static str {
    match r {
        MinRole::Viewer => "viewer",
        MinRole::Operator => "operator",
        MinRole::Admin => "admin",
    }
}

/// The context the server builds for `page` (see `pages` module docs).
fn context(page: &Page, role: MinRole, lang: &str, fx: &Value) -> Value {
    let nav: Vec<Value> = pages::all()
        .filter(|p| p.nav && p.role <= role)
        .map(|p| {
            json!({"path": p.path, "title_en": p.title_en, "title_zh": p.title_zh,
                   "section": p.section, "active": p.path == page.path})
        })
        .collect();
    let mut q = serde_json::Map::new();
    for (k, v) in page.defaults {
        q.insert((*k).to_string(), json!(v));
    }
    if let Some(Value::Object(extra)) = fx.get("q") {
        for (k, v) in extra {
            q.insert(k.clone(), v.clone());
        }
    }
    // Fixtures recorded from a running engine carry the time they were taken.
    let now = fx.get("now_ms").and_then(Value::as_i64).unwrap_or(NOW_MS);
    json!({
        "lang": lang, "theme": "auto", "path": page.path, "url": page.path,
        "q": q, "params": fx.get("params").cloned().unwrap_or(json!({})),
        "user": {"name": "alice", "role": role_name(role), "kind": "user"},
        "csrf": "csrf-token-value", "now_ms": now, "from_ms": now - 3_600_000, "to_ms": now,
        "nav": nav,
        "page": {"path": page.path, "title_en": page.title_en, "title_zh": page.title_zh,
                 "section": page.section, "live_ms": page.live_ms},
        "data": fx.get("data").cloned().unwrap_or(json!({})),
    })
}

fn stem(page: &Page) -> &str {
    page.template.trim_end_matches(".html")
}

#[test]
fn every_page_has_a_template_and_a_fixture() {
    let console = Console::new().unwrap();
    let names = console.template_names();
    for p in pages::all() {
        assert!(
            names.iter().any(|n| n == p.template),
            "{} has no template {}",
            p.path,
            p.template
        );
    }
    for p in core_pages() {
        assert!(
            crate_dir()
                .join("tests/fixtures/core")
                .join(format!("{}.json", stem(p)))
                .exists(),
            "no fixture for {}",
            p.path
        );
        // Every fetch key the page declares is in its fixture: the fixture is a full answer set.
        let fx = fixture(stem(p));
        for f in p.fetch {
            if f.when.is_none_or(|w| fx["q"].get(w).is_some()) {
                assert!(
                    fx["data"].get(f.key).is_some(),
                    "{}: fixture lacks data.{}",
                    p.path,
                    f.key
                );
            }
        }
    }
}

#[test]
fn every_core_page_renders_for_every_role_and_language() {
    let console = Console::new().unwrap();
    for p in core_pages() {
        let fx = fixture(stem(p));
        for role in [MinRole::Viewer, MinRole::Operator, MinRole::Admin] {
            for lang in ["en", "zh"] {
                let ctx = context(p, role, lang, &fx);
                let html = console
                    .render(p.template, &ctx)
                    .unwrap_or_else(|e| panic!("{} ({lang}, {role:?}): {e}", p.template));
                assert!(html.starts_with("<!doctype html>"), "{}", p.template);
                assert!(html.contains("<meta name=\"csrf-token\" content=\"csrf-token-value\">"));
                assert!(
                    html.contains(&format!("data-live-ms=\"{}\"", p.live_ms)),
                    "{}",
                    p.template
                );
                assert!(html.contains("/console/app.css?v="));
                assert!(html.contains("action=\"/logout\""));
                let title = if lang == "zh" { p.title_zh } else { p.title_en };
                assert!(html.contains(title), "{}: title {title}", p.template);
                // The block the live refresh asks for.
                let main = console.render_block(p.template, "main", &ctx).unwrap();
                assert!(
                    !main.contains("<html"),
                    "{}: block is not the page",
                    p.template
                );
                assert!(!main.trim().is_empty());
                assert!(
                    html.contains(main.trim()),
                    "{}: block differs from the page's",
                    p.template
                );
                let can_act = role != MinRole::Viewer;
                let has_actions = html.contains("api-action") || html.contains("api-form");
                if !can_act {
                    assert!(
                        !has_actions,
                        "{}: a viewer gets no action buttons",
                        p.template
                    );
                }
            }
        }
    }
}

#[test]
fn chinese_labels_are_chinese() {
    let console = Console::new().unwrap();
    let p = core_pages().find(|p| p.path == "/alerts").unwrap();
    let zh = console
        .render(
            p.template,
            &context(p, MinRole::Admin, "zh", &fixture("alerts")),
        )
        .unwrap();
    assert!(zh.contains("静默"));
    assert!(zh.contains("lang=\"zh-CN\""));
    let en = console
        .render(
            p.template,
            &context(p, MinRole::Admin, "en", &fixture("alerts")),
        )
        .unwrap();
    assert!(en.contains("Silences"));
    assert!(!en.contains("静默</h2>"));
}

#[test]
fn fetch_errors_and_missing_answers_render_a_message() {
    let console = Console::new().unwrap();
    for p in core_pages() {
        let fx = fixture(stem(p));
        let mut errs = serde_json::Map::new();
        for f in p.fetch {
            errs.insert(
                f.key.to_string(),
                json!({"error": {"status": 403, "message": "role viewer may not do this (forbidden-marker)"}}),
            );
        }
        let with_errors = json!({"q": fx["q"], "params": fx["params"], "data": errs});
        let html = console
            .render(p.template, &context(p, MinRole::Viewer, "en", &with_errors))
            .unwrap_or_else(|e| panic!("{} with errors: {e}", p.template));
        // A page whose fetches are all conditional shows nothing of them when the condition is
        // unmet; otherwise the message is shown.
        if p.fetch
            .iter()
            .any(|f| f.when.is_none_or(|w| fx["q"].get(w).is_some()))
        {
            assert!(
                html.contains("forbidden-marker"),
                "{}: the error is shown",
                p.template
            );
            assert!(html.contains("error-box"), "{}", p.template);
        }
        let empty = json!({"q": {}, "params": {}, "data": {}});
        console
            .render(p.template, &context(p, MinRole::Admin, "en", &empty))
            .unwrap_or_else(|e| panic!("{} without data: {e}", p.template));
    }
}

/// Every string of `v` (values and map keys below `labels`/`annotations`) replaced by hostile
/// text, alternating the two payloads.
fn poison(v: &Value, n: &mut usize) -> Value {
    match v {
        Value::String(_) => {
            *n += 1;
            Value::String(if n.is_multiple_of(2) {
                XSS_TAG.into()
            } else {
                format!("x{XSS_ATTR}")
            })
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| poison(x, n)).collect()),
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                out.insert(k.clone(), poison(x, n));
            }
            if m.contains_key("alertname") || m.contains_key("instance") {
                out.insert(XSS_TAG.into(), json!(XSS_ATTR));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn assert_no_raw_payload(html: &str, what: &str) {
    assert!(
        !html.contains("<script>alert"),
        "{what}: raw <script> in output"
    );
    assert!(
        !html.contains("onerror=\"alert"),
        "{what}: raw attribute breakout in output"
    );
    assert!(
        !html.contains("onerror='alert"),
        "{what}: raw attribute breakout in output"
    );
}

#[test]
fn hostile_api_answers_render_as_text() {
    let console = Console::new().unwrap();
    for p in core_pages() {
        let fx = fixture(stem(p));
        let mut n = 0;
        let bad = json!({"q": poison(&fx["q"], &mut n), "params": poison(&fx["params"], &mut n),
                         "data": poison(&fx["data"], &mut n)});
        for role in [MinRole::Viewer, MinRole::Admin] {
            let mut ctx = context(p, role, "en", &bad);
            ctx["user"]["name"] = json!(XSS_TAG);
            let html = console
                .render(p.template, &ctx)
                .unwrap_or_else(|e| panic!("{} hostile: {e}", p.template));
            assert_no_raw_payload(&html, p.template);
            assert!(
                html.contains("&lt;script&gt;") || html.contains("\\u003cscript\\u003e"),
                "{}: the payload is shown escaped",
                p.template
            );
        }
    }
}

#[test]
fn incident_root_causes_show_their_anomaly_evidence_in_both_languages() {
    let console = Console::new().unwrap();
    let p = core_pages().find(|p| p.path == "/incidents/{id}").unwrap();
    let fx = fixture("incident");
    let render = |lang: &str, fx: &Value| {
        let html = console
            .render(p.template, &context(p, MinRole::Viewer, lang, fx))
            .unwrap();
        // The root-cause card only (the timeline repeats the reason as text).
        let start = html.find("id=\"h-rc\"").unwrap();
        let end = html[start..].find("</section>").unwrap() + start;
        html[start..end].to_string()
    };
    let en = render("en", &fx);
    for want in [
        "Anomaly evidence",
        "unusual for this time of the cycle",
        "error_ratio",
        "(http_anomaly_1m)",
        "= 0.31 above expected 0.012 [0.004, 0.02]",
        "watched for 3d 4h",
        "confidence 87%",
        "the value is unusual for this phase of its 1-day cycle",
    ] {
        assert!(en.contains(want), "{want:?} missing in {en}");
    }
    // A signal the console has no words for (the template miner's) is shown by its name, and a
    // piece of evidence without numbers shows what it has.
    assert!(en.contains(">rate_surge</span>"), "{en}");
    assert!(en.contains("payment &lt;*&gt; declined"), "{en}");
    let zh = render("zh", &fx);
    for want in [
        "异常证据",
        "不符合周期规律",
        "已观察",
        "置信度 87%",
        "高于",
        "预期",
    ] {
        assert!(zh.contains(want), "{want:?} missing in {zh}");
    }
    assert!(!zh.contains("Anomaly evidence"));

    // Series, pipeline, signal and explanation come from pipelines and labels: text, never markup.
    let mut bad = fx.clone();
    let ev = &mut bad["data"]["incident"]["root_causes"][0]["evidence"][0];
    ev["series"] = json!(XSS_TAG);
    ev["pipeline"] = json!(XSS_ATTR);
    ev["signal"] = json!(XSS_TAG);
    ev["context"] = json!("");
    ev["explanation"] = json!(format!("x{XSS_ATTR}"));
    let html = render("en", &bad);
    assert_no_raw_payload(&html, "incident evidence");
    assert!(
        html.contains("<span class=\"mono\">&lt;script&gt;alert(1)"),
        "{html}"
    );
}

#[test]
fn sign_in_pages_render_with_only_their_fields() {
    let console = Console::new().unwrap();
    let qr_svg =
        qr::svg("otpauth://totp/aiops:alice?secret=JBSWY3DPEHPK3PXP&issuer=aiops").unwrap();
    let cases = [
        (
            "login.html",
            json!({"lang": "en", "theme": "dark", "csrf": "c1", "next": "/alerts", "error": XSS_TAG}),
        ),
        (
            "login.html",
            json!({"lang": "zh", "theme": "auto", "csrf": "c1", "next": "/", "error": null}),
        ),
        (
            "totp.html",
            json!({"lang": "en", "theme": "light", "csrf": "c1", "error": XSS_ATTR}),
        ),
        (
            "enrol.html",
            json!({"lang": "en", "theme": "auto", "csrf": "c1", "error": null, "qr_svg": qr_svg,
                               "secret": "JBSWY3DPEHPK3PXP", "issuer": XSS_TAG, "account": "alice"}),
        ),
        (
            "error.html",
            json!({"lang": "en", "theme": "auto", "status": 404, "message": XSS_TAG}),
        ),
        (
            "error.html",
            json!({"lang": "zh", "theme": "auto", "status": 403, "message": "x",
                               "user": {"name": "alice", "role": "viewer"}}),
        ),
    ];
    for (t, ctx) in cases {
        let html = console
            .render(t, &ctx)
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_no_raw_payload(&html, t);
        assert!(html.contains("<main id=\"main\""), "{t}");
        if t != "error.html" {
            assert!(
                html.contains("name=\"csrf\" value=\"c1\""),
                "{t}: hidden csrf"
            );
        }
    }
    let login = console
        .render(
            "login.html",
            &json!({"lang": "en", "csrf": "c", "next": "/x"}),
        )
        .unwrap();
    assert_eq!(
        login.matches("action=\"/login\"").count(),
        2,
        "password and token forms"
    );
    assert!(login.contains("name=\"username\"") && login.contains("name=\"password\""));
    assert!(login.contains("name=\"token\""));
    assert!(login.contains("name=\"next\" value=\"&#x2f;x\""));
    let dark = console
        .render("login.html", &json!({"theme": "dark"}))
        .unwrap();
    assert!(dark.contains("data-theme=\"dark\""));
    let totp = console.render("totp.html", &json!({"csrf": "c"})).unwrap();
    assert!(totp.contains("action=\"/login/totp\""));
    assert!(
        totp.contains("autocomplete=\"one-time-code\"") && totp.contains("inputmode=\"numeric\"")
    );
    let enrol = console
        .render(
            "enrol.html",
            &json!({"csrf": "c", "qr_svg": qr_svg, "secret": "S"}),
        )
        .unwrap();
    assert!(enrol.contains("<svg"), "the QR code is embedded as SVG");
    assert!(enrol.contains("action=\"/login/enrol\""));
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

#[test]
fn templates_keep_to_the_content_security_policy() {
    let handler = |s: &str| -> Option<String> {
        // ` on<letters>=` as an attribute (an inline event handler).
        let b = s.as_bytes();
        for i in 0..b.len().saturating_sub(3) {
            if b[i].is_ascii_whitespace() && b[i + 1] == b'o' && b[i + 2] == b'n' {
                let rest = &s[i + 3..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase())
                    .collect();
                if !name.is_empty() && rest[name.len()..].starts_with('=') {
                    return Some(format!("on{name}="));
                }
            }
        }
        None
    };
    let templates = files(&crate_dir().join("templates"), "html");
    assert!(templates.len() >= 12);
    for t in templates {
        let text = std::fs::read_to_string(&t).unwrap();
        let name = t.file_name().unwrap().to_string_lossy().to_string();
        assert!(!text.contains("style="), "{name}: style attribute");
        assert!(
            !text.to_ascii_lowercase().contains("<style"),
            "{name}: <style> block"
        );
        assert_eq!(handler(&text), None, "{name}: inline event handler");
        let lower = text.to_ascii_lowercase();
        let mut rest = lower.as_str();
        while let Some(i) = rest.find("<script") {
            let tag_end = rest[i..].find('>').map(|e| i + e).unwrap();
            let tag = &rest[i..=tag_end];
            assert!(tag.contains(" src="), "{name}: inline <script>");
            assert!(
                rest[tag_end + 1..].starts_with("</script>"),
                "{name}: script with a body"
            );
            rest = &rest[tag_end..];
        }
        assert!(!lower.contains("javascript:"), "{name}: javascript: URL");
    }
}

/// The text of CSS or JS without its comments (block comments, and `//` line comments that
/// start a line).
fn strip_comments(src: &str) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i + 2..].split_once("*/").map_or("", |(_, r)| r);
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn assets_fetch_nothing_from_elsewhere() {
    for (name, src) in [("console.css", assets::CSS), ("console.js", assets::JS)] {
        let code = strip_comments(src);
        assert!(
            !code.contains("http://") && !code.contains("https://"),
            "{name}: external URL"
        );
        assert!(!code.contains("@import"), "{name}: @import");
        assert!(
            !code.contains("url("),
            "{name}: url() (fonts/images from elsewhere)"
        );
    }
    let js = strip_comments(assets::JS);
    assert!(!js.contains("eval("), "no eval under the CSP");
    assert!(
        !js.contains("innerHTML =") || js.matches("innerHTML =").count() == 1,
        "only the live refresh sets innerHTML"
    );
    assert!(js.contains("X-CSRF-Token"));
    assert!(js.contains("X-Console-Fragment"));
    assert!(js.contains("If-None-Match"));
    // The stylesheet documents its classes, and both themes exist.
    assert!(assets::CSS.starts_with("/*"));
    assert!(assets::CSS.contains("prefers-color-scheme: dark"));
    assert!(assets::CSS.contains("[data-theme=\"dark\"]"));
    for class in [
        ".series-0",
        ".series-7",
        ".badge",
        ".error-box",
        "table.data",
        "textarea.code",
        ".chart",
    ] {
        assert!(assets::CSS.contains(class), "console.css lacks {class}");
    }
}

#[test]
fn qr_code_has_no_style_or_script() {
    let svg = qr::svg("otpauth://totp/aiops:alice?secret=JBSWY3DPEHPK3PXP&issuer=aiops").unwrap();
    assert!(!svg.contains("style="));
    assert!(!svg.contains("<script"));
}

#[test]
fn a_chart_of_ten_thousand_points_stays_small() {
    let console = Console::new().unwrap();
    let p = core_pages().find(|p| p.path == "/monitoring").unwrap();
    let mut fx = fixture("monitoring");
    let points: Vec<Value> = (0..10_000)
        .map(|i| json!([NOW_MS - 3_600_000 + i * 360, (i % 97) as f64]))
        .collect();
    fx["data"]["metric"] = json!({"from": NOW_MS - 3_600_000, "to": NOW_MS, "step_ms": 0,
        "series": [{"name": "m", "labels": {"instance": "a"}, "points": points}]});
    let html = console
        .render(p.template, &context(p, MinRole::Viewer, "en", &fx))
        .unwrap();
    let start = html.find("<svg class=\"chart-svg\"").unwrap();
    let end = start + html[start..].find("</svg>").unwrap();
    assert!(
        end - start < 30_000,
        "chart of 10,000 points is {} bytes",
        end - start
    );
}

#[test]
fn console_is_shared_between_requests() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Console>();
}
