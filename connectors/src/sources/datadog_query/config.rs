//! Configuration of a Datadog metrics-query source.

use super::source::DatadogQuerySource;
use crate::error::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sources::range::{ScheduleConfig, SecretRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[[sources]] type = "datadog"`: runs `query` (Datadog's metric query language, e.g.
/// `avg:system.cpu.user{env:prod} by {host}`) for each range and stores every returned series
/// as metric rows.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatadogQueryConfig {
    /// The metric query.
    pub query: String,
    /// The Datadog site: `datadoghq.com` (default), `us3.datadoghq.com`, `us5.datadoghq.com`,
    /// `datadoghq.eu`, `ap1.datadoghq.com`, `ddog-gov.com`. The API is `https://api.<site>`.
    #[serde(default = "default_site")]
    pub site: String,
    /// Base URL replacing `https://api.<site>` (a proxy, or a local server in tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The API key (`DD-API-KEY`): `{ env = "DD_API_KEY" }` or `{ file = "…" }`.
    pub api_key: SecretRef,
    /// The application key (`DD-APPLICATION-KEY`) with the `timeseries_query` scope.
    pub app_key: SecretRef,
    /// The metric name of every row. Default: the series' `metric` with every character
    /// outside `[a-zA-Z0-9_]` as `_` (`system.cpu.user` → `system_cpu_user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Labels added to every row (they win over tags of the same name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How often a range is pulled (and its length). Default 1m.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Longest range of one request (backfills are split). Default 1h.
    #[serde(default = "default_max_range", with = "humantime_serde")]
    pub max_range: Duration,
    /// Whole-request timeout. Default 30s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Delay for late points and backfill bounds. Datadog's points settle within minutes, so a
    /// delay of a few minutes avoids storing a partial last point.
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

fn default_site() -> String {
    "datadoghq.com".to_string()
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_max_range() -> Duration {
    Duration::from_secs(3600)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl DatadogQueryConfig {
    /// The query endpoint: `<endpoint or https://api.<site>>/api/v1/query`.
    pub fn query_url(&self) -> String {
        let base = match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://api.{}", self.site.trim_end_matches('/')),
        };
        format!("{base}/api/v1/query")
    }

    /// The target refused by `outbound`, with its reason.
    pub fn refused_targets(&self, outbound: &OutboundPolicy) -> Vec<String> {
        match outbound.check(&self.query_url()) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("endpoint {}: {e}", self.query_url())],
        }
    }

    /// Builds the running source; its requests pass the guard of `outbound`.
    ///
    /// # Errors
    /// [`SourceError::Config`] listing every invalid setting, refused target and unreadable key.
    pub fn build_with(&self, outbound: &OutboundPolicy) -> Result<DatadogQuerySource, SourceError> {
        let mut problems = Vec::new();
        if self.query.trim().is_empty() {
            problems.push("query must not be empty".to_string());
        }
        if self.site.is_empty() || self.site.contains(['/', ':', ' ']) {
            problems.push(format!(
                "site {:?} is not a Datadog site name (like datadoghq.eu)",
                self.site
            ));
        }
        if self.interval < Duration::from_secs(1) {
            problems.push(format!("interval {:?} is below 1s", self.interval));
        }
        if self.max_range < self.interval {
            problems.push("max_range must be at least the interval".into());
        }
        if let Some(m) = &self.metric
            && super::prometheus_name(m) != *m
        {
            problems.push(format!("metric {m:?} is not a Prometheus metric name"));
        }
        problems.extend(self.refused_targets(outbound));
        let api_key = self.api_key.resolve("api_key");
        let app_key = self.app_key.resolve("app_key");
        for e in [api_key.as_ref().err(), app_key.as_ref().err()]
            .into_iter()
            .flatten()
        {
            problems.push(crate::sources::sql::config::config_message(e));
        }
        match (api_key, app_key) {
            (Ok(api), Ok(app)) if problems.is_empty() => {
                DatadogQuerySource::new(self.clone(), api, app, outbound)
            }
            _ => Err(SourceError::Config(format!(
                "datadog source: {}",
                problems.join("; ")
            ))),
        }
    }
}
