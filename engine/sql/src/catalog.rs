//! The DataFusion session pipelines are planned in: one table per input kind and aiops'
//! functions. Checking plans against empty tables (only schemas matter); the streaming runtime
//! plans against [`crate::runtime::slot`] tables that hand over one micro-batch at a time.

use crate::{counter, window};
use aiops_schemas::{Kind, schema_for};
use datafusion::catalog::TableProvider;
use datafusion::catalog::empty::EmptyTable;
use datafusion::common::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;

/// The functions aiops adds to SQL.
pub const FUNCTIONS: [&str; 7] = [
    "tumble",
    "hop",
    "session",
    "increase",
    "rate",
    "anomaly",
    "time_until",
];

/// Names a pipeline may read from.
pub fn input_names() -> Vec<&'static str> {
    Kind::ALL.iter().map(|k| k.as_str()).collect()
}

/// A session with empty input tables and aiops' functions, for checking pipelines.
///
/// # Errors
/// Only if registration fails (a bug).
pub fn session() -> Result<SessionContext> {
    session_with_inputs(|kind| Arc::new(EmptyTable::new(schema_for(kind))))
}

/// A session whose input tables come from `table` (one per kind), with aiops' functions, one
/// target partition (a pipeline runs on one core; parallelism is across pipelines and
/// partitions), and source spans collected so plan errors can name a line and column.
///
/// # Errors
/// Only if registration fails (a bug).
pub fn session_with_inputs(
    mut table: impl FnMut(Kind) -> Arc<dyn TableProvider>,
) -> Result<SessionContext> {
    let mut config = SessionConfig::new().with_target_partitions(1);
    config.options_mut().sql_parser.collect_spans = true;
    // Plans are executed again for every micro-batch; dynamic filters would carry one batch's
    // values into the next.
    let opt = &mut config.options_mut().optimizer;
    opt.enable_dynamic_filter_pushdown = false;
    opt.enable_join_dynamic_filter_pushdown = false;
    opt.enable_topk_dynamic_filter_pushdown = false;
    opt.enable_aggregate_dynamic_filter_pushdown = false;
    let ctx = SessionContext::new_with_config(config);
    for kind in Kind::ALL {
        ctx.register_table(kind.as_str(), table(kind))?;
    }
    ctx.register_udf(window::tumble());
    ctx.register_udf(window::hop());
    ctx.register_udf(window::session());
    ctx.register_udaf(counter::increase());
    ctx.register_udaf(counter::rate());
    ctx.register_udf(crate::detect::anomaly_udf());
    ctx.register_udf(crate::detect::time_until_udf());
    Ok(ctx)
}
