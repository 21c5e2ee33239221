//! Incidents: firing alerts correlated by time proximity, shared labels and the service
//! dependency map into one incident, with a ranked list of root-cause candidates and a
//! timeline, and the lifecycle open → acknowledged → resolved.

use crate::config::IncidentConfig;
use crate::model::Alert;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::OnceLock;

/// Timeline entries kept per incident; later joins are counted in one closing entry.
const TIMELINE_CAP: usize = 200;
/// Closed incidents kept for the API.
const CLOSED_KEPT: usize = 1000;
/// Alerts one incident decision carries. An incident can hold thousands of alerts (an alert
/// storm on one service); a decision that carried them all would make every joining alert append
/// and parse O(n) bytes (O(n²) over the storm). The API serves the whole incident.
pub const DECISION_ALERTS: usize = 10;
/// Anomaly evidence kept per service (the latest ones): enough to explain a root cause, few
/// enough that a decision carrying every root cause stays small.
pub const EVIDENCE_KEPT: usize = 3;
/// Longest text field of a piece of evidence, in characters. Series names and explanations come
/// from pipelines and their label values; a hostile or careless one must not bloat decisions.
const EVIDENCE_TEXT_MAX: usize = 400;

/// Where an incident is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Nobody has taken it yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Over.
    Resolved,
}

/// An alert as an incident remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentAlert {
    /// Alert name.
    pub name: String,
    /// Service.
    pub service: String,
    /// Severity.
    pub severity: String,
    /// When it first fired within this incident.
    pub first_firing_ms: i64,
    /// `firing` or `resolved`.
    pub status: String,
}

/// A root-cause candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    /// The service.
    pub service: String,
    /// Score in [0, 1]; higher is more likely.
    pub score: f64,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// The anomalies behind the "anomaly" reason, newest first (at most [`EVIDENCE_KEPT`]);
    /// empty in decisions of releases before evidence was carried.
    #[serde(default)]
    pub evidence: Vec<AnomalyEvidence>,
}

/// One anomaly event as root-cause evidence: what a detector saw on a service, in its own words
/// and numbers. Every field has a default, so control records and checkpoints of releases that
/// carried only the service still read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AnomalyEvidence {
    /// Event time of the anomaly (the window it was judged in).
    pub at_ms: i64,
    /// The pipeline (or `log_templates` for the template miner) that wrote the event.
    pub pipeline: String,
    /// The judged series: the `anomaly()` column.
    pub series: String,
    /// The detector's name.
    pub detector: String,
    /// Which statistic fired (`value`, `seasonal`, `persistence`, `drift`, `change`, `context`,
    /// `range`, or the template miner's kind); empty when the event does not say.
    pub signal: String,
    /// The judged value (None when not a finite number).
    pub value: Option<f64>,
    /// The value the detector expected.
    pub expected: Option<f64>,
    /// Lower end of the expected band.
    pub lower: Option<f64>,
    /// Upper end of the expected band.
    pub upper: Option<f64>,
    /// `up`, `down` or `none`.
    pub direction: String,
    /// What made the value unusual, in one clause ("unusual for this phase of its 1-day cycle").
    pub context: String,
    /// The event's whole explanation (value, band, context, time watched, confidence).
    pub explanation: String,
    /// How much history backs the judgement, in `[0, 1]`.
    pub confidence: Option<f64>,
    /// Event time the series had been watched when it fired, in milliseconds.
    pub watched_ms: i64,
}

impl AnomalyEvidence {
    /// Cuts every text field to a bounded length (on a character boundary) and drops
    /// non-finite numbers, so whatever a pipeline wrote, the evidence stays small and
    /// serializes to JSON.
    pub fn bounded(mut self) -> AnomalyEvidence {
        for s in [
            &mut self.pipeline,
            &mut self.series,
            &mut self.detector,
            &mut self.signal,
            &mut self.direction,
            &mut self.context,
            &mut self.explanation,
        ] {
            if let Some((cut, _)) = s.char_indices().nth(EVIDENCE_TEXT_MAX) {
                s.truncate(cut);
                s.push('…');
            }
        }
        for v in [
            &mut self.value,
            &mut self.expected,
            &mut self.lower,
            &mut self.upper,
            &mut self.confidence,
        ] {
            *v = v.filter(|x| x.is_finite());
        }
        self
    }

    /// One line naming the anomaly, for a root cause's reasons: `anomaly: latency_p99 = 812,
    /// above the expected 240 [180, 300] — the value is far outside the expected band`.
    /// It starts with "anomaly", which readers of reasons (workflows) look for.
    pub fn reason(&self) -> String {
        let mut out = String::from("anomaly");
        if !self.series.is_empty() {
            out.push_str(": ");
            out.push_str(&self.series);
        }
        if let Some(v) = self.value {
            out.push_str(&format!(" = {}", short(v)));
        }
        if let Some(e) = self.expected {
            let word = match self.direction.as_str() {
                "up" => "above",
                "down" => "below",
                _ => "vs",
            };
            out.push_str(&format!(", {word} the expected {}", short(e)));
            if let (Some(l), Some(u)) = (self.lower, self.upper) {
                out.push_str(&format!(" [{}, {}]", short(l), short(u)));
            }
        }
        let why = if self.context.is_empty() {
            &self.explanation
        } else {
            &self.context
        };
        if !why.is_empty() {
            out.push_str(" — ");
            out.push_str(why);
        }
        out
    }

