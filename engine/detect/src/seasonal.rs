//! `seasonal`: a seasonal baseline learnt from the series' own history (additive Holt-Winters
//! on event-time buckets), with the period chosen automatically among none, daily and weekly.
//!
//! The seasonal component is an array of fixed size per period (time-of-day or time-of-week
//! buckets, `min(max_buckets, period / typical interval)` of them, at least 24 a day or 168 a
//! week), indexed by the point's **event time**, so irregular intervals and gaps land in the
//! right bucket; between bucket centres the component is interpolated linearly. The expected
//! value is `level + season(t)`; after judging a point the level moves by `level_alpha` of the
//! error and the buckets by `season_gamma` (the first visit of a bucket sets it). Errors are
//! winsorized at `clip` σ before updating, so an anomaly does not teach the baseline much.
//!
//! Period selection (`period = "auto"`): three models run side by side (level only, daily,
//! weekly); each tracks its one-step squared error after its first period, and the detector uses
//! the seasonal one whose error is at least 10% lower than the simpler one's (weekly needs two
//! 1.5 weeks of history, daily 1.5 days, and 16 scored points). The score is the
//! two-sided Student-t tail surprise of `error / σ`, σ² being the exponentially weighted squared
//! error of the model in use and the degrees of freedom its `(2 − scale_alpha)/scale_alpha`
//! effective points ([`crate::calibrate`]).
//!
//! Warm-up of this detector: until the data spans 1.5 periods of the configured model (36 hours
//! for `auto` and `daily`, 10.5 days for `weekly`, nothing for `none`: a period to learn the
//! buckets, half a period to measure the error and choose) and at least `warmup` points (default
//! 16); after a gap the levels are re-learnt for `warmup` points (the seasonal arrays are kept).
//! The ensemble starts sooner ([`SeasonalModel::cold`]): with `auto` it judges with the
//! level-only model after `warmup` points, its tail calibration absorbing the misfit.
//!
//! Memory per series: 5 bytes per bucket plus ~500 bytes: about 3.4 KiB with `auto` at 5-minute
//! resolution (288 daily + 288 weekly buckets), 1.4 KiB for hourly data.

use crate::calibrate::{score_of_surprise, student_surprise};
use crate::registry::DetectorError;
use crate::series::{Detector, Signal, Verdict};
use crate::stats::{Input, Prepared};
use serde::{Deserialize, Serialize};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// Milliseconds in a week.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// Which seasonality the baseline models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Chosen from the data among none, daily and weekly (see the module documentation).
    #[default]
    Auto,
    /// No seasonality: an exponentially weighted level.
    None,
    /// Time of day.
    Daily,
    /// Time of week.
    Weekly,
}

/// Parameters of the seasonal baseline ([`SeasonalModel`], [`Seasonal`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeasonalConfig {
    /// The seasonality modelled. Default `auto`.
    pub period: Period,
    /// Weight of the error in the level update, per point, in (0, 1). Default 0.1.
    pub level_alpha: f64,
    /// Weight of the error in a bucket's update, per visit, in (0, 1). Default 0.2.
    pub season_gamma: f64,
    /// Weight of a squared error in the error variance, per point, in (0, 0.5]. Default 0.005
    /// (about 400 effective points: a stable scale, hence few false alarms).
    pub scale_alpha: f64,
    /// Most buckets per period, 8..=2016. Default 288 (5-minute buckets for a day).
    pub max_buckets: usize,
    /// Half-width of the reported band in standard deviations, > 0. Default 3.5.
    pub band: f64,
    /// Points before the first score (and after a gap), >= 3. Default 16 (16 minutes at
    /// 1-minute resolution, 80 minutes at 5-minute).
    pub warmup: usize,
    /// Winsorizing limit of the updates, in standard deviations, > 1. Default 4.
    pub clip: f64,
    /// A point more than `gap_factor` typical intervals after the previous one follows a gap.
    /// > 1. Default 10.
    pub gap_factor: f64,
    /// The series is a monotonic counter: judge its rate per second, resets tolerated.
    /// Default false.
    pub counter: bool,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        Self {
            period: Period::Auto,
            level_alpha: 0.1,
            season_gamma: 0.2,
            scale_alpha: 0.005,
            max_buckets: 288,
            band: 3.5,
            warmup: 16,
            clip: 4.0,
            gap_factor: 10.0,
            counter: false,
        }
    }
}

