//! The one list of connectors: push endpoints (served by the engine's HTTP server) and pull-source
//! configurations (built into running sources). Adding a connector adds one line here.

use crate::error::SourceError;
use crate::sources::range::RangeSource;
use crate::sources::sql::Dialect;
use crate::sources::{
    PullSource, PushDecoder, alertmanager, am_api, clickhouse, cloudwatch, cloudwatch_query,
    datadog, datadog_query, demo, grafana, http_json, json, json_alerts, otlp, prometheus_query,
    remote_write, scrape, sql,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An HTTP route that accepts pushed data.
pub struct PushEndpoint {
    /// The path, served for `POST`.
    pub path: &'static str,
    /// Decodes request bodies.
    pub decoder: Arc<dyn PushDecoder>,
    /// One sentence for the docs and `--help`.
    pub doc: &'static str,
}

impl std::fmt::Debug for PushEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushEndpoint")
            .field("path", &self.path)
            .field("decoder", &self.decoder.name())
            .finish()
    }
}

/// Every push endpoint of this build.
pub fn push_endpoints() -> Vec<PushEndpoint> {
    vec![
        PushEndpoint {
            path: "/api/v1/write",
            decoder: Arc::new(remote_write::RemoteWriteDecoder),
            doc: "Prometheus remote_write 1.0 (snappy + protobuf WriteRequest) into metrics.",
        },
        PushEndpoint {
            path: "/api/ingest/metrics",
            decoder: Arc::new(json::JsonDecoder::metrics()),
            doc: "Metric samples as JSON or NDJSON: name, labels, value, time.",
        },
        PushEndpoint {
            path: "/api/ingest/logs",
            decoder: Arc::new(json::JsonDecoder::logs()),
            doc: "Log records as JSON or NDJSON: time, severity, body, labels, attributes.",
        },
        PushEndpoint {
            path: "/api/ingest/events",
            decoder: Arc::new(json::JsonDecoder::events()),
            doc: "Generic events (deploys, config changes, …) as JSON or NDJSON.",
        },
        PushEndpoint {
            path: "/api/alerts/webhook/alertmanager",
            decoder: Arc::new(alertmanager::AlertmanagerDecoder),
            doc: "Alertmanager webhook notifications (version 4) into alerts.",
        },
        PushEndpoint {
            path: "/api/alerts/webhook/grafana",
            decoder: Arc::new(grafana::GrafanaDecoder),
            doc: "Grafana unified-alerting webhook notifications into alerts.",
        },
        PushEndpoint {
            path: "/api/alerts/webhook/datadog",
            decoder: Arc::new(datadog::DatadogDecoder),
            doc: "Datadog monitor notifications (Webhooks integration, JSON payload) into alerts.",
        },
        PushEndpoint {
            path: "/api/alerts/webhook/cloudwatch",
            decoder: Arc::new(cloudwatch::CloudWatchDecoder),
            doc: "AWS CloudWatch alarm state changes via an SNS HTTP(S) subscription into alerts.",
        },
        PushEndpoint {
            path: "/api/alerts",
            decoder: Arc::new(json_alerts::JsonAlertsDecoder),
            doc: "Alerts as JSON or NDJSON: name, status, severity, service, labels, annotations, times.",
        },
        PushEndpoint {
            path: "/api/otlp/v1/metrics",
            decoder: Arc::new(otlp::OtlpDecoder::metrics(
                otlp::delta::DEFAULT_MAX_DELTA_SERIES,
            )),
            doc: "OTLP/HTTP metrics (protobuf or JSON, gzip) into metrics; also served at /v1/metrics.",
        },
        PushEndpoint {
            path: "/api/otlp/v1/logs",
            decoder: Arc::new(otlp::OtlpDecoder::logs()),
            doc: "OTLP/HTTP logs (protobuf or JSON, gzip) into logs; also served at /v1/logs.",
        },
        PushEndpoint {
            path: "/api/v2/alerts",
            decoder: Arc::new(am_api::AlertmanagerApiDecoder),
            doc: "Alertmanager API v2 postable alerts (what Prometheus posts to an Alertmanager).",
        },
    ]
}

