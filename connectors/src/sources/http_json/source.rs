//! The running HTTP JSON source: requests, pagination, records to rows.

use super::config::{Auth, CompiledMapping, HttpJsonConfig, Method, Pagination, RowKind};
use super::path::JsonPath;
use super::time::{self, TimeFormat};
use crate::error::{SourceError, bound_text};
use crate::outbound::{OutboundPolicy, refusal_reason};
use crate::sinks::Secret;
use crate::sources::SourceBatch;
use crate::sources::range::{RangeSource, ScheduleConfig, TestReport, report_of};
use crate::sources::validate::{IngestLimits, LabelRules, check_event_type};
use aiops_schemas::{EventBatchBuilder, Kind, LogBatchBuilder, MetricBatchBuilder};
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

/// Pulls a JSON API.
#[derive(Debug)]
pub struct HttpJsonSource {
    cfg: HttpJsonConfig,
    map: CompiledMapping,
    client: reqwest::Client,
    url: url::Url,
    auth: Option<(String, Secret)>,
    basic: Option<(String, Secret)>,
    next_link: Option<JsonPath>,
    limits: IngestLimits,
}

/// Rows of a range, before the scheduler cuts them to the range.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The rows, one batch of the mapping's kind.
    pub batches: Vec<SourceBatch>,
    /// Records skipped: no time, no value, invalid name, label or event type.
    pub dropped: u64,
    /// Why the first record was skipped.
    pub first_problem: Option<String>,
    /// Pages read.
    pub pages: u32,
}

/// One row's text fields.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        other => Some(other.to_string()),
    }
}

/// Replaces `$__from` / `$__to` in `s`.
fn subst(s: &str, from: &str, to: &str) -> String {
    s.replace("$__from", from).replace("$__to", to)
}

