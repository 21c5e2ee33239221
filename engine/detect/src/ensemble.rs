//! `ensemble` (the default detector): the seasonal baseline and the other detectors' statistics
//! on one series, combined into one calibrated score.
//!
//! Members (all computed from the same point; `members` picks which count):
//! - `seasonal`: the standardized one-step error of the seasonal baseline ([`SeasonalModel`]);
//! - `persistence`: an exponentially weighted mean (weight `persistence_alpha`) of that error's
//!   surprise: a sustained moderate deviation (level shift, trend change, variance increase,
//!   seasonality break) that no single point shows;
//! - `drift`: an exponentially weighted mean (same weight) of the signed standardized error,
//!   standardized again (`× sqrt((2 − a)/a)`): a run of errors of one sign — a level shift or a
//!   trend — before the baseline's level has adapted to it;
//! - `residual_z`: the robust z-score of the baseline's error against the rolling median/MAD of
//!   the last `robust_window` errors;
//! - `robust_z`: the robust z-score of the raw value against its own rolling window;
//! - `ewma`: the z-score of the raw value against an EWMA of mean and variance;
//! - `cusum`: the four CUSUM statistics (level up/down, variance up/down) on the baseline's
//!   standardized errors ([`crate::changepoint`]);
//! - `range`: a new extreme — the value beyond every value the series has shown; its surprise
//!   (`log10 n` for the `n`-th point, scaled by the overshoot) is *added* to the largest other
//!   member's, being evidence of another kind (HTM's "spatial anomaly" in NAB);
//! - `context`: unseen sequences of coarse value levels ([`crate::context`], CAD OSE style).
//!
//! The default is `seasonal` + `persistence` + `drift`: on the NAB dev corpus adding the others
//! added more false positives than detections (real residuals are autocorrelated, which the
//! CUSUM's null model ignores; the context member fires on every noisy series' new sequences;
//! `range` double-counts a large value that is also a new maximum); they stay available for
//! series where they help.
//!
//! **Calibration.** Each member's statistic becomes a *nominal* surprise `-log10 p` under that
//! member's null model: two-sided Student-t for the z-scores (degrees of freedom = effective
//! points behind the scale estimate), Wald's bound `e^−s` for the CUSUM log likelihood ratios
//! ([`crate::calibrate`]). Real series are heavier-tailed than any such model, so each member's
//! nominal surprise is then recalibrated against that member's own history on this series by a
//! [`TailCalibrator`]: peaks over the 99% quantile with an exponential tail (SPOT-style), which
//! turns it into an empirical tail probability ("how rare is this *for this series*"). The
//! ensemble takes the largest calibrated surprise and pays for having looked at `m` members
//! (Bonferroni: subtract `log10 m`, `range` not counted); the score is `min(1, surprise / 10)`.
//! So a score of 0.2
//! (the default `alert`) is the first level above the body of every member's distribution
//! (the 1% tail), 0.5 a one-in-100,000 event for this series.
//!
//! **Persistence rule.** To keep scores sparse (one alert per anomaly, not one per point), a
//! score at or above `alert` starts a hold-off of `holdoff` points during which scores are capped
//! just below `alert` (the expected band is still reported), unless the score reaches `escalate`
//! (0.5, a one-in-100,000 event for the series) for the first time in the episode: a severe anomaly is
//! never masked by a minor alert before it, and one episode escalates once.
//!
//! **Cold start and confidence.** Warm-up: that of the baseline — 16 points with `period =
//! auto` (16 minutes at 1-minute resolution); the level-only model judges until a seasonal one
//! is eligible (1.5 days for daily, 1.5 weeks for weekly, see [`crate::seasonal`]) and predicts
//! better; until a seasonal model could be chosen (1.5 days), `persistence` and `drift` learn
//! but do not count (to the level-only model a daily swing is a drift), so the cold start
//! catches point anomalies and sustained ones wait for the seasonality to be known. Until the
//! tail calibration has 200 points (`tail.min_mass`), nominal surprises
//! pass, capped, and the verdict's `confidence` grows linearly from 0 to 1 over those points;
//! a point then needs `young × (1 − confidence)` more surprise (default 1: ten times the
//! evidence at first), so a young series does not cry wolf while its models are unsure.
//! `period_ms` says which seasonality is in use and `watched_ms` how long the series has been
//! watched.
//!
//! After a gap (more than `gap_factor` typical intervals)
//! every member restarts its short-term state, the baseline keeps its seasonal arrays and
//! re-learns its level for `warmup` points: no false alarm after an outage. Counters: set
//! `baseline.counter` to judge the rate per second (resets are tolerated).
//!
//! Memory per series: about 6.9 KiB at 5-minute resolution with the default members (baseline
//! ~3.4 KiB, eight 256-byte calibrators, the rest ~1 KiB; each rolling window that is on adds
//! 1 KiB, the `context` member ~0.7 KiB when on) — [`Ensemble::bytes`].

