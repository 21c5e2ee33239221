//! Streaming log template mining: Drain (He et al., ICWS 2017) with parameters learned from
//! the stream. A fixed-depth prefix tree routes a log line by its token count, then by its
//! first `depth - 2` tokens, to a leaf holding templates; the line joins the most similar
//! template if the similarity reaches the threshold (positions that differ become the
//! wildcard `<*>`), or starts a new template.
//!
//! Before the tree, [`mask`] rules rewrite what is variable by its shape (numbers, ids,
//! addresses, paths, timestamps, `key=value` and JSON values, a unit after a number), and a
//! bracketed comma list (`[a, b, c]`) is read as one token.
//!
//! What no shape rule can know — that a plain word is a parameter (user names, hosts, file
//! names) — is learned from the data, so one default configuration holds on formats it was
//! not tuned on:
//! - two different plain words never join: a word is a constant until shown otherwise;
//! - templates equal on their constant words but for one position ("siblings") are merged into
//!   one with `<*>` there when that position keeps bringing new values (at least
//!   [`DrainConfig::merge_siblings`] siblings, and a Good–Turing new-value rate of 0.2, or ten
//!   values), so an enumeration of constants (`starting`/`stopping`) stays apart;
//! - the merged words become known values: elsewhere they count as variable tokens;
//! - a template with a wildcard absorbs the templates it covers, and a line must share at least
//!   one of a template's constant words to join it.
//!
//! A merged template's id resolves to the template it joined ([`Drain::resolve`]); a consumer
//! that kept the old id still finds the template through [`Drain::template`].
//!
//! Determinism: a template's id is the FNV-1a hash of the token sequence that created it (salted
//! on a collision, in creation order), and it never changes when the template generalizes; no
//! result depends on a hash map's iteration order. The whole parser serializes with serde, and a
//! restored parser continues exactly as the uninterrupted one (same ids, same templates, same
//! merges). Memory follows the live templates: a merged template keeps only its id and target.
//!
//! ```
//! use aiops_detect::drain::{Change, Drain, DrainConfig};
//! let mut drain = Drain::new(DrainConfig::default()).unwrap();
//! let a = drain.parse("Connected to 10.0.0.1 port 8080 in 12 ms");
//! let b = drain.parse("Connected to 10.0.0.2 port 9090 in 7 ms");
//! assert_eq!(a.template_id, b.template_id);
//! assert_eq!(a.change, Change::New);
//! assert_eq!(drain.template(a.template_id).unwrap().template, "Connected to <*> port <*> in <*>");
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
    /// positions whose token equals the template's; a template wildcard equals any token) is at
    /// least this, and (with [`DrainConfig::merge_siblings`] on) no position pits two different
    /// plain words against each other. In `[0, 1]`; default 0.75. Since different words never
    /// join, the threshold only weighs variable-looking differences, and grouping accuracy is
    /// flat from 0.6 to 0.85 on the Loghub and synthetic sets (docs/benchmarks.md).
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
    /// Consecutive tokens that are each entirely one placeholder (`<*> <*> <*>`
    /// from three block ids, or three numbers) become one token:
    /// a variable-length list of values (block ids, numbers) is one parameter, so lists of
    /// different lengths share a template. Default true.
    pub collapse_wildcard_runs: bool,
    /// Templates that are identical but for one position are merged into one with `<*>` there
    /// once this many of them exist (`Invalid user alice from <*>`, `… bob …`, `… carol …`):
    /// a position that takes this many different values where everything else is equal is a
    /// parameter, whatever its values look like. Two or fewer values stay distinct templates
    /// (`Starting x` / `Stopping x`). 0 turns merging off; otherwise at least 2; default 3.
    pub merge_siblings: usize,
    /// Masking rules.
    pub masks: MaskConfig,
    /// What masked parts are replaced with. Default [`Placeholder::Wildcard`] (`<*>`).
    pub placeholder: Placeholder,
}