/// Substitutes the placeholders in a JSON body template; a string that is exactly a placeholder
/// becomes a number when the time is numeric.
fn subst_json(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) => {
            let out = subst(s, from, to);
            if (s == "$__from" || s == "$__to")
                && let Ok(n) = out.parse::<serde_json::Number>()
            {
                return Value::Number(n);
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| subst_json(x, from, to)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), subst_json(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Builds rows of one kind.
enum Rows {
    Metric(MetricBatchBuilder),
    Log(LogBatchBuilder),
    Event(EventBatchBuilder),
}

impl HttpJsonSource {
    /// A source for validated settings (see [`HttpJsonConfig::build_with`]).
    ///
    /// # Errors
    /// [`SourceError::Config`] if a secret cannot be read or the client cannot be built.
    pub fn new(
        cfg: HttpJsonConfig,
        map: CompiledMapping,
        outbound: &OutboundPolicy,
    ) -> Result<HttpJsonSource, SourceError> {
        let client = outbound
            .client(cfg.timeout)
            .map_err(|e| SourceError::Config(format!("http client: {e}")))?;
        let url =
            url::Url::parse(&cfg.url).map_err(|e| SourceError::Config(format!("url: {e}")))?;
        let (mut auth, mut basic) = (None, None);
        match &cfg.auth {
            Some(Auth::Bearer { token }) => {
                let t = token.resolve("auth.token")?;
                auth = Some((
                    "authorization".to_string(),
                    Secret::new(format!("Bearer {}", t.expose())),
                ));
            }
            Some(Auth::Header { name, value }) => {
                auth = Some((name.clone(), value.resolve("auth.value")?));
            }
            Some(Auth::Basic { username, password }) => {
                basic = Some((username.clone(), password.resolve("auth.password")?));
            }
            None => {}
        }
        let next_link = match &cfg.pagination {
            Some(Pagination::NextLink { path }) => Some(
                JsonPath::parse(path)
                    .map_err(|e| SourceError::Config(format!("pagination.path: {e}")))?,
            ),
            _ => None,
        };
        Ok(HttpJsonSource {
            cfg,
            map,
            client,
            url,
            auth,
            basic,
            next_link,
            limits: IngestLimits::default(),
        })
    }

    /// One page: the request for `url` (query already set), its JSON answer.
    async fn page(&self, url: url::Url, body: Option<&Value>) -> Result<Value, SourceError> {
        let mut req = match self.cfg.method {
            Method::Get => self.client.get(url),
            Method::Post => {
                let b = body.map(Value::to_string).unwrap_or_default();
                self.client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(b)
            }
        };
        req = req.header("accept", "application/json");
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some((k, v)) = &self.auth {
            req = req.header(k.as_str(), v.expose());
        }
        if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, Some(p.expose()));
        }
        let mut resp = req.send().await.map_err(|e| match refusal_reason(&e) {
            Some(r) => SourceError::Config(format!("url: refused by the outbound guard: {r}")),
            None if e.is_timeout() => {
                SourceError::Unavailable("no answer in time (timeout)".into())
            }
            None => SourceError::Unavailable(e.without_url().to_string()),
        })?;
        let status = resp.status();
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            SourceError::Unavailable(format!("reading the answer: {}", e.without_url()))
        })? {
            if buf.len() + chunk.len() > self.cfg.max_response_bytes {
                return Err(SourceError::Config(format!(
                    "max_response_bytes: the answer exceeds {} bytes; narrow the range or page it",
                    self.cfg.max_response_bytes
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // The API's words, bounded; never the request (it may carry credentials).
            let why = bound_text(
                String::from_utf8_lossy(&buf[..buf.len().min(300)]).trim(),
                300,
            );
            let msg = format!("HTTP {}: {why}", status.as_u16());
            return Err(match status.as_u16() {
                401 | 403 => SourceError::Config(format!("authentication refused: {msg}")),
                408 | 429 | 500..=599 => SourceError::Unavailable(msg),
                _ => SourceError::Config(format!("request refused: {msg}")),
            });
        }
        serde_json::from_slice(&buf)
            .map_err(|e| SourceError::Unavailable(format!("the answer is not JSON: {e}")))
    }

    /// Requests every page of `[from_ms, to_ms)` and maps the records.
    ///
    /// # Errors
    /// [`SourceError`]: the request failed, or more than `max_pages` pages.
    pub async fn fetch(&self, from_ms: i64, to_ms: i64) -> Result<Parsed, SourceError> {
        let (from, to) = (
            time::write(from_ms, self.cfg.time_format),
            time::write(to_ms, self.cfg.time_format),
        );
        let body = self.cfg.body.as_ref().map(|b| subst_json(b, &from, &to));
        let mut first = self.url.clone();
        {
            let mut q = first.query_pairs_mut();
            for (k, v) in &self.cfg.query {
                q.append_pair(k, &subst(v, &from, &to));
            }
        }
        let mut out = Parsed::default();
        let mut rows = match self.cfg.mapping.kind {
            RowKind::Metric => Rows::Metric(MetricBatchBuilder::new()),
            RowKind::Log => Rows::Log(LogBatchBuilder::new()),
            RowKind::Event => Rows::Event(EventBatchBuilder::new()),
        };
        let mut url = first.clone();
        let mut seen: u64 = 0;
        loop {
            if out.pages >= self.cfg.max_pages {
                return Err(SourceError::Config(format!(
                    "max_pages: more than {} pages for one range; raise max_pages or lower interval/max_range",
                    self.cfg.max_pages
                )));
            }
            let doc = self.page(url.clone(), body.as_ref()).await?;
            out.pages += 1;
            let records = self.records(&doc);
            let n = records.len() as u64;
            for (i, r) in records.into_iter().enumerate() {
                if let Err(e) = self.push(&mut rows, r, out.pages, i) {
                    out.dropped += 1;
                    out.first_problem.get_or_insert(e);
                }
            }
            seen += n;
            let next = match &self.cfg.pagination {
                None => None,
                Some(Pagination::NextLink { .. }) => self.next_url(&url, &doc)?,
                Some(Pagination::Page { param, start }) => (n > 0).then(|| {
                    with_param(&first, param, &(start + u64::from(out.pages)).to_string())
                }),
                Some(Pagination::Offset { param }) => {
                    (n > 0).then(|| with_param(&first, param, &seen.to_string()))
                }
            };
            match next {
                Some(u) => url = u,
                None => break,
            }
        }
        let (kind, range, built) = match &mut rows {
            Rows::Metric(b) => (
                Kind::Metrics,
                b.time_range(),
                (!b.is_empty()).then(|| b.finish()),
            ),
            Rows::Log(b) => (
                Kind::Logs,
                b.time_range(),
                (!b.is_empty()).then(|| b.finish()),
            ),
            Rows::Event(b) => (
                Kind::Events,
                b.time_range(),
                (!b.is_empty()).then(|| b.finish()),
            ),
        };
        if let Some(b) = built {
            let batch = b.map_err(|e| SourceError::Internal(format!("http_json batch: {e}")))?;
            out.batches.push(SourceBatch {
                kind,
                source: "http_json",
                batch,
                time_range: range,
            });
        }
        Ok(out)
    }

    /// The records of a page.
    fn records<'a>(&self, doc: &'a Value) -> Vec<&'a Value> {
        let found = self.map.rows.select(doc);
        if !self.map.rows.has_each()
            && let [Value::Array(a)] = found.as_slice()
        {
            return a.iter().collect();
        }
        found
    }

    /// The next page's URL from a next link: same origin as the configured URL (credentials are
    /// never sent elsewhere).
    fn next_url(&self, current: &url::Url, doc: &Value) -> Result<Option<url::Url>, SourceError> {
        let Some(p) = &self.next_link else {
            return Ok(None);
        };
        let Some(link) = p.get(doc).and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let next = current.join(link).map_err(|e| {
            SourceError::Config(format!("pagination.path: the next link is not a URL: {e}"))
        })?;
        if next.origin() != self.url.origin() {
            return Err(SourceError::Config(format!(
                "pagination.path: the next link leads to another origin ({}); refused",
                bound_text(&next.origin().ascii_serialization(), 200)
            )));
        }
        Ok(Some(next))
    }

    /// Maps one record; the reason when it is skipped.
    fn push(&self, rows: &mut Rows, r: &Value, page: u32, i: usize) -> Result<(), String> {
        let at = format!("page {page} record {i}");
        let m = &self.map;
        let t = m
            .time
            .get(r)
            .and_then(|v| time::read(v, self.cfg.mapping.time_format))
            .ok_or_else(|| format!("{at}: no readable time at mapping.time"))?;
        let pairs = |list: &[(String, JsonPath)]| -> Vec<(String, String)> {
            list.iter()
                .filter_map(|(k, p)| p.get(r).and_then(text).map(|v| (k.clone(), v)))
                .collect()
        };
        let labels = pairs(&m.labels);
        let rules = match rows {
            Rows::Metric(_) => LabelRules::Prometheus,
            _ => LabelRules::Relaxed,
        };
        self.limits
            .check_labels(
                &at,
                "labels",
                rules,
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .map_err(|e| e.to_string())?;
        match rows {
            Rows::Metric(b) => {
                let name = match (&self.cfg.mapping.name, &m.name_field) {
                    (Some(n), _) => n.clone(),
                    (None, Some(p)) => p
                        .get(r)
                        .and_then(text)
                        .ok_or_else(|| format!("{at}: no name at mapping.name_field"))?,
                    (None, None) => return Err(format!("{at}: no metric name")),
                };
                self.limits
                    .check_metric_name(&at, "name", &name)
                    .map_err(|e| e.to_string())?;
                let v = m.value.as_ref().and_then(|p| p.get(r));
                let value = match v {
                    Some(Value::Number(n)) => n.as_f64(),
                    Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
                    Some(Value::Bool(x)) => Some(f64::from(u8::from(*x))),
                    _ => None,
                }
                .ok_or_else(|| format!("{at}: no number at mapping.value"))?;
                b.push(t, &name, labels, value);
            }
            Rows::Log(b) => {
                let body = m
                    .message
                    .as_ref()
                    .and_then(|p| p.get(r))
                    .and_then(text)
                    .unwrap_or_default();
                let sev = m
                    .severity
                    .as_ref()
                    .and_then(|p| p.get(r))
                    .and_then(text)
                    .unwrap_or_default();
                let attrs = pairs(&m.attributes);
                b.push(t, &sev, &body, labels, attrs);
            }
            Rows::Event(b) => {
                let ty = match (&self.cfg.mapping.event_type, &m.type_field) {
                    (Some(n), _) => n.clone(),
                    (None, Some(p)) => p
                        .get(r)
                        .and_then(text)
                        .ok_or_else(|| format!("{at}: no type at mapping.type_field"))?,
                    (None, None) => return Err(format!("{at}: no event type")),
                };
                check_event_type(&at, "type", &ty).map_err(|e| e.to_string())?;
                let msg = m
                    .message
                    .as_ref()
                    .and_then(|p| p.get(r))
                    .and_then(text)
                    .unwrap_or_default();
                let attrs = pairs(&m.attributes);
                b.push(t, &ty, &msg, labels, attrs);
            }
        }
        Ok(())
    }
}

/// `base` with query parameter `param` set to `value` (replacing an existing one).
fn with_param(base: &url::Url, param: &str, value: &str) -> url::Url {
    let mut u = base.clone();
    let kept: Vec<(String, String)> = base
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair(param, value);
    }
    u
}

