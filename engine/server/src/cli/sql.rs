//! `aiops sql`: one query over the archive and the log, read-only beside a running engine.

use aiops_read::archive::Archive;
use aiops_read::catalog::{ReadSources, session};
use aiops_read::directory::StreamDirectory;
use aiops_server::config::Config;
use aiops_server::{read, server};
use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::sync::Arc;

/// The arguments of `aiops sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query.
    sql: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: SqlFormat,
}

/// Output format of `aiops sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SqlFormat {
    /// An aligned table.
    Table,
    /// One JSON object per row.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

/// `aiops sql QUERY`: the rows on standard output.
///
/// # Errors
/// The log or archive cannot be opened, or the query fails (with its SQLSTATE).
pub async fn sql(args: SqlArgs, cfg: Config) -> Result<()> {
    let mut out = std::io::stdout();
    run_query(&cfg, &args.sql, args.format, &mut out).await?;
    Ok(())
}

/// Runs `sql` with the engine's limits and writes the rows in `format`; returns the row count.
async fn run_query(
    cfg: &Config,
    sql: &str,
    format: SqlFormat,
    out: &mut (dyn Write + Send),
) -> Result<usize> {
    let log = server::open_log_for_reading(cfg).await?;
    let dir = read::archive_dir_of(cfg);
    // No archive yet (or archiving off): the log alone answers.
    let archive = if cfg.archive.enabled && dir.join("manifest.json").exists() {
        Some(Arc::new(Archive::open_read_only(&dir)?))
    } else {
        None
    };
    let src = ReadSources {
        log,
        archive,
        directory: Arc::new(StreamDirectory::default()),
        state: None,
    };
    src.directory
        .refresh(&src.log, src.archive.as_ref())
        .await?;
    let limits = cfg.sql.limits();
    let ctx = session(src, &limits)?;
    let batches = aiops_read::sandbox::query(&ctx, sql, None, &limits)
        .await
        .map_err(|e| anyhow::anyhow!("{} (SQLSTATE {})", e.message, e.code))?;
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    match format {
        SqlFormat::Table => {
            let t = arrow_cast::pretty::pretty_format_batches(&batches)?;
            writeln!(out, "{t}")?;
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
        SqlFormat::Ndjson => {
            let mut w = arrow_json::LineDelimitedWriter::new(&mut *out);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        SqlFormat::Csv => {
            let mut w = datafusion::arrow::csv::Writer::new(&mut *out);
            for b in &batches {
                w.write(b)?;
            }
        }
    }
    Ok(rows)
}
