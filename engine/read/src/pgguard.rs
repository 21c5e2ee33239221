//! The read-only sandbox on the Postgres endpoint: a query hook that runs first for every
//! statement (simple and extended protocol) and refuses what [`crate::sandbox`] refuses, and a
//! query parser that checks the statement's text before anything parses it.
//!
//! The endpoint's session is shared by every connection, so nothing that could change it may
//! run: DDL, DML, `COPY`, `PREPARE`, `SET` of engine options. Client settings drivers send on
//! connect (`application_name`, `extra_float_digits`, …) stay per connection.

use crate::limits::{QueryError, QueryLimits};
use crate::sandbox::{IGNORED_CLIENT_SETTINGS, Surface, check_statement, check_text};
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::Parser;
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire;
use pgwire::api::ClientInfo;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use std::sync::Arc;

/// A refused statement as a Postgres error the client sees with its SQLSTATE.
pub fn to_pg(e: QueryError) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        e.code.to_string(),
        e.message,
    )))
}

/// `SET` of a setting aiops accepts and ignores (answered `SET`, nothing changes).
fn ignored_set(stmt: &Statement) -> bool {
    let Statement::Set(Set::SingleAssignment {
        scope: None,
        hivevar: false,
        variable,
        ..
    }) = stmt
    else {
        return false;
    };
    let var = variable.to_string().to_ascii_lowercase();
    IGNORED_CLIENT_SETTINGS.contains(&var.as_str())
}

/// The first hook of the endpoint: refuses every statement outside the allowlist.
#[derive(Debug, Default)]
pub struct ReadOnlyHook;

impl ReadOnlyHook {
    fn check(stmt: &Statement) -> Option<PgWireResult<Response>> {
        if let Err(e) = check_statement(stmt, Surface::Postgres) {
            return Some(Err(to_pg(e)));
        }
        ignored_set(stmt).then(|| Ok(Response::Execution(Tag::new("SET"))))
    }
}

#[async_trait]
impl QueryHook for ReadOnlyHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::check(statement)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        match check_statement(statement, Surface::Postgres) {
            Err(e) => Some(Err(to_pg(e))),
            Ok(()) => None,
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::check(statement)
    }
}

/// The extended protocol's parser with the text gate in front: size and expression depth are
/// checked before datafusion-postgres parses (and prints, and rewrites) the statement.
pub struct GuardedParser {
    /// datafusion-postgres' parser.
    pub inner: Arc<Parser>,
    /// The limits (statement size and depth).
    pub limits: QueryLimits,
}

#[async_trait]
impl QueryParser for GuardedParser {
    type Statement = <Parser as QueryParser>::Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        check_text(sql, &self.limits).map_err(to_pg)?;
        self.inner.parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.inner.get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.inner.get_result_schema(stmt, column_format)
    }
}
