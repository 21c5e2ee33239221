//! `cusum`: two-sided CUSUM change-point detection on the standardized residuals of a seasonal
//! baseline, for lasting changes a per-point z-score misses: level shifts (up or down) and
//! variance changes (doubling or halving).
//!
//! Residuals `z = (x − expected) / σ` come from a [`SeasonalModel`] whose level adapts slowly
//! (`baseline.level_alpha` 0.02 by default), so a shift shows as a run of residuals of one sign.
//! Four likelihood-ratio CUSUMs run on `z` clipped at ±`clip` (so one spike cannot pass for a
//! change): mean `+drift·2` and `−drift·2` (increments `±z − drift`, `drift` = half the shift
//! looked for, in σ) and variance ×4 and ×¼ (increments `0.375 z² − ln 2` and `ln 2 − 1.5 z²`).
//! Each statistic is a log likelihood ratio, so under the null model it ever reaches `s` with
//! probability at most `e^−s` (Wald): the surprise is `s / ln 10` and the score follows
//! ([`crate::calibrate`]). At `threshold` nats (default `ln 10^5` = 11.5, score 0.5) a change is
//! declared: the statistics restart from zero and the baseline adopts the change (its level moves
//! by the mean residual of the run, or its variance is rescaled by the run's mean `z²`).
//!
//! Warm-up: that of the baseline (16 points with the default `auto` period); after a
//! gap the statistics restart and the baseline re-learns its level. Memory per series: that of
//! the baseline plus ~100 bytes (about 3.5 KiB at 5-minute resolution).

use crate::calibrate::{cusum_surprise, score_of_surprise};
use crate::registry::DetectorError;
use crate::seasonal::{SeasonalConfig, SeasonalModel};
use crate::series::{Detector, Direction, Verdict};
use crate::stats::{Input, Prepared};
use serde::{Deserialize, Serialize};

/// Parameters of [`Cusum`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CusumConfig {
    /// Half the mean shift looked for, in σ, > 0. Default 0.5 (tuned for 1σ shifts; larger
    /// shifts are found faster anyway).
    pub drift: f64,
    /// Decision threshold of every statistic in nats, > 0. Default 11.513 (`ln 10^5`).
    pub threshold: f64,
    /// Residuals are clipped at ±`clip` σ before accumulating, > 1. Default 4.
    pub clip: f64,
    /// Also watch the variance. Default true.
    pub variance: bool,
    /// The baseline whose residuals are watched; its `counter` and `gap_factor` apply.
    /// Default: [`SeasonalConfig`] defaults with `level_alpha` 0.02.
    pub baseline: SeasonalConfig,
}

impl Default for CusumConfig {
    fn default() -> Self {
        Self {
            drift: 0.5,
            threshold: 5.0 * std::f64::consts::LN_10,
            clip: 4.0,
            variance: true,
            baseline: SeasonalConfig {
                level_alpha: 0.02,
                ..SeasonalConfig::default()
            },
        }
    }
}

impl CusumConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        self.params().validate("cusum")?;
        self.baseline.validate("cusum")
    }

    /// The parameters of the statistics.
    pub fn params(&self) -> CusumParams {
        CusumParams {
            drift: self.drift,
            threshold: self.threshold,
            clip: self.clip,
            variance: self.variance,
        }
    }
}

/// The parameters of the CUSUM statistics themselves (without the baseline); the ensemble
/// takes these.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CusumParams {
    /// See [`CusumConfig::drift`]. Default 0.5.
    pub drift: f64,
    /// See [`CusumConfig::threshold`]. Default 11.513.
    pub threshold: f64,
    /// See [`CusumConfig::clip`]. Default 4.
    pub clip: f64,
    /// See [`CusumConfig::variance`]. Default true.
    pub variance: bool,
}

impl Default for CusumParams {
    fn default() -> Self {
        let c = CusumConfig::default();
        c.params()
    }
}

impl CusumParams {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self, detector: &'static str) -> Result<(), DetectorError> {
        let err = |reason: String| Err(DetectorError::Parameter { detector, reason });
        if !(self.drift > 0.0 && self.drift.is_finite()) {
            return err(format!("drift must be > 0, got {}", self.drift));
        }
        if !(self.threshold > 0.0 && self.threshold.is_finite()) {
            return err(format!("threshold must be > 0, got {}", self.threshold));
        }
        if self.clip.is_nan() || self.clip <= 1.0 {
            return err(format!("clip must be > 1, got {}", self.clip));
        }
        Ok(())
    }
}

/// One side of a CUSUM: the statistic and what the current run accumulated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
struct Side {
    stat: f64,
    len: u32,
    sum: f64,
}

impl Side {
    /// Adds an increment; `q` is the quantity averaged over the run (residual or `z²`).
    fn step(&mut self, inc: f64, q: f64) {
        self.stat += inc;
        if self.stat <= 0.0 {
            *self = Self::default();
        } else {
            self.len += 1;
            self.sum += q;
        }
    }

