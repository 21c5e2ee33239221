#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The NAB scorer against NAB's published results (fixtures in `tests/fixtures/nab`, derived
//! from numenta/NAB; see the README there), NAB's definitions of the perfect and null detectors,
//! and the named errors for bad input.

use aiops_bench::nab::input::PROFILES;
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
