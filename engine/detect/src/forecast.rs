//! Forecasting per series: a linear trend on a seasonal profile, with a prediction interval, and
//! the time until a threshold is crossed ("disk full in 9 hours").
//!
//! Model: `y(t) = a + b·(t − t_last) + S(t) + ε`. The trend `a + b·t` is an exponentially
//! weighted least-squares line (each point's weight decays by `decay` per later point: a memory
//! of about `1/decay` points) fitted to the deseasonalized values `y − S(t)`; `S` is a seasonal
//! profile over time-of-day or time-of-week buckets ([`crate::seasonal::Profile`], event-time
//! indexed) learnt on the detrended values, the period chosen like the seasonal detector's
//! (`auto`: none, daily or weekly, whichever predicts best once it has 1.5 periods of history).
//! A trend whose t-statistic `|b| / se(b)` is below `min_trend_t` is treated as flat (the
//! weighted mean), so noise on a flat series never predicts a crossing.
//!
//! Prediction interval at `h` ahead: `point ± z·σ·sqrt(1 + 1/n_eff + (h − t̄)² / S_tt)`, the
//! usual regression prediction interval with σ² the weighted residual variance, `n_eff` the
//! effective number of points and `z` the Gaussian quantile of `coverage`.
//!
//! State: ~200 bytes plus 5 bytes per seasonal bucket (≤ 3 KiB); serializable. NaN and infinite
//! values are ignored.

use crate::registry::DetectorError;
use crate::seasonal::{DAY_MS, Period, Profile, WEEK_MS};
use crate::series::Direction;
use serde::{Deserialize, Serialize};

/// Milliseconds in an hour: the regression's time unit (keeps the sums well conditioned).
const HOUR_MS: f64 = 3_600_000.0;

/// Parameters of [`Forecaster`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    /// The seasonality modelled. Default `auto`.
    pub period: Period,
    /// Forgetting of the trend regression per point, in (0, 0.5]. Default 0.005 (a memory of
    /// about 200 points).
    pub decay: f64,
    /// Weight of the error in a seasonal bucket's update, per visit, in (0, 1). Default 0.2.
    pub season_gamma: f64,
    /// Most buckets per period, 8..=2016. Default 288.
    pub max_buckets: usize,
    /// Coverage of the prediction interval, in (0.5, 1). Default 0.95.
    pub coverage: f64,
    /// A trend with a smaller t-statistic counts as flat, >= 0. Default 3.
    pub min_trend_t: f64,
    /// Points before any forecast, >= 3. Default 16.
    pub min_points: u32,
    /// How far [`Forecaster::time_until`] looks ahead, in ms, > 0. Default 7 days.
    pub horizon_ms: i64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            period: Period::Auto,
            decay: 0.005,
            season_gamma: 0.2,
            max_buckets: 288,
            coverage: 0.95,
            min_trend_t: 3.0,
            min_points: 16,
            horizon_ms: 7 * DAY_MS,
        }
    }
}

impl ForecastConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let err = |reason: String| {
            Err(DetectorError::Parameter {
                detector: "forecast",
                reason,
            })
        };
        if !(self.decay > 0.0 && self.decay <= 0.5) {
            return err(format!("decay must be in (0, 0.5], got {}", self.decay));
        }
        if !(self.season_gamma > 0.0 && self.season_gamma < 1.0) {
            return err(format!(
                "season_gamma must be in (0, 1), got {}",
                self.season_gamma
            ));
        }
        if !(8..=2016).contains(&self.max_buckets) {
            return err(format!(
                "max_buckets must be in 8..=2016, got {}",
                self.max_buckets
            ));
        }
        if !(self.coverage > 0.5 && self.coverage < 1.0) {
            return err(format!(
                "coverage must be in (0.5, 1), got {}",
                self.coverage
            ));
        }
        if !(self.min_trend_t >= 0.0 && self.min_trend_t.is_finite()) {
            return err(format!(
                "min_trend_t must be >= 0, got {}",
                self.min_trend_t
            ));
        }
        if self.min_points < 3 {
            return err(format!("min_points must be >= 3, got {}", self.min_points));
        }
        if self.horizon_ms <= 0 {
            return err(format!("horizon_ms must be > 0, got {}", self.horizon_ms));
        }
        Ok(())
    }
}

