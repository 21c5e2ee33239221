//! The console's services (no HTTP here; the pages and sign-in routes are `http/console.rs`):
//! `[console]` settings, console users ([`users`]) and sign-in sessions ([`sessions`]).

pub mod sessions;
pub mod users;

use serde::Deserialize;
use std::time::Duration;

/// `[console]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Serve the console at `/`. Default true.
    pub enabled: bool,
    /// A session ends after this long without a request. Default 8h.
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// A session ends this long after sign-in whatever happens. Default 24h.
    #[serde(with = "humantime_serde")]
    pub session_max: Duration,
    /// Most sessions kept at once (the oldest idle ones go first). Default 10000.
    pub max_sessions: usize,
    /// Sign-in attempts per minute per user name (and ten times that per client address).
    /// Default 5.
    pub login_per_minute: f64,
    /// Burst of sign-in attempts per user name. Default 10.
    pub login_burst: f64,
    /// The issuer name authenticator apps show beside the account. Default "aiops".
    pub totp_issuer: String,
    /// Set the `Secure` flag on cookies (sent over HTTPS only). Default: false, since the
    /// listener speaks plain HTTP; set true behind a TLS-terminating proxy.
    pub secure_cookies: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: true,
            session_idle: Duration::from_secs(8 * 3600),
            session_max: Duration::from_secs(24 * 3600),
            max_sessions: 10_000,
            login_per_minute: 5.0,
            login_burst: 10.0,
            totp_issuer: "aiops".into(),
            secure_cookies: false,
        }
    }
}

impl ConsoleSettings {
    /// What is wrong with these settings, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.session_idle.is_zero() || self.session_max.is_zero() {
            p.push("console.session_idle and console.session_max must be > 0".into());
        }
        if self.max_sessions == 0 {
            p.push("console.max_sessions must be > 0".into());
        }
        if !(self.login_per_minute > 0.0 && self.login_burst >= 1.0) {
            p.push("console.login_per_minute must be > 0 and console.login_burst >= 1".into());
        }
        if self.totp_issuer.is_empty() || self.totp_issuer.contains(':') {
            p.push("console.totp_issuer must be non-empty and contain no ':'".into());
        }
        p
    }
}
