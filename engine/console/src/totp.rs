//! TOTP second factor (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps) and the base32 text
//! authenticator apps take. Pure: the caller passes the time, so tests and the server agree.

use hmac::{KeyInit, Mac};

/// Seconds per step (RFC 6238's default, what every authenticator app uses).
pub const STEP_SECS: u64 = 30;

/// Digits of a code.
pub const DIGITS: u32 = 6;

/// The code for `secret` at `unix_secs` (RFC 4226 dynamic truncation of HMAC-SHA-1 over the
/// step counter).
pub fn code(secret: &[u8], unix_secs: u64) -> u32 {
    code_at_step(secret, unix_secs / STEP_SECS)
}

fn code_at_step(secret: &[u8], step: u64) -> u32 {
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this branch cannot be taken.
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[off]) & 0x7f) << 24
        | u32::from(h[off + 1]) << 16
        | u32::from(h[off + 2]) << 8
        | u32::from(h[off + 3]);
    bin % 10u32.pow(DIGITS)
}

/// The step a typed `code` matches at `unix_secs`, allowing one step of clock skew either way;
/// `None` when it matches none. The caller refuses a step it has already accepted (replay).
pub fn verify(secret: &[u8], code_text: &str, unix_secs: u64) -> Option<u64> {
    let text = code_text.trim();
    if text.len() != DIGITS as usize || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let typed: u32 = text.parse().ok()?;
    let now = unix_secs / STEP_SECS;
    // Compare every candidate (no early exit) so timing does not tell which step matched.
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        if constant_eq(code_at_step(secret, step), typed) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

fn constant_eq(a: u32, b: u32) -> bool {
    (a ^ b) == 0
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what `otpauth://` URIs carry).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (case-insensitive; spaces and `=` padding ignored); `None` on another character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        if c == b' ' || c == b'=' {
            continue;
        }
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())?;
        buf = (buf << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The `otpauth://totp/…` URI an authenticator app enrols from (Google's Key Uri Format).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32_encode(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8-digit codes there; the last 6 digits are ours).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, want8) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(code(secret, t), want8 % 1_000_000, "t={t}");
        }
    }

    #[test]
    fn verify_allows_one_step_of_skew_and_refuses_others() {
        let s = b"12345678901234567890";
        let t = 1_234_567_890;
        let c = format!("{:06}", code(s, t));
        assert_eq!(verify(s, &c, t), Some(t / 30));
        assert_eq!(verify(s, &c, t + 30), Some(t / 30));
        assert_eq!(verify(s, &c, t - 30), Some(t / 30));
        assert_eq!(verify(s, &c, t + 90), None);
        assert_eq!(verify(s, "12345", t), None);
        assert_eq!(verify(s, "abcdef", t), None);
        assert_eq!(verify(s, "1234567", t), None);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32_decode("mzxw6ytboi======").as_deref(),
            Some(&b"foobar"[..])
        );
        for n in 0..40u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base32_decode(&base32_encode(&v)), Some(v));
        }
        assert_eq!(base32_decode("M1"), None);
    }

    #[test]
    fn the_uri_escapes_names() {
        let u = otpauth_uri("aiops", "a b&c", b"12345");
        assert!(u.starts_with("otpauth://totp/aiops:a%20b%26c?secret=GEZDGNBV&issuer=aiops"));
    }
}