/// A forecast at one time ahead.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The point forecast.
    pub point: f64,
    /// Lower edge of the prediction interval.
    pub lower: f64,
    /// Upper edge of the prediction interval.
    pub upper: f64,
}

/// A candidate seasonal profile with its error statistics (for the period choice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Season {
    period_ms: i64,
    profile: Option<Profile>,
    /// Slow average of the squared one-step error of trend + this profile.
    err: f64,
    err_n: u32,
}

/// The per-series forecaster; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecaster {
    config: ForecastConfig,
    /// Candidates: none (period 0), daily, weekly, as the period allows.
    seasons: Vec<Season>,
    chosen: usize,
    /// Time of the last point: the origin of the regression's time axis.
    last_ms: Option<i64>,
    first_ms: Option<i64>,
    /// Typical interval between points (ms).
    interval_ms: f64,
    /// Values are kept relative to the first one (conditioning of the sums).
    y_ref: f64,
    // Exponentially weighted sums over (t in hours relative to `last_ms`, y − y_ref − S(t)).
    sw: f64,
    sw2: f64,
    st: f64,
    sy: f64,
    stt: f64,
    sty: f64,
    syy: f64,
    n: u32,
}

/// The fitted trend.
#[derive(Debug, Clone, Copy)]
struct Fit {
    /// Value of the trend at `last_ms` (relative to `y_ref`).
    a: f64,
    /// Slope per hour (0 when not significant).
    b: f64,
    tbar: f64,
    sxx: f64,
    sigma2: f64,
    n_eff: f64,
}

