#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The NAB scorer against NAB's published results (fixtures in `tests/fixtures/nab`, derived
//! from numenta/NAB; see the README there), NAB's definitions of the perfect and null detectors,
//! and the named errors for bad input; then aiops' additions: the detection delay inside
//! windows, the cold-start cases and score, the ranking of files and `--detector all`.

use aiops_bench::nab::cold::{self, ColdCase};
use aiops_bench::nab::input::PROFILES;
use aiops_bench::nab::score::ScoredSeries;
use aiops_bench::nab::sweeper::{
    CostMatrix, RowPlace, calc_score_by_threshold, calc_sweep_score, probationary_length,
    scaled_sigmoid, score_at_threshold,
};
use aiops_bench::nab::{self, NabArgs, NabError};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nab")
}

fn args(root: &Path, scores: Option<PathBuf>, thresholds: Option<PathBuf>) -> NabArgs {
    NabArgs {
        data: root.join("data"),
        windows: root.join("windows.json"),
        profiles: None,
        detector: None,
        scores,
        thresholds,
        out: root.join("out.json"),
        per_series: false,
    }
}

/// NAB's published per-file rows `(file, score, [tp, tn, fp, fn])`, parsed here independently.
fn published(detector: &str, profile: &str) -> Vec<(String, f64, [u64; 4])> {
    let path = fixtures()
        .join("results")
        .join(detector)
        .join(format!("{detector}_{profile}_scores.csv"));
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f[0], detector);
            assert_eq!(f[1], profile);
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (
                f[2].to_string(),
                f[4].parse::<f64>().unwrap(),
                [n(5), n(6), n(7), n(8)],
            )
        })
        .collect()
}

/// The threshold as written in the fixture's thresholds.json, parsed from its text (Rust's
/// parse is correctly rounded).
fn published_threshold(detector: &str, profile: &str) -> f64 {
    let text = std::fs::read_to_string(fixtures().join("thresholds.json")).unwrap();
    let d = text.find(&format!("\"{detector}\": {{")).unwrap();
    let p = d + text[d..].find(&format!("\"{profile}\": {{")).unwrap();
    let t = p + text[p..].find("\"threshold\": ").unwrap() + "\"threshold\": ".len();
    let end = t + text[t..]
        .find(|c: char| c == ',' || c.is_whitespace() || c == '}')
        .unwrap();
    text[t..end].parse().unwrap()
}

/// NAB's profiles, as in its config/profiles.json.
fn cost(profile: &str) -> CostMatrix {
    let (tp, fp, fnw) = match profile {
        "standard" => (1.0, 0.11, 1.0),
        "reward_low_FP_rate" => (1.0, 0.22, 1.0),
        "reward_low_FN_rate" => (1.0, 0.11, 2.0),
        other => panic!("unknown profile {other}"),
    };
    CostMatrix {
        tp_weight: tp,
        fp_weight: fp,
        fn_weight: fnw,
        tn_weight: 1.0,
    }
}

#[test]
fn per_file_scores_at_published_thresholds_equal_nabs_published_scores() {
    for detector in ["numenta", "windowedGaussian"] {
        let root = fixtures();
        let report = nab::evaluate(&args(
            &root,
            Some(root.join("results").join(detector)),
            Some(root.join("thresholds.json")),
        ))
        .unwrap();
        assert_eq!(report.detector, detector);
        assert_eq!(report.series.len(), 3);
        for (i, (profile, _)) in PROFILES.iter().enumerate() {
            let p = &report.profiles[i];
            assert_eq!(p.profile, *profile);
            assert_eq!(p.threshold, published_threshold(detector, profile));
            let rows = published(detector, profile);
            assert_eq!(rows.len(), 3, "{detector} {profile}");
            let mut published_total = 0.0;
            for (file, score, counts) in rows {
                let series = report.series.iter().find(|s| s.series == file).unwrap();
                let got = series.profiles[i].score;
                // NAB printed its scores with 12 significant digits.
                assert!(
                    (got.score - score).abs() <= 1e-10,
                    "{detector} {profile} {file}: {} vs published {score}",
                    got.score
                );
                assert_eq!(
                    [got.tp, got.tn, got.fp, got.fn_],
                    counts,
                    "{detector} {profile} {file}"
                );
                published_total += score;
            }
            assert!((p.raw - published_total).abs() <= 1e-9);
        }
    }
}

