//! Scores the knowledge base on a runbook corpus and labelled alert queries, and measures its
//! speed — the same figures as `aiops-bench knowledge`, buildable without the server.
//!
//! ```text
//! cargo run --release -p aiops-knowledge --example score -- CORPUS_DIR QUERIES_JSON [--speed]
//! ```

use std::path::Path;
use std::time::Instant;

use aiops_knowledge::eval::{self, DevQuery, Summary};
use aiops_knowledge::{AskRequest, Command, KnowledgeBase, SearchQuery};

fn read_dir(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    let mut items: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    items.sort_by_key(|e| e.path());
    for e in items {
        let p = e.path();
        if p.is_dir() {
            read_dir(root, &p, out)?;
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, text));
        }
    }
    Ok(())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

/// Tuning overrides for measurements: `KB_TITLE`, `KB_NAMES`, `KB_HEADINGS`, `KB_BODY`,
/// `KB_CODE`, `KB_FLOOR`.
fn tuning_from_env() -> aiops_knowledge::Tuning {
    let mut t = aiops_knowledge::Tuning::default();
    let get = |k: &str, v: &mut f32| {
        if let Some(x) = std::env::var(k).ok().and_then(|s| s.parse().ok()) {
            *v = x;
        }
    };
    get("KB_TITLE", &mut t.title);
    get("KB_NAMES", &mut t.names);
    get("KB_HEADINGS", &mut t.headings);
    get("KB_BODY", &mut t.body);
    get("KB_CODE", &mut t.code);
    get("KB_FLOOR", &mut t.coverage_floor);
    t
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(corpus), Some(queries)) = (args.first(), args.get(1)) else {
        eprintln!("usage: score CORPUS_DIR QUERIES_JSON [--speed]");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    read_dir(Path::new(corpus), Path::new(corpus), &mut files)?;
    let queries: Vec<DevQuery> = serde_json::from_slice(&std::fs::read(queries)?)?;
    let mut kb = KnowledgeBase::with_tuning(tuning_from_env());
    let refused = eval::import(&mut kb, &files)?;
    for (f, e) in &refused {
        println!("refused {f}: {e}");
    }
    kb.warm()?;
    let t = Instant::now();
    let mut outcomes = Vec::new();
    for q in &queries {
        let o = eval::evaluate(&kb, q)?;
        println!("{}", o.line());
        if std::env::var_os("KB_EXPLAIN").is_some() {
            for (id, score, cov) in kb.explain(&eval::question(q), 3)? {
                println!("    {id} score={score:.2} coverage={cov:.2}");
            }
        }
        outcomes.push(o);
    }
    let qps = queries.len() as f64 / t.elapsed().as_secs_f64();
    let s = Summary::of(&outcomes);
    println!(
        "knowledge link_accuracy={:.3} top1={:.3} top3={:.3} mrr={:.3} abstain_on_null={:.3} queries_per_sec={:.0}",
        s.link_accuracy, s.top1, s.top3, s.mrr, s.abstain_on_null, qps
    );
    if args.iter().any(|a| a == "--speed") {
        speed(&files, &queries)?;
    }
    Ok(())
}

/// Index build rate, and search / ask latency over about 100,000 chunks (the corpus replicated
/// under new ids).
fn speed(
    files: &[(String, String)],
    queries: &[DevQuery],
) -> Result<(), Box<dyn std::error::Error>> {
    let (entries, _) = aiops_knowledge::entries_from_dir_listing(files);
    let mut kb = KnowledgeBase::new();
    let mut copies = 0;
    let mut bytes = 0usize;
    let mut n_entries = 0usize;
    loop {
        for e in &entries {
            let mut e = e.clone();
            e.id = format!("copy{copies:04}/{}", e.id);
            bytes += e.body.len() + e.title.len();
            n_entries += 1;
            kb.apply(&Command::Put {
                entry: e,
                base_revision: None,
                by: "bench".into(),
                at_ms: 0,
            })?;
        }
        copies += 1;
        // Count chunks on a small sample to know when to stop.
        if copies == 1 {
            let chunks = kb.warm()?;
            let per_copy = chunks.max(1);
            let need = 100_000usize.div_ceil(per_copy);
            for c in 1..need {
                for e in &entries {
                    let mut e = e.clone();
                    e.id = format!("copy{c:04}/{}", e.id);
                    bytes += e.body.len() + e.title.len();
                    n_entries += 1;
                    kb.apply(&Command::Put {
                        entry: e,
                        base_revision: None,
                        by: "bench".into(),
                        at_ms: 0,
                    })?;
                }
            }
            break;
        }
    }
    // The first copy was built once above; time a full build of everything.
    let t = Instant::now();
    let chunks = kb.warm()?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "knowledge-speed build entries={n_entries} chunks={chunks} secs={secs:.2} entries_per_sec={:.0} mb_per_sec={:.2}",
        n_entries as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    let mut search = Vec::new();
    let mut ask = Vec::new();
    for round in 0..5 {
        for q in queries {
            let text = eval::question(q);
            let t = Instant::now();
            kb.search(&SearchQuery {
                text: text.clone(),
                limit: 10,
                ..SearchQuery::default()
            })?;
            search.push(t.elapsed().as_secs_f64() * 1e3);
            if round == 0 {
                let t = Instant::now();
                kb.ask(&AskRequest {
                    question: text,
                    context: None,
                })?;
                ask.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    println!(
        "knowledge-speed chunks={chunks} search_p50_ms={:.2} search_p99_ms={:.2} ask_p50_ms={:.2} ask_p99_ms={:.2}",
        pct(&mut search.clone(), 0.5),
        pct(&mut search, 0.99),
        pct(&mut ask.clone(), 0.5),
        pct(&mut ask, 0.99)
    );
    Ok(())
}
