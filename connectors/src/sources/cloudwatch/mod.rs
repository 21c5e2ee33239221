//! AWS CloudWatch alarm state changes delivered by an SNS HTTP(S) subscription
//! (`POST /api/alerts/webhook/cloudwatch`, source `cloudwatch`).
//!
//! The body is an SNS message (`Type`, `MessageId`, `TopicArn`, `Message`, `Timestamp` and the
//! signature fields) whose `Message` is the alarm as a JSON string, or, with SNS raw message
//! delivery, the alarm JSON itself. One alarm per request becomes one alert:
//!
//! - labels: `alertname` = `AlarmName`; `namespace`, `metric` (from `Trigger`); `region` (the code
//!   in `AlarmArn`, else the `Region` text); `account` (`AWSAccountId`); each
//!   `Trigger.Dimensions` entry as `name` = `value` (our labels win on a clash); `severity`.
//! - severity: the first `severity=<word>` token of `AlarmDescription` if there is one, else
//!   `warning`, whatever the state: the labels of one alarm never change, so its `ALARM`,
//!   `INSUFFICIENT_DATA` and `OK` notifications are one alert however it is identified.
//! - status: `ALARM` and `INSUFFICIENT_DATA` (no data is not known to be fine) are firing, `OK`
//!   is resolved; other states refuse the request. The `state` annotation tells `ALARM` from
//!   `INSUFFICIENT_DATA`.
//! - annotations: `summary` = `NewStateReason`, `description` = `AlarmDescription`, `alarm_arn`,
//!   `state` (`NewStateValue`), `old_state` (`OldStateValue`).
//! - times: `StateChangeTime` (`2026-11-25T10:00:00.000+0000`), else the SNS `Timestamp`, else the
//!   ingest time; it is `starts_at`, and also `ends_at` of a resolved alarm.
//! - fingerprint: the hash of `AlarmArn`, else of account, region and alarm name.
//!
//! Subscribing: SNS first posts a `SubscriptionConfirmation`. It is not an alert, so the request
//! is accepted with nothing stored, and its `SubscribeURL` is logged at warn level. A decoder makes
//! no outbound calls: the operator confirms the subscription by opening that URL (or with
//! `aws sns confirm-subscription --token …`). `UnsubscribeConfirmation` is likewise accepted and
//! ignored. SNS signatures are not verified here; protect the route (network policy, a secret
//! path at the proxy) if the endpoint is reachable from the internet.

#[cfg(test)]
mod tests;

use crate::error::DecodeError;
use crate::sources::json_alerts::common::{Normalized, Obj, alert_batch, parse_time, type_name};
use crate::sources::validate::{Accepts, check_media, parse_json};
use crate::sources::{PushDecoder, PushRequest, SourceBatch};
use aiops_schemas::partition::hash_labels;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// SNS' `text/plain`, or JSON.
const ACCEPTS: Accepts = Accepts {
    types: &["text/plain", "application/json"],
    encodings: &[],
};

/// The CloudWatch-via-SNS decoder (`POST /api/alerts/webhook/cloudwatch`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudWatchDecoder;

impl PushDecoder for CloudWatchDecoder {
    fn name(&self) -> &'static str {
        "cloudwatch"
    }

    fn decode(&self, body: &[u8], req: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
        // SNS posts with `Content-Type: text/plain; charset=UTF-8`; raw delivery and hand-made
        // requests send JSON.
        check_media(req, ACCEPTS)?;
        let v: Value = parse_json(body).map_err(|e| DecodeError::json(&e, 0))?;
        let Value::Object(m) = v else {
            return Err(DecodeError::WrongType {
                at: "body".into(),
                field: "(body)".into(),
                expected: "an SNS message or a CloudWatch alarm object",
                got: type_name(&v),
            });
        };
        let top = Obj {
            at: "notification",
            m: &m,
        };
        let is_envelope = ["Type", "MessageId", "TopicArn"]
            .iter()
            .any(|k| m.contains_key(*k));
        if !is_envelope {
            // Raw message delivery: the body is the alarm.
            let alert = normalize(Obj { at: "alarm", m: &m }, None, req.now_ms)?;
            return alert_batch("cloudwatch", &[alert], req);
        }
        match top.req_str("Type")? {
            "Notification" => {}
            kind @ ("SubscriptionConfirmation" | "UnsubscribeConfirmation") => {
                let url = top.opt_nonempty("SubscribeURL")?.unwrap_or("(none)");
                let topic = top.opt_nonempty("TopicArn")?.unwrap_or("(none)");
                tracing::warn!(
                    kind,
                    topic_arn = topic,
                    subscribe_url = url,
                    "SNS {kind} received on the CloudWatch endpoint; nothing stored. To confirm \
                     the subscription, open the SubscribeURL once"
                );
                return Ok(Vec::new());
            }
            other => {
                return Err(top.invalid(
                    "Type",
                    format!(
                        "must be \"Notification\", \"SubscriptionConfirmation\" or \
                         \"UnsubscribeConfirmation\", got {other:?}"
                    ),
                ));
            }
        }
        let sent = match top.opt_nonempty("Timestamp")? {
            Some(s) => Some(parse_time(s).ok_or_else(|| {
                top.invalid("Timestamp", format!("{s:?} is not an RFC 3339 time"))
            })?),
            None => None,
        };
        let message = top.req_str("Message")?;
        let alarm: Map<String, Value> = match parse_json(message.as_bytes()) {
            Ok(Value::Object(a)) => a,
            Ok(other) => return Err(top.wrong("Message", "a JSON object (the alarm)", &other)),
            Err(e) => {
                return Err(top.invalid(
                    "Message",
                    format!("is not a CloudWatch alarm JSON document: {e}"),
                ));
            }
        };
        let alert = normalize(
            Obj {
                at: "alarm",
                m: &alarm,
            },
            sent,
            req.now_ms,
        )?;
        alert_batch("cloudwatch", &[alert], req)
    }
}

