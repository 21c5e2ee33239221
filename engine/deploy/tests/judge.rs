#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

//! The verification judge: outlier removal, each classification, direction, tolerance,
//! minimum change, NoData, the weighted score with its thresholds and the critical override,
//! and (property) that a sample judged against itself never fails.

use aiops_deploy::judge::{
    Classification, Direction, MetricJudgement, MetricRule, Outcome, SideSummary, Thresholds,
    judge_metric, score,
};
use aiops_deploy::stats;
use proptest::prelude::*;

/// `n` deterministic values around `base`, spread ±`amp`/2 (a fixed permutation of 0..101, so
/// the samples are interleaved rather than sorted).
fn noisy(base: f64, amp: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| base + amp * (((i * 7919 + 13) % 101) as f64 / 100.0 - 0.5))
        .collect()
}

fn rule(name: &str) -> MetricRule {
    MetricRule {
        name: name.into(),
        ..MetricRule::default()
    }
}

#[test]
fn outliers_are_removed_with_exact_fences_and_counted() {
    // 1..=20 and 500: NumPy's quartiles are 6 and 16 (IQR 10), k = 3 → fences [-24, 46].
    let mut baseline: Vec<f64> = (1..=20).map(f64::from).collect();
    baseline.push(500.0);
    baseline.push(f64::NAN);
    assert_eq!(stats::quantile(&baseline, 0.25), Some(6.0));
    assert_eq!(stats::quantile(&baseline, 0.75), Some(16.0));
    let kept = stats::remove_outliers(&baseline, 3.0);
    assert_eq!(kept, (1..=20).map(f64::from).collect::<Vec<_>>());
    // 46 is on the upper fence and stays; 46.5 is past it and goes.
    let mut edge: Vec<f64> = (1..=20).map(f64::from).collect();
    edge.push(46.0);
    // With 46 instead of 500 the quartiles are unchanged, so the fence is still 46.
    assert_eq!(stats::remove_outliers(&edge, 3.0).len(), 21);
    edge[20] = 46.5;
    assert_eq!(stats::remove_outliers(&edge, 3.0).len(), 20);

    let canary: Vec<f64> = (1..=20).map(f64::from).collect();
    let j = judge_metric(&rule("latency"), &canary, &baseline);
    assert_eq!(
        j.baseline,
        SideSummary {
            samples: 21,
            outliers: 1,
            mean: Some(10.5),
            median: Some(10.5),
        }
    );
    assert_eq!(j.canary.outliers, 0);
    assert_eq!(j.classification, Classification::Pass);

    // Without outlier removal the 500 stays and moves the baseline mean.
    let keep_all = MetricRule {
        outlier_k: None,
        ..rule("latency")
    };
    let j = judge_metric(&keep_all, &canary, &baseline);
    assert_eq!(j.baseline.outliers, 0);
    assert_eq!(j.baseline.mean, Some((210.0 + 500.0) / 21.0));
}

#[test]
fn a_five_fold_error_ratio_is_high_with_the_numbers_in_the_reason() {
    let baseline = noisy(0.01, 0.004, 120);
    let canary = noisy(0.05, 0.02, 120);
    let j = judge_metric(&rule("error_ratio"), &canary, &baseline);
    assert_eq!(j.classification, Classification::High);
    let test = j.test.unwrap();
    assert!(test.p_value < 1e-10, "{test:?}");
    let change = j.change.unwrap();
    assert!((change - 4.0).abs() < 0.05, "change {change}");
    assert!(j.reason.starts_with("error_ratio "), "{}", j.reason);
    assert!(j.reason.contains("× the baseline"), "{}", j.reason);
    assert!(j.reason.contains("allowed +10%"), "{}", j.reason);
    assert!(j.reason.contains("p="), "{}", j.reason);
}

