//! The template miner's outputs as log messages, with ids derived from what caused them: a
//! change from the input message that carried its record, a window's counts and anomalies from
//! the window and their content.

use super::COUNTS_STREAM;
use aiops_detect::drain::Change;
use aiops_detect::templates::{TemplateAnomaly, TemplateChange, WindowCount};
use aiops_log::AppendMessage;
use aiops_schemas::arrow_array::{
    ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use aiops_schemas::arrow_schema::{ArrowError, DataType, Field, Schema};
use aiops_schemas::derived::{DERIVED_PREFIX, DerivedHeader, DerivedWhat, encode_derived};
use aiops_schemas::schema::{TIME_ZONE, time_type};
use aiops_schemas::{Envelope, EventBatchBuilder, Kind};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Message-id prefix of everything the miner appends.
pub const ID_PREFIX: &str = crate::wire::ids::TEMPLATES;

/// The name the miner writes as `pipeline` in derived headers and anomaly labels.
pub const MINER: &str = "log_templates";

use crate::wire::hash;

fn events_message(
    batch: &RecordBatch,
    range: (i64, i64),
    id: impl FnOnce(u64) -> String,
) -> Result<AppendMessage, String> {
    let env = Envelope::new(Kind::Events, MINER, 0, range, batch);
    let payload = aiops_schemas::encode(&env, batch).map_err(|e| e.to_string())?;
    Ok(AppendMessage {
        subject: Kind::Events.subject(0),
        msg_id: id(hash(&payload)),
        time_min_ms: range.0,
        time_max_ms: range.1,
        payload: Bytes::from(payload),
    })
}

/// The template changes of input message `input_seq` as one events message.
///
/// # Errors
/// A message if Arrow or the codec fails (a bug).
pub fn changes_message(
    input_seq: u64,
    changes: &[TemplateChange],
) -> Result<Option<AppendMessage>, String> {
    if changes.is_empty() {
        return Ok(None);
    }
    let mut b = EventBatchBuilder::new();
    for c in changes {
        let id = c.id.to_string();
        let change = match c.change {
            Change::New => "new",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        };
        b.push(
            c.time_ms,
            "log_template",
            &c.template,
            [
                ("service", c.service.as_str()),
                ("template_id", id.as_str()),
            ],
            [("template", c.template.as_str()), ("change", change)],
        );
    }
    let range = b.time_range().unwrap_or((0, 0));
    let batch = b.finish().map_err(|e| e.to_string())?;
    events_message(&batch, range, |h| {
        format!("{ID_PREFIX}c.{input_seq}.{h:016x}")
    })
    .map(Some)
}

/// The schema of the per-window counts stream, as pipelines and replays read it.
pub fn counts_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("revision", DataType::UInt32, false),
        Field::new("window_start", time_type(), false),
        Field::new("service", DataType::Utf8, false),
        Field::new("template_id", DataType::Utf8, false),
        Field::new("template", DataType::Utf8, false),
        Field::new("count", DataType::UInt64, false),
        Field::new("errors", DataType::UInt64, false),
    ]))
}

fn counts_batch(rows: &[&WindowCount]) -> Result<RecordBatch, ArrowError> {
    let ids: Vec<String> = rows
        .iter()
        .map(|c| {
            format!(
                "{COUNTS_STREAM}/{}/{}/{}/0",
                c.window_start_ms, c.service, c.id
            )
        })
        .collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(ids)),
        Arc::new(UInt32Array::from(vec![0u32; rows.len()])),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|c| c.window_start_ms))
                .with_timezone(TIME_ZONE),
        ),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|c| c.service.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|c| c.id.to_string()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|c| c.template.as_str()),
        )),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|c| c.count))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|c| c.errors))),
    ];
    RecordBatch::try_new(counts_schema(), cols)
}

/// The counts of closed windows, one derived message per window.
///
/// # Errors
/// A message if Arrow or the codec fails (a bug).
pub fn counts_messages(
    counts: &[WindowCount],
    window_ms: i64,
) -> Result<Vec<AppendMessage>, String> {
    let mut by_window: BTreeMap<i64, Vec<&WindowCount>> = BTreeMap::new();
    for c in counts {
        by_window.entry(c.window_start_ms).or_default().push(c);
    }
    let mut out = Vec::with_capacity(by_window.len());
    for (ws, rows) in by_window {
        let batch = counts_batch(&rows).map_err(|e| e.to_string())?;
        let header = DerivedHeader {
            what: DerivedWhat::Events,
            window_start_ms: ws,
            pipeline: MINER.to_string(),
        };
        let payload = encode_derived(&header, &batch).map_err(|e| e.to_string())?;
        out.push(AppendMessage {
            subject: format!("{DERIVED_PREFIX}{COUNTS_STREAM}"),
            msg_id: format!("{ID_PREFIX}w.{ws}.{:016x}", hash(&payload)),
            time_min_ms: ws,
            time_max_ms: ws.saturating_add(window_ms).saturating_sub(1),
            payload: Bytes::from(payload),
        });
    }
    Ok(out)
}

/// Template-level anomalies as anomaly events, one message per window.
///
/// # Errors
/// A message if Arrow or the codec fails (a bug).
pub fn anomalies_messages(anomalies: &[TemplateAnomaly]) -> Result<Vec<AppendMessage>, String> {
    let mut by_window: BTreeMap<i64, Vec<&TemplateAnomaly>> = BTreeMap::new();
    for a in anomalies {
        by_window.entry(a.window_start_ms).or_default().push(a);
    }
    let mut out = Vec::with_capacity(by_window.len());
    for (ws, rows) in by_window {
        let mut b = EventBatchBuilder::new();
        for a in rows {
            let id = a.id.map(|i| i.to_string()).unwrap_or_default();
            let message = match a.kind {
                aiops_detect::templates::AnomalyKind::NewTemplate => {
                    format!("{}: new log template: {}", a.service, a.template)
                }
                aiops_detect::templates::AnomalyKind::RateSurge => format!(
                    "{}: {} lines of template {} in the minute, baseline {:.1}: {}",
                    a.service, a.count, id, a.expected, a.template
                ),
                aiops_detect::templates::AnomalyKind::ErrorSurge => format!(
                    "{}: {} error lines in the minute, baseline {:.1}",
                    a.service, a.count, a.expected
                ),
            };
            let mut labels = vec![
                ("service", a.service.clone()),
                ("detector", "log_template".to_string()),
                ("pipeline", MINER.to_string()),
                ("kind", a.kind.as_str().to_string()),
            ];
            if !id.is_empty() {
                labels.push(("template_id", id.clone()));
            }
            b.push(
                ws,
                "anomaly",
                &message,
                labels,
                [
                    ("score", format!("{}", a.score)),
                    ("value", a.count.to_string()),
                    ("expected", format!("{}", a.expected)),
                    ("template", a.template.clone()),
                    ("direction", "up".to_string()),
                ],
            );
        }
        let batch = b.finish().map_err(|e| e.to_string())?;
        out.push(events_message(&batch, (ws, ws), |h| {
            format!("{ID_PREFIX}a.{ws}.{h:016x}")
        })?);
    }
    Ok(out)
}
