//! From a result table (named columns of typed cells) to metric, log or event batches.
//!
//! Shared by every tabular pull source (PostgreSQL, MySQL/MariaDB, ClickHouse): the database
//! driver turns its rows into [`Cell`]s, naming the column when a type cannot be read, and
//! [`RowMapping`] says which column is the time, which are values, labels, message, severity.
//! Rows outside the pulled range are dropped here (so a range never stores a row of another
//! range); every label set passes the shared ingest checks of
//! [`validate`](crate::sources::validate).

use crate::sources::SourceBatch;
use crate::sources::validate::{IngestLimits, LabelRules, check_event_type};
use aiops_schemas::{EventBatchBuilder, Kind, LogBatchBuilder, MetricBatchBuilder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One value of a result row, as read from the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Any integer type that fits an `i64`.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// NUMERIC / DECIMAL, as its exact text (`12.50`).
    Decimal(String),
    /// A boolean.
    Bool(bool),
    /// A point in time, Unix milliseconds (UTC; timestamps without a zone are read as UTC).
    TimeMs(i64),
    /// Text.
    Text(String),
}

/// A query result: column names and rows of cells (one cell per column).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names in result order.
    pub columns: Vec<String>,
    /// Rows; each has `columns.len()` cells.
    pub rows: Vec<Vec<Cell>>,
}

/// What the rows become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Metric samples: one per row and value column.
    #[serde(alias = "metric")]
    Metrics,
    /// Log records: one per row.
    #[serde(alias = "log")]
    Logs,
    /// Generic events: one per row.
    #[serde(alias = "event")]
    Events,
}

/// Unit of a numeric time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Unix seconds (Grafana's convention for epoch columns); fractions kept to the ms.
    #[default]
    S,
    /// Unix milliseconds.
    Ms,
    /// Unix microseconds.
    Us,
    /// Unix nanoseconds.
    Ns,
}

/// `[sources.mapping]`: how result columns become rows of the output kind.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RowMapping {
    /// `metrics`, `logs` or `events`.
    pub kind: OutputKind,
    /// The event-time column (timestamp, timestamp with time zone, datetime, date, epoch number
    /// in `time_unit`, or RFC 3339 / `YYYY-MM-DD HH:MM:SS[.fff]` text read as UTC). Default `time`.
    #[serde(default = "default_time_column")]
    pub time_column: String,
    /// Unit of a numeric time column. Default `s`.
    #[serde(default)]
    pub time_unit: TimeUnit,
    /// Metrics: the value columns; each gives one sample per row, named `metric_prefix` +
    /// the column name (alias columns in SQL to choose names). A NULL value gives no sample.
    #[serde(default)]
    pub value_columns: Vec<String>,
    /// Metrics: a column holding the metric name instead (then exactly one value column).
    #[serde(default)]
    pub name_column: Option<String>,
    /// Metrics: prefix of every metric name. Default empty.
    #[serde(default)]
    pub metric_prefix: String,
    /// Label columns. When absent: for metrics every column not otherwise used; for logs and
    /// events none (the remaining columns become attributes).
    #[serde(default)]
    pub label_columns: Option<Vec<String>>,
    /// Logs and events: attribute columns. When absent, every column not otherwise used.
    #[serde(default)]
    pub attribute_columns: Option<Vec<String>>,
    /// Logs: the body column (required); events: the message column (optional).
    #[serde(default)]
    pub message_column: Option<String>,
    /// Logs: the severity column (lower-cased); rows without one are `info`.
    #[serde(default)]
    pub severity_column: Option<String>,
    /// Events: the type of every event (`deploy`, `order`, …), unless `event_type_column` is set.
    #[serde(default)]
    pub event_type: Option<String>,
    /// Events: a column holding each event's type.
    #[serde(default)]
    pub event_type_column: Option<String>,
    /// Labels added to every row; they win over label columns of the same name.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_time_column() -> String {
    "time".to_string()
}

