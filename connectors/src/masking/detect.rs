//! The built-in detectors: trigger words for the pre-filter, the regular expressions, the
//! digit-run scanner (cards, phones, Chinese mobile and ID numbers) and their checksums.
//!
//! Every detector reports [`Span`]s of the *sensitive value* only (the key of `password=…`
//! stays), as byte offsets on `char` boundaries.

use regex::Regex;

/// Rule ids of the built-in detectors: their index in [`super::settings::BUILTINS`].
pub(crate) mod id {
    pub const SECRET: usize = 0;
    pub const BEARER: usize = 1;
    pub const AWS_ACCESS_KEY: usize = 2;
    pub const AWS_SECRET_KEY: usize = 3;
    pub const GITHUB_TOKEN: usize = 4;
    pub const SLACK_TOKEN: usize = 5;
    pub const GOOGLE_API_KEY: usize = 6;
    pub const PRIVATE_KEY: usize = 7;
    pub const URL_PASSWORD: usize = 8;
    pub const CARD: usize = 9;
    pub const EMAIL: usize = 10;
    pub const PHONE: usize = 11;
    pub const CN_MOBILE: usize = 12;
    pub const CN_ID: usize = 13;
}

/// A sensitive value found in a text: bytes `start..end`, the rule that found it, and whether
/// its replacement must be quoted (an unquoted JSON value after a quoted key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub rule: usize,
    pub quote: bool,
}

/// Key words whose presence (ASCII case-insensitive) may start a secret: the suffixes a
/// sensitive key ends with, with their common spellings.
pub(crate) const SECRET_TRIGGERS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "auth",
    "credential",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "accesskey",
    "access-key",
    "private_key",
    "privatekey",
    "private-key",
];

/// The trigger word of a configured key: its longest part between `_`, `-`, `.` and
/// lower-to-upper case changes, lower-cased (`sessionId` and `session_id` → `session`).
pub(crate) fn trigger_word(key: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        let boundary = matches!(c, '_' | '-' | '.') || (prev_lower && c.is_uppercase());
        if boundary && !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
        }
        if !matches!(c, '_' | '-' | '.') {
            cur.extend(c.to_lowercase());
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    parts.push(cur);
    parts
        .into_iter()
        .max_by_key(|p| p.chars().count())
        .unwrap_or_default()
}

/// Normalised key suffixes (lower case, without `_`, `-`, `.`) that make a key sensitive.
const SENSITIVE_SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "privatekey",
];

/// Normalised keys that are sensitive only as a whole (`pass=`, but not `bypass=`).
const SENSITIVE_EXACT: &[&str] = &["pass", "pw"];

/// A key lower-cased without `_`, `-` and `.` (for configured names; not on the hot path).
pub(crate) fn normalized_key(k: &str) -> String {
    k.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The key's bytes from the end, lower-cased, without `_`, `-` and `.`; no allocation.
fn norm_rev(key: &str) -> impl Iterator<Item = u8> + '_ {
    key.bytes()
        .rev()
        .filter(|b| !matches!(b, b'_' | b'-' | b'.'))
        .map(|b| b.to_ascii_lowercase())
}

/// Whether the normalised key ends with `suffix` (already normalised, ASCII).
fn norm_ends_with(key: &str, suffix: &str) -> bool {
    let mut it = norm_rev(key);
    suffix.bytes().rev().all(|s| it.next() == Some(s))
}

/// Whether the normalised key equals `word` (already normalised, ASCII).
pub(crate) fn norm_eq(key: &str, word: &str) -> bool {
    norm_rev(key).eq(word.bytes().rev())
}

/// Whether values under `key` are secrets: it ends with a sensitive word, is `pass`/`pw`, or
/// is one of the configured `extra` keys (normalised).
pub(crate) fn key_is_sensitive(key: &str, extra: &[String]) -> bool {
    SENSITIVE_SUFFIXES.iter().any(|s| norm_ends_with(key, s))
        || SENSITIVE_EXACT.iter().any(|s| norm_eq(key, s))
        || extra.iter().any(|s| norm_eq(key, s))
}

/// Compiles a user pattern with the limits every pattern gets.
pub(crate) fn user_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(4 << 20)
        .build()
}

