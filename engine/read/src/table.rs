//! A table over one stream — a kind (`metrics`, `logs`, `alerts`, `events`) or a pipeline's
//! output — that reads the Parquet archive for what is archived and the log for the rest. The
//! time range of the query's filters prunes archive files, row groups and log messages; the
//! filters themselves stay above the scan (inexact pushdown), so pruning never changes a result.
//!
//! Which rows come from where is decided once per scan, from one [`ArchiveView`]: the archive
//! files it lists, and the log from its `archived_through` on. A compaction that finishes while
//! the scan runs changes neither side, so every row is read exactly once.

use crate::archive::{self, Archive, ArchiveView};
use crate::timerange::{self, TimeRange};
use aiops_log::EventLog;
use aiops_schemas::arrow_array::{ArrayRef, RecordBatch, new_null_array};
use aiops_schemas::arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Log messages read per call while scanning.
const READ_CHUNK: usize = 256;

/// A stream as a table: archive + log.
pub struct StreamTable {
    stream: String,
    schema: SchemaRef,
    time_col: Option<String>,
    log: Arc<dyn EventLog>,
    archive: Option<Arc<Archive>>,
}

impl std::fmt::Debug for StreamTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTable")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl StreamTable {
    /// The table of `stream` (`metrics`, …, or `derived.<output>`) with `schema`.
    pub fn new(
        stream: String,
        schema: SchemaRef,
        log: Arc<dyn EventLog>,
        archive: Option<Arc<Archive>>,
    ) -> StreamTable {
        let time_col = archive::time_column(&schema);
        StreamTable {
            stream,
            schema,
            time_col,
            log,
            archive,
        }
    }
}

#[async_trait]
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let range = self
            .time_col
            .as_deref()
            .map_or(TimeRange::ALL, |c| timerange::from_filters(filters, c));
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let view = self
            .archive
            .as_ref()
            .map(|a| a.view(&self.stream, range))
            .unwrap_or_default();
        let scan = Arc::new(Scan {
            stream: self.stream.clone(),
            schema: schema.clone(),
            time_col: self.time_col.clone(),
            range,
            log: self.log.clone(),
            archive: self.archive.clone(),
            view,
        });
        let mut parts: Vec<Arc<dyn PartitionStream>> = vec![Arc::new(LogPart(scan.clone()))];
        if self.archive.is_some() {
            parts.insert(0, Arc::new(ArchivePart(scan)));
        }
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            parts,
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// What one scan reads.
struct Scan {
    stream: String,
    schema: SchemaRef,
    time_col: Option<String>,
    range: TimeRange,
    log: Arc<dyn EventLog>,
    archive: Option<Arc<Archive>>,
    /// The archive files to read and where the log part starts, fixed when the scan is planned.
    view: ArchiveView,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("stream", &self.stream)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl Scan {
    /// `b` with exactly the scan's columns (by name; a column a batch lacks or has with another
    /// type, e.g. from an older pipeline revision, is null) and only rows in the time range.
    fn conform(&self, b: &RecordBatch) -> Result<Option<RecordBatch>> {
        let b = match &self.time_col {
            Some(c) => match archive::filter_time(b, c, self.range) {
                None => b.clone(),
                Some(f) => f,
            },
            None => b.clone(),
        };
        if b.num_rows() == 0 {
            return Ok(None);
        }
        let cols: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .map(|f| match b.column_by_name(f.name()) {
                Some(c) if c.data_type() == f.data_type() => c.clone(),
                _ => new_null_array(f.data_type(), b.num_rows()),
            })
            .collect();
        let out = if cols.is_empty() {
            RecordBatch::try_new_with_options(
                self.schema.clone(),
                cols,
                &datafusion::arrow::array::RecordBatchOptions::new()
                    .with_row_count(Some(b.num_rows())),
            )
        } else {
            RecordBatch::try_new(self.schema.clone(), cols)
        };
        out.map(Some).map_err(DataFusionError::from)
    }

    fn columns(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }
}

type Tx = mpsc::Sender<Result<RecordBatch>>;

fn stream_from(
    schema: SchemaRef,
    rx: mpsc::Receiver<Result<RecordBatch>>,
) -> SendableRecordBatchStream {
    let s = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Box::pin(RecordBatchStreamAdapter::new(schema, s))
}

/// The archived part of a scan.
#[derive(Debug)]
struct ArchivePart(Arc<Scan>);

impl PartitionStream for ArchivePart {
    fn schema(&self) -> &SchemaRef {
        &self.0.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        // Two batches in flight: the reader waits for the query (backpressure), and stops when
        // the query is dropped (cancelled or finished early).
        let (tx, rx) = mpsc::channel(2);
        let scan = self.0.clone();
        tokio::task::spawn_blocking(move || read_archive(&scan, &tx));
        stream_from(self.0.schema.clone(), rx)
    }
}

fn read_archive(scan: &Scan, tx: &Tx) {
    let Some(archive) = &scan.archive else {
        return;
    };
    let columns = scan.columns();
    // A stream without a time column is read whole (its range is everything).
    let tcol = scan.time_col.as_deref();
    for (path, file) in &scan.view.files {
        let mut open = true;
        let r = archive::read_file(path, tcol, scan.range, &columns, |b| {
            let msg = scan.conform(&b).transpose();
            open = match msg {
                Some(m) => tx.blocking_send(m).is_ok(),
                None => true,
            };
            open
        });
        if let Err(e) = r {
            if !archive.lists(&file.path) {
                // Retention expired it after the scan was planned: its rows are past retention
                // and no longer in the log either (retention waits for the log to drop them).
                tracing::debug!(file = %file.path, "archive file expired during a scan");
                continue;
            }
            let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
            return;
        }
        if !open {
            return;
        }
    }
}

/// The part of a scan still in the log (after what the archive holds).
#[derive(Debug)]
struct LogPart(Arc<Scan>);

impl PartitionStream for LogPart {
    fn schema(&self) -> &SchemaRef {
        &self.0.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = mpsc::channel(2);
        let scan = self.0.clone();
        tokio::spawn(async move {
            if let Err(e) = read_log(&scan, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        stream_from(self.0.schema.clone(), rx)
    }
}

async fn read_log(scan: &Scan, tx: &Tx) -> Result<()> {
    let ext = |e: aiops_log::LogError| DataFusionError::External(Box::new(e));
    let stats = scan.log.stats().await.map_err(ext)?;
    let end = stats.next_seq;
    let mut start = stats.first_seq.max(scan.view.archived_through);
    if scan.range.from_ms > i64::MIN {
        start = start.max(scan.log.seek_time(scan.range.from_ms).await.map_err(ext)?);
    }
    let mut reader = scan.log.reader(start).await.map_err(ext)?;
    loop {
        let recs = reader.next_batch(READ_CHUNK).await.map_err(ext)?;
        if recs.is_empty() {
            return Ok(());
        }
        for rec in recs {
            if rec.seq >= end {
                return Ok(());
            }
            if !scan.range.overlaps(rec.time_min_ms, rec.time_max_ms)
                || archive::stream_of(&rec.subject).as_deref() != Some(scan.stream.as_str())
            {
                continue;
            }
            let Some(b) = archive::decode_record(&rec.subject, &rec.payload) else {
                continue;
            };
            if let Some(b) = scan.conform(&b)?
                && tx.send(Ok(b)).await.is_err()
            {
                return Ok(());
            }
        }
    }
}
