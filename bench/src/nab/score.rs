//! Scoring a corpus the way NAB's `nab/optimizer.py`, `nab/scorer.py` and `nab/runner.py` do:
//! per profile, one threshold for all files (optimised over all their rows together, or given),
//! each file scored at it, the file scores summed, and the sum normalised between the null
//! detector (0) and a perfect one (100).

use super::sweeper::{
    self, AnomalyPoint, CostMatrix, SweepError, ThresholdScore, calc_score_by_threshold,
    calc_sweep_score,
};

/// The constant anomaly score of NAB's null detector (`nab/detectors/null`).
pub const NULL_SCORE: f64 = 0.5;

/// One file ready for scoring: its rows' timestamps, its windows and the detector's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSeries {
    /// `<category>/<file>.csv`, as in the windows file.
    pub name: String,
    /// The rows' timestamps (from the data file, as NAB takes them).
    pub timestamps: Vec<i64>,
    /// The anomaly windows, `(start, end)` timestamps.
    pub windows: Vec<(i64, i64)>,
    /// The anomaly score of each row.
    pub scores: Vec<f64>,
}

/// A corpus scored under one profile at one threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileScore {
    /// The threshold every file was scored at.
    pub threshold: f64,
    /// The best threshold over all rows of all files together (NAB's optimizer), and its score.
    pub optimised: ThresholdScore,
    /// Each file's score and counts at `threshold`, in the order of the input.
    pub per_file: Vec<ThresholdScore>,
    /// The sum of the files' scores (NAB's `Totals` row).
    pub raw: f64,
    /// Summed counts: true positives, true negatives, false positives, false negatives.
    pub counts: [u64; 4],
}

/// Why a corpus could not be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{series}: {source}")]
pub struct ScoreError {
    /// The file.
    pub series: String,
    /// What is wrong with it.
    pub source: SweepError,
}

/// Scores `corpus` under `cost`: optimises the threshold over all rows of all files, then scores
/// each file at `threshold` if given, else at the optimised one.
///
/// # Errors
/// [`ScoreError`] naming the first file whose rows cannot be swept.
pub fn score_profile(
    corpus: &[ScoredSeries],
    cost: &CostMatrix,
    threshold: Option<f64>,
) -> Result<ProfileScore, ScoreError> {
    let mut per_file_points: Vec<Vec<AnomalyPoint>> = Vec::with_capacity(corpus.len());
    let mut next_window = 0u32;
    for s in corpus {
        let points = calc_sweep_score(
            &s.timestamps,
            &s.scores,
            &s.windows,
            next_window,
            cost,
            sweeper::PROBATION_PERCENT,
        )
        .map_err(|source| ScoreError {
            series: s.name.clone(),
            source,
        })?;
        next_window =
            next_window.saturating_add(u32::try_from(s.windows.len()).unwrap_or(u32::MAX));
        per_file_points.push(points);
    }
    Ok(score_points(&per_file_points, cost, threshold))
}

/// Scores files already swept ([`calc_sweep_score`], one entry per file, window ids unique
/// across them): optimises the threshold over all their rows together, then scores each file
/// at `threshold` if given, else at the optimised one. [`score_profile`] is this after NAB's
/// sweep; the cold-start score ([`super::cold`]) sweeps its own way and shares this step.
pub fn score_points(
    per_file_points: &[Vec<AnomalyPoint>],
    cost: &CostMatrix,
    threshold: Option<f64>,
) -> ProfileScore {
    let all: Vec<AnomalyPoint> = per_file_points.iter().flatten().copied().collect();
    let corpus_sweep = calc_score_by_threshold(&all, cost);
    let fallback = ThresholdScore {
        threshold: sweeper::START_THRESHOLD,
        score: 0.0,
        tp: 0,
        tn: 0,
        fp: 0,
        fn_: 0,
        total: 0,
    };
    let optimised = sweeper::best_threshold(&corpus_sweep).unwrap_or(fallback);
    let threshold = threshold.unwrap_or(optimised.threshold);

    let mut per_file = Vec::with_capacity(per_file_points.len());
    let mut raw = 0.0;
    let mut counts = [0u64; 4];
    for points in per_file_points {
        let sweep = calc_score_by_threshold(points, cost);
        let at = sweeper::score_at_threshold(&sweep, threshold).unwrap_or(fallback);
        raw += at.score;
        for (c, v) in counts.iter_mut().zip([at.tp, at.tn, at.fp, at.fn_]) {
            *c += v;
        }
        per_file.push(at);
    }
    ProfileScore {
        threshold,
        optimised,
        per_file,
        raw,
        counts,
    }
}

/// The raw score of NAB's null detector (a constant [`NULL_SCORE`]) on the same files, its
/// threshold optimised as NAB does: the 0 of the normalised scale.
///
/// # Errors
/// As [`score_profile`].
pub fn null_score(corpus: &[ScoredSeries], cost: &CostMatrix) -> Result<f64, ScoreError> {
    let null: Vec<ScoredSeries> = corpus
        .iter()
        .map(|s| ScoredSeries {
            scores: vec![NULL_SCORE; s.timestamps.len()],
            ..s.clone()
        })
        .collect();
    Ok(score_profile(&null, cost, None)?.raw)
}

/// The raw score of a perfect detector: `tpWeight` per window (NAB counts the windows in the
/// windows file): the 100 of the normalised scale.
pub fn perfect_score(window_count: usize, cost: &CostMatrix) -> f64 {
    window_count as f64 * cost.tp_weight
}

/// NAB's normalisation: `100 × (raw − null) / (perfect − null)`.
pub fn normalize(raw: f64, null: f64, perfect: f64) -> f64 {
    100.0 * (raw - null) / (perfect - null)
}
