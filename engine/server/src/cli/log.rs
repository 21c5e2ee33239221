//! `aiops log stats`: what the event log holds, per kind, from message headers.

use super::fmt_ms;
use aiops_server::config::Config;
use aiops_server::{log_stats, server};
use anyhow::Result;
use clap::Subcommand;

/// The subcommands of `aiops log`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Counts, event-time range and bytes per kind, and the log's durability (with NATS: fsync
    /// policy, replicas, stream leader and each replica's state).
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
    if let Some(sync) = &s.sync_policy {
        println!("fsync       {sync}");
    }
    if let Some(r) = s.replicas {
        println!("replicas    {r}");
    }
    if let Some(c) = &s.cluster {
        println!("cluster     {c}");
    }
    if let Some(l) = &s.leader {
        println!("leader      {l}");
    } else if s.replicas.is_some() {
        println!("leader      none (being elected)");
    }
    if let Some(srv) = &s.server {
        println!("connected   {srv}");
    }
    if !s.cluster_peers.is_empty() {
        println!("peers");
        for p in &s.cluster_peers {
            let state = if p.leader {
                "leader"
            } else if p.offline {
                "offline"
            } else if p.current {
                "current"
            } else {
                "catching up"
            };
            let lag = p.lag.map_or_else(|| "-".to_string(), |l| l.to_string());
            println!(
                "  {:<20} {:<12} lag {:<8} last seen {} ms ago",
                p.name, state, lag, p.active_ms
            );
        }
    }
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
