//! Sign-in sessions of the console, in this node's memory: a random id in an HttpOnly,
//! SameSite=Strict cookie (only its SHA-256 is kept), a CSRF token per session, an idle and an
//! absolute expiry, and the stage of a sign-in that still needs its second factor. Also the
//! sign-in rate limits and the counters `aiops_console_*`.

use super::ConsoleSettings;
use aiops_read::auth::{RateLimiter, Role};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "aiops_session";

/// How long a sign-in may wait for its TOTP code or enrolment.
pub const PENDING_MAX: std::time::Duration = std::time::Duration::from_secs(600);

/// Where a sign-in stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Password accepted; the TOTP code is still needed.
    Totp,
    /// Password accepted, no TOTP yet: enrolling this secret.
    Enrol(Vec<u8>),
    /// Signed in.
    Active,
}

/// How the session was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A console user (password + TOTP).
    User,
    /// An API token pasted on the sign-in page (its id, so revoking the token ends the session).
    Token(String),
}

/// One session. Its `Debug` shows who and where the sign-in stands, never the CSRF token or an
/// enrolment secret.
#[derive(Clone)]
pub struct Session {
    /// The user name, or the token's name.
    pub user: String,
    /// The role.
    pub role: Role,
    /// User or token.
    pub kind: Kind,
    /// The CSRF token every write must carry (`X-CSRF-Token`, or the `csrf` form field).
    pub csrf: String,
    /// Where the sign-in stands.
    pub stage: Stage,
    created: Instant,
    last_seen: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Stage::Totp => "totp",
            Stage::Enrol(_) => "enrol",
            Stage::Active => "active",
        };
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

/// Sign-in outcomes counted in `aiops_console_logins_total{result}`.
pub const RESULTS: [&str; 6] = [
    "ok",
    "bad_password",
    "bad_totp",
    "bad_token",
    "rate_limited",
    "bad_csrf",
];

/// The sessions of this node.
pub struct Sessions {
    settings: ConsoleSettings,
    map: Mutex<HashMap<String, Session>>,
    /// Per user name.
    by_user: RateLimiter,
    /// Per client address.
    by_addr: RateLimiter,
    counts: [AtomicU64; RESULTS.len()],
}

fn digest(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// A random URL-safe secret of 32 bytes.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    hex::encode(b)
}

