//! Streaming log template mining with Drain (He et al., ICWS 2017): a fixed-depth prefix tree that
//! routes a log line by its token count, then by its first `depth - 2` tokens, to a leaf holding
//! log groups; the line joins the most similar group if the similarity reaches the threshold
//! (positions that differ become the wildcard `<*>`), or starts a new group.
//!
//! Before the tree, [`mask`] rules (numbers, ids, addresses, paths, timestamps…) rewrite the
//! variable parts of each token into a placeholder, so lines differing only there land together.
//!
//! Determinism: a template's id is the FNV-1a hash of the token sequence that created it (salted
//! on a collision, in creation order), and it never changes when the template generalizes; no
//! result depends on a hash map's iteration order. The whole parser serializes with serde, and a
//! restored parser continues exactly as the uninterrupted one (same ids, same templates).
//!
//! ```
//! use aiops_detect::drain::{Change, Drain, DrainConfig};
//! let mut drain = Drain::new(DrainConfig::default()).unwrap();
//! let a = drain.parse("Connected to 10.0.0.1 port 8080 in 12 ms");
//! let b = drain.parse("Connected to 10.0.0.2 port 9090 in 7 ms");
//! assert_eq!(a.template_id, b.template_id);
//! assert_eq!(a.change, Change::New);
//! assert_eq!(drain.template(a.template_id).unwrap().template, "Connected to <*> port <*> in <*> ms");
//! ```

pub mod mask;

mod hash;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use hash::{Fnv, FxMap};
use mask::Masker;
pub use mask::{MaskConfig, Placeholder, WILDCARD};

/// Parameters of a [`Drain`] parser. Every field has a default (see [`DrainConfig::default`]);
/// unknown fields are refused, so a typo is an error rather than a silently ignored setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainConfig {
    /// A line joins the most similar group of its leaf when the similarity (the fraction of
    /// positions whose token equals the template's; a template wildcard equals only a masked
    /// token) is at least this. In `[0, 1]`; default 0.85: masking already turned the values into
    /// placeholders, so the remaining differences are mostly constants that tell templates apart.
    pub similarity_threshold: f64,
    /// Depth of the prefix tree counting the root and the token-count layer: lines are routed by
    /// their first `depth - 2` tokens. At least 2; default 3 (one routing token). Note that
    /// logpai's Drain and drain3 route by `depth - 3` tokens: their default `depth = 4` is the
    /// `3` here.
    pub depth: usize,
    /// Children per internal node before further distinct tokens share the wildcard child.
    /// At least 2; default 100.
    pub max_children: usize,
    /// Characters that separate tokens besides ASCII whitespace (e.g. `",;"`). Default none.
    pub extra_delimiters: String,
    /// A routing token that still contains a digit after masking goes to the wildcard child
    /// (Drain's rule, keeps unmasked ids from flooding the tree). Default true.
    pub parametrize_numeric_tokens: bool,
    /// How much a position where the line and the template differ counts toward the similarity
    /// when both tokens look variable (contain a digit or a placeholder, e.g. `IRQ9` and `IRQ2`, or
    /// `LOCAL(<*>),` and `<*>,`): such a pair is most likely a value the masks missed, while two
    /// different words are most likely different constants. In `[0, 1]`; default 0.5.
    pub variable_mismatch_credit: f64,
    /// Consecutive tokens that are each entirely one placeholder of the same kind (`<*> <*> <*>`
    /// from three block ids, or three numbers) become one token:
    /// a variable-length list of values (block ids, numbers) is one parameter, so lists of
    /// different lengths share a template. Default true.
    pub collapse_wildcard_runs: bool,
    /// Masking rules.
    pub masks: MaskConfig,
    /// What masked parts are replaced with. Default [`Placeholder::Wildcard`] (`<*>`).
    pub placeholder: Placeholder,
}

impl Default for DrainConfig {
    /// The one configuration scored on Loghub: threshold 0.85, depth 3, 100 children, whitespace
    /// tokens, numeric routing tokens to the wildcard child, wildcard runs collapsed, variable
    /// mismatches credited 0.5, all masks, `<*>` placeholders.
    fn default() -> Self {
        Self {
            similarity_threshold: 0.85,
            depth: 3,
            max_children: 100,
            extra_delimiters: String::new(),
            parametrize_numeric_tokens: true,
            collapse_wildcard_runs: true,
            variable_mismatch_credit: 0.5,
            masks: MaskConfig::default(),
            placeholder: Placeholder::Wildcard,
        }
    }
}

