//! The alerting state machine: alerts deduplicated by fingerprint, routed into groups whose
//! timers (group_wait, group_interval, repeat_interval) run on engine time, muted by silences,
//! inhibition, flapping and time intervals, budgeted per route, and correlated into incidents.
//!
//! Engine time is taken from the log: each input carries the time it happened at (an alert
//! observation's ingest stamp, a control event's, a clock tick's), and the engine's clock is the
//! largest seen. Timers fire when the clock passes them, in (time, timer) order, so the same log
//! always yields the same decisions.

use crate::config::{AlertingConfig, InhibitRuleConfig};
use crate::decision::{
    AlertChange, Change, Decision, IncidentChange, Notification, NotifiedAlert, Summary,
};
use crate::incident::{AnomalyEvidence, IncidentError, IncidentView, Incidents};
use crate::matcher::all_match;
use crate::model::{Alert, Labels, Status, fingerprint};
use crate::route::Route;
use crate::silence::{Silence, SilenceError, Silences};
use crate::stats::{Slice, Stats, StatsSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How often resolved alerts and expired silences are collected, ms of engine time.
const GC_EVERY_MS: i64 = 60_000;

/// A pending timer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Timer {
    /// A firing alert's resolve timeout or `endsAt`.
    Expire(String),
    /// A group's next flush.
    Flush(String),
    /// The end of a route's budget period.
    Budget(String),
    /// Emit statistics.
    Stats,
    /// Forget old resolved alerts and expired silences.
    Gc,
}

/// What the engine knows about one alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The latest observation (labels, annotations, times).
    pub alert: Alert,
    /// Firing or resolved, as decided here.
    pub status: Status,
    /// Observations deduplicated into this alert.
    pub count: u64,
    /// First observation.
    pub first_seen_ms: i64,
    /// Latest observation.
    pub last_seen_ms: i64,
    /// When it resolved.
    pub resolved_ms: Option<i64>,
    /// When it resolves as stale unless seen again.
    pub expires_ms: Option<i64>,
    /// Times of its recent state changes (flapping detection).
    pub changes: VecDeque<i64>,
    /// Whether it is flapping (notifications held).
    pub flapping: bool,
    /// Keys of the groups it is in.
    pub groups: BTreeSet<String>,
}

/// The last notification of a group (Alertmanager's notification log entry).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Sent {
    firing: BTreeSet<String>,
    resolved: BTreeSet<String>,
    at_ms: i64,
}

/// An aggregation group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    /// `route:{labels}`.
    pub key: String,
    /// Route id.
    pub route: String,
    /// Receiver.
    pub receiver: String,
    /// Group labels.
    pub labels: Labels,
    /// Fingerprints of its alerts.
    pub alerts: BTreeSet<String>,
    /// Next flush.
    pub next_flush_ms: i64,
    /// Whether it has flushed at least once.
    pub has_flushed: bool,
    last: Option<Sent>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BudgetState {
    period_start_ms: i64,
    used: u32,
    held: Summary,
    timer_set: bool,
    receiver: String,
}

/// Everything the engine keeps; serialized whole into checkpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    clock_ms: i64,
    started: bool,
    alerts: BTreeMap<String, Entry>,
    groups: BTreeMap<String, Group>,
    timers: BTreeSet<(i64, Timer)>,
    silences: Silences,
    budgets: BTreeMap<String, BudgetState>,
    incidents: Incidents,
    stats: Stats,
    /// Inhibition rules created through the API (control events), by id.
    inhibit_rules: BTreeMap<String, InhibitRuleConfig>,
}

/// A control command, from a control event in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Control {
    /// Create or replace a silence.
    SilenceSet {
        /// The silence.
        silence: Silence,
    },
    /// Expire a silence now.
    SilenceExpire {
        /// Its id.
        id: String,
    },
    /// Acknowledge an incident.
    IncidentAck {
        /// Incident id.
        id: String,
        /// Who.
        by: String,
    },
    /// Resolve an incident by hand.
    IncidentResolve {
        /// Incident id.
        id: String,
        /// Who.
        by: String,
    },
    /// Create or replace an inhibition rule.
    InhibitRuleSet {
        /// Its id.
        id: String,
        /// The rule.
        rule: InhibitRuleConfig,
    },
    /// Delete an inhibition rule created through the API.
    InhibitRuleDelete {
        /// Its id.
        id: String,
    },
    /// Anomaly evidence for a service (from a detector's anomaly event).
    Anomaly {
        /// The service.
        service: String,
        /// What the detector saw (absent in records of releases that carried only the service:
        /// the anomaly then counts for ranking without an explanation).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<Box<AnomalyEvidence>>,
    },
    /// A line in an incident's timeline from elsewhere (workflow and auto-heal steps). It changes
    /// no lifecycle state and makes no decision, so workflows reacting to incidents cannot loop.
    Note {
        /// Incident id.
        incident: String,
        /// Entry kind (`workflow`, `autoheal`, …).
        kind: String,
        /// What happened.
        text: String,
    },
}