/// The key=value / JSON detector: a key ending with a sensitive word, an optional closing
/// quote (`"`, `'`, or `\"` inside an escaped JSON string), then `=` or `:`. The value is
/// parsed by [`kv_value`].
pub(crate) fn kv_regex(extra: &[String]) -> Result<Regex, regex::Error> {
    let mut words = String::from(
        r"pass(?:word|wd)?|pwd|pw|secret|token|api[_.\-]?key|access[_.\-]?key|secret[_.\-]?key|auth(?:orization)?|credentials?|private[_.\-]?key",
    );
    for k in extra {
        words.push('|');
        // Configured keys may be written with any of the separators the key may use.
        let mut alt = String::new();
        for c in k.chars() {
            alt.push_str(&regex::escape(&c.to_string()));
            alt.push_str(r"[_.\-]?");
        }
        words.push_str(&alt);
    }
    Regex::new(&format!(
        r#"(?i)(?:^|[^A-Za-z0-9_.\-])(?P<key>[A-Za-z0-9_.\-]*?(?:{words}))(?P<q>\\?["']?)[ \t]*(?P<sep>[:=])[ \t]*"#
    ))
}

/// Authorization schemes whose credential follows after one space (`Authorization: Bearer x`).
const SCHEMES: &[&str] = &["bearer", "basic", "token", "digest", "negotiate", "apikey"];

/// The value after a key's separator at byte `at`: `(start, end, quote)`, or `None` when there
/// is none worth masking (empty, `null`, `true`, `false`).
pub(crate) fn kv_value(s: &str, at: usize, key_quoted: bool) -> Option<(usize, usize, bool)> {
    let b = s.as_bytes();
    let (start, end) = match *b.get(at)? {
        b'"' => (at + 1, closing(b, at + 1, b"\"")),
        b'\\' if b.get(at + 1) == Some(&b'"') => (at + 2, closing(b, at + 2, b"\\\"")),
        b'\'' => (at + 1, closing(b, at + 1, b"'")),
        // A structure (`token: {…}`, `Token: Token { kind: … }`) is not a scalar secret; a
        // secret inside it has its own key.
        b'{' | b'[' => return None,
        _ => {
            let mut end = unquoted_end(s, at);
            // `Authorization: Bearer abc`: the scheme word and its credential are one value.
            let word = &s[at..end];
            if b.get(end) == Some(&b' ')
                && SCHEMES.iter().any(|w| w.eq_ignore_ascii_case(word))
                && b.get(end + 1)
                    .is_some_and(|c| !c.is_ascii_whitespace() && !matches!(c, b'{' | b'['))
            {
                end = unquoted_end(s, end + 1);
            }
            let v = &s[at..end];
            // `Token: Token { kind: … }`: a type name before a structure.
            if v.bytes().all(|c| c.is_ascii_alphabetic())
                && s[end..].trim_start_matches([' ', '\t']).starts_with('{')
            {
                return None;
            }
            if ["null", "true", "false"]
                .iter()
                .any(|w| w.eq_ignore_ascii_case(v))
            {
                return None;
            }
            return (end > at).then_some((at, end, key_quoted));
        }
    };
    (end > start).then_some((start, end, false))
}

/// The end of an unquoted value: whitespace, an ASCII delimiter or CJK punctuation
/// (`password=密码123，请重试` ends at the full-width comma).
fn unquoted_end(s: &str, from: usize) -> usize {
    s[from..]
        .char_indices()
        .find(|(_, c)| {
            c.is_whitespace()
                || matches!(
                    c,
                    ',' | ';'
                        | '&'
                        | ')'
                        | '}'
                        | ']'
                        | '"'
                        | '\''
                        | '<'
                        | '>'
                        | '，'
                        | '。'
                        | '；'
                        | '、'
                        | '）'
                        | '】'
                        | '」'
                        | '』'
                        | '》'
                )
        })
        .map_or(s.len(), |(p, _)| from + p)
}

/// The position of the closing `quote` after `from`, skipping backslash escapes; the end of the
/// text when the value is cut off (a truncated line still hides the rest of the value).
fn closing(b: &[u8], from: usize, quote: &[u8]) -> usize {
    let mut i = from;
    while i < b.len() {
        if b[i..].starts_with(quote) {
            return i;
        }
        if b[i] == b'\\' && quote.len() == 1 {
            i += 2;
            continue;
        }
        i += 1;
    }
    b.len()
}

/// Whether a `Bearer`/`Basic` credential looks like one (not an English word after "basic").
pub(crate) fn credential_ok(scheme: &str, cred: &str) -> bool {
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine as _;
        return cred.len() >= 8
            && base64::engine::general_purpose::STANDARD
                .decode(cred)
                .is_ok_and(|d| d.contains(&b':'));
    }
    let has_digit_or_mark = cred
        .bytes()
        .any(|c| c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    cred.len() >= 8 && has_digit_or_mark
}