impl Forecaster {
    /// A fresh forecaster.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn new(config: ForecastConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        let periods: &[i64] = match config.period {
            Period::Auto => &[0, DAY_MS, WEEK_MS],
            Period::None => &[0],
            Period::Daily => &[DAY_MS],
            Period::Weekly => &[WEEK_MS],
        };
        Ok(Self {
            seasons: periods
                .iter()
                .map(|&p| Season {
                    period_ms: p,
                    profile: None,
                    err: 0.0,
                    err_n: 0,
                })
                .collect(),
            chosen: 0,
            last_ms: None,
            first_ms: None,
            interval_ms: 0.0,
            y_ref: 0.0,
            sw: 0.0,
            sw2: 0.0,
            st: 0.0,
            sy: 0.0,
            stt: 0.0,
            sty: 0.0,
            syy: 0.0,
            n: 0,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ForecastConfig {
        &self.config
    }

    /// The time of the last point observed (forecasts are relative to it).
    pub fn last_time_ms(&self) -> Option<i64> {
        self.last_ms
    }

    /// The period of the seasonal profile in use, ms (0: none).
    pub fn period_ms(&self) -> i64 {
        self.seasons.get(self.chosen).map_or(0, |s| s.period_ms)
    }

    fn season_at(&self, time_ms: i64) -> f64 {
        self.seasons
            .get(self.chosen)
            .and_then(|s| s.profile.as_ref())
            .map_or(0.0, |p| p.at(time_ms))
    }

    /// Learns from one point (points in non-decreasing time; NaN/inf ignored).
    pub fn observe(&mut self, time_ms: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        if self.n == 0 {
            self.y_ref = value;
            self.first_ms = Some(time_ms);
        }
        let y = value - self.y_ref;
        // Move the time origin to this point.
        if let Some(last) = self.last_ms {
            let dt_ms = time_ms.saturating_sub(last).max(0) as f64;
            if dt_ms > 0.0 {
                self.interval_ms = if self.interval_ms == 0.0 {
                    dt_ms
                } else {
                    self.interval_ms
                        + 0.05 * (dt_ms.min(10.0 * self.interval_ms) - self.interval_ms)
                };
            }
            let d = dt_ms / HOUR_MS;
            self.stt += -2.0 * d * self.st + d * d * self.sw;
            self.st -= d * self.sw;
            self.sty -= d * self.sy;
        }
        self.last_ms = Some(time_ms);
        // Detrended value, for the seasonal profiles and their errors.
        let trend = self.fit().map_or(y, |f| f.a);
        let detrended = y - trend;
        let first = self.first_ms.unwrap_or(time_ms);
        let interval = self.interval_ms;
        let max_buckets = self.config.max_buckets;
        for s in &mut self.seasons {
            if s.period_ms == 0 {
                let e2 = detrended * detrended;
                s.err_n = s.err_n.saturating_add(1);
                s.err += 0.005_f64.max(1.0 / f64::from(s.err_n)) * (e2 - s.err);
                continue;
            }
            let p = s.profile.get_or_insert_with(|| {
                let per = if interval > 0.0 {
                    (s.period_ms as f64 / interval).round() as usize
                } else {
                    max_buckets
                };
                let min = if s.period_ms >= WEEK_MS { 168 } else { 24 };
                Profile::new(s.period_ms, per.clamp(min.min(max_buckets), max_buckets))
            });
            if time_ms - first >= s.period_ms {
                let e = detrended - p.at(time_ms);
                s.err_n = s.err_n.saturating_add(1);
                s.err += 0.005_f64.max(1.0 / f64::from(s.err_n)) * (e * e - s.err);
            }
            p.update(time_ms, detrended, self.config.season_gamma);
        }
        // Period choice: the most seasonal eligible candidate at least 10% better.
        let mut best = 0;
        let mut best_err = f64::INFINITY;
        for (i, s) in self.seasons.iter().enumerate() {
            let eligible =
                s.period_ms == 0 || (s.err_n >= 16 && time_ms - first >= s.period_ms * 3 / 2);
            if eligible && (best_err.is_infinite() || s.err < 0.9 * best_err) {
                best = i;
                best_err = s.err;
            }
        }
        self.chosen = best;
        // Fold the deseasonalized value into the regression (t = 0 now).
        let yd = y - self.season_at(time_ms);
        let lambda = 1.0 - self.config.decay;
        self.sw = self.sw * lambda + 1.0;
        self.sw2 = self.sw2 * lambda * lambda + 1.0;
        self.st *= lambda;
        self.stt *= lambda;
        self.sy = self.sy * lambda + yd;
        self.sty *= lambda;
        self.syy = self.syy * lambda + yd * yd;
        self.n = self.n.saturating_add(1);
    }

    /// The weighted least-squares trend; None before `min_points` points.
    fn fit(&self) -> Option<Fit> {
        if self.n < self.config.min_points || self.sw <= 0.0 {
            return None;
        }
        let tbar = self.st / self.sw;
        let ybar = self.sy / self.sw;
        let sxx = (self.stt - self.st * tbar).max(0.0);
        let sxy = self.sty - self.st * ybar;
        let syy = (self.syy - self.sy * ybar).max(0.0);
        let n_eff = if self.sw2 > 0.0 {
            self.sw * self.sw / self.sw2
        } else {
            1.0
        };
        let (mut b, sse) = if sxx > 0.0 {
            let b = sxy / sxx;
            (b, (syy - b * sxy).max(0.0))
        } else {
            (0.0, syy)
        };
        // Residual variance per unit weight, corrected for the two fitted parameters.
        let dof = (n_eff - 2.0).max(1.0);
        let sigma2 = sse / self.sw * n_eff / dof;
        let se_b = if sxx > 0.0 {
            (sigma2 / sxx).sqrt()
        } else {
            f64::INFINITY
        };
        let significant = b != 0.0 && (b.abs() > self.config.min_trend_t * se_b);
        let a = if significant {
            ybar - b * tbar
        } else {
            b = 0.0;
            ybar
        };
        Some(Fit {
            a,
            b,
            tbar,
            sxx,
            sigma2,
            n_eff,
        })
    }

    /// The forecast `ahead_ms` after the last point; None before `min_points` points.
    pub fn forecast(&self, ahead_ms: i64) -> Option<Prediction> {
        let f = self.fit()?;
        let last = self.last_ms?;
        let h = ahead_ms.max(0) as f64 / HOUR_MS;
        let point = self.y_ref + f.a + f.b * h + self.season_at(last.saturating_add(ahead_ms));
        let lever = if f.sxx > 0.0 && f.b != 0.0 {
            (h - f.tbar).powi(2) / f.sxx
        } else {
            0.0
        };
        // The regression's residuals are in-sample (the profile was fitted on them): the
        // profile's one-step error, measured out of sample, bounds the noise from below.
        let noise = f
            .sigma2
            .max(self.seasons.get(self.chosen).map_or(0.0, |s| s.err));
        let var = noise * (1.0 + 1.0 / f.n_eff.max(1.0)) + f.sigma2 * lever;
        let half = gaussian_quantile(0.5 + self.config.coverage / 2.0) * var.sqrt();
        Some(Prediction {
            point,
            lower: point - half,
            upper: point + half,
        })
    }

    /// Milliseconds from the last point until the point forecast crosses `threshold` going
    /// `direction` (`Up`: rising to it, `Down`: falling to it, `None`: whichever side it is on),
    /// looking at most `horizon_ms` of the configuration ahead. `Some(0)` when the last
    /// forecast is already past it; None when no crossing is predicted within the horizon.
    pub fn time_until(&self, threshold: f64, direction: Direction) -> Option<i64> {
        self.time_until_within(threshold, direction, self.config.horizon_ms)
    }

    /// [`Self::time_until`] with an explicit horizon.
    pub fn time_until_within(
        &self,
        threshold: f64,
        direction: Direction,
        horizon_ms: i64,
    ) -> Option<i64> {
        if !threshold.is_finite() || horizon_ms <= 0 {
            return None;
        }
        let now = self.forecast(0)?.point;
        let up = match direction {
            Direction::Up => true,
            Direction::Down => false,
            Direction::None => threshold >= now,
        };
        let past = |v: f64| if up { v >= threshold } else { v <= threshold };
        if past(now) {
            return Some(0);
        }
        // Step through the horizon (the seasonal profile makes the path non-linear), at most
        // 20,000 steps, then interpolate inside the step that crosses.
        let period = self.period_ms();
        let fine = if period > 0 {
            self.interval_ms.max(1.0).min(period as f64 / 24.0)
        } else {
            horizon_ms as f64
        };
        let step = fine.max(horizon_ms as f64 / 20_000.0).max(1.0);
        let mut prev_h = 0.0_f64;
        let mut prev_v = now;
        let mut h = step;
        loop {
            let hh = h.min(horizon_ms as f64);
            let v = self.forecast(hh as i64)?.point;
            if past(v) {
                let frac = if v != prev_v {
                    ((threshold - prev_v) / (v - prev_v)).clamp(0.0, 1.0)
                } else {
                    1.0
                };
                return Some((prev_h + frac * (hh - prev_h)).round() as i64);
            }
            if hh >= horizon_ms as f64 {
                return None;
            }
            prev_h = hh;
            prev_v = v;
            h += step;
        }
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative error 1e-9).
fn gaussian_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let lo = 0.02425;
    if p < lo {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - lo {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn quantile_values() {
        assert!((gaussian_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((gaussian_quantile(0.5)).abs() < 1e-9);
        assert!((gaussian_quantile(0.01) + 2.326_348).abs() < 1e-5);
    }
}
