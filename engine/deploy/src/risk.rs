//! Risk before a deploy (部署风险评估): a score from 0 to 100 with one reason per factor that
//! added to it, and the policy that turns it into allow / needs approval / refused. Factors: the
//! size of the change when known, the time of day and week against the team's change windows,
//! open incidents and firing alerts on the service and its dependencies, the service's recent
//! change failure rate, and the error-budget burn. Deterministic: only the inputs count (the
//! deploy's own time, never a clock).
//!
//! The types below are the contract the deploy book and the API use. Policy order: a matching
//! freeze refuses whatever the score; otherwise a score at or above the threshold in an approval
//! environment needs an approval.

use aiops_schemas::deploy::ChangeSize;
use serde::{Deserialize, Serialize};

/// An open incident as the risk sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIncident {
    /// Incident id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `critical`, `warning`, `info`, …
    pub severity: String,
    /// Services it involves.
    pub services: Vec<String>,
}

/// A firing alert as the risk sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiringAlert {
    /// Alert fingerprint.
    pub fingerprint: String,
    /// `alertname`.
    pub alertname: String,
    /// Severity label.
    pub severity: String,
    /// `service` label (empty when none).
    pub service: String,
}

/// What the risk of one deploy is computed from.
#[derive(Debug, Clone, Copy)]
pub struct RiskInput<'a> {
    /// The service deployed.
    pub service: &'a str,
    /// Its environment.
    pub environment: &'a str,
    /// When it starts (Unix ms): the time of day and week are read from this.
    pub at_ms: i64,
    /// Size of the change, when known.
    pub change: Option<ChangeSize>,
    /// The services it depends on (from the settings).
    pub dependencies: &'a [String],
    /// Incidents open now.
    pub open_incidents: &'a [OpenIncident],
    /// Alerts firing now.
    pub firing_alerts: &'a [FiringAlert],
    /// The service's deploys in the lookback before this one.
    pub recent_deploys: u32,
    /// Of those, how many failed (rolled back, failed, or verified as rollback).
    pub recent_failures: u32,
    /// Error-budget burn rate of the service now (1.0 = spending exactly the budget), when known.
    pub error_budget_burn: Option<f64>,
}

/// A weekly change window: deploys inside any window add nothing; outside all windows add the
/// `outside_window` points. Times are local to `utc_offset_minutes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeWindow {
    /// Days, `mon` … `sun`.
    pub days: Vec<String>,
    /// Start, `HH:MM`.
    pub start: String,
    /// End (exclusive), `HH:MM`.
    pub end: String,
}

/// A freeze: deploys matching it inside `[from_ms, until_ms)` are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// Name in the refusal, e.g. `year-end`.
    pub name: String,
    /// Start, RFC 3339 (e.g. `2026-12-20T00:00:00Z`).
    pub from: String,
    /// End (exclusive), RFC 3339.
    pub until: String,
    /// Environments it applies to; empty: all.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Services it applies to; empty: all.
    #[serde(default)]
    pub services: Vec<String>,
}

/// Risk settings and policy (`[deploys.risk]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSettings {
    /// At or above this score a deploy needs an approval. Default 60.
    pub approval_threshold: f64,
    /// Environments where the approval applies; empty: all. Default `["production"]`.
    pub approval_environments: Vec<String>,
    /// Change windows; empty: every time is inside a window.
    pub change_windows: Vec<ChangeWindow>,
    /// Offset of the change windows' clock from UTC, minutes (Beijing: 480).
    pub utc_offset_minutes: i32,
    /// Freezes.
    pub freezes: Vec<Freeze>,
}

impl Default for RiskSettings {
    fn default() -> Self {
        RiskSettings {
            approval_threshold: 60.0,
            approval_environments: vec!["production".into()],
            change_windows: Vec::new(),
            utc_offset_minutes: 0,
            freezes: Vec::new(),
        }
    }
}

/// One factor that added to the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskReason {
    /// `change_size`, `change_window`, `open_incident`, `firing_alert`, `failure_rate`,
    /// `error_budget`.
    pub factor: String,
    /// Points added.
    pub points: f64,
    /// What exactly (`critical incident inc-12 "DB down" open on dependency payments`).
    pub detail: String,
}