#[test]
fn published_comparison_is_reported_when_the_results_directory_has_nabs_scores() {
    let root = fixtures();
    let report = nab::evaluate(&args(
        &root,
        Some(root.join("results/numenta")),
        Some(root.join("thresholds.json")),
    ))
    .unwrap();
    for p in &report.profiles {
        let c = p.published.as_ref().unwrap();
        assert_eq!(c.files_compared, 3);
        assert!(c.files_missing.is_empty());
        assert!(c.count_mismatches.is_empty());
        assert!(c.max_abs_score_diff <= 1e-10);
    }
    let lines = report.lines();
    let last = lines.last().unwrap();
    assert!(last.starts_with("nab standard="), "{last}");
    assert!(last.contains(" reward_low_fp=") && last.contains(" reward_low_fn="));
}

/// NAB's `scaledSigmoid` docstring: -1 → 0.98661, -0.5 → 0.84828, 0 → 0, 1 → -0.98661; past 3
/// windows it is -1. The probationary period is 15% of the rows, at most 15% of 5000.
#[test]
fn sigmoid_and_probation_follow_nabs_definitions() {
    assert!((scaled_sigmoid(-1.0) - 0.98661).abs() < 1e-5);
    assert!((scaled_sigmoid(-0.5) - 0.84828).abs() < 1e-5);
    assert_eq!(scaled_sigmoid(0.0), 0.0);
    assert!((scaled_sigmoid(1.0) + 0.98661).abs() < 1e-5);
    assert_eq!(scaled_sigmoid(3.5), -1.0);
    assert_eq!(probationary_length(0.15, 4032), 604.0);
    assert_eq!(probationary_length(0.15, 1127), 169.0);
    assert_eq!(probationary_length(0.15, 22695), 750.0);
}

/// A 20-row file, 3 probationary rows, one window over rows 10..=14: detections are rewarded by
/// their position in the window (the earliest fully), false positives before the window cost
/// `fpWeight`, after it by their distance from the window's right edge.
#[test]
fn sweep_rewards_the_earliest_detection_and_weighs_false_positives() {
    let c = cost("standard");
    let times: Vec<i64> = (0..20).collect();
    let windows = [(10, 14)];
    let at = |scores: &[f64]| {
        let points = calc_sweep_score(&times, scores, &windows, 0, &c, 0.15).unwrap();
        assert_eq!(points[2].place, RowPlace::Probationary);
        assert_eq!(points[3].place, RowPlace::Outside);
        assert_eq!(points[10].place, RowPlace::Window(0));
        score_at_threshold(&calc_score_by_threshold(&points, &c), 0.5).unwrap()
    };
    let mut scores = vec![0.0; 20];
    // Nothing detected: the window is missed.
    let none = at(&scores);
    assert_eq!(none.score, -c.fn_weight);
    assert_eq!((none.tp, none.fn_, none.fp, none.tn), (0, 5, 0, 12));
    // First row of the window: the full tpWeight; later rows of it add nothing more.
    scores[10] = 1.0;
    scores[12] = 0.9;
    let first = at(&scores);
    assert!((first.score - c.tp_weight).abs() < 1e-12);
    assert_eq!((first.tp, first.fn_), (2, 3));
    // Only a later row: scaled by its position -(14 - 12 + 1) / 5.
    scores[10] = 0.0;
    let later = at(&scores);
    let expected = scaled_sigmoid(-0.6) / scaled_sigmoid(-1.0) * c.tp_weight;
    assert!((later.score - expected).abs() < 1e-12);
    // A false positive before any window costs fpWeight, one 3 rows after the window's right
    // edge scaledSigmoid(3 / (5 - 1)) × fpWeight; probationary rows never count.
    scores[5] = 1.0;
    scores[17] = 1.0;
    scores[1] = 1.0;
    let fps = at(&scores);
    let expected = expected - c.fp_weight + scaled_sigmoid(0.75) * c.fp_weight;
    assert!((fps.score - expected).abs() < 1e-12);
    assert_eq!((fps.fp, fps.tp, fps.total), (2, 1, 17));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Writes `results/<name>/<category>/<name>_<file>.csv` for every fixture series, the anomaly
/// score of each row given by `score(row, window starts, timestamp)`.
fn write_results(root: &Path, name: &str, score: impl Fn(i64, &[i64]) -> f64) -> PathBuf {
    let windows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("windows.json")).unwrap()).unwrap();
    let dir = root.join("results").join(name);
    for (series, ws) in windows.as_object().unwrap() {
        let starts: Vec<i64> = ws
            .as_array()
            .unwrap()
            .iter()
            .map(|w| nab::input::parse_timestamp(w[0].as_str().unwrap()).unwrap())
            .collect();
        let data = std::fs::read_to_string(root.join("data").join(series)).unwrap();
        let (category, file) = series.split_once('/').unwrap();
        let mut out = String::from("timestamp,value,anomaly_score\n");
        for line in data.lines().skip(1) {
            let (ts, value) = line.split_once(',').unwrap();
            let t = nab::input::parse_timestamp(ts).unwrap();
            out.push_str(&format!("{ts},{value},{}\n", score(t, &starts)));
        }
        std::fs::create_dir_all(dir.join(category)).unwrap();
        std::fs::write(dir.join(category).join(format!("{name}_{file}")), out).unwrap();
    }
    dir
}

