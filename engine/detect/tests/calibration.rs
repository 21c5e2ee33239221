//! Calibration of the forecaster's prediction interval (issue 22): walking forward through a
//! series, the interval forecast `h` ahead at each origin must contain the value observed `h`
//! later as often as it claims (80% or 95%, within ±3 points), on synthetic seasonal series
//! (Gaussian and heavy-tailed noise, several seeds) and on the NAB dev series; and the
//! uncertainty of `eta` must bracket the true crossing of a noisy ramp.
//!
//! `cargo test --release -p aiops-detect --test calibration -- --ignored --nocapture` prints
//! the coverage table of docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use aiops_detect::Direction;
use aiops_detect::forecast::{ForecastConfig, Forecaster};
use std::path::PathBuf;

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
/// 5 minutes.
const STEP: i64 = 300_000;
const HOUR: i64 = 3_600_000;
/// Points per day at 5-minute steps.
const DAY: usize = 288;
/// Allowed distance between measured and nominal coverage.
const TOLERANCE: f64 = 0.03;

use common::Rng;

impl Rng {
    /// Student-t with 3 degrees of freedom scaled to unit variance (heavy tails: kurtosis ∞).
    fn student3(&mut self) -> f64 {
        let z = self.normal();
        let chi2: f64 = (0..3).map(|_| self.normal().powi(2)).sum();
        z / (chi2 / 3.0).sqrt() / 3.0_f64.sqrt()
    }
}

/// Noise of a synthetic series.
#[derive(Clone, Copy, Debug)]
enum Noise {
    Gaussian,
    HeavyTailed,
}

/// A synthetic series: 14 days at 5-minute steps, a daily sine of amplitude 10, a slow trend,
/// noise of scale 1.
fn synthetic(seed: u64, noise: Noise) -> (Vec<i64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let n = 14 * DAY;
    let times = (0..n).map(|i| T0 + i as i64 * STEP).collect();
    let values = (0..n)
        .map(|i| {
            let phase = (i % DAY) as f64 / DAY as f64 * 2.0 * std::f64::consts::PI;
            let e = match noise {
                Noise::Gaussian => rng.normal(),
                Noise::HeavyTailed => rng.student3(),
            };
            50.0 + 0.002 * i as f64 + 10.0 * phase.sin() + e
        })
        .collect();
    (times, values)
}

/// How far ahead an origin's target lies.
#[derive(Clone, Copy, Debug)]
enum Ahead {
    /// The next point, whatever its time.
    Steps(usize),
    /// The first point at least this many ms after the origin (skipped when the next point
    /// after that time is more than twice as far: a gap).
    Ms(i64),
}

/// Covered and scored forecasts.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    covered: u64,
    total: u64,
    /// Sum of the intervals' half-widths.
    half_widths: f64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.covered += other.covered;
        self.total += other.total;
        self.half_widths += other.half_widths;
    }
    fn fraction(&self) -> f64 {
        self.covered as f64 / self.total.max(1) as f64
    }
}

/// Walks forward through a series: after each point from `warm` on, forecasts each target of
/// `aheads` and counts whether its value falls in the interval. Returns one tally per `ahead`.
fn walk_forward(
    coverage: f64,
    times: &[i64],
    values: &[f64],
    warm: usize,
    aheads: &[Ahead],
) -> Vec<Tally> {
    let mut f = Forecaster::new(ForecastConfig {
        coverage,
        ..ForecastConfig::default()
    })
    .unwrap();
    let mut tallies = vec![Tally::default(); aheads.len()];
    for i in 0..times.len() {
        f.observe(times[i], values[i]);
        if i < warm {
            continue;
        }
        for (a, tally) in aheads.iter().zip(&mut tallies) {
            let target = match *a {
                Ahead::Steps(k) => Some(i + k),
                Ahead::Ms(ms) => {
                    let j = i + times[i..].partition_point(|&t| t < times[i] + ms);
                    (j < times.len() && times[j] - times[i] <= 2 * ms).then_some(j)
                }
            };
            let Some(j) = target.filter(|&j| j < times.len()) else {
                continue;
            };
            let Some(p) = f.forecast(times[j] - times[i]) else {
                continue;
            };
            tally.total += 1;
            tally.half_widths += (p.upper - p.lower) / 2.0;
            if p.lower <= values[j] && values[j] <= p.upper {
                tally.covered += 1;
            }
        }
    }
    tallies
}

