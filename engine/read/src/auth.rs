//! API tokens with roles, shared by the HTTP API (bearer tokens) and the Postgres endpoint (the
//! token is the password). Only the SHA-256 of a token is stored; the token itself is shown once,
//! when it is created.

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a token may do. Roles are not a ladder: `ingest` only writes data, the others read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Push data into the ingest routes; nothing else.
    Ingest,
    /// Read everything that is not configuration or audit.
    Viewer,
    /// Viewer, plus silences, acknowledgements, executing and approving workflows.
    Operator,
    /// Everything, including configuration, tokens and the audit trail.
    Admin,
}

impl Role {
    /// The role's name in configuration, the API and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// True when a token with this role may do what needs `need`.
    pub fn allows(self, need: Role) -> bool {
        match need {
            Role::Ingest => matches!(self, Role::Ingest | Role::Admin),
            Role::Viewer => matches!(self, Role::Viewer | Role::Operator | Role::Admin),
            Role::Operator => matches!(self, Role::Operator | Role::Admin),
            Role::Admin => self == Role::Admin,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ingest" => Ok(Role::Ingest),
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(AuthError::Invalid(format!(
                "unknown role {other:?}: expected ingest, viewer, operator or admin"
            ))),
        }
    }
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token file could not be read or written.
    #[error("token store {path}: {detail}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// A request to the store is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// A stored token: who it is for and its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Stable id (the first 12 hex digits of the hash), used to revoke and in audit events.
    pub id: String,
    /// A human name: who or what uses it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// When it was created, Unix ms.
    pub created_ms: i64,
    /// Where it comes from: `store` (created by aiops) or `config` (listed in the config file,
    /// cannot be revoked through the API).
    #[serde(default = "store_origin")]
    pub origin: String,
}

fn store_origin() -> String {
    "store".to_string()
}

/// A token listed in the configuration by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredToken {
    /// Who or what uses it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hex SHA-256 of the token (`printf %s TOKEN | sha256sum`).
    pub sha256: String,
}

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The tokens: those created by aiops (in a JSON file under the data directory) and those from
/// the configuration.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    tokens: RwLock<Vec<TokenRecord>>,
    configured: Vec<TokenRecord>,
    write: Mutex<()>,
    /// The file's modification time when it was last read: `aiops token create` beside a
    /// running engine is picked up on the next unknown token.
    loaded: Mutex<Option<std::time::SystemTime>>,
}

#[derive(Serialize, Deserialize)]
struct StoreFile {
    tokens: Vec<TokenRecord>,
}

fn serr(path: &Path) -> impl Fn(String) -> AuthError + '_ {
    move |detail| AuthError::Store {
        path: path.to_path_buf(),
        detail,
    }
}

impl TokenStore {
    /// Opens (or starts) the store at `path`, adding the configured tokens.
    ///
    /// # Errors
    /// An unreadable or malformed file, or a configured hash that is not 64 hex digits.
    pub fn open(path: &Path, configured: &[ConfiguredToken]) -> Result<TokenStore, AuthError> {
        let mut conf = Vec::new();
        for c in configured {
            let h = c.sha256.to_ascii_lowercase();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(AuthError::Invalid(format!(
                    "auth.tokens: token {:?} has sha256 {:?}, expected 64 hex digits",
                    c.name, c.sha256
                )));
            }
            conf.push(TokenRecord {
                id: h[..12].to_string(),
                name: c.name.clone(),
                role: c.role,
                sha256: h,
                created_ms: 0,
                origin: "config".to_string(),
            });
        }
        let (stored, mtime) = read_file(path)?;
        let mut tokens = stored;
        tokens.extend(conf.iter().cloned());
        Ok(TokenStore {
            path: path.to_path_buf(),
            tokens: RwLock::new(tokens),
            configured: conf,
            write: Mutex::new(()),
            loaded: Mutex::new(mtime),
        })
    }

    /// Reads the file again if it changed since it was last read.
    fn reload_if_changed(&self) {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if mtime.is_none() || *self.loaded.lock() == mtime {
            return;
        }
        let _w = self.write.lock();
        if let Ok((mut stored, m)) = read_file(&self.path) {
            stored.extend(self.configured.iter().cloned());
            *self.tokens.write() = stored;
            *self.loaded.lock() = m;
        }
    }

    /// The token record for a presented token, if it is one.
    pub fn verify(&self, token: &str) -> Option<TokenRecord> {
        if let Some(r) = self.lookup(token) {
            return Some(r);
        }
        self.reload_if_changed();
        self.lookup(token)
    }

    fn lookup(&self, token: &str) -> Option<TokenRecord> {
        let h = hash_token(token);
        let tokens = self.tokens.read();
        // Compare every stored hash fully so the time does not tell which prefix matched.
        let mut found = None;
        for t in tokens.iter() {
            let eq = t
                .sha256
                .bytes()
                .zip(h.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
                && t.sha256.len() == h.len();
            if eq && found.is_none() {
                found = Some(t.clone());
            }
        }
        found
    }

    /// Every token record (hashes, never tokens).
    pub fn list(&self) -> Vec<TokenRecord> {
        self.tokens.read().clone()
    }

    /// True when no token exists at all.
    pub fn is_empty(&self) -> bool {
        self.tokens.read().is_empty()
    }

    /// Creates a token: returns its record and the token, which is not stored anywhere.
    ///
    /// # Errors
    /// An empty name, or the file cannot be written (then nothing changed).
    pub fn create(
        &self,
        name: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<(TokenRecord, String), AuthError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(AuthError::Invalid(
                "token name must be 1 to 200 characters".to_string(),
            ));
        }
        let secret: [u8; 32] = rand::random();
        let token = format!("aiops_{}", hex::encode(secret));
        let sha256 = hash_token(&token);
        let rec = TokenRecord {
            id: sha256[..12].to_string(),
            name: name.to_string(),
            role,
            sha256,
            created_ms: now_ms,
            origin: store_origin(),
        };
        let _w = self.write.lock();
        let mut next = self.tokens.read().clone();
        next.push(rec.clone());
        self.persist(&next)?;
        *self.tokens.write() = next;
        Ok((rec, token))
    }

    /// Revokes a stored token by id. Returns false when there is no such stored token.
    ///
    /// # Errors
    /// A configured token (revoke it in the config), or the file cannot be written.
    pub fn revoke(&self, id: &str) -> Result<bool, AuthError> {
        let _w = self.write.lock();
        let mut next = self.tokens.read().clone();
        let Some(pos) = next.iter().position(|t| t.id == id) else {
            return Ok(false);
        };
        if next[pos].origin == "config" {
            return Err(AuthError::Invalid(format!(
                "token {id} comes from the configuration file; remove it there"
            )));
        }
        next.remove(pos);
        self.persist(&next)?;
        *self.tokens.write() = next;
        Ok(true)
    }

    /// On a first start with no token at all: creates an admin token and returns it, to be
    /// printed once.
    ///
    /// # Errors
    /// As for [`TokenStore::create`].
    pub fn bootstrap(&self, now_ms: i64) -> Result<Option<String>, AuthError> {
        if !self.is_empty() {
            return Ok(None);
        }
        let (_, token) = self.create("bootstrap admin", Role::Admin, now_ms)?;
        Ok(Some(token))
    }

    fn persist(&self, tokens: &[TokenRecord]) -> Result<(), AuthError> {
        let path = &self.path;
        let stored: Vec<TokenRecord> = tokens
            .iter()
            .filter(|t| t.origin != "config")
            .cloned()
            .collect();
        let body = serde_json::to_vec_pretty(&StoreFile { tokens: stored })
            .map_err(|e| serr(path)(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| serr(path)(e.to_string()))?;
        }
        // Written beside and renamed over: a crash leaves the old file or the new one.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, body).map_err(|e| serr(path)(e.to_string()))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| serr(path)(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| serr(path)(e.to_string()))?;
        *self.loaded.lock() = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<(Vec<TokenRecord>, Option<std::time::SystemTime>), AuthError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let f: StoreFile = serde_json::from_slice(&bytes)
                .map_err(|e| serr(path)(format!("malformed: {e}")))?;
            let m = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            Ok((f.tokens, m))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), None)),
        Err(e) => Err(serr(path)(e.to_string())),
    }
}

