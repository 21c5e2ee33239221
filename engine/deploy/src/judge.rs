//! The verification judge: each metric's canary samples against its baseline samples, classified
//! Pass / High / Low / NoData by a Mann-Whitney U test and an allowed change (Kayenta's
//! NetflixACAJudge rules), then a weighted score with pass and marginal thresholds. A critical
//! metric that fails fails the whole verification.
//!
//! The rules, after Kayenta's NetflixACAJudge (`MannWhitneyClassifier`, `WeightedSumScorer`,
//! `ThresholdScoreClassifier`; <https://spinnaker.io/docs/guides/user/canary/judge/>):
//! 1. NaN samples are dropped, then (optionally) samples outside Tukey's fences.
//! 2. Fewer than `min_samples` on either side: NoData, not counted in the score.
//! 3. A two-sided Mann-Whitney U test; a difference is significant when p < `alpha`.
//! 4. A significant change of the mean in the bad direction whose relative size exceeds
//!    `tolerance` and whose absolute size exceeds `min_change` is High or Low; anything else
//!    passes. Where Kayenta bounds the Hodges-Lehmann confidence interval by a fraction of the
//!    estimate, this uses an allowed relative change of the means, which an operator can state
//!    ("p99 may rise 10%").
//! 5. Score = 100 × weight of passing metrics / weight of metrics with data; a critical metric
//!    classified High or Low sets the score to 0 and fails; otherwise pass ≥ `pass`, marginal ≥
//!    `marginal`, else fail.

use serde::{Deserialize, Serialize};

use crate::stats;

/// Which change of a metric is bad.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is worse (error ratio, latency, saturation). The default.
    #[default]
    Increase,
    /// Lower is worse (throughput, success ratio).
    Decrease,
    /// Any significant change is bad.
    Either,
}

/// How one metric is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricRule {
    /// Name in verdicts, e.g. `error_ratio`.
    pub name: String,
    /// Which change is bad.
    pub direction: Direction,
    /// A failing critical metric fails the verification whatever the score.
    pub critical: bool,
    /// Weight in the score (> 0).
    pub weight: f64,
    /// Allowed relative change of the canary's mean over the baseline's (0.1 = 10%) before a
    /// significant difference counts as a failure.
    pub tolerance: f64,
    /// Below this absolute difference of the means nothing fails (so 0 → 0.001 errors is not
    /// an infinite increase).
    pub min_change: f64,
    /// Significance level of the Mann-Whitney U test.
    pub alpha: f64,
    /// Fewer samples on either side: NoData.
    pub min_samples: usize,
    /// Tukey fence factor for outlier removal; `None` keeps every sample.
    pub outlier_k: Option<f64>,
}

impl Default for MetricRule {
    fn default() -> Self {
        MetricRule {
            name: String::new(),
            direction: Direction::Increase,
            critical: false,
            weight: 1.0,
            tolerance: 0.1,
            min_change: 0.0,
            alpha: 0.05,
            min_samples: 5,
            outlier_k: Some(3.0),
        }
    }
}

/// A metric's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// No significant change in the bad direction beyond the tolerance.
    Pass,
    /// Significantly higher than allowed.
    High,
    /// Significantly lower than allowed.
    Low,
    /// Too few samples on a side: not counted in the score.
    NoData,
}

/// Summary of one side's samples after outlier removal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SideSummary {
    /// Samples before outlier removal.
    pub samples: usize,
    /// Samples removed as outliers.
    pub outliers: usize,
    /// Mean of the kept samples (`None` when none).
    pub mean: Option<f64>,
    /// Median of the kept samples.
    pub median: Option<f64>,
}

/// One metric's judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricJudgement {
    /// The metric.
    pub name: String,
    /// Its class.
    pub classification: Classification,
    /// Whether it is critical.
    pub critical: bool,
    /// Its weight.
    pub weight: f64,
    /// Canary (or after-deploy) side.
    pub canary: SideSummary,
    /// Baseline side.
    pub baseline: SideSummary,
    /// The test, when both sides had data.
    pub test: Option<crate::stats::MannWhitney>,
    /// Relative change of the means (canary / baseline − 1), when defined: `None` when the
    /// baseline mean is 0 or either side has no data. Computed as (canary − baseline) / |baseline|,
    /// which is canary / baseline − 1 for a positive baseline and keeps the sign of the change
    /// for a negative one.
    pub change: Option<f64>,
    /// One sentence saying why (`error_ratio 5.1× the baseline (p=3e-9), allowed +10%`).
    pub reason: String,
}

