//! What `aiops-bench nab` found: the JSON report and its printed lines.

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
    /// Seconds spent scoring.
    pub score_seconds: f64,
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
    /// comparison with published scores, and last the summary line
    /// `nab standard=… reward_low_fp=… reward_low_fn=…`.
    pub fn lines(&self) -> Vec<String> {
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
        out.push(format!(
            "thresholds {}",
            self.profiles
                .iter()
                .map(|p| format!("{}={}", p.key, p.threshold))
                .collect::<Vec<_>>()
                .join(" ")
        ));
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
