//! The running `query_range` source.
//!
//! Ranges: Prometheus evaluates at `start, start+step, …, ≤ end` — both ends included. A range
//! `[from, to)` is asked as `start` = the first multiple of `step` at or after `from` and `end`
//! = the last multiple of `step` before `to`, so consecutive ranges share no evaluation time
//! and every time is a multiple of `step` whichever ranges the scheduler picks.

use super::config::PrometheusQueryConfig;
use crate::error::SourceError;
use crate::outbound::{OutboundPolicy, refusal_reason};
use crate::sinks::Secret;
use crate::sources::SourceBatch;
use crate::sources::range::{RangeSource, ScheduleConfig, TestReport, report_of};
use crate::sources::validate::{IngestLimits, LabelRules};
use aiops_schemas::{Kind, MetricBatchBuilder};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest answer read, bytes: a query matching far more than intended is refused, not buffered.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How requests authenticate.
#[derive(Debug, Clone)]
enum Auth {
    Basic(String, Secret),
    Bearer(Secret),
}

/// Evaluates a PromQL expression over ranges.
#[derive(Debug)]
pub struct PrometheusQuerySource {
    cfg: PrometheusQueryConfig,
    client: reqwest::Client,
    endpoint: url::Url,
    auth: Option<Auth>,
    step_ms: i64,
    limits: IngestLimits,
}

/// `{"status": …, "data": {"resultType": …, "result": […]}, "error": …}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    #[serde(default)]
    result: Vec<Series>,
}

/// One series of a matrix.
#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Rows of one answer, before validation.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Rows built.
    pub batch: Option<SourceBatch>,
    /// Points dropped: NaN values, times outside the range, invalid names or labels.
    pub dropped: u64,
    /// The first reason a point was dropped for a bad name or label.
    pub first_problem: Option<String>,
}

fn bounded(s: &str) -> String {
    crate::error::bound_text(s, 512)
}

