//! The running SQL source: one read-only session per pull.
//!
//! Each pull connects (to an address the outbound guard allowed), makes the session read-only
//! with a statement timeout, runs the query in a `READ ONLY` transaction with the range bound as
//! parameters, reads at most `max_rows + 1` rows, rolls back and closes. A connection per pull
//! (every `interval`, a minute by default) costs a handshake but never leaves a session open
//! in a state a failed pull left behind.

use super::config::{SqlConfig, Target, dialect_name};
use super::error::{PullError, classify};
use super::mapping::{Cell, Table};
use super::query::{Dialect, Param, Rewritten, rewrite};
use crate::error::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sinks::{Redactor, Secret};
use crate::sources::SourceBatch;
use crate::sources::range::{RangeSource, ScheduleConfig, TestReport};
use crate::sources::validate::IngestLimits;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Column, Connection, Row, TypeInfo, ValueRef};
use std::net::SocketAddr;
use std::time::Duration;

/// A PostgreSQL or MySQL/MariaDB range source.
pub struct SqlSource {
    cfg: SqlConfig,
    dialect: Dialect,
    target: Target,
    password: Option<Secret>,
    redactor: Redactor,
    query: Rewritten,
    outbound: OutboundPolicy,
    limits: IngestLimits,
}

impl std::fmt::Debug for SqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSource")
            .field("type", &dialect_name(self.dialect))
            .field("host", &self.target.host)
            .field("port", &self.target.port)
            .field("database", &self.target.database)
            .finish()
    }
}

impl SqlSource {
    /// A source for a config [`SqlConfig::build`] checked.
    ///
    /// # Errors
    /// [`SourceError::Config`] when the target, password or query is invalid.
    pub fn new(
        cfg: SqlConfig,
        dialect: Dialect,
        outbound: OutboundPolicy,
    ) -> Result<SqlSource, SourceError> {
        let name = dialect_name(dialect);
        let bad = |e: String| SourceError::Config(format!("{name} source: {e}"));
        let target = cfg.target(dialect).map_err(bad)?;
        let password = cfg
            .password
            .as_ref()
            .map(|p| p.resolve("password"))
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let query = rewrite(&cfg.query, dialect).map_err(|e| bad(e.to_string()))?;
        let redactor = match &password {
            Some(p) => Redactor::new(&[p.expose()]),
            None => Redactor::default(),
        };
        Ok(SqlSource {
            cfg,
            dialect,
            target,
            password,
            redactor,
            query,
            outbound,
            limits: IngestLimits::default(),
        })
    }

    /// The rows of `[from_ms, to_ms)` as a table, within the client-side timeout.
    async fn fetch(&self, from_ms: i64, to_ms: i64) -> Result<Table, PullError> {
        let limit = self.cfg.timeout + Duration::from_secs(2);
        match tokio::time::timeout(limit, self.fetch_inner(from_ms, to_ms)).await {
            Ok(r) => r,
            Err(_) => Err(PullError::Timeout {
                after: self.cfg.timeout,
            }),
        }
    }

    async fn fetch_inner(&self, from_ms: i64, to_ms: i64) -> Result<Table, PullError> {
        let addrs = self
            .outbound
            .resolve_target(&self.target.host, self.target.port)
            .await
            .map_err(|e| PullError::Refused(e.to_string()))?;
        let mut last = None;
        for addr in addrs {
            let r = match self.dialect {
                Dialect::Postgres => self.fetch_postgres(addr, from_ms, to_ms).await,
                _ => self.fetch_mysql(addr, from_ms, to_ms).await,
            };
            match r {
                Err(PullError::Connect(e)) => last = Some(PullError::Connect(e)),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| PullError::Connect("no address to connect to".into())))
    }

    fn classify(&self, e: sqlx::Error) -> PullError {
        classify(e, &self.target, self.cfg.timeout, &self.redactor)
    }

