//! What `aiops-bench nab` found: the JSON report and its printed lines.

use super::cold::ColdReport;
use super::delay::DelaySummary;
use super::input::{PublishedFileScore, PublishedThreshold};
use super::sweeper::{CostMatrix, ThresholdScore};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The whole result of a run, written as JSON to `--out`.
#[derive(Debug, Clone, Serialize)]
pub struct NabReport {
    /// The detector scored: an aiops registry name, or the NAB results directory's name.
    pub detector: String,
    /// Where the anomaly scores came from: `aiops` (run here) or the results directory.
    pub scores_from: String,
    /// The data directory.
    pub data: PathBuf,
    /// The windows file.
    pub windows: PathBuf,
    /// The profiles file, or `built-in` (NAB's config/profiles.json).
    pub profiles_from: String,
    /// The thresholds file scored at, if any (else thresholds are optimised).
    pub thresholds_from: Option<PathBuf>,
    /// Number of rows over all files.
    pub rows: usize,
    /// Number of anomaly windows over all files.
    pub window_count: usize,
    /// CSV files in the data directory that the windows file does not list (not scored).
    pub unlabelled: Vec<String>,
    /// Per profile, in NAB's order (standard, reward_low_FP_rate, reward_low_FN_rate).
    pub profiles: Vec<ProfileReport>,
    /// Per file, sorted by name.
    pub series: Vec<SeriesReport>,
    /// Seconds spent getting the anomaly scores (running the detector or reading results).
    pub detect_seconds: f64,
    /// Seconds spent scoring (with the cold-start runs).
    pub score_seconds: f64,
    /// Seconds inside the detector loop alone (one thread, the files already read); `None`
    /// for a results directory.
    pub detect_loop_seconds: Option<f64>,
    /// `rows / detect_loop_seconds`: the detector's throughput on this corpus.
    pub points_per_second: Option<f64>,
    /// Detection delay inside the windows at the standard profile's threshold.
    pub delay: DelaySummary,
    /// The cold-start score ([`super::cold`]); `None` for a results directory.
    pub cold: Option<ColdReport>,
    /// The files at the standard profile's threshold, worst score first.
    pub ranking: Vec<SeriesRank>,
}

/// One file's standard-profile result, for the ranking.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesRank {
    /// `<category>/<file>.csv`.
    pub series: String,
    /// Anomaly windows in the file.
    pub windows: usize,
    /// Windows with a detection (outside the probationary period).
    pub windows_detected: usize,
    /// The file's raw NAB score.
    pub score: f64,
    /// Points short of a perfect detector on this file: `windows × tpWeight − score`.
    pub lost: f64,
    /// Detected rows inside windows.
    pub tp: u64,
    /// Detected rows outside windows.
    pub fp: u64,
}

/// The result of `--detector all`: one row per detector, and each detector's full report.
#[derive(Debug, Clone, Serialize)]
pub struct NabSuiteReport {
    /// The table, in registry order.
    pub rows: Vec<SuiteRow>,
    /// Each detector's report, same order.
    pub reports: Vec<NabReport>,
}

/// One detector's line of the `--detector all` table.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRow {
    /// The registry name.
    pub detector: String,
    /// Normalised standard score.
    pub standard: Option<f64>,
    /// Normalised reward_low_FP_rate score.
    pub reward_low_fp: Option<f64>,
    /// Normalised reward_low_FN_rate score.
    pub reward_low_fn: Option<f64>,
    /// Normalised cold-start score at the standard threshold.
    pub cold: Option<f64>,
    /// Windows detected at the standard threshold.
    pub windows_detected: usize,
    /// Windows counted.
    pub windows: usize,
    /// Mean delay as a fraction of the window, over the detected windows.
    pub mean_delay_fraction: Option<f64>,
    /// Detector loop throughput, points per second.
    pub points_per_second: Option<f64>,
}