impl PrometheusQuerySource {
    /// A source for validated settings (see [`PrometheusQueryConfig::build_with`]).
    ///
    /// # Errors
    /// [`SourceError::Config`] if a secret cannot be read or the HTTP client cannot be built.
    pub fn new(
        cfg: PrometheusQueryConfig,
        outbound: &OutboundPolicy,
    ) -> Result<PrometheusQuerySource, SourceError> {
        let client = outbound
            .client(cfg.timeout)
            .map_err(|e| SourceError::Config(format!("http client: {e}")))?;
        let endpoint = url::Url::parse(&cfg.endpoint())
            .map_err(|e| SourceError::Config(format!("url: {e}")))?;
        let auth = match (&cfg.basic_auth, &cfg.bearer_token) {
            (Some(b), _) => Some(Auth::Basic(
                b.username.clone(),
                b.password.resolve("basic_auth.password")?,
            )),
            (None, Some(t)) => Some(Auth::Bearer(t.resolve("bearer_token")?)),
            (None, None) => None,
        };
        let step_ms = i64::try_from(cfg.step.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        Ok(PrometheusQuerySource {
            cfg,
            client,
            endpoint,
            auth,
            step_ms,
            limits: IngestLimits::default(),
        })
    }

    /// The evaluation times `(start, end)` (ms, both included) that cover `[from_ms, to_ms)`,
    /// or `None` when no multiple of `step` falls in it.
    pub fn eval_range(&self, from_ms: i64, to_ms: i64) -> Option<(i64, i64)> {
        let s = self.step_ms;
        let start = from_ms.div_euclid(s) * s + if from_ms.rem_euclid(s) == 0 { 0 } else { s };
        let end = (to_ms - 1).div_euclid(s) * s;
        (start <= end).then_some((start, end))
    }

    /// Asks the server; the body of a successful answer.
    async fn ask(&self, start_ms: i64, end_ms: i64) -> Result<Vec<u8>, SourceError> {
        let secs = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        let step = format!("{}.{:03}", self.step_ms / 1000, self.step_ms % 1000);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &self.cfg.query)
            .append_pair("start", &secs(start_ms))
            .append_pair("end", &secs(end_ms))
            .append_pair("step", &step)
            // VictoriaMetrics: do not answer from its rollup cache, which may predate data that
            // arrived late (Prometheus ignores the parameter).
            .append_pair("nocache", "1")
            .finish();
        let mut req = self
            .client
            .post(self.endpoint.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        req = match &self.auth {
            Some(Auth::Basic(u, p)) => req.basic_auth(u, Some(p.expose())),
            Some(Auth::Bearer(t)) => req.bearer_auth(t.expose()),
            None => req,
        };
        let mut resp = req.send().await.map_err(|e| match refusal_reason(&e) {
            Some(r) => SourceError::Config(format!("url: refused by the outbound guard: {r}")),
            None if e.is_timeout() => SourceError::Unavailable(format!(
                "no answer within {} (timeout)",
                humantime_serde::re::humantime::format_duration(self.cfg.timeout)
            )),
            None => SourceError::Unavailable(e.without_url().to_string()),
        })?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            SourceError::Unavailable(format!("reading the answer: {}", e.without_url()))
        })? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(SourceError::Config(format!(
                    "the answer exceeds {} MiB; narrow query or lower max_range/step",
                    MAX_RESPONSE_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(body);
        }
        // Prometheus explains a refused query in its JSON body.
        let why = serde_json::from_slice::<Answer>(&body)
            .ok()
            .and_then(|a| match (a.error_type, a.error) {
                (Some(t), Some(e)) => Some(format!("{t}: {e}")),
                (None, Some(e)) => Some(e),
                _ => None,
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
        let msg = format!("HTTP {}: {}", status.as_u16(), bounded(why.trim()));
        Err(match status.as_u16() {
            401 | 403 => SourceError::Config(format!("authentication refused: {msg}")),
            429 | 500..=599 => SourceError::Unavailable(msg),
            _ => SourceError::Config(format!("query refused: {msg}")),
        })
    }

    /// Metric rows of an answer, points outside `[from_ms, to_ms)` and NaN values dropped.
    ///
    /// # Errors
    /// [`SourceError::Config`] for an answer that is not a matrix, or a series without a name
    /// when `metric` is not set; [`SourceError::Unavailable`] for an answer that is not JSON.
    pub fn parse(&self, body: &[u8], from_ms: i64, to_ms: i64) -> Result<Parsed, SourceError> {
        let a: Answer = serde_json::from_slice(body).map_err(|e| {
            SourceError::Unavailable(format!("the answer is not Prometheus API JSON: {e}"))
        })?;
        if a.status != "success" {
            return Err(SourceError::Config(format!(
                "query refused: {}",
                bounded(a.error.as_deref().unwrap_or("status is not success"))
            )));
        }
        let Some(data) = a.data else {
            return Err(SourceError::Config("the answer has no data".into()));
        };
        if data.result_type != "matrix" {
            return Err(SourceError::Config(format!(
                "query: the result is a {}, not a matrix (range vector)",
                bounded(&data.result_type)
            )));
        }
        let mut out = Parsed::default();
        let mut b = MetricBatchBuilder::new();
        for (si, s) in data.result.iter().enumerate() {
            let name = match (&self.cfg.metric, s.metric.get("__name__")) {
                (Some(m), _) => m.as_str(),
                (None, Some(n)) => n.as_str(),
                (None, None) => {
                    return Err(SourceError::Config(
                        "metric: the query returns series without __name__ (a function or an \
                         operator drops it); set `metric` to name them"
                            .into(),
                    ));
                }
            };
            let labels: Vec<(&str, &str)> = s
                .metric
                .iter()
                .filter(|(k, _)| *k != "__name__" && !self.cfg.labels.contains_key(*k))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(
                    self.cfg
                        .labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                )
                .collect();
            let checked = self
                .limits
                .check_metric_name(format_args!("series {si}"), "__name__", name)
                .and_then(|()| {
                    self.limits.check_labels(
                        format_args!("series {si}"),
                        "labels",
                        LabelRules::Prometheus,
                        labels.iter().copied(),
                    )
                });
            if let Err(e) = checked {
                out.dropped += s.values.len() as u64;
                out.first_problem.get_or_insert_with(|| e.to_string());
                continue;
            }
            for (t, v) in &s.values {
                let ms = (t * 1000.0).round() as i64;
                // Prometheus writes NaN, +Inf and -Inf as strings; Rust parses all three.
                let value: f64 = match v.parse() {
                    Ok(x) => x,
                    Err(_) => {
                        out.dropped += 1;
                        continue;
                    }
                };
                if value.is_nan() || ms < from_ms || ms >= to_ms {
                    out.dropped += 1;
                    continue;
                }
                b.push(ms, name, labels.iter().copied(), value);
            }
        }
        if !b.is_empty() {
            let time_range = b.time_range();
            let batch = b
                .finish()
                .map_err(|e| SourceError::Internal(format!("metric batch: {e}")))?;
            out.batch = Some(SourceBatch {
                kind: Kind::Metrics,
                source: "prometheus",
                batch,
                time_range,
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl RangeSource for PrometheusQuerySource {
    fn name(&self) -> &'static str {
        "prometheus"
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
        let Some((start, end)) = self.eval_range(from_ms, to_ms) else {
            return Ok(Vec::new());
        };
        let body = self.ask(start, end).await?;
        let parsed = self.parse(&body, from_ms, to_ms)?;
        if let Some(p) = &parsed.first_problem {
            tracing::warn!(source = "prometheus", dropped = parsed.dropped, problem = %p, "points with invalid names or labels dropped");
        }
        Ok(parsed.batch.into_iter().collect())
    }

    async fn test(&self, now_ms: i64) -> Result<TestReport, SourceError> {
        let interval = i64::try_from(self.cfg.interval.as_millis()).unwrap_or(i64::MAX);
        let (from, to) = (now_ms.saturating_sub(interval), now_ms);
        match self.pull(from, to).await {
            Ok(batches) => {
                let mut r = report_of(&batches, from, to, 3);
                if batches.is_empty() {
                    r.problems
                        .push("the query returned no points for the last interval".into());
                }
                Ok(r)
            }
            Err(e) => Ok(TestReport {
                reachable: !matches!(e, SourceError::Unavailable(_)),
                sample_from_ms: from,
                sample_to_ms: to,
                problems: vec![e.to_string()],
                ..TestReport::default()
            }),
        }
    }
}
