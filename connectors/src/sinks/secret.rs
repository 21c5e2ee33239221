//! Secret values in provider configs: deserialized as plain strings, never shown by `Debug`.

use std::fmt;

/// A secret string (token, password, HMAC key, webhook URL with a token in it). `Debug` prints
/// `Secret(***)`; read it with [`Secret::expose`] only where it is sent.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Replaces every occurrence of each secret (and, for URLs, of their path and query, where
/// webhook tokens live) in `text` with `***`, in every encoding [`Redactor`] knows. Defence in
/// depth for text that comes back from a service and goes into errors or the log.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut all: Vec<String> = Vec::new();
    for s in secrets {
        all.push((*s).to_owned());
        if let Ok(u) = url::Url::parse(s) {
            if u.path().len() > 1 {
                all.push(u.path().to_owned());
            }
            if let Some(q) = u.query() {
                all.push(q.to_owned());
            }
        }
    }
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    Redactor::new(&refs).redact(text)
}

/// What a redacted value is replaced with.
pub const REDACTED: &str = "***";

/// Values shorter than this are not redacted: they would blank out ordinary words (secrets that
/// short are refused where they are configured).
const MIN_SECRET: usize = 4;

/// Removes secret values from text in every encoding a receiver or a library is likely to echo
/// them in: raw; percent-encoded (any mix of raw and `%XX` bytes, upper or lower hex, `+` for a
/// space); base64 (standard and URL-safe, with or without padding, whole or as part of a longer
/// base64 text at any of the three byte alignments, as in `Basic base64(user:password)`);
/// JSON-escaped (`\"`, `\/`, `\uXXXX`); hex (upper and lower case).
///
/// The needles are computed once; [`Redactor::redact`] is a scan per needle.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Literal encodings, longest first (so a longer encoding is removed before its prefix).
    needles: Vec<String>,
    /// Raw values, for the percent-tolerant scan.
    raw: Vec<Vec<u8>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.raw.len())
            .finish()
    }
}

