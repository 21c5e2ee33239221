//! Masking: rewrites the variable parts of one whitespace token (numbers, ids, addresses, paths…)
//! into a placeholder before the token reaches the prefix tree.
//!
//! Every rule is a named switch in [`MaskConfig`]. Rules are hand-written byte scanners rather than
//! regular expressions because they run on every token of every line (the parser aims at a million
//! lines per second on one core), and because a token without a digit, `/`, `\` or `@` cannot match
//! any default rule, which lets most tokens skip masking entirely.
//!
//! A token is cut in three levels, from coarse to fine:
//! 1. the whole token without its enclosing punctuation (`url`, `email`, Windows `path`,
//!    `block_id`, `ipv4` endpoints with port, `ipv6`, `timestamp`);
//! 2. *runs*, separated by `, ; : = | " ' ( ) [ ] { } < >` (`timestamp`, `uuid`, `ipv4`, `path`);
//! 3. *pieces* of a run, separated by `. - + @ # $ % & * ! ?` (`hex`, `number`, `mixed_id`).
//!
//! After masking, `<*>.<*>` and `<*><*>` collapse to one placeholder, the same normalization
//! loghub-2.0 applies to its ground-truth templates (so `10.0.0.1` becomes one `<*>`).
//!
//! Before the levels, a `key=value` token keeps its key and masks its value; the parser also
//! masks the token after a JSON key (`"user":`) and joins an abbreviated unit to the number
//! before it (`5.2 KB`), which need the neighbouring token. These rules are about the syntax of
//! values, not about any one log format; which plain words are values is learned by the parser
//! (see the [parent module](super)).

use serde::{Deserialize, Serialize};

/// Which masking rules run, each a named switch (all on by default, see
/// [`MaskConfig::default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskConfig {
    /// `scheme://…` tokens (`http://host:80/x?y`) → `<URL>`.
    pub url: bool,
    /// `user@host.tld` tokens → `<EMAIL>`.
    pub email: bool,
    /// RFC 4122 style UUIDs `8-4-4-4-12` hex digits → `<UUID>`.
    pub uuid: bool,
    /// IPv4 addresses, with the `host/` or `/` Java puts before them and a `:port` after, as
    /// one placeholder (`msra-sa-41/10.0.0.1:8030`, `/10.0.0.1:50010` → `<IP>`); also `host:port`
    /// endpoints whose host name has a digit and a `.` or `-` (`db-1.prod:5432`).
    pub ipv4: bool,
    /// IPv6 addresses (`fe80::1`, `[::1]:8080`, `0:0:0:0:0:0:0:1`) → `<IP>`.
    pub ipv6: bool,
    /// Absolute paths `/a/b…` (two or more segments, or one with a digit) and Windows paths
    /// `C:\…` → `<PATH>`.
    pub path: bool,
    /// Times `12:01:01(.123)`, dates `2005-06-03`, `2005.06.03`, and date-times joined by `-`,
    /// `T` or `_` → `<TIME>`.
    pub timestamp: bool,
    /// HDFS block ids `blk_-123…`, `blk_123…` → `<BLK>`.
    pub block_id: bool,
    /// `0x…` hex literals, and hex strings of 6+ characters with a digit and a letter
    /// (hashes, object ids) → `<HEX>`.
    pub hex: bool,
    /// Decimal numbers (`42`, `-5`, `3.14` via the `.` collapse), also inside tokens:
    /// `size:123` → `size:<NUM>`, `node-12` → `node-<NUM>`.
    pub number: bool,
    /// Pieces mixing letters and digits with at least two digits or a digit then a letter
    /// (`attempt_1445_0020_m_000_0`, `FNANLI5X`): generated ids. Names like `eth0`, `alt0`
    /// or `log4j` with one trailing digit stay literal.
    pub mixed_id: bool,
    /// The value of a `key=value` token (`user=alice`, `(uid=0)`, `status=ok,`) → `key=<*>`:
    /// whatever its form, the value is what varies and the key is the constant that names it.
    /// The key must look like an identifier (letters, digits, `_ . -`, starting with a letter).
    /// Default true.
    #[serde(default = "yes")]
    pub key_value: bool,
    /// The value after a JSON key (a token following one that ends with `":`, e.g. `"alice",`
    /// in `{"user": "alice", "n": 5}`) → `<*>` with its closing punctuation kept: JSON bodies
    /// become their keys. Objects and arrays opening there (`{`, `[`) are not values to mask.
    /// Default true.
    #[serde(default = "yes")]
    pub json_value: bool,
    /// An abbreviated unit right after a masked number (`5.2 KB,`, `120 ms`; a fixed list of size,
    /// time and frequency units) joins the number's
    /// placeholder (`<*>,`): a humanized quantity picks its unit by magnitude, so the unit
    /// varies with the value. Spelled-out units (`bytes`, `seconds`) stay constants. Default
    /// true.
    #[serde(default = "yes")]
    pub units: bool,
}

