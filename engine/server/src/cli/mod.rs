//! The command line: the clap types of `aiops` and [`dispatch`], which hands each subcommand to
//! its file. Each file owns its subcommand's arguments and prints its output; the library
//! crate does the work.

mod alerting;
mod cluster;
mod deploy;
mod grafana;
mod knowledge;
mod log;
mod pipeline;
mod progress;
mod rebuild;
mod replay;
mod run;
mod sql;
mod token;
mod workflow;

use aiops_server::clock;
use aiops_server::config::Config;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// aiops — an event-sourced stream-processing engine for operations teams.
///
/// Ingests metrics, logs, alerts and events into an event log (embedded by default, or NATS
/// JetStream) and lets you replay any past time range exactly as it was stored.
#[derive(Debug, Parser)]
#[command(name = "aiops", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Data directory (embedded log in DIR/log). Overrides `data_dir` in the config.
    #[arg(long, global = true, env = "AIOPS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Event log: `embedded` (default) or `nats://HOST:PORT` for NATS JetStream.
    #[arg(long, global = true, env = "AIOPS_LOG", value_name = "LOG")]
    log: Option<String>,
    /// TOML config file (see aiops.example.toml). Environment AIOPS__SECTION__KEY overrides it.
    #[arg(long, global = true, env = "AIOPS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine: HTTP ingest (remote_write, JSON, webhooks), scrapes, self-metrics.
    Run(run::RunArgs),
    /// Print the events of a past time range in log order (no side effects).
    Replay(replay::ReplayArgs),
    /// Inspect the event log.
    Log {
        #[command(subcommand)]
        command: log::LogCommand,
    },
    /// Rebuild pipeline and alerting state from the whole log: discard the checkpoints, replay
    /// every input through the pipelines, then every alert and command through alerting, and
    /// write new checkpoints. Derived events and decisions already in the log are recognized and
    /// not written twice; no notification is sent. Stop the engine first.
    Rebuild(rebuild::RebuildArgs),
    /// Work with SQL pipeline files.
    Pipeline {
        #[command(subcommand)]
        command: pipeline::PipelineCommand,
    },
    /// Work with the alerting configuration (Alertmanager's YAML plus an `aiops:` section).
    Alerting {
        #[command(subcommand)]
        command: alerting::AlertingCommand,
    },
    /// Work with workflows and auto-heal strategies.
    Workflow {
        #[command(subcommand)]
        command: workflow::WorkflowCmd,
    },
    /// Print the reference of every event kind (the content of docs/events.md).
    SchemaDocs,
    /// Run one SQL query over the Parquet archive and the log (read-only; safe beside a running
    /// engine): tables metrics, logs, alerts, events and every pipeline's output stream.
    /// Example: aiops sql "SELECT name, count(*) FROM metrics GROUP BY name"
    Sql(sql::SqlArgs),
    /// Provision aiops in Grafana through the running engine: the PostgreSQL data source, a
    /// dashboard per pipeline and an overview, incidents and deploys as annotations, and (with
    /// --alerts) Grafana alert rules for the SQL alert rules. Writes only what changed. Needs
    /// `[grafana] url` and `token` in the engine's config.
    Grafana {
        #[command(subcommand)]
        cmd: grafana::GrafanaCmd,
    },
    /// The knowledge base of the running engine: import a folder of Markdown runbooks, search,
    /// ask with cited answers. See docs/knowledge.md.
    Knowledge {
        #[command(subcommand)]
        cmd: knowledge::KnowledgeCmd,
    },
    /// Deployments: record a deploy, its status with risk and verification, roll back, history
    /// with DORA figures; `verify` re-derives a past verdict from the log. See docs/deploys.md.
    Deploy {
        #[command(subcommand)]
        cmd: deploy::DeployCmd,
    },
    /// Manage API tokens (stored hashed in DATA_DIR/auth/tokens.json). A running engine picks
    /// up changes on the next request with an unknown token.
    Token {
        #[command(subcommand)]
        cmd: token::TokenCmd,
    },
    /// Inspect a cluster of aiops nodes (`run --node`) from its NATS log: live nodes, work unit
    /// owners, checkpoint lag. See docs/cluster.md.
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
}

/// Runs the parsed command line; the exit code is for commands that report a refusal without
/// an error (the `check` subcommands).
///
/// # Errors
/// Whatever the subcommand failed with; `main` prints it and exits non-zero.
pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    // Commands that check a file on its own (`pipeline check`, `alerting check`, `schema-docs`)
    // never load the config, so a broken config does not stop them.
    let g = &cli.global;
    match cli.command {
        Command::Run(args) => run::run(args, load_config(g)?).await?,
        Command::Replay(args) => replay::replay(args, load_config(g)?).await?,
        Command::Log { command } => log::log(command, load_config(g)?).await?,
        Command::Rebuild(args) => rebuild::rebuild(args, load_config(g)?).await?,
        Command::Pipeline { command } => pipeline::pipeline(command).await?,
        Command::Alerting {
            command: alerting::AlertingCommand::Check { file },
        } => return Ok(alerting::check(&file)),
        Command::Alerting {
            command: alerting::AlertingCommand::Log(args),
        } => alerting::log(args, load_config(g)?).await?,
        Command::Workflow { command } => {
            return workflow::workflow(command, load_config(g)?).await;
        }
        Command::SchemaDocs => print!("{}", aiops_schemas::reference::markdown()),
        Command::Sql(args) => sql::sql(args, load_config(g)?).await?,
        Command::Grafana { cmd } => grafana::grafana(cmd, load_config(g)?).await?,
        Command::Knowledge { cmd } => knowledge::knowledge(cmd, load_config(g)?).await?,
        Command::Deploy { cmd } => deploy::deploy(cmd, load_config(g)?).await?,
        Command::Token { cmd } => token::token(cmd, load_config(g)?)?,
        Command::Cluster { command } => cluster::cluster(command, load_config(g)?).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The config file and environment, with the global flags applied over them.
fn load_config(g: &GlobalArgs) -> Result<Config> {
    let mut cfg = Config::load(g.config.as_deref(), std::env::vars())?;
    if let Some(d) = &g.data_dir {
        cfg.data_dir.clone_from(d);
        cfg.embedded.dir = d.join("log");
    }
    if let Some(l) = &g.log {
        cfg.log.clone_from(l);
    }
    Ok(cfg)
}

/// Parses a CLI time: RFC 3339, Unix ms, or a duration ago.
fn parse_time(s: &str) -> Result<i64> {
    aiops_server::replay::parse_time_arg(s, clock::now_ms()).map_err(|e| anyhow::anyhow!(e))
}

/// Parses an optional `--from`/`--to`.
fn parse_opt_time(s: Option<&str>) -> Result<Option<i64>> {
    s.map(parse_time).transpose()
}

/// Unix ms as RFC 3339 with milliseconds, `-` when absent or before 1970.
fn fmt_ms(ms: Option<i64>) -> String {
    match ms.and_then(|m| u64::try_from(m).ok()) {
        Some(m) => humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(m),
        )
        .to_string(),
        None => "-".to_string(),
    }
}
