//! Reference tables: small static tables (CSV or Parquet files) that pipeline SQL can join with,
//! e.g. `service → team, tier`.
//!
//! A reference table is one file; its name in SQL is the file stem (`services.csv` → `services`).
//! By convention they live in `<pipelines dir>/tables/` and are loaded with [`load_dir`], then
//! registered next to the input streams with [`register`]. They are read once, whole, and held in
//! memory, so their size is bounded ([`MAX_FILE_BYTES`], [`MAX_ROWS`]).
//!
//! - `.csv`: UTF-8 (a leading byte-order mark is skipped), comma-separated, `"`-quoted, header
//!   row required. Every column is `Utf8`: nothing is inferred, so a value reads the same
//!   whatever the other rows hold (cast in SQL when a number is needed: `CAST(s.weight AS
//!   DOUBLE)`). An empty cell is NULL. Header names are trimmed of surrounding spaces, must be
//!   non-empty and distinct; every row must have as many cells as the header. Blank lines are
//!   skipped.
//! - `.parquet`: read with the Arrow reader of the `parquet` crate, column types as in the file.
//!   Column chunks must be uncompressed or Snappy-compressed (the default of pyarrow, Spark and
//!   DuckDB); other codecs are refused with a message saying how to rewrite the file.
//!
//! Every error names the file, and for CSV the line (`services.csv:4: …`).

use aiops_schemas::Kind;
use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{Result as DfResult, plan_err};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest reference-table file accepted, in bytes (100 MiB): tables are held in memory.
pub const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// The most rows a reference table may have: tables are held in memory.
pub const MAX_ROWS: usize = 1_000_000;

/// File extensions of reference tables.
pub const EXTENSIONS: [&str; 2] = ["csv", "parquet"];

/// One reference table, loaded into memory.
#[derive(Debug, Clone)]
pub struct ReferenceTable {
    /// The name SQL uses: the file stem.
    pub name: String,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// All its rows, in file order.
    pub batch: RecordBatch,
}

impl ReferenceTable {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }
}

/// Why a reference table could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The file or directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is neither `.csv` nor `.parquet`.
    #[error("{}: not a reference table: the extension must be .csv or .parquet", path.display())]
    Extension {
        /// The file.
        path: PathBuf,
    },
    /// The file stem is not a plain SQL identifier.
    #[error(
        "{}: table name `{name}` (the file name without extension) must be a plain SQL \
         identifier: lower-case letters, digits and `_`, not starting with a digit",
        path.display()
    )]
    Name {
        /// The file.
        path: PathBuf,
        /// The file stem.
        name: String,
    },
    /// The file stem is the name of an input stream.
    #[error(
        "{}: table name `{name}` is an input stream (metrics, logs, alerts, events); rename the file",
        path.display()
    )]
    InputName {
        /// The file.
        path: PathBuf,
        /// The file stem.
        name: String,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error(
        "{}: {size} bytes is over the limit of {limit} bytes for a reference table \
         (reference tables are held in memory)",
        path.display()
    )]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// [`MAX_FILE_BYTES`].
        limit: u64,
    },
    /// The table has more than [`MAX_ROWS`] rows.
    #[error(
        "{}: more than {limit} rows, the limit for a reference table \
         (reference tables are held in memory)",
        path.display()
    )]
    TooManyRows {
        /// The file.
        path: PathBuf,
        /// [`MAX_ROWS`].
        limit: usize,
    },
    /// A CSV file is malformed at a line.
    #[error("{}:{line}: {reason}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A Parquet file cannot be decoded.
    #[error("{}: invalid Parquet file: {reason}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the Parquet reader reported.
        reason: String,
    },
    /// A Parquet file uses a compression codec this build does not read.
    #[error(
        "{}: column `{column}` is compressed with {codec}; reference tables read uncompressed \
         and Snappy-compressed Parquet only: rewrite the file with compression='snappy'",
        path.display()
    )]
    Compression {
        /// The file.
        path: PathBuf,
        /// The column path in the Parquet schema.
        column: String,
        /// The codec's name.
        codec: String,
    },
    /// Two files in one directory define the same table name.
    #[error("{} and {} both define reference table `{name}`", first.display(), second.display())]
    Duplicate {
        /// The table name.
        name: String,
        /// The file seen first (in name order).
        first: PathBuf,
        /// The other file.
        second: PathBuf,
    },
}

