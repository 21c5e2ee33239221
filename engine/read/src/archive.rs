//! The Parquet archive: log messages older than a configurable age are compacted into Parquet
//! files (zstd, sorted by time, row-group statistics on time) under
//! `<dir>/<stream>/<YYYY-MM-DDTHH>/<first_seq>-<last_seq>.parquet`. A manifest says which files
//! exist and up to which log sequence the archive is complete, so a query reads the archive for
//! sequences before that point and the log after it — each message exactly once.
//!
//! Compaction archives a prefix of the log: it stops at the first data message that is not old
//! enough yet, so `archived_through` is exact even with late data. Files are written under a
//! temporary name and renamed; the manifest is replaced atomically last, and files the manifest
//! does not list (a crash between the two) are deleted at open.

use crate::timerange::TimeRange;
use aiops_log::EventLog;
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, BooleanArray, RecordBatch};
use aiops_schemas::arrow_schema::SchemaRef;
use aiops_schemas::derived::{DERIVED_PREFIX, DerivedWhat, decode_derived};
use parking_lot::RwLock;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;
const MANIFEST: &str = "manifest.json";

/// Archive settings (`[archive]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Compact old log messages into Parquet. Default on.
    pub enabled: bool,
    /// Messages whose newest event is older than this (behind the wall clock) are archived.
    /// Default 2h.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// Archive files whose newest row is older than this are deleted. Default 30 days.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often compaction runs. Default 1m.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Rows one compaction pass buffers before writing its files (bounds its memory).
    /// Default 1,000,000.
    pub max_rows_per_pass: usize,
    /// Rows per Parquet row group (the unit of time pruning). Default 65,536.
    pub row_group_rows: usize,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            enabled: true,
            after: Duration::from_secs(2 * 3600),
            retention: Duration::from_secs(30 * 86_400),
            interval: Duration::from_secs(60),
            max_rows_per_pass: 1_000_000,
            row_group_rows: 65_536,
        }
    }
}

/// Why an archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file or directory could not be read or written.
    #[error("archive {path}: {detail}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] aiops_log::LogError),
}

fn ioerr(path: &Path) -> impl Fn(String) -> ArchiveError + '_ {
    move |detail| ArchiveError::Io {
        path: path.to_path_buf(),
        detail,
    }
}

/// One archived Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveFile {
    /// The stream: a kind (`metrics`) or `derived.<output>`.
    pub stream: String,
    /// Path relative to the archive directory.
    pub path: String,
    /// First and last log sequence whose rows it holds.
    pub first_seq: u64,
    /// Last log sequence whose rows it holds.
    pub last_seq: u64,
    /// Rows.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// Oldest row time, Unix ms.
    pub time_min_ms: i64,
    /// Newest row time, Unix ms.
    pub time_max_ms: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    /// Every log message with a smaller sequence is archived (or was not a data message).
    archived_through: u64,
    files: Vec<ArchiveFile>,
}

/// What one compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Log messages read.
    pub messages: u64,
    /// Rows written.
    pub rows: u64,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The new `archived_through`.
    pub archived_through: u64,
    /// Files removed by retention.
    pub expired_files: u64,
}

/// Totals for `/metrics` and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveStats {
    /// Files.
    pub files: u64,
    /// Rows.
    pub rows: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Every log message before this sequence is in the archive.
    pub archived_through: u64,
}

/// The archive of one data directory.
#[derive(Debug)]
pub struct Archive {
    dir: PathBuf,
    manifest: RwLock<Manifest>,
    compacting: tokio::sync::Mutex<()>,
}

/// The stream a log subject belongs to, if its messages are archived (data, not control).
pub fn stream_of(subject: &str) -> Option<String> {
    if let Some(name) = subject.strip_prefix(DERIVED_PREFIX) {
        return Some(format!("derived.{name}"));
    }
    Kind::from_subject(subject).map(|k| k.as_str().to_string())
}

