//! The derived tantivy index: built whole from the entries, in RAM, one writer thread.
//!
//! Why whole rebuilds: tantivy's BM25 statistics count deleted documents until a merge, so an
//! index maintained by updates and deletes would score the same entry set differently than a
//! fresh one. Rebuilding from the entries (in id order) whenever they changed makes results and
//! scores a function of the entry set alone. Cost: one build per query after a batch of
//! changes — the 117-runbook corpus builds in milliseconds; see docs/knowledge.md for 100,000
//! chunks.

use std::collections::BTreeMap;
use std::ops::Range;

use tantivy::collector::TopDocs;
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use crate::markdown;
use crate::tokenizer;
use crate::{Entry, KnowledgeError};

/// Field weights and floors. The defaults are the measured ones (docs/knowledge.md); the
/// scoring example varies them.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// Boost of the title.
    pub title: f32,
    /// Boost of the names field (document heading, linked alert names, tags).
    pub names: f32,
    /// Boost of the heading path.
    pub headings: f32,
    /// Boost of the prose.
    pub body: f32,
    /// Boost of code blocks (0 = not searched).
    pub code: f32,
    /// Minimum share of the question's idf mass an entry must contain for `ask` to answer
    /// and for `link`'s search fallback to list it.
    pub coverage_floor: f32,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            title: 2.0,
            names: 1.0,
            headings: 1.5,
            body: 1.0,
            code: 0.3,
            coverage_floor: 0.5,
        }
    }
}

/// What one indexed chunk refers to.
#[derive(Debug, Clone)]
pub(crate) struct ChunkRef {
    pub entry_id: String,
    pub no: u32,
    pub section: String,
    pub text: String,
    pub sentences: Vec<Range<usize>>,
}

/// The index fields.
#[derive(Debug, Clone, Copy)]
struct Fields {
    title: Field,
    names: Field,
    headings: Field,
    body: Field,
    code: Field,
    tag: Field,
    service: Field,
    owner: Field,
    draft: Field,
    chunk: Field,
}

/// A built index and the chunks its documents point at.
pub(crate) struct Built {
    reader: IndexReader,
    fields: Fields,
    pub chunks: Vec<ChunkRef>,
    /// The chunk range of each entry.
    pub by_entry: BTreeMap<String, Range<usize>>,
    analyzer: TextAnalyzer,
}

/// A scored chunk.
#[derive(Debug, Clone)]
pub(crate) struct ChunkHit {
    pub chunk: usize,
    pub score: f32,
}

/// Filters of a search.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters<'a> {
    pub tags: &'a [String],
    pub service: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub include_drafts: bool,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer::NAME)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let f = Fields {
        title: b.add_text_field("title", text.clone()),
        names: b.add_text_field("names", text.clone()),
        headings: b.add_text_field("headings", text.clone()),
        body: b.add_text_field("body", text.clone()),
        code: b.add_text_field("code", text),
        tag: b.add_text_field("tag", STRING),
        service: b.add_text_field("service", STRING),
        owner: b.add_text_field("owner", STRING),
        draft: b.add_text_field("draft", STRING),
        chunk: b.add_u64_field("chunk", FAST),
    };
    (b.build(), f)
}

/// Builds the index of `entries` (in the given order, which is id order).
pub(crate) fn build<'a>(entries: impl Iterator<Item = &'a Entry>) -> Result<Built, KnowledgeError> {
    let (schema, fields) = schema();
    let index = Index::create_in_ram(schema);
    index
        .tokenizers()
        .register(tokenizer::NAME, tokenizer::analyzer());
    // One worker thread: document ids follow the entry order. Memory: tantivy's minimum per
    // thread is 15 MB; 64 MB keeps 100,000 chunks in a few segments. No merges (scores do not
    // depend on segmentation without deletes, and merge threads would only cost CPU).
    let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 64 * 1024 * 1024)?;
    writer.set_merge_policy(Box::new(NoMergePolicy));
    let mut chunks = Vec::new();
    let mut by_entry = BTreeMap::new();
    for e in entries {
        let first = chunks.len();
        let mut names = String::new();
        for n in e.links.alertnames.iter().chain(&e.tags) {
            names.push_str(n);
            names.push('\n');
        }
        for (no, c) in markdown::chunks(&e.body).into_iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.title, &e.title);
            doc.add_text(fields.names, format!("{names}{}", c.headings_doc()));
            doc.add_text(fields.headings, &c.headings);
            doc.add_text(fields.body, &c.text);
            doc.add_text(fields.code, &c.code);
            for t in &e.tags {
                doc.add_text(fields.tag, t);
            }
            for s in &e.links.services {
                doc.add_text(fields.service, s);
            }
            if let Some(o) = &e.owner {
                doc.add_text(fields.owner, o);
            }
            doc.add_text(fields.draft, if e.draft { "1" } else { "0" });
            doc.add_u64(fields.chunk, chunks.len() as u64);
            writer.add_document(doc)?;
            chunks.push(ChunkRef {
                entry_id: e.id.clone(),
                no: u32::try_from(no).unwrap_or(u32::MAX),
                section: c.section,
                text: c.text,
                sentences: c.sentences,
            });
        }
        by_entry.insert(e.id.clone(), first..chunks.len());
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    Ok(Built {
        reader,
        fields,
        chunks,
        by_entry,
        analyzer: tokenizer::analyzer(),
    })
}

