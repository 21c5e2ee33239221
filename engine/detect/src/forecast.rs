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
//! Prediction interval at `h` ahead: `point ± m(h)·σ(h)`. The shape `σ(h)` is the regression's
//! prediction standard error, `σ(h)² = v·(1 + 1/n_eff) + σ²·(h − t̄)²/S_tt`, with `σ²` the
//! weighted residual variance, `v` the larger of `σ²` and the seasonal profile's one-step error
//! and `n_eff` the effective number of points. That formula assumes independent Gaussian errors
//! around a correct model; real series break all three (in-sample, autocorrelated, heavy-tailed
//! residuals; a profile and a trend that are themselves estimates, and that lag the series), and
//! `1.96·σ(h)` covered anywhere from 93% to 98% where it claimed 95%, `1.28·σ(h)` 69% to 90%
//! where it claimed 80% (docs/benchmarks.md, "Forecast calibration"). So the multiplier `m(h)`
//! is measured, not assumed: the forecaster checks its own forecasts out of sample.
//!
//! Calibration, per horizon. Up to [`MAX_HORIZONS`] horizons, whole numbers of intervals: the
//! next point, log-spaced up to one seasonal period, the period itself (one period ahead the
//! forecast reads the profile bucket just updated, a fraction of a period ahead one updated long
//! ago: their errors differ) and log-spaced on to `horizon_ms` — at 5-minute data, a daily
//! period and the 7-day default 5 min, 15 min, 50 min, 2.5 h, 7.8 h, 1 day, 2.6 days, 7 days.
//! They are laid out once the model forecasts, and again once when the first seasonal model is
//! chosen (the errors of the flat warm-up model, huge a fraction of a period ahead, say nothing
//! about it). The next point's forecast is checked at every point; for each longer horizon `h`
//! up to [`PENDING_PER_HORIZON`] forecasts, issued `h / PENDING_PER_HORIZON` apart, wait in a
//! ring (target time, point, `σ(h)`, the half-width issued) and are checked against the first
//! point within one interval after their target (a gap drops them). Each horizon keeps
//! - a scale: the exponentially weighted mean of `|error| / σ(h)`, its memory 576 points of the
//!   series (2 days at 5 minutes; 10 to 200 checks), so a long horizon, checked rarely, follows
//!   the series as fast as a short one;
//! - a tail ratio, `m = ratio · scale`, moved by adaptive conformal inference (Gibbs & Candès,
//!   2021): up by `η·coverage` when the interval issued missed, down by `η·(1 − coverage)` when
//!   it covered. Its fixed point is the `coverage` quantile of `|error| / scale` whatever the
//!   error distribution (heavy tails included), and since `ln ratio` is bounded the long-run
//!   fraction of misses is `1 − coverage` even while the series changes under it, which an
//!   estimated quantile (a histogram, P²) does not guarantee. `η` is 0.05 per check, larger
//!   (up to 0.2) for rarely checked horizons so the ratio keeps pace with the scale.
//!
//! Between horizons `ln m` is interpolated in `ln h`; a horizon with fewer than [`MIN_CHECKS`]
//! checks borrows its neighbours' (the nearest one's beyond the last), and before any has
//! enough, `m` is the Gaussian quantile of `coverage`. Tried and dropped (measured worse on the
//! series below): a histogram quantile per horizon (too few checks at long horizons for a 95%
//! quantile), one tail ratio shared by all horizons (the error's shape changes with `h`), the
//! multiplier without a scale (adapts too slowly down at 95%). Measured coverage of the 80% and
//! 95% intervals, walking forward at every point: within 2.4 points of nominal from 5 minutes
//! to 1 day ahead on synthetic daily series (Gaussian and Student-t noise), within 1.9 points
//! on the 31 NAB dev series for the next point and 1 hour ahead. Long horizons are the weak
//! spot (up to 3.4 points under at 80% on other seeds): they are checked least and their
//! errors follow a model still converging.
//!
//! [`Forecaster::eta`] states the uncertainty of a crossing time: the point forecast's crossing,
//! and the times the near and the far edge of the interval cross.
//!
//! State ([`Forecaster::bytes`]): ~460 bytes, plus 5 bytes per seasonal bucket, plus 2.5 KiB of
//! calibration (8 horizons of 64 bytes, 7 rings of 12 waiting forecasts of 24 bytes): 5,872
//! bytes at 5-minute resolution with `auto` (daily and weekly profiles of 288 buckets), of which
//! 2,528 are calibration. `observe` costs ~0.75 µs per point (0.22 before calibration).
//! Deterministic (event time only, no clock, no randomness) and serializable; NaN and infinite
//! values are ignored.

