//! The one validator every push decoder applies: what may enter the log from outside.
//!
//! One place per kind of rule, so no decoder can drift from the others:
//! - media: [`check_media`] — `Content-Type` and `Content-Encoding` against what a route reads
//!   (415 naming the header and what is accepted);
//! - times: [`IngestLimits::check_time`] — event times within a window around the ingest time;
//! - labels: [`IngestLimits::check_labels`] — names per Prometheus' rules (metrics) or the relaxed
//!   rules of logs, events and alerts, no reserved `__` names, no duplicates, bounded count and
//!   sizes;
//! - event types: [`check_event_type`] — the types aiops itself writes cannot be forged;
//! - JSON: [`parse_json`] — duplicate object keys are refused instead of silently collapsed.
//!
//! The limits come from the engine's `[ingest]` settings through [`IngestLimits`] in the
//! [`PushRequest`]; connectors do not read configuration themselves.

use crate::error::DecodeError;
use crate::sources::PushRequest;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fmt::Display;

/// Limits applied to every pushed request. The engine fills them from `[ingest]`; the defaults
/// are those of a fresh configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Oldest accepted event time, as a distance before the ingest time (ms). `ingest.max_age`.
    pub max_age_ms: i64,
    /// Newest accepted event time, as a distance after the ingest time (ms). `ingest.max_future`.
    pub max_future_ms: i64,
    /// Most labels on one series, log stream, event or alert (`__name__` not counted).
    /// `ingest.max_labels`.
    pub max_labels: usize,
    /// Longest label name, bytes. `ingest.max_label_name_bytes`.
    pub max_label_name_bytes: usize,
    /// Longest label value (and metric name), bytes. `ingest.max_label_value_bytes`.
    pub max_label_value_bytes: usize,
    /// Largest decompressed body, bytes, checked before decompressing. `ingest.max_decoded_bytes`.
    pub max_decoded_bytes: usize,
    /// Most series in one remote_write request, checked while decoding.
    /// `ingest.max_series_per_request`.
    pub max_series: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_age_ms: 365 * 86_400_000,
            max_future_ms: 3_600_000,
            max_labels: 128,
            max_label_name_bytes: 4096,
            max_label_value_bytes: 16 * 1024,
            max_decoded_bytes: 64 << 20,
            max_series: 100_000,
        }
    }
}

/// The event types only aiops itself writes: audit records of the API (`audit`), detector and
/// template-miner anomalies (`anomaly`), and template changes of the log miner (`log_template`).
/// Readers (alerting, incident correlation, workflows, the read side) trust them, so they are
/// refused from every ingest route.
pub const ENGINE_EVENT_TYPES: [&str; 3] = ["audit", "anomaly", "log_template"];

/// Which rules label names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelRules {
    /// Prometheus' rule for metric labels: `[a-zA-Z_][a-zA-Z0-9_]*`.
    Prometheus,
    /// Logs, events and alerts: any text without control characters (Datadog tags and
    /// CloudWatch dimensions carry `.`, `-`, `/` and `:` in their names).
    Relaxed,
}

