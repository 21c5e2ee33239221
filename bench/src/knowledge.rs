//! The knowledge-base scorer and speed run (issue 19): imports a runbook corpus through the
//! real code path (`entries_from_dir_listing` then `Command::Put`), scores linking, search and
//! abstention on labelled alert queries, and with `--speed` measures index build rate and
//! search / ask latency over about 100,000 chunks (the corpus replicated under new ids).
//!
//! The last line of the scoring part is
//! `knowledge link_accuracy=… top1=… top3=… mrr=… abstain_on_null=… queries_per_sec=…`.
//! `engine/knowledge/examples/score.rs` prints the same (buildable without the server).

use std::path::{Path, PathBuf};
use std::time::Instant;

use aiops_knowledge::eval::{self, DevQuery, Summary};
use aiops_knowledge::{AskRequest, Command, KnowledgeBase, SearchQuery};
use anyhow::Context;

/// Arguments of `aiops-bench knowledge`.
#[derive(Debug, Clone, clap::Args)]
pub struct KnowledgeArgs {
    /// Folder of Markdown runbooks (read recursively).
    #[arg(long)]
    pub corpus: PathBuf,
    /// Labelled queries: a JSON list of {alertname, labels, summary, description, expected}.
    #[arg(long)]
    pub queries: PathBuf,
    /// Also measure index build rate and search / ask latency.
    #[arg(long)]
    pub speed: bool,
    /// Chunks to index for the speed run (the corpus is replicated until it has this many).
    #[arg(long, default_value_t = 100_000)]
    pub chunks: usize,
}

/// Every file under `dir` as (path relative to `root` with forward slashes, text); files that
/// are not UTF-8 are skipped.
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
    let mut items: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    items.sort_by_key(|e| e.path());
    for e in items {
        let p = e.path();
        if p.is_dir() {
            read_tree(root, &p, out)?;
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

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len().saturating_sub(1)) as f64 * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

/// Runs the scorer (and the speed run with `--speed`).
///
/// # Errors
/// Unreadable corpus or queries, or a knowledge-base failure.
pub fn run(args: &KnowledgeArgs) -> anyhow::Result<()> {
    let mut files = Vec::new();
    read_tree(&args.corpus, &args.corpus, &mut files)?;
    let queries: Vec<DevQuery> = serde_json::from_slice(
        &std::fs::read(&args.queries)
            .with_context(|| format!("reading {}", args.queries.display()))?,
    )
    .with_context(|| format!("parsing {}", args.queries.display()))?;
    let mut kb = KnowledgeBase::new();
    for (f, e) in eval::import(&mut kb, &files)? {
        println!("refused {f}: {e}");
    }
    kb.warm()?;
    let t = Instant::now();
    let mut outcomes = Vec::with_capacity(queries.len());
    for q in &queries {
        let o = eval::evaluate(&kb, q)?;
        println!("{}", o.line());
        outcomes.push(o);
    }
    let qps = queries.len() as f64 / t.elapsed().as_secs_f64().max(1e-9);
    let s = Summary::of(&outcomes);
    println!(
        "knowledge link_accuracy={:.3} top1={:.3} top3={:.3} mrr={:.3} abstain_on_null={:.3} queries_per_sec={qps:.0}",
        s.link_accuracy, s.top1, s.top3, s.mrr, s.abstain_on_null
    );
    if args.speed {
        speed(&files, &queries, args.chunks)?;
    }
    Ok(())
}

/// Index build entries/s and MB/s, search p50/p99 and ask p50/p99 over `target` chunks.
fn speed(files: &[(String, String)], queries: &[DevQuery], target: usize) -> anyhow::Result<()> {
    let (entries, _) = aiops_knowledge::entries_from_dir_listing(files);
    let per_copy = {
        let mut kb = KnowledgeBase::new();
        for e in &entries {
            kb.apply(&put(e.clone()))?;
        }
        kb.warm()?.max(1)
    };
    let copies = target.div_ceil(per_copy);
    let mut kb = KnowledgeBase::new();
    let mut bytes = 0usize;
    let mut n = 0usize;
    for c in 0..copies {
        for e in &entries {
            let mut e = e.clone();
            e.id = format!("copy{c:04}/{}", e.id);
            bytes += e.body.len() + e.title.len();
            n += 1;
            kb.apply(&put(e))?;
        }
    }
    let t = Instant::now();
    let chunks = kb.warm()?;
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    println!(
        "knowledge-speed build entries={n} chunks={chunks} secs={secs:.2} entries_per_sec={:.0} mb_per_sec={:.2}",
        n as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    let (mut search, mut ask) = (Vec::new(), Vec::new());
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
        percentile(&mut search.clone(), 0.5),
        percentile(&mut search, 0.99),
        percentile(&mut ask.clone(), 0.5),
        percentile(&mut ask, 0.99)
    );
    Ok(())
}

fn put(entry: aiops_knowledge::EntryInput) -> Command {
    Command::Put {
        entry,
        base_revision: None,
        by: "bench".into(),
        at_ms: 0,
    }
}