impl DrainConfig {
    /// Checks the ranges of the fields.
    ///
    /// # Errors
    /// [`DrainError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), DrainError> {
        let bad =
            |field: &'static str, reason: String| Err(DrainError::InvalidConfig { field, reason });
        if !(0.0..=1.0).contains(&self.similarity_threshold) {
            return bad(
                "similarity_threshold",
                format!("must be in [0, 1], got {}", self.similarity_threshold),
            );
        }
        if !(0.0..=1.0).contains(&self.variable_mismatch_credit) {
            return bad(
                "variable_mismatch_credit",
                format!("must be in [0, 1], got {}", self.variable_mismatch_credit),
            );
        }
        if self.depth < 2 {
            return bad("depth", format!("must be at least 2, got {}", self.depth));
        }
        if self.max_children < 2 {
            return bad(
                "max_children",
                format!("must be at least 2, got {}", self.max_children),
            );
        }
        if let Some(c) = self
            .extra_delimiters
            .chars()
            .find(|c| !c.is_ascii() || *c == '<' || *c == '>' || *c == '*')
        {
            return bad(
                "extra_delimiters",
                format!("must be ASCII and not one of `<*>`, got {c:?}"),
            );
        }
        Ok(())
    }

    /// Parses a JSON configuration (missing fields take their defaults) and validates it.
    ///
    /// # Errors
    /// [`DrainError::ConfigParse`] (unknown field, wrong type, with serde's line and column) or
    /// [`DrainError::InvalidConfig`].
    pub fn from_json(json: &str) -> Result<Self, DrainError> {
        let config: Self = serde_json::from_str(json).map_err(DrainError::ConfigParse)?;
        config.validate()?;
        Ok(config)
    }
}

/// Why a configuration or a restored state was refused.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// A field is out of range.
    #[error("drain config: field `{field}` {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The configuration is not valid JSON for [`DrainConfig`].
    #[error("drain config: {0}")]
    ConfigParse(serde_json::Error),
    /// A serialized parser state is inconsistent.
    #[error("drain state: {0}")]
    InvalidState(String),
}

/// A template's stable id: the FNV-1a hash of the masked tokens of the line that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TemplateId(pub u64);

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What a line did to its template; `New` and `Updated` are the changes the engine records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The line created the template.
    New,
    /// The line generalized the template (some tokens became `<*>`); the id is unchanged.
    Updated,
    /// The line matched the template as it was.
    Unchanged,
}

/// The result of parsing one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The template the line belongs to.
    pub template_id: TemplateId,
    /// What the line did to it.
    pub change: Change,
    /// Byte ranges in the line of the tokens that differ from the template (the parameters),
    /// in order.
    pub parameters: Vec<Range<usize>>,
}

/// One line's result in a [`ParsedBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMatch {
    /// The template the line belongs to.
    pub template_id: TemplateId,
    /// What the line did to it.
    pub change: Change,
    /// The line's parameters: a range of indexes into [`ParsedBatch::parameters`].
    pub params: Range<usize>,
}

/// Reusable output of [`Drain::parse_batch`]: cleared, not reallocated, by each call.
#[derive(Debug, Clone, Default)]
pub struct ParsedBatch {
    /// One entry per line, in input order.
    pub lines: Vec<LineMatch>,
    /// Byte ranges (in their own line) of all lines' parameters, line after line.
    pub parameters: Vec<Range<usize>>,
}

impl ParsedBatch {
    /// The parameter ranges of line `i` (within that line).
    #[must_use]
    pub fn params_of(&self, i: usize) -> &[Range<usize>] {
        self.lines
            .get(i)
            .and_then(|l| self.parameters.get(l.params.clone()))
            .unwrap_or(&[])
    }
}

