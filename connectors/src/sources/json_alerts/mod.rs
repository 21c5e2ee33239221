//! Alerts as plain JSON (`POST /api/alerts`, source `api`), for scripts, cron jobs and tools
//! without a connector of their own.
//!
//! A body is one object, an array of objects, or NDJSON (one object per line), each
//! `{name, status, severity, service, labels, annotations, starts_at, ends_at, fingerprint,
//! generator_url}` with only `name` required. `name`, `severity` and `service` go into the labels
//! `alertname`, `severity` and `service`; giving one of them both ways with different values is an
//! error. `status` is `firing` (the default) or `resolved`; `ends_at` is only allowed on a
//! resolved alert (default: the ingest time). Times are RFC 3339 strings or integer Unix
//! milliseconds; `starts_at` defaults to `ends_at`, else to the ingest time. The fingerprint is
//! the sender's, else the hash of the labels. Unknown fields reject the body, as do wrong types
//! and bad values: every record is checked before anything is kept.

pub(crate) mod common;
#[cfg(test)]
mod tests;

use crate::error::DecodeError;
use crate::sources::validate::{JSON_OR_NDJSON, check_media, parse_json};
use crate::sources::{PushDecoder, PushRequest, SourceBatch};
use common::{Normalized, Obj, alert_batch, labels_fingerprint, parse_time, type_name};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The fields an alert record may have.
const FIELDS: &str = "name, status, severity, service, labels, annotations, starts_at, ends_at, fingerprint, generator_url";

/// The generic JSON alert decoder (`POST /api/alerts`).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonAlertsDecoder;

impl PushDecoder for JsonAlertsDecoder {
    fn name(&self) -> &'static str {
        "api"
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        let recs = records(body, check_media(req, JSON_OR_NDJSON)?)?;
        let alerts = recs
            .iter()
            .map(|(at, m)| normalize(Obj { at, m }, req.now_ms))
            .collect::<Result<Vec<_>, _>>()?;
        alert_batch("api", &alerts, req)
    }
}

/// Records of a body with their location (`line N` for a single object and NDJSON, `element N`
/// for an array).
type Records = Vec<(String, Map<String, Value>)>;

fn as_object(at: String, v: Value) -> Result<(String, Map<String, Value>), DecodeError> {
    match v {
        Value::Object(m) => Ok((at, m)),
        other => Err(DecodeError::WrongType {
            at,
            field: "(record)".into(),
            expected: "an object",
            got: type_name(&other),
        }),
    }
}

/// `media` is the checked media type ([`check_media`]); `None` is sniffed.
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
            let v = parse_json(line.as_bytes()).map_err(|e| DecodeError::json(&e, i))?;
            out.push(as_object(format!("line {}", i + 1), v)?);
        }
    } else {
        match parse_json(text.as_bytes()).map_err(|e| DecodeError::json(&e, 0))? {
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    out.push(as_object(format!("element {i}"), item)?);
                }
            }
            other => out.push(as_object("line 1".into(), other)?),
        }
    }
    if out.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(out)
}

/// An RFC 3339 string or integer Unix ms; absent and null are `None`.
fn time(o: Obj<'_>, field: &str) -> Result<Option<i64>, DecodeError> {
    match o.m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            o.invalid(
                field,
                format!("must be integer Unix milliseconds or an RFC 3339 string, got {n}"),
            )
        }),
        Some(Value::String(s)) => parse_time(s).map(Some).ok_or_else(|| {
            o.invalid(
                field,
                format!("{s:?} is not an RFC 3339 time (e.g. 2026-11-24T10:00:00Z)"),
            )
        }),
        Some(v) => Err(o.wrong(field, "an RFC 3339 string or integer Unix milliseconds", v)),
    }
}

/// Puts a top-level field (`name`, `severity`, `service`) into the labels as `key`; an equal
/// label is fine, a different one is an error naming the field.
fn merge_label(
    o: Obj<'_>,
    labels: &mut BTreeMap<String, String>,
    field: &str,
    key: &str,
    value: &str,
) -> Result<(), DecodeError> {
    match labels.get(key) {
        Some(existing) if existing != value => Err(o.invalid(
            field,
            format!("is {value:?} but labels.{key} is {existing:?}: give one, or equal values"),
        )),
        _ => {
            labels.insert(key.to_string(), value.to_string());
            Ok(())
        }
    }
}

fn normalize(o: Obj<'_>, now_ms: i64) -> Result<Normalized, DecodeError> {
    o.check_fields(FIELDS)?;
    let name = o.req_str("name")?;
    let resolved = match o.opt_str("status")? {
        None | Some("firing") => false,
        Some("resolved") => true,
        Some(other) => {
            return Err(o.invalid(
                "status",
                format!("must be \"firing\" or \"resolved\", got {other:?}"),
            ));
        }
    };
    let mut labels = o.str_map("labels", false)?;
    merge_label(o, &mut labels, "name", "alertname", name)?;
    for field in ["severity", "service"] {
        if let Some(v) = o.opt_nonempty(field)? {
            merge_label(o, &mut labels, field, field, v)?;
        }
    }
    let annotations = o.str_map("annotations", false)?;
    let starts = time(o, "starts_at")?;
    let ends = time(o, "ends_at")?;
    let ends = match (resolved, ends) {
        (false, Some(_)) => {
            return Err(o.invalid(
                "ends_at",
                "is only allowed with status \"resolved\" (a firing alert has not ended)",
            ));
        }
        (false, None) => None,
        (true, e) => Some(e.unwrap_or(now_ms)),
    };
    let starts = starts.or(ends).unwrap_or(now_ms);
    if let Some(e) = ends
        && e < starts
    {
        return Err(o.invalid("ends_at", "is before starts_at"));
    }
    let fingerprint = match o.opt_nonempty("fingerprint")? {
        Some(f) => f.to_string(),
        None => labels_fingerprint(&labels),
    };
    Ok(Normalized {
        at: o.at.to_string(),
        fingerprint,
        resolved,
        labels,
        annotations,
        starts_at_ms: starts,
        ends_at_ms: ends,
        generator_url: o.opt_nonempty("generator_url")?.map(str::to_string),
    })
}