    async fn fetch_postgres(
        &self,
        addr: SocketAddr,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Table, PullError> {
        let timeout_ms = self.cfg.timeout.as_millis().to_string();
        let mut opts = PgConnectOptions::new_without_pgpass()
            .host(&addr.ip().to_string())
            .port(addr.port())
            .application_name("aiops")
            // Read-only and bounded for the whole session, before the first statement runs.
            .options([
                ("default_transaction_read_only", "on"),
                ("statement_timeout", timeout_ms.as_str()),
                ("TimeZone", "UTC"),
            ]);
        if !self.target.user.is_empty() {
            opts = opts.username(&self.target.user);
        }
        if !self.target.database.is_empty() {
            opts = opts.database(&self.target.database);
        }
        if let Some(p) = &self.password {
            opts = opts.password(p.expose());
        }
        let mut conn = PgConnection::connect_with(&opts)
            .await
            .map_err(|e| self.classify(e))?;
        let result = self.query_postgres(&mut conn, from_ms, to_ms).await;
        // Closing politely is best effort: the session is read-only and ends with the socket.
        let _ = conn.close().await;
        result
    }

    async fn query_postgres(
        &self,
        conn: &mut PgConnection,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Table, PullError> {
        sqlx::raw_sql("BEGIN TRANSACTION READ ONLY")
            .execute(&mut *conn)
            .await
            .map_err(|e| self.classify(e))?;
        let mut q = sqlx::query::<sqlx::Postgres>(AssertSqlSafe(self.query.sql.as_str()));
        for p in &self.query.params {
            q = match bind_value(*p, from_ms, to_ms) {
                Bound::Time(t) => q.bind(t),
                Bound::Int(v) => q.bind(v),
            };
        }
        let mut table = Table::default();
        let mut readers: Vec<PgReader> = Vec::new();
        {
            let mut rows = q.fetch(&mut *conn);
            while let Some(row) = rows.try_next().await.map_err(|e| self.classify(e))? {
                if table.rows.len() >= self.cfg.max_rows {
                    return Err(PullError::TooManyRows {
                        limit: self.cfg.max_rows,
                    });
                }
                if table.columns.is_empty() {
                    table.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                    readers = pg_readers(&row)?;
                }
                table.rows.push(pg_row(&row, &readers)?);
            }
        }
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *conn)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(table)
    }

    async fn fetch_mysql(
        &self,
        addr: SocketAddr,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Table, PullError> {
        let mut opts = MySqlConnectOptions::new()
            .host(&addr.ip().to_string())
            .port(addr.port())
            .timezone(Some("+00:00".to_string()));
        if !self.target.user.is_empty() {
            opts = opts.username(&self.target.user);
        }
        if !self.target.database.is_empty() {
            opts = opts.database(&self.target.database);
        }
        if let Some(p) = &self.password {
            opts = opts.password(p.expose());
        }
        let mut conn = MySqlConnection::connect_with(&opts)
            .await
            .map_err(|e| self.classify(e))?;
        let result = self.query_mysql(&mut conn, from_ms, to_ms).await;
        let _ = conn.close().await;
        result
    }

    async fn query_mysql(
        &self,
        conn: &mut MySqlConnection,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Table, PullError> {
        let version: String = sqlx::query_scalar::<sqlx::MySql, String>("SELECT VERSION()")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| self.classify(e))?;
        // MariaDB names its statement timeout differently (seconds, fractional); MySQL's
        // max_execution_time (ms) applies to SELECT, which is all a read-only session runs.
        // Both values are formatted from the configured Duration, never from user text.
        let timeout = if version.to_ascii_lowercase().contains("mariadb") {
            format!(
                "SET SESSION max_statement_time = {:.3}",
                self.cfg.timeout.as_secs_f64()
            )
        } else {
            format!(
                "SET SESSION max_execution_time = {}",
                self.cfg.timeout.as_millis()
            )
        };
        for stmt in [
            timeout.as_str(),
            "SET SESSION TRANSACTION READ ONLY",
            "START TRANSACTION READ ONLY",
        ] {
            sqlx::raw_sql(AssertSqlSafe(stmt))
                .execute(&mut *conn)
                .await
                .map_err(|e| self.classify(e))?;
        }
        let mut q = sqlx::query::<sqlx::MySql>(AssertSqlSafe(self.query.sql.as_str()));
        for p in &self.query.params {
            q = match bind_value(*p, from_ms, to_ms) {
                Bound::Time(t) => q.bind(t),
                Bound::Int(v) => q.bind(v),
            };
        }
        let mut table = Table::default();
        let mut readers: Vec<MyReader> = Vec::new();
        {
            let mut rows = q.fetch(&mut *conn);
            while let Some(row) = rows.try_next().await.map_err(|e| self.classify(e))? {
                if table.rows.len() >= self.cfg.max_rows {
                    return Err(PullError::TooManyRows {
                        limit: self.cfg.max_rows,
                    });
                }
                if table.columns.is_empty() {
                    table.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                    readers = my_readers(&row)?;
                }
                table.rows.push(my_row(&row, &readers)?);
            }
        }
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *conn)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(table)
    }

    fn map(&self, table: &Table, from_ms: i64, to_ms: i64) -> Result<Vec<SourceBatch>, PullError> {
        self.cfg
            .mapping
            .map(
                table,
                dialect_name(self.dialect),
                from_ms,
                to_ms,
                &self.limits,
            )
            .map_err(PullError::Mapping)
    }
}

/// A range value as bound.
enum Bound {
    Time(DateTime<Utc>),
    Int(i64),
}

fn bind_value(p: Param, from_ms: i64, to_ms: i64) -> Bound {
    let ms = p.ms(from_ms, to_ms);
    if p.is_timestamp() {
        Bound::Time(DateTime::from_timestamp_millis(ms).unwrap_or_default())
    } else {
        Bound::Int(ms)
    }
}

/// Up to three example rows of a table, as JSON objects, for a test report.
pub(crate) fn examples(table: &Table) -> Vec<serde_json::Value> {
    table
        .rows
        .iter()
        .take(3)
        .map(|row| {
            let obj: serde_json::Map<String, serde_json::Value> = table
                .columns
                .iter()
                .zip(row)
                .map(|(c, v)| {
                    let j = match v {
                        Cell::Null => serde_json::Value::Null,
                        Cell::Int(i) => (*i).into(),
                        Cell::UInt(u) => (*u).into(),
                        Cell::Float(f) => serde_json::Number::from_f64(*f)
                            .map_or(serde_json::Value::Null, serde_json::Value::Number),
                        Cell::Bool(b) => (*b).into(),
                        Cell::Decimal(s) | Cell::Text(s) => crate::error::bound_text(s, 256).into(),
                        Cell::TimeMs(ms) => DateTime::from_timestamp_millis(*ms)
                            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                            .unwrap_or_default()
                            .into(),
                    };
                    (c.clone(), j)
                })
                .collect();
            serde_json::Value::Object(obj)
        })
        .collect()
}

/// The report of a test pull of `[now - interval, now)`: connection and authentication problems
/// make `reachable` false; query and mapping problems are listed with `reachable` true.
pub(crate) fn report(
    result: Result<(Table, Vec<SourceBatch>), PullError>,
    from_ms: i64,
    to_ms: i64,
) -> TestReport {
    let mut r = TestReport {
        sample_from_ms: from_ms,
        sample_to_ms: to_ms,
        ..TestReport::default()
    };
    match result {
        Ok((table, batches)) => {
            r.reachable = true;
            r.rows.insert("result".into(), table.rows.len() as u64);
            for b in &batches {
                *r.rows.entry(b.kind.as_str().to_string()).or_insert(0) +=
                    b.batch.num_rows() as u64;
            }
            r.examples = examples(&table);
        }
        Err(e) => {
            r.reachable = !e.unreachable();
            r.problems.push(e.to_string());
        }
    }
    r
}

#[async_trait]
impl RangeSource for SqlSource {
    fn name(&self) -> &'static str {
        dialect_name(self.dialect)
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
            tracing::warn!(source = dialect_name(self.dialect), host = %self.target.host, error = %e, "SQL pull failed");
            e.into_source_error()
        })?;
        let rows = table.rows.len();
        let batches = self
            .map(&table, from_ms, to_ms)
            .map_err(PullError::into_source_error)?;
        tracing::debug!(
            source = dialect_name(self.dialect),
            rows,
            from_ms,
            to_ms,
            "SQL pull done"
        );
        Ok(batches)
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