impl Default for DrainConfig {
    /// The one configuration scored on Loghub and on synthetic formats: threshold 0.75, depth 3,
    /// 100 children, whitespace tokens, numeric routing tokens to the wildcard child, wildcard
    /// runs collapsed, variable mismatches credited 0.5, siblings merged from 3, all masks, `<*>`
    /// placeholders.
    fn default() -> Self {
        Self {
            similarity_threshold: 0.75,
            depth: 3,
            max_children: 100,
            extra_delimiters: String::new(),
            parametrize_numeric_tokens: true,
            collapse_wildcard_runs: true,
            variable_mismatch_credit: 0.5,
            merge_siblings: 3,
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
        if self.merge_siblings == 1 {
            return bad(
                "merge_siblings",
                "must be 0 (off) or at least 2, got 1".to_owned(),
            );
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
/// See [`Drain::keeps_new_values`].
const NEW_VALUE_RATE: f64 = 0.2;
/// Tokens of the longest bracketed list read as one token.
const MAX_LIST: usize = 64;
/// Templates longer than this many tokens take no part in sibling merging: computing a
/// template's signatures costs the square of its length, and a line this long (a dump, a stack
/// in one line) is no evidence about which word is a parameter.
const MAX_SIBLING_TOKENS: usize = 128;
/// See [`Drain::keeps_new_values`].
const MANY_VALUES: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cluster {
    id: TemplateId,
    tokens: Vec<u32>,
    count: u64,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    /// The cluster this one was merged into (its lines now count there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    merged_into: Option<u32>,
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
    #[serde(default)]
    values: Vec<u32>,
    clusters: Vec<Cluster>,
    nodes: Vec<Node>,
    by_len: Vec<u32>,
}

#[derive(Serialize)]
struct DrainStateRef<'a> {
    config: &'a DrainConfig,
    tokens: &'a [Box<str>],
    values: &'a [u32],
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
    /// Whether each interned token looks variable (digit or placeholder inside), or was learned
    /// to be a parameter value.
    token_is_var: Vec<bool>,
    /// Whether each interned token looks variable by its shape alone (digit, placeholder, or a
    /// list of several elements): never changes, so sibling signatures built on it stay valid.
    token_shape_var: Vec<bool>,
    clusters: Vec<Cluster>,
    /// Template strings, kept in step with `clusters`.
    texts: Vec<String>,
    id_index: BTreeMap<TemplateId, u32>,
    nodes: Vec<Node>,
    /// Node of each token count (`NONE` when absent).
    by_len: Vec<u32>,
    child_index: FxMap<(u32, u32), u32>,
    /// Live clusters by sibling signature (token count, a position, the tokens elsewhere), each
    /// list sorted by cluster index: derived from the live clusters alone, so a restored parser
    /// rebuilds it exactly.
    siblings: FxMap<u64, Vec<u32>>,
    /// Live clusters.
    live: usize,
    /// Live clusters by token count, each list sorted (what a new wildcard may cover).
    live_by_len: Vec<Vec<u32>>,
    /// Words learned to be parameter values, in learning order (their `token_is_var` is set).
    values: Vec<u32>,
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
            token_shape_var: Vec::new(),
            clusters: Vec::new(),
            texts: Vec::new(),
            id_index: BTreeMap::new(),
            nodes: Vec::new(),
            by_len: Vec::new(),
            child_index: FxMap::default(),
            siblings: FxMap::default(),
            live: 0,
            live_by_len: Vec::new(),
            values: Vec::new(),
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
            .filter(|(c, _)| c.merged_into.is_none())
            .map(|(c, t)| view(c, t))
    }

    /// One template by id; the id of a template that was merged into another gives that one.
    #[must_use]
    pub fn template(&self, id: TemplateId) -> Option<TemplateView<'_>> {
        let &i = self.id_index.get(&id)?;
        let i = self.root(i) as usize;
        Some(view(self.clusters.get(i)?, self.texts.get(i)?))
    }

    /// The id that `id` stands for now: itself, or the template it was merged into.
    #[must_use]
    pub fn resolve(&self, id: TemplateId) -> TemplateId {
        match self.id_index.get(&id) {
            Some(&i) => self.clusters[self.root(i) as usize].id,
            None => id,
        }
    }

    /// The live cluster that cluster `i` now counts in.
    fn root(&self, mut i: u32) -> u32 {
        while let Some(j) = self.clusters.get(i as usize).and_then(|c| c.merged_into) {
            i = j;
        }
        i
    }

    /// The number of templates.
    #[must_use]
    pub fn template_count(&self) -> usize {
        self.live
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
        // A token with a space inside is a list of several elements (see `list_token`).
        let shape = s.bytes().any(|c| c.is_ascii_digit() || c == b' ')
            || self.masker.contains_placeholder(s);
        self.token_is_var.push(shape);
        self.token_shape_var.push(shape);
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
        let mut json_key = false;
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
            if let Some((end, m)) =
                list_token(&self.class, &self.masker, content, start, i, &mut s.masked)
            {
                // A bracketed list (`[a, b, c]`): one token whatever its length.
                i = end;
                prev_whole = None;
                json_key = false;
                let m1 = s.masked.len();
                s.masked_tok.push(m);
                s.var_tok.push(true);
                s.spans.push((m0 as u32, m1 as u32));
                s.orig.push((start as u32, i as u32));
                let id = self.token_index.get(&s.masked[m0..m1]).copied();
                s.ids.push(id.unwrap_or(UNKNOWN));
                continue;
            }
            let tok = &content[start..i];
            let m = match json_key.then(|| self.masker.json_value(tok, &mut s.masked)) {
                Some(Some(_)) => mask::Masked {
                    masked: true,
                    variable: true,
                    whole: None,
                },
                _ => self.masker.mask_token(tok, flags, &mut s.masked),
            };
            // A token ending with `":` is a JSON key: the next token is its value.
            json_key = tok.len() > 2 && tok.ends_with("\":");
            let m1 = s.masked.len();
            if self.config.collapse_wildcard_runs && m.whole.is_some() && prev_whole.is_some() {
                // A run of placeholders: the previous token now spans this one too.
                s.masked.truncate(m0);
                if let Some(o) = s.orig.last_mut() {
                    o.1 = i as u32;
                }
                continue;
            }
            if prev_whole == Some(mask::Kind::Num)
                && self.config.masks.units
                && let Some(trail) = mask::unit_trail(tok)
            {
                // `5.2 KB,`: a humanized quantity picks its unit by magnitude, so the unit is
                // part of the value. The previous token spans this one and keeps its `,`.
                s.masked.truncate(m0);
                s.masked.push_str(trail);
                let m1 = s.masked.len();
                if let (Some(o), Some(sp)) = (s.orig.last_mut(), s.spans.last_mut()) {
                    o.1 = i as u32;
                    sp.1 = m1 as u32;
                    let id = self
                        .token_index
                        .get(&s.masked[sp.0 as usize..m1])
                        .copied()
                        .unwrap_or(UNKNOWN);
                    if let Some(last) = s.ids.last_mut() {
                        *last = id;
                    }
                }
                prev_whole = None;
                continue;
            }
            prev_whole = m.whole;
            let (was_masked, variable) = (m.masked, m.variable);
            s.masked_tok.push(was_masked);
            s.var_tok.push(variable);
            s.spans.push((m0 as u32, m1 as u32));
            s.orig.push((start as u32, i as u32));
            let tok = &s.masked[m0..m1];
            let id = self.token_index.get(tok).copied().unwrap_or(UNKNOWN);
            if id != UNKNOWN && self.token_is_var[id as usize] {
                // A word learned to be a parameter value (see `merge`).
                if let Some(v) = s.var_tok.last_mut() {
                    *v = true;
                }
            }
            s.ids.push(id);
        }
    }

