//! The Postgres wire endpoint: psql, Grafana's PostgreSQL data source and any SQL client query
//! the read-side session. The password is an aiops API token (any user name); `ingest` tokens
//! are refused. Queries run within [`QueryLimits`]; every failure is a Postgres error with a
//! SQLSTATE, and the connection stays usable.

use crate::auth::{Role, TokenStore};
use crate::limits::{QueryLimits, classify};
pub use crate::pgconn::ConnLimits;
use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::hooks::QueryHook;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire;
use futures::{Sink, Stream, StreamExt};
use pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::portal::Portal;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{QueryResponse, Response};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler, PgWireServerHandlers,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::messages::startup::{Password as PasswordMessage, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::net::TcpListener;

/// Metadata key of the authenticated token's role.
pub const META_ROLE: &str = "aiops.role";
/// Metadata key of the authenticated token's id.
pub const META_TOKEN: &str = "aiops.token";

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct PgStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Logins refused (no or wrong token, ingest role).
    pub auth_failures: AtomicU64,
    /// Statements answered.
    pub queries: AtomicU64,
    /// Statements that ended in an error.
    pub errors: AtomicU64,
    /// Statements cancelled at the time limit.
    pub timeouts: AtomicU64,
    /// Sockets closed because they did not log in within `sql.startup_timeout`.
    pub startup_timeouts: AtomicU64,
    /// Logins refused because every authenticated slot (`sql.max_connections`) was taken.
    pub refused_full: AtomicU64,
}

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        message,
    )))
}

/// Checks the token, then lets pgwire's cleartext handler finish the login with a per-process
/// secret, so pgwire's connection bookkeeping (cancel requests) stays in place.
struct TokenStartup {
    inner: CleartextPasswordAuthStartupHandler<AcceptChecked, DefaultServerParameterProvider>,
    tokens: Arc<TokenStore>,
    checked: String,
    stats: Arc<PgStats>,
    /// Moves a socket from the unauthenticated budget to an authenticated slot.
    gate: Arc<crate::pgconn::Gate>,
}

/// Makes every startup failure fatal: pgwire would otherwise answer a non-fatal error during
/// the login with ReadyForQuery, leaving an unauthenticated session open.
fn fatal(e: PgWireError) -> PgWireError {
    let mut info = ErrorInfo::from(e);
    info.severity = "FATAL".to_string();
    PgWireError::UserError(Box::new(info))
}

/// The password source of the inner handler: only ever sees the per-process secret.
#[derive(Debug)]
struct AcceptChecked(String);

#[async_trait]
impl AuthSource for AcceptChecked {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        Ok(Password::new(None, self.0.as_bytes().to_vec()))
    }
}

#[async_trait]
impl StartupHandler for TokenStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.login(client, message).await.map_err(fatal)
    }
}

impl TokenStartup {
    async fn login<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::PasswordMessageFamily(pwd) = message else {
            if matches!(message, PgWireFrontendMessage::Startup(_)) {
                self.stats.connections.fetch_add(1, Ordering::Relaxed);
            }
            return self.inner.on_startup(client, message).await;
        };
        let pwd = pwd.into_password()?;
        let user = client
            .metadata()
            .get(pgwire::api::METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let Some(rec) = self.tokens.verify_async(&pwd.password).await else {
            self.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            tracing::info!(user = %user, peer = %client.socket_addr(), "postgres login refused: unknown token");
            return Err(PgWireError::InvalidPassword(user));
        };
        if !rec.role.allows(Role::Viewer) {
            self.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_string(),
                "28000".to_string(),
                format!(
                    "token {:?} has role {}, which may not query; use a viewer, operator or admin token",
                    rec.name,
                    rec.role.as_str()
                ),
            ))));
        }
        // Only a valid token takes one of the `sql.max_connections` slots.
        let peer = client.socket_addr();
        match self.gate.admit(peer) {
            Ok(()) => {}
            Err(crate::pgconn::AdmitError::Full) => {
                self.stats.refused_full.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %peer, "postgres login refused: every connection slot is taken (sql.max_connections)");
                return Err(user_error(
                    "53300",
                    "sorry, too many clients already (sql.max_connections); retry later"
                        .to_string(),
                ));
            }
            Err(crate::pgconn::AdmitError::NotPending) => {
                return Err(user_error(
                    "08P01",
                    "the login took longer than sql.startup_timeout; connect again".to_string(),
                ));
            }
        }
        client
            .metadata_mut()
            .insert(META_ROLE.to_string(), rec.role.as_str().to_string());
        client.metadata_mut().insert(META_TOKEN.to_string(), rec.id);
        let checked = PgWireFrontendMessage::PasswordMessageFamily(
            PasswordMessageFamily::Password(PasswordMessage::new(self.checked.clone())),
        );
        self.inner.on_startup(client, checked).await
    }
}

