//! Log analysis over a time range (`GET /api/logs/analysis`, and the read side's table function
//! `log_analysis(service, from, to)`): per log template of the miner, its count in the range and
//! in a baseline, the change between them, its errors, whether it is new, whether it surged, a
//! few sample lines, and the runbooks and similar past incidents a knowledge hook links to it;
//! plus the services' error surges with their sample error lines.
//!
//! Everything comes from the log, so the answer is the same after `aiops rebuild` or a restart:
//! - counts from the miner's derived stream `log_templates_1m` (a window counts when its start is
//!   in the range; only windows the miner has closed, i.e. up to its watermark, are there);
//! - "new" from the miner's `log_template` events with `change = new` inside the range;
//! - surges from its anomaly events (`detector = log_template`) inside the range;
//! - samples from the `logs` table: lines of the range that the template matches now (the
//!   miner's parser matches each line without changing anything), the earliest three by time,
//!   so the choice does not depend on the order the scan returns rows in.
//!
//! Ranges are half-open, `[from, to)`. The baseline is by default the window of the same length
//! just before `from`; with another length its counts are scaled to the range's length before
//! the change is computed.
//!
//! What is bounded: at most [`MAX_RANGE_MS`] per range, [`MAX_TEMPLATES`] templates in the
//! answer (`truncated` says when more matched), [`MAX_ERROR_SURGES`] error surges,
//! [`SAMPLES`] samples each, [`MAX_SAMPLE_CHARS`] characters per sample, and the sample scan
//! reads at most [`MAX_SCAN_ROWS`] log lines within the query time limit (`samples_complete`
//! says when it stopped early).

use crate::read::ReadSide;
use aiops_detect::drain::{Drain, TemplateId};
use aiops_detect::templates::is_error_severity;
use aiops_read::limits::{QueryError, QueryLimits};
use aiops_runtime::templates::processor::TemplatesHandle;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::Int64Type;
use aiops_schemas::arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use aiops_schemas::arrow_schema::{DataType, Field, Schema, SchemaRef};
use aiops_schemas::schema::{TIME_ZONE, time_type};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Weak};

/// Longest range (and baseline) one analysis covers: 7 days.
pub const MAX_RANGE_MS: i64 = 7 * 86_400_000;
/// Templates in one answer at most (the rest is counted in `total_templates`).
pub const MAX_TEMPLATES: usize = 100;
/// Error surges in one answer at most (highest scores first).
pub const MAX_ERROR_SURGES: usize = 50;
/// Sample lines per template or error surge.
pub const SAMPLES: usize = 3;
/// Longest sample line, characters (longer lines are cut and end with `…`).
pub const MAX_SAMPLE_CHARS: usize = 2000;
/// Log lines the sample scan reads at most.
pub const MAX_SCAN_ROWS: u64 = 2_000_000;
/// The miner's window when no miner runs in this process (its default).
const DEFAULT_WINDOW_MS: i64 = 60_000;

/// Knowledge linked to what the analysis found: runbooks and similar past incidents. The
/// knowledge base implements it; without one both are empty arrays.
pub trait AnalysisKnowledge: Send + Sync {
    /// The runbooks linked to a template of `service` (a JSON array).
    fn runbooks(&self, service: &str, template_id: &str, template: &str) -> Value;
    /// Resolved past incidents similar to these templates of `service` (a JSON array).
    fn similar(&self, service: &str, template_ids: &[String]) -> Value;
}

/// A parameter the caller must fix: which one and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct BadParam {
    /// The parameter's name (`from`, `to`, `baseline_from`, `baseline_to`, `service`).
    pub param: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn bad(param: &'static str, message: impl Into<String>) -> BadParam {
    BadParam {
        param,
        message: message.into(),
    }
}

/// Why an analysis could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A query of the read side failed (its SQLSTATE says whose fault).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The read side has shut down (the process is stopping; retry on another node).
    #[error("the read side has shut down")]
    Closed,
    /// A query's result did not have the expected shape (a bug in aiops).
    #[error("log analysis: {0}")]
    Internal(String),
}

/// The parameters of one analysis as the caller wrote them (query string or SQL arguments).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawParams<'a> {
    /// Only this service (absent or empty: every service).
    pub service: Option<&'a str>,
    /// Start of the range (default an hour before `to`).
    pub from: Option<&'a str>,
    /// End of the range, exclusive (default now).
    pub to: Option<&'a str>,
    /// Start of the baseline (default `baseline_to` minus the range's length).
    pub baseline_from: Option<&'a str>,
    /// End of the baseline, exclusive (default `from`).
    pub baseline_to: Option<&'a str>,
}

/// One analysis: service filter and ranges in Unix ms, half-open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisRequest {
    /// Only this service; `None`: every service.
    pub service: Option<String>,
    /// Range start.
    pub from_ms: i64,
    /// Range end (exclusive).
    pub to_ms: i64,
    /// Baseline start.
    pub baseline_from_ms: i64,
    /// Baseline end (exclusive).
    pub baseline_to_ms: i64,
    /// Read up to [`SAMPLES`] sample lines per template and surge (default true); false skips
    /// the scan over the range's lines (`samples_complete` is then false).
    pub samples: bool,
}

/// A time parameter: what `/api/logs/search` accepts (RFC 3339, Unix ms, `now`, a duration ago
/// such as `1h`) and also `now-1h`.
fn parse_time(param: &'static str, v: &str, now_ms: i64) -> Result<i64, BadParam> {
    let v = v.trim();
    let v = v.strip_prefix("now-").unwrap_or(v);
    crate::replay::parse_time_arg(v, now_ms).map_err(|e| bad(param, e.to_string()))
}

