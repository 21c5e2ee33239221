//! `[masking]`: which detectors run, what they do with a match, user rules, the hash key's source.
//!
//! Settings are data (deserialized from the configuration, checked by
//! [`MaskingSettings::problems`]); [`Masker::new`](super::Masker::new) builds the running policy
//! from them. Reading the hash key from the environment or a file is left to the caller (this
//! module does no I/O).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a rule does with what it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Replace the sensitive value with `[MASKED:<rule>]`; the key of a `key=value` pair stays.
    #[default]
    Replace,
    /// Replace it with `[<rule>:<hex>]`, a keyed HMAC-SHA256 of the value truncated to
    /// `hash_length` hex digits: equal values still group, the value cannot be read back.
    Hash,
    /// Remove it entirely: the entry of a label or attribute map, or — for a log body or an
    /// event message — the whole record.
    Drop,
}

impl Action {
    /// The action's name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Hash => "hash",
            Action::Drop => "drop",
        }
    }
}

/// Which built-in detectors a group switch turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Passwords and tokens in `key=value`/JSON, sensitive keys, bearer/basic credentials, cloud
    /// and SaaS tokens, private keys, passwords in URLs. On by default.
    Secrets,
    /// Payment card numbers (Luhn-checked). On by default.
    Cards,
    /// Emails, phone numbers, Chinese mobile and resident ID numbers. Off by default.
    Pii,
}

/// A built-in detector: its rule name (used in markers and counters), group and description.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The rule name, e.g. `secret`, `card`, `email`.
    pub name: &'static str,
    /// The group switch that enables it.
    pub group: Group,
    /// What it matches, for the documentation.
    pub doc: &'static str,
}

/// Every built-in detector, in priority order (an earlier one wins a tie on the same span).
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "secret",
        group: Group::Secrets,
        doc: "the value after a sensitive key (password, passwd, pwd, secret, token, api_key, \
              access_key, auth, authorization, credential(s), private_key, …) in key=value, \
              key: value and JSON; the value of a label or attribute with such a key",
    },
    Builtin {
        name: "bearer",
        group: Group::Secrets,
        doc: "the credential after `Bearer` or `Basic` (Basic only when it decodes to user:password)",
    },
    Builtin {
        name: "aws_access_key",
        group: Group::Secrets,
        doc: "AWS access key ids (AKIA…, ASIA… + 16 characters)",
    },
    Builtin {
        name: "aws_secret_key",
        group: Group::Secrets,
        doc: "a 40-character mixed-case base64 value shortly after `aws`",
    },
    Builtin {
        name: "github_token",
        group: Group::Secrets,
        doc: "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
    },
    Builtin {
        name: "slack_token",
        group: Group::Secrets,
        doc: "Slack tokens (xoxb-, xoxa-, xoxp-, xoxr-, xoxs-)",
    },
    Builtin {
        name: "google_api_key",
        group: Group::Secrets,
        doc: "Google / GCP API keys (AIza + 35 characters)",
    },
    Builtin {
        name: "private_key",
        group: Group::Secrets,
        doc: "PEM private key blocks (-----BEGIN … PRIVATE KEY----- to its END line, or to the end)",
    },
    Builtin {
        name: "url_password",
        group: Group::Secrets,
        doc: "the password of a URL's user info (scheme://user:password@host)",
    },
    Builtin {
        name: "card",
        group: Group::Cards,
        doc: "payment card numbers: 13–19 digits (spaces or dashes between groups), first digit \
              2–6, valid Luhn check digit",
    },
    Builtin {
        name: "email",
        group: Group::Pii,
        doc: "email addresses",
    },
    Builtin {
        name: "phone",
        group: Group::Pii,
        doc: "E.164 phone numbers: + then 8–15 digits (spaces or dashes allowed)",
    },
    Builtin {
        name: "cn_mobile",
        group: Group::Pii,
        doc: "Chinese mobile numbers: 11 digits 1[3-9]…, optionally written 3-4-4",
    },
    Builtin {
        name: "cn_id",
        group: Group::Pii,
        doc: "Chinese resident ID numbers: 18 characters with a valid birth date and ISO 7064 \
              MOD 11-2 check character",
    },
];

/// The index of a built-in detector by name.
pub fn builtin_index(name: &str) -> Option<usize> {
    BUILTINS.iter().position(|b| b.name == name)
}

/// One user rule: `[[masking.rules]] name, pattern, action`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// The rule name: lower-case letters, digits and `_`, starting with a letter; shown in the
    /// marker (`[MASKED:<name>]`) and the counter. Must not be a built-in detector's name.
    pub name: String,
    /// A regular expression (Rust `regex` syntax). The whole match is masked, or only the
    /// capture group named `value` when the pattern has one (to keep context such as a key).
    pub pattern: String,
    /// What to do with a match. Default `replace`.
    #[serde(default)]
    pub action: Action,
}