/// Turns DataFusion errors into Postgres errors with a SQLSTATE.
struct SqlStateErrors(Arc<PgStats>);

impl ErrorHandler for SqlStateErrors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        self.0.errors.fetch_add(1, Ordering::Relaxed);
        if let PgWireError::ApiError(e) = error {
            let q = if let Some(df) = e.downcast_ref::<DataFusionError>() {
                classify(df)
            } else if e
                .downcast_ref::<datafusion::sql::sqlparser::parser::ParserError>()
                .is_some()
                || e.to_string().contains("sql parser error")
            {
                crate::limits::QueryError::new("42601", crate::limits::bounded(&e.to_string()))
            } else {
                crate::limits::QueryError::new("XX000", crate::limits::bounded(&e.to_string()))
            };
            *error = user_error(q.code, q.message);
        }
    }
}

/// The session service with the sandbox's text gate in front and the time limit around
/// planning and around every result stream.
struct Limited {
    inner: Arc<DfSessionService>,
    parser: Arc<crate::pgguard::GuardedParser>,
    limits: QueryLimits,
    stats: Arc<PgStats>,
}

fn timeout_error(limits: &QueryLimits) -> PgWireError {
    user_error(
        "57014",
        format!(
            "canceling statement: it ran longer than the limit of {}s (sql.timeout)",
            limits.timeout.as_secs_f64()
        ),
    )
}

impl Limited {
    fn guard(&self, resp: Response, deadline: tokio::time::Instant) -> Response {
        let Response::Query(q) = resp else {
            return resp;
        };
        let schema = q.row_schema.clone();
        let tag = q.command_tag.clone();
        let rows = deadline_stream(
            q.data_rows,
            deadline,
            self.limits.clone(),
            self.stats.clone(),
        );
        let mut out = QueryResponse::new(schema, rows);
        out.command_tag = tag;
        Response::Query(out)
    }
}

/// Ends `rows` with a 57014 error once `deadline` passes; dropping it cancels the plan.
fn deadline_stream(
    rows: impl Stream<Item = PgWireResult<DataRow>> + Send + Unpin + 'static,
    deadline: tokio::time::Instant,
    limits: QueryLimits,
    stats: Arc<PgStats>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    futures::stream::unfold(Some(rows), move |st| {
        let limits = limits.clone();
        let stats = stats.clone();
        async move {
            let mut rows = st?;
            match tokio::time::timeout_at(deadline, rows.next()).await {
                Ok(Some(r)) => Some((r, Some(rows))),
                Ok(None) => None,
                Err(_) => {
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    Some((Err(timeout_error(&limits)), None))
                }
            }
        }
    })
}

