//! What a service's logs say about a deploy: log templates first seen after it started, and a
//! surge of error lines against the same length of time before it.
//!
//! The input is the template miner's per-bucket counts (`log_templates_1m`: bucket start,
//! service, template id and text, lines, error lines), read in log order, so the same log gives
//! the same signals. Templates are per service, not per version (the miner does not split a
//! service by version), so for a canary these signals cover the whole service.
//!
//! The miner's buckets start on whole multiples of their width (a minute), not at the deploy:
//! the bucket holding the deploy's start belongs to the deploy (a new version that fails at
//! start logs there), and the baseline is the same number of buckets before it.

use crate::record::Signal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Services whose log history is kept at most (the least recently counted are forgotten first).
const MAX_SERVICES: usize = 10_000;
/// Templates remembered per service at most (the least recently counted are forgotten first).
const MAX_TEMPLATES: usize = 10_000;
/// A template (or a service) not counted for this long is forgotten: "new" means not seen in
/// the week before, which every reader of a week of log agrees on.
pub const HISTORY_MS: i64 = 7 * 86_400_000;
/// How often (log time) forgotten templates are looked for.
const FORGET_EVERY_MS: i64 = 3_600_000;
/// The miner's bucket width when a count does not say (one minute).
const DEFAULT_BUCKET_MS: i64 = 60_000;
/// Widest bucket taken from a count (wider ones keep the width known so far).
const MAX_BUCKET_MS: i64 = 3_600_000;
/// What error counts are kept beyond a baseline's length (two of the widest buckets: the
/// baseline starts on a bucket boundary before the deploy).
pub const KEEP_MARGIN_MS: i64 = 2 * MAX_BUCKET_MS;
/// Signals about new templates listed per verdict at most (one more line counts the rest).
const MAX_LISTED: usize = 5;
/// Longest template text quoted in a signal.
const MAX_QUOTE: usize = 160;

/// How log signals count (`[deploys.logs]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Whether verdicts look at logs at all. Default true (without the template miner there is
    /// nothing to look at, and no signal).
    pub enabled: bool,
    /// Error lines since the deploy must be at least this many times those of the baseline for
    /// a surge. Default 3.
    pub error_surge_ratio: f64,
    /// And at least this many (≥ 1). Default 10.
    pub error_surge_min: u64,
    /// A surge of at least this many times the baseline (counted as at least 1) calls for a
    /// rollback by itself; below, it makes a promote inconclusive. Default 0: never.
    pub error_surge_critical_ratio: f64,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            enabled: true,
            error_surge_ratio: 3.0,
            error_surge_min: 10,
            error_surge_critical_ratio: 0.0,
        }
    }
}

impl LogSettings {
    /// Whether these are the defaults (a default configuration hashes as before these settings
    /// existed, so checkpoints of the previous release resume).
    pub fn is_default(&self) -> bool {
        *self == LogSettings::default()
    }

    /// Checks what serde cannot.
    ///
    /// # Errors
    /// The first invalid setting, named (the operator fixes the configuration).
    pub fn validate(&self) -> Result<(), String> {
        if !(self.error_surge_ratio.is_finite() && self.error_surge_ratio >= 1.0) {
            return Err("deploys.logs.error_surge_ratio must be >= 1".into());
        }
        if self.error_surge_min == 0 {
            // 0 ≥ 3 × 0: every deploy would "surge" with no error at all.
            return Err("deploys.logs.error_surge_min must be >= 1".into());
        }
        let c = self.error_surge_critical_ratio;
        if !(c.is_finite() && (c == 0.0 || c >= self.error_surge_ratio)) {
            return Err(
                "deploys.logs.error_surge_critical_ratio must be 0 (never) or >= error_surge_ratio"
                    .into(),
            );
        }
        Ok(())
    }
}

/// One row of the miner's bucket counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemplateCount<'a> {
    /// Start of the count's bucket (Unix ms).
    pub window_start_ms: i64,
    /// The bucket's width (ms); outside 1 s … 1 h: the width known so far (one minute).
    pub window_ms: i64,
    /// The service.
    pub service: &'a str,
    /// The template's id (per service).
    pub template_id: &'a str,
    /// The template's text.
    pub template: &'a str,
    /// Lines in the bucket.
    pub lines: u64,
    /// Error lines in the bucket.
    pub errors: u64,
}

/// A template as seen so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    /// Bucket it was first counted in.
    first_ms: i64,
    /// Latest bucket counted.
    last_ms: i64,
    /// Its text when first seen (cut).
    template: String,
    /// Lines and error lines counted (a bucket counted again replaces itself).
    lines: u64,
    errors: u64,
    /// The latest bucket's own counts (what a repeat of it replaces).
    last_lines: u64,
    last_errors: u64,
}