/// Decodes a data message of `subject` into its batch (`None` for late rows and non-data).
pub fn decode_record(subject: &str, payload: &[u8]) -> Option<RecordBatch> {
    if subject.starts_with(DERIVED_PREFIX) {
        let (h, b) = decode_derived(payload).ok()?;
        return (h.what == DerivedWhat::Events).then_some(b);
    }
    Kind::from_subject(subject)?;
    aiops_schemas::decode(payload).ok().map(|(_, b)| b)
}

/// The time column of a stream's batches: `time`, else `window_start`, if it is a timestamp.
pub fn time_column(schema: &SchemaRef) -> Option<String> {
    ["time", "window_start"].into_iter().find_map(|c| {
        let f = schema.field_with_name(c).ok()?;
        matches!(
            f.data_type(),
            aiops_schemas::arrow_schema::DataType::Timestamp(
                aiops_schemas::arrow_schema::TimeUnit::Millisecond,
                _
            )
        )
        .then(|| c.to_string())
    })
}

fn hour_label(hour_ms: i64) -> String {
    let days = hour_ms.div_euclid(86_400_000);
    let hour = hour_ms.rem_euclid(86_400_000) / HOUR_MS;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{hour:02}")
}

/// Howard Hinnant's days → civil date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Rows of `b` whose time column value is in `[from, to]`, or `None` when all are.
pub fn filter_time(b: &RecordBatch, col: &str, r: TimeRange) -> Option<RecordBatch> {
    let t = b
        .column_by_name(col)?
        .as_primitive_opt::<TimestampMillisecondType>()?;
    if t.null_count() == 0 {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for v in t.values().iter() {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
        if lo >= r.from_ms && hi <= r.to_ms {
            return None;
        }
    }
    let mask: BooleanArray = (0..t.len())
        .map(|i| Some(t.is_valid(i) && r.contains(t.value(i))))
        .collect();
    arrow_select_filter(b, &mask)
}

fn arrow_select_filter(b: &RecordBatch, mask: &BooleanArray) -> Option<RecordBatch> {
    datafusion::arrow::compute::filter_record_batch(b, mask).ok()
}

fn sort_by_time(b: &RecordBatch, col: &str) -> RecordBatch {
    let Some(c) = b.column_by_name(col) else {
        return b.clone();
    };
    let Ok(idx) = datafusion::arrow::compute::sort_to_indices(c, None, None) else {
        return b.clone();
    };
    datafusion::arrow::compute::take_record_batch(b, &idx).unwrap_or_else(|_| b.clone())
}

/// Rows grouped per (stream, hour, schema) while a pass runs.
struct Bucket {
    stream: String,
    hour_ms: i64,
    first_seq: u64,
    last_seq: u64,
    batches: Vec<RecordBatch>,
}

impl Archive {
    /// Opens the archive in `dir` (created if missing), removing files a crashed pass left.
    ///
    /// # Errors
    /// The directory cannot be created, or the manifest is unreadable.
    pub fn open(dir: &Path) -> Result<Archive, ArchiveError> {
        std::fs::create_dir_all(dir).map_err(|e| ioerr(dir)(e.to_string()))?;
        let mpath = dir.join(MANIFEST);
        let manifest: Manifest = match std::fs::read(&mpath) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| ioerr(&mpath)(format!("malformed manifest: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(ioerr(&mpath)(e.to_string())),
        };
        let listed: std::collections::HashSet<PathBuf> =
            manifest.files.iter().map(|f| dir.join(&f.path)).collect();
        remove_unlisted(dir, &listed)?;
        Ok(Archive {
            dir: dir.to_path_buf(),
            manifest: RwLock::new(manifest),
            compacting: tokio::sync::Mutex::new(()),
        })
    }

    /// Opens the archive for queries only (`aiops sql` beside a running engine): nothing is
    /// removed or written.
    ///
    /// # Errors
    /// The manifest is unreadable.
    pub fn open_read_only(dir: &Path) -> Result<Archive, ArchiveError> {
        let mpath = dir.join(MANIFEST);
        let manifest: Manifest = match std::fs::read(&mpath) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| ioerr(&mpath)(format!("malformed manifest: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(ioerr(&mpath)(e.to_string())),
        };
        Ok(Archive {
            dir: dir.to_path_buf(),
            manifest: RwLock::new(manifest),
            compacting: tokio::sync::Mutex::new(()),
        })
    }

    /// Every log message with a smaller sequence is in the archive (if it was a data message).
    pub fn archived_through(&self) -> u64 {
        self.manifest.read().archived_through
    }

    /// Totals.
    pub fn stats(&self) -> ArchiveStats {
        let m = self.manifest.read();
        ArchiveStats {
            files: m.files.len() as u64,
            rows: m.files.iter().map(|f| f.rows).sum(),
            bytes: m.files.iter().map(|f| f.bytes).sum(),
            archived_through: m.archived_through,
        }
    }

    /// The streams with archived files.
    pub fn streams(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .manifest
            .read()
            .files
            .iter()
            .map(|f| f.stream.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    }

    /// The schema of the newest archived file of `stream`.
    pub fn schema_of(&self, stream: &str) -> Option<SchemaRef> {
        let f = self
            .manifest
            .read()
            .files
            .iter()
            .rev()
            .find(|f| f.stream == stream)
            .cloned()?;
        let file = std::fs::File::open(self.dir.join(&f.path)).ok()?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
        Some(b.schema().clone())
    }

    /// The files of `stream` that can hold rows in `range`, oldest first.
    pub fn files(&self, stream: &str, range: TimeRange) -> Vec<(PathBuf, ArchiveFile)> {
        self.manifest
            .read()
            .files
            .iter()
            .filter(|f| f.stream == stream && range.overlaps(f.time_min_ms, f.time_max_ms))
            .map(|f| (self.dir.join(&f.path), f.clone()))
            .collect()
    }

    /// One compaction pass: archives log messages whose newest event is before `cutoff_ms`,
    /// in log order, stopping at the first that is not, or after `max_rows`. Then deletes files
    /// whose newest row is before `expire_before_ms`.
    ///
    /// # Errors
    /// Reading the log or writing a file failed; the manifest is then unchanged.
    pub async fn compact(
        &self,
        log: &Arc<dyn EventLog>,
        cutoff_ms: i64,
        expire_before_ms: i64,
        cfg: &ArchiveConfig,
    ) -> Result<CompactReport, ArchiveError> {
        let _one = self.compacting.try_lock();
        if _one.is_err() {
            return Ok(CompactReport {
                archived_through: self.archived_through(),
                ..CompactReport::default()
            });
        }
        let stats = log.stats().await?;
        let start = self.archived_through().max(stats.first_seq);
        let mut reader = log.reader(start).await?;
        let mut end = start;
        let mut report = CompactReport::default();
        let mut buckets: BTreeMap<(String, i64, String), Bucket> = BTreeMap::new();
        let mut rows = 0usize;
        'read: loop {
            let recs = reader.next_batch(1024).await?;
            if recs.is_empty() {
                break;
            }
            for rec in recs {
                let stream = stream_of(&rec.subject);
                if stream.is_some() && rec.time_max_ms >= cutoff_ms {
                    break 'read;
                }
                end = rec.seq + 1;
                report.messages += 1;
                let (Some(stream), Some(batch)) =
                    (stream, decode_record(&rec.subject, &rec.payload))
                else {
                    continue;
                };
                let Some(tcol) = time_column(&batch.schema()) else {
                    continue;
                };
                rows += batch.num_rows();
                let schema_key = format!("{:?}", batch.schema().fields());
                for (hour_ms, part) in split_hours(&batch, &tcol, rec.time_min_ms, rec.time_max_ms)
                {
                    let b = buckets
                        .entry((stream.clone(), hour_ms, schema_key.clone()))
                        .or_insert_with(|| Bucket {
                            stream: stream.clone(),
                            hour_ms,
                            first_seq: rec.seq,
                            last_seq: rec.seq,
                            batches: Vec::new(),
                        });
                    b.last_seq = rec.seq;
                    b.batches.push(part);
                }
                if rows >= cfg.max_rows_per_pass {
                    break 'read;
                }
            }
        }
        let mut written = Vec::new();
        let dir = self.dir.clone();
        let rg = cfg.row_group_rows.max(1024);
        let buckets: Vec<Bucket> = buckets.into_values().collect();
        // Encoding and zstd are CPU work: off the async threads.
        let files =
            tokio::task::spawn_blocking(move || -> Result<Vec<ArchiveFile>, ArchiveError> {
                let mut out = Vec::new();
                for (i, b) in buckets.iter().enumerate() {
                    out.push(write_bucket(&dir, b, i, rg)?);
                }
                Ok(out)
            })
            .await
            .map_err(|e| ioerr(&self.dir)(format!("compaction task failed: {e}")))??;
        for f in files {
            report.files += 1;
            report.rows += f.rows;
            report.bytes += f.bytes;
            written.push(f);
        }
        let mut next = self.manifest.read().clone();
        next.archived_through = end.max(next.archived_through);
        next.files.extend(written);
        let before = next.files.len();
        let mut expired = Vec::new();
        next.files.retain(|f| {
            let keep = f.time_max_ms >= expire_before_ms;
            if !keep {
                expired.push(self.dir.join(&f.path));
            }
            keep
        });
        report.expired_files = (before - next.files.len()) as u64;
        self.write_manifest(&next)?;
        *self.manifest.write() = next;
        for p in expired {
            let _ = std::fs::remove_file(&p);
            if let Some(parent) = p.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
        report.archived_through = self.archived_through();
        Ok(report)
    }

    fn write_manifest(&self, m: &Manifest) -> Result<(), ArchiveError> {
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(".manifest.json.tmp");
        let body = serde_json::to_vec(m).map_err(|e| ioerr(&path)(e.to_string()))?;
        std::fs::write(&tmp, body).map_err(|e| ioerr(&tmp)(e.to_string()))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| ioerr(&tmp)(e.to_string()))?;
        std::fs::rename(&tmp, &path).map_err(|e| ioerr(&path)(e.to_string()))?;
        Ok(())
    }
}

fn remove_unlisted(
    dir: &Path,
    listed: &std::collections::HashSet<PathBuf>,
) -> Result<(), ArchiveError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => return Err(ioerr(dir)(e.to_string())),
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            remove_unlisted(&p, listed)?;
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let stray =
                (name.ends_with(".parquet") && !listed.contains(&p)) || name.ends_with(".tmp");
            if stray && name != MANIFEST {
                tracing::warn!(file = %p.display(), "removing an archive file no manifest lists (left by an interrupted compaction)");
                std::fs::remove_file(&p).map_err(|e| ioerr(&p)(e.to_string()))?;
            }
        }
    }
    Ok(())
}