#[test]
fn a_perfect_detector_scores_100_and_the_null_detector_0() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    copy_dir(&fixtures(), root);

    // NAB's perfect detector: one detection at the first row of each window, nothing else.
    let perfect = write_results(
        root,
        "perfect",
        |t, starts| {
            if starts.contains(&t) { 1.0 } else { 0.0 }
        },
    );
    let report = nab::evaluate(&args(root, Some(perfect), None)).unwrap();
    assert_eq!(report.window_count, 9);
    for p in &report.profiles {
        assert!(
            (p.normalized - 100.0).abs() < 1e-9,
            "{}: {}",
            p.profile,
            p.normalized
        );
        assert!((p.raw - 9.0 * p.cost.tp_weight).abs() < 1e-9);
        assert_eq!(p.threshold_source, "optimised");
        assert_eq!(p.fp, 0);
    }

    // NAB's null detector: a constant 0.5; its best threshold detects nothing.
    let null = write_results(root, "null", |_, _| 0.5);
    let report =
        nab::evaluate(&args(root, Some(null), Some(root.join("thresholds.json")))).unwrap();
    for p in &report.profiles {
        assert!(p.normalized.abs() < 1e-9, "{}: {}", p.profile, p.normalized);
        assert_eq!(p.raw, -9.0 * p.cost.fn_weight);
        assert_eq!(p.tp + p.fp, 0);
    }

    // The aiops placeholder detector, while the registry has it, scores every row 0.
    if aiops_detect::DetectorConfig::by_name("null").is_ok() {
        let mut a = args(root, None, None);
        a.detector = Some("null".to_string());
        let report = nab::evaluate(&a).unwrap();
        for p in &report.profiles {
            assert!(p.normalized.abs() < 1e-9, "{}: {}", p.profile, p.normalized);
        }
    }
}

#[test]
fn optimised_thresholds_are_never_worse_than_published_ones_on_the_same_files() {
    let root = fixtures();
    for detector in ["numenta", "windowedGaussian"] {
        let scores = Some(root.join("results").join(detector));
        let optimised = nab::evaluate(&args(&root, scores.clone(), None)).unwrap();
        let published =
            nab::evaluate(&args(&root, scores, Some(root.join("thresholds.json")))).unwrap();
        for (o, p) in optimised.profiles.iter().zip(&published.profiles) {
            assert!(o.raw >= p.raw - 1e-9, "{detector} {}", o.profile);
            assert!((o.raw - o.optimised.score).abs() < 1e-9);
            assert_eq!(o.threshold, o.optimised.threshold);
        }
    }
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    copy_dir(&fixtures(), &root);
    (tmp, root)
}