impl SeasonalConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self, detector: &'static str) -> Result<(), DetectorError> {
        let err = |reason: String| Err(DetectorError::Parameter { detector, reason });
        let unit = |v: f64| v > 0.0 && v < 1.0;
        if !unit(self.level_alpha) {
            return err(format!(
                "level_alpha must be in (0, 1), got {}",
                self.level_alpha
            ));
        }
        if !unit(self.season_gamma) {
            return err(format!(
                "season_gamma must be in (0, 1), got {}",
                self.season_gamma
            ));
        }
        if !(self.scale_alpha > 0.0 && self.scale_alpha <= 0.5) {
            return err(format!(
                "scale_alpha must be in (0, 0.5], got {}",
                self.scale_alpha
            ));
        }
        if !(8..=2016).contains(&self.max_buckets) {
            return err(format!(
                "max_buckets must be in 8..=2016, got {}",
                self.max_buckets
            ));
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

/// A seasonal component: one value per bucket of the period, interpolated between buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    period_ms: i64,
    values: Vec<f32>,
    /// Visits per bucket, saturating; 0 = never seen.
    counts: Vec<u8>,
}

impl Profile {
    /// A profile of `buckets` buckets over `period_ms`.
    pub fn new(period_ms: i64, buckets: usize) -> Self {
        let buckets = buckets.max(1);
        Self {
            period_ms: period_ms.max(1),
            values: vec![0.0; buckets],
            counts: vec![0; buckets],
        }
    }

    /// The buckets around `time_ms` and the weight of the second one.
    fn locate(&self, time_ms: i64) -> (usize, usize, f64) {
        let n = self.values.len();
        let pos = time_ms.rem_euclid(self.period_ms) as f64 / self.period_ms as f64 * n as f64;
        // `pos` is >= 0: truncation is the floor.
        let b0 = (pos as usize).min(n - 1);
        let w = (pos - b0 as f64).clamp(0.0, 1.0);
        let b1 = if b0 + 1 == n { 0 } else { b0 + 1 };
        (b0, b1, w)
    }

    /// The seasonal value at `time_ms` (0 where no bucket around it was seen).
    pub fn at(&self, time_ms: i64) -> f64 {
        self.at_loc(self.locate(time_ms))
    }

    fn at_loc(&self, (b0, b1, w): (usize, usize, f64)) -> f64 {
        let (s0, s1) = (self.counts[b0] > 0, self.counts[b1] > 0);
        let (v0, v1) = (f64::from(self.values[b0]), f64::from(self.values[b1]));
        match (s0, s1) {
            (true, true) => v0 + w * (v1 - v0),
            (true, false) => v0,
            (false, true) => v1,
            (false, false) => 0.0,
        }
    }

    /// Moves the buckets around `time_ms` towards `target` (the value minus the level): a
    /// never-seen bucket takes it, a seen one moves by `max(gamma, 1/visits)` of the error.
    pub fn update(&mut self, time_ms: i64, target: f64, gamma: f64) {
        let loc = self.locate(time_ms);
        self.update_loc(loc, self.at_loc(loc), target, gamma);
    }

    /// [`Self::update`] with the location and current value already computed.
    fn update_loc(&mut self, (b0, b1, w): (usize, usize, f64), at: f64, target: f64, gamma: f64) {
        let err = target - at;
        for (b, wt) in [(b0, 1.0 - w), (b1, w)] {
            if wt <= 0.0 {
                continue;
            }
            if self.counts[b] == 0 {
                if wt >= 0.5 {
                    self.values[b] = target as f32;
                    self.counts[b] = 1;
                }
            } else {
                let rate = gamma.max(1.0 / (f64::from(self.counts[b]) + 1.0));
                self.values[b] = (f64::from(self.values[b]) + rate * wt * err) as f32;
                if wt >= 0.25 {
                    self.counts[b] = self.counts[b].saturating_add(1);
                }
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.values.len() * 5
    }
}

/// One candidate model: a level plus an optional seasonal profile, with its error statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Component {
    period_ms: i64,
    level: f64,
    /// Points folded into the level since the start or the last gap.
    level_n: u64,
    profile: Option<Profile>,
    /// Exponentially weighted squared error (the scale of the residuals).
    err_var: f64,
    /// Slower average of the squared error, for model selection.
    sel_err: f64,
    /// Errors counted (after the first period).
    err_n: u64,
    start_ms: Option<i64>,
}

impl Component {
    fn new(period_ms: i64) -> Self {
        Self {
            period_ms,
            level: 0.0,
            level_n: 0,
            profile: None,
            err_var: 0.0,
            sel_err: 0.0,
            err_n: 0,
            start_ms: None,
        }
    }