fn yes() -> bool {
    true
}

impl Default for MaskConfig {
    /// All rules on: every rule here matches something an SRE reads as a variable.
    fn default() -> Self {
        Self {
            url: true,
            email: true,
            uuid: true,
            ipv4: true,
            ipv6: true,
            path: true,
            timestamp: true,
            block_id: true,
            hex: true,
            number: true,
            mixed_id: true,
            key_value: true,
            json_value: true,
            units: true,
        }
    }
}

/// What masked parts are replaced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placeholder {
    /// Every masked part becomes the wildcard `<*>` (the Loghub template convention).
    #[default]
    Wildcard,
    /// Masked parts become a typed placeholder naming the rule (`<NUM>`, `<IP>`, `<PATH>`…).
    Typed,
}

/// The kind of a masked part; its typed placeholder is [`Kind::typed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Url,
    Email,
    Uuid,
    Ip,
    Path,
    Time,
    Block,
    Hex,
    Num,
    Id,
}

impl Kind {
    /// The typed placeholder of this kind.
    pub(crate) fn typed(self) -> &'static str {
        match self {
            Kind::Url => "<URL>",
            Kind::Email => "<EMAIL>",
            Kind::Uuid => "<UUID>",
            Kind::Ip => "<IP>",
            Kind::Path => "<PATH>",
            Kind::Time => "<TIME>",
            Kind::Block => "<BLK>",
            Kind::Hex => "<HEX>",
            Kind::Num => "<NUM>",
            Kind::Id => "<ID>",
        }
    }
}

/// Byte class bits of [`CLASS`]: a token delimiter (whitespace; the parser adds its extra
/// delimiters), a digit, `/` or `\\`, `@`, `:`.
pub(crate) const DELIM: u8 = 1;
pub(crate) const DIGIT: u8 = 2;
pub(crate) const SLASH: u8 = 4;
pub(crate) const AT: u8 = 8;
pub(crate) const COLON: u8 = 16;
pub(crate) const EQ: u8 = 32;

/// The class of each byte (see [`DELIM`]).
pub(crate) const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            DIGIT
        } else if c == b'/' || c == b'\\' {
            SLASH
        } else if c == b'@' {
            AT
        } else if c == b':' {
            COLON
        } else if c == b'=' {
            EQ
        } else if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            DELIM
        } else {
            0
        };
        i += 1;
    }
    t
};

/// What masking did to one token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Masked {
    /// Something was masked.
    pub(crate) masked: bool,
    /// The token looks variable: masked, or has a digit.
    pub(crate) variable: bool,
    /// The masked token is exactly one placeholder, of this kind.
    pub(crate) whole: Option<Kind>,
}

/// The wildcard of templates: a generalized position, and a masked part under
/// [`Placeholder::Wildcard`].
pub const WILDCARD: &str = "<*>";

/// Abbreviated units of size, time and rate a humanizing formatter chooses by magnitude.
const UNITS: &[&str] = &[
    "B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "kB", "ns", "us", "µs", "ms",
    "s", "h", "Hz", "kHz", "MHz", "GHz", "B/s", "KB/s", "MB/s", "GB/s",
];

