//! Scoring against labelled alert queries (the `aiops-bench knowledge` scorer and the
//! `score` example share it): link accuracy, top-1/top-3/MRR of search, abstention on alerts
//! without a runbook. Timing is the caller's (this crate has no clock).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::link::strip_placeholders;
use crate::{AlertContext, AskRequest, Command, KnowledgeBase, KnowledgeError, SearchQuery};

/// One labelled query (`queries-dev.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct DevQuery {
    /// The alert name.
    pub alertname: String,
    /// The alert's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The `summary` annotation.
    #[serde(default)]
    pub summary: String,
    /// The `description` annotation.
    #[serde(default)]
    pub description: String,
    /// The runbook file (`dir/File.md`) it should find, or `None` when there is none.
    pub expected: Option<String>,
}

/// How one query fared.
#[derive(Debug, Clone)]
pub struct QueryOutcome {
    /// The alert name.
    pub alertname: String,
    /// The expected entry id (the file without `.md`).
    pub expected: Option<String>,
    /// The first linked entry and how (`id (how)`), or `-`.
    pub linked: String,
    /// Whether linking was right: the expected entry first, or for `None` nothing
    /// deterministic.
    pub link_ok: bool,
    /// The top-3 entry ids of the text search.
    pub top3: Vec<String>,
    /// Rank (1-based) of the expected entry in the search (up to 10), if found.
    pub rank: Option<usize>,
    /// Whether `ask` answered.
    pub answered: bool,
}

impl QueryOutcome {
    /// One line for the report.
    pub fn line(&self) -> String {
        format!(
            "{} expected={} link={} [{}] top3={} rank={} ask={}",
            self.alertname,
            self.expected.as_deref().unwrap_or("null"),
            self.linked,
            if self.link_ok { "ok" } else { "WRONG" },
            self.top3.join(","),
            self.rank.map_or("-".to_string(), |r| r.to_string()),
            if self.answered {
                "answered"
            } else {
                "no answer"
            },
        )
    }
}

/// Imports a corpus listing into a knowledge base through the real code path
/// ([`crate::entries_from_dir_listing`] then [`Command::Put`]); returns the refused files.
///
/// # Errors
/// The first refused `Put` (a bug: the importer validated the entry).
pub fn import(
    kb: &mut KnowledgeBase,
    files: &[(String, String)],
) -> Result<Vec<(String, KnowledgeError)>, KnowledgeError> {
    let (entries, refused) = crate::entries_from_dir_listing(files);
    for e in entries {
        kb.apply(&Command::Put {
            entry: e,
            base_revision: None,
            by: "import".to_string(),
            at_ms: 0,
        })?;
    }
    Ok(refused)
}

/// The text question of a query: summary and description, placeholders removed.
pub fn question(q: &DevQuery) -> String {
    strip_placeholders(&format!("{}\n{}", q.summary, q.description))
}

/// Runs one query: link by labels and alert name only, search and ask by the text only.
///
/// # Errors
/// An index failure (a bug).
pub fn evaluate(kb: &KnowledgeBase, q: &DevQuery) -> Result<QueryOutcome, KnowledgeError> {
    let expected = q
        .expected
        .as_ref()
        .map(|e| e.strip_suffix(".md").unwrap_or(e).to_string());
    let ctx = AlertContext {
        alertname: q.alertname.clone(),
        labels: q.labels.clone(),
        ..AlertContext::default()
    };
    let links = kb.link(&ctx, 5)?;
    let deterministic: Vec<_> = links.iter().filter(|l| l.how != "search").collect();
    let link_ok = match &expected {
        Some(e) => links.first().is_some_and(|l| &l.entry_id == e),
        None => deterministic.is_empty(),
    };
    let linked = links
        .first()
        .map_or("-".to_string(), |l| format!("{} ({})", l.entry_id, l.how));
    let text = question(q);
    let hits = kb.search(&SearchQuery {
        text: text.clone(),
        limit: 10,
        ..SearchQuery::default()
    })?;
    let rank = expected
        .as_ref()
        .and_then(|e| hits.iter().position(|h| &h.entry_id == e).map(|p| p + 1));
    let answer = kb.ask(&AskRequest {
        question: text,
        context: None,
    })?;
    Ok(QueryOutcome {
        alertname: q.alertname.clone(),
        expected,
        linked,
        link_ok,
        top3: hits.iter().take(3).map(|h| h.entry_id.clone()).collect(),
        rank,
        answered: answer.answered,
    })
}

/// The summary figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Share of queries linked right.
    pub link_accuracy: f64,
    /// Share of queries with a runbook whose search ranks it first.
    pub top1: f64,
    /// … in the first three.
    pub top3: f64,
    /// Mean reciprocal rank (within 10).
    pub mrr: f64,
    /// Share of queries without a runbook where `ask` says no answer.
    pub abstain_on_null: f64,
}

impl Summary {
    /// Figures over outcomes.
    pub fn of(outcomes: &[QueryOutcome]) -> Summary {
        let n = outcomes.len().max(1) as f64;
        let with: Vec<&QueryOutcome> = outcomes.iter().filter(|o| o.expected.is_some()).collect();
        let nw = with.len().max(1) as f64;
        let null: Vec<&QueryOutcome> = outcomes.iter().filter(|o| o.expected.is_none()).collect();
        Summary {
            link_accuracy: outcomes.iter().filter(|o| o.link_ok).count() as f64 / n,
            top1: with.iter().filter(|o| o.rank == Some(1)).count() as f64 / nw,
            top3: with
                .iter()
                .filter(|o| o.rank.is_some_and(|r| r <= 3))
                .count() as f64
                / nw,
            mrr: with
                .iter()
                .map(|o| o.rank.map_or(0.0, |r| 1.0 / r as f64))
                .sum::<f64>()
                / nw,
            abstain_on_null: if null.is_empty() {
                1.0
            } else {
                null.iter().filter(|o| !o.answered).count() as f64 / null.len() as f64
            },
        }
    }
}