/// Constant-time string equality (CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("sessions", &self.map.lock().len())
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// No sessions yet.
    pub fn new(settings: ConsoleSettings) -> Sessions {
        let per_sec = settings.login_per_minute / 60.0;
        Sessions {
            by_user: RateLimiter::new(per_sec, settings.login_burst),
            by_addr: RateLimiter::new(per_sec * 10.0, settings.login_burst * 10.0),
            settings,
            map: Mutex::new(HashMap::new()),
            counts: Default::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ConsoleSettings {
        &self.settings
    }

    /// Counts one sign-in outcome (one of [`RESULTS`]).
    pub fn count(&self, result: &str) {
        if let Some(i) = RESULTS.iter().position(|r| *r == result) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes one sign-in attempt from `addr`, for `user` when the attempt names one (a token
    /// sign-in names none: it is limited per address only, so bad tokens from one client do not
    /// lock out everyone's token sign-in); `Err(seconds)` when refused.
    pub fn attempt(&self, user: Option<&str>, addr: &str, now: Instant) -> Result<(), f64> {
        self.by_addr.check(addr, now)?;
        match user {
            Some(u) => self.by_user.check(&u.to_ascii_lowercase(), now),
            None => Ok(()),
        }
    }

    /// Opens a session; its cookie value.
    pub fn open(&self, user: &str, role: Role, kind: Kind, stage: Stage, now: Instant) -> String {
        let cookie = random_secret();
        let s = Session {
            user: user.to_string(),
            role,
            kind,
            csrf: random_secret(),
            stage,
            created: now,
            last_seen: now,
        };
        let mut m = self.map.lock();
        self.expire(&mut m, now);
        if m.len() >= self.settings.max_sessions
            && let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(digest(&cookie), s);
        cookie
    }

    fn expire(&self, m: &mut HashMap<String, Session>, now: Instant) {
        let (idle, max) = (self.settings.session_idle, self.settings.session_max);
        m.retain(|_, s| {
            let max = if s.stage == Stage::Active {
                max
            } else {
                PENDING_MAX
            };
            now.saturating_duration_since(s.last_seen) < idle
                && now.saturating_duration_since(s.created) < max
        });
    }

    /// The session of a cookie value (seen now), if it is live.
    pub fn get(&self, cookie: &str, now: Instant) -> Option<Session> {
        let mut m = self.map.lock();
        let key = digest(cookie);
        let s = m.get_mut(&key)?;
        // A sign-in still waiting for its second factor lives minutes, not hours: a password
        // alone must not hold an enrolment open until the user enrols for real.
        let max = if s.stage == Stage::Active {
            self.settings.session_max
        } else {
            PENDING_MAX
        };
        let live = now.saturating_duration_since(s.last_seen) < self.settings.session_idle
            && now.saturating_duration_since(s.created) < max;
        if !live {
            m.remove(&key);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    /// Moves a pending sign-in to `stage`; with [`Stage::Active`] the session gets a new id
    /// (no fixation of a pre-sign-in id). The cookie value to set from now on.
    pub fn advance(&self, cookie: &str, stage: Stage, now: Instant) -> Option<String> {
        let mut m = self.map.lock();
        let mut s = m.remove(&digest(cookie))?;
        s.stage = stage;
        s.created = now;
        s.last_seen = now;
        s.csrf = random_secret();
        let next = random_secret();
        m.insert(digest(&next), s);
        Some(next)
    }

    /// Ends a session.
    pub fn close(&self, cookie: &str) {
        self.map.lock().remove(&digest(cookie));
    }

    /// Ends every session of a user (deleted, password or TOTP reset) or of a token.
    pub fn close_user(&self, user: &str) {
        self.map
            .lock()
            .retain(|_, s| !(s.kind == Kind::User && s.user == user));
    }

    /// Ends every session opened with the token of id `token_id` (revoked).
    pub fn close_token(&self, token_id: &str) {
        self.map
            .lock()
            .retain(|_, s| s.kind != Kind::Token(token_id.to_string()));
    }

    /// `aiops_console_*` in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::from(
            "# HELP aiops_console_logins_total Console sign-in steps by outcome.\n# TYPE aiops_console_logins_total counter\n",
        );
        for (i, r) in RESULTS.iter().enumerate() {
            out.push_str(&format!(
                "aiops_console_logins_total{{result=\"{r}\"}} {}\n",
                self.counts[i].load(Ordering::Relaxed)
            ));
        }
        let n = self.map.lock().len();
        out.push_str(&format!(
            "# HELP aiops_console_sessions Console sessions held by this node.\n# TYPE aiops_console_sessions gauge\naiops_console_sessions {n}\n"
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn sessions_expire_when_idle_and_at_their_end() {
        let s = Sessions::new(ConsoleSettings {
            session_idle: Duration::from_secs(10),
            session_max: Duration::from_secs(25),
            ..Default::default()
        });
        let t0 = Instant::now();
        let c = s.open("a", Role::Viewer, Kind::User, Stage::Active, t0);
        assert!(s.get(&c, t0 + Duration::from_secs(9)).is_some());
        assert!(s.get(&c, t0 + Duration::from_secs(18)).is_some());
        // Touched at 18 s, but the absolute end is 25 s.
        assert!(s.get(&c, t0 + Duration::from_secs(26)).is_none());
        let d = s.open("a", Role::Viewer, Kind::User, Stage::Active, t0);
        assert!(s.get(&d, t0 + Duration::from_secs(11)).is_none());
        assert!(s.get("forged", t0).is_none());
    }

    #[test]
    fn a_sign_in_waiting_for_its_code_ends_after_minutes() {
        let s = Sessions::new(ConsoleSettings::default());
        let t0 = Instant::now();
        let c = s.open("a", Role::Admin, Kind::User, Stage::Enrol(vec![1]), t0);
        assert!(s.get(&c, t0 + Duration::from_secs(300)).is_some());
        assert!(
            s.get(&c, t0 + PENDING_MAX + Duration::from_secs(1))
                .is_none()
        );
    }

    #[test]
    fn advancing_changes_the_id_and_the_csrf_token() {
        let s = Sessions::new(ConsoleSettings::default());
        let t0 = Instant::now();
        let c = s.open("a", Role::Admin, Kind::User, Stage::Totp, t0);
        let before = s.get(&c, t0).unwrap();
        let n = s.advance(&c, Stage::Active, t0).unwrap();
        assert!(s.get(&c, t0).is_none());
        let after = s.get(&n, t0).unwrap();
        assert_eq!(after.stage, Stage::Active);
        assert_ne!(after.csrf, before.csrf);
        s.close_user("a");
        assert!(s.get(&n, t0).is_none());
    }

    #[test]
    fn sign_in_attempts_are_limited_per_user() {
        let s = Sessions::new(ConsoleSettings {
            login_per_minute: 1.0,
            login_burst: 3.0,
            ..Default::default()
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(s.attempt(Some("Alice"), "1.2.3.4", t0).is_ok());
        }
        assert!(s.attempt(Some("alice"), "5.6.7.8", t0).is_err());
        assert!(s.attempt(Some("bob"), "1.2.3.4", t0).is_ok());
        assert!(
            s.attempt(Some("alice"), "1.2.3.4", t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn the_session_store_is_bounded() {
        let s = Sessions::new(ConsoleSettings {
            max_sessions: 3,
            ..Default::default()
        });
        let t0 = Instant::now();
        let first = s.open("a", Role::Viewer, Kind::User, Stage::Active, t0);
        for i in 1..5 {
            s.open(
                "a",
                Role::Viewer,
                Kind::User,
                Stage::Active,
                t0 + Duration::from_secs(i),
            );
        }
        assert!(s.get(&first, t0 + Duration::from_secs(5)).is_none());
        assert_eq!(s.map.lock().len(), 3);
    }
}
