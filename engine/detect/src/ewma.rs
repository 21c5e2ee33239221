//! `ewma`: exponentially weighted mean and variance; the band is `mean ± band · σ`.
//!
//! Each point is judged against the mean and variance of the points before it, then folded in
//! with weight `alpha` (per point, not per unit of time: irregular intervals weigh the same,
//! long gaps reset). The point folded in is first winsorized at `clip` standard deviations, so a
//! single spike moves the mean by at most `alpha · clip · σ` and does not blow up the variance,
//! while a lasting level shift is still adopted within a few `1/alpha` points. The score is the
//! two-sided Student-t tail surprise of `z = (x − mean) / σ` with `(2 − alpha)/alpha` degrees of
//! freedom (σ is estimated from that many effective points; see [`crate::calibrate`]).
//!
//! Memory per series: about 120 bytes.

use crate::calibrate::{score_of_surprise, student_surprise};
use crate::registry::DetectorError;
use crate::series::{Detector, Verdict};
use crate::stats::{Input, Prepared};
use serde::{Deserialize, Serialize};

/// Parameters of [`Ewma`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwmaConfig {
    /// Weight of a new point in the mean and variance, in (0, 0.5]. Default 0.05 (a memory of
    /// about 20 points; the first `1/alpha` points are averaged with equal weights).
    pub alpha: f64,
    /// Half-width of the reported band in standard deviations, > 0. Default 3.5.
    pub band: f64,
    /// Points seen before the first score, >= 3. Default 30. Also after a gap.
    pub warmup: usize,
    /// Winsorizing limit of the update, in standard deviations, > 1. Default 4.
    pub clip: f64,
    /// A point more than `gap_factor` typical intervals after the previous one follows a gap:
    /// the state is reset and the detector warms up again. > 1. Default 10.
    pub gap_factor: f64,
    /// The series is a monotonic counter: judge its rate per second, resets tolerated.
    /// Default false.
    pub counter: bool,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            band: 3.5,
            warmup: 30,
            clip: 4.0,
            gap_factor: 10.0,
            counter: false,
        }
    }
}

impl EwmaConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let err = |reason: String| {
            Err(DetectorError::Parameter {
                detector: "ewma",
                reason,
            })
        };
        if !(self.alpha > 0.0 && self.alpha <= 0.5) {
            return err(format!("alpha must be in (0, 0.5], got {}", self.alpha));
        }
        if !(self.band > 0.0 && self.band.is_finite()) {
            return err(format!("band must be > 0, got {}", self.band));
        }
        if self.warmup < 3 {
            return err(format!("warmup must be >= 3, got {}", self.warmup));
        }
        if self.clip.is_nan() || self.clip <= 1.0 {
            return err(format!("clip must be > 1, got {}", self.clip));
        }
        if self.gap_factor.is_nan() || self.gap_factor <= 1.0 {
            return err(format!("gap_factor must be > 1, got {}", self.gap_factor));
        }
        Ok(())
    }
}

/// Exponentially weighted mean and variance with a winsorized update; shared with the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct EwmaCore {
    /// Points folded in since the last reset.
    pub n: u64,
    /// The weighted mean.
    pub mean: f64,
    /// The weighted variance.
    pub var: f64,
}

impl EwmaCore {
    /// The standard deviation, floored at a relative epsilon of the mean.
    pub fn sigma(&self) -> f64 {
        self.var.sqrt().max(1e-9 * self.mean.abs().max(1e-3))
    }

    /// The standard score of `x` (0 before any point).
    pub fn z(&self, x: f64) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (x - self.mean) / self.sigma()
        }
    }

    /// Folds `x` in with weight `max(alpha, 1/n)`, winsorized at `clip` standard deviations.
    pub fn update(&mut self, x: f64, alpha: f64, clip: f64) {
        self.n += 1;
        if self.n == 1 {
            self.mean = x;
            self.var = 0.0;
            return;
        }
        let a = alpha.max(1.0 / self.n as f64);
        let x = if self.n > 3 && self.var > 0.0 {
            let s = self.var.sqrt() * clip;
            x.clamp(self.mean - s, self.mean + s)
        } else {
            x
        };
        let d = x - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Effective number of points behind the variance estimate with weight `alpha`.
    pub fn dof(&self, alpha: f64) -> f64 {
        (self.n as f64).min((2.0 - alpha) / alpha)
    }
}

/// The EWMA detector; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    config: EwmaConfig,
    input: Input,
    core: EwmaCore,
}

impl Ewma {
    /// A fresh detector.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn new(config: EwmaConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        Ok(Self {
            input: Input::new(config.counter),
            core: EwmaCore::default(),
            config,
        })
    }
}

impl Detector for Ewma {
    fn observe(&mut self, time_ms: i64, value: f64) -> Verdict {
        let warming = self.core.n < self.config.warmup as u64;
        let (x, gap) = match self.input.step(time_ms, value, self.config.gap_factor) {
            Prepared::Skip => return Verdict::missing(warming),
            Prepared::Value { value, gap } => (value, gap),
        };
        if gap {
            self.core.clear();
        }
        let verdict = if self.core.n < self.config.warmup as u64 {
            Verdict::warming(if self.core.n == 0 { x } else { self.core.mean })
        } else {
            let s = self.core.sigma();
            let m = self.core.mean;
            Verdict::judged(
                x,
                m,
                m - self.config.band * s,
                m + self.config.band * s,
                score_of_surprise(student_surprise(
                    self.core.z(x),
                    self.core.dof(self.config.alpha),
                )),
            )
        };
        self.core.update(x, self.config.alpha, self.config.clip);
        verdict
    }
}