    /// The leaf for the current line, if the tree has one. `literal` first takes the child of
    /// each routing token (Drain's walk); otherwise the wildcard child wherever one exists, where
    /// templates whose routing position turned out to be a parameter live.
    fn find_leaf(&self, literal: bool) -> Option<u32> {
        let ids = &self.scratch.ids;
        let mut node = *self.by_len.get(ids.len())?;
        if node == NONE {
            return None;
        }
        let layers = (self.config.depth - 2).min(ids.len());
        for &tok in &ids[..layers] {
            let n = &self.nodes[node as usize];
            let lit = self.child_index.get(&(node, tok)).copied();
            node = if literal {
                match lit {
                    Some(c) => c,
                    None => n.wildcard?,
                }
            } else {
                n.wildcard.or(lit)?
            };
        }
        Some(node)
    }

    /// The best-matching cluster for the current line (Drain's fast match): in the line's leaf,
    /// then in the leaf its wildcard routing reaches, if different.
    fn search(&self) -> Option<u32> {
        let first = self.find_leaf(true);
        if let Some(c) = first.and_then(|leaf| self.search_leaf(leaf)) {
            return Some(c);
        }
        match self.find_leaf(false) {
            Some(leaf) if Some(leaf) != first => self.search_leaf(leaf),
            _ => None,
        }
    }