/// `[masking]`: sensitive values in log bodies, labels and attributes of every kind, masked at
/// ingest before anything is appended to the log.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskingSettings {
    /// Masking at all. Default true; `false` stores what arrives as it arrived.
    pub enabled: bool,
    /// The secret detectors (passwords and tokens in key=value/JSON, bearer tokens, cloud keys,
    /// private keys, passwords in URLs). Default true.
    pub secrets: bool,
    /// Payment card numbers with a Luhn check. Default true.
    pub cards: bool,
    /// Personal data: emails, phone numbers, Chinese mobile and resident ID numbers. Default false.
    pub pii: bool,
    /// The exact list of built-in detectors to run, by name; when set, `secrets`, `cards` and
    /// `pii` are ignored. Default unset.
    pub detectors: Option<Vec<String>>,
    /// The action per built-in detector, e.g. `{ email = "hash", card = "drop" }`. Detectors not
    /// listed replace.
    pub actions: BTreeMap<String, Action>,
    /// More key names whose values are secrets (matched case-insensitively, ignoring `_`, `-`
    /// and `.`), in key=value text, JSON and label or attribute maps; counted as `secret`.
    pub sensitive_keys: Vec<String>,
    /// The HMAC key of the `hash` action, inline (prefer `hash_key_env` or `hash_key_file`).
    pub hash_key: Option<String>,
    /// The environment variable that holds the HMAC key of the `hash` action.
    pub hash_key_env: Option<String>,
    /// A file that holds the HMAC key of the `hash` action (trailing newline ignored).
    pub hash_key_file: Option<PathBuf>,
    /// Hex digits kept of a hash (8..=64). Default 12.
    pub hash_length: usize,
    /// User rules, applied after the built-in detectors win their spans.
    pub rules: Vec<RuleSettings>,
}

impl Default for MaskingSettings {
    fn default() -> Self {
        MaskingSettings {
            enabled: true,
            secrets: true,
            cards: true,
            pii: false,
            detectors: None,
            actions: BTreeMap::new(),
            sensitive_keys: Vec::new(),
            hash_key: None,
            hash_key_env: None,
            hash_key_file: None,
            hash_length: 12,
            rules: Vec::new(),
        }
    }
}

/// The inline key is a secret: never printed.
impl std::fmt::Debug for MaskingSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskingSettings")
            .field("enabled", &self.enabled)
            .field("secrets", &self.secrets)
            .field("cards", &self.cards)
            .field("pii", &self.pii)
            .field("detectors", &self.detectors)
            .field("actions", &self.actions)
            .field("sensitive_keys", &self.sensitive_keys)
            .field("hash_key", &self.hash_key.as_ref().map(|_| "<redacted>"))
            .field("hash_key_env", &self.hash_key_env)
            .field("hash_key_file", &self.hash_key_file)
            .field("hash_length", &self.hash_length)
            .field("rules", &self.rules)
            .finish()
    }
}

/// Whether a rule name is acceptable: `[a-z][a-z0-9_]{0,63}` (markers must stay recognisable).
pub(crate) fn valid_rule_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

impl MaskingSettings {
    /// Whether built-in detector `b` runs under these settings.
    pub fn builtin_enabled(&self, b: &Builtin) -> bool {
        if !self.enabled {
            return false;
        }
        match &self.detectors {
            Some(list) => list.iter().any(|n| n == b.name),
            None => match b.group {
                Group::Secrets => self.secrets,
                Group::Cards => self.cards,
                Group::Pii => self.pii,
            },
        }
    }

    /// The action of built-in detector `name`.
    pub fn builtin_action(&self, name: &str) -> Action {
        self.actions.get(name).copied().unwrap_or_default()
    }

    /// Whether any enabled rule hashes (then a key must be configured).
    pub fn uses_hash(&self) -> bool {
        self.enabled
            && (BUILTINS
                .iter()
                .any(|b| self.builtin_enabled(b) && self.builtin_action(b.name) == Action::Hash)
                || self.rules.iter().any(|r| r.action == Action::Hash))
    }

    /// Every problem of these settings at once, each naming the key (`masking.rules[2]` …);
    /// none means [`Masker::new`](super::Masker::new) succeeds given a key when
    /// [`uses_hash`](Self::uses_hash).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for n in self.detectors.iter().flatten() {
            if builtin_index(n).is_none() {
                problems.push(format!(
                    "masking.detectors: unknown detector {n:?} (known: {})",
                    known_names()
                ));
            }
        }
        for n in self.actions.keys() {
            if builtin_index(n).is_none() {
                problems.push(format!(
                    "masking.actions: unknown detector {n:?} (known: {}; user rules set `action` \
                     in their [[masking.rules]] entry)",
                    known_names()
                ));
            }
        }
        for k in &self.sensitive_keys {
            if super::detect::normalized_key(k).is_empty() {
                problems.push(format!(
                    "masking.sensitive_keys: {k:?} has no letter or digit"
                ));
            }
        }
        if !(8..=64).contains(&self.hash_length) {
            problems.push(format!(
                "masking.hash_length = {} (must be 8..=64)",
                self.hash_length
            ));
        }
        let sources = [
            self.hash_key.is_some(),
            self.hash_key_env.is_some(),
            self.hash_key_file.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if sources > 1 {
            problems
                .push("masking: set only one of hash_key, hash_key_env, hash_key_file".to_string());
        }
        if self.uses_hash() && sources == 0 {
            problems.push(
                "masking: a rule uses action \"hash\" but no key is set (hash_key_env or \
                 hash_key_file)"
                    .to_string(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let at = format!("masking.rules[{i}] ({:?})", r.name);
            if !valid_rule_name(&r.name) {
                problems.push(format!(
                    "{at}: name must be lower-case letters, digits and _, starting with a letter \
                     (at most 64)"
                ));
            } else if builtin_index(&r.name).is_some() {
                problems.push(format!("{at}: name is a built-in detector's name"));
            } else if !seen.insert(r.name.as_str()) {
                problems.push(format!("{at}: name is used by an earlier rule"));
            }
            match super::detect::user_regex(&r.pattern) {
                Ok(re) => {
                    if re.is_match("") {
                        problems.push(format!(
                            "{at}: pattern {:?} matches the empty string",
                            r.pattern
                        ));
                    }
                }
                Err(e) => problems.push(format!("{at}: bad pattern: {e}")),
            }
        }
        problems
    }
}

fn known_names() -> String {
    BUILTINS
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ")
}
