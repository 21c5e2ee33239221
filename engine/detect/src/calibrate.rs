//! Calibration: every detector's raw statistic becomes a *surprise* `-log10 p`, where `p` is the
//! tail probability of a value at least as extreme under the detector's null model, and the
//! surprise becomes the score `min(1, surprise / FULL_SURPRISE)`.
//!
//! With [`FULL_SURPRISE`] = 10, a score of 0.5 means a one-in-100,000 event under the null
//! model and 1.0 a one-in-10^10 event, whatever the detector. That common scale is what lets the
//! ensemble compare and combine detectors (the same convention as the log anomaly likelihood of
//! Numenta's HTM detector).

use serde::{Deserialize, Serialize};

/// The surprise (`-log10 p`) that maps to score 1.
pub const FULL_SURPRISE: f64 = 10.0;

/// The score of a surprise: `clamp(surprise / FULL_SURPRISE, 0, 1)`.
pub fn score_of_surprise(surprise: f64) -> f64 {
    if surprise.is_nan() {
        return 0.0;
    }
    (surprise / FULL_SURPRISE).clamp(0.0, 1.0)
}

/// The surprise that maps to `score` (inverse of [`score_of_surprise`] on `[0, 1]`).
pub fn surprise_of_score(score: f64) -> f64 {
    score.clamp(0.0, 1.0) * FULL_SURPRISE
}

/// `ln erfc(x)` for `x >= 0`, accurate to about 1e-7 relative in `erfc` and without underflow
/// for large `x` (Chebyshev fit of Numerical Recipes' `erfcc`, kept in log space).
pub fn ln_erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t.ln() - z * z + poly
}

/// The surprise of a standard score `z` under a Gaussian null, two-sided:
/// `-log10 P(|Z| >= |z|)`.
pub fn gaussian_surprise(z: f64) -> f64 {
    if !z.is_finite() {
        return if z.is_nan() { 0.0 } else { f64::INFINITY };
    }
    let ln_p = ln_erfc(z.abs() / std::f64::consts::SQRT_2);
    (-ln_p / std::f64::consts::LN_10).max(0.0)
}

/// The surprise of a standardized value `t` whose scale was *estimated* from about `nu`
/// effective points: two-sided Student-t tail with `nu` degrees of freedom, through Wallace's
/// normalizing transform `z = (8ν + 1)/(8ν + 3) · sqrt(ν · ln(1 + t²/ν))` (accurate to a few
/// percent in the surprise for ν ≥ 3). Scale estimates from few points make large `t` common;
/// this keeps a detector with a short memory from crying wolf.
pub fn student_surprise(t: f64, nu: f64) -> f64 {
    if !t.is_finite() {
        return gaussian_surprise(t);
    }
    let nu = nu.max(3.0);
    let z = (8.0 * nu + 1.0) / (8.0 * nu + 3.0) * (nu * (t * t / nu).ln_1p()).sqrt();
    gaussian_surprise(z)
}

/// The surprise of a likelihood-ratio CUSUM statistic `s`: under the null model the statistic
/// ever reaching `s` has probability at most `exp(-s)` (Wald's inequality for the likelihood
/// ratio martingale), so the surprise is `s / ln 10`.
pub fn cusum_surprise(s: f64) -> f64 {
    (s / std::f64::consts::LN_10).max(0.0)
}

