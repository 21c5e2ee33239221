//! The running policy: [`Masker`] masks one text ([`Masker::mask_text`]) or one label value
//! ([`Masker::mask_entry`]); `batch.rs` applies it column-wise.
//!
//! A text is first checked by the pre-filter — one Aho-Corasick pass over the trigger words,
//! one pass over its digits, the user patterns' `RegexSet` — and returned untouched, without
//! allocation, when nothing can match. Otherwise every triggered detector reports spans; the
//! earliest (then longest, then higher-priority) span wins where spans overlap; spans inside a
//! marker already written (`[MASKED:rule]`, `[rule:hex]`) are ignored. Masking repeats until
//! nothing changes, which makes it idempotent: masking a masked text changes nothing.

use super::detect::{self, DigitRules, Patterns, Span, id};
use super::settings::{Action, BUILTINS, MaskingSettings};
use aho_corasick::AhoCorasick;
use hmac::{Hmac, Mac};
use regex::{Regex, RegexSet};
use sha2::Sha256;

/// Why a [`Masker`] could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum MaskingError {
    /// The `[masking]` settings are invalid; the operator must fix the configuration. Every
    /// problem is listed, each naming its key or rule.
    #[error("invalid [masking] settings: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A built-in pattern or the pre-filter failed to build: a bug in aiops, not in the
    /// configuration.
    #[error("internal error building the masking detectors (a bug): {0}")]
    Internal(String),
}

/// Passes of masking at most over one text; each pass that changes something turns unmasked
/// bytes into markers, so the fixpoint is reached in one or two passes in practice.
const MAX_PASSES: usize = 8;

/// One rule of the running policy (built-in or user), its marker name and action.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule name (`secret`, `card`, a user rule's name).
    pub name: String,
    /// What it does with a match.
    pub action: Action,
    /// Whether it runs (built-ins may be off; user rules always run).
    pub enabled: bool,
}

/// What masking did to one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Masked<'a> {
    /// Nothing matched: the value as it was (no allocation).
    Unchanged(&'a str),
    /// Something matched: the value with markers in place of what matched.
    Changed(String),
    /// A `drop` rule matched: the value (entry, or record for a body) must not be stored.
    Drop,
}

impl Masked<'_> {
    /// The text to store, or `None` for [`Masked::Drop`].
    pub fn text(&self) -> Option<&str> {
        match self {
            Masked::Unchanged(s) => Some(s),
            Masked::Changed(s) => Some(s),
            Masked::Drop => None,
        }
    }
}

/// Matches per rule, and what was dropped, for one call or one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskStats {
    /// Matches per rule id ([`Masker::rules`] order); empty until something matched.
    pub matches: Vec<u64>,
    /// Records (log lines, events) removed by a `drop` rule.
    pub dropped_records: u64,
    /// Label or attribute entries removed by a `drop` rule.
    pub dropped_entries: u64,
}

impl MaskStats {
    fn count(&mut self, rule: usize, rules: usize) {
        if self.matches.len() < rules {
            self.matches.resize(rules, 0);
        }
        self.matches[rule] += 1;
    }

    /// Whether anything matched.
    pub fn any(&self) -> bool {
        self.matches.iter().any(|n| *n > 0) || self.dropped_records > 0 || self.dropped_entries > 0
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &MaskStats) {
        if self.matches.len() < other.matches.len() {
            self.matches.resize(other.matches.len(), 0);
        }
        for (a, b) in self.matches.iter_mut().zip(&other.matches) {
            *a += b;
        }
        self.dropped_records += other.dropped_records;
        self.dropped_entries += other.dropped_entries;
    }
}

