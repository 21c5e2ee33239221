//! Answers with citations and no LLM: the intent of the question picks the section, the best
//! sentences of the best entry are quoted verbatim, each citing its entry and section.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::index::Filters;
use crate::link::AlertContext;
use crate::search::{MAX_QUERY_BYTES, SearchHit};
use crate::tokenizer;
use crate::{KnowledgeBase, KnowledgeError};

/// The most sentences an answer quotes.
pub const MAX_SENTENCES: usize = 5;

/// A question.
#[derive(Debug, Clone, Default)]
pub struct AskRequest {
    /// The question, English or Chinese, at most 4 KiB.
    pub question: String,
    /// The alert the question is about, if any: its links are tried first.
    pub context: Option<AlertContext>,
}

/// An answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// Whether sentences were found above the floor.
    pub answered: bool,
    /// The detected intent: `meaning`, `impact`, `diagnosis`, `mitigation` or `general`.
    pub intent: String,
    /// The quoted sentences (empty when not answered).
    pub sentences: Vec<CitedSentence>,
    /// The nearest entries, when not answered.
    pub nearest: Vec<SearchHit>,
    /// `answered from <entry> (<section>)`, or `no answer`.
    pub message: String,
}

/// One quoted sentence.
#[derive(Debug, Clone, Serialize)]
pub struct CitedSentence {
    /// A verbatim substring of the cited entry's body (inline Markdown marks included).
    pub text: String,
    /// The entry quoted.
    pub entry_id: String,
    /// Its section (heading path).
    pub section: String,
    /// How well the sentence fits (idf-weighted share of the question's words, plus the
    /// section's fit to the intent).
    pub score: f32,
}

/// The intents, with the cue words of questions and of section headings (lowercase).
const INTENTS: &[(&str, &[&str], &[&str])] = &[
    (
        "impact",
        &["impact", "affect", "consequence", "影响", "后果", "危害"],
        &["impact", "影响", "后果"],
    ),
    (
        "diagnosis",
        &[
            "why",
            "diagnos",
            "cause",
            "investigat",
            "debug",
            "troubleshoot",
            "root cause",
            "原因",
            "排查",
            "诊断",
            "为什么",
            "定位",
        ],
        &[
            "diagnos",
            "troubleshoot",
            "investigat",
            "诊断",
            "排查",
            "原因",
            "定位",
        ],
    ),
    (
        "mitigation",
        &[
            "fix",
            "mitigat",
            "resolve",
            "how to",
            "what should",
            "what to do",
            "what can i do",
            "what now",
            "how do i",
            "how can",
            "how should",
            "remed",
            "solve",
            "repair",
            "recover",
            "workaround",
            "怎么办",
            "解决",
            "处理",
            "修复",
            "如何",
            "怎么",
            "恢复",
        ],
        &[
            "mitigat",
            "remed",
            "fix",
            "resolution",
            "solution",
            "处理",
            "解决",
            "修复",
            "恢复",
            "应对",
        ],
    ),
    (
        "meaning",
        &[
            "mean",
            "what is",
            "what's",
            "what does",
            "explain",
            "什么意思",
            "含义",
            "意味",
            "是什么",
            "说明",
        ],
        &[
            "meaning",
            "overview",
            "description",
            "含义",
            "说明",
            "概述",
            "描述",
        ],
    ),
];

/// The intent of a question (first matching cue list wins; `general` otherwise).
pub fn intent(question: &str) -> &'static str {
    let q = question.to_lowercase();
    INTENTS
        .iter()
        .find(|(_, cues, _)| cues.iter().any(|c| q.contains(c)))
        .map_or("general", |(name, _, _)| name)
}

/// Whether a section (its top heading) fits the intent.
fn section_fits(section: &str, intent: &str) -> bool {
    let top = section
        .split(crate::markdown::SECTION_SEP)
        .next()
        .unwrap_or("")
        .to_lowercase();
    INTENTS
        .iter()
        .find(|(name, _, _)| *name == intent)
        .is_some_and(|(_, _, heads)| heads.iter().any(|h| top.contains(h)))
}