use crate::registry::DetectorError;
use crate::seasonal::{DAY_MS, Period, Profile, WEEK_MS};
use crate::series::Direction;
use serde::{Deserialize, Serialize};

/// Milliseconds in an hour: the regression's time unit (keeps the sums well conditioned).
const HOUR_MS: f64 = 3_600_000.0;

/// Most horizons whose forecast errors are checked (the next point included).
pub const MAX_HORIZONS: usize = 8;
/// Forecasts waiting for their time, per horizon beyond the next point: a horizon of `h` is
/// checked about this many times per `h`.
pub const PENDING_PER_HORIZON: usize = 12;
/// Checks before a horizon's measured width is used (until then its neighbours', or the
/// Gaussian one).
pub const MIN_CHECKS: u32 = 10;
/// Memory of a horizon's error scale, in points of the series: a long horizon, checked rarely,
/// still forgets within about this many points (a 5-minute series: 2 days).
const SCALE_MEMORY_POINTS: f64 = 576.0;
/// Bounds of a horizon's scale memory, in checks: at least this many (noise)...
const SCALE_MEMORY_MIN: f64 = 10.0;
/// ...and at most this many (a quick horizon still follows changes of the series).
const SCALE_MEMORY_MAX: f64 = 200.0;
/// Standardized errors are winsorized here before entering the scale, so one wild point (or a
/// flat series that suddenly moves, `σ(h)` = 0) cannot blow the width up for long.
const SCALE_CLIP: f64 = 100.0;
/// Step of the log tail ratio per check (adaptive conformal inference). Larger follows changes
/// faster but makes the width noisier: at 95% the width's relative jitter is about
/// `sqrt(0.1·η)` (7%).
const CALIBRATION_STEP: f64 = 0.05;
/// The largest step, for the most rarely checked horizons.
const MAX_CALIBRATION_STEP: f64 = 0.2;
/// Bounds of the tail ratio, a factor either way of the Gaussian one: they keep the recursion
/// bounded, the condition of its coverage guarantee.
const RATIO_RANGE: f64 = 30.0;

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

/// When a threshold is expected to be crossed, with the uncertainty of the forecast; from
/// [`Forecaster::eta`]. All times are ms after the last point, `earliest_ms <= ms <= latest_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eta {
    /// When the point forecast crosses: [`Forecaster::time_until`].
    pub ms: i64,
    /// When the near edge of the prediction interval crosses (the upper edge for a rising
    /// crossing): the earliest time the series is plausibly past the threshold.
    pub earliest_ms: i64,
    /// When the far edge crosses (the lower edge for a rising crossing): by then the series is
    /// past the threshold at the interval's confidence. None when that is not within the
    /// horizon.
    pub latest_ms: Option<i64>,
}

/// A forecast waiting for its time, to be checked against the point that arrives then.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Pending {
    target_ms: i64,
    point: f64,
    /// `σ(h)` when it was made: its error is measured in these units.
    sd: f32,
    /// The half-width of the interval it was issued with.
    half: f32,
}

/// The out-of-sample record of one horizon (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Horizon {
    /// How far ahead, ms; for the first horizon the typical interval (it checks the next point,
    /// whenever it comes).
    ahead_ms: i64,
    /// Exponentially weighted mean of `|error| / σ(h)`.
    scale: f64,
    /// ln of the tail ratio: the half-width is `ratio · scale · σ(h)`.
    log_ratio: f64,
    /// Forecasts checked (saturating).
    checks: u32,
    /// When the newest pending forecast was made.
    issued_ms: i64,
    /// Forecasts waiting for their time (empty for the first horizon).
    pending: Vec<Pending>,
}

