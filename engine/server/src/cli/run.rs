//! `aiops run`: the engine until SIGINT or SIGTERM.

use aiops_server::config::Config;
use aiops_server::server;
use anyhow::Result;
use clap::Args;

/// The flags of `aiops run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// HTTP listen address. Overrides `http.listen` (default 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// Also run the built-in demo generator: a small fleet of hosts and services with metrics,
    /// logs, deploys, alerts and scripted incidents, in real time after a backfill of history
    /// (see --demo-backfill).
    #[arg(long)]
    demo: bool,
    /// With --demo on a fresh log: first generate this much history (event times from now minus
    /// DURATION up to now, as fast as the log takes it; the same fleet and scripted incidents),
    /// so incidents, deploys, alerts and pipeline outputs exist at once. `0s` starts empty. A
    /// log that already holds messages gets no backfill (its history is kept as it is).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "demo")]
    demo_backfill: Option<std::time::Duration>,
    /// Postgres wire endpoint listen address. Overrides `sql.listen` (default 127.0.0.1:5433).
    #[arg(long, value_name = "ADDR")]
    pg: Option<std::net::SocketAddr>,
    /// Run as node NAME of a cluster (needs `--log nats://h1:p1,h2:p2,...`): every node takes
    /// ingest and answers reads; the stateful work (alerting, templates, pipelines) is spread
    /// over the live nodes, one owner per unit, and moves when a node dies. Overrides
    /// `cluster.node`. See docs/cluster.md.
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
}

/// `aiops run`: the flags over the config, then the engine until a shutdown signal.
///
/// # Errors
/// The engine failed to start or stopped on an error.
pub async fn run(args: RunArgs, mut cfg: Config) -> Result<()> {
    if let Some(addr) = args.http {
        cfg.http.listen = addr;
    }
    if let Some(addr) = args.pg {
        cfg.sql.listen = addr;
    }
    if let Some(node) = args.node {
        cfg.cluster.node = node;
    }
    if args.demo {
        let wanted = args.demo_backfill.unwrap_or(DEFAULT_DEMO_BACKFILL);
        let backfill = if wanted.is_zero() {
            None
        } else if log_is_empty(&cfg).await? {
            eprintln!(
                "aiops: demo: generating {} of history first, then real time",
                humantime::format_duration(wanted)
            );
            Some(wanted)
        } else {
            eprintln!("aiops: demo: the log already holds history, so no backfill");
            None
        };
        cfg.sources
            .push(aiops_connectors::registry::PullSourceConfig::Demo(
                aiops_connectors::sources::demo::DemoConfig {
                    backfill,
                    ..Default::default()
                },
            ));
    }
    server::run(cfg, shutdown_signal()).await?;
    Ok(())
}

/// History `--demo` generates first on a fresh log: enough for the two-hourly scripted
/// incidents (and their alerts, deploys and restarts) to have happened at least once.
const DEFAULT_DEMO_BACKFILL: std::time::Duration = std::time::Duration::from_secs(3 * 3600);

/// Whether the configured log holds no message yet (a first start), read without taking the
/// log over: a second `run --demo` on the same data must not generate history twice.
async fn log_is_empty(cfg: &Config) -> Result<bool> {
    // An embedded log that was never opened has no LOCK file yet (and a read-only open refuses
    // such a directory).
    if cfg.log == "embedded" && !cfg.embedded.dir.join("LOCK").exists() {
        return Ok(true);
    }
    let log = server::open_log_for_reading(cfg).await?;
    let stats = log.stats().await;
    log.close().await?;
    Ok(stats?.messages == 0)
}

/// Resolves on Ctrl-C, or SIGTERM on Unix (what service managers send).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    // Without a SIGTERM handler, Ctrl-C still stops the engine cleanly.
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
