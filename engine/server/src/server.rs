//! `aiops run`: opens the log, starts the follower and the pull sources, serves HTTP until a
//! shutdown signal, then stops accepting, finishes in-flight appends and closes the log.

use crate::alerting::processor::{AlertProcessor, AlertingHandle};
use crate::config::Config;
use crate::follower;
use crate::http::{self, AppState, router};
use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use aiops_log::{EventLog, LogError, LogSpec};
use aiops_runtime::cluster::DriverUnit;
use aiops_runtime::store::Store;
use aiops_runtime::templates::processor::TemplateProcessor;
use aiops_runtime::{Driver, DriverOptions, Processor};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The log could not be opened or closed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The HTTP address could not be bound (in use, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A configured source is invalid.
    #[error("source #{index} ({name}): {message}")]
    Source {
        /// Position in `sources`.
        index: usize,
        /// Its type.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The pipelines could not be loaded or their checkpoint store opened.
    #[error("pipelines: {0}")]
    Pipelines(String),
    /// The template miner's configuration is invalid or its checkpoint store cannot be opened.
    #[error("templates: {0}")]
    Templates(String),
    /// The knowledge base could not start (its checkpoint store, its LLM provider).
    #[error("knowledge: {0}")]
    Knowledge(String),
    /// Deploys could not start (checkpoint store, a webhook's settings, a watcher's settings).
    #[error("deploys: {0}")]
    Deploys(String),
    /// The alerting configuration is invalid or its checkpoint store cannot be opened.
    #[error("alerting: {0}")]
    Alerting(String),
    /// The workflows, providers or secrets are invalid, or the checkpoint store cannot be opened.
    #[error("workflows: {0}")]
    Workflows(String),
    /// The read side (archive, Postgres endpoint, tokens) could not start.
    #[error("read side: {0}")]
    Read(String),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Serve(std::io::Error),
    /// Cluster mode could not start.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// `[masking]` is invalid or its hash key cannot be read; the operator must fix it.
    #[error("{0}")]
    Masking(String),
}

/// The log spec for a config: the embedded log in `<data_dir>/log` or NATS at `cfg.log`.
///
/// # Errors
/// [`LogError::Config`] for an unknown log scheme.
pub fn log_spec(cfg: &Config) -> Result<LogSpec, LogError> {
    match LogSpec::parse(&cfg.log, &cfg.data_dir)? {
        LogSpec::Embedded(e) => {
            let mut c = cfg.embedded.clone();
            c.dir = e.dir;
            Ok(LogSpec::Embedded(c))
        }
        LogSpec::Nats(n) => {
            let mut c = cfg.nats.clone();
            c.url = n.url;
            Ok(LogSpec::Nats(c))
        }
    }
}

/// Opens the log named by the config and says what it is and how durable.
///
/// # Errors
/// As [`aiops_log::open`].
pub async fn open_log(cfg: &Config) -> Result<Arc<dyn EventLog>, LogError> {
    let log = aiops_log::open(&log_spec(cfg)?).await?;
    let stats = log.stats().await?;
    tracing::info!(
        backend = %stats.backend,
        first_seq = stats.first_seq,
        next_seq = stats.next_seq,
        bytes = stats.bytes,
        durability = %stats.durability,
        "event log open"
    );
    Ok(log)
}

/// Opens the log for reading only (`replay`, `log stats`): beside a running engine, the embedded
/// log is read without its lock and without recovery, as it was when opened.
///
/// # Errors
/// As [`aiops_log::open`].
pub async fn open_log_for_reading(cfg: &Config) -> Result<Arc<dyn EventLog>, LogError> {
    let spec = match log_spec(cfg)? {
        LogSpec::Embedded(mut c) => {
            c.read_only = true;
            LogSpec::Embedded(c)
        }
        other => other,
    };
    aiops_log::open(&spec).await
}

/// Runs the engine until `shutdown` completes.
///
/// # Errors
/// [`ServerError`] for start-up problems; a clean shutdown returns `Ok`.
pub async fn run(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Every configured source is built once before anything starts, so a bad one stops the start
    // with its position.
    for (index, sc) in cfg.sources.iter().enumerate() {
        sc.build_any(&cfg.outbound)
            .map_err(|e| ServerError::Source {
                index,
                name: format!("{sc:?}")
                    .split(['(', ' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_string(),
                message: e.to_string(),
            })?;
    }
    // The masking policy is built before the log opens: a bad rule or a missing hash key stops
    // the start, naming the setting.
    let masker = crate::ingest::build_masker(&cfg.masking, |k| std::env::var(k).ok())
        .map_err(ServerError::Masking)?;
    let log = open_log(&cfg).await?;
    let metrics = Arc::new(Metrics::default());
    let ingestor = Arc::new(
        Ingestor::new(log.clone(), metrics.clone(), &cfg.ingest).with_masking(Arc::new(masker)),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(follower::run(log.clone(), metrics.clone(), stop_rx.clone()));
    let config_json: Vec<serde_json::Value> = cfg.sources.iter().map(|c| c.settings()).collect();
    let datasources = crate::datasources::DataSources::start(
        &cfg.data_dir,
        &cfg.sources,
        &config_json,
        ingestor.clone(),
        cfg.outbound.clone(),
        // Cluster mode: the sources pull only on the owner of the `sources` unit.
        cfg.cluster.enabled(),
        stop_rx.clone(),
    )
    .map_err(|e| ServerError::Read(e.to_string()))?;
    let mut cluster = crate::cluster::Cluster::open(&cfg, &log).await?;
    if let Some(c) = &mut cluster {
        c.add(Arc::new(crate::cluster::sources_unit(datasources.clone())));
    }
    let board = crate::pipelines::runner::InfoBoard::default();
    let supervisor = match &mut cluster {
        Some(c) => {
            // Refuse a bad pipeline set at start, as single-node does; the unit runs it.
            let sources = crate::pipelines::load::read_dir(&cfg.pipelines.dir)
                .map_err(|e| ServerError::Pipelines(e.to_string()))?;
            let tables = crate::pipelines::load::tables(&cfg.pipelines.dir)
                .map_err(|e| ServerError::Pipelines(e.to_string()))?;
            let set =
                crate::pipelines::load::compile_all(&sources, &tables, cfg.pipelines.runtime())
                    .await
                    .map_err(|e| ServerError::Pipelines(e.to_string()))?;
            // One unit per pipeline, so pipelines spread over the nodes; a pipeline with
            // `-- @partitions: N` is N partition units and a merge unit. The list follows the
            // directory, so a file added while running gets its units.
            let units = aiops_runtime::pipelines::supervisor::units_of(
                &cfg.pipelines,
                &board,
                &c.blobs,
                &set,
            );
            let (units_tx, units_rx) = watch::channel(units);
            c.set_dynamic(units_rx);
            tasks.spawn(aiops_runtime::pipelines::supervisor::follow_units(
                cfg.pipelines.clone(),
                board.clone(),
                c.blobs.clone(),
                units_tx,
                stop_rx.clone(),
            ));
            None
        }
        None => {
            let store = crate::pipelines::store::Store::open(
                &crate::pipelines::rebuild::store_dir(&cfg.data_dir),
            )
            .map_err(|e| ServerError::Pipelines(e.to_string()))?;
            Some(
                crate::pipelines::supervisor::start(
                    log.clone(),
                    cfg.pipelines.clone(),
                    store,
                    board.clone(),
                    stop_rx.clone(),
                )
                .await
                .map_err(ServerError::Pipelines)?,
            )
        }
    };
    let first = log.stats().await?.first_seq;
    let (acfg, atext) = cfg.alerting.load().map_err(ServerError::Alerting)?;
    let alerting = AlertingHandle::new(aiops_alerting::AlertEngine::new(acfg.clone()), atext);
    {
        let handle = alerting.clone();
        run_processor(
            cluster.as_mut(),
            log.clone(),
            move || {
                // Fresh state: the driver restores the checkpoint into it or rebuilds.
                *handle.engine.write() = aiops_alerting::AlertEngine::new(acfg.clone());
                Ok(AlertProcessor::new(handle.clone()))
            },
            &crate::alerting::store_dir(&cfg.data_dir),
            first,
            (cfg.alerting.checkpoint_interval, cfg.alerting.tick_interval),
            alerting.progress.clone(),
            &stop_rx,
            &mut tasks,
        )
        .await
        .map_err(ServerError::Alerting)?;
    }
    let templates = if cfg.templates.enabled {
        let processor = TemplateProcessor::new(&cfg.templates)
            .map_err(|e| ServerError::Templates(e.to_string()))?;
        let handle = processor.handle();
        let (h, settings) = (handle.clone(), cfg.templates.clone());
        run_processor(
            cluster.as_mut(),
            log.clone(),
            move || {
                TemplateProcessor::with_handle(h.clone(), &settings)
                    .map_err(|e| aiops_runtime::ProcessorError::new(TemplateProcessor::NAME, e))
            },
            &aiops_runtime::templates::store_dir(&cfg.data_dir),
            first,
            // The miner has no timers: the tick interval is never used.
            (cfg.templates.checkpoint_interval, Duration::from_secs(3600)),
            handle.progress.clone(),
            &stop_rx,
            &mut tasks,
        )
        .await
        .map_err(ServerError::Templates)?;
        Some(handle)
    } else {
        None
    };
    let knowledge = start_knowledge(&cfg, log.clone(), first, &stop_rx, &mut tasks).await?;
    let workflows = if cfg.workflows.enabled {
        Some(
            start_workflows(
                &cfg,
                log.clone(),
                first,
                &stop_rx,
                &mut tasks,
                cluster.as_mut(),
                (alerting.clone(), templates.clone()),
            )
            .await?,
        )
    } else {
        None
    };
    if workflows.is_none()
        && cfg.deploys.enabled
        && (cfg.deploys.rollback_workflow.is_some() || cfg.deploys.deploy_workflow.is_some())
    {
        return Err(ServerError::Deploys(
            "deploys.rollback_workflow / deploy_workflow need [workflows] enabled".into(),
        ));
    }
    let deploys = start_deploys(
        &cfg,
        log.clone(),
        first,
        &stop_rx,
        &mut tasks,
        cluster.as_mut(),
    )
    .await?;
    let deploy_hooks = crate::deploys::build_hooks(&cfg.deploys).map_err(ServerError::Deploys)?;
    // Cluster mode: the tokens and the API data sources are the cluster's (JetStream key-value
    // buckets), the same on every node, and one node of the cluster creates the bootstrap admin
    // token.
    let shared = log.coordination().filter(|_| cluster.is_some());
    if let Some(coord) = &shared {
        let kv = coord
            .kv(crate::datasources::DATASOURCES_BUCKET)
            .await
            .map_err(|e| ServerError::Read(format!("data source bucket: {e}")))?;
        datasources
            .share(kv, stop_rx.clone())
            .await
            .map_err(|e| ServerError::Read(e.to_string()))?;
    }
    let tokens = match shared {
        Some(coord) => {
            let kv = coord
                .kv(aiops_read::auth::TOKENS_BUCKET)
                .await
                .map_err(|e| ServerError::Read(format!("token bucket: {e}")))?;
            aiops_read::auth::TokenStore::open_shared(kv, &cfg.auth.tokens)
                .await
                .map_err(|e| ServerError::Read(e.to_string()))?
        }
        None => Arc::new(
            aiops_read::auth::TokenStore::open(
                &crate::read::tokens_path(&cfg.data_dir),
                &cfg.auth.tokens,
            )
            .map_err(|e| ServerError::Read(e.to_string()))?,
        ),
    };
    if let Some(token) = tokens
        .bootstrap_async(crate::clock::now_ms())
        .await
        .map_err(|e| ServerError::Read(e.to_string()))?
    {
        // Printed once, to the terminal only (never to the log): aiops keeps only its hash.
        eprintln!(
            "\naiops: no API token existed, so an admin token was created. It is shown only now:\n\n    {token}\n\nUse it as `Authorization: Bearer <token>` on the HTTP API and as the password on the\nPostgres endpoint. Create more with `aiops token create --name NAME --role viewer`.\n"
        );
    }
    let state_src: Arc<dyn aiops_read::state::StateSource> =
        Arc::new(crate::read::state::EngineState {
            alerting: Some(alerting.clone()),
            workflows: workflows.as_ref().map(|w| w.handle.clone()),
            deploys: deploys.as_ref().map(|d| d.handle.clone()),
        });
    let read = crate::read::start(
        &cfg,
        log.clone(),
        Some(state_src),
        tokens.clone(),
        stop_rx.clone(),
    )
    .await
    .map_err(|e| ServerError::Read(e.to_string()))?;
    if let Some(c) = &mut cluster
        && crate::read::archive_shared(&cfg)
        && let Some(unit) = crate::read::archive_unit(&read, cfg.archive.clone())
    {
        c.add(Arc::new(unit));
    }
    let cluster_board = cluster.as_ref().map(|c| c.board.clone());
    let cluster_board_mode = cluster_board.is_some();
    if let Some(c) = cluster {
        tasks.spawn(c.run(log.clone(), stop_rx.clone()));
    }
    let addr = cfg.http.listen;
    let grafana = Arc::new(aiops_grafana::sync::GrafanaContext {
        settings: cfg.grafana.clone(),
        pipelines_dir: cfg.pipelines.dir.clone(),
        pg_addr: read.pg_addr,
        tokens: tokens.clone(),
        lock: tokio::sync::Mutex::new(()),
    });
    let sessions = Arc::new(crate::console::sessions::Sessions::new(cfg.console.clone()));
    let auth = crate::auth::HttpAuth::new(
        tokens.clone(),
        cfg.auth.clone(),
        addr.ip().is_loopback(),
        ingestor.clone(),
        metrics.clone(),
    );
    let auth = Arc::new(if cfg.console.enabled {
        auth.with_sessions(sessions.clone())
    } else {
        auth
    });
    // Console users: the cluster's bucket in cluster mode (every node signs in the same
    // users), else a file beside the tokens.
    let console = if cfg.console.enabled {
        let users = match log.coordination().filter(|_| cluster_board_mode) {
            Some(coord) => crate::console::users::UserStore::shared(
                coord
                    .kv(crate::console::users::USERS_BUCKET)
                    .await
                    .map_err(|e| ServerError::Read(format!("console user bucket: {e}")))?,
            ),
            None => crate::console::users::UserStore::file(crate::console::users::users_path(
                &cfg.data_dir,
            )),
        };
        Some(http::console::ConsoleState {
            console: Arc::new(
                aiops_console::Console::new()
                    .map_err(|e| ServerError::Read(format!("console templates: {e}")))?,
            ),
            sessions: sessions.clone(),
            users: Arc::new(users),
            tokens: tokens.clone(),
        })
    } else {
        None
    };
    // Syslog listeners (if configured) are up before /api/health answers.
    crate::syslog::start(
        &cfg.syslog,
        ingestor.clone(),
        metrics.clone(),
        stop_rx.clone(),
        &mut tasks,
    )
    .await?;
    let otlp = crate::otlp::Otlp::new(
        ingestor.clone(),
        metrics.clone(),
        &cfg.otlp,
        cfg.http.max_body_bytes,
    );
    start_otlp(&cfg, &otlp, &auth, &stop_rx, &mut tasks).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %local, "http listening");
    if cfg.console.enabled {
        // The one line a new user needs: where to click.
        eprintln!("\nconsole: http://{local}/\n");
    }
    // `log_analysis(…)` on the read side, and its HTTP route's handles.
    crate::logs_analysis::register_sql(&read, templates.clone());
    let logs = http::logs::LogsState {
        read: Some(read.clone()),
        templates: templates.clone(),
        knowledge: knowledge.as_ref().map(|kb| {
            Arc::new(crate::knowledge::AnalysisLinks {
                kb: kb.clone(),
                alerting: Some(alerting.clone()),
            }) as Arc<dyn crate::logs_analysis::AnalysisKnowledge>
        }),
    };
    let assistant = match (&knowledge, &cfg.knowledge.llm) {
        (Some(kb), Some(name)) => Some(Arc::new(crate::knowledge::assistant::Assistant {
            provider: name.clone(),
            model: cfg
                .workflows
                .chat_model(name)
                .map_err(|e| ServerError::Knowledge(format!("knowledge.llm: {e}")))?,
            kb: kb.clone(),
            tools: Arc::new(crate::knowledge::assistant::EngineTools {
                alerting: Some(alerting.clone()),
                read: Some(read.clone()),
            }),
            timeout: cfg.knowledge.llm_timeout,
            max_rounds: cfg.knowledge.llm_max_rounds,
        })),
        _ => None,
    };
    let app = router(AppState {
        knowledge: http::knowledge::KnowledgeState {
            kb: knowledge.clone(),
            alerting: Some(alerting.clone()),
            templates: templates.clone(),
            assistant: assistant.clone(),
        },
        logs,
        status: http::status::StatusState {
            log: log.clone(),
            metrics: metrics.clone(),
            pipelines: board.clone(),
            alerting: Some(alerting.clone()),
            workflows: workflows.clone(),
            templates: templates.clone(),
            read: Some(read.clone()),
            cluster: cluster_board,
            datasources: Some(datasources.clone()),
            knowledge: knowledge.clone(),
            assistant: assistant.clone(),
            deploys: deploys.clone(),
            console: cfg.console.enabled.then(|| sessions.clone()),
        },
        ingest: http::ingest::IngestState {
            ingestor,
            metrics,
            max_body_bytes: cfg.http.max_body_bytes,
            otlp,
        },
        read: http::read::ReadState {
            read: Some(read.clone()),
            tokens,
        },
        alerting: http::alerting::AlertingState {
            alerting: Some(alerting.clone()),
            knowledge: knowledge.as_ref().map(|k| k.handle.clone()),
            templates: templates.clone(),
            log: log.clone(),
            started_ms: crate::clock::now_ms(),
        },
        deploys: http::deploys::DeploysState {
            deploys: deploys.clone(),
            hooks: Arc::new(deploy_hooks),
        },
        workflows: http::workflows::WorkflowsState {
            workflows,
            alerting: Some(alerting),
        },
        pipelines: http::pipelines::PipelinesState {
            files: Arc::new(crate::pipelines::PipelineFiles::new(cfg.pipelines.clone())),
            board: board.clone(),
            read: Some(read.clone()),
            grafana: grafana.clone(),
        },
        grafana: http::grafana::GrafanaState {
            grafana,
            board,
            read: Some(read),
        },
        datasources,
        auth,
        console,
    });
    let served = http::conn::serve(listener, app, &cfg.http, shutdown).await;
    tracing::info!("shutting down: stopping sources, closing the log");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Some(supervisor) = supervisor
        && let Err(e) = supervisor.await
    {
        tracing::error!(error = %e, "pipeline supervisor panicked");
    }
    log.close().await?;
    served.map_err(ServerError::Serve)
}

/// The dedicated OTLP listeners of `[otlp]`, bound before `/api/health` answers; they stop with
/// the other tasks.
async fn start_otlp(
    cfg: &Config,
    otlp: &Arc<crate::otlp::Otlp>,
    auth: &Arc<crate::auth::HttpAuth>,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<(), ServerError> {
    if let Some(addr) = cfg.otlp.http_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local = l.local_addr().unwrap_or(addr);
        tracing::info!(addr = %local, "otlp/http listening");
        let app = crate::otlp::http_router(otlp.clone(), auth.clone(), local.ip().is_loopback());
        let mut rx = stop_rx.clone();
        let http_cfg = cfg.http.clone();
        tasks.spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = http::conn::serve(l, app, &http_cfg, stop).await {
                tracing::error!(error = %e, "otlp/http listener failed");
            }
        });
    }
    if let Some(addr) = cfg.otlp.grpc_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        tracing::info!(addr = %l.local_addr().unwrap_or(addr), "otlp/grpc listening");
        let (o, a, rx) = (otlp.clone(), auth.clone(), stop_rx.clone());
        tasks.spawn(async move {
            if let Err(e) = crate::otlp::serve_grpc(l, o, a, rx).await {
                tracing::error!(error = %e, "otlp/grpc listener failed");
            }
        });
    }
    Ok(())
}

