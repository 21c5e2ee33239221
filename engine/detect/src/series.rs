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

/// A detector's judgement of one point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
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
    /// allowed; `value` may be NaN or infinite, which the detector MUST treat as missing (verdict
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