fn json_escaped(s: &str, slash: bool, ascii: bool, html: bool, upper: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut units = [0u16; 2];
    for c in s.chars() {
        let escape_u = (ascii && !c.is_ascii())
            || (c as u32) < 0x20
            || (html && matches!(c, '<' | '>' | '&' | '\''));
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if slash => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ if escape_u => {
                for u in c.encode_utf16(&mut units).iter() {
                    if upper {
                        out.push_str(&format!("\\u{u:04X}"));
                    } else {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The base64 characters of `value` placed after `offset` (0–2) bytes of unknown data that
/// depend on `value`'s bits only: what appears in any base64 text containing `value` at that
/// alignment.
fn base64_core(value: &[u8], offset: usize, engine: &base64::engine::GeneralPurpose) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; offset];
    buf.extend_from_slice(value);
    let enc = engine.encode(&buf);
    let (lo, hi) = (offset * 8, (offset + value.len()) * 8);
    enc.chars()
        .enumerate()
        .filter(|(i, _)| i * 6 >= lo && i * 6 + 6 <= hi)
        .map(|(_, c)| c)
        .collect()
}

/// Shortest mid-text base64 form of a secret that is searched for (secrets of 6 bytes and
/// more have one at every alignment; whole encodings are searched for at any length).
const MIN_BASE64_CORE: usize = 8;

impl Redactor {
    /// A redactor for `secrets` (values shorter than 4 bytes are ignored).
    pub fn new(secrets: &[&str]) -> Redactor {
        use base64::Engine as _;
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let mut needles = std::collections::BTreeSet::new();
        let mut raw = Vec::new();
        for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET) {
            let b = s.as_bytes();
            raw.push(b.to_vec());
            needles.insert((*s).to_owned());
            for slash in [false, true] {
                for ascii in [false, true] {
                    for html in [false, true] {
                        for upper in [false, true] {
                            let once = json_escaped(s, slash, ascii, html, upper);
                            // JSON text inside a JSON string (an error quoting a body that
                            // quotes the value): escaped twice.
                            needles.insert(json_escaped(&once, slash, ascii, html, upper));
                            needles.insert(once);
                        }
                    }
                }
            }
            needles.insert(hex::encode(b));
            needles.insert(hex::encode_upper(b));
            for e in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                needles.insert(e.encode(b));
            }
            for e in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                for offset in 0..3 {
                    // A core under 8 characters (a secret of a few bytes) is too short to be
                    // told apart from ordinary base64 text: it would blank unrelated words.
                    let core = base64_core(b, offset, e);
                    if core.len() >= MIN_BASE64_CORE {
                        needles.insert(core);
                    }
                }
            }
        }
        let mut needles: Vec<String> = needles
            .into_iter()
            .filter(|n| n.len() >= MIN_SECRET)
            .collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Redactor { needles, raw }
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// `text` with every known encoding of every secret replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        if self.raw.is_empty() {
            return text.to_owned();
        }
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        if out.contains('%') || out.contains('+') {
            for r in &self.raw {
                out = redact_percent(&out, r);
            }
        }
        out
    }

    /// True when `text` holds a secret in any encoding [`Redactor::redact`] removes.
    pub fn leaks(&self, text: &str) -> bool {
        self.redact(text) != text
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The end of a match of `secret` at `at`, each byte either raw, `%XX` (any case) or, for a
/// space, `+`.
fn percent_match(t: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    let mut j = at;
    for &b in secret {
        let encoded = t.get(j) == Some(&b'%')
            && t.get(j + 1)
                .and_then(|&h| hex_val(h))
                .zip(t.get(j + 2).and_then(|&l| hex_val(l)))
                .is_some_and(|(h, l)| h * 16 + l == b);
        if encoded {
            j += 3;
        } else if t.get(j) == Some(&b) || (b == b' ' && t.get(j) == Some(&b'+')) {
            j += 1;
        } else {
            return None;
        }
    }
    Some(j)
}

fn redact_percent(text: &str, secret: &[u8]) -> String {
    let t = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(t.len());
    let mut i = 0;
    let mut changed = false;
    while i < t.len() {
        match percent_match(t, i, secret) {
            Some(end) if end > i => {
                out.extend_from_slice(REDACTED.as_bytes());
                i = end;
                changed = true;
            }
            _ => {
                out.push(t[i]);
                i += 1;
            }
        }
    }
    if !changed {
        return text.to_owned();
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{Secret, redact};

    #[test]
    fn debug_hides_and_redact_removes() {
        let s = Secret::new("hunter2-token");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let url = "https://hooks.slack.com/services/T0/B0/XYZ";
        let text = format!("bad token hunter2-token at /services/T0/B0/XYZ and {url}");
        let r = redact(&text, &["hunter2-token", url]);
        assert!(!r.contains("hunter2"), "{r}");
        assert!(!r.contains("XYZ"), "{r}");
    }

    #[test]
    fn a_short_secret_does_not_blank_ordinary_base64_text() {
        use super::{Redactor, base64_core};
        use base64::engine::general_purpose::STANDARD_NO_PAD;
        let secret = "k3y!";
        let r = Redactor::new(&[secret]);
        for offset in 0..3 {
            let core = base64_core(secret.as_bytes(), offset, &STANDARD_NO_PAD);
            let text = format!("request id {core}_x and more");
            assert_eq!(r.redact(&text), text, "offset {offset}: core {core:?}");
        }
        // The secret itself and its whole encodings still go.
        assert!(!r.redact("token k3y! here").contains(secret));
    }

    #[test]
    fn every_encoding_is_redacted() {
        use super::Redactor;
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let secret = "s3cr\u{e9}t/v+al ue\"<x>?&=~";
        let r = Redactor::new(&[secret]);
        let b = secret.as_bytes();
        let pct_upper: String = b.iter().map(|c| format!("%{c:02X}")).collect();
        let pct_lower: String = b.iter().map(|c| format!("%{c:02x}")).collect();
        let form = url::form_urlencoded::byte_serialize(b).collect::<String>();
        let mut cases = vec![
            secret.to_string(),
            pct_upper,
            pct_lower,
            form,
            STANDARD.encode(b),
            URL_SAFE_NO_PAD.encode(b),
            hex::encode(b),
            hex::encode_upper(b),
            serde_json::to_string(secret).unwrap_or_default(),
            serde_json::to_string(&serde_json::json!({ "k": secret })).unwrap_or_default(),
            // JSON text quoted in JSON (an error excerpt of a body that quotes the value).
            serde_json::to_string(&serde_json::json!({ "k": secret }).to_string())
                .unwrap_or_default(),
        ];
        // Inside a longer base64 text at every alignment (Basic auth: `user:password`).
        for prefix in ["", "u:", "us:", "use:"] {
            cases.push(STANDARD.encode(format!("{prefix}{secret}-tail").as_bytes()));
            cases.push(URL_SAFE_NO_PAD.encode(format!("{prefix}{secret}").as_bytes()));
        }
        for c in cases {
            let text = format!("echo: [{c}] done");
            let out = r.redact(&text);
            assert!(out.contains("***") && out.ends_with("done"), "{c} → {out}");
            assert!(!out.contains(&c), "{c} → {out}");
        }
        assert_eq!(r.redact("nothing here"), "nothing here");
    }
}

/// A parsed URL that carries a credential (webhook token in the path or query). `Debug` shows
/// only scheme, host and port.
#[derive(Clone)]
pub(crate) struct SecretUrl(url::Url);

impl SecretUrl {
    /// Wraps a checked URL.
    pub(crate) fn new(url: url::Url) -> Self {
        SecretUrl(url)
    }

    /// A copy of the URL, for the request.
    pub(crate) fn get(&self) -> url::Url {
        self.0.clone()
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.0.host_str().unwrap_or("");
        match self.0.port() {
            Some(p) => write!(f, "{}://{host}:{p}/***", self.0.scheme()),
            None => write!(f, "{}://{host}/***", self.0.scheme()),
        }
    }
}