/// The masking policy built from [`MaskingSettings`]: immutable, shared by every ingest call.
pub struct Masker {
    enabled: bool,
    rules: Vec<Rule>,
    /// Trigger words; pattern id → bit set of built-in rule ids it may start.
    triggers: Option<AhoCorasick>,
    trigger_rules: Vec<u32>,
    digits: DigitRules,
    kv: Regex,
    extra_keys: Vec<String>,
    patterns: Patterns,
    user: Vec<Regex>,
    user_set: Option<RegexSet>,
    markers: Regex,
    hash_key: Option<Vec<u8>>,
    hash_length: usize,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("enabled", &self.enabled)
            .field("rules", &self.rules)
            .field("hash_key", &self.hash_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> MaskingError {
    MaskingError::Internal(e.to_string())
}

impl Masker {
    /// Builds the policy. `hash_key` is the HMAC key read from `hash_key`, `hash_key_env` or
    /// `hash_key_file` by the caller (this module does no I/O).
    ///
    /// # Errors
    /// [`MaskingError::Invalid`] listing every problem of the settings (a bad user pattern names
    /// its rule; a `hash` action without a key says which keys to set);
    /// [`MaskingError::Internal`] if a built-in pattern fails (a bug).
    pub fn new(
        settings: &MaskingSettings,
        hash_key: Option<&[u8]>,
    ) -> Result<Masker, MaskingError> {
        let mut problems = settings.problems();
        if settings.uses_hash() && hash_key.is_none_or(<[u8]>::is_empty) {
            problems.push(
                "masking: a rule uses action \"hash\" but the hash key is empty or unset"
                    .to_string(),
            );
        }
        if !problems.is_empty() {
            problems.dedup();
            return Err(MaskingError::Invalid(problems));
        }
        let mut rules: Vec<Rule> = BUILTINS
            .iter()
            .map(|b| Rule {
                name: b.name.to_string(),
                action: settings.builtin_action(b.name),
                enabled: settings.builtin_enabled(b),
            })
            .collect();
        let on = |i: usize| rules[i].enabled;
        let extra_keys: Vec<String> = settings
            .sensitive_keys
            .iter()
            .map(|k| detect::normalized_key(k))
            .collect();
        // Trigger words → the built-in rules they may start.
        let mut words: Vec<(String, u32)> = Vec::new();
        let bit = |i: usize| 1u32 << i;
        if on(id::SECRET) {
            for w in detect::SECRET_TRIGGERS {
                words.push(((*w).to_string(), bit(id::SECRET)));
            }
            for k in &settings.sensitive_keys {
                words.push((detect::trigger_word(k), bit(id::SECRET)));
            }
        }
        let fixed: [(&str, usize); 16] = [
            ("bearer", id::BEARER),
            ("basic", id::BEARER),
            ("akia", id::AWS_ACCESS_KEY),
            ("asia", id::AWS_ACCESS_KEY),
            ("aws", id::AWS_SECRET_KEY),
            ("ghp_", id::GITHUB_TOKEN),
            ("gho_", id::GITHUB_TOKEN),
            ("ghu_", id::GITHUB_TOKEN),
            ("ghs_", id::GITHUB_TOKEN),
            ("ghr_", id::GITHUB_TOKEN),
            ("github_pat_", id::GITHUB_TOKEN),
            ("xox", id::SLACK_TOKEN),
            ("aiza", id::GOOGLE_API_KEY),
            ("-----begin", id::PRIVATE_KEY),
            ("://", id::URL_PASSWORD),
            ("@", id::EMAIL),
        ];
        for (w, r) in fixed {
            if on(r) {
                words.push((w.to_string(), bit(r)));
            }
        }
        let triggers = if words.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(words.iter().map(|(w, _)| w.as_str()))
                    .map_err(internal)?,
            )
        };
        let trigger_rules = words.iter().map(|(_, b)| *b).collect();
        let digits = DigitRules {
            card: on(id::CARD),
            phone: on(id::PHONE),
            cn_mobile: on(id::CN_MOBILE),
            cn_id: on(id::CN_ID),
        };
        let mut user = Vec::new();
        for r in &settings.rules {
            // Validated by `problems()` above.
            user.push(detect::user_regex(&r.pattern).map_err(internal)?);
            rules.push(Rule {
                name: r.name.clone(),
                action: r.action,
                enabled: true,
            });
        }
        let user_set = if user.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(settings.rules.iter().map(|r| r.pattern.as_str()))
                    .map_err(internal)?,
            )
        };
        let markers = Regex::new(&format!(
            r"\[(?:MASKED:[a-z][a-z0-9_]*|[a-z][a-z0-9_]*:[0-9a-f]{{{}}})\]",
            settings.hash_length
        ))
        .map_err(internal)?;
        Ok(Masker {
            enabled: settings.enabled,
            rules,
            triggers,
            trigger_rules,
            digits,
            kv: detect::kv_regex(&extra_keys).map_err(internal)?,
            extra_keys,
            patterns: Patterns::new().map_err(internal)?,
            user,
            user_set,
            markers,
            hash_key: hash_key.map(<[u8]>::to_vec),
            hash_length: settings.hash_length,
        })
    }

    /// A policy that masks nothing (`enabled = false`).
    pub fn disabled() -> Result<Masker, MaskingError> {
        Masker::new(
            &MaskingSettings {
                enabled: false,
                ..MaskingSettings::default()
            },
            None,
        )
    }

    /// Whether masking is on at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Every rule, built-in first then user rules; rule ids in [`MaskStats::matches`] index it.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The names of the rules that run (for counters that start at zero).
    pub fn active_rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .filter(|r| self.enabled && r.enabled)
            .map(|r| r.name.as_str())
    }

    /// Masks one text (a log body, an event message, a label value under a harmless key).
    pub fn mask_text<'a>(&self, text: &'a str, stats: &mut MaskStats) -> Masked<'a> {
        if !self.enabled {
            return Masked::Unchanged(text);
        }
        let mut current: Option<String> = None;
        for _ in 0..MAX_PASSES {
            let t = current.as_deref().unwrap_or(text);
            match self.pass(t, stats) {
                Pass::Unchanged => break,
                Pass::Drop => return Masked::Drop,
                Pass::Changed(next) => current = Some(next),
            }
        }
        match current {
            Some(s) => Masked::Changed(s),
            None => Masked::Unchanged(text),
        }
    }

    /// Masks one label or attribute value: the whole value when its key is sensitive
    /// (`password`, `x-api-key`, a configured key), else as a text.
    pub fn mask_entry<'a>(&self, key: &str, value: &'a str, stats: &mut MaskStats) -> Masked<'a> {
        if !self.enabled {
            return Masked::Unchanged(value);
        }
        if self.rules[id::SECRET].enabled
            && !value.is_empty()
            && self.key_triggers(key)
            && detect::key_is_sensitive(key, &self.extra_keys)
            && !self.is_marker(value)
        {
            stats.count(id::SECRET, self.rules.len());
            return match self.rules[id::SECRET].action {
                Action::Drop => Masked::Drop,
                action => Masked::Changed(self.marker(id::SECRET, action, value)),
            };
        }
        self.mask_text(value, stats)
    }

    /// Whether anything in a whole map column may match, from its contiguous key and value
    /// buffers: `false` means no entry can change, so the column is skipped without looking at
    /// entries one by one. Conservative: joining values can only add triggers, never hide one
    /// (every built-in detector needs a trigger word or a long digit run inside the value);
    /// user patterns may be anchored, so with user rules this always answers `true`.
    pub(crate) fn column_may_match(&self, keys: &[u8], values: &[u8]) -> bool {
        if !self.enabled || !self.user.is_empty() {
            return self.enabled;
        }
        if let Some(ac) = &self.triggers {
            if ac.find(values).is_some() {
                return true;
            }
            if self.rules[id::SECRET].enabled
                && ac
                    .find_iter(keys)
                    .any(|m| self.trigger_rules[m.pattern().as_usize()] & (1 << id::SECRET) != 0)
            {
                return true;
            }
        }
        self.digits.any() && detect::long_digit_run(values, self.digits.min_digits())
    }

    /// Whether a key contains a secret trigger word at all (cheap gate before the suffix test).
    fn key_triggers(&self, key: &str) -> bool {
        let Some(ac) = &self.triggers else {
            return false;
        };
        ac.find_iter(key)
            .any(|m| self.trigger_rules[m.pattern().as_usize()] & (1 << id::SECRET) != 0)
    }

    /// Whether `value` is exactly one marker this policy writes.
    fn is_marker(&self, value: &str) -> bool {
        self.markers
            .find(value)
            .is_some_and(|m| m.start() == 0 && m.end() == value.len())
    }

    /// The marker that replaces `value` under `rule`.
    fn marker(&self, rule: usize, action: Action, value: &str) -> String {
        let name = &self.rules[rule].name;
        match (action, &self.hash_key) {
            (Action::Hash, Some(key)) => {
                // HMAC accepts keys of any length, so this cannot fail.
                let digest = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
                    Ok(mut mac) => {
                        mac.update(value.as_bytes());
                        hex::encode(mac.finalize().into_bytes())
                    }
                    Err(_) => return format!("[MASKED:{name}]"),
                };
                format!("[{name}:{}]", &digest[..self.hash_length.min(digest.len())])
            }
            _ => format!("[MASKED:{name}]"),
        }
    }

    /// Which built-in rules the trigger words switch on in `text` (bit set).
    fn triggered(&self, text: &str) -> u32 {
        let Some(ac) = &self.triggers else {
            return 0;
        };
        let mut bits = 0;
        for m in ac.find_iter(text) {
            bits |= self.trigger_rules[m.pattern().as_usize()];
        }
        bits
    }

    /// One pass: find spans, resolve overlaps, rewrite.
    fn pass(&self, text: &str, stats: &mut MaskStats) -> Pass {
        let bits = self.triggered(text);
        let mut spans: Vec<Span> = Vec::new();
        if self.digits.any() {
            detect::scan_digits(text, self.digits, &mut spans);
        }
        let user_hits = match &self.user_set {
            Some(set) => {
                let m = set.matches(text);
                m.matched_any().then_some(m)
            }
            None => None,
        };
        if bits == 0 && spans.is_empty() && user_hits.is_none() {
            return Pass::Unchanged;
        }
        self.regex_spans(text, bits, &mut spans);
        if let Some(hits) = user_hits {
            for i in hits.iter() {
                let re = &self.user[i];
                let rule = BUILTINS.len() + i;
                for c in re.captures_iter(text) {
                    let m = c.name("value").or_else(|| c.get(0));
                    if let Some(m) = m.filter(|m| !m.is_empty()) {
                        spans.push(Span {
                            start: m.start(),
                            end: m.end(),
                            rule,
                            quote: false,
                        });
                    }
                }
            }
        }
        if spans.is_empty() {
            return Pass::Unchanged;
        }
        // Markers already written are never masked again (idempotence).
        let markers: Vec<(usize, usize)> = if text.contains('[') {
            self.markers
                .find_iter(text)
                .map(|m| (m.start(), m.end()))
                .collect()
        } else {
            Vec::new()
        };
        spans.retain(|s| !markers.iter().any(|(a, b)| s.start < *b && *a < s.end));
        if spans.is_empty() {
            return Pass::Unchanged;
        }
        // Leftmost wins; at the same start the higher-priority rule (a secret's value over the
        // private key it holds, a URL password over the email-like `pw@host`), then the longer.
        spans.sort_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(a.rule.cmp(&b.rule))
                .then(b.end.cmp(&a.end))
        });
        let mut out = String::with_capacity(text.len() + 16);
        let mut at = 0;
        for s in &spans {
            if s.start < at {
                continue;
            }
            let rule = &self.rules[s.rule];
            stats.count(s.rule, self.rules.len());
            if rule.action == Action::Drop {
                return Pass::Drop;
            }
            out.push_str(&text[at..s.start]);
            let m = self.marker(s.rule, rule.action, &text[s.start..s.end]);
            if s.quote {
                out.push('"');
                out.push_str(&m);
                out.push('"');
            } else {
                out.push_str(&m);
            }
            at = s.end;
        }
        out.push_str(&text[at..]);
        if out == text {
            Pass::Unchanged
        } else {
            Pass::Changed(out)
        }
    }

    /// Spans of the regular-expression detectors switched on by `bits`.
    fn regex_spans(&self, text: &str, bits: u32, spans: &mut Vec<Span>) {
        let on = |r: usize| bits & (1 << r) != 0;
        let push = |spans: &mut Vec<Span>, m: regex::Match<'_>, rule: usize| {
            spans.push(Span {
                start: m.start(),
                end: m.end(),
                rule,
                quote: false,
            });
        };
        let p = &self.patterns;
        if on(id::SECRET) {
            for c in self.kv.captures_iter(text) {
                let (Some(key), Some(all)) = (c.name("key"), c.get(0)) else {
                    continue;
                };
                if !detect::key_is_sensitive(key.as_str(), &self.extra_keys) {
                    continue;
                }
                let key_quoted = c.name("q").is_some_and(|q| q.as_str().contains('"'));
                // `auth:SIMPLE` (Hadoop's auth method) names a mechanism; `auth=` and
                // `"auth": "…"` still hide their value.
                if !key_quoted
                    && c.name("sep").is_some_and(|m| m.as_str() == ":")
                    && detect::norm_eq(key.as_str(), "auth")
                {
                    continue;
                }
                if let Some((start, end, quote)) = detect::kv_value(text, all.end(), key_quoted) {
                    spans.push(Span {
                        start,
                        end,
                        rule: id::SECRET,
                        quote,
                    });
                }
            }
        }
        if on(id::BEARER) {
            for c in p.bearer.captures_iter(text) {
                if let (Some(scheme), Some(v)) = (c.name("scheme"), c.name("v"))
                    && detect::credential_ok(scheme.as_str(), v.as_str())
                {
                    push(spans, v, id::BEARER);
                }
            }
        }
        if on(id::AWS_ACCESS_KEY) {
            for m in p.aws_access_key.find_iter(text) {
                push(spans, m, id::AWS_ACCESS_KEY);
            }
        }
        if on(id::AWS_SECRET_KEY) {
            for c in p.aws_secret_key.captures_iter(text) {
                if let Some(v) = c.name("v").filter(|v| detect::mixed_case(v.as_str())) {
                    push(spans, v, id::AWS_SECRET_KEY);
                }
            }
        }
        for (rule, re) in [
            (id::GITHUB_TOKEN, &p.github_token),
            (id::SLACK_TOKEN, &p.slack_token),
            (id::GOOGLE_API_KEY, &p.google_api_key),
            (id::PRIVATE_KEY, &p.private_key),
            (id::EMAIL, &p.email),
        ] {
            if on(rule) {
                for m in re.find_iter(text) {
                    push(spans, m, rule);
                }
            }
        }
        if on(id::URL_PASSWORD) {
            for c in p.url_password.captures_iter(text) {
                if let Some(v) = c.name("v") {
                    push(spans, v, id::URL_PASSWORD);
                }
            }
        }
    }
}

/// What one pass did.
enum Pass {
    Unchanged,
    Changed(String),
    Drop,
}
