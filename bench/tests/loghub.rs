//! The Loghub scorer: grouping and parsing accuracy on hand-made cases (the definitions of
//! logparser's `get_accuracy` and loghub-2.0's parsing accuracy), and clear errors on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aiops_bench::loghub::{
    LoghubError, find_sets, grouping_accuracy, load_structured, parse_csv, parsing_accuracy,
};

#[test]
fn exact_grouping_scores_one() {
    let truth = ["E1", "E1", "E2", "E3"];
    // Any labels work; only the partition matters.
    let pred = [7, 7, 9, 1];
    assert_eq!(grouping_accuracy(&truth, &pred), 1.0);
}

#[test]
fn a_split_group_loses_all_its_lines() {
    // E1's three lines are split into two predicted groups: none of them counts.
    let truth = ["E1", "E1", "E1", "E2", "E2"];
    let pred = ["a", "a", "b", "c", "c"];
    assert_eq!(grouping_accuracy(&truth, &pred), 2.0 / 5.0);
}

#[test]
fn a_merged_group_loses_both_templates() {
    // E1 and E2 merged into one predicted group: those 3 lines are wrong; E3 is right.
    let truth = ["E1", "E1", "E2", "E3"];
    let pred = ["a", "a", "a", "b"];
    assert_eq!(grouping_accuracy(&truth, &pred), 1.0 / 4.0);
}

#[test]
fn a_pure_but_partial_group_is_wrong() {
    // Predicted group {0, 1} holds only E1 lines but not all of them (line 2 is elsewhere).
    let truth = ["E1", "E1", "E1", "E2"];
    let pred = ["a", "a", "b", "b"];
    assert_eq!(grouping_accuracy(&truth, &pred), 0.0);
}

#[test]
fn lines_without_ground_truth_are_dropped() {
    // logparser's `evaluate` drops lines with an empty EventId before `get_accuracy`.
    let truth = ["E1", "", "E1", "E2"];
    let pred = ["a", "a", "a", "b"];
    assert_eq!(grouping_accuracy(&truth, &pred), 1.0);
}

#[test]
fn parsing_accuracy_is_exact_string_equality() {
    let truth = ["send <*> bytes", "send <*> bytes", "open <*>", "close"];
    let pred = ["send <*> bytes", "send <*>  bytes", "open <*>", "close <*>"];
    assert_eq!(parsing_accuracy(&truth, &pred), 2.0 / 4.0);
}

#[test]
fn csv_quotes_escapes_and_crlf() {
    let text = "a,b,c\r\n1,\"x, \"\"y\"\"\",3\r\n\"multi\nline\",,z\n";
    let rows = parse_csv(Path::new("t.csv"), text).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].1, ["1", "x, \"y\"", "3"]);
    assert_eq!(
        rows[2],
        (3, vec!["multi\nline".into(), String::new(), "z".into()])
    );
}

#[test]
fn csv_errors_name_the_file_and_line() {
    let err = parse_csv(Path::new("bad.csv"), "a,b\n\"open,2\n").unwrap_err();
    assert!(matches!(err, LoghubError::Csv { line: 2, .. }), "{err}");
    assert!(err.to_string().starts_with("bad.csv:2:"), "{err}");
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let path = sub.join(format!("{name}_2k.log_structured.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn loads_content_and_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "Tiny",
        "LineId,Content,EventId,EventTemplate\n1,open file 3,E1,open file <*>\n2,\"a, b\",E2,\"a, b\"\n",
    );
    let set = load_structured("Tiny", &path).unwrap();
    assert_eq!(set.contents, ["open file 3", "a, b"]);
    assert_eq!(set.event_ids, ["E1", "E2"]);
    assert_eq!(set.templates, ["open file <*>", "a, b"]);
    let sets = find_sets(dir.path()).unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].0, "Tiny");
}

#[test]
fn missing_file_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Nope/Nope_2k.log_structured.csv");
    let err = load_structured("Nope", &path).unwrap_err();
    assert!(matches!(err, LoghubError::MissingFile { .. }), "{err}");
    assert!(
        err.to_string().contains("Nope_2k.log_structured.csv"),
        "{err}"
    );
    let err = find_sets(dir.path()).unwrap_err();
    assert!(matches!(err, LoghubError::NoDataSets { .. }), "{err}");
    let err = find_sets(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(err, LoghubError::Io { .. }), "{err}");
}

#[test]
fn missing_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "NoContent",
        "LineId,EventId,EventTemplate\n1,E1,x\n",
    );
    let err = load_structured("NoContent", &path).unwrap_err();
    assert!(
        matches!(
            err,
            LoghubError::MissingColumn {
                column: "Content",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no `Content` column"), "{err}");
    let path = write(dir.path(), "NoTemplate", "LineId,Content,EventId\n1,x,E1\n");
    let err = load_structured("NoTemplate", &path).unwrap_err();
    assert!(
        matches!(
            err,
            LoghubError::MissingColumn {
                column: "EventTemplate",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn ragged_rows_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "Ragged",
        "LineId,Content,EventId,EventTemplate\n1,a,E1,a\n2,b,E2\n",
    );
    let err = load_structured("Ragged", &path).unwrap_err();
    assert!(matches!(err, LoghubError::Csv { line: 3, .. }), "{err}");
}
