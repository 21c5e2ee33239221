//! What a service's logs say about a deploy: log templates first seen during its verification
//! window, and a surge of error lines against the same length of time before it.
//!
//! The input is the template miner's per-window counts (`log_templates_1m`: window start,
//! service, template id and text, lines, error lines), read in log order, so the same log gives
//! the same signals. Templates are per service, not per version (the miner does not split a
//! service by version), so for a canary these signals cover the whole service.

use crate::record::Signal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Templates remembered at most (the first seen longest ago are forgotten first).
const MAX_TEMPLATES: usize = 100_000;
/// Services whose log history is kept at most.
const MAX_SERVICES: usize = 10_000;
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
    /// Error lines in the window must be at least this many times those of the baseline for a
    /// surge. Default 3.
    pub error_surge_ratio: f64,
    /// And at least this many. Default 10.
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

/// One row of the miner's window counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemplateCount<'a> {
    /// Start of the count's window (Unix ms).
    pub window_start_ms: i64,
    /// The service.
    pub service: &'a str,
    /// The template's id (per service).
    pub template_id: &'a str,
    /// The template's text.
    pub template: &'a str,
    /// Lines in the window.
    pub lines: u64,
    /// Error lines in the window.
    pub errors: u64,
}

/// A template as first seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    /// Window it was first counted in.
    first_ms: i64,
    /// Its text then (cut).
    template: String,
    /// Lines and error lines counted since.
    lines: u64,
    errors: u64,
}

/// The log history the signals need (part of the book's checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogHistory {
    /// Service → first window counted (its log history starts there).
    since: BTreeMap<String, i64>,
    /// `service \0 template id` → first seen.
    templates: BTreeMap<String, Seen>,
    /// Service → window start → error lines.
    errors: BTreeMap<String, BTreeMap<i64, u64>>,
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl LogHistory {
    /// Takes one count row.
    pub fn on_count(&mut self, c: &TemplateCount<'_>) {
        if !self.since.contains_key(c.service) && self.since.len() >= MAX_SERVICES {
            return;
        }
        let since = self
            .since
            .entry(c.service.to_string())
            .or_insert(c.window_start_ms);
        *since = (*since).min(c.window_start_ms);
        let key = format!("{}\0{}", c.service, c.template_id);
        match self.templates.get_mut(&key) {
            Some(seen) => {
                seen.lines = seen.lines.saturating_add(c.lines);
                seen.errors = seen.errors.saturating_add(c.errors);
                seen.first_ms = seen.first_ms.min(c.window_start_ms);
            }
            None => {
                if self.templates.len() >= MAX_TEMPLATES {
                    self.forget_oldest();
                }
                self.templates.insert(
                    key,
                    Seen {
                        first_ms: c.window_start_ms,
                        template: cut(c.template, MAX_QUOTE),
                        lines: c.lines,
                        errors: c.errors,
                    },
                );
            }
        }
        if c.errors > 0 {
            let e = self
                .errors
                .entry(c.service.to_string())
                .or_default()
                .entry(c.window_start_ms)
                .or_default();
            *e = e.saturating_add(c.errors);
        }
    }

    /// Forgets the tenth of the templates first seen longest ago (one sort per 10,000 new
    /// templates): they are the least likely to be new in a window still to be judged.
    fn forget_oldest(&mut self) {
        let mut by_age: Vec<(i64, String)> = self
            .templates
            .iter()
            .map(|(k, s)| (s.first_ms, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age.into_iter().take(MAX_TEMPLATES / 10) {
            self.templates.remove(&k);
        }
    }

    /// Drops error counts of windows before `oldest_ms` (no verification can use them).
    pub fn prune(&mut self, oldest_ms: i64) {
        self.errors.retain(|_, windows| {
            *windows = windows.split_off(&oldest_ms);
            !windows.is_empty()
        });
    }

    /// The signals for `service`'s window `[from, to)` against the baseline `[base_from,
    /// base_to)` (the same length before the deploy). Nothing when the service's logs were not
    /// seen from the baseline's start: without history, everything is new.
    pub fn signals(
        &self,
        settings: &LogSettings,
        service: &str,
        (from, to): (i64, i64),
        (base_from, base_to): (i64, i64),
    ) -> Vec<Signal> {
        let mut out = Vec::new();
        if !settings.enabled || self.since.get(service).is_none_or(|s| *s > base_from) {
            return out;
        }
        // New templates: first counted inside the window.
        let prefix = format!("{service}\0");
        let mut new: Vec<&Seen> = self
            .templates
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            // Ids have no NUL: a longer key is another service whose name starts like this one.
            .filter(|(k, _)| !k[prefix.len()..].contains('\0'))
            .map(|(_, s)| s)
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
                    "new log template during the window: \"{}\" ({} lines{errors})",
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
                    "{} more new log templates during the window ({with_errors} with error lines)",
                    rest.len()
                ),
                critical: false,
                informational: with_errors == 0,
            });
        }
        // Error surge: error lines in the window against the baseline.
        let sum = |a: i64, b: i64| -> u64 {
            self.errors.get(service).map_or(0, |w| {
                w.range(a..b.max(a))
                    .map(|(_, n)| *n)
                    .fold(0u64, u64::saturating_add)
            })
        };
        let (now, before) = (sum(from, to), sum(base_from, base_to));
        let ratio = now as f64 / before.max(1) as f64;
        if now >= settings.error_surge_min
            && now as f64 >= settings.error_surge_ratio * before as f64
        {
            let critical = settings.error_surge_critical_ratio > 0.0
                && ratio >= settings.error_surge_critical_ratio;
            out.push(Signal {
                kind: "error_surge".into(),
                detail: format!(
                    "error log lines surged: {now} during the window, {before} in the same time before the deploy"
                ),
                critical,
                informational: false,
            });
        }
        out
    }
}