#[async_trait]
impl SimpleQueryHandler for Limited {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        crate::sandbox::check_text(query, &self.limits).map_err(crate::pgguard::to_pg)?;
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let r = tokio::time::timeout_at(
            deadline,
            SimpleQueryHandler::do_query(self.inner.as_ref(), client, query),
        )
        .await
        .map_err(|_| {
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            timeout_error(&self.limits)
        })??;
        Ok(r.into_iter().map(|x| self.guard(x, deadline)).collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Limited {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = crate::pgguard::GuardedParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let r = tokio::time::timeout_at(
            deadline,
            ExtendedQueryHandler::do_query(self.inner.as_ref(), client, portal, max_rows),
        )
        .await
        .map_err(|_| {
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            timeout_error(&self.limits)
        })??;
        Ok(self.guard(r, deadline))
    }
}

/// Everything one connection needs.
struct Handlers {
    service: Arc<Limited>,
    startup: Arc<TokenStartup>,
    cancel: Arc<DefaultCancelHandler>,
    errors: Arc<SqlStateErrors>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.errors.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

/// The Postgres endpoint over a session.
pub struct PgServer {
    handlers: Arc<Handlers>,
    /// Unauthenticated sockets and their hand-over to authenticated slots.
    gate: Arc<crate::pgconn::Gate>,
    /// Counters for `/metrics`.
    pub stats: Arc<PgStats>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer").finish_non_exhaustive()
    }
}

impl PgServer {
    /// The endpoint over `ctx`, authenticating with `tokens`.
    pub fn new(ctx: Arc<SessionContext>, tokens: Arc<TokenStore>, limits: QueryLimits) -> PgServer {
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            // First: nothing outside the read-only allowlist reaches the shared session.
            Arc::new(crate::pgguard::ReadOnlyHook),
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
            Arc::new(crate::pgmaps::MapsAsJsonHook),
        ];
        let stats = Arc::new(PgStats::default());
        let gate = Arc::new(crate::pgconn::Gate::default());
        let manager = Arc::new(ConnectionManager::new());
        let secret: [u8; 32] = rand::random();
        let checked = hex::encode(secret);
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = "16.6 (aiops)".to_string();
        let inner =
            CleartextPasswordAuthStartupHandler::new(AcceptChecked(checked.clone()), params)
                .with_connection_manager(manager.clone());
        let handlers = Handlers {
            service: Arc::new({
                let inner = Arc::new(DfSessionService::new_with_hooks(ctx, hooks));
                let parser = Arc::new(crate::pgguard::GuardedParser {
                    inner: inner.query_parser(),
                    limits: limits.clone(),
                });
                Limited {
                    inner,
                    parser,
                    limits,
                    stats: stats.clone(),
                }
            }),
            startup: Arc::new(TokenStartup {
                inner,
                tokens,
                checked,
                stats: stats.clone(),
                gate: gate.clone(),
            }),
            cancel: Arc::new(DefaultCancelHandler::new(manager)),
            errors: Arc::new(SqlStateErrors(stats.clone())),
        };
        PgServer {
            handlers: Arc::new(handlers),
            gate,
            stats,
        }
    }

    /// Accepts connections on `listener` until the task is dropped: at most `max_connections`
    /// logged in at once, the other limits at their defaults (see [`PgServer::serve_with`]).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, max_connections: usize) {
        let limits = ConnLimits {
            max_connections,
            ..ConnLimits::default()
        };
        self.serve_with(listener, limits).await;
    }

    /// Accepts connections on `listener` until the task is dropped. A socket must log in within
    /// `limits.startup_timeout` and, until it has, counts only against
    /// `limits.max_unauthenticated` (the oldest such socket is closed to make room); a valid
    /// login takes one of `limits.max_connections` slots (53300 when none is free).
    pub async fn serve_with(self: Arc<Self>, listener: TcpListener, limits: ConnLimits) {
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "postgres endpoint: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let handlers = self.handlers.clone();
            let gate = self.gate.clone();
            let stats = self.stats.clone();
            let slots = slots.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let conn = async move {
                    if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                        tracing::debug!(peer = %peer, error = %e, "postgres connection ended with an error");
                    }
                };
                crate::pgconn::supervise(gate, peer, slots, limits, stats, conn).await;
                tracing::debug!(peer = %peer, secs = started.elapsed().as_secs_f64(), "postgres connection closed");
            });
        }
    }
}
