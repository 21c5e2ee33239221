//! The running CloudWatch `GetMetricData` source.

use super::config::CloudWatchQueryConfig;
use super::sigv4;
use crate::error::SourceError;
use crate::outbound::{OutboundPolicy, refusal_reason};
use crate::sinks::{Redactor, Secret};
use crate::sources::SourceBatch;
use crate::sources::datadog_query::prometheus_name;
use crate::sources::datadog_query::source::read_bounded;
use crate::sources::range::{RangeSource, ScheduleConfig, TestReport, report_of};
use crate::sources::validate::{IngestLimits, LabelRules};
use aiops_schemas::{Kind, MetricBatchBuilder};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The operation, as the JSON protocol names it in `X-Amz-Target`.
pub const TARGET: &str = "GraniteServiceVersion20100801.GetMetricData";
/// The JSON protocol's content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// Most pages followed for one range (500 queries × 100,800 points each is far below).
const MAX_PAGES: usize = 100;

/// Pulls the configured queries for each range.
pub struct CloudWatchQuerySource {
    cfg: CloudWatchQueryConfig,
    access_key_id: Secret,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    redactor: Redactor,
    client: reqwest::Client,
    outbound: OutboundPolicy,
    limits: IngestLimits,
    /// Per stored query id (`return_data`): the metric name and labels of its rows.
    series: BTreeMap<String, (String, BTreeMap<String, String>)>,
}

impl std::fmt::Debug for CloudWatchQuerySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchQuerySource")
            .field("region", &self.cfg.region)
            .field("queries", &self.cfg.queries.len())
            .finish()
    }
}

/// The answer of `GetMetricData` in the JSON protocol (the fields aiops reads).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    metric_data_results: Vec<MetricResult>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricResult {
    id: String,
    /// Epoch seconds.
    #[serde(default)]
    timestamps: Vec<f64>,
    #[serde(default)]
    values: Vec<f64>,
    #[serde(default)]
    status_code: Option<String>,
}

