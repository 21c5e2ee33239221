//! The JSON/NDJSON decoder, one per kind.

use super::time::parse_rfc3339_ms;
use crate::error::DecodeError;
use crate::sources::validate::{
    JSON_OR_NDJSON, LabelRules, check_event_type, check_media, parse_json,
};
use crate::sources::{PushDecoder, PushRequest, SourceBatch};
use aiops_schemas::{EventBatchBuilder, Kind, LogBatchBuilder, MetricBatchBuilder};
use serde_json::{Map, Value};

/// Which kind a JSON endpoint ingests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `{"name", "labels", "value", "time"}`.
    Metrics,
    /// `{"time", "severity", "body", "labels", "attributes"}`.
    Logs,
    /// `{"time", "type", "message", "labels", "attributes"}`.
    Events,
}

/// Decodes JSON / NDJSON bodies of one kind.
#[derive(Debug, Clone, Copy)]
pub struct JsonDecoder {
    kind: JsonKind,
}

impl JsonDecoder {
    /// The metrics decoder.
    pub fn metrics() -> Self {
        JsonDecoder {
            kind: JsonKind::Metrics,
        }
    }
    /// The logs decoder.
    pub fn logs() -> Self {
        JsonDecoder {
            kind: JsonKind::Logs,
        }
    }
    /// The events decoder.
    pub fn events() -> Self {
        JsonDecoder {
            kind: JsonKind::Events,
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Records of a body, each with its location (`line N` / `element N`).
type Records = Vec<(String, Map<String, Value>)>;

/// Splits a body into records with their location (`line N` / `element N`).
/// `media` is the checked media type ([`check_media`]): `application/json`, one of the NDJSON
/// types, or `None` (sniffed).
fn records(body: &[u8], media: Option<String>) -> Result<Records, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::Json {
        line: 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
        column: 0,
        message: "body is not UTF-8".into(),
    })?;
    let ndjson = match media.as_deref() {
        Some("application/json") => false,
        Some(_) => true,
        None => {
            // Sniff: one JSON value spanning the whole body is JSON, otherwise NDJSON.
            serde_json::from_str::<serde::de::IgnoredAny>(text).is_err()
                && text.trim().lines().count() > 1
        }
    };
    let mut out = Vec::new();
    if ndjson {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("line {}", i + 1);
            match parse_json(line.as_bytes()).map_err(|e| DecodeError::json(&e, i))? {
                Value::Object(m) => out.push((at, m)),
                other => {
                    return Err(DecodeError::WrongType {
                        at,
                        field: "(record)".into(),
                        expected: "an object",
                        got: type_name(&other),
                    });
                }
            }
        }
    } else {
        match parse_json(text.as_bytes()).map_err(|e| DecodeError::json(&e, 0))? {
            Value::Object(m) => out.push(("line 1".to_string(), m)),
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    let at = format!("element {i}");
                    match item {
                        Value::Object(m) => out.push((at, m)),
                        other => {
                            return Err(DecodeError::WrongType {
                                at,
                                field: "(record)".into(),
                                expected: "an object",
                                got: type_name(&other),
                            });
                        }
                    }
                }
            }
            other => {
                return Err(DecodeError::WrongType {
                    at: "line 1".into(),
                    field: "(body)".into(),
                    expected: "an object, an array of objects or NDJSON",
                    got: type_name(&other),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(out)
}

/// Checked access to one record's fields.
struct Rec<'a> {
    at: &'a str,
    m: &'a Map<String, Value>,
}

impl<'a> Rec<'a> {
    fn check_fields(&self, allowed: &'static str) -> Result<(), DecodeError> {
        for k in self.m.keys() {
            if !allowed.split(", ").any(|a| a == k) {
                return Err(DecodeError::UnknownField {
                    at: self.at.to_string(),
                    field: k.clone(),
                    allowed,
                });
            }
        }
        Ok(())
    }

    fn wrong(&self, field: &str, expected: &'static str, v: &Value) -> DecodeError {
        DecodeError::WrongType {
            at: self.at.to_string(),
            field: field.to_string(),
            expected,
            got: type_name(v),
        }
    }

    fn opt_str(&self, field: &'static str) -> Result<Option<&'a str>, DecodeError> {
        match self.m.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(field, "a string", v)),
        }
    }

    fn req_str(&self, field: &'static str) -> Result<&'a str, DecodeError> {
        self.opt_str(field)?
            .ok_or_else(|| DecodeError::MissingField {
                at: self.at.to_string(),
                field,
            })
    }

    fn time(&self, now_ms: i64) -> Result<i64, DecodeError> {
        match self.m.get("time") {
            None | Some(Value::Null) => Ok(now_ms),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| DecodeError::InvalidValue {
                at: self.at.to_string(),
                field: "time".into(),
                message: format!(
                    "must be integer Unix milliseconds or an RFC 3339 string, got {n}"
                ),
            }),
            Some(Value::String(s)) => {
                parse_rfc3339_ms(s).ok_or_else(|| DecodeError::InvalidValue {
                    at: self.at.to_string(),
                    field: "time".into(),
                    message: format!("{s:?} is not an RFC 3339 time (e.g. 2026-11-24T10:00:00Z)"),
                })
            }
            Some(v) => {
                Err(self.wrong("time", "an RFC 3339 string or integer Unix milliseconds", v))
            }
        }
    }

    /// A map of strings (`labels`): values must be strings.
    fn labels(&self, field: &'static str) -> Result<Vec<(&'a str, &'a str)>, DecodeError> {
        match self.m.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(o)) => o
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.as_str(), s.as_str())),
                    other => Err(self.wrong(&format!("{field}.{k}"), "a string", other)),
                })
                .collect(),
            Some(v) => Err(self.wrong(field, "an object of strings", v)),
        }
    }

    /// A map of scalars (`attributes`), stringified.
    fn attributes(&self, field: &'static str) -> Result<Vec<(&'a str, String)>, DecodeError> {
        match self.m.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(o)) => o
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.as_str(), s.clone())),
                    Value::Number(n) => Ok((k.as_str(), n.to_string())),
                    Value::Bool(b) => Ok((k.as_str(), b.to_string())),
                    Value::Null => Ok((k.as_str(), String::new())),
                    other => Err(self.wrong(
                        &format!("{field}.{k}"),
                        "a string, number or boolean",
                        other,
                    )),
                })
                .collect(),
            Some(v) => Err(self.wrong(field, "an object", v)),
        }
    }

    fn value(&self) -> Result<f64, DecodeError> {
        match self.m.get("value") {
            None | Some(Value::Null) => Err(DecodeError::MissingField {
                at: self.at.to_string(),
                field: "value",
            }),
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| self.wrong("value", "a number", &Value::Number(n.clone()))),
            Some(Value::String(s)) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "+Inf" | "Inf" => Ok(f64::INFINITY),
                "-Inf" => Ok(f64::NEG_INFINITY),
                _ => Err(self.wrong(
                    "value",
                    "a number (or \"NaN\", \"+Inf\", \"-Inf\")",
                    &Value::String(s.clone()),
                )),
            },
            Some(v) => Err(self.wrong("value", "a number", v)),
        }
    }
}

