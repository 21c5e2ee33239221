//! The `aiops` binary: command-line parsing and process edges (signals, exit codes, logging).

use aiops_schemas::Kind;
use aiops_server::config::Config;
use aiops_server::pipelines::{forensic, rebuild};
use aiops_server::replay::{ReplayFilter, ReplayFormat};
use aiops_server::{clock, log_stats, replay, server};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// aiops — an event-sourced stream-processing engine for operations teams.
///
/// Ingests metrics, logs, alerts and events into an event log (embedded by default, or NATS
/// JetStream) and lets you replay any past time range exactly as it was stored.
#[derive(Debug, Parser)]
#[command(name = "aiops", version, propagate_version = true)]
struct Cli {
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
    Run(RunArgs),
    /// Print the events of a past time range in log order (no side effects).
    Replay(ReplayArgs),
    /// Inspect the event log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Rebuild pipeline and alerting state from the whole log: discard the checkpoints, replay
    /// every input through the pipelines, then every alert and command through alerting, and
    /// write new checkpoints. Derived events and decisions already in the log are recognized and
    /// not written twice; no notification is sent. Stop the engine first.
    Rebuild(RebuildArgs),
    /// Work with SQL pipeline files.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Work with the alerting configuration (Alertmanager's YAML plus an `aiops:` section).
    Alerting {
        #[command(subcommand)]
        command: AlertingCommand,
    },
    /// Work with workflows and auto-heal strategies.
    Workflow {
        #[command(subcommand)]
        command: WorkflowCmd,
    },
    /// Print the reference of every event kind (the content of docs/events.md).
    SchemaDocs,
    /// Run one SQL query over the Parquet archive and the log (read-only; safe beside a running
    /// engine): tables metrics, logs, alerts, events and every pipeline's output stream.
    /// Example: aiops sql "SELECT name, count(*) FROM metrics GROUP BY name"
    Sql(SqlArgs),
    /// Provision aiops in Grafana through the running engine: the PostgreSQL data source, a
    /// dashboard per pipeline and an overview, incidents and deploys as annotations, and (with
    /// --alerts) Grafana alert rules for the SQL alert rules. Writes only what changed. Needs
    /// `[grafana] url` and `token` in the engine's config.
    Grafana {
        #[command(subcommand)]
        cmd: GrafanaCmd,
    },
    /// Manage API tokens (stored hashed in DATA_DIR/auth/tokens.json). A running engine picks
    /// up changes on the next request with an unknown token.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
}

