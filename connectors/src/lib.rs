//! Sources and sinks of aiops. Connectors do not know the event log: a source yields Arrow
//! batches and the engine appends them (DESIGN.md, "Dependency direction").
//!
//! - [`sources`]: the source traits ([`sources::PushDecoder`] for request bodies pushed to aiops,
//!   [`sources::PullSource`] for sources that produce data by themselves) and one folder per
//!   connector: `remote_write`, `json`, `alertmanager`, `grafana`, `scrape`, `demo`.
//! - [`registry`]: the one list of push endpoints and pull-source configurations.
//! - [`sinks`]: the providers workflow actions call (webhook, Slack, Teams, Feishu, DingTalk,
//!   email, Jira, PagerDuty, Grafana annotations, enrichment HTTP GET, local commands): one
//!   [`sinks::Provider`] trait, one [`sinks::registry`], one folder each.
//! - [`outbound`]: the one guard every outbound HTTP call goes through (providers, scrapes and
//!   other pull sources, Grafana): address classes, the allow list, checked on the URL, after DNS
//!   and on every redirect.
//! - [`masking`]: sensitive values in bodies, labels and attributes masked before the log
//!   (built-in detectors, user rules; replace, hash or drop).
//! - [`deploys`]: sources of deployments (CI/CD webhooks, the Kubernetes rollout watcher).
//! - [`error`]: decode and source errors, with the short reasons used in metrics.

pub mod deploys;
pub mod error;
pub mod masking;
pub mod outbound;
pub mod registry;
pub mod sinks;
pub mod sources;

pub use error::{DecodeError, SourceError};
