//! `context`: contextual anomaly detection in the style of CAD OSE (NAB's contextual anomaly
//! detector): a point is anomalous when the short *sequence* of coarse value levels that ends
//! with it has never been seen on this series, at a time when unseen sequences have become rare.
//!
//! **Levels.** Each value becomes one of `bins` levels between the lowest and highest value seen
//! so far (the range grows as the series shows more of itself; a value beyond it by more than
//! `tolerance` of its width is a *new extreme*, [`Signal::Range`]).
//!
//! **Contexts.** For every order `k = 1..=order` the transition "the last `k` levels → this
//! level" is looked up in a bitset of transitions seen before (`bins^(k+1)` bits per order: 584
//! bytes for 8 levels and order 3), then marked seen. A sequence memory of fixed size: no
//! growth with the number of points, no hashing, three table lookups per point.
//!
//! **Surprise.** A transition never seen is surprising in proportion to how rarely unseen
//! transitions of that order occur on this series *now*: each order keeps an exponentially
//! weighted rate `r_k` of novelties (weight `rate_alpha`), and a novelty adds `−log10 r_k` to the
//! point's surprise. While the series is young nearly everything is new, the rates are near 1
//! and nothing is surprising — the cold start needs no separate rule, and confidence grows as
//! the rates fall. A new extreme adds `log10(n)` (the chance that the `n`-th exchangeable point
//! is the largest is `1/n`) scaled by how far past the range it lands. The score is
//! `surprise / 10` as for every detector ([`crate::calibrate`]).
//!
//! **Rest.** After a score at or above `alert`, scores are capped below `alert` for `rest`
//! points unless they exceed the episode's peak (CAD's rest period): one alert per episode.
//!
//! Warm-up: `warmup` points (default 12: an hour at 5-minute resolution, 12 minutes at
//! 1-minute). Memory: ~700 bytes per series ([`Context::bytes`]).

use crate::calibrate::score_of_surprise;
use crate::registry::DetectorError;
use crate::series::{Detector, Signal, Verdict};
use crate::stats::{Input, Prepared};
use serde::{Deserialize, Serialize};

/// Parameters of [`Context`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// Value levels, 2..=16. Default 8 (CAD OSE's 3 bits).
    pub bins: u32,
    /// Longest context, in previous points, 1..=4. Default 3.
    pub order: u32,
    /// Points before any score, >= 2. Default 12.
    pub warmup: u32,
    /// Weight of a point in the novelty rates, in (0, 0.5]. Default 0.005 (about 200 points).
    pub rate_alpha: f64,
    /// A value beyond the range seen by more than this fraction of its width is a new extreme,
    /// in [0, 10]. Default 0.1.
    pub tolerance: f64,
    /// Score that starts a rest period, in (0, 1]. Default 0.2.
    pub alert: f64,
    /// Points of rest after an alert. Default 60.
    pub rest: u32,
    /// Gap factor (see [`crate::stats::Cadence`]), > 1. Default 5.
    pub gap_factor: f64,
    /// The series is a monotonic counter: judge its rate per second. Default false.
    pub counter: bool,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            bins: 8,
            order: 3,
            warmup: 12,
            rate_alpha: 0.005,
            tolerance: 0.1,
            alert: 0.2,
            rest: 60,
            gap_factor: 5.0,
            counter: false,
        }
    }
}

