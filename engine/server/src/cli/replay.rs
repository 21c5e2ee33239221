//! `aiops replay`: a past range as events, through pipelines (`--pipelines`), or through the
//! workflows (`--workflows`); nothing is written to the log.

use super::parse_opt_time;
use super::progress::{CountingWriter, Progress};
use aiops_schemas::Kind;
use aiops_server::config::Config;
use aiops_server::pipelines::forensic;
use aiops_server::replay::{self, ReplayFilter, ReplayFormat};
use aiops_server::server;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// The flags of `aiops replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Start of the range (inclusive): RFC 3339 (`2026-11-24T10:00:00Z`), Unix milliseconds, or
    /// a duration meaning "that long ago" (`1h`, `30m`). Default: the start of the log.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the range (exclusive), same forms as --from. Default: no end.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Only these kinds (metrics, logs, alerts, events); repeat or comma-separate.
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    kinds: Vec<Kind>,
    /// Output format.
    #[arg(long, value_enum, default_value = "ndjson")]
    format: ReplayFormat,
    /// Run the pipelines of this directory over the range instead of printing events, and print
    /// what they produce (derived events and late rows). Nothing is written to the log and the
    /// running engine is not affected: a safe way to try a new alert rule on last week.
    #[arg(long, value_name = "DIR")]
    pipelines: Option<PathBuf>,
    /// Run the workflows (`workflows.dir`, `workflows.autoheal_dir`) over the range and print
    /// what would have run; no effect is executed.
    #[arg(long, conflicts_with = "pipelines")]
    workflows: bool,
    /// With --pipelines: write one Parquet file per output stream into DIR instead of NDJSON on
    /// standard output.
    #[arg(long, value_name = "DIR", requires = "pipelines")]
    parquet: Option<PathBuf>,
}

/// `aiops replay`: `--workflows` and `--pipelines` pick the other two forms.
///
/// # Errors
/// A bad time, the log cannot be opened or read, or the output cannot be written.
pub async fn replay(args: ReplayArgs, cfg: Config) -> Result<()> {
    if args.workflows {
        return super::workflow::replay_range(&cfg, args.from, args.to).await;
    }
    if let Some(dir) = args.pipelines {
        return forensic_replay(cfg, dir, args.from, args.to, args.parquet).await;
    }
    let filter = ReplayFilter {
        from_ms: parse_opt_time(args.from.as_deref())?,
        to_ms: parse_opt_time(args.to.as_deref())?,
        kinds: args.kinds,
    };
    let log = server::open_log_for_reading(&cfg).await?;
    // The lines printed so far, on a spinner (the replay reports no position of its own).
    let spin = Progress::spinner_beside_output("replay", "lines");
    let mut out = CountingWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, std::io::stdout()),
        spin.clone(),
    );
    let res = replay::replay(log.as_ref(), &filter, args.format, &mut out).await;
    spin.finish();
    log.close().await?;
    let sum = res?;
    tracing::info!(
        messages = sum.messages_read,
        events = sum.events,
        "replay done"
    );
    Ok(())
}

/// `aiops replay --pipelines DIR`: the pipelines over the range, their outputs printed.
async fn forensic_replay(
    cfg: Config,
    dir: PathBuf,
    from: Option<String>,
    to: Option<String>,
    parquet: Option<PathBuf>,
) -> Result<()> {
    let from_ms = parse_opt_time(from.as_deref())?;
    let to_ms = parse_opt_time(to.as_deref())?;
    let log = server::open_log_for_reading(&cfg).await?;
    let spin = Progress::spinner_beside_output("replay", "output lines");
    let mut out = CountingWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, std::io::stdout()),
        spin.clone(),
    );
    let format = if parquet.is_some() {
        forensic::OutputFormat::Parquet
    } else {
        forensic::OutputFormat::Ndjson
    };
    let req = forensic::ForensicRequest {
        dir,
        from_ms,
        to_ms,
        format,
        parquet_dir: parquet,
    };
    let res = forensic::replay(log.clone(), &req, &cfg.pipelines, &mut out).await;
    spin.finish();
    log.close().await?;
    let sum = res?;
    tracing::info!(
        messages = sum.messages_read,
        outputs = sum.outputs,
        "forensic replay done (nothing written to the log)"
    );
    Ok(())
}
