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
    /// logs, deploys, alerts and scripted incidents, in real time.
    #[arg(long)]
    demo: bool,
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
        cfg.sources
            .push(aiops_connectors::registry::PullSourceConfig::Demo(
                Default::default(),
            ));
    }
    server::run(cfg, shutdown_signal()).await?;
    Ok(())
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
