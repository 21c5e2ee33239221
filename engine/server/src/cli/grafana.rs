//! `aiops grafana sync`: asks the running engine to sync Grafana (the engine holds the pipelines,
//! the alert state and the incidents the dashboards and annotations are made from).

use aiops_server::config::Config;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::Value;

/// The subcommands of `aiops grafana`.
#[derive(Debug, Subcommand)]
pub enum GrafanaCmd {
    /// Sync now and print the report (what was created, updated, deleted, left unchanged).
    Sync {
        /// The engine's HTTP API. Default: http:// + `http.listen` of the config.
        #[arg(long, value_name = "URL")]
        api: Option<String>,
        /// An admin API token (a viewer token is enough with --dry-run).
        #[arg(long, env = "AIOPS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Also sync Grafana alert rules for the SQL alert rules.
        #[arg(long)]
        alerts: bool,
        /// Print what would be written (data source, dashboards, annotations, rules); write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// What `aiops grafana sync` was asked (no `Debug`: it holds a token).
struct SyncRequest {
    /// The engine's HTTP API, e.g. `http://127.0.0.1:9464`.
    api: String,
    /// An admin token (a viewer token is enough for `dry_run`).
    token: Option<String>,
    /// Also the alert rules.
    alerts: bool,
    /// Print what would be written, write nothing.
    dry_run: bool,
}

/// `aiops grafana …`.
///
/// # Errors
/// The engine is unreachable or refuses the request (its message is shown).
pub async fn grafana(cmd: GrafanaCmd, cfg: Config) -> Result<()> {
    match cmd {
        GrafanaCmd::Sync {
            api,
            token,
            alerts,
            dry_run,
        } => {
            let req = SyncRequest {
                api: api.unwrap_or_else(|| format!("http://{}", cfg.http.listen)),
                token,
                alerts,
                dry_run,
            };
            sync(&req, &mut std::io::stdout()).await
        }
    }
}

/// One call to the engine's Grafana API; a refusal becomes an error with the engine's message.
async fn call(http: &reqwest::Client, req: &SyncRequest, post: bool, path: &str) -> Result<Value> {
    let url = format!("{}{path}", req.api.trim_end_matches('/'));
    let mut r = if post {
        http.post(&url)
    } else {
        http.get(&url)
    };
    if let Some(t) = &req.token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.with_context(|| {
        format!("cannot reach the engine at {url} (is `aiops run` running? --api)")
    })?;
    let status = resp.status();
    // A body that is not JSON (a proxy's error page) still reports the status below.
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body["error"].as_str().unwrap_or("");
        if status.as_u16() == 401 || status.as_u16() == 403 {
            bail!("{path}: HTTP {status}: {msg} (pass an admin token with --token or AIOPS_TOKEN)");
        }
        bail!("{path}: HTTP {status}: {msg}");
    }
    Ok(body)
}

/// Runs the sync and prints the report (or the plan) as JSON to `out`.
async fn sync(req: &SyncRequest, out: &mut dyn std::io::Write) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    let mut paths = vec!["/api/grafana/dashboards"];
    if req.alerts {
        paths.push("/api/grafana/alerts");
    }
    for p in paths {
        let v = call(&http, req, !req.dry_run, p).await?;
        if !req.dry_run {
            let n = |k: &str| v[k].as_array().map_or(0, Vec::len);
            eprintln!(
                "{p}: {} created, {} updated, {} deleted, {} unchanged",
                n("created"),
                n("updated"),
                n("deleted"),
                v["unchanged"].as_u64().unwrap_or(0)
            );
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    }
    Ok(())
}