/// The trailing punctuation of `token` when the rest of it is an abbreviated unit (`KB,` →
/// `,`), else `None`.
pub(crate) fn unit_trail(token: &str) -> Option<&str> {
    let core = token.trim_end_matches([',', ';', ')', ']', '}', '.', ':']);
    UNITS.contains(&core).then(|| &token[core.len()..])
}

/// Separators of runs inside a token.
fn is_run_sep(b: u8) -> bool {
    matches!(
        b,
        b',' | b';'
            | b':'
            | b'='
            | b'|'
            | b'"'
            | b'\''
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'<'
            | b'>'
    )
}

/// Separators of pieces inside a run.
fn is_piece_sep(b: u8) -> bool {
    matches!(
        b,
        b'.' | b'-' | b'+' | b'@' | b'#' | b'$' | b'%' | b'&' | b'*' | b'!' | b'?'
    )
}

/// The masking rules of one parser, applied token by token.
#[derive(Debug, Clone)]
pub(crate) struct Masker {
    rules: MaskConfig,
    placeholder: Placeholder,
}

impl Masker {
    /// A masker with these rules and placeholders.
    pub(crate) fn new(rules: MaskConfig, placeholder: Placeholder) -> Self {
        Self { rules, placeholder }
    }

    /// Whether `t` is exactly one placeholder of this masker.
    pub(crate) fn is_placeholder(&self, t: &str) -> bool {
        placeholder_at(t.as_bytes(), 0, self.placeholder) == Some(t.len())
    }