/// Whether an AWS secret key candidate is mixed case (rules out hex digests).
pub(crate) fn mixed_case(v: &str) -> bool {
    v.bytes().any(|c| c.is_ascii_uppercase()) && v.bytes().any(|c| c.is_ascii_lowercase())
}

/// The regular-expression detectors.
pub(crate) struct Patterns {
    pub bearer: Regex,
    pub aws_access_key: Regex,
    pub aws_secret_key: Regex,
    pub github_token: Regex,
    pub slack_token: Regex,
    pub google_api_key: Regex,
    pub private_key: Regex,
    pub url_password: Regex,
    pub email: Regex,
}

impl Patterns {
    /// Compiles the built-in patterns (constants: an error here is a bug, reported as such).
    pub fn new() -> Result<Patterns, regex::Error> {
        Ok(Patterns {
            bearer: Regex::new(
                r"(?i)(?-u:\b)(?P<scheme>bearer|basic)[ \t]+(?P<v>[A-Za-z0-9\-._~+/]+=*)",
            )?,
            aws_access_key: Regex::new(r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)")?,
            aws_secret_key: Regex::new(
                r#"(?i:aws)[A-Za-z0-9_ .\-]{0,32}?["']?[ \t]*[:=]?[ \t]*["']?(?P<v>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            )?,
            github_token: Regex::new(
                r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})(?-u:\b)",
            )?,
            slack_token: Regex::new(r"(?-u:\b)xox[baprs]-[A-Za-z0-9\-]{10,}")?,
            google_api_key: Regex::new(r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}")?,
            private_key: Regex::new(
                r"(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|$)",
            )?,
            url_password: Regex::new(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]+:(?P<v>[^/\s@]+)@")?,
            email: Regex::new(
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
            )?,
        })
    }
}

/// Which digit-run detectors are on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DigitRules {
    pub card: bool,
    pub phone: bool,
    pub cn_mobile: bool,
    pub cn_id: bool,
}

impl DigitRules {
    /// Whether any digit detector runs.
    pub fn any(self) -> bool {
        self.card || self.phone || self.cn_mobile || self.cn_id
    }

    /// The fewest digits any enabled detector needs (E.164 8, mobile 11, card 13, ID 17).
    pub fn min_digits(self) -> usize {
        [
            (self.phone, 8),
            (self.cn_mobile, 11),
            (self.card, 13),
            (self.cn_id, 17),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .min()
        .unwrap_or(usize::MAX)
    }
}

/// Most digit groups in one run (cards have at most 5, phones a few); a longer run of
/// separated numbers is scanned as several runs.
const MAX_GROUPS: usize = 8;

/// Scans `s` for runs of digits (single spaces or dashes allowed between groups) and reports
/// those that are cards, phones, Chinese mobile or ID numbers: the whole run, else the longest
/// windows of whole groups in it (`card 4111 1111 1111 1111 2 items`). A run glued to letters,
/// `_`, a decimal point or an identifier's dash (hex ids, UUIDs, floats, IPs, versions,
/// `blk_-6952295868487656571`) is never reported.
pub(crate) fn scan_digits(s: &str, on: DigitRules, spans: &mut Vec<Span>) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut groups = [(0usize, 0usize); MAX_GROUPS];
        let mut n = 0usize;
        let mut j = i;
        loop {
            let g = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups[n] = (g, j);
            n += 1;
            if n < MAX_GROUPS
                && j + 1 < b.len()
                && matches!(b[j], b' ' | b'-')
                && b[j + 1].is_ascii_digit()
            {
                j += 1;
                continue;
            }
            break;
        }
        let end = j;
        i = end;
        let groups = &groups[..n];
        let glued_start = glued_before(b, start);
        // Chinese ID: 17 digits + X.
        if n == 1 && end - start == 17 && matches!(b.get(end).copied(), Some(b'X' | b'x')) {
            if on.cn_id && !glued_start && free_after(b, end + 1) && cn_id_ok(&b[start..=end]) {
                spans.push(span(start, end + 1, id::CN_ID));
            }
            i = end + 1;
            continue;
        }
        // A group glued to a token (`… 0546173_4261722401`) is not part of any number found.
        let lo = usize::from(glued_start);
        let hi = n - usize::from(!free_after(b, end));
        if lo >= hi {
            continue;
        }
        let digits = |g: &[(usize, usize)]| g.iter().map(|(a, z)| z - a).sum::<usize>();
        if !glued_start && start > 0 && b[start - 1] == b'+' {
            // E.164: the longest prefix of whole groups with 8..=15 digits.
            if on.phone
                && b[start] != b'0'
                && !(start >= 2 && b[start - 2].is_ascii_alphanumeric())
                && let Some(z) = (0..hi)
                    .rev()
                    .find(|z| (8..=15).contains(&digits(&groups[..=*z])))
            {
                spans.push(span(start - 1, groups[z].1, id::PHONE));
            }
            continue;
        }
        if lo == 0 && hi == n {
            if let Some(rule) = classify(b, on, groups) {
                spans.push(span(start, end, rule));
                continue;
            }
            if n == 1 {
                continue;
            }
        }
        if digits(&groups[lo..hi]) < 11 {
            continue;
        }
        // Windows of whole groups, longest first from each group on.
        let mut a = lo;
        while a < hi {
            let hit = (a..hi)
                .rev()
                .filter(|z| !(a == 0 && *z == n - 1))
                .find_map(|z| classify(b, on, &groups[a..=z]).map(|rule| (z, rule)));
            match hit {
                Some((z, rule)) => {
                    spans.push(span(groups[a].0, groups[z].1, rule));
                    a = z + 1;
                }
                None => a += 1,
            }
        }
    }
}

