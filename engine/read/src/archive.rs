//! The Parquet archive: log messages older than a configurable age are compacted into Parquet
//! files (zstd, sorted by time, row-group statistics on time) under
//! `<dir>/<stream>/<YYYY-MM-DDTHH>/<first_seq>-<last_seq>.parquet`. A manifest says which files
//! exist and up to which log sequence the archive is complete, so a query reads the archive for
//! sequences before that point and the log after it — each message exactly once.
//!
//! Compaction archives a prefix of the log: it stops at the first data message that is not
//! archivable yet, so `archived_through` is exact even with late data. A message is archivable
//! when its rows are older than the cutoff, or when its newest row lies so far in the future that
//! waiting for it would stop compaction (see `archivable`); a live message therefore holds the
//! prefix back for at most twice `after`. Each message's rows go to the file of their own hour,
//! however far apart (past, future, spanning hours). Files are written under a temporary name and
//! renamed; the manifest is replaced atomically last, and files the manifest does not list (a
//! crash between the two) are deleted at open. Retention never deletes a file whose messages the
//! log still holds, so archive ∪ log always has exactly the rows of the log alone.

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
    /// Messages whose newest event is older than this (behind the wall clock) are archived;
    /// so are messages whose newest event is more than this ahead of the clock (future
    /// timestamps), so no message holds compaction back longer than twice this. Default 2h.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// Archive files whose newest row is older than this are deleted once the log no longer
    /// holds their messages (never earlier: that would hide rows the log still has). Default 30
    /// days.
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
    /// A crash-safety test stopped the pass at a [`CrashPoint`]; never happens otherwise.
    #[error("compaction stopped at a simulated crash point (tests only)")]
    Interrupted,
}

/// Where [`Archive::compact_until`] stops a pass, as a `kill -9` there would (tests only).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After this many of the pass's files are written (renamed into place).
    AfterFiles(usize),
    /// After the new manifest is written under its temporary name, before the rename.
    ManifestTemp,
    /// After the manifest is replaced, before files expired by retention are deleted.
    AfterManifest,
}