    /// The best cluster of one leaf whose similarity reaches the threshold. A template's `<*>`
    /// equals any token: the position was learned to be a parameter.
    fn search_leaf(&self, leaf: u32) -> Option<u32> {
        let ids = &self.scratch.ids;
        let n = ids.len();
        let var = &self.scratch.var_tok;
        let credit = self.config.variable_mismatch_credit;
        let block_words = self.config.merge_siblings > 0;
        let mut best: Option<(u32, f64, usize)> = None; // (cluster, score, wildcards)
        for &c in &self.nodes[leaf as usize].clusters {
            let t = &self.clusters[c as usize].tokens;
            let mut equal = 0usize;
            let mut soft = 0usize;
            let mut wild = 0usize;
            let mut words_differ = false;
            // The template's words that look constant by their shape, and how many the line
            // shares: a line sharing none of them is another event, however many learned values
            // match (a word can be both a constant of one template and a value elsewhere).
            let (mut words, mut shared) = (0usize, 0usize);
            for (i, (&a, &b)) in t.iter().zip(ids).enumerate() {
                if a != WILDCARD_ID && !self.token_shape_var[a as usize] {
                    words += 1;
                    shared += usize::from(a == b);
                }
                if a == b || a == WILDCARD_ID {
                    equal += 1;
                } else if var[i] && self.token_is_var[a as usize] {
                    soft += 1;
                } else if block_words && !var[i] && !self.token_is_var[a as usize] {
                    words_differ = true;
                    break;
                }
                if a == WILDCARD_ID {
                    wild += 1;
                }
            }
            if words_differ || (block_words && words > 0 && shared == 0) {
                // Two different plain words: constants that tell templates apart, until enough
                // siblings show the position is a parameter (see `merge_siblings`).
                continue;
            }
            let score = equal as f64 + credit * soft as f64;
            let better = match best {
                None => true,
                Some((_, e, w)) => score > e || (score == e && wild < w),
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
                let mut ci = c as usize;
                let mut edits: Vec<(usize, u32)> = Vec::new();
                for i in 0..self.scratch.ids.len() {
                    let (t, l) = (self.clusters[ci].tokens[i], self.scratch.ids[i]);
                    if t != l && t != WILDCARD_ID {
                        let g = self.generalize(t, i);
                        if g != t {
                            edits.push((i, g));
                        }
                    }
                }
                let changed = !edits.is_empty();
                if changed {
                    // The template's signatures change with it.
                    self.index_siblings(ci as u32, false);
                    for (i, g) in edits {
                        self.clusters[ci].tokens[i] = g;
                    }
                    self.texts[ci] = self.render(ci);
                    self.index_siblings(ci as u32, true);
                    self.absorb_subsumed(ci as u32);
                    ci = self.merge_siblings(ci);
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
            None => {
                let ci = self.create_cluster();
                let root = self.merge_siblings(ci);
                if root == ci {
                    (ci, Change::New)
                } else {
                    (root, Change::Updated)
                }
            }
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
        let line = self.scratch.masked[s0 as usize..s1 as usize].to_owned();
        self.generalize_str(t, &line)
    }

    /// [`Self::generalize`] of two template tokens.
    fn generalize_tokens(&mut self, t: u32, other: u32) -> u32 {
        let o = self.tokens[other as usize].to_string();
        self.generalize_str(t, &o)
    }

    fn generalize_str(&mut self, t: u32, line: &str) -> u32 {
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
            merged_into: None,
        });
        self.texts.push(self.render(ci));
        self.id_index.insert(id, ci as u32);
        let leaf = self.leaf_for_new(ci);
        self.nodes[leaf as usize].clusters.push(ci as u32);
        self.set_live(ci as u32, true);
        self.index_siblings(ci as u32, true);
        ci
    }

    /// The sibling signature of cluster `ci` at position `p`: its token count, `p`, and its
    /// tokens elsewhere.
    fn signature(&self, ci: u32, p: usize) -> u64 {
        use std::hash::Hasher as _;
        let t = &self.clusters[ci as usize].tokens;
        let mut h = hash::FxHasher::default();
        h.write_usize(t.len());
        h.write_usize(p);
        for (i, &tok) in t.iter().enumerate() {
            if i != p {
                // Variable-looking tokens are no evidence of different events: only their
                // place counts.
                h.write_u32(if self.token_shape_var[tok as usize] {
                    UNKNOWN
                } else {
                    tok
                });
            }
        }
        h.finish()
    }

    /// Adds (or removes) live cluster `ci` to the sibling lists of each of its positions.
    fn index_siblings(&mut self, ci: u32, add: bool) {
        if self.config.merge_siblings == 0
            || self.clusters[ci as usize].tokens.len() > MAX_SIBLING_TOKENS
        {
            return;
        }
        for p in 0..self.clusters[ci as usize].tokens.len() {
            let sig = self.signature(ci, p);
            let list = self.siblings.entry(sig).or_default();
            match (list.binary_search(&ci), add) {
                (Err(at), true) => list.insert(at, ci),
                (Ok(at), false) => {
                    list.remove(at);
                    if list.is_empty() {
                        self.siblings.remove(&sig);
                    }
                }
                _ => {}
            }
        }
    }

    /// Merges cluster `ci` with its siblings while some position of it has
    /// [`DrainConfig::merge_siblings`] live clusters equal but for that position; returns the
    /// cluster `ci`'s lines now count in (the oldest sibling).
    fn merge_siblings(&mut self, ci: usize) -> usize {
        let k = self.config.merge_siblings;
        if k == 0 || self.clusters[ci].tokens.len() > MAX_SIBLING_TOKENS {
            return ci;
        }
        let mut cur = ci as u32;
        'again: loop {
            let n = self.clusters[cur as usize].tokens.len();
            for p in 0..n {
                // A position already a wildcard has no siblings to merge.
                if self.clusters[cur as usize].tokens[p] == WILDCARD_ID {
                    continue;
                }
                let sig = self.signature(cur, p);
                let Some(list) = self.siblings.get(&sig) else {
                    continue;
                };
                if list.len() < k {
                    continue;
                }
                // The signature is a hash: keep the clusters truly equal elsewhere.
                let mine = &self.clusters[cur as usize].tokens;
                let members: Vec<u32> = list
                    .iter()
                    .copied()
                    .filter(|&o| {
                        let t = &self.clusters[o as usize].tokens;
                        t.len() == n
                            && t.iter().zip(mine).enumerate().all(|(i, (&a, &b))| {
                                i == p
                                    || a == b
                                    || (self.token_shape_var[a as usize]
                                        && self.token_shape_var[b as usize])
                            })
                    })
                    .collect();
                if members.len() < k || !self.keeps_new_values(&members) {
                    continue;
                }
                cur = self.merge(&members, p);
                continue 'again;
            }
            return cur as usize;
        }
    }