use crate::calibrate::{
    TailCalibrator, TailParams, cusum_surprise, score_of_surprise, student_surprise,
};
use crate::changepoint::{Change, CusumCore, CusumParams, adopt};
use crate::context::{Context, ContextConfig, extreme_surprise, widen};
use crate::ewma::EwmaCore;
use crate::registry::DetectorError;
use crate::robust_z::RobustZCore;
use crate::seasonal::{SeasonalConfig, SeasonalModel};
use crate::series::{Detector, Direction, Signal, Verdict};
use crate::stats::{Input, Prepared};
use serde::{Deserialize, Serialize};

/// Parameters of [`Ensemble`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnsembleConfig {
    /// The seasonal baseline (its `warmup`, `gap_factor`, `counter` and `band` apply to the
    /// ensemble). Default: [`SeasonalConfig`] defaults (a partial `baseline` object takes the
    /// [`SeasonalConfig`] defaults for the fields it leaves out).
    pub baseline: SeasonalConfig,
    /// Points in the rolling windows of `residual_z` and `robust_z`, 8..=4096. Default 64.
    pub robust_window: usize,
    /// Weight of a point in the `ewma` member, in (0, 0.5]. Default 0.05.
    pub ewma_alpha: f64,
    /// The CUSUM statistics. Default: [`CusumParams`] defaults with `threshold` 16.118
    /// (`ln 10^7`).
    pub cusum: CusumParams,
    /// Members on; names as in the module documentation. Default `seasonal`, `persistence`,
    /// `drift`.
    pub members: Vec<Member>,
    /// Weight of a point in the `persistence` member's mean, in (0, 1]. Default 0.1.
    pub persistence_alpha: f64,
    /// Score that starts a hold-off, in (0, 1]. Default 0.2 (the 1% tail, see the module
    /// documentation).
    pub alert: f64,
    /// Points of hold-off after an alert; 0 disables it. Default 50.
    pub holdoff: usize,
    /// During a hold-off, a score at or above `escalate` that is also above the episode's peak
    /// still gets through (and restarts the hold-off), once per episode, so a minor alert cannot
    /// mask a severe anomaly just after it. In (0, 1]; default 0.5 (a one-in-100,000 event for
    /// the series; on the NAB dev corpus 0.5 to 0.9 score within 0.3 points of each other).
    pub escalate: f64,
    /// The empirical tail calibration of every member ([`TailCalibrator`]).
    pub tail: TailParams,
    /// The `context` member ([`crate::context`]); its `counter`, `gap_factor`, `alert` and
    /// `rest` are ignored (the ensemble's apply).
    pub context: ContextConfig,
    /// The `range` member: a value beyond the range seen by more than this fraction of its
    /// width is a new extreme, in [0, 10]. Default 0.
    pub range_tolerance: f64,
    /// Extra surprise (`log10` units) a point needs while the series is young: `young ×
    /// (1 − confidence)`, confidence growing from 0 to 1 over the first `tail.min_mass` (200)
    /// judged points, while the tail calibration is not yet in force. In [0, 10]; default 1 (the
    /// first judged point needs ten times the evidence).
    pub young: f64,
}

