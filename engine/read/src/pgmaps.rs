//! Postgres has no map type: label maps (`labels`, `annotations`, `attributes`) leave the
//! endpoint as JSON text, while SQL inside the query still uses them as maps
//! (`labels['host']`). A query hook plans each SELECT once and projects map columns through
//! `map_to_json` at the very end.

use aiops_schemas::arrow_array::builder::StringBuilder;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::{Array, ArrayRef};
use aiops_schemas::arrow_schema::DataType;
use async_trait::async_trait;
use datafusion::common::{Column, ParamValues};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarUDF, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire;
use pgwire::api::ClientInfo;
use pgwire::api::portal::Format;
use pgwire::api::results::Response;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::types::format::FormatOptions;
use std::sync::Arc;

/// `map_to_json(map) → text`: `{"k":"v",…}` in the map's order; NULL for a NULL map.
pub fn map_to_json_udf() -> ScalarUDF {
    create_udf(
        "map_to_json",
        vec![aiops_schemas::schema::labels_type()],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let Some(a) = arrays.first() else {
                return Err(DataFusionError::Plan("map_to_json takes one map".into()));
            };
            Ok(ColumnarValue::Array(to_json(a)?))
        }),
    )
}

fn to_json(a: &ArrayRef) -> Result<ArrayRef> {
    let m = a.as_map_opt().ok_or_else(|| {
        DataFusionError::Plan(format!("map_to_json needs a map, got {}", a.data_type()))
    })?;
    let keys = m.keys().as_string_opt::<i32>();
    let values = m.values().as_string_opt::<i32>();
    let (Some(keys), Some(values)) = (keys, values) else {
        return Err(DataFusionError::Plan(
            "map_to_json needs a map of strings".into(),
        ));
    };
    let offsets = m.value_offsets();
    let mut b = StringBuilder::new();
    let mut s = String::new();
    for i in 0..m.len() {
        if m.is_null(i) {
            b.append_null();
            continue;
        }
        s.clear();
        s.push('{');
        let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
        for j in lo..hi {
            if j > lo {
                s.push(',');
            }
            s.push_str(&serde_json::Value::from(keys.value(j)).to_string());
            s.push(':');
            if values.is_null(j) {
                s.push_str("null");
            } else {
                s.push_str(&serde_json::Value::from(values.value(j)).to_string());
            }
        }
        s.push('}');
        b.append_value(&s);
    }
    Ok(Arc::new(b.finish()))
}

/// `plan` with its map columns turned into JSON text (unchanged when it has none).
pub fn maps_as_json(plan: LogicalPlan) -> Result<LogicalPlan> {
    let schema = plan.schema().clone();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Map(..)))
    {
        return Ok(plan);
    }
    let udf = Arc::new(map_to_json_udf());
    let exprs: Vec<Expr> = schema
        .iter()
        .map(|(q, f)| {
            let c = Expr::Column(Column::new(q.cloned(), f.name()));
            if matches!(f.data_type(), DataType::Map(..)) {
                udf.call(vec![c]).alias_qualified(q.cloned(), f.name())
            } else {
                c
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

/// Plans SELECTs with map columns as JSON (simple and extended protocol).
#[derive(Debug)]
pub struct MapsAsJsonHook;

fn api(e: DataFusionError) -> PgWireError {
    PgWireError::ApiError(Box::new(e))
}

/// The schemas on the search path: aiops serves one schema, `public`.
const SEARCH_PATH: &str = "public";

/// datafusion-pg-catalog rewrites the search-path subquery of Grafana's table list (it has no
/// `current_setting()`) to `IN ('')`, so every table would be listed as `public.<table>` and
/// Grafana's query builder would write schema-qualified names. This puts the search path back:
/// `quote_ident(table_schema) IN ('')` becomes `… IN ('public')`. Nothing else has that shape.
fn restore_search_path(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Value, visit_expressions_mut};
    let _ = visit_expressions_mut(stmt, |e| {
        if let SqlExpr::InList {
            expr,
            list,
            negated: false,
        } = e
            && list.len() == 1
            && list[0].to_string() == "''"
            && expr
                .to_string()
                .eq_ignore_ascii_case("quote_ident(table_schema)")
        {
            list[0] = SqlExpr::value(Value::SingleQuotedString(SEARCH_PATH.to_string()));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

async fn plan_query(stmt: &Statement, ctx: &SessionContext) -> PgWireResult<LogicalPlan> {
    let state = ctx.state();
    let mut stmt = stmt.clone();
    restore_search_path(&mut stmt);
    let plan = state
        .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
        .await
        .map_err(api)?;
    maps_as_json(plan).map_err(api)
}

#[async_trait]
impl QueryHook for MapsAsJsonHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if !matches!(statement, Statement::Query(_)) {
            return None;
        }
        let run = async {
            let plan = plan_query(statement, ctx).await?;
            let df = ctx.execute_logical_plan(plan).await.map_err(api)?;
            let opts = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
            let resp = encode_dataframe(df, &Format::UnifiedText, Some(opts)).await?;
            Ok(Response::Query(resp))
        };
        Some(run.await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        if !matches!(statement, Statement::Query(_)) {
            return None;
        }
        Some(plan_query(statement, ctx).await)
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        None
    }
}