/// How one column's cells are read, chosen from the first row's column type.
macro_rules! readers {
    ($reader:ident, $row:ty, $pick:ident, $read:ident, [$(($var:ident, $ty:ty, $conv:expr)),* $(,)?]) => {
        #[derive(Debug, Clone, Copy)]
        enum $reader { $($var),* }

        fn $pick(row: &$row) -> Result<Vec<$reader>, PullError> {
            let mut out = Vec::with_capacity(row.columns().len());
            for col in row.columns() {
                let ty = col.type_info().name().to_string();
                let mut found = None;
                $(
                    if found.is_none()
                        && <$ty as sqlx::Type<<$row as Row>::Database>>::compatible(col.type_info())
                    {
                        found = Some($reader::$var);
                    }
                )*
                out.push(found.ok_or_else(|| PullError::ColumnType {
                    column: col.name().to_string(),
                    type_name: ty,
                })?);
            }
            Ok(out)
        }

        fn $read(row: &$row, readers: &[$reader]) -> Result<Vec<Cell>, PullError> {
            let mut cells = Vec::with_capacity(readers.len());
            for (i, r) in readers.iter().enumerate() {
                let raw = row.try_get_raw(i).map_err(|e| PullError::Decode {
                    column: row.columns()[i].name().to_string(),
                    message: e.to_string(),
                })?;
                if raw.is_null() {
                    cells.push(Cell::Null);
                    continue;
                }
                let cell = match r {
                    $(
                        $reader::$var => {
                            let v: $ty = row.try_get(i).map_err(|e| PullError::Decode {
                                column: row.columns()[i].name().to_string(),
                                message: e.to_string(),
                            })?;
                            let conv = $conv;
                            conv(v)
                        }
                    )*
                };
                cells.push(cell);
            }
            Ok(cells)
        }
    };
}

