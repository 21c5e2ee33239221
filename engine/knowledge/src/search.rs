//! Full-text search: one hit per entry (its best chunk), feedback re-ranking, snippets.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tantivy::tokenizer::TextAnalyzer;

use crate::index::{Built, ChunkHit, Filters};
use crate::tokenizer;
use crate::{KnowledgeBase, KnowledgeError};

/// The most hits a search returns.
pub const MAX_LIMIT: usize = 100;
/// The longest query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// Snippet length, in characters (about).
const SNIPPET_CHARS: usize = 220;

/// A search request.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Free text (English, Chinese or both); empty lists the filtered entries.
    pub text: String,
    /// Entries must carry all these tags.
    pub tags: Vec<String>,
    /// Entries must link this service.
    pub service: Option<String>,
    /// Entries must have this owner.
    pub owner: Option<String>,
    /// Number of hits, clamped to 1..=100.
    pub limit: usize,
    /// Whether drafts are searched too.
    pub include_drafts: bool,
}

/// One hit: an entry and its best chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// Entry id.
    pub entry_id: String,
    /// Entry title.
    pub title: String,
    /// Heading path of the best chunk, e.g. `Diagnosis › Slow disk`.
    pub section: String,
    /// Number of the best chunk within the entry.
    pub chunk: u32,
    /// BM25 score (field-weighted) times the feedback factor.
    pub score: f32,
    /// Plain text with `<mark>..</mark>` around matched words, HTML-escaped otherwise.
    pub snippet: String,
    /// Entry tags.
    pub tags: Vec<String>,
}

/// A hit with what `ask` and `link` need besides.
#[derive(Debug, Clone)]
pub(crate) struct Scored {
    pub hit: SearchHit,
    /// Share of the query's idf mass the entry contains (title, names, prose).
    pub coverage: f32,
    /// The same over the query words some entry contains (for `link`'s fallback, where an
    /// alert name nobody wrote a runbook for is expected).
    pub known_coverage: f32,
}

impl KnowledgeBase {
    /// Searches the entries.
    ///
    /// # Errors
    /// [`KnowledgeError::Invalid`] for a query text over 4 KiB; [`KnowledgeError::Index`] on
    /// an index failure (a bug).
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<SearchHit>, KnowledgeError> {
        if q.text.len() > MAX_QUERY_BYTES {
            return Err(KnowledgeError::Invalid(format!(
                "the query is {} bytes; the limit is {MAX_QUERY_BYTES} bytes (4 KiB)",
                q.text.len()
            )));
        }
        let filters = Filters {
            tags: &q.tags,
            service: q.service.as_deref(),
            owner: q.owner.as_deref(),
            include_drafts: q.include_drafts,
        };
        Ok(self
            .scored(&q.text, &filters, q.limit.clamp(1, MAX_LIMIT), false)?
            .into_iter()
            .map(|s| s.hit)
            .collect())
    }

    /// Diagnostics: the best `limit` entries for `text` as `(entry id, score, coverage)`, where
    /// coverage is the share of the text's idf mass the entry contains (what `ask` and
    /// `link`'s fallback compare with the floor).
    ///
    /// # Errors
    /// [`KnowledgeError::Index`] on an index failure (a bug).
    pub fn explain(
        &self,
        text: &str,
        limit: usize,
    ) -> Result<Vec<(String, f32, f32)>, KnowledgeError> {
        Ok(self
            .scored(text, &Filters::default(), limit.clamp(1, MAX_LIMIT), true)?
            .into_iter()
            .map(|s| (s.hit.entry_id, s.hit.score, s.coverage))
            .collect())
    }

