//! The cold-start score (`nab-cold`): NAB's standard profile on windows that a *fresh* detector
//! meets after it has seen only the first 10% of a series' length. NAB has no such profile; this
//! is aiops' definition, built from NAB's own arithmetic.
//!
//! **Why not simply the first 10% of each file.** NAB's labels avoid the start of a file (its
//! probationary period is the first 15%): on the 31-series dev corpus only 1 of 53 windows
//! starts in the first 10% of its file, so a score "restricted to the first 10%" would rate one
//! window and say nothing about early life. The question behind it — does the detector work
//! before it has much history? — is answered by moving the detector's start instead.
//!
//! **Definition.** For each window `[l, r]` (rows) of a file of `n` rows, let
//! `h = ⌊0.10 × n⌋` ([`HISTORY_PERCENT`]). A new detector is built and fed rows
//! `a = max(0, l − h)` through `r` only: it has seen at most `h` rows when the window opens.
//! Each such run is one *case*, scored as a NAB file of its own with that one window and
//! - **no probationary period**: the detector is judged from its first point, so a false alarm
//!   during its warm-up counts (`fpWeight` each, before the window) and a detector still
//!   warming up when the window opens misses it (`−fnWeight`);
//! - rows of the file's *other* windows that fall in `[a, l)` never count (they are real
//!   anomalies, not false positives) — they are marked probationary;
//! - the case ends at the window's last row (a detection after it is neither rewarded nor
//!   counted).
//!
//! The score is reported at the threshold of the standard profile of the whole-corpus run (the
//! detector's operating point: cold start asks how *that* detector does early, not whether a
//! different threshold would suit early rows), and also at the threshold optimised over the cold
//! cases. Both are normalised as NAB does, between the null detector (a constant 0.5, threshold
//! optimised over the same cases, same rules) and a perfect one (`tpWeight` per window). The
//! detection delay of [`super::delay`] is reported for the cases too.
//!
//! It needs the detector itself (a restart), so it is computed for aiops detectors
//! (`--detector`), not for a NAB results directory (`--scores`).

use super::delay::{self, DelaySummary};
use super::score::{self, NULL_SCORE, ScoreError, ScoredSeries};
use super::sweeper::{AnomalyPoint, CostMatrix, RowPlace, SweepError, calc_sweep_score};
use serde::Serialize;
use std::ops::Range;

/// The share of a file's rows a fresh detector has seen, at most, when a window opens.
pub const HISTORY_PERCENT: f64 = 0.10;

/// Where one cold case lies in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSpan {
    /// The file's rows fed to the fresh detector: `a..r + 1`.
    pub rows: Range<usize>,
    /// The window, `(start, end)` timestamps.
    pub window: (i64, i64),
    /// Rows (relative to `rows.start`) inside the file's other windows: never counted.
    pub excluded: Vec<usize>,
}

/// The cold cases of one file: one per window, in file order (see the module documentation).
///
/// # Errors
/// [`SweepError::EdgeNotFound`] when a window edge is not a timestamp of the file.
pub fn spans(timestamps: &[i64], windows: &[(i64, i64)]) -> Result<Vec<CaseSpan>, SweepError> {
    let index_of = |t: i64| {
        timestamps
            .iter()
            .position(|&x| x == t)
            .ok_or(SweepError::EdgeNotFound(t))
    };
    let rows: Vec<(usize, usize)> = windows
        .iter()
        .map(|&(s, e)| Ok((index_of(s)?, index_of(e)?)))
        .collect::<Result<_, SweepError>>()?;
    // ⌊10% × n⌋ as NAB floors its probation; `as` saturates, n is far below 2^53.
    let history = (HISTORY_PERCENT * timestamps.len() as f64).floor() as usize;
    Ok(windows
        .iter()
        .zip(&rows)
        .enumerate()
        .map(|(k, (&window, &(left, right)))| {
            let a = left.saturating_sub(history);
            let excluded = (a..left)
                .filter(|&i| {
                    rows.iter()
                        .enumerate()
                        .any(|(j, &(l, r))| j != k && (l..=r).contains(&i))
                })
                .map(|i| i - a)
                .collect();
            CaseSpan {
                rows: a..right + 1,
                window,
                excluded,
            }
        })
        .collect())
}

/// One cold case with the fresh detector's anomaly scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdCase {
    /// The case as a NAB file: the fed rows, the one window, the scores.
    pub series: ScoredSeries,
    /// Rows (of `series`) never counted.
    pub excluded: Vec<usize>,
}

