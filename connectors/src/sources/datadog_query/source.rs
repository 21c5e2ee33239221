//! The running Datadog metrics-query source.

use super::config::DatadogQueryConfig;
use super::prometheus_name;
use crate::error::SourceError;
use crate::outbound::{OutboundPolicy, refusal_reason};
use crate::sinks::{Redactor, Secret};
use crate::sources::SourceBatch;
use crate::sources::range::{RangeSource, ScheduleConfig, TestReport, report_of};
use crate::sources::validate::{IngestLimits, LabelRules};
use aiops_schemas::{Kind, MetricBatchBuilder};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest answer read, bytes: a bigger one is an error (narrow the query or `max_range`).
const MAX_BODY: usize = 64 << 20;

/// Queries Datadog for each range.
pub struct DatadogQuerySource {
    cfg: DatadogQueryConfig,
    api_key: Secret,
    app_key: Secret,
    redactor: Redactor,
    client: reqwest::Client,
    outbound: OutboundPolicy,
    limits: IngestLimits,
}

impl std::fmt::Debug for DatadogQuerySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatadogQuerySource")
            .field("url", &self.cfg.query_url())
            .finish()
    }
}

/// The answer of `/api/v1/query` (the fields aiops reads).
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    series: Vec<Series>,
}

#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    metric: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    tag_set: Vec<String>,
    /// `[[time_ms, value|null], …]`.
    #[serde(default)]
    pointlist: Vec<(f64, Option<f64>)>,
}

impl DatadogQuerySource {
    /// A source for a checked config.
    ///
    /// # Errors
    /// [`SourceError::Config`] if the HTTP client cannot be built.
    pub fn new(
        cfg: DatadogQueryConfig,
        api_key: Secret,
        app_key: Secret,
        outbound: &OutboundPolicy,
    ) -> Result<DatadogQuerySource, SourceError> {
        let client = outbound
            .client(cfg.timeout)
            .map_err(|e| SourceError::Config(format!("datadog source: http client: {e}")))?;
        let redactor = Redactor::new(&[api_key.expose(), app_key.expose()]);
        Ok(DatadogQuerySource {
            cfg,
            api_key,
            app_key,
            redactor,
            client,
            outbound: outbound.clone(),
            limits: IngestLimits::default(),
        })
    }

    fn clean(&self, s: &str) -> String {
        crate::error::bound_text(&self.redactor.redact(s), 512)
    }

