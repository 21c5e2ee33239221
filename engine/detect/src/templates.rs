//! Log template mining per service over event time: every log record gets a template id from a
//! [`Drain`] parser of its service; template changes, per-window template counts and
//! template-level anomalies come out as plain values for the engine to write to the log.
//!
//! Windows are tumbling ([`MinerConfig::window_ms`], default 1 minute) and close when the
//! watermark (the largest event time seen minus [`MinerConfig::delay_ms`]) passes their end.
//! A record for a window already closed is *late*: it is still parsed (so template ids do not
//! depend on lateness) and counted in [`TemplateMiner::late_records`], but changes no count.
//!
//! Template-level anomalies, judged when a window closes, per service:
//! - **new template**: a template first seen in this window, once the service is past its
//!   warm-up ([`MinerConfig::warmup_windows`] windows since its first record), so the burst of
//!   templates of a service's first hour is not a storm of anomalies;
//! - **rate surge**: a template's count far above its baseline (an EWMA of its per-window counts
//!   over the windows since it appeared, silent windows counting 0): count ≥
//!   [`MinerConfig::min_count`] and count > `surge_factor` × baseline + 3·√baseline;
//! - **error surge**: the service's error-severity records (`error`, `fatal`, `critical`,
//!   `alert`, `emergency`) far above their baseline, by the same rule.
//!
//! Memory: one Drain per service (templates × tokens), one baseline per template (24 bytes) and
//! the counts of open windows. Everything serializes (serde) for checkpoints, and the same
//! records in the same order give the same outputs, bit for bit.

use crate::drain::{Change, Drain, DrainConfig, DrainError, TemplateId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Parameters of the miner; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinerConfig {
    /// The Drain parser of each service.
    pub drain: DrainConfig,
    /// Window length for template counts, ms. Default 60,000.
    pub window_ms: i64,
    /// How far out of order records may arrive, ms. Default 10,000.
    pub delay_ms: i64,
    /// Windows after a service's first record during which new templates are not anomalies.
    /// Default 60 (an hour of 1-minute windows).
    pub warmup_windows: u32,
    /// Weight of the newest window in a baseline (EWMA). Default 0.1.
    pub baseline_alpha: f64,
    /// A surge needs at least this many records in the window. Default 20.
    pub min_count: u64,
    /// A surge is a count above this many times the baseline (plus 3 standard deviations of a
    /// Poisson count). Default 5.
    pub surge_factor: f64,
    /// Windows of history a template or the error count needs before surges are judged.
    /// Default 10.
    pub baseline_windows: u32,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            drain: DrainConfig::default(),
            window_ms: 60_000,
            delay_ms: 10_000,
            warmup_windows: 60,
            baseline_alpha: 0.1,
            min_count: 20,
            surge_factor: 5.0,
            baseline_windows: 10,
        }
    }
}

impl MinerConfig {
    /// Checks the ranges of the fields.
    ///
    /// # Errors
    /// [`MinerError::Config`] naming the field, or the Drain configuration's error.
    pub fn validate(&self) -> Result<(), MinerError> {
        self.drain.validate()?;
        let bad = |field: &'static str, reason: String| Err(MinerError::Config { field, reason });
        if self.window_ms <= 0 {
            return bad(
                "window_ms",
                format!("must be positive, got {}", self.window_ms),
            );
        }
        if self.delay_ms < 0 {
            return bad(
                "delay_ms",
                format!("must not be negative, got {}", self.delay_ms),
            );
        }
        if self.baseline_alpha.is_nan() || self.baseline_alpha <= 0.0 || self.baseline_alpha > 1.0 {
            return bad(
                "baseline_alpha",
                format!("must be in (0, 1], got {}", self.baseline_alpha),
            );
        }
        if self.surge_factor.is_nan() || self.surge_factor < 1.0 {
            return bad(
                "surge_factor",
                format!("must be at least 1, got {}", self.surge_factor),
            );
        }
        Ok(())
    }
}

/// Why the miner refused a configuration or a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum MinerError {
    /// A field is out of range.
    #[error("template miner config: field `{field}` {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The Drain configuration or state was refused.
    #[error(transparent)]
    Drain(#[from] DrainError),
    /// A checkpoint cannot be read back.
    #[error("template miner checkpoint: {0}")]
    Checkpoint(String),
}