    /// The incident timeline's text for this anomaly on `service`.
    fn timeline_text(&self, service: &str) -> String {
        let mut out = format!("{service}: {}", self.reason());
        if !self.pipeline.is_empty() {
            out.push_str(&format!(" (pipeline {}", self.pipeline));
            if !self.detector.is_empty() {
                out.push_str(&format!(", {}", self.detector));
            }
            out.push(')');
        }
        out
    }
}

/// A number for a sentence: four significant digits, no trailing zeros (`812`, `0.0123`,
/// `240.3`); the evidence keeps the exact value.
fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i64).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When (engine time).
    pub at_ms: i64,
    /// `opened`, `alert_joined`, `alert_resolved`, `acknowledged`, `resolved`, `anomaly`, ….
    pub kind: String,
    /// What happened.
    pub text: String,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `INC-<n>`, numbered in log order.
    pub id: String,
    /// The first alert's name and service.
    pub title: String,
    /// Lifecycle state.
    pub status: IncidentStatus,
    /// Highest severity among its alerts.
    pub severity: String,
    /// When it opened.
    pub opened_at_ms: i64,
    /// When it was acknowledged.
    pub acknowledged_at_ms: Option<i64>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
    /// Who resolved it (`aiops` when its alerts all resolved).
    pub resolved_by: Option<String>,
    /// Last alert activity.
    pub last_activity_ms: i64,
    /// Its alerts by fingerprint.
    pub alerts: BTreeMap<String, IncidentAlert>,
    /// `label=value` pairs its alerts share with others (for correlation).
    pub keys: BTreeSet<String>,
    /// Ranked root-cause candidates.
    pub root_causes: Vec<RootCause>,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// Timeline entries not kept (beyond the cap).
    pub timeline_dropped: u64,
    /// What is derived from `alerts`, kept up to date as alerts join and resolve so that a
    /// joining alert costs O(services), not O(alerts). Not stored: rebuilt on first use.
    #[serde(skip)]
    index: Index,
}

/// What an incident's alerts add up to.
#[derive(Debug, Clone, Default)]
struct Derived {
    /// Earliest first firing per rank key (the service, or the alert name without one).
    first: BTreeMap<String, i64>,
    /// Non-empty services.
    services: BTreeSet<String>,
    /// Alerts firing now.
    firing: u64,
}

impl Derived {
    fn of(alerts: &BTreeMap<String, IncidentAlert>) -> Derived {
        let mut d = Derived::default();
        for a in alerts.values() {
            d.add(a);
            if a.status == "firing" {
                d.firing += 1;
            }
        }
        d
    }

    fn add(&mut self, a: &IncidentAlert) {
        let key = if a.service.is_empty() {
            &a.name
        } else {
            &a.service
        };
        let t = self.first.entry(key.clone()).or_insert(a.first_firing_ms);
        *t = (*t).min(a.first_firing_ms);
        if !a.service.is_empty() && !self.services.contains(&a.service) {
            self.services.insert(a.service.clone());
        }
    }
}

/// A lazily built [`Derived`]. It is a cache of `alerts`, so two incidents with equal fields are
/// equal whatever their caches hold.
#[derive(Debug, Clone, Default)]
struct Index(OnceLock<Derived>);

impl PartialEq for Index {
    fn eq(&self, _: &Index) -> bool {
        true
    }
}

/// An incident as a decision carries it: its state, counts, services and root causes, at most
/// [`DECISION_ALERTS`] of its alerts (the one the change concerns first) and the timeline entries
/// the change added. Bounded whatever the incident's size; `GET /api/incidents/{id}` has the rest.
///
/// Decisions logged by releases before this view carried the whole incident (every alert, the
/// whole timeline); they read into this type too, with the counts and services left empty —
/// use [`IncidentView::services`] and [`IncidentView::alerts_total`], which fall back to `alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    /// `INC-<n>`.
    pub id: String,
    /// The first alert's name and service.
    pub title: String,
    /// Lifecycle state.
    pub status: IncidentStatus,
    /// Highest severity among its alerts.
    pub severity: String,
    /// When it opened.
    pub opened_at_ms: i64,
    /// When it was acknowledged.
    pub acknowledged_at_ms: Option<i64>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// Last alert activity.
    pub last_activity_ms: i64,
    /// Up to [`DECISION_ALERTS`] alerts by fingerprint: the one this change concerns, then the
    /// lowest fingerprints.
    pub alerts: BTreeMap<String, IncidentAlert>,
    /// How many alerts it has (firing and resolved).
    #[serde(default)]
    pub alerts_total: u64,
    /// How many of them fire now.
    #[serde(default)]
    pub alerts_firing: u64,
    /// Every service among its alerts.
    #[serde(default)]
    pub services: BTreeSet<String>,
    /// Ranked root-cause candidates.
    pub root_causes: Vec<RootCause>,
    /// The timeline entries this change added (the whole timeline when built by
    /// [`Incident::view`] with `timeline_from` 0).
    pub timeline: Vec<TimelineEntry>,
}

