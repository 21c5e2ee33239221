//! Behaviour of the per-series forecaster: a ramp crosses its threshold when predicted, a
//! seasonal series' 95% prediction interval covers 95% (± 3 points) of the next day, a flat
//! series never crosses, and the state round-trips. (Calibration over many origins:
//! tests/calibration.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use aiops_detect::Direction;
use aiops_detect::forecast::{ForecastConfig, Forecaster};

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
/// 5 minutes.
const STEP: i64 = 300_000;
const HOUR: i64 = 3_600_000;
const DAY: usize = 288;

use common::Rng;

fn forecaster() -> Forecaster {
    Forecaster::new(ForecastConfig::default()).unwrap()
}

#[test]
fn ramp_crossing_time_is_predicted() {
    // Disk usage: 20% + 0.5% per hour with noise σ 0.3, two days at 5-minute resolution.
    let mut rng = Rng::new(1);
    let mut f = forecaster();
    let n = 2 * DAY;
    for i in 0..n {
        let hours = i as f64 * STEP as f64 / HOUR as f64;
        f.observe(
            T0 + i as i64 * STEP,
            20.0 + 0.5 * hours + 0.3 * rng.normal(),
        );
    }
    let now_hours = (n - 1) as f64 * STEP as f64 / HOUR as f64;
    let truth_ms = ((90.0 - (20.0 + 0.5 * now_hours)) / 0.5 * HOUR as f64) as i64;
    let got = f.time_until(90.0, Direction::Up).expect("a crossing");
    let err = (got - truth_ms).abs() as f64 / truth_ms as f64;
    eprintln!(
        "ramp: predicted {:.2} h, truth {:.2} h",
        got as f64 / 3.6e6,
        truth_ms as f64 / 3.6e6
    );
    assert!(err < 0.05, "predicted {got} ms, truth {truth_ms} ms");
    // Direction None takes the side the threshold is on; Down never reaches 90 from below.
    assert_eq!(f.time_until(90.0, Direction::None), Some(got));
    assert_eq!(f.time_until(90.0, Direction::Down), Some(0));
    assert_eq!(f.time_until(10.0, Direction::Down), None);
    // Beyond the horizon: None.
    assert_eq!(f.time_until_within(90.0, Direction::Up, got / 2), None);
    let p = f.forecast(10 * HOUR).unwrap();
    let truth = 20.0 + 0.5 * (now_hours + 10.0);
    assert!(p.lower < truth && truth < p.upper, "{p:?} vs {truth}");
}

#[test]
fn seasonal_interval_covers_future_points() {
    // Daily sine (amplitude 10) with a slow upward trend and noise σ 1, 14 days.
    let value = |i: usize, rng: &mut Rng| {
        let phase = (i % DAY) as f64 / DAY as f64 * 2.0 * std::f64::consts::PI;
        50.0 + 0.002 * i as f64 + 10.0 * phase.sin() + rng.normal()
    };
    let mut rng = Rng::new(2);
    let mut f = forecaster();
    let n = 14 * DAY;
    for i in 0..n {
        f.observe(T0 + i as i64 * STEP, value(i, &mut rng));
    }
    // Daily or weekly (a weekly profile holds the daily shape too).
    assert!(f.period_ms() > 0, "a seasonal profile is in use");
    let last = T0 + (n as i64 - 1) * STEP;
    let mut covered = 0;
    let mut width = 0.0;
    for k in 1..=DAY {
        let y = value(n - 1 + k, &mut rng);
        let p = f.forecast(k as i64 * STEP).unwrap();
        width += p.upper - p.lower;
        if p.lower <= y && y <= p.upper {
            covered += 1;
        }
        assert!(f.last_time_ms() == Some(last));
    }
    let frac = f64::from(covered) / DAY as f64;
    eprintln!(
        "seasonal: {:.1}% of the next day covered, mean width {:.2}",
        100.0 * frac,
        width / DAY as f64
    );
    // The 95% interval covers 95% ± 3 points (tests/calibration.rs measures it over many
    // origins; this is one origin's next day).
    assert!((frac - 0.95).abs() <= 0.03, "coverage {frac}");
    // The interval is informative: much narrower than the seasonal swing (20).
    assert!(width / (DAY as f64) < 8.0);
}

#[test]
fn flat_series_never_crosses() {
    for seed in 3..8 {
        let mut rng = Rng::new(seed);
        let mut f = forecaster();
        for i in 0..(3 * DAY) {
            f.observe(T0 + i as i64 * STEP, 100.0 + 2.0 * rng.normal());
        }
        assert_eq!(f.time_until(120.0, Direction::Up), None, "seed {seed}");
        assert_eq!(f.time_until(80.0, Direction::Down), None, "seed {seed}");
        let p = f.forecast(24 * HOUR).unwrap();
        assert!((p.point - 100.0).abs() < 1.5, "seed {seed}: {p:?}");
    }
}

#[test]
fn seasonal_ramp_crosses_at_a_peak() {
    // Queue depth: a daily swing of ±10 on a ramp of 1 per hour, threshold 150.
    let mut rng = Rng::new(9);
    let mut f = forecaster();
    let value = |i: usize, rng: &mut Rng| {
        let phase = (i % DAY) as f64 / DAY as f64 * 2.0 * std::f64::consts::PI;
        let hours = i as f64 * STEP as f64 / HOUR as f64;
        hours + 10.0 * phase.sin() + 0.5 * rng.normal()
    };
    let n = 4 * DAY;
    for i in 0..n {
        f.observe(T0 + i as i64 * STEP, value(i, &mut rng));
    }
    // The true first crossing of 120 (noise-free).
    let mut truth = None;
    for k in 1..(5 * DAY) {
        let i = n - 1 + k;
        let phase = (i % DAY) as f64 / DAY as f64 * 2.0 * std::f64::consts::PI;
        let v = i as f64 * STEP as f64 / HOUR as f64 + 10.0 * phase.sin();
        if v >= 120.0 {
            truth = Some(k as i64 * STEP);
            break;
        }
    }
    let truth = truth.unwrap();
    let got = f.time_until(120.0, Direction::Up).expect("a crossing");
    eprintln!(
        "seasonal ramp: predicted {:.2} h, truth {:.2} h",
        got as f64 / 3.6e6,
        truth as f64 / 3.6e6
    );
    assert!(
        (got - truth).abs() < 2 * HOUR,
        "predicted {got}, truth {truth}"
    );
}

#[test]
fn state_round_trips() {
    let mut rng = Rng::new(10);
    let mut f = forecaster();
    for i in 0..(2 * DAY) {
        f.observe(T0 + i as i64 * STEP, 5.0 + 0.01 * i as f64 + rng.normal());
    }
    let v = serde_json::to_value(&f).unwrap();
    let g: Forecaster = serde_json::from_value(v).unwrap();
    assert_eq!(f, g);
    assert_eq!(f.forecast(HOUR), g.forecast(HOUR));
    let mut f2 = f.clone();
    f2.observe(T0 + (2 * DAY) as i64 * STEP, f64::NAN);
    assert_eq!(f2, f, "NaN changed the state");
}

#[test]
fn parameters_are_checked() {
    let bad = ForecastConfig {
        coverage: 1.5,
        ..ForecastConfig::default()
    };
    let e = Forecaster::new(bad).unwrap_err().to_string();
    assert!(e.contains("coverage"), "{e}");
    assert!(
        forecaster().forecast(HOUR).is_none(),
        "forecast before any point"
    );
}
