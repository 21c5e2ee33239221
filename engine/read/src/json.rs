//! Query results as JSON: Arrow record batches → rows (objects) and columns (name, type). Used
//! by the HTTP API, Grafana sync and workflow `sql` steps alike.

use aiops_schemas::arrow_array::RecordBatch;
use serde_json::{Value, json};

/// Why batches could not be turned into JSON rows (a bug or an unsupported column type).
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The Arrow JSON writer refused a batch.
    #[error(transparent)]
    Arrow(#[from] aiops_schemas::arrow_schema::ArrowError),
    /// Its output did not read back as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The rows of `batches` as JSON objects, in order.
///
/// # Errors
/// [`JsonError`] when a column cannot be written as JSON.
pub fn rows_json(batches: &[RecordBatch]) -> Result<Vec<Value>, JsonError> {
    let mut buf = Vec::new();
    {
        let mut w = arrow_json::ArrayWriter::new(&mut buf);
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&buf)?)
}

/// The columns of the first batch: `{"name", "type"}` each.
pub fn columns_json(batches: &[RecordBatch]) -> Vec<Value> {
    batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect()
        })
        .unwrap_or_default()
}