/// The batch cut into per-hour parts (most messages fall in one hour and are not copied).
fn split_hours(b: &RecordBatch, col: &str, min_ms: i64, max_ms: i64) -> Vec<(i64, RecordBatch)> {
    let (h0, h1) = (min_ms.div_euclid(HOUR_MS), max_ms.div_euclid(HOUR_MS));
    if h0 == h1 {
        return vec![(h0 * HOUR_MS, b.clone())];
    }
    let mut out = Vec::new();
    for h in h0..=h1.min(h0 + 24 * 366) {
        let r = TimeRange {
            from_ms: h * HOUR_MS,
            to_ms: h * HOUR_MS + HOUR_MS - 1,
        };
        match filter_time(b, col, r) {
            None => out.push((h * HOUR_MS, b.clone())),
            Some(p) if p.num_rows() > 0 => out.push((h * HOUR_MS, p)),
            Some(_) => {}
        }
    }
    out
}

fn write_bucket(
    dir: &Path,
    b: &Bucket,
    n: usize,
    row_group_rows: usize,
) -> Result<ArchiveFile, ArchiveError> {
    let rel = format!(
        "{}/{}/{}-{}-{n}.parquet",
        b.stream,
        hour_label(b.hour_ms),
        b.first_seq,
        b.last_seq
    );
    let path = dir.join(&rel);
    let e = ioerr(&path);
    let parent = path
        .parent()
        .ok_or_else(|| e("no parent directory".into()))?;
    std::fs::create_dir_all(parent).map_err(|x| e(x.to_string()))?;
    let Some(first) = b.batches.first() else {
        return Err(e("empty bucket".into()));
    };
    let schema = first.schema();
    let all = datafusion::arrow::compute::concat_batches(&schema, &b.batches)
        .map_err(|x| e(x.to_string()))?;
    let tcol = time_column(&schema).ok_or_else(|| e("no time column".into()))?;
    let sorted = sort_by_time(&all, &tcol);
    let (mut tmin, mut tmax) = (i64::MAX, i64::MIN);
    if let Some(t) = sorted
        .column_by_name(&tcol)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
    {
        for i in 0..t.len() {
            if t.is_valid(i) {
                tmin = tmin.min(t.value(i));
                tmax = tmax.max(t.value(i));
            }
        }
    }
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(|x| e(x.to_string()))?,
        ))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build();
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(|x| e(x.to_string()))?;
    let mut w =
        ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|x| e(x.to_string()))?;
    w.write(&sorted).map_err(|x| e(x.to_string()))?;
    let file = w.into_inner().map_err(|x| e(x.to_string()))?;
    file.sync_all().map_err(|x| e(x.to_string()))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|x| e(x.to_string()))?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(ArchiveFile {
        stream: b.stream.clone(),
        path: rel,
        first_seq: b.first_seq,
        last_seq: b.last_seq,
        rows: sorted.num_rows() as u64,
        bytes,
        time_min_ms: tmin,
        time_max_ms: tmax,
    })
}

