//! Query-style pull sources: systems that answer "what happened between `from` and `to`"
//! (Prometheus/VictoriaMetrics `query_range`, SQL databases, ClickHouse, HTTP JSON APIs,
//! CloudWatch, Datadog).
//!
//! A [`RangeSource`] only answers for a range; the engine's scheduler decides which ranges to
//! ask for (the next interval on schedule, or the missed ranges after an outage — backfill) and
//! derives the message ids from the source id and the range, so a range pulled twice (a retry, a
//! restart after `kill -9`) is stored once.

use crate::sources::{SourceBatch, SourceError};
use async_trait::async_trait;
use serde::Serialize;

/// What a `test` of a source found, without writing anything.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TestReport {
    /// The source answered (reachability and authentication passed).
    pub reachable: bool,
    /// Rows the sample range produced, per kind (`metrics`, `logs`, `events`).
    pub rows: std::collections::BTreeMap<String, u64>,
    /// The range sampled, Unix ms.
    pub sample_from_ms: i64,
    /// End of the sampled range (exclusive), Unix ms.
    pub sample_to_ms: i64,
    /// Up to a few example rows, as JSON, secrets redacted.
    pub examples: Vec<serde_json::Value>,
    /// Problems found (empty when all is well).
    pub problems: Vec<String>,
}

/// A source that answers for an event-time range.
#[async_trait]
pub trait RangeSource: Send + Sync + 'static {
    /// The connector name (`prometheus_query`, `postgres`, …), used as the batch source.
    fn name(&self) -> &'static str;

    /// How often the scheduler pulls the next range (also the range length on schedule).
    fn interval(&self) -> std::time::Duration;

    /// The longest range one call may be asked for; longer backfills are split into ranges of
    /// at most this length.
    fn max_range(&self) -> std::time::Duration;

    /// Everything in `[from_ms, to_ms)` (event time, Unix ms). Rows whose time falls outside the
    /// range are dropped by the caller, so a source never stores a row twice across ranges.
    ///
    /// # Errors
    /// [`SourceError::Unavailable`] for a failure a retry may fix (the range is asked again);
    /// others are permanent and shown on the source.
    async fn pull(&self, from_ms: i64, to_ms: i64) -> Result<Vec<SourceBatch>, SourceError>;

    /// Reachability, authentication and a sample of the last `interval`, writing nothing.
    ///
    /// # Errors
    /// [`SourceError`] when the source cannot even be asked.
    async fn test(&self, now_ms: i64) -> Result<TestReport, SourceError>;

    /// The source's [`ScheduleConfig`] (delay for late data, backfill bounds): what its config's
    /// `schedule` table says. The default (30 s delay, 24 h backfill bound, no initial backfill)
    /// suits a source whose config has no such table.
    fn schedule(&self) -> ScheduleConfig {
        ScheduleConfig::default()
    }
}

/// When a range source pulls, besides its interval: how late data may arrive and how far back
/// it catches up. Every range source's config carries it as `schedule = { … }` and returns it
/// from [`RangeSource::schedule`].
///
/// The scheduler pulls ranges `[k·interval, (k+1)·interval)` once `now ≥ (k+1)·interval + delay`;
/// after an outage it pulls the missed ranges (at most `max_backfill` back) oldest first, in
/// chunks of at most [`RangeSource::max_range`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// How long after a range ends it is pulled, so late data is in (a Prometheus scrape lands
    /// up to a scrape interval late; VictoriaMetrics hides the last 30 s by default). Default 30s.
    #[serde(with = "humantime_serde")]
    pub delay: std::time::Duration,
    /// The furthest back a catch-up after an outage reaches; older missed ranges are skipped
    /// (and reported). Default 24h.
    #[serde(with = "humantime_serde")]
    pub max_backfill: std::time::Duration,
    /// What the first start of a source pulls from the past (0: start at the current range).
    /// Default 0s.
    #[serde(with = "humantime_serde")]
    pub initial_backfill: std::time::Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            delay: std::time::Duration::from_secs(30),
            max_backfill: std::time::Duration::from_secs(24 * 3600),
            initial_backfill: std::time::Duration::ZERO,
        }
    }
}

/// A secret a source needs (a password, a token, an auth header value): read from the
/// environment or a file when the source is built, so config files and `datasources.json` can
/// carry a reference instead of the value. A literal `value` is accepted but shown as `***`.
///
/// TOML: `password = { env = "PROM_PASSWORD" }`, `token = { file = "/run/secrets/dd" }`,
/// `token = { value = "…" }`.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretRef {
    /// The value of this environment variable.
    Env(String),
    /// The contents of this file, without a trailing newline.
    File(std::path::PathBuf),
    /// The value itself (kept as given; never shown).
    Value(crate::sinks::Secret),
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(v) => write!(f, "SecretRef::Env({v:?})"),
            SecretRef::File(p) => write!(f, "SecretRef::File({p:?})"),
            SecretRef::Value(_) => f.write_str("SecretRef::Value(***)"),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            SecretRef::Env(v) => m.serialize_entry("env", v)?,
            SecretRef::File(p) => m.serialize_entry("file", p)?,
            SecretRef::Value(_) => m.serialize_entry("value", crate::sinks::REDACTED)?,
        }
        m.end()
    }
}

