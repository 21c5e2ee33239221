//! The typed configuration tree of `aiops run`: one TOML file, environment overrides, defaults.
//!
//! Precedence: defaults < `--config FILE` < environment `AIOPS__SECTION__KEY=value` < command-line
//! flags. Every problem in a file is reported at once, with the key path that is wrong.

use aiops_connectors::registry::PullSourceConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything `aiops run` can be told. See `aiops.example.toml` for a documented example.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the embedded log and local state. Default `./data`.
    pub data_dir: PathBuf,
    /// The event log: `embedded` (in `<data_dir>/log`) or `nats://HOST:PORT`.
    pub log: String,
    /// HTTP server settings.
    pub http: HttpConfig,
    /// Ingest limits and backpressure.
    pub ingest: IngestConfig,
    /// Embedded-log tuning (used when `log = "embedded"`).
    pub embedded: aiops_log::embedded::EmbeddedConfig,
    /// NATS JetStream tuning (used when `log` is a `nats://` URL).
    pub nats: aiops_log::nats::NatsConfig,
    /// Sources that produce data by themselves: Prometheus scrapes, the demo generator.
    pub sources: Vec<PullSourceConfig>,
    /// SQL pipelines: directory, checkpoints, event-time settings.
    pub pipelines: crate::pipelines::PipelinesConfig,
    /// Alert management: the alerting YAML, checkpoints, clock ticks.
    pub alerting: crate::alerting::AlertingSettings,
    /// Log template mining: Drain parameters, windows, new-template and surge anomalies.
    pub templates: aiops_runtime::templates::TemplateSettings,
    /// The knowledge base: a watched runbook folder, checkpoints, the optional LLM assistant.
    pub knowledge: aiops_runtime::knowledge::KnowledgeSettings,
    /// Deployments: verification windows and metrics, risk policy, deploy and rollback
    /// workflows, webhooks, Kubernetes rollout watchers.
    pub deploys: aiops_runtime::deploys::DeploySettings,
    /// Workflows and auto-heal: files, providers, secrets, users, limits.
    pub workflows: crate::workflows::WorkflowSettings,
    /// The Postgres wire endpoint and query limits.
    pub sql: crate::read::SqlSettings,
    /// The Parquet archive: age, retention, pass sizes.
    pub archive: aiops_read::archive::ArchiveConfig,
    /// Where the read side keeps what it reads besides the log (the archive directory).
    pub read: ReadConfig,
    /// API tokens, open routes, rate limits.
    pub auth: crate::auth::AuthSettings,
    /// The web console at `/`: sessions, sign-in limits, the TOTP issuer.
    pub console: crate::console::ConsoleSettings,
    /// Grafana automation: where Grafana is, the data source, folder and rule group.
    pub grafana: aiops_grafana::GrafanaSettings,
    /// The outbound guard of every HTTP call aiops makes (workflow providers, scrapes and other
    /// pull sources, data source tests, Grafana): `allow` lists the loopback, private or
    /// link-local targets that may be reached (none by default). `[workflows] outbound_allow`
    /// is merged into it.
    pub outbound: aiops_connectors::outbound::OutboundPolicy,
    /// Cluster mode (`--node NAME` with a `nats://` log): this node's name, the lease TTL.
    pub cluster: aiops_runtime::cluster::ClusterSettings,
    /// Sensitive-data masking at ingest: which detectors run (secrets and card numbers by
    /// default, personal data with `pii = true`), user rules, replace/hash/drop (docs/security.md).
    pub masking: aiops_connectors::masking::MaskingSettings,
    /// OTLP ingest: the dedicated OTLP/HTTP and OTLP/gRPC listeners, delta series kept.
    pub otlp: crate::otlp::OtlpSettings,
    /// Syslog listeners (UDP, TCP): addresses, line and connection limits, batching.
    pub syslog: crate::syslog::SyslogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            log: "embedded".to_string(),
            http: HttpConfig::default(),
            ingest: IngestConfig::default(),
            embedded: aiops_log::embedded::EmbeddedConfig::new(PathBuf::from("data/log")),
            nats: aiops_log::nats::NatsConfig::new("nats://127.0.0.1:4222"),
            sources: Vec::new(),
            outbound: aiops_connectors::outbound::OutboundPolicy::default(),
            pipelines: crate::pipelines::PipelinesConfig::default(),
            alerting: crate::alerting::AlertingSettings::default(),
            templates: aiops_runtime::templates::TemplateSettings::default(),
            knowledge: aiops_runtime::knowledge::KnowledgeSettings::default(),
            deploys: aiops_runtime::deploys::DeploySettings::default(),
            console: crate::console::ConsoleSettings::default(),
            workflows: crate::workflows::WorkflowSettings::default(),
            sql: crate::read::SqlSettings::default(),
            archive: aiops_read::archive::ArchiveConfig::default(),
            read: ReadConfig::default(),
            auth: crate::auth::AuthSettings::default(),
            grafana: aiops_grafana::GrafanaSettings::default(),
            cluster: aiops_runtime::cluster::ClusterSettings::default(),
            masking: aiops_connectors::masking::MaskingSettings::default(),
            otlp: crate::otlp::OtlpSettings::default(),
            syslog: crate::syslog::SyslogConfig::default(),
        }
    }
}