    fn ph(&self, kind: Kind) -> &'static str {
        match self.placeholder {
            Placeholder::Wildcard => WILDCARD,
            Placeholder::Typed => kind.typed(),
        }
    }

    /// Appends the masked form of `token` (no whitespace inside) to `out`. Returns whether anything
    /// was masked, and whether the token looks variable (masked, or has a digit).
    /// `flags` is the union of [`CLASS`] bits of the token's bytes (the tokenizer computes it
    /// while looking for the token's end, so the token is scanned once).
    pub(crate) fn mask_token(&self, token: &str, flags: u8, out: &mut String) -> Masked {
        let start = out.len();
        let last = self.mask_token_inner(token, flags, out);
        Masked {
            masked: last.is_some(),
            variable: last.is_some() || flags & DIGIT != 0,
            whole: last.filter(|_| self.is_placeholder(&out[start..])),
        }
    }

    /// Whether `t` contains a placeholder of this masker.
    pub(crate) fn contains_placeholder(&self, t: &str) -> bool {
        let b = t.as_bytes();
        (0..b.len()).any(|i| b[i] == b'<' && placeholder_at(b, i, self.placeholder).is_some())
    }

    /// Masks into `out`; the kind of the last placeholder written, `None` if nothing was masked.
    fn mask_token_inner(&self, token: &str, flags: u8, out: &mut String) -> Option<Kind> {
        let b = token.as_bytes();
        if flags & EQ != 0
            && self.rules.key_value
            && let Some(kind) = self.key_value(token, out)
        {
            return Some(kind);
        }
        // Every default rule needs a digit, a slash, a backslash or an `@`, so most words take
        // the fast path.
        let (digit, slash, at, colon) = (
            flags & DIGIT != 0,
            flags & SLASH != 0,
            flags & AT != 0,
            flags & COLON != 0,
        );
        if !(digit || slash || at) {
            out.push_str(token);
            return None;
        }
        let start = out.len();
        // Level 1: the whole token, without enclosing punctuation.
        if colon && self.rules.ipv6 && b.first() == Some(&b'[') {
            let t = token.trim_end_matches([',', ';']);
            if is_ipv6_with_port(t) {
                out.push_str(self.ph(Kind::Ip));
                out.push_str(&token[t.len()..]);
                return Some(Kind::Ip);
            }
        }
        let (lead, core, trail) = strip_punct(token);
        if let Some(kind) = self.whole_token(core, digit, slash, at, colon) {
            out.push_str(lead);
            out.push_str(self.ph(kind));
            out.push_str(trail);
            return Some(kind);
        }
        // Level 2: runs.
        let mut placeholders = 0;
        let mut last = None;
        let mut i = 0;
        while i < b.len() {
            if is_run_sep(b[i]) {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            let s = i;
            while i < b.len() && !is_run_sep(b[i]) {
                i += 1;
            }
            let (n, kind) = self.mask_run(&token[s..i], out);
            placeholders += n;
            if kind.is_some() {
                last = kind;
            }
        }
        if placeholders >= 2 {
            collapse(out, start, self.placeholder);
        }
        last
    }

    /// `key=value` (with enclosing punctuation kept, `(uid=0),` → `(uid=<*>),`).
    fn key_value(&self, token: &str, out: &mut String) -> Option<Kind> {
        let (lead, core, trail) = strip_punct(token);
        let eq = core.find('=')?;
        let (key, value) = (&core[..eq], &core[eq + 1..]);
        let kb = key.as_bytes();
        let ok_key = kb.first().is_some_and(u8::is_ascii_alphabetic)
            && kb
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !ok_key || value.is_empty() || value.starts_with('=') {
            return None;
        }
        out.push_str(lead);
        out.push_str(key);
        out.push('=');
        out.push_str(self.ph(Kind::Id));
        out.push_str(trail);
        Some(Kind::Id)
    }

    /// The masked form of a JSON value token (`"alice",` → `<*>,`, `5}` → `<*>}`); `None` for an
    /// object or array opening there, or an empty token.
    pub(crate) fn json_value(&self, token: &str, out: &mut String) -> Option<Kind> {
        if !self.rules.json_value || token.starts_with(['{', '[']) {
            return None;
        }
        let core = token.trim_end_matches([',', '}', ']']);
        if core.is_empty() {
            return None;
        }
        out.push_str(self.ph(Kind::Id));
        out.push_str(&token[core.len()..]);
        Some(Kind::Id)
    }

    fn whole_token(
        &self,
        core: &str,
        digit: bool,
        slash: bool,
        at: bool,
        colon: bool,
    ) -> Option<Kind> {
        let r = &self.rules;
        if r.url && colon && slash && is_url(core) {
            return Some(Kind::Url);
        }
        if r.email && at && is_email(core) {
            return Some(Kind::Email);
        }
        // Windows paths, whose `:` would otherwise cut the token into runs.
        if r.path && colon && slash && is_windows_path(core.as_bytes()) {
            return Some(Kind::Path);
        }
        if !digit {
            return None;
        }
        if r.block_id && is_block_id(core) {
            return Some(Kind::Block);
        }
        if r.ipv4 && is_ipv4_endpoint(core.as_bytes()) {
            return Some(Kind::Ip);
        }
        if colon && r.ipv6 && is_ipv6_with_port(core) {
            return Some(Kind::Ip);
        }
        if r.timestamp && (is_timestamp(core.as_bytes()) || (colon && is_clock(core.as_bytes()))) {
            return Some(Kind::Time);
        }
        None
    }

    /// Masks one run into `out`; returns the number of placeholders written and the last one's
    /// kind.
    fn mask_run(&self, run: &str, out: &mut String) -> (usize, Option<Kind>) {
        let r = &self.rules;
        let b = run.as_bytes();
        if !b
            .iter()
            .any(|&c| c.is_ascii_digit() || c == b'/' || c == b'\\')
        {
            out.push_str(run);
            return (0, None);
        }
        let kind = if r.timestamp && is_timestamp(b) {
            Some(Kind::Time)
        } else if r.uuid && is_uuid(b) {
            Some(Kind::Uuid)
        } else if r.ipv4 && is_ipv4(b.strip_prefix(b"/").unwrap_or(b)) {
            Some(Kind::Ip)
        } else if r.block_id && is_block_id(run) {
            Some(Kind::Block)
        } else if r.path && is_path(b) {
            Some(Kind::Path)
        } else {
            None
        };
        if let Some(kind) = kind {
            out.push_str(self.ph(kind));
            return (1, Some(kind));
        }
        // Level 3: pieces.
        let mut placeholders = 0;
        let mut last = None;
        let mut i = 0;
        // A sign at the start of the run belongs to the number after it.
        if r.number && b.len() > 1 && matches!(b[0], b'-' | b'+') && b[1].is_ascii_digit() {
            let end = b[1..]
                .iter()
                .position(|&c| is_piece_sep(c))
                .map_or(b.len(), |p| p + 1);
            if b[1..end].iter().all(u8::is_ascii_digit) {
                i = 1;
            }
        }
        while i < b.len() {
            if is_piece_sep(b[i]) {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            let s = i;
            while i < b.len() && !is_piece_sep(b[i]) {
                i += 1;
            }
            let piece = &run[s..i];
            match self.piece_kind(piece.as_bytes()) {
                Some(kind) => {
                    out.push_str(self.ph(kind));
                    placeholders += 1;
                    last = Some(kind);
                }
                None => out.push_str(piece),
            }
        }
        (placeholders, last)
    }

    fn piece_kind(&self, p: &[u8]) -> Option<Kind> {
        let r = &self.rules;
        let digits = p.iter().filter(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Plain numbers, and versions' `v12` pieces.
        if r.number && (digits == p.len() || (digits + 1 == p.len() && matches!(p[0], b'v' | b'V')))
        {
            return Some(Kind::Num);
        }
        if r.hex && is_hex_piece(p, digits) {
            return Some(Kind::Hex);
        }
        if r.mixed_id && is_mixed_id(p, digits) {
            return Some(Kind::Id);
        }
        None
    }
}

/// Splits leading and trailing punctuation off a token (`(foo,` → `(`, `foo`, `,`).
fn strip_punct(t: &str) -> (&str, &str, &str) {
    let b = t.as_bytes();
    let punct = |c: u8| {
        matches!(
            c,
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>' | b'"' | b'\'' | b',' | b';'
        )
    };
    let mut s = 0;
    while s < b.len() && punct(b[s]) {
        s += 1;
    }
    let mut e = b.len();
    while e > s && (punct(b[e - 1]) || (e == b.len() && matches!(b[e - 1], b'.' | b':'))) {
        e -= 1;
    }
    (&t[..s], &t[s..e], &t[e..])
}

/// Collapses `<*>.<*>` and `<*><*>` (and the typed forms `<X>.<Y>`, `<X><Y>`: the first stays) in
/// `out[start..]`.
fn collapse(out: &mut String, start: usize, placeholder: Placeholder) {
    let s = &out[start..];
    if !s.contains("><") && !s.contains(">.<") {
        return;
    }
    let mut res = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if let Some(len) = placeholder_at(b, i, placeholder) {
            res.push_str(&s[i..i + len]);
            i += len;
            // Swallow following `<…>` or `.<…>` placeholders.
            loop {
                if let Some(l2) = placeholder_at(b, i, placeholder) {
                    i += l2;
                } else if b.get(i) == Some(&b'.')
                    && let Some(l2) = placeholder_at(b, i + 1, placeholder)
                {
                    i += 1 + l2;
                } else {
                    break;
                }
            }
        } else {
            // Copy one UTF-8 character.
            let ch_len = utf8_len(b[i]);
            res.push_str(&s[i..i + ch_len]);
            i += ch_len;
        }
    }
    out.truncate(start);
    out.push_str(&res);
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// The length of the placeholder starting at `b[i]`, if any.
fn placeholder_at(b: &[u8], i: usize, placeholder: Placeholder) -> Option<usize> {
    let rest = b.get(i..)?;
    match placeholder {
        Placeholder::Wildcard => rest.starts_with(b"<*>").then_some(3),
        Placeholder::Typed => {
            if rest.first() != Some(&b'<') {
                return None;
            }
            let end = rest.iter().take(8).position(|&c| c == b'>')?;
            (end >= 2
                && rest[1..end]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || *c == b'*'))
            .then_some(end + 1)
        }
    }
}

fn is_url(t: &str) -> bool {
    match t.find("://") {
        Some(p) => {
            p > 0
                && t[..p]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'+')
        }
        None => false,
    }
}

