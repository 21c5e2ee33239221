//! The text analyzer shared by the index, queries, snippets, answers and similar incidents.
//!
//! One pass over the text:
//! - letters and digits form words; `_`, punctuation and spaces separate them, so
//!   `node_filesystem_free_bytes` is four words;
//! - a camelCase word is split into its parts and also kept whole (`NodeFilesystemSpaceFillingUp`
//!   → `node`, `filesystem`, `space`, `filling`, `up`, `nodefilesystemspacefillingup`), so alert
//!   names match both prose and the exact name;
//! - words are lowercased; a short English stop-word list is dropped; words longer than
//!   [`MAX_WORD_BYTES`] are dropped (hashes, base64);
//! - runs of CJK characters become overlapping bigrams (a lone character a unigram), or jieba
//!   words with the `jieba` feature (see docs/knowledge.md for the measurement);
//!
//! then tantivy's English (Snowball) stemmer. Token offsets are byte offsets into the text, so
//! snippets highlight the original words.

use std::ops::Range;

use tantivy::tokenizer::{Language, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer};

/// Words longer than this (bytes) are not indexed.
pub const MAX_WORD_BYTES: usize = 40;

/// The name the analyzer is registered under in the index.
pub(crate) const NAME: &str = "ops";

/// English stop words (Lucene's list plus a few question words): they carry no meaning for
/// retrieval and would let any question match any runbook a little.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do",
    "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its",
    "may", "me", "my", "no", "not", "of", "on", "or", "our", "should", "so", "such", "than",
    "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "too",
    "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would",
    "you", "your",
];

/// Whether `c` is written without spaces between words (Han, kana, Hangul).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF     // Hiragana, Katakana
        | 0x3400..=0x4DBF   // CJK Extension A
        | 0x4E00..=0x9FFF   // CJK Unified Ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F // Extensions B.. and compatibility supplement
    )
}

/// The tokenizer before stemming (see the module doc).
#[derive(Clone, Default)]
pub struct OpsTokenizer;

/// The tokens of one text, computed at once.
pub struct OpsTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for OpsTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self
            .next
            .saturating_sub(1)
            .min(self.tokens.len().saturating_sub(1))]
    }

    fn token_mut(&mut self) -> &mut Token {
        let i = self
            .next
            .saturating_sub(1)
            .min(self.tokens.len().saturating_sub(1));
        &mut self.tokens[i]
    }
}

impl Tokenizer for OpsTokenizer {
    type TokenStream<'a> = OpsTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> OpsTokenStream {
        let mut tokens = Vec::new();
        split(text, &mut |from, to, word: String| {
            let position = tokens.len();
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position,
                text: word,
                position_length: 1,
            });
        });
        // `token()` on an empty stream is never called by tantivy after `advance()` said false,
        // but keep it from indexing out of bounds.
        if tokens.is_empty() {
            return OpsTokenStream {
                tokens: vec![Token::default()],
                next: 1,
            };
        }
        OpsTokenStream { tokens, next: 0 }
    }
}

/// The analyzer: [`OpsTokenizer`] then the English stemmer.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(OpsTokenizer)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analyzed terms of `text` with their byte ranges, in text order (repeats kept).
pub fn terms(an: &mut TextAnalyzer, text: &str) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut ts = an.token_stream(text);
    while let Some(t) = ts.next() {
        out.push((t.text.clone(), t.offset_from..t.offset_to));
    }
    out
}

/// The distinct analyzed terms of `text`, in first-occurrence order.
pub fn distinct_terms(an: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    terms(an, text)
        .into_iter()
        .filter_map(|(t, _)| seen.insert(t.clone()).then_some(t))
        .collect()
}

/// Calls `emit(from, to, word)` for every word of `text` (before stemming).
fn split(text: &str, emit: &mut dyn FnMut(usize, usize, String)) {
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if is_cjk(c) {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if !is_cjk(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            cjk(&text[start..end], start, emit);
        } else if c.is_alphanumeric() {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if !c.is_alphanumeric() || is_cjk(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            word(&text[start..end], start, emit);
        } else {
            chars.next();
        }
    }
}

/// One run of letters and digits: camelCase parts, and the whole run when it had several.
fn word(w: &str, base: usize, emit: &mut dyn FnMut(usize, usize, String)) {
    let parts = camel_parts(w);
    let mut keep = |from: usize, to: usize| {
        let lower = w[from..to].to_lowercase();
        if lower.len() <= MAX_WORD_BYTES && !STOP_WORDS.contains(&lower.as_str()) {
            emit(base + from, base + to, lower);
        }
    };
    for r in &parts {
        keep(r.start, r.end);
    }
    if parts.len() > 1 {
        keep(0, w.len());
    }
}

/// Byte ranges of the camelCase parts of `w`: a new part starts at a lower→upper change
/// (`fileSystem`) and before the last capital of a capital run followed by a lower-case
/// letter (`RAIDDegraded` → `RAID`, `Degraded`). Digits stay with their neighbours (`v1`, `5xx`).
fn camel_parts(w: &str) -> Vec<Range<usize>> {
    let cs: Vec<(usize, char)> = w.char_indices().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for k in 1..cs.len() {
        let (i, c) = cs[k];
        let prev = cs[k - 1].1;
        let next = cs.get(k + 1).map(|&(_, n)| n);
        let boundary = (prev.is_lowercase() && c.is_uppercase())
            || (prev.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase));
        if boundary {
            parts.push(start..i);
            start = i;
        }
    }
    parts.push(start..w.len());
    parts
}

