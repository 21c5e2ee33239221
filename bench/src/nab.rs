//! `aiops-bench nab`: the NAB (Numenta Anomaly Benchmark) scorer, faithful to NAB's own code
//! (numenta/NAB `nab/sweeper.py`, `nab/scorer.py`, `nab/optimizer.py`, `nab/runner.py`).
//!
//! The anomaly scores come either from an aiops detector run here over each series
//! (`--detector`, from the `aiops_detect` registry) or from a NAB results directory of a
//! published detector (`--scores results/<detector>`). Each of NAB's three profiles then gets one
//! threshold for all files — NAB's optimiser (sweeping every distinct anomaly score over all rows
//! sorted together), or the published one (`--thresholds config/thresholds.json`) — every file is
//! scored at it, and the sum is normalised between NAB's null detector (0) and a perfect
//! detector (100).
//!
//! Beyond NAB's three profiles (which stay exactly NAB's), the report carries:
//! - the **detection delay** inside windows at the standard profile's threshold ([`delay`]:
//!   `nab-delay windows_detected=K/N mean_delay_rows=… mean_delay_fraction=…`);
//! - the **cold-start** score ([`cold`]: `nab-cold standard=…`), the standard profile on windows
//!   met by a fresh detector that has seen only 10% of its file's length — aiops' definition,
//!   documented in [`cold`];
//! - the files ranked by their standard score, worst first (`--per-series` prints it), so "which
//!   series lose the most points" is one command;
//! - the detector loop's throughput (points/s, one thread, reading and scoring excluded).
//!
//! `--detector all` runs every registry detector but `null` and prints one markdown table.
//!
//! - [`sweeper`]: NAB's arithmetic (scaled sigmoid, probationary period, threshold sweep).
//! - [`score`]: a corpus under one profile; null, perfect and normalisation.
//! - [`delay`]: the first detection in each window.
//! - [`cold`]: the cold-start cases and their score.
//! - [`input`]: NAB's file formats.
//! - [`report`]: the JSON report and the printed lines.

pub mod cold;
pub mod delay;
pub mod input;
pub mod report;
pub mod score;
pub mod sweeper;

use aiops_detect::{Detector, DetectorConfig, DetectorError};
use report::{
    NabReport, NabSuiteReport, ProfileReport, PublishedComparison, SeriesProfile, SeriesRank,
    SeriesReport, SuiteRow,
};
use score::ScoredSeries;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The detector scored when neither `--detector` nor `--scores` is given.
pub const DEFAULT_DETECTOR: &str = "ensemble";

/// `--detector` value that runs every registry detector but `null` ([`evaluate_all`]).
pub const ALL_DETECTORS: &str = "all";

/// Arguments of `aiops-bench nab`.
#[derive(Debug, Clone, clap::Args)]
pub struct NabArgs {
    /// Directory of NAB data files, `<category>/<series>.csv` with columns `timestamp,value`.
    #[arg(long)]
    pub data: PathBuf,
    /// NAB windows file (`labels/combined_windows.json` or a subset): the series scored.
    #[arg(long)]
    pub windows: PathBuf,
    /// NAB profiles file (`config/profiles.json`); default `<data>/../profiles.json` if it
    /// exists, else NAB's profiles built in.
    #[arg(long)]
    pub profiles: Option<PathBuf>,
    /// aiops detector to run over each series (a name of the `aiops_detect` registry); default
    /// `ensemble`. `all`: every registry detector but `null`, one markdown table.
    #[arg(long, conflicts_with = "scores")]
    pub detector: Option<String>,
    /// NAB results directory of one detector (`results/<detector>`, holding
    /// `<category>/<detector>_<file>.csv` with an `anomaly_score` column) to score instead of
    /// running a detector. If it holds `<detector>_<profile>_scores.csv`, each file's score is
    /// compared with the published one.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// NAB thresholds file (`config/thresholds.json`): score at this detector's published
    /// thresholds instead of optimising them (the optimum is reported too).
    #[arg(long)]
    pub thresholds: Option<PathBuf>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "bench/results/nab.json")]
    pub out: PathBuf,
    /// Also print the files ranked by their standard-profile score, worst first (series,
    /// windows, score, tp, fp); the report always holds the ranking.
    #[arg(long)]
    pub per_series: bool,
}