#[test]
fn direction_decides_which_change_is_bad() {
    let baseline = noisy(100.0, 10.0, 100);
    let lower = noisy(60.0, 10.0, 100);
    let higher = noisy(150.0, 10.0, 100);

    let decrease = MetricRule {
        direction: Direction::Decrease,
        ..rule("throughput")
    };
    let j = judge_metric(&decrease, &lower, &baseline);
    assert_eq!(j.classification, Classification::Low);
    assert!(j.reason.contains("under the baseline"), "{}", j.reason);
    assert!(j.reason.contains("allowed -10%"), "{}", j.reason);
    // A rise of a lower-is-bad metric passes.
    let j = judge_metric(&decrease, &higher, &baseline);
    assert_eq!(j.classification, Classification::Pass);
    assert!(j.reason.contains("not bad"), "{}", j.reason);

    let increase = rule("latency");
    assert_eq!(
        judge_metric(&increase, &higher, &baseline).classification,
        Classification::High
    );
    assert_eq!(
        judge_metric(&increase, &lower, &baseline).classification,
        Classification::Pass
    );

    let either = MetricRule {
        direction: Direction::Either,
        ..rule("queue")
    };
    assert_eq!(
        judge_metric(&either, &higher, &baseline).classification,
        Classification::High
    );
    assert_eq!(
        judge_metric(&either, &lower, &baseline).classification,
        Classification::Low
    );
}

#[test]
fn a_significant_change_within_the_tolerance_passes() {
    // +5%, tight noise: clearly significant.
    let baseline = noisy(100.0, 2.0, 200);
    let canary = noisy(105.0, 2.0, 200);
    let loose = MetricRule {
        tolerance: 0.1,
        ..rule("p99")
    };
    let j = judge_metric(&loose, &canary, &baseline);
    assert!(j.test.unwrap().p_value < 1e-10);
    assert_eq!(j.classification, Classification::Pass);
    assert!(j.reason.contains("within the allowed +10%"), "{}", j.reason);

    let strict = MetricRule {
        tolerance: 0.01,
        ..rule("p99")
    };
    let j = judge_metric(&strict, &canary, &baseline);
    assert_eq!(j.classification, Classification::High);
    assert!(j.reason.contains("+5% over the baseline"), "{}", j.reason);
}

#[test]
fn min_change_guards_small_absolute_differences() {
    // Doubling a tiny ratio: +100% but only 0.001 in absolute terms.
    let baseline = noisy(0.001, 0.0002, 100);
    let canary = noisy(0.002, 0.0002, 100);
    let guarded = MetricRule {
        min_change: 0.01,
        ..rule("error_ratio")
    };
    let j = judge_metric(&guarded, &canary, &baseline);
    assert_eq!(j.classification, Classification::Pass);
    assert!(j.reason.contains("minimum change 0.01"), "{}", j.reason);
    let unguarded = MetricRule {
        min_change: 0.0005,
        ..rule("error_ratio")
    };
    assert_eq!(
        judge_metric(&unguarded, &canary, &baseline).classification,
        Classification::High
    );
}

#[test]
fn a_zero_baseline_is_judged_by_min_change_alone() {
    let baseline = vec![0.0; 60];
    let canary: Vec<f64> = (0..60)
        .map(|i| if i % 2 == 0 { 0.02 } else { 0.0 })
        .collect();
    // Half the canary's samples are errors: an IQR of 0.02 keeps them all.
    let lenient = MetricRule {
        min_change: 0.05,
        ..rule("error_ratio")
    };
    let j = judge_metric(&lenient, &canary, &baseline);
    assert_eq!(j.change, None);
    assert!(j.test.unwrap().p_value < 0.05);
    assert_eq!(j.classification, Classification::Pass);

    let strict = MetricRule {
        min_change: 0.001,
        ..rule("error_ratio")
    };
    let j = judge_metric(&strict, &canary, &baseline);
    assert_eq!(j.classification, Classification::High);
    assert!(j.reason.contains("rose from 0 to 0.01"), "{}", j.reason);
    assert!(j.reason.contains("minimum change 0.001"), "{}", j.reason);
}