#[derive(Debug, Subcommand)]
enum WorkflowCmd {
    /// Check workflow files (or every *.yaml in a directory) against the configured providers
    /// and secrets: triggers, filters, templates, durations. Prints `file:line: reason` for each
    /// problem and exits non-zero if any file is refused. Files under an `autoheal` directory
    /// (or with `strategies:` at the top) are checked as auto-heal strategies.
    Check {
        /// Workflow or strategy files or directories.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run the workflows over a past range without running anything, and print what would
    /// have run (NDJSON, one line per effect, with what the log says became of it then).
    Replay {
        /// Start of the range (same forms as `replay --from`).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End of the range, exclusive.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AlertingCommand {
    /// Parse and check an alerting configuration: routes, receivers, matchers, time intervals,
    /// inhibition rules. Prints the problem and exits non-zero if the file is refused.
    Check {
        /// The YAML file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the alerting decisions in the log (alert state changes, notification intents,
    /// incident changes, statistics) as NDJSON, oldest first: what fired, why, and when.
    Log {
        /// Only decisions of this type: alert_state, notification, incident, alert_stats.
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Start of the range (same forms as `replay --from`).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End of the range, exclusive.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
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
}

#[derive(Debug, Args)]
struct SqlArgs {
    /// The query.
    sql: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: aiops_server::read::SqlFormat,
}

#[derive(Debug, Subcommand)]
enum GrafanaCmd {
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

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a token and print it once.
    Create {
        /// Who or what uses it (e.g. grafana, ci, alice).
        #[arg(long)]
        name: String,
        /// ingest (push data only), viewer (read), operator (silences, acknowledge, run and
        /// approve workflows), admin (configuration, tokens).
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// List tokens (ids, names, roles — never the tokens).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The id `list` shows.
        id: String,
    },
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Start of the range (inclusive): RFC 3339 (`2026-11-24T10:00:00Z`), Unix milliseconds, or
    /// a duration meaning "that long ago" (`1h`, `30m`). Default: the start of the log.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the range (exclusive), same forms as --from. Default: no end.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Only these kinds (metrics, logs, alerts, events); repeat or comma-separate.
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    kinds: Vec<Kind>,
    /// Output format.
    #[arg(long, value_enum, default_value = "ndjson")]
    format: ReplayFormat,
    /// Run the pipelines of this directory over the range instead of printing events, and print
    /// what they produce (derived events and late rows). Nothing is written to the log and the
    /// running engine is not affected: a safe way to try a new alert rule on last week.
    #[arg(long, value_name = "DIR")]
    pipelines: Option<PathBuf>,
    /// Run the workflows (`workflows.dir`, `workflows.autoheal_dir`) over the range and print
    /// what would have run; no effect is executed.
    #[arg(long, conflicts_with = "pipelines")]
    workflows: bool,
    /// With --pipelines: write one Parquet file per output stream into DIR instead of NDJSON on
    /// standard output.
    #[arg(long, value_name = "DIR", requires = "pipelines")]
    parquet: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RebuildArgs {
    /// Pipeline directory. Overrides `pipelines.dir` (default `pipelines`).
    #[arg(long, value_name = "DIR")]
    pipelines: Option<PathBuf>,
    /// Also write every derived event produced into DIR, one NDJSON file per stream (and the
    /// alerting decisions to DIR/alerting.ndjson), so two rebuilds can be compared byte for byte.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PipelineCommand {
    /// Parse and plan pipeline files (or every *.sql in a directory) against the event schemas;
    /// print `file:line:column: reason` for each problem. Exits non-zero if any file is refused.
    Check {
        /// Pipeline files or directories.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Counts, event-time range and bytes per kind, and the log's durability.
    Stats {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

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
    replay::parse_time_arg(s, clock::now_ms()).map_err(|e| anyhow::anyhow!(e))
}

fn fmt_ms(ms: Option<i64>) -> String {
    match ms.and_then(|m| u64::try_from(m).ok()) {
        Some(m) => humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(m),
        )
        .to_string(),
        None => "-".to_string(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
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

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => {
            let mut cfg = load_config(&cli.global)?;
            if let Some(addr) = args.http {
                cfg.http.listen = addr;
            }
            if let Some(addr) = args.pg {
                cfg.sql.listen = addr;
            }
            if args.demo {
                cfg.sources
                    .push(aiops_connectors::registry::PullSourceConfig::Demo(
                        Default::default(),
                    ));
            }
            server::run(cfg, shutdown_signal()).await?;
        }
        Command::Replay(args) if args.workflows => {
            workflow_replay(&cli.global, args.from, args.to).await?;
        }
        Command::Workflow {
            command: WorkflowCmd::Replay { from, to },
        } => workflow_replay(&cli.global, from, to).await?,
        Command::Workflow {
            command: WorkflowCmd::Check { files },
        } => {
            let cfg = load_config(&cli.global)?;
            if !workflow_check(&cfg, &files)? {
                std::process::exit(1);
            }
        }
        Command::Replay(args) if args.pipelines.is_some() => {
            let cfg = load_config(&cli.global)?;
            let from_ms = args.from.as_deref().map(parse_time).transpose()?;
            let to_ms = args.to.as_deref().map(parse_time).transpose()?;
            let dir = args.pipelines.clone().unwrap_or_default();
            let log = server::open_log_for_reading(&cfg).await?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
            let format = if args.parquet.is_some() {
                forensic::OutputFormat::Parquet
            } else {
                forensic::OutputFormat::Ndjson
            };
            let req = forensic::ForensicRequest {
                dir,
                from_ms,
                to_ms,
                format,
                parquet_dir: args.parquet.clone(),
            };
            let res = forensic::replay(log.clone(), &req, &cfg.pipelines, &mut out).await;
            log.close().await?;
            let sum = res?;
            tracing::info!(
                messages = sum.messages_read,
                outputs = sum.outputs,
                "forensic replay done (nothing written to the log)"
            );
        }
        Command::Rebuild(args) => {
            let mut cfg = load_config(&cli.global)?;
            if let Some(d) = args.pipelines {
                cfg.pipelines.dir = d;
            }
            let log = server::open_log(&cfg).await?;
            let res = rebuild::rebuild(
                log.clone(),
                &cfg.pipelines,
                &rebuild::store_dir(&cfg.data_dir),
                args.output.as_deref(),
                |pos, end| tracing::info!(position = pos, end, "rebuilding"),
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
                        |pos, end| tracing::info!(position = pos, end, "rebuilding log templates"),
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
                |pos, end| tracing::info!(position = pos, end, "rebuilding alerting"),
            )
            .await;
            let wres = if cfg.workflows.enabled {
                Some(
                    aiops_server::workflows::dry::rebuild(
                        log.clone(),
                        &cfg.workflows,
                        &aiops_server::workflows::store_dir(&cfg.data_dir),
                    )
                    .await,
                )
            } else {
                None
            };
            log.close().await?;
            let asum = ares.map_err(|e| anyhow::anyhow!(e))?;
            let wsum = wres.transpose()?;
            let tsum = tres.transpose().map_err(|e| anyhow::anyhow!(e))?;
            let mut v = serde_json::to_value(sum)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("alerting".into(), serde_json::to_value(asum)?);
                o.insert("templates".into(), serde_json::to_value(tsum)?);
                o.insert("workflows".into(), serde_json::to_value(wsum)?);
            }
            println!("{v}");
        }
        Command::Alerting {
            command: AlertingCommand::Check { file },
        } => match aiops_server::alerting::load_file(&file) {
            Ok((cfg, _)) => {
                let routes = aiops_alerting::route::Route::compile(&cfg).all().len();
                println!(
                    "{}: ok ({routes} routes, {} receivers, {} inhibition rules, {} time intervals)",
                    file.display(),
                    cfg.receivers.len(),
                    cfg.inhibit_rules.len(),
                    cfg.time_intervals.len()
                );
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        Command::Alerting {
            command: AlertingCommand::Log { kind, from, to },
        } => {
            let cfg = load_config(&cli.global)?;
            let from = from.as_deref().map(parse_time).transpose()?;
            let to = to.as_deref().map(parse_time).transpose()?;
            let log = server::open_log_for_reading(&cfg).await?;
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let res = aiops_server::replay::print_decisions(
                log.as_ref(),
                kind.as_deref(),
                from,
                to,
                &mut out,
            )
            .await;
            log.close().await?;
            res?;
            std::io::Write::flush(&mut out)?;
        }
        Command::Replay(args) => {
            let cfg = load_config(&cli.global)?;
            let filter = ReplayFilter {
                from_ms: args.from.as_deref().map(parse_time).transpose()?,
                to_ms: args.to.as_deref().map(parse_time).transpose()?,
                kinds: args.kinds,
            };
            let log = server::open_log_for_reading(&cfg).await?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
            let res = replay::replay(log.as_ref(), &filter, args.format, &mut out).await;
            log.close().await?;
            let sum = res?;
            tracing::info!(
                messages = sum.messages_read,
                events = sum.events,
                "replay done"
            );
        }
        Command::Log {
            command: LogCommand::Stats { json },
        } => {
            let cfg = load_config(&cli.global)?;
            let log = server::open_log_for_reading(&cfg).await?;
            let res = log_stats::collect(log.as_ref()).await;
            log.close().await?;
            let report = res?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
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
            }
        }
        Command::Pipeline {
            command: PipelineCommand::Check { files },
        } => {
            let mut paths = Vec::new();
            for f in files {
                if f.is_dir() {
                    paths.extend(
                        aiops_sql::pipeline::pipeline_files(&f)
                            .with_context(|| format!("reading {}", f.display()))?,
                    );
                } else {
                    paths.push(f);
                }
            }
            let mut refused = 0;
            for p in &paths {
                match aiops_sql::check_file(p).await {
                    Ok(c) => {
                        let cols: Vec<String> = c
                            .output_schema
                            .fields()
                            .iter()
                            .map(|f| format!("{} {}", f.name(), f.data_type()))
                            .collect();
                        println!(
                            "{}: ok: {} ← {} ({})",
                            p.display(),
                            c.output,
                            c.inputs.join(", "),
                            cols.join(", ")
                        );
                    }
                    Err(e) => {
                        refused += 1;
                        eprintln!("{e}");
                    }
                }
            }
            if refused > 0 {
                bail!("{refused} of {} pipeline files refused", paths.len());
            }
        }
        Command::SchemaDocs => print!("{}", aiops_schemas::reference::markdown()),
        Command::Sql(args) => {
            let cfg = load_config(&cli.global)?;
            let mut out = std::io::stdout();
            aiops_server::read::run_cli(&cfg, &args.sql, args.format, &mut out).await?;
        }
        Command::Grafana {
            cmd:
                GrafanaCmd::Sync {
                    api,
                    token,
                    alerts,
                    dry_run,
                },
        } => {
            let cfg = load_config(&cli.global)?;
            let req = aiops_server::grafana::cli::SyncRequest {
                api: api.unwrap_or_else(|| format!("http://{}", cfg.http.listen)),
                token,
                alerts,
                dry_run,
            };
            aiops_server::grafana::cli::run(&req, &mut std::io::stdout()).await?;
        }
        Command::Token { cmd } => {
            let cfg = load_config(&cli.global)?;
            let store = aiops_read::auth::TokenStore::open(
                &aiops_server::read::tokens_path(&cfg.data_dir),
                &cfg.auth.tokens,
            )?;
            match cmd {
                TokenCmd::Create { name, role } => {
                    let role: aiops_read::auth::Role = role.parse()?;
                    let (rec, token) = store.create(&name, role, clock::now_ms())?;
                    eprintln!(
                        "created token {} ({}, role {}); it is shown only now:",
                        rec.id,
                        rec.name,
                        rec.role.as_str()
                    );
                    println!("{token}");
                }
                TokenCmd::List => {
                    for t in store.list() {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            t.id,
                            t.role.as_str(),
                            t.origin,
                            fmt_ms(Some(t.created_ms)),
                            t.name
                        );
                    }
                }
                TokenCmd::Revoke { id } => {
                    if !store.revoke(&id)? {
                        bail!("no token {id} (see `aiops token list`)");
                    }
                    eprintln!("revoked {id}");
                }
            }
        }
    }
    Ok(())
}

/// `aiops workflow replay` / `aiops replay --workflows`.
async fn workflow_replay(g: &GlobalArgs, from: Option<String>, to: Option<String>) -> Result<()> {
    let cfg = load_config(g)?;
    let from = from.as_deref().map(parse_time).transpose()?;
    let to = to.as_deref().map(parse_time).transpose()?;
    let log = server::open_log_for_reading(&cfg).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let res =
        aiops_server::workflows::dry::replay(log.clone(), &cfg.workflows, from, to, &mut out).await;
    log.close().await?;
    let sum = res?;
    tracing::info!(
        would_run = sum.would_run,
        ran_then = sum.ran_then,
        "workflow replay done (nothing executed)"
    );
    Ok(())
}

/// `aiops workflow check`: true when every file compiles.
fn workflow_check(cfg: &Config, paths: &[PathBuf]) -> Result<bool> {
    let providers = std::sync::Arc::new(
        cfg.workflows
            .providers_lenient()
            .map_err(anyhow::Error::msg)?,
    );
    let renderer = aiops_workflow::Renderer::default();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|x| matches!(x.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    let mut ok = true;
    for f in files {
        let name = f.display().to_string();
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: {e}");
                ok = false;
                continue;
            }
        };
        let strategy = text.trim_start().starts_with("strategies:")
            || f.components().any(|c| c.as_os_str() == "autoheal");
        let res = if strategy {
            aiops_workflow::autoheal::compile_strategies(
                &name,
                &text,
                providers.as_ref(),
                &renderer,
            )
            .map(|s| format!("{} strategies", s.len()))
        } else {
            aiops_workflow::compile_text(&name, &text, providers.as_ref(), &renderer).map(|w| {
                format!(
                    "workflow {} ({} triggers, {} steps and actions)",
                    w.id,
                    w.triggers.len(),
                    w.items.len()
                )
            })
        };
        match res {
            Ok(what) => println!("{name}: ok ({what})"),
            Err(e) => {
                eprintln!("{e}");
                ok = false;
            }
        }
    }
    Ok(ok)
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AIOPS_LOG_LEVEL")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        // Workflow `sql` steps and `aiops sql` plan queries here (see the SQL runtime's note).
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