    /// The best `limit` entries for `text`, with coverage when asked (it tokenizes each hit's
    /// entry: plain searches skip it).
    pub(crate) fn scored(
        &self,
        text: &str,
        filters: &Filters<'_>,
        limit: usize,
        with_coverage: bool,
    ) -> Result<Vec<Scored>, KnowledgeError> {
        let built = self.built()?;
        let mut an = built.analyzer();
        let terms = tokenizer::distinct_terms(&mut an, text);
        // Enough chunks to fill `limit` entries after grouping (a runbook has a handful of
        // sections), and some slack for the feedback re-ranking (at most ×1.2).
        let want = limit.saturating_mul(12).saturating_add(40);
        let chunks = built.top_chunks(&terms, filters, self.tuning(), want)?;
        let mut best: BTreeMap<&str, ChunkHit> = BTreeMap::new();
        for h in chunks {
            let id = built.chunks[h.chunk].entry_id.as_str();
            best.entry(id).or_insert(h);
        }
        let mut ranked: Vec<(f32, &str, ChunkHit)> = best
            .into_iter()
            .filter_map(|(id, h)| {
                let e = self.entry(id)?;
                Some((h.score * e.feedback_factor(), id, h))
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(a.1.cmp(b.1))
                .then(a.2.chunk.cmp(&b.2.chunk))
        });
        ranked.truncate(limit);
        let weights = built.coverage_weights(&terms);
        let marks: BTreeSet<&str> = terms.iter().map(String::as_str).collect();
        let mut out = Vec::with_capacity(ranked.len());
        for (score, id, h) in ranked {
            let Some(e) = self.entry(id) else { continue };
            let c = &built.chunks[h.chunk];
            let (coverage, known_coverage) = if with_coverage {
                coverage(&built, &mut an, id, &e.title, &weights)
            } else {
                (0.0, 0.0)
            };
            out.push(Scored {
                coverage,
                known_coverage,
                hit: SearchHit {
                    entry_id: id.to_string(),
                    title: e.title.clone(),
                    section: c.section.clone(),
                    chunk: c.no,
                    score,
                    snippet: snippet(&mut an, &c.text, &marks),
                    tags: e.tags.clone(),
                },
            });
        }
        Ok(out)
    }
}

/// Share of the idf mass of `weights` whose terms occur in the entry (title, prose and
/// headings of all chunks): over all terms, and over the terms some entry contains.
pub(crate) fn coverage(
    built: &Built,
    an: &mut TextAnalyzer,
    entry_id: &str,
    title: &str,
    weights: &[(String, f32, bool)],
) -> (f32, f32) {
    let mut present: BTreeSet<String> = tokenizer::distinct_terms(an, title).into_iter().collect();
    if let Some(r) = built.by_entry.get(entry_id) {
        for c in &built.chunks[r.clone()] {
            present.extend(tokenizer::distinct_terms(an, &c.text));
            present.extend(tokenizer::distinct_terms(an, &c.section));
        }
    }
    let share = |only_known: bool| {
        let ws = weights.iter().filter(|(_, _, k)| *k || !only_known);
        let total: f32 = ws.clone().map(|(_, w, _)| w).sum();
        let got: f32 = ws
            .filter(|(t, _, _)| present.contains(t))
            .map(|(_, w, _)| w)
            .sum();
        if total > 0.0 { got / total } else { 0.0 }
    };
    (share(false), share(true))
}

/// A window of `text` around the most query words, HTML-escaped, words marked.
pub(crate) fn snippet(an: &mut TextAnalyzer, text: &str, marks: &BTreeSet<&str>) -> String {
    let hits: Vec<std::ops::Range<usize>> = tokenizer::terms(an, text)
        .into_iter()
        .filter(|(t, _)| marks.contains(t.as_str()))
        .map(|(_, r)| r)
        .collect();
    // Window start: the hit that begins the window with the most distinct hits.
    let budget = SNIPPET_CHARS * 3; // bytes, roughly (CJK is 3 bytes a character)
    let mut best = (0usize, 0usize);
    for (i, h) in hits.iter().enumerate() {
        let n = hits[i..]
            .iter()
            .take_while(|x| x.end <= h.start + budget)
            .count();
        if n > best.1 {
            best = (i, n);
        }
    }
    let from = hits.get(best.0).map_or(0, |h| {
        // Start a little before the first hit, at a word boundary.
        let back = h.start.saturating_sub(40);
        let mut b = back;
        while b > 0 && !text.is_char_boundary(b) {
            b -= 1;
        }
        if b == 0 {
            0
        } else {
            // After the whitespace character, whatever its width (U+00A0, U+3000 are wider
            // than one byte).
            text[b..h.start]
                .char_indices()
                .find(|(_, c)| c.is_whitespace())
                .map_or(h.start, |(k, c)| b + k + c.len_utf8())
        }
    });
    let mut to = text.len().min(from + budget);
    while to < text.len() && !text.is_char_boundary(to) {
        to += 1;
    }
    // Cut at the last whitespace, unless that would lose most of it.
    if to < text.len()
        && let Some(k) = text[from..to].rfind(char::is_whitespace)
        && k > budget / 2
    {
        to = from + k;
    }
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    let mut pos = from;
    for h in hits.iter().filter(|h| h.start >= from && h.end <= to) {
        if h.start < pos {
            continue;
        }
        escape_into(&text[pos..h.start], &mut out);
        out.push_str("<mark>");
        escape_into(&text[h.clone()], &mut out);
        out.push_str("</mark>");
        pos = h.end;
    }
    escape_into(&text[pos..to], &mut out);
    if to < text.len() {
        out.push('…');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// HTML escaping of text content.
fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}