impl IncidentView {
    /// Every service among its alerts (from `alerts` for decisions of older releases).
    pub fn services(&self) -> BTreeSet<&str> {
        if self.services.is_empty() {
            self.alerts
                .values()
                .map(|a| a.service.as_str())
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            self.services.iter().map(String::as_str).collect()
        }
    }

    /// How many alerts the incident has (from `alerts` for decisions of older releases).
    pub fn alerts_total(&self) -> u64 {
        self.alerts_total.max(self.alerts.len() as u64)
    }
}

impl Incident {
    fn derived(&self) -> &Derived {
        self.index.0.get_or_init(|| Derived::of(&self.alerts))
    }

    /// The bounded view a decision carries: `concerning` (an alert's fingerprint) is always among
    /// its alerts; timeline entries from index `timeline_from` on.
    pub fn view(&self, concerning: Option<&str>, timeline_from: usize) -> IncidentView {
        let mut alerts = BTreeMap::new();
        if let Some(fp) = concerning
            && let Some(a) = self.alerts.get(fp)
        {
            alerts.insert(fp.to_string(), a.clone());
        }
        for (fp, a) in &self.alerts {
            if alerts.len() >= DECISION_ALERTS {
                break;
            }
            alerts.entry(fp.clone()).or_insert_with(|| a.clone());
        }
        let d = self.derived();
        IncidentView {
            id: self.id.clone(),
            title: self.title.clone(),
            status: self.status,
            severity: self.severity.clone(),
            opened_at_ms: self.opened_at_ms,
            acknowledged_at_ms: self.acknowledged_at_ms,
            acknowledged_by: self.acknowledged_by.clone(),
            resolved_at_ms: self.resolved_at_ms,
            resolved_by: self.resolved_by.clone(),
            last_activity_ms: self.last_activity_ms,
            alerts,
            alerts_total: self.alerts.len() as u64,
            alerts_firing: d.firing,
            services: d.services.clone(),
            root_causes: self.root_causes.clone(),
            timeline: self
                .timeline
                .get(timeline_from..)
                .unwrap_or_default()
                .to_vec(),
        }
    }

    /// Alerts firing now.
    pub fn alerts_firing(&self) -> u64 {
        self.derived().firing
    }

    fn note(&mut self, at_ms: i64, kind: &str, text: String) {
        // Joins and anomalies come in storms; lifecycle entries are few and always kept.
        if self.timeline.len() < TIMELINE_CAP || !matches!(kind, "alert_joined" | "anomaly") {
            self.timeline.push(TimelineEntry {
                at_ms,
                kind: kind.into(),
                text,
            });
        } else {
            self.timeline_dropped += 1;
        }
    }

    fn services(&self) -> &BTreeSet<String> {
        &self.derived().services
    }
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    }
}

/// Why an incident command was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IncidentError {
    /// No such incident.
    #[error("no incident {0}")]
    Unknown(String),
    /// It is already resolved.
    #[error("incident {0} is already resolved")]
    Resolved(String),
}

/// All incidents and the correlation state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Incidents {
    next: u64,
    open: BTreeMap<String, Incident>,
    closed: VecDeque<Incident>,
    by_fp: BTreeMap<String, String>,
    /// Anomaly evidence per service: times seen.
    anomalies: BTreeMap<String, VecDeque<i64>>,
    /// The latest anomalies per service with their explanation (at most [`EVIDENCE_KEPT`],
    /// forgotten after the correlation window as the times are). Absent from checkpoints of
    /// releases before it.
    #[serde(default)]
    evidence: BTreeMap<String, VecDeque<AnomalyEvidence>>,
}