/// Loads one reference table from a `.csv` or `.parquet` file.
///
/// # Errors
/// A [`ReferenceError`] naming the file (and for CSV the line) when the extension or name is
/// wrong, the file is too large, unreadable or malformed.
pub fn load(path: &Path) -> Result<ReferenceTable, ReferenceError> {
    let ext = path.extension().and_then(|e| e.to_str());
    let ext = match ext {
        Some(e) if EXTENSIONS.contains(&e) => e,
        _ => {
            return Err(ReferenceError::Extension {
                path: path.to_path_buf(),
            });
        }
    };
    let name = table_name(path)?;
    let io = |source| ReferenceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ReferenceError::FileTooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let batch = if ext == "csv" {
        let mut bytes = Vec::new();
        File::open(path)
            .map_err(io)?
            // One byte over the limit is enough to notice a file that grew since `metadata`.
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(ReferenceError::FileTooLarge {
                path: path.to_path_buf(),
                size: bytes.len() as u64,
                limit: MAX_FILE_BYTES,
            });
        }
        read_csv(path, &bytes)?
    } else {
        read_parquet(path, File::open(path).map_err(io)?)?
    };
    Ok(ReferenceTable {
        name,
        path: path.to_path_buf(),
        batch,
    })
}

/// Loads every `.csv` and `.parquet` file directly in `dir`, in file-name order. Other files,
/// hidden files (starting with `.`) and subdirectories are ignored; a missing `dir` gives an empty
/// list.
///
/// # Errors
/// The first file that fails to load, a directory that cannot be read, or two files with the
/// same table name (`services.csv` and `services.parquet`).
pub fn load_dir(dir: &Path) -> Result<Vec<ReferenceTable>, ReferenceError> {
    let io = |source| ReferenceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let ext_ok = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e));
        if hidden || !ext_ok {
            continue;
        }
        // Follows symlinks: a linked table file is a table file.
        let is_file = std::fs::metadata(&path)
            .map_err(|source| ReferenceError::Io {
                path: path.clone(),
                source,
            })?
            .is_file();
        if is_file {
            files.push(path);
        }
    }
    files.sort();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut tables = Vec::with_capacity(files.len());
    for path in files {
        // Check the name before reading the file, so a duplicate is reported even when the
        // second file is also broken.
        let name = table_name(&path)?;
        if let Some(first) = seen.get(&name) {
            return Err(ReferenceError::Duplicate {
                name,
                first: first.clone(),
                second: path,
            });
        }
        seen.insert(name, path.clone());
        tables.push(load(&path)?);
    }
    Ok(tables)
}

/// Registers each table in `ctx` as an in-memory table under its name.
///
/// # Errors
/// When a table of that name already exists in `ctx` (an input stream or another table), so a
/// reference table never silently replaces one.
pub fn register(ctx: &SessionContext, tables: &[ReferenceTable]) -> DfResult<()> {
    for table in tables {
        if ctx.table_exist(table.name.as_str())? {
            return plan_err!(
                "{}: reference table `{}` is already defined",
                table.path.display(),
                table.name
            );
        }
        let mem = MemTable::try_new(table.batch.schema(), vec![vec![table.batch.clone()]])?;
        ctx.register_table(table.name.as_str(), Arc::new(mem))?;
    }
    Ok(())
}

/// The table name of `path`: its stem, checked.
fn table_name(path: &Path) -> Result<String, ReferenceError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_identifier(&name) {
        return Err(ReferenceError::Name {
            path: path.to_path_buf(),
            name,
        });
    }
    if Kind::ALL.iter().any(|k| k.as_str() == name) {
        return Err(ReferenceError::InputName {
            path: path.to_path_buf(),
            name,
        });
    }
    Ok(name)
}