fn naive_ms(t: NaiveDateTime) -> Cell {
    Cell::TimeMs(t.and_utc().timestamp_millis())
}

fn date_ms(d: NaiveDate) -> Cell {
    d.and_hms_opt(0, 0, 0).map_or(Cell::Null, naive_ms)
}

readers!(PgReader, PgRow, pg_readers, pg_row, [
    (Bool, bool, Cell::Bool),
    (I16, i16, |v: i16| Cell::Int(i64::from(v))),
    (I32, i32, |v: i32| Cell::Int(i64::from(v))),
    (I64, i64, Cell::Int),
    (F32, f32, |v: f32| Cell::Float(f64::from(v))),
    (F64, f64, Cell::Float),
    (Dec, rust_decimal::Decimal, |v: rust_decimal::Decimal| Cell::Decimal(v.to_string())),
    (TsTz, DateTime<Utc>, |v: DateTime<Utc>| Cell::TimeMs(v.timestamp_millis())),
    (Ts, NaiveDateTime, naive_ms),
    (Date, NaiveDate, date_ms),
    (Text, String, Cell::Text),
]);

readers!(MyReader, MySqlRow, my_readers, my_row, [
    (I64, i64, Cell::Int),
    (U64, u64, |v: u64| i64::try_from(v).map_or(Cell::UInt(v), Cell::Int)),
    (F32, f32, |v: f32| Cell::Float(f64::from(v))),
    (F64, f64, Cell::Float),
    (Dec, rust_decimal::Decimal, |v: rust_decimal::Decimal| Cell::Decimal(v.to_string())),
    (Ts, DateTime<Utc>, |v: DateTime<Utc>| Cell::TimeMs(v.timestamp_millis())),
    (Date, NaiveDate, date_ms),
    (Text, String, Cell::Text),
    (Bytes, Vec<u8>, |v: Vec<u8>| Cell::Text(String::from_utf8_lossy(&v).into_owned())),
    (Bool, bool, Cell::Bool),
]);
