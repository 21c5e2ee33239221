//! Configuration of an HTTP JSON API source.

use super::path::JsonPath;
use super::source::HttpJsonSource;
use super::time::TimeFormat;
use crate::error::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sources::range::{ScheduleConfig, SecretRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[[sources]] type = "http_json"`: one request per range (more with pagination), the records
/// found at `mapping.rows` turned into metric, log or event rows.
///
/// `$__from` and `$__to` (the range, `[from, to)`) are substituted in the values of `query`
/// (URL-encoded as query parameters) and in the strings of `body` (a JSON template: a string
/// that is exactly `"$__from"` becomes a number in the `ms` and `s` formats), written as
/// `time_format` says. They are refused in `url` itself, where they could not be escaped.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpJsonConfig {
    /// The endpoint, `http(s)://host[:port]/path` (query parameters go in `query`).
    pub url: String,
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: Method,
    /// Query parameters, values with `$__from` / `$__to`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// `POST`: the JSON body template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// How `$__from` / `$__to` are written: `ms` (default), `s` or `rfc3339`.
    #[serde(default)]
    pub time_format: TimeFormat,
    /// Extra request headers (not secrets: use `auth`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Pagination (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    /// Most pages of one range; more is an error (narrow `interval` or `max_range`). Default 100.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// What the records are and where their fields are.
    pub mapping: Mapping,
    /// How often a range is pulled. Default 1m.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Longest range of one request sequence (backfills are split). Default 1h.
    #[serde(default = "default_max_range", with = "humantime_serde")]
    pub max_range: Duration,
    /// Timeout of each request. Default 30s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest answer read per page, bytes. Default 16 MiB.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// Delay for late data and backfill bounds.
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

/// The request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    #[default]
    Get,
    /// `POST` with `body`.
    Post,
}

/// How requests authenticate; every secret is a [`SecretRef`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: SecretRef,
    },
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretRef,
    },
    /// A header carrying a key (`X-API-Key: …`).
    Header {
        /// The header name.
        name: String,
        /// Its value.
        value: SecretRef,
    },
}

/// How further pages are found.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// The answer holds the next page's URL (absolute or relative, same origin) at `path`;
    /// absent, `null` or `""` ends the sequence.
    NextLink {
        /// The JSON path of the link.
        path: String,
    },
    /// Query parameter `param` counts pages from `start`; a page without records ends it.
    Page {
        /// The parameter.
        param: String,
        /// The first page's number. Default 1.
        #[serde(default = "one")]
        start: u64,
    },
    /// Query parameter `param` is the number of records already read; a page without records
    /// ends it.
    Offset {
        /// The parameter.
        param: String,
    },
}

/// The kind of rows the records become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    /// Metric samples: `name`/`name_field`, `value`, labels.
    Metric,
    /// Log records: `message` (body), `severity`, labels, attributes.
    Log,
    /// Events: `event_type`/`type_field`, `message`, labels, attributes.
    Event,
}

/// From JSON records to rows. Every field is a path of [`super::path`], relative to a record.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Where the records are: a path with `[*]` (`$.data[*]`), or one to an array. Default `$`.
    #[serde(default = "root")]
    pub rows: String,
    /// `metric`, `log` or `event`.
    pub kind: RowKind,
    /// The record's time.
    pub time: String,
    /// How the time is written: `auto` (default), `ms`, `s` or `rfc3339`.
    #[serde(default = "auto")]
    pub time_format: TimeFormat,
    /// Metric: the name of every row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Metric: the path of each record's name (instead of `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_field: Option<String>,
    /// Metric: the path of the value (a number, a numeric string or a boolean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Log: the path of the severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Log: the path of the body; event: of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Event: the type of every row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Event: the path of each record's type (instead of `event_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_field: Option<String>,
    /// Label name → path. A missing or `null` value leaves the label out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Log and event: attribute name → path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

fn root() -> String {
    "$".into()
}
fn auto() -> TimeFormat {
    TimeFormat::Auto
}
fn one() -> u64 {
    1
}
fn default_max_pages() -> u32 {
    100
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
fn default_max_response() -> usize {
    16 << 20
}

/// The parsed paths of a mapping.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    /// `rows`.
    pub rows: JsonPath,
    /// `time`.
    pub time: JsonPath,
    /// `name_field`.
    pub name_field: Option<JsonPath>,
    /// `value`.
    pub value: Option<JsonPath>,
    /// `severity`.
    pub severity: Option<JsonPath>,
    /// `message`.
    pub message: Option<JsonPath>,
    /// `type_field`.
    pub type_field: Option<JsonPath>,
    /// `labels`.
    pub labels: Vec<(String, JsonPath)>,
    /// `attributes`.
    pub attributes: Vec<(String, JsonPath)>,
}