/// Why a control command was refused (the log keeps it; it changes nothing).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A silence command failed.
    #[error(transparent)]
    Silence(#[from] SilenceError),
    /// An incident command failed.
    #[error(transparent)]
    Incident(#[from] IncidentError),
    /// An inhibition rule command failed.
    #[error("inhibition rule {id}: {reason}")]
    InhibitRule {
        /// The rule id.
        id: String,
        /// Why.
        reason: String,
    },
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("alerting checkpoint: {0}")]
pub struct SnapshotError(String);

/// Sizes of the engine's state.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Gauges {
    /// Alerts firing.
    pub firing: usize,
    /// Alerts known (firing and recently resolved).
    pub alerts: usize,
    /// Aggregation groups.
    pub groups: usize,
    /// Silences active now.
    pub silences_active: usize,
    /// Open and acknowledged incidents.
    pub incidents_open: usize,
    /// Inhibition rules (configured and created through the API).
    pub inhibit_rules: usize,
}

/// An alert as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView<'a> {
    /// The engine's entry.
    pub entry: &'a Entry,
    /// Silences muting it.
    pub silenced_by: Vec<String>,
    /// Alerts inhibiting it.
    pub inhibited_by: Vec<String>,
    /// Receivers its routes notify.
    pub receivers: Vec<String>,
}

impl AlertView<'_> {
    /// `active`, `suppressed` (silenced, inhibited or flapping).
    pub fn state(&self) -> &'static str {
        if self.silenced_by.is_empty() && self.inhibited_by.is_empty() && !self.entry.flapping {
            "active"
        } else {
            "suppressed"
        }
    }
}

/// Per inhibition rule, the firing source alerts by their values of the rule's `equal` labels,
/// each with whether it also matches the rule's targets. Built from the state when first needed
/// after the set of firing alerts or rules changed, so a flush does not scan every alert for
/// every member.
type InhibitIndex = Vec<HashMap<Vec<Option<String>>, Vec<(String, bool)>>>;

/// The inhibition index with the generation it was built at; not part of checkpoints.
#[derive(Debug, Default)]
struct InhibitCache(Mutex<Option<(u64, Arc<InhibitIndex>)>>);

impl Clone for InhibitCache {
    fn clone(&self) -> Self {
        InhibitCache::default()
    }
}

/// The alerting engine.
#[derive(Debug, Clone)]
pub struct AlertEngine {
    cfg: AlertingConfig,
    root: Route,
    routes: BTreeMap<String, Route>,
    st: State,
    /// Bumped whenever firing alerts or inhibition rules change.
    generation: u64,
    inhibit: InhibitCache,
}

fn hash_hex(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn labels_text(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(","))
}

impl AlertEngine {
    /// An engine with `cfg` and empty state.
    pub fn new(cfg: AlertingConfig) -> AlertEngine {
        let root = Route::compile(&cfg);
        let routes = root
            .all()
            .into_iter()
            .map(|r| {
                let mut flat = r.clone();
                flat.children.clear();
                (r.id.clone(), flat)
            })
            .collect();
        AlertEngine {
            cfg,
            root,
            routes,
            st: State::default(),
            generation: 0,
            inhibit: InhibitCache::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AlertingConfig {
        &self.cfg
    }

    /// Engine time: the largest time seen in the log.
    pub fn clock_ms(&self) -> i64 {
        self.st.clock_ms
    }

    /// The earliest pending timer; the server appends a clock tick when wall time passes it.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.st.timers.first().map(|(t, _)| *t)
    }

    /// Serializes the whole state.
    ///
    /// # Errors
    /// [`SnapshotError`] if serialization fails (a bug).
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        serde_json::to_vec(&self.st).map_err(|e| SnapshotError(e.to_string()))
    }

