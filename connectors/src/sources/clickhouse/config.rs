//! Configuration of a ClickHouse source.

use super::source::ClickHouseSource;
use crate::error::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sources::range::{ScheduleConfig, SecretRef};
use crate::sources::sql::config::config_message;
use crate::sources::sql::mapping::RowMapping;
use crate::sources::sql::query::{Dialect, rewrite};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the range reaches the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParameterMode {
    /// ClickHouse query parameters (`{aiops_from:DateTime64(3, 'UTC')}` bound by
    /// `param_aiops_from`): every ClickHouse since 19.x. The default.
    #[default]
    Server,
    /// For servers without query parameters (18.x): the range written into the query as
    /// numeric literals aiops formats from its own integers (`toDateTime(1767225600, 'UTC')`,
    /// `toInt64(1767225600000)`), seconds rounded outwards; rows are filtered to the exact
    /// range afterwards. No text from anywhere else is ever spliced.
    Inline,
}

/// `[[sources]] type = "clickhouse"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// The HTTP interface, e.g. `http://clickhouse:8123/`.
    pub url: String,
    /// User (`X-ClickHouse-User`). Default `default`.
    #[serde(default = "default_user")]
    pub user: String,
    /// Password (`X-ClickHouse-Key`): `{ env = "…" }` or `{ file = "…" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// Database the query runs in (`X-ClickHouse-Database`). Default: the user's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The query, without a `FORMAT` clause. `$__from` / `$__to` (DateTime64(3, 'UTC')) and
    /// `$__from_ms` / `$__to_ms` (Int64) are the range.
    pub query: String,
    /// `server` (query parameters, default) or `inline` (for 18.x servers).
    #[serde(default)]
    pub parameters: ParameterMode,
    /// How often the next range is pulled (and its length). Default 1m.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Longest range of one query; a longer backfill is split. Default 1h.
    #[serde(default = "default_max_range", with = "humantime_serde")]
    pub max_range: Duration,
    /// `max_execution_time` of the query, and the client-side timeout. Default 10s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Most rows one pull may return (`max_result_rows`, overflow is an error). Default 100000.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// How result columns become metrics, logs or events.
    pub mapping: RowMapping,
    /// Delay for late rows and backfill bounds.
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

fn default_user() -> String {
    "default".to_string()
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_max_range() -> Duration {
    Duration::from_secs(3600)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_rows() -> usize {
    100_000
}

impl ClickHouseConfig {
    /// The dialect the query is rewritten for.
    pub fn dialect(&self) -> Dialect {
        match self.parameters {
            ParameterMode::Server => Dialect::ClickHouse,
            ParameterMode::Inline => Dialect::ClickHouseInline,
        }
    }

    /// The target refused by `outbound`, with its reason.
    pub fn refused_targets(&self, outbound: &OutboundPolicy) -> Vec<String> {
        match outbound.check(&self.url) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("url: {e}")],
        }
    }

    /// Every problem of the config on its own.
    pub fn problems(&self, outbound: &OutboundPolicy) -> Vec<String> {
        let mut p = Vec::new();
        match url::Url::parse(&self.url) {
            Ok(u) if u.password().is_some() || !u.username().is_empty() => {
                p.push("url must not hold credentials: use user and password".into())
            }
            Ok(u) if u.query().is_some() => p.push("url must not have query parameters".into()),
            Ok(_) => p.extend(self.refused_targets(outbound)),
            Err(e) => p.push(format!("url does not parse: {e}")),
        }
        if let Err(e) = rewrite(&self.query, self.dialect()) {
            p.push(e.to_string());
        }
        if let Some(Err(e)) = self.password.as_ref().map(|s| s.resolve("password")) {
            p.push(config_message(&e));
        }
        if self.interval < Duration::from_secs(1) {
            p.push(format!("interval {:?} is below 1s", self.interval));
        }
        if self.max_range < self.interval {
            p.push("max_range must be at least the interval".into());
        }
        if self.timeout < Duration::from_secs(1) {
            p.push("timeout must be at least 1s (max_execution_time counts seconds)".into());
        }
        if self.max_rows == 0 {
            p.push("max_rows must be at least 1".into());
        }
        if let Err(e) = self.mapping.check() {
            p.push(e.to_string());
        }
        p
    }

    /// Builds the running source; requests pass the guard of `outbound`.
    ///
    /// # Errors
    /// [`SourceError::Config`] listing every problem.
    pub fn build_with(&self, outbound: &OutboundPolicy) -> Result<ClickHouseSource, SourceError> {
        let problems = self.problems(outbound);
        if !problems.is_empty() {
            return Err(SourceError::Config(format!(
                "clickhouse source: {}",
                problems.join("; ")
            )));
        }
        ClickHouseSource::new(self.clone(), outbound)
    }
}