    fn seasonal(&self) -> bool {
        self.period_ms > 0
    }

    /// True once a full period was seen (always for the level-only model).
    fn learnt(&self, time_ms: i64) -> bool {
        !self.seasonal()
            || self
                .start_ms
                .is_some_and(|s| time_ms.saturating_sub(s) >= self.period_ms)
    }

    fn predict(&self, time_ms: i64) -> f64 {
        self.level + self.profile.as_ref().map_or(0.0, |p| p.at(time_ms))
    }

    /// The error scale, at least `floor`.
    fn sigma(&self, floor: f64) -> f64 {
        self.err_var
            .sqrt()
            .max(floor)
            .max(1e-9 * self.level.abs().max(1e-3))
    }

    fn update(&mut self, time_ms: i64, x: f64, interval_ms: f64, floor: f64, cfg: &SeasonalConfig) {
        if self.start_ms.is_none() {
            self.start_ms = Some(time_ms);
        }
        if self.seasonal() && self.profile.is_none() {
            let per = if interval_ms > 0.0 {
                (self.period_ms as f64 / interval_ms).round() as usize
            } else {
                cfg.max_buckets
            };
            let min = if self.period_ms >= WEEK_MS { 168 } else { 24 };
            let buckets = per.clamp(min.min(cfg.max_buckets), cfg.max_buckets);
            self.profile = Some(Profile::new(self.period_ms, buckets));
        }
        let learnt = self.learnt(time_ms);
        let loc = self.profile.as_ref().map(|p| p.locate(time_ms));
        let s_at = match (self.profile.as_ref(), loc) {
            (Some(p), Some(l)) => p.at_loc(l),
            _ => 0.0,
        };
        let pred = self.level + s_at;
        let raw_err = x - pred;
        let scored = self.level_n > 0 && learnt;
        // The scale before this error: it bounds the error's influence below.
        let sig_before = self.sigma(floor);
        if scored {
            let e2 = raw_err * raw_err;
            self.err_n += 1;
            let sig = sig_before;
            let lim = cfg.clip * cfg.clip * sig * sig;
            let e2c = if self.err_n > 8 && e2 > lim { lim } else { e2 };
            let a = rate(cfg.scale_alpha, self.err_n);
            self.err_var += a * (e2c - self.err_var);
            let b = rate(0.005, self.err_n);
            self.sel_err += b * (e2c - self.sel_err);
        }
        // Winsorize the error that teaches the model.
        let err = if self.err_n > 8 {
            let s = cfg.clip * sig_before;
            raw_err.clamp(-s, s)
        } else {
            raw_err
        };
        self.level_n += 1;
        if self.level_n == 1 {
            // First point (or first after a gap): the level explains it entirely.
            self.level = x - s_at;
        } else if learnt {
            let a = rate(cfg.level_alpha, self.level_n);
            self.level += a * err;
        }
        // During the first period the level stays at the first value and the buckets take the
        // shape; afterwards the usual Holt-Winters update.
        let level = self.level;
        if let (Some(p), Some(l)) = (self.profile.as_mut(), loc) {
            let target = if learnt {
                s_at + (1.0 - cfg.level_alpha) * err
            } else {
                x - level
            };
            p.update_loc(l, s_at, target, cfg.season_gamma);
        }
    }
}

/// The weight of the `n`-th point in an exponentially weighted mean of weight `alpha`:
/// `max(alpha, 1/n)` (equal weights until `1/alpha` points), without a division once past that.
fn rate(alpha: f64, n: u64) -> f64 {
    if n as f64 * alpha >= 1.0 {
        alpha
    } else {
        1.0 / n as f64
    }
}

/// The seasonal baseline with automatic period choice; shared by [`Seasonal`], the change-point
/// detector and the ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonalModel {
    config: SeasonalConfig,
    /// Candidates: level only, daily, weekly (only those the period allows).
    components: Vec<Component>,
    /// Index of the candidate in use.
    chosen: usize,
    start_ms: Option<i64>,
    /// Points since the start or the last gap.
    since_reset: u64,
    /// Slow exponentially weighted mean of the raw values (for `spread`).
    raw_mean: f64,
    /// Slow exponentially weighted mean absolute deviation of the raw values: the error scale
    /// is floored at [`SIGMA_FLOOR`] of it, so rounding noise on a clean series is not news.
    spread: f64,
    /// Points folded into `raw_mean` and `spread`.
    raw_n: u64,
}

