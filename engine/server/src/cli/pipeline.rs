//! `aiops pipeline check`: parse and plan pipeline files against the event schemas.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::PathBuf;

/// The subcommands of `aiops pipeline`.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Parse and plan pipeline files (or every *.sql in a directory) against the event schemas;
    /// print `file:line:column: reason` for each problem. Exits non-zero if any file is refused.
    Check {
        /// Pipeline files or directories.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// `aiops pipeline …` (needs no config: it checks files on their own).
///
/// # Errors
/// A directory cannot be read, or any file is refused (each reason is printed first).
pub async fn pipeline(command: PipelineCommand) -> Result<()> {
    match command {
        PipelineCommand::Check { files } => check(files).await,
    }
}

/// `aiops pipeline check FILE…`.
async fn check(files: Vec<PathBuf>) -> Result<()> {
    let mut paths = Vec::new();
    for f in files {
        if f.is_dir() {
            paths.extend(
                aiops_sql::pipeline::pipeline_files(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
            );
        } else {
            paths.push(f);
        }
    }
    let mut refused = 0;
    for p in &paths {
        match aiops_sql::check_file(p).await {
            Ok(c) => {
                let cols: Vec<String> = c
                    .output_schema
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect();
                println!(
                    "{}: ok: {} ← {} ({})",
                    p.display(),
                    c.output,
                    c.inputs.join(", "),
                    cols.join(", ")
                );
            }
            Err(e) => {
                refused += 1;
                eprintln!("{e}");
            }
        }
    }
    if refused > 0 {
        bail!("{refused} of {} pipeline files refused", paths.len());
    }
    Ok(())
}
