//! API tokens with roles, shared by the HTTP API (bearer tokens) and the Postgres endpoint (the
//! token is the password). Only the SHA-256 of a token is stored; the token itself is shown once,
//! when it is created.
//!
//! Single-node the tokens are a JSON file of the data directory. In cluster mode
//! ([`TokenStore::open_shared`]) they are keys of a key-value bucket of the cluster's log
//! (`token.<id>`, the record with the hash), so every node knows the same tokens: a node asks the
//! bucket about a token it does not know (one created on another node works at once), follows
//! the bucket's changes (a revocation reaches every node within milliseconds) and reads the whole
//! bucket again every [`SHARED_REFRESH`] in case a change was missed. The bootstrap admin token is
//! created by the one node whose `create` of the key `bootstrap` succeeds.

use aiops_log::coord::{Kv, KvChange, KvWrite};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Cluster mode: the JetStream key-value bucket of the cluster's tokens.
pub const TOKENS_BUCKET: &str = "AIOPS_TOKENS";

/// Cluster mode: how often a node reads every token of the bucket again, besides following its
/// changes (the bound on a missed revocation if the change feed broke silently).
pub const SHARED_REFRESH: Duration = Duration::from_secs(5);

/// Cluster mode: how long one question to the bucket may take (a token lookup, a write).
const SHARED_TIMEOUT: Duration = Duration::from_secs(5);

/// The key prefix of token records in the bucket.
const TOKEN_PREFIX: &str = "token.";

/// The key whose creation elects the node that creates the bootstrap admin token.
const BOOTSTRAP_KEY: &str = "bootstrap";

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
    /// Cluster mode: the cluster's token bucket did not answer or refused the write; retrying
    /// later may help.
    #[error("cluster token store: {0}")]
    Unavailable(String),
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

/// The tokens: those created by aiops (in a JSON file under the data directory, or in the
/// cluster's token bucket) and those from the configuration (per node).
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    tokens: RwLock<Vec<TokenRecord>>,
    configured: Vec<TokenRecord>,
    write: Mutex<()>,
    /// The file's modification time when it was last read: `aiops token create` beside a
    /// running engine is picked up on the next unknown token.
    loaded: Mutex<Option<std::time::SystemTime>>,
    /// Cluster mode: the bucket and this node's copy of it.
    shared: Option<Shared>,
}