fn is_email(t: &str) -> bool {
    let Some(at) = t.find('@') else {
        return false;
    };
    let (local, domain) = (&t[..at], &t[at + 1..]);
    !local.is_empty()
        && local
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'+'))
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-'))
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()))
}

fn is_block_id(t: &str) -> bool {
    let Some(rest) = t.strip_prefix("blk_") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_digit())
}

fn all_hex(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_hexdigit)
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && [8usize, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) || c.is_ascii_hexdigit())
}

fn is_ipv4(b: &[u8]) -> bool {
    let mut parts = 0;
    for part in b.split(|&c| c == b'.') {
        parts += 1;
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return false;
        }
    }
    parts == 4
}

/// An IPv4 endpoint as Java prints it: `[host]/a.b.c.d[:port]`, or `a.b.c.d:port`.
fn is_ipv4_endpoint(b: &[u8]) -> bool {
    let (host, rest) = match b.iter().rposition(|&c| c == b'/') {
        Some(p) => (&b[..p], &b[p + 1..]),
        None => (&b[..0], b),
    };
    if !host
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
    {
        return false;
    }
    let (ip, port) = match rest.iter().position(|&c| c == b':') {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (rest, &rest[..0]),
    };
    if host.is_empty() && !port.is_empty() && port.iter().all(u8::is_ascii_digit) && is_hostname(ip)
    {
        return port.len() <= 5;
    }
    is_ipv4(ip) && port.iter().all(u8::is_ascii_digit) && (b.len() > ip.len())
}