/// `[read]`: where the read side's archive lives.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReadConfig {
    /// The Parquet archive's directory. Default `<data_dir>/archive`. In cluster mode, point
    /// every node at the same shared directory (NFS, CephFS, …): then only the owner of the
    /// `archive` work unit compacts into it and every node reads it (docs/cluster.md). Unset
    /// in cluster mode, each node compacts its own local copy.
    pub archive_dir: Option<PathBuf>,
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address. Default `127.0.0.1:9464`.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes (after transfer, before decompression); larger
    /// requests get 413. Applies to the ingest routes; other API routes take at most 1 MiB.
    /// Default 8 MiB.
    pub max_body_bytes: usize,
    /// Connections open at once; at the cap new clients wait in the accept backlog until one
    /// closes. Default 512.
    pub max_connections: usize,
    /// A request head (and an idle keep-alive connection's next request) must arrive within
    /// this, or the connection is closed. Default 10s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A request body must arrive completely within this after its head, or the request is
    /// answered 408 and the connection closed. Default 30s.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            max_body_bytes: 8 << 20,
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Ingest limits: how much may be in flight before ingest pushes back with 429/503.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Log partitions per kind (`aiops.<kind>.<partition>`). Changing it later only affects new
    /// events. Default 4.
    pub partitions: u32,
    /// Appends allowed in flight at once; more wait up to `queue_timeout`. Default 64.
    pub max_inflight_appends: usize,
    /// How long a request waits for an append slot before 503 + Retry-After. Default 2s.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// How long an append may take before the request gets 503 (the client retries; message ids
    /// make the retry safe). Default 10s.
    #[serde(with = "humantime_serde")]
    pub append_timeout: Duration,
    /// Consumer lag (messages) above which ingest answers 429 until consumers catch up.
    /// Default 100000.
    pub max_consumer_lag: u64,
    /// Oldest accepted event time, before the ingest time; older rows refuse the request (400
    /// naming the row). Default 365d.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Newest accepted event time, after the ingest time (clock skew). Default 1h.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Most labels on one series, log stream, event or alert (`__name__` not counted).
    /// Default 128 (Datadog alerts carry every host tag).
    pub max_labels: usize,
    /// Longest label name, bytes. Default 4096.
    pub max_label_name_bytes: usize,
    /// Longest label value (and metric name), bytes. Default 16384.
    pub max_label_value_bytes: usize,
    /// Largest decompressed body (remote_write's snappy), bytes, checked before decompressing;
    /// more is answered 413 with the compression ratio. Default 8 × `http.max_body_bytes`.
    pub max_decoded_bytes: Option<usize>,
    /// Most series in one remote_write request (Prometheus sends at most
    /// `max_samples_per_send`, 2000 by default). Default 100000.
    pub max_series_per_request: usize,
    /// How long an `Idempotency-Key` stays bound to the hash of its request's body: the same
    /// key with a different body is answered 409 within this time. Default 10m.
    #[serde(with = "humantime_serde")]
    pub idempotency_window: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            partitions: 4,
            max_inflight_appends: 64,
            queue_timeout: Duration::from_secs(2),
            append_timeout: Duration::from_secs(10),
            max_consumer_lag: 100_000,
            max_age: Duration::from_secs(365 * 86_400),
            max_future: Duration::from_secs(3600),
            max_labels: 128,
            max_label_name_bytes: 4096,
            max_label_value_bytes: 16 * 1024,
            max_decoded_bytes: None,
            max_series_per_request: 100_000,
            idempotency_window: Duration::from_secs(600),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file or an override is not valid; the message lists every problem found.
    #[error("invalid config {origin}: {message}")]
    Invalid {
        /// The file, or "environment".
        origin: String,
        /// What is wrong, with the key path.
        message: String,
    },
}

