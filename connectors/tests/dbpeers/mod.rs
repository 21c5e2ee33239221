//! Real database servers for tests, each in a temp dir on a free loopback port, stopped on drop:
//! PostgreSQL (`initdb` + `postgres` from /usr/lib/postgresql/*/bin), MariaDB
//! (`mariadb-install-db` + `mariadbd`) and ClickHouse (`clickhouse-server`). Installed by
//! `scripts/test-deps/databases.sh`. A missing binary is an error naming that script, so a test
//! never passes without its peer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; a race with another process is unlikely).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `ok()` holds, at most `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what} not ready after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn uid_gid_of(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

fn stop(child: &mut Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A PostgreSQL server with password (SCRAM) authentication over TCP for `postgres`.
pub struct Postgres {
    pub port: u16,
    pub password: String,
    child: Child,
    dir: tempfile::TempDir,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/test-deps/databases.sh")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("{name} not found: run scripts/test-deps/databases.sh"))
}

impl Postgres {
    /// Starts a fresh server; `postgres`'s password is `password`.
    pub fn start(password: &str) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, password).unwrap();
        // initdb and postgres refuse to run as root: run them as the `postgres` user.
        let as_user = uid_gid_of("postgres");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n");
        let drop_root = matches!(root, Ok(true));
        if drop_root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let cmd = |bin: &str| {
            let mut c = Command::new(pg_bin(bin));
            if drop_root {
                let (uid, gid) = as_user.expect("no postgres user to run PostgreSQL as");
                c.uid(uid).gid(gid);
            }
            c
        };
        let out = cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
        let child = cmd("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=16MB",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pg = Postgres {
            port,
            password: password.to_string(),
            child,
            dir,
        };
        let ready = pg_bin("pg_isready");
        wait_until(Duration::from_secs(30), "postgres", || {
            Command::new(&ready)
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success())
        });
        pg
    }

    /// Runs SQL statements as the superuser (through `psql` over the socket, trust auth).
    pub fn exec(&self, sql: &str) {
        let out = Command::new("psql")
            .args(["-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .output()
            .expect("psql not found: run scripts/test-deps/databases.sh");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a query and returns psql's unaligned output.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown (its backends end too).
        stop(&mut self.child, "-INT");
    }
}

/// A MariaDB server; user `aiops` (password given) may SELECT and INSERT on database `test`.
pub struct MariaDb {
    pub port: u16,
    pub password: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl MariaDb {
    /// Starts a fresh server.
    pub fn start(password: &str) -> MariaDb {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .expect("mariadb-install-db not found: run scripts/test-deps/databases.sh");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let sock = dir.path().join("mysqld.sock");
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--log-error={}",
                dir.path().join("err.log").display()
            ))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
                "--skip-name-resolve",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd not found: run scripts/test-deps/databases.sh");
        let db = MariaDb {
            port,
            password: password.to_string(),
            child,
            dir,
        };
        wait_until(Duration::from_secs(60), "mariadbd", || {
            db.client(None, "SELECT 1").is_ok()
        });
        db.exec(&format!(
            "CREATE DATABASE test; CREATE USER 'aiops'@'%' IDENTIFIED BY '{password}'; \
             GRANT SELECT, INSERT, DELETE ON test.* TO 'aiops'@'%';"
        ));
        db
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    fn client(&self, db: Option<&str>, sql: &str) -> Result<String, String> {
        let mut c = Command::new("mariadb");
        c.arg("--no-defaults")
            .arg(format!("--socket={}", self.sock().display()))
            .args(["-u", "root", "-N", "-B", "-e", sql]);
        if let Some(db) = db {
            c.arg(db);
        }
        let out = c.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Runs SQL as root (socket).
    pub fn exec(&self, sql: &str) {
        self.client(None, sql).unwrap();
    }

    /// Runs a query in `test` as root and returns the tab-separated output.
    pub fn query(&self, sql: &str) -> String {
        self.client(Some("test"), sql).unwrap()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM");
    }
}

/// A ClickHouse server (HTTP interface) whose `default` user has a password.
pub struct ClickHouse {
    pub http_port: u16,
    pub password: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// Whether a ClickHouse server binary is installed.
pub fn clickhouse_binary() -> Option<PathBuf> {
    ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl ClickHouse {
    /// Starts a fresh server; `None` when no binary is installed.
    pub fn start(password: &str) -> Option<ClickHouse> {
        let bin = clickhouse_binary()?;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().display().to_string();
        let http_port = free_port();
        let tcp_port = free_port();
        std::fs::write(
            dir.path().join("config.xml"),
            format!(
                "<?xml version=\"1.0\"?>\n<yandex>\n<logger><level>warning</level><console>1</console></logger>\n\
                 <http_port>{http_port}</http_port><tcp_port>{tcp_port}</tcp_port>\n\
                 <timezone>UTC</timezone><listen_host>127.0.0.1</listen_host>\n<path>{p}/data/</path><tmp_path>{p}/tmp/</tmp_path>\n\
                 <user_files_path>{p}/user_files/</user_files_path>\n<format_schema_path>{p}/fs/</format_schema_path>\n\
                 <users_config>users.xml</users_config><default_profile>default</default_profile>\n\
                 <default_database>default</default_database><mark_cache_size>5368709</mark_cache_size>\n</yandex>\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("users.xml"),
            format!(
                "<?xml version=\"1.0\"?>\n<yandex><profiles><default></default></profiles>\n<users><default>\
                 <password>{password}</password><networks><ip>::/0</ip></networks><profile>default</profile>\
                 <quota>default</quota></default></users>\n<quotas><default></default></quotas></yandex>\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config-file={}",
                Path::new(&p).join("config.xml").display()
            ))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let ch = ClickHouse {
            http_port,
            password: password.to_string(),
            child,
            dir,
        };
        wait_until(Duration::from_secs(60), "clickhouse-server", || {
            std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok()
        });
        Some(ch)
    }

    /// The HTTP base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.http_port)
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        stop(&mut self.child, "-TERM");
    }
}