    /// Whether the values of siblings look like a parameter's rather than an enumeration of
    /// constants: the Good–Turing estimate of the chance that the next line brings a value not
    /// seen yet (values seen once over lines seen) is at least [`NEW_VALUE_RATE`]. A parameter
    /// (user names, file names) keeps bringing new values; the states of a machine (`running`,
    /// `normal`, `blocked`) are seen again and again.
    fn keeps_new_values(&self, members: &[u32]) -> bool {
        let (mut once, mut lines) = (0u64, 0u64);
        for &m in members {
            // A template created by the line being parsed has no count yet.
            let c = self.clusters[m as usize].count.max(1);
            once += u64::from(c == 1);
            lines += c;
        }
        // What the siblings share: with no constant word besides the position, "equal
        // elsewhere" is no evidence (one-word messages are events, not values).
        let context = self.clusters[members[0] as usize]
            .tokens
            .iter()
            .filter(|&&t| !self.token_is_var[t as usize])
            .count()
            .saturating_sub(1);
        if context == 0 {
            return false;
        }
        let new_values = lines >= 2 * self.config.merge_siblings as u64
            && once as f64 >= NEW_VALUE_RATE * lines as f64;
        if context == 1 {
            // One shared word is weak evidence: ask for many values and new ones still coming.
            return members.len() >= MANY_VALUES && new_values;
        }
        members.len() >= MANY_VALUES || new_values
    }

