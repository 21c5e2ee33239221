//! The read side in the engine process: the Postgres endpoint on its own runtime, the archive's
//! compaction loop and the derived-stream directory (`aiops sql` is the binary's, over the same
//! catalog).
//!
//! - [`state`]: the engine's live state (alerts, silences, incidents, executions) as tables.
//!
//! Query results as JSON rows and columns are [`aiops_read::json`]'s.

pub mod state;

use aiops_log::EventLog;
use aiops_read::archive::{Archive, ArchiveConfig};
use aiops_read::auth::TokenStore;
use aiops_read::catalog::{ReadSources, session};
use aiops_read::directory::StreamDirectory;
use aiops_read::limits::QueryLimits;
use aiops_read::pg::{PgServer, PgStats};
use datafusion::prelude::SessionContext;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::watch;

/// `[sql]`: the Postgres endpoint and query limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlSettings {
    /// Serve the Postgres wire endpoint. Default on.
    pub enabled: bool,
    /// Its listen address. Default 127.0.0.1:5433 (5432 is usually a real PostgreSQL).
    pub listen: SocketAddr,
    /// Logged-in connections at once; a login beyond it is refused with SQLSTATE 53300.
    /// Sockets still logging in do not count here. Default 64.
    pub max_connections: usize,
    /// Sockets still logging in (not yet authenticated) at once; beyond it the oldest such
    /// socket is closed, so idle sockets cannot lock logins out. Default 64.
    pub max_unauthenticated: usize,
    /// A socket must complete its login within this after connecting, or it is closed.
    /// Default 5s.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// A query running longer is cancelled with SQLSTATE 57014. Default 30s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Memory for joins, sorts and aggregations of all running queries. Default 1 GiB.
    pub memory_bytes: usize,
    /// Largest result of an HTTP or `aiops sql` query (the Postgres endpoint streams).
    /// Default 256 MiB.
    pub max_result_bytes: usize,
    /// Threads of the query runtime, apart from ingest and the HTTP API. Default 2.
    pub threads: usize,
    /// Longest statement text, bytes; longer ones are refused with 54000. Default 1 MiB.
    pub max_statement_bytes: usize,
    /// Deepest expression nesting a statement may have; deeper ones are refused with 54001
    /// before they are parsed (a 20,000-term `1+1+…` would otherwise overflow the stack).
    /// Default 256, at most 1024.
    pub max_expression_depth: usize,
}

impl Default for SqlSettings {
    fn default() -> Self {
        let l = QueryLimits::default();
        SqlSettings {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 5433)),
            max_connections: 64,
            max_unauthenticated: 64,
            startup_timeout: Duration::from_secs(5),
            timeout: l.timeout,
            memory_bytes: l.memory_bytes,
            max_result_bytes: l.max_result_bytes,
            threads: l.threads,
            max_statement_bytes: l.max_statement_bytes,
            max_expression_depth: l.max_expression_depth,
        }
    }
}

impl SqlSettings {
    /// The Postgres endpoint's connection limits.
    pub fn conn_limits(&self) -> aiops_read::pg::ConnLimits {
        aiops_read::pg::ConnLimits {
            max_connections: self.max_connections.max(1),
            max_unauthenticated: self.max_unauthenticated.max(1),
            startup_timeout: self.startup_timeout,
        }
    }

    /// The limits of one query.
    pub fn limits(&self) -> QueryLimits {
        QueryLimits {
            timeout: self.timeout,
            memory_bytes: self.memory_bytes,
            max_result_bytes: self.max_result_bytes,
            threads: self.threads.max(1),
            max_statement_bytes: self.max_statement_bytes.max(1),
            // Above ~1,000 the bound stops protecting the stack (see the sandbox).
            max_expression_depth: self.max_expression_depth.clamp(8, 1024),
        }
    }
}

/// Where the archive lives by default: `<data_dir>/archive`.
pub fn archive_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("archive")
}

/// Where the archive of `cfg` lives: `[read] archive_dir`, else `<data_dir>/archive`.
pub fn archive_dir_of(cfg: &crate::config::Config) -> PathBuf {
    cfg.read
        .archive_dir
        .clone()
        .unwrap_or_else(|| archive_dir(&cfg.data_dir))
}