/// Formats a Unix-ms time as RFC 3339 for messages (years 0..=9999), else as a bare number.
fn fmt_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if !(0..=9999).contains(&y) {
        return format!("{ms} ms");
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// A duration in ms as the config would write it (`365d`, `1h`, `90s`).
fn fmt_span(ms: i64) -> String {
    match ms {
        ms if ms >= 86_400_000 && ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms >= 3_600_000 && ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms >= 60_000 && ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// At most 64 characters of a name for an error message, Debug-quoted (control characters
/// escaped) so a hostile name cannot forge log lines or flood the answer.
fn short(s: &str) -> String {
    if s.chars().count() <= 64 {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(64).collect();
        format!("{head:?}… ({} bytes)", s.len())
    }
}

impl IngestLimits {
    /// The default limits without a time window, for decoder tests whose fixed times are far
    /// from their fixed ingest time.
    #[cfg(test)]
    pub(crate) fn any_time() -> IngestLimits {
        IngestLimits {
            max_age_ms: i64::MAX,
            max_future_ms: i64::MAX,
            ..IngestLimits::default()
        }
    }

    /// Refuses an event time outside `[now - max_age, now + max_future]`, naming the row and
    /// field: no query, window or archive partition can use a time in year 33658. `at` (like
    /// the other checks' `at`) is formatted only on error, so hot loops pass a cheap location.
    ///
    /// # Errors
    /// [`DecodeError::TimeOutOfWindow`].
    pub fn check_time(
        &self,
        at: impl Display,
        field: &str,
        t: i64,
        now: i64,
    ) -> Result<(), DecodeError> {
        let oldest = now.saturating_sub(self.max_age_ms);
        let newest = now.saturating_add(self.max_future_ms);
        let message = if t < oldest {
            format!(
                "is {}, older than the ingest time minus {} (ingest.max_age)",
                fmt_time(t),
                fmt_span(self.max_age_ms)
            )
        } else if t > newest {
            format!(
                "is {}, later than the ingest time plus {} (ingest.max_future)",
                fmt_time(t),
                fmt_span(self.max_future_ms)
            )
        } else {
            return Ok(());
        };
        Err(DecodeError::TimeOutOfWindow {
            at: at.to_string(),
            field: field.to_string(),
            message,
        })
    }

    /// Checks a metric name (the value of `__name__`): non-empty, no control characters, at most
    /// `max_label_value_bytes`.
    ///
    /// # Errors
    /// [`DecodeError::InvalidLabel`] naming the row and field.
    pub fn check_metric_name(
        &self,
        at: impl Display,
        field: &str,
        name: &str,
    ) -> Result<(), DecodeError> {
        let bad = |message: String| DecodeError::InvalidLabel {
            at: at.to_string(),
            field: field.to_string(),
            message,
        };
        if name.is_empty() {
            return Err(bad("is empty".into()));
        }
        if name.len() > self.max_label_value_bytes {
            return Err(bad(format!(
                "is {} bytes, more than {} (ingest.max_label_value_bytes)",
                name.len(),
                self.max_label_value_bytes
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(bad(format!("{} contains a control character", short(name))));
        }
        Ok(())
    }

    /// Checks one label set: at most `max_labels`, every name valid under `rules`, not
    /// `__`-prefixed (reserved for `__name__` and Prometheus' internal labels), not repeated,
    /// names and values within their byte limits, no NUL in values (Postgres text cannot hold
    /// it). Stops at the first problem, so a million labels cost no more than `max_labels + 1`.
    ///
    /// # Errors
    /// [`DecodeError::InvalidLabel`] naming the row, the field (`labels` / `labels.<name>`) and
    /// the problem.
    pub fn check_labels<'a>(
        &self,
        at: impl Display,
        field: &str,
        rules: LabelRules,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), DecodeError> {
        let bad = |field: String, message: String| DecodeError::InvalidLabel {
            at: at.to_string(),
            field,
            message,
        };
        // Duplicates among the first names are found by a scan of a stack array (no allocation
        // per series on the hot path); a set takes over for long label sets.
        const SMALL: usize = 16;
        let mut small: [&str; SMALL] = [""; SMALL];
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, (name, value)) in labels.into_iter().enumerate() {
            if i >= self.max_labels {
                return Err(bad(
                    field.to_string(),
                    format!(
                        "has more than {} labels (ingest.max_labels)",
                        self.max_labels
                    ),
                ));
            }
            if name.is_empty() {
                return Err(bad(field.to_string(), "has an empty label name".into()));
            }
            if name.len() > self.max_label_name_bytes {
                return Err(bad(
                    field.to_string(),
                    format!(
                        "has a label name of {} bytes, more than {} (ingest.max_label_name_bytes)",
                        name.len(),
                        self.max_label_name_bytes
                    ),
                ));
            }
            let named = || format!("{field}.{name}");
            if name.starts_with("__") {
                return Err(bad(
                    named(),
                    format!(
                        "label name {} is reserved: names starting with \"__\" belong to aiops \
                         and Prometheus (the metric name goes in its own field)",
                        short(name)
                    ),
                ));
            }
            let valid = match rules {
                LabelRules::Prometheus => {
                    let mut cs = name.bytes();
                    cs.next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
                        && cs.all(|c| c.is_ascii_alphanumeric() || c == b'_')
                }
                LabelRules::Relaxed => !name.chars().any(char::is_control),
            };
            if !valid {
                let rule = match rules {
                    LabelRules::Prometheus => "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                    LabelRules::Relaxed => "a label name: it contains a control character",
                };
                return Err(bad(
                    field.to_string(),
                    format!("label name {} is not {rule}", short(name)),
                ));
            }
            let repeated = if i < SMALL {
                let r = small[..i].contains(&name);
                small[i] = name;
                r
            } else {
                if i == SMALL {
                    seen.extend(small);
                }
                !seen.insert(name)
            };
            if repeated {
                return Err(bad(
                    named(),
                    format!("label name {} is given more than once", short(name)),
                ));
            }
            if value.len() > self.max_label_value_bytes {
                return Err(bad(
                    named(),
                    format!(
                        "value is {} bytes, more than {} (ingest.max_label_value_bytes)",
                        value.len(),
                        self.max_label_value_bytes
                    ),
                ));
            }
            if value.contains('\0') {
                return Err(bad(
                    named(),
                    "value contains a NUL character, which no query can read back".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Refuses an event type aiops itself writes ([`ENGINE_EVENT_TYPES`]), compared without case
/// and surrounding spaces so `" Audit"` cannot pass either.
///
/// # Errors
/// [`DecodeError::InvalidValue`] naming the row, the field and the type.
pub fn check_event_type(at: &str, field: &str, ty: &str) -> Result<(), DecodeError> {
    let t = ty.trim().to_ascii_lowercase();
    if ENGINE_EVENT_TYPES.contains(&t.as_str()) {
        return Err(DecodeError::InvalidValue {
            at: at.to_string(),
            field: field.to_string(),
            message: format!(
                "is {}, an event type only aiops itself writes ({}): choose another type",
                short(ty),
                ENGINE_EVENT_TYPES.join(", ")
            ),
        });
    }
    Ok(())
}

/// What a route reads: its media types and content encodings.
#[derive(Debug, Clone, Copy)]
pub struct Accepts {
    /// Media types (lower case, without parameters). A request without `Content-Type` is
    /// accepted and its body sniffed.
    pub types: &'static [&'static str],
    /// Content encodings besides `identity`. Empty: the body must not be encoded.
    pub encodings: &'static [&'static str],
}

/// JSON routes (webhooks and `/api/v2/alerts`).
pub const JSON: Accepts = Accepts {
    types: &["application/json"],
    encodings: &[],
};

/// JSON or NDJSON routes (`/api/ingest/*`, `/api/alerts`).
pub const JSON_OR_NDJSON: Accepts = Accepts {
    types: &[
        "application/json",
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/jsonlines",
    ],
    encodings: &[],
};

/// Checks `Content-Type` and `Content-Encoding` against `accepts` and returns the media type
/// (lower case, without parameters; `None` when the request has none). A `charset` other than
/// UTF-8 is refused too: the decoders read UTF-8 only.
///
/// # Errors
/// [`DecodeError::UnsupportedMediaType`] naming the header, the value and what is accepted.
pub fn check_media(req: &PushRequest<'_>, accepts: Accepts) -> Result<Option<String>, DecodeError> {
    if let Some(enc) = req.content_encoding {
        for e in enc.split(',').map(|e| e.trim().to_ascii_lowercase()) {
            if e.is_empty() || e == "identity" || accepts.encodings.contains(&e.as_str()) {
                continue;
            }
            let allowed = if accepts.encodings.is_empty() {
                "none (send the body uncompressed, without Content-Encoding)".to_string()
            } else {
                accepts.encodings.join(", ")
            };
            return Err(DecodeError::UnsupportedMediaType(format!(
                "Content-Encoding {} is not accepted on this route (accepted: {allowed})",
                short(enc)
            )));
        }
    }
    let Some(ct) = req.content_type else {
        return Ok(None);
    };
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media.is_empty() {
        return Ok(None);
    }
    if !accepts.types.contains(&media.as_str()) {
        let hint = if media == "application/x-www-form-urlencoded" {
            " — curl -d sends this by default: add -H 'content-type: application/json'"
        } else {
            ""
        };
        return Err(DecodeError::UnsupportedMediaType(format!(
            "Content-Type {} is not accepted on this route (accepted: {}){hint}",
            short(&media),
            accepts.types.join(", ")
        )));
    }
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("charset") {
            let v = v.trim().trim_matches('"').to_ascii_lowercase();
            if !matches!(v.as_str(), "utf-8" | "utf8" | "us-ascii") {
                return Err(DecodeError::UnsupportedMediaType(format!(
                    "Content-Type charset {} is not accepted (accepted: utf-8)",
                    short(&v)
                )));
            }
        }
    }
    Ok(Some(media))
}

/// Builds a [`Value`] like serde_json does, but refuses an object with a repeated key: the
/// plain parser keeps the last value silently, so `{"labels": {"a": "1", "a": "2"}}` or a
/// million repeats of one key would pass as something the sender did not write.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        // serde_json applies its recursion limit (128) inside `deserialize_any`.
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON text cannot spell NaN or infinity, so this is always a number.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(A::Error::custom(format!(
                    "duplicate key {} in an object",
                    short(&k)
                )));
            }
            let v = map.next_value_seed(Strict)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses one JSON document, refusing repeated keys in any object (see [`Strict`]).
///
/// # Errors
/// The parser's error, with line and column, for bad syntax, trailing data or a repeated key.
pub fn parse_json(text: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ct: Option<&'static str>, enc: Option<&'static str>) -> PushRequest<'static> {
        PushRequest {
            content_type: ct,
            content_encoding: enc,
            now_ms: 0,
            limits: IngestLimits::default(),
        }
    }

    #[test]
    fn times_outside_the_window_are_refused_with_row_and_field() {
        let l = IngestLimits::default();
        let now = 1_796_000_000_000;
        assert!(l.check_time("line 1", "time", now, now).is_ok());
        assert!(
            l.check_time("line 1", "time", now - 364 * 86_400_000, now)
                .is_ok()
        );
        assert!(l.check_time("line 1", "time", now + 3_600_000, now).is_ok());
        let e = l
            .check_time("line 3", "time", now + 3_600_001, now)
            .unwrap_err();
        assert_eq!(e.reason(), "time_out_of_window");
        let msg = e.to_string();
        assert!(msg.contains("line 3") && msg.contains("\"time\""), "{msg}");
        assert!(
            msg.contains("ingest.max_future") && msg.contains("1h"),
            "{msg}"
        );
        for t in [i64::MAX, i64::MIN, 0, 1_000_000_000_000_000] {
            let e = l.check_time("series 0", "timestamp", t, now).unwrap_err();
            assert!(e.to_string().contains("series 0"), "{e}");
        }
        let e = l.check_time("x", "time", 0, now).unwrap_err().to_string();
        assert!(
            e.contains("1970-01-01T00:00:00.000Z") && e.contains("365d"),
            "{e}"
        );
        // No overflow at the extremes of the window either.
        let wide = IngestLimits {
            max_age_ms: i64::MAX,
            max_future_ms: i64::MAX,
            ..l
        };
        assert!(wide.check_time("x", "t", i64::MAX, 0).is_ok());
        assert!(wide.check_time("x", "t", i64::MIN + 1, 0).is_ok());
        assert!(wide.check_time("x", "t", i64::MIN, i64::MAX).is_err());
    }

    #[test]
    fn labels_follow_one_set_of_rules() {
        let l = IngestLimits::default();
        let ok = [("host", "a"), ("_x1", "")];
        assert!(
            l.check_labels("line 1", "labels", LabelRules::Prometheus, ok)
                .is_ok()
        );
        let relaxed_ok = [("kube.namespace", "x"), ("aws:region", "y"), ("a-b/c", "z")];
        assert!(
            l.check_labels("alert 0", "labels", LabelRules::Relaxed, relaxed_ok)
                .is_ok()
        );
        type Case = (LabelRules, Vec<(&'static str, &'static str)>, &'static str);
        let cases: Vec<Case> = vec![
            (LabelRules::Relaxed, vec![("", "x")], "empty label name"),
            (
                LabelRules::Relaxed,
                vec![("a\0b", "x")],
                "control character",
            ),
            (LabelRules::Relaxed, vec![("__name__", "x")], "reserved"),
            (
                LabelRules::Relaxed,
                vec![("a", "1"), ("a", "2")],
                "more than once",
            ),
            (LabelRules::Prometheus, vec![("1a", "x")], "[a-zA-Z_]"),
            (LabelRules::Prometheus, vec![("a.b", "x")], "[a-zA-Z_]"),
            (LabelRules::Relaxed, vec![("a", "x\0")], "NUL"),
        ];
        for (rules, labels, want) in cases {
            let e = l
                .check_labels("line 2", "labels", rules, labels.iter().copied())
                .unwrap_err();
            assert_eq!(e.reason(), "invalid_label");
            assert!(
                e.to_string().contains(want) && e.to_string().contains("line 2"),
                "{e} lacks {want:?}"
            );
        }
        let long_name = "n".repeat(4097);
        let e = l
            .check_labels(
                "x",
                "labels",
                LabelRules::Prometheus,
                [(long_name.as_str(), "v")],
            )
            .unwrap_err();
        assert!(e.to_string().contains("max_label_name_bytes"), "{e}");
        let long_value = "v".repeat(16 * 1024 + 1);
        let e = l
            .check_labels(
                "x",
                "labels",
                LabelRules::Prometheus,
                [("a", long_value.as_str())],
            )
            .unwrap_err();
        assert!(e.to_string().contains("max_label_value_bytes"), "{e}");
        // A million duplicates stop at the count limit without looking at the rest.
        let many = std::iter::repeat_n(("a", "b"), 1_000_000);
        let e = l
            .check_labels("x", "labels", LabelRules::Prometheus, many)
            .unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
        let names: Vec<String> = (0..200).map(|i| format!("l{i}")).collect();
        let e = l
            .check_labels(
                "x",
                "labels",
                LabelRules::Prometheus,
                names.iter().map(|n| (n.as_str(), "v")),
            )
            .unwrap_err();
        assert!(e.to_string().contains("ingest.max_labels"), "{e}");
    }

    #[test]
    fn engine_event_types_are_refused() {
        for t in ["audit", "anomaly", "log_template", " Audit "] {
            let e = check_event_type("line 1", "type", t).unwrap_err();
            assert!(e.to_string().contains("only aiops itself writes"), "{e}");
        }
        assert!(check_event_type("line 1", "type", "deploy").is_ok());
    }

    #[test]
    fn media_types_and_encodings() {
        assert_eq!(check_media(&req(None, None), JSON).unwrap(), None);
        assert_eq!(
            check_media(
                &req(Some("Application/JSON; charset=UTF-8"), Some("identity")),
                JSON
            )
            .unwrap()
            .as_deref(),
            Some("application/json")
        );
        for (ct, enc, want) in [
            (
                Some("application/xml"),
                None,
                "Content-Type \"application/xml\"",
            ),
            (
                Some("application/json"),
                Some("gzip"),
                "Content-Encoding \"gzip\"",
            ),
            (Some("application/json"), Some("snappy"), "Content-Encoding"),
            (
                Some("application/x-www-form-urlencoded"),
                None,
                "content-type: application/json",
            ),
            (Some("application/json; charset=latin1"), None, "charset"),
        ] {
            let e = check_media(&req(ct, enc), JSON).unwrap_err();
            assert_eq!(e.reason(), "unsupported_media_type");
            assert!(e.to_string().contains(want), "{e} lacks {want:?}");
            assert!(e.to_string().contains("accepted"), "{e}");
        }
    }

    #[test]
    fn json_with_repeated_keys_is_refused_at_any_depth() {
        assert!(parse_json(br#"{"a":{"b":1,"c":[{"d":null}]}}"#).is_ok());
        for bad in [
            &br#"{"a":1,"a":1}"#[..],
            br#"{"labels":{"x":"1","x":"2"}}"#,
            br#"[{"a":[{"b":1,"b":2}]}]"#,
            br#"{"a":1} x"#,
        ] {
            assert!(parse_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let e = parse_json(b"{\"a\":1,\n\"a\":2}").unwrap_err();
        assert_eq!(e.line(), 2);
        assert!(e.to_string().contains("duplicate key \"a\""), "{e}");
    }
}