/// A read-only view of one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateView<'a> {
    /// Its stable id.
    pub id: TemplateId,
    /// Its tokens joined by single spaces, `<*>` where lines differ.
    pub template: &'a str,
    /// Lines matched so far.
    pub count: u64,
    /// The event time of its first line, when lines came with [`Drain::parse_at`].
    pub first_seen: Option<i64>,
    /// The event time of its latest line.
    pub last_seen: Option<i64>,
}

/// Token id of the wildcard `<*>` (always interned first).
const WILDCARD_ID: u32 = 0;
/// Token id of a line token that is in no template.
const UNKNOWN: u32 = u32::MAX;
/// No node.
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cluster {
    id: TemplateId,
    tokens: Vec<u32>,
    count: u64,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Node {
    /// Literal-token children in insertion order (the index is in `Drain::child_index`).
    children: Vec<(u32, u32)>,
    /// The wildcard child.
    wildcard: Option<u32>,
    /// Clusters, when a leaf, in creation order.
    clusters: Vec<u32>,
}

/// Reused buffers of the hot path, never serialized.
#[derive(Debug, Clone, Default)]
struct Scratch {
    masked: String,
    /// Token spans in `masked`.
    spans: Vec<(u32, u32)>,
    /// Token spans in the input line.
    orig: Vec<(u32, u32)>,
    ids: Vec<u32>,
    /// Whether masking changed each token.
    masked_tok: Vec<bool>,
    /// Whether each token looks variable (masked, or has a digit).
    var_tok: Vec<bool>,
}

/// The serialized form of a [`Drain`]: configuration, interned tokens, templates and the tree.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainState {
    config: DrainConfig,
    tokens: Vec<String>,
    clusters: Vec<Cluster>,
    nodes: Vec<Node>,
    by_len: Vec<u32>,
}

#[derive(Serialize)]
struct DrainStateRef<'a> {
    config: &'a DrainConfig,
    tokens: &'a [Box<str>],
    clusters: &'a [Cluster],
    nodes: &'a [Node],
    by_len: &'a [u32],
}

/// A streaming Drain parser; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Drain {
    config: DrainConfig,
    masker: Masker,
    /// Byte classes: [`mask::CLASS`] plus the extra delimiters.
    class: [u8; 256],
    /// Interned tokens of templates; index = token id.
    tokens: Vec<Box<str>>,
    token_index: FxMap<Box<str>, u32>,
    /// Whether each interned token routes to the wildcard child (placeholder or digit).
    token_is_param: Vec<bool>,
    /// Whether each interned token looks variable (digit or placeholder inside).
    token_is_var: Vec<bool>,
    clusters: Vec<Cluster>,
    /// Template strings, kept in step with `clusters`.
    texts: Vec<String>,
    id_index: BTreeMap<TemplateId, u32>,
    nodes: Vec<Node>,
    /// Node of each token count (`NONE` when absent).
    by_len: Vec<u32>,
    child_index: FxMap<(u32, u32), u32>,
    scratch: Scratch,
}

