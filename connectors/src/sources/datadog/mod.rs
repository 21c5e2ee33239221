//! Datadog monitor notifications from the Webhooks integration
//! (`POST /api/alerts/webhook/datadog`, source `datadog`).
//!
//! Datadog posts the JSON payload the user templates from its variables
//! (<https://docs.datadoghq.com/integrations/webhooks/>). aiops reads this template (unknown
//! fields are ignored, so it may be extended; every field is optional except `title`):
//!
//! ```json
//! {"id": "$ID", "alert_id": "$ALERT_ID", "title": "$EVENT_TITLE", "body": "$EVENT_MSG",
//!  "alert_transition": "$ALERT_TRANSITION", "alert_status": "$ALERT_STATUS",
//!  "alert_type": "$ALERT_TYPE", "priority": "$PRIORITY", "alert_priority": "$ALERT_PRIORITY",
//!  "hostname": "$HOSTNAME", "tags": "$TAGS", "alert_scope": "$ALERT_SCOPE",
//!  "alert_metric": "$ALERT_METRIC", "alert_query": "$ALERT_QUERY", "link": "$LINK",
//!  "date": "$DATE", "last_updated": "$LAST_UPDATED",
//!  "org": {"id": "$ORG_ID", "name": "$ORG_NAME"}}
//! ```
//!
//! The body is one such object (or an array of them); each becomes one alert:
//!
//! - labels: every tag of `tags` and `alert_scope` (`key:value`, split at the first colon; a tag
//!   without colon becomes `tag` = `"true"`; repeated keys keep their distinct values joined by
//!   `,`), then, winning over tags: `alertname` (the title without its leading `[Triggered]`,
//!   `[Triggered on {…}]`, `[P1]`, … brackets), `alert_id`, `host` (`hostname`), `metric`
//!   (`alert_metric`), `priority` (`alert_priority`, else `priority`), `org` (`org.name`).
//! - `severity`: a `severity:` tag if there is one; else from the monitor's priority (`P1`/`P2`
//!   → `critical`, `P3` → `warning`, `P4`/`P5` → `info`), which does not change between the
//!   triggered and recovered notifications of one alert, so both carry the same labels; else from
//!   `alert_type` (`error` → `critical`, `warning` → `warning`, `info` → `info`); none otherwise
//!   (`success`, `normal`, `low`).
//! - status: resolved when `alert_transition` is `Recovered`, or, without a transition (nor one
//!   in the title), when `alert_type` is `success`; firing otherwise. Transitions outside
//!   Datadog's list (Triggered, Re-Triggered, Recovered, Warn, Re-Warn, No Data, Re-No Data,
//!   Renotify, Null) and alert types outside error/warning/info/success refuse the request.
//! - annotations: `summary` (the full title), `description` (`body`), `link`, `alert_status`,
//!   `query` (`alert_query`), `transition`, `event_id` (`id`); `generator_url` is `link`.
//! - time: `date`, else `last_updated` (epoch ms or s, detected: below 10^11 is seconds; or
//!   RFC 3339), else the ingest time. It is `starts_at`, and `ends_at` of a resolved alert
//!   (Datadog does not say when a recovered alert started).
//! - fingerprint: `dd-<alert_id>`, plus `@<scope>` (the sorted `alert_scope` tags, else
//!   `host:<hostname>`) since a multi-alert monitor alerts once per group; without `alert_id`, the
//!   hash of the labels.
//!
//! Payloads sent with "Encode as form" are refused: send JSON.

#[cfg(test)]
mod tests;

use crate::error::DecodeError;
use crate::sources::json_alerts::common::{
    Normalized, Obj, alert_batch, labels_fingerprint, parse_time, type_name,
};
use crate::sources::validate::{JSON, check_media, parse_json};
use crate::sources::{PushDecoder, PushRequest, SourceBatch};
use serde_json::Value;
use std::collections::BTreeMap;

/// The Datadog webhook decoder (`POST /api/alerts/webhook/datadog`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DatadogDecoder;