/// A token bucket per token id: `rate` requests per second with bursts of `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `rate` per second per key, `burst` at once. `rate <= 0` disables it.
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request for `key` at `now`; `Err(seconds)` = refused, retry after that long.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), f64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut b = self.buckets.lock();
        if b.len() > 100_000 {
            // Keys are token ids, so this only happens with many tokens; start over rather
            // than grow without bound.
            b.clear();
        }
        let e = b.entry(key.to_string()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(e.1).as_secs_f64();
        e.0 = (e.0 + elapsed * self.rate).min(self.burst);
        e.1 = now;
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            Ok(())
        } else {
            Err((1.0 - e.0) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth/tokens.json");
        let store = TokenStore::open(&path, &[]).unwrap();
        let admin = store.bootstrap(1).unwrap().unwrap();
        assert!(store.bootstrap(2).unwrap().is_none());
        let (rec, viewer) = store.create("grafana", Role::Viewer, 3).unwrap();
        let file = std::fs::read_to_string(&path).unwrap();
        assert!(!file.contains(&admin) && !file.contains(&viewer));
        assert!(file.contains(&rec.sha256));
        let reopened = TokenStore::open(&path, &[]).unwrap();
        assert_eq!(reopened.verify(&viewer).unwrap().role, Role::Viewer);
        assert_eq!(reopened.verify(&admin).unwrap().role, Role::Admin);
        assert!(reopened.verify("aiops_wrong").is_none());
        assert!(reopened.revoke(&rec.id).unwrap());
        assert!(reopened.verify(&viewer).is_none());
    }

    #[test]
    fn configured_hashes_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let bad = ConfiguredToken {
            name: "x".into(),
            role: Role::Viewer,
            sha256: "abc".into(),
        };
        let err = TokenStore::open(&dir.path().join("t.json"), &[bad]).unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
        let ok = ConfiguredToken {
            name: "ci".into(),
            role: Role::Operator,
            sha256: hash_token("s3cret-token"),
        };
        let store = TokenStore::open(&dir.path().join("t.json"), &[ok]).unwrap();
        assert_eq!(store.verify("s3cret-token").unwrap().role, Role::Operator);
        assert!(store.revoke(&store.list()[0].id).is_err());
    }

    #[test]
    fn roles_are_not_a_ladder_for_ingest() {
        assert!(Role::Admin.allows(Role::Ingest));
        assert!(!Role::Viewer.allows(Role::Ingest));
        assert!(!Role::Ingest.allows(Role::Viewer));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Operator.allows(Role::Admin));
    }

    #[test]
    fn rate_limit_refills() {
        let l = RateLimiter::new(10.0, 2.0);
        let t0 = Instant::now();
        assert!(l.check("a", t0).is_ok());
        assert!(l.check("a", t0).is_ok());
        assert!(l.check("a", t0).is_err());
        assert!(l.check("b", t0).is_ok());
        assert!(
            l.check("a", t0 + std::time::Duration::from_millis(150))
                .is_ok()
        );
    }
}