/// Why rows could not be mapped. The user must fix the query or the mapping.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingError {
    /// The mapping itself is inconsistent (checked when the source is built).
    #[error("mapping: {0}")]
    Invalid(String),
    /// A configured column is not in the result.
    #[error(
        "mapping: column {column:?} ({role}) is not in the query result (columns: {available})"
    )]
    MissingColumn {
        /// The configured column.
        column: String,
        /// What it was configured as (`time_column`, `value_columns`, …).
        role: &'static str,
        /// The result's columns.
        available: String,
    },
    /// A cell cannot be read as what its column is mapped to.
    #[error("row {row}, column {column:?} ({role}): {message}")]
    Cell {
        /// 1-based row number in the result.
        row: usize,
        /// The column.
        column: String,
        /// What it is mapped to.
        role: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A name or label set the ingest checks refuse.
    #[error("{message}")]
    Refused {
        /// 1-based row number.
        row: usize,
        /// The validator's message.
        message: String,
    },
    /// Building the batch failed: a bug in aiops.
    #[error("internal error building the batch (a bug in aiops): {0}")]
    Internal(String),
}

impl RowMapping {
    /// Checks the mapping on its own (before any query runs).
    ///
    /// # Errors
    /// [`MappingError::Invalid`] listing every problem.
    pub fn check(&self) -> Result<(), MappingError> {
        let mut problems = Vec::new();
        if self.time_column.is_empty() {
            problems.push("time_column must not be empty".to_string());
        }
        match self.kind {
            OutputKind::Metrics => {
                if self.value_columns.is_empty() {
                    problems.push("metrics need at least one value_columns entry".to_string());
                }
                if self.name_column.is_some() && self.value_columns.len() != 1 {
                    problems.push("with name_column, give exactly one value_columns entry".into());
                }
                if self.name_column.is_none() {
                    for c in &self.value_columns {
                        let name = format!("{}{c}", self.metric_prefix);
                        if !is_prometheus_name(&name) {
                            problems.push(format!(
                                "metric name {name:?} (metric_prefix + value column) is not a \
                                 Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*); alias the column"
                            ));
                        }
                    }
                }
                for (field, set) in [
                    ("message_column", self.message_column.is_some()),
                    ("severity_column", self.severity_column.is_some()),
                    ("event_type", self.event_type.is_some()),
                    ("event_type_column", self.event_type_column.is_some()),
                    ("attribute_columns", self.attribute_columns.is_some()),
                ] {
                    if set {
                        problems.push(format!("{field} is not used for metrics"));
                    }
                }
            }
            OutputKind::Logs => {
                if self.message_column.is_none() {
                    problems.push("logs need message_column (the log body)".to_string());
                }
                if !self.value_columns.is_empty() || self.name_column.is_some() {
                    problems.push("value_columns and name_column are for metrics only".into());
                }
                if self.event_type.is_some() || self.event_type_column.is_some() {
                    problems.push("event_type and event_type_column are for events only".into());
                }
            }
            OutputKind::Events => {
                match (&self.event_type, &self.event_type_column) {
                    (None, None) => {
                        problems.push("events need event_type or event_type_column".to_string())
                    }
                    (Some(_), Some(_)) => problems
                        .push("set only one of event_type and event_type_column".to_string()),
                    (Some(t), None) => {
                        if let Err(e) = check_event_type("mapping", "event_type", t) {
                            problems.push(e.to_string());
                        }
                    }
                    (None, Some(_)) => {}
                }
                if !self.value_columns.is_empty() || self.name_column.is_some() {
                    problems.push("value_columns and name_column are for metrics only".into());
                }
                if self.severity_column.is_some() {
                    problems.push("severity_column is for logs only".into());
                }
            }
        }
        let rules = self.label_rules();
        if let Err(e) = IngestLimits::default().check_labels(
            "mapping",
            "labels",
            rules,
            self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ) {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(MappingError::Invalid(problems.join("; ")))
        }
    }

    fn label_rules(&self) -> LabelRules {
        match self.kind {
            OutputKind::Metrics => LabelRules::Prometheus,
            OutputKind::Logs | OutputKind::Events => LabelRules::Relaxed,
        }
    }