impl KnowledgeBase {
    /// Answers a question from the entries' own sentences.
    ///
    /// # Errors
    /// [`KnowledgeError::Invalid`] for an empty question or one over 4 KiB;
    /// [`KnowledgeError::Index`] on an index failure (a bug).
    pub fn ask(&self, req: &AskRequest) -> Result<Answer, KnowledgeError> {
        let question = req.question.trim();
        if question.is_empty() {
            return Err(KnowledgeError::Invalid("the question is empty".into()));
        }
        if req.question.len() > MAX_QUERY_BYTES {
            return Err(KnowledgeError::Invalid(format!(
                "the question is {} bytes; the limit is {MAX_QUERY_BYTES} bytes (4 KiB)",
                req.question.len()
            )));
        }
        let intent = intent(question);
        let built = self.built()?;
        let mut an = built.analyzer();

        // Candidates: the context's deterministic links, then the search hits above the floor.
        let mut candidates: Vec<(String, f32)> = Vec::new();
        if let Some(ctx) = &req.context {
            for l in self.link(ctx, 3)? {
                if l.how != "search" {
                    candidates.push((l.entry_id, 1.0));
                }
            }
        }
        let mut text = question.to_string();
        if let Some(ctx) = &req.context
            && candidates.is_empty()
        {
            text.push('\n');
            text.push_str(&ctx.search_text());
        }
        let hits = self.scored(&text, &Filters::default(), 5, true)?;
        let floor = self.tuning().coverage_floor;
        let top_score = hits.first().map_or(0.0, |h| h.hit.score);
        for h in &hits {
            if h.coverage >= floor && !candidates.iter().any(|(id, _)| *id == h.hit.entry_id) {
                let rel = if top_score > 0.0 {
                    h.hit.score / top_score
                } else {
                    0.0
                };
                candidates.push((h.hit.entry_id.clone(), rel));
            }
        }
        let no_answer = |hits: Vec<crate::search::Scored>| Answer {
            answered: false,
            intent: intent.to_string(),
            sentences: Vec::new(),
            nearest: hits.into_iter().take(3).map(|s| s.hit).collect(),
            message: "no answer".to_string(),
        };
        let Some((best_id, _)) = candidates.first().cloned() else {
            return Ok(no_answer(hits));
        };

        // Sentences of the best entry, scored by the question's words and the section's fit.
        let terms = tokenizer::distinct_terms(&mut an, question);
        let weights = built.coverage_weights(&terms);
        let total: f32 = weights
            .iter()
            .map(|(_, w, _)| w)
            .sum::<f32>()
            .max(f32::EPSILON);
        let Some(entry) = self.entry(&best_id) else {
            return Ok(no_answer(hits));
        };
        let range = built.by_entry.get(&best_id).cloned().unwrap_or(0..0);
        let mut scored: Vec<(f32, usize, usize, String)> = Vec::new(); // (score, order, chunk, text)
        let mut order = 0usize;
        let fits_any = built.chunks[range.clone()]
            .iter()
            .any(|c| section_fits(&c.section, intent) && !c.sentences.is_empty());
        for ci in range {
            let c = &built.chunks[ci];
            let fit = section_fits(&c.section, intent);
            if fits_any && !fit {
                continue;
            }
            for r in &c.sentences {
                let Some(s) = entry.body.get(r.clone()) else {
                    continue;
                };
                let present: BTreeSet<String> =
                    tokenizer::distinct_terms(&mut an, s).into_iter().collect();
                let overlap: f32 = weights
                    .iter()
                    .filter(|(t, _, _)| present.contains(t))
                    .map(|(_, w, _)| w)
                    .sum::<f32>()
                    / total;
                let score = overlap + if fit { 1.0 } else { 0.0 };
                scored.push((score, order, ci, s.to_string()));
                order += 1;
            }
        }
        if scored.is_empty() {
            return Ok(no_answer(hits));
        }
        // In the fitting section: its sentences in document order (an answer reads as the
        // runbook does). Otherwise: the best sentences by overlap, then in document order.
        if !fits_any {
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let best = scored[0].0;
            if best > 0.0 {
                scored.retain(|s| s.0 >= best * 0.5);
                scored.truncate(MAX_SENTENCES);
                scored.sort_by_key(|s| s.1);
            } else {
                // No word of the question in any sentence (e.g. "what now?" with an alert
                // context): the entry's opening sentences.
                scored.sort_by_key(|s| s.1);
                scored.truncate(3);
            }
        } else {
            scored.truncate(MAX_SENTENCES);
        }
        if scored.is_empty() {
            return Ok(no_answer(hits));
        }
        let section = built.chunks[scored[0].2].section.clone();
        let sentences = scored
            .into_iter()
            .map(|(score, _, ci, text)| CitedSentence {
                text,
                entry_id: best_id.clone(),
                section: built.chunks[ci].section.clone(),
                score,
            })
            .collect();
        Ok(Answer {
            answered: true,
            intent: intent.to_string(),
            sentences,
            nearest: Vec::new(),
            message: if section.is_empty() {
                format!("answered from {best_id}")
            } else {
                format!("answered from {best_id} ({section})")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_from_english_and_chinese_cues() {
        assert_eq!(intent("What does NodeRAIDDegraded mean?"), "meaning");
        assert_eq!(intent("what is the impact of a full disk"), "impact");
        assert_eq!(intent("Why is etcd slow?"), "diagnosis");
        assert_eq!(intent("How to fix a crashlooping pod"), "mitigation");
        assert_eq!(
            intent("remote write is behind, what should I do?"),
            "mitigation"
        );
        assert_eq!(intent("磁盘空间不足怎么办"), "mitigation");
        assert_eq!(intent("数据库连接池耗尽的原因"), "diagnosis");
        assert_eq!(intent("这个告警是什么意思"), "meaning");
        assert_eq!(intent("内存泄漏有什么影响"), "impact");
        assert_eq!(intent("etcd leader"), "general");
    }

    #[test]
    fn sections_fit_intents() {
        assert!(section_fits("Mitigation › Slow disk", "mitigation"));
        assert!(section_fits("处理步骤", "mitigation"));
        assert!(!section_fits("Diagnosis", "mitigation"));
    }
}
