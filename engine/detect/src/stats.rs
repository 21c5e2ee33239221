//! Small bounded-memory statistics shared by the detectors: a rolling median/MAD window, the
//! cadence of a series (typical interval, gap detection) and the counter-to-rate conversion.

use serde::{Deserialize, Serialize};

/// The factor that turns a median absolute deviation into a standard deviation for Gaussian data.
pub const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// The last `capacity` values of a series with their running median and MAD.
///
/// Keeps a ring of the values in arrival order and the same values sorted; a push is a binary
/// search plus a `memmove` of at most `capacity` floats (no sort per point), the median is a
/// lookup and the MAD a selection of rank `n/2` in the two sorted halves of deviations
/// (`O(log n)`). Memory: `16 · capacity` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingWindow {
    capacity: usize,
    /// Values in arrival order; `head` is the oldest once the ring is full.
    ring: Vec<f64>,
    head: usize,
    /// The same values, ascending.
    sorted: Vec<f64>,
}

impl RollingWindow {
    /// An empty window of `capacity` values (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            // Allocated as the window fills (an unused window costs nothing).
            ring: Vec::new(),
            head: 0,
            sorted: Vec::new(),
        }
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Forgets every value (after a gap).
    pub fn clear(&mut self) {
        self.ring.clear();
        self.sorted.clear();
        self.head = 0;
    }

    /// Adds a finite value, evicting the oldest when full.
    pub fn push(&mut self, x: f64) {
        if self.ring.len() < self.capacity {
            self.ring.push(x);
        } else {
            let old = self.ring[self.head];
            self.ring[self.head] = x;
            self.head = (self.head + 1) % self.capacity;
            let i = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            if i < self.sorted.len() {
                self.sorted.remove(i);
            }
        }
        let j = self.sorted.partition_point(|v| v.total_cmp(&x).is_lt());
        self.sorted.insert(j, x);
    }

    /// The median of the values held (NaN when empty).
    pub fn median(&self) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            0.5 * (self.sorted[n / 2 - 1] + self.sorted[n / 2])
        }
    }

    /// The `q`-quantile (0..=1) of the absolute deviations from `center` (lower order statistic).
    pub fn deviation_quantile(&self, center: f64, q: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        let k = ((q.clamp(0.0, 1.0) * (n - 1) as f64).round() as usize).min(n - 1);
        // Values below `center` give deviations increasing leftwards, the rest rightwards: two
        // sorted sequences whose rank-k element is found by bisection.
        let p = self.sorted.partition_point(|v| *v < center);
        let s = &self.sorted;
        let left = |i: usize| center - s[p - 1 - i];
        let right = |j: usize| s[p + j] - center;
        kth_of_two(p, left, n - p, right, k)
    }

    /// The median absolute deviation from the median (NaN when empty).
    pub fn mad(&self) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        let m = self.median();
        let p = self.sorted.partition_point(|v| *v < m);
        let s = &self.sorted;
        let left = |i: usize| m - s[p - 1 - i];
        let right = |j: usize| s[p + j] - m;
        if n % 2 == 1 {
            kth_of_two(p, left, n - p, right, n / 2)
        } else {
            0.5 * (kth_of_two(p, left, n - p, right, n / 2 - 1)
                + kth_of_two(p, left, n - p, right, n / 2))
        }
    }

    /// A robust standard deviation: `1.4826 · MAD`, falling back to the 90% deviation quantile
    /// when more than half the values are equal (quantized or mostly-constant series), then 0.
    pub fn robust_sigma(&self) -> f64 {
        let mad = self.mad();
        if mad > 0.0 {
            return MAD_TO_SIGMA * mad;
        }
        let m = self.median();
        // 1.645 is the 90% two-sided quantile of the standard normal.
        self.deviation_quantile(m, 0.9) / 1.644_853_626_951_472
    }
}

/// The element of rank `k` (0-based) in the union of two ascending sequences given by accessors.
fn kth_of_two(
    la: usize,
    l: impl Fn(usize) -> f64,
    ra: usize,
    r: impl Fn(usize) -> f64,
    k: usize,
) -> f64 {
    // Take i from the left and j = k + 1 - i from the right: the smallest i with
    // r(j - 1) <= l(i) is the split point.
    let mut lo = (k + 1).saturating_sub(ra);
    let mut hi = (k + 1).min(la);
    while lo < hi {
        let i = (lo + hi) / 2;
        let j = k + 1 - i;
        if i < la && j > 0 && l(i) < r(j - 1) {
            lo = i + 1;
        } else {
            hi = i;
        }
    }
    let i = lo;
    let j = k + 1 - i;
    let a = if i > 0 { l(i - 1) } else { f64::NEG_INFINITY };
    let b = if j > 0 { r(j - 1) } else { f64::NEG_INFINITY };
    a.max(b)
}

/// The cadence of a series: the typical interval between points, to recognise gaps.
///
/// The typical interval is an exponentially weighted mean of the intervals that were not gaps
/// (weight 0.05: about the last 20 intervals). A point that comes more than `gap_factor` typical
/// intervals after the previous one follows a *gap*.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Cadence {
    last_ms: Option<i64>,
    interval_ms: f64,
}