/// Numeric order of `INC-<n>` ids.
fn id_num(id: &str) -> u64 {
    id.strip_prefix("INC-")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

impl Incidents {
    /// Open and acknowledged incidents, oldest first.
    pub fn open(&self) -> impl Iterator<Item = &Incident> {
        let mut v: Vec<&Incident> = self.open.values().collect();
        v.sort_by_key(|i| id_num(&i.id));
        v.into_iter()
    }

    /// Recently closed incidents, oldest first.
    pub fn closed(&self) -> impl Iterator<Item = &Incident> {
        self.closed.iter()
    }

    /// An incident by id.
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.open
            .get(id)
            .or_else(|| self.closed.iter().find(|i| i.id == id))
    }

    /// Adds a timeline entry to an incident (open or recently closed); unknown ids are ignored.
    pub fn add_note(&mut self, id: &str, at_ms: i64, kind: &str, text: String) {
        if let Some(i) = self.open.get_mut(id) {
            i.note(at_ms, kind, text);
        } else if let Some(i) = self.closed.iter_mut().find(|i| i.id == id) {
            i.note(at_ms, kind, text);
        }
    }

    /// Records anomaly evidence for a service (from anomaly events) at engine time `at_ms`.
    /// With an explanation, it is kept (the latest [`EVIDENCE_KEPT`]) and, in every open
    /// incident with alerts on the service, noted in the timeline, and the root causes are
    /// ranked again.
    pub fn anomaly(
        &mut self,
        cfg: &IncidentConfig,
        service: &str,
        at_ms: i64,
        evidence: Option<AnomalyEvidence>,
    ) {
        let horizon = at_ms - cfg.window.ms();
        let q = self.anomalies.entry(service.to_string()).or_default();
        q.push_back(at_ms);
        while q.front().is_some_and(|t| *t < horizon) || q.len() > 64 {
            q.pop_front();
        }
        let Some(ev) = evidence.map(AnomalyEvidence::bounded) else {
            return;
        };
        let q = self.evidence.entry(service.to_string()).or_default();
        q.push_back(ev.clone());
        while q.front().is_some_and(|e| e.at_ms < horizon) || q.len() > EVIDENCE_KEPT {
            q.pop_front();
        }
        let (anomalies, evidence) = (&self.anomalies, &self.evidence);
        for inc in self.open.values_mut() {
            // Whether or not its alerts were active lately: an open incident of the service
            // is still the incident this anomaly may explain.
            if inc.services().contains(service) {
                inc.note(ev.at_ms, "anomaly", ev.timeline_text(service));
                inc.root_causes = rank(inc, cfg, anomalies, evidence);
            }
        }
    }

    /// A firing alert: joins the incident it correlates with, or opens one. Returns the change.
    pub fn on_firing(
        &mut self,
        cfg: &IncidentConfig,
        a: &Alert,
        now: i64,
    ) -> Option<(String, IncidentView)> {
        let keys: BTreeSet<String> = cfg
            .correlate_labels
            .iter()
            .filter_map(|l| {
                a.labels
                    .get(l)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{l}={v}"))
            })
            .collect();
        let existing = self.by_fp.get(&a.fingerprint).cloned();
        let target = existing
            .filter(|id| self.open.contains_key(id))
            .or_else(|| {
                let mut best: Option<&Incident> = None;
                for inc in self.open.values() {
                    if inc.last_activity_ms < now - cfg.window.ms() {
                        continue;
                    }
                    let shares = !inc.keys.is_disjoint(&keys);
                    let related = !a.service.is_empty()
                        && inc
                            .services()
                            .iter()
                            .any(|s| related(&cfg.dependencies, &a.service, s.as_str()));
                    if (shares || related)
                        && best.is_none_or(|b| {
                            (inc.opened_at_ms, id_num(&inc.id)) < (b.opened_at_ms, id_num(&b.id))
                        })
                    {
                        best = Some(inc);
                    }
                }
                best.map(|i| i.id.clone())
            });
        let (change, id) = match target {
            Some(id) => ("updated", id),
            None => {
                if !cfg.open_on.contains(&a.severity) {
                    return None;
                }
                self.next += 1;
                let id = format!("INC-{}", self.next);
                let title = if a.service.is_empty() {
                    a.name.clone()
                } else {
                    format!("{} on {}", a.name, a.service)
                };
                let mut inc = Incident {
                    id: id.clone(),
                    title,
                    status: IncidentStatus::Open,
                    severity: a.severity.clone(),
                    opened_at_ms: now,
                    acknowledged_at_ms: None,
                    acknowledged_by: None,
                    resolved_at_ms: None,
                    resolved_by: None,
                    last_activity_ms: now,
                    alerts: BTreeMap::new(),
                    keys: BTreeSet::new(),
                    root_causes: Vec::new(),
                    timeline: Vec::new(),
                    timeline_dropped: 0,
                    index: Index::default(),
                };
                inc.note(
                    now,
                    "opened",
                    format!("opened by {} ({})", a.name, a.fingerprint),
                );
                self.open.insert(id.clone(), inc);
                ("opened", id)
            }
        };
        self.by_fp.insert(a.fingerprint.clone(), id.clone());
        let (anomalies, evidence) = (&self.anomalies, &self.evidence);
        let inc = self.open.get_mut(&id)?;
        // The cache must describe the alerts before this change for the update below.
        let new_service = !a.service.is_empty() && !inc.derived().services.contains(&a.service);
        let timeline_from = if change == "opened" {
            0
        } else {
            inc.timeline.len()
        };
        let was_firing = inc.alerts.get(&a.fingerprint).map(|x| x.status == "firing");
        let rejoin = was_firing.is_some();
        let entry = inc
            .alerts
            .entry(a.fingerprint.clone())
            .or_insert_with(|| IncidentAlert {
                name: a.name.clone(),
                service: a.service.clone(),
                severity: a.severity.clone(),
                first_firing_ms: now,
                status: "firing".into(),
            });
        entry.status = "firing".into();
        let joined = entry.clone();
        if let Some(d) = inc.index.0.get_mut() {
            match was_firing {
                None => {
                    d.add(&joined);
                    d.firing += 1;
                }
                Some(false) => d.firing += 1,
                Some(true) => {}
            }
        }
        inc.keys.extend(keys);
        inc.last_activity_ms = now;
        if severity_rank(&a.severity) > severity_rank(&inc.severity) {
            inc.severity = a.severity.clone();
        }
        if change == "updated" {
            let what = if rejoin { "fires again" } else { "joined" };
            inc.note(
                now,
                "alert_joined",
                format!("{} {what} ({}, {})", a.name, a.service, a.fingerprint),
            );
        }
        // Anomalies seen on a service before its first alert here explain it as well: the
        // timeline says so once, when the service joins.
        if new_service {
            let horizon = now - cfg.window.ms();
            for ev in evidence.get(&a.service).into_iter().flatten() {
                if ev.at_ms >= horizon {
                    inc.note(ev.at_ms, "anomaly", ev.timeline_text(&a.service));
                }
            }
        }
        inc.root_causes = rank(inc, cfg, anomalies, evidence);
        Some((
            change.to_string(),
            inc.view(Some(&a.fingerprint), timeline_from),
        ))
    }

    /// A resolved alert; when all of an incident's alerts have resolved, the incident resolves.
    pub fn on_resolved(&mut self, fp: &str, now: i64) -> Option<(String, IncidentView)> {
        let id = self.by_fp.get(fp)?.clone();
        let inc = self.open.get_mut(&id)?;
        inc.derived();
        let a = inc.alerts.get_mut(fp)?;
        if a.status == "resolved" {
            return None;
        }
        a.status = "resolved".into();
        let name = a.name.clone();
        let firing = match inc.index.0.get_mut() {
            Some(d) => {
                d.firing = d.firing.saturating_sub(1);
                d.firing
            }
            None => inc.alerts_firing(),
        };
        let timeline_from = inc.timeline.len();
        inc.last_activity_ms = now;
        inc.note(now, "alert_resolved", format!("{name} resolved ({fp})"));
        if firing == 0 {
            return self.close_from(&id, "aiops", now, Some(timeline_from)).ok();
        }
        Some(("updated".into(), inc.view(Some(fp), timeline_from)))
    }

    /// Acknowledges an open incident.
    ///
    /// # Errors
    /// Unknown or resolved incident.
    pub fn ack(
        &mut self,
        id: &str,
        by: &str,
        now: i64,
    ) -> Result<(String, IncidentView), IncidentError> {
        let inc = self.open.get_mut(id).ok_or_else(|| {
            if self.closed.iter().any(|i| i.id == id) {
                IncidentError::Resolved(id.into())
            } else {
                IncidentError::Unknown(id.into())
            }
        })?;
        if inc.acknowledged_at_ms.is_none() {
            inc.acknowledged_at_ms = Some(now);
            inc.acknowledged_by = Some(by.to_string());
        }
        inc.status = IncidentStatus::Acknowledged;
        let timeline_from = inc.timeline.len();
        inc.note(now, "acknowledged", format!("acknowledged by {by}"));
        Ok(("acknowledged".into(), inc.view(None, timeline_from)))
    }

    /// Resolves an incident (by hand, or when its alerts resolved).
    ///
    /// # Errors
    /// Unknown or already resolved incident.
    pub fn close(
        &mut self,
        id: &str,
        by: &str,
        now: i64,
    ) -> Result<(String, IncidentView), IncidentError> {
        self.close_from(id, by, now, None)
    }

    /// [`Incidents::close`], with the view's timeline starting at `timeline_from` (the entries
    /// of the change that closed it) or at the closing entry.
    fn close_from(
        &mut self,
        id: &str,
        by: &str,
        now: i64,
        timeline_from: Option<usize>,
    ) -> Result<(String, IncidentView), IncidentError> {
        let Some(mut inc) = self.open.remove(id) else {
            return Err(if self.closed.iter().any(|i| i.id == id) {
                IncidentError::Resolved(id.into())
            } else {
                IncidentError::Unknown(id.into())
            });
        };
        inc.status = IncidentStatus::Resolved;
        inc.resolved_at_ms = Some(now);
        inc.resolved_by = Some(by.to_string());
        let timeline_from = timeline_from.unwrap_or(inc.timeline.len());
        inc.note(now, "resolved", format!("resolved by {by}"));
        for fp in inc.alerts.keys() {
            if self.by_fp.get(fp).is_some_and(|i| i == id) {
                self.by_fp.remove(fp);
            }
        }
        let view = inc.view(None, timeline_from);
        self.closed.push_back(inc);
        while self.closed.len() > CLOSED_KEPT {
            self.closed.pop_front();
        }
        Ok(("resolved".into(), view))
    }
}