impl SecretRef {
    /// The secret's value. `field` names the setting in the error.
    ///
    /// # Errors
    /// [`SourceError::Config`] when the variable is unset or the file unreadable or empty: the
    /// operator must provide it.
    pub fn resolve(&self, field: &str) -> Result<crate::sinks::Secret, SourceError> {
        let value = match self {
            SecretRef::Value(v) => v.expose().to_string(),
            SecretRef::Env(name) => std::env::var(name).map_err(|_| {
                SourceError::Config(format!(
                    "{field}: environment variable {name} is not set (or not UTF-8)"
                ))
            })?,
            SecretRef::File(p) => std::fs::read_to_string(p)
                .map_err(|e| {
                    SourceError::Config(format!("{field}: cannot read {}: {e}", p.display()))
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        };
        if value.is_empty() {
            return Err(SourceError::Config(format!("{field}: the secret is empty")));
        }
        Ok(crate::sinks::Secret::new(value))
    }
}

/// Setting names whose values are secrets wherever they appear in a source's settings.
const SECRET_KEYS: [&str; 9] = [
    "password",
    "token",
    "secret",
    "api_key",
    "app_key",
    "secret_access_key",
    "session_token",
    "bearer_token",
    "authorization",
];

/// Header names that carry credentials.
fn auth_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "cookie"
        || n == "proxy-authorization"
        || n.contains("token")
        || n.contains("key")
        || n.contains("secret")
        || n.contains("auth")
}

/// A source's settings (as JSON) fit to show: every secret-named setting (`password`, `token`,
/// `api_key`, …) replaced by `***` unless it is an `{env}`/`{file}` reference, credentials in
/// `headers` maps replaced, and user info in URLs removed. Used for `GET /api/datasources`.
pub fn redact_settings(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let reference = |v: &Value| {
        v.as_object()
            .is_some_and(|m| m.len() == 1 && (m.contains_key("env") || m.contains_key("file")))
    };
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let lk = k.to_ascii_lowercase();
                    let shown = if SECRET_KEYS.contains(&lk.as_str()) && !reference(x) {
                        Value::String(crate::sinks::REDACTED.to_string())
                    } else if lk == "headers" {
                        match x {
                            Value::Object(h) => Value::Object(
                                h.iter()
                                    .map(|(hk, hv)| {
                                        let hv = if auth_header(hk) && !reference(hv) {
                                            Value::String(crate::sinks::REDACTED.to_string())
                                        } else {
                                            redact_settings(hv)
                                        };
                                        (hk.clone(), hv)
                                    })
                                    .collect(),
                            ),
                            other => redact_settings(other),
                        }
                    } else {
                        redact_settings(x)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact_settings).collect()),
        Value::String(s) => match url::Url::parse(s) {
            Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                Value::String(u.to_string())
            }
            _ => v.clone(),
        },
        other => other.clone(),
    }
}

/// The batches of `pulled` as one [`TestReport`] for the range `[from_ms, to_ms)`: rows per
/// kind and up to `examples` rows as JSON (label and attribute values kept, so a source whose
/// rows carry secrets must not be tested on a shared screen). Shared by every range source's
/// `test`.
pub fn report_of(pulled: &[SourceBatch], from_ms: i64, to_ms: i64, examples: usize) -> TestReport {
    let mut r = TestReport {
        reachable: true,
        sample_from_ms: from_ms,
        sample_to_ms: to_ms,
        ..TestReport::default()
    };
    for b in pulled {
        *r.rows.entry(b.kind.as_str().to_string()).or_default() += b.batch.num_rows() as u64;
        let left = examples.saturating_sub(r.examples.len());
        if left == 0 {
            continue;
        }
        let sliced = b.batch.slice(0, left.min(b.batch.num_rows()));
        r.examples.extend(rows_as_json(&sliced));
    }
    r
}

/// The rows of a metric, log or event batch as JSON objects (time in ms, maps as objects).
fn rows_as_json(b: &aiops_schemas::arrow_array::RecordBatch) -> Vec<serde_json::Value> {
    use aiops_schemas::arrow_array::Array;
    use aiops_schemas::arrow_array::cast::AsArray;
    use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
    use serde_json::{Map, Value};
    let schema = b.schema();
    (0..b.num_rows())
        .map(|i| {
            let mut row = Map::new();
            for (f, col) in schema.fields().iter().zip(b.columns()) {
                if col.is_null(i) {
                    continue;
                }
                let v = if let Some(t) = col.as_primitive_opt::<TimestampMillisecondType>() {
                    Value::from(t.value(i))
                } else if let Some(x) = col.as_primitive_opt::<Float64Type>() {
                    serde_json::Number::from_f64(x.value(i))
                        .map(Value::Number)
                        .unwrap_or_else(|| Value::String(x.value(i).to_string()))
                } else if let Some(s) = col.as_string_opt::<i32>() {
                    Value::from(s.value(i))
                } else if let Some(m) = col.as_map_opt() {
                    let e = m.value(i);
                    let mut o = Map::new();
                    if let (Some(k), Some(v)) = (
                        e.column(0).as_string_opt::<i32>(),
                        e.column(1).as_string_opt::<i32>(),
                    ) {
                        for j in 0..k.len() {
                            o.insert(k.value(j).to_string(), Value::from(v.value(j)));
                        }
                    }
                    Value::Object(o)
                } else {
                    continue;
                };
                row.insert(f.name().clone(), v);
            }
            Value::Object(row)
        })
        .collect()
}
