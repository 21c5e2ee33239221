//! Why a SQL pull failed, worded for whoever must act, with the password never in the text.

use super::config::Target;
use super::mapping::MappingError;
use crate::error::SourceError;
use crate::sinks::Redactor;
use std::time::Duration;

/// A failed pull. [`PullError::into_source_error`] sorts it into "retry may help"
/// ([`SourceError::Unavailable`]) or "fix the configuration" ([`SourceError::Config`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PullError {
    /// The outbound policy refused the target (or its name did not resolve).
    #[error("target refused: {0}")]
    Refused(String),
    /// No connection (refused, reset, TLS, protocol); retrying later may help.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server refused the credentials.
    #[error(
        "authentication failed for user {user:?} at {target}: {message} (check user and \
         password)"
    )]
    Auth {
        /// The user name.
        user: String,
        /// `host:port`.
        target: String,
        /// The server's message (redacted).
        message: String,
    },
    /// The query tried to write: the read-only session refused it.
    #[error("the query tried to write and the read-only session refused it: {0}")]
    ReadOnly(String),
    /// The statement ran longer than the timeout (server-side or client-side).
    #[error(
        "the query did not finish within the timeout of {after:?} (timeout); narrow the range \
         (max_range), make the query cheaper or raise timeout"
    )]
    Timeout {
        /// The configured timeout.
        after: Duration,
    },
    /// The database refused the query (syntax, unknown table or column, permissions).
    #[error("the database refused the query: {0}")]
    Query(String),
    /// A column type aiops cannot read.
    #[error(
        "column {column:?} has type {type_name}, which aiops does not read; cast it in the query \
         (to text, a number or a timestamp)"
    )]
    ColumnType {
        /// The column.
        column: String,
        /// The database's type name.
        type_name: String,
    },
    /// A value that could not be decoded.
    #[error("column {column:?}: cannot decode a value: {message}")]
    Decode {
        /// The column.
        column: String,
        /// The driver's message.
        message: String,
    },
    /// More rows than `max_rows`.
    #[error(
        "the query returned more than {limit} rows (max_rows) for one range; narrow the range \
         (max_range) or raise max_rows — nothing of this range was kept"
    )]
    TooManyRows {
        /// The limit.
        limit: usize,
    },
    /// The rows do not fit the mapping.
    #[error("{0}")]
    Mapping(MappingError),
    /// The server answered something the client could not understand.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl PullError {
    /// Whether the source could not be reached or logged into (for test reports).
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            PullError::Refused(_) | PullError::Connect(_) | PullError::Auth { .. }
        )
    }

    /// The engine's error: `Unavailable` when a retry may help, `Config` when a person must
    /// change the source, the query or the database's grants.
    pub fn into_source_error(self) -> SourceError {
        let text = self.to_string();
        match self {
            PullError::Connect(_) | PullError::Timeout { .. } | PullError::Protocol(_) => {
                SourceError::Unavailable(text)
            }
            PullError::Refused(_)
            | PullError::Auth { .. }
            | PullError::ReadOnly(_)
            | PullError::Query(_)
            | PullError::ColumnType { .. }
            | PullError::Decode { .. }
            | PullError::TooManyRows { .. }
            | PullError::Mapping(_) => SourceError::Config(text),
        }
    }
}

/// Sorts a driver error, redacting the password from every text taken from it.
pub(crate) fn classify(
    e: sqlx::Error,
    target: &Target,
    timeout: Duration,
    redactor: &Redactor,
) -> PullError {
    let clean = |s: String| crate::error::bound_text(&redactor.redact(&s), 512);
    match e {
        sqlx::Error::Database(db) => {
            let message = clean(db.message().to_string());
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                return match pg.code() {
                    "28P01" | "28000" => PullError::Auth {
                        user: target.user.clone(),
                        target: format!("{}:{}", target.host, target.port),
                        message,
                    },
                    "57014" => PullError::Timeout { after: timeout },
                    "25006" => PullError::ReadOnly(message),
                    code if code.starts_with("08") || code.starts_with("57P") => {
                        PullError::Connect(message)
                    }
                    code => PullError::Query(format!("{message} (SQLSTATE {code})")),
                };
            }
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return match my.number() {
                    // ER_ACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR.
                    1045 | 1044 => PullError::Auth {
                        user: target.user.clone(),
                        target: format!("{}:{}", target.host, target.port),
                        message,
                    },
                    // MySQL ER_QUERY_TIMEOUT; MariaDB ER_STATEMENT_TIMEOUT.
                    3024 | 1969 => PullError::Timeout { after: timeout },
                    // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION.
                    1792 => PullError::ReadOnly(message),
                    n => PullError::Query(format!("{message} (error {n})")),
                };
            }
            PullError::Query(message)
        }
        sqlx::Error::Io(io) => PullError::Connect(clean(io.to_string())),
        sqlx::Error::Tls(t) => PullError::Connect(clean(format!("TLS: {t}"))),
        sqlx::Error::PoolTimedOut => PullError::Timeout { after: timeout },
        sqlx::Error::ColumnDecode { index, source } => PullError::Decode {
            column: index,
            message: clean(source.to_string()),
        },
        other => PullError::Protocol(clean(other.to_string())),
    }
}