/// Cluster mode: the token bucket and the records read from it (key → revision, record).
struct Shared {
    kv: Arc<dyn Kv>,
    records: RwLock<BTreeMap<String, (u64, TokenRecord)>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("records", &self.records.read().len())
            .finish()
    }
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
        let conf = configured_records(configured)?;
        let (stored, mtime) = read_file(path)?;
        let mut tokens = stored;
        tokens.extend(conf.iter().cloned());
        Ok(TokenStore {
            path: path.to_path_buf(),
            tokens: RwLock::new(tokens),
            configured: conf,
            write: Mutex::new(()),
            loaded: Mutex::new(mtime),
            shared: None,
        })
    }

    /// Cluster mode: the tokens of the cluster's bucket `kv` (read whole now, then followed by
    /// a task of the current runtime until the store is dropped) plus this node's configured
    /// tokens. The data directory's token file is not read.
    ///
    /// The synchronous methods ([`TokenStore::verify`] on a token this node does not know yet,
    /// [`TokenStore::create`], [`TokenStore::revoke`], [`TokenStore::bootstrap`]) then ask the
    /// bucket from inside the runtime: they must run on a multi-thread tokio runtime.
    ///
    /// # Errors
    /// A configured hash that is not 64 hex digits; [`AuthError::Unavailable`] when the bucket
    /// cannot be read.
    pub async fn open_shared(
        kv: Arc<dyn Kv>,
        configured: &[ConfiguredToken],
    ) -> Result<Arc<TokenStore>, AuthError> {
        let conf = configured_records(configured)?;
        let store = Arc::new(TokenStore {
            path: PathBuf::from("cluster token bucket"),
            tokens: RwLock::new(conf.clone()),
            configured: conf,
            write: Mutex::new(()),
            loaded: Mutex::new(None),
            shared: Some(Shared {
                kv: kv.clone(),
                records: RwLock::new(BTreeMap::new()),
            }),
        });
        // Watch first, then read whole: no change between the two is missed.
        let watch = kv.watch().await.map_err(unavailable)?;
        store.relist().await?;
        tokio::spawn(follow(Arc::downgrade(&store), kv, watch));
        Ok(store)
    }

    /// Cluster mode: reads every record of the bucket and replaces this node's copy.
    async fn relist(&self) -> Result<(), AuthError> {
        let Some(sh) = &self.shared else {
            return Ok(());
        };
        let listed = tokio::time::timeout(SHARED_TIMEOUT, sh.kv.list(TOKEN_PREFIX))
            .await
            .map_err(|_| AuthError::Unavailable("listing the token bucket timed out".into()))?
            .map_err(unavailable)?;
        let mut next = BTreeMap::new();
        for e in listed {
            if let Some(rec) = parse_record(&e.key, &e.value) {
                next.insert(e.key, (e.revision, rec));
            }
        }
        {
            let mut records = sh.records.write();
            // A record read meanwhile at a newer revision (a lookup) is kept.
            for (k, (rev, rec)) in records.iter() {
                if let Some((listed_rev, _)) = next.get(k)
                    && *listed_rev < *rev
                {
                    next.insert(k.clone(), (*rev, rec.clone()));
                }
            }
            *records = next;
            self.rebuild(&records);
        }
        Ok(())
    }

    /// Cluster mode: applies one change of the bucket.
    fn apply(&self, c: KvChange) {
        let Some(sh) = &self.shared else {
            return;
        };
        if !c.key.starts_with(TOKEN_PREFIX) {
            return;
        }
        {
            let mut records = sh.records.write();
            let newer = records.get(&c.key).is_none_or(|(rev, _)| *rev < c.revision);
            if !newer {
                return;
            }
            match c.value.as_deref().and_then(|v| parse_record(&c.key, v)) {
                Some(rec) => {
                    records.insert(c.key, (c.revision, rec));
                }
                None => {
                    records.remove(&c.key);
                }
            }
            self.rebuild(&records);
        }
    }

    /// Cluster mode: the combined list from the bucket's records and the configured tokens
    /// (called with the records' lock held, so two changes cannot publish out of order).
    fn rebuild(&self, records: &BTreeMap<String, (u64, TokenRecord)>) {
        let mut all: Vec<TokenRecord> = records.values().map(|(_, r)| r.clone()).collect();
        all.extend(self.configured.iter().cloned());
        *self.tokens.write() = all;
    }

    /// Cluster mode: asks the bucket about a token this node does not know.
    async fn lookup_shared(&self, sh: &Shared, h: &str) -> Result<Option<TokenRecord>, AuthError> {
        let key = format!("{TOKEN_PREFIX}{}", &h[..12]);
        let got = tokio::time::timeout(SHARED_TIMEOUT, sh.kv.get(&key))
            .await
            .map_err(|_| AuthError::Unavailable("reading the token bucket timed out".into()))?
            .map_err(unavailable)?;
        let Some(e) = got else {
            return Ok(None);
        };
        let Some(rec) = parse_record(&e.key, &e.value) else {
            return Ok(None);
        };
        if !same_hash(&rec.sha256, h) {
            return Ok(None);
        }
        self.apply(KvChange {
            key: e.key,
            value: Some(e.value),
            revision: e.revision,
        });
        Ok(Some(rec))
    }

    /// The token record for a presented token, if it is one — asking the cluster's bucket
    /// when this node does not know the token (cluster mode). The async form of
    /// [`TokenStore::verify`], for callers that can await.
    pub async fn verify_async(&self, token: &str) -> Option<TokenRecord> {
        if let Some(r) = self.lookup(token) {
            return Some(r);
        }
        match &self.shared {
            None => {
                self.reload_if_changed();
                self.lookup(token)
            }
            Some(sh) => match self.lookup_shared(sh, &hash_token(token)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "token lookup in the cluster failed; refused");
                    None
                }
            },
        }
    }

    /// Cluster mode: runs `fut` to its end from synchronous code on a multi-thread runtime.
    fn block<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, AuthError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                Ok(tokio::task::block_in_place(|| h.block_on(fut)))
            }
            _ => Err(AuthError::Unavailable(
                "the cluster token store needs a multi-thread tokio runtime".into(),
            )),
        }
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

    /// The token record for a presented token, if it is one. In cluster mode a token this
    /// node does not know is looked up in the bucket (blocking this thread for one round trip;
    /// [`TokenStore::verify_async`] awaits instead).
    pub fn verify(&self, token: &str) -> Option<TokenRecord> {
        if let Some(r) = self.lookup(token) {
            return Some(r);
        }
        if self.shared.is_some() {
            return match self.block(self.verify_async(token)) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "token lookup in the cluster failed; refused");
                    None
                }
            };
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
            let eq = same_hash(&t.sha256, &h);
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

    /// Creates a token: returns its record and the token, which is not stored anywhere. In
    /// cluster mode the record is written to the bucket (blocking this thread;
    /// [`TokenStore::create_async`] awaits instead) and every node knows it at once.
    ///
    /// # Errors
    /// An empty name, or the file (the bucket) cannot be written (then nothing changed).
    pub fn create(
        &self,
        name: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<(TokenRecord, String), AuthError> {
        if self.shared.is_some() {
            return self.block(self.create_async(name, role, now_ms))?;
        }
        let (rec, token) = new_token(name, role, now_ms)?;
        let _w = self.write.lock();
        let mut next = self.tokens.read().clone();
        next.push(rec.clone());
        self.persist(&next)?;
        *self.tokens.write() = next;
        Ok((rec, token))
    }

    /// Revokes a stored token by id. Returns false when there is no such stored token. In
    /// cluster mode the record is deleted from the bucket (blocking this thread;
    /// [`TokenStore::revoke_async`] awaits instead); every node refuses it within
    /// milliseconds (at worst [`SHARED_REFRESH`]).
    ///
    /// # Errors
    /// A configured token (revoke it in the config), or the file (the bucket) cannot be
    /// written.
    pub fn revoke(&self, id: &str) -> Result<bool, AuthError> {
        if self.shared.is_some() {
            return self.block(self.revoke_async(id))?;
        }
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
    /// printed once (in cluster mode, see [`TokenStore::bootstrap_async`]).
    ///
    /// # Errors
    /// As for [`TokenStore::create`].
    pub fn bootstrap(&self, now_ms: i64) -> Result<Option<String>, AuthError> {
        if self.shared.is_some() {
            return self.block(self.bootstrap_async(now_ms))?;
        }
        if !self.is_empty() {
            return Ok(None);
        }
        let (_, token) = self.create("bootstrap admin", Role::Admin, now_ms)?;
        Ok(Some(token))
    }

    /// [`TokenStore::create`], awaiting the bucket in cluster mode.
    ///
    /// # Errors
    /// As [`TokenStore::create`].
    pub async fn create_async(
        &self,
        name: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<(TokenRecord, String), AuthError> {
        let Some(sh) = &self.shared else {
            return self.create(name, role, now_ms);
        };
        // A new id that collides with an existing one (48 bits) is drawn again.
        for _ in 0..3 {
            let (rec, token) = new_token(name, role, now_ms)?;
            let key = format!("{TOKEN_PREFIX}{}", rec.id);
            let body = serde_json::to_vec(&rec)
                .map_err(|e| AuthError::Invalid(format!("token record: {e}")))?;
            let value = Bytes::from(body);
            let wrote = tokio::time::timeout(SHARED_TIMEOUT, sh.kv.create(&key, value.clone()))
                .await
                .map_err(|_| AuthError::Unavailable("writing the token bucket timed out".into()))?
                .map_err(unavailable)?;
            if let KvWrite::Done(revision) = wrote {
                self.apply(KvChange {
                    key,
                    value: Some(value),
                    revision,
                });
                return Ok((rec, token));
            }
        }
        Err(AuthError::Unavailable(
            "could not draw a token id that is not taken".into(),
        ))
    }

    /// [`TokenStore::revoke`], awaiting the bucket in cluster mode.
    ///
    /// # Errors
    /// As [`TokenStore::revoke`].
    pub async fn revoke_async(&self, id: &str) -> Result<bool, AuthError> {
        let Some(sh) = &self.shared else {
            return self.revoke(id);
        };
        if self.configured.iter().any(|t| t.id == id) {
            return Err(AuthError::Invalid(format!(
                "token {id} comes from the configuration file; remove it there"
            )));
        }
        let key = format!("{TOKEN_PREFIX}{id}");
        loop {
            let got = tokio::time::timeout(SHARED_TIMEOUT, sh.kv.get(&key))
                .await
                .map_err(|_| AuthError::Unavailable("reading the token bucket timed out".into()))?;
            let entry = match got {
                Ok(e) => e,
                // Not a key the bucket takes: not a token id.
                Err(aiops_log::LogError::InvalidMessage(_)) => return Ok(false),
                Err(e) => return Err(unavailable(e)),
            };
            let Some(e) = entry else {
                return Ok(false);
            };
            let deleted =
                tokio::time::timeout(SHARED_TIMEOUT, sh.kv.delete(&key, Some(e.revision)))
                    .await
                    .map_err(|_| {
                        AuthError::Unavailable("writing the token bucket timed out".into())
                    })?
                    .map_err(unavailable)?;
            if deleted != KvWrite::Conflict {
                self.apply(KvChange {
                    key,
                    value: None,
                    revision: u64::MAX,
                });
                return Ok(true);
            }
            // Changed meanwhile: read it again.
        }
    }

    /// [`TokenStore::bootstrap`], awaiting the bucket in cluster mode. There, the admin token
    /// is created once per cluster: when the bucket holds no token and this node has no
    /// configured one, the node whose `create` of the `bootstrap` key succeeds creates it;
    /// every other node gets `None` (and prints nothing).
    ///
    /// # Errors
    /// As [`TokenStore::create`].
    pub async fn bootstrap_async(&self, now_ms: i64) -> Result<Option<String>, AuthError> {
        let Some(sh) = &self.shared else {
            return self.bootstrap(now_ms);
        };
        if !self.is_empty() {
            return Ok(None);
        }
        let marker = serde_json::json!({ "created_ms": now_ms }).to_string();
        let won = tokio::time::timeout(
            SHARED_TIMEOUT,
            sh.kv.create(BOOTSTRAP_KEY, Bytes::from(marker)),
        )
        .await
        .map_err(|_| AuthError::Unavailable("writing the token bucket timed out".into()))?
        .map_err(unavailable)?;
        if won == KvWrite::Conflict {
            return Ok(None);
        }
        let (_, token) = self
            .create_async("bootstrap admin", Role::Admin, now_ms)
            .await?;
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

/// A fresh token and its record.
fn new_token(name: &str, role: Role, now_ms: i64) -> Result<(TokenRecord, String), AuthError> {
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
    Ok((rec, token))
}

/// Whether two hex hashes are equal, comparing every byte (the time does not tell which
/// prefix matched).
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A token record of the bucket; `None` (skipped) for a value that is not one, or whose id
/// does not match its key.
fn parse_record(key: &str, value: &[u8]) -> Option<TokenRecord> {
    let rec: TokenRecord = serde_json::from_slice(value).ok()?;
    (key.strip_prefix(TOKEN_PREFIX) == Some(rec.id.as_str()) && rec.origin != "config")
        .then_some(rec)
}

fn unavailable(e: aiops_log::LogError) -> AuthError {
    AuthError::Unavailable(e.to_string())
}

/// Cluster mode: keeps a store's copy of the bucket current until the store is dropped —
/// applies each change, reads the whole bucket again every [`SHARED_REFRESH`], and starts the
/// change feed again when it breaks.
async fn follow(store: Weak<TokenStore>, kv: Arc<dyn Kv>, mut watch: aiops_log::coord::KvWatch) {
    let mut tick = tokio::time::interval(SHARED_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            change = watch.next() => match change {
                Some(Ok(c)) => {
                    let Some(s) = store.upgrade() else { return };
                    s.apply(c);
                }
                other => {
                    if let Some(Err(e)) = other {
                        tracing::warn!(error = %e, "token bucket change feed broke; starting it again");
                    }
                    loop {
                        if store.strong_count() == 0 {
                            return;
                        }
                        match kv.watch().await {
                            Ok(w) => {
                                watch = w;
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "token bucket change feed");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                    let Some(s) = store.upgrade() else { return };
                    if let Err(e) = s.relist().await {
                        tracing::warn!(error = %e, "reading the token bucket");
                    }
                }
            },
            _ = tick.tick() => {
                let Some(s) = store.upgrade() else { return };
                if let Err(e) = s.relist().await {
                    tracing::warn!(error = %e, "reading the token bucket");
                }
            }
        }
    }
}

/// The records of the configured tokens, their hashes checked.
fn configured_records(configured: &[ConfiguredToken]) -> Result<Vec<TokenRecord>, AuthError> {
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
    Ok(conf)
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