/// A DNS-like host name with a digit and a `.` or `-` (`db-1`, `node7.prod`), as in `host:port`.
fn is_hostname(b: &[u8]) -> bool {
    b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(|&c| c == b'.' || c == b'-')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-'))
}

/// IPv6, optionally bracketed with a port (`[::1]:80`), or with a `%zone`.
fn is_ipv6_with_port(t: &str) -> bool {
    let t = t.strip_prefix('/').unwrap_or(t);
    let addr = if let Some(rest) = t.strip_prefix('[') {
        match rest.find(']') {
            Some(e) => {
                let port = &rest[e + 1..];
                if !(port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())))
                {
                    return false;
                }
                &rest[..e]
            }
            None => return false,
        }
    } else {
        t
    };
    let addr = addr.split('%').next().unwrap_or(addr);
    is_ipv6(addr.as_bytes())
}

fn is_ipv6(b: &[u8]) -> bool {
    let colons = b.iter().filter(|&&c| c == b':').count();
    if !(2..=7).contains(&colons) {
        return false;
    }
    let double = b.windows(2).filter(|w| w == b"::").count();
    if double > 1 || (double == 0 && colons != 7) {
        return false;
    }
    let mut groups = b.split(|&c| c == b':').peekable();
    let mut any_digit = false;
    while let Some(g) = groups.next() {
        if g.len() > 4 {
            // The last group may be an embedded IPv4 address.
            if groups.peek().is_none() && is_ipv4(g) {
                return true;
            }
            return false;
        }
        if !all_hex(g) {
            return false;
        }
        any_digit |= g.iter().any(u8::is_ascii_digit);
    }
    any_digit || double == 1
}

/// `C:\a\b`.
fn is_windows_path(b: &[u8]) -> bool {
    b.len() >= 4 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\'
}

/// `/a/b`, `/a1`, `\\host\share`.
fn is_path(b: &[u8]) -> bool {
    if b.starts_with(b"\\\\") && b.len() > 2 {
        return true;
    }
    if b.first() != Some(&b'/') || b.len() < 2 {
        return false;
    }
    let segments = b.split(|&c| c == b'/').filter(|s| !s.is_empty()).count();
    if b[1..]
        .split(|&c| c == b'/')
        .next()
        .is_some_and(<[u8]>::is_empty)
    {
        return false;
    }
    segments >= 2 || b.iter().any(u8::is_ascii_digit)
}

fn digits(b: &[u8], from: usize, n: usize) -> bool {
    b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
}