/// The cold-start result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColdReport {
    /// How the cases were built (one sentence, for the JSON reader).
    pub definition: String,
    /// The profile (NAB's standard).
    pub profile: String,
    /// Number of cases (= windows).
    pub cases: usize,
    /// Mean number of rows the detector had seen when its window opened.
    pub mean_history_rows: f64,
    /// The threshold scored at: the whole-corpus standard threshold.
    pub threshold: f64,
    /// Raw score at `threshold`.
    pub raw: f64,
    /// Normalised score at `threshold` (the `nab-cold standard=` figure).
    pub normalized: f64,
    /// Detected rows inside windows at `threshold`.
    pub tp: u64,
    /// Detected rows outside windows (false positives) at `threshold`.
    pub fp: u64,
    /// The threshold optimised over the cold cases.
    pub optimised_threshold: f64,
    /// Raw score at the optimised threshold.
    pub optimised_raw: f64,
    /// Normalised score at the optimised threshold.
    pub optimised_normalized: f64,
    /// The null detector's raw score on the cases (normalised 0).
    pub null_raw: f64,
    /// A perfect detector's raw score (normalised 100).
    pub perfect_raw: f64,
    /// Detection delay in the cases' windows at `threshold`.
    pub delay: DelaySummary,
}

/// NAB's per-row rewards of each case, with no probationary period and the excluded rows
/// marked probationary; window ids are the case indexes.
fn sweep(cases: &[ColdCase], cost: &CostMatrix) -> Result<Vec<Vec<AnomalyPoint>>, ScoreError> {
    cases
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let id = u32::try_from(k).unwrap_or(u32::MAX);
            let s = &c.series;
            let mut points = calc_sweep_score(&s.timestamps, &s.scores, &s.windows, id, cost, 0.0)
                .map_err(|source| ScoreError {
                    series: s.name.clone(),
                    source,
                })?;
            for &i in &c.excluded {
                if let Some(p) = points.get_mut(i) {
                    p.place = RowPlace::Probationary;
                }
            }
            Ok(points)
        })
        .collect()
}

/// Scores the cold cases under `cost` (the standard profile) at `threshold`, and at the
/// threshold optimised over them (see the module documentation).
///
/// # Errors
/// [`ScoreError`] naming the first case whose rows cannot be swept.
pub fn score(
    cases: &[ColdCase],
    profile: &str,
    cost: &CostMatrix,
    threshold: f64,
) -> Result<ColdReport, ScoreError> {
    let points = sweep(cases, cost)?;
    let at = score::score_points(&points, cost, Some(threshold));
    let null_cases: Vec<ColdCase> = cases
        .iter()
        .map(|c| ColdCase {
            series: ScoredSeries {
                scores: vec![NULL_SCORE; c.series.scores.len()],
                ..c.series.clone()
            },
            excluded: c.excluded.clone(),
        })
        .collect();
    let null_raw = score::score_points(&sweep(&null_cases, cost)?, cost, None).raw;
    let perfect_raw = score::perfect_score(cases.len(), cost);
    let mut per_window = Vec::with_capacity(cases.len());
    for c in cases {
        let s = &c.series;
        // Excluded rows lie before the window, so they never hold its first detection.
        per_window.extend(
            delay::window_delays(
                &s.name,
                &s.timestamps,
                &s.scores,
                &s.windows,
                0.0,
                threshold,
            )
            .map_err(|source| ScoreError {
                series: s.name.clone(),
                source,
            })?,
        );
    }
    let history: usize = per_window.iter().map(|w| w.start_row).sum();
    Ok(ColdReport {
        definition: format!(
            "each window scored alone by a fresh detector fed from {}% of its file's rows before \
             the window's start to its end; no probationary period; other windows' rows not \
             counted",
            HISTORY_PERCENT * 100.0
        ),
        profile: profile.to_string(),
        cases: cases.len(),
        mean_history_rows: if cases.is_empty() {
            0.0
        } else {
            history as f64 / cases.len() as f64
        },
        threshold,
        raw: at.raw,
        normalized: score::normalize(at.raw, null_raw, perfect_raw),
        tp: at.counts[0],
        fp: at.counts[2],
        optimised_threshold: at.optimised.threshold,
        optimised_raw: at.optimised.score,
        optimised_normalized: score::normalize(at.optimised.score, null_raw, perfect_raw),
        null_raw,
        perfect_raw,
        delay: delay::summarize(threshold, per_window),
    })
}
