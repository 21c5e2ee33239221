//! The running ClickHouse source: one HTTP request per pull.

use super::config::ClickHouseConfig;
use crate::error::SourceError;
use crate::outbound::{OutboundPolicy, refusal_reason};
use crate::sinks::{Redactor, Secret};
use crate::sources::SourceBatch;
use crate::sources::datadog_query::source::read_bounded;
use crate::sources::range::{RangeSource, ScheduleConfig, TestReport};
use crate::sources::sql::error::PullError;
use crate::sources::sql::mapping::{Cell, Table, parse_text_time};
use crate::sources::sql::query::{Dialect, Rewritten, inline_values, rewrite};
use crate::sources::sql::source::report;
use crate::sources::validate::IngestLimits;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// A ClickHouse range source.
pub struct ClickHouseSource {
    cfg: ClickHouseConfig,
    password: Option<Secret>,
    redactor: Redactor,
    query: Rewritten,
    client: reqwest::Client,
    outbound: OutboundPolicy,
    limits: IngestLimits,
}

impl std::fmt::Debug for ClickHouseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSource")
            .field("url", &self.cfg.url)
            .finish()
    }
}

/// A `JSONCompact` answer.
#[derive(Debug, Deserialize)]
struct Compact {
    meta: Vec<Meta>,
    data: Vec<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

impl ClickHouseSource {
    /// A source for a checked config.
    ///
    /// # Errors
    /// [`SourceError::Config`] when the password, the query or the HTTP client is invalid.
    pub fn new(
        cfg: ClickHouseConfig,
        outbound: &OutboundPolicy,
    ) -> Result<ClickHouseSource, SourceError> {
        let password = cfg
            .password
            .as_ref()
            .map(|p| p.resolve("password"))
            .transpose()?;
        let query = rewrite(&cfg.query, cfg.dialect())
            .map_err(|e| SourceError::Config(format!("clickhouse source: {e}")))?;
        let redactor = match &password {
            Some(p) => Redactor::new(&[p.expose()]),
            None => Redactor::default(),
        };
        // The client waits a little longer than max_execution_time, so the server's own timeout
        // (with its clearer message) usually answers first.
        let client = outbound
            .client(cfg.timeout + Duration::from_secs(2))
            .map_err(|e| SourceError::Config(format!("clickhouse source: http client: {e}")))?;
        Ok(ClickHouseSource {
            cfg,
            password,
            redactor,
            query,
            client,
            outbound: outbound.clone(),
            limits: IngestLimits::default(),
        })
    }

    fn clean(&self, s: &str) -> String {
        crate::error::bound_text(&self.redactor.redact(s), 512)
    }

