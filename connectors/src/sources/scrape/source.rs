//! The running scrape source: one round over all targets per interval.

use super::config::ScrapeConfig;
use super::parse::parse_text;
use crate::error::SourceError;
use crate::outbound::{OutboundPolicy, refusal_reason};
use crate::sources::{PullSource, SourceBatch};
use aiops_schemas::{Kind, MetricBatchBuilder};
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Scrapes the configured targets every interval.
#[derive(Debug)]
pub struct ScrapeSource {
    cfg: ScrapeConfig,
    client: reqwest::Client,
    /// Created on the first poll: a tokio timer needs the runtime, building the source does not.
    ticker: Option<tokio::time::Interval>,
    /// Last known health per target, so a failure is logged once per state change.
    up: HashMap<String, bool>,
}

#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    // Scrape time is the edge where wall-clock time enters, as in Prometheus.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl ScrapeSource {
    /// A source for `cfg` (validated by [`ScrapeConfig::build_with`]) whose requests pass the
    /// outbound guard of `outbound` (after DNS resolution and on every redirect).
    ///
    /// # Errors
    /// [`SourceError::Config`] if the HTTP client cannot be built or the allow list is malformed.
    pub fn new(cfg: ScrapeConfig, outbound: &OutboundPolicy) -> Result<ScrapeSource, SourceError> {
        let client = outbound
            .client(cfg.timeout.min(cfg.interval))
            .map_err(|e| SourceError::Config(format!("http client: {e}")))?;
        Ok(ScrapeSource {
            cfg,
            client,
            ticker: None,
            up: HashMap::new(),
        })
    }

    async fn scrape(&self, url: &str) -> Result<String, String> {
        let resp = self
            .client
            .get(url)
            .header("accept", "text/plain;version=0.0.4")
            .send()
            .await
            .map_err(|e| match refusal_reason(&e) {
                Some(reason) => format!("refused by the outbound guard: {reason}"),
                None => e.without_url().to_string(),
            })?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.text().await.map_err(|e| e.to_string())
    }
}

#[async_trait]
impl PullSource for ScrapeSource {
    fn name(&self) -> &'static str {
        "scrape"
    }

    async fn next_batch(&mut self) -> Result<Option<Vec<SourceBatch>>, SourceError> {
        let interval = self.cfg.interval;
        let ticker = self.ticker.get_or_insert_with(|| {
            let mut t = tokio::time::interval(interval);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        ticker.tick().await;
        let mut b = MetricBatchBuilder::new();
        let targets = self.cfg.targets.clone();
        for target in &targets {
            let url = self.cfg.url(target);
            let started = now_ms();
            let result = self
                .scrape(&url)
                .await
                .and_then(|body| parse_text(&body).map_err(|e| e.to_string()));
            let ok = result.is_ok();
            if self.up.insert(target.clone(), ok) != Some(ok) {
                match &result {
                    Ok(_) => {
                        tracing::info!(job = %self.cfg.job, target = %target, "scrape target up")
                    }
                    Err(e) => {
                        tracing::warn!(job = %self.cfg.job, target = %target, error = %e, "scrape target down")
                    }
                }
            }
            let base = [
                ("job", self.cfg.job.as_str()),
                ("instance", target.as_str()),
            ];
            if let Ok(samples) = result {
                for s in &samples {
                    // Target labels win over scraped ones, like Prometheus' honor_labels: false.
                    let own = s
                        .labels
                        .iter()
                        .filter(|(k, _)| {
                            k != "job" && k != "instance" && !self.cfg.labels.contains_key(k)
                        })
                        .map(|(k, v)| (k.as_str(), v.as_str()));
                    let extra = self
                        .cfg
                        .labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()));
                    let labels = own.chain(base.iter().copied()).chain(extra);
                    b.push(s.timestamp_ms.unwrap_or(started), &s.name, labels, s.value);
                }
            }
            let extra = self
                .cfg
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()));
            b.push(
                started,
                "up",
                base.iter().copied().chain(extra),
                if ok { 1.0 } else { 0.0 },
            );
        }
        let time_range = b.time_range();
        let batch = b
            .finish()
            .map_err(|e| SourceError::Internal(format!("scrape batch: {e}")))?;
        Ok(Some(vec![SourceBatch {
            kind: Kind::Metrics,
            source: "scrape",
            batch,
            time_range,
        }]))
    }
}

/// The scrape interval, for tests.
impl ScrapeSource {
    /// The configured interval.
    pub fn interval(&self) -> Duration {
        self.cfg.interval
    }
}
