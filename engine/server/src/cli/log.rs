//! `aiops log stats`: what the event log holds, per kind, from message headers.

use super::fmt_ms;
use aiops_server::config::Config;
use aiops_server::{log_stats, server};
use anyhow::Result;
use clap::Subcommand;

/// The subcommands of `aiops log`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Counts, event-time range and bytes per kind, and the log's durability.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `aiops log …`.
///
/// # Errors
/// The log cannot be opened or read.
pub async fn log(command: LogCommand, cfg: Config) -> Result<()> {
    match command {
        LogCommand::Stats { json } => stats(json, &cfg).await,
    }
}

/// `aiops log stats [--json]`.
async fn stats(json: bool, cfg: &Config) -> Result<()> {
    let log = server::open_log_for_reading(cfg).await?;
    let res = log_stats::collect(log.as_ref()).await;
    log.close().await?;
    let report = res?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let s = &report.log;
    println!("backend     {}", s.backend);
    println!(
        "sequences   {} .. {} ({} messages)",
        s.first_seq, s.next_seq, s.messages
    );
    println!("bytes       {}", s.bytes);
    println!("durability  {}", s.durability);
    println!();
    println!(
        "{:<8} {:>10} {:>14} {:>14}  {:<24}  {:<24}",
        "kind", "messages", "events", "bytes", "first event", "last event"
    );
    for (kind, k) in &report.kinds {
        println!(
            "{:<8} {:>10} {:>14} {:>14}  {:<24}  {:<24}",
            kind.as_str(),
            k.messages,
            k.events,
            k.bytes,
            fmt_ms(k.time_min_ms),
            fmt_ms(k.time_max_ms)
        );
    }
    if report.other_messages > 0 {
        println!("(+{} messages of other subjects)", report.other_messages);
    }
    Ok(())
}
