//! Console users: a name, a role (as API tokens have), an Argon2id password hash and a TOTP
//! secret. Kept in `DATA_DIR/console-users.json` (mode 0600, written atomically) on one node, in
//! the cluster's key-value bucket (`user.<name>`) in cluster mode, so every node signs in the
//! same users. Every operation reads the store: users are few and sign-ins rare, and nothing can
//! go stale between nodes.

use aiops_log::coord::{Kv, KvWrite};
use aiops_read::auth::Role;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The cluster's key-value bucket of console users.
pub const USERS_BUCKET: &str = "aiops_console_users";

/// Key prefix of users in the cluster bucket.
const USER_PREFIX: &str = "user.";

/// Shortest password accepted (NIST SP 800-63B asks for at least 8).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// One console user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Sign-in name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// Argon2id PHC string of the password.
    pub password: String,
    /// Base32 TOTP secret once enrolled; `None` until the first sign-in enrols one.
    #[serde(default)]
    pub totp: Option<String>,
    /// The last TOTP step accepted (a code is accepted once).
    #[serde(default)]
    pub totp_step: u64,
    /// Created, Unix ms.
    pub created_ms: i64,
    /// Last successful sign-in, Unix ms.
    #[serde(default)]
    pub last_login_ms: Option<i64>,
    /// Wrong TOTP codes since the last good one.
    #[serde(default)]
    pub failed_totp: u64,
}

/// What the admin page shows of a user (never the hash or the secret).
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// Sign-in name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Has a TOTP second factor.
    pub enrolled: bool,
    /// Created, Unix ms.
    pub created_ms: i64,
    /// Last sign-in, Unix ms.
    pub last_login_ms: Option<i64>,
    /// Wrong TOTP codes since the last good one.
    pub failed_totp: u64,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> UserView {
        UserView {
            name: u.name.clone(),
            role: u.role,
            enrolled: u.totp.is_some(),
            created_ms: u.created_ms,
            last_login_ms: u.last_login_ms,
            failed_totp: u.failed_totp,
        }
    }
}

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The request is wrong (the caller fixes it): a bad name, a short password.
    #[error("{0}")]
    Invalid(String),
    /// A user of that name exists.
    #[error("console user {0:?} already exists")]
    Exists(String),
    /// No user of that name.
    #[error("no console user {0:?}")]
    NotFound(String),
    /// The store could not be read or written (the operator fixes the disk or the cluster).
    #[error("console user store {where_}: {detail}")]
    Store {
        /// The file or bucket.
        where_: String,
        /// What failed.
        detail: String,
    },
}

/// Where users are kept.
#[derive(Debug)]
enum Backend {
    File(PathBuf),
    Kv(Arc<dyn Kv>),
}

/// The console users.
#[derive(Debug)]
pub struct UserStore {
    backend: Backend,
    /// Serializes read-modify-write of the file (the bucket uses compare-and-set instead).
    write: tokio::sync::Mutex<()>,
}

/// The users file under the data directory.
pub fn users_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("console-users.json")
}

#[derive(Serialize, Deserialize, Default)]
struct UsersFile {
    users: BTreeMap<String, UserRecord>,
}