    /// Merges `members` (sorted, live, equal but at position `p`) into the first: its token at
    /// `p` becomes the generalization of theirs, the others point to it.
    fn merge(&mut self, members: &[u32], p: usize) -> u32 {
        let root = members[0];
        // The members' words at `p` are values of a parameter: a line carrying one elsewhere
        // counts it as a variable token, not as a constant that tells templates apart.
        for &m in members {
            let t = self.clusters[m as usize].tokens[p];
            if !self.token_is_var[t as usize] {
                self.token_is_var[t as usize] = true;
                self.values.push(t);
            }
        }
        // The merged template: each position generalized over the members (position `p`, and
        // the variable-looking positions where they differ).
        let n = self.clusters[root as usize].tokens.len();
        let mut merged = self.clusters[root as usize].tokens.clone();
        for (i, tok) in merged.iter_mut().enumerate() {
            for &m in &members[1..] {
                let other = self.clusters[m as usize].tokens[i];
                if *tok != other && *tok != WILDCARD_ID {
                    *tok = self.generalize_tokens(*tok, other);
                }
            }
        }
        debug_assert_eq!(merged.len(), n);
        for &m in members {
            self.index_siblings(m, false);
            self.remove_from_leaf(m);
        }
        for &m in &members[1..] {
            self.set_live(m, false);
            self.fold_into(m, root);
        }
        self.clusters[root as usize].tokens = merged;
        self.texts[root as usize] = self.render(root as usize);
        let leaf = self.leaf_for_new(root as usize);
        self.nodes[leaf as usize].clusters.push(root);
        self.index_siblings(root, true);
        self.absorb_subsumed(root);
        root
    }

    /// Merges into live cluster `root` every other live cluster it subsumes (same token count,
    /// equal wherever `root` is not `<*>`): once a position is learned to be a parameter, the
    /// templates that differ from `root` only there are the same event. Returns whether any was.
    fn absorb_subsumed(&mut self, root: u32) -> bool {
        let r = &self.clusters[root as usize].tokens;
        if !r.contains(&WILDCARD_ID) {
            return false;
        }
        let subsumed: Vec<u32> = self.live_by_len[r.len()]
            .iter()
            .copied()
            .filter(|&c| {
                let o = &self.clusters[c as usize];
                c != root
                    && o.merged_into.is_none()
                    && o.tokens.len() == r.len()
                    && o.tokens.iter().zip(r).all(|(&a, &b)| self.covers(b, a))
            })
            .collect();
        if subsumed.is_empty() {
            return false;
        }
        for &m in &subsumed {
            self.index_siblings(m, false);
            self.remove_from_leaf(m);
            self.set_live(m, false);
            self.fold_into(m, root);
        }
        true
    }

