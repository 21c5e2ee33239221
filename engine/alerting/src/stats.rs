//! Alerting statistics by source, severity and service: raw alerts, deduplicated alerts,
//! notifications (so the noise-reduction ratio), and MTTA/MTTR of incidents.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Counts of one slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Alert observations received (every repeat counts).
    pub raw: u64,
    /// Distinct alert firings after dedup (an alert firing again after it resolved counts again).
    pub deduplicated: u64,
    /// Notification intents carrying alerts of this slice.
    pub notifications: u64,
}

impl Counts {
    /// Raw alerts per notification (how much noise aiops took away); 0 without notifications.
    pub fn noise_reduction(&self) -> f64 {
        if self.notifications == 0 {
            0.0
        } else {
            self.raw as f64 / self.notifications as f64
        }
    }
}

/// The statistics state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// All alerts.
    pub total: Counts,
    /// By source.
    pub by_source: BTreeMap<String, Counts>,
    /// By severity.
    pub by_severity: BTreeMap<String, Counts>,
    /// By service.
    pub by_service: BTreeMap<String, Counts>,
    /// Incidents acknowledged and the sum of their times to acknowledge.
    pub acked: u64,
    /// Sum of times to acknowledge, ms.
    pub ack_ms_sum: i64,
    /// Incidents resolved.
    pub resolved: u64,
    /// Sum of times to resolve, ms.
    pub resolve_ms_sum: i64,
}

/// What slice an alert belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Slice<'a> {
    /// Source.
    pub source: &'a str,
    /// Severity.
    pub severity: &'a str,
    /// Service.
    pub service: &'a str,
}

impl Stats {
    fn each(&mut self, s: Slice<'_>, f: impl Fn(&mut Counts)) {
        f(&mut self.total);
        f(self.by_source.entry(s.source.to_string()).or_default());
        f(self.by_severity.entry(s.severity.to_string()).or_default());
        f(self.by_service.entry(s.service.to_string()).or_default());
    }

    /// One observation.
    pub fn raw(&mut self, s: Slice<'_>) {
        self.each(s, |c| c.raw += 1);
    }

    /// One new firing.
    pub fn deduplicated(&mut self, s: Slice<'_>) {
        self.each(s, |c| c.deduplicated += 1);
    }

    /// One notification carrying alerts of these slices (each slice value counted once).
    pub fn notification<'a>(&mut self, slices: impl Iterator<Item = Slice<'a>>) {
        self.total.notifications += 1;
        let (mut so, mut se, mut sv) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for s in slices {
            so.insert(s.source);
            se.insert(s.severity);
            sv.insert(s.service);
        }
        for s in so {
            self.by_source
                .entry(s.to_string())
                .or_default()
                .notifications += 1;
        }
        for s in se {
            self.by_severity
                .entry(s.to_string())
                .or_default()
                .notifications += 1;
        }
        for s in sv {
            self.by_service
                .entry(s.to_string())
                .or_default()
                .notifications += 1;
        }
    }

    /// The snapshot at `at_ms`.
    pub fn snapshot(&self, at_ms: i64) -> StatsSnapshot {
        StatsSnapshot {
            at_ms,
            total: self.total,
            noise_reduction: self.total.noise_reduction(),
            by_source: self.by_source.clone(),
            by_severity: self.by_severity.clone(),
            by_service: self.by_service.clone(),
            mtta_ms: (self.acked > 0).then(|| self.ack_ms_sum / self.acked as i64),
            mttr_ms: (self.resolved > 0).then(|| self.resolve_ms_sum / self.resolved as i64),
            incidents_acknowledged: self.acked,
            incidents_resolved: self.resolved,
        }
    }
}

/// Statistics as reported by the API and emitted as the `alert_stats` stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// When (engine time).
    pub at_ms: i64,
    /// All alerts.
    pub total: Counts,
    /// Raw alerts per notification.
    pub noise_reduction: f64,
    /// By source.
    pub by_source: BTreeMap<String, Counts>,
    /// By severity.
    pub by_severity: BTreeMap<String, Counts>,
    /// By service.
    pub by_service: BTreeMap<String, Counts>,
    /// Mean time to acknowledge incidents, ms.
    pub mtta_ms: Option<i64>,
    /// Mean time to resolve incidents, ms.
    pub mttr_ms: Option<i64>,
    /// Incidents acknowledged so far.
    pub incidents_acknowledged: u64,
    /// Incidents resolved so far.
    pub incidents_resolved: u64,
}