    fn mean(&self) -> f64 {
        if self.len == 0 {
            0.0
        } else {
            self.sum / f64::from(self.len)
        }
    }
}

/// The change a CUSUM declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The level went up.
    LevelUp,
    /// The level went down.
    LevelDown,
    /// The variance went up.
    VarianceUp,
    /// The variance went down.
    VarianceDown,
}

/// What [`CusumCore::step`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CusumStep {
    /// The largest statistic (nats) before any restart.
    pub stat: f64,
    /// The side holding it, when positive.
    pub side: Option<Change>,
    /// A change was declared (the statistics restarted); with the adjustment for the
    /// baseline: the mean residual of the run (level) or the mean `z²` of the run (variance).
    pub declared: Option<(Change, f64)>,
}

/// The four CUSUM statistics; shared with the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct CusumCore {
    up: Side,
    down: Side,
    var_up: Side,
    var_down: Side,
}

impl CusumCore {
    /// Restarts every statistic.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Accumulates the standardized residual `z` (raw residual `resid`).
    pub fn step(&mut self, z: f64, resid: f64, cfg: &CusumParams) -> CusumStep {
        let zc = z.clamp(-cfg.clip, cfg.clip);
        let r = resid;
        self.up.step(zc - cfg.drift, r);
        self.down.step(-zc - cfg.drift, r);
        if cfg.variance {
            let z2 = zc * zc;
            let ln2 = std::f64::consts::LN_2;
            self.var_up.step(0.375 * z2 - ln2, z2);
            self.var_down.step(ln2 - 1.5 * z2, z2);
        }
        let sides = [
            (self.up, Change::LevelUp),
            (self.down, Change::LevelDown),
            (self.var_up, Change::VarianceUp),
            (self.var_down, Change::VarianceDown),
        ];
        let mut stat = 0.0;
        let mut side = None;
        for (s, c) in sides {
            if s.stat > stat {
                stat = s.stat;
                side = Some(c);
            }
        }
        let declared = match side {
            Some(c) if stat >= cfg.threshold => {
                let adj = match c {
                    Change::LevelUp => self.up.mean(),
                    Change::LevelDown => self.down.mean(),
                    Change::VarianceUp => self.var_up.mean(),
                    Change::VarianceDown => self.var_down.mean(),
                };
                self.clear();
                Some((c, adj))
            }
            _ => None,
        };
        CusumStep {
            stat,
            side,
            declared,
        }
    }
}

/// Adopts a declared change in the baseline.
pub fn adopt(model: &mut SeasonalModel, change: Change, adj: f64) {
    match change {
        Change::LevelUp | Change::LevelDown => model.shift_level(adj),
        Change::VarianceUp | Change::VarianceDown => model.scale_variance(adj.clamp(0.05, 16.0)),
    }
}

/// The CUSUM change-point detector; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    config: CusumConfig,
    input: Input,
    model: SeasonalModel,
    core: CusumCore,
}

impl Cusum {
    /// A fresh detector.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn new(config: CusumConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        Ok(Self {
            input: Input::new(config.baseline.counter),
            model: SeasonalModel::new(config.baseline.clone()),
            core: CusumCore::default(),
            config,
        })
    }
}

impl Detector for Cusum {
    fn observe(&mut self, time_ms: i64, value: f64) -> Verdict {
        let gap_factor = self.config.baseline.gap_factor;
        let (x, gap) = match self.input.step(time_ms, value, gap_factor) {
            Prepared::Skip => return Verdict::missing(self.model.warming_up(time_ms)),
            Prepared::Value { value, gap } => (value, gap),
        };
        if gap {
            self.model.on_gap();
            self.core.clear();
        }
        let e = self.model.expect(time_ms);
        let warming = self.model.warming_up(time_ms) || !e.expected.is_finite();
        let verdict = if warming {
            Verdict::warming(if e.expected.is_finite() {
                e.expected
            } else {
                x
            })
        } else {
            let resid = x - e.expected;
            let step = self
                .core
                .step(resid / e.sigma, resid, &self.config.params());
            let band = self.config.baseline.band * e.sigma;
            let direction = match step.side {
                Some(Change::LevelUp) => Direction::Up,
                Some(Change::LevelDown) => Direction::Down,
                _ if x > e.expected + band => Direction::Up,
                _ if x < e.expected - band => Direction::Down,
                _ => Direction::None,
            };
            if let Some((change, adj)) = step.declared {
                adopt(&mut self.model, change, adj);
            }
            Verdict {
                score: score_of_surprise(cusum_surprise(step.stat)),
                expected: e.expected,
                lower: e.expected - band,
                upper: e.expected + band,
                direction,
                signal: if step.declared.is_some() {
                    crate::series::Signal::Change
                } else {
                    crate::series::Signal::None
                },
                period_ms: self.model.chosen_period_ms(),
                ..Verdict::default()
            }
        };
        self.model.update(time_ms, x, self.input.interval_ms());
        verdict
    }
}
