//! The contract of a per-series anomaly detector: points in event-time order in, one
//! [`Verdict`] per point out.

use serde::{Deserialize, Serialize};

/// Which way a point departs from what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Within the band, or not yet known (warm-up).
    #[default]
    None,
    /// Above the expected band.
    Up,
    /// Below the expected band.
    Down,
}

impl Direction {
    /// The name used in anomaly events (`up`, `down`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::None => "none",
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// Which of a detector's statistics made a point unusual: the first part of an anomaly's
/// explanation (the others are the band, the direction, [`Verdict::period_ms`] and
/// [`Verdict::watched_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Nothing fired (ordinary point, warm-up or missing value).
    #[default]
    None,
    /// The value is far from the expected one (a point outside the band).
    Value,
    /// The value is far from what this phase of the series' period usually holds (a normal
    /// value at an abnormal time of day/week).
    Seasonal,
    /// A sustained moderate deviation: many points a little off (level shift, variance change).
    Persistence,
    /// A run of errors of one sign: the level or the trend moved.
    Drift,
    /// A change point declared by CUSUM (level or variance).
    Change,
    /// A sequence of values (the recent shape) never or rarely seen before on this series.
    Context,
    /// The value is outside every value seen so far on this series (a new extreme).
    Range,
}

impl Signal {
    /// The name used in anomaly events (`value`, `seasonal`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::None => "none",
            Signal::Value => "value",
            Signal::Seasonal => "seasonal",
            Signal::Persistence => "persistence",
            Signal::Drift => "drift",
            Signal::Change => "change",
            Signal::Context => "context",
            Signal::Range => "range",
        }
    }

    /// One sentence (English) saying what made the point unusual, for anomaly events and
    /// root-cause evidence.
    pub fn describe(self) -> &'static str {
        match self {
            Signal::None => "nothing unusual",
            Signal::Value => "the value is far outside the expected band",
            Signal::Seasonal => "the value is unusual for this phase of the series' cycle",
            Signal::Persistence => "many recent points are moderately off (a sustained deviation)",
            Signal::Drift => "recent errors all point one way (the level or trend moved)",
            Signal::Change => "a change point in level or variance",
            Signal::Context => "this sequence of values has rarely or never been seen before",
            Signal::Range => "the value is beyond every value seen on this series",
        }
    }
}

/// A detector's judgement of one point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Verdict {
    /// Anomaly score in `[0, 1]`: 0 is ordinary, 1 is as anomalous as the detector can say.
    pub score: f64,
    /// The value the detector expected at this time.
    pub expected: f64,
    /// Lower edge of the expected band.
    pub lower: f64,
    /// Upper edge of the expected band.
    pub upper: f64,
    /// Which side of the band the point is on.
    pub direction: Direction,
    /// True while the detector has not seen enough history to judge; `score` is 0 then.
    pub warming_up: bool,
    /// Which statistic fired ([`Signal::None`] when the score is low or the detector does not
    /// say).
    pub signal: Signal,
    /// How much history backs the judgement, in `[0, 1]`: grows from 0 at the end of the warm-up
    /// to 1 once the detector trusts its calibration (`ensemble`: its tail calibration has its
    /// 200 points; `context`: one minus the rate of unseen transitions). 0 also means "not
    /// reported" (`robust_z`, `ewma`, `seasonal`, `cusum`, missing values).
    pub confidence: f64,
    /// Event time the series has been watched (first point to this one), in milliseconds; 0
    /// when the detector does not report it (`robust_z`, `ewma`, `seasonal`, `cusum`).
    pub watched_ms: i64,
    /// The seasonal period the detector uses, in milliseconds; 0 when it found none or has no
    /// seasonal model.
    pub period_ms: i64,
}

impl Verdict {
    /// The verdict on a missing point (NaN or infinite value): score 0, band unknown (NaN).
    pub fn missing(warming_up: bool) -> Self {
        Self {
            score: 0.0,
            expected: f64::NAN,
            lower: f64::NAN,
            upper: f64::NAN,
            direction: Direction::None,
            warming_up,
            ..Self::default()
        }
    }

    /// The verdict during warm-up: score 0, the band collapsed on the current expectation.
    pub fn warming(expected: f64) -> Self {
        Self {
            score: 0.0,
            expected,
            lower: expected,
            upper: expected,
            direction: Direction::None,
            warming_up: true,
            ..Self::default()
        }
    }

    /// The verdict on `value` with the band `[lower, upper]` around `expected` and a score;
    /// the direction says which side of the band the value is on.
    pub fn judged(value: f64, expected: f64, lower: f64, upper: f64, score: f64) -> Self {
        let direction = if value > upper {
            Direction::Up
        } else if value < lower {
            Direction::Down
        } else {
            Direction::None
        };
        Self {
            score: if score.is_nan() {
                0.0
            } else {
                score.clamp(0.0, 1.0)
            },
            expected,
            lower,
            upper,
            direction,
            warming_up: false,
            ..Self::default()
        }
    }
}

/// A per-series anomaly detector.
///
/// Implementations MUST be deterministic (no wall clock, no randomness without a fixed seed, no
/// iteration over hash maps with random state) so that a replay of the same points gives the same
/// verdicts bit for bit, and MUST keep all their state in `self` so that a serialized copy resumes
/// exactly where the original was. Memory per series MUST be bounded (no growth with the number of
/// points seen).
pub trait Detector {
    /// Judges one point. Points arrive in non-decreasing `time_ms`; a point with a time equal to
    /// the previous one is a new point. Gaps (a missing interval) and irregular intervals are
    /// allowed; `value` may be NaN, infinite or beyond ±[`crate::stats::MAX_MAGNITUDE`], which
    /// the detector MUST treat as missing (verdict
    /// with score 0, state unchanged).
    fn observe(&mut self, time_ms: i64, value: f64) -> Verdict;

    /// Judges a run of points of one series; `out` receives one verdict per point.
    fn observe_batch(&mut self, times_ms: &[i64], values: &[f64], out: &mut Vec<Verdict>) {
        out.reserve(times_ms.len());
        for (&t, &v) in times_ms.iter().zip(values) {
            out.push(self.observe(t, v));
        }
    }
}
