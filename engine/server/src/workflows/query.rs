//! The built-in `sql` and `verify` calls: a SQL query over the log's metrics, logs, alerts and
//! events in a time window (plus the pipelines' reference tables), planned and run by
//! DataFusion. Parameters bind as `$name` placeholders, never spliced into the SQL text, so an
//! alert label cannot change a query.

use aiops_log::EventLog;
use aiops_read::limits::QueryLimits;
use aiops_runtime::workflows::executor::QueryError;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::{Array, BooleanArray, RecordBatch};
use aiops_schemas::{Kind, schema_for};
use datafusion::common::ParamValues;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Rows a `sql` step returns at most.
pub const MAX_ROWS: usize = 1000;

/// Runs the queries.
pub struct QueryEngine {
    log: Arc<dyn EventLog>,
    tables_dir: Option<PathBuf>,
    limits: QueryLimits,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("tables_dir", &self.tables_dir)
            .finish()
    }
}

fn param_values(params: Option<&Value>) -> Vec<(String, ScalarValue)> {
    let Some(Value::Object(o)) = params else {
        return Vec::new();
    };
    o.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
                Value::Number(n) if n.is_i64() => ScalarValue::Int64(n.as_i64()),
                Value::Number(n) => ScalarValue::Float64(n.as_f64()),
                Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
                Value::Null => ScalarValue::Utf8(None),
                other => ScalarValue::Utf8(Some(other.to_string())),
            };
            (k.clone(), s)
        })
        .collect()
}

fn time_filter(b: &RecordBatch, from: i64, to: i64) -> Option<RecordBatch> {
    let t = b
        .column_by_name("time")?
        .as_primitive_opt::<aiops_schemas::arrow_array::types::TimestampMillisecondType>()?;
    let mask: BooleanArray = (0..t.len())
        .map(|i| Some(t.is_valid(i) && t.value(i) >= from && t.value(i) <= to))
        .collect();
    arrow_select::filter::filter_record_batch(b, &mask).ok()
}

impl QueryEngine {
    /// Queries over `log`, with the reference tables of `tables_dir`, each within `limits`
    /// (the read side's `[sql]` limits: time, memory, result size, statement size and depth).
    pub fn new(
        log: Arc<dyn EventLog>,
        tables_dir: Option<PathBuf>,
        limits: QueryLimits,
    ) -> QueryEngine {
        QueryEngine {
            log,
            tables_dir,
            limits,
        }
    }

    async fn inputs(
        &self,
        from: i64,
        to: i64,
    ) -> Result<BTreeMap<Kind, Vec<RecordBatch>>, QueryError> {
        let start = self.log.seek_time(from).await.map_err(QueryError::of)?;
        let mut r = self.log.reader(start).await.map_err(QueryError::of)?;
        let mut out: BTreeMap<Kind, Vec<RecordBatch>> = BTreeMap::new();
        loop {
            let batch = r.next_batch(1024).await.map_err(QueryError::of)?;
            if batch.is_empty() {
                return Ok(out);
            }
            for rec in batch {
                let Some(kind) = Kind::from_subject(&rec.subject) else {
                    continue;
                };
                if rec.time_max_ms < from || rec.time_min_ms > to {
                    continue;
                }
                let Ok((_, b)) = aiops_schemas::decode(&rec.payload) else {
                    continue;
                };
                if let Some(f) = time_filter(&b, from, to)
                    && f.num_rows() > 0
                {
                    out.entry(kind).or_default().push(f);
                }
            }
        }
    }

    async fn run(
        &self,
        sql: &str,
        params: Option<&Value>,
        from: i64,
        to: i64,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let mut inputs = self.inputs(from, to).await?;
        let ctx = aiops_sql::catalog::session_with_inputs(|kind| {
            let batches = inputs.remove(&kind).unwrap_or_default();
            match MemTable::try_new(schema_for(kind), vec![batches]) {
                Ok(t) => Arc::new(t),
                Err(_) => Arc::new(datafusion::catalog::empty::EmptyTable::new(schema_for(
                    kind,
                ))),
            }
        })
        .map_err(QueryError::of)?;
        if let Some(dir) = &self.tables_dir
            && dir.is_dir()
        {
            let tables = aiops_sql::reference::load_dir(dir).map_err(QueryError::of)?;
            aiops_sql::reference::register(&ctx, &tables).map_err(QueryError::of)?;
        }
        // The step's own memory pool: a runaway step fails alone, with 53200.
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .build_arc()
            .map_err(QueryError::of)?;
        let ctx = SessionContext::new_with_state(
            SessionStateBuilder::new_from_existing(ctx.state())
                .with_runtime_env(runtime)
                .build(),
        );
        let pv = param_values(params);
        let pv = (!pv.is_empty()).then(|| ParamValues::from(pv));
        let describe = |e: aiops_read::limits::QueryError| {
            QueryError::of(format_args!("sql: {} (SQLSTATE {})", e.message, e.code))
        };
        let df = aiops_read::sandbox::dataframe(&ctx, sql, pv, &self.limits)
            .await
            .map_err(describe)?;
        let df = df.limit(0, Some(MAX_ROWS)).map_err(QueryError::of)?;
        aiops_read::limits::collect(df, &self.limits)
            .await
            .map_err(describe)
    }

    /// A `sql` step: rows as JSON objects, over the window `[at − window, at]`.
    ///
    /// # Errors
    /// A missing `query`, a planning or execution error.
    pub async fn sql(
        &self,
        params: &Map<String, Value>,
        at_ms: i64,
        window_ms: i64,
    ) -> Result<Value, QueryError> {
        let q = params
            .get("query")
            .and_then(Value::as_str)
            .ok_or_else(|| QueryError::of("sql step: `with.query` (a SQL string) is required"))?;
        let batches = self
            .run(q, params.get("params"), at_ms - window_ms, at_ms)
            .await?;
        let rows = aiops_read::json::rows_json(&batches).map_err(QueryError::of)?;
        Ok(Value::Array(rows))
    }

    /// A `verify`: the first column of the first row, over `[at − window, at]`. No row or NULL
    /// is false.
    ///
    /// # Errors
    /// A missing `sql`, a planning error, a first column that is not boolean.
    pub async fn verify(
        &self,
        params: &Map<String, Value>,
        at_ms: i64,
    ) -> Result<bool, QueryError> {
        let q = params
            .get("sql")
            .and_then(Value::as_str)
            .ok_or_else(|| QueryError::of("verify: `sql` is required"))?;
        let window = params
            .get("window")
            .and_then(Value::as_str)
            .map(aiops_workflow::compile::duration_ms)
            .transpose()
            .map_err(QueryError::of)?
            .unwrap_or(60_000);
        let batches = self
            .run(q, params.get("params"), at_ms - window, at_ms)
            .await?;
        let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(false);
        };
        let col = b.column(0);
        let Some(v) = col.as_boolean_opt() else {
            return Err(QueryError::of(format_args!(
                "verify: the first column must be boolean, got {}",
                col.data_type()
            )));
        };
        Ok(v.is_valid(0) && v.value(0))
    }
}

#[async_trait::async_trait]
impl aiops_runtime::workflows::executor::Queries for QueryEngine {
    async fn sql(
        &self,
        params: &Map<String, Value>,
        at_ms: i64,
        window_ms: i64,
    ) -> Result<Value, QueryError> {
        QueryEngine::sql(self, params, at_ms, window_ms).await
    }

    async fn verify(&self, params: &Map<String, Value>, at_ms: i64) -> Result<bool, QueryError> {
        QueryEngine::verify(self, params, at_ms).await
    }
}