/// The error scale is at least this fraction of the series' spread (mean absolute deviation):
/// an error of 0.1% of the series' usual variation is never anomalous by itself.
pub const SIGMA_FLOOR: f64 = 1e-3;

/// What the baseline expects at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expectation {
    /// The expected value (level + seasonal component).
    pub expected: f64,
    /// The standard deviation of the one-step error.
    pub sigma: f64,
    /// Effective number of errors behind `sigma` (degrees of freedom of the z-score).
    pub dof: f64,
}

impl SeasonalModel {
    /// A fresh baseline (the configuration must have been validated).
    pub fn new(config: SeasonalConfig) -> Self {
        let periods: &[i64] = match config.period {
            Period::Auto => &[0, DAY_MS, WEEK_MS],
            Period::None => &[0],
            Period::Daily => &[DAY_MS],
            Period::Weekly => &[WEEK_MS],
        };
        Self {
            components: periods.iter().map(|&p| Component::new(p)).collect(),
            chosen: 0,
            start_ms: None,
            since_reset: 0,
            raw_mean: 0.0,
            spread: 0.0,
            raw_n: 0,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SeasonalConfig {
        &self.config
    }

    /// True while the baseline cannot judge yet with a seasonal model, as the standalone
    /// `seasonal` and `cusum` detectors use it: until the data spans 1.5 periods of the
    /// configured model (36 hours for `auto` and `daily`, 10.5 days for `weekly`) and `warmup`
    /// points. Those detectors have no tail calibration to absorb the level-only model's misfit
    /// on a seasonal series, so they wait.
    pub fn warming_up(&self, time_ms: i64) -> bool {
        if self.since_reset < self.config.warmup as u64 {
            return true;
        }
        // Until the period choice can be made: the seasonal candidate becomes eligible after
        // 1.5 periods (a period to learn its buckets, half a period to measure its error).
        let span = match self.config.period {
            Period::None => 0,
            Period::Auto | Period::Daily => DAY_MS * 3 / 2,
            Period::Weekly => WEEK_MS * 3 / 2,
        };
        self.start_ms
            .is_none_or(|s| time_ms.saturating_sub(s) < span)
    }

    /// True while the baseline cannot judge at all (the cold start the ensemble uses): `warmup`
    /// points since the start or the last gap; with `auto` the level-only model then judges
    /// until a seasonal one is eligible and better. A fixed `daily` or `weekly` period still
    /// needs 1.5 periods, as in [`Self::warming_up`].
    pub fn cold(&self, time_ms: i64) -> bool {
        match self.config.period {
            Period::Auto | Period::None => self.since_reset < self.config.warmup as u64,
            Period::Daily | Period::Weekly => self.warming_up(time_ms),
        }
    }

    /// The expectation at `time_ms` of the model in use.
    pub fn expect(&self, time_ms: i64) -> Expectation {
        match self.components.get(self.chosen) {
            Some(c) => Expectation {
                expected: c.predict(time_ms),
                sigma: c.sigma(self.floor()),
                dof: (c.err_n as f64)
                    .min((2.0 - self.config.scale_alpha) / self.config.scale_alpha),
            },
            None => Expectation {
                expected: f64::NAN,
                sigma: f64::NAN,
                dof: 0.0,
            },
        }
    }

    /// The floor of the error scale: [`SIGMA_FLOOR`] of the spread.
    fn floor(&self) -> f64 {
        SIGMA_FLOOR * self.spread
    }

    /// The period of the model in use in milliseconds (0: none).
    pub fn chosen_period_ms(&self) -> i64 {
        self.components.get(self.chosen).map_or(0, |c| c.period_ms)
    }

    /// Learns from the point at `time_ms`, `interval_ms` being the typical interval.
    pub fn update(&mut self, time_ms: i64, x: f64, interval_ms: f64) {
        if self.start_ms.is_none() {
            self.start_ms = Some(time_ms);
        }
        self.since_reset += 1;
        let floor = self.floor();
        for c in &mut self.components {
            c.update(time_ms, x, interval_ms, floor, &self.config);
        }
        self.raw_n += 1;
        let a = 0.01_f64.max(1.0 / self.raw_n as f64);
        self.spread += a * ((x - self.raw_mean).abs() - self.spread);
        self.raw_mean += a * (x - self.raw_mean);
        self.select(time_ms);
    }

    /// Moves every level by `delta` (after a detected level shift, to adopt the new level).
    pub fn shift_level(&mut self, delta: f64) {
        for c in &mut self.components {
            c.level += delta;
        }
    }

    /// Scales every error variance by `factor` (after a detected variance change).
    pub fn scale_variance(&mut self, factor: f64) {
        for c in &mut self.components {
            c.err_var *= factor;
        }
    }

    /// After a gap: the levels are re-learnt from the next points, the seasonal arrays stay.
    pub fn on_gap(&mut self) {
        self.since_reset = 0;
        for c in &mut self.components {
            c.level_n = 0;
        }
    }

    /// Picks the candidate in use: the most seasonal one that is eligible and at least 10%
    /// better than the best simpler one.
    fn select(&mut self, time_ms: i64) {
        let mut best = 0usize;
        let mut best_err = f64::INFINITY;
        for (i, c) in self.components.iter().enumerate() {
            let eligible = if c.seasonal() {
                c.err_n >= 16
                    && c.start_ms
                        .is_some_and(|s| time_ms.saturating_sub(s) >= c.period_ms * 3 / 2)
            } else {
                true
            };
            if !eligible {
                continue;
            }
            if i == 0 || c.sel_err < 0.9 * best_err {
                best = i;
                best_err = c.sel_err;
            }
        }
        self.chosen = best;
    }

    /// Bytes held, approximately.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .components
                .iter()
                .map(|c| {
                    std::mem::size_of::<Component>() + c.profile.as_ref().map_or(0, Profile::bytes)
                })
                .sum::<usize>()
    }
}

/// The seasonal detector; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seasonal {
    input: Input,
    model: SeasonalModel,
}

