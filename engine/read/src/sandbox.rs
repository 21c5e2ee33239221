//! The read-only SQL sandbox every query passes through: the HTTP API, the Postgres endpoint,
//! `aiops sql`, workflow `sql`/`verify` steps and the Grafana sync checks.
//!
//! Three gates, in order, each answering with a SQLSTATE and a message naming what is refused:
//!
//! 1. [`check_text`] — before anything is parsed: the statement's size and an estimate of its
//!    expression depth from the token stream (iterative, no recursion). A left-deep chain such as
//!    `1+1+…+1` parses without recursion but every later step (planning, optimizing, printing,
//!    dropping the tree) recurses once per operator, so 20,000 terms would overflow a thread's
//!    stack and take the whole process down; it is refused here with `54001`.
//! 2. [`check_statement`] — an allowlist over the parsed statement: queries (`SELECT`, `WITH`,
//!    `VALUES`, set operations), `EXPLAIN` of those, `SHOW`/`DESCRIBE`; on the Postgres endpoint
//!    also transactions and the client-local `SET`s drivers send on connect. Everything
//!    else — DDL, DML, `COPY`, external tables, `PREPARE`, `SET` of shared options, `SELECT
//!    INTO`, data-modifying CTEs — is refused with `42501` (would change something) or `0A000`.
//! 3. [`dataframe`] — the plan is made in a per-request copy of the session (so nothing a
//!    statement does can reach another request) and verified once more with DataFusion's
//!    [`SQLOptions`] (no DDL, DML or statements anywhere in the plan, subqueries included).

use crate::limits::{QueryError, QueryLimits, classify};
use aiops_schemas::arrow_array::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Query, Select, SetExpr, Statement, Visit, Visitor as AstVisitor,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use std::ops::ControlFlow;

/// Where a statement comes from: the Postgres endpoint also accepts the session statements
/// drivers send (transactions, client-local `SET`), which the HTTP API has no use for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `POST /api/sql`, `aiops sql`, workflow steps, Grafana checks: one read-only statement.
    Api,
    /// The Postgres wire endpoint.
    Postgres,
}

/// `SET` variables a Postgres client may change: each lives in that connection's metadata
/// (datafusion-postgres keeps them per client), so no other session sees them.
const CLIENT_SETTINGS: &[&str] = &[
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
    "statement_timeout",
];

/// `SET` variables drivers send that aiops accepts and ignores: they change nothing in aiops
/// (the encoding is always UTF-8, strings are always standard-conforming).
pub const IGNORED_CLIENT_SETTINGS: &[&str] = &[
    "client_encoding",
    "standard_conforming_strings",
    "client_min_messages",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
    "default_transaction_read_only",
    "default_transaction_isolation",
    "transaction_isolation",
    "session_characteristics",
];

fn too_complex(message: String) -> QueryError {
    QueryError::new("54001", message)
}

fn denied(what: &str) -> QueryError {
    QueryError::new(
        "42501",
        format!(
            "permission denied: {what} is not allowed; the read side is read-only (SELECT, WITH, VALUES, EXPLAIN and SHOW only)"
        ),
    )
}

fn unsupported(what: &str) -> QueryError {
    QueryError::new(
        "0A000",
        format!(
            "{what} is not supported on the read side (SELECT, WITH, VALUES, EXPLAIN and SHOW only)"
        ),
    )
}

