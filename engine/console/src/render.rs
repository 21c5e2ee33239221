//! The template engine of the console: one minijinja environment holding every page template,
//! with autoescape on for `.html`, the bilingual label function `t`, the time filters and the
//! chart functions.
//!
//! Helpers the templates may use (documented here because they are the templates' vocabulary):
//! - `t(en, zh)` — the label in the context's `lang` (`zh` picks the second).
//! - `x|ts` — Unix ms or RFC 3339 text → `2026-12-05 03:12:09` (UTC); `x|ts("time")` → `03:12:09`,
//!   `x|ts("date")` → `2026-12-05`, `x|ts("minute")` → `2026-12-05 03:12`. Non-numbers pass
//!   through as text, null/undefined print nothing.
//! - `x|ago` — (Unix ms or RFC 3339) relative to the context's `now_ms`: `5m ago` / `5 分钟前` (`in 5m` / `5 分钟后`).
//! - `x|dur` — milliseconds → `1h 5m`, `350ms`, `2d 3h`.
//! - `x|num` — compact number: `1234567` → `1.23M`, `0.000123` → `1.23e-4`, integers stay whole
//!   below 10,000; `x|num(2)` fixes the decimals.
//! - `x|bytes` — `1536` → `1.5 KiB`.
//! - `x|pct` — a ratio → `12.5%`.
//! - `x|iso` — Unix ms → RFC 3339 (`2026-12-05T03:12:09.000Z`), for API bodies
//!   (`(now_ms + 7200000)|iso` is a silence's end in two hours).
//! - `x|ms` — Unix ms or RFC 3339 text → Unix ms (a number; none when it is no time), for
//!   arithmetic on API times: `(r.finished_at|ms - r.started_at|ms)|dur`.
//! - `text|error_line` — the line an error message points at (`… at Line: 3, Column: 9` of the
//!   SQL parser, or `file:3:9: reason`), none when it names none; for `data-error-line`.
//! - `matchers(labels)` — a label map → Alertmanager matchers
//!   `[{"name", "value", "isRegex": false, "isEqual": true}]` (for a silence's body).
//! - `matchers_text(labels)` — a label map → `a="1", b="2"` (what the JS `matchers` type reads).
//! - `error_box(data.x)` — the message box of a failed fetch (`{"error": {status, message}}`),
//!   nothing when the fetch answered; escaped.
//! - `chart(data, …)`, `bars(data, …)` — SVG charts, see [`crate::chart`].
//! - `x|length` — as minijinja's, but a missing answer (undefined/none) has length 0 rather than
//!   failing the page.
//! - `asset_v` — the assets' version for `?v=`.

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, State, UndefinedBehavior};

use crate::{assets, chart, pages};

/// A template failed to load or render.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A template has a syntax error (found when the console is built) or failed while rendering.
    #[error("template {name}{}: {detail}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        /// The template's file name (`alerts.html`).
        name: String,
        /// The line of the error, when minijinja knows it.
        line: Option<usize>,
        /// What went wrong (with minijinja's causes).
        detail: String,
    },
    /// The QR code of an enrolment could not be made (the text is too long for a QR code).
    #[error("QR code: {0}")]
    Qr(String),
}

impl ConsoleError {
    fn from_minijinja(fallback_name: &str, err: &Error) -> ConsoleError {
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        ConsoleError::Template {
            name: err.name().unwrap_or(fallback_name).to_string(),
            line: err.line(),
            detail,
        }
    }
}