/// Whether the archive is shared by the nodes of a cluster (cluster mode with `[read]
/// archive_dir` set): then only the owner of the `archive` work unit compacts.
pub fn archive_shared(cfg: &crate::config::Config) -> bool {
    cfg.archive.enabled && cfg.cluster.enabled() && cfg.read.archive_dir.is_some()
}

/// Where the token hashes live.
pub fn tokens_path(data_dir: &Path) -> PathBuf {
    data_dir.join("auth").join("tokens.json")
}

/// The read side of a running engine.
#[derive(Clone)]
pub struct ReadSide {
    /// The session queries run in (shared by the Postgres endpoint and the HTTP API).
    pub ctx: Arc<SessionContext>,
    /// Query limits.
    pub limits: QueryLimits,
    /// The archive, when enabled.
    pub archive: Option<Arc<Archive>>,
    /// The Postgres endpoint's counters, when it runs.
    pub pg: Option<Arc<PgStats>>,
    /// Where the Postgres endpoint listens, when it runs.
    pub pg_addr: Option<SocketAddr>,
    /// The query runtime: HTTP handlers run their queries here too.
    pub runtime: tokio::runtime::Handle,
    /// Compaction passes of this node that archived rows or expired files.
    pub compactions: Arc<AtomicU64>,
}

impl std::fmt::Debug for ReadSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSide")
            .field("pg_addr", &self.pg_addr)
            .finish_non_exhaustive()
    }
}

impl ReadSide {
    /// The Postgres endpoint's counters in the Prometheus text format (empty when it does not
    /// run).
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = String::new();
        if self.archive.is_some() {
            let _ = writeln!(
                out,
                "# HELP aiops_archive_compactions_total Compaction passes of this node that archived rows or expired files.\n# TYPE aiops_archive_compactions_total counter\naiops_archive_compactions_total {}",
                self.compactions.load(Relaxed)
            );
        }
        let Some(pg) = &self.pg else {
            return out;
        };
        let families = [
            (
                "aiops_pg_connections_total",
                "Postgres connections accepted.",
                &pg.connections,
            ),
            (
                "aiops_pg_auth_failures_total",
                "Postgres logins refused (no, wrong or ingest token).",
                &pg.auth_failures,
            ),
            (
                "aiops_pg_queries_total",
                "Postgres statements answered.",
                &pg.queries,
            ),
            (
                "aiops_pg_errors_total",
                "Postgres statements that ended in an error (refused ones included).",
                &pg.errors,
            ),
            (
                "aiops_pg_timeouts_total",
                "Postgres statements cancelled at sql.timeout.",
                &pg.timeouts,
            ),
            (
                "aiops_pg_startup_timeouts_total",
                "Postgres sockets closed for not logging in within sql.startup_timeout.",
                &pg.startup_timeouts,
            ),
            (
                "aiops_pg_refused_full_total",
                "Postgres logins refused because sql.max_connections were taken.",
                &pg.refused_full,
            ),
        ];
        for (name, help, v) in families {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        out
    }

    /// Runs `sql` within the limits on the query runtime.
    ///
    /// # Errors
    /// The query's error with its SQLSTATE.
    pub async fn query(
        &self,
        sql: &str,
    ) -> Result<Vec<aiops_schemas::arrow_array::RecordBatch>, aiops_read::limits::QueryError> {
        let ctx = self.ctx.clone();
        let limits = self.limits.clone();
        let sql = sql.to_string();
        let task = self
            .runtime
            .spawn(async move { aiops_read::sandbox::query(&ctx, &sql, None, &limits).await });
        match task.await {
            Ok(r) => r,
            Err(e) => Err(aiops_read::limits::QueryError::new(
                "XX000",
                format!("query task failed: {e}"),
            )),
        }
    }
}

/// The Grafana automation reads the pipelines' columns, incidents and deploys, and checks its
/// generated queries, here.
impl aiops_grafana::SqlSource for ReadSide {
    fn query(
        &self,
        sql: &str,
    ) -> impl std::future::Future<
        Output = Result<
            Vec<aiops_schemas::arrow_array::RecordBatch>,
            aiops_read::limits::QueryError,
        >,
    > + Send {
        ReadSide::query(self, sql)
    }
}

/// Why the read side could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The archive could not be opened.
    #[error(transparent)]
    Archive(#[from] aiops_read::archive::ArchiveError),
    /// The session could not be built.
    #[error("sql session: {0}")]
    Session(String),
    /// The Postgres address could not be bound.
    #[error("cannot listen on {addr} (sql.listen / --pg): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The query runtime could not start.
    #[error("query runtime: {0}")]
    Runtime(std::io::Error),
}

