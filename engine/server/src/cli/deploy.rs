//! `aiops deploy`: record a deploy, its status, a rollback and the history through the running
//! engine's API; `verify` re-derives a past deploy's verdict from the log alone (a forensic
//! replay: nothing is written, nothing is called).

use super::knowledge::{ApiArgs, call, urlencode};
use aiops_server::config::Config;
use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

/// The subcommands of `aiops deploy`.
#[derive(Debug, Subcommand)]
pub enum DeployCmd {
    /// Record a deploy (as CI would: `POST /api/deploy`). Prints the record with its risk score
    /// and reasons; a freeze window refuses it. Needs an operator token.
    Record {
        /// The service deployed (its metrics' `service` label).
        #[arg(long)]
        service: String,
        /// The version deployed (its metrics' `version` label for a canary).
        #[arg(long)]
        version: String,
        /// The environment.
        #[arg(long, default_value = "production")]
        environment: String,
        /// The version it replaces.
        #[arg(long)]
        previous_version: Option<String>,
        /// `all-at-once`, `canary` or `blue-green`.
        #[arg(long, default_value = "all-at-once")]
        strategy: String,
        /// Where the rollout stands (`pending`, `in_progress`, `succeeded`, `failed`,
        /// `cancelled`). Default: `in_progress` for a canary, else `succeeded`.
        #[arg(long)]
        status: Option<String>,
        /// The id to use (posting the same id again updates that deploy).
        #[arg(long)]
        id: Option<String>,
        /// Free text (commit message).
        #[arg(long)]
        description: Option<String>,
        /// Run the configured deploy workflow for it.
        #[arg(long)]
        run: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// A deploy's status (`--id`), a service's deploys (`--service`), or every deploy not
    /// finished.
    Status {
        /// One deploy.
        #[arg(long)]
        id: Option<String>,
        /// A service's deploys.
        #[arg(long)]
        service: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Roll a deploy back: runs the rollback workflow once. Needs an operator token.
    Rollback {
        /// The deploy.
        id: String,
        /// Why (shown on the record and the incident timeline).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Deploy history (newest first) and DORA figures per service.
    List {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Verify a past deploy again from the log: reads the whole log with the configured
    /// verification (no engine needed; safe beside a running one), and prints the re-derived
    /// record and verdict beside the verdict the engine recorded. Exits non-zero when they
    /// differ.
    Verify {
        /// The deploy.
        id: String,
    },
}

/// `aiops deploy …`.
///
/// # Errors
/// The engine is unreachable or refuses (its message is shown); the log cannot be read; a
/// re-derived verdict differs from the recorded one.
pub async fn deploy(cmd: DeployCmd, cfg: Config) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let base = |a: &ApiArgs| {
        a.api
            .clone()
            .unwrap_or_else(|| format!("http://{}", cfg.http.listen))
    };
    let print = |v: &Value| -> Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    };
    match cmd {
        DeployCmd::Record {
            service,
            version,
            environment,
            previous_version,
            strategy,
            status,
            id,
            description,
            run,
            api,
        } => {
            let mut body = json!({
                "service": service, "version": version, "environment": environment,
                "strategy": strategy, "run": run,
            });
            for (k, v) in [
                ("previous_version", previous_version),
                ("status", status),
                ("id", id),
                ("description", description),
            ] {
                if let Some(v) = v {
                    body[k] = Value::String(v);
                }
            }
            let v = call(&http, &base(&api), &api, "/api/deploy", Some(&body)).await?;
            print(&v)?;
        }
        DeployCmd::Status { id, service, api } => {
            let q = match (id, service) {
                (Some(i), _) => format!("?id={}", urlencode(&i)),
                (None, Some(s)) => format!("?service={}", urlencode(&s)),
                (None, None) => String::new(),
            };
            let v = call(
                &http,
                &base(&api),
                &api,
                &format!("/api/deploy/status{q}"),
                None,
            )
            .await?;
            print(&v)?;
        }
        DeployCmd::Rollback { id, reason, api } => {
            let body = json!({"id": id, "reason": reason});
            let v = call(
                &http,
                &base(&api),
                &api,
                "/api/deploy/rollback",
                Some(&body),
            )
            .await?;
            print(&v)?;
        }
        DeployCmd::List {
            service,
            limit,
            api,
        } => {
            let mut q = format!("?limit={limit}");
            if let Some(s) = service {
                q.push_str(&format!("&service={}", urlencode(&s)));
            }
            let v = call(&http, &base(&api), &api, &format!("/api/deploys{q}"), None).await?;
            print(&v)?;
        }
        DeployCmd::Verify { id } => {
            let log = aiops_server::server::open_log_for_reading(&cfg).await?;
            let r =
                aiops_runtime::deploys::rebuild::reverify(log.clone(), cfg.deploys.clone(), &id)
                    .await
                    .map_err(anyhow::Error::msg)?;
            log.close().await?;
            print(&serde_json::to_value(&r)?)?;
            if r.deploy.is_none() {
                bail!("no deploy {id:?} in the log");
            }
            if !r.same {
                bail!(
                    "the verdict re-derived from the log ({:?}) differs from the one recorded ({:?})",
                    r.derived_verdict,
                    r.recorded_verdict
                );
            }
        }
    }
    Ok(())
}