    /// Folds the (no longer live) cluster `m` into `root`: its lines count there, its first and
    /// last sightings widen the root's, and it keeps only its id and where it went (memory
    /// follows the live templates).
    fn fold_into(&mut self, m: u32, root: u32) {
        let (count, first, last) = {
            let c = &self.clusters[m as usize];
            (c.count, c.first_seen, c.last_seen)
        };
        let c = &mut self.clusters[m as usize];
        c.merged_into = Some(root);
        c.count = 0;
        c.tokens = Vec::new();
        self.texts[m as usize] = String::new();
        let r = &mut self.clusters[root as usize];
        r.count += count;
        r.first_seen = match (r.first_seen, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        r.last_seen = match (r.last_seen, last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Counts cluster `ci` as live or not (its tokens must be in place).
    fn set_live(&mut self, ci: u32, live: bool) {
        let n = self.clusters[ci as usize].tokens.len();
        if self.live_by_len.len() <= n {
            self.live_by_len.resize_with(n + 1, Vec::new);
        }
        let list = &mut self.live_by_len[n];
        match (list.binary_search(&ci), live) {
            (Err(at), true) => {
                list.insert(at, ci);
                self.live += 1;
            }
            (Ok(at), false) => {
                list.remove(at);
                self.live -= 1;
            }
            _ => {}
        }
    }

    /// Whether template token `pattern` stands for token `tok`: equal, `<*>`, or a generalized
    /// token (`[<*>]`, `<*>,`) whose text around the wildcard `tok` has too.
    fn covers(&self, pattern: u32, tok: u32) -> bool {
        if pattern == tok || pattern == WILDCARD_ID {
            return true;
        }
        let (p, t) = (&self.tokens[pattern as usize], &self.tokens[tok as usize]);
        match p.split_once(WILDCARD) {
            Some((pre, post)) if !post.contains(WILDCARD) => {
                t.len() > pre.len() + post.len() && t.starts_with(pre) && t.ends_with(post)
            }
            _ => false,
        }
    }

    /// Takes cluster `ci` out of the leaf that holds it.
    fn remove_from_leaf(&mut self, ci: u32) {
        let tokens = self.clusters[ci as usize].tokens.clone();
        let Some(&start) = self.by_len.get(tokens.len()) else {
            return;
        };
        if start == NONE {
            return;
        }
        let layers = (self.config.depth - 2).min(tokens.len());
        // The leaf is the one `leaf_for_new` chose: follow the same rule without creating nodes.
        let mut node = start;
        for &tok in &tokens[..layers] {
            let n = &self.nodes[node as usize];
            node = match self.child_index.get(&(node, tok)) {
                Some(&c) => c,
                None => match n.wildcard {
                    Some(w) => w,
                    None => return,
                },
            };
        }
        let list = &mut self.nodes[node as usize].clusters;
        if let Some(at) = list.iter().position(|&c| c == ci) {
            list.remove(at);
        }
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
            values: &self.values,
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
        d.token_shape_var.clear();
        for (i, t) in state.tokens.iter().enumerate() {
            if d.intern(t) as usize != i {
                return bad(format!("token {i} ({t:?}) is a duplicate"));
            }
        }
        let nt = d.tokens.len();
        for &v in &state.values {
            match d.token_is_var.get_mut(v as usize) {
                Some(var) => *var = true,
                None => return bad(format!("learned value {v} is not a token of {nt}")),
            }
        }
        d.values = state.values;
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
        for i in 0..nc {
            match d.clusters[i].merged_into {
                None => {
                    d.set_live(i as u32, true);
                    d.index_siblings(i as u32, true);
                }
                Some(j) if j as usize >= nc || j as usize == i => {
                    return bad(format!("template {i} is merged into {j}, out of range"));
                }
                Some(_) => {}
            }
        }
        // Every chain of merges must end at a live template within `nc` steps: a cycle would
        // make `resolve` loop for ever.
        for i in 0..nc {
            let mut at = i;
            let mut steps = 0usize;
            while let Some(j) = d.clusters[at].merged_into {
                at = j as usize;
                steps += 1;
                if steps > nc {
                    return bad(format!("template {i} is merged in a cycle"));
                }
            }
        }
        Ok(d)
    }
}

/// A bracketed, comma-separated list starting with the token `content[start..end]` (`[a,`
/// … `c]`, `(x,` … `y)`, at most [`MAX_LIST`] tokens): its end, after writing its masked
/// form to `out` — `[<*>]` when every element masks to a placeholder, else the elements as
/// written (a varying list is then learned as a parameter like any varying token). Whether
/// it was masked.
fn list_token(
    class: &[u8; 256],
    masker: &Masker,
    content: &str,
    start: usize,
    end: usize,
    out: &mut String,
) -> Option<(usize, bool)> {
    let b = content.as_bytes();
    let close = match b[start] {
        b'[' => b']',
        b'(' => b')',
        _ => return None,
    };
    let first = &b[start..end];
    if first.len() < 2 || first[first.len() - 1] != b',' || first.contains(&close) {
        return None;
    }
    // Find the token that closes the list.
    let mut i = end;
    let mut tokens = 1;
    let stop = loop {
        while i < b.len() && class[b[i] as usize] == mask::DELIM {
            i += 1;
        }
        let s = i;
        while i < b.len() && class[b[i] as usize] != mask::DELIM {
            i += 1;
        }
        if s == i || tokens >= MAX_LIST {
            return None;
        }
        tokens += 1;
        let t = &b[s..i];
        if t.contains(&close) {
            break i;
        }
        if t.last() != Some(&b',') {
            return None;
        }
    };
    // Mask each element; the list is one placeholder when all of them are.
    let m0 = out.len();
    let mut all = true;
    let inner = &content[start + 1..stop];
    let inner = inner.trim_end_matches(|c: char| c != char::from(close));
    let inner = inner.strip_suffix(char::from(close)).unwrap_or(inner);
    let tail = &content[start + 1 + inner.len()..stop];
    for el in inner.split(',') {
        let el = el.trim_matches(|c: char| c.is_ascii_whitespace());
        let flags = el.bytes().fold(0, |f, c| f | mask::CLASS[c as usize]);
        let e0 = out.len();
        let m = masker.mask_token(el, flags, out);
        out.truncate(e0);
        all &= m.whole.is_some();
    }
    out.truncate(m0);
    if all {
        out.push(char::from(b[start]));
        out.push_str(WILDCARD);
        out.push_str(tail);
    } else {
        out.push_str(&content[start..stop]);
    }
    Some((stop, all))
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
        // Classic Drain: sibling merging off, a differing word generalizes at once.
        let mut d = Drain::new(DrainConfig {
            similarity_threshold: 0.5,
            merge_siblings: 0,
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
