//! Parsing and checking one pipeline file: one `INSERT INTO <output> SELECT …` statement over the
//! input streams, planned by DataFusion. Every problem is reported with its line and column.

use crate::catalog;
use crate::error::PipelineError;
use crate::settings::{self, PipelineSettings};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectNamePart, Spanned, Statement, TableObject};
use std::path::{Path, PathBuf};

/// A pipeline that parsed and planned.
#[derive(Debug, Clone)]
pub struct CheckedPipeline {
    /// Pipeline name: the file stem.
    pub name: String,
    /// Where its rows go: a derived stream name, or `alerts`.
    pub output: String,
    /// The input streams it reads.
    pub inputs: Vec<String>,
    /// The schema of the rows it produces.
    pub output_schema: SchemaRef,
    /// The logical plan of its query.
    pub plan: LogicalPlan,
    /// The settings of its header comment (`-- @for: 3`, …).
    pub settings: PipelineSettings,
    /// Its `anomaly()` / `time_until()` columns.
    pub detect: Vec<crate::detect::DetectSpec>,
}

/// Output names a pipeline may not write to: the raw input streams are written by ingest only.
const READ_ONLY: [&str; 3] = ["metrics", "logs", "events"];

pub(crate) fn err(
    file: &Path,
    line: u64,
    column: u64,
    message: impl Into<String>,
) -> PipelineError {
    PipelineError {
        file: file.to_path_buf(),
        line,
        column,
        message: message.into(),
    }
}

/// `… at Line: 3, Column: 7` in sqlparser's messages.
fn parser_position(msg: &str) -> Option<(u64, u64)> {
    let at = msg.rfind("Line: ")?;
    let rest = &msg[at + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, col.parse().ok()?))
}

/// Line and column (1-based) of the first call `name(` in `source`, for errors of aiops'
/// functions, which DataFusion reports without a span.
fn call_position(source: &str, name: &str) -> Option<(u64, u64)> {
    let needle = format!("{name}(");
    source.lines().enumerate().find_map(|(i, line)| {
        let lower = line.to_ascii_lowercase();
        let col = lower.find(&needle)?;
        let code = lower.split("--").next().unwrap_or("");
        (col < code.len()).then_some((i as u64 + 1, col as u64 + 1))
    })
}

/// Turns a DataFusion error into a positioned one: its diagnostic span if it has one, the
/// parser's position if it names one, the call of an aiops function it names, else `fallback`.
fn from_datafusion(
    file: &Path,
    source: &str,
    e: &DataFusionError,
    fallback: (u64, u64),
) -> PipelineError {
    if let Some(d) = e.diagnostic()
        && let Some(span) = d.span
        && span.start.line > 0
    {
        return err(file, span.start.line, span.start.column, d.message.clone());
    }
    let msg = e.strip_backtrace();
    let msg = msg
        .trim_start_matches("Error during planning: ")
        .to_string();
    let (line, column) = parser_position(&msg)
        .or_else(|| {
            catalog::FUNCTIONS
                .iter()
                .find(|f| msg.starts_with(&format!("{f}(")))
                .and_then(|f| call_position(source, f))
        })
        .unwrap_or(fallback);
    let msg = match msg.find(" at Line: ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let msg = msg
        .trim_start_matches("SQL error: ")
        .trim_start_matches("ParserError(\"")
        .trim_end_matches("\")")
        .to_string();
    err(file, line, column, msg)
}

/// Checks a pipeline read from `file`, with the reference tables of `tables/` beside it and the
/// outputs of the pipelines beside it readable as input streams (as the engine loads them).
///
/// # Errors
/// [`PipelineError`] with the file, position and reason.
pub async fn check_file(file: &Path) -> Result<CheckedPipeline, PipelineError> {
    let source = std::fs::read_to_string(file)
        .map_err(|e| err(file, 0, 0, format!("cannot read pipeline file: {e}")))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let tables = match dir.join("tables") {
        t if t.is_dir() => {
            crate::reference::load_dir(&t).map_err(|e| err(file, 0, 0, e.to_string()))?
        }
        _ => Vec::new(),
    };
    let session = |streams: &[(String, SchemaRef)]| -> Result<SessionContext, PipelineError> {
        let internal = |e: datafusion::common::DataFusionError| {
            err(
                file,
                0,
                0,
                format!("internal error: {}", e.strip_backtrace()),
            )
        };
        let ctx = catalog::session().map_err(internal)?;
        crate::reference::register(&ctx, &tables)
            .map_err(|e| err(file, 0, 0, e.strip_backtrace()))?;
        for (name, schema) in streams {
            if !ctx.table_exist(name.as_str()).map_err(internal)? {
                let t = datafusion::catalog::empty::EmptyTable::new(schema.clone());
                ctx.register_table(name.as_str(), std::sync::Arc::new(t))
                    .map_err(internal)?;
            }
        }
        Ok(ctx)
    };
    // Outputs of the other pipelines beside this one, in as many passes as chains are long.
    let mut others: Vec<(PathBuf, String)> = pipeline_files(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.file_name() != file.file_name())
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|s| (p, s)))
        .collect();
    let mut streams: Vec<(String, SchemaRef)> = Vec::new();
    loop {
        let before = streams.len();
        let mut rest = Vec::new();
        for (p, s) in others {
            match check_in(&session(&streams)?, &p, &s).await {
                Ok(c) if c.output != "alerts" => {
                    streams.push((c.output.clone(), derived_schema(&c.output_schema)));
                }
                Ok(_) => {}
                Err(_) => rest.push((p, s)),
            }
        }
        others = rest;
        if others.is_empty() || streams.len() == before {
            break;
        }
    }
    check_in(&session(&streams)?, file, &source).await
}

