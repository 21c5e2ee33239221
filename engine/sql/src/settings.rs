//! Pipeline settings written in the file's header comment, one per line: `-- @for: 3`,
//! `-- @lateness: 2m`, `-- @delay: 10s`, `-- @severity: critical`, `-- @summary: text`,
//! `-- @partitions: 3` (cluster mode: run the pipeline as that many partition units and a merge
//! unit, see `docs/cluster.md`).
//!
//! [`parse`] reads them with positions, so a bad value is reported as `file:line:col` like any
//! SQL error; what needs the planned query (is the output `alerts`? is `@for` a multiple of the
//! window? does `{{column}}` name a column?) is checked by [`PipelineSettings::validate`], which
//! [`crate::pipeline::check_in`] calls once the query has planned.

use crate::error::PipelineError;
use crate::pipeline::err;
use crate::runtime::RuntimeConfig;
use datafusion::arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The settings a header may hold, in the order the error message lists them.
pub const KEYS: [&str; 6] = [
    "for",
    "lateness",
    "delay",
    "severity",
    "summary",
    "partitions",
];

/// The most partition units a pipeline may ask for (`@partitions`).
pub const MAX_PARTITIONS: u32 = 64;

/// Settings that only mean something for an alert rule (`INSERT INTO alerts`).
const ALERT_ONLY: [&str; 3] = ["for", "severity", "summary"];

/// How long an alert rule's condition must hold before the alert fires (`-- @for: …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldFor {
    /// This many consecutive windows (`-- @for: 3`).
    Windows(u32),
    /// This long, a multiple of the window size (`-- @for: 5m`).
    Duration {
        /// The duration in ms.
        ms: i64,
    },
}

/// The settings of one pipeline file; `None` where the header does not set a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineSettings {
    /// `@for`: how long an alert's condition must hold before it fires; one window when unset.
    pub hold_for: Option<HoldFor>,
    /// `@lateness`: how long after a window closed late rows still revise it, ms.
    pub lateness_ms: Option<i64>,
    /// `@delay`: the watermark delay (how far out of order events may arrive), ms.
    pub delay_ms: Option<i64>,
    /// `@severity`: the `severity` label of the alerts.
    pub severity: Option<String>,
    /// `@summary`: the `summary` annotation, with `{{column}}` placeholders.
    pub summary: Option<String>,
    /// `@partitions`: in cluster mode, how many partition units share the pipeline's input
    /// (each aggregates the log partitions `p` with `p % n == i`; one merge unit combines
    /// their partial states per window). 1 or unset: one unit.
    pub partitions: Option<u32>,
    /// Line and column of each setting's value, for errors found after planning.
    positions: BTreeMap<&'static str, (u64, u64)>,
}

impl PipelineSettings {
    /// Line and column (1-based) where the value of setting `key` (`for`, `summary`, …) starts.
    pub fn position(&self, key: &str) -> Option<(u64, u64)> {
        self.positions.get(key).copied()
    }

    /// The number of partition units (`@partitions`, 1 when unset).
    pub fn partition_units(&self) -> u32 {
        self.partitions.unwrap_or(1)
    }

    /// Whether any alert-only setting (`@for`, `@severity`, `@summary`) is set.
    pub fn has_alert_settings(&self) -> bool {
        ALERT_ONLY.iter().any(|k| self.positions.contains_key(k))
    }

    /// The number of consecutive windows of `window_size_ms` the condition must hold: `@for`
    /// in windows, or its duration divided by the window size rounded up (the check refuses
    /// durations that are not a multiple when it can see the window); at least 1.
    pub fn windows_for(&self, window_size_ms: i64) -> u32 {
        match self.hold_for {
            None => 1,
            Some(HoldFor::Windows(n)) => n.max(1),
            Some(HoldFor::Duration { ms }) => {
                let size = window_size_ms.max(1);
                let n = ms.div_euclid(size) + i64::from(ms.rem_euclid(size) != 0);
                u32::try_from(n).unwrap_or(u32::MAX).max(1)
            }
        }
    }

    /// `base` with the header's `@delay` and `@lateness` applied: the event-time settings this
    /// pipeline runs with.
    pub fn runtime_config(&self, base: RuntimeConfig) -> RuntimeConfig {
        let mut cfg = base;
        if let Some(d) = self.delay_ms {
            cfg.watermark.delay_ms = d;
        }
        if let Some(l) = self.lateness_ms {
            cfg.allowed_lateness_ms = l;
        }
        cfg
    }

