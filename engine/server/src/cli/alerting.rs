//! `aiops alerting check` and `aiops alerting log`.

use super::parse_opt_time;
use aiops_server::config::Config;
use aiops_server::server;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The subcommands of `aiops alerting`.
#[derive(Debug, Subcommand)]
pub enum AlertingCommand {
    /// Parse and check an alerting configuration: routes, receivers, matchers, time intervals,
    /// inhibition rules. Prints the problem and exits non-zero if the file is refused.
    Check {
        /// The YAML file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the alerting decisions in the log (alert state changes, notification intents,
    /// incident changes, statistics) as NDJSON, oldest first: what fired, why, and when.
    Log(LogArgs),
}

/// The flags of `aiops alerting log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only decisions of this type: alert_state, notification, incident, alert_stats.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Start of the range (same forms as `replay --from`).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the range, exclusive.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
}

/// `aiops alerting check FILE` (needs no config): failure when the file is refused, with the
/// reason on standard error.
pub fn check(file: &Path) -> ExitCode {
    match aiops_server::alerting::load_file(file) {
        Ok((cfg, _)) => {
            // The receivers must compile too (a missing URL, PagerDuty v1 keys, …); what is
            // accepted but not delivered is listed.
            let set = match aiops_runtime::workflows::receivers::compile(&cfg, "") {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            let routes = aiops_alerting::route::Route::compile(&cfg).all().len();
            println!(
                "{}: ok ({routes} routes, {} receivers with {} delivering integrations, {} inhibition rules, {} time intervals)",
                file.display(),
                cfg.receivers.len(),
                set.providers.len(),
                cfg.inhibit_rules.len(),
                cfg.time_intervals.len()
            );
            for u in &set.unsupported {
                println!("  note: {u}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `aiops alerting log`: the decisions in the log as NDJSON.
///
/// # Errors
/// A bad time, or the log cannot be opened or read, or standard output cannot be written.
pub async fn log(args: LogArgs, cfg: Config) -> Result<()> {
    let from = parse_opt_time(args.from.as_deref())?;
    let to = parse_opt_time(args.to.as_deref())?;
    let log = server::open_log_for_reading(&cfg).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let res = print_decisions(log.as_ref(), args.kind.as_deref(), from, to, &mut out).await;
    log.close().await?;
    res?;
    out.flush()?;
    Ok(())
}

/// Writes the decisions in the log of type `kind` (all when `None`) with time in `[from, to)` as
/// NDJSON, in log order; returns how many.
async fn print_decisions(
    log: &dyn aiops_log::EventLog,
    kind: Option<&str>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    out: &mut impl Write,
) -> Result<u64> {
    let start = match from_ms {
        Some(t) => log.seek_time(t).await?,
        None => log.stats().await?.first_seq,
    };
    let mut r = log.reader(start).await?;
    let mut n = 0u64;
    loop {
        let batch = r.next_batch(1024).await?;
        if batch.is_empty() {
            return Ok(n);
        }
        for rec in batch {
            if rec.subject != aiops_runtime::wire::DECISIONS_SUBJECT {
                continue;
            }
            for line in rec.payload.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                /// Only what filtering needs; the line is printed as stored.
                #[derive(serde::Deserialize)]
                struct Head {
                    #[serde(rename = "type")]
                    kind: String,
                    at_ms: Option<i64>,
                }
                // A line this reader does not understand (a newer decision type's shape) is
                // skipped rather than failing the whole listing.
                let Ok(h) = serde_json::from_slice::<Head>(line) else {
                    continue;
                };
                let t = h.at_ms.unwrap_or(rec.time_min_ms);
                if kind.is_some_and(|k| k != h.kind)
                    || from_ms.is_some_and(|f| t < f)
                    || to_ms.is_some_and(|e| t >= e)
                {
                    continue;
                }
                out.write_all(line)?;
                out.write_all(b"\n")?;
                n += 1;
            }
        }
    }
}