impl ContextConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] naming the parameter out of range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let err = |reason: String| {
            Err(DetectorError::Parameter {
                detector: "context",
                reason,
            })
        };
        if !(2..=16).contains(&self.bins) {
            return err(format!("bins must be in 2..=16, got {}", self.bins));
        }
        if !(1..=4).contains(&self.order) {
            return err(format!("order must be in 1..=4, got {}", self.order));
        }
        if self.warmup < 2 {
            return err(format!("warmup must be >= 2, got {}", self.warmup));
        }
        if self.rate_alpha.is_nan() || self.rate_alpha <= 0.0 || self.rate_alpha > 0.5 {
            return err(format!(
                "rate_alpha must be in (0, 0.5], got {}",
                self.rate_alpha
            ));
        }
        if !(0.0..=10.0).contains(&self.tolerance) {
            return err(format!(
                "tolerance must be in [0, 10], got {}",
                self.tolerance
            ));
        }
        if self.alert.is_nan() || self.alert <= 0.0 || self.alert > 1.0 {
            return err(format!("alert must be in (0, 1], got {}", self.alert));
        }
        if self.gap_factor.is_nan() || self.gap_factor <= 1.0 {
            return err(format!("gap_factor must be > 1, got {}", self.gap_factor));
        }
        Ok(())
    }
}

/// The context detector; see the [module](self) documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    config: ContextConfig,
    input: Input,
    /// Points judged (saturating).
    n: u32,
    first_ms: Option<i64>,
    lo: f64,
    hi: f64,
    /// The levels of the last `order` points, newest in the low bits (4 bits each).
    code: u32,
    /// Valid levels in `code` (0 after a gap).
    depth: u32,
    /// Transitions seen, all orders, one bit each.
    seen: Vec<u64>,
    /// Novelty rate per order.
    rates: [f64; 4],
    rest_left: u32,
    peak: f64,
}

impl Context {
    /// A fresh detector.
    ///
    /// # Errors
    /// [`DetectorError::Parameter`] when a parameter is out of range.
    pub fn new(config: ContextConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        let bits: usize = (1..=config.order)
            .map(|k| (config.bins as usize).pow(k + 1))
            .sum();
        Ok(Self {
            input: Input::new(config.counter),
            n: 0,
            first_ms: None,
            lo: 0.0,
            hi: 0.0,
            code: 0,
            depth: 0,
            seen: vec![0; bits.div_ceil(64)],
            rates: [1.0; 4],
            rest_left: 0,
            peak: 0.0,
            config,
        })
    }

    /// Bytes of state, approximately.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.seen.len() * 8
    }

    /// The level of `x` in the current range.
    fn level(&self, x: f64) -> u32 {
        let b = self.config.bins;
        let w = self.hi - self.lo;
        if w.is_nan() || w <= 0.0 {
            return b / 2;
        }
        let l = ((x - self.lo) / w * f64::from(b)).floor();
        (l.max(0.0) as u32).min(b - 1)
    }

    /// Looks up and marks the transitions ending in `level`; returns the novelty surprise and
    /// updates the rates.
    fn novelty(&mut self, level: u32) -> f64 {
        let b = self.config.bins as usize;
        let mut offset = 0usize;
        let mut surprise = 0.0;
        let mut ctx = 0usize;
        let mut scale = 1usize;
        for k in 1..=self.config.order {
            let size = b.pow(k + 1);
            if k <= self.depth {
                // ctx accumulates the previous k levels as a base-b number.
                let prev = ((self.code >> (4 * (k - 1))) & 0xf) as usize;
                ctx += prev * scale;
                scale *= b;
                let idx = offset + ctx * b + level as usize;
                let (w, bit) = (idx / 64, 1u64 << (idx % 64));
                let new = self.seen[w] & bit == 0;
                self.seen[w] |= bit;
                let r = &mut self.rates[(k - 1) as usize];
                if new {
                    surprise += -r.max(1e-6).log10();
                }
                *r += self.config.rate_alpha * (f64::from(u8::from(new)) - *r);
            }
            offset += size;
        }
        surprise
    }
}

