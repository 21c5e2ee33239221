//! Configuration of a SQL pull source (`type = "postgres"` or `type = "mysql"`).

use super::mapping::RowMapping;
use super::query::{Dialect, rewrite};
use super::source::SqlSource;
use crate::error::SourceError;
use crate::outbound::OutboundPolicy;
use crate::sources::range::{ScheduleConfig, SecretRef};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[[sources]] type = "postgres"` or `"mysql"` (MySQL and MariaDB).
///
/// The target is `url` (`postgres://user@host:5432/db`, `mysql://user@host:3306/db`, without a
/// password) or `host`/`port`/`user`/`database`; the password is a secret reference (an
/// environment variable or a file), so it is never part of the configuration anyone reads back.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// Connection URL without a password (`postgres://aiops@db:5432/shop`). Either this or
    /// `host`.
    #[serde(default)]
    pub url: Option<String>,
    /// Database host (name or address). Either this or `url`.
    #[serde(default)]
    pub host: Option<String>,
    /// Port. Default 5432 (PostgreSQL) or 3306 (MySQL).
    #[serde(default)]
    pub port: Option<u16>,
    /// User name.
    #[serde(default)]
    pub user: Option<String>,
    /// Database name.
    #[serde(default)]
    pub database: Option<String>,
    /// The password: `{ env = "VAR" }`, `{ file = "/run/secrets/db" }` (or `{ value = "…" }`,
    /// shown as `***`). Absent for trust / peer authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// The query. `$__from` / `$__to` (timestamps, UTC) and `$__from_ms` / `$__to_ms` (Unix ms)
    /// are bound as parameters for the range pulled; rows are kept when their time is in
    /// `[from, to)`.
    pub query: String,
    /// How often the next range is pulled (and its length). Default 1m.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Longest range one query covers; a longer backfill is split. Default 1h.
    #[serde(default = "default_max_range", with = "humantime_serde")]
    pub max_range: Duration,
    /// Statement timeout, set in the session (PostgreSQL `statement_timeout`, MySQL
    /// `max_execution_time`, MariaDB `max_statement_time`) and enforced by aiops as well.
    /// Default 10s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Most rows one pull may return; more is an error (narrow `max_range` or raise this), not a
    /// silent cut. Default 100000.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// How result columns become metrics, logs or events.
    pub mapping: RowMapping,
    /// Delay for late rows and backfill bounds.
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_max_range() -> Duration {
    Duration::from_secs(3600)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_rows() -> usize {
    100_000
}

/// Where the source connects, resolved from `url` or the separate fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name (empty: the driver's default).
    pub user: String,
    /// Database (empty: the server's default).
    pub database: String,
}

impl SqlConfig {
    /// The connection target of this config for `dialect`.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn target(&self, dialect: Dialect) -> Result<Target, String> {
        let (scheme, default_port) = match dialect {
            Dialect::Postgres => ("postgres", 5432),
            _ => ("mysql", 3306),
        };
        match (&self.url, &self.host) {
            (Some(_), Some(_)) => Err("set either url or host, not both".into()),
            (None, None) => Err("set url or host".into()),
            (None, Some(host)) => Ok(Target {
                host: host.clone(),
                port: self.port.unwrap_or(default_port),
                user: self.user.clone().unwrap_or_default(),
                database: self.database.clone().unwrap_or_default(),
            }),
            (Some(raw), None) => {
                // Never echo the URL: it might hold a password despite the rule.
                let u = url::Url::parse(raw).map_err(|e| format!("url does not parse: {e}"))?;
                let ok_scheme = match dialect {
                    Dialect::Postgres => matches!(u.scheme(), "postgres" | "postgresql"),
                    _ => matches!(u.scheme(), "mysql" | "mariadb"),
                };
                if !ok_scheme {
                    return Err(format!("url must start with {scheme}://"));
                }
                if u.password().is_some() {
                    return Err(
                        "url must not contain the password: use password = { env = \"…\" } or { file = \"…\" }"
                            .into(),
                    );
                }
                if u.query().is_some() {
                    return Err("url must not have query parameters".into());
                }
                if self.port.is_some() || self.user.is_some() || self.database.is_some() {
                    return Err("with url, leave port, user and database out".into());
                }
                let host = u
                    .host_str()
                    .ok_or("url has no host")?
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                let user = percent_decode(u.username());
                let database = percent_decode(u.path().trim_start_matches('/'));
                Ok(Target {
                    host,
                    port: u.port().unwrap_or(default_port),
                    user,
                    database,
                })
            }
        }
    }

    /// The target `outbound` refuses by name or literal address, with its reason (names are
    /// checked again on every address they resolve to when the source connects).
    pub fn refused_targets(&self, dialect: Dialect, outbound: &OutboundPolicy) -> Vec<String> {
        let Ok(t) = self.target(dialect) else {
            return Vec::new();
        };
        let url = match t.host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) => format!("http://[{ip}]:{}/", t.port),
            _ => format!("http://{}:{}/", t.host, t.port),
        };
        match outbound.check(&url) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("target {}:{}: {e}", t.host, t.port)],
        }
    }

    /// Every problem of the config on its own (no connection), including a target `outbound`
    /// refuses by name or literal address.
    pub fn problems(&self, dialect: Dialect, outbound: &OutboundPolicy) -> Vec<String> {
        let mut problems = Vec::new();
        match self.target(dialect) {
            Ok(_) => problems.extend(self.refused_targets(dialect, outbound)),
            Err(e) => problems.push(e),
        }
        if let Some(Err(e)) = self.password.as_ref().map(|p| p.resolve("password")) {
            problems.push(config_message(&e));
        }
        if let Err(e) = rewrite(&self.query, dialect) {
            problems.push(e.to_string());
        }
        if self.interval < Duration::from_secs(1) {
            problems.push(format!("interval {:?} is below 1s", self.interval));
        }
        if self.max_range < self.interval {
            problems.push("max_range must be at least the interval".into());
        }
        if self.timeout < Duration::from_millis(100) {
            problems.push(format!("timeout {:?} is below 100ms", self.timeout));
        }
        if self.max_rows == 0 {
            problems.push("max_rows must be at least 1".into());
        }
        if let Err(e) = self.mapping.check() {
            problems.push(e.to_string());
        }
        problems
    }

    /// Builds the running source; it connects only to addresses `outbound` allows.
    ///
    /// # Errors
    /// [`SourceError::Config`] listing every problem.
    pub fn build(
        &self,
        dialect: Dialect,
        outbound: &OutboundPolicy,
    ) -> Result<SqlSource, SourceError> {
        let problems = self.problems(dialect, outbound);
        if !problems.is_empty() {
            return Err(SourceError::Config(format!(
                "{} source: {}",
                dialect_name(dialect),
                problems.join("; ")
            )));
        }
        SqlSource::new(self.clone(), dialect, outbound.clone())
    }
}

/// The message of a [`SourceError`] without its "invalid source config" preamble, for a list
/// of problems that already says what it is about.
pub(crate) fn config_message(e: &SourceError) -> String {
    match e {
        SourceError::Config(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The connector name of a dialect.
pub fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "postgres",
        Dialect::Mysql => "mysql",
        Dialect::ClickHouse | Dialect::ClickHouseInline => "clickhouse",
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