impl Drain {
    /// A parser with no templates yet.
    ///
    /// # Errors
    /// [`DrainError::InvalidConfig`] when a field is out of range.
    pub fn new(config: DrainConfig) -> Result<Self, DrainError> {
        config.validate()?;
        let mut class = mask::CLASS;
        for b in config.extra_delimiters.bytes() {
            class[b as usize] = mask::DELIM;
        }
        let mut d = Self {
            masker: Masker::new(config.masks, config.placeholder),
            config,
            class,
            tokens: Vec::new(),
            token_index: FxMap::default(),
            token_is_param: Vec::new(),
            token_is_var: Vec::new(),
            clusters: Vec::new(),
            texts: Vec::new(),
            id_index: BTreeMap::new(),
            nodes: Vec::new(),
            by_len: Vec::new(),
            child_index: FxMap::default(),
            scratch: Scratch::default(),
        };
        d.intern(WILDCARD);
        Ok(d)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DrainConfig {
        &self.config
    }

    /// Parses one line (its message content, without timestamp or level prefixes).
    pub fn parse(&mut self, content: &str) -> Parsed {
        let mut parameters = Vec::new();
        let (template_id, change) = self.parse_core(content, None, &mut parameters);
        Parsed {
            template_id,
            change,
            parameters,
        }
    }

    /// Parses one line with its event time (milliseconds, caller-defined), which becomes the
    /// template's `first_seen`/`last_seen`.
    pub fn parse_at(&mut self, time_ms: i64, content: &str) -> Parsed {
        let mut parameters = Vec::new();
        let (template_id, change) = self.parse_core(content, Some(time_ms), &mut parameters);
        Parsed {
            template_id,
            change,
            parameters,
        }
    }

    /// Parses lines in order into `out` (cleared first; its buffers are reused, so a steady stream
    /// of batches does not allocate per line). Results are the same as one `parse` per line.
    pub fn parse_batch<'a, I>(&mut self, lines: I, out: &mut ParsedBatch)
    where
        I: IntoIterator<Item = &'a str>,
    {
        out.lines.clear();
        out.parameters.clear();
        for line in lines {
            let start = out.parameters.len();
            let (template_id, change) = self.parse_core(line, None, &mut out.parameters);
            out.lines.push(LineMatch {
                template_id,
                change,
                params: start..out.parameters.len(),
            });
        }
    }

    /// [`Drain::parse_batch`] with an event time per line.
    pub fn parse_batch_at<'a, I>(&mut self, lines: I, out: &mut ParsedBatch)
    where
        I: IntoIterator<Item = (i64, &'a str)>,
    {
        out.lines.clear();
        out.parameters.clear();
        for (time, line) in lines {
            let start = out.parameters.len();
            let (template_id, change) = self.parse_core(line, Some(time), &mut out.parameters);
            out.lines.push(LineMatch {
                template_id,
                change,
                params: start..out.parameters.len(),
            });
        }
    }

    /// The templates in creation order.
    pub fn templates(&self) -> impl Iterator<Item = TemplateView<'_>> + '_ {
        self.clusters
            .iter()
            .zip(&self.texts)
            .map(|(c, t)| view(c, t))
    }

    /// One template by id.
    #[must_use]
    pub fn template(&self, id: TemplateId) -> Option<TemplateView<'_>> {
        let &i = self.id_index.get(&id)?;
        let i = i as usize;
        Some(view(self.clusters.get(i)?, self.texts.get(i)?))
    }

    /// The number of templates.
    #[must_use]
    pub fn template_count(&self) -> usize {
        self.clusters.len()
    }

    /// Matches a line against the templates without changing anything (no new template, no
    /// generalization, no count): the id it would join, if any.
    pub fn match_only(&mut self, content: &str) -> Option<TemplateId> {
        self.tokenize(content);
        let c = self.search()?;
        Some(self.clusters[c as usize].id)
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.token_index.get(s) {
            return id;
        }
        let id = u32::try_from(self.tokens.len()).unwrap_or(UNKNOWN - 1);
        self.tokens.push(s.into());
        self.token_index.insert(s.into(), id);
        self.token_is_param.push(self.is_param_token(s));
        self.token_is_var
            .push(s.bytes().any(|c| c.is_ascii_digit()) || self.masker.contains_placeholder(s));
        id
    }

    fn is_param_token(&self, s: &str) -> bool {
        s == WILDCARD
            || (self.config.placeholder == Placeholder::Typed
                && s.len() >= 3
                && s.starts_with('<')
                && s.ends_with('>')
                && s[1..s.len() - 1].bytes().all(|c| c.is_ascii_uppercase()))
            || (self.config.parametrize_numeric_tokens && s.bytes().any(|c| c.is_ascii_digit()))
    }

    /// Splits and masks `content` into `scratch` and looks up each token's id.
    fn tokenize(&mut self, content: &str) {
        let s = &mut self.scratch;
        s.masked.clear();
        s.spans.clear();
        s.orig.clear();
        s.ids.clear();
        s.masked_tok.clear();
        s.var_tok.clear();
        // The kind of the previous token when it is exactly one placeholder.
        let mut prev_whole = None;
        let b = content.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if self.class[b[i] as usize] == mask::DELIM {
                i += 1;
                continue;
            }
            let start = i;
            let mut flags = 0u8;
            while i < b.len() {
                let c = self.class[b[i] as usize];
                if c == mask::DELIM {
                    break;
                }
                flags |= c;
                i += 1;
            }
            let m0 = s.masked.len();
            let m = self
                .masker
                .mask_token(&content[start..i], flags, &mut s.masked);
            let m1 = s.masked.len();
            if self.config.collapse_wildcard_runs && m.whole.is_some() && prev_whole == m.whole {
                // A run of placeholders of one kind: the previous token now spans this one too.
                s.masked.truncate(m0);
                if let Some(o) = s.orig.last_mut() {
                    o.1 = i as u32;
                }
                continue;
            }
            prev_whole = m.whole;
            let (was_masked, variable) = (m.masked, m.variable);
            s.masked_tok.push(was_masked);
            s.var_tok.push(variable);
            s.spans.push((m0 as u32, m1 as u32));
            s.orig.push((start as u32, i as u32));
            let tok = &s.masked[m0..m1];
            s.ids
                .push(self.token_index.get(tok).copied().unwrap_or(UNKNOWN));
        }
    }

