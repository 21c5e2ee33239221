//! Tables over live engine state that is not a stream: current alerts, silences, incidents,
//! workflow executions. The engine process provides them through [`StateSource`]; each scan
//! takes a fresh snapshot.

use aiops_schemas::arrow_array::RecordBatch;
use aiops_schemas::arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// One state table: its name, schema and a sentence for the docs.
#[derive(Debug, Clone)]
pub struct StateTableDef {
    /// SQL name, e.g. `incidents`.
    pub name: &'static str,
    /// Its columns.
    pub schema: SchemaRef,
    /// What a row is.
    pub doc: &'static str,
}

/// Why live state could not be served as a table (aiops' fault: the query maps it to XX000).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The source has no such table.
    #[error("no state table {0}")]
    UnknownTable(String),
    /// Rows did not fit the table's schema.
    #[error("state rows do not fit the table: {0}")]
    Rows(String),
}

/// Live state the engine process exposes as tables.
#[async_trait]
pub trait StateSource: Send + Sync + std::fmt::Debug {
    /// The tables this source has.
    fn tables(&self) -> Vec<StateTableDef>;

    /// A snapshot of `table`'s rows, in its schema.
    ///
    /// # Errors
    /// The state cannot be read now (a message for the client).
    async fn rows(&self, table: &str) -> std::result::Result<Vec<RecordBatch>, StateError>;
}

/// A [`StateSource`] table for DataFusion.
#[derive(Debug)]
pub struct StateTable {
    def: StateTableDef,
    source: Arc<dyn StateSource>,
}

impl StateTable {
    /// The table `def` of `source`.
    pub fn new(def: StateTableDef, source: Arc<dyn StateSource>) -> StateTable {
        StateTable { def, source }
    }
}

#[async_trait]
impl TableProvider for StateTable {
    fn schema(&self) -> SchemaRef {
        self.def.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rows = self
            .source
            .rows(self.def.name)
            .await
            // Reading live state failing is aiops' fault, not the query's: External maps to
            // XX000 (HTTP 500 with a correlation id), not to a user error.
            .map_err(|e| DataFusionError::External(format!("{}: {e}", self.def.name).into()))?;
        let t = MemTable::try_new(self.def.schema.clone(), vec![rows])?;
        t.scan(state, projection, filters, limit).await
    }
}

/// Rows as JSON objects → one batch in `schema` (missing keys are null; extra keys ignored).
///
/// # Errors
/// A value that does not fit its column's type.
pub fn batch_from_json(
    schema: &SchemaRef,
    rows: &[serde_json::Value],
) -> std::result::Result<RecordBatch, StateError> {
    let rows_err = |e: datafusion::arrow::error::ArrowError| StateError::Rows(e.to_string());
    let mut dec = arrow_json_decoder(schema).map_err(rows_err)?;
    dec.serialize(rows).map_err(rows_err)?;
    match dec.flush().map_err(rows_err)? {
        Some(b) => Ok(b),
        None => Ok(RecordBatch::new_empty(schema.clone())),
    }
}

fn arrow_json_decoder(
    schema: &SchemaRef,
) -> std::result::Result<
    datafusion::arrow::json::reader::Decoder,
    datafusion::arrow::error::ArrowError,
> {
    datafusion::arrow::json::ReaderBuilder::new(schema.clone()).build_decoder()
}