fn check_span(
    from_param: &'static str,
    to_param: &'static str,
    from: i64,
    to: i64,
) -> Result<(), BadParam> {
    if from >= to {
        return Err(bad(
            from_param,
            format!("`{from_param}` ({from}) must be before `{to_param}` ({to})"),
        ));
    }
    if to.saturating_sub(from) > MAX_RANGE_MS {
        return Err(bad(
            to_param,
            format!(
                "`{from_param}`..`{to_param}` spans {} h, more than the {} h allowed",
                to.saturating_sub(from) / 3_600_000,
                MAX_RANGE_MS / 3_600_000
            ),
        ));
    }
    Ok(())
}

/// The request of `p` at wall-clock time `now_ms`.
///
/// # Errors
/// [`BadParam`] naming the parameter: a time none of the accepted forms, `from` not before
/// `to`, a range or baseline longer than [`MAX_RANGE_MS`].
pub fn parse_request(p: &RawParams<'_>, now_ms: i64) -> Result<AnalysisRequest, BadParam> {
    let to_ms =
        p.to.map(|v| parse_time("to", v, now_ms))
            .transpose()?
            .unwrap_or(now_ms);
    let from_ms = p
        .from
        .map(|v| parse_time("from", v, now_ms))
        .transpose()?
        .unwrap_or(to_ms.saturating_sub(3_600_000));
    check_span("from", "to", from_ms, to_ms)?;
    let len = to_ms - from_ms;
    let bto = p
        .baseline_to
        .map(|v| parse_time("baseline_to", v, now_ms))
        .transpose()?;
    let bfrom = p
        .baseline_from
        .map(|v| parse_time("baseline_from", v, now_ms))
        .transpose()?;
    let (baseline_from_ms, baseline_to_ms) = match (bfrom, bto) {
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (f, from_ms),
        (None, Some(t)) => (t.saturating_sub(len), t),
        (None, None) => (from_ms.saturating_sub(len), from_ms),
    };
    check_span(
        "baseline_from",
        "baseline_to",
        baseline_from_ms,
        baseline_to_ms,
    )?;
    let service = p
        .service
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if service.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(bad("service", "longer than 1024 bytes"));
    }
    Ok(AnalysisRequest {
        service,
        from_ms,
        to_ms,
        baseline_from_ms,
        baseline_to_ms,
        samples: true,
    })
}

/// What an analysis reads: the read side's session (held weakly: the session itself holds the
/// `log_analysis` table function) and the miner, when it runs in this process.
#[derive(Clone)]
pub struct AnalysisSources {
    ctx: Weak<SessionContext>,
    limits: QueryLimits,
    templates: Option<Arc<TemplatesHandle>>,
}

impl std::fmt::Debug for AnalysisSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisSources")
            .field("templates", &self.templates.is_some())
            .finish_non_exhaustive()
    }
}

impl AnalysisSources {
    /// The sources of a running read side and miner.
    pub fn new(read: &ReadSide, templates: Option<Arc<TemplatesHandle>>) -> AnalysisSources {
        AnalysisSources {
            ctx: Arc::downgrade(&read.ctx),
            limits: read.limits.clone(),
            templates,
        }
    }
}

/// One anomaly of the miner about a template, inside the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyRef {
    /// `new_template` or `rate_surge`.
    pub kind: String,
    /// The window it was found in, Unix ms.
    pub window_start_ms: i64,
    /// Lines in that window.
    pub value: Option<f64>,
    /// The baseline per window.
    pub expected: Option<f64>,
    /// How far past the threshold, `[0, 1]`.
    pub score: Option<f64>,
}

/// A sample log line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Sample {
    /// Its event time, Unix ms.
    pub time_ms: i64,
    /// Its body (cut at [`MAX_SAMPLE_CHARS`]).
    pub body: String,
    /// Its severity.
    pub severity: String,
}

/// One template of the answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateRow {
    /// The service whose parser holds it.
    pub service: String,
    /// Its stable id (16 hex digits).
    pub template_id: String,
    /// Its text as the miner last recorded it in the range (`<*>` where lines differ).
    pub template: String,
    /// Lines in the range.
    pub count: u64,
    /// Lines in the baseline.
    pub baseline_count: u64,
    /// The baseline count scaled to the range's length.
    pub expected: f64,
    /// `(count − expected) / expected`; `null` when the baseline had none.
    pub change: Option<f64>,
    /// Error-severity lines in the range.
    pub errors: u64,
    /// Error-severity lines in the baseline.
    pub baseline_errors: u64,
    /// When the miner first saw it, Unix ms (when known).
    pub first_seen_ms: Option<i64>,
    /// First seen inside the range.
    pub new: bool,
    /// The miner found a rate surge of it in the range.
    pub surge: bool,
    /// It had error lines in a window where its service's errors surged.
    pub error_surge: bool,
    /// The miner's anomalies about it in the range.
    pub anomalies: Vec<AnomalyRef>,
    /// Up to [`SAMPLES`] lines of the range it matches, earliest first.
    pub samples: Vec<Sample>,
    /// Linked runbooks (from the knowledge hook; `[]` without one).
    pub runbooks: Value,
    /// Similar past incidents (from the knowledge hook; `[]` without one).
    pub similar_incidents: Value,
}

