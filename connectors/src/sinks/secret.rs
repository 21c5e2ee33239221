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
/// webhook tokens live) in `text` with `***`. Defence in depth for text that comes back from a
/// service and goes into errors or the log.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        let mut needles = vec![(*s).to_owned()];
        if let Ok(u) = url::Url::parse(s) {
            if u.path().len() > 1 {
                needles.push(u.path().to_owned());
            }
            if let Some(q) = u.query() {
                needles.push(q.to_owned());
            }
        }
        for n in needles {
            // Very short values would blank out ordinary words; secrets are not that short.
            if n.len() >= 4 {
                out = out.replace(&n, "***");
            }
        }
    }
    out
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
