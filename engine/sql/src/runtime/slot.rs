//! Input tables whose scan hands over the batches put into a slot, so a physical plan built once
//! per pipeline runs again on every micro-batch.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use parking_lot::Mutex;
use std::sync::Arc;

/// The batches the next execution of a plan reads; emptied by that execution.
#[derive(Debug, Clone)]
pub struct Slot {
    schema: SchemaRef,
    batches: Arc<Mutex<Vec<RecordBatch>>>,
}

impl Slot {
    /// An empty slot for batches of `schema`.
    pub fn new(schema: SchemaRef) -> Slot {
        Slot {
            schema,
            batches: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Sets what the next execution reads.
    pub fn put(&self, batches: Vec<RecordBatch>) {
        *self.batches.lock() = batches;
    }

    /// A table provider scanning this slot.
    ///
    /// # Errors
    /// Only on a schema mismatch (a bug).
    pub fn table(&self) -> Result<Arc<dyn TableProvider>> {
        Ok(Arc::new(StreamingTable::try_new(
            self.schema.clone(),
            vec![Arc::new(self.clone())],
        )?))
    }
}

impl PartitionStream for Slot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = std::mem::take(&mut *self.batches.lock());
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))
    }
}