/// A surge of a service's error-severity lines in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorSurge {
    /// The service.
    pub service: String,
    /// The window, Unix ms.
    pub window_start_ms: i64,
    /// Error lines in the window.
    pub count: Option<f64>,
    /// Their baseline per window.
    pub expected: Option<f64>,
    /// How far past the threshold, `[0, 1]`.
    pub score: Option<f64>,
    /// Templates with error lines in that window, most errors first.
    pub template_ids: Vec<String>,
    /// Up to [`SAMPLES`] error lines of the window, earliest first.
    pub samples: Vec<Sample>,
    /// Similar past incidents (from the knowledge hook; `[]` without one).
    pub similar_incidents: Value,
}

/// Sums over every template that matched (not only those in the answer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Lines in the range.
    pub count: u64,
    /// Lines in the baseline.
    pub baseline_count: u64,
    /// Error lines in the range.
    pub errors: u64,
    /// Error lines in the baseline.
    pub baseline_errors: u64,
}

/// The answer of one analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The service asked for (`null`: every service).
    pub service: Option<String>,
    /// Range start, Unix ms.
    pub from_ms: i64,
    /// Range end (exclusive).
    pub to_ms: i64,
    /// Baseline start.
    pub baseline_from_ms: i64,
    /// Baseline end (exclusive).
    pub baseline_to_ms: i64,
    /// The miner's window length, ms.
    pub window_ms: i64,
    /// The miner's watermark: windows ending after it are not counted yet.
    pub watermark_ms: Option<i64>,
    /// Templates: new and surging first, then by |change|, then by count.
    pub templates: Vec<TemplateRow>,
    /// Templates that matched before the cut at [`MAX_TEMPLATES`].
    pub total_templates: usize,
    /// Whether templates were left out.
    pub truncated: bool,
    /// Error surges of the range, highest score first.
    pub error_surges: Vec<ErrorSurge>,
    /// Sums over all matched templates.
    pub totals: Totals,
    /// Whether the sample scan read every line of the range (false: it stopped at the line or
    /// time limit, or no miner runs in this process to match lines).
    pub samples_complete: bool,
}

/// Runs one read-only query within the read side's limits.
async fn run(
    ctx: &SessionContext,
    limits: &QueryLimits,
    sql: &str,
    params: Vec<ScalarValue>,
) -> Result<Vec<RecordBatch>, QueryError> {
    let df = aiops_read::sandbox::dataframe(ctx, sql, Some(params.into()), limits).await?;
    aiops_read::limits::collect(df, limits).await
}

fn ts(ms: i64) -> ScalarValue {
    ScalarValue::TimestampMillisecond(Some(ms), Some(TIME_ZONE.into()))
}

fn internal(e: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::Internal(e.to_string())
}

/// Column `name` of `b` as UTF-8 strings (whatever string type the plan produced).
fn strings(b: &RecordBatch, name: &str) -> Result<StringArray, AnalysisError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| internal(format!("no column {name}")))?;
    let c = datafusion::arrow::compute::cast(c, &DataType::Utf8).map_err(internal)?;
    Ok(c.as_string::<i32>().clone())
}

fn ints(b: &RecordBatch, name: &str) -> Result<Int64Array, AnalysisError> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| internal(format!("no column {name}")))?;
    let c = datafusion::arrow::compute::cast(c, &DataType::Int64).map_err(internal)?;
    Ok(c.as_primitive::<Int64Type>().clone())
}

fn str_at(a: &StringArray, i: usize) -> String {
    if a.is_valid(i) {
        a.value(i).to_string()
    } else {
        String::new()
    }
}

fn int_at(a: &Int64Array, i: usize) -> Option<i64> {
    a.is_valid(i).then(|| a.value(i))
}

fn u(v: Option<i64>) -> u64 {
    u64::try_from(v.unwrap_or(0)).unwrap_or(0)
}

/// The service of a log or event row (the miner files lines without one under "").
const SERVICE_OF_LABELS: &str = "coalesce(element_at(labels, 'service')[1], '')";

/// Keeps the [`SAMPLES`] smallest (earliest) samples.
fn keep(set: &mut BTreeSet<Sample>, s: Sample) {
    if set.len() >= SAMPLES && set.last().is_some_and(|last| &s >= last) {
        return;
    }
    set.insert(s);
    while set.len() > SAMPLES {
        set.pop_last();
    }
}