/// One service's log history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ServiceLogs {
    /// First and latest bucket counted.
    since: i64,
    last: i64,
    /// The miner's bucket width.
    bucket_ms: i64,
    /// Template id → what was seen.
    templates: BTreeMap<String, Seen>,
    /// Bucket start → template id → error lines (a bucket counted again replaces itself: a
    /// miner that rebuilds re-appends old buckets).
    errors: BTreeMap<i64, BTreeMap<String, u64>>,
}

/// The log history the signals need (part of the book's checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogHistory {
    services: BTreeMap<String, ServiceLogs>,
    /// When forgotten templates were last looked for (log time).
    forgot_at: i64,
}

/// `s` cut to at most `max` bytes on a character boundary, `…` marking a cut.
fn cut(s: &str, max: usize) -> String {
    let head = crate::book::cut(s, max);
    if head.len() < s.len() {
        format!("{head}…")
    } else {
        head
    }
}

/// Forgets the tenth of `map`'s entries counted longest ago (one sort per tenth of the cap).
fn forget_least_recent<V>(map: &mut BTreeMap<String, V>, last: impl Fn(&V) -> i64, cap: usize) {
    let mut by_age: Vec<(i64, String)> = map.iter().map(|(k, v)| (last(v), k.clone())).collect();
    by_age.sort_unstable();
    for (_, k) in by_age.into_iter().take((cap / 10).max(1)) {
        map.remove(&k);
    }
}

/// `ms` as a short duration for a reason sentence (`10 min`, `45 s`).
fn minutes(ms: i64) -> String {
    if ms % 60_000 == 0 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} s", ms / 1_000)
    }
}

impl LogHistory {
    /// Takes one count row. Allocates only for a service or template not seen before.
    pub fn on_count(&mut self, c: &TemplateCount<'_>) {
        let at = c.window_start_ms;
        if !self.services.contains_key(c.service) {
            if self.services.len() >= MAX_SERVICES {
                forget_least_recent(&mut self.services, |s| s.last, MAX_SERVICES);
            }
            self.services.insert(
                c.service.to_string(),
                ServiceLogs {
                    since: at,
                    last: at,
                    bucket_ms: DEFAULT_BUCKET_MS,
                    templates: BTreeMap::new(),
                    errors: BTreeMap::new(),
                },
            );
        }
        let Some(svc) = self.services.get_mut(c.service) else {
            return;
        };
        svc.since = svc.since.min(at);
        svc.last = svc.last.max(at);
        if (1_000..=MAX_BUCKET_MS).contains(&c.window_ms) {
            svc.bucket_ms = c.window_ms;
        }
        match svc.templates.get_mut(c.template_id) {
            Some(seen) => {
                if at > seen.last_ms {
                    seen.lines = seen.lines.saturating_add(c.lines);
                    seen.errors = seen.errors.saturating_add(c.errors);
                    (seen.last_ms, seen.last_lines, seen.last_errors) = (at, c.lines, c.errors);
                } else if at == seen.last_ms {
                    seen.lines =
                        (seen.lines - seen.last_lines.min(seen.lines)).saturating_add(c.lines);
                    seen.errors =
                        (seen.errors - seen.last_errors.min(seen.errors)).saturating_add(c.errors);
                    (seen.last_lines, seen.last_errors) = (c.lines, c.errors);
                }
                // An older bucket arriving late only moves the first sighting.
                seen.first_ms = seen.first_ms.min(at);
            }
            None => {
                if svc.templates.len() >= MAX_TEMPLATES {
                    forget_least_recent(&mut svc.templates, |s| s.last_ms, MAX_TEMPLATES);
                }
                svc.templates.insert(
                    c.template_id.to_string(),
                    Seen {
                        first_ms: at,
                        last_ms: at,
                        template: cut(c.template, MAX_QUOTE),
                        lines: c.lines,
                        errors: c.errors,
                        last_lines: c.lines,
                        last_errors: c.errors,
                    },
                );
            }
        }
        if c.errors > 0 {
            let bucket = svc.errors.entry(at).or_default();
            match bucket.get_mut(c.template_id) {
                Some(n) => *n = c.errors,
                None => {
                    bucket.insert(c.template_id.to_string(), c.errors);
                }
            }
        } else if let Some(bucket) = svc.errors.get_mut(&at) {
            bucket.remove(c.template_id);
        }
    }