/// Score thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// At or above: pass (promote). Default 95.
    pub pass: f64,
    /// At or above (and below `pass`): marginal (inconclusive). Default 75.
    pub marginal: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// The judge's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Score ≥ pass and no critical failure.
    Pass,
    /// Score between the thresholds.
    Marginal,
    /// Score below marginal, or a critical metric failed.
    Fail,
    /// No metric had data.
    NoData,
}

/// All metrics' judgements and the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// 0–100: the weight of passing metrics over the weight of metrics with data.
    pub score: f64,
    /// What the score and critical metrics say.
    pub outcome: Outcome,
    /// Per metric, in the order given.
    pub metrics: Vec<MetricJudgement>,
    /// Why, one line each (critical failures first).
    pub reasons: Vec<String>,
}

/// Judges one metric: the canary's samples against the baseline's under `rule` (the rules are
/// in the module documentation). Pure: the same samples give the same judgement.
pub fn judge_metric(rule: &MetricRule, canary: &[f64], baseline: &[f64]) -> MetricJudgement {
    let (canary_kept, canary_summary) = clean(canary, rule.outlier_k);
    let (baseline_kept, baseline_summary) = clean(baseline, rule.outlier_k);
    let name = rule.name.as_str();
    let mut judgement = MetricJudgement {
        name: rule.name.clone(),
        classification: Classification::NoData,
        critical: rule.critical,
        weight: rule.weight,
        canary: canary_summary,
        baseline: baseline_summary,
        test: None,
        change: None,
        reason: String::new(),
    };
    let needed = rule.min_samples.max(1);
    let enough = canary_kept.len() >= needed && baseline_kept.len() >= needed;
    let Some(test) = enough
        .then(|| stats::mann_whitney_u_sorted(&canary_kept, &baseline_kept))
        .flatten()
    else {
        judgement.reason = format!(
            "{name}: too few samples to judge ({} canary, {} baseline after outlier removal; at least {needed} needed on each side)",
            canary_kept.len(),
            baseline_kept.len()
        );
        return judgement;
    };
    judgement.test = Some(test);
    // Both sides hold at least one sample here, so both means exist.
    let (Some(mc), Some(mb)) = (canary_summary.mean, baseline_summary.mean) else {
        judgement.reason = format!("{name}: no mean on one side");
        return judgement;
    };
    let diff = mc - mb;
    let change = (mb != 0.0 && mb.is_finite()).then(|| diff / mb.abs());
    judgement.change = change;
    let means = format!(
        "mean {} vs {}, p={}",
        fmt_num(mc),
        fmt_num(mb),
        fmt_p(test.p_value)
    );
    let desc = describe_change(mc, mb, change);

    // Written as "not significant" so a NaN alpha or p-value never counts as evidence.
    let significant = test.p_value < rule.alpha;
    let (classification, reason) = if !significant {
        (
            Classification::Pass,
            format!(
                "{name} not significantly different from the baseline ({means} ≥ alpha {})",
                fmt_num(rule.alpha)
            ),
        )
    } else if diff == 0.0 || diff.is_nan() {
        (
            Classification::Pass,
            format!("{name}: the distributions differ but the means do not ({means})"),
        )
    } else {
        let up = diff > 0.0;
        let bad = match rule.direction {
            Direction::Increase => up,
            Direction::Decrease => !up,
            Direction::Either => true,
        };
        let allowed = if up {
            format!("+{}", fmt_pct(rule.tolerance))
        } else {
            format!("-{}", fmt_pct(rule.tolerance))
        };
        if !bad {
            let which = if up { "an increase" } else { "a decrease" };
            (
                Classification::Pass,
                format!("{name} {desc} ({means}), {which}, which is not bad for this metric"),
            )
        } else if change.is_some_and(|c| !beyond(c.abs(), rule.tolerance)) {
            (
                Classification::Pass,
                format!("{name} {desc} ({means}), within the allowed {allowed}"),
            )
        } else if !beyond(diff.abs(), rule.min_change) {
            (
                Classification::Pass,
                format!(
                    "{name} {desc} ({means}), but the difference {} is not above the minimum change {}",
                    fmt_num(diff.abs()),
                    fmt_num(rule.min_change)
                ),
            )
        } else {
            let class = if up {
                Classification::High
            } else {
                Classification::Low
            };
            let limit = match change {
                Some(_) if rule.min_change > 0.0 => format!(
                    "allowed {allowed} and a minimum change of {}",
                    fmt_num(rule.min_change)
                ),
                Some(_) => format!("allowed {allowed}"),
                None => format!("minimum change {}", fmt_num(rule.min_change)),
            };
            (class, format!("{name} {desc} ({means}), {limit}"))
        }
    };
    judgement.classification = classification;
    judgement.reason = reason;
    judgement
}