/// Whether `b` holds a run of at least `min` digits (single spaces or dashes between them):
/// the only shape the digit detectors can report.
pub(crate) fn long_digit_run(b: &[u8], min: usize) -> bool {
    let mut n = 0;
    let mut prev_digit = false;
    for &c in b {
        if c.is_ascii_digit() {
            n += 1;
            if n >= min {
                return true;
            }
            prev_digit = true;
        } else if prev_digit && matches!(c, b' ' | b'-') {
            prev_digit = false;
        } else {
            n = 0;
            prev_digit = false;
        }
    }
    false
}

/// Whether a run starting at `start` is part of a longer token: after a letter, digit, `_`, a
/// decimal point, or a dash that follows one of those (`blk_-…`, `id-…`).
fn glued_before(b: &[u8], start: usize) -> bool {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    match start.checked_sub(1).map(|p| b[p]) {
        None => false,
        Some(c) if ident(c) || c == b'.' => true,
        Some(b'-') => start >= 2 && ident(b[start - 2]),
        Some(_) => false,
    }
}

/// What the digits of `groups` (consecutive groups of one run) are, if anything.
fn classify(b: &[u8], on: DigitRules, groups: &[(usize, usize)]) -> Option<usize> {
    let (first, last) = (groups.first()?, groups.last()?);
    let run = &b[first.0..last.1];
    let digits: usize = groups.iter().map(|(a, z)| z - a).sum();
    let seps = groups.len() > 1;
    if on.cn_id && !seps && digits == 18 && cn_id_ok(run) {
        return Some(id::CN_ID);
    }
    if on.card
        && (13..=19).contains(&digits)
        && (b'2'..=b'6').contains(&run[0])
        && groups.iter().all(|(a, z)| z - a >= 3)
        && luhn_ok(run)
        && !all_same_digit(run)
    {
        return Some(id::CARD);
    }
    let lens_344 = groups.len() == 3
        && groups
            .iter()
            .zip([3, 4, 4])
            .all(|((a, z), want)| z - a == want);
    if on.cn_mobile
        && digits == 11
        && (!seps || lens_344)
        && run[0] == b'1'
        && (b'3'..=b'9').contains(&run[1])
    {
        return Some(id::CN_MOBILE);
    }
    None
}

fn span(start: usize, end: usize, rule: usize) -> Span {
    Span {
        start,
        end,
        rule,
        quote: false,
    }
}

/// Whether the run ending at `end` is not glued to a letter, `_` or a decimal fraction.
fn free_after(b: &[u8], end: usize) -> bool {
    match b.get(end).copied() {
        None => true,
        Some(c) if c.is_ascii_alphanumeric() || c == b'_' => false,
        Some(b'.') => !b.get(end + 1).is_some_and(u8::is_ascii_digit),
        Some(_) => true,
    }
}

/// The Luhn check over the digits of `run` (separators skipped).
pub(crate) fn luhn_ok(run: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for c in run.iter().rev().filter(|c| c.is_ascii_digit()) {
        let mut d = u32::from(c - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum.is_multiple_of(10)
}

fn all_same_digit(run: &[u8]) -> bool {
    let mut it = run.iter().filter(|c| c.is_ascii_digit());
    let first = it.next();
    it.all(|c| Some(c) == first)
}

/// An 18-character Chinese resident ID: a plausible birth date (YYYYMMDD at 6..14, years
/// 1900–2099) and the ISO 7064 MOD 11-2 check character.
pub(crate) fn cn_id_ok(id: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if id.len() != 18 || !id[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| id[r].iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    let sum: u32 = id[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    id[17].to_ascii_uppercase() == CHECK[(sum % 11) as usize]
}