/// Horizons scored on the synthetic series: 5 minutes, 1 hour, 6 hours, 1 day.
const SYNTHETIC_AHEADS: [Ahead; 4] = [
    Ahead::Steps(1),
    Ahead::Steps(12),
    Ahead::Steps(72),
    Ahead::Steps(288),
];

/// Coverage on the synthetic series of `noise`, seeds 1..=5 combined, per horizon of
/// [`SYNTHETIC_AHEADS`]; the first 3 days are warm-up.
fn synthetic_coverage(coverage: f64, noise: Noise) -> Vec<Tally> {
    let mut total = vec![Tally::default(); SYNTHETIC_AHEADS.len()];
    for seed in 1..=5 {
        let (t, v) = synthetic(seed, noise);
        for (sum, one) in
            total
                .iter_mut()
                .zip(walk_forward(coverage, &t, &v, 4 * DAY, &SYNTHETIC_AHEADS))
        {
            sum.add(one);
        }
    }
    total
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS` as ms since the epoch (UTC).
fn parse_time(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    Some(((days * 24 + num(11..13)?) * 60 + num(14..16)?) * 60_000 + num(17..19)? * 1000)
}

/// The NAB dev data directory (`/work/shared/data/nab/data` in the project's layout).
fn nab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab/data")
}

/// Every NAB dev series (all CSVs under the data directory), sorted by path.
fn nab_series() -> Vec<(String, Vec<i64>, Vec<f64>)> {
    let dir = nab_dir();
    assert!(
        dir.is_dir(),
        "the NAB dev data is missing: expected CSVs under {} (see docs/benchmarks.md)",
        dir.display()
    );
    let mut paths = Vec::new();
    for category in std::fs::read_dir(&dir).unwrap() {
        let category = category.unwrap().path();
        if category.is_dir() {
            for file in std::fs::read_dir(&category).unwrap() {
                let file = file.unwrap().path();
                if file.extension().is_some_and(|e| e == "csv") {
                    paths.push(file);
                }
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let (mut times, mut values) = (Vec::new(), Vec::new());
            for line in text.lines().skip(1) {
                let (t, v) = line.split_once(',').expect("timestamp,value");
                times
                    .push(parse_time(t).unwrap_or_else(|| panic!("{}: bad time {t}", p.display())));
                values.push(v.trim().parse::<f64>().unwrap());
            }
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, times, values)
        })
        .collect()
}

/// Horizons scored on NAB: the next point and about an hour ahead.
const NAB_AHEADS: [Ahead; 2] = [Ahead::Steps(1), Ahead::Ms(HOUR)];

/// Coverage over all NAB dev series combined, per horizon of [`NAB_AHEADS`], skipping the first
/// 20% of each series as warm-up (half-widths in units of each series' standard deviation);
/// also the number of series.
fn nab_coverage(coverage: f64) -> (Vec<Tally>, usize) {
    let series = nab_series();
    let mut total = vec![Tally::default(); NAB_AHEADS.len()];
    for (_, t, v) in &series {
        // Half-widths in units of the series' standard deviation (the series' scales differ).
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        let tallies = walk_forward(coverage, t, v, t.len() / 5, &NAB_AHEADS);
        for (sum, mut one) in total.iter_mut().zip(tallies) {
            one.half_widths /= var.sqrt().max(f64::MIN_POSITIVE);
            sum.add(one);
        }
    }
    (total, series.len())
}

fn assert_calibrated(what: &str, nominal: f64, tallies: &[Tally], aheads: &[Ahead]) {
    for (tally, ahead) in tallies.iter().zip(aheads) {
        let got = tally.fraction();
        eprintln!(
            "{what} {ahead:?}: {:.1}% covered (nominal {:.0}%, n = {})",
            100.0 * got,
            100.0 * nominal,
            tally.total
        );
        assert!(
            tally.total > 1000,
            "{what} {ahead:?}: only {} forecasts",
            tally.total
        );
        assert!(
            (got - nominal).abs() <= TOLERANCE,
            "{what} {ahead:?}: coverage {:.1}% vs nominal {:.0}%",
            100.0 * got,
            100.0 * nominal
        );
    }
}

#[test]
fn synthetic_gaussian_coverage_matches_nominal() {
    for nominal in [0.8, 0.95] {
        let t = synthetic_coverage(nominal, Noise::Gaussian);
        assert_calibrated("synthetic gaussian", nominal, &t, &SYNTHETIC_AHEADS);
    }
}

#[test]
fn synthetic_heavy_tailed_coverage_matches_nominal() {
    for nominal in [0.8, 0.95] {
        let t = synthetic_coverage(nominal, Noise::HeavyTailed);
        assert_calibrated("synthetic student-t(3)", nominal, &t, &SYNTHETIC_AHEADS);
    }
}

#[test]
fn nab_dev_coverage_matches_nominal() {
    for nominal in [0.8, 0.95] {
        let (t, n) = nab_coverage(nominal);
        assert_eq!(
            n,
            31,
            "the NAB dev set has 31 series under {}",
            nab_dir().display()
        );
        assert_calibrated("NAB dev", nominal, &t, &NAB_AHEADS);
    }
}

/// Prints the coverage table of docs/benchmarks.md ("Forecast calibration").
#[test]
#[ignore = "prints the table of docs/benchmarks.md; run with --ignored --nocapture"]
fn print_coverage_table() {
    let pct = |t: &Tally| format!("{:.1}%", 100.0 * t.fraction());
    let half = |t: &Tally| format!("{:.2}", t.half_widths / t.total.max(1) as f64);
    println!(
        "| data | horizon | 80% interval | 95% interval | 95% half-width (NAB: in σ of the series) |"
    );
    println!("|---|---|---|---|---|");
    for (name, noise) in [
        ("synthetic, Gaussian noise", Noise::Gaussian),
        ("synthetic, Student-t(3) noise", Noise::HeavyTailed),
    ] {
        let (a, b) = (
            synthetic_coverage(0.8, noise),
            synthetic_coverage(0.95, noise),
        );
        for (k, label) in ["5 min", "1 h", "6 h", "1 day"].iter().enumerate() {
            println!(
                "| {name} | {label} | {} | {} | {} |",
                pct(&a[k]),
                pct(&b[k]),
                half(&b[k])
            );
        }
    }
    let ((a, n), (b, _)) = (nab_coverage(0.8), nab_coverage(0.95));
    for (k, label) in ["next point", "~1 h"].iter().enumerate() {
        println!(
            "| NAB dev ({n} series) | {label} | {} | {} | {} |",
            pct(&a[k]),
            pct(&b[k]),
            half(&b[k])
        );
    }
}

/// A disk filling at 0.5% an hour with noise σ 1, two days at 5-minute steps.
fn filling_disk(seed: u64) -> (Forecaster, i64) {
    let mut rng = Rng::new(seed);
    let mut f = Forecaster::new(ForecastConfig::default()).unwrap();
    let n = 2 * DAY;
    for i in 0..n {
        let hours = i as f64 * STEP as f64 / HOUR as f64;
        f.observe(T0 + i as i64 * STEP, 20.0 + 0.5 * hours + rng.normal());
    }
    let now_hours = (n - 1) as f64 * STEP as f64 / HOUR as f64;
    // When the noise-free ramp reaches 90.
    let truth = ((90.0 - (20.0 + 0.5 * now_hours)) / 0.5 * HOUR as f64) as i64;
    (f, truth)
}

#[test]
fn eta_brackets_the_true_crossing() {
    let seeds = 1..=20;
    let mut bracketed = 0;
    for seed in seeds.clone() {
        let (f, truth) = filling_disk(seed);
        let eta = f.eta(90.0, Direction::Up).expect("a crossing");
        let latest = eta.latest_ms.expect("the far edge crosses within 7 days");
        assert_eq!(Some(eta.ms), f.time_until(90.0, Direction::Up));
        assert!(eta.earliest_ms < eta.ms && eta.ms < latest, "{eta:?}");
        // The edges are at the threshold when they cross.
        let (near, far) = (
            f.forecast(eta.earliest_ms).unwrap(),
            f.forecast(latest).unwrap(),
        );
        let tolerance = 0.01 * (near.upper - near.point);
        assert!(
            (near.upper - 90.0).abs() < tolerance,
            "seed {seed}: {eta:?} {near:?}"
        );
        assert!(
            (far.lower - 90.0).abs() < tolerance,
            "seed {seed}: {eta:?} {far:?}"
        );
        if eta.earliest_ms <= truth && truth <= latest {
            bracketed += 1;
        }
    }
    eprintln!("eta: the true crossing within [earliest, latest] for {bracketed} of 20 seeds");
    assert!(bracketed >= 18, "{bracketed} of 20");
}

#[test]
fn eta_edges_and_horizon() {
    let (f, _) = filling_disk(7);
    let eta = f.eta(90.0, Direction::Up).unwrap();
    let latest = eta.latest_ms.unwrap();
    // A horizon between the point's crossing and the far edge's: no latest, the rest unchanged.
    let short = f
        .eta_within(90.0, Direction::Up, (eta.ms + latest) / 2)
        .unwrap();
    // (The step grid depends on the horizon: the same times to a second.)
    assert!((short.ms - eta.ms).abs() < 1000, "{short:?} vs {eta:?}");
    assert!(
        (short.earliest_ms - eta.earliest_ms).abs() < 1000,
        "{short:?} vs {eta:?}"
    );
    assert_eq!(short.latest_ms, None);
    // Not reached by the point forecast within the horizon: None, as time_until.
    assert_eq!(f.eta_within(90.0, Direction::Up, eta.ms / 2), None);
    assert_eq!(f.eta(10.0, Direction::Down), None);
    // Just past: the point and the near edge at 0, the far (lower) edge still below.
    let now = f.forecast(0).unwrap();
    let past = f.eta(now.point - 0.1, Direction::Up).unwrap();
    assert_eq!((past.ms, past.earliest_ms), (0, 0));
    assert!(
        past.latest_ms.unwrap() > 0,
        "{past:?}: the lower edge is still below"
    );
    // Falling: the near edge is the lower one.
    let down = f.eta(now.point + 0.1, Direction::Down).unwrap();
    assert_eq!(down.ms, 0);
    // Direction None takes the side of the threshold, as time_until.
    assert_eq!(f.eta(90.0, Direction::None), Some(eta));
}

/// Bytes of state per series after a long run (printed with the coverage table).
#[test]
#[ignore = "prints the state size of docs/benchmarks.md; run with --ignored --nocapture"]
fn print_bytes_per_series() {
    let (t, v) = synthetic(1, Noise::Gaussian);
    let mut f = Forecaster::new(ForecastConfig::default()).unwrap();
    for (&t, &v) in t.iter().zip(&v) {
        f.observe(t, v);
    }
    println!("synthetic, 14 days at 5 min: {} bytes", f.bytes());
    let most = nab_series()
        .iter()
        .map(|(name, t, v)| {
            let mut f = Forecaster::new(ForecastConfig::default()).unwrap();
            for (&t, &v) in t.iter().zip(v) {
                f.observe(t, v);
            }
            (f.bytes(), name.clone())
        })
        .max();
    println!("NAB dev, largest: {most:?}");
}

#[test]
fn calibrated_state_round_trips() {
    let (t, v) = synthetic(3, Noise::HeavyTailed);
    let mut f = Forecaster::new(ForecastConfig::default()).unwrap();
    let half = t.len() / 2;
    for i in 0..half {
        f.observe(t[i], v[i]);
    }
    let json = serde_json::to_value(&f).unwrap();
    let mut g: Forecaster = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(f, g);
    // Both continue bit for bit alike (waiting forecasts included).
    for i in half..t.len() {
        f.observe(t[i], v[i]);
        g.observe(t[i], v[i]);
    }
    assert_eq!(f, g);
    assert_eq!(f.forecast(6 * HOUR), g.forecast(6 * HOUR));
    // A checkpoint from before calibration (no `horizons`) loads and forecasts.
    let mut old = json;
    old.as_object_mut().unwrap().remove("horizons");
    let h: Forecaster = serde_json::from_value(old).unwrap();
    assert!(h.forecast(HOUR).is_some());
}