    /// The leaf for the current line, if the tree has one.
    fn find_leaf(&self) -> Option<u32> {
        let ids = &self.scratch.ids;
        let mut node = *self.by_len.get(ids.len())?;
        if node == NONE {
            return None;
        }
        let layers = (self.config.depth - 2).min(ids.len());
        for &tok in &ids[..layers] {
            let n = &self.nodes[node as usize];
            node = match self.child_index.get(&(node, tok)) {
                Some(&c) => c,
                None => n.wildcard?,
            };
        }
        Some(node)
    }

    /// The best-matching cluster for the current line (Drain's fast match).
    fn search(&self) -> Option<u32> {
        let leaf = self.find_leaf()?;
        let ids = &self.scratch.ids;
        let n = ids.len();
        let var = &self.scratch.var_tok;
        let credit = self.config.variable_mismatch_credit;
        let mut best: Option<(u32, f64, usize)> = None; // (cluster, score, wildcards)
        for &c in &self.nodes[leaf as usize].clusters {
            let t = &self.clusters[c as usize].tokens;
            let mut equal = 0usize;
            let mut soft = 0usize;
            let mut wild = 0usize;
            for (i, (&a, &b)) in t.iter().zip(ids).enumerate() {
                if a == b {
                    equal += 1;
                } else if var[i] && self.token_is_var[a as usize] {
                    soft += 1;
                }
                if a == WILDCARD_ID {
                    wild += 1;
                }
            }
            let score = equal as f64 + credit * soft as f64;
            let better = match best {
                None => true,
                Some((_, e, w)) => score > e || (score == e && wild > w),
            };
            if better {
                best = Some((c, score, wild));
            }
        }
        let (c, score, _) = best?;
        // score / n >= threshold, without dividing.
        (n == 0 || score >= self.config.similarity_threshold * n as f64).then_some(c)
    }

    fn parse_core(
        &mut self,
        content: &str,
        time: Option<i64>,
        params: &mut Vec<Range<usize>>,
    ) -> (TemplateId, Change) {
        self.tokenize(content);
        let (ci, change) = match self.search() {
            Some(c) => {
                let ci = c as usize;
                let mut changed = false;
                for i in 0..self.scratch.ids.len() {
                    let (t, l) = (self.clusters[ci].tokens[i], self.scratch.ids[i]);
                    if t != l && t != WILDCARD_ID {
                        let g = self.generalize(t, i);
                        if g != t {
                            self.clusters[ci].tokens[i] = g;
                            changed = true;
                        }
                    }
                }
                if changed {
                    self.texts[ci] = self.render(ci);
                }
                (
                    ci,
                    if changed {
                        Change::Updated
                    } else {
                        Change::Unchanged
                    },
                )
            }
            None => (self.create_cluster(), Change::New),
        };
        let c = &mut self.clusters[ci];
        c.count += 1;
        if let Some(t) = time {
            c.first_seen.get_or_insert(t);
            c.last_seen = Some(c.last_seen.map_or(t, |l| l.max(t)));
        }
        // Parameters: tokens whose original text differs from the template's token (a masked
        // token, or one the template does not have).
        let c = &self.clusters[ci];
        let sc = &self.scratch;
        for (i, &t) in c.tokens.iter().enumerate() {
            if t != sc.ids[i] || sc.masked_tok[i] {
                let (s, e) = sc.orig[i];
                params.push(s as usize..e as usize);
            }
        }
        (c.id, change)
    }

