//! Samples for verification: per metric, service and version, the values a pipeline output gave
//! over time; and the comparison of a deploy's verification window with its baseline.
//!
//! Memory is bounded: samples older than the retention are dropped on every time step, each series holds at most [`VerifySettings::max_points`] points, and at most
//! [`VerifySettings::max_series`] series are kept (samples of further series are counted and
//! dropped).

use crate::judge::{self, Judgement, MetricRule, Thresholds};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Where one metric comes from: a column of a pipeline output, keyed by service and version
/// columns. In the configuration the rule's fields sit beside these (`[[deploys.metrics]]`
/// with `output`, `column`, `name`, `critical`, …); an unknown field is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawMetricSource")]
pub struct MetricSource {
    /// The pipeline output stream (`INSERT INTO <output>`).
    pub output: String,
    /// The value column.
    pub column: String,
    /// The column holding the service. Default `service`.
    pub service_column: String,
    /// The column holding the version. Default `version`.
    pub version_column: String,
    /// How it is judged.
    #[serde(flatten)]
    pub rule: MetricRule,
}

/// [`MetricSource`] as written, every field spelled out so unknown ones are refused (serde
/// cannot refuse unknown fields through `flatten`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetricSource {
    output: String,
    column: String,
    #[serde(default = "default_service_column")]
    service_column: String,
    #[serde(default = "default_version_column")]
    version_column: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    direction: Option<crate::judge::Direction>,
    #[serde(default)]
    critical: Option<bool>,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    tolerance: Option<f64>,
    #[serde(default)]
    min_change: Option<f64>,
    #[serde(default)]
    alpha: Option<f64>,
    #[serde(default)]
    min_samples: Option<usize>,
    /// `outlier_k = 0` (or absent with the default 3) — `None` is not expressible in TOML, so
    /// 0 turns outlier removal off.
    #[serde(default)]
    outlier_k: Option<f64>,
}

impl From<RawMetricSource> for MetricSource {
    fn from(r: RawMetricSource) -> MetricSource {
        let d = MetricRule::default();
        MetricSource {
            rule: MetricRule {
                name: r.name.unwrap_or_else(|| r.column.clone()),
                direction: r.direction.unwrap_or(d.direction),
                critical: r.critical.unwrap_or(d.critical),
                weight: r.weight.unwrap_or(d.weight),
                tolerance: r.tolerance.unwrap_or(d.tolerance),
                min_change: r.min_change.unwrap_or(d.min_change),
                alpha: r.alpha.unwrap_or(d.alpha),
                min_samples: r.min_samples.unwrap_or(d.min_samples),
                outlier_k: match r.outlier_k {
                    Some(k) if k <= 0.0 => None,
                    Some(k) => Some(k),
                    None => d.outlier_k,
                },
            },
            output: r.output,
            column: r.column,
            service_column: r.service_column,
            version_column: r.version_column,
        }
    }
}

fn default_service_column() -> String {
    "service".into()
}

fn default_version_column() -> String {
    "version".into()
}

/// Verification settings (plain milliseconds; the engine's `[deploys]` settings convert).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifySettings {
    /// Length of the verification window.
    pub window_ms: i64,
    /// Wait after the deploy before the window opens (warm-up).
    pub delay_ms: i64,
    /// Wait after the window closes for late pipeline output before judging.
    pub grace_ms: i64,
    /// The metrics.
    pub metrics: Vec<MetricSource>,
    /// Score thresholds.
    pub thresholds: Thresholds,
    /// Points per series at most.
    pub max_points: usize,
    /// Series at most.
    pub max_series: usize,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            window_ms: 600_000,
            delay_ms: 0,
            grace_ms: 30_000,
            metrics: Vec::new(),
            thresholds: Thresholds::default(),
            max_points: 20_000,
            max_series: 10_000,
        }
    }
}

/// A series key: metric index, service, version.
pub type SeriesKey = (usize, String, String);

/// Samples of every series, pruned by age.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    /// Points `(time ms, value)` by series, in arrival order (a list of pairs in a checkpoint:
    /// JSON keys must be strings).
    #[serde(with = "series_list")]
    series: BTreeMap<SeriesKey, VecDeque<(i64, f64)>>,
    /// Samples dropped because the series limit was reached.
    pub dropped: u64,
}

/// What one side of a comparison drew from.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    /// Values per metric (index as in the settings).
    pub values: Vec<Vec<f64>>,
}

impl Samples {
    /// Adds a sample. NaN and infinite values are skipped (a ratio over zero requests).
    pub fn push(&mut self, key: SeriesKey, at_ms: i64, value: f64, settings: &VerifySettings) {
        if !value.is_finite() {
            return;
        }
        let n = self.series.len();
        match self.series.get_mut(&key) {
            Some(s) => {
                if s.len() >= settings.max_points {
                    s.pop_front();
                }
                s.push_back((at_ms, value));
            }
            None if n >= settings.max_series => self.dropped += 1,
            None => {
                self.series.insert(key, VecDeque::from([(at_ms, value)]));
            }
        }
    }

