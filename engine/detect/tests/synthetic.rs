//! The synthetic anomaly suite (issue 22): every detector of [`DETECTORS`] on a daily-seasonal
//! series at 5-minute resolution with one injected anomaly of each kind — spike, level shift,
//! trend change, seasonality break, variance change, contextual (a value normal for the day but
//! at the wrong hour) — after a warm-up. For each, the detection delay (points from the onset to
//! the first score at or above the detector's alert level) is measured over several seeds and
//! its worst case held to the kind's bound ([`Kind::bound`]). Clean seasonal data with noise
//! must not reach the alarm level after the warm-up (a property test over seeds and noise
//! levels; see `alarm_level` for why the alarm level and not the alert level), and a checkpoint (serde JSON text) taken at a random midpoint must continue bit for
//! bit.
//!
//! Adding a detector is one line in [`DETECTORS`]; a kind it cannot see by design goes in
//! [`NOT_REQUIRED`] with the reason. `cargo test --release --test synthetic -- --nocapture`
//! prints the delay table (`delay_table`) for the docs.
//!
//! The series: `50 + 10 sin(2π (h − 6) / 24)` (trough 40 at midnight, peak 60 at noon) plus
//! N(0, σ²) noise, σ = 1 unless said; 14 days from 2024-01-01 00:00 UTC; anomalies start on
//! day 10. Magnitudes are in units of σ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use aiops_detect::{AnyDetector, Detector, DetectorConfig, Verdict};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// The detectors under test: registry names. Adding one is adding a line here.
const DETECTORS: &[&str] = &[
    "ensemble", // the default
];

/// Kinds a detector is not required to catch within the bound, with the reason (the delay is
/// still measured and printed): `(detector, kind, reason)`.
const NOT_REQUIRED: &[(&str, Kind, &str)] = &[];

/// The alert level when the detector's configuration has no `alert` field.
const DEFAULT_ALERT: f64 = 0.2;
/// The alarm level when the detector's configuration has no `escalate` field: a one-in-100,000
/// point ([`aiops_detect::calibrate`]).
const DEFAULT_ALARM: f64 = 0.5;

/// 2024-01-01T00:00:00Z in ms.
const T0: i64 = 1_704_067_200_000;
/// 5 minutes in ms.
const STEP: i64 = 300_000;
/// Points per hour and per day at 5-minute resolution.
const HOUR: usize = 12;
const DAY: usize = 24 * HOUR;
/// Length of every series: 14 days.
const N: usize = 14 * DAY;
/// The suite's warm-up: 3 days. Scores before it are not judged (the default judges after 16
/// points, but counts sustained deviations only once a season can be chosen, after 36 h).
const WARM: usize = 3 * DAY;
/// Day of the onset of every anomaly.
const ONSET_DAY: usize = 10;
/// Seeds each kind is run with; the bound holds for the worst.
const SEEDS: [u64; 5] = [11, 23, 37, 41, 59];
/// Search for a detection this far past the onset (then it counts as missed).
const SEARCH: usize = DAY;

use common::Rng;

/// Hour of day (fractional) of point `i`.
fn hour(i: usize) -> f64 {
    (i % DAY) as f64 / HOUR as f64
}

/// The daily cycle at hour `h`, shifted `lag` hours later.
fn cycle(h: f64, lag: f64) -> f64 {
    50.0 + 10.0 * (2.0 * std::f64::consts::PI * (h - 6.0 - lag) / 24.0).sin()
}

/// Clean data: the daily cycle plus N(0, σ²) noise.
fn clean(seed: u64, sigma: f64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..N)
        .map(|i| cycle(hour(i), 0.0) + sigma * rng.normal())
        .collect()
}

fn times(n: usize) -> Vec<i64> {
    (0..n).map(|i| T0 + i as i64 * STEP).collect()
}

