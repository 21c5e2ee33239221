//! The webhook payload and its normalization. Unknown fields are ignored: senders add fields
//! across versions and a notification must not be refused for that.

use crate::error::DecodeError;
use crate::sources::json::parse_rfc3339_ms;
use crate::sources::json_alerts::common::{Normalized, alert_batch, labels_fingerprint};
use crate::sources::validate::{JSON, check_media, parse_json};
use crate::sources::{PushDecoder, PushRequest, SourceBatch};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
struct Payload {
    alerts: Option<Vec<Alert>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
    fingerprint: Option<String>,
}

fn time(at: &str, field: &'static str, s: &str) -> Result<Option<i64>, DecodeError> {
    // Alertmanager and Grafana write Go's zero time for "unset".
    if s.is_empty() || s.starts_with("0001-01-01") {
        return Ok(None);
    }
    parse_rfc3339_ms(s)
        .map(Some)
        .ok_or_else(|| DecodeError::InvalidValue {
            at: at.to_string(),
            field: field.into(),
            message: format!("{s:?} is not an RFC 3339 time"),
        })
}

/// Decodes a webhook body of the Alertmanager shape into one alert batch with `source`.
///
/// # Errors
/// A wrong media type or encoding, invalid JSON (repeated keys included), a missing `alerts`
/// array, an alert without labels, a bad status or time, and what the shared checks refuse.
pub fn decode_alerts(
    body: &[u8],
    source: &'static str,
    req: &PushRequest<'_>,
) -> Result<Vec<SourceBatch>, DecodeError> {
    check_media(req, JSON)?;
    let now_ms = req.now_ms;
    // Parsed twice: once to refuse repeated keys (which typed parsing collapses silently), once
    // into the typed payload, whose errors keep their line and column. Webhook bodies are small.
    parse_json(body).map_err(|e| DecodeError::json(&e, 0))?;
    let payload: Payload = serde_json::from_slice(body).map_err(|e| DecodeError::json(&e, 0))?;
    let alerts = payload.alerts.ok_or(DecodeError::MissingField {
        at: "payload".into(),
        field: "alerts",
    })?;
    let mut out = Vec::with_capacity(alerts.len());
    for (i, a) in alerts.into_iter().enumerate() {
        let at = format!("alert {i}");
        if a.labels.is_empty() {
            return Err(DecodeError::MissingField {
                at,
                field: "labels",
            });
        }
        let resolved = match a.status.as_deref() {
            Some("firing") => false,
            Some("resolved") => true,
            Some(other) => {
                return Err(DecodeError::InvalidValue {
                    at,
                    field: "status".into(),
                    message: format!("must be \"firing\" or \"resolved\", got {other:?}"),
                });
            }
            None => {
                return Err(DecodeError::MissingField {
                    at,
                    field: "status",
                });
            }
        };
        let starts = match a.starts_at.as_deref() {
            Some(s) => time(&at, "startsAt", s)?,
            None => None,
        }
        .unwrap_or(now_ms);
        let ends = match a.ends_at.as_deref() {
            Some(s) => time(&at, "endsAt", s)?,
            None => None,
        };
        // A firing alert's endsAt is only Alertmanager's expiry estimate, not an end.
        let ends = if resolved {
            ends.or(Some(now_ms))
        } else {
            None
        };
        let fingerprint = match a.fingerprint.as_deref() {
            Some(f) if !f.is_empty() => f.to_string(),
            _ => labels_fingerprint(&a.labels),
        };
        out.push(Normalized {
            at,
            fingerprint,
            resolved,
            labels: a.labels,
            annotations: a.annotations,
            starts_at_ms: starts,
            ends_at_ms: ends,
            generator_url: a.generator_url.filter(|u| !u.is_empty()),
        });
    }
    alert_batch(source, &out, req)
}

/// The Alertmanager webhook decoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertmanagerDecoder;

impl PushDecoder for AlertmanagerDecoder {
    fn name(&self) -> &'static str {
        "alertmanager"
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        decode_alerts(body, "alertmanager", req)
    }
}
