//! The Chinese tokenizer measurement: top-1/top-3/MRR on a small Chinese runbook set
//! (tests/data/zh.json). Run it with and without `--features jieba` to compare bigrams and
//! jieba; docs/knowledge.md has the figures.

use std::time::Instant;

use aiops_knowledge::{Command, EntryInput, KnowledgeBase, Links, SearchQuery};
use serde::Deserialize;

#[derive(Deserialize)]
struct Data {
    entries: Vec<E>,
    queries: Vec<Q>,
}

#[derive(Deserialize)]
struct E {
    id: String,
    title: String,
    body: String,
}

#[derive(Deserialize)]
struct Q {
    q: String,
    expected: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "engine/knowledge/tests/data/zh.json".to_string());
    let data: Data = serde_json::from_slice(&std::fs::read(path)?)?;
    let mut kb = KnowledgeBase::new();
    for e in data.entries {
        kb.apply(&Command::Put {
            entry: EntryInput {
                id: e.id,
                title: e.title,
                body: e.body,
                tags: Vec::new(),
                owner: None,
                links: Links::default(),
                draft: false,
                source: None,
            },
            base_revision: None,
            by: "zh".into(),
            at_ms: 0,
        })?;
    }
    let t = Instant::now();
    let chunks = kb.warm()?;
    let build = t.elapsed();
    let (mut top1, mut top3, mut mrr) = (0.0, 0.0, 0.0);
    for q in &data.queries {
        let hits = kb.search(&SearchQuery {
            text: q.q.clone(),
            limit: 10,
            ..SearchQuery::default()
        })?;
        let rank = hits
            .iter()
            .position(|h| h.entry_id == q.expected)
            .map(|p| p + 1);
        if rank == Some(1) {
            top1 += 1.0;
        }
        if rank.is_some_and(|r| r <= 3) {
            top3 += 1.0;
        }
        mrr += rank.map_or(0.0, |r| 1.0 / r as f64);
        let got: Vec<&str> = hits.iter().take(3).map(|h| h.entry_id.as_str()).collect();
        println!("{} expected={} rank={rank:?} top3={got:?}", q.q, q.expected);
    }
    let n = data.queries.len() as f64;
    println!(
        "zh tokenizer={} queries={} top1={:.3} top3={:.3} mrr={:.3} chunks={chunks} build_ms={:.1}",
        if cfg!(feature = "jieba") {
            "jieba"
        } else {
            "bigrams"
        },
        data.queries.len(),
        top1 / n,
        top3 / n,
        mrr / n,
        build.as_secs_f64() * 1e3
    );
    Ok(())
}