fn replace_line(path: &Path, line: usize, with: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = with;
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_malformed_data_row_names_the_file_and_line() {
    let (_tmp, root) = scratch();
    let file = root.join("data/realTraffic/speed_7578.csv");
    replace_line(&file, 5, "2015-09-08 12:00:00,not-a-number");
    match nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)) {
        Err(NabError::Csv { path, line, .. }) => {
            assert_eq!(path, file);
            assert_eq!(line, 5);
        }
        other => panic!("expected a CSV error, got {other:?}"),
    }
    replace_line(&file, 7, "2015-09-08 12:10:00");
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    assert!(matches!(err, NabError::Csv { line: 5, .. }), "{err}");
    replace_line(&file, 5, "2015-09-08 12:05:00,3");
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    assert!(matches!(err, NabError::Csv { line: 7, .. }), "{err}");
    assert!(err.to_string().contains("speed_7578.csv:7"), "{err}");
}

#[test]
fn a_malformed_results_row_names_the_file_and_line() {
    let (_tmp, root) = scratch();
    let file = root.join("results/numenta/realAdExchange/numenta_exchange-3_cpc_results.csv");
    replace_line(&file, 300, "2011-07-04 05:15:01,zero");
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    match err {
        NabError::Csv { path, line, .. } => {
            assert_eq!(path, file);
            assert_eq!(line, 300);
        }
        other => panic!("expected a CSV error, got {other:?}"),
    }
}

#[test]
fn a_series_without_data_or_results_is_named() {
    let (_tmp, root) = scratch();
    std::fs::remove_file(
        root.join("results/windowedGaussian/realTraffic/windowedGaussian_speed_7578.csv"),
    )
    .unwrap();
    let err = nab::evaluate(&args(
        &root,
        Some(root.join("results/windowedGaussian")),
        None,
    ))
    .unwrap_err();
    assert!(
        matches!(&err, NabError::MissingResults { series, .. } if series == "realTraffic/speed_7578.csv"),
        "{err}"
    );

    std::fs::remove_file(root.join("data/realKnownCause/rogue_agent_key_hold.csv")).unwrap();
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    assert!(
        matches!(&err, NabError::MissingSeries { series, .. } if series == "realKnownCause/rogue_agent_key_hold.csv"),
        "{err}"
    );
}

#[test]
fn bad_windows_and_thresholds_are_named() {
    let (_tmp, root) = scratch();
    let windows = root.join("windows.json");
    let text = std::fs::read_to_string(&windows).unwrap();
    // A window edge that is not a row of the data file (rows are at :01 seconds).
    std::fs::write(
        &windows,
        text.replace("2011-07-13 09:15:01.000000", "2011-07-13 09:15:00.000000"),
    )
    .unwrap();
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    assert!(
        matches!(&err, NabError::WindowEdge { series, .. } if series == "realAdExchange/exchange-3_cpc_results.csv"),
        "{err}"
    );
    std::fs::write(
        &windows,
        text.replace("2011-07-13 09:15:01.000000", "2011-07-13 9:15"),
    )
    .unwrap();
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    assert!(matches!(err, NabError::Window { .. }), "{err}");
    std::fs::write(&windows, "{not json").unwrap();
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    assert!(matches!(err, NabError::Json { .. }), "{err}");
    std::fs::remove_file(&windows).unwrap();
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    assert!(matches!(err, NabError::Io { .. }), "{err}");

    let (_tmp, root) = scratch();
    let thresholds = root.join("thresholds.json");
    std::fs::write(
        &thresholds,
        r#"{"numenta": {"standard": {"threshold": 0.5, "score": 0}}}"#,
    )
    .unwrap();
    let err = nab::evaluate(&args(
        &root,
        Some(root.join("results/numenta")),
        Some(thresholds),
    ))
    .unwrap_err();
    assert!(
        matches!(&err, NabError::ThresholdMissing { detector, profile, .. } if detector == "numenta" && profile == "reward_low_FP_rate"),
        "{err}"
    );
}