/// The region code and account of an alarm ARN (`arn:aws:cloudwatch:us-east-1:123…:alarm:Name`).
fn arn_parts(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_kw, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account) = (parts.next()?, parts.next()?);
    (arn_kw == "arn" && service == "cloudwatch" && !region.is_empty()).then_some((region, account))
}

/// The value of the first `severity=<word>` token of a description.
fn severity_token(description: &str) -> Option<&str> {
    let (_, rest) = description.split_once("severity=")?;
    let word = rest
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .next()?;
    (!word.is_empty()).then_some(word)
}

fn normalize(o: Obj<'_>, sent_ms: Option<i64>, now_ms: i64) -> Result<Normalized, DecodeError> {
    let name = o.req_str("AlarmName")?;
    let state = o.req_str("NewStateValue")?;
    let resolved = match state {
        "ALARM" | "INSUFFICIENT_DATA" => false,
        "OK" => true,
        other => {
            return Err(o.invalid(
                "NewStateValue",
                format!("must be \"ALARM\", \"OK\" or \"INSUFFICIENT_DATA\", got {other:?}"),
            ));
        }
    };
    let description = o.opt_nonempty("AlarmDescription")?;
    let arn = o.opt_nonempty("AlarmArn")?;
    let account = o.opt_text("AWSAccountId")?;
    let region_text = o.opt_nonempty("Region")?;
    let at = match o.opt_nonempty("StateChangeTime")? {
        Some(s) => parse_time(s).ok_or_else(|| {
            o.invalid(
                "StateChangeTime",
                format!("{s:?} is not a time like 2026-11-25T10:00:00.000+0000"),
            )
        })?,
        None => sent_ms.unwrap_or(now_ms),
    };

    let mut labels = BTreeMap::new();
    if let Some(t) = o.opt_obj("Trigger")? {
        let trig = Obj { at: o.at, m: t };
        match t.get("Dimensions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(dims)) => {
                for (j, d) in dims.iter().enumerate() {
                    let field = format!("Trigger.Dimensions[{j}]");
                    let Value::Object(dm) = d else {
                        return Err(o.wrong(&field, "an object {name, value}", d));
                    };
                    let dim = Obj { at: o.at, m: dm };
                    let (Some(k), Some(v)) = (dim.opt_nonempty("name")?, dim.opt_text("value")?)
                    else {
                        return Err(o.invalid(&field, "needs a non-empty \"name\" and \"value\""));
                    };
                    labels.insert(k.to_string(), v);
                }
            }
            Some(v) => return Err(o.wrong("Trigger.Dimensions", "an array", v)),
        }
        let field_err = |e: DecodeError| match e {
            DecodeError::WrongType {
                at,
                field,
                expected,
                got,
            } => DecodeError::WrongType {
                at,
                field: format!("Trigger.{field}"),
                expected,
                got,
            },
            e => e,
        };
        if let Some(ns) = trig.opt_nonempty("Namespace").map_err(field_err)? {
            labels.insert("namespace".into(), ns.to_string());
        }
        if let Some(metric) = trig.opt_nonempty("MetricName").map_err(field_err)? {
            labels.insert("metric".into(), metric.to_string());
        }
    }
    labels.insert("alertname".into(), name.to_string());
    let arn_region = arn.and_then(arn_parts);
    if let Some(region) = arn_region.map(|(r, _)| r).or(region_text) {
        labels.insert("region".into(), region.to_string());
    }
    if let Some(account) = account
        .clone()
        .or_else(|| arn_region.map(|(_, a)| a.to_string()))
        .filter(|a| !a.is_empty())
    {
        labels.insert("account".into(), account);
    }
    let severity = description.and_then(severity_token).unwrap_or("warning");
    labels.insert("severity".into(), severity.to_string());

    let mut annotations = BTreeMap::new();
    let mut annotate = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            annotations.insert(k.to_string(), v.to_string());
        }
    };
    annotate("summary", o.opt_nonempty("NewStateReason")?);
    annotate("description", description);
    annotate("alarm_arn", arn);
    annotate("state", Some(state));
    annotate("old_state", o.opt_nonempty("OldStateValue")?);

    let fingerprint = match arn {
        Some(arn) => hash_labels([("alarm_arn", arn)]),
        None => hash_labels([
            ("account", account.as_deref().unwrap_or("")),
            ("region", region_text.unwrap_or("")),
            ("alarm", name),
        ]),
    };
    Ok(Normalized {
        at: o.at.to_string(),
        fingerprint: format!("{fingerprint:016x}"),
        resolved,
        labels,
        annotations,
        starts_at_ms: at,
        ends_at_ms: resolved.then_some(at),
        generator_url: None,
    })
}
