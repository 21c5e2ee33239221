//! Configuration of a CloudWatch `GetMetricData` source.

use super::source::CloudWatchQuerySource;
use crate::error::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sources::datadog_query::prometheus_name;
use crate::sources::range::{ScheduleConfig, SecretRef};
use crate::sources::sql::config::config_message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[[sources]] type = "cloudwatch"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchQueryConfig {
    /// The AWS region (`eu-west-1`); the endpoint is `https://monitoring.<region>.amazonaws.com`.
    pub region: String,
    /// Base URL replacing the regional endpoint (a VPC endpoint, or a local server in tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The access key id: `{ env = "AWS_ACCESS_KEY_ID" }`, `{ file = … }` or `{ value = … }`.
    pub access_key_id: SecretRef,
    /// The secret access key: `{ env = "AWS_SECRET_ACCESS_KEY" }` or `{ file = … }`.
    pub secret_access_key: SecretRef,
    /// A session token of temporary credentials (`X-Amz-Security-Token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretRef>,
    /// The queries (at most 500, CloudWatch's limit per request).
    pub queries: Vec<CloudWatchQuery>,
    /// Labels added to every row (besides `region`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How often a range is pulled (and its length). Default 5m (CloudWatch's basic monitoring
    /// resolution).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Longest range of one request (backfills are split). Default 1h.
    #[serde(default = "default_max_range", with = "humantime_serde")]
    pub max_range: Duration,
    /// Timeout of each request (page). Default 30s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Delay for late datapoints and backfill bounds. CloudWatch datapoints arrive minutes late:
    /// a delay of a few minutes avoids storing a partial period.
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

/// One entry of `MetricDataQueries`: a metric (`namespace`, `metric_name`, `dimensions`,
/// `stat`) or an `expression` (metric math over other queries' ids).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchQuery {
    /// The query id (`[a-z][a-zA-Z0-9_]*`), unique in the source.
    pub id: String,
    /// The aiops metric name. Default for a metric: `aws_<namespace>_<metric_name>_<stat>` in
    /// snake case (`AWS/EC2`, `CPUUtilization`, `Average` → `aws_ec2_cpuutilization_average`);
    /// required for an expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The namespace (`AWS/EC2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The CloudWatch metric name (`CPUUtilization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Dimensions (`InstanceId = "i-0abc"`); they also become labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    /// The statistic (`Average`, `Sum`, `Maximum`, `p99`, …). Default `Average`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    /// A metric math or Metrics Insights expression instead of a metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// The period of each datapoint. Default 60s (a multiple of 60s, or 1/5/10/30s for
    /// high-resolution metrics).
    #[serde(default = "default_period", with = "humantime_serde")]
    pub period: Duration,
    /// Whether the result is stored (false for a query only an expression uses). Default true.
    #[serde(default = "default_true")]
    pub return_data: bool,
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_max_range() -> Duration {
    Duration::from_secs(3600)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_period() -> Duration {
    Duration::from_secs(60)
}
fn default_true() -> bool {
    true
}

/// `CPUUtilization` → `cpuutilization`, `NetworkIn` → `network_in`, `AWS/EC2` → `ec2`: AWS's
/// CamelCase in snake case, as CloudWatch exporters name metrics.
pub fn snake(s: &str) -> String {
    let s = s.strip_prefix("AWS/").unwrap_or(s);
    let mut out = String::with_capacity(s.len() + 4);
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            if prev_lower && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

impl CloudWatchQuery {
    /// The aiops metric name of this query's rows.
    pub fn metric_name(&self) -> Option<String> {
        if let Some(m) = &self.metric {
            return Some(m.clone());
        }
        let (ns, name) = (self.namespace.as_ref()?, self.metric_name.as_ref()?);
        let stat = self.stat.as_deref().unwrap_or("Average");
        Some(format!("aws_{}_{}_{}", snake(ns), snake(name), snake(stat)))
    }

    /// This query as a `MetricDataQuery` of the JSON protocol.
    pub fn to_aws(&self) -> serde_json::Value {
        let period = self.period.as_secs();
        let mut q = serde_json::json!({ "Id": self.id, "ReturnData": self.return_data });
        if let Some(e) = &self.expression {
            q["Expression"] = e.clone().into();
            q["Period"] = period.into();
        } else {
            let dims: Vec<serde_json::Value> = self
                .dimensions
                .iter()
                .map(|(k, v)| serde_json::json!({"Name": k, "Value": v}))
                .collect();
            q["MetricStat"] = serde_json::json!({
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": dims,
                },
                "Period": period,
                "Stat": self.stat.as_deref().unwrap_or("Average"),
            });
        }
        q
    }
}

impl CloudWatchQueryConfig {
    /// The endpoint requests go to.
    pub fn endpoint_url(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("https://monitoring.{}.amazonaws.com/", self.region),
        }
    }

    /// The target refused by `outbound`, with its reason.
    pub fn refused_targets(&self, outbound: &OutboundPolicy) -> Vec<String> {
        match outbound.check(&self.endpoint_url()) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("endpoint {}: {e}", self.endpoint_url())],
        }
    }

    /// Every problem of the config on its own.
    pub fn problems(&self, outbound: &OutboundPolicy) -> Vec<String> {
        let mut p = Vec::new();
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            p.push(format!(
                "region {:?} is not an AWS region name",
                self.region
            ));
        }
        if self.queries.is_empty() {
            p.push("queries must list at least one query".into());
        }
        if self.queries.len() > 500 {
            p.push("at most 500 queries (CloudWatch's limit per request)".into());
        }
        let mut ids = std::collections::HashSet::new();
        for q in &self.queries {
            let at = format!("query {:?}", q.id);
            let mut b = q.id.bytes();
            let id_ok = b.next().is_some_and(|c| c.is_ascii_lowercase())
                && b.all(|c| c.is_ascii_alphanumeric() || c == b'_');
            if !id_ok {
                p.push(format!("{at}: id must match [a-z][a-zA-Z0-9_]*"));
            }
            if !ids.insert(q.id.as_str()) {
                p.push(format!("{at}: id is used twice"));
            }
            match (&q.expression, &q.namespace, &q.metric_name) {
                (Some(_), None, None) => {
                    if q.metric.is_none() && q.return_data {
                        p.push(format!(
                            "{at}: an expression needs `metric` (the aiops name)"
                        ));
                    }
                }
                (None, Some(_), Some(_)) => {}
                _ => p.push(format!(
                    "{at}: give either expression, or namespace and metric_name"
                )),
            }
            if q.period.as_secs() == 0 || q.period.subsec_nanos() != 0 {
                p.push(format!("{at}: period must be whole seconds"));
            }
            if let Some(m) = q.metric_name()
                && prometheus_name(&m) != m
            {
                p.push(format!(
                    "{at}: metric {m:?} is not a Prometheus metric name"
                ));
            }
        }
        if self.interval < Duration::from_secs(1) {
            p.push(format!("interval {:?} is below 1s", self.interval));
        }
        if self.max_range < self.interval {
            p.push("max_range must be at least the interval".into());
        }
        p.extend(self.refused_targets(outbound));
        for (field, r) in [
            ("access_key_id", Some(&self.access_key_id)),
            ("secret_access_key", Some(&self.secret_access_key)),
            ("session_token", self.session_token.as_ref()),
        ] {
            if let Some(Err(e)) = r.map(|r| r.resolve(field)) {
                p.push(config_message(&e));
            }
        }
        p
    }

    /// Builds the running source; its requests pass the guard of `outbound`.
    ///
    /// # Errors
    /// [`SourceError::Config`] listing every problem.
    pub fn build_with(
        &self,
        outbound: &OutboundPolicy,
    ) -> Result<CloudWatchQuerySource, SourceError> {
        let problems = self.problems(outbound);
        if !problems.is_empty() {
            return Err(SourceError::Config(format!(
                "cloudwatch source: {}",
                problems.join("; ")
            )));
        }
        CloudWatchQuerySource::new(self.clone(), outbound)
    }
}
