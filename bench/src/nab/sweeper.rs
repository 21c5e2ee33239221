//! NAB's scoring arithmetic, ported line by line from `nab/sweeper.py` (numenta/NAB): the scaled
//! sigmoid, the probationary period, the per-row sweep scores of a data file and the sweep of
//! thresholds over rows sorted by anomaly score.
//!
//! Names follow NAB's (`calcSweepScore` → [`calc_sweep_score`], …) so the two can be read side by
//! side. Every rule, including the odd ones, is NAB's; the only departures are where NAB would
//! crash (noted on the functions).

use std::collections::HashMap;

/// The share of each data file NAB ignores at its start (`probationaryPercent` in
/// `nab/runner.py`).
pub const PROBATION_PERCENT: f64 = 0.15;

/// The threshold above every anomaly score where NAB's sweep starts (nothing detected).
pub const START_THRESHOLD: f64 = 1.1;

/// A profile's weights of true positives, false positives, false negatives and true negatives
/// (`CostMatrix` in NAB's `config/profiles.json`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CostMatrix {
    /// Weight of the reward of a detection inside a window.
    #[serde(rename = "tpWeight")]
    pub tp_weight: f64,
    /// Weight of the (negative) reward of a detection outside every window.
    #[serde(rename = "fpWeight")]
    pub fp_weight: f64,
    /// Cost of a window without any detection.
    #[serde(rename = "fnWeight")]
    pub fn_weight: f64,
    /// Weight of true negatives; NAB reads it but never uses it.
    #[serde(rename = "tnWeight")]
    pub tn_weight: f64,
}

/// The standard sigmoid `1 / (1 + e^-x)`.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// NAB's reward of a detection at a relative position to a window: -1 is the window's left
/// edge (≈ 0.98661), 0 its right edge (0), positive positions are past it (down to -1; beyond 3
/// exactly -1).
pub fn scaled_sigmoid(relative_position: f64) -> f64 {
    if relative_position > 3.0 {
        -1.0
    } else {
        2.0 * sigmoid(-5.0 * relative_position) - 1.0
    }
}

/// The number of leading rows NAB leaves unscored: `min(floor(percent × rows), percent × 5000)`
/// (so at most 750 rows at 15%), as a float like NAB's, compared with the row index.
pub fn probationary_length(probation_percent: f64, num_rows: usize) -> f64 {
    (probation_percent * num_rows as f64)
        .floor()
        .min(probation_percent * 5000.0)
}

/// Where a row lies for scoring (NAB's `windowName`: `"probationary"`, `None` or a window name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowPlace {
    /// In the probationary period: never scored.
    Probationary,
    /// After the probationary period and outside every window.
    Outside,
    /// In the window of that id (unique across all files scored together).
    Window(u32),
}

/// One row with its anomaly score and its NAB reward if it were a detection
/// (NAB's `AnomalyPoint`, without the timestamp).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyPoint {
    /// The detector's anomaly score of the row.
    pub anomaly_score: f64,
    /// The weighted reward of a detection at this row (NAB's `sweepScore`).
    pub sweep_score: f64,
    /// Where the row lies.
    pub place: RowPlace,
}

/// The score and counts of one threshold (NAB's `ThresholdScore`): rows with an anomaly score
/// `>= threshold` are detections.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ThresholdScore {
    /// The threshold.
    pub threshold: f64,
    /// The raw NAB score: the best reward per window (or `-fnWeight` if none) plus the false
    /// positives' rewards.
    pub score: f64,
    /// Detected rows inside windows.
    pub tp: u64,
    /// Undetected rows outside windows.
    pub tn: u64,
    /// Detected rows outside windows.
    pub fp: u64,
    /// Undetected rows inside windows.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// All scored rows (the probationary ones excluded).
    pub total: u64,
}

