//! Turns a checked pipeline into the pieces the streaming runtime executes: a physical plan for
//! everything below the GROUP BY (run on each micro-batch), the group keys, the window, the
//! aggregate functions (whose accumulators hold the state between micro-batches), and a physical
//! plan for everything above it (HAVING and the SELECT list, run on each window's result).
//! All of it is planned once per pipeline, not per window.

use crate::error::PipelineError;
use crate::pipeline::{CheckedPipeline, err};
use crate::runtime::slot::Slot;
use crate::window::interval_ms;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DataFusionError};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, Projection};
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::streaming::StreamingTableExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use datafusion::prelude::SessionContext;
use std::path::Path;
use std::sync::Arc;

/// Prefix of the columns the runtime adds to the SELECT list to learn each output row's group.
pub(crate) const HIDDEN: &str = "__aiops_g";

/// How rows are assigned to windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of `size_ms`.
    Tumble {
        /// Window length.
        size_ms: i64,
    },
    /// Windows of `size_ms` starting every `slide_ms`.
    Hop {
        /// Distance between window starts.
        slide_ms: i64,
        /// Window length (a multiple of the slide).
        size_ms: i64,
    },
    /// Per group key, sessions of events less than `gap_ms` apart, each spanning
    /// [first event, last event + gap).
    Session {
        /// Largest distance between two events of one session (exclusive).
        gap_ms: i64,
    },
}

impl WindowKind {
    /// Window length in ms. Sessions have no fixed length: for them this is the gap, the length
    /// of the shortest session (one event), so a range `[start, start + size)` is a lower bound.
    pub fn size_ms(&self) -> i64 {
        match *self {
            WindowKind::Tumble { size_ms } | WindowKind::Hop { size_ms, .. } => size_ms,
            WindowKind::Session { gap_ms } => gap_ms,
        }
    }
}

/// The executable form of one pipeline.
pub(crate) struct Compiled {
    /// The input stream read (`metrics`, …).
    pub input: String,
    /// Slot the input micro-batch is put into.
    pub input_slot: Slot,
    /// Plan of the rows that reach the GROUP BY.
    pub pre: Arc<dyn ExecutionPlan>,
    /// Position of the window among the GROUP BY expressions.
    pub window_pos: usize,
    /// The event-time argument of the window function.
    pub window_time: Arc<dyn PhysicalExpr>,
    /// Window assignment.
    pub window: WindowKind,
    /// The other GROUP BY expressions, in order.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Schema of the key columns (without the window).
    pub key_schema: SchemaRef,
    /// Aggregate functions.
    pub aggs: Vec<Arc<AggregateFunctionExpr>>,
    /// FILTER (WHERE …) of each aggregate.
    pub agg_filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// Schema of a window's result: GROUP BY columns then aggregate values.
    pub agg_schema: SchemaRef,
    /// Slot a window's result is put into.
    pub post_slot: Slot,
    /// Plan of HAVING and the SELECT list over a window's result, with the hidden group columns
    /// at the end.
    pub post: Arc<dyn ExecutionPlan>,
    /// Number of hidden columns at the end of `post`'s output (the GROUP BY columns).
    pub hidden: usize,
    /// Runs the plans.
    pub task: Arc<TaskContext>,
    /// `pre` holds state between executions (a join's build side) and is reset before each.
    pub reset: bool,
}

fn unsupported(file: &Path, what: &str) -> PipelineError {
    err(
        file,
        1,
        1,
        format!("{what} is not supported in a streaming pipeline"),
    )
}