#[test]
fn no_significant_difference_passes() {
    let baseline = noisy(50.0, 20.0, 100);
    let canary: Vec<f64> = noisy(50.0, 20.0, 101).into_iter().skip(1).collect();
    let j = judge_metric(&rule("latency"), &canary, &baseline);
    assert!(j.test.unwrap().p_value >= 0.05);
    assert_eq!(j.classification, Classification::Pass);
    assert!(
        j.reason.contains("not significantly different"),
        "{}",
        j.reason
    );
}

#[test]
fn too_few_samples_is_no_data() {
    let baseline = noisy(1.0, 0.1, 50);
    let j = judge_metric(&rule("latency"), &[1.0, 2.0, 3.0, 4.0], &baseline);
    assert_eq!(j.classification, Classification::NoData);
    assert_eq!(j.test, None);
    assert_eq!(j.change, None);
    assert!(j.reason.contains("at least 5"), "{}", j.reason);
    // NaN are gaps, not samples.
    let gaps = [f64::NAN; 10];
    let j = judge_metric(&rule("latency"), &gaps, &baseline);
    assert_eq!(j.classification, Classification::NoData);
    assert_eq!(j.canary.samples, 0);
    assert_eq!(j.canary.mean, None);
    // Exactly min_samples is enough.
    let j = judge_metric(&rule("latency"), &[1.0, 1.1, 0.9, 1.0, 1.05], &baseline);
    assert_ne!(j.classification, Classification::NoData);
}

fn judged(name: &str, class: Classification, critical: bool, weight: f64) -> MetricJudgement {
    MetricJudgement {
        name: name.into(),
        classification: class,
        critical,
        weight,
        canary: SideSummary::default(),
        baseline: SideSummary::default(),
        test: None,
        change: None,
        reason: format!("{name} reason"),
    }
}

#[test]
fn score_is_the_passing_weight_over_the_weight_with_data() {
    use Classification::*;
    let t = Thresholds::default();
    // 3 of 4 weight passes; the NoData metric does not count.
    let j = score(
        vec![
            judged("a", Pass, false, 3.0),
            judged("b", High, false, 1.0),
            judged("c", NoData, false, 10.0),
        ],
        &t,
    );
    assert_eq!(j.score, 75.0);
    assert_eq!(j.outcome, Outcome::Marginal);
    assert_eq!(j.reasons.len(), 2);
    assert_eq!(j.reasons[0], "b reason");
    assert!(
        j.reasons[1].starts_with("marginal: score 75"),
        "{:?}",
        j.reasons
    );
    assert!(j.reasons[1].contains("not counted: c"), "{:?}", j.reasons);
    assert_eq!(j.metrics.len(), 3);

    // Thresholds are inclusive.
    let at_pass = Thresholds {
        pass: 75.0,
        marginal: 50.0,
    };
    let metrics = vec![judged("a", Pass, false, 3.0), judged("b", Low, false, 1.0)];
    assert_eq!(score(metrics.clone(), &at_pass).outcome, Outcome::Pass);
    let above = Thresholds {
        pass: 75.1,
        marginal: 75.1,
    };
    let j = score(metrics.clone(), &above);
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(j.reasons.last().unwrap().contains("below marginal 75.1"));

    let all_pass = score(
        vec![judged("a", Pass, false, 1.0), judged("b", Pass, true, 2.0)],
        &t,
    );
    assert_eq!(all_pass.score, 100.0);
    assert_eq!(all_pass.outcome, Outcome::Pass);
    assert_eq!(all_pass.reasons.len(), 1);
}