    /// Maps `table` into at most one batch of the output kind, keeping only rows whose time is
    /// in `[from_ms, to_ms)`.
    ///
    /// # Errors
    /// [`MappingError`] naming the row, the column and the problem; nothing is kept then.
    pub fn map(
        &self,
        table: &Table,
        source: &'static str,
        from_ms: i64,
        to_ms: i64,
        limits: &IngestLimits,
    ) -> Result<Vec<SourceBatch>, MappingError> {
        // No rows: nothing to map (a driver reports no columns for an empty result).
        if table.rows.is_empty() {
            return Ok(Vec::new());
        }
        let cols = Resolved::new(self, &table.columns)?;
        let rules = self.label_rules();
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut attrs: Vec<(String, String)> = Vec::new();
        let built = match self.kind {
            OutputKind::Metrics => {
                let mut b = MetricBatchBuilder::new();
                for (i, row) in table.rows.iter().enumerate() {
                    let n = i + 1;
                    let t = cols.time(row, n, self.time_unit)?;
                    if t < from_ms || t >= to_ms {
                        continue;
                    }
                    cols.fill_labels(self, row, &mut labels);
                    limits
                        .check_labels(
                            RowAt(n),
                            "labels",
                            rules,
                            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        )
                        .map_err(|e| refused(n, e))?;
                    for (vi, column) in &cols.values {
                        let vi = *vi;
                        let Some(value) = number(&row[vi]).map_err(|m| MappingError::Cell {
                            row: n,
                            column: column.clone(),
                            role: "value_columns",
                            message: m,
                        })?
                        else {
                            continue;
                        };
                        let name = match cols.name {
                            Some(ni) => {
                                let name = text(&row[ni]).ok_or_else(|| MappingError::Cell {
                                    row: n,
                                    column: table.columns[ni].clone(),
                                    role: "name_column",
                                    message: "is NULL: every sample needs a metric name".into(),
                                })?;
                                format!("{}{name}", self.metric_prefix)
                            }
                            None => format!("{}{column}", self.metric_prefix),
                        };
                        limits
                            .check_metric_name(RowAt(n), "metric name", &name)
                            .map_err(|e| refused(n, e))?;
                        b.push(t, &name, labels.iter().map(|(k, v)| (k, v)), value);
                    }
                }
                SourceBatch::single(Kind::Metrics, source, b.time_range(), b.finish())
            }
            OutputKind::Logs => {
                let mut b = LogBatchBuilder::new();
                for (i, row) in table.rows.iter().enumerate() {
                    let n = i + 1;
                    let t = cols.time(row, n, self.time_unit)?;
                    if t < from_ms || t >= to_ms {
                        continue;
                    }
                    cols.fill_labels(self, row, &mut labels);
                    cols.fill_attributes(row, &mut attrs);
                    limits
                        .check_labels(
                            RowAt(n),
                            "labels",
                            rules,
                            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        )
                        .map_err(|e| refused(n, e))?;
                    let body = cols.message.map(|mi| text(&row[mi])).unwrap_or_default();
                    let severity = cols
                        .severity
                        .and_then(|si| text(&row[si]))
                        .map(|s| s.to_ascii_lowercase())
                        .unwrap_or_else(|| "info".to_string());
                    b.push(
                        t,
                        &severity,
                        body.as_deref().unwrap_or(""),
                        labels.iter().map(|(k, v)| (k, v)),
                        attrs.iter().map(|(k, v)| (k, v)),
                    );
                }
                SourceBatch::single(Kind::Logs, source, b.time_range(), b.finish())
            }
            OutputKind::Events => {
                let mut b = EventBatchBuilder::new();
                for (i, row) in table.rows.iter().enumerate() {
                    let n = i + 1;
                    let t = cols.time(row, n, self.time_unit)?;
                    if t < from_ms || t >= to_ms {
                        continue;
                    }
                    cols.fill_labels(self, row, &mut labels);
                    cols.fill_attributes(row, &mut attrs);
                    limits
                        .check_labels(
                            RowAt(n),
                            "labels",
                            rules,
                            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        )
                        .map_err(|e| refused(n, e))?;
                    let ty = match (cols.event_type, &self.event_type) {
                        (Some(ti), _) => text(&row[ti]).ok_or_else(|| MappingError::Cell {
                            row: n,
                            column: table.columns[ti].clone(),
                            role: "event_type_column",
                            message: "is NULL: every event needs a type".into(),
                        })?,
                        (None, Some(t)) => t.clone(),
                        (None, None) => {
                            return Err(MappingError::Invalid(
                                "events need event_type or event_type_column".into(),
                            ));
                        }
                    };
                    check_event_type(&format!("row {n}"), "event_type", &ty)
                        .map_err(|e| refused(n, e))?;
                    let message = cols.message.and_then(|mi| text(&row[mi]));
                    b.push(
                        t,
                        &ty,
                        message.as_deref().unwrap_or(""),
                        labels.iter().map(|(k, v)| (k, v)),
                        attrs.iter().map(|(k, v)| (k, v)),
                    );
                }
                SourceBatch::single(Kind::Events, source, b.time_range(), b.finish())
            }
        };
        built.map_err(|e| MappingError::Internal(e.to_string()))
    }
}