/// A kind of injected anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Spike,
    LevelShift,
    TrendChange,
    SeasonalityBreak,
    VarianceChange,
    Contextual,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Spike,
        Kind::LevelShift,
        Kind::TrendChange,
        Kind::SeasonalityBreak,
        Kind::VarianceChange,
        Kind::Contextual,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Spike => "spike",
            Kind::LevelShift => "level shift",
            Kind::TrendChange => "trend change",
            Kind::SeasonalityBreak => "seasonality break",
            Kind::VarianceChange => "variance change",
            Kind::Contextual => "contextual",
        }
    }

    /// What is injected, for the table.
    fn describe(self) -> &'static str {
        match self {
            Kind::Spike => "one point +8σ at 10:00",
            Kind::LevelShift => "+4σ from 10:00 on",
            Kind::TrendChange => "+0.1σ per point from 10:00 on (+3.6σ after 3 h)",
            Kind::SeasonalityBreak => {
                "the cycle peaks 4 h later from 14:00 on (where old and new agree)"
            }
            Kind::VarianceChange => "noise ×4 from 10:00 on",
            Kind::Contextual => "the midnight value (40) at noon for 1 h",
        }
    }

    /// The worst acceptable delay in points (5 minutes each) from the onset to the first score
    /// at or above the alert level. Why each:
    /// - spike: an 8σ point is anomalous by itself: at that point (0);
    /// - level shift: 4σ a point, an hour of evidence is plenty (12);
    /// - trend change: the deviation reaches 3.6σ after 3 h (36);
    /// - seasonality break: the deviation grows from 0 to 2.6σ after 1 h and 5σ after 2 h
    ///   (36, 3 h);
    /// - variance change: ×4 noise gives a beyond-4σ point every ~3 points (12, 1 h);
    /// - contextual: the value is 20σ off what this hour holds (3, 15 min).
    fn bound(self) -> usize {
        match self {
            Kind::Spike => 0,
            Kind::LevelShift => 12,
            Kind::TrendChange => 36,
            Kind::SeasonalityBreak => 36,
            Kind::VarianceChange => 12,
            Kind::Contextual => 3,
        }
    }

    /// The series with this anomaly injected (seed `seed`, σ = 1), and its onset.
    fn series(self, seed: u64) -> (Vec<f64>, usize) {
        let mut v = clean(seed, 1.0);
        let day = ONSET_DAY * DAY;
        let at10 = day + 10 * HOUR;
        match self {
            Kind::Spike => {
                v[at10] += 8.0;
                (v, at10)
            }
            Kind::LevelShift => {
                for x in &mut v[at10..] {
                    *x += 4.0;
                }
                (v, at10)
            }
            Kind::TrendChange => {
                for (k, x) in v[at10..].iter_mut().enumerate() {
                    *x += 0.1 * k as f64;
                }
                (v, at10)
            }
            Kind::SeasonalityBreak => {
                // 14:00 is where the cycle and the one 4 h later cross: no jump at the onset.
                let at14 = day + 14 * HOUR;
                for (i, x) in v.iter_mut().enumerate().skip(at14) {
                    *x += cycle(hour(i), 4.0) - cycle(hour(i), 0.0);
                }
                (v, at14)
            }
            Kind::VarianceChange => {
                let mut rng = Rng::new(seed ^ 0xA5A5);
                // Adds N(0, 15): with the N(0, 1) already there, N(0, 16) = noise ×4.
                for x in &mut v[at10..] {
                    *x += 15f64.sqrt() * rng.normal();
                }
                (v, at10)
            }
            Kind::Contextual => {
                let noon = day + 12 * HOUR;
                for (i, x) in v.iter_mut().enumerate().skip(noon).take(HOUR) {
                    *x += cycle(0.0, 0.0) - cycle(hour(i), 0.0);
                }
                (v, noon)
            }
        }
    }
}

fn build(name: &str) -> AnyDetector {
    DetectorConfig::by_name(name)
        .unwrap_or_else(|e| panic!("DETECTORS lists {name:?}, not in the registry: {e}"))
        .build()
        .unwrap()
}

/// The detector's alarm level: its configuration's `escalate` field if it has one (the
/// ensemble's severe level, one in 100,000 for the series), else [`DEFAULT_ALARM`]. The alert
/// level (0.2 for the ensemble) is the edge of the series' own 1% tail: by design clean data
/// reaches it now and then (about 0.6 times a day at 5-minute data), which is why anomaly
/// events are raised at a threshold of the pipeline's choosing (default 0.9) and clean data is
/// held to the alarm level.
fn alarm_level(name: &str) -> f64 {
    let config = serde_json::to_value(DetectorConfig::by_name(name).unwrap()).unwrap();
    config
        .get("escalate")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(DEFAULT_ALARM)
}

/// The detector's alert level: its configuration's `alert` field if it has one (the ensemble's
/// hold-off level), else [`DEFAULT_ALERT`].
fn alert_level(name: &str) -> f64 {
    let config = serde_json::to_value(DetectorConfig::by_name(name).unwrap()).unwrap();
    config
        .get("alert")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(DEFAULT_ALERT)
}

fn run(det: &mut AnyDetector, t: &[i64], v: &[f64]) -> Vec<Verdict> {
    let mut out = Vec::new();
    det.observe_batch(t, v, &mut out);
    out
}

/// One detector on one kind over [`SEEDS`].
struct Measured {
    /// Delay per seed; `None` = missed within [`SEARCH`].
    delays: Vec<Option<usize>>,
    /// Largest score between the warm-up and the onset, over the seeds.
    before: f64,
    /// Points at or above the alert level between the warm-up and the onset, over the seeds
    /// (false alarms: the clean-data property test is where they are asserted).
    alarms_before: usize,
    /// True when the detector was still warming up at the onset on some seed.
    warming_at_onset: bool,
}

