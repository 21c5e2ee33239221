//! Alertmanager API v2 postable alerts (`POST /api/v2/alerts`, source `alertmanager_api`): what
//! Prometheus, vmalert, Loki's ruler and other senders post to an Alertmanager, so aiops can be
//! listed among their Alertmanagers.
//!
//! The body is a JSON array of `{labels, annotations, startsAt, endsAt, generatorURL}`
//! (`postableAlerts` in Alertmanager's `api/v2/openapi.yaml`), read with Alertmanager's own
//! semantics: labels and annotations with an empty value are dropped and at least one label must
//! remain; `startsAt` defaults to `endsAt`, else to now; an alert whose `endsAt` is at or before
//! now is resolved (`ends_at` = `endsAt`); one whose `endsAt` is in the future is firing and
//! keeps it in `ends_at` as its expiry ("resolved at this time unless sent again"); one without
//! `endsAt` is firing with `ends_at` null. `endsAt` before `startsAt` is an error. The
//! fingerprint is the hash of the labels: labels identify an alert in Alertmanager's model.
//! Unknown fields are ignored, as Alertmanager does.

#[cfg(test)]
mod tests;

use crate::error::DecodeError;
use crate::sources::json_alerts::common::{
    Normalized, Obj, alert_batch, is_unset_time, labels_fingerprint, parse_time, type_name,
};
use crate::sources::validate::{JSON, check_media, parse_json};
use crate::sources::{PushDecoder, PushRequest, SourceBatch};
use serde_json::Value;

/// The Alertmanager API v2 decoder (`POST /api/v2/alerts`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertmanagerApiDecoder;

impl PushDecoder for AlertmanagerApiDecoder {
    fn name(&self) -> &'static str {
        "alertmanager_api"
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        check_media(req, JSON)?;
        let v: Value = parse_json(body).map_err(|e| DecodeError::json(&e, 0))?;
        let Value::Array(items) = v else {
            return Err(DecodeError::WrongType {
                at: "body".into(),
                field: "(body)".into(),
                expected: "a JSON array of alerts (postableAlerts)",
                got: type_name(&v),
            });
        };
        let mut alerts = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("alert {i}");
            let Value::Object(m) = item else {
                return Err(DecodeError::WrongType {
                    at,
                    field: "(alert)".into(),
                    expected: "an object",
                    got: type_name(item),
                });
            };
            alerts.push(normalize(Obj { at: &at, m }, req.now_ms)?);
        }
        alert_batch("alertmanager_api", &alerts, req)
    }
}

/// An RFC 3339 time field; absent, null, empty and Go's zero time are `None`.
fn time(o: Obj<'_>, field: &str) -> Result<Option<i64>, DecodeError> {
    match o.opt_str(field)? {
        None => Ok(None),
        Some(s) if is_unset_time(s) => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .ok_or_else(|| o.invalid(field, format!("{s:?} is not an RFC 3339 time"))),
    }
}

fn normalize(o: Obj<'_>, now_ms: i64) -> Result<Normalized, DecodeError> {
    let labels = o.str_map("labels", true)?;
    if labels.is_empty() {
        return Err(o.missing("labels"));
    }
    let annotations = o.str_map("annotations", true)?;
    let starts = time(o, "startsAt")?;
    let ends = time(o, "endsAt")?;
    let starts = starts.or(ends).unwrap_or(now_ms);
    if let Some(e) = ends
        && e < starts
    {
        return Err(o.invalid("endsAt", "is before startsAt"));
    }
    Ok(Normalized {
        at: o.at.to_string(),
        fingerprint: labels_fingerprint(&labels),
        resolved: ends.is_some_and(|e| e <= now_ms),
        labels,
        annotations,
        starts_at_ms: starts,
        ends_at_ms: ends,
        generator_url: o.opt_nonempty("generatorURL")?.map(str::to_string),
    })
}