/// Whether two services are connected in the dependency map (either depends on the other,
/// directly or through others).
fn related(deps: &BTreeMap<String, Vec<String>>, a: &str, b: &str) -> bool {
    a == b || depends_on(deps, a, b) || depends_on(deps, b, a)
}

/// Whether `a` depends on `b`, transitively.
fn depends_on(deps: &BTreeMap<String, Vec<String>>, a: &str, b: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![a];
    while let Some(s) = stack.pop() {
        if !seen.insert(s) {
            continue;
        }
        for d in deps.get(s).into_iter().flatten() {
            if d == b {
                return true;
            }
            stack.push(d);
        }
    }
    false
}

/// Ranks an incident's services: earliest to fire, most upstream (others depend on it), and
/// backed by anomaly evidence score higher.
fn rank(
    inc: &Incident,
    cfg: &IncidentConfig,
    anomalies: &BTreeMap<String, VecDeque<i64>>,
    evidence: &BTreeMap<String, VecDeque<AnomalyEvidence>>,
) -> Vec<RootCause> {
    let first: BTreeMap<&str, i64> = inc
        .derived()
        .first
        .iter()
        .map(|(s, t)| (s.as_str(), *t))
        .collect();
    let n = first.len();
    let mut order: Vec<(&str, i64)> = first.iter().map(|(s, t)| (*s, *t)).collect();
    order.sort_by_key(|(s, t)| (*t, *s));
    let mut out: Vec<RootCause> = order
        .iter()
        .enumerate()
        .map(|(i, (s, _))| {
            let mut reasons = Vec::new();
            let earliest = if n <= 1 {
                1.0
            } else {
                1.0 - i as f64 / n as f64
            };
            if i == 0 {
                reasons.push("fired first".to_string());
            }
            let dependents = first
                .keys()
                .filter(|o| *o != s && depends_on(&cfg.dependencies, o, s))
                .count();
            let upstream = if n <= 1 {
                0.0
            } else {
                dependents as f64 / (n - 1) as f64
            };
            if dependents > 0 {
                reasons.push(format!("{dependents} affected services depend on it"));
            }
            let window_start = inc.opened_at_ms - cfg.window.ms();
            let anomaly = anomalies
                .get(*s)
                .is_some_and(|q| q.iter().any(|t| *t >= window_start));
            let explained: Vec<AnomalyEvidence> = if anomaly {
                evidence
                    .get(*s)
                    .into_iter()
                    .flatten()
                    .rev()
                    .filter(|e| e.at_ms >= window_start)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            match explained.first() {
                Some(latest) => reasons.push(latest.reason()),
                None if anomaly => reasons.push("anomalies detected on it".to_string()),
                None => {}
            }
            let score = 0.4 * earliest + 0.4 * upstream + if anomaly { 0.2 } else { 0.0 };
            RootCause {
                service: s.to_string(),
                score: (score * 1000.0).round() / 1000.0,
                reasons,
                evidence: explained,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.service.cmp(&b.service))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Labels, Status};

    fn alert(fp: &str, name: &str, service: &str, sev: &str) -> Alert {
        let mut labels = Labels::new();
        labels.insert("alertname".into(), name.into());
        labels.insert("service".into(), service.into());
        Alert {
            fingerprint: fp.into(),
            name: name.into(),
            status: Status::Firing,
            severity: sev.into(),
            service: service.into(),
            labels,
            annotations: Labels::new(),
            starts_at_ms: 0,
            ends_at_ms: None,
            source: "test".into(),
            generator_url: None,
        }
    }

    fn cfg() -> IncidentConfig {
        let mut c = IncidentConfig::default();
        c.dependencies
            .insert("frontend".into(), vec!["checkout".into()]);
        c.dependencies.insert("checkout".into(), vec!["db".into()]);
        c
    }

    #[test]
    fn dependent_services_correlate_and_the_upstream_ranks_first() {
        let c = cfg();
        let mut inc = Incidents::default();
        let (ch, i) = inc
            .on_firing(&c, &alert("a", "Latency", "frontend", "warning"), 1_000)
            .unwrap_or_else(|| panic!("opens"));
        assert_eq!((ch.as_str(), i.id.as_str()), ("opened", "INC-1"));
        inc.anomaly(&c, "db", 1_500, None);
        let (ch, i) = inc
            .on_firing(&c, &alert("b", "Slow", "db", "critical"), 2_000)
            .unwrap_or_else(|| panic!("joins"));
        assert_eq!((ch.as_str(), i.id.as_str()), ("updated", "INC-1"));
        assert_eq!(i.severity, "critical");
        assert_eq!(i.root_causes[0].service, "db");
        // An unrelated service opens its own incident.
        let (_, other) = inc
            .on_firing(&c, &alert("c", "Down", "mail", "critical"), 2_500)
            .unwrap_or_else(|| panic!("opens"));
        assert_eq!(other.id, "INC-2");
        // Far outside the window: a new incident even for a related service.
        let (_, late) = inc
            .on_firing(&c, &alert("d", "Slow", "checkout", "warning"), 10_000_000)
            .unwrap_or_else(|| panic!("opens"));
        assert_eq!(late.id, "INC-3");
    }

    #[test]
    fn lifecycle_ack_and_auto_resolve() {
        let c = cfg();
        let mut inc = Incidents::default();
        inc.on_firing(&c, &alert("a", "X", "db", "critical"), 0);
        let (ch, i) = inc
            .ack("INC-1", "ann", 60_000)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ch, "acknowledged");
        assert_eq!(i.acknowledged_at_ms, Some(60_000));
        let (ch, i) = inc
            .on_resolved("a", 120_000)
            .unwrap_or_else(|| panic!("resolves"));
        assert_eq!(ch, "resolved");
        assert_eq!(i.resolved_by.as_deref(), Some("aiops"));
        assert_eq!(
            inc.ack("INC-1", "x", 0),
            Err(IncidentError::Resolved("INC-1".into()))
        );
        assert_eq!(
            inc.ack("INC-9", "x", 0),
            Err(IncidentError::Unknown("INC-9".into()))
        );
        // The decision carries what this change added; the incident keeps everything.
        let kinds: Vec<&str> = i.timeline.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(kinds, ["alert_resolved", "resolved"]);
        let whole = inc.get("INC-1").unwrap_or_else(|| panic!("kept"));
        let kinds: Vec<&str> = whole.timeline.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["opened", "acknowledged", "alert_resolved", "resolved"]
        );
    }

    #[test]
    fn a_storm_in_one_incident_costs_each_decision_the_same_bytes() {
        let c = cfg();
        let mut inc = Incidents::default();
        let mut sizes = Vec::new();
        for k in 0..2_000 {
            let svc = ["checkout", "db", "frontend"][k % 3];
            let (ch, v) = inc
                .on_firing(
                    &c,
                    &alert(&format!("fp{k:05}"), "Err", svc, "critical"),
                    k as i64,
                )
                .unwrap_or_else(|| panic!("joins"));
            assert_eq!(ch, if k == 0 { "opened" } else { "updated" });
            assert!(
                v.alerts.contains_key(&format!("fp{k:05}")),
                "the joining alert is carried"
            );
            assert!(v.alerts.len() <= DECISION_ALERTS);
            assert_eq!(v.alerts_total, k as u64 + 1);
            assert_eq!(v.alerts_firing, k as u64 + 1);
            assert!(v.timeline.len() <= 1, "only what the change added");
            sizes.push(serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0));
        }
        // Bounded: the 2,000th decision is no larger than the 60th (both carry the most alerts).
        assert!(
            sizes[1_999] <= sizes[59] + 16,
            "{} vs {}",
            sizes[1_999],
            sizes[59]
        );
        let whole = inc.get("INC-1").unwrap_or_else(|| panic!("open"));
        assert_eq!(whole.alerts.len(), 2_000);
        assert_eq!(
            whole
                .services()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["checkout", "db", "frontend"]
        );
        // A restored state (the cache is not stored) counts the same and closes at the last
        // resolved alert, not before.
        let text = serde_json::to_string(&inc).unwrap_or_default();
        let mut back: Incidents = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        for k in 0..1_999 {
            let (ch, v) = back
                .on_resolved(&format!("fp{k:05}"), 10_000 + k as i64)
                .unwrap_or_else(|| panic!("updates"));
            assert_eq!(ch, "updated");
            assert_eq!(v.alerts_firing, 1_999 - k as u64);
        }
        // A resolved alert firing again counts once more.
        let (_, v) = back
            .on_firing(&c, &alert("fp00000", "Err", "checkout", "critical"), 20_000)
            .unwrap_or_else(|| panic!("rejoins"));
        assert_eq!((v.alerts_firing, v.alerts_total), (2, 2_000));
        back.on_resolved("fp00000", 20_001);
        let (ch, v) = back
            .on_resolved("fp01999", 20_002)
            .unwrap_or_else(|| panic!("closes"));
        assert_eq!((ch.as_str(), v.alerts_firing), ("resolved", 0));
        let kinds: Vec<&str> = v.timeline.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(kinds, ["alert_resolved", "resolved"]);
    }

    #[test]
    fn a_decision_of_an_older_release_reads_into_the_view() {
        // What releases before the view logged: the whole incident.
        let mut inc = Incidents::default();
        let c = cfg();
        inc.on_firing(&c, &alert("a", "X", "db", "critical"), 0);
        inc.on_firing(&c, &alert("b", "Y", "checkout", "critical"), 1);
        let whole = inc.get("INC-1").cloned().unwrap_or_else(|| panic!("open"));
        let old = serde_json::to_string(&whole).unwrap_or_default();
        let v: IncidentView = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.alerts_total(), 2);
        assert_eq!(
            v.services().into_iter().collect::<Vec<_>>(),
            ["checkout", "db"]
        );
        assert_eq!(v.timeline.len(), whole.timeline.len());
    }

    fn evidence(at_ms: i64, series: &str, value: f64) -> AnomalyEvidence {
        AnomalyEvidence {
            at_ms,
            pipeline: "http_1m".into(),
            series: series.into(),
            detector: "ensemble".into(),
            signal: "value".into(),
            value: Some(value),
            expected: Some(240.0),
            lower: Some(180.0),
            upper: Some(300.0),
            direction: "up".into(),
            context: "the value is far outside the expected band".into(),
            explanation: format!("value {value} is above the expected 240 [180, 300]"),
            confidence: Some(0.41),
            watched_ms: 12_000_000,
        }
    }

    #[test]
    fn the_latest_evidence_explains_the_root_cause_and_the_timeline() {
        let c = cfg();
        let mut inc = Incidents::default();
        // Five anomalies on db before any alert: the latest three are kept.
        for (k, v) in [500.0, 600.0, 700.0, 812.0, 900.5].iter().enumerate() {
            let t = 1_000 + k as i64 * 100;
            inc.anomaly(&c, "db", t, Some(evidence(t, "latency_p99", *v)));
        }
        inc.on_firing(&c, &alert("a", "Latency", "frontend", "warning"), 2_000);
        let (_, v) = inc
            .on_firing(&c, &alert("b", "Slow", "db", "critical"), 2_100)
            .unwrap_or_else(|| panic!("joins"));
        let db = v
            .root_causes
            .iter()
            .find(|r| r.service == "db")
            .unwrap_or_else(|| panic!("db ranked: {:?}", v.root_causes));
        let values: Vec<Option<f64>> = db.evidence.iter().map(|e| e.value).collect();
        assert_eq!(
            values,
            [Some(900.5), Some(812.0), Some(700.0)],
            "newest first"
        );
        assert!(
            db.reasons.contains(
                &"anomaly: latency_p99 = 900.5, above the expected 240 [180, 300] — the value is far outside the expected band".to_string()
            ),
            "{:?}",
            db.reasons
        );
        // A service without evidence has none, and no anomaly reason.
        let fe = v.root_causes.iter().find(|r| r.service == "frontend");
        assert!(fe.is_some_and(|r| r.evidence.is_empty()));
        assert_eq!(v.root_causes[0].service, "db");
        // The join noted the kept anomalies at their own times.
        let noted: Vec<(i64, &str)> = v
            .timeline
            .iter()
            .filter(|t| t.kind == "anomaly")
            .map(|t| (t.at_ms, t.text.as_str()))
            .collect();
        assert_eq!(noted.len(), 3, "{noted:?}");
        assert_eq!(noted[0].0, 1_200);
        assert!(noted[2].1.starts_with("db: anomaly: latency_p99 = 900.5"));
        assert!(noted[2].1.ends_with("(pipeline http_1m, ensemble)"));

        // An anomaly while the incident is open: timeline entry and root cause at once.
        inc.anomaly(&c, "frontend", 2_500, Some(evidence(2_500, "errors", 31.0)));
        let whole = inc.get("INC-1").unwrap_or_else(|| panic!("open"));
        let last = whole.timeline.last().unwrap_or_else(|| panic!("noted"));
        assert_eq!((last.kind.as_str(), last.at_ms), ("anomaly", 2_500));
        assert!(last.text.starts_with("frontend: anomaly: errors = 31"));
        let fe = whole.root_causes.iter().find(|r| r.service == "frontend");
        assert_eq!(fe.map(|r| r.evidence.len()), Some(1));

        // Long after the window, old evidence is forgotten as the next anomaly comes.
        inc.anomaly(&c, "db", 10_000_000, Some(evidence(10_000_000, "x", 1.0)));
        assert_eq!(inc.evidence["db"].len(), 1);
    }

    #[test]
    fn evidence_text_is_bounded_and_numbers_finite() {
        let c = cfg();
        let mut inc = Incidents::default();
        let mut ev = evidence(10, &"<script>".repeat(1_000), f64::NAN);
        ev.explanation = "é".repeat(5_000);
        ev.expected = Some(f64::INFINITY);
        inc.anomaly(&c, "db", 10, Some(ev));
        let kept = &inc.evidence["db"][0];
        assert_eq!(kept.series.chars().count(), EVIDENCE_TEXT_MAX + 1);
        assert!(kept.series.starts_with("<script>"), "kept as data");
        assert_eq!(kept.explanation.chars().count(), EVIDENCE_TEXT_MAX + 1);
        assert_eq!((kept.value, kept.expected), (None, None));
        // Without numbers the reason still names the series and why.
        assert!(
            kept.reason()
                .ends_with("— the value is far outside the expected band")
        );
        // The state serializes (no NaN) and reads back equal.
        let text = serde_json::to_string(&inc).unwrap_or_else(|e| panic!("{e}"));
        let back: Incidents = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.evidence, inc.evidence);
    }

    #[test]
    fn records_of_older_releases_without_evidence_still_read() {
        // A control record that carried only the service.
        let old: crate::engine::Control =
            serde_json::from_str(r#"{"command": "anomaly", "service": "db"}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            old,
            crate::engine::Control::Anomaly {
                service: "db".into(),
                evidence: None
            }
        );
        // A root cause and a checkpoint without the new fields.
        let rc: RootCause =
            serde_json::from_str(r#"{"service": "db", "score": 0.6, "reasons": ["fired first"]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(rc.evidence.is_empty());
        let c = cfg();
        let mut inc = Incidents::default();
        inc.anomaly(&c, "db", 1_000, None);
        inc.on_firing(&c, &alert("a", "X", "db", "critical"), 1_100);
        let mut state = serde_json::to_value(&inc).unwrap_or_else(|e| panic!("{e}"));
        if let Some(m) = state.as_object_mut() {
            assert!(m.remove("evidence").is_some());
        }
        let back: Incidents = serde_json::from_value(state).unwrap_or_else(|e| panic!("{e}"));
        let rc = &back
            .open()
            .next()
            .unwrap_or_else(|| panic!("open"))
            .root_causes[0];
        // Without an explanation the anomaly still counts, in the words of before.
        assert_eq!(rc.reasons, ["fired first", "anomalies detected on it"]);
        assert!(rc.evidence.is_empty());
    }

    #[test]
    fn info_alerts_do_not_open_incidents() {
        let mut inc = Incidents::default();
        assert!(
            inc.on_firing(&cfg(), &alert("a", "X", "db", "info"), 0)
                .is_none()
        );
    }
}