impl PushDecoder for DatadogDecoder {
    fn name(&self) -> &'static str {
        "datadog"
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        if let Some(ct) = req.content_type
            && ct
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        {
            return Err(DecodeError::UnsupportedMediaType(
                "form-encoded payload: uncheck \"Encode as form\" in the Datadog webhook and send JSON"
                    .into(),
            ));
        }
        check_media(req, JSON)?;
        let v: Value = parse_json(body).map_err(|e| DecodeError::json(&e, 0))?;
        let items: Vec<&Value> = match &v {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        let mut alerts = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
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
        alert_batch("datadog", &alerts, req)
    }
}

/// Datadog's `$ALERT_TRANSITION` values, lowercase, and whether each means recovered.
const TRANSITIONS: [(&str, bool); 9] = [
    ("triggered", false),
    ("re-triggered", false),
    ("recovered", true),
    ("warn", false),
    ("re-warn", false),
    ("no data", false),
    ("re-no data", false),
    ("renotify", false),
    ("null", false),
];

fn is_recovery(t: &str) -> Option<bool> {
    let t = t.trim().to_ascii_lowercase();
    TRANSITIONS
        .iter()
        .find(|(name, _)| *name == t)
        .map(|(_, resolved)| *resolved)
}

/// Whether a title bracket (`Triggered on {host:a}`, `P1`) is one Datadog adds; returns the
/// transition it names, if any.
fn title_bracket(inner: &str) -> Option<Option<&str>> {
    let inner = inner.trim();
    let b = inner.as_bytes();
    if b.len() == 2 && b[0].eq_ignore_ascii_case(&b'p') && (b'1'..=b'5').contains(&b[1]) {
        return Some(None);
    }
    let lower = inner.to_ascii_lowercase();
    TRANSITIONS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| *name != "null")
        .find(|name| {
            lower == *name
                || lower
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(" on "))
        })
        .map(|name| Some(&inner[..name.len()]))
}

/// The title without Datadog's leading brackets, and the transition they name.
fn split_title(title: &str) -> (&str, Option<&str>) {
    let mut rest = title.trim_start();
    let mut transition = None;
    while let Some(after) = rest.strip_prefix('[') {
        let Some(close) = after.find(']') else { break };
        match title_bracket(&after[..close]) {
            Some(t) => {
                transition = transition.or(t);
                rest = after[close + 1..].trim_start();
            }
            None => break,
        }
    }
    (
        if rest.is_empty() { title.trim() } else { rest },
        transition,
    )
}

/// Comma-separated tags (`$TAGS`, `$ALERT_SCOPE`), or an array of tag strings.
fn tags(o: Obj<'_>, field: &str) -> Result<Vec<String>, DecodeError> {
    let raw: Vec<&str> = match o.m.get(field) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| match t {
                Value::String(s) => Ok(s.as_str()),
                other => Err(o.wrong(
                    field,
                    "a comma-separated string or an array of strings",
                    other,
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(o.wrong(field, "a comma-separated string of tags", v)),
    };
    Ok(raw
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect())
}

fn add_tag(labels: &mut BTreeMap<String, String>, tag: &str) {
    let (k, v) = match tag.split_once(':') {
        Some((k, v)) => (k.trim(), v.trim()),
        None => (tag, "true"),
    };
    if k.is_empty() {
        return;
    }
    match labels.get_mut(k) {
        Some(existing) => {
            if !existing.split(',').any(|e| e == v) {
                existing.push(',');
                existing.push_str(v);
            }
        }
        None => {
            labels.insert(k.to_string(), v.to_string());
        }
    }
}

/// `$DATE` / `$LAST_UPDATED`: epoch ms or s (detected), as a number or string, or RFC 3339.
fn time(o: Obj<'_>, field: &str) -> Result<Option<i64>, DecodeError> {
    let bad = |v: &str| {
        o.invalid(
            field,
            format!("{v:?} is not an epoch time (ms or s) nor an RFC 3339 time"),
        )
    };
    let n = match o.m.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .ok_or_else(|| bad(&n.to_string()))?,
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<i64>() {
                Ok(n) => n,
                Err(_) => return parse_time(s).map(Some).ok_or_else(|| bad(s)),
            }
        }
        Some(v) => return Err(o.wrong(field, "epoch milliseconds (a number or a string)", v)),
    };
    if n < 0 {
        return Err(bad(&n.to_string()));
    }
    Ok(Some(if n < 100_000_000_000 {
        n.saturating_mul(1000)
    } else {
        n
    }))
}