impl Context {
    /// Judges a prepared value (after [`Input::step`]): the surprise and the signal behind it,
    /// or None during the warm-up. Updates the state; no rest period (the caller's business).
    pub(crate) fn surprise(&mut self, x: f64, gap: bool) -> Option<(f64, Signal)> {
        if gap {
            self.depth = 0;
        }
        let warming = self.n < self.config.warmup;
        let range_surprise = extreme_surprise(self.lo, self.hi, self.n, x, self.config.tolerance);
        let range_surprise = if warming { 0.0 } else { range_surprise };
        (self.lo, self.hi) = widen(self.lo, self.hi, self.n, x);
        let level = self.level(x);
        let context_surprise = self.novelty(level);
        self.code = ((self.code << 4) | level) & ((1u32 << (4 * self.config.order)) - 1);
        self.depth = (self.depth + 1).min(self.config.order);
        self.n = self.n.saturating_add(1);
        if warming {
            return None;
        }
        Some(if range_surprise >= context_surprise {
            (range_surprise, Signal::Range)
        } else {
            (context_surprise, Signal::Context)
        })
    }

    /// The range seen so far.
    pub(crate) fn range(&self) -> (f64, f64) {
        (self.lo, self.hi)
    }

    /// How well the detector knows the series, in `[0, 1]`: one minus the current rate of
    /// unseen one-step transitions.
    pub(crate) fn confidence(&self) -> f64 {
        (1.0 - self.rates[0]).clamp(0.0, 1.0)
    }
}

/// The range `[lo, hi]` of `n` values widened to hold `x` (the first value sets it; no
/// infinities, which JSON checkpoints cannot hold).
pub(crate) fn widen(lo: f64, hi: f64, n: u32, x: f64) -> (f64, f64) {
    if n == 0 {
        (x, x)
    } else {
        (lo.min(x), hi.max(x))
    }
}

/// The surprise of `x` as a new extreme, given the range `[lo, hi]` of the `n` values before
/// it: 0 inside the range widened by `tolerance` of its width; beyond, `log10 n` (the chance
/// that the `n`-th of exchangeable values is the largest is `1/n`) times twice the overshoot
/// past the tolerance in widths, at most 2 widths' worth.
pub(crate) fn extreme_surprise(lo: f64, hi: f64, n: u32, x: f64, tolerance: f64) -> f64 {
    let w = hi - lo;
    if w.is_nan() || w <= 0.0 || n < 2 {
        return 0.0;
    }
    let over = if x > hi {
        x - hi
    } else if x < lo {
        lo - x
    } else {
        return 0.0;
    };
    let tol = tolerance * w;
    if over <= tol {
        return 0.0;
    }
    f64::from(n).log10() * ((over - tol) / w).min(1.0) * 2.0
}

impl Detector for Context {
    fn observe(&mut self, time_ms: i64, value: f64) -> Verdict {
        let (x, gap) = match self.input.step(time_ms, value, self.config.gap_factor) {
            Prepared::Skip => return Verdict::missing(self.n < self.config.warmup),
            Prepared::Value { value, gap } => (value, gap),
        };
        let first = *self.first_ms.get_or_insert(time_ms);
        if gap {
            self.rest_left = 0;
        }
        // The band is the range before this point: a new extreme lies outside it.
        let (lo, hi) = if self.n == 0 { (x, x) } else { self.range() };
        let judged = self.surprise(x, gap);
        let mut v = match judged {
            None => Verdict::warming(x),
            Some((surprise, signal)) => {
                let alert = self.config.alert;
                let mut score = score_of_surprise(surprise);
                if self.rest_left > 0 {
                    self.rest_left -= 1;
                    if score <= self.peak {
                        score = score.min(alert * (1.0 - 1e-9));
                    } else if score >= alert {
                        self.peak = score;
                        self.rest_left = self.config.rest;
                    }
                } else if score >= alert {
                    self.peak = score;
                    self.rest_left = self.config.rest;
                }
                let mut v = Verdict::judged(x, (lo + hi) / 2.0, lo, hi, score);
                if score > 0.0 {
                    v.signal = signal;
                }
                v
            }
        };
        v.confidence = self.confidence();
        v.watched_ms = time_ms.saturating_sub(first).max(0);
        v
    }
}
