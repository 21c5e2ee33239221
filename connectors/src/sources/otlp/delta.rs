//! Delta temporality turned into cumulative: the running total of every delta series.
//!
//! Prometheus (and aiops' SQL over `metrics`) reads counters and histograms as cumulative
//! values, so a delta sum, histogram or exponential histogram point is added to the state of its
//! series (metric name and every label) and the running total is stored. The state lives in
//! memory: after a restart a delta series starts again from its next point, which readers see
//! as a counter reset (what `rate()` and `increase()` already handle).
//!
//! Updates are staged: [`DeltaStage`] holds the new totals of one request beside the committed
//! [`DeltaState`], and only [`DeltaState::commit`] — called once the log accepted the request —
//! makes them the base of the next request. A request refused by backpressure and retried is
//! therefore counted once.

use std::collections::HashMap;

/// The running total of one delta series.
#[derive(Debug, Clone, PartialEq)]
pub enum Acc {
    /// A sum.
    Sum(f64),
    /// An explicit-bucket histogram.
    Hist(HistAcc),
    /// An exponential histogram.
    Exp(ExpAcc),
}

/// An explicit-bucket histogram total.
#[derive(Debug, Clone, PartialEq)]
pub struct HistAcc {
    /// Upper bounds of the buckets but the last (`+Inf`).
    pub bounds: Vec<f64>,
    /// Count per bucket (`bounds.len() + 1`, or empty when the points carry no buckets).
    pub counts: Vec<u64>,
    /// Observations.
    pub count: u64,
    /// Sum of observations, when the points carry one.
    pub sum: Option<f64>,
}

impl HistAcc {
    /// Adds a delta point with the same bounds; a point with other bounds starts the series
    /// again (the sender changed its buckets, which readers see as a reset).
    pub fn add(&mut self, p: &HistAcc) {
        if p.bounds != self.bounds || p.counts.len() != self.counts.len() {
            *self = p.clone();
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&p.counts) {
            *a = a.saturating_add(*b);
        }
        self.count = self.count.saturating_add(p.count);
        self.sum = match (self.sum, p.sum) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

/// One side (positive or negative) of an exponential histogram: counts of consecutive bucket
/// indexes from `offset`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpBuckets {
    /// Index of the first count.
    pub offset: i32,
    /// Counts.
    pub counts: Vec<u64>,
}

impl ExpBuckets {
    /// The same observations at a scale `by` steps coarser: bucket `i` merges into `i >> by`.
    fn downscale(&mut self, by: u32) {
        if by == 0 || self.counts.is_empty() {
            return;
        }
        let by = by.min(31);
        let first = self.offset >> by;
        let last = (self.offset + self.counts.len() as i32 - 1) >> by;
        let mut out = vec![0u64; (last - first + 1) as usize];
        for (i, c) in self.counts.iter().enumerate() {
            let idx = ((self.offset + i as i32) >> by) - first;
            out[idx as usize] = out[idx as usize].saturating_add(*c);
        }
        self.offset = first;
        self.counts = out;
    }

    /// Adds another side of the same scale.
    fn add(&mut self, o: &ExpBuckets) {
        if o.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            *self = o.clone();
            return;
        }
        let first = self.offset.min(o.offset);
        let end = (self.offset + self.counts.len() as i32).max(o.offset + o.counts.len() as i32);
        let mut out = vec![0u64; (end - first) as usize];
        for side in [&*self, o] {
            for (i, c) in side.counts.iter().enumerate() {
                let idx = (side.offset - first) as usize + i;
                out[idx] = out[idx].saturating_add(*c);
            }
        }
        self.offset = first;
        self.counts = out;
    }
}

/// Most buckets one side of a merged exponential histogram spans.
pub const MAX_BUCKETS: i64 = 16_384;
/// The coarsest scale of the specification.
const MIN_SCALE: i32 = -10;

/// How many bucket indexes two sides together span.
fn span(a: &ExpBuckets, b: &ExpBuckets) -> i64 {
    let ends = [a, b]
        .into_iter()
        .filter(|s| !s.counts.is_empty())
        .map(|s| {
            (
                i64::from(s.offset),
                i64::from(s.offset) + s.counts.len() as i64,
            )
        });
    let (lo, hi) = ends.fold((i64::MAX, i64::MIN), |(lo, hi), (a, b)| {
        (lo.min(a), hi.max(b))
    });
    if lo > hi { 0 } else { hi - lo }
}