    /// The `summary` annotation for one row: `@summary` with each `{{column}}` replaced by
    /// `value(column)` (empty when it has none); `None` without `@summary`.
    pub fn render_summary(&self, value: impl Fn(&str) -> Option<String>) -> Option<String> {
        let template = self.summary.as_deref()?;
        let pieces = template_pieces(template).ok()?;
        let mut out = String::with_capacity(template.len());
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Column { name, .. } => out.push_str(&value(name).unwrap_or_default()),
            }
        }
        Some(out)
    }

    /// Checks the settings against the planned pipeline: alert-only settings need output
    /// `alerts`, a duration `@for` must be a multiple of the tumbling window
    /// (`window_size_ms`, when known), and `@summary` placeholders must name SELECT columns.
    ///
    /// # Errors
    /// [`PipelineError`] at the setting's value.
    pub fn validate(
        &self,
        file: &Path,
        output: &str,
        select: &Schema,
        window_size_ms: Option<i64>,
    ) -> Result<(), PipelineError> {
        if output != "alerts" {
            for key in ALERT_ONLY {
                if let Some((line, col)) = self.position(key) {
                    return Err(err(
                        file,
                        line,
                        col,
                        format!(
                            "@{key} applies to alert rules only (INSERT INTO alerts); this pipeline writes {output}"
                        ),
                    ));
                }
            }
        }
        if let (Some(HoldFor::Duration { ms }), Some(size)) = (self.hold_for, window_size_ms)
            && size > 0
            && ms % size != 0
        {
            let (line, col) = self.position("for").unwrap_or((1, 1));
            return Err(err(
                file,
                line,
                col,
                format!(
                    "@for: {} is not a multiple of the window ({}); the condition is judged once per window",
                    show_ms(ms),
                    show_ms(size)
                ),
            ));
        }
        if let Some(template) = &self.summary {
            let (line, col) = self.position("summary").unwrap_or((1, 1));
            let pieces =
                template_pieces(template).map_err(|(at, m)| err(file, line, col + at as u64, m))?;
            for p in pieces {
                if let Piece::Column { name, at } = p
                    && select.field_with_name(name).is_err()
                {
                    let names: Vec<&str> =
                        select.fields().iter().map(|f| f.name().as_str()).collect();
                    return Err(err(
                        file,
                        line,
                        col + at as u64,
                        format!(
                            "@summary: {{{{{name}}}}} names no column of the SELECT (columns: {})",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A duration for messages: `90s`, `2m`, `1500ms`.
fn show_ms(ms: i64) -> String {
    for (unit, n) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % n == 0 {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

/// Parses a duration such as `10s`, `2m`, `1h30m` or `500ms` into ms.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a duration; write e.g. 500ms, 10s, 2m, 1h30m");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!("{text:?} needs a unit: ms, s, m, h or d (e.g. 2m)"));
            }
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
    }
    Ok(total)
}

/// A part of a `@summary` template.
enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// `{{name}}`, starting `at` chars into the template.
    Column { name: &'a str, at: usize },
}

/// Splits a template into text and `{{column}}` placeholders.
///
/// # Errors
/// The char offset and message of an unclosed or empty placeholder.
fn template_pieces(template: &str) -> Result<Vec<Piece<'_>>, (usize, String)> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut offset = 0usize;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let at = offset + rest[..open].chars().count();
        let inner = &rest[open + 2..];
        let Some(close) = inner.find("}}") else {
            return Err((at, "@summary: `{{` without a closing `}}`".to_string()));
        };
        let name = inner[..close].trim();
        let ident = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
        if !ident {
            return Err((
                at,
                format!("@summary: {{{{{}}}}} is not a column name", &inner[..close]),
            ));
        }
        out.push(Piece::Column { name, at });
        let consumed = open + 2 + close + 2;
        offset += rest[..consumed].chars().count();
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// 1-based column of byte offset `byte` in `line`.
fn column_of(line: &str, byte: usize) -> u64 {
    line[..byte].chars().count() as u64 + 1
}

/// Reads the settings of pipeline `source` (named by `file` in errors): the `-- @key: value`
/// lines of the header, i.e. the comment and blank lines before the statement. A `-- @` line
/// below the header is refused rather than ignored, so a misplaced setting is not silently lost.
///
/// # Errors
/// [`PipelineError`] at an unknown key, a malformed line, a bad or repeated value.
pub fn parse(file: &Path, source: &str) -> Result<PipelineSettings, PipelineError> {
    let mut s = PipelineSettings::default();
    let mut in_header = true;
    for (i, raw) in source.lines().enumerate() {
        let line_no = i as u64 + 1;
        let line = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let comment = trimmed.strip_prefix("--");
        if in_header && !trimmed.is_empty() && comment.is_none() {
            in_header = false;
        }
        let Some(body) = comment else { continue };
        let after_dashes = indent + 2;
        let body_trimmed = body.trim_start();
        let Some(setting) = body_trimmed.strip_prefix('@') else {
            continue;
        };
        let at = after_dashes + (body.len() - body_trimmed.len());
        let at_col = column_of(line, at);
        if !in_header {
            return Err(err(
                file,
                line_no,
                at_col,
                "settings go in the header comment at the top of the file, before the statement",
            ));
        }
        let Some((key_raw, value_raw)) = setting.split_once(':') else {
            return Err(err(
                file,
                line_no,
                at_col,
                "a setting is written `-- @key: value`, e.g. `-- @for: 3`",
            ));
        };
        let key_txt = key_raw.trim();
        let Some(key) = KEYS.iter().copied().find(|k| *k == key_txt) else {
            return Err(err(
                file,
                line_no,
                at_col,
                format!(
                    "unknown setting @{key_txt}; known: {}",
                    KEYS.map(|k| format!("@{k}")).join(", ")
                ),
            ));
        };
        let value = value_raw.trim();
        let value_byte =
            at + 1 + key_raw.len() + 1 + (value_raw.len() - value_raw.trim_start().len());
        let pos = (line_no, column_of(line, value_byte.min(line.len())));
        if let Some((l, _)) = s.positions.get(key) {
            return Err(err(
                file,
                line_no,
                at_col,
                format!("@{key} is set twice (first on line {l})"),
            ));
        }
        let bad = |m: String| err(file, pos.0, pos.1, format!("@{key}: {m}"));
        if value.is_empty() {
            return Err(bad("needs a value".into()));
        }
        match key {
            "for" => {
                s.hold_for = Some(if value.bytes().all(|b| b.is_ascii_digit()) {
                    match value.parse::<u32>() {
                        Ok(n) if n >= 1 => HoldFor::Windows(n),
                        _ => {
                            return Err(bad(format!(
                                "{value} windows: give 1 or more (1 is the default: fire in the first window the condition holds)"
                            )));
                        }
                    }
                } else {
                    let ms = parse_duration(value).map_err(&bad)?;
                    if ms <= 0 {
                        return Err(bad("the duration must be positive".into()));
                    }
                    HoldFor::Duration { ms }
                });
            }
            "lateness" => s.lateness_ms = Some(parse_duration(value).map_err(&bad)?),
            "delay" => s.delay_ms = Some(parse_duration(value).map_err(&bad)?),
            "severity" => {
                let word = value.len() <= 64
                    && value
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !word {
                    return Err(bad(format!(
                        "{value:?} is not one word such as critical, warning or info"
                    )));
                }
                s.severity = Some(value.to_string());
            }
            "partitions" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PARTITIONS).contains(&n) => s.partitions = Some(n),
                _ => {
                    return Err(bad(format!(
                        "{value:?}: give a number of partition units from 1 to {MAX_PARTITIONS}"
                    )));
                }
            },
            _ => {
                template_pieces(value)
                    .map_err(|(off, m)| err(file, pos.0, pos.1 + off as u64, m))?;
                s.summary = Some(value.to_string());
            }
        }
        s.positions.insert(key, pos);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Result<PipelineSettings, PipelineError> {
        parse(Path::new("t.sql"), src)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("10s"), Ok(10_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert!(parse_duration("10").unwrap_err().contains("unit"));
        assert!(parse_duration("ten s").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999d").is_err());
    }

    #[test]
    fn header_values_and_positions() {
        let s = p("-- a comment\n\n--   @for: 5m\n-- @severity:critical\n-- @summary: low {{ n }} x\nINSERT INTO alerts SELECT 1 AS n -- @ignored: here\n").unwrap();
        assert_eq!(s.hold_for, Some(HoldFor::Duration { ms: 300_000 }));
        assert_eq!(s.windows_for(60_000), 5);
        assert_eq!(s.windows_for(120_000), 3);
        assert_eq!(s.position("for"), Some((3, 12)));
        assert_eq!(s.position("severity"), Some((4, 14)));
        assert_eq!(s.severity.as_deref(), Some("critical"));
        let rendered = s.render_summary(|c| (c == "n").then(|| "7".to_string()));
        assert_eq!(rendered.as_deref(), Some("low 7 x"));
        assert_eq!(PipelineSettings::default().windows_for(60_000), 1);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = p("-- @fro: 3\nSELECT 1").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4));
        assert!(e.message.contains("unknown setting @fro"), "{e}");
        let e = p("-- x\n-- @for: 0\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 10));
        let e = p("-- @delay: 10\n").unwrap_err();
        assert!(e.message.contains("unit"), "{e}");
        let e = p("-- @summary: a {{b\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 16));
        let e = p("-- @for 3\n").unwrap_err();
        assert!(e.message.contains("-- @key: value"), "{e}");
        let e = p("-- @for: 3\n-- @for: 4\n").unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
        let e = p("INSERT INTO alerts\n  -- @for: 3\nSELECT 1").unwrap_err();
        assert_eq!((e.line, e.column), (2, 6));
        let e = p("-- @severity: very bad\n").unwrap_err();
        assert!(e.message.contains("one word"), "{e}");
    }
}