#[test]
fn results_that_do_not_line_up_with_the_data_are_refused() {
    let (_tmp, root) = scratch();
    let file = root.join("results/numenta/realTraffic/numenta_speed_7578.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    let short: Vec<&str> = text.lines().take(100).collect();
    std::fs::write(&file, short.join("\n") + "\n").unwrap();
    let err = nab::evaluate(&args(&root, Some(root.join("results/numenta")), None)).unwrap_err();
    assert!(matches!(err, NabError::ResultsMismatch { .. }), "{err}");
}

#[test]
fn an_unknown_detector_is_a_detector_error() {
    let root = fixtures();
    let mut a = args(&root, None, None);
    a.detector = Some("no-such-detector".to_string());
    let err = nab::evaluate(&a).unwrap_err();
    assert!(matches!(err, NabError::Detector(_)), "{err}");
}

#[test]
fn published_thresholds_are_read_exactly_as_written() {
    let (_tmp, root) = scratch();
    let thresholds = root.join("thresholds.json");
    // 17 significant digits, where a fast float parse can be one ulp off.
    let written = [
        "0.9813537597656257",
        "0.9945251464843755",
        "0.9845962524414067",
    ];
    std::fs::write(
        &thresholds,
        format!(
            r#"{{"numenta": {{"standard": {{"score": 1.0, "threshold": {}}},
                "reward_low_FP_rate": {{"score": 1.0, "threshold": {}}},
                "reward_low_FN_rate": {{"score": 1.0, "threshold": {}}}}}}}"#,
            written[0], written[1], written[2]
        ),
    )
    .unwrap();
    let report = nab::evaluate(&args(
        &root,
        Some(root.join("results/numenta")),
        Some(thresholds),
    ))
    .unwrap();
    for (p, w) in report.profiles.iter().zip(written) {
        assert_eq!(
            p.threshold.to_bits(),
            w.parse::<f64>().unwrap().to_bits(),
            "{w}"
        );
        assert_eq!(p.threshold_source, "published");
    }
}

/// Writes `results/<name>/…` for every fixture series, the anomaly score of each row given by
/// `score(row, rows where the series' windows start)`.
fn write_results_by_row(
    root: &Path,
    name: &str,
    score: impl Fn(usize, &[usize]) -> f64,
) -> PathBuf {
    let windows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("windows.json")).unwrap()).unwrap();
    let dir = root.join("results").join(name);
    for (series, ws) in windows.as_object().unwrap() {
        let data = std::fs::read_to_string(root.join("data").join(series)).unwrap();
        let rows: Vec<(&str, &str)> = data
            .lines()
            .skip(1)
            .map(|l| l.split_once(',').unwrap())
            .collect();
        let starts: Vec<usize> = ws
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let start = w[0].as_str().unwrap();
                rows.iter()
                    .position(|(ts, _)| start.starts_with(ts))
                    .unwrap()
            })
            .collect();
        let (category, file) = series.split_once('/').unwrap();
        let mut out = String::from("timestamp,value,anomaly_score\n");
        for (i, (ts, value)) in rows.iter().enumerate() {
            out.push_str(&format!("{ts},{value},{}\n", score(i, &starts)));
        }
        std::fs::create_dir_all(dir.join(category)).unwrap();
        std::fs::write(dir.join(category).join(format!("{name}_{file}")), out).unwrap();
    }
    dir
}

/// A detector that fires exactly 3 rows into every window: all 9 windows detected, 3 rows late
/// each, and the minutes are those between the rows' timestamps.
#[test]
fn detection_delay_is_the_first_detection_inside_each_window() {
    let (_tmp, root) = scratch();
    let late = write_results_by_row(&root, "late", |i, starts| {
        if starts.iter().any(|&s| i == s + 3) {
            1.0
        } else {
            0.0
        }
    });
    let report = nab::evaluate(&args(&root, Some(late), None)).unwrap();
    let d = &report.delay;
    assert_eq!(d.threshold, report.profiles[0].threshold);
    assert_eq!((d.windows_detected, d.windows), (9, 9));
    assert_eq!(d.mean_delay_rows, Some(3.0));
    for w in &d.per_window {
        assert_eq!(w.delay_rows, Some(3), "{}", w.series);
        assert_eq!(w.delay_fraction, Some(3.0 / w.rows as f64));
        let series = nab::input::read_series(&root.join("data").join(&w.series)).unwrap();
        let t = &series.timestamps;
        let minutes = (t[w.start_row + 3] - t[w.start_row]) as f64 / 60e6;
        assert_eq!(w.delay_minutes, Some(minutes), "{}", w.series);
    }
    let lines = report.lines();
    let delay_line = &lines[lines.len() - 3];
    assert!(
        delay_line
            .starts_with("nab-delay windows_detected=9/9 mean_delay_rows=3.0 mean_delay_fraction="),
        "{delay_line}"
    );
    // A results directory cannot be restarted: no cold-start score, said so.
    assert!(report.cold.is_none());
    assert!(lines[lines.len() - 2].starts_with("nab-cold n/a"));
    assert!(lines[lines.len() - 1].starts_with("nab standard="));

    // Firing only before the windows: nothing detected, no mean.
    let early = write_results_by_row(&root, "early", |i, starts| {
        if starts.iter().any(|&s| i + 1 == s) {
            1.0
        } else {
            0.0
        }
    });
    let report = nab::evaluate(&args(&root, Some(early), None)).unwrap();
    // The optimiser then detects nothing; the delay is taken at its threshold all the same.
    assert_eq!(report.delay.windows_detected, 0);
    assert_eq!(report.delay.mean_delay_rows, None);
}

