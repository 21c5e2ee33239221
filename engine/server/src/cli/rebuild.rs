//! `aiops rebuild`: pipeline, template, alerting, workflow, knowledge and deploy state from the whole
//! log.

use super::progress::Progress;
use aiops_server::config::Config;
use aiops_server::pipelines::rebuild;
use aiops_server::server;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// The flags of `aiops rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Pipeline directory. Overrides `pipelines.dir` (default `pipelines`).
    #[arg(long, value_name = "DIR")]
    pipelines: Option<PathBuf>,
    /// Also write every derived event produced into DIR, one NDJSON file per stream (and the
    /// alerting decisions to DIR/alerting.ndjson), so two rebuilds can be compared byte for byte.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
}

/// `aiops rebuild`: prints one JSON object with each processor's summary. Each pass over the log
/// shows a bar of log positions on a terminal.
///
/// # Errors
/// The log cannot be opened, or a rebuild failed (the log is closed first).
pub async fn rebuild(args: RebuildArgs, mut cfg: Config) -> Result<()> {
    if let Some(d) = args.pipelines {
        cfg.pipelines.dir = d;
    }
    let log = server::open_log(&cfg).await?;
    // Each pass reads the whole log: a bar per pass, in log positions up to the head.
    let head = match log.stats().await {
        Ok(s) => s.next_seq,
        Err(e) => {
            log.close().await?;
            anyhow::bail!(e);
        }
    };
    let pass = |what: &str| Progress::bar(what, head, "positions");
    let res = rebuild::rebuild(
        log.clone(),
        &cfg.pipelines,
        &rebuild::store_dir(&cfg.data_dir),
        args.output.as_deref(),
        pass("pipelines").positions(),
    )
    .await;
    let sum = match res {
        Ok(sum) => sum,
        Err(e) => {
            log.close().await?;
            anyhow::bail!(e);
        }
    };
    let tres = if cfg.templates.enabled {
        Some(
            aiops_runtime::templates::rebuild::rebuild(
                log.clone(),
                &cfg.templates,
                &aiops_runtime::templates::store_dir(&cfg.data_dir),
                pass("templates").positions(),
            )
            .await,
        )
    } else {
        None
    };
    let ares = aiops_server::alerting::rebuild::rebuild(
        log.clone(),
        &cfg.alerting,
        &aiops_server::alerting::store_dir(&cfg.data_dir),
        args.output.as_deref(),
        pass("alerting").positions(),
    )
    .await;
    let wres = if cfg.workflows.enabled {
        let settings = cfg.workflow_settings().map_err(anyhow::Error::msg)?;
        // This pass reports no position: a spinner says it is alive.
        let spin = Progress::spinner("workflows", "");
        let r = aiops_server::workflows::dry::rebuild(
            log.clone(),
            &settings,
            &aiops_server::workflows::store_dir(&cfg.data_dir),
        )
        .await;
        spin.finish();
        Some(r)
    } else {
        None
    };
    let kres = if cfg.knowledge.enabled {
        Some(
            aiops_runtime::knowledge::rebuild::rebuild(
                log.clone(),
                &aiops_runtime::knowledge::store_dir(&cfg.data_dir),
                pass("knowledge").positions(),
            )
            .await,
        )
    } else {
        None
    };
    let dres = if cfg.deploys.enabled {
        Some(
            aiops_runtime::deploys::rebuild::rebuild(
                log.clone(),
                &aiops_runtime::deploys::store_dir(&cfg.data_dir),
                cfg.deploys.clone(),
                pass("deploys").positions(),
            )
            .await,
        )
    } else {
        None
    };
    log.close().await?;
    let dsum = dres.transpose().map_err(|e| anyhow::anyhow!(e))?;
    let asum = ares.map_err(|e| anyhow::anyhow!(e))?;
    let wsum = wres.transpose()?;
    let tsum = tres.transpose().map_err(|e| anyhow::anyhow!(e))?;
    let ksum = kres.transpose().map_err(|e| anyhow::anyhow!(e))?;
    let mut v = serde_json::to_value(sum)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("alerting".into(), serde_json::to_value(asum)?);
        o.insert("templates".into(), serde_json::to_value(tsum)?);
        o.insert("workflows".into(), serde_json::to_value(wsum)?);
        o.insert("deploys".into(), serde_json::to_value(dsum)?);
        // The entries' hash: equal to what a live engine over the same log reports.
        o.insert(
            "knowledge".into(),
            serde_json::to_value(ksum.map(
                |(s, hash)| serde_json::json!({"summary": s, "state_hash": format!("{hash:016x}")}),
            ))?,
        );
    }
    println!("{v}");
    Ok(())
}