    /// Drops points older than `oldest_ms` and series left empty.
    pub fn prune(&mut self, oldest_ms: i64) {
        self.series.retain(|_, s| {
            while s.front().is_some_and(|(t, _)| *t < oldest_ms) {
                s.pop_front();
            }
            !s.is_empty()
        });
    }

    /// Number of series held.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Values of metric `metric` for `service` in `[from, to)`, of `version` (`None`: every
    /// version except `exclude`), in series order then time order.
    pub fn values(
        &self,
        metric: usize,
        service: &str,
        version: Option<&str>,
        exclude: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<f64> {
        let lo = (metric, service.to_string(), String::new());
        let mut out = Vec::new();
        for ((m, s, v), pts) in self.series.range(lo..) {
            if *m != metric || s != service {
                break;
            }
            if version.is_some_and(|want| want != v) || exclude.is_some_and(|ex| ex == v) {
                continue;
            }
            out.extend(
                pts.iter()
                    .filter(|(t, _)| *t >= from_ms && *t < to_ms)
                    .map(|(_, x)| *x),
            );
        }
        out
    }
}

/// Which samples a deploy's verification compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'a> {
    /// The service.
    pub service: &'a str,
    /// The new version.
    pub version: &'a str,
    /// The previous version, when known.
    pub previous_version: Option<&'a str>,
    /// Whether the strategy is a canary (compare with the previous version at the same time).
    pub canary: bool,
    /// The verification window.
    pub window: (i64, i64),
}

/// The result of comparing a window with its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// `canary` or `before`.
    pub baseline: &'static str,
    /// The baseline window.
    pub baseline_window: (i64, i64),
    /// The judge's result.
    pub judgement: Judgement,
}

/// Compares the plan's window with its baseline. A canary is compared with the other versions
/// at the same time: the previous version when it has samples in the window, else every other
/// version. Anything else (or a canary whose other versions have no samples) is compared with
/// the service in the same length of time before the window (without the new version's
/// samples, unless the version did not change: a configuration-only rollout). The new
/// version's samples are those labelled with its version; when none are and the baseline is
/// not the same time, every sample of the service in the window (a service without a version
/// label).
pub fn compare(plan: &Plan<'_>, samples: &Samples, settings: &VerifySettings) -> Compared {
    let (from, to) = plan.window;
    let len = to.saturating_sub(from);
    let n = settings.metrics.len();
    let has = |version: Option<&str>, exclude: Option<&str>| {
        (0..n).any(|m| {
            !samples
                .values(m, plan.service, version, exclude, from, to)
                .is_empty()
        })
    };
    let same_time: Option<(Option<&str>, Option<&str>)> = if plan.canary {
        match plan.previous_version.filter(|pv| *pv != plan.version) {
            Some(pv) if has(Some(pv), None) => Some((Some(pv), None)),
            _ if has(None, Some(plan.version)) => Some((None, Some(plan.version))),
            _ => None,
        }
    } else {
        None
    };
    let before = (
        from.saturating_sub(len).saturating_sub(settings.delay_ms),
        from.saturating_sub(settings.delay_ms),
    );
    let exclude_before = (plan.previous_version != Some(plan.version)).then_some(plan.version);
    let (baseline, window) = match same_time {
        Some(_) => ("canary", (from, to)),
        None => ("before", before),
    };
    let mut judged = Vec::with_capacity(n);
    for (m, src) in settings.metrics.iter().enumerate() {
        let mut canary = samples.values(m, plan.service, Some(plan.version), None, from, to);
        if canary.is_empty() && same_time.is_none() {
            canary = samples.values(m, plan.service, None, None, from, to);
        }
        let base = match same_time {
            Some((version, exclude)) => samples.values(m, plan.service, version, exclude, from, to),
            None => samples.values(m, plan.service, None, exclude_before, before.0, before.1),
        };
        judged.push(judge::judge_metric(&src.rule, &canary, &base));
    }
    Compared {
        baseline,
        baseline_window: window,
        judgement: judge::score(judged, &settings.thresholds),
    }
}

/// The series map as a list of `(key, points)` pairs.
mod series_list {
    use super::SeriesKey;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::{BTreeMap, VecDeque};

    type Series = BTreeMap<SeriesKey, VecDeque<(i64, f64)>>;

    pub fn serialize<S: Serializer>(m: &Series, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<(&SeriesKey, &VecDeque<(i64, f64)>)> = m.iter().collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Series, D::Error> {
        let v: Vec<(SeriesKey, VecDeque<(i64, f64)>)> = Vec::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}