/// `HH:MM:SS(.frac)` — never reached as a run because `:` separates runs, so it is checked on
/// `YYYY-MM-DD`, `YYYY.MM.DD`, `YYYY/MM/DD` dates, optionally followed by `-`, `T`, `_` and a time
/// with `.`, `:` or `-` separators (BGL's `2005-06-03-15.42.50.675872`).
fn is_timestamp(b: &[u8]) -> bool {
    if !(digits(b, 0, 4) && b.len() >= 10 && digits(b, 5, 2) && digits(b, 8, 2)) {
        return false;
    }
    let sep = b[4];
    if !matches!(sep, b'-' | b'.' | b'/') || b[7] != sep {
        return false;
    }
    let rest = &b[10..];
    if rest.is_empty() {
        return true;
    }
    if !matches!(rest[0], b'-' | b'T' | b'_') {
        return false;
    }
    let t = &rest[1..];
    // HH?MM?SS with any of `.:-` between, then optional fraction and zone.
    digits(t, 0, 2)
        && t.len() >= 8
        && matches!(t[2], b'.' | b':' | b'-')
        && digits(t, 3, 2)
        && matches!(t[5], b'.' | b':' | b'-')
        && digits(t, 6, 2)
        && t[8..]
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b',' | b'Z' | b'+' | b'-' | b':'))
}

/// `HH:MM:SS` with an optional `.frac` or `,frac`.
fn is_clock(b: &[u8]) -> bool {
    digits(b, 0, 2)
        && b.len() >= 8
        && b[2] == b':'
        && digits(b, 3, 2)
        && b[5] == b':'
        && digits(b, 6, 2)
        && (b.len() == 8
            || (matches!(b[8], b'.' | b',')
                && b.len() > 9
                && b[9..].iter().all(u8::is_ascii_digit)))
}

/// `0x1f`, or 6+ hex characters with a digit and a letter (`a3f9c2`, `7fe3d2e0`).
fn is_hex_piece(p: &[u8], digits: usize) -> bool {
    if (p.starts_with(b"0x") || p.starts_with(b"0X")) && p.len() > 2 && all_hex(&p[2..]) {
        return true;
    }
    p.len() >= 6 && digits < p.len() && all_hex(p)
}

/// Letters and digits mixed like a generated id: at least two digits, or a digit followed by a
/// letter. `eth0`, `alt0`, `ext4` (one trailing digit) are names and stay.
fn is_mixed_id(p: &[u8], digits: usize) -> bool {
    if !p.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
        return false;
    }
    if digits >= 2 {
        return true;
    }
    p.windows(2)
        .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn m(t: &str) -> String {
        let masker = Masker::new(MaskConfig::default(), Placeholder::Wildcard);
        let mut out = String::new();
        let flags = t.bytes().fold(0, |f, c| f | CLASS[c as usize]);
        masker.mask_token(t, flags, &mut out);
        out
    }

    #[test]
    fn pieces_and_runs() {
        assert_eq!(m("node-246"), "node-<*>");
        assert_eq!(m("(HWID=1973)"), "(HWID=<*>)");
        assert_eq!(m("10.250.19.102"), "<*>");
        assert_eq!(m("/10.10.34.11:52225"), "<*>");
        assert_eq!(m("msra-sa-41/10.190.173.170:8030"), "<*>");
        assert_eq!(m("-5,"), "<*>,");
        assert_eq!(m("msra-sa-41:8030."), "<*>.");
        assert_eq!(m("PendingReds:0"), "PendingReds:<*>");
        assert_eq!(m("v6.1.7601.23505"), "<*>");
        assert_eq!(m("size:123"), "size:<*>");
        assert_eq!(m("alt0"), "alt0");
        assert_eq!(m("blk_-1608999687919862906"), "<*>");
        assert_eq!(m("appattempt_1445144423722_0020_000001"), "<*>");
        assert_eq!(m("hello"), "hello");
        assert_eq!(m("/opt/hdfs/nodemanager/usercache"), "<*>");
        assert_eq!(m("http://x.y:80/a"), "<*>");
        assert_eq!(m("a.b@example.com"), "<*>");
        assert_eq!(m("fe80::1"), "<*>");
        assert_eq!(m("2005-06-03-15.42.50.675872"), "<*>");
        assert_eq!(m("@0x7fe3d2e0"), "@<*>");
    }
}