    /// The token replacing template token `t` where line token `i` differs: `<*>`, keeping the
    /// punctuation both share at the start and end (`[a1]`, `[b2]` → `[<*>]`; `<*>,`,
    /// `LOCAL(<*>),` → `<*>,`), as Loghub's templates do.
    fn generalize(&mut self, t: u32, i: usize) -> u32 {
        let (s0, s1) = self.scratch.spans[i];
        let line = &self.scratch.masked[s0 as usize..s1 as usize];
        let tmpl = &self.tokens[t as usize];
        let (a, b) = (tmpl.as_bytes(), line.as_bytes());
        let keep = |c: u8| c.is_ascii_punctuation() && !matches!(c, b'<' | b'>' | b'*');
        let mut p = 0;
        while p < a.len() && p < b.len() && a[p] == b[p] && keep(a[p]) {
            p += 1;
        }
        let mut q = 0;
        while q < a.len() - p
            && q < b.len() - p
            && a[a.len() - 1 - q] == b[b.len() - 1 - q]
            && keep(a[a.len() - 1 - q])
        {
            q += 1;
        }
        if p == 0 && q == 0 {
            return WILDCARD_ID;
        }
        let g = format!("{}{WILDCARD}{}", &tmpl[..p], &tmpl[tmpl.len() - q..]);
        self.intern(&g)
    }