    async fn fetch(&self, from_ms: i64, to_ms: i64) -> Result<Answer, SourceError> {
        let mut url = self
            .outbound
            .check_url(&self.cfg.query_url())
            .map_err(|e| SourceError::Config(format!("datadog source: {e}")))?;
        // Datadog takes whole seconds: round outwards, then keep the points of the exact range.
        let from_s = from_ms.div_euclid(1000);
        let to_s = to_ms.div_euclid(1000) + i64::from(to_ms.rem_euclid(1000) != 0);
        url.query_pairs_mut()
            .append_pair("from", &from_s.to_string())
            .append_pair("to", &to_s.to_string())
            .append_pair("query", &self.cfg.query);
        let resp = self
            .client
            .get(url)
            .header("DD-API-KEY", self.api_key.expose())
            .header("DD-APPLICATION-KEY", self.app_key.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| match refusal_reason(&e) {
                Some(r) => SourceError::Config(format!(
                    "datadog source: refused by the outbound guard: {r}"
                )),
                None => SourceError::Unavailable(format!(
                    "datadog source: request failed: {}",
                    self.clean(&e.without_url().to_string())
                )),
            })?;
        let status = resp.status();
        let body = read_bounded(resp).await.map_err(|e| {
            SourceError::Unavailable(format!(
                "datadog source: reading the answer: {}",
                self.clean(&e)
            ))
        })?;
        if !status.is_success() {
            let detail = error_detail(&body);
            let detail = self.clean(&detail);
            return Err(match status.as_u16() {
                401 | 403 => SourceError::Config(format!(
                    "datadog source: Datadog refused the keys (HTTP {status}): {detail}; check \
                     api_key, app_key (scope timeseries_query) and site"
                )),
                400 | 404 | 422 => SourceError::Config(format!(
                    "datadog source: Datadog refused the query (HTTP {status}): {detail}"
                )),
                _ => SourceError::Unavailable(format!(
                    "datadog source: HTTP {status} (retry may help): {detail}"
                )),
            });
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            SourceError::Unavailable(format!(
                "datadog source: the answer is not the documented query JSON: {e}"
            ))
        })?;
        if answer.status.as_deref() == Some("error") {
            return Err(SourceError::Config(format!(
                "datadog source: Datadog refused the query: {}",
                self.clean(answer.error.as_deref().unwrap_or("(no message)"))
            )));
        }
        Ok(answer)
    }

    fn rows(
        &self,
        answer: &Answer,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SourceBatch>, SourceError> {
        let mut b = MetricBatchBuilder::new();
        for (i, s) in answer.series.iter().enumerate() {
            let name = match &self.cfg.metric {
                Some(m) => m.clone(),
                None => prometheus_name(&s.metric),
            };
            let labels = tag_labels(s, &self.cfg.labels);
            let at = format!("series {i} ({})", crate::error::bound_text(&s.metric, 64));
            self.limits
                .check_metric_name(&at, "metric", &name)
                .and_then(|()| {
                    self.limits.check_labels(
                        &at,
                        "tag_set",
                        LabelRules::Prometheus,
                        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    )
                })
                .map_err(|e| SourceError::Config(format!("datadog source: {}", e.bounded())))?;
            for &(t, v) in &s.pointlist {
                let (Some(v), true) = (v, t.is_finite()) else {
                    continue;
                };
                let t = t as i64;
                if t < from_ms || t >= to_ms {
                    continue;
                }
                b.push(t, &name, labels.iter(), v);
            }
        }
        SourceBatch::single(Kind::Metrics, "datadog_query", b.time_range(), b.finish())
            .map_err(|e| SourceError::Internal(e.to_string()))
    }
}

/// Labels of a series from its `tag_set` (or, without one, its comma-separated `scope`):
/// `host:web-1` → `host="web-1"`, a tag without a value → `<tag>="true"`, repeated names joined
/// with `,`; `extra` wins.
fn tag_labels(s: &Series, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let tags: Vec<&str> = if s.tag_set.is_empty() {
        s.scope
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "*")
            .collect()
    } else {
        s.tag_set.iter().map(String::as_str).collect()
    };
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for t in tags {
        let (k, v) = t.split_once(':').unwrap_or((t, "true"));
        let k = prometheus_name(k);
        if extra.contains_key(&k) {
            continue;
        }
        out.entry(k)
            .and_modify(|old| {
                old.push(',');
                old.push_str(v);
            })
            .or_insert_with(|| v.to_string());
    }
    out.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Reads at most [`MAX_BODY`] bytes of an answer.
pub(crate) async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!(
                "the answer is larger than {MAX_BODY} bytes; narrow the query or max_range"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `errors` (or `error`, `message`) of an error answer, else the start of the body.
fn error_detail(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
            return errs
                .iter()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join("; ");
        }
        for k in ["error", "message"] {
            if let Some(m) = v.get(k).and_then(|m| m.as_str()) {
                return m.to_string();
            }
        }
    }
    String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned()
}

#[async_trait]
impl RangeSource for DatadogQuerySource {
    fn name(&self) -> &'static str {
        "datadog_query"
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
        let answer = self.fetch(from_ms, to_ms).await.inspect_err(|e| {
            tracing::warn!(source = "datadog_query", error = %e, "Datadog query failed");
        })?;
        self.rows(&answer, from_ms, to_ms)
    }

    async fn test(&self, now_ms: i64) -> Result<TestReport, SourceError> {
        let from = now_ms - self.cfg.interval.as_millis() as i64;
        match self.pull(from, now_ms).await {
            Ok(batches) => Ok(report_of(&batches, from, now_ms, 3)),
            Err(e) => Ok(TestReport {
                reachable: !matches!(e, SourceError::Unavailable(_))
                    && !e.to_string().contains("refused the keys"),
                sample_from_ms: from,
                sample_to_ms: now_ms,
                problems: vec![e.to_string()],
                ..TestReport::default()
            }),
        }
    }
}
