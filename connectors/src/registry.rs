//! The one list of connectors: push endpoints (served by the engine's HTTP server) and pull-source
//! configurations (built into running sources). Adding a connector adds one line here.

use crate::error::SourceError;
use crate::sources::{
    PullSource, PushDecoder, alertmanager, am_api, cloudwatch, datadog, demo, grafana, json,
    json_alerts, otlp, remote_write, scrape,
};
use serde::Deserialize;
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum PullSourceConfig {
    /// Prometheus-style scrape of text-format targets.
    Scrape(scrape::ScrapeConfig),
    /// The built-in demo telemetry generator.
    Demo(demo::DemoConfig),
}

impl PullSourceConfig {
    /// The source's type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            PullSourceConfig::Scrape(_) => "scrape",
            PullSourceConfig::Demo(_) => "demo",
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

    /// Builds the running source; network sources reach their targets only through the guard
    /// of `outbound`.
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
        }
    }

    /// The targets `outbound` refuses, with reasons (empty for sources without targets).
    pub fn refused_targets(&self, outbound: &crate::outbound::OutboundPolicy) -> Vec<String> {
        match self {
            PullSourceConfig::Scrape(c) => c.refused_targets(outbound),
            PullSourceConfig::Demo(_) => Vec::new(),
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
}