/// Every console template, compiled once, ready to render pages from API answers.
pub struct Console {
    env: Environment<'static>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    /// Loads every template of [`pages`]; a syntax error is an error naming the template and line.
    pub fn new() -> Result<Console, ConsoleError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") || name.ends_with(".svg") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // A missing field of an API answer (an older server, an error object) renders empty
        // rather than failing the page; chained lookups (`data.x.error.message`) too.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_recursion_limit(64);
        // A JSON null (an optional field of an API answer) prints as nothing, not `none`.
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        for (name, source) in pages::templates() {
            env.add_template(name, source)
                .map_err(|e| ConsoleError::from_minijinja(name, &e))?;
        }
        env.add_global("asset_v", assets::version());
        env.add_function("t", t);
        env.add_filter("ts", ts);
        env.add_filter("ago", ago);
        env.add_filter("dur", dur);
        env.add_filter("num", num);
        env.add_filter("bytes", bytes);
        env.add_filter("pct", pct);
        env.add_filter("iso", iso);
        env.add_filter("ms", ms);
        env.add_filter("error_line", error_line);
        env.add_filter("length", length);
        env.add_filter("count", length);
        env.add_function("matchers", matchers);
        env.add_function("matchers_text", matchers_text);
        env.add_function("error_box", error_box);
        env.add_function("chart", chart::template_chart);
        env.add_function("bars", chart::template_bars);
        Ok(Console { env })
    }

    /// Renders a whole page (or a sign-in page) with its context.
    pub fn render(&self, template: &str, ctx: &serde_json::Value) -> Result<String, ConsoleError> {
        let tmpl = self
            .env
            .get_template(template)
            .map_err(|e| ConsoleError::from_minijinja(template, &e))?;
        tmpl.render(ctx)
            .map_err(|e| ConsoleError::from_minijinja(template, &e))
    }

    /// Renders one block of a page: the live refresh asks for `main`.
    pub fn render_block(
        &self,
        template: &str,
        block: &str,
        ctx: &serde_json::Value,
    ) -> Result<String, ConsoleError> {
        let tmpl = self
            .env
            .get_template(template)
            .map_err(|e| ConsoleError::from_minijinja(template, &e))?;
        // `eval_to_state` runs the template into a null output and keeps the state whose
        // blocks can then be rendered alone (what the live refresh needs); its replacement,
        // `render_captured`, would also build the whole page's text only to drop it.
        #[allow(deprecated)]
        let mut state = tmpl
            .eval_to_state(ctx)
            .map_err(|e| ConsoleError::from_minijinja(template, &e))?;
        state
            .render_block(block)
            .map_err(|e| ConsoleError::from_minijinja(template, &e))
    }

    /// Names of the loaded templates (tests check every page's template exists).
    pub fn template_names(&self) -> Vec<String> {
        self.env
            .templates()
            .map(|(name, _)| name.to_string())
            .collect()
    }
}

/// Whether the render's language is Chinese.
fn is_zh(state: &State) -> bool {
    state
        .lookup("lang")
        .is_some_and(|v| v.as_str().is_some_and(|s| s.starts_with("zh")))
}

/// `t(en, zh)`: the label in the page's language (falls back to the other when one is empty).
fn t(state: &State, en: Value, zh: Option<Value>) -> Value {
    let zh = zh.unwrap_or_default();
    let empty = |v: &Value| v.is_undefined() || v.is_none() || v.as_str() == Some("");
    if (is_zh(state) && !empty(&zh)) || empty(&en) {
        zh
    } else {
        en
    }
}

/// A number out of a template value: numbers, and strings holding one.
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    if let Some(s) = v.as_str() {
        return s.trim().parse::<f64>().ok();
    }
    if v.is_number() {
        if let Some(i) = v.as_i64() {
            return Some(i as f64);
        }
        return f64::try_from(v.clone()).ok();
    }
    None
}

/// A time out of a template value: Unix ms numbers (or numeric text), or RFC 3339 text (the
/// Alertmanager API's `startsAt`).
pub(crate) fn as_time(v: &Value) -> Option<f64> {
    if let Some(s) = v.as_str() {
        return chart::parse_time(s).or_else(|| s.trim().parse::<f64>().ok());
    }
    as_f64(v)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix ms → UTC text in the given format (`full`, `time`, `date`, `minute`).
pub(crate) fn format_utc(ms: i64, format: &str) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    match format {
        "time" => format!("{h:02}:{mi:02}:{s:02}"),
        "date" => format!("{y:04}-{mo:02}-{d:02}"),
        "minute" => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}"),
        "hm" => format!("{h:02}:{mi:02}"),
        "md" => format!("{mo:02}-{d:02}"),
        _ => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
    }
}

/// `ts`: Unix ms → UTC text; text that is not a number passes through (already formatted).
fn ts(v: Value, format: Option<String>) -> String {
    if v.is_undefined() || v.is_none() {
        return String::new();
    }
    match as_time(&v) {
        Some(ms) if ms.is_finite() && ms.abs() < 1e16 => {
            format_utc(ms as i64, format.as_deref().unwrap_or("full"))
        }
        _ => v.to_string(),
    }
}