/// Keywords that structure a statement without nesting expressions: clauses, join and window
/// syntax, literals. Every other keyword counts as an operator — conservative on purpose: the
/// parser builds some keyword operators (`MEMBER OF`, `NOTNULL`, `OPERATOR(…)`, `IS …`) in a
/// loop that its recursion limit does not see, and a missed one is a stack overflow later.
const STRUCTURAL: &[Keyword] = &[
    Keyword::NoKeyword,
    Keyword::SELECT,
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::BY,
    Keyword::ORDER,
    Keyword::HAVING,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::AS,
    Keyword::ASC,
    Keyword::DESC,
    Keyword::NULLS,
    Keyword::FIRST,
    Keyword::LAST,
    Keyword::DISTINCT,
    Keyword::ALL,
    Keyword::ON,
    Keyword::USING,
    Keyword::JOIN,
    Keyword::LEFT,
    Keyword::RIGHT,
    Keyword::INNER,
    Keyword::OUTER,
    Keyword::FULL,
    Keyword::CROSS,
    Keyword::NATURAL,
    Keyword::LATERAL,
    Keyword::UNION,
    Keyword::EXCEPT,
    Keyword::INTERSECT,
    Keyword::WITH,
    Keyword::RECURSIVE,
    Keyword::VALUES,
    Keyword::CASE,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::END,
    Keyword::OVER,
    Keyword::PARTITION,
    Keyword::WINDOW,
    Keyword::ROWS,
    Keyword::RANGE,
    Keyword::PRECEDING,
    Keyword::FOLLOWING,
    Keyword::UNBOUNDED,
    Keyword::CURRENT,
    Keyword::ROW,
    Keyword::FILTER,
    Keyword::EXPLAIN,
    Keyword::ANALYZE,
    Keyword::VERBOSE,
    Keyword::SHOW,
    Keyword::TABLES,
    Keyword::COLUMNS,
    Keyword::DESCRIBE,
    Keyword::TRUE,
    Keyword::FALSE,
    Keyword::NULL,
    Keyword::INTERVAL,
    Keyword::TIMESTAMP,
    Keyword::DATE,
    Keyword::TIME,
    Keyword::ZONE,
    Keyword::CAST,
    Keyword::TRY_CAST,
    Keyword::EXTRACT,
    Keyword::FETCH,
    Keyword::NEXT,
    Keyword::ONLY,
    Keyword::TABLE,
    Keyword::SET,
    Keyword::BEGIN,
    Keyword::COMMIT,
    Keyword::ROLLBACK,
    Keyword::TRANSACTION,
];

/// Whether `t` combines the expressions on its sides into a deeper tree (binary, postfix and
/// keyword operators, casts, subscripts). Literals, names, commas, brackets and the
/// [`STRUCTURAL`] keywords do not.
fn deepens(t: &Token) -> bool {
    match t {
        Token::Word(w) => !STRUCTURAL.contains(&w.keyword),
        Token::EOF
        | Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Comma
        | Token::Whitespace(_)
        | Token::LParen
        | Token::RParen
        | Token::Period
        | Token::Colon
        | Token::SemiColon
        | Token::LBrace
        | Token::RBrace
        | Token::RBracket
        | Token::Placeholder(_) => false,
        _ => true,
    }
}