impl Cadence {
    /// Records a point at `time_ms`; true when it follows a gap longer than `gap_factor` typical
    /// intervals. The interval estimate skips gaps and duplicates.
    pub fn step(&mut self, time_ms: i64, gap_factor: f64) -> bool {
        let gap = match self.last_ms {
            None => false,
            Some(last) => {
                let dt = time_ms.saturating_sub(last).max(0) as f64;
                let gap = self.interval_ms > 0.0 && dt > gap_factor * self.interval_ms;
                if !gap && dt > 0.0 {
                    if self.interval_ms == 0.0 {
                        self.interval_ms = dt;
                    } else {
                        self.interval_ms += 0.05 * (dt - self.interval_ms);
                    }
                }
                gap
            }
        };
        self.last_ms = Some(time_ms);
        gap
    }

    /// The typical interval in milliseconds (0 until two distinct times were seen).
    pub fn interval_ms(&self) -> f64 {
        self.interval_ms
    }

    /// The time of the last point seen.
    pub fn last_ms(&self) -> Option<i64> {
        self.last_ms
    }
}

/// Turns a monotonic counter into a per-second rate, tolerating resets.
///
/// A decrease is a counter reset (process restart): the increase since the reset is taken to be
/// the new value itself, as Prometheus' `rate()` does. The first point (and a point at the same
/// time as the previous one) yields no rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct CounterRate {
    prev: Option<(i64, f64)>,
}

impl CounterRate {
    /// The rate per second ending at this point, or None when it cannot be computed yet.
    pub fn step(&mut self, time_ms: i64, value: f64) -> Option<f64> {
        let out = match self.prev {
            Some((t0, v0)) if time_ms > t0 => {
                let inc = if value >= v0 { value - v0 } else { value };
                Some(inc * 1000.0 / time_ms.saturating_sub(t0) as f64)
            }
            _ => None,
        };
        if self.prev.is_none_or(|(t0, _)| time_ms > t0) {
            self.prev = Some((time_ms, value));
        }
        out
    }

    /// Forgets the previous point (after a gap the first rate would span the gap).
    pub fn clear(&mut self) {
        self.prev = None;
    }
}

/// Values beyond this magnitude are treated as missing, like NaN: the detectors square errors
/// and sum them, which would overflow to infinity (and JSON checkpoints cannot hold infinities).
pub const MAX_MAGNITUDE: f64 = 1e150;

/// Preprocessing common to every detector: counter-to-rate when asked, gap recognition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Input {
    /// The series is a monotonic counter; detectors see its rate per second.
    pub counter: bool,
    cadence: Cadence,
    rate: CounterRate,
}

/// One point after [`Input::step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prepared {
    /// Nothing to judge: a missing value, or the first point of a counter.
    Skip,
    /// A finite value to judge; `gap` is true when it follows a gap.
    Value {
        /// The value (a rate for counters).
        value: f64,
        /// The point follows a gap longer than the gap factor.
        gap: bool,
    },
}

impl Input {
    /// Preprocessing for a gauge (`counter = false`) or a counter.
    pub fn new(counter: bool) -> Self {
        Self {
            counter,
            ..Self::default()
        }
    }

    /// Checks the value, converts counters, detects gaps.
    pub fn step(&mut self, time_ms: i64, value: f64, gap_factor: f64) -> Prepared {
        if !value.is_finite() || value.abs() > MAX_MAGNITUDE {
            return Prepared::Skip;
        }
        let gap = self.cadence.step(time_ms, gap_factor);
        if self.counter {
            if gap {
                self.rate.clear();
            }
            match self.rate.step(time_ms, value) {
                // A rate that overflows (counters near f64::MAX) is as missing as a NaN.
                Some(r) if r.abs() <= MAX_MAGNITUDE => Prepared::Value { value: r, gap },
                _ => Prepared::Skip,
            }
        } else {
            Prepared::Value { value, gap }
        }
    }

    /// The typical interval of the series in milliseconds.
    pub fn interval_ms(&self) -> f64 {
        self.cadence.interval_ms()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn naive(v: &[f64]) -> (f64, f64) {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let med = if n % 2 == 1 {
            s[n / 2]
        } else {
            0.5 * (s[n / 2 - 1] + s[n / 2])
        };
        let mut d: Vec<f64> = s.iter().map(|x| (x - med).abs()).collect();
        d.sort_by(f64::total_cmp);
        let mad = if n % 2 == 1 {
            d[n / 2]
        } else {
            0.5 * (d[n / 2 - 1] + d[n / 2])
        };
        (med, mad)
    }

    #[test]
    fn rolling_median_mad_match_naive() {
        for cap in [16usize, 17, 128] {
            check_capacity(cap);
        }
    }

    fn check_capacity(cap: usize) {
        let mut w = RollingWindow::new(cap);
        let mut all = Vec::new();
        let mut x: u64 = 12345;
        for i in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = ((x % 1000) as f64) / 10.0 + if i % 50 == 0 { 300.0 } else { 0.0 };
            let v = if i % 7 == 0 && cap == 17 { 5.0 } else { v };
            w.push(v);
            all.push(v);
            let tail = &all[all.len().saturating_sub(cap)..];
            let (m, d) = naive(tail);
            assert_eq!(w.median(), m, "median at {i}");
            assert!((w.mad() - d).abs() < 1e-9, "mad at {i}: {} vs {d}", w.mad());
        }
    }
}