impl Measured {
    fn worst(&self) -> Option<usize> {
        self.delays
            .iter()
            .try_fold(0, |acc, d| d.map(|d| acc.max(d)))
    }
}

fn measure(name: &str, kind: Kind) -> Measured {
    let alert = alert_level(name);
    let mut m = Measured {
        delays: Vec::new(),
        before: 0.0,
        alarms_before: 0,
        warming_at_onset: false,
    };
    for seed in SEEDS {
        let (v, onset) = kind.series(seed);
        let out = run(&mut build(name), &times(v.len()), &v);
        m.before = out[WARM..onset]
            .iter()
            .map(|x| x.score)
            .fold(m.before, f64::max);
        m.alarms_before += out[WARM..onset].iter().filter(|x| x.score >= alert).count();
        m.warming_at_onset |= out[onset].warming_up;
        let end = (onset + SEARCH).min(out.len());
        m.delays
            .push(out[onset..end].iter().position(|x| x.score >= alert));
    }
    m
}

/// `N` points, or `missed` (no alert within [`SEARCH`] points of the onset).
fn fmt_delay(d: Option<usize>) -> String {
    d.map_or_else(|| "missed".to_string(), |d| d.to_string())
}

/// Measures every detector on `kind`, prints the rows, and asserts the bound for those
/// required to meet it. False alarms before the onset are printed, not asserted here: that is
/// [`no_alarm_on_clean_seasonal_data`]'s job (a detector that alarms at random could meet a
/// bound by luck; that test catches it).
fn check(kind: Kind) {
    let mut failures = Vec::new();
    for &name in DETECTORS {
        let alert = alert_level(name);
        let m = measure(name, kind);
        let worst = m.worst();
        let exempt = NOT_REQUIRED
            .iter()
            .find(|(d, k, _)| *d == name && *k == kind);
        eprintln!(
            "{name:10} {:18} bound {:>3}  worst {:>6}  per seed {:?}  before the onset: {} \
             alarms, max score {:.3} (alert {alert}){}",
            kind.name(),
            kind.bound(),
            fmt_delay(worst),
            m.delays,
            m.alarms_before,
            m.before,
            exempt.map_or(String::new(), |(_, _, why)| format!(
                "  not required: {why}"
            )),
        );
        assert!(
            !m.warming_at_onset,
            "{name}: still warming up at the onset of the {} (day {ONSET_DAY}): the suite's \
             onset must come after every detector's warm-up",
            kind.name()
        );
        if exempt.is_none() && worst.is_none_or(|w| w > kind.bound()) {
            failures.push(format!(
                "{name} misses the {} bound: worst delay {} over seeds {:?} (per seed {:?}; \
                 None = no alert within a day), bound {} points ({}); a gap of the detector to \
                 close (issue 22), or a kind to list in NOT_REQUIRED with the reason",
                kind.name(),
                worst.map_or_else(|| "missed".to_string(), |w| format!("{w} points")),
                SEEDS,
                m.delays,
                kind.bound(),
                kind.describe(),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn spike() {
    check(Kind::Spike);
}

#[test]
fn level_shift() {
    check(Kind::LevelShift);
}

#[test]
fn trend_change() {
    check(Kind::TrendChange);
}

#[test]
fn seasonality_break() {
    check(Kind::SeasonalityBreak);
}

#[test]
fn variance_change() {
    check(Kind::VarianceChange);
}

#[test]
fn contextual() {
    check(Kind::Contextual);
}

/// The delay table for the docs (`-- --nocapture`); asserts the suite itself is sound: every
/// name of [`DETECTORS`] and [`NOT_REQUIRED`] is in the registry, each injection changes the
/// series from its onset on and not before.
#[test]
fn delay_table() {
    for &(name, _, why) in NOT_REQUIRED {
        assert!(DetectorConfig::NAMES.contains(&name), "{name}");
        assert!(!why.is_empty(), "{name}: a reason is required");
    }
    for kind in Kind::ALL {
        let (v, onset) = kind.series(SEEDS[0]);
        let base = clean(SEEDS[0], 1.0);
        assert!(
            v[..onset] == base[..onset],
            "{}: changed before the onset",
            kind.name()
        );
        assert!(v[onset + 1] != base[onset + 1] || v[onset] != base[onset]);
    }
    let mut lines = vec![
        "| kind | injected | bound (points) | detector | worst delay | per seed | required |"
            .to_string(),
        "|---|---|---:|---|---:|---|---|".to_string(),
    ];
    for kind in Kind::ALL {
        for &name in DETECTORS {
            let m = measure(name, kind);
            let required = NOT_REQUIRED
                .iter()
                .find(|(d, k, _)| *d == name && *k == kind)
                .map_or("yes".to_string(), |(_, _, why)| format!("no: {why}"));
            let per_seed: Vec<String> = m.delays.iter().map(|&d| fmt_delay(d)).collect();
            lines.push(format!(
                "| {} | {} | {} | {name} | {} | {} | {required} |",
                kind.name(),
                kind.describe(),
                kind.bound(),
                fmt_delay(m.worst()),
                per_seed.join(", "),
            ));
        }
    }
    eprintln!("{}", lines.join("\n"));
    assert_eq!(lines.len(), 2 + Kind::ALL.len() * DETECTORS.len());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 6,
        rng_seed: RngSeed::Fixed(22),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    /// Clean daily-seasonal data, noise σ from 0.5 to 3 (amplitude 10): no score reaches the
    /// alarm level after the warm-up, for any detector (see [`alarm_level`]).
    #[test]
    fn no_alarm_on_clean_seasonal_data(seed in 1u64..1_000_000, sigma in 0.5f64..3.0) {
        let v = clean(seed, sigma);
        let t = times(v.len());
        for &name in DETECTORS {
            let alert = alarm_level(name);
            let out = run(&mut build(name), &t, &v);
            let judged = &out[WARM..];
            let alarms = judged.iter().filter(|x| x.score >= alert).count();
            let (at, peak) = judged
                .iter()
                .enumerate()
                .fold((0, 0.0), |(ai, am), (i, x)| if x.score > am { (i, x.score) } else { (ai, am) });
            prop_assert!(
                alarms == 0,
                "{}: {} points at or above the alarm level {} on clean seasonal data after the \
                 warm-up ({:.2} a day; highest score {:.3} at point {}), seed {}, σ {:.2}: the \
                 detector's alarm level is inside its clean-data score range (issue 22)",
                name, alarms, alert, alarms as f64 / ((N - WARM) as f64 / DAY as f64), peak,
                WARM + at, seed, sigma
            );
        }
    }
}

/// Every field of two verdicts equal, floats compared bit for bit (`f64::to_bits`).
fn same(a: &Verdict, b: &Verdict) -> bool {
    let eq = |x: f64, y: f64| x.to_bits() == y.to_bits();
    eq(a.score, b.score)
        && eq(a.expected, b.expected)
        && eq(a.lower, b.lower)
        && eq(a.upper, b.upper)
        && eq(a.confidence, b.confidence)
        && a.direction == b.direction
        && a.warming_up == b.warming_up
        && a.signal == b.signal
        && a.watched_ms == b.watched_ms
        && a.period_ms == b.period_ms
}

/// The paths of the null values in a JSON text (a non-finite f64 or a `None`).
fn null_fields(text: &str) -> Vec<String> {
    fn walk(path: String, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Null => out.push(path),
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    walk(format!("{path}.{k}"), x, out);
                }
            }
            serde_json::Value::Array(a) => {
                for (k, x) in a.iter().enumerate() {
                    walk(format!("{path}[{k}]"), x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str(text) {
        walk(String::new(), &v, &mut out);
    }
    out
}

/// A checkpoint as JSON *text* at a random midpoint (a series holding every kind of anomaly)
/// continues exactly as the uninterrupted run.
#[test]
fn checkpoint_mid_series_continues_bit_for_bit() {
    // All six kinds in one series: 12 hours of each from its onset, moved to days 4 to 9.
    let base = clean(5, 1.0);
    let mut v = base.clone();
    for (k, kind) in Kind::ALL.iter().enumerate() {
        let (with, onset) = kind.series(5);
        let back = (ONSET_DAY - 4 - k) * DAY;
        for i in onset..onset + DAY / 2 {
            v[i - back] += with[i] - base[i];
        }
    }
    let t = times(v.len());
    let mut rng = Rng::new(2024);
    for &name in DETECTORS {
        let whole = run(&mut build(name), &t, &v);
        for _ in 0..4 {
            let cut = 1 + (rng.next_u64() % (N as u64 - 2)) as usize;
            let mut d = build(name);
            let mut first = run(&mut d, &t[..cut], &v[..cut]);
            // JSON text, as the engine's checkpoints are written (`serde_json::to_vec`).
            let text = serde_json::to_string(&d).unwrap();
            let mut restored: AnyDetector = serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!(
                    "{name}: the checkpoint at point {cut} does not restore from JSON text: {e} \
                     (a non-finite f64 in the state is written as null; fields that are null: \
                     {})",
                    null_fields(&text).join(", ")
                )
            });
            assert_eq!(
                restored, d,
                "{name}, cut {cut}: state differs after the round trip"
            );
            first.extend(run(&mut restored, &t[cut..], &v[cut..]));
            for (i, (a, b)) in whole.iter().zip(&first).enumerate() {
                assert!(
                    same(a, b),
                    "{name}, checkpoint at {cut}: verdict {i} differs: {a:?} vs {b:?}"
                );
            }
        }
    }
}