/// Scores metric judgements (Kayenta's weighted sum and threshold classifier): the weight of
/// passing metrics over the weight of metrics with data, ×100. A critical metric classified High
/// or Low makes the score 0 and the outcome Fail; no metric with data is NoData (score 0).
///
/// A weight that is not a positive number counts as 0; when every metric with data weighs 0 each
/// counts as 1, so a misconfigured weight never divides by zero.
///
/// `reasons`: one line per High or Low metric (critical ones first, each as its metric's
/// reason), then one summary line.
pub fn score(metrics: Vec<MetricJudgement>, thresholds: &Thresholds) -> Judgement {
    let with_data: Vec<&MetricJudgement> = metrics
        .iter()
        .filter(|m| m.classification != Classification::NoData)
        .collect();
    let no_data: Vec<&str> = metrics
        .iter()
        .filter(|m| m.classification == Classification::NoData)
        .map(|m| m.name.as_str())
        .collect();
    let failing = |m: &&MetricJudgement| {
        matches!(m.classification, Classification::High | Classification::Low)
    };
    let critical_failures: Vec<&MetricJudgement> = with_data
        .iter()
        .copied()
        .filter(|m| m.critical)
        .filter(failing)
        .collect();
    let other_failures: Vec<&MetricJudgement> = with_data
        .iter()
        .copied()
        .filter(|m| !m.critical)
        .filter(failing)
        .collect();

    let mut reasons: Vec<String> = critical_failures
        .iter()
        .map(|m| format!("critical: {}", m.reason))
        .chain(other_failures.iter().map(|m| m.reason.clone()))
        .collect();

    if with_data.is_empty() {
        reasons.push(format!(
            "no data: none of the {} metrics had enough samples to judge",
            metrics.len()
        ));
        return Judgement {
            score: 0.0,
            outcome: Outcome::NoData,
            metrics,
            reasons,
        };
    }

    let weight = |m: &MetricJudgement| {
        if m.weight.is_finite() && m.weight > 0.0 {
            m.weight
        } else {
            0.0
        }
    };
    let mut total: f64 = with_data.iter().map(|m| weight(m)).sum();
    let mut passing: f64 = with_data
        .iter()
        .filter(|m| m.classification == Classification::Pass)
        .map(|m| weight(m))
        .sum();
    if !beyond(total, 0.0) {
        total = with_data.len() as f64;
        passing = with_data
            .iter()
            .filter(|m| m.classification == Classification::Pass)
            .count() as f64;
    }
    let weighted = 100.0 * passing / total;
    let passed = with_data
        .iter()
        .filter(|m| m.classification == Classification::Pass)
        .count();
    let not_counted = if no_data.is_empty() {
        String::new()
    } else {
        format!("; without data, not counted: {}", no_data.join(", "))
    };

    let (score, outcome, summary) = if !critical_failures.is_empty() {
        let names: Vec<&str> = critical_failures.iter().map(|m| m.name.as_str()).collect();
        (
            0.0,
            Outcome::Fail,
            format!(
                "fail: critical metric {} failed, so the score is 0 (the weighted score would be {}){not_counted}",
                names.join(", "),
                fmt_score(weighted)
            ),
        )
    } else {
        let (outcome, word, rule) = if weighted >= thresholds.pass {
            (
                Outcome::Pass,
                "pass",
                format!("at or above pass {}", fmt_score(thresholds.pass)),
            )
        } else if weighted >= thresholds.marginal {
            (
                Outcome::Marginal,
                "marginal",
                format!(
                    "below pass {} and at or above marginal {}",
                    fmt_score(thresholds.pass),
                    fmt_score(thresholds.marginal)
                ),
            )
        } else {
            (
                Outcome::Fail,
                "fail",
                format!("below marginal {}", fmt_score(thresholds.marginal)),
            )
        };
        (
            weighted,
            outcome,
            format!(
                "{word}: score {} ({passed} of {} metrics pass), {rule}{not_counted}",
                fmt_score(weighted),
                with_data.len()
            ),
        )
    };
    reasons.push(summary);
    Judgement {
        score,
        outcome,
        metrics,
        reasons,
    }
}