/// The standard score that has the given two-sided Gaussian surprise (bisection; for bands).
pub fn z_of_gaussian_surprise(surprise: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 40.0_f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if gaussian_surprise(mid) < surprise {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Width of a histogram bin of [`TailCalibrator`], in surprise units.
const BIN: f64 = 0.5;
/// Bins of [`TailCalibrator`]: surprises 0..32 (the last bin takes everything above; surprises
/// are clamped at 32 before calibrating).
const BINS: usize = 64;

/// Recalibrates a member's nominal surprise against that member's own history on this series.
///
/// A nominal surprise assumes a null model (Gaussian errors, say); real series have heavier
/// tails, and a z-score of 6 may happen every day. The calibrator keeps an exponentially decayed
/// histogram of the nominal surprises seen (memory of `1/decay` points) and models their upper
/// tail by peaks over threshold with an exponential tail (a generalized Pareto of shape 0, as in
/// SPOT): above the `(1 − q)` quantile `x_q`, `P(X > x) = q · exp(−(x − x_q) / β)` with `β` the
/// mean excess over `x_q`. For a well-calibrated member `P(X > x) = 10^−x`, so `β = 1/ln 10` and
/// the calibrated surprise equals the nominal one; a heavier tail gives a larger `β` and a
/// smaller calibrated surprise. The calibrated surprise is never above the nominal one (a lighter
/// tail than nominal is not trusted: that is how clean synthetic series would false-alarm on
/// rounding noise). Until `min_mass` points were seen, the nominal surprise passes unchanged.
///
/// The tail is refitted every 32 points (two passes over 64 bins), so a point costs O(1) on
/// average. Memory: 256 bytes + a few fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailCalibrator {
    /// Decayed counts per bin, in units of `weight` (lazy decay: new points weigh more).
    bins: Vec<f32>,
    total: f64,
    /// The weight of the next point; grows by `1 / (1 − decay)` per point.
    weight: f64,
    /// Points seen (saturating).
    n: u32,
    /// The fitted tail: the `(1 − q)` quantile and the mean excess above it.
    xq: f64,
    beta: f64,
    /// Cached at each refit (the hot path does no logarithm or division): the body's surprise
    /// `−log10 q` and `1 / (β ln 10)`.
    #[serde(default)]
    body: f64,
    #[serde(default)]
    inv_scale: f64,
    /// Cached `1 / (1 − decay)`, the growth of the next point's weight (0: not yet computed).
    #[serde(default)]
    grow: f64,
}

/// The tail is refitted every this many points (so a point costs O(1)).
const REFIT: u32 = 32;

/// Parameters of the tail model of [`TailCalibrator`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailParams {
    /// Tail fraction `q` above which the exponential tail is fitted, in (0, 0.5). Default 0.01.
    pub q: f64,
    /// Forgetting per point, in (0, 0.1]. Default 1/2000.
    pub decay: f64,
    /// Points before the calibration applies, >= 10. Default 200.
    pub min_mass: u32,
}

impl Default for TailParams {
    fn default() -> Self {
        Self {
            q: 0.01,
            decay: 1.0 / 2000.0,
            min_mass: 200,
        }
    }
}