    async fn fetch(&self, from_ms: i64, to_ms: i64) -> Result<Table, PullError> {
        let mut url = self
            .outbound
            .check_url(&self.cfg.url)
            .map_err(|e| PullError::Refused(e.to_string()))?;
        let mut params: Vec<(String, String)> = vec![
            ("readonly".into(), "1".into()),
            (
                "max_execution_time".into(),
                self.cfg.timeout.as_secs().max(1).to_string(),
            ),
            ("max_result_rows".into(), self.cfg.max_rows.to_string()),
            ("result_overflow_mode".into(), "throw".into()),
            ("default_format".into(), "JSONCompact".into()),
        ];
        let sql = match self.cfg.dialect() {
            Dialect::ClickHouseInline => inline_values(&self.query, from_ms, to_ms),
            _ => {
                for p in &self.query.params {
                    let ms = p.ms(from_ms, to_ms);
                    let value = if p.is_timestamp() {
                        chrono::DateTime::from_timestamp_millis(ms)
                            .map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                            .unwrap_or_default()
                    } else {
                        ms.to_string()
                    };
                    params.push((format!("param_{}", p.clickhouse_name()), value));
                }
                self.query.sql.clone()
            }
        };
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &params {
                pairs.append_pair(k, v);
            }
        }
        let mut req = self
            .client
            .post(url)
            .header("X-ClickHouse-User", &self.cfg.user)
            .body(sql);
        if let Some(p) = &self.password {
            req = req.header("X-ClickHouse-Key", p.expose());
        }
        if let Some(db) = &self.cfg.database {
            req = req.header("X-ClickHouse-Database", db);
        }
        let resp = req.send().await.map_err(|e| match refusal_reason(&e) {
            Some(r) => PullError::Refused(r),
            None if e.is_timeout() => PullError::Timeout {
                after: self.cfg.timeout,
            },
            None => PullError::Connect(self.clean(&e.without_url().to_string())),
        })?;
        let status = resp.status();
        let body = read_bounded(resp)
            .await
            .map_err(|e| PullError::Connect(self.clean(&e)))?;
        if !status.is_success() {
            return Err(self.error(&String::from_utf8_lossy(&body)));
        }
        let answer: Compact = serde_json::from_slice(&body).map_err(|e| {
            PullError::Protocol(format!(
                "the answer is not JSONCompact ({e}); leave FORMAT out of the query"
            ))
        })?;
        if answer.data.len() > self.cfg.max_rows {
            return Err(PullError::TooManyRows {
                limit: self.cfg.max_rows,
            });
        }
        let mut table = Table {
            columns: answer.meta.iter().map(|m| m.name.clone()).collect(),
            rows: Vec::with_capacity(answer.data.len()),
        };
        for row in &answer.data {
            if row.len() != answer.meta.len() {
                return Err(PullError::Protocol(format!(
                    "a row has {} values for {} columns",
                    row.len(),
                    answer.meta.len()
                )));
            }
            let cells = row
                .iter()
                .zip(&answer.meta)
                .map(|(v, m)| {
                    cell(v, &m.ty).map_err(|message| PullError::Decode {
                        column: m.name.clone(),
                        message,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            table.rows.push(cells);
        }
        Ok(table)
    }

    /// A ClickHouse error (`Code: N, e.displayText() = DB::Exception: …`) as a typed error.
    fn error(&self, text: &str) -> PullError {
        let code: Option<u32> = text
            .trim_start()
            .strip_prefix("Code: ")
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok());
        let message = self.clean(text.trim());
        match code {
            // REQUIRED_PASSWORD, UNKNOWN_USER, WRONG_PASSWORD, AUTHENTICATION_FAILED.
            Some(194 | 192 | 193 | 516) => PullError::Auth {
                user: self.cfg.user.clone(),
                target: self.cfg.url.clone(),
                message,
            },
            // TIMEOUT_EXCEEDED.
            Some(159) => PullError::Timeout {
                after: self.cfg.timeout,
            },
            // READONLY.
            Some(164) => PullError::ReadOnly(message),
            // TOO_MANY_ROWS_OR_BYTES.
            Some(396) => PullError::TooManyRows {
                limit: self.cfg.max_rows,
            },
            _ => PullError::Query(message),
        }
    }

    fn map(&self, table: &Table, from_ms: i64, to_ms: i64) -> Result<Vec<SourceBatch>, PullError> {
        self.cfg
            .mapping
            .map(table, "clickhouse", from_ms, to_ms, &self.limits)
            .map_err(PullError::Mapping)
    }
}

/// A JSON value of a column of ClickHouse type `ty` as a cell.
fn cell(v: &Value, ty: &str) -> Result<Cell, String> {
    if v.is_null() {
        return Ok(Cell::Null);
    }
    let base = strip_wrappers(ty);
    let text = || match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if base.starts_with("Int") || base.starts_with("UInt") {
        let t = text();
        return t
            .parse::<i64>()
            .map(Cell::Int)
            .or_else(|_| t.parse::<u64>().map(Cell::UInt))
            .map_err(|_| format!("{t:?} is not an integer ({ty})"));
    }
    if base.starts_with("Float") {
        return match v {
            Value::Number(n) => n
                .as_f64()
                .map(Cell::Float)
                .ok_or_else(|| format!("{n} ({ty})")),
            _ => text()
                .parse::<f64>()
                .map(Cell::Float)
                .map_err(|_| format!("{:?} is not a number ({ty})", text())),
        };
    }
    if base.starts_with("Decimal") {
        return Ok(Cell::Decimal(text()));
    }
    if base.starts_with("DateTime") || base.starts_with("Date") {
        let t = text();
        // 18.x prints the zero time as all zeros.
        if t.starts_with("0000-00-00") {
            return Ok(Cell::TimeMs(0));
        }
        return parse_text_time(&t)
            .map(Cell::TimeMs)
            .ok_or_else(|| format!("{t:?} is not a time ({ty})"));
    }
    if base == "Bool" {
        return Ok(Cell::Bool(v.as_bool().unwrap_or(text() == "true")));
    }
    Ok(Cell::Text(text()))
}

/// `Nullable(LowCardinality(String))` → `String`.
fn strip_wrappers(ty: &str) -> &str {
    let mut t = ty;
    for w in ["Nullable(", "LowCardinality("] {
        while let Some(inner) = t.strip_prefix(w).and_then(|r| r.strip_suffix(')')) {
            t = inner;
        }
    }
    t
}

#[async_trait]
impl RangeSource for ClickHouseSource {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    fn interval(&self) -> Duration {
        self.cfg.interval
    }

    fn max_range(&self) -> Duration {
        self.cfg.max_range
    }

    fn schedule(&self) -> ScheduleConfig {
        self.cfg.schedule.clone()
    }

    async fn pull(&self, from_ms: i64, to_ms: i64) -> Result<Vec<SourceBatch>, SourceError> {
        let table = self.fetch(from_ms, to_ms).await.map_err(|e| {
            tracing::warn!(source = "clickhouse", error = %e, "ClickHouse pull failed");
            e.into_source_error()
        })?;
        self.map(&table, from_ms, to_ms)
            .map_err(PullError::into_source_error)
    }

    async fn test(&self, now_ms: i64) -> Result<TestReport, SourceError> {
        let from = now_ms - self.cfg.interval.as_millis() as i64;
        let result = match self.fetch(from, now_ms).await {
            Ok(t) => self.map(&t, from, now_ms).map(|b| (t, b)),
            Err(e) => Err(e),
        };
        Ok(report(result, from, now_ms))
    }
}