/// The ranking holds every file at the standard threshold, worst first, with the points each
/// lost against a perfect detector; `--per-series` prints it.
#[test]
fn files_are_ranked_worst_first_at_the_standard_threshold() {
    let root = fixtures();
    let report = nab::evaluate(&args(
        &root,
        Some(root.join("results/numenta")),
        Some(root.join("thresholds.json")),
    ))
    .unwrap();
    assert_eq!(report.ranking.len(), 3);
    for pair in report.ranking.windows(2) {
        assert!(pair[0].score <= pair[1].score);
    }
    for r in &report.ranking {
        let s = report.series.iter().find(|s| s.series == r.series).unwrap();
        let at = s.profiles[0].score;
        assert_eq!((r.score, r.tp, r.fp), (at.score, at.tp, at.fp));
        assert_eq!(r.windows, s.windows);
        assert!((r.lost - (s.windows as f64 - at.score)).abs() < 1e-12);
        assert!(r.windows_detected <= r.windows);
    }
    let plain = report.lines();
    let with = report.lines_with(true);
    assert_eq!(with.len(), plain.len() + 3 + report.ranking.len());
    let first = &report.ranking[0].series;
    assert!(!plain.iter().any(|l| l.starts_with(&format!("| {first} |"))));
    assert!(with.iter().any(|l| l.starts_with(&format!("| {first} |"))));
    assert!(with.last().unwrap().starts_with("nab standard="));
}

/// A file of 100 rows (history ⌊10%⌋ = 10 rows) with windows at rows 5..=9, 30..=39, 45..=49.
fn cold_file() -> (Vec<i64>, Vec<(i64, i64)>) {
    ((0..100).collect(), vec![(5, 9), (30, 39), (45, 49)])
}

#[test]
fn cold_cases_start_a_tenth_of_the_file_before_each_window() {
    let (times, windows) = cold_file();
    let spans = cold::spans(&times, &windows).unwrap();
    assert_eq!(spans.len(), 3);
    // A window nearer the start than the history: from row 0.
    assert_eq!(spans[0].rows, 0..10);
    assert_eq!(spans[1].rows, 20..40);
    // The third case starts inside the second window, whose rows never count.
    assert_eq!(spans[2].rows, 35..50);
    assert_eq!(spans[2].excluded, vec![0, 1, 2, 3, 4]);
    assert!(spans[0].excluded.is_empty() && spans[1].excluded.is_empty());
    assert_eq!(spans[1].window, (30, 39));
    assert!(cold::spans(&times, &[(5, 1000)]).is_err());
}

/// The cases of [`cold_file`] with the anomaly score of each row of the file given by `score`.
fn cold_cases(score: impl Fn(i64) -> f64) -> Vec<ColdCase> {
    let (times, windows) = cold_file();
    cold::spans(&times, &windows)
        .unwrap()
        .into_iter()
        .map(|span| ColdCase {
            series: ScoredSeries {
                name: "cold.csv".to_string(),
                timestamps: times[span.rows.clone()].to_vec(),
                windows: vec![span.window],
                scores: times[span.rows].iter().map(|&t| score(t)).collect(),
            },
            excluded: span.excluded,
        })
        .collect()
}

