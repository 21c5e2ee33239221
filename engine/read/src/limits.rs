//! Limits of one read-side query — wall time, memory, result size — and the mapping of failures
//! to Postgres SQLSTATE codes, so every client (psql, Grafana, `aiops sql`) gets the same
//! clear error instead of a dropped connection or a stuck server.

use aiops_schemas::arrow_array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Query limits (`[sql]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// A query running longer is cancelled. Default 30s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Memory all running queries may hold for joins, sorts and aggregations together.
    /// Default 1 GiB.
    pub memory_bytes: usize,
    /// Largest result a query may return, bytes of Arrow data. Default 256 MiB.
    pub max_result_bytes: usize,
    /// Worker threads of the query runtime (separate from ingest and the HTTP API, so a heavy
    /// query cannot starve them). Default 2.
    pub threads: usize,
    /// Longest statement text, bytes. Default 1 MiB.
    pub max_statement_bytes: usize,
    /// Deepest expression nesting a statement may have (operators chained at one level count
    /// one level each); deeper statements are refused with 54001 before they are parsed.
    /// Default 256.
    pub max_expression_depth: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            timeout: Duration::from_secs(30),
            memory_bytes: 1 << 30,
            max_result_bytes: 256 << 20,
            threads: 2,
            max_statement_bytes: 1 << 20,
            max_expression_depth: 256,
        }
    }
}

/// A failed query: a SQLSTATE and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// Postgres SQLSTATE, e.g. `42P01` (undefined table).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

impl QueryError {
    /// An error with `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> QueryError {
        QueryError {
            code,
            message: message.into(),
        }
    }
}

/// The SQLSTATE for a DataFusion error.
pub fn classify(e: &DataFusionError) -> QueryError {
    let msg = e.to_string();
    let code = match e.find_root() {
        _ if msg.contains("ecursion limit") => "54001",
        _ if msg.contains("No field named") => "42703",
        DataFusionError::SQL(..) => "42601",
        DataFusionError::Plan(m) if m.contains("not found") && m.contains("able") => "42P01",
        DataFusionError::Plan(m) if m.contains("No field named") || m.contains("not found") => {
            "42703"
        }
        DataFusionError::Plan(m) if m.contains("function") => "42883",
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => "42000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ArrowError(..) if msg.contains("ivide by zero") => "22012",
        DataFusionError::ArrowError(..) => "22000",
        _ if msg.contains("ResourcesExhausted") || msg.contains("Resources exhausted") => "53200",
        // Execution errors come from what the query asked for (an argument out of range, a
        // regular expression too large, an overflowing `repeat`): the user's to fix.
        DataFusionError::Execution(_) | DataFusionError::Configuration(_) => "22023",
        // Reading the log or the archive failed: the system's problem, not the query's.
        DataFusionError::IoError(_) => "58030",
        _ => "XX000",
    };
    QueryError {
        code,
        message: bounded(&msg.replace("Error during planning: ", "")),
    }
}

/// Longest error message, characters: DataFusion and the parser quote the statement's text
/// (`Invalid function '<name>'`, `found: <token>`), which may be a megabyte.
const MAX_MESSAGE_CHARS: usize = 1024;

/// At most [`MAX_MESSAGE_CHARS`] of `s`, control characters escaped (a message goes into the
/// log; a newline in it would forge a line), the original size noted when cut.
pub fn bounded(s: &str) -> String {
    let n = s.chars().count();
    if n <= MAX_MESSAGE_CHARS && !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars().take(MAX_MESSAGE_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if n > MAX_MESSAGE_CHARS {
        out.push_str(&format!("… ({} bytes)", s.len()));
    }
    out
}

/// Runs `df` to completion within the limits: the whole result, or an error. Dropping the
/// future (timeout) cancels the plan's tasks.
///
/// # Errors
/// `57014` at the time limit, `54000` when the result is too large, `53200` at the memory
/// limit, else the classified execution error.
pub async fn collect(df: DataFrame, limits: &QueryLimits) -> Result<Vec<RecordBatch>, QueryError> {
    let max = limits.max_result_bytes;
    let run = async move {
        let mut stream = df.execute_stream().await.map_err(|e| classify(&e))?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| classify(&e))?;
            bytes += b.get_array_memory_size();
            if bytes > max {
                return Err(QueryError::new(
                    "54000",
                    format!(
                        "result exceeds the limit of {max} bytes (sql.max_result_bytes); add a LIMIT, a narrower time range or aggregate"
                    ),
                ));
            }
            out.push(b);
        }
        Ok(out)
    };
    match tokio::time::timeout(limits.timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(QueryError::new(
            "57014",
            format!(
                "canceling statement: it ran longer than the limit of {} (sql.timeout)",
                humantime_fmt(limits.timeout)
            ),
        )),
    }
}

fn humantime_fmt(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