fn normalize(o: Obj<'_>, now_ms: i64) -> Result<Normalized, DecodeError> {
    let title = match o.opt_nonempty("title")? {
        Some(t) => t,
        None => o
            .opt_nonempty("alert_title")?
            .ok_or_else(|| o.missing("title"))?,
    };
    let (alertname, title_transition) = split_title(title);
    let transition = o.opt_nonempty("alert_transition")?;
    let recovered = match transition {
        Some(t) => Some(is_recovery(t).ok_or_else(|| {
            o.invalid(
                "alert_transition",
                format!(
                    "{t:?} is not a Datadog alert transition (Triggered, Re-Triggered, \
                     Recovered, Warn, Re-Warn, No Data, Re-No Data, Renotify)"
                ),
            )
        })?),
        None => title_transition.and_then(is_recovery),
    };
    let alert_type = match o.opt_nonempty("alert_type")? {
        None => None,
        Some(t) => match t.to_ascii_lowercase().as_str() {
            "error" => Some("error"),
            "warning" => Some("warning"),
            "info" => Some("info"),
            "success" => Some("success"),
            _ => {
                return Err(o.invalid(
                    "alert_type",
                    format!("must be error, warning, info or success, got {t:?}"),
                ));
            }
        },
    };
    let resolved = recovered.unwrap_or(alert_type == Some("success"));
    let priority = match o.opt_nonempty("alert_priority")? {
        Some(p) => Some(p),
        None => o.opt_nonempty("priority")?,
    };
    let alert_id = o.opt_text("alert_id")?;
    let host = o.opt_nonempty("hostname")?;
    let scope = tags(o, "alert_scope")?;

    let mut labels = BTreeMap::new();
    for t in tags(o, "tags")?.iter().chain(&scope) {
        add_tag(&mut labels, t);
    }
    labels.insert("alertname".into(), alertname.to_string());
    let mut set = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            labels.insert(k.to_string(), v.to_string());
        }
    };
    set("alert_id", alert_id.as_deref());
    set("host", host);
    set("metric", o.opt_nonempty("alert_metric")?);
    set("priority", priority);
    if let Some(org) = o.opt_obj("org")? {
        let org = Obj { at: o.at, m: org };
        set("org", org.opt_nonempty("name")?);
    }
    let severity = match priority.map(str::to_ascii_uppercase).as_deref() {
        Some("P1" | "P2") => Some("critical"),
        Some("P3") => Some("warning"),
        Some("P4" | "P5") => Some("info"),
        _ => match alert_type {
            Some("error") => Some("critical"),
            Some("warning") => Some("warning"),
            Some("info") => Some("info"),
            _ => None,
        },
    };
    if let Some(s) = severity {
        labels.entry("severity".into()).or_insert_with(|| s.into());
    }

    let mut annotations = BTreeMap::new();
    let mut annotate = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            annotations.insert(k.to_string(), v.to_string());
        }
    };
    let link = o.opt_nonempty("link")?;
    annotate("summary", Some(title));
    annotate("description", o.opt_nonempty("body")?);
    annotate("link", link);
    annotate("alert_status", o.opt_nonempty("alert_status")?);
    annotate("query", o.opt_nonempty("alert_query")?);
    annotate("transition", transition.or(title_transition));
    annotate("event_id", o.opt_text("id")?.as_deref());

    let at = match time(o, "date")? {
        Some(t) => t,
        None => time(o, "last_updated")?.unwrap_or(now_ms),
    };
    let fingerprint = match &alert_id {
        Some(id) => {
            let mut group: Vec<&str> = scope.iter().map(String::as_str).collect();
            group.sort_unstable();
            group.dedup();
            let group = match (group.is_empty(), host) {
                (false, _) => group.join(","),
                (true, Some(h)) => format!("host:{h}"),
                (true, None) => String::new(),
            };
            if group.is_empty() {
                format!("dd-{id}")
            } else {
                format!("dd-{id}@{group}")
            }
        }
        None => labels_fingerprint(&labels),
    };
    Ok(Normalized {
        at: o.at.to_string(),
        fingerprint,
        resolved,
        labels,
        annotations,
        starts_at_ms: at,
        ends_at_ms: resolved.then_some(at),
        generator_url: link.map(str::to_string),
    })
}