/// Why `aiops-bench nab` failed.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A JSON file is malformed or not of the expected shape.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A CSV row is malformed.
    #[error("{path}:{line}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the header is line 1).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A CSV file lacks a column.
    #[error("{path}: no column {column:?} in the header")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// A series of the windows file has no data file.
    #[error("series {series} is in the windows file but {path} does not exist")]
    MissingSeries {
        /// The series.
        series: String,
        /// Where its CSV was expected.
        path: PathBuf,
    },
    /// A series of the windows file has no results file in `--scores`.
    #[error("series {series}: no results file {path}")]
    MissingResults {
        /// The series.
        series: String,
        /// Where the results file was expected.
        path: PathBuf,
    },
    /// A window of the windows file is malformed.
    #[error("{path}: series {series}: {reason}")]
    Window {
        /// The windows file.
        path: PathBuf,
        /// The series.
        series: String,
        /// What is wrong.
        reason: String,
    },
    /// A window edge is not a timestamp of its data file (NAB's labeler refuses these too).
    #[error("series {series}: window edge {timestamp} is not a timestamp of {path}")]
    WindowEdge {
        /// The series.
        series: String,
        /// The edge.
        timestamp: String,
        /// The data file.
        path: PathBuf,
    },
    /// A data file has no rows.
    #[error("{path}: no data rows")]
    EmptySeries {
        /// The data file.
        path: PathBuf,
    },
    /// A results file's rows do not line up with its data file's.
    #[error("{path}: {reason}")]
    ResultsMismatch {
        /// The results file.
        path: PathBuf,
        /// How they differ.
        reason: String,
    },
    /// A profiles file lacks one of NAB's three profiles.
    #[error("{path}: no profile {profile:?}")]
    Profile {
        /// The profiles file.
        path: PathBuf,
        /// The missing profile.
        profile: String,
    },
    /// The thresholds file has no threshold for this detector and profile.
    #[error("{path}: no threshold for detector {detector:?}, profile {profile:?}")]
    ThresholdMissing {
        /// The thresholds file.
        path: PathBuf,
        /// The detector.
        detector: String,
        /// The profile.
        profile: String,
    },
    /// The detector could not be built.
    #[error("detector: {0}")]
    Detector(#[from] DetectorError),
    /// No `--detector` was given and the registry has no default detector.
    #[error(
        "no --detector or --scores given and the detector registry has no {DEFAULT_DETECTOR:?} \
         detector (known: {known}); pass --detector NAME"
    )]
    NoDefaultDetector {
        /// The registry's names.
        known: String,
    },
    /// The detector gave an anomaly score outside [0, 1] (NAB's detector base refuses these).
    #[error("series {series}, row {row}: anomaly score {score} is not in [0, 1]")]
    ScoreOutOfRange {
        /// The series.
        series: String,
        /// 0-based row.
        row: usize,
        /// The score.
        score: f64,
    },
    /// The windows file has no window at all: the normalised scale is undefined.
    #[error("{path}: no anomaly window in any series; the normalised score is undefined")]
    NoWindows {
        /// The windows file.
        path: PathBuf,
    },
    /// The `--scores` directory has no name to take the detector's from.
    #[error("{path}: cannot tell the detector name from the results directory")]
    DetectorName {
        /// The directory.
        path: PathBuf,
    },
    /// A file could not be scored.
    #[error(transparent)]
    Score(#[from] score::ScoreError),
}

/// Where the anomaly scores come from.
enum Source {
    /// Boxed: a configuration is large next to a path.
    Aiops(Box<DetectorConfig>),
    Results(PathBuf),
}