impl SuiteRow {
    /// The row of one detector's report.
    pub fn of(report: &NabReport) -> Self {
        Self {
            detector: report.detector.clone(),
            standard: report.normalized("standard"),
            reward_low_fp: report.normalized("reward_low_FP_rate"),
            reward_low_fn: report.normalized("reward_low_FN_rate"),
            cold: report.cold.as_ref().map(|c| c.normalized),
            windows_detected: report.delay.windows_detected,
            windows: report.delay.windows,
            mean_delay_fraction: report.delay.mean_delay_fraction,
            points_per_second: report.points_per_second,
        }
    }
}

impl NabSuiteReport {
    /// The markdown table: detector | standard | reward_low_fp | reward_low_fn | cold | delay |
    /// points/s. `delay` is the mean delay as a fraction of the window and the windows
    /// detected.
    pub fn lines(&self) -> Vec<String> {
        let num = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        let mut out = vec![
            "| detector | standard | reward_low_fp | reward_low_fn | cold | delay | points/s |"
                .to_string(),
            "|---|---:|---:|---:|---:|---:|---:|".to_string(),
        ];
        for r in &self.rows {
            out.push(format!(
                "| {} | {} | {} | {} | {} | {} ({}/{}) | {} |",
                r.detector,
                num(r.standard),
                num(r.reward_low_fp),
                num(r.reward_low_fn),
                num(r.cold),
                num(r.mean_delay_fraction),
                r.windows_detected,
                r.windows,
                r.points_per_second
                    .map_or_else(|| "-".to_string(), |v| format!("{v:.0}")),
            ));
        }
        out
    }
}

/// One profile's corpus result.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileReport {
    /// NAB's profile name.
    pub profile: String,
    /// The key on the summary line.
    pub key: String,
    /// The profile's weights.
    pub cost: CostMatrix,
    /// The threshold the files were scored at.
    pub threshold: f64,
    /// `optimised` or `published`.
    pub threshold_source: String,
    /// The published threshold and corpus score of this detector, when `--thresholds` was given.
    pub published_threshold: Option<PublishedThreshold>,
    /// The optimiser's best threshold on these files, and its score and counts.
    pub optimised: ThresholdScore,
    /// The sum of the files' raw scores at `threshold`.
    pub raw: f64,
    /// True positive rows.
    pub tp: u64,
    /// True negative rows.
    pub tn: u64,
    /// False positive rows.
    pub fp: u64,
    /// False negative rows.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Raw score of NAB's null detector on these files (normalised 0).
    pub null_raw: f64,
    /// Raw score of a perfect detector on these files (normalised 100).
    pub perfect_raw: f64,
    /// `100 × (raw − null) / (perfect − null)`.
    pub normalized: f64,
    /// The comparison with NAB's published per-file scores, if the results directory has them.
    pub published: Option<PublishedComparison>,
}

/// How the files' scores compare with NAB's `<detector>_<profile>_scores.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedComparison {
    /// The scores file.
    pub path: PathBuf,
    /// Files found in both.
    pub files_compared: usize,
    /// Files scored here that the published file lacks.
    pub files_missing: Vec<String>,
    /// Largest |score − published score| over the compared files.
    pub max_abs_score_diff: f64,
    /// Files whose TP/TN/FP/FN differ from the published ones.
    pub count_mismatches: Vec<String>,
    /// Largest |threshold − published threshold| (published printed with 12 digits).
    pub max_abs_threshold_diff: f64,
}

/// One file's result.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesReport {
    /// `<category>/<file>.csv`.
    pub series: String,
    /// Rows in the file.
    pub rows: usize,
    /// Anomaly windows in the file.
    pub windows: usize,
    /// Per profile (same order as [`NabReport::profiles`]).
    pub profiles: Vec<SeriesProfile>,
}

/// One file under one profile.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesProfile {
    /// NAB's profile name.
    pub profile: String,
    /// Score and counts at the profile's threshold.
    pub score: ThresholdScore,
    /// NAB's published row for the file, when compared.
    pub published: Option<PublishedFileScore>,
}

