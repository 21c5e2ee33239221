//! Grafana automation of aiops: the engine provisions itself in a Grafana through Grafana's HTTP
//! API — the PostgreSQL data source pointing at the Postgres endpoint, a folder, one dashboard per
//! pipeline plus an overview dashboard (stable uids, written only when their content changed),
//! Grafana alert rules for the SQL alert rules (on request), and incidents and deploys as
//! annotations.
//!
//! The crate knows nothing of the engine process: what it reads (the pipelines' columns, the
//! incidents and deploys, the check of every generated query) goes through [`SqlSource`], which
//! the server implements over its read side.
//!
//! - [`macros`]: Grafana's PostgreSQL macro expansion, so generated panel queries are checked on
//!   the read side exactly as Grafana will send them.
//! - [`dashboard`]: the dashboard JSON (pure functions of the pipelines and their columns).
//! - [`rules`]: Grafana alert rules mirroring aiops' SQL alert rules.
//! - [`client`]: the Grafana HTTP client.
//! - [`sync`]: reads what Grafana has, writes only the differences, reports what it did.
//!
//! Its settings are the `[grafana]` section of the server's config ([`GrafanaSettings`]); its HTTP
//! routes (`/api/grafana/*`) are the server's `http::grafana`.

pub mod client;
pub mod dashboard;
pub mod macros;
pub mod rules;
pub mod sync;

use aiops_connectors::sinks::Secret;
use aiops_read::limits::QueryError;
use aiops_schemas::arrow_array::RecordBatch;
use serde::Deserialize;
use std::future::Future;

/// The read side as the Grafana automation queries it: runs one read-only SQL statement under the
/// read side's limits (the server implements it over its `ReadSide`).
pub trait SqlSource: Sync {
    /// The batches `sql` returns.
    ///
    /// # Errors
    /// The statement is refused or fails, or runs into a limit.
    fn query(&self, sql: &str)
    -> impl Future<Output = Result<Vec<RecordBatch>, QueryError>> + Send;
}

/// `[grafana]`: where Grafana is and how aiops appears in it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrafanaSettings {
    /// Grafana's base URL (may include a sub-path), e.g. `http://127.0.0.1:3000`. Unset: the
    /// `/api/grafana/*` writes answer 409 and `aiops grafana sync` explains what to set.
    pub url: Option<String>,
    /// A Grafana service-account token (Editor for dashboards and annotations, Admin for the data
    /// source and alert rules); set it through `AIOPS__GRAFANA__TOKEN` rather than in a file.
    pub token: Option<Secret>,
    /// Organisation id sent as `X-Grafana-Org-Id`. Default 1.
    pub org_id: i64,
    /// Folder uid and title of everything aiops writes. Default `aiops` / `aiops`.
    pub folder_uid: String,
    /// Folder title.
    pub folder_title: String,
    /// Data source uid and name. Default `aiops`.
    pub datasource_uid: String,
    /// Data source name.
    pub datasource_name: String,
    /// Data source plugin type: `grafana-postgresql-datasource` (Grafana 10.3+) or `postgres`.
    pub datasource_type: String,
    /// `host:port` at which *Grafana* reaches aiops' Postgres endpoint. Default: `sql.listen`.
    pub datasource_address: Option<String>,
    /// The aiops token Grafana sends as the Postgres password (a `viewer` token). Unset: the first
    /// sync creates a viewer token named `grafana-datasource` and gives it to Grafana once.
    pub datasource_token: Option<Secret>,
    /// Days of incidents and deploys written as annotations on each sync. Default 7.
    pub annotation_days: i64,
    /// Grafana alert rule group the rules go to (Grafana evaluates a new group at its default
    /// interval, 1m). Default `aiops`.
    pub rule_group: String,
    /// Per-request timeout. Default 10s.
    #[serde(with = "humantime_serde")]
    pub timeout: std::time::Duration,
    /// The outbound guard of the Grafana client: `[outbound] allow` (set when the config is
    /// loaded, not a `[grafana]` key).
    #[serde(skip)]
    pub outbound: aiops_connectors::outbound::OutboundPolicy,
}

impl Default for GrafanaSettings {
    fn default() -> Self {
        GrafanaSettings {
            url: None,
            token: None,
            org_id: 1,
            folder_uid: "aiops".into(),
            folder_title: "aiops".into(),
            datasource_uid: "aiops".into(),
            datasource_name: "aiops".into(),
            datasource_type: "grafana-postgresql-datasource".into(),
            datasource_address: None,
            datasource_token: None,
            annotation_days: 7,
            rule_group: "aiops".into(),
            timeout: std::time::Duration::from_secs(10),
            outbound: aiops_connectors::outbound::OutboundPolicy::default(),
        }
    }
}

/// Why a Grafana operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GrafanaError {
    /// `[grafana]` lacks something the operation needs.
    #[error("grafana is not configured: {0}")]
    NotConfigured(String),
    /// Grafana could not be reached or timed out.
    #[error("grafana {method} {path}: {detail}")]
    Transport {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// What failed (never the token).
        detail: String,
    },
    /// Grafana answered with an error status.
    #[error("grafana {method} {path}: HTTP {status}: {message}")]
    Status {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// The status code.
        status: u16,
        /// Grafana's `message`, or the start of the body.
        message: String,
    },
    /// A generated panel or rule query does not run on the read side; nothing was written.
    #[error("generated query of {what} fails on the read side: {message} (SQLSTATE {code})")]
    Query {
        /// The panel or rule.
        what: String,
        /// The error.
        message: String,
        /// Its SQLSTATE.
        code: String,
    },
    /// The read side or the token store failed.
    #[error("{0}")]
    Internal(String),
}