/// What one scan reads from the archive, taken at one moment ([`Archive::view`]).
#[derive(Debug, Clone, Default)]
pub struct ArchiveView {
    /// The files that can hold rows of the scan's range, oldest first, with their full paths.
    pub files: Vec<(PathBuf, ArchiveFile)>,
    /// Every log message before this sequence is in the archive: the log part starts here.
    pub archived_through: u64,
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

/// `YYYY-MM-DDTHH` of hour number `hour` (hours since the Unix epoch; an index rather than
/// milliseconds so that the hours of the most extreme timestamps do not overflow).
fn hour_label(hour: i64) -> String {
    let days = hour.div_euclid(24);
    let hour = hour.rem_euclid(24);
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
    /// Hours since the epoch.
    hour: i64,
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

    /// Reads the manifest again from the directory (an archive on storage shared by several
    /// nodes, that another node compacts): later views see the files it lists now. Returns
    /// whether anything changed. A missing manifest leaves the current one.
    ///
    /// # Errors
    /// The manifest is unreadable or malformed; the current one is kept.
    pub fn reload(&self) -> Result<bool, ArchiveError> {
        let mpath = self.dir.join(MANIFEST);
        let fresh: Manifest = match std::fs::read(&mpath) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| ioerr(&mpath)(format!("malformed manifest: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(ioerr(&mpath)(e.to_string())),
        };
        let mut m = self.manifest.write();
        let changed = m.archived_through != fresh.archived_through
            || m.files.len() != fresh.files.len()
            || m.files
                .iter()
                .zip(&fresh.files)
                .any(|(a, b)| a.path != b.path);
        if changed {
            *m = fresh;
        }
        Ok(changed)
    }

    /// Takes the archive over as its only writer (shared storage, a new compacting node):
    /// reloads the manifest, then removes the files no manifest lists (left by a writer that
    /// was interrupted mid-pass), as [`Archive::open`] does.
    ///
    /// # Errors
    /// The manifest is unreadable, or a stray file cannot be removed.
    pub fn take_over(&self) -> Result<(), ArchiveError> {
        self.reload()?;
        let listed: std::collections::HashSet<PathBuf> = self
            .manifest
            .read()
            .files
            .iter()
            .map(|f| self.dir.join(&f.path))
            .collect();
        remove_unlisted(&self.dir, &listed)
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
        self.view(stream, range).files
    }

    /// A consistent view for one scan of `stream` over `range`: the archive files that can hold
    /// rows in it (oldest first) and the log sequence from which the log holds the rest, taken
    /// under one lock. A scan that read the file list and `archived_through` at two different
    /// moments could see a compaction finish in between and read the rows it moved from neither
    /// side (or from both).
    pub fn view(&self, stream: &str, range: TimeRange) -> ArchiveView {
        let m = self.manifest.read();
        ArchiveView {
            files: m
                .files
                .iter()
                .filter(|f| f.stream == stream && range.overlaps(f.time_min_ms, f.time_max_ms))
                .map(|f| (self.dir.join(&f.path), f.clone()))
                .collect(),
            archived_through: m.archived_through,
        }
    }

    /// True while the manifest lists the file at `rel` (relative path): a file of a view that
    /// has gone since was expired by retention, not lost.
    pub fn lists(&self, rel: &str) -> bool {
        self.manifest.read().files.iter().any(|f| f.path == rel)
    }

    /// One compaction pass: archives a prefix of the log, in log order, stopping at the first
    /// data message that is not archivable yet (see `archivable`) or after
    /// `cfg.max_rows_per_pass` rows. Then deletes files whose newest row is before
    /// `expire_before_ms` and whose messages the log no longer holds (the archive never hides a
    /// row the log still has).
    ///
    /// # Errors
    /// Reading the log or writing a file failed; the manifest is then unchanged and the files
    /// this pass wrote are removed.
    pub async fn compact(
        &self,
        log: &Arc<dyn EventLog>,
        cutoff_ms: i64,
        expire_before_ms: i64,
        cfg: &ArchiveConfig,
    ) -> Result<CompactReport, ArchiveError> {
        self.compact_until(log, cutoff_ms, expire_before_ms, cfg, None)
            .await
    }

    /// [`Archive::compact`] that stops dead at `crash`, leaving the directory exactly as a
    /// `kill -9` at that point would (no clean-up, in-memory state stale): for crash-safety
    /// tests, which then drop this `Archive` and open the directory again.
    ///
    /// # Errors
    /// As [`Archive::compact`]; [`ArchiveError::Interrupted`] at the crash point.
    #[doc(hidden)]
    pub async fn compact_until(
        &self,
        log: &Arc<dyn EventLog>,
        cutoff_ms: i64,
        expire_before_ms: i64,
        cfg: &ArchiveConfig,
        crash: Option<CrashPoint>,
    ) -> Result<CompactReport, ArchiveError> {
        let _one = self.compacting.try_lock();
        if _one.is_err() {
            return Ok(CompactReport {
                archived_through: self.archived_through(),
                ..CompactReport::default()
            });
        }
        let after_ms = i64::try_from(cfg.after.as_millis()).unwrap_or(i64::MAX);
        let stats = log.stats().await?;
        let archived = self.archived_through();
        if stats.first_seq > archived.max(1) {
            tracing::warn!(
                archived_through = archived,
                log_first_seq = stats.first_seq,
                "the log's retention removed messages before they were archived; keep the log's retention longer than twice archive.after"
            );
        }
        let start = archived.max(stats.first_seq);
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
                if stream.is_some() && !archivable(&rec, cutoff_ms, after_ms) {
                    break 'read;
                }
                end = rec.seq + 1;
                report.messages += 1;
                let (Some(stream), Some(batch)) =
                    (stream, decode_record(&rec.subject, &rec.payload))
                else {
                    continue;
                };
                if batch.num_rows() == 0 {
                    continue;
                }
                rows += batch.num_rows();
                let schema_key = format!("{:?}", batch.schema().fields());
                let tcol = time_column(&batch.schema());
                for (hour, part) in split_hours(&batch, tcol.as_deref(), rec.time_min_ms) {
                    let b = buckets
                        .entry((stream.clone(), hour, schema_key.clone()))
                        .or_insert_with(|| Bucket {
                            stream: stream.clone(),
                            hour,
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
        let dir = self.dir.clone();
        let rg = cfg.row_group_rows.max(1024);
        let buckets: Vec<Bucket> = buckets.into_values().collect();
        // Encoding and zstd are CPU work: off the async threads.
        let written =
            tokio::task::spawn_blocking(move || -> Result<Vec<ArchiveFile>, ArchiveError> {
                let mut out: Vec<ArchiveFile> = Vec::new();
                let mut result = Ok(());
                for (i, b) in buckets.iter().enumerate() {
                    if crash == Some(CrashPoint::AfterFiles(i)) {
                        return Err(ArchiveError::Interrupted);
                    }
                    match write_bucket(&dir, b, i, rg) {
                        Ok(f) => out.push(f),
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                // The renames are durable before a manifest can name the files.
                if result.is_ok() {
                    let parents: std::collections::BTreeSet<PathBuf> = out
                        .iter()
                        .filter_map(|f| dir.join(&f.path).parent().map(Path::to_path_buf))
                        .collect();
                    result = parents.iter().try_for_each(|p| sync_dir(p));
                }
                if let Err(e) = result {
                    // Not listed anywhere: remove now rather than at the next start.
                    for f in &out {
                        let _ = std::fs::remove_file(dir.join(&f.path));
                    }
                    return Err(e);
                }
                if crash == Some(CrashPoint::AfterFiles(out.len())) {
                    return Err(ArchiveError::Interrupted);
                }
                Ok(out)
            })
            .await
            .map_err(|e| ioerr(&self.dir)(format!("compaction task failed: {e}")))??;
        for f in &written {
            report.files += 1;
            report.rows += f.rows;
            report.bytes += f.bytes;
        }
        let mut next = self.manifest.read().clone();
        next.archived_through = end.max(next.archived_through);
        let fresh: Vec<String> = written.iter().map(|f| f.path.clone()).collect();
        next.files.extend(written);
        let before = next.files.len();
        let mut expired = Vec::new();
        next.files.retain(|f| {
            // Old enough, and the log no longer has its messages: otherwise deleting it would
            // hide rows a query of the log alone returns (reads skip the archived prefix).
            let keep = f.time_max_ms >= expire_before_ms || f.last_seq >= stats.first_seq;
            if !keep {
                expired.push(self.dir.join(&f.path));
            }
            keep
        });
        report.expired_files = (before - next.files.len()) as u64;
        if let Err(e) = self.write_manifest(&next, crash) {
            if !matches!(e, ArchiveError::Interrupted) {
                for p in &fresh {
                    let _ = std::fs::remove_file(self.dir.join(p));
                }
            }
            return Err(e);
        }
        *self.manifest.write() = next;
        if crash == Some(CrashPoint::AfterManifest) {
            return Err(ArchiveError::Interrupted);
        }
        for p in expired {
            let _ = std::fs::remove_file(&p);
            if let Some(parent) = p.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
        report.archived_through = self.archived_through();
        Ok(report)
    }

    fn write_manifest(&self, m: &Manifest, crash: Option<CrashPoint>) -> Result<(), ArchiveError> {
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(".manifest.json.tmp");
        let body = serde_json::to_vec(m).map_err(|e| ioerr(&path)(e.to_string()))?;
        std::fs::write(&tmp, body).map_err(|e| ioerr(&tmp)(e.to_string()))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| ioerr(&tmp)(e.to_string()))?;
        if crash == Some(CrashPoint::ManifestTemp) {
            return Err(ArchiveError::Interrupted);
        }
        std::fs::rename(&tmp, &path).map_err(|e| ioerr(&path)(e.to_string()))?;
        // The new manifest is in place (and lists the pass's files): from here on a failure must
        // not make the caller remove them.
        if let Err(e) = sync_dir(&self.dir) {
            tracing::warn!(error = %e, "archive manifest replaced but its directory could not be synced; a power loss may bring back the previous manifest");
        }
        Ok(())
    }
}

/// Makes the renames inside `dir` durable (a power loss cannot bring back the old names).
fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| ioerr(dir)(e.to_string()))
}

/// Whether compaction may archive `rec` now. The pass's wall clock is `cutoff + after`:
/// - rows all older than the cutoff: yes (the normal case);
/// - a newest row more than `after` ahead of the wall clock (a clock-skewed or hostile future
///   timestamp): yes, at once, into its future hour — waiting for it would stop compaction until
///   that time comes;
/// - otherwise (live data, a little ahead of the clock): not yet. Such a message blocks the
///   messages behind it for at most `2 × after` of wall time.
///
/// Which messages are archived never changes a query's result (reads split the log by
/// sequence at `archived_through`); it only has to keep compaction moving.
fn archivable(rec: &aiops_log::Record, cutoff_ms: i64, after_ms: i64) -> bool {
    let future_from = cutoff_ms.saturating_add(after_ms).saturating_add(after_ms);
    rec.time_max_ms < cutoff_ms || rec.time_max_ms > future_from
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

/// The batch cut into per-hour parts, keyed by hour number, each row in the hour of its own
/// time (most messages fall in one hour and are not copied). Rows without a time (a null, or a
/// batch without a time column) go to the hour of `fallback_ms`, the message's header time, so
/// that no row is left out of the archive.
fn split_hours(b: &RecordBatch, col: Option<&str>, fallback_ms: i64) -> Vec<(i64, RecordBatch)> {
    let fallback = fallback_ms.div_euclid(HOUR_MS);
    let Some(t) = col
        .and_then(|c| b.column_by_name(c))
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
    else {
        return vec![(fallback, b.clone())];
    };
    let hour_of = |i: usize| {
        if t.is_valid(i) {
            t.value(i).div_euclid(HOUR_MS)
        } else {
            fallback
        }
    };
    let first = hour_of(0);
    if (1..t.len()).all(|i| hour_of(i) == first) {
        return vec![(first, b.clone())];
    }
    let mut rows: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for i in 0..t.len() {
        // A batch of one log message is far below u32::MAX rows (the log bounds message size).
        rows.entry(hour_of(i)).or_default().push(i as u32);
    }
    let mut out = Vec::new();
    for (hour, idx) in rows {
        let idx = datafusion::arrow::array::UInt32Array::from(idx);
        match datafusion::arrow::compute::take_record_batch(b, &idx) {
            Ok(part) => out.push((hour, part)),
            // Cannot happen for in-range indices; keep every row rather than lose some.
            Err(_) => return vec![(first, b.clone())],
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
        hour_label(b.hour),
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
    let tcol = time_column(&schema);
    let sorted = match &tcol {
        Some(c) => sort_by_time(&all, c),
        None => all,
    };
    let (mut tmin, mut tmax) = (i64::MAX, i64::MIN);
    if let Some(t) = tcol
        .as_deref()
        .and_then(|c| sorted.column_by_name(c))
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
    {
        for i in 0..t.len() {
            if t.is_valid(i) {
                tmin = tmin.min(t.value(i));
                tmax = tmax.max(t.value(i));
            }
        }
    }
    if tmin > tmax {
        // No row has a time: the file covers its hour, so listings and retention still see it
        // (time filters never match such rows; unfiltered scans read every file).
        tmin = b.hour.saturating_mul(HOUR_MS);
        tmax = tmin.saturating_add(HOUR_MS - 1);
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
    time_col: Option<&str>,
    range: TimeRange,
    columns: &[String],
    mut send: impl FnMut(RecordBatch) -> bool,
) -> Result<(), ArchiveError> {
    let e = ioerr(path);
    let file = std::fs::File::open(path).map_err(|x| e(x.to_string()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|x| e(x.to_string()))?;
    let meta = builder.metadata().clone();
    let pschema = builder.parquet_schema();
    let tidx = time_col.and_then(|tc| {
        pschema
            .columns()
            .iter()
            .position(|c| c.path().parts() == [tc])
    });
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
    if let Some(tc) = time_col
        && !columns.iter().any(|c| c == tc)
        && let Ok(i) = arrow_schema.index_of(tc)
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
        let b = match time_col.and_then(|tc| filter_time(&b, tc, range)) {
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
        let h = |ms: i64| hour_label(ms.div_euclid(HOUR_MS));
        assert_eq!(h(0), "1970-01-01T00");
        // 2026-12-02T08:00:00Z
        assert_eq!(h(1_796_198_400_000), "2026-12-02T08");
        assert_eq!(h(951_782_400_000), "2000-02-29T00");
        assert_eq!(h(-1), "1969-12-31T23");
        // The extremes do not overflow.
        assert!(!h(i64::MIN).is_empty() && !h(i64::MAX).is_empty());
    }
}