/// The first gate: the statement's size, and its expression depth estimated from tokens.
///
/// The estimate is the largest, over all positions, of the bracket nesting plus the operators
/// met so far at each enclosing level (a comma starts a new expression at its level). It is an
/// upper bound of the depth of the tree the parser builds, so a statement under the limit cannot
/// recurse deeper than that in any later step.
///
/// # Errors
/// `54000` when the text is longer than `sql.max_statement_bytes`, `54001` when the estimate
/// exceeds `sql.max_expression_depth`, `42601` when the text cannot be tokenized.
pub fn check_text(sql: &str, limits: &QueryLimits) -> Result<(), QueryError> {
    if sql.len() > limits.max_statement_bytes {
        return Err(QueryError::new(
            "54000",
            format!(
                "statement of {} bytes exceeds the limit of {} bytes (sql.max_statement_bytes)",
                sql.len(),
                limits.max_statement_bytes
            ),
        ));
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .map_err(|e| {
            QueryError::new(
                "42601",
                crate::limits::bounded(&format!("sql parser error: {e}")),
            )
        })?;
    let max = limits.max_expression_depth;
    // Operators per open bracket level; `sum` is their total, the depth of the current spot.
    let mut levels: Vec<usize> = vec![0];
    let mut sum = 0usize;
    // Relations the plan stacks on each other: every SELECT, JOIN and set operation, and every
    // comma between FROM items (a cross join). Commas do not reset these: a chain of 8,000
    // `UNION ALL`s or tables nests the plan 8,000 deep.
    let mut relations = 0usize;
    // Per bracket level: inside a FROM clause?
    let mut in_from: Vec<bool> = vec![false];
    for t in &tokens {
        if let Token::Word(w) = t {
            match w.keyword {
                Keyword::SELECT
                | Keyword::JOIN
                | Keyword::UNION
                | Keyword::EXCEPT
                | Keyword::INTERSECT
                | Keyword::MINUS
                | Keyword::PIVOT
                | Keyword::UNPIVOT
                | Keyword::MATCH_RECOGNIZE
                | Keyword::APPLY => relations += 1,
                _ => {}
            }
            if let Some(f) = in_from.last_mut() {
                match w.keyword {
                    Keyword::FROM => *f = true,
                    Keyword::WHERE
                    | Keyword::GROUP
                    | Keyword::HAVING
                    | Keyword::ORDER
                    | Keyword::LIMIT
                    | Keyword::OFFSET
                    | Keyword::WINDOW
                    | Keyword::QUALIFY
                    | Keyword::UNION
                    | Keyword::EXCEPT
                    | Keyword::INTERSECT
                    | Keyword::SELECT => *f = false,
                    _ => {}
                }
            }
        }
        match t {
            Token::Comma if in_from.last().copied().unwrap_or(false) => relations += 1,
            Token::LParen | Token::LBracket | Token::LBrace => in_from.push(false),
            Token::RParen | Token::RBracket | Token::RBrace if in_from.len() > 1 => {
                in_from.pop();
            }
            Token::SemiColon => {
                in_from.clear();
                in_from.push(false);
                relations = 0;
            }
            _ => {}
        }
        if relations > max {
            return Err(too_complex(format!(
                "statement too complex: more than {max} SELECTs, JOINs, set operations and FROM items stacked in one statement (sql.max_expression_depth)"
            )));
        }
        match t {
            Token::LParen | Token::LBracket | Token::LBrace => {
                if matches!(t, Token::LBracket) {
                    // `a[1]` nests the subscript under `a`.
                    sum += 1;
                    if let Some(top) = levels.last_mut() {
                        *top += 1;
                    }
                }
                levels.push(0);
            }
            Token::RParen | Token::RBracket | Token::RBrace if levels.len() > 1 => {
                sum -= levels.pop().unwrap_or(0);
            }
            Token::Comma => {
                if let Some(top) = levels.last_mut() {
                    sum -= *top;
                    *top = 0;
                }
            }
            Token::SemiColon => {
                levels.clear();
                levels.push(0);
                sum = 0;
            }
            t if deepens(t) => {
                sum += 1;
                if let Some(top) = levels.last_mut() {
                    *top += 1;
                }
            }
            _ => {}
        }
        let depth = sum + levels.len();
        if depth > max {
            return Err(too_complex(format!(
                "statement too complex: its expressions nest more than {max} levels deep (sql.max_expression_depth); split long chains of operators, e.g. use IN (…) instead of many ORs"
            )));
        }
    }
    Ok(())
}

/// Finds what a query must not contain: `SELECT … INTO` (creates a table) and data-modifying
/// statements inside it (`WITH x AS (INSERT …)`), at any depth.
struct Forbidden(Option<QueryError>);

impl AstVisitor for Forbidden {
    type Break = ();

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if select.into.is_some() {
            self.0 = Some(denied("SELECT … INTO (it creates a table)"));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) =
            query.body.as_ref()
        {
            self.0 = Some(denied("a data-modifying statement inside a query"));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if !matches!(statement, Statement::Query(_)) {
            self.0 = Some(denied(&statement_name(statement)));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn check_query(q: &Query) -> Result<(), QueryError> {
    let mut v = Forbidden(None);
    let _ = q.visit(&mut v);
    match v.0 {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The statement's leading keywords, for messages (`CREATE TABLE`, `COPY`, …), without any of
/// its text (a refused statement may carry data the user did not mean to echo).
pub fn statement_name(s: &Statement) -> String {
    const OBJECTS: &[&str] = &[
        "OR",
        "REPLACE",
        "TEMPORARY",
        "TEMP",
        "UNLOGGED",
        "EXTERNAL",
        "TABLE",
        "VIEW",
        "MATERIALIZED",
        "SCHEMA",
        "DATABASE",
        "INDEX",
        "FUNCTION",
        "CATALOG",
        "SEQUENCE",
        "TYPE",
        "EXTENSION",
        "ROLE",
        "USER",
        "TRIGGER",
        "PROCEDURE",
        "MACRO",
        "SECRET",
        "STAGE",
        "INTO",
        "FROM",
    ];
    let text = s.to_string();
    let mut words = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty());
    let Some(first) = words
        .next()
        .filter(|w| w.chars().all(|c| c.is_ascii_uppercase()))
    else {
        return "this statement".to_string();
    };
    let mut name = first.to_string();
    for w in words.take(3) {
        if !OBJECTS.contains(&w) {
            break;
        }
        name.push(' ');
        name.push_str(w);
    }
    name
}

/// The second gate: whether `stmt` may run on `surface`.
///
/// # Errors
/// `42501` for statements that would change something (DDL, DML, `COPY`, `SET` of a shared
/// option, `PREPARE`, …), `0A000` for other statements the read side does not run.
pub fn check_statement(stmt: &Statement, surface: Surface) -> Result<(), QueryError> {
    match stmt {
        Statement::Query(q) => check_query(q),
        Statement::Explain { statement, .. } => match statement.as_ref() {
            Statement::Query(q) => check_query(q),
            other => Err(denied(&format!("EXPLAIN of {}", statement_name(other)))),
        },
        Statement::ExplainTable { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowSchemas { .. } => Ok(()),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
            if surface == Surface::Postgres =>
        {
            Ok(())
        }
        // A cursor keeps its query running across statements, each FETCH with a fresh time
        // limit: it would outlive `sql.timeout`. The endpoint streams results instead.
        Statement::Declare { .. } | Statement::Fetch { .. } | Statement::Close { .. } => {
            Err(QueryError::new(
                "0A000",
                "cursors (DECLARE/FETCH/CLOSE) are not supported: results stream as they are produced; in psql unset FETCH_COUNT",
            ))
        }
        Statement::Set(set) if surface == Surface::Postgres => check_set(set),
        Statement::Set(_) => Err(denied("SET")),
        other => {
            let name = statement_name(other);
            let writes = [
                "CREATE",
                "DROP",
                "ALTER",
                "INSERT",
                "UPDATE",
                "DELETE",
                "MERGE",
                "COPY",
                "TRUNCATE",
                "PREPARE",
                "EXECUTE",
                "DEALLOCATE",
                "GRANT",
                "REVOKE",
                "SET",
                "RESET",
                "ATTACH",
                "DETACH",
                "LOAD",
                "INSTALL",
                "VACUUM",
                "ANALYZE",
                "COMMENT",
                "LOCK",
                "REPLACE",
                "UPSERT",
                "CALL",
                "DISCARD",
                "USE",
                "UNLOAD",
            ];
            if writes.iter().any(|w| name.starts_with(w)) {
                Err(denied(&name))
            } else {
                Err(unsupported(&name))
            }
        }
    }
}

fn check_set(set: &datafusion::sql::sqlparser::ast::Set) -> Result<(), QueryError> {
    use datafusion::sql::sqlparser::ast::Set;
    match set {
        Set::SingleAssignment {
            scope: None,
            hivevar: false,
            variable,
            ..
        } => {
            let var = variable.to_string().to_ascii_lowercase();
            if CLIENT_SETTINGS.contains(&var.as_str())
                || IGNORED_CLIENT_SETTINGS.contains(&var.as_str())
            {
                Ok(())
            } else {
                Err(QueryError::new(
                    "42501",
                    format!(
                        "permission denied to set parameter \"{var}\": only client settings ({}) may be set; query limits and engine options are fixed by the server's [sql] settings",
                        CLIENT_SETTINGS.join(", ")
                    ),
                ))
            }
        }
        // Only the connection's own time zone changes (datafusion-postgres keeps it per client).
        Set::SetTimeZone { local: false, .. } => Ok(()),
        _ => Err(denied("this form of SET")),
    }
}

/// Parses `sql` (after [`check_text`]) into exactly one statement that passes
/// [`check_statement`].
///
/// # Errors
/// The first gate's errors, `42601` for a syntax error or more than one statement, the second
/// gate's errors.
pub fn parse_one(
    ctx: &SessionContext,
    sql: &str,
    limits: &QueryLimits,
) -> Result<DfStatement, QueryError> {
    check_text(sql, limits)?;
    let state = ctx.state();
    // The session's own dialect, as `SessionContext::sql` would use.
    let dialect = state.config().options().sql_parser.dialect;
    let stmt = state.sql_to_statement(sql, &dialect).map_err(|e| {
        let mut q = classify(&e);
        if q.message.contains("only supports a single SQL statement") {
            q = QueryError::new(
                "42601",
                "one statement per request: remove the `;`-separated statements after the first",
            );
        }
        q
    })?;
    match &stmt {
        DfStatement::Statement(s) => check_statement(s, Surface::Api)?,
        DfStatement::CreateExternalTable(_) => return Err(denied("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => return Err(denied("COPY")),
        DfStatement::Reset(_) => return Err(denied("RESET")),
        DfStatement::Explain(e) => match e.statement.as_ref() {
            DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_)) => {
                check_statement(s, Surface::Api)?
            }
            _ => return Err(denied("EXPLAIN of a statement that is not a query")),
        },
    }
    Ok(stmt)
}

/// The third gate: plans `sql` in a per-request copy of `ctx`'s session (nothing a statement
/// does can reach the shared session), verifies the plan holds no DDL, DML or statement, and
/// binds `params` (`$1`, `$name`) as values, never as text.
///
/// # Errors
/// The first two gates' errors, planning errors with their SQLSTATE, `42501` when the plan
/// would change something.
pub async fn dataframe(
    ctx: &SessionContext,
    sql: &str,
    params: Option<ParamValues>,
    limits: &QueryLimits,
) -> Result<DataFrame, QueryError> {
    let stmt = parse_one(ctx, sql, limits)?;
    let state = SessionStateBuilder::new_from_existing(ctx.state()).build();
    let plan = state
        .statement_to_plan(stmt)
        .await
        .map_err(|e| classify(&e))?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| {
            QueryError::new(
                "42501",
                format!(
                    "permission denied: {}; the read side is read-only",
                    e.to_string().replace("Error during planning: ", "")
                ),
            )
        })?;
    let df = DataFrame::new(state, plan);
    match params {
        Some(p) => df.with_param_values(p).map_err(|e| classify(&e)),
        None => Ok(df),
    }
}

/// Runs `sql` through the three gates and collects the result within `limits`.
///
/// # Errors
/// Any gate's error, or the query's (time limit `57014`, result size `54000`, memory `53200`).
pub async fn query(
    ctx: &SessionContext,
    sql: &str,
    params: Option<ParamValues>,
    limits: &QueryLimits,
) -> Result<Vec<RecordBatch>, QueryError> {
    let df = dataframe(ctx, sql, params, limits).await?;
    crate::limits::collect(df, limits).await
}