/// "row N", formatted only when a check fails.
struct RowAt(usize);

impl std::fmt::Display for RowAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}", self.0)
    }
}

fn refused(row: usize, e: crate::error::DecodeError) -> MappingError {
    MappingError::Refused {
        row,
        message: e.bounded().to_string(),
    }
}

/// Whether `s` is a Prometheus metric name.
fn is_prometheus_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Column indices of a mapping in one result.
struct Resolved {
    time: (usize, String),
    values: Vec<(usize, String)>,
    name: Option<usize>,
    message: Option<usize>,
    severity: Option<usize>,
    event_type: Option<usize>,
    labels: Vec<(usize, String)>,
    attributes: Vec<(usize, String)>,
}

impl Resolved {
    fn new(m: &RowMapping, columns: &[String]) -> Result<Resolved, MappingError> {
        let find = |c: &str, role: &'static str| -> Result<usize, MappingError> {
            columns
                .iter()
                .position(|x| x == c)
                .ok_or_else(|| MappingError::MissingColumn {
                    column: c.to_string(),
                    role,
                    available: columns.join(", "),
                })
        };
        let opt = |c: &Option<String>, role| c.as_deref().map(|c| find(c, role)).transpose();
        let time = find(&m.time_column, "time_column")?;
        let values = m
            .value_columns
            .iter()
            .map(|c| Ok((find(c, "value_columns")?, c.clone())))
            .collect::<Result<Vec<_>, MappingError>>()?;
        let name = opt(&m.name_column, "name_column")?;
        let message = opt(&m.message_column, "message_column")?;
        let severity = opt(&m.severity_column, "severity_column")?;
        let event_type = opt(&m.event_type_column, "event_type_column")?;
        let mut used: Vec<usize> = vec![time];
        used.extend(values.iter().map(|v| v.0));
        used.extend([name, message, severity, event_type].into_iter().flatten());
        let rest = |used: &[usize]| -> Vec<(usize, String)> {
            columns
                .iter()
                .enumerate()
                .filter(|(i, _)| !used.contains(i))
                .map(|(i, c)| (i, c.clone()))
                .collect()
        };
        let labels = match &m.label_columns {
            Some(cs) => cs
                .iter()
                .map(|c| Ok((find(c, "label_columns")?, c.clone())))
                .collect::<Result<Vec<_>, MappingError>>()?,
            None if m.kind == OutputKind::Metrics => rest(&used),
            None => Vec::new(),
        };
        used.extend(labels.iter().map(|l| l.0));
        let attributes = match (&m.attribute_columns, m.kind) {
            (_, OutputKind::Metrics) => Vec::new(),
            (Some(cs), _) => cs
                .iter()
                .map(|c| Ok((find(c, "attribute_columns")?, c.clone())))
                .collect::<Result<Vec<_>, MappingError>>()?,
            (None, _) => rest(&used),
        };
        Ok(Resolved {
            time: (time, columns[time].clone()),
            values,
            name,
            message,
            severity,
            event_type,
            labels,
            attributes,
        })
    }

    fn time(&self, row: &[Cell], n: usize, unit: TimeUnit) -> Result<i64, MappingError> {
        time_ms(&row[self.time.0], unit).map_err(|message| MappingError::Cell {
            row: n,
            column: self.time.1.clone(),
            role: "time_column",
            message,
        })
    }

    /// Label columns (NULL and empty values omitted, as Prometheus treats an empty label), then
    /// the mapping's static labels, which win.
    fn fill_labels(&self, m: &RowMapping, row: &[Cell], out: &mut Vec<(String, String)>) {
        out.clear();
        for (i, name) in &self.labels {
            if m.labels.contains_key(name) {
                continue;
            }
            if let Some(v) = text(&row[*i]).filter(|v| !v.is_empty()) {
                out.push((name.clone(), v));
            }
        }
        out.extend(m.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    fn fill_attributes(&self, row: &[Cell], out: &mut Vec<(String, String)>) {
        out.clear();
        for (i, name) in &self.attributes {
            if let Some(v) = text(&row[*i]) {
                out.push((name.clone(), v));
            }
        }
    }
}

/// A cell as a sample value; `None` for NULL (no sample).
fn number(c: &Cell) -> Result<Option<f64>, String> {
    Ok(Some(match c {
        Cell::Null => return Ok(None),
        Cell::Int(v) => *v as f64,
        Cell::UInt(v) => *v as f64,
        Cell::Float(v) => *v,
        Cell::Bool(v) => f64::from(u8::from(*v)),
        Cell::Decimal(s) => s
            .parse::<f64>()
            .map_err(|_| format!("decimal {s:?} is not a number"))?,
        Cell::Text(s) => s.trim().parse::<f64>().map_err(|_| {
            format!(
                "text {:?} is not a number (cast the column to a numeric type)",
                crate::error::bound_text(s, 64)
            )
        })?,
        Cell::TimeMs(_) => return Err("is a timestamp, not a number".into()),
    }))
}

/// A cell as label, body or attribute text; `None` for NULL.
fn text(c: &Cell) -> Option<String> {
    Some(match c {
        Cell::Null => return None,
        Cell::Int(v) => v.to_string(),
        Cell::UInt(v) => v.to_string(),
        Cell::Float(v) => v.to_string(),
        Cell::Bool(v) => v.to_string(),
        Cell::Decimal(s) | Cell::Text(s) => s.clone(),
        Cell::TimeMs(ms) => chrono::DateTime::from_timestamp_millis(*ms)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| ms.to_string()),
    })
}