fn cut(body: &str) -> String {
    if body.chars().count() <= MAX_SAMPLE_CHARS {
        return body.to_string();
    }
    let mut s: String = body.chars().take(MAX_SAMPLE_CHARS).collect();
    s.push('…');
    s
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Counts per template in the range and the baseline.
#[derive(Debug, Default)]
struct Counted {
    template: String,
    count: u64,
    errors: u64,
    baseline_count: u64,
    baseline_errors: u64,
}

/// One anomaly event as read.
struct AnomalyRow {
    time_ms: i64,
    service: String,
    kind: String,
    template_id: String,
    value: Option<f64>,
    expected: Option<f64>,
    score: Option<f64>,
}

/// The analysis of `req` over `src`; `knowledge` fills runbooks and similar incidents.
///
/// # Errors
/// [`AnalysisError`]: a query failed (limits included), or the read side is gone.
pub async fn analyze(
    src: &AnalysisSources,
    req: &AnalysisRequest,
    knowledge: Option<&dyn AnalysisKnowledge>,
) -> Result<Analysis, AnalysisError> {
    let ctx = src.ctx.upgrade().ok_or(AnalysisError::Closed)?;
    let limits = &src.limits;
    let (window_ms, watermark_ms) = match &src.templates {
        Some(h) => {
            let m = h.miner.read();
            (m.config().window_ms.max(1), m.watermark_ms())
        }
        None => (DEFAULT_WINDOW_MS, None),
    };

    // Counts of the range and the baseline, per (service, template).
    let mut params = vec![
        ts(req.from_ms),
        ts(req.to_ms),
        ts(req.baseline_from_ms),
        ts(req.baseline_to_ms),
    ];
    let mut filter = String::new();
    if let Some(s) = &req.service {
        params.push(ScalarValue::Utf8(Some(s.clone())));
        filter = format!(" AND service = ${}", params.len());
    }
    let in_range = "window_start >= $1 AND window_start < $2";
    let in_base = "window_start >= $3 AND window_start < $4";
    let sql = format!(
        "SELECT service, template_id, \
         sum(CASE WHEN {in_range} THEN count ELSE 0 END) AS count, \
         sum(CASE WHEN {in_range} THEN errors ELSE 0 END) AS errors, \
         sum(CASE WHEN {in_base} THEN count ELSE 0 END) AS baseline_count, \
         sum(CASE WHEN {in_base} THEN errors ELSE 0 END) AS baseline_errors, \
         last_value(template ORDER BY window_start) AS template \
         FROM log_templates_1m WHERE (({in_range}) OR ({in_base})){filter} \
         GROUP BY service, template_id"
    );
    let mut counted: BTreeMap<(String, String), Counted> = BTreeMap::new();
    match run(&ctx, limits, &sql, params).await {
        Ok(batches) => {
            for b in &batches {
                let (svc, id, tpl) = (
                    strings(b, "service")?,
                    strings(b, "template_id")?,
                    strings(b, "template")?,
                );
                let (c, e, bc, be) = (
                    ints(b, "count")?,
                    ints(b, "errors")?,
                    ints(b, "baseline_count")?,
                    ints(b, "baseline_errors")?,
                );
                for i in 0..b.num_rows() {
                    counted.insert(
                        (str_at(&svc, i), str_at(&id, i)),
                        Counted {
                            template: str_at(&tpl, i),
                            count: u(int_at(&c, i)),
                            errors: u(int_at(&e, i)),
                            baseline_count: u(int_at(&bc, i)),
                            baseline_errors: u(int_at(&be, i)),
                        },
                    );
                }
            }
        }
        // The miner has closed no window yet: the stream does not exist.
        Err(e) if e.code == "42P01" => {}
        Err(e) => return Err(e.into()),
    }

    // Templates first seen inside the range.
    let mut params = vec![ts(req.from_ms), ts(req.to_ms)];
    let mut filter = String::new();
    if let Some(s) = &req.service {
        params.push(ScalarValue::Utf8(Some(s.clone())));
        filter = format!(" AND {SERVICE_OF_LABELS} = ${}", params.len());
    }
    let sql = format!(
        "SELECT {SERVICE_OF_LABELS} AS service, \
         coalesce(element_at(labels, 'template_id')[1], '') AS template_id, \
         CAST(min(time) AS BIGINT) AS first_ms, \
         first_value(coalesce(element_at(attributes, 'template')[1], '') ORDER BY time) AS template \
         FROM events WHERE type = 'log_template' AND time >= $1 AND time < $2 \
         AND element_at(attributes, 'change')[1] = 'new'{filter} GROUP BY 1, 2"
    );
    let mut first_new: BTreeMap<(String, String), i64> = BTreeMap::new();
    for b in &run(&ctx, limits, &sql, params).await? {
        let (svc, id, first, tpl) = (
            strings(b, "service")?,
            strings(b, "template_id")?,
            ints(b, "first_ms")?,
            strings(b, "template")?,
        );
        for i in 0..b.num_rows() {
            let key = (str_at(&svc, i), str_at(&id, i));
            if let Some(t) = int_at(&first, i) {
                first_new.insert(key.clone(), t);
            }
            // A template created in the range whose windows are not closed yet.
            counted.entry(key).or_insert_with(|| Counted {
                template: str_at(&tpl, i),
                ..Counted::default()
            });
        }
    }

    // The miner's anomalies inside the range.
    let mut params = vec![ts(req.from_ms), ts(req.to_ms)];
    let mut filter = String::new();
    if let Some(s) = &req.service {
        params.push(ScalarValue::Utf8(Some(s.clone())));
        filter = format!(" AND {SERVICE_OF_LABELS} = ${}", params.len());
    }
    let sql = format!(
        "SELECT CAST(time AS BIGINT) AS t, {SERVICE_OF_LABELS} AS service, \
         coalesce(element_at(labels, 'kind')[1], '') AS kind, \
         coalesce(element_at(labels, 'template_id')[1], '') AS template_id, \
         element_at(attributes, 'value')[1] AS value, \
         element_at(attributes, 'expected')[1] AS expected, \
         element_at(attributes, 'score')[1] AS score \
         FROM events WHERE type = 'anomaly' AND time >= $1 AND time < $2 \
         AND element_at(labels, 'detector')[1] = 'log_template'{filter} \
         ORDER BY t, service, kind, template_id LIMIT 100000"
    );
    let mut anomalies = Vec::new();
    for b in &run(&ctx, limits, &sql, params).await? {
        let (t, svc, kind, id) = (
            ints(b, "t")?,
            strings(b, "service")?,
            strings(b, "kind")?,
            strings(b, "template_id")?,
        );
        let (value, expected, score) = (
            strings(b, "value")?,
            strings(b, "expected")?,
            strings(b, "score")?,
        );
        let num = |a: &StringArray, i: usize| -> Option<f64> {
            a.is_valid(i)
                .then(|| a.value(i).parse::<f64>().ok())
                .flatten()
                .filter(|x| x.is_finite())
        };
        for i in 0..b.num_rows() {
            anomalies.push(AnomalyRow {
                time_ms: int_at(&t, i).unwrap_or(0),
                service: str_at(&svc, i),
                kind: str_at(&kind, i),
                template_id: str_at(&id, i),
                value: num(&value, i),
                expected: num(&expected, i),
                score: num(&score, i),
            });
        }
    }

    // Error surges, highest score first; the templates with errors in their windows.
    let mut surges: Vec<ErrorSurge> = anomalies
        .iter()
        .filter(|a| a.kind == "error_surge")
        .map(|a| ErrorSurge {
            service: a.service.clone(),
            window_start_ms: a.time_ms,
            count: a.value,
            expected: a.expected,
            score: a.score,
            template_ids: Vec::new(),
            samples: Vec::new(),
            similar_incidents: Value::Array(Vec::new()),
        })
        .collect();
    surges.sort_by(|a, b| {
        b.score
            .unwrap_or(0.0)
            .total_cmp(&a.score.unwrap_or(0.0))
            .then(a.window_start_ms.cmp(&b.window_start_ms))
            .then(a.service.cmp(&b.service))
    });
    surges.truncate(MAX_ERROR_SURGES);
    let mut error_surge_templates: BTreeSet<(String, String)> = BTreeSet::new();
    if !surges.is_empty() {
        let windows: BTreeSet<i64> = surges.iter().map(|s| s.window_start_ms).collect();
        let lo = windows.first().copied().unwrap_or(req.from_ms);
        let hi = windows.last().copied().unwrap_or(req.from_ms);
        // The window starts are the miner's own integers, not user text.
        let list = windows
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT service, template_id, CAST(window_start AS BIGINT) AS ws, errors \
             FROM log_templates_1m WHERE window_start >= $1 AND window_start <= $2 \
             AND errors > 0 AND CAST(window_start AS BIGINT) IN ({list})"
        );
        let mut by_window: BTreeMap<(String, i64), Vec<(u64, String)>> = BTreeMap::new();
        match run(&ctx, limits, &sql, vec![ts(lo), ts(hi)]).await {
            Ok(batches) => {
                for b in &batches {
                    let (svc, id, ws, errs) = (
                        strings(b, "service")?,
                        strings(b, "template_id")?,
                        ints(b, "ws")?,
                        ints(b, "errors")?,
                    );
                    for i in 0..b.num_rows() {
                        by_window
                            .entry((str_at(&svc, i), int_at(&ws, i).unwrap_or(0)))
                            .or_default()
                            .push((u(int_at(&errs, i)), str_at(&id, i)));
                    }
                }
            }
            Err(e) if e.code == "42P01" => {}
            Err(e) => return Err(e.into()),
        }
        for s in &mut surges {
            if let Some(list) = by_window.get_mut(&(s.service.clone(), s.window_start_ms)) {
                list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                s.template_ids = list.iter().map(|x| x.1.clone()).collect();
                for id in &s.template_ids {
                    error_surge_templates.insert((s.service.clone(), id.clone()));
                }
            }
        }
    }

    // The rows, sorted and cut.
    let mut totals = Totals::default();
    let range_len = (req.to_ms - req.from_ms) as f64;
    let base_len = (req.baseline_to_ms - req.baseline_from_ms).max(1) as f64;
    let mut rows: Vec<TemplateRow> = Vec::with_capacity(counted.len());
    for ((service, template_id), c) in counted {
        totals.count += c.count;
        totals.errors += c.errors;
        totals.baseline_count += c.baseline_count;
        totals.baseline_errors += c.baseline_errors;
        let expected = c.baseline_count as f64 * range_len / base_len;
        let change = (expected > 0.0).then(|| round4((c.count as f64 - expected) / expected));
        let key = (service, template_id);
        let mut first_seen_ms = first_new.get(&key).copied();
        let new = first_seen_ms.is_some();
        if first_seen_ms.is_none()
            && let Some(h) = &src.templates
            && let Ok(raw) = u64::from_str_radix(&key.1, 16)
        {
            let m = h.miner.read();
            first_seen_ms = m
                .drain(&key.0)
                .and_then(|d| d.template(TemplateId(raw)))
                .and_then(|t| t.first_seen);
        }
        let mine: Vec<AnomalyRef> = anomalies
            .iter()
            .filter(|a| a.service == key.0 && a.template_id == key.1 && a.kind != "error_surge")
            .map(|a| AnomalyRef {
                kind: a.kind.clone(),
                window_start_ms: a.time_ms,
                value: a.value,
                expected: a.expected,
                score: a.score,
            })
            .collect();
        let surge = mine.iter().any(|a| a.kind == "rate_surge");
        let error_surge = error_surge_templates.contains(&key);
        rows.push(TemplateRow {
            service: key.0,
            template_id: key.1,
            template: c.template,
            count: c.count,
            baseline_count: c.baseline_count,
            expected: round4(expected),
            change,
            errors: c.errors,
            baseline_errors: c.baseline_errors,
            first_seen_ms,
            new,
            surge,
            error_surge,
            anomalies: mine,
            samples: Vec::new(),
            runbooks: Value::Array(Vec::new()),
            similar_incidents: Value::Array(Vec::new()),
        });
    }
    rows.sort_by(|a, b| {
        let flagged = |r: &TemplateRow| r.new || r.surge || r.error_surge;
        // No baseline counts as the largest change.
        let mag = |r: &TemplateRow| r.change.map_or(f64::INFINITY, f64::abs);
        flagged(b)
            .cmp(&flagged(a))
            .then(mag(b).total_cmp(&mag(a)))
            .then(b.count.cmp(&a.count))
            .then(a.service.cmp(&b.service))
            .then(a.template_id.cmp(&b.template_id))
    });
    let total_templates = rows.len();
    let truncated = rows.len() > MAX_TEMPLATES;
    rows.truncate(MAX_TEMPLATES);

    let samples_complete = if req.samples {
        fill_samples(&ctx, limits, src, req, window_ms, &mut rows, &mut surges).await?
    } else {
        false
    };

    if let Some(k) = knowledge {
        for r in &mut rows {
            r.runbooks = k.runbooks(&r.service, &r.template_id, &r.template);
            r.similar_incidents = k.similar(&r.service, std::slice::from_ref(&r.template_id));
        }
        for s in &mut surges {
            s.similar_incidents = k.similar(&s.service, &s.template_ids);
        }
    }
    Ok(Analysis {
        service: req.service.clone(),
        from_ms: req.from_ms,
        to_ms: req.to_ms,
        baseline_from_ms: req.baseline_from_ms,
        baseline_to_ms: req.baseline_to_ms,
        window_ms,
        watermark_ms,
        templates: rows,
        total_templates,
        truncated,
        error_surges: surges,
        totals,
        samples_complete,
    })
}

