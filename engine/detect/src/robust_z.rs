//! `robust_z`: the robust z-score of each point against the rolling median and MAD of the
//! previous `window` points.
//!
//! `z = (x − median) / (1.4826 · MAD)`; the score is the two-sided Student-t tail surprise of
//! `z` with 37% of the window as degrees of freedom (the MAD's efficiency; see
//! [`crate::calibrate`]): with the default window, score 0.5 at |z| ≈ 5, 1.0 at |z| ≈ 8. Median and MAD ignore
//! up to half the window being outliers, so a spike does not mask the next one, and a level shift
//! is adopted once it fills half the window. No seasonality model: use `seasonal` or `ensemble`
//! for seasonal series.
//!
//! Memory per series: `16 · window + ~120` bytes (about 2.1 KiB at the default window of 128).

use crate::calibrate::{score_of_surprise, student_surprise};
use crate::registry::DetectorError;
use crate::series::{Detector, Verdict};
use crate::stats::{Input, Prepared, RollingWindow};
use serde::{Deserialize, Serialize};

/// Parameters of [`RobustZ`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RobustZConfig {
    /// Points in the rolling window, 8..=4096. Default 128.
    pub window: usize,
    /// Points seen before the first score, 4..=window. Default 32. Also after a gap.
    pub warmup: usize,
    /// Half-width of the reported band in robust standard deviations, > 0. Default 3.5.
    pub band: f64,
    /// A point more than `gap_factor` typical intervals after the previous one follows a gap:
    /// the window is cleared and the detector warms up again (no false alarm after an outage).
    /// > 1. Default 10.
    pub gap_factor: f64,
    /// The series is a monotonic counter: judge its rate per second, resets tolerated.
    /// Default false.
    pub counter: bool,
}

impl Default for RobustZConfig {
    fn default() -> Self {
        Self {
            window: 128,
            warmup: 32,
            band: 3.5,
            gap_factor: 10.0,
            counter: false,
        }
    }
}

impl RobustZConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let err = |reason: String| {
            Err(DetectorError::Parameter {
                detector: "robust_z",
                reason,
            })
        };
        if !(8..=4096).contains(&self.window) {
            return err(format!("window must be in 8..=4096, got {}", self.window));
        }
        if !(4..=self.window).contains(&self.warmup) {
            return err(format!(
                "warmup must be in 4..=window ({}), got {}",
                self.window, self.warmup
            ));
        }
        if !(self.band > 0.0 && self.band.is_finite()) {
            return err(format!("band must be > 0, got {}", self.band));
        }
        if self.gap_factor.is_nan() || self.gap_factor <= 1.0 {
            return err(format!("gap_factor must be > 1, got {}", self.gap_factor));
        }
        Ok(())
    }
}

/// The robust z-score detector; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustZ {
    config: RobustZConfig,
    input: Input,
    core: RobustZCore,
}

impl RobustZ {
    /// A fresh detector.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn new(config: RobustZConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        Ok(Self {
            input: Input::new(config.counter),
            core: RobustZCore::new(config.window),
            config,
        })
    }
}

/// The robust z-score of a value against a rolling window, shared with the ensemble (which runs
/// it on the residuals of its seasonal baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustZCore {
    window: RollingWindow,
}

/// What [`RobustZCore::judge`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustJudgement {
    /// The rolling median.
    pub median: f64,
    /// The robust standard deviation (floored above zero).
    pub sigma: f64,
    /// The robust z-score of the value.
    pub z: f64,
    /// Effective degrees of freedom of `sigma`: 37% of the points (the efficiency of the MAD).
    pub dof: f64,
}

impl RobustZCore {
    /// An empty window of `window` points.
    pub fn new(window: usize) -> Self {
        Self {
            window: RollingWindow::new(window),
        }
    }

    /// Points held.
    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// True when no point is held.
    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    /// Forgets the window.
    pub fn clear(&mut self) {
        self.window.clear();
    }

    /// Judges `x` against the window (before adding it); None when the window is empty.
    pub fn judge(&self, x: f64) -> Option<RobustJudgement> {
        if self.window.is_empty() {
            return None;
        }
        let median = self.window.median();
        // A constant window has no spread: floor the scale at a relative epsilon so a change
        // from a constant is a (finite) large z rather than a division by zero.
        let sigma = self
            .window
            .robust_sigma()
            .max(1e-9 * median.abs().max(1e-3));
        Some(RobustJudgement {
            median,
            sigma,
            z: (x - median) / sigma,
            dof: 0.37 * self.window.len() as f64,
        })
    }

    /// Adds `x` to the window.
    pub fn push(&mut self, x: f64) {
        self.window.push(x);
    }
}

impl Detector for RobustZ {
    fn observe(&mut self, time_ms: i64, value: f64) -> Verdict {
        let warming = self.core.len() < self.config.warmup;
        let (x, gap) = match self.input.step(time_ms, value, self.config.gap_factor) {
            Prepared::Skip => return Verdict::missing(warming),
            Prepared::Value { value, gap } => (value, gap),
        };
        if gap {
            self.core.clear();
        }
        let verdict = if self.core.len() < self.config.warmup {
            Verdict::warming(self.core.judge(x).map_or(x, |j| j.median))
        } else {
            match self.core.judge(x) {
                Some(j) => Verdict::judged(
                    x,
                    j.median,
                    j.median - self.config.band * j.sigma,
                    j.median + self.config.band * j.sigma,
                    score_of_surprise(student_surprise(j.z, j.dof)),
                ),
                None => Verdict::warming(x),
            }
        };
        self.core.push(x);
        verdict
    }
}
