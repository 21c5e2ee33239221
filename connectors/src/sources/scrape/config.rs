//! Configuration of a scrape source.

use super::source::ScrapeSource;
use crate::error::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sources::PullSource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[[sources]] type = "scrape"`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label of every sample.
    pub job: String,
    /// Targets as `host:port` or full `http://host:port/path` URLs.
    pub targets: Vec<String>,
    /// Time between scrapes of a target. Default 15s.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Per-scrape timeout. Default 10s (capped at the interval).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Path for `host:port` targets. Default `/metrics`.
    #[serde(default = "default_path")]
    pub metrics_path: String,
    /// Extra labels added to every sample.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_path() -> String {
    "/metrics".to_string()
}

impl ScrapeConfig {
    /// The URL scraped for a target.
    pub fn url(&self, target: &str) -> String {
        if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else {
            format!("http://{target}{}", self.metrics_path)
        }
    }

    /// Builds the running source with the default outbound policy: every loopback, private,
    /// link-local and metadata target is refused.
    ///
    /// # Errors
    /// [`SourceError::Config`] listing every invalid setting.
    pub fn build(&self) -> Result<Box<dyn PullSource>, SourceError> {
        self.build_with(&OutboundPolicy::default())
    }

    /// The targets `outbound` refuses, each with its reason (address class or name), so a
    /// metadata or private target is refused when the source is saved, not when it runs.
    pub fn refused_targets(&self, outbound: &OutboundPolicy) -> Vec<String> {
        self.targets
            .iter()
            .filter_map(|t| {
                outbound
                    .check(&self.url(t))
                    .err()
                    .map(|e| format!("target {t:?}: {e}"))
            })
            .collect()
    }

    /// Builds the running source; its targets are reached only through the outbound guard of
    /// `outbound` (checked here on each target URL, and again after DNS and on redirects).
    ///
    /// # Errors
    /// [`SourceError::Config`] listing every invalid setting and refused target.
    pub fn build_with(
        &self,
        outbound: &OutboundPolicy,
    ) -> Result<Box<dyn PullSource>, SourceError> {
        let mut problems = Vec::new();
        if self.job.is_empty() {
            problems.push("job must not be empty".to_string());
        }
        if self.targets.is_empty() {
            problems.push("targets must list at least one host:port".to_string());
        }
        if self.interval < Duration::from_millis(100) {
            problems.push(format!("interval {:?} is below 100ms", self.interval));
        }
        if self.targets.iter().any(|t| t.starts_with("https://")) {
            problems.push("https targets are not supported yet".to_string());
        }
        problems.extend(self.refused_targets(outbound));
        if !problems.is_empty() {
            return Err(SourceError::Config(format!(
                "scrape job {:?}: {}",
                self.job,
                problems.join("; ")
            )));
        }
        Ok(Box::new(ScrapeSource::new(self.clone(), outbound)?))
    }
}