impl Seasonal {
    /// A fresh detector.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn new(config: SeasonalConfig) -> Result<Self, DetectorError> {
        config.validate("seasonal")?;
        Ok(Self {
            input: Input::new(config.counter),
            model: SeasonalModel::new(config),
        })
    }

    /// The baseline (for inspection: chosen period, memory).
    pub fn model(&self) -> &SeasonalModel {
        &self.model
    }
}

impl Detector for Seasonal {
    fn observe(&mut self, time_ms: i64, value: f64) -> Verdict {
        let gap_factor = self.model.config.gap_factor;
        let (x, gap) = match self.input.step(time_ms, value, gap_factor) {
            Prepared::Skip => return Verdict::missing(self.model.warming_up(time_ms)),
            Prepared::Value { value, gap } => (value, gap),
        };
        if gap {
            self.model.on_gap();
        }
        let e = self.model.expect(time_ms);
        let verdict = if self.model.warming_up(time_ms) || !e.expected.is_finite() {
            Verdict::warming(if e.expected.is_finite() {
                e.expected
            } else {
                x
            })
        } else {
            let band = self.model.config.band * e.sigma;
            let z = (x - e.expected) / e.sigma;
            let mut v = Verdict::judged(
                x,
                e.expected,
                e.expected - band,
                e.expected + band,
                score_of_surprise(student_surprise(z, e.dof)),
            );
            let period = self.model.chosen_period_ms();
            v.period_ms = period;
            if v.score > 0.0 {
                v.signal = if period > 0 {
                    Signal::Seasonal
                } else {
                    Signal::Value
                };
            }
            v
        };
        self.model.update(time_ms, x, self.input.interval_ms());
        verdict
    }
}