/// Starts the knowledge processor (on every node: it appends nothing) and, when configured,
/// the watched runbook folder.
async fn start_knowledge(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    first: u64,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<Option<crate::knowledge::Knowledge>, ServerError> {
    if !cfg.knowledge.enabled {
        return Ok(None);
    }
    let handle = aiops_runtime::knowledge::processor::KnowledgeHandle::new();
    spawn_driver(
        log.clone(),
        aiops_runtime::knowledge::processor::KnowledgeProcessor::new(handle.clone()),
        &aiops_runtime::knowledge::store_dir(&cfg.data_dir),
        first,
        cfg.knowledge.checkpoint_interval,
        // No timers: the tick interval is never used.
        Duration::from_secs(3600),
        handle.progress.clone(),
        stop_rx.clone(),
        tasks,
    )
    .await
    .map_err(ServerError::Knowledge)?;
    let kb = crate::knowledge::Knowledge { log, handle };
    if let Some(dir) = &cfg.knowledge.dir {
        tasks.spawn(crate::knowledge::watch::run(
            kb.clone(),
            dir.clone(),
            cfg.knowledge.watch_interval,
            stop_rx.clone(),
        ));
    }
    Ok(Some(kb))
}

/// Starts the deploy processor (a cluster unit in cluster mode: it appends) and the Kubernetes
/// rollout watchers; returns the API's handle.
async fn start_deploys(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    first: u64,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
    cluster: Option<&mut crate::cluster::Cluster>,
) -> Result<Option<crate::deploys::Deploys>, ServerError> {
    use aiops_runtime::deploys::processor::{DeployHandle, DeployProcessor};
    if !cfg.deploys.enabled {
        return Ok(None);
    }
    if cfg.deploys.logs.enabled && cfg.templates.enabled {
        // The miner's counts of a bucket come a bucket and its delay after the bucket starts:
        // a verdict judged sooner misses the errors and templates of the window's last minute.
        let miner = &cfg.templates.miner;
        let lag_ms = miner.window_ms.saturating_add(miner.delay_ms);
        let grace_ms = i64::try_from(cfg.deploys.grace.as_millis()).unwrap_or(i64::MAX);
        if grace_ms < lag_ms {
            // Info, not a warning: the defaults (30 s against 70 s) are like this on purpose,
            // verdicts wait for the metrics, not for the last minute of logs.
            tracing::info!(
                grace_ms,
                template_counts_lag_ms = lag_ms,
                "deploys.grace is shorter than the template miner's bucket plus delay: log signals miss the verification window's last bucket"
            );
        }
    }
    let handle = DeployHandle::new(cfg.deploys.clone());
    let h = handle.clone();
    run_processor(
        cluster,
        log.clone(),
        move || Ok(DeployProcessor::new(h.clone())),
        &aiops_runtime::deploys::store_dir(&cfg.data_dir),
        first,
        (cfg.deploys.checkpoint_interval, cfg.alerting.tick_interval),
        handle.progress.clone(),
        stop_rx,
        tasks,
    )
    .await
    .map_err(ServerError::Deploys)?;
    let deploys = crate::deploys::Deploys { log, handle };
    crate::deploys::start_watchers(&cfg.deploys, &cfg.outbound, &deploys, stop_rx, tasks)
        .map_err(ServerError::Deploys)?;
    Ok(Some(deploys))
}

/// Runs a processor that appends: in cluster mode a work unit (one owner, fenced appends,
/// followers elsewhere), else a driver over the local checkpoint store. `make` gives a
/// processor with fresh state (the driver restores the checkpoint into it or rebuilds);
/// `(checkpoint, tick)` are its checkpoint and clock-tick intervals.
#[allow(clippy::too_many_arguments)]
async fn run_processor<P: Processor + Sync>(
    cluster: Option<&mut crate::cluster::Cluster>,
    log: Arc<dyn EventLog>,
    make: impl Fn() -> Result<P, aiops_runtime::ProcessorError> + Send + Sync + 'static,
    store_dir: &std::path::Path,
    first: u64,
    (checkpoint, tick): (Duration, Duration),
    progress: Arc<aiops_runtime::CommandProgress>,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<(), String> {
    match cluster {
        Some(c) => {
            c.add(Arc::new(DriverUnit::new(
                P::NAME,
                log,
                c.blobs.clone(),
                Box::new(move |_owner, _log| make()),
                checkpoint,
                tick,
                progress,
            )));
            Ok(())
        }
        None => {
            let p = make().map_err(|e| e.to_string())?;
            spawn_driver(
                log,
                p,
                store_dir,
                first,
                checkpoint,
                tick,
                progress,
                stop_rx.clone(),
                tasks,
            )
            .await
        }
    }
}

/// Single-node: opens `processor`'s driver over the sled store in `store_dir` and follows the
/// log in a task until shutdown.
#[allow(clippy::too_many_arguments)]
async fn spawn_driver<P: Processor>(
    log: Arc<dyn EventLog>,
    processor: P,
    store_dir: &std::path::Path,
    first: u64,
    checkpoint_every: Duration,
    tick: Duration,
    progress: Arc<aiops_runtime::CommandProgress>,
    stop_rx: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<(), String> {
    let store = Store::open(store_dir).map_err(|e| e.to_string())?;
    let driver = Driver::open(
        log,
        processor,
        DriverOptions {
            store: Some(store),
            append: true,
            start: first,
            checkpoint_every,
            progress,
            write_checkpoints: true,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    tasks.spawn(async move {
        if let Err(e) = driver.follow(tick, stop_rx).await {
            tracing::error!(processor = P::NAME, error = %e, "{} stopped", P::WHAT);
        }
    });
    Ok(())
}

/// Starts the workflow runner and the executor: compiles the workflow and strategy files (a bad
/// file stops the start with file:line), records them in the log as the deployed set, and
/// returns the API's handle.
async fn start_workflows(
    cfg: &Config,
    log: Arc<dyn EventLog>,
    first: u64,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
    cluster: Option<&mut crate::cluster::Cluster>,
    // What the built-in providers (`context-provider`, `incident-db`) read.
    (alerting, templates): (
        Arc<AlertingHandle>,
        Option<Arc<aiops_runtime::templates::processor::TemplatesHandle>>,
    ),
) -> Result<Arc<crate::workflows::service::WorkflowsService>, ServerError> {
    use crate::workflows::{codec, executor, processor, query};
    let w = &cfg.workflow_settings().map_err(ServerError::Workflows)?;
    let query = Arc::new(query::QueryEngine::new(
        log.clone(),
        Some(cfg.pipelines.dir.join("tables")),
        cfg.sql.limits(),
    ));
    let providers = Arc::new(
        w.providers()
            .map_err(ServerError::Workflows)?
            .with_builtins(crate::workflows::builtin::providers(
                alerting,
                templates,
                query.clone(),
            )),
    );
    let limits = w.limits().map_err(ServerError::Workflows)?;
    // The alerting receivers' generated workflows are deployed with the files (their file names
    // start with `alertmanager/`, which no file in the directory can have).
    let mut files = crate::workflows::read_dir(&w.dir).map_err(ServerError::Workflows)?;
    files.extend(w.receiver_workflows());
    let deployed = processor::Deployed {
        workflows: files,
        strategies: crate::workflows::read_dir(&w.autoheal_dir).map_err(ServerError::Workflows)?,
    };
    let compiled = crate::workflows::compile_set(
        &deployed.workflows,
        &deployed.strategies,
        providers.clone(),
        limits.clone(),
    )
    .map_err(|errs| {
        ServerError::Workflows(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    // The deploy and rollback workflows must exist and be runnable by hand, or a rollback
    // would be asked for and never run.
    if cfg.deploys.enabled {
        for (key, name) in [
            ("rollback_workflow", &cfg.deploys.rollback_workflow),
            ("deploy_workflow", &cfg.deploys.deploy_workflow),
        ] {
            let Some(name) = name else { continue };
            let manual = compiled.workflows.get(name).is_some_and(|wf| {
                wf.triggers
                    .iter()
                    .any(|t| matches!(t, aiops_workflow::compile::Trigger::Manual))
            });
            if !manual {
                return Err(ServerError::Deploys(format!(
                    "deploys.{key} = {name:?}: no workflow with that id and a manual trigger in {}",
                    w.dir.display()
                )));
            }
        }
    }
    let handle = processor::WorkflowsHandle::new(providers, limits);
    if let Some(c) = cluster {
        // Every node records its files as the deployed set (the same files give the same set);
        // the unit's owner runs the engine and the executor.
        let msg = codec::control_message(
            codec::WorkflowCommand::Deployed {
                workflows: deployed.workflows.clone(),
                strategies: deployed.strategies.clone(),
            },
            crate::clock::now_ms(),
        )
        .map_err(|e| ServerError::Workflows(e.to_string()))?;
        if deployed != processor::Deployed::default() {
            log.append(vec![msg]).await?;
        }
        c.add(Arc::new(
            aiops_runtime::workflows::unit::WorkflowsUnit::new(
                handle.clone(),
                log.clone(),
                c.blobs.clone(),
                query,
                w.max_in_flight,
                w.sql_window,
                w.checkpoint_interval,
                w.tick_interval,
            ),
        ));
        let api =
            crate::workflows::service::WorkflowsService::new(handle, log, w.dir.clone(), &w.users)
                .map_err(|e| ServerError::Workflows(e.to_string()))?;
        return Ok(Arc::new(api));
    }
    let exec = executor::Executor::new(
        handle.clone(),
        log.clone(),
        query,
        w.max_in_flight,
        w.sql_window,
    );
    let wdriver = Driver::open(
        log.clone(),
        processor::WorkflowProcessor::new(handle.clone()).with_sink(exec.clone()),
        DriverOptions {
            store: Some(
                Store::open(&crate::workflows::store_dir(&cfg.data_dir))
                    .map_err(|e| ServerError::Workflows(e.to_string()))?,
            ),
            append: true,
            start: first,
            checkpoint_every: w.checkpoint_interval,
            progress: handle.progress.clone(),
            write_checkpoints: true,
        },
    )
    .await
    .map_err(|e| ServerError::Workflows(e.to_string()))?;
    // The files as they are now become the deployed set from this point of the log on (nothing
    // to record when there are none and none were deployed before).
    let nothing = deployed == processor::Deployed::default() && *handle.deployed.read() == deployed;
    let msg = codec::control_message(
        codec::WorkflowCommand::Deployed {
            workflows: deployed.workflows.clone(),
            strategies: deployed.strategies.clone(),
        },
        crate::clock::now_ms(),
    )
    .map_err(|e| ServerError::Workflows(e.to_string()))?;
    if !nothing {
        log.append(vec![msg]).await?;
    }
    tracing::info!(
        workflows = deployed.workflows.len(),
        strategies = deployed.strategies.len(),
        "workflows deployed"
    );
    let tick = w.tick_interval;
    let rx = stop_rx.clone();
    tasks.spawn(async move {
        if let Err(e) = wdriver.follow(tick, rx).await {
            tracing::error!(error = %e, "workflows stopped");
        }
    });
    tasks.spawn(exec.clone().run(stop_rx.clone()));
    let mut api =
        crate::workflows::service::WorkflowsService::new(handle, log, w.dir.clone(), &w.users)
            .map_err(|e| ServerError::Workflows(e.to_string()))?;
    api.executor = Some(exec);
    Ok(Arc::new(api))
}
