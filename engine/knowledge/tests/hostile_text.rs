//! Entry text and alert annotations written to break the index: wide whitespace next to a hit,
//! a megabyte of sentence punctuation, huge annotations. Each must answer, not panic or stall.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod fixtures;

use aiops_knowledge::{AlertContext, AskRequest, KnowledgeBase, SearchQuery};
use fixtures::{entry, put};
use std::time::{Duration, Instant};

#[test]
fn wide_whitespace_before_a_hit_gives_a_snippet() {
    let mut kb = KnowledgeBase::new();
    // The only whitespace in the 40 bytes before the hit is U+3000 (3 bytes).
    let body = "# Disk\n\n磁盘空间不足磁盘空间不足磁盘空间不足\u{3000}cleanup now\n";
    put(&mut kb, entry("zh/wide", "Disk", body), "t", 1);
    let hits = kb
        .search(&SearchQuery {
            text: "cleanup".into(),
            limit: 5,
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(hits[0].entry_id, "zh/wide");
    assert!(
        hits[0].snippet.contains("<mark>cleanup</mark>"),
        "{}",
        hits[0].snippet
    );
}

#[test]
fn a_megabyte_of_dots_is_indexed_and_answered_in_linear_time() {
    let mut kb = KnowledgeBase::new();
    let body = format!("# Dots\n\n## Mitigation\n\n{}\n", "a.".repeat(400_000));
    put(&mut kb, entry("dots", "Dots", &body), "t", 1);
    let t = Instant::now();
    let a = kb
        .ask(&AskRequest {
            question: "how to mitigate dots".into(),
            context: None,
        })
        .unwrap();
    // Quadratic splitting took minutes here; linear takes well under a second even on a busy
    // machine. The bound is generous on purpose: it catches the complexity, not the speed.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    for s in &a.sentences {
        assert!(body.contains(&s.text));
    }
}

#[test]
fn a_huge_annotation_is_cut_to_a_query_of_normal_size() {
    let ctx = AlertContext {
        alertname: "DiskFull".into(),
        annotations: [("description".to_string(), "disk full ".repeat(500_000))].into(),
        ..AlertContext::default()
    };
    let text = ctx.search_text();
    assert!(
        text.len() <= aiops_knowledge::search::MAX_QUERY_BYTES,
        "{}",
        text.len()
    );
    assert!(text.starts_with("DiskFull"));
    let mut kb = KnowledgeBase::new();
    put(
        &mut kb,
        entry("disk", "Disk full", "# Disk full\n\nClean up.\n"),
        "t",
        1,
    );
    kb.link(&ctx, 5).unwrap();
}