/// Scans the range's log lines once: each line the parser of its service matches to a template
/// of `rows` is a sample candidate of it, each error line in a surge window one of the surge.
/// Returns whether the scan read every line.
async fn fill_samples(
    ctx: &SessionContext,
    limits: &QueryLimits,
    src: &AnalysisSources,
    req: &AnalysisRequest,
    window_ms: i64,
    rows: &mut [TemplateRow],
    surges: &mut [ErrorSurge],
) -> Result<bool, AnalysisError> {
    if rows.is_empty() && surges.is_empty() {
        return Ok(true);
    }
    // Which row each (service, template) is, and a private copy of each service's parser
    // (matching needs its scratch buffers; the miner keeps running meanwhile).
    let mut wanted: HashMap<String, HashMap<TemplateId, usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if let Ok(raw) = u64::from_str_radix(&r.template_id, 16) {
            wanted
                .entry(r.service.clone())
                .or_default()
                .insert(TemplateId(raw), i);
        }
    }
    let mut drains: HashMap<String, Drain> = HashMap::new();
    if let Some(h) = &src.templates {
        let m = h.miner.read();
        for s in wanted.keys() {
            if let Some(d) = m.drain(s) {
                drains.insert(s.clone(), d.clone());
            }
        }
    }
    let surge_at: HashMap<(String, i64), usize> = surges
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.service.clone(), s.window_start_ms), i))
        .collect();
    if drains.is_empty() && surge_at.is_empty() {
        return Ok(src.templates.is_some() && rows.is_empty());
    }
    let mut row_samples: Vec<BTreeSet<Sample>> = vec![BTreeSet::new(); rows.len()];
    let mut surge_samples: Vec<BTreeSet<Sample>> = vec![BTreeSet::new(); surges.len()];

    let mut params = vec![ts(req.from_ms), ts(req.to_ms)];
    let mut filter = String::new();
    if let Some(s) = &req.service {
        params.push(ScalarValue::Utf8(Some(s.clone())));
        filter = format!(" AND {SERVICE_OF_LABELS} = ${}", params.len());
    }
    let sql = format!(
        "SELECT CAST(time AS BIGINT) AS t, severity, body, {SERVICE_OF_LABELS} AS service \
         FROM logs WHERE time >= $1 AND time < $2{filter}"
    );
    let df = aiops_read::sandbox::dataframe(ctx, &sql, Some(params.into()), limits).await?;
    let scan = async {
        let mut stream = df
            .execute_stream()
            .await
            .map_err(|e| aiops_read::limits::classify(&e))?;
        let mut read: u64 = 0;
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| aiops_read::limits::classify(&e))?;
            let (t, sev, body, svc) = (
                ints(&b, "t")?,
                strings(&b, "severity")?,
                strings(&b, "body")?,
                strings(&b, "service")?,
            );
            for i in 0..b.num_rows() {
                let Some(time_ms) = int_at(&t, i) else {
                    continue;
                };
                let service = if svc.is_valid(i) { svc.value(i) } else { "" };
                let text = if body.is_valid(i) { body.value(i) } else { "" };
                let severity = if sev.is_valid(i) { sev.value(i) } else { "" };
                if !surge_at.is_empty() && is_error_severity(severity) {
                    let ws = time_ms.div_euclid(window_ms) * window_ms;
                    if let Some(&k) = surge_at.get(&(service.to_string(), ws)) {
                        keep(
                            &mut surge_samples[k],
                            Sample {
                                time_ms,
                                body: cut(text),
                                severity: severity.to_string(),
                            },
                        );
                    }
                }
                if let (Some(d), Some(ids)) = (drains.get_mut(service), wanted.get(service))
                    && let Some(id) = d.match_only(text)
                    && let Some(&k) = ids.get(&id)
                {
                    keep(
                        &mut row_samples[k],
                        Sample {
                            time_ms,
                            body: cut(text),
                            severity: severity.to_string(),
                        },
                    );
                }
            }
            read += b.num_rows() as u64;
            if read >= MAX_SCAN_ROWS {
                return Ok::<bool, AnalysisError>(false);
            }
        }
        Ok(true)
    };
    // At the time limit the samples found so far are kept: the analysis is still worth having.
    let complete = match tokio::time::timeout(limits.timeout, scan).await {
        Ok(r) => r?,
        Err(_) => {
            tracing::warn!(
                from_ms = req.from_ms,
                to_ms = req.to_ms,
                "log analysis: the sample scan reached sql.timeout; samples are partial"
            );
            false
        }
    };
    for (r, s) in rows.iter_mut().zip(row_samples) {
        r.samples = s.into_iter().collect();
    }
    for (e, s) in surges.iter_mut().zip(surge_samples) {
        e.samples = s.into_iter().collect();
    }
    Ok(complete && src.templates.is_some())
}