/// Starts the read side: archive + compaction loop, directory refresh, the query runtime and
/// (when enabled) the Postgres endpoint. Everything stops when `stop` turns true. With a shared
/// archive ([`archive_shared`]) the archive is opened for reading and no compaction loop starts
/// here: the `archive` work unit ([`archive_unit`]) compacts on its owner.
///
/// # Errors
/// [`ReadError`].
pub async fn start(
    cfg: &crate::config::Config,
    log: Arc<dyn EventLog>,
    state: Option<Arc<dyn aiops_read::state::StateSource>>,
    tokens: Arc<TokenStore>,
    stop: watch::Receiver<bool>,
) -> Result<ReadSide, ReadError> {
    let limits = cfg.sql.limits();
    let shared = archive_shared(cfg);
    let archive = if !cfg.archive.enabled {
        None
    } else if shared {
        // Another node may be mid-pass: nothing is removed at open (the owner cleans up when
        // it takes the unit over).
        let dir = archive_dir_of(cfg);
        std::fs::create_dir_all(&dir).map_err(|e| {
            ReadError::Archive(aiops_read::archive::ArchiveError::Io {
                path: dir.clone(),
                detail: e.to_string(),
            })
        })?;
        Some(Arc::new(Archive::open_read_only(&dir)?))
    } else {
        if cfg.cluster.enabled() {
            tracing::info!(
                dir = %archive_dir_of(cfg).display(),
                "cluster mode without [read] archive_dir: this node compacts its own archive copy (set a shared archive_dir so one node compacts for all, docs/cluster.md)"
            );
        }
        Some(Arc::new(Archive::open(&archive_dir_of(cfg))?))
    };
    let compactions = Arc::new(AtomicU64::new(0));
    let directory = Arc::new(StreamDirectory::default());
    let src = ReadSources {
        log: log.clone(),
        archive: archive.clone(),
        directory: directory.clone(),
        state,
    };
    let ctx = Arc::new(session(src, &limits).map_err(|e| ReadError::Session(e.to_string()))?);
    let listener = if cfg.sql.enabled {
        let addr = cfg.sql.listen;
        let l =
            std::net::TcpListener::bind(addr).map_err(|source| ReadError::Bind { addr, source })?;
        l.set_nonblocking(true)
            .map_err(|source| ReadError::Bind { addr, source })?;
        Some(l)
    } else {
        None
    };
    let pg_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
    let (rt_tx, rt_rx) = std::sync::mpsc::sync_channel(1);
    let pg = listener
        .as_ref()
        .map(|_| Arc::new(PgServer::new(ctx.clone(), tokens, limits.clone())));
    let stats = pg.as_ref().map(|p| p.stats.clone());
    let threads = limits.threads.max(1);
    let conn_limits = cfg.sql.conn_limits();
    let mut stop_rt = stop.clone();
    // Its own runtime, so a heavy query cannot starve ingest or the HTTP API.
    std::thread::Builder::new()
        .name("aiops-sql".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("aiops-sql")
                // Headroom for planning: the sandbox bounds depth, this keeps the bound far
                // from the stack's end in every build profile.
                .thread_stack_size(16 << 20)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = rt_tx.send(Err(e));
                    return;
                }
            };
            let _ = rt_tx.send(Ok(rt.handle().clone()));
            rt.block_on(async move {
                if let (Some(pg), Some(l)) = (pg, listener) {
                    match tokio::net::TcpListener::from_std(l) {
                        Ok(l) => {
                            tokio::spawn(pg.serve_with(l, conn_limits));
                        }
                        Err(e) => tracing::error!(error = %e, "postgres endpoint could not start"),
                    }
                }
                while !*stop_rt.borrow() {
                    if stop_rt.changed().await.is_err() {
                        break;
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(ReadError::Runtime)?;
    let runtime = tokio::task::spawn_blocking(move || rt_rx.recv())
        .await
        .map_err(|e| ReadError::Runtime(std::io::Error::other(e.to_string())))?
        .map_err(|e| ReadError::Runtime(std::io::Error::other(e.to_string())))?
        .map_err(ReadError::Runtime)?;
    if let Some(addr) = pg_addr {
        tracing::info!(addr = %addr, "postgres endpoint listening (password = an aiops API token)");
    }
    // The directory follows the log so new pipeline outputs show up in table lists.
    {
        let (log, archive, directory, mut stop) = (
            log.clone(),
            archive.clone(),
            directory.clone(),
            stop.clone(),
        );
        runtime.spawn(async move {
            loop {
                if let Err(e) = directory.refresh(&log, archive.as_ref()).await {
                    tracing::warn!(error = %e, "derived stream directory: refresh failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
    if let Some(a) = archive.clone()
        && !shared
    {
        let acfg = cfg.archive.clone();
        let mut stop = stop.clone();
        let n = compactions.clone();
        runtime.spawn(async move { compaction_loop(a, log, acfg, n, &mut stop).await });
    }
    Ok(ReadSide {
        ctx,
        limits,
        archive,
        pg: stats,
        pg_addr,
        runtime,
        compactions,
    })
}

/// Aborts the task when dropped: a unit's owner task that the member aborts (lease lost) takes
/// the compaction it started on the query runtime with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The `archive` work unit of a shared archive: its owner takes the directory over (removes
/// files an interrupted writer left) and runs the compaction loop on the query runtime; the
/// other nodes re-read the manifest every `min(archive.interval, 5s)` so their queries read
/// what the owner archived.
pub fn archive_unit(
    read: &ReadSide,
    cfg: ArchiveConfig,
) -> Option<aiops_runtime::cluster::TaskUnit> {
    use aiops_runtime::cluster::{TaskUnit, UnitError};
    let archive = read.archive.clone()?;
    let (a_own, rt_own, n) = (
        archive.clone(),
        read.runtime.clone(),
        read.compactions.clone(),
    );
    let refresh = cfg.interval.min(Duration::from_secs(5));
    let unit = TaskUnit::new("archive", move |log, stop| {
        let (a, rt, n, cfg) = (a_own.clone(), rt_own.clone(), n.clone(), cfg.clone());
        Box::pin(async move {
            let taken = {
                let a = a.clone();
                tokio::task::spawn_blocking(move || a.take_over())
                    .await
                    .map_err(|e| UnitError::new("archive", e))?
            };
            taken.map_err(|e| UnitError::new("archive", e))?;
            tracing::info!(
                archived_through = a.archived_through(),
                "archive: this node compacts"
            );
            let mut stop = stop;
            let mut task = AbortOnDrop(rt.spawn(async move {
                compaction_loop(a, log, cfg, n, &mut stop).await;
            }));
            (&mut task.0)
                .await
                .map_err(|e| UnitError::new("archive", e))
        })
    })
    .with_follow(move |mut stop| {
        let a = archive.clone();
        Box::pin(async move {
            loop {
                let r = {
                    let a = a.clone();
                    tokio::task::spawn_blocking(move || a.reload()).await
                };
                match r {
                    Ok(Ok(true)) => {
                        tracing::debug!(
                            archived_through = a.archived_through(),
                            "archive: manifest reloaded"
                        );
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "archive: cannot re-read the shared manifest")
                    }
                    Err(e) => tracing::warn!(error = %e, "archive: manifest reload task failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(refresh) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            }
        })
    });
    Some(unit)
}

async fn compaction_loop(
    archive: Arc<Archive>,
    log: Arc<dyn EventLog>,
    cfg: ArchiveConfig,
    passes: Arc<AtomicU64>,
    stop: &mut watch::Receiver<bool>,
) {
    loop {
        let now = crate::clock::now_ms();
        let after = i64::try_from(cfg.after.as_millis()).unwrap_or(i64::MAX);
        let keep = i64::try_from(cfg.retention.as_millis()).unwrap_or(i64::MAX);
        // Passes until caught up, each bounded by max_rows_per_pass.
        loop {
            match archive
                .compact(
                    &log,
                    now.saturating_sub(after),
                    now.saturating_sub(keep),
                    &cfg,
                )
                .await
            {
                Ok(r) if r.rows > 0 || r.expired_files > 0 => {
                    passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(
                        rows = r.rows,
                        files = r.files,
                        bytes = r.bytes,
                        expired = r.expired_files,
                        archived_through = r.archived_through,
                        "archive compaction"
                    );
                    if r.rows == 0 {
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "archive compaction failed; retrying later");
                    break;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = stop.changed() => return,
        }
    }
}