#[test]
fn cold_score_judges_from_the_first_point_and_ignores_other_windows() {
    let c = cost("standard");
    let starts = [5, 30, 45];
    // A perfect detector: 100, every window at once.
    let perfect = cold::score(
        &cold_cases(|t| if starts.contains(&t) { 1.0 } else { 0.0 }),
        "standard",
        &c,
        0.5,
    )
    .unwrap();
    assert!(
        (perfect.normalized - 100.0).abs() < 1e-9,
        "{}",
        perfect.normalized
    );
    assert_eq!((perfect.tp, perfect.fp, perfect.cases), (3, 0, 3));
    assert_eq!(perfect.delay.mean_delay_rows, Some(0.0));
    assert_eq!(perfect.delay.windows_detected, 3);
    assert!((perfect.mean_history_rows - (5.0 + 10.0 + 10.0) / 3.0).abs() < 1e-12);
    // The null detector is the 0 of the scale, under the same rules.
    let null = cold::score(&cold_cases(|_| 0.5), "standard", &c, 0.5).unwrap();
    assert!(null.normalized.abs() < 1e-9, "{}", null.normalized);
    assert!((null.raw - null.null_raw).abs() < 1e-12);
    // An alarm at row 1, during what NAB would call probation, is a false positive here.
    let noisy = cold::score(
        &cold_cases(|t| {
            if starts.contains(&t) || t == 1 {
                1.0
            } else {
                0.0
            }
        }),
        "standard",
        &c,
        0.5,
    )
    .unwrap();
    assert_eq!(noisy.fp, 1);
    assert!((noisy.raw - (perfect.raw - c.fp_weight)).abs() < 1e-12);
    // An alarm in the second window, seen by the third case before its window, is not one.
    let inside = cold::score(
        &cold_cases(|t| {
            if starts.contains(&t) || t == 36 {
                1.0
            } else {
                0.0
            }
        }),
        "standard",
        &c,
        0.5,
    )
    .unwrap();
    assert_eq!(inside.fp, 0);
    assert!((inside.raw - perfect.raw).abs() < 1e-12);
    // A silent detector misses all three windows.
    let silent = cold::score(&cold_cases(|_| 0.0), "standard", &c, 0.5).unwrap();
    assert_eq!(silent.raw, -3.0 * c.fn_weight);
    assert_eq!(silent.delay.windows_detected, 0);
    assert!(silent.normalized < null.normalized);
}

/// An aiops detector gets a cold-start score, one case per window; `--detector all` runs every
/// registry detector but `null` and its rows agree with the single runs.
#[test]
fn aiops_detectors_get_a_cold_score_and_all_of_them_a_table() {
    let root = fixtures();
    let mut a = args(&root, None, None);
    a.detector = Some("ensemble".to_string());
    let report = nab::evaluate(&a).unwrap();
    let cold = report.cold.as_ref().unwrap();
    assert_eq!(cold.cases, report.window_count);
    assert_eq!(cold.threshold, report.profiles[0].threshold);
    assert!(cold.optimised_raw >= cold.raw - 1e-12);
    assert!(report.points_per_second.unwrap() > 0.0);
    let lines = report.lines();
    assert!(lines[lines.len() - 2].starts_with("nab-cold standard="));

    a.detector = Some(nab::ALL_DETECTORS.to_string());
    let suite = nab::evaluate_all(&a).unwrap();
    let names: Vec<&str> = aiops_detect::DetectorConfig::NAMES
        .iter()
        .copied()
        .filter(|&n| n != "null")
        .collect();
    assert_eq!(
        suite
            .rows
            .iter()
            .map(|r| r.detector.as_str())
            .collect::<Vec<_>>(),
        names
    );
    let ensemble = suite
        .rows
        .iter()
        .find(|r| r.detector == "ensemble")
        .unwrap();
    assert_eq!(ensemble.standard, report.normalized("standard"));
    assert_eq!(ensemble.cold, Some(cold.normalized));
    let table = suite.lines();
    assert_eq!(table.len(), 2 + names.len());
    assert!(table[0].starts_with("| detector | standard | reward_low_fp | reward_low_fn | cold |"));
    assert!(table.iter().any(|l| l.starts_with("| ensemble | ")));
}
