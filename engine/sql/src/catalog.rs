//! The DataFusion session pipelines are planned in: one table per input kind (empty: planning
//! needs only schemas) and aiops' functions.

use crate::window;
use aiops_schemas::{Kind, schema_for};
use datafusion::catalog::empty::EmptyTable;
use datafusion::common::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;

/// The functions aiops adds to SQL.
pub const FUNCTIONS: [&str; 1] = ["tumble"];

/// Names a pipeline may read from.
pub fn input_names() -> Vec<&'static str> {
    Kind::ALL.iter().map(|k| k.as_str()).collect()
}

/// A session with the input streams and functions registered, collecting source spans so plan
/// errors can name a line and column.
///
/// # Errors
/// Only if registration fails (a bug).
pub fn session() -> Result<SessionContext> {
    let mut config = SessionConfig::new();
    config.options_mut().sql_parser.collect_spans = true;
    let ctx = SessionContext::new_with_config(config);
    for kind in Kind::ALL {
        ctx.register_table(kind.as_str(), Arc::new(EmptyTable::new(schema_for(kind))))?;
    }
    ctx.register_udf(window::tumble());
    Ok(ctx)
}
