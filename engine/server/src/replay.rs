//! Reads a time range of the log back as events, in log order: `aiops replay`.
//!
//! The time index finds where to start (`EventLog::seek_time`); messages whose event-time range
//! misses the window are skipped without decoding; rows are filtered to `[from, to)` exactly.
//! Replay reads up to the log head as it was when the replay started, so it terminates while
//! ingest continues.

use aiops_log::{EventLog, LogError};
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray, UInt64Array};
use aiops_schemas::arrow_schema::{ArrowError, DataType, Field, Schema};
use std::io::Write;
use std::sync::Arc;

/// Which events to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Inclusive lower bound on event time, Unix ms.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound on event time, Unix ms.
    pub to_ms: Option<i64>,
    /// Kinds to keep; empty keeps all.
    pub kinds: Vec<Kind>,
}

/// How replayed events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// One JSON object per event, with `seq`, `kind` and `source` added.
    Ndjson,
    /// Human-readable tables, one per log message.
    Table,
    /// Only the totals (for measuring replay speed).
    Count,
}

/// What a replay went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplaySummary {
    /// Log messages read.
    pub messages_read: u64,
    /// Messages decoded (overlapping the window and of a wanted kind).
    pub messages_decoded: u64,
    /// Events printed.
    pub events: u64,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading the log failed (including a corrupt record, which is never skipped).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A message could not be decoded.
    #[error("message {seq} ({subject}) could not be decoded: {reason}")]
    Decode {
        /// Its sequence.
        seq: u64,
        /// Its subject.
        subject: String,
        /// The codec error.
        reason: String,
    },
    /// Writing the output failed (e.g. a closed pipe).
    #[error("writing output: {0}")]
    Output(String),
}

fn keep_rows(batch: &RecordBatch, f: &ReplayFilter) -> Option<BooleanArray> {
    let ts = batch
        .column_by_name("time")?
        .as_primitive_opt::<TimestampMillisecondType>()?;
    let from = f.from_ms.unwrap_or(i64::MIN);
    let to = f.to_ms.unwrap_or(i64::MAX);
    Some(
        ts.values()
            .iter()
            .map(|t| Some(*t >= from && *t < to))
            .collect(),
    )
}

fn with_meta(
    batch: &RecordBatch,
    seq: u64,
    kind: Kind,
    source: &str,
) -> Result<RecordBatch, ArrowError> {
    let n = batch.num_rows();
    let mut fields: Vec<Field> = vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
    ];
    fields.extend(batch.schema().fields().iter().map(|f| f.as_ref().clone()));
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(vec![seq; n])),
        Arc::new(StringArray::from(vec![kind.as_str(); n])),
        Arc::new(StringArray::from(vec![source; n])),
    ];
    cols.extend(batch.columns().iter().cloned());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
}

/// Replays `filter` from `log` into `out` in `format`.
///
/// # Errors
/// [`ReplayError`] for log, decode or output failures; what was written before stays written.
pub async fn replay(
    log: &dyn EventLog,
    filter: &ReplayFilter,
    format: ReplayFormat,
    out: &mut (dyn Write + Send),
) -> Result<ReplaySummary, ReplayError> {
    let stats = log.stats().await?;
    let end = stats.next_seq;
    let start = match filter.from_ms {
        Some(ts) => log.seek_time(ts).await?,
        None => stats.first_seq,
    };
    let mut reader = log.reader(start).await?;
    let mut sum = ReplaySummary::default();
    let mut json =
        (format == ReplayFormat::Ndjson).then(|| arrow_json::LineDelimitedWriter::new(Vec::new()));
    let out_err = |e: std::io::Error| ReplayError::Output(e.to_string());
    while reader.position() < end {
        let records = reader.next_batch(256).await?;
        if records.is_empty() {
            break;
        }
        for r in records {
            if r.seq >= end {
                break;
            }
            sum.messages_read += 1;
            let Some(kind) = Kind::from_subject(&r.subject) else {
                continue;
            };
            if !filter.kinds.is_empty() && !filter.kinds.contains(&kind) {
                continue;
            }
            if filter.from_ms.is_some_and(|f| r.time_max_ms < f)
                || filter.to_ms.is_some_and(|t| r.time_min_ms >= t)
            {
                continue;
            }
            let decode_err = |reason: &dyn std::fmt::Display| ReplayError::Decode {
                seq: r.seq,
                subject: r.subject.clone(),
                reason: reason.to_string(),
            };
            let (env, batch) = aiops_schemas::decode(&r.payload).map_err(|e| decode_err(&e))?;
            sum.messages_decoded += 1;
            let batch = match keep_rows(&batch, filter) {
                Some(mask) if mask.true_count() < batch.num_rows() => {
                    arrow_select::filter::filter_record_batch(&batch, &mask)
                        .map_err(|e| decode_err(&e))?
                }
                _ => batch,
            };
            if batch.num_rows() == 0 {
                continue;
            }
            sum.events += batch.num_rows() as u64;
            match format {
                ReplayFormat::Count => {}
                ReplayFormat::Ndjson => {
                    let b =
                        with_meta(&batch, r.seq, kind, &env.source).map_err(|e| decode_err(&e))?;
                    if let Some(w) = json.as_mut() {
                        w.write(&b).map_err(|e| decode_err(&e))?;
                        let buf = w.get_mut();
                        out.write_all(buf).map_err(out_err)?;
                        buf.clear();
                    }
                }
                ReplayFormat::Table => {
                    let b =
                        with_meta(&batch, r.seq, kind, &env.source).map_err(|e| decode_err(&e))?;
                    let table = arrow_cast::pretty::pretty_format_batches(&[b])
                        .map_err(|e| decode_err(&e))?;
                    writeln!(out, "{table}").map_err(out_err)?;
                }
            }
        }
    }
    if format == ReplayFormat::Count {
        let line = serde_json::to_string(&sum).unwrap_or_default();
        writeln!(out, "{line}").map_err(out_err)?;
    }
    out.flush().map_err(out_err)?;
    Ok(sum)
}

/// Parses a time argument: Unix ms, `now`, RFC 3339, or a duration ago (`1h`, `30m ago`),
/// relative to `now_ms`.
///
/// # Errors
/// [`BadTime`], naming the accepted forms.
pub fn parse_time_arg(s: &str, now_ms: i64) -> Result<i64, BadTime> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if s == "now" {
        return Ok(now_ms);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s)
        && let Ok(d) = t.duration_since(std::time::UNIX_EPOCH)
    {
        return i64::try_from(d.as_millis()).map_err(|_| BadTime(s.to_string()));
    }
    if let Ok(d) = humantime::parse_duration(s.trim_end_matches(" ago")) {
        return Ok(now_ms - i64::try_from(d.as_millis()).map_err(|_| BadTime(s.to_string()))?);
    }
    Err(BadTime(s.to_string()))
}

/// A time argument that is none of the accepted forms (or out of range): the user must fix it.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read time {0:?}: use RFC 3339 (2026-11-24T10:00:00Z), Unix milliseconds, or a duration ago (1h)"
)]
pub struct BadTime(pub String);
