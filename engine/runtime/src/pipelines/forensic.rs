//! Forensic replay: runs pipelines over a past time range of the log in isolation, to see what
//! they produce (e.g. a new alert rule against last week). Nothing is appended to the log, no
//! checkpoint is touched and no effect runs; the live engine's state is not read or changed.
//! Windows still open at the end of the range are closed, so every window in it is reported.

use super::PipelinesConfig;
use super::load::{LoadError, load_dir};
use super::runner::{InfoBoard, Mode, Output, RunSummary, Runner, RunnerError};
use aiops_log::EventLog;
use aiops_schemas::arrow_array::{ArrayRef, RecordBatch, StringArray};
use aiops_schemas::arrow_schema::{DataType, Field, Schema};
use aiops_sql::runtime::EmissionKind;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How a forensic replay writes what the pipelines produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object per derived event or late row, with `pipeline`, `stream` and `kind`
    /// (`derived` or `late`) first.
    Ndjson,
    /// One Parquet file per output stream (and per pipeline's late rows) in the --output
    /// directory.
    Parquet,
}

/// Why a forensic replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ForensicError {
    /// A pipeline file was refused.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// Running failed.
    #[error(transparent)]
    Run(#[from] RunnerError),
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] aiops_log::LogError),
    /// Writing the result failed.
    #[error("writing {target}: {detail}")]
    Write {
        /// File or stream.
        target: String,
        /// What failed.
        detail: String,
    },
}

fn werr(target: &str) -> impl Fn(String) -> ForensicError + '_ {
    move |detail| ForensicError::Write {
        target: target.to_string(),
        detail,
    }
}

/// A batch with `pipeline`, `stream` and `kind` columns in front.
fn with_meta(o: &Output) -> Result<RecordBatch, String> {
    let b = &o.emission.batch;
    let n = b.num_rows();
    let (kind, stream) = match o.emission.kind {
        EmissionKind::Output => ("derived", o.output.as_str()),
        EmissionKind::Late => ("late", o.pipeline.as_str()),
    };
    let mut fields = vec![
        Field::new("pipeline", DataType::Utf8, false),
        Field::new("stream", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
    ];
    fields.extend(b.schema().fields().iter().map(|f| f.as_ref().clone()));
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![o.pipeline.as_str(); n])),
        Arc::new(StringArray::from(vec![stream; n])),
        Arc::new(StringArray::from(vec![kind; n])),
    ];
    cols.extend(b.columns().iter().cloned());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| e.to_string())
}

/// Collects outputs per file for the Parquet format.
#[derive(Default)]
struct ParquetSink {
    files: BTreeMap<String, Vec<RecordBatch>>,
}

impl ParquetSink {
    fn add(&mut self, o: &Output) {
        let name = match o.emission.kind {
            EmissionKind::Output => o.output.clone(),
            EmissionKind::Late => format!("late.{}", o.pipeline),
        };
        self.files
            .entry(name)
            .or_default()
            .push(o.emission.batch.clone());
    }

    fn write(self, dir: &Path) -> Result<Vec<PathBuf>, ForensicError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| werr(&dir.display().to_string())(e.to_string()))?;
        let mut written = Vec::new();
        for (name, batches) in self.files {
            let path = dir.join(format!("{name}.parquet"));
            let target = path.display().to_string();
            let Some(first) = batches.first() else {
                continue;
            };
            // Written to a temporary name and renamed: a failed replay leaves no half file.
            let tmp = dir.join(format!(".{name}.parquet.tmp"));
            let file = std::fs::File::create(&tmp).map_err(|e| werr(&target)(e.to_string()))?;
            let mut w = parquet::arrow::ArrowWriter::try_new(file, first.schema(), None)
                .map_err(|e| werr(&target)(e.to_string()))?;
            for b in &batches {
                w.write(b).map_err(|e| werr(&target)(e.to_string()))?;
            }
            w.close().map_err(|e| werr(&target)(e.to_string()))?;
            std::fs::rename(&tmp, &path).map_err(|e| werr(&target)(e.to_string()))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// What a forensic replay runs and where its result goes.
#[derive(Debug, Clone)]
pub struct ForensicRequest {
    /// The pipeline directory.
    pub dir: PathBuf,
    /// Inclusive start of the event-time range, Unix ms; `None` = the start of the log.
    pub from_ms: Option<i64>,
    /// Exclusive end, Unix ms; `None` = the head of the log when the replay starts.
    pub to_ms: Option<i64>,
    /// NDJSON to the writer, or Parquet files.
    pub format: OutputFormat,
    /// Directory of the Parquet files.
    pub parquet_dir: Option<PathBuf>,
}

/// Runs the pipelines of `req.dir` over events with time in `[from_ms, to_ms)` and writes what
/// they produce: NDJSON to `out`, or Parquet files into `parquet_dir`.
///
/// # Errors
/// [`ForensicError`] for a refused pipeline file, a log error or a write error.
pub async fn replay(
    log: Arc<dyn EventLog>,
    req: &ForensicRequest,
    cfg: &PipelinesConfig,
    out: &mut (dyn Write + Send),
) -> Result<RunSummary, ForensicError> {
    let (from_ms, to_ms, format) = (req.from_ms, req.to_ms, req.format);
    let parquet_dir = req.parquet_dir.as_deref();
    let pipelines = load_dir(&req.dir, cfg.runtime()).await?;
    let stats = log.stats().await?;
    let start = match from_ms {
        Some(t) => log.seek_time(t).await?,
        None => stats.first_seq,
    };
    let end = stats.next_seq;
    let board = InfoBoard::default();
    let mut runner = Runner::new(
        log,
        pipelines,
        None,
        Mode::Isolated,
        start,
        board,
        Duration::MAX,
    )
    .await?;
    runner.set_time_range(from_ms, to_ms);
    let mut json = arrow_json::LineDelimitedWriter::new(Vec::new());
    let mut parquet = ParquetSink::default();
    let stdout = "output";
    loop {
        let (outs, n) = runner.step(1024, Some(end)).await?;
        let done = n == 0 || runner.position() >= end;
        let outs = if done {
            let mut all = outs;
            all.extend(runner.finish().await?);
            all
        } else {
            outs
        };
        for o in &outs {
            match format {
                OutputFormat::Ndjson => {
                    let b = with_meta(o).map_err(werr(stdout))?;
                    json.write(&b).map_err(|e| werr(stdout)(e.to_string()))?;
                    let buf = json.get_mut();
                    out.write_all(buf)
                        .map_err(|e| werr(stdout)(e.to_string()))?;
                    buf.clear();
                }
                OutputFormat::Parquet => parquet.add(o),
            }
        }
        if done {
            break;
        }
    }
    if format == OutputFormat::Parquet {
        let dir = parquet_dir
            .ok_or_else(|| werr("parquet")("--format parquet needs --output DIR".into()))?;
        for p in parquet.write(dir)? {
            writeln!(out, "wrote {}", p.display()).map_err(|e| werr(stdout)(e.to_string()))?;
        }
    }
    out.flush().map_err(|e| werr(stdout)(e.to_string()))?;
    Ok(runner.summary())
}