impl Horizon {
    /// ln of the half-width in units of `σ(h)`.
    fn log_mult(&self) -> f64 {
        self.scale.max(f64::MIN_POSITIVE).ln() + self.log_ratio
    }

    /// Learns from one checked forecast, `err` off with standard error `sd`, issued with
    /// half-width `half` (None: the current one, for the next point). The tail ratio takes one
    /// adaptive-conformal step, up by `η·coverage` if `half` missed `err`, down by
    /// `η·(1 − coverage)` if it covered it; then the scale moves by `max(1/checks, 1/memory)`
    /// towards `|err|/sd`. The first check sets the scale, and the ratio to `start_ratio` (the
    /// next shorter horizon's, once it has [`MIN_CHECKS`]).
    fn record(
        &mut self,
        err: f64,
        sd: f64,
        half: Option<f64>,
        coverage: f64,
        memory: f64,
        start_ratio: f64,
    ) {
        let z = if sd > 0.0 {
            (err.abs() / sd).min(SCALE_CLIP)
        } else if err == 0.0 {
            0.0
        } else {
            SCALE_CLIP
        };
        if self.checks == 0 {
            self.log_ratio = start_ratio;
            self.scale = z;
        } else {
            let half = half.unwrap_or_else(|| self.log_mult().exp() * sd);
            let miss = err.abs() > half;
            let step = if miss { coverage } else { coverage - 1.0 };
            let g = gaussian_ratio(coverage).ln();
            let range = RATIO_RANGE.ln();
            // A rarely checked horizon steps faster, so that the ratio keeps pace with the
            // scale (whose memory is shorter in checks there) instead of fighting it.
            let eta = (CALIBRATION_STEP * SCALE_MEMORY_MAX / memory).min(MAX_CALIBRATION_STEP);
            self.log_ratio = (self.log_ratio + eta * step).clamp(g - range, g + range);
            let w = (1.0 / (f64::from(self.checks) + 1.0)).max(1.0 / memory);
            self.scale += w * (z - self.scale);
        }
        self.checks = self.checks.saturating_add(1);
    }
}