impl Config {
    /// The workflow settings with the alerting configuration's receivers compiled in (their
    /// providers, secrets and generated workflows), as the engine, its checks, replays and
    /// rebuilds use them.
    ///
    /// # Errors
    /// The alerting configuration does not load, or a receiver does not compile.
    pub fn workflow_settings(&self) -> Result<crate::workflows::WorkflowSettings, String> {
        let (acfg, _) = self.alerting.load()?;
        let external = self
            .alerting
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.http.listen));
        self.workflows.with_receivers(&acfg, &external)
    }

    /// Loads defaults, then `file` if given, then `AIOPS__…` overrides from `env`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or variable and what is wrong.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (mut value, origin) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let v: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                    origin: path.display().to_string(),
                    message: e.to_string(),
                })?;
                (v, path.display().to_string())
            }
            None => (toml::Table::new(), "(defaults)".to_string()),
        };
        let mut from_env = false;
        for (key, raw) in env {
            let Some(rest) = key.strip_prefix("AIOPS__") else {
                continue;
            };
            from_env = true;
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut value, &path, parse_env_value(&raw)).map_err(|e| {
                ConfigError::Invalid {
                    origin: format!("environment variable {key}"),
                    message: e.to_string(),
                }
            })?;
        }
        let origin = if from_env {
            format!("{origin} with AIOPS__ overrides")
        } else {
            origin
        };
        let mut cfg: Config =
            Config::deserialize(toml::Value::Table(value)).map_err(|e| ConfigError::Invalid {
                origin: origin.clone(),
                message: e.to_string(),
            })?;
        cfg.merge_outbound_allow();
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                origin,
                message: problems.join("; "),
            });
        }
        cfg.embedded.dir = cfg.data_dir.join("log");
        Ok(cfg)
    }

    /// One allow list for every outbound call: `[outbound] allow` and the older
    /// `[workflows] outbound_allow` become the same list in both places.
    fn merge_outbound_allow(&mut self) {
        let mut all = self.outbound.allow.clone();
        for a in &self.workflows.outbound_allow {
            if !all.contains(a) {
                all.push(a.clone());
            }
        }
        self.outbound.allow = all.clone();
        self.workflows.outbound_allow = all;
        self.grafana.outbound = self.outbound.clone();
    }

    /// Values that parse but make no sense: every problem at once (none = valid).
    fn problems(&self) -> Vec<String> {
        let mut problems = self.console.problems();
        if let Err(e) = self.deploys.validate() {
            problems.push(e);
        }
        if self.ingest.partitions == 0 || self.ingest.partitions > 1024 {
            problems.push(format!(
                "ingest.partitions = {} (must be 1..=1024)",
                self.ingest.partitions
            ));
        }
        if self.ingest.max_inflight_appends == 0 {
            problems.push("ingest.max_inflight_appends must be at least 1".to_string());
        }
        let ing = &self.ingest;
        for (name, v) in [
            ("ingest.max_labels", ing.max_labels),
            ("ingest.max_label_name_bytes", ing.max_label_name_bytes),
            ("ingest.max_label_value_bytes", ing.max_label_value_bytes),
            ("ingest.max_series_per_request", ing.max_series_per_request),
            (
                "ingest.max_decoded_bytes",
                ing.max_decoded_bytes.unwrap_or(1),
            ),
        ] {
            if v == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        }
        for (name, zero) in [
            ("http.max_connections", self.http.max_connections == 0),
            (
                "http.header_read_timeout",
                self.http.header_read_timeout.is_zero(),
            ),
            (
                "http.body_read_timeout",
                self.http.body_read_timeout.is_zero(),
            ),
            ("sql.max_connections", self.sql.max_connections == 0),
            ("sql.max_unauthenticated", self.sql.max_unauthenticated == 0),
            ("sql.startup_timeout", self.sql.startup_timeout.is_zero()),
        ] {
            if zero {
                problems.push(format!("{name} must be above 0"));
            }
        }
        // Literal private or metadata scrape targets are refused at load, with the reason.
        for (i, s) in self.sources.iter().enumerate() {
            for why in s.refused_targets(&self.outbound) {
                problems.push(format!(
                    "sources[{i}] {why} (list it in [outbound] allow to scrape it)"
                ));
            }
        }
        problems.extend(self.syslog.problems());
        problems.extend(self.masking.problems());
        if self.http.max_body_bytes < 1024 {
            problems.push(format!(
                "http.max_body_bytes = {} (must be at least 1024)",
                self.http.max_body_bytes
            ));
        }
        problems
    }
}