/// `x > limit`, false when either is NaN (a NaN limit never lets anything fail).
fn beyond(x: f64, limit: f64) -> bool {
    x > limit
}

/// One side's samples without NaN and (with `k`) without outliers, sorted ascending (the test,
/// the mean and the median do not depend on the order, and sorting once serves all three), and
/// their summary.
fn clean(v: &[f64], k: Option<f64>) -> (Vec<f64>, SideSummary) {
    let sorted = stats::sorted_without_nan(v);
    let samples = sorted.len();
    let kept = match k {
        Some(k) => stats::remove_outliers_sorted(&sorted, k),
        None => sorted,
    };
    let summary = SideSummary {
        samples,
        outliers: samples - kept.len(),
        mean: stats::mean(&kept),
        median: stats::quantile_sorted(&kept, 0.5),
    };
    (kept, summary)
}

/// "5.10× the baseline", "+23.4% over the baseline", "-35.0% under the baseline", or
/// "rose from 0 to 0.02" when the relative change is undefined.
fn describe_change(canary: f64, baseline: f64, change: Option<f64>) -> String {
    match change {
        Some(c) if baseline > 0.0 && c >= 1.0 => {
            format!("{}× the baseline", fmt_fixed(c + 1.0, 2))
        }
        Some(c) if c >= 0.0 => format!("+{} over the baseline", fmt_pct(c)),
        Some(c) => format!("-{} under the baseline", fmt_pct(-c)),
        None if canary > baseline => {
            format!("rose from {} to {}", fmt_num(baseline), fmt_num(canary))
        }
        None => format!("fell from {} to {}", fmt_num(baseline), fmt_num(canary)),
    }
}

/// A fraction as a percentage with one decimal ("10.0%").
fn fmt_pct(f: f64) -> String {
    format!("{}%", fmt_fixed(f * 100.0, 1))
}

/// A score with at most one decimal ("66.7", "95").
fn fmt_score(s: f64) -> String {
    fmt_fixed(s, 1)
}

/// `x` with `decimals` decimals, trailing zeros (and a trailing point) removed.
fn fmt_fixed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A measurement with 4 significant digits: plain between 0.001 and a million, else in
/// scientific notation.
fn fmt_num(x: f64) -> String {
    fmt_sig(x, 4)
}

/// A p-value with 2 significant digits ("0.043", "3.1e-9").
fn fmt_p(p: f64) -> String {
    fmt_sig(p, 2)
}

/// `x` with `digits` significant digits.
fn fmt_sig(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let magnitude = x.abs().log10().floor();
    if (-3.0..6.0).contains(&magnitude) {
        let decimals = (digits as f64 - 1.0 - magnitude).max(0.0) as usize;
        fmt_fixed(x, decimals)
    } else {
        let s = format!("{:.*e}", digits.saturating_sub(1), x);
        match s.split_once('e') {
            Some((mantissa, exp)) if mantissa.contains('.') => format!(
                "{}e{exp}",
                mantissa.trim_end_matches('0').trim_end_matches('.')
            ),
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.051), "0.051");
        assert_eq!(fmt_num(123.456), "123.5");
        assert_eq!(fmt_num(1_234_567.0), "1.235e6");
        assert_eq!(fmt_num(-0.00001234), "-1.234e-5");
        assert_eq!(fmt_p(3.04e-9), "3e-9");
        assert_eq!(fmt_p(0.0431), "0.043");
        assert_eq!(fmt_p(1.0), "1");
        assert_eq!(fmt_pct(0.1), "10%");
        assert_eq!(fmt_pct(0.234), "23.4%");
        assert_eq!(fmt_score(200.0 / 3.0), "66.7");
        assert_eq!(describe_change(5.1, 1.0, Some(4.1)), "5.1× the baseline");
        assert_eq!(describe_change(0.02, 0.0, None), "rose from 0 to 0.02");
    }
}