/// Reads `path`'s rows in `range` (row groups whose time statistics cannot overlap are skipped),
/// with the columns of `projection` (by name, in that order); `send` gets each batch and returns
/// false to stop.
///
/// # Errors
/// The file cannot be read.
pub fn read_file(
    path: &Path,
    time_col: &str,
    range: TimeRange,
    columns: &[String],
    mut send: impl FnMut(RecordBatch) -> bool,
) -> Result<(), ArchiveError> {
    let e = ioerr(path);
    let file = std::fs::File::open(path).map_err(|x| e(x.to_string()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|x| e(x.to_string()))?;
    let meta = builder.metadata().clone();
    let pschema = builder.parquet_schema();
    let tidx = pschema
        .columns()
        .iter()
        .position(|c| c.path().parts() == [time_col]);
    let mut groups = Vec::new();
    for (i, rg) in meta.row_groups().iter().enumerate() {
        let keep = match tidx.and_then(|t| rg.column(t).statistics()) {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(lo), Some(hi)) => range.overlaps(*lo, *hi),
                _ => true,
            },
            _ => true,
        };
        if keep {
            groups.push(i);
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    let arrow_schema = builder.schema().clone();
    let mut roots = Vec::new();
    for c in columns {
        if let Ok(i) = arrow_schema.index_of(c) {
            roots.push(i);
        }
    }
    if !columns.iter().any(|c| c == time_col)
        && let Ok(i) = arrow_schema.index_of(time_col)
    {
        roots.push(i);
    }
    roots.sort_unstable();
    let mask = parquet::arrow::ProjectionMask::roots(pschema, roots);
    let reader = builder
        .with_row_groups(groups)
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(|x| e(x.to_string()))?;
    for b in reader {
        let b = b.map_err(|x| e(x.to_string()))?;
        let b = match filter_time(&b, time_col, range) {
            None => b,
            Some(f) => f,
        };
        if b.num_rows() > 0 && !send(b) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_labels_are_utc_calendar_hours() {
        assert_eq!(hour_label(0), "1970-01-01T00");
        // 2026-12-02T08:00:00Z
        assert_eq!(hour_label(1_796_198_400_000), "2026-12-02T08");
        assert_eq!(hour_label(951_782_400_000), "2000-02-29T00");
    }
}
