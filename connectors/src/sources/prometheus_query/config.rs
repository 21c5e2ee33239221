//! Configuration of a Prometheus / VictoriaMetrics `query_range` source.

use super::source::PrometheusQuerySource;
use crate::error::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sources::range::{ScheduleConfig, SecretRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Prometheus caps a `query_range` answer at 11,000 points per series.
pub const MAX_POINTS_PER_SERIES: u64 = 11_000;

/// `[[sources]] type = "prometheus"`: evaluates `query` with `/api/v1/query_range` every
/// `interval` over the range just ended (one point per `step`), and stores the series as
/// metric rows. Works with Prometheus and VictoriaMetrics (and anything serving the same API).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusQueryConfig {
    /// Base URL of the server, e.g. `http://prometheus:9090` or
    /// `http://vm:8428` (a path prefix is kept: `http://host/prometheus`).
    pub url: String,
    /// The PromQL (or MetricsQL) expression.
    pub query: String,
    /// Resolution: one point per `step`, at multiples of `step` since the Unix epoch. Default 15s.
    #[serde(default = "default_step", with = "humantime_serde")]
    pub step: Duration,
    /// How often a range is pulled (and its length on schedule). Default 1m.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Longest range of one request (backfills are split). Default 1h; at most 11,000 steps.
    #[serde(default = "default_max_range", with = "humantime_serde")]
    pub max_range: Duration,
    /// Whole-request timeout. Default 30s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The metric name of every row. Without it, each series' `__name__` is used, and a series
    /// without one (the result of a function or an operator) is an error naming this setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Labels added to every row (they win over the series' labels of the same name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// A bearer token (`Authorization: Bearer …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretRef>,
    /// Delay for late data and backfill bounds.
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

/// HTTP basic authentication with the password kept as a secret reference.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password (`{ env = "…" }`, `{ file = "…" }` or `{ value = "…" }`).
    pub password: SecretRef,
}

fn default_step() -> Duration {
    Duration::from_secs(15)
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

impl PrometheusQueryConfig {
    /// The `query_range` endpoint of `url`.
    pub fn endpoint(&self) -> String {
        format!("{}/api/v1/query_range", self.url.trim_end_matches('/'))
    }

    /// The URL as `outbound` judges it: empty when allowed, else the reason.
    pub fn refused_targets(&self, outbound: &OutboundPolicy) -> Vec<String> {
        match outbound.check(&self.endpoint()) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("url: {e}")],
        }
    }

    /// Every problem of the settings, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.query.trim().is_empty() {
            p.push("query: must not be empty".to_string());
        }
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                if !u.username().is_empty() || u.password().is_some() {
                    p.push("url: put credentials in basic_auth, not in the URL".to_string());
                }
            }
            Ok(u) => p.push(format!("url: scheme {:?} is not http or https", u.scheme())),
            Err(e) => p.push(format!("url: not a valid absolute URL: {e}")),
        }
        if self.step < Duration::from_millis(1) {
            p.push("step: must be at least 1ms".to_string());
        }
        if self.interval < Duration::from_secs(1) {
            p.push(format!(
                "interval: {} is below 1s",
                humantime_serde::re::humantime::format_duration(self.interval)
            ));
        }
        if self.timeout.is_zero() {
            p.push("timeout: must be above 0".to_string());
        }
        if self.max_range < self.step.max(Duration::from_secs(1)) {
            p.push("max_range: must be at least step and 1s".to_string());
        } else if !self.step.is_zero()
            && self.max_range.as_millis() / self.step.as_millis()
                > u128::from(MAX_POINTS_PER_SERIES)
        {
            p.push(format!(
                "max_range: {} holds more than {MAX_POINTS_PER_SERIES} steps of {} (Prometheus' \
                 limit per series); lower it or raise step",
                humantime_serde::re::humantime::format_duration(self.max_range),
                humantime_serde::re::humantime::format_duration(self.step)
            ));
        }
        if let Some(m) = &self.metric
            && m.trim().is_empty()
        {
            p.push("metric: must not be empty when given".to_string());
        }
        if self.basic_auth.is_some() && self.bearer_token.is_some() {
            p.push("basic_auth, bearer_token: give at most one".to_string());
        }
        p
    }

    /// Builds the running source; requests reach the server only through `outbound`'s guard.
    ///
    /// # Errors
    /// [`SourceError::Config`] listing every invalid setting (each naming its field), a refused
    /// URL, or a secret that cannot be read.
    pub fn build_with(
        &self,
        outbound: &OutboundPolicy,
    ) -> Result<PrometheusQuerySource, SourceError> {
        let mut problems = self.problems();
        problems.extend(self.refused_targets(outbound));
        if !problems.is_empty() {
            return Err(SourceError::Config(format!(
                "prometheus source: {}",
                problems.join("; ")
            )));
        }
        PrometheusQuerySource::new(self.clone(), outbound)
    }
}