/// A cell as an event time, Unix ms.
pub(crate) fn time_ms(c: &Cell, unit: TimeUnit) -> Result<i64, String> {
    let scale = |v: f64| -> Result<i64, String> {
        let ms = match unit {
            TimeUnit::S => v * 1000.0,
            TimeUnit::Ms => v,
            TimeUnit::Us => v / 1000.0,
            TimeUnit::Ns => v / 1_000_000.0,
        };
        if ms.is_finite() && ms.abs() < 1e16 {
            Ok(ms.floor() as i64)
        } else {
            Err(format!("{v} is not a time in unit {unit:?}"))
        }
    };
    match c {
        Cell::Null => Err("is NULL: every row needs a time".into()),
        Cell::TimeMs(ms) => Ok(*ms),
        Cell::Int(v) => match unit {
            TimeUnit::S => v
                .checked_mul(1000)
                .ok_or_else(|| format!("{v} s is out of range")),
            TimeUnit::Ms => Ok(*v),
            TimeUnit::Us => Ok(v.div_euclid(1000)),
            TimeUnit::Ns => Ok(v.div_euclid(1_000_000)),
        },
        Cell::UInt(v) => scale(*v as f64),
        Cell::Float(v) => scale(*v),
        Cell::Decimal(s) => scale(
            s.parse::<f64>()
                .map_err(|_| format!("decimal {s:?} is not a number"))?,
        ),
        Cell::Text(s) => parse_text_time(s).ok_or_else(|| {
            format!(
                "text {:?} is not a time (RFC 3339 or YYYY-MM-DD HH:MM:SS[.fff] in UTC)",
                crate::error::bound_text(s, 64)
            )
        }),
        Cell::Bool(_) => Err("is a boolean, not a time".into()),
    }
}

/// RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` / `YYYY-MM-DD` read as UTC (what ClickHouse and
/// MySQL print).
pub(crate) fn parse_text_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(ms) = crate::sources::json::parse_rfc3339_ms(s) {
        return Some(ms);
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(dt.and_utc().timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
}
