//! `aiops cluster status`: who is alive, who owns which work unit, and how far behind each
//! unit's checkpoint is — read from the cluster itself (the lease bucket and the checkpoint
//! store), so it works from any machine that reaches the NATS servers, with no node's token.

use aiops_runtime::store::Store;
use aiops_server::config::Config;
use aiops_server::server;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;

/// The subcommands of `aiops cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Live nodes, and per work unit its owner, how long it has held it, the checkpoint's
    /// position and the unit's lag behind the log head (messages). Needs `--log nats://…`.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `aiops cluster …`.
///
/// # Errors
/// The log is not a NATS log, or the cluster cannot be read.
pub async fn cluster(command: ClusterCommand, cfg: Config) -> Result<()> {
    match command {
        ClusterCommand::Status { json } => status(json, &cfg).await,
    }
}

const UNITS: [&str; 3] = ["alerting", "templates", "workflows"];

async fn status(as_json: bool, cfg: &Config) -> Result<()> {
    let log = server::open_log_for_reading(cfg).await?;
    let Some(coord) = log.coordination() else {
        bail!("`aiops cluster status` needs the cluster's log: --log nats://h1:p1,h2:p2,...");
    };
    // Zero TTL: read the bucket as the nodes made it, whatever this config says.
    let leases = coord
        .leases(&cfg.cluster.lease_bucket, std::time::Duration::ZERO)
        .await
        .context("reading the lease bucket")?;
    let blobs = coord
        .blobs(&cfg.cluster.checkpoint_bucket)
        .await
        .context("reading the checkpoint store")?;
    let head = log.stats().await?.next_seq;
    let now = aiops_runtime::clock::now_ms();
    let nodes: Vec<String> = leases
        .list("node.")
        .await?
        .into_iter()
        .map(|e| e.key["node.".len()..].to_string())
        .collect();
    let owners: std::collections::BTreeMap<String, serde_json::Value> = leases
        .list("unit.")
        .await?
        .into_iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_slice(&e.value).unwrap_or_default();
            (e.key["unit.".len()..].to_string(), v)
        })
        .collect();
    // The fixed units, and one per pipeline as the leases and the pipeline files name them.
    let mut names: Vec<String> = UNITS.iter().map(|u| u.to_string()).collect();
    for k in owners.keys().filter(|k| k.starts_with("pipeline")) {
        names.push(k.clone());
    }
    if let Ok(sources) = aiops_runtime::pipelines::load::read_dir(&cfg.pipelines.dir) {
        for s in sources {
            if let Some(stem) = s.file.file_stem() {
                names.push(format!("pipeline.{}", stem.to_string_lossy()));
            }
        }
    }
    names.sort();
    names.dedup();
    let mut units = Vec::new();
    for u in &names {
        let u = u.as_str();
        let store = Store::open_blob(blobs.clone(), u).await?;
        // Single-state units keep one checkpoint; the pipelines one per pipeline (the
        // furthest behind counts).
        let position = match store.load()? {
            Some((ck, _)) => Some(ck.position),
            None => aiops_runtime::pipelines::store::Store::from_store(store)
                .positions()?
                .into_iter()
                .min(),
        };
        let owner = owners.get(u);
        units.push(json!({
            "unit": u,
            "owner": owner.and_then(|o| o["node"].as_str()),
            "held_ms": owner.and_then(|o| o["since_ms"].as_i64()).map(|s| now - s),
            "checkpoint_position": position,
            "lag": position.map(|p| head.saturating_sub(p)),
        }));
    }
    log.close().await?;
    let report = json!({"nodes": nodes, "log_head": head, "units": units});
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "nodes     {}",
        if nodes.is_empty() {
            "none alive".to_string()
        } else {
            nodes.join(", ")
        }
    );
    println!("log head  {head}");
    println!(
        "{:<12} {:<12} {:>10} {:>12} {:>10}",
        "unit", "owner", "held", "checkpoint", "lag"
    );
    for u in &units {
        let dash = || "-".to_string();
        println!(
            "{:<12} {:<12} {:>10} {:>12} {:>10}",
            u["unit"].as_str().unwrap_or(""),
            u["owner"].as_str().unwrap_or("none"),
            u["held_ms"]
                .as_i64()
                .map_or_else(dash, |ms| format!("{}s", ms / 1000)),
            u["checkpoint_position"]
                .as_u64()
                .map_or_else(dash, |p| p.to_string()),
            u["lag"].as_u64().map_or_else(dash, |p| p.to_string()),
        );
    }
    Ok(())
}