/// The schema of a pipeline's derived events as another pipeline reads them: `event_id`,
/// `revision`, then the SELECT list.
pub fn derived_schema(select: &SchemaRef) -> SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let mut fields = vec![
        std::sync::Arc::new(Field::new("event_id", DataType::Utf8, false)),
        std::sync::Arc::new(Field::new("revision", DataType::UInt32, false)),
    ];
    fields.extend(select.fields().iter().cloned());
    std::sync::Arc::new(Schema::new(fields))
}

/// Checks pipeline `source` (named by `file` in errors): one `INSERT INTO <output> SELECT …`
/// statement that plans against the input streams.
///
/// # Errors
/// [`PipelineError`] with the position and reason of the first problem.
pub async fn check(file: &Path, source: &str) -> Result<CheckedPipeline, PipelineError> {
    let ctx = catalog::session().map_err(|e| err(file, 0, 0, format!("internal error: {e}")))?;
    check_in(&ctx, file, source).await
}

/// Checks pipeline `source` against the tables and functions of `ctx` (the runtime's session,
/// whose input tables deliver micro-batches, or one with reference tables registered).
///
/// # Errors
/// [`PipelineError`] with the position and reason of the first problem.
pub async fn check_in(
    ctx: &SessionContext,
    file: &Path,
    source: &str,
) -> Result<CheckedPipeline, PipelineError> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("pipeline")
        .to_string();
    let settings = settings::parse(file, source)?;
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let stmt = state
        .sql_to_statement(source, &dialect)
        .map_err(|e| from_datafusion(file, source, &e, (1, 1)))?;
    let DfStatement::Statement(stmt) = stmt else {
        return Err(err(
            file,
            1,
            1,
            "a pipeline is one `INSERT INTO <output> SELECT …` statement",
        ));
    };
    let stmt_start = {
        let s = stmt.span().start;
        (s.line.max(1), s.column.max(1))
    };
    let Statement::Insert(insert) = *stmt else {
        return Err(err(
            file,
            stmt_start.0,
            stmt_start.1,
            "a pipeline is one `INSERT INTO <output> SELECT …` statement",
        ));
    };
    let TableObject::TableName(target) = &insert.table else {
        return Err(err(
            file,
            stmt_start.0,
            stmt_start.1,
            "INSERT INTO needs an output name",
        ));
    };
    let at = target.span().start;
    let (tl, tc) = (at.line.max(1), at.column.max(1));
    let output = match target.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => id.value.clone(),
        _ => {
            return Err(err(
                file,
                tl,
                tc,
                format!("output {target} must be a plain name such as node_cpu_1m"),
            ));
        }
    };
    if READ_ONLY.contains(&output.as_str()) {
        return Err(err(
            file,
            tl,
            tc,
            format!(
                "cannot write to the input stream {output:?}; name a derived stream, or `alerts`"
            ),
        ));
    }
    if let Some(c) = insert.columns.first() {
        let s = c.span().start;
        return Err(err(
            file,
            s.line.max(1),
            s.column.max(1),
            "name output columns with AS in the SELECT, not in a column list",
        ));
    }
    let Some(query) = insert.source else {
        return Err(err(
            file,
            stmt_start.0,
            stmt_start.1,
            "INSERT INTO needs a SELECT",
        ));
    };
    let query_start = {
        let s = query.span().start;
        (s.line.max(1), s.column.max(1))
    };
    let query_stmt = DfStatement::Statement(Box::new(Statement::Query(query)));
    let inputs: Vec<String> = state
        .resolve_table_references(&query_stmt)
        .map_err(|e| from_datafusion(file, source, &e, query_start))?
        .iter()
        .map(|t| t.table().to_string())
        .collect();
    let plan = state
        .statement_to_plan(query_stmt)
        .await
        .map_err(|e| from_datafusion(file, source, &e, query_start))?;
    let output_schema = plan.schema().inner().clone();
    if output_schema.fields().is_empty() {
        return Err(err(
            file,
            query_start.0,
            query_start.1,
            "the SELECT produces no columns",
        ));
    }
    let window = plan_window(&plan);
    if output == "alerts"
        && let Some(w @ (PlanWindow::Hop | PlanWindow::Session)) = &window
    {
        let f = if matches!(w, PlanWindow::Hop) {
            "hop"
        } else {
            "session"
        };
        let (line, column) = call_position(source, f).unwrap_or(query_start);
        return Err(err(
            file,
            line,
            column,
            format!(
                "an alert rule judges its condition once per tumbling window: use tumble(time, INTERVAL …), not {f}"
            ),
        ));
    }
    let has_window = window.is_some();
    let size = match window {
        Some(PlanWindow::Tumble { size_ms }) => Some(size_ms),
        _ => None,
    };
    settings.validate(file, &output, &output_schema, size)?;
    let detect = crate::detect::specs(&plan).map_err(|e| {
        let (line, column) = call_position(source, e.function).unwrap_or(query_start);
        err(file, line, column, e.to_string())
    })?;
    if !detect.is_empty() && !has_window {
        return Err(err(
            file,
            query_start.0,
            query_start.1,
            "anomaly() and time_until() judge one value per window: GROUP BY tumble(time, INTERVAL …)",
        ));
    }
    if settings.partition_units() > 1 {
        let (line, column) = settings.position("partitions").unwrap_or(query_start);
        let refuse = |why: &str| Err(err(file, line, column, format!("@partitions: {why}")));
        let kind_input = inputs.len() == 1
            && aiops_schemas::Kind::ALL
                .iter()
                .any(|k| k.as_str() == inputs[0]);
        if !kind_input {
            return refuse(
                "a partitioned pipeline reads one input kind (metrics, logs, events or alerts), whose log partitions its units share; this one reads another pipeline's output",
            );
        }
        if output == "alerts" {
            return refuse(
                "an alert rule runs as one unit; partition the aggregation that feeds it and write the rule over its output",
            );
        }
        if !detect.is_empty() {
            return refuse(
                "anomaly() and time_until() follow each series' windows in order on one unit; partition the aggregation and score its output in another pipeline",
            );
        }
        if !matches!(
            plan_window(&plan),
            Some(PlanWindow::Tumble { .. } | PlanWindow::Hop)
        ) {
            return refuse(
                "partial states are merged per tumble() or hop() window; session windows and pipelines without a window run as one unit",
            );
        }
    }
    Ok(CheckedPipeline {
        name,
        output,
        inputs,
        output_schema,
        plan,
        settings,
        detect,
    })
}