/// The columns of `log_analysis(…)` on the read side.
pub fn table_schema() -> SchemaRef {
    let s = DataType::Utf8;
    let i = DataType::Int64;
    let f = DataType::Float64;
    let b = DataType::Boolean;
    Arc::new(Schema::new(vec![
        Field::new("service", s.clone(), false),
        Field::new("template_id", s.clone(), false),
        Field::new("template", s.clone(), false),
        Field::new("count", i.clone(), false),
        Field::new("baseline_count", i.clone(), false),
        Field::new("expected", f.clone(), false),
        Field::new("change", f, true),
        Field::new("errors", i.clone(), false),
        Field::new("baseline_errors", i, false),
        Field::new("first_seen", time_type(), true),
        Field::new("is_new", b.clone(), false),
        Field::new("surge", b.clone(), false),
        Field::new("error_surge", b, false),
        Field::new("anomaly_kinds", s.clone(), false),
        Field::new("samples", s, false),
    ]))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The template rows of `a` as one batch of [`table_schema`] (samples as a JSON array of bodies,
/// anomaly kinds comma-separated).
///
/// # Errors
/// Only if Arrow refuses the columns (a bug).
pub fn to_batch(a: &Analysis) -> Result<RecordBatch, DataFusionError> {
    let r = &a.templates;
    let strs = |f: &dyn Fn(&TemplateRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(r.iter().map(f)))
    };
    let cols: Vec<ArrayRef> = vec![
        strs(&|x| x.service.clone()),
        strs(&|x| x.template_id.clone()),
        strs(&|x| x.template.clone()),
        Arc::new(Int64Array::from_iter_values(
            r.iter().map(|x| to_i64(x.count)),
        )),
        Arc::new(Int64Array::from_iter_values(
            r.iter().map(|x| to_i64(x.baseline_count)),
        )),
        Arc::new(Float64Array::from_iter_values(r.iter().map(|x| x.expected))),
        Arc::new(Float64Array::from_iter(r.iter().map(|x| x.change))),
        Arc::new(Int64Array::from_iter_values(
            r.iter().map(|x| to_i64(x.errors)),
        )),
        Arc::new(Int64Array::from_iter_values(
            r.iter().map(|x| to_i64(x.baseline_errors)),
        )),
        Arc::new(
            TimestampMillisecondArray::from_iter(r.iter().map(|x| x.first_seen_ms))
                .with_timezone(TIME_ZONE),
        ),
        Arc::new(BooleanArray::from_iter(r.iter().map(|x| Some(x.new)))),
        Arc::new(BooleanArray::from_iter(r.iter().map(|x| Some(x.surge)))),
        Arc::new(BooleanArray::from_iter(
            r.iter().map(|x| Some(x.error_surge)),
        )),
        strs(&|x| {
            x.anomalies
                .iter()
                .map(|a| a.kind.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(",")
        }),
        strs(&|x| {
            let bodies: Vec<&str> = x.samples.iter().map(|s| s.body.as_str()).collect();
            serde_json::to_string(&bodies).unwrap_or_default()
        }),
    ];
    Ok(RecordBatch::try_new(table_schema(), cols)?)
}

/// The table function `log_analysis(service [, from [, to [, baseline_from, baseline_to]]])` of
/// the read side: the template rows of [`analyze`] (without runbooks and incidents). Arguments
/// are literals: the service (`''` or NULL for all), times as text in the forms the HTTP API
/// accepts, Unix ms or timestamps.
#[derive(Debug)]
pub struct LogAnalysisFunction {
    src: AnalysisSources,
}

impl LogAnalysisFunction {
    /// The function over `src`.
    pub fn new(src: AnalysisSources) -> LogAnalysisFunction {
        LogAnalysisFunction { src }
    }
}

/// A literal argument as text (`None` for NULL or absent).
fn arg_text(e: &Expr, name: &str) -> Result<Option<String>, DataFusionError> {
    let plan = |m: String| DataFusionError::Plan(m);
    let v = match e {
        Expr::Literal(v, _) => v,
        Expr::Cast(c) => return arg_text(&c.expr, name),
        _ => {
            return Err(plan(format!(
                "log_analysis: argument `{name}` must be a literal (text, Unix ms or a timestamp)"
            )));
        }
    };
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Int64(Some(n)) => n.to_string(),
        ScalarValue::Int32(Some(n)) => n.to_string(),
        ScalarValue::UInt64(Some(n)) => n.to_string(),
        ScalarValue::TimestampMillisecond(Some(ms), _) => ms.to_string(),
        ScalarValue::TimestampSecond(Some(s), _) => s.saturating_mul(1000).to_string(),
        ScalarValue::TimestampMicrosecond(Some(us), _) => us.div_euclid(1000).to_string(),
        ScalarValue::TimestampNanosecond(Some(ns), _) => ns.div_euclid(1_000_000).to_string(),
        other => {
            return Err(plan(format!(
                "log_analysis: argument `{name}` has type {}; use text, Unix ms or a timestamp",
                other.data_type()
            )));
        }
    }))
}