#[test]
fn a_failing_critical_metric_fails_whatever_the_score() {
    use Classification::*;
    let j = score(
        vec![
            judged("latency", High, false, 1.0),
            judged("errors", High, true, 1.0),
            judged("saturation", Pass, false, 100.0),
        ],
        &Thresholds::default(),
    );
    assert_eq!(j.score, 0.0);
    assert_eq!(j.outcome, Outcome::Fail);
    assert_eq!(j.reasons[0], "critical: errors reason");
    assert_eq!(j.reasons[1], "latency reason");
    assert!(
        j.reasons[2].contains("critical metric errors failed"),
        "{:?}",
        j.reasons
    );
    // A critical metric without data does not fail the verification by itself.
    let j = score(
        vec![
            judged("errors", NoData, true, 1.0),
            judged("latency", Pass, false, 1.0),
        ],
        &Thresholds::default(),
    );
    assert_eq!(j.outcome, Outcome::Pass);
}

#[test]
fn no_metric_with_data_is_no_data() {
    let j = score(
        vec![
            judged("a", Classification::NoData, true, 1.0),
            judged("b", Classification::NoData, false, 1.0),
        ],
        &Thresholds::default(),
    );
    assert_eq!(j.outcome, Outcome::NoData);
    assert_eq!(j.score, 0.0);
    assert_eq!(j.reasons.len(), 1);
    assert!(j.reasons[0].starts_with("no data"), "{:?}", j.reasons);
    assert_eq!(
        score(Vec::new(), &Thresholds::default()).outcome,
        Outcome::NoData
    );
}

#[test]
fn unusable_weights_never_divide_by_zero() {
    use Classification::*;
    let j = score(
        vec![
            judged("a", Pass, false, 0.0),
            judged("b", High, false, f64::NAN),
        ],
        &Thresholds::default(),
    );
    assert_eq!(j.score, 50.0);
    assert_eq!(j.outcome, Outcome::Fail);
}

#[test]
fn rules_and_thresholds_have_documented_defaults() {
    let r: MetricRule = serde_json::from_str(r#"{"name": "p99", "direction": "either"}"#).unwrap();
    assert_eq!(r.direction, Direction::Either);
    assert_eq!(r.alpha, 0.05);
    assert_eq!(r.min_samples, 5);
    assert_eq!(r.outlier_k, Some(3.0));
    assert!(serde_json::from_str::<MetricRule>(r#"{"nmae": "typo"}"#).is_err());
    let t: Thresholds = serde_json::from_str("{}").unwrap();
    assert_eq!((t.pass, t.marginal), (95.0, 75.0));
}

fn any_direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::Increase),
        Just(Direction::Decrease),
        Just(Direction::Either)
    ]
}

proptest! {
    /// A sample judged against itself (in another order) never fails, whatever the rule.
    #[test]
    fn identical_distributions_never_fail(
        values in prop::collection::vec(-1e6f64..1e6, 0..300),
        round in any::<bool>(),
        direction in any_direction(),
        tolerance in 0.0f64..1.0,
        min_change in 0.0f64..10.0,
        alpha in 0.0f64..=1.0,
        min_samples in 0usize..20,
        outlier_k in prop::option::of(0.0f64..5.0),
        critical in any::<bool>(),
    ) {
        // Rounding makes heavy ties.
        let sample: Vec<f64> = if round {
            values.iter().map(|v| (v / 1e5).round()).collect()
        } else {
            values
        };
        let mut other = sample.clone();
        other.reverse();
        let rule = MetricRule {
            name: "m".into(),
            direction,
            critical,
            weight: 1.0,
            tolerance,
            min_change,
            alpha,
            min_samples,
            outlier_k,
        };
        let j = judge_metric(&rule, &sample, &other);
        prop_assert!(
            matches!(j.classification, Classification::Pass | Classification::NoData),
            "{:?}: {}", j.classification, j.reason
        );
        let verdict = score(vec![j], &Thresholds::default());
        prop_assert_ne!(verdict.outcome, Outcome::Fail);
    }
}
