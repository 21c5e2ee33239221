//! What the deploy webhooks share: authenticity checks (HMAC signatures and shared tokens, both
//! compared in constant time), reading the body as the documented JSON with errors that name the
//! field, the size limits on what a report carries, and timestamp parsing. Kept in one place so
//! the four hooks refuse the same hostile input the same way.

use super::{DeployHookError, HookConfigError};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;

/// Longest `service`, `environment`, `version`, `external_id` or `requested_by` accepted, in
/// bytes: these become labels and keys, so a longer one is refused rather than cut (two
/// different long names cut to one prefix would merge two services).
pub const MAX_NAME_BYTES: usize = 256;
/// Longest `description` kept, in bytes; a longer one is cut on a char boundary (it is free text).
pub const MAX_DESCRIPTION_BYTES: usize = 512;
/// Longest `url` kept, in bytes; a longer link is dropped (a cut link leads nowhere).
pub const MAX_URL_BYTES: usize = 2048;

/// Refuses to build a hook whose secret is empty or only whitespace: checking a signature or a
/// token against an empty secret would accept requests from anyone who knows the route.
pub fn require_secret(kind: &'static str, secret: &str) -> Result<(), HookConfigError> {
    if secret.trim().is_empty() {
        return Err(HookConfigError::EmptySecret { kind });
    }
    Ok(())
}

/// The hash functions an HMAC signature header may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlg {
    /// `sha224`
    Sha224,
    /// `sha256`
    Sha256,
    /// `sha384`
    Sha384,
    /// `sha512`
    Sha512,
}

impl HmacAlg {
    /// The algorithm named `name` (as in `sha256=<hex>`), if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha224" => Some(Self::Sha224),
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// Checks `hex_sig` (the hex part of a `<alg>=<hex>` header) against the HMAC of `body` under
/// `secret`, in constant time (`verify_slice`). A signature that is not hex is as wrong as a
/// wrong one.
pub fn verify_hmac(
    alg: HmacAlg,
    secret: &str,
    body: &[u8],
    hex_sig: &str,
) -> Result<(), DeployHookError> {
    let wrong = || DeployHookError::Unauthenticated("signature does not match the body".into());
    let sig = hex::decode(hex_sig.trim()).map_err(|_| wrong())?;
    fn check<M: Mac + hmac::digest::KeyInit>(secret: &str, body: &[u8], sig: &[u8]) -> bool {
        match <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()) {
            Ok(mut mac) => {
                mac.update(body);
                mac.verify_slice(sig).is_ok()
            }
            Err(_) => false,
        }
    }
    let ok = match alg {
        HmacAlg::Sha224 => check::<Hmac<sha2::Sha224>>(secret, body, &sig),
        HmacAlg::Sha256 => check::<Hmac<sha2::Sha256>>(secret, body, &sig),
        HmacAlg::Sha384 => check::<Hmac<sha2::Sha384>>(secret, body, &sig),
        HmacAlg::Sha512 => check::<Hmac<sha2::Sha512>>(secret, body, &sig),
    };
    if ok { Ok(()) } else { Err(wrong()) }
}

/// Compares a presented token with the configured one without leaking where they differ or
/// how long the secret is: both are hashed first (HMAC-SHA-256 under a fixed key) and the two
/// digests compared with `verify_slice`, which is constant time.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    const KEY: &[u8] = b"aiops-token-compare";
    let Ok(mut mac) = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(KEY) else {
        return false;
    };
    mac.update(expected.as_bytes());
    let expected_digest = mac.finalize().into_bytes();
    let Ok(mut mac) = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(KEY) else {
        return false;
    };
    mac.update(presented.as_bytes());
    mac.verify_slice(&expected_digest).is_ok()
}

/// Reads the body as `T`, naming the field at fault (`deployment: missing field `id``,
/// `status: invalid type: …`). Bodies that are not UTF-8 or not JSON are refused here too.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, DeployHookError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DeployHookError::BadPayload("body is empty".into()));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(DeployHookError::BadPayload("body is not UTF-8".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            DeployHookError::BadPayload(format!("body is not JSON: {inner}"))
        } else if path == "." || path.is_empty() {
            DeployHookError::BadPayload(inner.to_string())
        } else {
            DeployHookError::BadPayload(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| DeployHookError::BadPayload(format!("body is not JSON: {e}")))?;
    Ok(value)
}

/// A name-like field (`service`, `environment`, `version`, …) checked: present, not blank, at
/// most [`MAX_NAME_BYTES`]. `field` is the payload path, so the error says where to look.
pub fn name_field(field: &str, value: Option<&str>) -> Result<String, DeployHookError> {
    let v = value
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "<no value>")
        .ok_or_else(|| DeployHookError::BadPayload(format!("missing field `{field}`")))?;
    if v.len() > MAX_NAME_BYTES {
        return Err(DeployHookError::BadPayload(format!(
            "field `{field}` is {} bytes, more than the {MAX_NAME_BYTES} allowed",
            v.len()
        )));
    }
    Ok(v.to_string())
}

