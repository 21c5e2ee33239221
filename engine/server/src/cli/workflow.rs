//! `aiops workflow check` and `aiops workflow replay` (also `aiops replay --workflows`).

use super::parse_opt_time;
use aiops_server::config::Config;
use aiops_server::server;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// The subcommands of `aiops workflow`.
#[derive(Debug, Subcommand)]
pub enum WorkflowCmd {
    /// Check workflow files (or every *.yaml in a directory) against the configured providers
    /// and secrets: triggers, filters, templates, durations. Prints `file:line: reason` for each
    /// problem and exits non-zero if any file is refused. Files under an `autoheal` directory
    /// (or with `strategies:` at the top) are checked as auto-heal strategies.
    Check {
        /// Workflow or strategy files or directories.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run the workflows over a past range without running anything, and print what would
    /// have run (NDJSON, one line per effect, with what the log says became of it then).
    Replay {
        /// Start of the range (same forms as `replay --from`).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End of the range, exclusive.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
    },
}

/// `aiops workflow …`: failure when `check` refuses a file.
///
/// # Errors
/// The providers config is invalid, a directory cannot be read, or the replay failed.
pub async fn workflow(command: WorkflowCmd, cfg: Config) -> Result<ExitCode> {
    match command {
        WorkflowCmd::Check { files } => Ok(if check(&cfg, &files)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        WorkflowCmd::Replay { from, to } => {
            replay_range(&cfg, from, to).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `aiops workflow replay` / `aiops replay --workflows`: what would have run, as NDJSON.
///
/// # Errors
/// A bad time, or the log cannot be opened or read.
pub async fn replay_range(cfg: &Config, from: Option<String>, to: Option<String>) -> Result<()> {
    let from = parse_opt_time(from.as_deref())?;
    let to = parse_opt_time(to.as_deref())?;
    let settings = cfg.workflow_settings().map_err(anyhow::Error::msg)?;
    let log = server::open_log_for_reading(cfg).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let res =
        aiops_server::workflows::dry::replay(log.clone(), &settings, from, to, &mut out).await;
    log.close().await?;
    let sum = res?;
    tracing::info!(
        would_run = sum.would_run,
        ran_then = sum.ran_then,
        "workflow replay done (nothing executed)"
    );
    Ok(())
}

/// `aiops workflow check`: true when every file compiles.
fn check(cfg: &Config, paths: &[PathBuf]) -> Result<bool> {
    let settings = cfg.workflow_settings().map_err(anyhow::Error::msg)?;
    let providers = std::sync::Arc::new(settings.providers_lenient().map_err(anyhow::Error::msg)?);
    let renderer = aiops_workflow::Renderer::default();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|x| matches!(x.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect();
            // Directory order is the filesystem's; sorted, the output is the same everywhere.
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    let mut ok = true;
    for f in files {
        let name = f.display().to_string();
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: {e}");
                ok = false;
                continue;
            }
        };
        let strategy = text.trim_start().starts_with("strategies:")
            || f.components().any(|c| c.as_os_str() == "autoheal");
        let res = if strategy {
            aiops_workflow::autoheal::compile_strategies(
                &name,
                &text,
                providers.as_ref(),
                &renderer,
            )
            .map(|s| format!("{} strategies", s.len()))
        } else {
            aiops_workflow::compile_text(&name, &text, providers.as_ref(), &renderer).map(|w| {
                format!(
                    "workflow {} ({} triggers, {} steps and actions)",
                    w.id,
                    w.triggers.len(),
                    w.items.len()
                )
            })
        };
        match res {
            Ok(what) => println!("{name}: ok ({what})"),
            Err(e) => {
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    Ok(ok)
}