impl TableFunctionImpl for LogAnalysisFunction {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        const NAMES: [&str; 5] = ["service", "from", "to", "baseline_from", "baseline_to"];
        let exprs = args.exprs();
        if exprs.len() > NAMES.len() {
            return Err(DataFusionError::Plan(format!(
                "log_analysis takes at most 5 arguments (service, from, to, baseline_from, baseline_to), got {}",
                exprs.len()
            )));
        }
        let mut vals: [Option<String>; 5] = Default::default();
        for (i, e) in exprs.iter().enumerate() {
            vals[i] = arg_text(e, NAMES[i])?;
        }
        let raw = RawParams {
            service: vals[0].as_deref(),
            from: vals[1].as_deref(),
            to: vals[2].as_deref(),
            baseline_from: vals[3].as_deref(),
            baseline_to: vals[4].as_deref(),
        };
        let req = parse_request(&raw, crate::clock::now_ms())
            .map_err(|e| DataFusionError::Plan(format!("log_analysis: {e}")))?;
        Ok(Arc::new(LogAnalysisTable {
            src: self.src.clone(),
            req,
        }))
    }
}

/// One call of `log_analysis(…)`: the analysis runs when the query is planned for execution.
#[derive(Debug)]
struct LogAnalysisTable {
    src: AnalysisSources,
    req: AnalysisRequest,
}