/// The index standing for the `range` member in the verdict's signal (it has no calibrator).
const RANGE: usize = 8;

/// A member of the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Member {
    /// Standardized error of the seasonal baseline.
    Seasonal,
    /// Robust z-score of the baseline's error.
    ResidualZ,
    /// Robust z-score of the raw value.
    RobustZ,
    /// EWMA z-score of the raw value.
    Ewma,
    /// CUSUM of the baseline's standardized error.
    Cusum,
    /// Exponentially weighted mean of the baseline's surprise: a sustained moderate deviation.
    Persistence,
    /// Exponentially weighted mean of the baseline's signed standardized error, standardized
    /// again: a run of errors of one sign (level shift, trend) before the level adapts.
    Drift,
    /// Unseen sequences of value levels and new extremes ([`crate::context`]).
    Context,
    /// A new extreme: the value beyond every value seen since the series' first point (a gap
    /// does not reset it). Its surprise is *added* to the largest other member's: it is evidence
    /// of a different kind (the series has never been there), not another view of the same
    /// error. On its own it counts as one member for the Bonferroni correction.
    Range,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        Self {
            baseline: SeasonalConfig::default(),
            robust_window: 64,
            ewma_alpha: 0.05,
            // A change is declared at ln 10^7 nats (not 10^5 as for `cusum` alone): the ensemble
            // pays log10 m for its members, so its CUSUM needs more evidence to say as much.
            cusum: CusumParams {
                threshold: 7.0 * std::f64::consts::LN_10,
                ..CusumParams::default()
            },
            members: vec![Member::Seasonal, Member::Persistence, Member::Drift],
            persistence_alpha: 0.1,
            alert: 0.2,
            holdoff: 50,
            escalate: 0.5,
            tail: TailParams::default(),
            context: ContextConfig::default(),
            range_tolerance: 0.0,
            young: 1.0,
        }
    }
}

impl EnsembleConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let err = |reason: String| {
            Err(DetectorError::Parameter {
                detector: "ensemble",
                reason,
            })
        };
        self.baseline.validate("ensemble")?;
        self.cusum.validate("ensemble")?;
        self.tail.validate("ensemble")?;
        if !(8..=4096).contains(&self.robust_window) {
            return err(format!(
                "robust_window must be in 8..=4096, got {}",
                self.robust_window
            ));
        }
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 0.5) {
            return err(format!(
                "ewma_alpha must be in (0, 0.5], got {}",
                self.ewma_alpha
            ));
        }
        if !(self.persistence_alpha > 0.0 && self.persistence_alpha <= 1.0) {
            return err(format!(
                "persistence_alpha must be in (0, 1], got {}",
                self.persistence_alpha
            ));
        }
        if !(0.0..=10.0).contains(&self.range_tolerance) {
            return err(format!(
                "range_tolerance must be in [0, 10], got {}",
                self.range_tolerance
            ));
        }
        if !(0.0..=10.0).contains(&self.young) {
            return err(format!("young must be in [0, 10], got {}", self.young));
        }
        if self.members.is_empty() {
            return err("members must not be empty".to_string());
        }
        if !(self.escalate > 0.0 && self.escalate <= 1.0) {
            return err(format!("escalate must be in (0, 1], got {}", self.escalate));
        }
        if !(self.alert > 0.0 && self.alert <= 1.0) {
            return err(format!("alert must be in (0, 1], got {}", self.alert));
        }
        Ok(())
    }
}

/// Which members are on, as flags (checked per point without scanning the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
struct On {
    seasonal: bool,
    residual_z: bool,
    robust_z: bool,
    ewma: bool,
    cusum: bool,
    persistence: bool,
    drift: bool,
    context: bool,
    range: bool,
}