impl NabReport {
    /// The printed lines: one per file, the thresholds and raw totals per profile, the
    /// comparison with published scores, the delay (`nab-delay …`) and cold-start
    /// (`nab-cold standard=…`) lines, and last the summary line
    /// `nab standard=… reward_low_fp=… reward_low_fn=…`.
    pub fn lines(&self) -> Vec<String> {
        self.lines_with(false)
    }

    /// The ranking of the files as a markdown table, worst standard score first.
    pub fn ranking_lines(&self) -> Vec<String> {
        let mut out = vec![
            format!(
                "files by standard score at threshold {} (worst first):",
                self.delay.threshold
            ),
            "| series | windows | detected | score | lost | tp | fp |".to_string(),
            "|---|---:|---:|---:|---:|---:|---:|".to_string(),
        ];
        for r in &self.ranking {
            out.push(format!(
                "| {} | {} | {} | {:.3} | {:.3} | {} | {} |",
                r.series, r.windows, r.windows_detected, r.score, r.lost, r.tp, r.fp
            ));
        }
        out
    }

    /// [`Self::lines`], with the ranking of the files ([`Self::ranking_lines`]) before the
    /// summary lines when `per_series`.
    pub fn lines_with(&self, per_series: bool) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.series {
            let mut line = format!("{} rows={} windows={}", s.series, s.rows, s.windows);
            for (p, r) in s.profiles.iter().zip(&self.profiles) {
                let sc = &p.score;
                let _ = write!(
                    line,
                    " {}={:.6}(tp={} fp={} fn={})",
                    r.key, sc.score, sc.tp, sc.fp, sc.fn_
                );
                if let Some(pubd) = &p.published {
                    let _ = write!(line, "[published {:.6}]", pubd.score);
                }
            }
            out.push(line);
        }
        for p in &self.profiles {
            out.push(format!(
                "profile {} threshold={} ({}) raw={:.6} tp={} fp={} fn={} null={:.6} perfect={:.6} \
                 normalized={:.2}; optimised on these files: threshold={} raw={:.6}",
                p.profile,
                p.threshold,
                p.threshold_source,
                p.raw,
                p.tp,
                p.fp,
                p.fn_,
                p.null_raw,
                p.perfect_raw,
                p.normalized,
                p.optimised.threshold,
                p.optimised.score,
            ));
            if let Some(c) = &p.published {
                out.push(format!(
                    "published {} {}: {} files compared, max |score diff|={:.3e}, counts differ in \
                     {} file(s){}, missing {}, max |threshold diff|={:.3e}",
                    self.detector,
                    p.profile,
                    c.files_compared,
                    c.max_abs_score_diff,
                    c.count_mismatches.len(),
                    if c.count_mismatches.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", c.count_mismatches.join(", "))
                    },
                    c.files_missing.len(),
                    c.max_abs_threshold_diff,
                ));
            }
        }
        if per_series {
            out.extend(self.ranking_lines());
        }
        out.push(format!(
            "thresholds {}",
            self.profiles
                .iter()
                .map(|p| format!("{}={}", p.key, p.threshold))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        out.push(format!("nab-delay {}", self.delay.fields()));
        match &self.cold {
            Some(c) => out.push(format!(
                "nab-cold standard={:.2} at threshold {}; optimised on the cold cases: {:.2} at \
                 {}; fp={} {} mean_history_rows={:.0}",
                c.normalized,
                c.threshold,
                c.optimised_normalized,
                c.optimised_threshold,
                c.fp,
                c.delay.fields(),
                c.mean_history_rows,
            )),
            None => out.push(
                "nab-cold n/a (needs a detector to restart; not computed for --scores)".to_string(),
            ),
        }
        out.push(format!(
            "nab {}",
            self.profiles
                .iter()
                .map(|p| format!("{}={:.2}", p.key, p.normalized))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        out
    }

    /// The normalised score of a profile by its NAB name.
    pub fn normalized(&self, profile: &str) -> Option<f64> {
        self.profiles
            .iter()
            .find(|p| p.profile == profile)
            .map(|p| p.normalized)
    }
}