/// Low, medium or high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Below 30.
    Low,
    /// 30 to below 60.
    Medium,
    /// 60 and above.
    High,
}

/// The risk of one deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    /// 0–100.
    pub score: f64,
    /// Its level.
    pub level: RiskLevel,
    /// The factors that added to it, largest first.
    pub reasons: Vec<RiskReason>,
}

/// What the policy says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Policy {
    /// Go ahead.
    Allow,
    /// Needs an approval first; why.
    NeedsApproval {
        /// Why (`risk 72 ≥ 60 in production`).
        reason: String,
    },
    /// Refused; why (`freeze "year-end" until 2027-01-04T00:00:00Z`).
    Refused {
        /// Why.
        reason: String,
    },
}

/// Why risk settings are not valid (the operator must fix the configuration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("deploys.risk: {0}")]
pub struct RiskSettingsError(pub String);

impl RiskSettings {
    /// Checks the settings (days, `HH:MM`, RFC 3339 times, `from < until`).
    ///
    /// # Errors
    /// The first invalid field, named by its path (`freezes[1].until: …`).
    pub fn validate(&self) -> Result<(), RiskSettingsError> {
        let fail = |path: String, why: String| Err(RiskSettingsError(format!("{path}: {why}")));
        if !self.approval_threshold.is_finite() || self.approval_threshold < 0.0 {
            return fail(
                "approval_threshold".into(),
                format!(
                    "{} is not a score (0 … 100; above 100 never asks)",
                    self.approval_threshold
                ),
            );
        }
        if let Some(i) = self
            .approval_environments
            .iter()
            .position(|e| e.trim().is_empty())
        {
            return fail(
                format!("approval_environments[{i}]"),
                "empty environment name".into(),
            );
        }
        if self.utc_offset_minutes.unsigned_abs() > 18 * 60 {
            return fail(
                "utc_offset_minutes".into(),
                format!(
                    "{} is beyond ±18 hours (Beijing is 480, New York -300)",
                    self.utc_offset_minutes
                ),
            );
        }
        for (i, w) in self.change_windows.iter().enumerate() {
            if let Err((field, why)) = Window::parse(w) {
                return fail(format!("change_windows[{i}].{field}"), why);
            }
        }
        for (i, f) in self.freezes.iter().enumerate() {
            if f.name.trim().is_empty() {
                return fail(format!("freezes[{i}].name"), "empty name".into());
            }
            let from = match parse_rfc3339_ms(&f.from) {
                Ok(v) => v,
                Err(e) => return fail(format!("freezes[{i}].from"), e.to_string()),
            };
            let until = match parse_rfc3339_ms(&f.until) {
                Ok(v) => v,
                Err(e) => return fail(format!("freezes[{i}].until"), e.to_string()),
            };
            if until <= from {
                return fail(
                    format!("freezes[{i}].until"),
                    format!("{} is not after from ({})", f.until, f.from),
                );
            }
            for (field, list) in [("environments", &f.environments), ("services", &f.services)] {
                if let Some(j) = list.iter().position(|e| e.trim().is_empty()) {
                    return fail(format!("freezes[{i}].{field}[{j}]"), "empty name".into());
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Points. Every curve below is plain IEEE arithmetic (+, −, ×, ÷, min/max, round): no `powf`,
// `exp` or `ln`, whose last bits may differ between platforms, so every node computes the same
// score from the same log.
// ---------------------------------------------------------------------------------------------

/// Most points the size of the change adds.
pub const CHANGE_SIZE_MAX: f64 = 20.0;
/// Points for a deploy outside every configured change window.
pub const OUTSIDE_WINDOW_POINTS: f64 = 15.0;
/// Points per open incident on the service: critical, warning, any other severity.
pub const SERVICE_INCIDENT_POINTS: [f64; 3] = [30.0, 15.0, 5.0];
/// Most points open incidents on the service add together.
pub const SERVICE_INCIDENT_CAP: f64 = 40.0;
/// Points per open incident on a dependency: critical, warning (other severities add nothing).
pub const DEPENDENCY_INCIDENT_POINTS: [f64; 2] = [25.0, 10.0];
/// Most points open incidents on dependencies add together.
pub const DEPENDENCY_INCIDENT_CAP: f64 = 30.0;
/// Points per firing alert name on the service: critical, warning.
pub const SERVICE_ALERT_POINTS: [f64; 2] = [15.0, 5.0];
/// Most points alerts firing on the service add together.
pub const SERVICE_ALERT_CAP: f64 = 25.0;
/// Points per firing alert name on a dependency: critical, warning.
pub const DEPENDENCY_ALERT_POINTS: [f64; 2] = [8.0, 3.0];
/// Most points alerts firing on dependencies add together.
pub const DEPENDENCY_ALERT_CAP: f64 = 15.0;
/// Most points the recent change failure rate adds (reached at a smoothed rate of 50 %).
pub const FAILURE_RATE_MAX: f64 = 20.0;
/// Successful deploys assumed before the recent ones, so one failure of one deploy reads as
/// 1 in 3, not 100 %.
pub const FAILURE_RATE_PRIOR: f64 = 2.0;
/// Most points the error-budget burn adds (reached at a burn of 10×).
pub const ERROR_BUDGET_MAX: f64 = 20.0;
/// Longest incident title quoted in a reason, characters.
const TITLE_MAX_CHARS: usize = 120;

/// Rounds to one decimal: the points shown are the points summed, so reasons add up to the score.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A number as people write it: `72`, `72.5`.
fn show(x: f64) -> String {
    format!("{}", round1(x))
}

fn reason(factor: &str, points: f64, detail: String) -> RiskReason {
    RiskReason {
        factor: factor.to_owned(),
        points: round1(points),
        detail,
    }
}

/// The risk of a deploy.
///
/// Factors (see `docs/deploys.md`, section "Risk"): the size of the change (up to
/// [`CHANGE_SIZE_MAX`]), a start outside every change window ([`OUTSIDE_WINDOW_POINTS`]; nothing
/// when no windows are configured), open incidents and firing alerts on the service and on its
/// dependencies (per item, capped per group), the smoothed recent change failure rate (up to
/// [`FAILURE_RATE_MAX`]) and an error-budget burn above 1 (up to [`ERROR_BUDGET_MAX`]). The
/// score is the sum, at most 100; the reasons come largest first, then by factor and detail, so
/// the same input always gives the same [`Risk`].
pub fn assess(input: &RiskInput<'_>, settings: &RiskSettings) -> Risk {
    let mut reasons = Vec::new();
    if let Some(change) = input.change {
        reasons.extend(change_size(&change));
    }
    reasons.extend(change_window(input.at_ms, settings));
    reasons.extend(incidents(input));
    reasons.extend(alerts(input));
    reasons.extend(failure_rate(input));
    reasons.extend(error_budget(input.service, input.error_budget_burn));
    reasons.retain(|r| r.points > 0.0);
    reasons.sort_by(|a, b| {
        b.points
            .total_cmp(&a.points)
            .then_with(|| a.factor.cmp(&b.factor))
            .then_with(|| a.detail.cmp(&b.detail))
    });
    let sum: f64 = reasons.iter().map(|r| r.points).sum();
    let score = round1(sum.clamp(0.0, 100.0));
    Risk {
        score,
        level: level_of(score),
        reasons,
    }
}

/// The level of a score: low below 30, medium below 60, high from 60.
pub fn level_of(score: f64) -> RiskLevel {
    if score < 30.0 {
        RiskLevel::Low
    } else if score < 60.0 {
        RiskLevel::Medium
    } else {
        RiskLevel::High
    }
}

/// `20 · s / (1 + s)` with `s = commits/15 + files/25 + lines/400`: a one-line fix adds almost
/// nothing, 400 lines about 10 points, and no change, however large, more than 20.
fn change_size(change: &ChangeSize) -> Option<RiskReason> {
    let s = f64::from(change.commits) / 15.0
        + f64::from(change.files) / 25.0
        + f64::from(change.lines) / 400.0;
    if s <= 0.0 {
        return None;
    }
    let points = CHANGE_SIZE_MAX * s / (1.0 + s);
    Some(reason(
        "change_size",
        points,
        format!(
            "change of {} commit{}, {} file{}, {} line{}",
            change.commits,
            plural(change.commits),
            change.files,
            plural(change.files),
            change.lines,
            plural(change.lines)
        ),
    ))
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn change_window(at_ms: i64, settings: &RiskSettings) -> Option<RiskReason> {
    if settings.change_windows.is_empty() || in_change_window(at_ms, settings) {
        return None;
    }
    let (day, minute) = weekday_minute(at_ms, settings.utc_offset_minutes);
    let day_name = DAY_NAMES.get(usize::from(day)).copied().unwrap_or("?");
    Some(reason(
        "change_window",
        OUTSIDE_WINDOW_POINTS,
        format!(
            "starts {day_name} {:02}:{:02} (UTC{}), outside every change window",
            minute / 60,
            minute % 60,
            format_offset(settings.utc_offset_minutes)
        ),
    ))
}

/// `+08:00`, `-05:30`.
fn format_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// Severity class: 0 critical, 1 warning, 2 anything else.
fn severity_class(severity: &str) -> usize {
    if severity.eq_ignore_ascii_case("critical") {
        0
    } else if severity.eq_ignore_ascii_case("warning") {
        1
    } else {
        2
    }
}

/// Cuts `s` to at most `max` characters, with `…` when cut.
fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

/// Grants `items` (points, detail) in order until `cap` is spent; the last granted one says how
/// many were left out.
fn capped(factor: &str, mut items: Vec<(f64, String)>, cap: f64, what: &str) -> Vec<RiskReason> {
    items.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut left = cap;
    let mut out: Vec<RiskReason> = Vec::new();
    let mut not_counted = 0usize;
    for (points, detail) in items {
        if points <= 0.0 {
            continue;
        }
        if left <= 0.0 {
            not_counted += 1;
            continue;
        }
        let granted = points.min(left);
        left -= granted;
        let detail = if granted < points {
            format!("{detail} (cap of {} for {what} reached)", show(cap))
        } else {
            detail
        };
        out.push(reason(factor, granted, detail));
    }
    if not_counted > 0
        && let Some(last) = out.last_mut()
    {
        last.detail
            .push_str(&format!("; {not_counted} more {what} not counted"));
    }
    out
}

fn incidents(input: &RiskInput<'_>) -> Vec<RiskReason> {
    let mut own = Vec::new();
    let mut deps = Vec::new();
    for inc in input.open_incidents {
        let class = severity_class(&inc.severity);
        let title = bounded(&inc.title, TITLE_MAX_CHARS);
        let severity = bounded(&inc.severity, 32);
        if inc.services.iter().any(|s| s == input.service) {
            own.push((
                SERVICE_INCIDENT_POINTS[class],
                format!(
                    "{severity} incident {} {title:?} is open on the service {}",
                    inc.id, input.service
                ),
            ));
            continue;
        }
        let mut on: Vec<&str> = input
            .dependencies
            .iter()
            .filter(|d| inc.services.iter().any(|s| s == *d))
            .map(String::as_str)
            .collect();
        on.sort_unstable();
        on.dedup();
        if on.is_empty() {
            continue;
        }
        if let Some(&points) = DEPENDENCY_INCIDENT_POINTS.get(class) {
            deps.push((
                points,
                format!(
                    "{severity} incident {} {title:?} is open on dependency {}",
                    inc.id,
                    on.join(", ")
                ),
            ));
        }
    }
    let mut out = capped(
        "open_incident",
        own,
        SERVICE_INCIDENT_CAP,
        "incidents on the service",
    );
    out.extend(capped(
        "open_incident",
        deps,
        DEPENDENCY_INCIDENT_CAP,
        "incidents on dependencies",
    ));
    out
}

fn alerts(input: &RiskInput<'_>) -> Vec<RiskReason> {
    use std::collections::{BTreeMap, BTreeSet};
    // (own?, service, alertname) → (worst severity class, fingerprints): a hundred pods firing
    // the same alert are one reason.
    let mut groups: BTreeMap<(bool, &str, &str), (usize, BTreeSet<&str>)> = BTreeMap::new();
    for a in input.firing_alerts {
        let own = a.service == input.service;
        if !own && !input.dependencies.contains(&a.service) {
            continue;
        }
        let class = severity_class(&a.severity);
        let entry = groups
            .entry((own, a.service.as_str(), a.alertname.as_str()))
            .or_insert((class, BTreeSet::new()));
        entry.0 = entry.0.min(class);
        entry.1.insert(a.fingerprint.as_str());
    }
    let mut own_items = Vec::new();
    let mut dep_items = Vec::new();
    for ((own, service, alertname), (class, fingerprints)) in groups {
        let table = if own {
            SERVICE_ALERT_POINTS
        } else {
            DEPENDENCY_ALERT_POINTS
        };
        let Some(&points) = table.get(class) else {
            continue;
        };
        let severity = if class == 0 { "critical" } else { "warning" };
        let n = fingerprints.len();
        let series = if n == 1 {
            String::new()
        } else {
            format!(" ({n} series)")
        };
        let alertname = bounded(alertname, 80);
        if own {
            own_items.push((
                points,
                format!("{severity} alert {alertname} is firing on the service {service}{series}"),
            ));
        } else {
            dep_items.push((
                points,
                format!("{severity} alert {alertname} is firing on dependency {service}{series}"),
            ));
        }
    }
    let mut out = capped(
        "firing_alert",
        own_items,
        SERVICE_ALERT_CAP,
        "alerts on the service",
    );
    out.extend(capped(
        "firing_alert",
        dep_items,
        DEPENDENCY_ALERT_CAP,
        "alerts on dependencies",
    ));
    out
}

/// `failures / (deploys + 2)`, doubled into points up to 20: one failure of one deploy is 1 in 3
/// (13.3 points), one of ten is 1 in 12 (3.3), half of many saturates.
fn failure_rate(input: &RiskInput<'_>) -> Option<RiskReason> {
    let deploys = input.recent_deploys;
    let failures = input.recent_failures.min(deploys);
    if failures == 0 {
        return None;
    }
    let rate = f64::from(failures) / (f64::from(deploys) + FAILURE_RATE_PRIOR);
    let points = (2.0 * FAILURE_RATE_MAX * rate).min(FAILURE_RATE_MAX);
    Some(reason(
        "failure_rate",
        points,
        format!(
            "{failures} of the last {deploys} deploy{} of {} failed (change failure rate {}% \
             counting {} prior successes)",
            plural(deploys),
            input.service,
            show(100.0 * rate),
            show(FAILURE_RATE_PRIOR)
        ),
    ))
}

/// A burn above 1 spends the budget faster than it accrues: `(burn − 1) / 9` of 20 points,
/// saturating at 10×.
fn error_budget(service: &str, burn: Option<f64>) -> Option<RiskReason> {
    let burn = burn?;
    // NaN (no data) adds nothing; +∞ (budget of zero with errors) saturates.
    if burn.is_nan() || burn <= 1.0 {
        return None;
    }
    let points = (ERROR_BUDGET_MAX * (burn - 1.0) / 9.0).min(ERROR_BUDGET_MAX);
    let shown = if burn.is_finite() {
        format!("{}×", show(burn))
    } else {
        "an unbounded rate".to_owned()
    };
    Some(reason(
        "error_budget",
        points,
        format!("the error budget of {service} is burning at {shown} the sustainable rate"),
    ))
}

/// What the policy says about a deploy of `input` with `risk`: refused in a matching freeze
/// (`from ≤ at < until`, environment and service filters), else an approval when the score is at
/// or above the threshold in an approval environment, else allowed.
pub fn policy(input: &RiskInput<'_>, risk: &Risk, settings: &RiskSettings) -> Policy {
    if let Some(f) = active_freeze(input, settings) {
        return Policy::Refused {
            reason: format!(
                "deploys to {} are frozen by {:?} until {}",
                input.environment, f.name, f.until
            ),
        };
    }
    let env_applies = settings.approval_environments.is_empty()
        || settings
            .approval_environments
            .iter()
            .any(|e| e == input.environment);
    if env_applies && risk.score >= settings.approval_threshold {
        let top: Vec<&str> = risk
            .reasons
            .iter()
            .take(3)
            .map(|r| r.detail.as_str())
            .collect();
        let mut reason = format!(
            "risk {} ≥ {} in {}",
            show(risk.score),
            show(settings.approval_threshold),
            input.environment
        );
        if !top.is_empty() {
            reason.push_str(": ");
            reason.push_str(&top.join("; "));
        }
        return Policy::NeedsApproval { reason };
    }
    Policy::Allow
}

/// The first freeze (in configuration order) that holds `input`'s deploy. A freeze whose times
/// do not parse holds nothing ([`RiskSettings::validate`] refuses such settings at load).
pub fn active_freeze<'s>(input: &RiskInput<'_>, settings: &'s RiskSettings) -> Option<&'s Freeze> {
    settings.freezes.iter().find(|f| {
        let (Ok(from), Ok(until)) = (parse_rfc3339_ms(&f.from), parse_rfc3339_ms(&f.until)) else {
            return false;
        };
        from <= input.at_ms
            && input.at_ms < until
            && (f.environments.is_empty() || f.environments.iter().any(|e| e == input.environment))
            && (f.services.is_empty() || f.services.iter().any(|s| s == input.service))
    })
}

// ---------------------------------------------------------------------------------------------
// Calendar: integer arithmetic only.
// ---------------------------------------------------------------------------------------------

const MS_PER_DAY: i64 = 86_400_000;

/// The weekday (0 = Monday … 6 = Sunday) and the minute of the day (0 … 1439) of `at_ms` on a
/// clock `utc_offset_minutes` ahead of UTC. 1970-01-01 was a Thursday (3).
pub fn weekday_minute(at_ms: i64, utc_offset_minutes: i32) -> (u8, u32) {
    let local = at_ms.saturating_add(i64::from(utc_offset_minutes) * 60_000);
    let days = local.div_euclid(MS_PER_DAY);
    let weekday = (days + 3).rem_euclid(7);
    let minute = local.rem_euclid(MS_PER_DAY) / 60_000;
    // Both are in range by construction (rem_euclid): 0..7 and 0..1440.
    (
        u8::try_from(weekday).unwrap_or(0),
        u32::try_from(minute).unwrap_or(0),
    )
}

/// One window, parsed: days as a bit set (bit 0 = Monday), minutes of the day.
#[derive(Debug, Clone, Copy)]
struct Window {
    days: u8,
    start: u32,
    end: u32,
}

impl Window {
    fn parse(w: &ChangeWindow) -> Result<Window, (String, String)> {
        let mut days = 0u8;
        if w.days.is_empty() {
            return Err(("days".into(), "no days listed (mon … sun)".into()));
        }
        for (i, d) in w.days.iter().enumerate() {
            let Some(n) = DAY_NAMES.iter().position(|n| n.eq_ignore_ascii_case(d)) else {
                return Err((
                    format!("days[{i}]"),
                    format!("{d:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"),
                ));
            };
            days |= 1 << n;
        }
        let start = parse_hhmm(&w.start, false).map_err(|e| ("start".to_owned(), e))?;
        let end = parse_hhmm(&w.end, true).map_err(|e| ("end".to_owned(), e))?;
        Ok(Window { days, start, end })
    }

    /// Whether (weekday, minute) is inside: on a listed day from `start`; an `end ≤ start` runs
    /// on past midnight into the next day.
    fn contains(&self, weekday: u8, minute: u32) -> bool {
        let listed = |d: u8| self.days & (1 << d) != 0;
        if self.end > self.start {
            return listed(weekday) && self.start <= minute && minute < self.end;
        }
        let yesterday = (weekday + 6) % 7;
        (listed(weekday) && minute >= self.start) || (listed(yesterday) && minute < self.end)
    }
}

/// `HH:MM` → minute of the day; `24:00` only as an end.
fn parse_hhmm(s: &str, is_end: bool) -> Result<u32, String> {
    let b = s.as_bytes();
    let bad = || format!("{s:?} is not a time of day (HH:MM, 00:00 … 23:59)");
    if b.len() != 5 || b[2] != b':' {
        return Err(bad());
    }
    let h = two_digits(&b[0..2]).ok_or_else(bad)?;
    let m = two_digits(&b[3..5]).ok_or_else(bad)?;
    if is_end && h == 24 && m == 0 {
        return Ok(1440);
    }
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(c - b'0'))
        }
        _ => None,
    }
}

/// Whether `at_ms` falls inside a change window (always, when none is configured; a window that
/// does not parse holds nothing).
pub fn in_change_window(at_ms: i64, settings: &RiskSettings) -> bool {
    if settings.change_windows.is_empty() {
        return true;
    }
    let (weekday, minute) = weekday_minute(at_ms, settings.utc_offset_minutes);
    settings
        .change_windows
        .iter()
        .filter_map(|w| Window::parse(w).ok())
        .any(|w| w.contains(weekday, minute))
}

/// Why a time is not RFC 3339 (the operator must fix the configured time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)): {1}")]
pub struct Rfc3339Error(pub String, pub &'static str);

/// Days from 1970-01-01 to the civil date (proleptic Gregorian), Howard Hinnant's
/// `days_from_civil`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM)` into Unix ms (fractions beyond ms are cut). `t`
/// and `z` may be lower case, as RFC 3339 allows; leap seconds (`:60`) are refused.
///
/// # Errors
/// [`Rfc3339Error`] naming the first thing wrong.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, Rfc3339Error> {
    let err = |why: &'static str| Rfc3339Error(s.to_owned(), why);
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(err("too short"));
    }
    let digits = |from: usize, n: usize| -> Option<u32> {
        let part = b.get(from..from + n)?;
        part.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = digits(0, 4).ok_or_else(|| err("year is not 4 digits"))?;
    if b[4] != b'-' || b[7] != b'-' {
        return Err(err("date separators must be '-'"));
    }
    let month = digits(5, 2).ok_or_else(|| err("month is not 2 digits"))?;
    let day = digits(8, 2).ok_or_else(|| err("day is not 2 digits"))?;
    if !matches!(b[10], b'T' | b't') {
        return Err(err("date and time must be separated by 'T'"));
    }
    let hour = digits(11, 2).ok_or_else(|| err("hour is not 2 digits"))?;
    if b[13] != b':' || b[16] != b':' {
        return Err(err("time separators must be ':'"));
    }
    let minute = digits(14, 2).ok_or_else(|| err("minute is not 2 digits"))?;
    let second = digits(17, 2).ok_or_else(|| err("second is not 2 digits"))?;
    let year = i64::from(year);
    if !(1..=12).contains(&month) {
        return Err(err("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(err("day out of range for the month"));
    }
    if hour > 23 || minute > 59 {
        return Err(err("hour or minute out of range"));
    }
    if second > 59 {
        return Err(err("second out of range (leap seconds are not accepted)"));
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                ms = ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err(err("no digits after '.'"));
        }
        if n > 9 {
            return Err(err("more than 9 fraction digits"));
        }
        for _ in n..3 {
            ms *= 10;
        }
    }
    let offset_minutes: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = digits(i + 1, 2).ok_or_else(|| err("offset hour is not 2 digits"))?;
            let om = digits(i + 4, 2).ok_or_else(|| err("offset minute is not 2 digits"))?;
            if oh > 23 || om > 59 {
                return Err(err("offset out of range"));
            }
            let m = i64::from(oh * 60 + om);
            if sign == b'-' { -m } else { m }
        }
        _ => return Err(err("must end in 'Z' or an offset ±HH:MM")),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    Ok(secs * 1000 + ms)
}