/// A configured pull source (`[[sources]]` in the config file), tagged by `type`.
///
/// Two kinds of running source come out of it ([`BuiltSource`]): a [`PullSource`] that yields
/// batches by itself (scrape, demo), or a [`RangeSource`] the engine's scheduler asks for
/// event-time ranges (prometheus, http_json, sql, …). A range source's variant adds one line to
/// [`PullSourceConfig::build_range`]. `Serialize` gives the settings back for the API (secrets
/// as `***`, see [`PullSourceConfig::settings`]).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum PullSourceConfig {
    /// Prometheus-style scrape of text-format targets.
    Scrape(scrape::ScrapeConfig),
    /// The built-in demo telemetry generator.
    Demo(demo::DemoConfig),
    /// Prometheus / VictoriaMetrics `query_range` of a PromQL expression (a range source).
    Prometheus(prometheus_query::PrometheusQueryConfig),
    /// An HTTP JSON API: requests per range, pagination, JSON paths to rows (a range source).
    #[serde(rename = "http_json")]
    HttpJson(http_json::HttpJsonConfig),
    /// PostgreSQL: a SQL query per range, read-only session (a range source).
    Postgres(sql::SqlConfig),
    /// MySQL / MariaDB: a SQL query per range, read-only session (a range source).
    Mysql(sql::SqlConfig),
    /// ClickHouse over its HTTP interface (a range source).
    Clickhouse(clickhouse::ClickHouseConfig),
    /// CloudWatch `GetMetricData`, SigV4-signed (a range source).
    Cloudwatch(cloudwatch_query::CloudWatchQueryConfig),
    /// Datadog metrics query `/api/v1/query` (a range source).
    Datadog(datadog_query::DatadogQueryConfig),
}

/// A source built from its settings.
pub enum BuiltSource {
    /// Yields batches by itself; the engine appends what comes.
    Stream(Box<dyn PullSource>),
    /// Answers for event-time ranges; the engine's scheduler picks the ranges.
    Range(Box<dyn RangeSource>),
}

impl std::fmt::Debug for BuiltSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuiltSource::Stream(s) => write!(f, "BuiltSource::Stream({})", s.name()),
            BuiltSource::Range(s) => write!(f, "BuiltSource::Range({})", s.name()),
        }
    }
}

