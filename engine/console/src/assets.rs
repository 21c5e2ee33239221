//! The stylesheet and script of the console, written here (no third-party code), compiled into
//! the binary so the console works air-gapped. The server serves them as `/console/app.css` and
//! `/console/app.js`; [`version`] goes into their URLs (`?v=`) so browsers may cache them forever.

use std::sync::OnceLock;

/// The stylesheet (`assets/console.css`); its top comment lists the classes templates may use.
pub const CSS: &str = include_str!("../assets/console.css");

/// The script (`assets/console.js`); its top comment is the JavaScript contract.
pub const JS: &str = include_str!("../assets/console.js");

/// A short hash of [`CSS`] and [`JS`] (16 hex digits, FNV-1a 64): changes whenever either does.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in CSS.bytes().chain([0u8]).chain(JS.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_stable_hex() {
        assert_eq!(version().len(), 16);
        assert!(version().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(version(), version());
    }
}