/// `ago`: a time relative to the render's `now_ms`.
fn ago(state: &State, v: Value) -> String {
    let (Some(t), Some(now)) = (
        as_time(&v),
        state.lookup("now_ms").as_ref().and_then(as_f64),
    ) else {
        return if v.is_undefined() || v.is_none() {
            String::new()
        } else {
            v.to_string()
        };
    };
    let zh = is_zh(state);
    let diff = now - t;
    let secs = (diff.abs() / 1000.0).floor() as i64;
    if secs < 5 {
        return if zh { "刚刚" } else { "just now" }.to_string();
    }
    let (n, en_unit, zh_unit) = if secs < 60 {
        (secs, "s", "秒")
    } else if secs < 3600 {
        (secs / 60, "m", "分钟")
    } else if secs < 48 * 3600 {
        (secs / 3600, "h", "小时")
    } else {
        (secs / 86_400, "d", "天")
    };
    match (zh, diff >= 0.0) {
        (true, true) => format!("{n} {zh_unit}前"),
        (true, false) => format!("{n} {zh_unit}后"),
        (false, true) => format!("{n}{en_unit} ago"),
        (false, false) => format!("in {n}{en_unit}"),
    }
}

/// Milliseconds → `1h 5m` (the two largest units), `350ms` below a second.
pub(crate) fn format_dur(ms: f64) -> String {
    if !ms.is_finite() {
        return String::new();
    }
    let sign = if ms < 0.0 { "-" } else { "" };
    let ms = ms.abs();
    if ms < 1000.0 {
        let r = if ms < 10.0 {
            format!("{:.1}", ms)
        } else {
            format!("{:.0}", ms)
        };
        return format!("{sign}{}ms", r.trim_end_matches(".0"));
    }
    let total = (ms / 1000.0).round() as i64;
    let parts = [
        (total / 86_400, "d"),
        ((total % 86_400) / 3600, "h"),
        ((total % 3600) / 60, "m"),
        (total % 60, "s"),
    ];
    let out: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n != 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if out.is_empty() {
        format!("{sign}0s")
    } else {
        format!("{sign}{}", out.join(" "))
    }
}

/// `dur`: milliseconds → human duration.
fn dur(v: Value) -> String {
    match as_f64(&v) {
        Some(ms) => format_dur(ms),
        None if v.is_undefined() || v.is_none() => String::new(),
        None => v.to_string(),
    }
}

/// A compact number: 3 significant digits with k/M/G/T suffixes.
pub(crate) fn format_num(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "∞".into()
        } else {
            "-∞".into()
        };
    }
    let a = x.abs();
    if a == 0.0 {
        return "0".into();
    }
    if a < 1e-3 {
        return format!("{x:.2e}");
    }
    if a < 1e4 {
        if x.fract() == 0.0 {
            return format!("{x:.0}");
        }
        let digits = if a >= 100.0 {
            1
        } else if a >= 1.0 {
            2
        } else {
            3
        };
        let s = format!("{x:.digits$}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return s.to_string();
    }
    for (div, suffix) in [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if a >= div {
            let v = x / div;
            let s = if v.abs() >= 100.0 {
                format!("{v:.0}")
            } else if v.abs() >= 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.2}")
            };
            let s = if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            };
            return format!("{s}{suffix}");
        }
    }
    format!("{x}")
}

/// `num`: compact number, or fixed decimals with an argument.
fn num(v: Value, decimals: Option<usize>) -> String {
    match as_f64(&v) {
        Some(x) => match decimals {
            Some(d) => format!("{x:.d$}", d = d.min(12)),
            None => format_num(x),
        },
        None if v.is_undefined() || v.is_none() => String::new(),
        None => v.to_string(),
    }
}

/// `bytes`: a byte count with binary units.
fn bytes(v: Value) -> String {
    let Some(mut x) = as_f64(&v) else {
        return if v.is_undefined() || v.is_none() {
            String::new()
        } else {
            v.to_string()
        };
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut i = 0;
    while x.abs() >= 1024.0 && i + 1 < units.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{x:.0} B")
    } else {
        format!("{x:.1} {}", units[i])
    }
}