/// Environment values are TOML scalars when they parse as such (`8`, `true`, `"x"`), else strings.
fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Why an `AIOPS__…` variable names no settable key.
#[derive(Debug, thiserror::Error)]
enum EnvKeyError {
    /// `AIOPS__` alone.
    #[error("empty key")]
    Empty,
    /// A part of the path is a value, not a section.
    #[error("{0} is not a section")]
    NotASection(String),
}

fn set_path(table: &mut toml::Table, path: &[String], v: toml::Value) -> Result<(), EnvKeyError> {
    match path {
        [] => Err(EnvKeyError::Empty),
        [last] => {
            table.insert(last.clone(), v);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, v),
                _ => Err(EnvKeyError::NotASection(first.clone())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../aiops.example.toml");
        let cfg = Config::load(Some(Path::new(path)), Vec::new()).unwrap();
        assert_eq!(cfg.log, "embedded");
        // The example documents the defaults.
        assert_eq!(cfg.pipelines, crate::pipelines::PipelinesConfig::default());
        assert_eq!(
            cfg.templates,
            aiops_runtime::templates::TemplateSettings::default()
        );
    }

    #[test]
    fn env_overrides_and_errors() {
        let cfg = Config::load(
            None,
            vec![
                ("AIOPS__INGEST__PARTITIONS".to_string(), "8".to_string()),
                ("AIOPS__LOG".to_string(), "nats://127.0.0.1:1".to_string()),
                ("UNRELATED".to_string(), "x".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(cfg.ingest.partitions, 8);
        assert_eq!(cfg.log, "nats://127.0.0.1:1");

        let err = Config::load(
            None,
            vec![("AIOPS__INGEST__PARTITIONZ".to_string(), "8".to_string())],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("partitionz"), "{err}");

        let err = Config::load(
            None,
            vec![
                ("AIOPS__INGEST__PARTITIONS".to_string(), "0".to_string()),
                ("AIOPS__HTTP__MAX_BODY_BYTES".to_string(), "10".to_string()),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ingest.partitions") && err.contains("max_body_bytes"),
            "{err}"
        );
    }
}