/// The ensemble detector; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    config: EnsembleConfig,
    on: On,
    /// `log10` of the number of members (the Bonferroni correction).
    log10_m: f64,
    input: Input,
    model: SeasonalModel,
    residuals: RobustZCore,
    raw: RobustZCore,
    ewma: EwmaCore,
    cusum: CusumCore,
    /// Points of hold-off left.
    holdoff_left: u32,
    /// Highest score reported in the current episode (hold-off).
    episode_peak: f64,
    /// One tail calibrator per member, in the order of [`Member`].
    /// Checkpoints written before the `context` member existed hold seven.
    #[serde(deserialize_with = "seven_or_eight")]
    calibrators: [TailCalibrator; 8],
    /// Exponentially weighted mean of the baseline's standardized error (the `drift` member).
    drift: f64,
    /// Exponentially weighted mean of the baseline's surprise (the `persistence` member).
    recent: f64,
    /// The `context` member, only when it is on.
    #[serde(default)]
    context: Option<Context>,
    /// Time of the first point (for [`Verdict::watched_ms`]).
    #[serde(default)]
    first_ms: Option<i64>,
    /// Points judged after the warm-up (for [`Verdict::confidence`]). A checkpoint written
    /// before this field existed is of a series judged long enough: it counts as mature.
    #[serde(default = "mature")]
    judged: u32,
    /// The range of values seen since the start (the `range` member), and how
    /// many values are behind it.
    #[serde(default = "empty_range")]
    range: (f64, f64, u32),
    /// The period of the model in use at the last point.
    #[serde(default)]
    period_seen: i64,
    /// Whether the sustained members counted at the last point.
    #[serde(default)]
    sustained: bool,
}

fn mature() -> u32 {
    u32::MAX
}

/// Reads the calibrators of a checkpoint: eight, or the seven of checkpoints written before the
/// `context` member (the eighth starts empty).
fn seven_or_eight<'de, D>(d: D) -> Result<[TailCalibrator; 8], D::Error>
where
    D: serde::Deserializer<'de>,
{
    let mut v: Vec<TailCalibrator> = Vec::deserialize(d)?;
    if !(7..=8).contains(&v.len()) {
        return Err(serde::de::Error::invalid_length(
            v.len(),
            &"7 or 8 calibrators",
        ));
    }
    v.resize_with(8, TailCalibrator::default);
    v.try_into()
        .map_err(|_| serde::de::Error::custom("8 calibrators"))
}

fn empty_range() -> (f64, f64, u32) {
    (0.0, 0.0, 0)
}

impl Ensemble {
    /// A fresh detector.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn new(config: EnsembleConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        let mut on = On::default();
        for m in &config.members {
            match m {
                Member::Seasonal => on.seasonal = true,
                Member::ResidualZ => on.residual_z = true,
                Member::RobustZ => on.robust_z = true,
                Member::Ewma => on.ewma = true,
                Member::Cusum => on.cusum = true,
                Member::Persistence => on.persistence = true,
                Member::Drift => on.drift = true,
                Member::Context => on.context = true,
                Member::Range => on.range = true,
            }
        }
        let m = [
            on.seasonal,
            on.residual_z,
            on.robust_z,
            on.ewma,
            on.cusum,
            on.persistence,
            on.drift,
            on.context,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        Ok(Self {
            on,
            // At least one: `range` alone counts none (its surprise is added, not compared).
            log10_m: (m.max(1) as f64).log10(),
            input: Input::new(config.baseline.counter),
            model: SeasonalModel::new(config.baseline.clone()),
            residuals: RobustZCore::new(config.robust_window),
            raw: RobustZCore::new(config.robust_window),
            ewma: EwmaCore::default(),
            cusum: CusumCore::default(),
            holdoff_left: 0,
            episode_peak: 0.0,
            calibrators: Default::default(),
            recent: 0.0,
            drift: 0.0,
            context: if on.context {
                Some(Context::new(config.context.clone())?)
            } else {
                None
            },
            first_ms: None,
            judged: 0,
            range: empty_range(),
            period_seen: 0,
            sustained: false,
            config,
        })
    }

    /// How much history backs the verdicts, in `[0, 1]`: judged points over the tail
    /// calibration's minimum mass (until then its surprises are nominal, not yet checked
    /// against the series' own tail).
    fn confidence(&self) -> f64 {
        (f64::from(self.judged) / f64::from(self.config.tail.min_mass)).min(1.0)
    }