/// A template was created or generalized.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateChange {
    /// Event time of the record that changed it.
    pub time_ms: i64,
    /// The service whose parser holds it.
    pub service: String,
    /// Its stable id.
    pub id: TemplateId,
    /// The template after the change.
    pub template: String,
    /// `New` or `Updated`.
    pub change: Change,
}

/// The count of one template in one closed window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowCount {
    /// Window start, Unix ms.
    pub window_start_ms: i64,
    /// The service.
    pub service: String,
    /// The template.
    pub id: TemplateId,
    /// Its text when the window closed.
    pub template: String,
    /// Records in the window.
    pub count: u64,
    /// Of those, error-severity records.
    pub errors: u64,
}

/// What kind of template-level anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A template never seen before, after the service's warm-up.
    NewTemplate,
    /// A template's rate far above its baseline.
    RateSurge,
    /// The service's error-severity records far above their baseline.
    ErrorSurge,
}

impl AnomalyKind {
    /// The name used in anomaly events.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::NewTemplate => "new_template",
            AnomalyKind::RateSurge => "rate_surge",
            AnomalyKind::ErrorSurge => "error_surge",
        }
    }
}

/// A template-level anomaly found when a window closed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateAnomaly {
    /// Window start, Unix ms.
    pub window_start_ms: i64,
    /// The service.
    pub service: String,
    /// What was found.
    pub kind: AnomalyKind,
    /// The template (none for an error surge).
    pub id: Option<TemplateId>,
    /// Its text (empty for an error surge).
    pub template: String,
    /// Records in the window (of the template, or errors).
    pub count: u64,
    /// The baseline count per window (0 for a new template).
    pub expected: f64,
    /// Score in `[0, 1]`: 1 for a new template; for a surge, how far past the threshold.
    pub score: f64,
}

/// What a call produced; cleared by the caller between uses.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MinerOutput {
    /// Template creations and generalizations, in record order.
    pub changes: Vec<TemplateChange>,
    /// Counts of closed windows, by window then service then template id.
    pub counts: Vec<WindowCount>,
    /// Anomalies of closed windows, in the same order.
    pub anomalies: Vec<TemplateAnomaly>,
}

impl MinerOutput {
    /// Whether nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.counts.is_empty() && self.anomalies.is_empty()
    }
}

/// An EWMA of a per-window count, with the windows it has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Baseline {
    mean: f64,
    windows: u32,
    /// Last window folded in.
    last_window_ms: i64,
}

impl Baseline {
    /// Folds in the windows from the last one to `window_ms`: silent windows count 0.
    fn fold(&mut self, window_ms: i64, size_ms: i64, count: u64, alpha: f64) {
        if self.windows > 0 {
            let silent = ((window_ms - self.last_window_ms) / size_ms).saturating_sub(1);
            // (1-α)^k for k silent windows, without a loop over long gaps.
            let k = silent.clamp(0, 10_000) as i32;
            self.mean *= (1.0 - alpha).powi(k);
            self.windows = self.windows.saturating_add(k as u32);
            self.mean = alpha * count as f64 + (1.0 - alpha) * self.mean;
        } else {
            self.mean = count as f64;
        }
        self.windows = self.windows.saturating_add(1);
        self.last_window_ms = window_ms;
    }

    /// The surge score of `count` against this baseline, if it is a surge.
    fn surge(&self, count: u64, cfg: &MinerConfig) -> Option<f64> {
        if self.windows < cfg.baseline_windows || count < cfg.min_count {
            return None;
        }
        let limit = cfg.surge_factor * self.mean + 3.0 * self.mean.sqrt();
        let c = count as f64;
        (c > limit).then(|| (1.0 - limit.max(1.0) / c).clamp(0.5, 1.0))
    }
}

/// Counts of one template in an open window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Count {
    count: u64,
    errors: u64,
}

/// One service's parser and baselines.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Service {
    drain: Drain,
    first_window_ms: i64,
    templates: BTreeMap<TemplateId, Baseline>,
    errors: Baseline,
}

/// The serializable state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    version: u32,
    config: MinerConfig,
    services: BTreeMap<String, Service>,
    /// Open windows: start → service → template → counts.
    open: BTreeMap<i64, BTreeMap<String, BTreeMap<TemplateId, Count>>>,
    max_time_ms: Option<i64>,
    /// Windows starting before this are closed.
    closed_before_ms: i64,
    records: u64,
    late_records: u64,
}