#[allow(clippy::disallowed_methods)]
fn amz_now() -> String {
    // A signature carries the wall-clock time of the request (AWS refuses one more than 15
    // minutes off): the one place this source reads the clock.
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

impl CloudWatchQuerySource {
    /// A source for a checked config.
    ///
    /// # Errors
    /// [`SourceError::Config`] when a credential cannot be read or the HTTP client not built.
    pub fn new(
        cfg: CloudWatchQueryConfig,
        outbound: &OutboundPolicy,
    ) -> Result<CloudWatchQuerySource, SourceError> {
        let access_key_id = cfg.access_key_id.resolve("access_key_id")?;
        let secret_access_key = cfg.secret_access_key.resolve("secret_access_key")?;
        let session_token = cfg
            .session_token
            .as_ref()
            .map(|t| t.resolve("session_token"))
            .transpose()?;
        let mut secrets = vec![secret_access_key.expose()];
        if let Some(t) = &session_token {
            secrets.push(t.expose());
        }
        let redactor = Redactor::new(&secrets);
        let client = outbound
            .client(cfg.timeout)
            .map_err(|e| SourceError::Config(format!("cloudwatch source: http client: {e}")))?;
        let mut series = BTreeMap::new();
        for q in cfg.queries.iter().filter(|q| q.return_data) {
            let mut labels: BTreeMap<String, String> = q
                .dimensions
                .iter()
                .map(|(k, v)| (prometheus_name(k), v.clone()))
                .collect();
            labels.insert("region".into(), cfg.region.clone());
            labels.extend(cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            if let Some(name) = q.metric_name() {
                series.insert(q.id.clone(), (name, labels));
            }
        }
        Ok(CloudWatchQuerySource {
            cfg,
            access_key_id,
            secret_access_key,
            session_token,
            redactor,
            client,
            outbound: outbound.clone(),
            limits: IngestLimits::default(),
            series,
        })
    }

    fn clean(&self, s: &str) -> String {
        crate::error::bound_text(&self.redactor.redact(s), 512)
    }

    /// One signed `GetMetricData` call.
    async fn call(&self, body: &serde_json::Value) -> Result<Answer, SourceError> {
        let url = self
            .outbound
            .check_url(&self.cfg.endpoint_url())
            .map_err(|e| SourceError::Config(format!("cloudwatch source: {e}")))?;
        let payload = serde_json::to_vec(body).map_err(|e| SourceError::Internal(e.to_string()))?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let amz_date = amz_now();
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", CONTENT_TYPE),
            ("host", &host),
            ("x-amz-date", &amz_date),
            ("x-amz-target", TARGET),
        ];
        if let Some(t) = &self.session_token {
            headers.push(("x-amz-security-token", t.expose()));
        }
        let sig = sigv4::sign(
            &sigv4::Request {
                method: "POST",
                path: url.path(),
                query: url.query().unwrap_or(""),
                headers: &headers,
                payload: &payload,
            },
            &sigv4::Scope {
                access_key_id: self.access_key_id.expose(),
                secret_access_key: self.secret_access_key.expose(),
                region: &self.cfg.region,
                service: "monitoring",
                amz_date: &amz_date,
            },
        );
        let mut req = self.client.post(url).body(payload);
        for (k, v) in headers.iter().filter(|(k, _)| *k != "host") {
            req = req.header(*k, *v);
        }
        let resp = req
            .header("authorization", sig.authorization)
            .send()
            .await
            .map_err(|e| match refusal_reason(&e) {
                Some(r) => SourceError::Config(format!(
                    "cloudwatch source: refused by the outbound guard: {r}"
                )),
                None => SourceError::Unavailable(format!(
                    "cloudwatch source: request failed: {}",
                    self.clean(&e.without_url().to_string())
                )),
            })?;
        let status = resp.status();
        let body = read_bounded(resp).await.map_err(|e| {
            SourceError::Unavailable(format!(
                "cloudwatch source: reading the answer: {}",
                self.clean(&e)
            ))
        })?;
        if !status.is_success() {
            return Err(self.error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| {
            SourceError::Unavailable(format!(
                "cloudwatch source: the answer is not GetMetricData JSON: {e}"
            ))
        })
    }

    /// An AWS error answer (`{"__type": "…#Code", "message": "…"}`) as a typed error.
    fn error(&self, status: reqwest::StatusCode, body: &[u8]) -> SourceError {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let code = v
            .get("__type")
            .and_then(|t| t.as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_default();
        let message = ["message", "Message"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|m| m.as_str()))
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(256)]).into());
        let detail = self.clean(&format!("{code}: {message}"));
        let auth = [
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "UnrecognizedClientException",
            "AccessDenied",
            "AccessDeniedException",
            "ExpiredToken",
            "MissingAuthenticationToken",
            "IncompleteSignature",
        ];
        if auth.contains(&code.as_str()) || status.as_u16() == 401 || status.as_u16() == 403 {
            SourceError::Config(format!(
                "cloudwatch source: AWS refused the credentials (HTTP {status}) {detail}; check \
                 access_key_id, secret_access_key, session_token, region and the \
                 cloudwatch:GetMetricData permission"
            ))
        } else if status.is_server_error() || status.as_u16() == 429 || code.contains("Throttling")
        {
            SourceError::Unavailable(format!(
                "cloudwatch source: HTTP {status} (retry may help) {detail}"
            ))
        } else {
            SourceError::Config(format!(
                "cloudwatch source: AWS refused the request (HTTP {status}) {detail}"
            ))
        }
    }

    async fn pull_pages(&self, from_ms: i64, to_ms: i64) -> Result<Vec<SourceBatch>, SourceError> {
        let queries: Vec<serde_json::Value> = self.cfg.queries.iter().map(|q| q.to_aws()).collect();
        // Whole seconds, rounded outwards; points are kept for the exact range below.
        let start = from_ms.div_euclid(1000);
        let end = to_ms.div_euclid(1000) + i64::from(to_ms.rem_euclid(1000) != 0);
        let mut b = MetricBatchBuilder::new();
        let mut token: Option<String> = None;
        for page in 0.. {
            if page >= MAX_PAGES {
                return Err(SourceError::Unavailable(format!(
                    "cloudwatch source: more than {MAX_PAGES} pages for one range; narrow \
                     max_range"
                )));
            }
            let mut body = serde_json::json!({
                "MetricDataQueries": queries,
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            });
            if let Some(t) = &token {
                body["NextToken"] = t.clone().into();
            }
            let answer = self.call(&body).await?;
            for r in &answer.metric_data_results {
                let Some((name, labels)) = self.series.get(&r.id) else {
                    continue;
                };
                if r.timestamps.len() != r.values.len() {
                    return Err(SourceError::Unavailable(format!(
                        "cloudwatch source: result {:?} has {} timestamps but {} values",
                        r.id,
                        r.timestamps.len(),
                        r.values.len()
                    )));
                }
                if r.status_code.as_deref() == Some("Forbidden") {
                    return Err(SourceError::Config(format!(
                        "cloudwatch source: query {:?} is forbidden (missing permission)",
                        r.id
                    )));
                }
                let at = format!("query {:?}", r.id);
                self.limits
                    .check_labels(
                        &at,
                        "dimensions",
                        LabelRules::Prometheus,
                        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    )
                    .map_err(|e| SourceError::Config(format!("cloudwatch source: {e}")))?;
                for (t, v) in r.timestamps.iter().zip(&r.values) {
                    let t = (t * 1000.0).round() as i64;
                    if t < from_ms || t >= to_ms || !v.is_finite() {
                        continue;
                    }
                    b.push(t, name, labels.iter(), *v);
                }
            }
            match answer.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        SourceBatch::single(
            Kind::Metrics,
            "cloudwatch_query",
            b.time_range(),
            b.finish(),
        )
        .map_err(|e| SourceError::Internal(e.to_string()))
    }
}

#[async_trait]
impl RangeSource for CloudWatchQuerySource {
    fn name(&self) -> &'static str {
        "cloudwatch_query"
    }

    fn interval(&self) -> Duration {
        self.cfg.interval
    }

    fn max_range(&self) -> Duration {
        self.cfg.max_range
    }

    fn schedule(&self) -> ScheduleConfig {
        self.cfg.schedule.clone()
    }

    async fn pull(&self, from_ms: i64, to_ms: i64) -> Result<Vec<SourceBatch>, SourceError> {
        self.pull_pages(from_ms, to_ms).await.inspect_err(|e| {
            tracing::warn!(source = "cloudwatch_query", region = %self.cfg.region, error = %e, "CloudWatch pull failed");
        })
    }

    async fn test(&self, now_ms: i64) -> Result<TestReport, SourceError> {
        let from = now_ms - self.cfg.interval.as_millis() as i64;
        match self.pull(from, now_ms).await {
            Ok(batches) => Ok(report_of(&batches, from, now_ms, 3)),
            Err(e) => Ok(TestReport {
                reachable: !matches!(e, SourceError::Unavailable(_))
                    && !e.to_string().contains("refused the credentials"),
                sample_from_ms: from,
                sample_to_ms: now_ms,
                problems: vec![e.to_string()],
                ..TestReport::default()
            }),
        }
    }
}
