//! The DataFusion session the read side queries: the four input kinds and every pipeline's
//! output stream (archive + log), the engine's live state tables, `information_schema` and an
//! emulated `pg_catalog` (for psql and Grafana's metadata queries).

use crate::archive::Archive;
use crate::directory::StreamDirectory;
use crate::limits::QueryLimits;
use crate::state::{StateSource, StateTable};
use crate::table::StreamTable;
use aiops_log::EventLog;
use aiops_schemas::{Kind, schema_for};
use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use std::sync::Arc;

/// Everything the read-side tables come from.
#[derive(Clone)]
pub struct ReadSources {
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// The Parquet archive, when enabled.
    pub archive: Option<Arc<Archive>>,
    /// Derived streams seen in the log.
    pub directory: Arc<StreamDirectory>,
    /// Live engine state, when the engine runs in this process.
    pub state: Option<Arc<dyn StateSource>>,
}

impl std::fmt::Debug for ReadSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadSources")
            .field("archive", &self.archive.is_some())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The `public` schema: resolved on every lookup, so pipelines deployed later appear without a
/// restart.
#[derive(Debug)]
struct ReadSchema {
    src: ReadSources,
}

impl ReadSchema {
    fn state_names(&self) -> Vec<String> {
        self.src
            .state
            .as_ref()
            .map(|s| s.tables().iter().map(|t| t.name.to_string()).collect())
            .unwrap_or_default()
    }

    fn resolve(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        if let Ok(kind) = name.parse::<Kind>() {
            return Some(Arc::new(StreamTable::new(
                kind.as_str().to_string(),
                schema_for(kind),
                self.src.log.clone(),
                self.src.archive.clone(),
            )));
        }
        if let Some(state) = &self.src.state
            && let Some(def) = state.tables().into_iter().find(|t| t.name == name)
        {
            return Some(Arc::new(StateTable::new(def, state.clone())));
        }
        let schema = self.src.directory.schema(name)?;
        Some(Arc::new(StreamTable::new(
            format!("derived.{name}"),
            schema,
            self.src.log.clone(),
            self.src.archive.clone(),
        )))
    }
}

#[async_trait]
impl SchemaProvider for ReadSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Kind::ALL.iter().map(|k| k.as_str().to_string()).collect();
        names.extend(self.state_names());
        for d in self.src.directory.names() {
            if !names.contains(&d) {
                names.push(d);
            }
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.resolve(name) {
            return Ok(Some(t));
        }
        // A stream that appeared since the last refresh.
        self.src
            .directory
            .refresh(&self.src.log, self.src.archive.as_ref())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(self.resolve(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|n| n == name)
    }
}

/// A session over `src` within `limits` (memory pool, information_schema, pg_catalog).
///
/// # Errors
/// Only if registration fails (a bug).
pub fn session(src: ReadSources, limits: &QueryLimits) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(limits.threads.max(1))
        .with_default_catalog_and_schema("datafusion", "public");
    config.options_mut().sql_parser.enable_ident_normalization = true;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .build_arc()?;
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    datafusion_postgres::datafusion_pg_functions::register_all(&mut state);
    let ctx = SessionContext::new_with_state(state);
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| DataFusionError::Internal("default catalog missing".into()))?;
    catalog.register_schema("public", Arc::new(ReadSchema { src }))?;
    ctx.register_udaf(aiops_sql::counter::increase());
    ctx.register_udaf(aiops_sql::counter::rate());
    ctx.register_udf(crate::pgmaps::map_to_json_udf());
    datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog(
        &ctx,
        "datafusion",
        EmptyContextProvider,
    )
    .map_err(|e| *e)?;
    Ok(ctx)
}