    /// Replaces the state with a snapshot.
    ///
    /// # Errors
    /// [`SnapshotError`] if the bytes are not a snapshot of this version.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.st = serde_json::from_slice(bytes).map_err(|e| SnapshotError(e.to_string()))?;
        self.generation += 1;
        Ok(())
    }

    fn start(&mut self, now: i64) {
        if self.st.started {
            return;
        }
        self.st.started = true;
        let every = self.cfg.aiops.stats_interval.ms().max(1000);
        let next = (now.div_euclid(every) + 1) * every;
        self.st.timers.insert((next, Timer::Stats));
        self.st.timers.insert((now + GC_EVERY_MS, Timer::Gc));
    }

    /// Moves the clock to `to_ms` (never back), firing every timer due on the way.
    pub fn advance(&mut self, to_ms: i64) -> Vec<Decision> {
        let mut out = Vec::new();
        self.advance_into(to_ms, &mut out);
        out
    }

    fn advance_into(&mut self, to_ms: i64, out: &mut Vec<Decision>) {
        let to = to_ms.max(self.st.clock_ms);
        self.start(to);
        while let Some((t, _)) = self.st.timers.first() {
            if *t > to {
                break;
            }
            let Some((t, timer)) = self.st.timers.pop_first() else {
                break;
            };
            self.st.clock_ms = self.st.clock_ms.max(t);
            self.fire(t, timer, out);
        }
        self.st.clock_ms = to;
    }

    /// Alert observations that arrived at `at_ms` (their log message's time).
    pub fn observe(&mut self, at_ms: i64, alerts: Vec<Alert>) -> Vec<Decision> {
        let mut out = Vec::new();
        let now = at_ms.max(self.st.clock_ms);
        self.advance_into(now, &mut out);
        for a in alerts {
            self.apply(a, now, &mut out);
        }
        // Timers due by now fire (groups due right away wait 1 ms for the rest of their instant).
        self.advance_into(now, &mut out);
        out
    }

    /// A control command that arrived at `at_ms`.
    ///
    /// # Errors
    /// [`ControlError`] when the command names something that does not exist or is over; the
    /// state is unchanged.
    pub fn control(&mut self, at_ms: i64, c: Control) -> Result<Vec<Decision>, ControlError> {
        let mut out = Vec::new();
        let now = at_ms.max(self.st.clock_ms);
        self.advance_into(now, &mut out);
        match c {
            Control::SilenceSet { silence } => {
                silence.validate()?;
                self.st.silences.upsert(silence);
            }
            Control::SilenceExpire { id } => self.st.silences.expire(&id, now)?,
            Control::IncidentAck { id, by } => {
                let (change, inc) = self.st.incidents.ack(&id, &by, now)?;
                if inc.acknowledged_at_ms == Some(now) {
                    self.st.stats.acked += 1;
                    self.st.stats.ack_ms_sum += now - inc.opened_at_ms;
                }
                out.push(incident(now, change, inc));
            }
            Control::IncidentResolve { id, by } => {
                let (change, inc) = self.st.incidents.close(&id, &by, now)?;
                self.count_resolved(&inc, now);
                out.push(incident(now, change, inc));
            }
            Control::InhibitRuleSet { id, rule } => {
                if rule.target_matchers.is_empty() {
                    return Err(ControlError::InhibitRule {
                        id,
                        reason:
                            "target_matchers must not be empty: the rule would mute every alert"
                                .into(),
                    });
                }
                self.st.inhibit_rules.insert(id, rule);
                self.generation += 1;
            }
            Control::InhibitRuleDelete { id } => {
                self.generation += 1;
                if self.st.inhibit_rules.remove(&id).is_none() {
                    return Err(ControlError::InhibitRule {
                        id,
                        reason: "no such rule".into(),
                    });
                }
            }
            Control::Anomaly { service, evidence } => {
                self.st.incidents.anomaly(
                    &self.cfg.aiops.incidents,
                    &service,
                    now,
                    evidence.map(|e| *e),
                );
            }
            Control::Note {
                incident,
                kind,
                text,
            } => self.st.incidents.add_note(&incident, now, &kind, text),
        }
        Ok(out)
    }

    fn count_resolved(&mut self, inc: &IncidentView, now: i64) {
        self.st.stats.resolved += 1;
        self.st.stats.resolve_ms_sum += now - inc.opened_at_ms;
    }

    fn slice(e: &Entry) -> Slice<'_> {
        Slice {
            source: &e.alert.source,
            severity: &e.alert.severity,
            service: &e.alert.service,
        }
    }

    fn apply(&mut self, mut a: Alert, now: i64, out: &mut Vec<Decision>) {
        // Configured identifying labels win; else the sender's own stable id (Alertmanager's,
        // Datadog's monitor and scope, CloudWatch's alarm ARN); else all labels.
        a.fingerprint = match self.cfg.fingerprint_labels(&a.source) {
            Some(ids) => fingerprint(&a.labels, Some(ids)),
            None if !a.fingerprint.is_empty() => a.fingerprint,
            None => fingerprint(&a.labels, None),
        };
        let fp = a.fingerprint.clone();
        self.st.stats.raw(Slice {
            source: &a.source,
            severity: &a.severity,
            service: &a.service,
        });
        let timeout = self.cfg.resolve_timeout_ms(&a.source);
        let expires = match (a.status, a.ends_at_ms) {
            (Status::Firing, Some(end)) if end > now => Some(end),
            (Status::Firing, _) if timeout > 0 => Some(now.saturating_add(timeout)),
            _ => None,
        };
        match (self.st.alerts.get_mut(&fp), a.status) {
            (None, Status::Resolved) => {}
            (None, Status::Firing) => {
                let e = Entry {
                    alert: a,
                    status: Status::Firing,
                    count: 1,
                    first_seen_ms: now,
                    last_seen_ms: now,
                    resolved_ms: None,
                    expires_ms: None,
                    changes: VecDeque::new(),
                    flapping: false,
                    groups: BTreeSet::new(),
                };
                self.st.alerts.insert(fp.clone(), e);
                self.set_expiry(&fp, expires);
                self.fired(&fp, now, out);
            }
            (Some(e), Status::Firing) => {
                e.count += 1;
                e.last_seen_ms = now;
                let refire = e.status == Status::Resolved;
                if refire {
                    e.alert = a;
                    e.status = Status::Firing;
                    e.resolved_ms = None;
                } else if e.alert.annotations != a.annotations {
                    e.alert.annotations = a.annotations;
                }
                self.set_expiry(&fp, expires);
                if refire {
                    self.fired(&fp, now, out);
                }
            }
            (Some(e), Status::Resolved) => {
                e.count += 1;
                e.last_seen_ms = now;
                if e.status == Status::Firing {
                    e.alert.ends_at_ms = Some(a.ends_at_ms.unwrap_or(now));
                    self.resolve(&fp, now, Change::Resolved, out);
                }
            }
        }
    }

    fn set_expiry(&mut self, fp: &str, at: Option<i64>) {
        let Some(e) = self.st.alerts.get_mut(fp) else {
            return;
        };
        if let Some(old) = e.expires_ms.take() {
            self.st.timers.remove(&(old, Timer::Expire(fp.to_string())));
        }
        if let Some(t) = at {
            e.expires_ms = Some(t);
            self.st.timers.insert((t, Timer::Expire(fp.to_string())));
        }
    }

    /// Records a state change for flapping detection; returns the change to report, if any.
    fn flap(&mut self, fp: &str, now: i64) -> Option<Change> {
        let f = self.cfg.aiops.flapping;
        let e = self.st.alerts.get_mut(fp)?;
        e.changes.push_back(now);
        Self::prune_flaps(e, now, f.window.ms());
        if f.threshold > 0 && !e.flapping && e.changes.len() >= f.threshold as usize {
            e.flapping = true;
            return Some(Change::Flapping);
        }
        None
    }

    fn prune_flaps(e: &mut Entry, now: i64, window: i64) {
        while e.changes.front().is_some_and(|t| *t < now - window) {
            e.changes.pop_front();
        }
    }

    /// Ends flapping of an alert whose changes in the window fell below the threshold.
    fn calm(&mut self, fp: &str, now: i64, out: &mut Vec<Decision>) {
        let f = self.cfg.aiops.flapping;
        let Some(e) = self.st.alerts.get_mut(fp) else {
            return;
        };
        if !e.flapping {
            return;
        }
        Self::prune_flaps(e, now, f.window.ms());
        if e.changes.len() < f.threshold as usize {
            e.flapping = false;
            out.push(self.change(fp, now, Change::FlappingEnded));
        }
    }

    fn change(&self, fp: &str, now: i64, change: Change) -> Decision {
        let e = &self.st.alerts[fp];
        Decision::AlertState(AlertChange {
            at_ms: now,
            fingerprint: fp.to_string(),
            name: e.alert.name.clone(),
            severity: e.alert.severity.clone(),
            service: e.alert.service.clone(),
            source: e.alert.source.clone(),
            change,
            count: e.count,
            labels: e.alert.labels.clone(),
        })
    }

    fn fired(&mut self, fp: &str, now: i64, out: &mut Vec<Decision>) {
        self.generation += 1;
        let flap = self.flap(fp, now);
        out.push(self.change(fp, now, Change::Firing));
        if let Some(c) = flap {
            out.push(self.change(fp, now, c));
        }
        let e = &self.st.alerts[fp];
        self.st.stats.deduplicated(Self::slice(e));
        let labels = e.alert.labels.clone();
        let starts = e.alert.starts_at_ms;
        let routes: Vec<Route> = self
            .root
            .matching(&labels)
            .into_iter()
            .map(|r| self.routes[&r.id].clone())
            .collect();
        for r in routes {
            let glabels = r.group_labels(&labels);
            let key = format!("{}:{}", r.id, labels_text(&glabels));
            let g = self.st.groups.entry(key.clone()).or_insert_with(|| {
                // A zero group_wait flushes with the other alerts of the same instant (above).
                let next = now + r.group_wait_ms.max(1);
                self.st.timers.insert((next, Timer::Flush(key.clone())));
                Group {
                    key: key.clone(),
                    route: r.id.clone(),
                    receiver: r.receiver.clone(),
                    labels: glabels,
                    alerts: BTreeSet::new(),
                    next_flush_ms: next,
                    has_flushed: false,
                    last: None,
                }
            });
            g.alerts.insert(fp.to_string());
            // Alertmanager flushes at once when an alert's own wait is already over — "at once"
            // being its asynchronous flush, which the other alerts of the same request still
            // join. Here a request's alerts can arrive in several log messages (one per
            // partition) stamped with the same instant, so the flush is due 1 ms later: after
            // every message of that instant, at the next tick.
            let soon = now + 1;
            if !g.has_flushed && starts + r.group_wait_ms < now && g.next_flush_ms > soon {
                self.st
                    .timers
                    .remove(&(g.next_flush_ms, Timer::Flush(key.clone())));
                g.next_flush_ms = soon;
                self.st.timers.insert((soon, Timer::Flush(key.clone())));
            }
            if let Some(e) = self.st.alerts.get_mut(fp) {
                e.groups.insert(key);
            }
        }
        let e = &self.st.alerts[fp];
        if let Some((change, inc)) =
            self.st
                .incidents
                .on_firing(&self.cfg.aiops.incidents, &e.alert, now)
        {
            out.push(incident(now, change, inc));
        }
    }

    fn resolve(&mut self, fp: &str, now: i64, change: Change, out: &mut Vec<Decision>) {
        self.generation += 1;
        self.set_expiry(fp, None);
        let Some(e) = self.st.alerts.get_mut(fp) else {
            return;
        };
        e.status = Status::Resolved;
        e.resolved_ms = Some(now);
        if e.alert.ends_at_ms.is_none_or(|t| t > now) {
            e.alert.ends_at_ms = Some(now);
        }
        let flap = self.flap(fp, now);
        out.push(self.change(fp, now, change));
        if let Some(c) = flap {
            out.push(self.change(fp, now, c));
        }
        if let Some((change, inc)) = self.st.incidents.on_resolved(fp, now) {
            if change == "resolved" {
                self.count_resolved(&inc, now);
            }
            out.push(incident(now, change, inc));
        }
    }

    fn fire(&mut self, t: i64, timer: Timer, out: &mut Vec<Decision>) {
        match timer {
            Timer::Expire(fp) => {
                let due = self
                    .st
                    .alerts
                    .get(&fp)
                    .is_some_and(|e| e.status == Status::Firing && e.expires_ms == Some(t));
                if due {
                    if let Some(e) = self.st.alerts.get_mut(&fp) {
                        e.expires_ms = None;
                    }
                    self.resolve(&fp, t, Change::StaleResolved, out);
                }
            }
            Timer::Flush(key) => {
                if self
                    .st
                    .groups
                    .get(&key)
                    .is_some_and(|g| g.next_flush_ms == t)
                {
                    self.flush(&key, t, out);
                }
            }
            Timer::Budget(route) => self.budget_end(&route, t, out),
            Timer::Stats => {
                out.push(Decision::Stats(self.st.stats.snapshot(t)));
                let every = self.cfg.aiops.stats_interval.ms().max(1000);
                self.st.timers.insert((t + every, Timer::Stats));
            }
            Timer::Gc => {
                let keep = self.cfg.aiops.resolved_retention.ms();
                self.st.alerts.retain(|_, e| {
                    e.status == Status::Firing
                        || !e.groups.is_empty()
                        || e.resolved_ms.is_none_or(|r| r >= t - keep)
                });
                self.st
                    .silences
                    .gc(t, self.cfg.aiops.silence_retention.ms());
                self.st.timers.insert((t + GC_EVERY_MS, Timer::Gc));
            }
        }
    }

    /// Silences muting `labels` now.
    fn silenced_by(&self, labels: &Labels, now: i64) -> Vec<String> {
        self.st.silences.silenced_by(labels, now)
    }

    /// Firing alerts that inhibit alert `fp`, as Alertmanager decides it: a rule whose target
    /// matchers match the alert, and a firing source alert with equal `equal` labels. An alert
    /// that matches both sides of a rule is not inhibited by others that also do.
    fn inhibited_by(&self, fp: &str, labels: &Labels) -> Vec<String> {
        let index = self.inhibit_index();
        let mut by = BTreeSet::new();
        for (rule, sources) in self.inhibit_rules().zip(index.iter()) {
            if !all_match(&rule.target_matchers, labels) {
                continue;
            }
            let two_sided = all_match(&rule.source_matchers, labels);
            let key: Vec<Option<String>> =
                rule.equal.iter().map(|l| labels.get(l).cloned()).collect();
            for (sfp, also_target) in sources.get(&key).into_iter().flatten() {
                if sfp != fp && !(two_sided && *also_target) {
                    by.insert(sfp.clone());
                }
            }
        }
        by.into_iter().collect()
    }

    fn inhibit_rules(&self) -> impl Iterator<Item = &InhibitRuleConfig> {
        self.cfg
            .inhibit_rules
            .iter()
            .chain(self.st.inhibit_rules.values())
    }

    /// The inhibition index of the current generation, built if stale.
    fn inhibit_index(&self) -> Arc<InhibitIndex> {
        let mut cache = self
            .inhibit
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((g, idx)) = cache.as_ref()
            && *g == self.generation
        {
            return idx.clone();
        }
        let idx: InhibitIndex = self
            .inhibit_rules()
            .map(|rule| {
                let mut m: HashMap<Vec<Option<String>>, Vec<(String, bool)>> = HashMap::new();
                for (sfp, s) in &self.st.alerts {
                    if s.status != Status::Firing
                        || !all_match(&rule.source_matchers, &s.alert.labels)
                    {
                        continue;
                    }
                    let key = rule
                        .equal
                        .iter()
                        .map(|l| s.alert.labels.get(l).cloned())
                        .collect();
                    let also_target = all_match(&rule.target_matchers, &s.alert.labels);
                    m.entry(key).or_default().push((sfp.clone(), also_target));
                }
                m
            })
            .collect();
        let idx = Arc::new(idx);
        *cache = Some((self.generation, idx.clone()));
        idx
    }

    fn muted(&self, fp: &str, now: i64) -> bool {
        let Some(e) = self.st.alerts.get(fp) else {
            return true;
        };
        e.flapping
            || !self.silenced_by(&e.alert.labels, now).is_empty()
            || !self.inhibited_by(fp, &e.alert.labels).is_empty()
    }

    /// Whether the route's time intervals mute it at `now`.
    fn time_muted(&self, r: &Route, now: i64) -> bool {
        let in_any = |names: &[String]| {
            names
                .iter()
                .any(|n| self.cfg.time_interval(n).is_some_and(|t| t.contains(now)))
        };
        in_any(&r.mute_time_intervals)
            || (!r.active_time_intervals.is_empty() && !in_any(&r.active_time_intervals))
    }

    fn flush(&mut self, key: &str, now: i64, out: &mut Vec<Decision>) {
        let Some(g) = self.st.groups.get(key) else {
            return;
        };
        let members: Vec<String> = g.alerts.iter().cloned().collect();
        for fp in &members {
            self.calm(fp, now, out);
        }
        let Some(g) = self.st.groups.get(key) else {
            return;
        };
        let route = self.routes[&g.route].clone();
        let (mut firing, mut resolved) = (BTreeSet::new(), BTreeSet::new());
        for fp in &members {
            if self.muted(fp, now) {
                continue;
            }
            match self.st.alerts.get(fp).map(|e| e.status) {
                Some(Status::Firing) => firing.insert(fp.clone()),
                Some(Status::Resolved) => resolved.insert(fp.clone()),
                None => false,
            };
        }
        let reason = if self.time_muted(&route, now) || (firing.is_empty() && resolved.is_empty()) {
            None
        } else {
            needs_update(
                g.last.as_ref(),
                &firing,
                &resolved,
                route.repeat_interval_ms,
                now,
            )
        };
        if let Some(reason) = reason {
            let n = Notification {
                id: format!("notify/{}/{}/{now}", route.id, hash_hex(key)),
                at_ms: now,
                receiver: g.receiver.clone(),
                route: route.id.clone(),
                group_key: key.to_string(),
                group_labels: g.labels.clone(),
                firing: self.notified(&firing),
                resolved: self.notified(&resolved),
                reason: reason.into(),
                summary: None,
            };
            let slices: Vec<String> = firing.iter().chain(&resolved).cloned().collect();
            self.deliver(&route, n, &slices, now, out);
            if let Some(g) = self.st.groups.get_mut(key) {
                g.last = Some(Sent {
                    firing,
                    resolved,
                    at_ms: now,
                });
            }
        }
        // Resolved alerts leave the group after the flush; an empty group is removed.
        let Some(g) = self.st.groups.get_mut(key) else {
            return;
        };
        g.has_flushed = true;
        let gone: Vec<String> = g
            .alerts
            .iter()
            .filter(|fp| {
                self.st
                    .alerts
                    .get(*fp)
                    .is_none_or(|e| e.status == Status::Resolved)
            })
            .cloned()
            .collect();
        for fp in &gone {
            g.alerts.remove(fp);
            if let Some(e) = self.st.alerts.get_mut(fp) {
                e.groups.remove(key);
            }
        }
        if g.alerts.is_empty() {
            self.st.groups.remove(key);
        } else {
            g.next_flush_ms = now + route.group_interval_ms;
            self.st
                .timers
                .insert((g.next_flush_ms, Timer::Flush(key.to_string())));
        }
    }

    fn notified(&self, fps: &BTreeSet<String>) -> Vec<NotifiedAlert> {
        fps.iter()
            .filter_map(|fp| self.st.alerts.get(fp))
            .map(|e| {
                NotifiedAlert::of(
                    &e.alert,
                    e.status.as_str(),
                    e.count,
                    (e.status == Status::Resolved)
                        .then_some(e.alert.ends_at_ms)
                        .flatten(),
                )
            })
            .collect()
    }

    fn deliver(
        &mut self,
        route: &Route,
        n: Notification,
        fps: &[String],
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        let stats = &mut self.st.stats;
        let alerts = &self.st.alerts;
        if let Some(b) = route.budget {
            let per = b.per.ms().max(1);
            let period = now.div_euclid(per) * per;
            let st = self.st.budgets.entry(route.id.clone()).or_default();
            if st.period_start_ms != period {
                *st = BudgetState {
                    period_start_ms: period,
                    receiver: route.receiver.clone(),
                    ..BudgetState::default()
                };
            }
            if st.used >= b.max {
                st.held.notifications += 1;
                st.held.alerts += n.firing.len() as u64;
                for a in &n.firing {
                    let name = a.labels.get("alertname").cloned().unwrap_or_default();
                    *st.held.by_name.entry(name).or_default() += 1;
                }
                if !st.timer_set {
                    st.timer_set = true;
                    self.st
                        .timers
                        .insert((period + per, Timer::Budget(route.id.clone())));
                }
                return;
            }
            st.used += 1;
        }
        stats.notification(fps.iter().filter_map(|fp| alerts.get(fp)).map(Self::slice));
        out.push(Decision::Notification(n));
    }

    fn budget_end(&mut self, route: &str, t: i64, out: &mut Vec<Decision>) {
        let Some(st) = self.st.budgets.remove(route) else {
            return;
        };
        if st.held.notifications == 0 {
            return;
        }
        self.st.stats.total.notifications += 1;
        out.push(Decision::Notification(Notification {
            id: format!("notify/{route}/summary/{}", st.period_start_ms),
            at_ms: t,
            receiver: st.receiver,
            route: route.to_string(),
            group_key: format!("{route}:summary"),
            group_labels: Labels::new(),
            firing: Vec::new(),
            resolved: Vec::new(),
            reason: "summary".into(),
            summary: Some(st.held),
        }));
    }

    /// The alert with fingerprint `fp`, while the engine holds it (resolved alerts are dropped
    /// after their retention).
    pub fn alert(&self, fp: &str) -> Option<&Alert> {
        self.st.alerts.get(fp).map(|e| &e.alert)
    }

    /// Every known alert with its silencing and inhibition, in fingerprint order.
    pub fn alerts(&self) -> Vec<AlertView<'_>> {
        let now = self.st.clock_ms;
        self.st
            .alerts
            .iter()
            .map(|(fp, e)| self.view(fp, e, now))
            .collect()
    }

    fn view<'a>(&'a self, fp: &str, e: &'a Entry, now: i64) -> AlertView<'a> {
        let firing = e.status == Status::Firing;
        let mut receivers: Vec<String> = self
            .root
            .matching(&e.alert.labels)
            .into_iter()
            .map(|r| r.receiver.clone())
            .collect();
        receivers.dedup();
        AlertView {
            entry: e,
            silenced_by: if firing {
                self.silenced_by(&e.alert.labels, now)
            } else {
                Vec::new()
            },
            inhibited_by: if firing {
                self.inhibited_by(fp, &e.alert.labels)
            } else {
                Vec::new()
            },
            receivers,
        }
    }

    /// The aggregation groups with their alerts, in key order.
    pub fn groups(&self) -> Vec<(&Group, Vec<AlertView<'_>>)> {
        let now = self.st.clock_ms;
        self.st
            .groups
            .values()
            .map(|g| {
                let alerts = g
                    .alerts
                    .iter()
                    .filter_map(|fp| self.st.alerts.get(fp).map(|e| self.view(fp, e, now)))
                    .collect();
                (g, alerts)
            })
            .collect()
    }

    /// The silences.
    pub fn silences(&self) -> &Silences {
        &self.st.silences
    }

    /// The incidents.
    pub fn incidents(&self) -> &Incidents {
        &self.st.incidents
    }

    /// Sizes of the state, for self-metrics.
    pub fn gauges(&self) -> Gauges {
        let now = self.st.clock_ms;
        Gauges {
            firing: self
                .st
                .alerts
                .values()
                .filter(|e| e.status == Status::Firing)
                .count(),
            alerts: self.st.alerts.len(),
            groups: self.st.groups.len(),
            silences_active: self
                .st
                .silences
                .iter()
                .filter(|s| s.state(now) == crate::silence::SilenceState::Active)
                .count(),
            incidents_open: self.st.incidents.open().count(),
            inhibit_rules: self.cfg.inhibit_rules.len() + self.st.inhibit_rules.len(),
        }
    }

    /// Inhibition rules created through the API, by id.
    pub fn api_inhibit_rules(&self) -> &BTreeMap<String, InhibitRuleConfig> {
        &self.st.inhibit_rules
    }

    /// Statistics now.
    pub fn stats(&self) -> StatsSnapshot {
        self.st.stats.snapshot(self.st.clock_ms)
    }
}

fn incident(now: i64, change: String, inc: IncidentView) -> Decision {
    Decision::Incident(IncidentChange {
        at_ms: now,
        change,
        incident: inc,
    })
}

/// Alertmanager's dedup stage: whether a group's notification is due, and why.
fn needs_update(
    last: Option<&Sent>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    repeat_ms: i64,
    now: i64,
) -> Option<&'static str> {
    let Some(last) = last else {
        return (!firing.is_empty()).then_some("new");
    };
    if !firing.is_subset(&last.firing) {
        return Some("new");
    }
    if firing.is_empty() {
        return (!last.firing.is_empty()).then_some("resolved");
    }
    if !resolved.is_subset(&last.resolved) {
        return Some("resolved");
    }
    (last.at_ms < now - repeat_ms).then_some("repeat")
}