    /// Drops error counts of buckets before `oldest_ms` (no verification can use them) and,
    /// at most once an hour of log time, templates and services not counted for
    /// [`HISTORY_MS`] before `now_ms`.
    pub fn prune(&mut self, oldest_ms: i64, now_ms: i64) {
        for svc in self.services.values_mut() {
            while let Some(e) = svc.errors.first_entry() {
                if *e.key() >= oldest_ms {
                    break;
                }
                e.remove();
            }
        }
        if now_ms.saturating_sub(self.forgot_at) < FORGET_EVERY_MS {
            return;
        }
        self.forgot_at = now_ms;
        let horizon = now_ms.saturating_sub(HISTORY_MS);
        self.services.retain(|_, svc| {
            svc.templates.retain(|_, t| t.last_ms >= horizon);
            svc.last >= horizon
        });
    }

    /// The signals for a deploy of `service` that started at `deploy_ms`, whose verification
    /// window ends at `window_end_ms`: the buckets from the one holding the deploy's start to
    /// the window's end, against the `baseline_ms` before that bucket (rates per bucket, since
    /// the two may differ in length). Nothing when the service's logs were not counted from the
    /// baseline's start: without history, everything is new.
    pub fn signals(
        &self,
        settings: &LogSettings,
        service: &str,
        deploy_ms: i64,
        window_end_ms: i64,
        baseline_ms: i64,
    ) -> Vec<Signal> {
        let mut out = Vec::new();
        let Some(svc) = self.services.get(service).filter(|_| settings.enabled) else {
            return out;
        };
        let b = if svc.bucket_ms > 0 {
            svc.bucket_ms
        } else {
            DEFAULT_BUCKET_MS
        };
        let from = deploy_ms.div_euclid(b).saturating_mul(b);
        let buckets = |ms: i64| (ms.max(1).saturating_add(b - 1) / b).max(1);
        let (n_window, n_base) = (
            buckets(window_end_ms.saturating_sub(from)),
            buckets(baseline_ms),
        );
        let base_from = from.saturating_sub(n_base.saturating_mul(b));
        if svc.since > base_from || window_end_ms <= from {
            return out;
        }
        let to = window_end_ms;
        // New templates: first counted from the deploy's bucket on.
        let mut new: Vec<&Seen> = svc
            .templates
            .values()
            .filter(|s| s.first_ms >= from && s.first_ms < to)
            .collect();
        // Those with error lines first, then the most lines.
        new.sort_by(|a, b| {
            (b.errors > 0)
                .cmp(&(a.errors > 0))
                .then(b.lines.cmp(&a.lines))
                .then(a.template.cmp(&b.template))
        });
        for s in new.iter().take(MAX_LISTED) {
            let errors = if s.errors > 0 {
                format!(", {} of them errors", s.errors)
            } else {
                String::new()
            };
            out.push(Signal {
                kind: "new_log_template".into(),
                detail: format!(
                    "new log template since the deploy: \"{}\" ({} lines{errors})",
                    s.template, s.lines
                ),
                critical: false,
                informational: s.errors == 0,
            });
        }
        if new.len() > MAX_LISTED {
            let rest = &new[MAX_LISTED..];
            let with_errors = rest.iter().filter(|s| s.errors > 0).count();
            out.push(Signal {
                kind: "new_log_template".into(),
                detail: format!(
                    "{} more new log templates since the deploy ({with_errors} with error lines)",
                    rest.len()
                ),
                critical: false,
                informational: with_errors == 0,
            });
        }
        // Error surge: error lines since the deploy against as long before it.
        let sum = |a: i64, z: i64| -> u64 {
            svc.errors
                .range(a..z.max(a))
                .flat_map(|(_, per)| per.values())
                .fold(0u64, |acc, n| acc.saturating_add(*n))
        };
        let (now, before) = (sum(from, to), sum(base_from, from));
        // Per bucket: the window since the deploy and the baseline may differ in length.
        let rate_now = now as f64 / n_window as f64;
        let rate_before = before as f64 / n_base as f64;
        let ratio = rate_now / rate_before.max(1.0 / n_base as f64);
        if now >= settings.error_surge_min && rate_now >= settings.error_surge_ratio * rate_before {
            let critical = settings.error_surge_critical_ratio > 0.0
                && ratio >= settings.error_surge_critical_ratio;
            out.push(Signal {
                kind: "error_surge".into(),
                detail: format!(
                    "error log lines surged: {now} in {} since the deploy, {before} in {} before it",
                    minutes(n_window.saturating_mul(b)),
                    minutes(n_base.saturating_mul(b))
                ),
                critical,
                informational: false,
            });
        }
        out
    }
}
