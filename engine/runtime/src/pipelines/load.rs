//! Loads a directory of pipeline files (and its `tables/` reference tables) into compiled
//! streaming pipelines, refusing the whole set with every file's positioned error if any file
//! is bad, so a running set is only ever replaced by a set that fully compiles.

use aiops_sql::pipeline::pipeline_files;
use aiops_sql::reference::{self, ReferenceTable};
use aiops_sql::runtime::{RuntimeConfig, StreamingPipeline};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A reference table by the name SQL uses.
pub type NamedTable = (String, Arc<dyn TableProvider>);

/// One pipeline file as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSource {
    /// The file.
    pub file: PathBuf,
    /// Its SQL.
    pub sql: String,
}

/// Why a pipeline directory could not be loaded: one line per problem, `file:line:col: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct LoadError {
    /// Every problem found.
    pub problems: Vec<String>,
}

fn one(problem: impl Into<String>) -> LoadError {
    LoadError {
        problems: vec![problem.into()],
    }
}

/// The `*.sql` files of `dir` with their text, sorted by path. A missing directory holds none.
///
/// # Errors
/// [`LoadError`] when the directory or a file cannot be read.
pub fn read_dir(dir: &Path) -> Result<Vec<PipelineSource>, LoadError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let files = pipeline_files(dir).map_err(|e| one(format!("{}: {e}", dir.display())))?;
    files
        .into_iter()
        .map(|file| {
            let sql = std::fs::read_to_string(&file)
                .map_err(|e| one(format!("{}: cannot read: {e}", file.display())))?;
            Ok(PipelineSource { file, sql })
        })
        .collect()
}

/// The reference tables in `<dir>/tables`, as table providers to register by name.
///
/// # Errors
/// [`LoadError`] naming the bad table file.
pub fn tables(dir: &Path) -> Result<Vec<NamedTable>, LoadError> {
    let tdir = dir.join("tables");
    if !tdir.is_dir() {
        return Ok(Vec::new());
    }
    let loaded: Vec<ReferenceTable> = reference::load_dir(&tdir).map_err(|e| one(e.to_string()))?;
    loaded
        .into_iter()
        .map(|t| {
            let mem = MemTable::try_new(t.batch.schema(), vec![vec![t.batch.clone()]])
                .map_err(|e| one(format!("{}: {e}", t.path.display())))?;
            Ok((t.name, Arc::new(mem) as Arc<dyn TableProvider>))
        })
        .collect()
}

/// Compiles every source; all or nothing. A pipeline may read another one's output (`FROM
/// <output name>`): sources are compiled in passes, each pass making the outputs compiled so far
/// readable, until no more compile; the order of the result is the order of compilation, so a
/// pipeline comes after the ones it reads.
///
/// # Errors
/// [`LoadError`] with every refused file's `file:line:col: reason`, and duplicate names.
pub async fn compile_all(
    sources: &[PipelineSource],
    tables: &[NamedTable],
    cfg: RuntimeConfig,
) -> Result<Vec<StreamingPipeline>, LoadError> {
    let mut out: Vec<StreamingPipeline> = Vec::with_capacity(sources.len());
    let mut pending: Vec<&PipelineSource> = sources.iter().collect();
    let mut problems = Vec::new();
    loop {
        let streams: Vec<(String, SchemaRef)> = out
            .iter()
            .map(|p| (p.output().to_string(), p.output_schema()))
            .filter(|(name, _)| name != "alerts")
            .collect();
        let mut next = Vec::new();
        problems.clear();
        let before = out.len();
        for s in pending {
            match StreamingPipeline::compile_with_streams(&s.file, &s.sql, tables, &streams, cfg)
                .await
            {
                Ok(p) => {
                    if out.iter().any(|q| q.name() == p.name()) {
                        problems.push(format!(
                            "{}: a pipeline named {} is already loaded",
                            s.file.display(),
                            p.name()
                        ));
                    } else if out
                        .iter()
                        .any(|q| q.output() == p.output() && p.output() != "alerts")
                    {
                        problems.push(format!(
                            "{}: output {} is already written by another pipeline",
                            s.file.display(),
                            p.output()
                        ));
                    } else {
                        out.push(p);
                    }
                }
                Err(e) => {
                    problems.push(e.to_string());
                    next.push(s);
                }
            }
        }
        pending = next;
        if pending.is_empty() || out.len() == before {
            break;
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(LoadError { problems })
    }
}

/// Reads, loads tables and compiles a whole pipeline directory.
///
/// # Errors
/// As [`read_dir`], [`tables`] and [`compile_all`].
pub async fn load_dir(dir: &Path, cfg: RuntimeConfig) -> Result<Vec<StreamingPipeline>, LoadError> {
    let sources = read_dir(dir)?;
    let tables = tables(dir)?;
    compile_all(&sources, &tables, cfg).await
}