impl PullSourceConfig {
    /// The source's type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            PullSourceConfig::Scrape(_) => "scrape",
            PullSourceConfig::Demo(_) => "demo",
            PullSourceConfig::Prometheus(_) => "prometheus",
            PullSourceConfig::HttpJson(_) => "http_json",
            PullSourceConfig::Postgres(_) => "postgres",
            PullSourceConfig::Mysql(_) => "mysql",
            PullSourceConfig::Clickhouse(_) => "clickhouse",
            PullSourceConfig::Cloudwatch(_) => "cloudwatch",
            PullSourceConfig::Datadog(_) => "datadog",
        }
    }

    /// Parses settings given as JSON (the API's body, `datasources.json`), naming the field at
    /// fault: serde's messages for a bad value inside an internally tagged enum do not say where
    /// it is, so on an error the settings are read again as the type's own config with the path
    /// tracked (`step: invalid value: …`).
    ///
    /// # Errors
    /// What is wrong, prefixed with the field's path when known.
    pub fn from_json(v: &serde_json::Value) -> Result<PullSourceConfig, String> {
        fn located<T: serde::de::DeserializeOwned>(rest: serde_json::Value) -> Option<String> {
            serde_path_to_error::deserialize::<_, T>(rest)
                .err()
                .map(|e| {
                    let path = e.path().to_string();
                    if path == "." || path.is_empty() {
                        e.inner().to_string()
                    } else {
                        format!("{path}: {}", e.inner())
                    }
                })
        }
        let err = match serde_json::from_value::<PullSourceConfig>(v.clone()) {
            Ok(c) => return Ok(c),
            Err(e) => e.to_string(),
        };
        let mut rest = v.clone();
        let ty = rest
            .as_object_mut()
            .and_then(|m| m.remove("type"))
            .and_then(|t| t.as_str().map(str::to_string));
        let found = match ty.as_deref() {
            Some("scrape") => located::<scrape::ScrapeConfig>(rest),
            Some("demo") => located::<demo::DemoConfig>(rest),
            Some("prometheus") => located::<prometheus_query::PrometheusQueryConfig>(rest),
            Some("http_json") => located::<http_json::HttpJsonConfig>(rest),
            Some("postgres" | "mysql") => located::<sql::SqlConfig>(rest),
            Some("clickhouse") => located::<clickhouse::ClickHouseConfig>(rest),
            Some("cloudwatch") => located::<cloudwatch_query::CloudWatchQueryConfig>(rest),
            Some("datadog") => located::<datadog_query::DatadogQueryConfig>(rest),
            _ => None,
        };
        Err(found.unwrap_or(err))
    }

    /// The settings as JSON (with `type`) fit to show: secrets as `***` (see
    /// [`crate::sources::range::redact_settings`]).
    pub fn settings(&self) -> serde_json::Value {
        let v = serde_json::to_value(self).unwrap_or_else(
            |e| serde_json::json!({"type": self.type_name(), "error": e.to_string()}),
        );
        crate::sources::range::redact_settings(&v)
    }

    /// The range source of a range type, built with its requests passing `outbound`'s guard;
    /// `None` for the stream types (scrape, demo).
    ///
    /// # Errors
    /// [`SourceError::Config`] naming the invalid setting, the refused target or the unreadable
    /// secret.
    pub fn build_range(
        &self,
        outbound: &crate::outbound::OutboundPolicy,
    ) -> Option<Result<Box<dyn RangeSource>, SourceError>> {
        fn boxed<S: RangeSource>(
            r: Result<S, SourceError>,
        ) -> Option<Result<Box<dyn RangeSource>, SourceError>> {
            Some(r.map(|s| Box::new(s) as Box<dyn RangeSource>))
        }
        match self {
            PullSourceConfig::Prometheus(c) => boxed(c.build_with(outbound)),
            PullSourceConfig::HttpJson(c) => boxed(c.build_with(outbound)),
            PullSourceConfig::Postgres(c) => boxed(c.build(Dialect::Postgres, outbound)),
            PullSourceConfig::Mysql(c) => boxed(c.build(Dialect::Mysql, outbound)),
            PullSourceConfig::Clickhouse(c) => boxed(c.build_with(outbound)),
            PullSourceConfig::Cloudwatch(c) => boxed(c.build_with(outbound)),
            PullSourceConfig::Datadog(c) => boxed(c.build_with(outbound)),
            PullSourceConfig::Scrape(_) | PullSourceConfig::Demo(_) => None,
        }
    }

    /// Builds the running source of any type.
    ///
    /// # Errors
    /// As [`PullSourceConfig::build_range`] and [`PullSourceConfig::build_with`].
    pub fn build_any(
        &self,
        outbound: &crate::outbound::OutboundPolicy,
    ) -> Result<BuiltSource, SourceError> {
        match self.build_range(outbound) {
            Some(r) => r.map(BuiltSource::Range),
            None => self.build_with(outbound).map(BuiltSource::Stream),
        }
    }

    /// Builds the running source with the default outbound policy (no loopback, private,
    /// link-local or metadata targets).
    ///
    /// # Errors
    /// [`SourceError::Config`] naming the invalid setting.
    pub fn build(&self) -> Result<Box<dyn PullSource>, SourceError> {
        self.build_with(&crate::outbound::OutboundPolicy::default())
    }

    /// Builds the running stream source; network sources reach their targets only through the
    /// guard of `outbound`. A range type is built with [`PullSourceConfig::build_range`] (or
    /// [`PullSourceConfig::build_any`]); here it is a [`SourceError::Config`].
    ///
    /// # Errors
    /// [`SourceError::Config`] naming the invalid setting or the refused target.
    pub fn build_with(
        &self,
        outbound: &crate::outbound::OutboundPolicy,
    ) -> Result<Box<dyn PullSource>, SourceError> {
        match self {
            PullSourceConfig::Scrape(c) => c.build_with(outbound),
            PullSourceConfig::Demo(c) => c.build(),
            other => Err(SourceError::Config(format!(
                "{} is a range source: the engine's range scheduler runs it",
                other.type_name()
            ))),
        }
    }

    /// The targets `outbound` refuses, with reasons (empty for sources without targets).
    pub fn refused_targets(&self, outbound: &crate::outbound::OutboundPolicy) -> Vec<String> {
        match self {
            PullSourceConfig::Scrape(c) => c.refused_targets(outbound),
            PullSourceConfig::Demo(_) => Vec::new(),
            PullSourceConfig::Prometheus(c) => c.refused_targets(outbound),
            PullSourceConfig::HttpJson(c) => c.refused_targets(outbound),
            PullSourceConfig::Postgres(c) => c.refused_targets(Dialect::Postgres, outbound),
            PullSourceConfig::Mysql(c) => c.refused_targets(Dialect::Mysql, outbound),
            PullSourceConfig::Clickhouse(c) => c.refused_targets(outbound),
            PullSourceConfig::Cloudwatch(c) => c.refused_targets(outbound),
            PullSourceConfig::Datadog(c) => c.refused_targets(outbound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn endpoints_are_unique_and_documented() {
        let eps = push_endpoints();
        let paths: HashSet<_> = eps.iter().map(|e| e.path).collect();
        let names: HashSet<_> = eps.iter().map(|e| e.decoder.name()).collect();
        assert_eq!(paths.len(), eps.len());
        assert_eq!(names.len(), eps.len());
        assert!(
            eps.iter()
                .all(|e| !e.doc.is_empty() && e.path.starts_with("/api/"))
        );
    }

    #[test]
    fn pull_configs_parse_from_toml() {
        #[derive(Deserialize)]
        struct F {
            sources: Vec<PullSourceConfig>,
        }
        let f: F = toml::from_str(
            "[[sources]]\ntype = \"scrape\"\njob = \"node\"\ntargets = [\"127.0.0.1:9100\"]\ninterval = \"5s\"\n\n[[sources]]\ntype = \"demo\"\n",
        )
        .unwrap();
        assert_eq!(f.sources.len(), 2);
        assert_eq!(f.sources[0].type_name(), "scrape");
        // A loopback target is refused by default and built when the allow list names it.
        assert!(f.sources[0].build().is_err());
        assert_eq!(f.sources[0].refused_targets(&Default::default()).len(), 1);
        let allow = crate::outbound::OutboundPolicy::allowing(["127.0.0.1"]);
        assert!(f.sources.iter().all(|s| s.build_with(&allow).is_ok()));
        let bad: Result<F, _> = toml::from_str("[[sources]]\ntype = \"scrape\"\njobb = \"x\"\n");
        assert!(bad.is_err());
    }

    #[test]
    fn range_configs_build_show_settings_and_name_bad_fields() {
        #[derive(Deserialize)]
        struct F {
            sources: Vec<PullSourceConfig>,
        }
        let f: F = toml::from_str(
            "[[sources]]\ntype = \"prometheus\"\nurl = \"http://127.0.0.1:9090\"\nquery = \"up\"\n\
             bearer_token = { value = \"hunter2-secret\" }\n\n\
             [[sources]]\ntype = \"http_json\"\nurl = \"http://127.0.0.1:8080/x\"\n\
             mapping = { kind = \"log\", time = \"ts\", message = \"msg\" }\n",
        )
        .unwrap();
        let allow = crate::outbound::OutboundPolicy::allowing(["127.0.0.1"]);
        for s in &f.sources {
            assert!(
                matches!(s.build_any(&allow), Ok(BuiltSource::Range(_))),
                "{s:?}"
            );
            assert!(
                s.build_with(&allow).is_err(),
                "a range source is not a stream"
            );
            assert!(
                s.build_range(&Default::default()).unwrap().is_err(),
                "loopback refused"
            );
        }
        let shown = f.sources[0].settings();
        assert_eq!(shown["type"], "prometheus");
        assert_eq!(shown["query"], "up");
        assert!(!shown.to_string().contains("hunter2"), "{shown}");
        assert_eq!(f.sources[1].settings()["type"], "http_json");
        let e = PullSourceConfig::from_json(&serde_json::json!({
            "type": "prometheus", "url": "http://h", "query": "up", "step": "soon"
        }))
        .unwrap_err();
        assert!(e.starts_with("step:"), "{e}");
        let e = PullSourceConfig::from_json(
            &serde_json::json!({"type": "http_json", "url": "http://h",
            "mapping": {"kind": "log", "time": "ts", "mesage": "m"}}),
        )
        .unwrap_err();
        assert!(e.contains("mapping") && e.contains("mesage"), "{e}");
    }
}