impl markdown::Chunk {
    /// The document heading part of the headings (empty when the chunk is in a section).
    fn headings_doc(&self) -> &str {
        if self.section.is_empty() {
            &self.headings
        } else {
            ""
        }
    }
}

impl Built {
    /// A fresh analyzer (tantivy's analyzers are stateful; clone per use).
    pub fn analyzer(&self) -> TextAnalyzer {
        self.analyzer.clone()
    }

    /// Number of indexed chunks.
    pub fn num_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Inverse document frequency of an analyzed term over the prose (chunks), BM25's formula.
    pub fn idf(&self, term: &str) -> f32 {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f32;
        let df = searcher
            .doc_freq(&Term::from_field_text(self.fields.body, term))
            .unwrap_or(0)
            .max(
                searcher
                    .doc_freq(&Term::from_field_text(self.fields.title, term))
                    .unwrap_or(0),
            ) as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// Weights of query terms for coverage: `(term, idf, whether any chunk contains it)`. A
    /// word no entry contains keeps its (high) weight in `ask`'s coverage: it is the best sign
    /// that no entry is about the question. (Leaving out numbers was measured: it made
    /// abstention worse; docs/knowledge.md.)
    pub fn coverage_weights(&self, terms: &[String]) -> Vec<(String, f32, bool)> {
        let searcher = self.reader.searcher();
        let f = self.fields;
        terms
            .iter()
            .map(|t| {
                let known = [f.title, f.names, f.headings, f.body].iter().any(|&field| {
                    searcher
                        .doc_freq(&Term::from_field_text(field, t))
                        .unwrap_or(0)
                        > 0
                });
                (t.clone(), self.idf(t), known)
            })
            .collect()
    }

    /// The best `limit` chunks for the analyzed `terms`, filtered; sorted by score, then
    /// chunk order (entry id, chunk number).
    pub fn top_chunks(
        &self,
        terms: &[String],
        filters: &Filters<'_>,
        tuning: &Tuning,
        limit: usize,
    ) -> Result<Vec<ChunkHit>, KnowledgeError> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if terms.is_empty() {
            clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(AllQuery), 0.0)),
            ));
        } else {
            let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            let weighted = [
                (f.title, tuning.title),
                (f.names, tuning.names),
                (f.headings, tuning.headings),
                (f.body, tuning.body),
                (f.code, tuning.code),
            ];
            for t in terms {
                for &(field, boost) in &weighted {
                    if boost <= 0.0 {
                        continue;
                    }
                    let q = TermQuery::new(
                        Term::from_field_text(field, t),
                        IndexRecordOption::WithFreqs,
                    );
                    should.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
                }
            }
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(should))));
        }
        let exact = |field: Field, v: &str| -> Box<dyn Query> {
            Box::new(ConstScoreQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(field, v),
                    IndexRecordOption::Basic,
                )),
                0.0,
            ))
        };
        for t in filters.tags {
            clauses.push((Occur::Must, exact(f.tag, t)));
        }
        if let Some(s) = filters.service {
            clauses.push((Occur::Must, exact(f.service, s)));
        }
        if let Some(o) = filters.owner {
            clauses.push((Occur::Must, exact(f.owner, o)));
        }
        if !filters.include_drafts {
            clauses.push((Occur::MustNot, exact(f.draft, "1")));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let limit = limit.clamp(1, self.chunks.len().max(1));
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let col = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .u64("chunk")?;
            let chunk = col.first(addr.doc_id).ok_or_else(|| {
                KnowledgeError::Index("a document without its chunk number".into())
            })?;
            out.push(ChunkHit {
                chunk: usize::try_from(chunk).unwrap_or(usize::MAX),
                score,
            });
        }
        // tantivy breaks score ties by document address; make the order a function of the
        // entries alone.
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk.cmp(&b.chunk)));
        Ok(out)
    }
}