/// An exponential histogram total.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpAcc {
    /// Resolution: base = 2^(2^-scale).
    pub scale: i32,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Width of the zero bucket: it holds values in `[-zero_threshold, zero_threshold]`.
    pub zero_threshold: f64,
    /// Positive buckets.
    pub positive: ExpBuckets,
    /// Negative buckets (by the index of the absolute value).
    pub negative: ExpBuckets,
    /// Observations.
    pub count: u64,
    /// Sum of observations, when the points carry one.
    pub sum: Option<f64>,
}

impl ExpAcc {
    /// Adds a delta point, merging both to the coarser of the two scales (as the OTel SDKs
    /// merge exponential histograms).
    pub fn add(&mut self, p: &ExpAcc) {
        let mut scale = self.scale.min(p.scale);
        let mut other = p.clone();
        let (mine, theirs) = ((self.scale - scale) as u32, (p.scale - scale) as u32);
        self.positive.downscale(mine);
        self.negative.downscale(mine);
        other.positive.downscale(theirs);
        other.negative.downscale(theirs);
        // Coarser still while the merged buckets would span more than `MAX_BUCKETS` (points far
        // apart), as the SDKs do, so the total stays small.
        while scale > MIN_SCALE
            && (span(&self.positive, &other.positive) > MAX_BUCKETS
                || span(&self.negative, &other.negative) > MAX_BUCKETS)
        {
            for b in [
                &mut self.positive,
                &mut self.negative,
                &mut other.positive,
                &mut other.negative,
            ] {
                b.downscale(1);
            }
            scale -= 1;
        }
        self.scale = scale;
        self.positive.add(&other.positive);
        self.negative.add(&other.negative);
        self.zero_count = self.zero_count.saturating_add(p.zero_count);
        self.zero_threshold = self.zero_threshold.max(p.zero_threshold);
        self.count = self.count.saturating_add(p.count);
        self.sum = match (self.sum, p.sum) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

impl Acc {
    /// `self + p` for points of the same type; a point of another type replaces the total.
    fn plus(&self, p: &Acc) -> Acc {
        match (self, p) {
            (Acc::Sum(a), Acc::Sum(b)) => Acc::Sum(a + b),
            (Acc::Hist(a), Acc::Hist(b)) => {
                let mut a = a.clone();
                a.add(b);
                Acc::Hist(a)
            }
            (Acc::Exp(a), Acc::Exp(b)) => {
                let mut a = a.clone();
                a.add(b);
                Acc::Exp(a)
            }
            (_, p) => p.clone(),
        }
    }
}

/// The committed totals of every delta series, bounded: past `max_series` the half least
/// recently updated are forgotten (their next point starts them again, seen as a reset).
#[derive(Debug)]
pub struct DeltaState {
    series: HashMap<String, (Acc, u64)>,
    max_series: usize,
    generation: u64,
}

/// The default bound of [`DeltaState`].
pub const DEFAULT_MAX_DELTA_SERIES: usize = 100_000;

impl Default for DeltaState {
    fn default() -> Self {
        DeltaState::new(DEFAULT_MAX_DELTA_SERIES)
    }
}

impl DeltaState {
    /// An empty state keeping at most `max_series` series.
    pub fn new(max_series: usize) -> DeltaState {
        DeltaState {
            series: HashMap::new(),
            max_series: max_series.max(1),
            generation: 0,
        }
    }

    /// Series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Makes a request's staged totals the committed ones (call once the log accepted it).
    pub fn commit(&mut self, stage: DeltaStage) {
        self.generation += 1;
        let g = self.generation;
        for (k, acc) in stage.overlay {
            self.series.insert(k, (acc, g));
        }
        if self.series.len() > self.max_series {
            let mut gens: Vec<u64> = self.series.values().map(|(_, g)| *g).collect();
            gens.sort_unstable();
            let cut = gens[gens.len() / 2];
            self.series.retain(|_, (_, g)| *g > cut);
        }
    }
}

/// The new totals of one request, on top of a [`DeltaState`].
#[derive(Debug, Default)]
pub struct DeltaStage {
    overlay: HashMap<String, Acc>,
}

impl DeltaStage {
    /// Whether the request had no delta point.
    pub fn is_empty(&self) -> bool {
        self.overlay.is_empty()
    }

    /// Adds a delta point to series `key` and returns the running total.
    pub fn add(&mut self, base: &DeltaState, key: String, point: Acc) -> &Acc {
        let prev = self
            .overlay
            .get(&key)
            .or_else(|| base.series.get(&key).map(|(a, _)| a));
        let total = match prev {
            Some(p) => p.plus(&point),
            None => point,
        };
        match self.overlay.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                o.insert(total);
                o.into_mut()
            }
            std::collections::hash_map::Entry::Vacant(v) => v.insert(total),
        }
    }
}