/// An optional name-like field: blank means absent; too long is refused like [`name_field`].
pub fn optional_name(field: &str, value: Option<&str>) -> Result<Option<String>, DeployHookError> {
    match value.map(str::trim) {
        None | Some("") | Some("<no value>") => Ok(None),
        Some(v) => name_field(field, Some(v)).map(Some),
    }
}

/// Free text cut to [`MAX_DESCRIPTION_BYTES`] on a char boundary; blank means none.
pub fn description(value: Option<&str>) -> Option<String> {
    let v = value
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "<no value>")?;
    Some(truncate_on_char_boundary(v, MAX_DESCRIPTION_BYTES).to_string())
}

/// A link kept if it is non-blank and at most [`MAX_URL_BYTES`].
pub fn url(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= MAX_URL_BYTES && *v != "<no value>")
        .map(str::to_string)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn truncate_on_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An RFC 3339 timestamp (`2019-05-15T15:20:55Z`, `2022-10-28T07:26:19+02:00`) as Unix ms.
pub fn rfc3339_ms(field: &str, value: &str) -> Result<i64, DeployHookError> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            DeployHookError::BadPayload(format!(
                "field `{field}` is not an RFC 3339 time ({e}): {:?}",
                truncate_on_char_boundary(value, 64)
            ))
        })
}

/// Helpers the hooks' tests share: signing a body, building headers.
#[cfg(test)]
pub mod testing {
    use hmac::{Hmac, Mac};

    /// Hex HMAC of `body` under `secret` with the hash function `alg` names.
    pub fn sign(alg: &str, secret: &str, body: &[u8]) -> String {
        fn mac<M: Mac + hmac::digest::KeyInit>(secret: &str, body: &[u8]) -> String {
            let mut m = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            m.update(body);
            hex::encode(m.finalize().into_bytes())
        }
        match alg {
            "sha224" => mac::<Hmac<sha2::Sha224>>(secret, body),
            "sha256" => mac::<Hmac<sha2::Sha256>>(secret, body),
            "sha384" => mac::<Hmac<sha2::Sha384>>(secret, body),
            "sha512" => mac::<Hmac<sha2::Sha512>>(secret, body),
            other => panic!("no such hash function in tests: {other}"),
        }
    }

    /// Headers as a hook sees them (names lower-cased).
    pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn truncation_keeps_whole_chars() {
        let s = "é".repeat(300); // 600 bytes, 2 per char
        let t = truncate_on_char_boundary(&s, 511);
        assert_eq!(t.len(), 510);
        assert!(t.chars().all(|c| c == 'é'));
        assert_eq!(truncate_on_char_boundary("abc", 512), "abc");
    }

    #[test]
    fn tokens_compare_by_value_only() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3cret "));
        assert!(!token_matches("s3cret", ""));
    }

    #[test]
    fn hmac_accepts_only_the_right_signature() {
        let body = b"{\"a\":1}";
        let mut mac = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(b"k").unwrap();
        mac.update(body);
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(verify_hmac(HmacAlg::Sha256, "k", body, &good).is_ok());
        assert!(verify_hmac(HmacAlg::Sha256, "other", body, &good).is_err());
        assert!(verify_hmac(HmacAlg::Sha512, "k", body, &good).is_err());
        assert!(verify_hmac(HmacAlg::Sha256, "k", body, "zz").is_err());
    }

    #[test]
    fn names_are_capped_not_cut() {
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        let err = name_field("project.name", Some(&long)).unwrap_err();
        assert!(err.to_string().contains("project.name"), "{err}");
        assert_eq!(
            name_field("x", Some(&"a".repeat(MAX_NAME_BYTES)))
                .unwrap()
                .len(),
            MAX_NAME_BYTES
        );
        let err = name_field("deployment.environment", Some("  ")).unwrap_err();
        assert!(err.to_string().contains("deployment.environment"), "{err}");
    }

    #[test]
    fn rfc3339_times_become_ms() {
        assert_eq!(
            rfc3339_ms("t", "2019-05-15T15:20:55Z").unwrap(),
            1_557_933_655_000
        );
        assert_eq!(
            rfc3339_ms("t", "2019-05-15T17:20:55.250+02:00").unwrap(),
            1_557_933_655_250
        );
        assert!(
            rfc3339_ms("t", "yesterday")
                .unwrap_err()
                .to_string()
                .contains("`t`")
        );
    }
}
