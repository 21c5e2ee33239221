//! OTLP logs → `logs` rows.
//!
//! - `time`: `timeUnixNano`, else `observedTimeUnixNano`, else the ingest time;
//! - `severity`: the word of `severityNumber` (1-4 trace, 5-8 debug, 9-12 info, 13-16 warn,
//!   17-20 error, 21-24 fatal), else `severityText` when it names a level, else `info`;
//! - `body`: a string body as it is, any other value as JSON;
//! - `labels` (the stream): the resource attributes, `service.name` as `service`;
//! - `attributes`: the record's attributes, then `severity_text`, `severity_number`,
//!   `trace_id` / `span_id` (lower-case hex), `event_name` and `otel.scope.name` when set and
//!   not already an attribute of that name.

use super::metrics::Mapped;
use super::names::severity;
use super::values::{to_json, to_text};
use crate::error::DecodeError;
use crate::sources::validate::LabelRules;
use crate::sources::{IngestLimits, SourceBatch};
use aiops_schemas::{Kind, LogBatchBuilder};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// Maps a request; records that cannot be stored are rejected alone (see [`Mapped`]).
///
/// # Errors
/// [`DecodeError::Internal`] only (a bug building the batch).
pub fn map_logs(
    req: &ExportLogsServiceRequest,
    now_ms: i64,
    limits: &IngestLimits,
    source: &'static str,
) -> Result<Mapped, DecodeError> {
    let mut out = Mapped::default();
    let mut b = LogBatchBuilder::new();
    let mut attrs: Vec<(String, String)> = Vec::new();
    for (r, rl) in req.resource_logs.iter().enumerate() {
        let labels: Vec<(String, String)> = rl
            .resource
            .as_ref()
            .map(|res| {
                res.attributes
                    .iter()
                    .map(|kv| {
                        let k = if kv.key == "service.name" {
                            "service".to_string()
                        } else {
                            kv.key.clone()
                        };
                        (k, to_text(kv.value.as_ref()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let at_res = format!("resourceLogs[{r}].resource");
        let resource_ok = limits.check_labels(
            &at_res,
            "attributes",
            LabelRules::Relaxed,
            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        for (s, sl) in rl.scope_logs.iter().enumerate() {
            if let Err(e) = &resource_ok {
                out.reject_n(sl.log_records.len() as u64, || e.to_string());
                continue;
            }
            let scope = sl.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            for (i, rec) in sl.log_records.iter().enumerate() {
                let at = || format!("resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]");
                let t_ns = if rec.time_unix_nano != 0 {
                    rec.time_unix_nano
                } else {
                    rec.observed_time_unix_nano
                };
                let t = if t_ns == 0 {
                    out.timeless = true;
                    now_ms
                } else {
                    (t_ns / 1_000_000) as i64
                };
                if let Err(e) = limits.check_time(at(), "timeUnixNano", t, now_ms) {
                    out.reject(e);
                    continue;
                }
                let body = match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
                    None => String::new(),
                    Some(Value::StringValue(s)) => s.clone(),
                    Some(_) => rec
                        .body
                        .as_ref()
                        .map(to_json)
                        .unwrap_or_default()
                        .to_string(),
                };
                attrs.clear();
                attrs.extend(
                    rec.attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), to_text(kv.value.as_ref()))),
                );
                let mut extra = |k: &str, v: String| {
                    if !v.is_empty() && !attrs.iter().any(|(a, _)| a == k) {
                        attrs.push((k.to_string(), v));
                    }
                };
                extra("severity_text", rec.severity_text.clone());
                if rec.severity_number != 0 {
                    extra("severity_number", rec.severity_number.to_string());
                }
                extra("trace_id", hex::encode(&rec.trace_id));
                extra("span_id", hex::encode(&rec.span_id));
                extra("event_name", rec.event_name.clone());
                extra("otel.scope.name", scope.to_string());
                let sev = severity(rec.severity_number, &rec.severity_text);
                b.push(
                    t,
                    &sev,
                    &body,
                    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                out.accepted += 1;
                out.rows += 1;
            }
        }
    }
    let range = b.time_range();
    out.batches = SourceBatch::single(Kind::Logs, source, range, b.finish())?;
    Ok(out)
}