/// The Gaussian ratio of the `coverage` quantile of `|error|` to its mean: `z / sqrt(2/π)`.
fn gaussian_ratio(coverage: f64) -> f64 {
    gaussian_quantile(0.5 + coverage / 2.0) / (2.0 / std::f64::consts::PI).sqrt()
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
    /// Out-of-sample calibration of the interval, per horizon; empty until laid out. A
    /// checkpoint from before it existed loads with none (it is re-learnt).
    #[serde(default)]
    horizons: Vec<Horizon>,
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
            horizons: Vec::new(),
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

    /// Bytes of state held at most from now on: the struct, the seasonal profiles, the
    /// calibration with its rings full.
    pub fn bytes(&self) -> usize {
        let profiles: usize = self
            .seasons
            .iter()
            .map(|s| std::mem::size_of::<Season>() + s.profile.as_ref().map_or(0, Profile::bytes))
            .sum();
        let rings = self.horizons.len().saturating_sub(1) * PENDING_PER_HORIZON;
        std::mem::size_of::<Self>()
            + profiles
            + self.horizons.len() * std::mem::size_of::<Horizon>()
            + rings * std::mem::size_of::<Pending>()
    }

    fn season_at(&self, time_ms: i64) -> f64 {
        self.seasons
            .get(self.chosen)
            .and_then(|s| s.profile.as_ref())
            .map_or(0.0, |p| p.at(time_ms))
    }

    /// Learns from one point (points in non-decreasing time; NaN/inf ignored).
    pub fn observe(&mut self, time_ms: i64, value: f64) {
        if !value.is_finite() || value.abs() > crate::stats::MAX_MAGNITUDE {
            return;
        }
        self.check_forecasts(time_ms, value);
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
            if time_ms.saturating_sub(first) >= s.period_ms {
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
            let eligible = s.period_ms == 0
                || (s.err_n >= 16 && time_ms.saturating_sub(first) >= s.period_ms * 3 / 2);
            if eligible && (best_err.is_infinite() || s.err < 0.9 * best_err) {
                best = i;
                best_err = s.err;
            }
        }
        if best != self.chosen && self.period_ms() == 0 {
            // The first seasonal model ends the warm-up: the errors of the flat one (huge a
            // fraction of a period ahead) say little about it, so calibration starts over, its
            // horizons laid out on the period. A later switch (daily to weekly) keeps them.
            self.horizons.clear();
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
        self.issue_forecasts(time_ms);
    }

    /// Checks the forecasts whose time has come against the point `(time_ms, value)`, before
    /// the model learns from it: the next-point forecast from the current state, and the
    /// pending forecasts of the longer horizons whose target is at most one interval before.
    /// (Pending forecasts that a gap skipped are dropped unchecked.)
    fn check_forecasts(&mut self, time_ms: i64, value: f64) {
        let Some(base) = self.horizons.first().map(|h| h.ahead_ms.max(1) as f64) else {
            return;
        };
        let coverage = self.config.coverage;
        let next = if let (Some(fit), Some(last)) = (self.fit(), self.last_ms)
            && time_ms > last
        {
            Some(self.point_sd(&fit, last, time_ms.saturating_sub(last)))
        } else {
            None
        };
        let tolerance = self.interval_ms.max(1.0);
        // A horizon first checked starts from the tail ratio of the next shorter one.
        let mut start_ratio = gaussian_ratio(coverage).ln();
        for (k, h) in self.horizons.iter_mut().enumerate() {
            let memory = (SCALE_MEMORY_POINTS * PENDING_PER_HORIZON as f64 * base
                / h.ahead_ms.max(1) as f64)
                .clamp(SCALE_MEMORY_MIN, SCALE_MEMORY_MAX);
            if k == 0 {
                if let Some((point, sd)) = next {
                    h.record(value - point, sd, None, coverage, memory, start_ratio);
                }
            } else {
                let mut i = 0;
                while i < h.pending.len() {
                    let p = h.pending[i];
                    if p.target_ms > time_ms {
                        i += 1;
                        continue;
                    }
                    h.pending.remove(i);
                    if (time_ms.saturating_sub(p.target_ms)) as f64 <= tolerance {
                        h.record(
                            value - p.point,
                            f64::from(p.sd),
                            Some(f64::from(p.half)),
                            coverage,
                            memory,
                            start_ratio,
                        );
                    }
                }
            }
            if h.checks >= MIN_CHECKS {
                start_ratio = h.log_ratio;
            }
        }
    }

    /// Lays the horizons out once the model forecasts and the interval is known, then makes a
    /// forecast for each longer horizon with room in its ring, spaced `ahead / ring size` apart.
    fn issue_forecasts(&mut self, time_ms: i64) {
        let Some(fit) = self.fit() else {
            return;
        };
        if self.horizons.is_empty() {
            if self.interval_ms <= 0.0 {
                return;
            }
            self.horizons = self.lay_out_horizons();
        }
        for k in 1..self.horizons.len() {
            let (ahead, full, recent) = {
                let h = &self.horizons[k];
                let spacing = h.ahead_ms / PENDING_PER_HORIZON as i64;
                (
                    h.ahead_ms,
                    h.pending.len() >= PENDING_PER_HORIZON,
                    time_ms.saturating_sub(h.issued_ms) < spacing,
                )
            };
            if full || recent {
                continue;
            }
            let (point, sd) = self.point_sd(&fit, time_ms, ahead);
            let half = self.mult(ahead as f64) * sd;
            let h = &mut self.horizons[k];
            h.pending.push(Pending {
                target_ms: time_ms.saturating_add(ahead),
                point,
                sd: sd as f32,
                half: half as f32,
            });
            h.issued_ms = time_ms;
        }
    }

    /// The horizons checked, each a whole number of intervals (a regular series has a point
    /// exactly at each target): the next point, then log-spaced up to one seasonal period, the
    /// period itself and log-spaced on to `horizon_ms`; without a period, log-spaced from the
    /// next point to `horizon_ms`. The period is a horizon of its own because the forecast's
    /// error there differs from its neighbours': one period ahead the forecast reads the
    /// seasonal bucket just updated, a fraction of a period ahead one updated a period ago.
    fn lay_out_horizons(&self) -> Vec<Horizon> {
        let base = self.interval_ms.round().max(1.0);
        let horizon = (self.config.horizon_ms as f64).max(base);
        let period = self.period_ms() as f64;
        // Log-spaced knots (in ms), `from` excluded, `to` included.
        let spaced = |from: f64, to: f64, n: usize| -> Vec<f64> {
            (1..=n)
                .map(|k| from * (to / from).powf(k as f64 / n as f64))
                .collect()
        };
        let knots = if period >= 4.0 * base && period < horizon {
            let mut k = spaced(base, period, 5);
            k.extend(spaced(period, horizon, MAX_HORIZONS - 6));
            k
        } else {
            spaced(base, horizon, MAX_HORIZONS - 1)
        };
        let mut aheads = vec![base as i64];
        for a in knots {
            let a = ((a / base).round() * base) as i64;
            if aheads.last().is_some_and(|&l| a > l) {
                aheads.push(a);
            }
        }
        aheads
            .into_iter()
            .enumerate()
            .map(|(k, ahead_ms)| Horizon {
                ahead_ms,
                scale: 0.0,
                log_ratio: 0.0,
                checks: 0,
                issued_ms: i64::MIN,
                // The next point is checked from the current state: no ring.
                pending: Vec::with_capacity(if k == 0 { 0 } else { PENDING_PER_HORIZON }),
            })
            .collect()
    }

    /// The half-width of the interval at `ahead_ms` in units of `σ(h)`: the measured
    /// multipliers interpolated in `ln h` (see the module documentation).
    fn mult(&self, ahead_ms: f64) -> f64 {
        // The learnt horizons around `ahead_ms` (they are in increasing order); logarithms only
        // for those two, as this runs for every step of `eta`'s scan.
        let ahead = ahead_ms.max(1.0);
        let mut below = None;
        let mut above = None;
        for h in self.horizons.iter().filter(|h| h.checks >= MIN_CHECKS) {
            if h.ahead_ms.max(1) as f64 <= ahead {
                below = Some(h);
            } else {
                above = Some(h);
                break;
            }
        }
        match (below, above) {
            (Some(b), Some(a)) => {
                let x0 = (b.ahead_ms.max(1) as f64).ln();
                let x1 = (a.ahead_ms.max(1) as f64).ln();
                let (m0, m1) = (b.log_mult(), a.log_mult());
                (m0 + (m1 - m0) * (ahead.ln() - x0) / (x1 - x0)).exp()
            }
            (Some(h), None) | (None, Some(h)) => h.log_mult().exp(),
            (None, None) => gaussian_quantile(0.5 + self.config.coverage / 2.0),
        }
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

    /// The point forecast `ahead_ms` after `last` and its standard error `σ(h)` (the shape of
    /// the interval, before calibration).
    fn point_sd(&self, f: &Fit, last: i64, ahead_ms: i64) -> (f64, f64) {
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
        (point, var.max(0.0).sqrt())
    }

    /// The forecast `ahead_ms` after the last point, its interval calibrated on the
    /// forecaster's own past errors at that horizon; None before `min_points` points.
    pub fn forecast(&self, ahead_ms: i64) -> Option<Prediction> {
        let f = self.fit()?;
        let last = self.last_ms?;
        let (point, sd) = self.point_sd(&f, last, ahead_ms);
        let half = self.mult(ahead_ms.max(0) as f64) * sd;
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
        self.crossings(threshold, direction, horizon_ms, false)
            .map(|e| e.ms)
    }

    /// [`Self::time_until`] with its uncertainty: when the point forecast crosses `threshold`,
    /// and when the near and the far edge of the prediction interval do (see [`Eta`]), looking
    /// at most `horizon_ms` of the configuration ahead. None when the point forecast does not
    /// cross within the horizon (even if the near edge does).
    pub fn eta(&self, threshold: f64, direction: Direction) -> Option<Eta> {
        self.eta_within(threshold, direction, self.config.horizon_ms)
    }

    /// [`Self::eta`] with an explicit horizon.
    pub fn eta_within(&self, threshold: f64, direction: Direction, horizon_ms: i64) -> Option<Eta> {
        self.crossings(threshold, direction, horizon_ms, true)
    }

    /// The crossings of `threshold` by the point forecast and, with `edges`, by the near and
    /// far edges of the interval (otherwise all three are the point's).
    fn crossings(
        &self,
        threshold: f64,
        direction: Direction,
        horizon_ms: i64,
        edges: bool,
    ) -> Option<Eta> {
        if !threshold.is_finite() || horizon_ms <= 0 {
            return None;
        }
        let fit = self.fit()?;
        let last = self.last_ms?;
        let now = self.point_sd(&fit, last, 0).0;
        let up = match direction {
            Direction::Up => true,
            Direction::Down => false,
            Direction::None => threshold >= now,
        };
        let past = |v: f64| if up { v >= threshold } else { v <= threshold };
        // Step through the horizon (the seasonal profile makes the path non-linear), at most
        // 20,000 steps, then interpolate inside the step that crosses.
        let period = self.period_ms();
        let fine = if period > 0 {
            self.interval_ms.max(1.0).min(period as f64 / 24.0)
        } else {
            horizon_ms as f64
        };
        let step = fine.max(horizon_ms as f64 / 20_000.0).max(1.0);
        let ms = first_crossing(horizon_ms, step, threshold, past, |a| {
            self.point_sd(&fit, last, a).0
        })?;
        if !edges {
            return Some(Eta {
                ms,
                earliest_ms: ms,
                latest_ms: Some(ms),
            });
        }
        // The edges curve even without a season (the width grows with the horizon): at least
        // 2,000 steps.
        let edge_step = step.min(horizon_ms as f64 / 2_000.0).max(1.0);
        let toward = if up { 1.0 } else { -1.0 };
        let edge = |ahead_ms: i64, side: f64| {
            let (point, sd) = self.point_sd(&fit, last, ahead_ms);
            point + side * self.mult(ahead_ms as f64) * sd
        };
        let earliest = first_crossing(horizon_ms, edge_step, threshold, past, |a| edge(a, toward));
        let latest = first_crossing(horizon_ms, edge_step, threshold, past, |a| edge(a, -toward));
        Some(Eta {
            ms,
            earliest_ms: earliest.map_or(ms, |e| e.min(ms)),
            latest_ms: latest.map(|l| l.max(ms)),
        })
    }
}

/// The first time (ms ahead, within `horizon_ms`) `path` is `past` the threshold: sampled every
/// `step` ms, interpolated linearly inside the step that crosses; 0 when it already is.
fn first_crossing(
    horizon_ms: i64,
    step: f64,
    threshold: f64,
    past: impl Fn(f64) -> bool,
    path: impl Fn(i64) -> f64,
) -> Option<i64> {
    let mut prev_v = path(0);
    if past(prev_v) {
        return Some(0);
    }
    let horizon = horizon_ms as f64;
    let mut prev_h = 0.0_f64;
    let mut h = step;
    loop {
        let hh = h.min(horizon);
        let v = path(hh as i64);
        if past(v) {
            let frac = if v != prev_v {
                ((threshold - prev_v) / (v - prev_v)).clamp(0.0, 1.0)
            } else {
                1.0
            };
            return Some((prev_h + frac * (hh - prev_h)).round() as i64);
        }
        if hh >= horizon {
            return None;
        }
        prev_h = hh;
        prev_v = v;
        h += step;
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