#[async_trait]
impl RangeSource for HttpJsonSource {
    fn name(&self) -> &'static str {
        "http_json"
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
        let p = self.fetch(from_ms, to_ms).await?;
        if let Some(why) = &p.first_problem {
            tracing::warn!(source = "http_json", dropped = p.dropped, problem = %why, "records skipped");
        }
        Ok(p.batches)
    }

    async fn test(&self, now_ms: i64) -> Result<TestReport, SourceError> {
        let interval = i64::try_from(self.cfg.interval.as_millis()).unwrap_or(i64::MAX);
        let (from, to) = (now_ms.saturating_sub(interval), now_ms);
        match self.fetch(from, to).await {
            Ok(p) => {
                let mut r = report_of(&p.batches, from, to, 3);
                if let Some(why) = p.first_problem {
                    r.problems
                        .push(format!("{} record(s) skipped; first: {why}", p.dropped));
                }
                if p.batches.is_empty() && p.dropped == 0 {
                    r.problems
                        .push("the API returned no records for the last interval".into());
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

impl HttpJsonSource {
    /// How `$__from` / `$__to` are written.
    pub fn time_format(&self) -> TimeFormat {
        self.cfg.time_format
    }
}

/// What the unit tests reach of this module's private helpers.
#[cfg(test)]
pub(crate) mod tests_support {
    /// [`super::subst_json`].
    pub(crate) fn subst_json(v: &serde_json::Value, from: &str, to: &str) -> serde_json::Value {
        super::subst_json(v, from, to)
    }
}