/// Chinese function words and question phrases, cut out of CJK runs before segmentation (longest
/// first): a question like `磁盘空间不足怎么办` must not carry bigrams such as `足怎` and `么办`
/// that no runbook contains, and `的` between two words must not glue them into a bigram.
const CJK_STOP: &[&str] = &[
    "为什么",
    "怎么办",
    "怎么样",
    "是什么",
    "什么",
    "怎么",
    "如何",
    "是否",
    "哪些",
    "哪个",
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "啊",
    "是",
    "和",
    "与",
    "及",
    "或",
    "请问",
];

/// Calls `f(from, to)` for each part of `run` between stop phrases.
fn cjk_parts(run: &str, f: &mut dyn FnMut(usize, usize)) {
    let mut start = 0;
    let mut i = 0;
    while i < run.len() {
        if let Some(stop) = CJK_STOP.iter().find(|s| run[i..].starts_with(*s)) {
            if start < i {
                f(start, i);
            }
            i += stop.len();
            start = i;
        } else {
            i += run[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if start < run.len() {
        f(start, run.len());
    }
}

/// One run of CJK characters: overlapping bigrams of each part between stop phrases (a
/// one-character part is a unigram).
#[cfg(not(feature = "jieba"))]
fn cjk(run: &str, base: usize, emit: &mut dyn FnMut(usize, usize, String)) {
    cjk_parts(run, &mut |from, to| {
        let part = &run[from..to];
        let cs: Vec<(usize, char)> = part.char_indices().collect();
        if cs.len() == 1 {
            emit(base + from, base + to, part.to_string());
            return;
        }
        for k in 0..cs.len() - 1 {
            let a = cs[k].0;
            let b = cs[k + 1].0 + cs[k + 1].1.len_utf8();
            emit(base + from + a, base + from + b, part[a..b].to_string());
        }
    });
}

/// One run of CJK characters, cut by jieba's search mode (words and their sub-words).
#[cfg(feature = "jieba")]
fn cjk(run: &str, base: usize, emit: &mut dyn FnMut(usize, usize, String)) {
    use std::sync::OnceLock;
    static JIEBA: OnceLock<jieba_rs::Jieba> = OnceLock::new();
    let j = JIEBA.get_or_init(jieba_rs::Jieba::new);
    cjk_parts(run, &mut |from, to| {
        let part = &run[from..to];
        for t in j.tokenize(part, jieba_rs::TokenizeMode::Search, true) {
            // jieba's offsets are in characters.
            let a = part
                .char_indices()
                .nth(t.start)
                .map_or(part.len(), |(i, _)| i);
            let b = part
                .char_indices()
                .nth(t.end)
                .map_or(part.len(), |(i, _)| i);
            if a < b {
                emit(base + from + a, base + from + b, t.word.to_string());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        terms(&mut analyzer(), text)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn camel_case_alert_names_split_and_stay_whole() {
        let w = words("NodeRAIDDegraded");
        assert_eq!(w, ["node", "raid", "degrad", "noderaiddegrad"]);
        assert_eq!(
            words("etcdGRPCRequestsSlow")[..4],
            ["etcd", "grpc", "request", "slow"]
        );
    }

    #[test]
    fn underscores_split_and_stop_words_drop() {
        assert_eq!(
            words("the node_filesystem_free_bytes is"),
            ["node", "filesystem", "free", "byte"]
        );
    }

    #[cfg(not(feature = "jieba"))]
    #[test]
    fn chinese_runs_become_bigrams_with_offsets() {
        let t = terms(&mut analyzer(), "磁盘满了 disk");
        let text = "磁盘满了 disk";
        let got: Vec<(&str, &str)> = t
            .iter()
            .map(|(w, r)| (w.as_str(), &text[r.clone()]))
            .collect();
        assert_eq!(got, [("磁盘", "磁盘"), ("盘满", "盘满"), ("disk", "disk")]);
        assert_eq!(words("盘"), ["盘"]);
        assert_eq!(words("磁盘满了怎么办"), ["磁盘", "盘满"]);
        assert_eq!(words("连接池的原因"), ["连接", "接池", "原因"]);
    }
}