    fn render(&self, ci: usize) -> String {
        let mut s = String::new();
        for (i, &t) in self.clusters[ci].tokens.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&self.tokens[t as usize]);
        }
        s
    }

    /// Creates a cluster from the current line and adds it to the tree; returns its index.
    fn create_cluster(&mut self) -> usize {
        let n = self.scratch.ids.len();
        let mut tokens = Vec::with_capacity(n);
        for i in 0..n {
            let id = match self.scratch.ids[i] {
                UNKNOWN => {
                    let (s, e) = self.scratch.spans[i];
                    let tok = self.scratch.masked[s as usize..e as usize].to_owned();
                    self.intern(&tok)
                }
                id => id,
            };
            self.scratch.ids[i] = id;
            tokens.push(id);
        }
        // The id: FNV-1a of the masked tokens, salted until unique.
        let mut salt = 0u32;
        let id = loop {
            let mut h = Fnv::new();
            for &t in &tokens {
                h.bytes(self.tokens[t as usize].as_bytes());
                h.bytes(&[0x1f]);
            }
            if salt > 0 {
                h.bytes(&salt.to_le_bytes());
            }
            let id = TemplateId(h.finish());
            if !self.id_index.contains_key(&id) {
                break id;
            }
            salt += 1;
        };
        let ci = self.clusters.len();
        self.clusters.push(Cluster {
            id,
            tokens,
            count: 0,
            first_seen: None,
            last_seen: None,
        });
        self.texts.push(self.render(ci));
        self.id_index.insert(id, ci as u32);
        let leaf = self.leaf_for_new(ci);
        self.nodes[leaf as usize].clusters.push(ci as u32);
        ci
    }

    fn new_node(&mut self) -> u32 {
        self.nodes.push(Node::default());
        (self.nodes.len() - 1) as u32
    }

    /// Drain's `addSeqToPrefixTree`: walks (creating nodes as needed) to the leaf of cluster `ci`.
    fn leaf_for_new(&mut self, ci: usize) -> u32 {
        let n = self.clusters[ci].tokens.len();
        if self.by_len.len() <= n {
            self.by_len.resize(n + 1, NONE);
        }
        let mut node = self.by_len[n];
        if node == NONE {
            node = self.new_node();
            self.by_len[n] = node;
        }
        let layers = (self.config.depth - 2).min(n);
        let max = self.config.max_children;
        for i in 0..layers {
            let tok = self.clusters[ci].tokens[i];
            if let Some(&c) = self.child_index.get(&(node, tok)) {
                node = c;
                continue;
            }
            let nd = &self.nodes[node as usize];
            let count = nd.children.len() + usize::from(nd.wildcard.is_some());
            let go_wild = if self.token_is_param[tok as usize] {
                true
            } else if nd.wildcard.is_some() {
                count >= max
            } else {
                count + 1 >= max
            };
            node = if go_wild {
                match self.nodes[node as usize].wildcard {
                    Some(w) => w,
                    None => {
                        let w = self.new_node();
                        self.nodes[node as usize].wildcard = Some(w);
                        w
                    }
                }
            } else {
                let c = self.new_node();
                self.nodes[node as usize].children.push((tok, c));
                self.child_index.insert((node, tok), c);
                c
            };
        }
        node
    }

    fn to_state_ref(&self) -> DrainStateRef<'_> {
        DrainStateRef {
            config: &self.config,
            tokens: &self.tokens,
            clusters: &self.clusters,
            nodes: &self.nodes,
            by_len: &self.by_len,
        }
    }

    fn from_state(state: DrainState) -> Result<Self, DrainError> {
        let mut d = Self::new(state.config)?;
        let bad = |what: String| Err(DrainError::InvalidState(what));
        if state.tokens.first().map(String::as_str) != Some(WILDCARD) {
            return bad("token 0 must be the wildcard `<*>`".into());
        }
        d.tokens.clear();
        d.token_index.clear();
        d.token_is_param.clear();
        d.token_is_var.clear();
        for (i, t) in state.tokens.iter().enumerate() {
            if d.intern(t) as usize != i {
                return bad(format!("token {i} ({t:?}) is a duplicate"));
            }
        }
        let nt = d.tokens.len();
        let nn = state.nodes.len();
        for (i, c) in state.clusters.iter().enumerate() {
            if let Some(t) = c.tokens.iter().find(|&&t| t as usize >= nt) {
                return bad(format!("template {i} refers to token {t} of {nt}"));
            }
            if d.id_index.insert(c.id, i as u32).is_some() {
                return bad(format!("template id {} appears twice", c.id));
            }
        }
        d.clusters = state.clusters;
        for ci in 0..d.clusters.len() {
            let text = d.render(ci);
            d.texts.push(text);
        }
        let nc = d.clusters.len();
        for (i, node) in state.nodes.iter().enumerate() {
            for &(tok, child) in &node.children {
                if tok as usize >= nt || child as usize >= nn {
                    return bad(format!("node {i} has a child out of range"));
                }
                d.child_index.insert((i as u32, tok), child);
            }
            if node.wildcard.is_some_and(|w| w as usize >= nn)
                || node.clusters.iter().any(|&c| c as usize >= nc)
            {
                return bad(format!(
                    "node {i} refers to a node or template out of range"
                ));
            }
        }
        if state.by_len.iter().any(|&n| n != NONE && n as usize >= nn) {
            return bad("token-count layer refers to a node out of range".into());
        }
        d.nodes = state.nodes;
        d.by_len = state.by_len;
        Ok(d)
    }
}

fn view<'a>(c: &Cluster, text: &'a str) -> TemplateView<'a> {
    TemplateView {
        id: c.id,
        template: text,
        count: c.count,
        first_seen: c.first_seen,
        last_seen: c.last_seen,
    }
}

impl Serialize for Drain {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_state_ref().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Drain {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = DrainState::deserialize(deserializer)?;
        Self::from_state(state).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn generalizes_and_keeps_id() {
        let mut d = Drain::new(DrainConfig {
            similarity_threshold: 0.5,
            ..DrainConfig::default()
        })
        .unwrap();
        let a = d.parse("login of alice from web");
        let b = d.parse("login of bob from web");
        assert_eq!(a.template_id, b.template_id);
        assert_eq!(b.change, Change::Updated);
        assert_eq!(b.parameters, vec![9..12]);
        let t = d.template(a.template_id).unwrap();
        assert_eq!(t.template, "login of <*> from web");
        assert_eq!(t.count, 2);
        let c = d.parse("login of carol from web");
        assert_eq!(c.change, Change::Unchanged);
    }

    #[test]
    fn empty_line() {
        let mut d = Drain::new(DrainConfig::default()).unwrap();
        let a = d.parse("");
        let b = d.parse("   ");
        assert_eq!(a.template_id, b.template_id);
        assert_eq!(b.change, Change::Unchanged);
    }
}