/// The event-time window a plan groups by, as far as the logical plan shows it.
enum PlanWindow {
    /// `tumble(time, INTERVAL …)` with a constant size.
    Tumble { size_ms: i64 },
    /// `hop(…)`.
    Hop,
    /// `session(…)`.
    Session,
}

/// The window among the GROUP BY expressions of the plan's aggregate, if there is one whose
/// size is a constant; the runtime's compile step reports anything else.
fn plan_window(plan: &LogicalPlan) -> Option<PlanWindow> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Expr;
    let mut found = None;
    // The visitor returns no error, so neither does the walk.
    let _ = plan.apply(|node| {
        let LogicalPlan::Aggregate(agg) = node else {
            return Ok(TreeNodeRecursion::Continue);
        };
        for e in &agg.group_expr {
            let Expr::ScalarFunction(f) = e.clone().unalias() else {
                continue;
            };
            match (f.func.name(), f.args.as_slice()) {
                ("hop", _) => found = Some(PlanWindow::Hop),
                ("session", _) => found = Some(PlanWindow::Session),
                ("tumble", [_, Expr::Literal(v, _)]) => {
                    if let Ok(size_ms) = crate::window::interval_ms(v) {
                        found = Some(PlanWindow::Tumble { size_ms });
                    }
                }
                _ => {}
            }
        }
        Ok(TreeNodeRecursion::Stop)
    });
    found
}

/// The `.sql` files of a directory, sorted.
///
/// # Errors
/// If the directory cannot be read.
pub fn pipeline_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    v.sort();
    Ok(v)
}