/// Checks a user name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
///
/// # Errors
/// [`UserError::Invalid`] naming the rule.
pub fn check_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(UserError::Invalid(format!(
            "name {name:?}: use 1-64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// Hashes a password with Argon2id (the crate's defaults: m=19 MiB, t=2, p=1, OWASP's minimum).
///
/// # Errors
/// [`UserError::Invalid`] for a password shorter than [`MIN_PASSWORD_CHARS`].
pub fn hash_password(password: &str) -> Result<String, UserError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(UserError::Invalid(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(UserError::Invalid("password: at most 1024 bytes".into()));
    }
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Invalid(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Invalid(format!("password: {e}")))
}

/// Whether `password` matches the stored PHC string (constant time inside argon2).
pub fn verify_password(phc: &str, password: &str) -> bool {
    if password.len() > 1024 {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

impl UserStore {
    /// Users in `path` (one node).
    pub fn file(path: PathBuf) -> UserStore {
        UserStore {
            backend: Backend::File(path),
            write: tokio::sync::Mutex::new(()),
        }
    }

    /// Users in the cluster bucket `kv`.
    pub fn shared(kv: Arc<dyn Kv>) -> UserStore {
        UserStore {
            backend: Backend::Kv(kv),
            write: tokio::sync::Mutex::new(()),
        }
    }

    fn where_(&self) -> String {
        match &self.backend {
            Backend::File(p) => p.display().to_string(),
            Backend::Kv(_) => "cluster bucket".to_string(),
        }
    }

    fn store_err(&self, detail: impl std::fmt::Display) -> UserError {
        UserError::Store {
            where_: self.where_(),
            detail: detail.to_string(),
        }
    }

    fn read_file(&self, path: &std::path::Path) -> Result<UsersFile, UserError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| self.store_err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsersFile::default()),
            Err(e) => Err(self.store_err(e)),
        }
    }

    fn write_file(&self, path: &std::path::Path, f: &UsersFile) -> Result<(), UserError> {
        let bytes = serde_json::to_vec_pretty(f).map_err(|e| self.store_err(e))?;
        let dir = path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(|e| self.store_err(e))?;
        // Password hashes and TOTP secrets: written 0600 from the first byte.
        crate::range_pull::write_atomic(&dir, path, &bytes).map_err(|e| self.store_err(e))
    }

    /// Every user, by name.
    ///
    /// # Errors
    /// [`UserError::Store`].
    pub async fn list(&self) -> Result<Vec<UserRecord>, UserError> {
        match &self.backend {
            Backend::File(p) => Ok(self.read_file(p)?.users.into_values().collect()),
            Backend::Kv(kv) => {
                let entries = kv.list(USER_PREFIX).await.map_err(|e| self.store_err(e))?;
                Ok(entries
                    .iter()
                    .filter_map(|e| serde_json::from_slice(&e.value).ok())
                    .collect())
            }
        }
    }

    /// One user.
    ///
    /// # Errors
    /// [`UserError::Store`].
    pub async fn get(&self, name: &str) -> Result<Option<UserRecord>, UserError> {
        if check_name(name).is_err() {
            return Ok(None);
        }
        match &self.backend {
            Backend::File(p) => Ok(self.read_file(p)?.users.remove(name)),
            Backend::Kv(kv) => {
                let e = kv
                    .get(&format!("{USER_PREFIX}{name}"))
                    .await
                    .map_err(|e| self.store_err(e))?;
                Ok(e.and_then(|e| serde_json::from_slice(&e.value).ok()))
            }
        }
    }

    /// Creates a user.
    ///
    /// # Errors
    /// [`UserError::Exists`], [`UserError::Invalid`], [`UserError::Store`].
    pub async fn create(&self, rec: UserRecord) -> Result<(), UserError> {
        check_name(&rec.name)?;
        let _g = self.write.lock().await;
        match &self.backend {
            Backend::File(p) => {
                let mut f = self.read_file(p)?;
                if f.users.contains_key(&rec.name) {
                    return Err(UserError::Exists(rec.name));
                }
                f.users.insert(rec.name.clone(), rec);
                self.write_file(p, &f)
            }
            Backend::Kv(kv) => {
                let body = serde_json::to_vec(&rec).map_err(|e| self.store_err(e))?;
                match kv
                    .create(&format!("{USER_PREFIX}{}", rec.name), body.into())
                    .await
                    .map_err(|e| self.store_err(e))?
                {
                    KvWrite::Done(_) => Ok(()),
                    KvWrite::Conflict => Err(UserError::Exists(rec.name)),
                }
            }
        }
    }

    /// Changes a user with `f` (read, change, write; retried on a concurrent change in the
    /// cluster bucket). `f` returns false to leave the user unchanged.
    ///
    /// # Errors
    /// [`UserError::NotFound`], [`UserError::Store`].
    pub async fn modify(
        &self,
        name: &str,
        mut f: impl FnMut(&mut UserRecord) -> bool,
    ) -> Result<UserRecord, UserError> {
        if check_name(name).is_err() {
            return Err(UserError::NotFound(name.to_string()));
        }
        let _g = self.write.lock().await;
        match &self.backend {
            Backend::File(p) => {
                let mut file = self.read_file(p)?;
                let Some(u) = file.users.get_mut(name) else {
                    return Err(UserError::NotFound(name.to_string()));
                };
                if !f(u) {
                    return Ok(u.clone());
                }
                let out = u.clone();
                self.write_file(p, &file)?;
                Ok(out)
            }
            Backend::Kv(kv) => {
                let key = format!("{USER_PREFIX}{name}");
                for _ in 0..8 {
                    let Some(e) = kv.get(&key).await.map_err(|e| self.store_err(e))? else {
                        return Err(UserError::NotFound(name.to_string()));
                    };
                    let mut u: UserRecord =
                        serde_json::from_slice(&e.value).map_err(|e| self.store_err(e))?;
                    if !f(&mut u) {
                        return Ok(u);
                    }
                    let body = serde_json::to_vec(&u).map_err(|e| self.store_err(e))?;
                    if let KvWrite::Done(_) = kv
                        .update(&key, body.into(), e.revision)
                        .await
                        .map_err(|e| self.store_err(e))?
                    {
                        return Ok(u);
                    }
                }
                Err(self.store_err("too many concurrent changes of one user"))
            }
        }
    }

    /// Deletes a user; false when there was none.
    ///
    /// # Errors
    /// [`UserError::Store`].
    pub async fn delete(&self, name: &str) -> Result<bool, UserError> {
        if check_name(name).is_err() {
            return Ok(false);
        }
        let _g = self.write.lock().await;
        match &self.backend {
            Backend::File(p) => {
                let mut f = self.read_file(p)?;
                if f.users.remove(name).is_none() {
                    return Ok(false);
                }
                self.write_file(p, &f)?;
                Ok(true)
            }
            Backend::Kv(kv) => {
                let key = format!("{USER_PREFIX}{name}");
                let had = kv.get(&key).await.map_err(|e| self.store_err(e))?.is_some();
                kv.delete(&key, None).await.map_err(|e| self.store_err(e))?;
                Ok(had)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(name: &str) -> UserRecord {
        UserRecord {
            name: name.into(),
            role: Role::Viewer,
            password: hash_password("correct horse battery").unwrap(),
            totp: None,
            totp_step: 0,
            created_ms: 1,
            last_login_ms: None,
            failed_totp: 0,
        }
    }

    #[test]
    fn passwords_hash_slowly_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
        assert!(matches!(hash_password("short"), Err(UserError::Invalid(_))));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice@example.com").is_ok());
        for bad in ["", "a b", "<script>", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_file_store_keeps_users_private_and_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let s = UserStore::file(users_path(dir.path()));
        s.create(rec("alice")).await.unwrap();
        assert!(matches!(
            s.create(rec("alice")).await,
            Err(UserError::Exists(_))
        ));
        let u = s
            .modify("alice", |u| {
                u.failed_totp += 1;
                true
            })
            .await
            .unwrap();
        assert_eq!(u.failed_totp, 1);
        assert_eq!(s.get("alice").await.unwrap().unwrap().failed_totp, 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(users_path(dir.path())).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
        assert!(s.delete("alice").await.unwrap());
        assert!(!s.delete("alice").await.unwrap());
        assert!(s.list().await.unwrap().is_empty());
    }
}
