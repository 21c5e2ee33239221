//! The kinds of input event and the log subjects they are written to.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an event is; decides its Arrow schema and its log subject `aiops.<kind>.<partition>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A metric sample: time, name, labels, value.
    Metrics,
    /// A log record: time, severity, body, stream labels, attributes.
    Logs,
    /// An alert notification from Alertmanager, Grafana or an aiops rule.
    Alerts,
    /// A generic event: a deploy, a config change, a business event.
    Events,
}

impl Kind {
    /// Every kind, in a fixed order (used for stats and docs).
    pub const ALL: [Kind; 4] = [Kind::Metrics, Kind::Logs, Kind::Alerts, Kind::Events];

    /// The kind's name as used in subjects, the CLI and the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Metrics => "metrics",
            Kind::Logs => "logs",
            Kind::Alerts => "alerts",
            Kind::Events => "events",
        }
    }

    /// The one-byte tag of the kind in the codec header; stable across versions.
    pub fn tag(self) -> u8 {
        match self {
            Kind::Metrics => 1,
            Kind::Logs => 2,
            Kind::Alerts => 3,
            Kind::Events => 4,
        }
    }

    /// The kind for a codec tag, if any.
    pub fn from_tag(tag: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// The log subject for this kind and partition: `aiops.<kind>.<partition>`.
    pub fn subject(self, partition: u32) -> String {
        format!("aiops.{}.{partition}", self.as_str())
    }

    /// The kind of an input subject `aiops.<kind>.<partition>`, if it is one.
    pub fn from_subject(subject: &str) -> Option<Kind> {
        let mut parts = subject.split('.');
        if parts.next() != Some("aiops") {
            return None;
        }
        parts.next()?.parse().ok()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a name that is not a kind.
#[derive(Debug, thiserror::Error)]
#[error("unknown event kind {0:?}: expected one of metrics, logs, alerts, events")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "metrics" | "metric" => Ok(Kind::Metrics),
            "logs" | "log" => Ok(Kind::Logs),
            "alerts" | "alert" => Ok(Kind::Alerts),
            "events" | "event" => Ok(Kind::Events),
            other => Err(UnknownKind(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_subject(&k.subject(3)), Some(k));
            assert_eq!(Kind::from_tag(k.tag()), Some(k));
            assert_eq!(k.as_str().parse::<Kind>().ok(), Some(k));
        }
        assert_eq!(Kind::from_subject("aiops.control"), None);
        assert_eq!(Kind::from_subject("other.metrics.1"), None);
        assert!("bogus".parse::<Kind>().is_err());
    }
}
