//! Detection delay inside NAB's windows: how far into each window the first detection comes.
//!
//! NAB's score already rewards early detections (the scaled sigmoid), but folds the delay into
//! one number with the false positives. This says it directly: for each window, the first row
//! inside it whose anomaly score is at or above the threshold (rows of the probationary period
//! never count, as in NAB), and its delay from the window's first row — in rows, in minutes
//! (timestamps), and as a fraction of the window's length (0 = at the window's first row, just
//! under 1 = at its last). A window none of whose rows is scored (all probationary) is left out
//! of the count; one with no detection counts as missed and adds nothing to the means.

use super::sweeper::SweepError;
use serde::Serialize;

/// The first detection inside one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowDelay {
    /// `<category>/<file>.csv`.
    pub series: String,
    /// The window's first row (0-based, in the file scored).
    pub start_row: usize,
    /// The window's length in rows.
    pub rows: usize,
    /// False when every row of the window is probationary (not counted).
    pub scored: bool,
    /// Rows from the window's first row to the first detection; `None` when missed.
    pub delay_rows: Option<usize>,
    /// The same in minutes of event time.
    pub delay_minutes: Option<f64>,
    /// `delay_rows / rows`, in [0, 1).
    pub delay_fraction: Option<f64>,
}

/// The delays of all windows at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DelaySummary {
    /// Rows with an anomaly score at or above it are detections.
    pub threshold: f64,
    /// Windows with at least one scored row.
    pub windows: usize,
    /// Of those, windows with a detection.
    pub windows_detected: usize,
    /// Mean delay in rows over the detected windows (`None` if none).
    pub mean_delay_rows: Option<f64>,
    /// Mean delay in minutes over the detected windows.
    pub mean_delay_minutes: Option<f64>,
    /// Mean delay as a fraction of the window's length over the detected windows.
    pub mean_delay_fraction: Option<f64>,
    /// Every window, in corpus order.
    pub per_window: Vec<WindowDelay>,
}

/// The first detection in each window of one file.
///
/// `timestamps` are the rows' times in µs (as [`super::input::Series`]), `windows` the
/// `(start, end)` timestamps, `probationary_rows` the number of leading rows that never count
/// (NAB's [`super::sweeper::probationary_length`], or 0).
///
/// # Errors
/// [`SweepError`] when a window edge is not a timestamp of the file or the lengths differ.
pub fn window_delays(
    series: &str,
    timestamps: &[i64],
    scores: &[f64],
    windows: &[(i64, i64)],
    probationary_rows: f64,
    threshold: f64,
) -> Result<Vec<WindowDelay>, SweepError> {
    if timestamps.len() != scores.len() {
        return Err(SweepError::Lengths {
            timestamps: timestamps.len(),
            scores: scores.len(),
        });
    }
    let index_of = |t: i64| {
        timestamps
            .iter()
            .position(|&x| x == t)
            .ok_or(SweepError::EdgeNotFound(t))
    };
    let mut out = Vec::with_capacity(windows.len());
    for &(start, end) in windows {
        let (left, right) = (index_of(start)?, index_of(end)?);
        let rows = right.saturating_sub(left) + 1;
        let counted = |i: usize| (i as f64) >= probationary_rows;
        let scored = (left..=right).any(counted);
        let first = (left..=right).find(|&i| counted(i) && scores[i] >= threshold);
        out.push(WindowDelay {
            series: series.to_string(),
            start_row: left,
            rows,
            scored,
            delay_rows: first.map(|i| i - left),
            delay_minutes: first.map(|i| (timestamps[i] - timestamps[left]) as f64 / 60e6),
            delay_fraction: first.map(|i| (i - left) as f64 / rows as f64),
        });
    }
    Ok(out)
}

/// Counts and means over `per_window` (see the module documentation).
pub fn summarize(threshold: f64, per_window: Vec<WindowDelay>) -> DelaySummary {
    let scored: Vec<&WindowDelay> = per_window.iter().filter(|w| w.scored).collect();
    let detected: Vec<&&WindowDelay> = scored.iter().filter(|w| w.delay_rows.is_some()).collect();
    let mean = |f: &dyn Fn(&WindowDelay) -> f64| {
        (!detected.is_empty())
            .then(|| detected.iter().map(|w| f(w)).sum::<f64>() / detected.len() as f64)
    };
    DelaySummary {
        threshold,
        windows: scored.len(),
        windows_detected: detected.len(),
        mean_delay_rows: mean(&|w| w.delay_rows.unwrap_or(0) as f64),
        mean_delay_minutes: mean(&|w| w.delay_minutes.unwrap_or(0.0)),
        mean_delay_fraction: mean(&|w| w.delay_fraction.unwrap_or(0.0)),
        per_window,
    }
}

impl DelaySummary {
    /// `windows_detected=K/N mean_delay_rows=… mean_delay_fraction=… mean_delay_minutes=…`
    /// (`-` for a mean over no window).
    pub fn fields(&self) -> String {
        let f = |x: Option<f64>, digits: usize| {
            x.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
        };
        format!(
            "windows_detected={}/{} mean_delay_rows={} mean_delay_fraction={} \
             mean_delay_minutes={}",
            self.windows_detected,
            self.windows,
            f(self.mean_delay_rows, 1),
            f(self.mean_delay_fraction, 3),
            f(self.mean_delay_minutes, 1),
        )
    }
}