impl Mapping {
    /// The parsed paths, or every problem (each naming its field).
    ///
    /// # Errors
    /// The problems.
    pub fn compile(&self) -> Result<CompiledMapping, Vec<String>> {
        let mut p = Vec::new();
        let mut path = |field: &str, text: &str| match JsonPath::parse(text) {
            Ok(x) => {
                if field != "mapping.rows" && x.has_each() {
                    p.push(format!("{field}: [*] is allowed only in mapping.rows"));
                }
                Some(x)
            }
            Err(e) => {
                p.push(format!("{field}: {e}"));
                None
            }
        };
        let rows = path("mapping.rows", &self.rows);
        let time = path("mapping.time", &self.time);
        let opt =
            |f: &str, t: &Option<String>, path: &mut dyn FnMut(&str, &str) -> Option<JsonPath>| {
                t.as_deref().and_then(|t| path(f, t))
            };
        let name_field = opt("mapping.name_field", &self.name_field, &mut path);
        let value = opt("mapping.value", &self.value, &mut path);
        let severity = opt("mapping.severity", &self.severity, &mut path);
        let message = opt("mapping.message", &self.message, &mut path);
        let type_field = opt("mapping.type_field", &self.type_field, &mut path);
        let labels: Vec<(String, JsonPath)> = self
            .labels
            .iter()
            .filter_map(|(k, v)| path(&format!("mapping.labels.{k}"), v).map(|x| (k.clone(), x)))
            .collect();
        let attributes: Vec<(String, JsonPath)> = self
            .attributes
            .iter()
            .filter_map(|(k, v)| {
                path(&format!("mapping.attributes.{k}"), v).map(|x| (k.clone(), x))
            })
            .collect();
        match self.kind {
            RowKind::Metric => {
                if self.name.is_none() == self.name_field.is_none() {
                    p.push(
                        "mapping.name, mapping.name_field: a metric mapping needs exactly one"
                            .into(),
                    );
                }
                if self.value.is_none() {
                    p.push("mapping.value: a metric mapping needs the value's path".into());
                }
                if !self.attributes.is_empty() {
                    p.push("mapping.attributes: metrics have labels only".into());
                }
            }
            RowKind::Log => {
                if self.message.is_none() {
                    p.push("mapping.message: a log mapping needs the body's path".into());
                }
            }
            RowKind::Event => {
                if self.event_type.is_none() == self.type_field.is_none() {
                    p.push("mapping.event_type, mapping.type_field: an event mapping needs exactly one".into());
                }
            }
        }
        match (p.is_empty(), rows, time) {
            (true, Some(rows), Some(time)) => Ok(CompiledMapping {
                rows,
                time,
                name_field,
                value,
                severity,
                message,
                type_field,
                labels,
                attributes,
            }),
            _ => Err(p),
        }
    }
}

impl HttpJsonConfig {
    /// The URL as `outbound` judges it: empty when allowed, else the reason.
    pub fn refused_targets(&self, outbound: &OutboundPolicy) -> Vec<String> {
        match outbound.check(&self.url) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("url: {e}")],
        }
    }

    /// Every problem of the request settings (the mapping's are [`Mapping::compile`]'s).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                if !u.username().is_empty() || u.password().is_some() {
                    p.push("url: put credentials in auth, not in the URL".into());
                }
            }
            Ok(u) => p.push(format!("url: scheme {:?} is not http or https", u.scheme())),
            Err(e) => p.push(format!("url: not a valid absolute URL: {e}")),
        }
        if self.url.contains("$__") {
            p.push("url: put $__from / $__to in `query` (they are URL-encoded there)".into());
        }
        if self.body.is_some() && self.method == Method::Get {
            p.push("body: only with method = \"POST\"".into());
        }
        if self.time_format == TimeFormat::Auto {
            p.push("time_format: ms, s or rfc3339 (auto is for reading)".into());
        }
        for (k, v) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                p.push(format!("headers.{k}: not a valid header"));
            }
            if crate::sources::range::redact_settings(&serde_json::json!({"headers": {k: v}}))
                != serde_json::json!({"headers": {k: v}})
            {
                p.push(format!(
                    "headers.{k}: credentials go in auth (type = \"header\"), where they are kept secret"
                ));
            }
        }
        if let Some(Auth::Header { name, .. }) = &self.auth
            && reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        {
            p.push(format!("auth.name: {name:?} is not a header name"));
        }
        match &self.pagination {
            Some(Pagination::NextLink { path }) => {
                if let Err(e) = JsonPath::parse(path) {
                    p.push(format!("pagination.path: {e}"));
                }
            }
            Some(Pagination::Page { param, .. } | Pagination::Offset { param })
                if param.is_empty() =>
            {
                p.push("pagination.param: must not be empty".into());
            }
            Some(Pagination::Page { .. } | Pagination::Offset { .. }) | None => {}
        }
        if self.max_pages == 0 {
            p.push("max_pages: must be at least 1".into());
        }
        if self.interval < Duration::from_secs(1) {
            p.push("interval: must be at least 1s".into());
        }
        if self.max_range < self.interval {
            p.push("max_range: must be at least interval".into());
        }
        if self.timeout.is_zero() {
            p.push("timeout: must be above 0".into());
        }
        if self.max_response_bytes == 0 {
            p.push("max_response_bytes: must be above 0".into());
        }
        p
    }

    /// Builds the running source; requests reach the API only through `outbound`'s guard.
    ///
    /// # Errors
    /// [`SourceError::Config`] listing every invalid setting (each naming its field), a refused
    /// URL, or a secret that cannot be read.
    pub fn build_with(&self, outbound: &OutboundPolicy) -> Result<HttpJsonSource, SourceError> {
        let mut problems = self.problems();
        let mapping = match self.mapping.compile() {
            Ok(m) => Some(m),
            Err(e) => {
                problems.extend(e);
                None
            }
        };
        problems.extend(self.refused_targets(outbound));
        match mapping {
            Some(m) if problems.is_empty() => HttpJsonSource::new(self.clone(), m, outbound),
            _ => Err(SourceError::Config(format!(
                "http_json source: {}",
                problems.join("; ")
            ))),
        }
    }
}