/// Runs `aiops-bench nab`: prints a line per data set and the summary line last, and writes the
/// JSON report to `--out`.
///
/// # Errors
/// See [`NabError`].
pub fn run(args: NabArgs) -> Result<(), NabError> {
    if args.detector.as_deref() == Some(ALL_DETECTORS) {
        let suite = evaluate_all(&args)?;
        write_json(&args.out, &suite)?;
        for line in suite.lines() {
            println!("{line}");
        }
        return Ok(());
    }
    let report = evaluate(&args)?;
    write_json(&args.out, &report)?;
    for line in report.lines_with(args.per_series) {
        println!("{line}");
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `out`, creating its directory.
fn write_json(out: &Path, value: &impl serde::Serialize) -> Result<(), NabError> {
    let json = serde_json::to_string_pretty(value).map_err(|source| NabError::Json {
        path: out.to_path_buf(),
        source,
    })?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| NabError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(out, json).map_err(|source| NabError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    tracing::info!(out = %out.display(), "nab report written");
    Ok(())
}

/// Scores every registry detector but `null` ([`DetectorConfig::NAMES`]) on the same files,
/// one [`evaluate`] each, and gathers the table of `--detector all`.
///
/// # Errors
/// See [`NabError`]; the first detector that fails stops the run.
pub fn evaluate_all(args: &NabArgs) -> Result<NabSuiteReport, NabError> {
    let mut rows = Vec::new();
    let mut reports = Vec::new();
    for &name in DetectorConfig::NAMES.iter().filter(|&&n| n != "null") {
        let one = NabArgs {
            detector: Some(name.to_string()),
            scores: None,
            ..args.clone()
        };
        let report = evaluate(&one)?;
        tracing::info!(detector = name, "nab scored");
        rows.push(SuiteRow::of(&report));
        reports.push(report);
    }
    Ok(NabSuiteReport { rows, reports })
}

/// Scores the detector or results given by `args` and returns the report, without printing or
/// writing anything.
///
/// # Errors
/// See [`NabError`].
pub fn evaluate(args: &NabArgs) -> Result<NabReport, NabError> {
    let (detector, source) = match (&args.scores, &args.detector) {
        (Some(dir), _) => {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                .ok_or_else(|| NabError::DetectorName { path: dir.clone() })?;
            (name.to_string(), Source::Results(dir.clone()))
        }
        (None, Some(name)) => (
            name.clone(),
            Source::Aiops(Box::new(DetectorConfig::by_name(name)?)),
        ),
        (None, None) => match DetectorConfig::by_name(DEFAULT_DETECTOR) {
            Ok(config) => (
                DEFAULT_DETECTOR.to_string(),
                Source::Aiops(Box::new(config)),
            ),
            Err(_) => {
                return Err(NabError::NoDefaultDetector {
                    known: DetectorConfig::NAMES.join(", "),
                });
            }
        },
    };

    let (profiles, profiles_from) = load_profiles(args)?;
    let published_thresholds = match &args.thresholds {
        Some(path) => {
            let all = input::read_thresholds(path)?;
            let mut per_profile = Vec::new();
            for (name, _) in &profiles {
                let t = all
                    .get(&detector)
                    .and_then(|d| d.get(name))
                    .copied()
                    .ok_or_else(|| NabError::ThresholdMissing {
                        path: path.clone(),
                        detector: detector.clone(),
                        profile: name.clone(),
                    })?;
                per_profile.push(t);
            }
            Some(per_profile)
        }
        None => None,
    };

    let windows = input::read_windows(&args.windows)?;
    let window_count: usize = windows.values().map(Vec::len).sum();
    if window_count == 0 {
        return Err(NabError::NoWindows {
            path: args.windows.clone(),
        });
    }
    let unlabelled = unlabelled_files(&args.data, &windows);
    for f in &unlabelled {
        tracing::warn!(file = %f, "no windows for this data file; not scored (as NAB)");
    }

    let detect_start = Instant::now();
    let mut corpus = Vec::with_capacity(windows.len());
    // The raw values, kept to restart the detector for the cold-start cases.
    let mut values = Vec::with_capacity(windows.len());
    let mut loop_time = Duration::ZERO;
    for (name, series_windows) in &windows {
        let path = args.data.join(name);
        if !path.is_file() {
            return Err(NabError::MissingSeries {
                series: name.clone(),
                path,
            });
        }
        let series = input::read_series(&path)?;
        if series.timestamps.is_empty() {
            return Err(NabError::EmptySeries { path });
        }
        for &(start, end) in series_windows {
            for edge in [start, end] {
                if !series.timestamps.contains(&edge) {
                    return Err(NabError::WindowEdge {
                        series: name.clone(),
                        timestamp: format_timestamp(edge),
                        path: path.clone(),
                    });
                }
            }
        }
        let scores = match &source {
            Source::Aiops(config) => {
                let (scores, took) =
                    run_detector(config, name, &series.timestamps, &series.values)?;
                loop_time += took;
                scores
            }
            Source::Results(dir) => read_scores(dir, &detector, name, &series)?,
        };
        corpus.push(ScoredSeries {
            name: name.clone(),
            timestamps: series.timestamps,
            windows: series_windows.clone(),
            scores,
        });
        values.push(series.values);
    }
    let detect_seconds = detect_start.elapsed().as_secs_f64();
    let rows: usize = corpus.iter().map(|s| s.timestamps.len()).sum();
    let detect_loop_seconds = match source {
        Source::Aiops(_) => Some(loop_time.as_secs_f64()),
        Source::Results(_) => None,
    };

    let score_start = Instant::now();
    let mut profile_reports = Vec::with_capacity(profiles.len());
    let mut per_file: Vec<Vec<SeriesProfile>> = vec![Vec::new(); corpus.len()];
    for (i, (name, cost)) in profiles.iter().enumerate() {
        let published_threshold = published_thresholds
            .as_ref()
            .and_then(|t| t.get(i))
            .copied();
        let scored = score::score_profile(&corpus, cost, published_threshold.map(|t| t.threshold))?;
        let null_raw = score::null_score(&corpus, cost)?;
        let perfect_raw = score::perfect_score(window_count, cost);
        let published_files = match &source {
            Source::Results(dir) => {
                let path = dir.join(format!("{detector}_{name}_scores.csv"));
                if path.is_file() {
                    Some((input::read_published_scores(&path)?, path))
                } else {
                    None
                }
            }
            Source::Aiops(_) => None,
        };
        let mut comparison = published_files
            .as_ref()
            .map(|(_, path)| PublishedComparison {
                path: path.clone(),
                files_compared: 0,
                files_missing: Vec::new(),
                max_abs_score_diff: 0.0,
                count_mismatches: Vec::new(),
                max_abs_threshold_diff: 0.0,
            });
        for ((s, at), out) in corpus.iter().zip(&scored.per_file).zip(per_file.iter_mut()) {
            let published = published_files
                .as_ref()
                .and_then(|(files, _)| files.get(&s.name))
                .cloned();
            if let Some(c) = comparison.as_mut() {
                match &published {
                    Some(p) => {
                        c.files_compared += 1;
                        c.max_abs_score_diff = c.max_abs_score_diff.max((at.score - p.score).abs());
                        c.max_abs_threshold_diff = c
                            .max_abs_threshold_diff
                            .max((scored.threshold - p.threshold).abs());
                        if (at.tp, at.tn, at.fp, at.fn_) != (p.tp, p.tn, p.fp, p.fn_) {
                            c.count_mismatches.push(s.name.clone());
                        }
                    }
                    None => c.files_missing.push(s.name.clone()),
                }
            }
            out.push(SeriesProfile {
                profile: name.clone(),
                score: *at,
                published,
            });
        }
        let key = input::PROFILES
            .iter()
            .find(|(n, _)| n == name)
            .map_or(name.as_str(), |(_, k)| k);
        profile_reports.push(ProfileReport {
            profile: name.clone(),
            key: key.to_string(),
            cost: *cost,
            threshold: scored.threshold,
            threshold_source: if published_threshold.is_some() {
                "published"
            } else {
                "optimised"
            }
            .to_string(),
            published_threshold,
            optimised: scored.optimised,
            raw: scored.raw,
            tp: scored.counts[0],
            tn: scored.counts[1],
            fp: scored.counts[2],
            fn_: scored.counts[3],
            null_raw,
            perfect_raw,
            normalized: score::normalize(scored.raw, null_raw, perfect_raw),
            published: comparison,
        });
    }

    // Delay, ranking and cold start: at the standard profile's threshold, where NAB's headline
    // score is taken (a profiles file without "standard": its first profile).
    let standard = profiles
        .iter()
        .position(|(n, _)| n == "standard")
        .unwrap_or(0);
    let (standard_name, standard_cost) = profiles.get(standard).cloned().unwrap_or_else(|| {
        let (n, c) = input::DEFAULT_PROFILES[0];
        (n.to_string(), c)
    });
    let standard_threshold = profile_reports
        .get(standard)
        .map_or(sweeper::START_THRESHOLD, |p| p.threshold);
    let mut per_window = Vec::with_capacity(window_count);
    for s in &corpus {
        let probation = sweeper::probationary_length(sweeper::PROBATION_PERCENT, s.scores.len());
        per_window.extend(
            delay::window_delays(
                &s.name,
                &s.timestamps,
                &s.scores,
                &s.windows,
                probation,
                standard_threshold,
            )
            .map_err(|source| score::ScoreError {
                series: s.name.clone(),
                source,
            })?,
        );
    }
    let delay = delay::summarize(standard_threshold, per_window);
    let ranking = rank_series(
        &corpus,
        &per_file,
        standard,
        &delay,
        standard_cost.tp_weight,
    );
    let cold = match &source {
        Source::Aiops(config) => Some(cold_start(
            config,
            &corpus,
            &values,
            &standard_name,
            &standard_cost,
            standard_threshold,
        )?),
        Source::Results(_) => None,
    };
    let score_seconds = score_start.elapsed().as_secs_f64();

    let series = corpus
        .iter()
        .zip(per_file)
        .map(|(s, profiles)| SeriesReport {
            series: s.name.clone(),
            rows: s.timestamps.len(),
            windows: s.windows.len(),
            profiles,
        })
        .collect();
    Ok(NabReport {
        detector,
        scores_from: match &source {
            Source::Aiops(_) => "aiops".to_string(),
            Source::Results(dir) => dir.display().to_string(),
        },
        data: args.data.clone(),
        windows: args.windows.clone(),
        profiles_from,
        thresholds_from: args.thresholds.clone(),
        rows,
        window_count,
        unlabelled,
        profiles: profile_reports,
        series,
        detect_seconds,
        score_seconds,
        detect_loop_seconds,
        points_per_second: detect_loop_seconds
            .filter(|&t| t > 0.0)
            .map(|t| rows as f64 / t),
        delay,
        cold,
        ranking,
    })
}

/// The files at the standard profile's threshold (`per_file[_][standard]`), worst score first
/// (ties by name).
fn rank_series(
    corpus: &[ScoredSeries],
    per_file: &[Vec<SeriesProfile>],
    standard: usize,
    delay: &delay::DelaySummary,
    tp_weight: f64,
) -> Vec<SeriesRank> {
    let mut ranking: Vec<SeriesRank> = corpus
        .iter()
        .zip(per_file)
        .filter_map(|(s, profiles)| {
            let at = profiles.get(standard)?.score;
            let detected = delay
                .per_window
                .iter()
                .filter(|w| w.series == s.name && w.delay_rows.is_some())
                .count();
            Some(SeriesRank {
                series: s.name.clone(),
                windows: s.windows.len(),
                windows_detected: detected,
                score: at.score,
                lost: s.windows.len() as f64 * tp_weight - at.score,
                tp: at.tp,
                fp: at.fp,
            })
        })
        .collect();
    ranking.sort_by(|a, b| a.score.total_cmp(&b.score).then(a.series.cmp(&b.series)));
    ranking
}

/// Builds and scores the cold-start cases ([`cold`]): one fresh detector per window.
fn cold_start(
    config: &DetectorConfig,
    corpus: &[ScoredSeries],
    values: &[Vec<f64>],
    profile: &str,
    cost: &sweeper::CostMatrix,
    threshold: f64,
) -> Result<cold::ColdReport, NabError> {
    let mut cases = Vec::new();
    for (s, v) in corpus.iter().zip(values) {
        let spans = cold::spans(&s.timestamps, &s.windows).map_err(|source| {
            NabError::Score(score::ScoreError {
                series: s.name.clone(),
                source,
            })
        })?;
        for span in spans {
            let times = &s.timestamps[span.rows.clone()];
            let (scores, _) = run_detector(config, &s.name, times, &v[span.rows.clone()])?;
            cases.push(cold::ColdCase {
                series: ScoredSeries {
                    name: s.name.clone(),
                    timestamps: times.to_vec(),
                    windows: vec![span.window],
                    scores,
                },
                excluded: span.excluded,
            });
        }
    }
    Ok(cold::score(&cases, profile, cost, threshold)?)
}

/// The profiles to score: `--profiles`, else `<data>/../profiles.json` if it exists, else NAB's
/// built in; and where they came from.
fn load_profiles(args: &NabArgs) -> Result<(Vec<(String, sweeper::CostMatrix)>, String), NabError> {
    if let Some(path) = &args.profiles {
        return Ok((input::read_profiles(path)?, path.display().to_string()));
    }
    if let Some(path) = args.data.parent().map(|p| p.join("profiles.json"))
        && path.is_file()
    {
        return Ok((input::read_profiles(&path)?, path.display().to_string()));
    }
    let built_in = input::DEFAULT_PROFILES
        .iter()
        .map(|(n, c)| ((*n).to_string(), *c))
        .collect();
    Ok((built_in, "built-in (NAB config/profiles.json)".to_string()))
}

/// `<category>/<file>.csv` files under `data` that the windows file does not list.
fn unlabelled_files(data: &Path, windows: &BTreeMap<String, Vec<(i64, i64)>>) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(categories) = std::fs::read_dir(data) else {
        return out;
    };
    for category in categories.flatten() {
        let Ok(files) = std::fs::read_dir(category.path()) else {
            continue;
        };
        let cat = category.file_name().to_string_lossy().into_owned();
        for f in files.flatten() {
            let file = f.file_name().to_string_lossy().into_owned();
            let name = format!("{cat}/{file}");
            if file.ends_with(".csv") && !windows.contains_key(&name) {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

/// Runs a fresh detector over one series (timestamps in µs); each row's anomaly score is
/// `verdict.score`. Also returns the time spent in the detector loop alone (one thread).
fn run_detector(
    config: &DetectorConfig,
    name: &str,
    timestamps: &[i64],
    values: &[f64],
) -> Result<(Vec<f64>, Duration), NabError> {
    let mut detector = config.build()?;
    let times_ms: Vec<i64> = timestamps.iter().map(|t| t.div_euclid(1000)).collect();
    let mut verdicts = Vec::with_capacity(values.len());
    let start = Instant::now();
    detector.observe_batch(&times_ms, values, &mut verdicts);
    let took = start.elapsed();
    let mut scores = Vec::with_capacity(verdicts.len());
    for (row, v) in verdicts.iter().enumerate() {
        if !(0.0..=1.0).contains(&v.score) {
            return Err(NabError::ScoreOutOfRange {
                series: name.to_string(),
                row,
                score: v.score,
            });
        }
        scores.push(v.score);
    }
    Ok((scores, took))
}

/// Reads `<dir>/<category>/<detector>_<file>.csv` of one series and checks it lines up with the
/// data file.
fn read_scores(
    dir: &Path,
    detector: &str,
    name: &str,
    series: &input::Series,
) -> Result<Vec<f64>, NabError> {
    let (category, file) = name.rsplit_once('/').unwrap_or(("", name));
    let path = dir.join(category).join(format!("{detector}_{file}"));
    if !path.is_file() {
        return Err(NabError::MissingResults {
            series: name.to_string(),
            path,
        });
    }
    let (times, scores) = input::read_results(&path)?;
    if scores.len() != series.timestamps.len() {
        return Err(NabError::ResultsMismatch {
            path,
            reason: format!(
                "{} rows but the data file has {}",
                scores.len(),
                series.timestamps.len()
            ),
        });
    }
    if let Some(times) = times
        && let Some(row) = times
            .iter()
            .zip(&series.timestamps)
            .position(|(a, b)| a != b)
    {
        return Err(NabError::ResultsMismatch {
            path,
            reason: format!(
                "line {}: timestamp {} but the data file has {}",
                row + 2,
                format_timestamp(times[row]),
                format_timestamp(series.timestamps[row])
            ),
        });
    }
    Ok(scores)
}

/// Formats µs since 1970 as `YYYY-MM-DD HH:MM:SS.ffffff` (for messages).
pub fn format_timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{frac:06}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}