impl TailParams {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`crate::DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self, detector: &'static str) -> Result<(), crate::DetectorError> {
        let err = |reason: String| Err(crate::DetectorError::Parameter { detector, reason });
        if !(self.q > 0.0 && self.q < 0.5) {
            return err(format!("tail.q must be in (0, 0.5), got {}", self.q));
        }
        if !(self.decay > 0.0 && self.decay <= 0.1) {
            return err(format!(
                "tail.decay must be in (0, 0.1], got {}",
                self.decay
            ));
        }
        if self.min_mass < 10 {
            return err(format!(
                "tail.min_mass must be >= 10, got {}",
                self.min_mass
            ));
        }
        Ok(())
    }
}

impl Default for TailCalibrator {
    fn default() -> Self {
        Self {
            bins: vec![0.0; BINS],
            total: 0.0,
            weight: 1.0,
            n: 0,
            xq: 0.0,
            beta: 1.0 / std::f64::consts::LN_10,
            body: 0.0,
            inv_scale: 1.0,
            grow: 0.0,
        }
    }
}

impl TailCalibrator {
    /// The calibrated surprise of a nominal surprise `x` (before recording it), never above
    /// `x` (see the type's documentation).
    pub fn calibrate(&self, x: f64, p: &TailParams) -> f64 {
        self.calibrate_with(x, p, true)
    }

    /// The calibrated surprise of `x`; with `cap` false the result may exceed `x` (for
    /// statistics that are not themselves surprises, such as a mean of surprises, whose own
    /// scale means nothing and whose tail alone says how rare they are).
    pub fn calibrate_with(&self, x: f64, p: &TailParams, cap: bool) -> f64 {
        let x = x.min(BIN * BINS as f64);
        if x.is_nan() || x < 0.0 {
            return 0.0;
        }
        if self.n < p.min_mass || self.total <= 0.0 {
            return if cap { x } else { 0.0 };
        }
        // The cached constants, or (state restored from a checkpoint written before they were
        // cached, until the next refit) the same values computed here.
        let (body, inv_scale) = if self.inv_scale > 0.0 {
            (self.body, self.inv_scale)
        } else {
            (-p.q.log10(), 1.0 / (self.beta * std::f64::consts::LN_10))
        };
        let cal = if x <= self.xq {
            // Inside the body of the distribution: no more surprising than a q event.
            x.min(body)
        } else {
            body + (x - self.xq) * inv_scale
        };
        if cap { cal.min(x) } else { cal }
    }

    /// Refits the tail (`xq`, `beta`) from the histogram.
    fn refit(&mut self, p: &TailParams) {
        let target = p.q * self.total;
        let mut above = 0.0_f64;
        let mut xq = 0.0_f64;
        let mut k = BINS;
        while k > 0 {
            k -= 1;
            let c = f64::from(self.bins[k]);
            if above + c >= target {
                // Interpolate inside bin k: the part of it needed to reach the target mass.
                let need = target - above;
                let frac = if c > 0.0 { need / c } else { 0.0 };
                xq = (k as f64 + 1.0 - frac) * BIN;
                break;
            }
            above += c;
        }
        let mut mass = 0.0_f64;
        let mut excess = 0.0_f64;
        for (i, &c) in self.bins.iter().enumerate() {
            let center = (i as f64 + 0.5) * BIN;
            if center > xq {
                let c = f64::from(c);
                mass += c;
                excess += c * (center - xq);
            }
        }
        let nominal_beta = 1.0 / std::f64::consts::LN_10;
        self.xq = xq;
        self.beta = if mass > 0.0 {
            (excess / mass).max(nominal_beta)
        } else {
            nominal_beta
        };
        self.body = -p.q.log10();
        self.inv_scale = 1.0 / (self.beta * std::f64::consts::LN_10);
    }

    /// Records a nominal surprise.
    pub fn record(&mut self, x: f64, p: &TailParams) {
        if x.is_nan() || x < 0.0 {
            return;
        }
        let b = ((x * (1.0 / BIN)) as usize).min(BINS - 1);
        self.bins[b] += self.weight as f32;
        self.total += self.weight;
        self.n = self.n.saturating_add(1);
        if self.n.is_multiple_of(REFIT) || self.n == p.min_mass {
            self.refit(p);
        }
        if self.grow == 0.0 {
            self.grow = 1.0 / (1.0 - p.decay);
        }
        self.weight *= self.grow;
        if self.weight > 1e20 {
            // Renormalize (rare): the relative weights are unchanged.
            let s = 1.0 / self.weight;
            for c in &mut self.bins {
                *c = (f64::from(*c) * s) as f32;
            }
            self.total *= s;
            self.weight = 1.0;
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn gaussian_tail_values() {
        // P(|Z| >= 1.96) = 0.05, P(|Z| >= 3) = 0.0027, P(|Z| >= 6) = 1.97e-9.
        assert!((gaussian_surprise(1.959_964) - 1.301_03).abs() < 1e-4);
        assert!((gaussian_surprise(3.0) - 2.568_9).abs() < 1e-3);
        assert!((gaussian_surprise(6.0) - 8.705).abs() < 1e-2);
        assert!(gaussian_surprise(40.0).is_finite());
        assert!((z_of_gaussian_surprise(gaussian_surprise(4.2)) - 4.2).abs() < 1e-6);
    }
}
