//! What the engine decides: alert state changes, notification intents, incident changes and
//! statistics. Each is appended to the log as an event; a notification intent is what the workflow
//! engine acts on, keyed by an idempotency key derived from what caused it.

use crate::model::{Alert, Labels};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Decision {
    /// An alert changed state.
    AlertState(AlertChange),
    /// A group (or a storm summary) should be notified.
    Notification(Notification),
    /// An incident opened, changed or closed.
    Incident(IncidentChange),
    /// Periodic statistics.
    Stats(crate::stats::StatsSnapshot),
}

impl Decision {
    /// The `type` string of the event that carries it.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::AlertState(_) => "alert_state",
            Decision::Notification(_) => "notification",
            Decision::Incident(_) => "incident",
            Decision::Stats(_) => "alert_stats",
        }
    }

    /// Event time of the decision.
    pub fn at_ms(&self) -> i64 {
        match self {
            Decision::AlertState(c) => c.at_ms,
            Decision::Notification(n) => n.at_ms,
            Decision::Incident(i) => i.at_ms,
            Decision::Stats(s) => s.at_ms,
        }
    }

    /// A deterministic id: the same log gives the same ids.
    pub fn id(&self) -> String {
        match self {
            Decision::AlertState(c) => {
                format!("alert/{}/{}/{}", c.fingerprint, c.change.as_str(), c.at_ms)
            }
            Decision::Notification(n) => n.id.clone(),
            Decision::Incident(i) => format!("incident/{}/{}/{}", i.incident.id, i.change, i.at_ms),
            Decision::Stats(s) => format!("stats/{}", s.at_ms),
        }
    }

    /// One line for humans (the event's message).
    pub fn message(&self) -> String {
        match self {
            Decision::AlertState(c) => {
                format!("{} {} ({})", c.name, c.change.as_str(), c.fingerprint)
            }
            Decision::Notification(n) => n.text(),
            Decision::Incident(i) => format!(
                "incident {} {}: {}",
                i.incident.id, i.change, i.incident.title
            ),
            Decision::Stats(s) => format!(
                "{} raw alerts, {} deduplicated, {} notifications",
                s.total.raw, s.total.deduplicated, s.total.notifications
            ),
        }
    }
}

/// How an alert changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Started firing (new, or again after it resolved).
    Firing,
    /// The sender resolved it.
    Resolved,
    /// Not seen for its resolve timeout (or past its `endsAt`): resolved by aiops.
    StaleResolved,
    /// Changed state too often: its notifications are held.
    Flapping,
    /// Calm again.
    FlappingEnded,
}

impl Change {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Firing => "firing",
            Change::Resolved => "resolved",
            Change::StaleResolved => "stale_resolved",
            Change::Flapping => "flapping",
            Change::FlappingEnded => "flapping_ended",
        }
    }
}

/// An alert state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertChange {
    /// When (engine time).
    pub at_ms: i64,
    /// The alert.
    pub fingerprint: String,
    /// Its name.
    pub name: String,
    /// Its severity.
    pub severity: String,
    /// Its service.
    pub service: String,
    /// Its source.
    pub source: String,
    /// What changed.
    pub change: Change,
    /// Observations so far.
    pub count: u64,
    /// Its labels.
    pub labels: Labels,
}

/// An alert as it appears in a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifiedAlert {
    /// Fingerprint.
    pub fingerprint: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels.
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// Start, Unix ms.
    pub starts_at_ms: i64,
    /// End, Unix ms, when resolved.
    pub ends_at_ms: Option<i64>,
    /// Observations (repeats deduplicated into this alert).
    pub count: u64,
    /// Link to the rule.
    pub generator_url: Option<String>,
}

impl NotifiedAlert {
    /// The view of `a` with its count and status.
    pub fn of(a: &Alert, status: &str, count: u64, ends_at_ms: Option<i64>) -> NotifiedAlert {
        NotifiedAlert {
            fingerprint: a.fingerprint.clone(),
            status: status.into(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at_ms: a.starts_at_ms,
            ends_at_ms,
            count,
            generator_url: a.generator_url.clone(),
        }
    }
}

/// What a storm summary stands for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Notifications held back by the budget.
    pub notifications: u64,
    /// Firing alerts they carried.
    pub alerts: u64,
    /// Held firing alerts by alert name.
    pub by_name: BTreeMap<String, u64>,
}

/// A notification intent: the receiver should be told about this group now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Idempotency key: `notify/<route>/<group hash>/<time>` (or `…/summary/<period>`).
    pub id: String,
    /// When (engine time).
    pub at_ms: i64,
    /// The receiver.
    pub receiver: String,
    /// The route id.
    pub route: String,
    /// The group key (route id and group labels).
    pub group_key: String,
    /// The group labels.
    pub group_labels: Labels,
    /// Firing alerts.
    pub firing: Vec<NotifiedAlert>,
    /// Resolved alerts.
    pub resolved: Vec<NotifiedAlert>,
    /// Why now: `new`, `resolved`, `repeat` or `summary`.
    pub reason: String,
    /// For a storm summary: what it stands for.
    pub summary: Option<Summary>,
}

impl Notification {
    /// One line: what a pager would show.
    pub fn text(&self) -> String {
        if let Some(s) = &self.summary {
            return format!(
                "{} more alerts like this ({} notifications held by the budget of route {})",
                s.alerts, s.notifications, self.route
            );
        }
        let labels: Vec<String> = self
            .group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "[{}:{}] {{{}}} to {}",
            if self.firing.is_empty() {
                "RESOLVED".to_string()
            } else {
                "FIRING".to_string()
            },
            if self.firing.is_empty() {
                self.resolved.len()
            } else {
                self.firing.len()
            },
            labels.join(", "),
            self.receiver
        )
    }
}

/// An incident change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentChange {
    /// When (engine time).
    pub at_ms: i64,
    /// `opened`, `updated`, `acknowledged`, `resolved`.
    pub change: String,
    /// The incident after the change, bounded: its state and counts, the alert the change
    /// concerns, and the timeline entries the change added.
    pub incident: crate::incident::IncidentView,
}