    /// Bytes of state, approximately (for the memory figure in the documentation).
    pub fn bytes(&self) -> usize {
        let windows = usize::from(self.on.residual_z) + usize::from(self.on.robust_z);
        self.model.bytes()
            + windows * 16 * self.config.robust_window
            + self.calibrators.len() * (4 * 64 + 32)
            + self.context.as_ref().map_or(0, Context::bytes)
            + std::mem::size_of::<Self>()
    }
}

impl Detector for Ensemble {
    fn observe(&mut self, time_ms: i64, value: f64) -> Verdict {
        let cfg = &self.config;
        let (x, gap) = match self.input.step(time_ms, value, cfg.baseline.gap_factor) {
            Prepared::Skip => return Verdict::missing(self.model.cold(time_ms)),
            Prepared::Value { value, gap } => (value, gap),
        };
        if gap {
            self.model.on_gap();
            self.residuals.clear();
            self.raw.clear();
            self.ewma.clear();
            self.cusum.clear();
            self.holdoff_left = 0;
            self.recent = 0.0;
            self.drift = 0.0;
        }
        let e = self.model.expect(time_ms);
        let warming = self.model.cold(time_ms) || !e.expected.is_finite();
        let resid = x - e.expected;
        let z = resid / e.sigma;
        // Nominal surprise of each member (NaN: not available for this point).
        let mut nominal = [f64::NAN; 8];
        let base = if e.expected.is_finite() && (self.on.seasonal || self.on.persistence) {
            student_surprise(z, e.dof)
        } else {
            f64::NAN
        };
        if self.on.seasonal {
            nominal[0] = base;
        }
        if self.on.residual_z
            && self.residuals.len() >= 8
            && let Some(j) = self.residuals.judge(resid)
        {
            nominal[1] = student_surprise(j.z, j.dof);
        }
        if self.on.robust_z
            && self.raw.len() >= 8
            && let Some(j) = self.raw.judge(x)
        {
            nominal[2] = student_surprise(j.z, j.dof);
        }
        if self.on.ewma && self.ewma.n >= 8 {
            nominal[3] = student_surprise(self.ewma.z(x), self.ewma.dof(cfg.ewma_alpha));
        }
        // A daily swing looks like drift to the level-only model: the sustained-deviation
        // members count only once a seasonal model could be chosen (1.5 days with `auto`);
        // their state and calibration learn from the start.
        let sustained_ok = !self.model.warming_up(time_ms);
        // When the model in use changes (the seasonality is found) or the sustained members
        // start to count, the running means of the errors describe the cold-start model:
        // start them afresh.
        let period = self.model.chosen_period_ms();
        if period != self.period_seen || sustained_ok != self.sustained {
            self.period_seen = period;
            self.sustained = sustained_ok;
            self.recent = 0.0;
            self.drift = 0.0;
        }
        if self.on.persistence && e.expected.is_finite() {
            self.recent += cfg.persistence_alpha * (base - self.recent);
            nominal[5] = self.recent;
        }
        if self.on.drift && e.expected.is_finite() {
            // Under the null the errors are independent N(0, 1): their weighted mean has
            // variance a / (2 − a), so it is standardized back to N(0, 1).
            let a = cfg.persistence_alpha;
            self.drift += a * (z.clamp(-cfg.baseline.clip, cfg.baseline.clip) - self.drift);
            nominal[6] = student_surprise(self.drift * ((2.0 - a) / a).sqrt(), e.dof);
        }
        let mut range_surprise = 0.0;
        if self.on.range {
            let (lo, hi, n) = self.range;
            range_surprise = extreme_surprise(lo, hi, n, x, cfg.range_tolerance);
            let (lo, hi) = widen(lo, hi, n, x);
            self.range = (lo, hi, n.saturating_add(1));
        }
        let mut context_signal = None;
        if let Some(context) = self.context.as_mut()
            && let Some((surprise, signal)) = context.surprise(x, gap)
        {
            nominal[7] = surprise;
            context_signal = Some(signal);
        }
        let mut cusum_side = None;
        if self.on.cusum && !warming {
            let step = self.cusum.step(z, resid, &cfg.cusum);
            nominal[4] = cusum_surprise(step.stat);
            cusum_side = step.side;
            if let Some((change, adj)) = step.declared {
                adopt(&mut self.model, change, adj);
            }
        }
        let verdict = if warming {
            Verdict::warming(if e.expected.is_finite() {
                e.expected
            } else {
                x
            })
        } else {
            let mut surprise = 0.0_f64;
            let mut top = 0;
            for (i, &xn) in nominal.iter().enumerate() {
                if xn.is_nan() || (!sustained_ok && (i == 5 || i == 6)) {
                    continue;
                }
                // The persistence member is a mean of surprises, not a surprise: only its own
                // tail says how rare it is.
                let s = self.calibrators[i].calibrate_with(xn, &cfg.tail, i != 5);
                if s > surprise {
                    surprise = s;
                    top = i;
                }
            }
            if range_surprise > 0.0 {
                surprise += range_surprise;
                if range_surprise >= surprise - range_surprise {
                    top = RANGE;
                }
            }
            // Young series: the surprise needed grows as confidence falls (see the module
            // documentation), so the cold start does not cry wolf while models are unsure.
            let confidence = self.confidence();
            let mut score =
                score_of_surprise(surprise - self.log10_m - cfg.young * (1.0 - confidence));
            if self.holdoff_left > 0 && (score < cfg.escalate || self.episode_peak >= cfg.escalate)
            {
                // Same episode, no escalation: stay below the alert level.
                self.holdoff_left -= 1;
                score = score.min(cfg.alert * (1.0 - 1e-9));
            } else if score >= cfg.alert && cfg.holdoff > 0 {
                // A new episode, or an escalation of the current one: report, (re)start.
                self.holdoff_left = cfg.holdoff as u32;
                self.episode_peak = score;
            } else if self.holdoff_left > 0 {
                self.holdoff_left -= 1;
            }
            let band = cfg.baseline.band * e.sigma;
            let mut v = Verdict::judged(x, e.expected, e.expected - band, e.expected + band, score);
            if top == 4 {
                match cusum_side {
                    Some(Change::LevelUp) => v.direction = Direction::Up,
                    Some(Change::LevelDown) => v.direction = Direction::Down,
                    _ => {}
                }
            }
            if score > 0.0 {
                v.signal = match top {
                    0 if self.model.chosen_period_ms() > 0 => Signal::Seasonal,
                    4 => Signal::Change,
                    5 => Signal::Persistence,
                    6 => Signal::Drift,
                    7 => context_signal.unwrap_or(Signal::Context),
                    RANGE => Signal::Range,
                    _ => Signal::Value,
                };
            }
            v
        };
        let first = *self.first_ms.get_or_insert(time_ms);
        let mut verdict = verdict;
        verdict.watched_ms = time_ms.saturating_sub(first).max(0);
        verdict.period_ms = self.model.chosen_period_ms();
        if !warming {
            self.judged = self.judged.saturating_add(1);
        }
        verdict.confidence = self.confidence();
        // The calibrators learn only once the baseline is warm, and those of the sustained
        // members only once they count: the level-only model's drift along a daily swing would
        // otherwise fatten their tails for thousands of points.
        if !warming {
            for (i, &xn) in nominal.iter().enumerate() {
                if !xn.is_nan() && (sustained_ok || !(i == 5 || i == 6)) {
                    self.calibrators[i].record(xn, &cfg.tail);
                }
            }
        }
        // Only the members that are on keep state (and cost time).
        if self.on.residual_z && e.expected.is_finite() {
            self.residuals.push(resid);
        }
        if self.on.robust_z {
            self.raw.push(x);
        }
        if self.on.ewma {
            self.ewma.update(x, cfg.ewma_alpha, cfg.baseline.clip);
        }
        self.model.update(time_ms, x, self.input.interval_ms());
        verdict
    }
}