/// `[a-z_][a-z0-9_]*`.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Parses CSV `bytes` (the whole file) into one batch of `Utf8` columns.
fn read_csv(path: &Path, bytes: &[u8]) -> Result<RecordBatch, ReferenceError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let csv_err = |line: u64, reason: String| ReferenceError::Csv {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::Headers)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| csv_error(path, bytes, &e, 1))?
        .clone();
    let header_line = header.position().map_or(1, |p| p.line());
    if header.is_empty() {
        return Err(csv_err(
            1,
            "empty file: a CSV reference table needs a header row naming its columns".into(),
        ));
    }
    let mut names = HashSet::new();
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(csv_err(
                header_line,
                format!("column {} of the header row has no name", i + 1),
            ));
        }
        if !names.insert(name) {
            return Err(csv_err(
                header_line,
                format!("column name `{name}` appears twice in the header row"),
            ));
        }
    }
    let mut columns: Vec<StringBuilder> = header.iter().map(|_| StringBuilder::new()).collect();
    let mut record = csv::StringRecord::new();
    let mut rows = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, bytes, &e, header_line + 1)),
        }
        rows += 1;
        if rows > MAX_ROWS {
            return Err(ReferenceError::TooManyRows {
                path: path.to_path_buf(),
                limit: MAX_ROWS,
            });
        }
        // `flexible(false)` guarantees as many cells as header names.
        for (builder, cell) in columns.iter_mut().zip(record.iter()) {
            if cell.is_empty() {
                builder.append_null();
            } else {
                builder.append_value(cell);
            }
        }
    }
    let fields: Vec<Field> = header
        .iter()
        .map(|name| Field::new(name, DataType::Utf8, true))
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| csv_err(header_line, e.to_string()))
}

/// A CSV reader error as a [`ReferenceError::Csv`] with the line it happened on (`fallback` when
/// the reader does not know). The line is counted from the record's byte offset in `bytes`: the
/// reader's own line count skips blank lines.
fn csv_error(path: &Path, bytes: &[u8], e: &csv::Error, fallback: u64) -> ReferenceError {
    let line_of = |p: &csv::Position| {
        let mut end = usize::try_from(p.byte())
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        // The record's offset can point at the blank lines before it.
        while bytes.get(end).is_some_and(|b| *b == b'\n' || *b == b'\r') {
            end += 1;
        }
        1 + bytes[..end].iter().filter(|b| **b == b'\n').count() as u64
    };
    let (line, reason) = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => (
            pos.as_ref().map(line_of),
            format!("{len} cells where the header row has {expected_len}"),
        ),
        csv::ErrorKind::Utf8 { pos, err } => (
            pos.as_ref().map(line_of),
            format!("cell {} is not valid UTF-8", err.field() + 1),
        ),
        _ => (e.position().map(line_of), e.to_string()),
    };
    ReferenceError::Csv {
        path: path.to_path_buf(),
        line: line.unwrap_or(fallback),
        reason,
    }
}

/// Reads a whole Parquet file into one batch.
fn read_parquet(path: &Path, file: File) -> Result<RecordBatch, ReferenceError> {
    let parquet_err = |e: &dyn std::fmt::Display| ReferenceError::Parquet {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(&e))?;
    let metadata = builder.metadata().clone();
    let rows = metadata.file_metadata().num_rows();
    if usize::try_from(rows).map_or(true, |r| r > MAX_ROWS) {
        return Err(ReferenceError::TooManyRows {
            path: path.to_path_buf(),
            limit: MAX_ROWS,
        });
    }
    for row_group in metadata.row_groups() {
        for column in row_group.columns() {
            let codec = column.compression();
            if !supported_compression(codec) {
                return Err(ReferenceError::Compression {
                    path: path.to_path_buf(),
                    column: column.column_path().string(),
                    codec: codec_name(codec),
                });
            }
        }
    }
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| parquet_err(&e))?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(batch.map_err(|e| parquet_err(&e))?);
    }
    concat_batches(&schema, &batches).map_err(|e| parquet_err(&e))
}

/// The codec's name without its level: `ZSTD`, not `ZSTD(ZstdLevel(1))`.
fn codec_name(codec: Compression) -> String {
    let debug = format!("{codec:?}");
    debug.split('(').next().unwrap_or_default().to_string()
}

/// Whether this build decodes Parquet pages compressed with `codec`.
fn supported_compression(codec: Compression) -> bool {
    matches!(codec, Compression::UNCOMPRESSED | Compression::SNAPPY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["services", "_x", "a1_b2", "t"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1abc", "Services", "my-table", "a b", "é", "a.b"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn only_uncompressed_and_snappy_are_read() {
        assert!(supported_compression(Compression::UNCOMPRESSED));
        assert!(supported_compression(Compression::SNAPPY));
        assert!(!supported_compression(
            Compression::ZSTD(Default::default())
        ));
        assert!(!supported_compression(
            Compression::GZIP(Default::default())
        ));
        assert!(!supported_compression(Compression::LZ4_RAW));
        assert_eq!(codec_name(Compression::ZSTD(Default::default())), "ZSTD");
    }
}
