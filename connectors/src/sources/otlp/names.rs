//! Names as the OTel Prometheus-compatibility specification translates them: metric names with
//! unit and `_total` suffixes, label names in Prometheus' charset, severity numbers as words.

/// A metric or label name reduced to Prometheus' charset: every character outside
/// `[a-zA-Z0-9_]` (plus `:` in metric names) becomes `_`, runs of `_` collapse into one (as the
/// OTel translator does), and a leading digit gets a `_` in front.
fn sanitize(name: &str, colon_ok: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for c in name.chars() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (colon_ok && c == ':');
        let c = if ok { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus word for an OTel (UCUM) unit, as the compatibility specification lists them.
fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

/// The unit suffix of a metric: `ms` → `milliseconds`, `By/s` → `bytes_per_second`, `1` →
/// `ratio` (gauges only). Curly-brace annotations (`{requests}`) are dropped; an unknown unit is
/// sanitised and used as it is.
fn unit_suffix(unit: &str, gauge: bool) -> String {
    // `{packets}/s` → `/s`: annotations carry no unit.
    let mut plain = String::new();
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let plain = plain.trim();
    if plain.is_empty() {
        return String::new();
    }
    if plain == "1" {
        return if gauge { "ratio".into() } else { String::new() };
    }
    let word = |u: &str| -> String {
        match unit_word(u) {
            Some(w) => w.to_string(),
            None => sanitize(u, false).trim_matches('_').to_string(),
        }
    };
    match plain.split_once('/') {
        Some((num, per)) => {
            let per_word = match per {
                "s" => "second".to_string(),
                "m" => "minute".to_string(),
                "h" => "hour".to_string(),
                "d" => "day".to_string(),
                other => word(other),
            };
            let num = if num.is_empty() {
                String::new()
            } else {
                word(num)
            };
            match (num.is_empty(), per_word.is_empty()) {
                (true, true) => String::new(),
                (true, false) => format!("per_{per_word}"),
                (false, true) => num,
                (false, false) => format!("{num}_per_{per_word}"),
            }
        }
        None => word(plain),
    }
}

/// What kind of Prometheus metric a name is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A gauge (including non-monotonic sums): unit `1` becomes `_ratio`.
    Gauge,
    /// A monotonic sum: `_total` at the end, once.
    Counter,
    /// Histograms and summaries: the base name of `_bucket`/`_sum`/`_count`.
    Other,
}

/// The Prometheus metric name of an OTel metric: sanitised, the unit word appended unless the
/// name already ends with it, `_total` for counters (never doubled: a name ending in `_total`
/// keeps one).
pub fn metric_name(name: &str, unit: &str, kind: NameKind) -> String {
    let mut base = sanitize(name, true);
    let counter = kind == NameKind::Counter;
    if counter && let Some(stripped) = base.strip_suffix("_total") {
        base = stripped.to_string();
    }
    let suffix = unit_suffix(unit, kind == NameKind::Gauge);
    if !suffix.is_empty() && !base.ends_with(&suffix) {
        if !base.ends_with('_') && !base.is_empty() {
            base.push('_');
        }
        base.push_str(&suffix);
    }
    if counter {
        if !base.ends_with('_') && !base.is_empty() {
            base.push('_');
        }
        base.push_str("total");
    }
    base
}

/// A Prometheus label name for an attribute key: sanitised like metric names (without `:`); a
/// name starting with a digit gets `key_` in front, one starting with `__` (reserved for
/// Prometheus and aiops) gets `key` in front, as the OTel translator does.
pub fn label_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

/// The severity word of an OTel severity number (the specification's ranges: 1-4 trace, 5-8
/// debug, 9-12 info, 13-16 warn, 17-20 error, 21-24 fatal); `None` for 0 (unspecified) and
/// numbers outside 1..=24.
pub fn severity_word(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

/// The severity stored for a log record: the word of its number; without a number, its
/// `severity_text` lower-cased when that is one of the words (`WARNING` counts as `warn`,
/// `CRITICAL` as `fatal`), else `info` — the default of every log route.
pub fn severity(number: i32, text: &str) -> String {
    if let Some(w) = severity_word(number) {
        return w.to_string();
    }
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "trace" | "debug" | "info" | "warn" | "error" | "fatal" => t,
        "warning" => "warn".into(),
        "critical" | "crit" | "emergency" | "alert" | "panic" => "fatal".into(),
        "err" => "error".into(),
        "notice" | "information" | "informational" => "info".into(),
        _ => "info".into(),
    }
}