/// Why a data file cannot be swept.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SweepError {
    /// The timestamps and the anomaly scores differ in length.
    #[error("{timestamps} timestamps but {scores} anomaly scores")]
    Lengths {
        /// Number of timestamps.
        timestamps: usize,
        /// Number of anomaly scores.
        scores: usize,
    },
    /// A window edge is not one of the file's timestamps (NAB's labeler refuses these too).
    #[error("window edge {0} (µs since 1970) is not a timestamp of the file")]
    EdgeNotFound(i64),
    /// An anomaly score is NaN (NAB's sort has no defined order then).
    #[error("anomaly score of row {0} is NaN")]
    NanScore(usize),
}

/// The per-row rewards of one data file (NAB's `Sweeper.calcSweepScore`).
///
/// `timestamps` are the file's rows (any unit, compared exactly), `windows` its anomaly windows
/// as `(start, end)` timestamps in file order; window `k` gets the id `first_window_id + k`.
/// Inside a window a row's reward is `scaledSigmoid(-(right - i + 1) / width) × tpWeight /
/// scaledSigmoid(-1)`; outside it is `fpWeight × scaledSigmoid(|prevRight - i| / (prevWidth -
/// 1))` relative to the preceding window, or `-fpWeight` before the first one.
///
/// Departure from NAB: after a window of one row (`prevWidth - 1 = 0`) NAB divides by zero and
/// crashes; here the position is infinite and the reward `-fpWeight`.
///
/// # Errors
/// [`SweepError`] on different lengths, a window edge not among the timestamps, or a NaN score.
pub fn calc_sweep_score(
    timestamps: &[i64],
    anomaly_scores: &[f64],
    windows: &[(i64, i64)],
    first_window_id: u32,
    cost: &CostMatrix,
    probation_percent: f64,
) -> Result<Vec<AnomalyPoint>, SweepError> {
    if timestamps.len() != anomaly_scores.len() {
        return Err(SweepError::Lengths {
            timestamps: timestamps.len(),
            scores: anomaly_scores.len(),
        });
    }
    if let Some(i) = anomaly_scores.iter().position(|s| s.is_nan()) {
        return Err(SweepError::NanScore(i));
    }
    // `timestamps.index(t)`: the first row with that timestamp.
    let index_of = |t: i64| {
        timestamps
            .iter()
            .position(|&x| x == t)
            .ok_or(SweepError::EdgeNotFound(t))
    };
    let max_tp = scaled_sigmoid(-1.0);
    let probationary = probationary_length(probation_percent, timestamps.len());

    let mut pending = windows.iter().enumerate().peekable();
    // (id, end timestamp, right index, width) of the window the sweep is in.
    let mut current: Option<(u32, i64, usize, f64)> = None;
    // (right index, width) of the last window left.
    let mut previous: Option<(usize, f64)> = None;
    let mut points = Vec::with_capacity(timestamps.len());

    for (i, (&time, &anomaly_score)) in timestamps.iter().zip(anomaly_scores).enumerate() {
        // Entering a window: NAB checks this on every row, inside a window or not.
        if let Some(&(k, &(start, end))) = pending.peek()
            && time == start
        {
            pending.next();
            let right = index_of(end)?;
            let left = index_of(start)?;
            let width = (right as f64) - (left as f64) + 1.0;
            let id = first_window_id.saturating_add(u32::try_from(k).unwrap_or(u32::MAX));
            current = Some((id, end, right, width));
        }

        let sweep_score = match (current, previous) {
            (Some((_, _, right, width)), _) => {
                let position = -((right as f64) - (i as f64) + 1.0) / width;
                scaled_sigmoid(position) * cost.tp_weight / max_tp
            }
            (None, None) => -cost.fp_weight,
            (None, Some((prev_right, prev_width))) => {
                let numerator = (prev_right as f64 - i as f64).abs();
                let denominator = prev_width - 1.0;
                let past = if denominator == 0.0 {
                    f64::INFINITY
                } else {
                    numerator / denominator
                };
                scaled_sigmoid(past) * cost.fp_weight
            }
        };

        let place = if (i as f64) < probationary {
            RowPlace::Probationary
        } else {
            match current {
                Some((id, ..)) => RowPlace::Window(id),
                None => RowPlace::Outside,
            }
        };
        points.push(AnomalyPoint {
            anomaly_score,
            sweep_score,
            place,
        });

        // Leaving a window, after the row is recorded.
        if let Some((_, end, _, width)) = current
            && time == end
        {
            previous = Some((i, width));
            current = None;
        }
    }
    Ok(points)
}