/// Adds the GROUP BY columns, as hidden columns, at the end of the top projection.
fn with_hidden_groups(
    file: &Path,
    plan: &LogicalPlan,
) -> Result<(LogicalPlan, usize), PipelineError> {
    let LogicalPlan::Projection(top) = plan else {
        return Err(unsupported(
            file,
            &format!("a query ending in {}", plan.display()),
        ));
    };
    let mut below = top.input.as_ref();
    if let LogicalPlan::Filter(f) = below {
        below = f.input.as_ref();
    }
    let LogicalPlan::Aggregate(agg) = below else {
        return Err(err(
            file,
            1,
            1,
            "a streaming pipeline aggregates by an event-time window: GROUP BY tumble(time, INTERVAL '1 minute'), …",
        ));
    };
    let n = agg.group_expr.len();
    let mut exprs = top.expr.clone();
    for i in 0..n {
        let (q, f) = agg.schema.qualified_field(i);
        exprs.push(Expr::Column(Column::new(q.cloned(), f.name())).alias(format!("{HIDDEN}{i}")));
    }
    let p = Projection::try_new(exprs, top.input.clone())
        .map_err(|e| err(file, 1, 1, format!("internal planning error: {e}")))?;
    Ok((LogicalPlan::Projection(p), n))
}

/// Finds the aggregate of a physical plan: the outermost `AggregateExec` and the innermost one
/// below it (the same node in single mode; the partial one under a final one otherwise).
fn find_aggregates(
    plan: &Arc<dyn ExecutionPlan>,
) -> Option<(Arc<dyn ExecutionPlan>, Arc<dyn ExecutionPlan>)> {
    fn first(p: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
        if p.downcast_ref::<AggregateExec>().is_some() {
            return Some(p.clone());
        }
        p.children().into_iter().find_map(first)
    }
    let outer = first(plan)?;
    let mut inner = outer.clone();
    loop {
        let below = inner.children().into_iter().find_map(first);
        match below {
            Some(b) => inner = b,
            None => break,
        }
    }
    Some((outer, inner))
}

/// The window function among the GROUP BY expressions: its position, time argument and kind.
fn find_window(
    file: &Path,
    exprs: &[(Arc<dyn PhysicalExpr>, String)],
) -> Result<(usize, Arc<dyn PhysicalExpr>, WindowKind), PipelineError> {
    let mut found = None;
    for (i, (e, _)) in exprs.iter().enumerate() {
        let Some(f) = e.downcast_ref::<ScalarFunctionExpr>() else {
            continue;
        };
        let name = f.name();
        if !matches!(name, "tumble" | "hop" | "session") {
            continue;
        }
        if found.is_some() {
            return Err(err(
                file,
                1,
                1,
                "GROUP BY holds more than one window; use one",
            ));
        }
        let mut sizes = Vec::new();
        for a in &f.args()[1..] {
            let Some(lit) = a.downcast_ref::<Literal>() else {
                return Err(err(
                    file,
                    1,
                    1,
                    format!("{name}: window sizes must be constant intervals"),
                ));
            };
            sizes.push(
                interval_ms(lit.value())
                    .map_err(|e| err(file, 1, 1, format!("{name}: {}", e.strip_backtrace())))?,
            );
        }
        let kind = match (name, sizes.as_slice()) {
            ("tumble", [size]) => WindowKind::Tumble { size_ms: *size },
            ("session", [gap]) => WindowKind::Session { gap_ms: *gap },
            ("hop", [slide, size]) => {
                if size % slide != 0 {
                    return Err(err(
                        file,
                        1,
                        1,
                        format!(
                            "hop: the size ({size} ms) must be a multiple of the slide ({slide} ms)"
                        ),
                    ));
                }
                WindowKind::Hop {
                    slide_ms: *slide,
                    size_ms: *size,
                }
            }
            _ => {
                return Err(err(
                    file,
                    1,
                    1,
                    format!("{name}: wrong number of arguments"),
                ));
            }
        };
        found = Some((i, f.args()[0].clone(), kind));
    }
    found.ok_or_else(|| {
        err(
            file,
            1,
            1,
            "a streaming pipeline groups by an event-time window: GROUP BY tumble(time, INTERVAL '1 minute'), hop(time, INTERVAL slide, INTERVAL size) or session(time, INTERVAL gap)",
        )
    })
}