#[async_trait]
impl TableProvider for LogAnalysisTable {
    fn schema(&self) -> SchemaRef {
        table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let a = analyze(&self.src, &self.req, None)
            .await
            .map_err(|e| match e {
                // Keep the inner query's own error text (its SQLSTATE is re-derived from it).
                AnalysisError::Query(q) => DataFusionError::Execution(format!("log_analysis: {q}")),
                other => DataFusionError::External(Box::new(other)),
            })?;
        let batch = to_batch(&a)?;
        let t = MemTable::try_new(table_schema(), vec![vec![batch]])?;
        t.scan(state, projection, filters, limit).await
    }
}

/// Registers `log_analysis(…)` on the read side's session (the HTTP SQL API, `aiops`'s Postgres
/// endpoint and workflow `sql` steps share it).
pub fn register_sql(read: &ReadSide, templates: Option<Arc<TemplatesHandle>>) {
    let src = AnalysisSources::new(read, templates);
    read.ctx
        .register_udtf("log_analysis", Arc::new(LogAnalysisFunction::new(src)));
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn req(p: RawParams<'_>) -> Result<AnalysisRequest, BadParam> {
        parse_request(&p, NOW)
    }

    #[test]
    fn defaults_are_the_last_hour_against_the_hour_before() {
        let r = req(RawParams::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.from_ms, r.to_ms), (NOW - 3_600_000, NOW));
        assert_eq!(
            (r.baseline_from_ms, r.baseline_to_ms),
            (NOW - 7_200_000, NOW - 3_600_000)
        );
        assert_eq!(r.service, None);
        let r = req(RawParams {
            from: Some("now-30m"),
            service: Some(" "),
            ..RawParams::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.from_ms, NOW - 1_800_000);
        assert_eq!(r.baseline_from_ms, NOW - 3_600_000);
        assert_eq!(r.service, None, "a blank service is every service");
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases: [(RawParams<'_>, &str); 5] = [
            (
                RawParams {
                    from: Some("yesterday-ish"),
                    ..RawParams::default()
                },
                "from",
            ),
            (
                RawParams {
                    to: Some("soon"),
                    ..RawParams::default()
                },
                "to",
            ),
            (
                RawParams {
                    from: Some("1000"),
                    to: Some("1000"),
                    ..RawParams::default()
                },
                "from",
            ),
            (
                RawParams {
                    from: Some("0"),
                    to: Some("864000000"),
                    ..RawParams::default()
                },
                "to",
            ),
            (
                RawParams {
                    baseline_from: Some("5000000"),
                    baseline_to: Some("4000000"),
                    ..RawParams::default()
                },
                "baseline_from",
            ),
        ];
        for (p, want) in cases {
            match req(p) {
                Err(e) => assert_eq!(e.param, want, "{e}"),
                Ok(r) => panic!("accepted {r:?}, expected an error naming {want}"),
            }
        }
    }

    #[test]
    fn samples_keep_the_earliest_three() {
        let mut set = BTreeSet::new();
        for t in [50, 10, 40, 20, 30, 5] {
            keep(
                &mut set,
                Sample {
                    time_ms: t,
                    body: format!("line {t}"),
                    severity: "info".into(),
                },
            );
        }
        let times: Vec<i64> = set.iter().map(|s| s.time_ms).collect();
        assert_eq!(times, vec![5, 10, 20]);
    }
}