/// The score and counts at every distinct anomaly score, highest threshold first (NAB's
/// `Sweeper.calcScoreByThreshold`): the probationary rows are dropped, the rest sorted by
/// anomaly score descending (stable), and each window counts its best reward, or `-fnWeight` if
/// no row of it is detected. The first entry is [`START_THRESHOLD`] (nothing detected).
pub fn calc_score_by_threshold(points: &[AnomalyPoint], cost: &CostMatrix) -> Vec<ThresholdScore> {
    let mut scorable: Vec<&AnomalyPoint> = points
        .iter()
        .filter(|p| p.place != RowPlace::Probationary)
        .collect();
    // NaN was refused in `calc_sweep_score`; Python's sort compares with `<` like this.
    scorable.sort_by(|a, b| {
        b.anomaly_score
            .partial_cmp(&a.anomaly_score)
            .unwrap_or(std::cmp::Ordering::Equal)
    });

    // NAB's `scoreParts` dict: "fp" first, then windows in the order they first appear in the
    // sorted rows (the order of the sum, kept for bit-for-bit sums).
    let mut parts: Vec<f64> = vec![0.0];
    let mut slot: HashMap<u32, usize> = HashMap::new();
    for p in &scorable {
        if let RowPlace::Window(id) = p.place {
            slot.entry(id).or_insert_with(|| {
                parts.push(-cost.fn_weight);
                parts.len() - 1
            });
        }
    }
    let sum = |parts: &[f64]| parts.iter().fold(0.0, |acc, x| acc + x);

    let mut tn = scorable
        .iter()
        .filter(|p| p.place == RowPlace::Outside)
        .count() as u64;
    let mut fn_ = scorable.len() as u64 - tn;
    let mut tp = 0u64;
    let mut fp = 0u64;
    let mut threshold = START_THRESHOLD;
    let mut out = Vec::new();
    for p in &scorable {
        if p.anomaly_score != threshold {
            out.push(ThresholdScore {
                threshold,
                score: sum(&parts),
                tp,
                tn,
                fp,
                fn_,
                total: tp + tn + fp + fn_,
            });
            threshold = p.anomaly_score;
        }
        match p.place {
            RowPlace::Window(id) => {
                tp += 1;
                fn_ -= 1;
                if let Some(&s) = slot.get(&id) {
                    parts[s] = parts[s].max(p.sweep_score);
                }
            }
            _ => {
                fp += 1;
                tn -= 1;
                parts[0] += p.sweep_score;
            }
        }
    }
    out.push(ThresholdScore {
        threshold,
        score: sum(&parts),
        tp,
        tn,
        fp,
        fn_,
        total: tp + tn + fp + fn_,
    });
    out
}

/// The entry of a sweep that applies at `threshold` (NAB's `Sweeper.scoreDataSet`): the entry
/// equal to it, else the last one above it.
///
/// Departures from NAB, where NAB would crash on `None`: a threshold above
/// [`START_THRESHOLD`] gives the first entry (nothing detected), one below every anomaly score
/// the last (everything detected). `sweep` must be non-empty (as
/// [`calc_score_by_threshold`] returns it); an empty one gives `None`.
pub fn score_at_threshold(sweep: &[ThresholdScore], threshold: f64) -> Option<ThresholdScore> {
    let mut prev: Option<ThresholdScore> = None;
    for s in sweep {
        if s.threshold == threshold {
            return Some(*s);
        } else if s.threshold < threshold {
            return prev.or(Some(*s));
        }
        prev = Some(*s);
    }
    prev
}

/// The entry with the highest score, the first (highest threshold) of equal ones (NAB's
/// `optimizeThreshold`: a stable sort by score, descending, and its first row).
pub fn best_threshold(sweep: &[ThresholdScore]) -> Option<ThresholdScore> {
    let mut best: Option<ThresholdScore> = None;
    for s in sweep {
        if best.is_none_or(|b| s.score > b.score) {
            best = Some(*s);
        }
    }
    best
}