/// Whether a plan holds a join (whose build side is kept between executions).
fn has_join(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.name().contains("Join") || plan.children().into_iter().any(has_join)
}

fn internal(file: &Path, e: DataFusionError) -> PipelineError {
    err(
        file,
        1,
        1,
        format!("internal planning error: {}", e.strip_backtrace()),
    )
}

/// Compiles `checked` (planned in `ctx`, whose input tables are `slots`) for streaming.
pub(crate) async fn compile(
    ctx: &SessionContext,
    file: &Path,
    checked: &CheckedPipeline,
    slots: &[(String, Slot)],
) -> Result<Compiled, PipelineError> {
    let streams: Vec<&String> = checked
        .inputs
        .iter()
        .filter(|i| slots.iter().any(|(n, _)| n == *i))
        .collect();
    let [input] = streams.as_slice() else {
        return Err(err(
            file,
            1,
            1,
            format!(
                "a streaming pipeline reads exactly one input stream; this one reads {streams:?}"
            ),
        ));
    };
    let input_slot = slots
        .iter()
        .find(|(n, _)| n == *input)
        .map(|(_, s)| s.clone())
        .ok_or_else(|| err(file, 1, 1, "internal error: no slot for the input"))?;
    let (plan, hidden) = with_hidden_groups(file, &checked.plan)?;
    let state = ctx.state();
    let physical = state
        .create_physical_plan(&plan)
        .await
        .map_err(|e| internal(file, e))?;
    let (outer, inner) = find_aggregates(&physical)
        .ok_or_else(|| err(file, 1, 1, "a streaming pipeline needs a GROUP BY"))?;
    let inner_agg = inner
        .downcast_ref::<AggregateExec>()
        .ok_or_else(|| err(file, 1, 1, "internal error: aggregate"))?;
    if inner_agg.group_expr().has_grouping_set() {
        return Err(unsupported(file, "GROUPING SETS, CUBE or ROLLUP"));
    }
    let group_exprs = inner_agg.group_expr().expr();
    let (window_pos, window_time, window) = find_window(file, group_exprs)?;
    let keys: Vec<Arc<dyn PhysicalExpr>> = group_exprs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != window_pos)
        .map(|(_, (e, _))| e.clone())
        .collect();
    let pre = inner_agg.input().clone();
    let pre_schema = pre.schema();
    let mut key_fields = Vec::new();
    for (i, (e, name)) in group_exprs.iter().enumerate() {
        if i == window_pos {
            continue;
        }
        let f = e.return_field(&pre_schema).map_err(|e| internal(file, e))?;
        key_fields.push(f.as_ref().clone().with_name(name).with_nullable(true));
    }
    let key_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(key_fields));
    let agg_schema = outer.schema();
    let post_slot = Slot::new(agg_schema.clone());
    let slot_exec: Arc<dyn ExecutionPlan> = Arc::new(
        StreamingTableExec::try_new(
            agg_schema.clone(),
            vec![Arc::new(post_slot.clone())],
            None,
            Vec::new(),
            false,
            None,
        )
        .map_err(|e| internal(file, e))?,
    );
    let outer_ptr = Arc::as_ptr(&outer) as *const ();
    let post = physical
        .transform_down(|node| {
            if Arc::as_ptr(&node) as *const () == outer_ptr {
                Ok(Transformed::new(
                    slot_exec.clone(),
                    true,
                    TreeNodeRecursion::Jump,
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map_err(|e| internal(file, e))?
        .data;
    Ok(Compiled {
        input: (*input).clone(),
        input_slot,
        pre,
        window_pos,
        window_time,
        window,
        keys,
        key_schema,
        aggs: inner_agg.aggr_expr().to_vec(),
        agg_filters: inner_agg.filter_expr().to_vec(),
        agg_schema,
        post_slot,
        post,
        hidden,
        reset: has_join(&inner_agg.input().clone()),
        task: state.task_ctx(),
    })
}