/// `pct`: a ratio (0.125) → `12.5%`.
fn pct(v: Value) -> String {
    match as_f64(&v) {
        Some(x) => {
            let p = x * 100.0;
            let s = format!("{p:.1}");
            format!("{}%", s.trim_end_matches(".0"))
        }
        None if v.is_undefined() || v.is_none() => String::new(),
        None => v.to_string(),
    }
}

/// `length`: minijinja's, with undefined and none as empty (an API answer without the field).
fn length(v: Value) -> Result<usize, Error> {
    if v.is_undefined() || v.is_none() {
        return Ok(0);
    }
    if let Some(n) = v.len() {
        return Ok(n);
    }
    if let Some(s) = v.as_str() {
        return Ok(s.chars().count());
    }
    Err(Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!("cannot calculate length of value of type {}", v.kind()),
    ))
}

/// `error_box(d)`: `<div class="error-box" role="alert">` with the status and message of a failed
/// fetch, or nothing. Every text is escaped (the result is marked safe).
fn error_box(d: Value) -> Value {
    let Ok(err) = d.get_attr("error") else {
        return Value::from("");
    };
    if err.is_undefined() || err.is_none() {
        return Value::from("");
    }
    let text = |v: Value| -> String {
        if v.is_undefined() || v.is_none() {
            String::new()
        } else {
            chart::esc(
                &v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        }
    };
    let (status, message) = if err.as_str().is_some() {
        (String::new(), text(err))
    } else {
        (
            text(err.get_attr("status").unwrap_or_default()),
            text(err.get_attr("message").unwrap_or_default()),
        )
    };
    Value::from_safe_string(format!(
        "<div class=\"error-box\" role=\"alert\"><strong>{status}</strong> {message}</div>"
    ))
}

/// `error_line`: the line number an error message names, if any.
fn error_line(v: Value) -> Value {
    let Some(text) = v.as_str() else {
        return Value::from(());
    };
    let digits = |s: &str| -> Option<u64> {
        let d: String = s.chars().take_while(char::is_ascii_digit).collect();
        d.parse().ok()
    };
    if let Some(i) = text.find("Line: ")
        && let Some(n) = digits(&text[i + 6..])
    {
        return Value::from(n);
    }
    // `file:LINE:COL:` — the first `:<digits>:<digits>:` in the text.
    for (i, _) in text.match_indices(':') {
        let rest = &text[i + 1..];
        if let Some(n) = digits(rest) {
            let after = &rest[n.to_string().len()..];
            if after.starts_with(':') && digits(&after[1..]).is_some() {
                return Value::from(n);
            }
        }
    }
    Value::from(())
}

/// `ms`: a time (Unix ms or RFC 3339 text) as Unix ms.
fn ms(v: Value) -> Value {
    match as_time(&v) {
        Some(t) if t.is_finite() => Value::from(t as i64),
        _ => Value::from(()),
    }
}

/// `iso`: Unix ms → RFC 3339 with milliseconds, UTC.
fn iso(v: Value) -> String {
    match as_time(&v) {
        Some(ms) if ms.is_finite() && ms.abs() < 1e16 => {
            let ms = ms as i64;
            format!(
                "{}T{}.{:03}Z",
                format_utc(ms, "date"),
                format_utc(ms, "time"),
                ms.rem_euclid(1000)
            )
        }
        _ => String::new(),
    }
}

/// The `(name, value)` pairs of a label map, sorted by name (`__name__` kept).
fn label_pairs(labels: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if labels.kind() == minijinja::value::ValueKind::Map
        && let Ok(keys) = labels.try_iter()
    {
        {
            for k in keys {
                let v = labels.get_item(&k).unwrap_or_default();
                let text = |x: &Value| {
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                };
                out.push((text(&k), text(&v)));
            }
        }
    }
    out.sort();
    out
}

/// `matchers(labels)`: equality matchers for every label, as a silence's body wants them.
fn matchers(labels: Value) -> Value {
    let list: Vec<serde_json::Value> = label_pairs(&labels)
        .into_iter()
        .map(|(name, value)| {
            serde_json::json!({"name": name, "value": value, "isRegex": false, "isEqual": true})
        })
        .collect();
    Value::from_serialize(&list)
}

/// `matchers_text(labels)`: `a="1", b="2"` with `"` and `\` escaped.
fn matchers_text(labels: Value) -> String {
    label_pairs(&labels)
        .into_iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0, "full"), "1970-01-01 00:00:00");
        // 2026-12-05 03:12:09 UTC
        assert_eq!(format_utc(1_796_440_329_000, "full"), "2026-12-05 03:12:09");
        assert_eq!(format_utc(951_782_400_000, "date"), "2000-02-29");
        assert_eq!(format_utc(-1000, "full"), "1969-12-31 23:59:59");
    }

    #[test]
    fn label_helpers() {
        let labels = Value::from_serialize(serde_json::json!({"b": "x\"y", "a": "1"}));
        assert_eq!(matchers_text(labels.clone()), r#"a="1", b="x\"y""#);
        let m = serde_json::to_value(matchers(labels)).unwrap();
        assert_eq!(m[0]["name"], "a");
        assert_eq!(m[1]["value"], "x\"y");
        assert_eq!(m[1]["isEqual"], true);
        assert_eq!(
            iso(Value::from(1_796_440_329_005i64)),
            "2026-12-05T03:12:09.005Z"
        );
    }

    #[test]
    fn error_lines() {
        let line = |t: &str| error_line(Value::from(t));
        assert_eq!(
            line("SQL error: ParserError(\"Expected: x, found: SELEC at Line: 2, Column: 9\")"),
            Value::from(2u64)
        );
        assert_eq!(line("pipelines/r.sql:14:3: no column"), Value::from(14u64));
        assert!(line("no position here").is_none());
        assert!(error_line(Value::from(3)).is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(format_dur(350.0), "350ms");
        assert_eq!(format_dur(3_900_000.0), "1h 5m");
        assert_eq!(format_dur(3_600_000.0), "1h");
        assert_eq!(format_dur(90_061_000.0), "1d 1h");
        assert_eq!(format_dur(1500.0), "2s");
        assert_eq!(format_dur(-60_000.0), "-1m");
        assert_eq!(format_dur(0.5), "0.5ms");
    }

    #[test]
    fn numbers() {
        assert_eq!(format_num(1_234_567.0), "1.23M");
        assert_eq!(format_num(42.0), "42");
        assert_eq!(format_num(0.5), "0.5");
        assert_eq!(format_num(1.23456), "1.23");
        assert_eq!(format_num(12_000.0), "12k");
        assert_eq!(format_num(f64::NAN), "NaN");
    }

    #[test]
    fn filters_in_templates() {
        let mut env = Environment::new();
        env.add_function("t", t);
        env.add_filter("ago", ago);
        env.add_filter("ts", ts);
        env.add_template(
            "x.html",
            "{{ t('Hello', '你好') }} {{ (now_ms - 300000)|ago }} {{ (now_ms + 7200000)|ago }} {{ none|ts }}|{{ 'later'|ts }}",
        )
        .unwrap();
        let tmpl = env.get_template("x.html").unwrap();
        let en = tmpl
            .render(serde_json::json!({"lang": "en", "now_ms": 1_000_000_000_000i64}))
            .unwrap();
        assert_eq!(en, "Hello 5m ago in 2h |later");
        let zh = tmpl
            .render(serde_json::json!({"lang": "zh", "now_ms": 1_000_000_000_000i64}))
            .unwrap();
        assert_eq!(zh, "你好 5 分钟前 2 小时后 |later");
        let iso = env
            .template_from_str(
                "{{ '1970-01-01T00:01:00.000Z'|ago }} {{ '1970-01-01T00:01:00.000Z'|ts }}",
            )
            .unwrap()
            .render(serde_json::json!({"lang": "en", "now_ms": 360_000}))
            .unwrap();
        assert_eq!(iso, "5m ago 1970-01-01 00:01:00");
    }

    #[test]
    fn syntax_error_names_template_and_line() {
        let mut env = Environment::new();
        let err = env
            .add_template("bad.html", "ok\nok\n{% if %}")
            .unwrap_err();
        let e = ConsoleError::from_minijinja("bad.html", &err);
        let text = e.to_string();
        assert!(text.contains("bad.html"), "{text}");
        assert!(text.contains("line 3"), "{text}");
    }
}