impl PushDecoder for JsonDecoder {
    fn name(&self) -> &'static str {
        match self.kind {
            JsonKind::Metrics => "json_metrics",
            JsonKind::Logs => "json_logs",
            JsonKind::Events => "json_events",
        }
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        let recs = records(body, check_media(req, JSON_OR_NDJSON)?)?;
        let source = self.name();
        let limits = &req.limits;
        match self.kind {
            JsonKind::Metrics => {
                let mut b = MetricBatchBuilder::new();
                for (at, m) in &recs {
                    let r = Rec { at, m };
                    r.check_fields("name, labels, value, time")?;
                    let name = r.req_str("name")?;
                    limits.check_metric_name(at, "name", name)?;
                    let labels = r.labels("labels")?;
                    limits.check_labels(
                        at,
                        "labels",
                        LabelRules::Prometheus,
                        labels.iter().copied(),
                    )?;
                    let value = r.value()?;
                    let time = r.time(req.now_ms)?;
                    limits.check_time(at, "time", time, req.now_ms)?;
                    b.push(time, name, labels, value);
                }
                SourceBatch::single(Kind::Metrics, source, b.time_range(), b.finish())
            }
            JsonKind::Logs => {
                let mut b = LogBatchBuilder::new();
                for (at, m) in &recs {
                    let r = Rec { at, m };
                    r.check_fields("time, severity, body, labels, attributes")?;
                    let body = r.req_str("body")?;
                    let severity = r
                        .opt_str("severity")?
                        .unwrap_or("info")
                        .to_ascii_lowercase();
                    let labels = r.labels("labels")?;
                    limits.check_labels(
                        at,
                        "labels",
                        LabelRules::Relaxed,
                        labels.iter().copied(),
                    )?;
                    let attrs = r.attributes("attributes")?;
                    let time = r.time(req.now_ms)?;
                    limits.check_time(at, "time", time, req.now_ms)?;
                    b.push(time, &severity, body, labels, attrs);
                }
                SourceBatch::single(Kind::Logs, source, b.time_range(), b.finish())
            }
            JsonKind::Events => {
                let mut b = EventBatchBuilder::new();
                for (at, m) in &recs {
                    let r = Rec { at, m };
                    r.check_fields("time, type, message, labels, attributes")?;
                    let ty = r.req_str("type")?;
                    check_event_type(at, "type", ty)?;
                    let message = r.opt_str("message")?.unwrap_or("");
                    let labels = r.labels("labels")?;
                    limits.check_labels(
                        at,
                        "labels",
                        LabelRules::Relaxed,
                        labels.iter().copied(),
                    )?;
                    let attrs = r.attributes("attributes")?;
                    let time = r.time(req.now_ms)?;
                    limits.check_time(at, "time", time, req.now_ms)?;
                    b.push(time, ty, message, labels, attrs);
                }
                SourceBatch::single(Kind::Events, source, b.time_range(), b.finish())
            }
        }
    }
}