const CHECKPOINT_VERSION: u32 = 1;

/// The miner; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct TemplateMiner {
    state: State,
}

/// Whether a severity text is error-level or worse.
pub fn is_error_severity(severity: &str) -> bool {
    const ERRORS: [&str; 7] = [
        "error",
        "err",
        "fatal",
        "critical",
        "crit",
        "alert",
        "emergency",
    ];
    ERRORS.iter().any(|e| severity.eq_ignore_ascii_case(e))
}

impl TemplateMiner {
    /// A miner with no history.
    ///
    /// # Errors
    /// [`MinerError`] for a configuration out of range.
    pub fn new(config: MinerConfig) -> Result<TemplateMiner, MinerError> {
        config.validate()?;
        Ok(TemplateMiner {
            state: State {
                version: CHECKPOINT_VERSION,
                config,
                services: BTreeMap::new(),
                open: BTreeMap::new(),
                max_time_ms: None,
                closed_before_ms: i64::MIN,
                records: 0,
                late_records: 0,
            },
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MinerConfig {
        &self.state.config
    }

    /// Records seen, and of those late ones.
    pub fn records(&self) -> (u64, u64) {
        (self.state.records, self.state.late_records)
    }

    /// Records that arrived after their window closed.
    pub fn late_records(&self) -> u64 {
        self.state.late_records
    }

    /// The largest event time seen minus the delay.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.state
            .max_time_ms
            .map(|t| t.saturating_sub(self.state.config.delay_ms))
    }

    /// The parser of `service`, for its template table.
    pub fn drain(&self, service: &str) -> Option<&Drain> {
        self.state.services.get(service).map(|s| &s.drain)
    }

    /// The services seen, sorted.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.state.services.keys().map(String::as_str)
    }

    /// Templates over all services.
    pub fn template_count(&self) -> usize {
        self.state
            .services
            .values()
            .map(|s| s.drain.template_count())
            .sum()
    }

    /// Parses one record of `service` at `time_ms` and returns its template id; template
    /// changes go to `out.changes`. Windows are closed by [`TemplateMiner::advance`].
    ///
    /// # Errors
    /// Never for input values; [`MinerError`] only if a parser cannot be built (a bug, the
    /// configuration was validated).
    pub fn observe(
        &mut self,
        time_ms: i64,
        service: &str,
        severity: &str,
        body: &str,
        out: &mut MinerOutput,
    ) -> Result<TemplateId, MinerError> {
        let size = self.state.config.window_ms;
        let window = time_ms.div_euclid(size) * size;
        if !self.state.services.contains_key(service) {
            let drain = Drain::new(self.state.config.drain.clone())?;
            self.state.services.insert(
                service.to_string(),
                Service {
                    drain,
                    first_window_ms: window,
                    templates: BTreeMap::new(),
                    errors: Baseline::default(),
                },
            );
        }
        let Some(svc) = self.state.services.get_mut(service) else {
            return Err(MinerError::Checkpoint("service vanished".into()));
        };
        svc.first_window_ms = svc.first_window_ms.min(window);
        let parsed = svc.drain.parse_at(time_ms, body);
        if parsed.change != Change::Unchanged {
            let template = svc
                .drain
                .template(parsed.template_id)
                .map(|t| t.template.to_string())
                .unwrap_or_default();
            out.changes.push(TemplateChange {
                time_ms,
                service: service.to_string(),
                id: parsed.template_id,
                template,
                change: parsed.change,
            });
        }
        self.state.records += 1;
        self.state.max_time_ms = Some(self.state.max_time_ms.map_or(time_ms, |m| m.max(time_ms)));
        if window < self.state.closed_before_ms {
            self.state.late_records += 1;
        } else {
            let per_service = self.state.open.entry(window).or_default();
            if !per_service.contains_key(service) {
                per_service.insert(service.to_string(), BTreeMap::new());
            }
            let Some(templates) = per_service.get_mut(service) else {
                return Ok(parsed.template_id);
            };
            let c = templates.entry(parsed.template_id).or_default();
            c.count += 1;
            c.errors += u64::from(is_error_severity(severity));
        }
        Ok(parsed.template_id)
    }

    /// Closes every window whose end the watermark has passed, appending their counts and
    /// anomalies to `out`.
    pub fn advance(&mut self, out: &mut MinerOutput) {
        let Some(wm) = self.watermark_ms() else {
            return;
        };
        let size = self.state.config.window_ms;
        // Windows [start, start + size) with start + size <= wm are complete.
        let limit = wm.saturating_sub(size).saturating_add(1);
        self.close_before(limit, out);
    }

    /// Closes every open window (end of a bounded replay).
    pub fn finish(&mut self, out: &mut MinerOutput) {
        self.close_before(i64::MAX, out);
    }

    fn close_before(&mut self, limit: i64, out: &mut MinerOutput) {
        let size = self.state.config.window_ms;
        let cfg = self.state.config.clone();
        // Every window starting before `limit` is complete, open or not: a record for one of
        // them from now on is late.
        self.state.closed_before_ms = self.state.closed_before_ms.max(limit);
        while let Some((&start, _)) = self.state.open.first_key_value() {
            if start >= limit {
                break;
            }
            let Some((start, counts)) = self.state.open.pop_first() else {
                break;
            };
            let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
            let flat = counts
                .iter()
                .flat_map(|(s, ts)| ts.iter().map(move |(id, c)| (s, id, c)));
            for (service, id, c) in flat {
                let Some(svc) = self.state.services.get_mut(service) else {
                    continue;
                };
                *errors.entry(service.as_str()).or_default() += c.errors;
                let template = svc
                    .drain
                    .template(*id)
                    .map(|t| t.template.to_string())
                    .unwrap_or_default();
                out.counts.push(WindowCount {
                    window_start_ms: start,
                    service: service.clone(),
                    id: *id,
                    template: template.clone(),
                    count: c.count,
                    errors: c.errors,
                });
                let warm = start.saturating_sub(svc.first_window_ms)
                    >= i64::from(cfg.warmup_windows).saturating_mul(size);
                match svc.templates.get_mut(id) {
                    None => {
                        if warm {
                            out.anomalies.push(TemplateAnomaly {
                                window_start_ms: start,
                                service: service.clone(),
                                kind: AnomalyKind::NewTemplate,
                                id: Some(*id),
                                template,
                                count: c.count,
                                expected: 0.0,
                                score: 1.0,
                            });
                        }
                        let mut b = Baseline::default();
                        b.fold(start, size, c.count, cfg.baseline_alpha);
                        svc.templates.insert(*id, b);
                    }
                    Some(b) => {
                        if let Some(score) = b.surge(c.count, &cfg) {
                            out.anomalies.push(TemplateAnomaly {
                                window_start_ms: start,
                                service: service.clone(),
                                kind: AnomalyKind::RateSurge,
                                id: Some(*id),
                                template,
                                count: c.count,
                                expected: b.mean,
                                score,
                            });
                        }
                        b.fold(start, size, c.count, cfg.baseline_alpha);
                    }
                }
            }
            for (service, n) in errors {
                let Some(svc) = self.state.services.get_mut(service) else {
                    continue;
                };
                if let Some(score) = svc.errors.surge(n, &cfg) {
                    out.anomalies.push(TemplateAnomaly {
                        window_start_ms: start,
                        service: service.to_string(),
                        kind: AnomalyKind::ErrorSurge,
                        id: None,
                        template: String::new(),
                        count: n,
                        expected: svc.errors.mean,
                        score,
                    });
                }
                svc.errors.fold(start, size, n, cfg.baseline_alpha);
            }
        }
    }

    /// The whole state as bytes, for a checkpoint.
    ///
    /// # Errors
    /// [`MinerError::Checkpoint`] if serialization fails (a bug).
    pub fn checkpoint(&self) -> Result<Vec<u8>, MinerError> {
        serde_json::to_vec(&self.state).map_err(|e| MinerError::Checkpoint(e.to_string()))
    }

    /// A miner restored from [`TemplateMiner::checkpoint`] bytes.
    ///
    /// # Errors
    /// [`MinerError::Checkpoint`] when the bytes are not such a checkpoint.
    pub fn restore(bytes: &[u8]) -> Result<TemplateMiner, MinerError> {
        let state: State =
            serde_json::from_slice(bytes).map_err(|e| MinerError::Checkpoint(e.to_string()))?;
        if state.version != CHECKPOINT_VERSION {
            return Err(MinerError::Checkpoint(format!(
                "format version {} (this build reads {CHECKPOINT_VERSION})",
                state.version
            )));
        }
        state.config.validate()?;
        Ok(TemplateMiner { state })
    }
}
