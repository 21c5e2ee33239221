//! The `aiops` engine itself as a child process: one launcher for the integration tests and the
//! benchmark harness, so both start, wait for and stop the engine the same way.
//!
//! [`AiopsCommand`] builds `aiops [--config FILE] run --data-dir DIR [--log LOG] --http
//! 127.0.0.1:PORT [ARGS…] [--pg 127.0.0.1:0]`, captures stderr to a file and waits until
//! `GET /api/health` answers 200. [`AiopsProcess`] is the running engine: its URL, pid, stderr,
//! the Postgres port it logged, SIGKILL ([`AiopsProcess::kill9`]) and SIGTERM with a grace
//! period ([`AiopsProcess::stop`]). Dropping it kills the engine.
//!
//! The defaults are the ones the engine's tests rely on; a caller that wants the engine's own
//! default turns one off (the benchmark does for the ingest age limit and the log level):
//! - `--pg 127.0.0.1:0` unless the extra arguments carry `--pg`: engines started in parallel must
//!   not fight over 5433;
//! - `AIOPS__AUTH__ANONYMOUS_ROLE=admin` (a trusted single user) unless turned off with
//!   [`AiopsCommand::anonymous_admin`] or the environment given carries `AIOPS_TEST_SECURE=1`
//!   (the auth tests, which run with the secure defaults);
//! - `AIOPS__INGEST__MAX_AGE=36500d`: tests replay fixed dates, which the default window (one
//!   year back) would start refusing a year later;
//! - `AIOPS_LOG_LEVEL=info`: [`AiopsProcess::pg_port`] reads an info line.
//!
//! Environment variables given with [`AiopsCommand::env`] come after these, so they override them.

use crate::{free_port, http_get};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long [`AiopsCommand::spawn`] waits for `/api/health` unless told otherwise.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of stderr (bytes) an error message carries.
const STDERR_TAIL: usize = 8000;

/// Why starting, stopping or inspecting the engine failed; every message says which step.
#[derive(Debug, thiserror::Error)]
pub enum AiopsError {
    /// A file or directory the launcher needs could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The binary could not be started (wrong path, not built yet).
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The engine exited before `/api/health` answered 200.
    #[error("aiops (pid {pid}) exited with {status} before it was healthy; stderr:\n{stderr}")]
    Exited {
        /// Its process id.
        pid: u32,
        /// How it exited.
        status: ExitStatus,
        /// The tail of its stderr.
        stderr: String,
    },
    /// `/api/health` did not answer 200 in time (the engine is killed).
    #[error("{url} did not answer 200 within {timeout:?}; stderr:\n{stderr}")]
    NotReady {
        /// The health URL.
        url: String,
        /// How long it was given.
        timeout: Duration,
        /// The tail of its stderr.
        stderr: String,
    },
    /// SIGTERM did not stop the engine within the grace period (it was then killed).
    #[error("aiops (pid {pid}) did not exit within {grace:?} of SIGTERM and was killed")]
    StopTimeout {
        /// Its process id.
        pid: u32,
        /// The grace period.
        grace: Duration,
    },
    /// Waiting for the process failed.
    #[error("waiting for aiops (pid {pid}): {source}")]
    Wait {
        /// Its process id.
        pid: u32,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Its stderr has no `postgres endpoint listening … addr=` line.
    #[error(
        "{path} has no `postgres endpoint listening` line with an addr= (is the log level below info?)"
    )]
    NoPgPort {
        /// The stderr file.
        path: PathBuf,
    },
}

/// A builder for `aiops run`; see the module docs for its defaults.
#[derive(Debug, Clone)]
pub struct AiopsCommand {
    bin: PathBuf,
    data_dir: PathBuf,
    log: Option<String>,
    http_port: Option<u16>,
    config: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    anonymous_admin: bool,
    ingest_max_age: Option<String>,
    log_level: Option<String>,
    stderr: Option<PathBuf>,
    current_dir: Option<PathBuf>,
    ready_timeout: Duration,
}

impl AiopsCommand {
    /// `bin run --data-dir data_dir` with the defaults of the module docs.
    pub fn new(bin: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> AiopsCommand {
        AiopsCommand {
            bin: bin.into(),
            data_dir: data_dir.into(),
            log: None,
            http_port: None,
            config: None,
            args: Vec::new(),
            env: Vec::new(),
            anonymous_admin: true,
            ingest_max_age: Some("36500d".to_string()),
            log_level: Some("info".to_string()),
            stderr: None,
            current_dir: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// `--log LOG` (`embedded` or a NATS URL); without it the engine uses its configured log.
    pub fn log(mut self, log: impl Into<String>) -> Self {
        self.log = Some(log.into());
        self
    }

    /// The HTTP port on 127.0.0.1 (to restart on the port clients already use); default a free
    /// port chosen at [`AiopsCommand::spawn`].
    pub fn http_port(mut self, port: u16) -> Self {
        self.http_port = Some(port);
        self
    }

    /// `--config FILE`.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// Extra arguments after the launcher's own (`--pg ADDR` among them replaces the default).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// One environment variable for the child; it overrides the launcher's defaults.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Environment variables for the child, as [`AiopsCommand::env`].
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Whether anonymous requests act as admin (default true; `AIOPS_TEST_SECURE=1` in the
    /// environment given also turns it off).
    pub fn anonymous_admin(mut self, on: bool) -> Self {
        self.anonymous_admin = on;
        self
    }

    /// `AIOPS__INGEST__MAX_AGE` for the child (default `36500d`); `None` keeps the engine's own.
    pub fn ingest_max_age(mut self, age: Option<&str>) -> Self {
        self.ingest_max_age = age.map(str::to_string);
        self
    }

    /// `AIOPS_LOG_LEVEL` for the child (default `info`); `None` passes on this process's own.
    pub fn log_level(mut self, level: Option<&str>) -> Self {
        self.log_level = level.map(str::to_string);
        self
    }

    /// Where stderr goes (created or truncated); default `<data_dir>/aiops-<port>.stderr`.
    pub fn stderr_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.stderr = Some(path.into());
        self
    }

    /// The child's working directory (a relative binary path then resolves there); default ours.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// How long to wait for `/api/health` (default [`DEFAULT_READY_TIMEOUT`]).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts the engine and waits until `GET /api/health` answers 200. Blocks up to the ready
    /// timeout: async callers run it on a blocking thread.
    ///
    /// # Errors
    /// [`AiopsError::Io`] for the data dir or stderr file, [`AiopsError::Spawn`] when the binary
    /// cannot run, [`AiopsError::Exited`] or [`AiopsError::NotReady`] (the engine is then
    /// killed) with the tail of its stderr.
    pub fn spawn(self) -> Result<AiopsProcess, AiopsError> {
        let port = self.http_port.unwrap_or_else(free_port);
        let stderr = self
            .stderr
            .clone()
            .unwrap_or_else(|| self.data_dir.join(format!("aiops-{port}.stderr")));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AiopsError::Io { path, source }
        };
        std::fs::create_dir_all(&self.data_dir).map_err(io(&self.data_dir))?;
        if let Some(parent) = stderr.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let err_file = std::fs::File::create(&stderr).map_err(io(&stderr))?;
        let mut cmd = Command::new(&self.bin);
        if let Some(cfg) = &self.config {
            cmd.arg("--config").arg(cfg);
        }
        cmd.arg("run").arg("--data-dir").arg(&self.data_dir);
        if let Some(log) = &self.log {
            cmd.arg("--log").arg(log);
        }
        cmd.arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .args(&self.args);
        if !self.args.iter().any(|a| a == "--pg") {
            cmd.args(["--pg", "127.0.0.1:0"]);
        }
        if let Some(level) = &self.log_level {
            cmd.env("AIOPS_LOG_LEVEL", level);
        }
        let secure = self
            .env
            .iter()
            .any(|(k, v)| k == "AIOPS_TEST_SECURE" && v == "1");
        if self.anonymous_admin && !secure {
            cmd.env("AIOPS__AUTH__ANONYMOUS_ROLE", "admin");
        }
        if let Some(age) = &self.ingest_max_age {
            cmd.env("AIOPS__INGEST__MAX_AGE", age);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .spawn()
            .map_err(|source| AiopsError::Spawn {
                bin: self.bin.clone(),
                source,
            })?;
        let mut p = AiopsProcess {
            pid: child.id(),
            child: Some(child),
            status: None,
            port,
            data_dir: self.data_dir,
            log: self.log,
            stderr,
        };
        // On failure `p` is dropped here, which kills whatever is left of the engine.
        p.wait_healthy(self.ready_timeout)?;
        Ok(p)
    }
}

/// A running `aiops run`, killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct AiopsProcess {
    /// The child; `None` once [`AiopsProcess::kill9`] or [`AiopsProcess::stop`] reaped it. Public
    /// so a test can look at the process itself (pid, `try_wait`).
    pub child: Option<Child>,
    status: Option<ExitStatus>,
    pid: u32,
    port: u16,
    data_dir: PathBuf,
    log: Option<String>,
    stderr: PathBuf,
}

impl AiopsProcess {
    /// Its process id (also after it exited).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The HTTP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The `--log` value, if one was given.
    pub fn log(&self) -> Option<&str> {
        self.log.as_deref()
    }

    /// The file stderr goes to.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// The last `max` bytes of stderr (cut at a character boundary), for error messages.
    pub fn stderr_tail(&self, max: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let start = text.len().saturating_sub(max);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// Where the Postgres endpoint listens, from the `postgres endpoint listening addr=…` line the
    /// engine logs at info level.
    ///
    /// # Errors
    /// [`AiopsError::NoPgPort`] when stderr has no such line (yet).
    pub fn pg_port(&self) -> Result<u16, AiopsError> {
        let raw = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        // Without the terminal colours tracing adds around field names.
        let mut text = String::new();
        let mut esc = false;
        for ch in raw.chars() {
            match (esc, ch) {
                (false, '\u{1b}') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => text.push(c),
            }
        }
        text.lines()
            .filter(|l| l.contains("postgres endpoint listening"))
            .find_map(|l| {
                let i = l.find("addr=")? + 5;
                let a: String = l[i..].chars().take_while(|c| !c.is_whitespace()).collect();
                a.parse::<SocketAddr>().ok().map(|a| a.port())
            })
            .ok_or_else(|| AiopsError::NoPgPort {
                path: self.stderr.clone(),
            })
    }

    /// Its exit status if it has exited (and was reaped), without waiting.
    ///
    /// # Errors
    /// [`AiopsError::Wait`] when the OS cannot tell.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, AiopsError> {
        if let Some(c) = self.child.as_mut()
            && let Some(status) = c.try_wait().map_err(|source| AiopsError::Wait {
                pid: self.pid,
                source,
            })?
        {
            self.child = None;
            self.status = Some(status);
        }
        Ok(self.status)
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<(), AiopsError> {
        let deadline = Instant::now() + timeout;
        loop {
            if matches!(http_get(self.addr(), "/api/health"), Ok((200, _))) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.try_wait() {
                return Err(AiopsError::Exited {
                    pid: self.pid,
                    status,
                    stderr: self.stderr_tail(STDERR_TAIL),
                });
            }
            if Instant::now() > deadline {
                return Err(AiopsError::NotReady {
                    url: self.url("/api/health"),
                    timeout,
                    stderr: self.stderr_tail(STDERR_TAIL),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and reap it: the engine gets no chance to flush anything. Does nothing once it
    /// was reaped.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // `Child::kill` is SIGKILL on Unix, and unlike `kill -9 PID` it cannot hit a reused
            // pid: the child is not reaped before `wait` below.
            let _ = c.kill();
            self.status = c.wait().ok();
        }
    }

    /// SIGTERM, then waits up to `grace` for the engine to exit (a clean shutdown flushes the
    /// log and checkpoints); kills it after that. Returns the exit status — the earlier one when
    /// it had already exited or been killed.
    ///
    /// # Errors
    /// [`AiopsError::StopTimeout`] when SIGTERM was not enough (it is killed anyway),
    /// [`AiopsError::Wait`] when the OS cannot tell whether it exited.
    pub fn stop(&mut self, grace: Duration) -> Result<ExitStatus, AiopsError> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let Some(mut c) = self.child.take() else {
            // Unreachable: `try_wait` returns the status whenever the child is gone.
            return Err(AiopsError::Wait {
                pid: self.pid,
                source: std::io::Error::other("no child process"),
            });
        };
        // `kill(1)` rather than libc: the workspace forbids unsafe code.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        loop {
            match c.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = c.kill();
                    self.status = c.wait().ok();
                    return Err(AiopsError::StopTimeout {
                        pid: self.pid,
                        grace,
                    });
                }
                Err(source) => {
                    let _ = c.kill();
                    self.status = c.wait().ok();
                    return Err(AiopsError::Wait {
                        pid: self.pid,
                        source,
                    });
                }
            }
        }
    }
}

impl Drop for AiopsProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = AiopsCommand::new("/nonexistent/aiops", dir.path().join("data"))
            .spawn()
            .unwrap_err();
        assert!(matches!(err, AiopsError::Spawn { .. }), "{err}");
    }

    #[test]
    fn early_exit_is_reported_with_stderr() {
        // `sh -c 'echo …; exit 3' run …` stands in for an engine that fails at start.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake-aiops");
        std::fs::write(&script, "#!/bin/sh\necho \"bad config: $*\" >&2\nexit 3\n").unwrap();
        let status = Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        let err = AiopsCommand::new(&script, dir.path().join("data"))
            .log("embedded")
            .args(["--pg", "127.0.0.1:6543"])
            .spawn()
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, AiopsError::Exited { .. }), "{msg}");
        assert!(msg.contains("exited"), "{msg}");
        // The arguments the launcher built, echoed by the fake: the caller's --pg replaces the
        // default one.
        assert!(msg.contains("bad config: run --data-dir"), "{msg}");
        assert!(msg.contains("--log embedded --http 127.0.0.1:"), "{msg}");
        assert!(msg.contains("--pg 127.0.0.1:6543"), "{msg}");
        assert!(!msg.contains("127.0.0.1:0"), "{msg}");
    }

    #[test]
    fn not_ready_in_time_kills_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("sleepy-aiops");
        std::fs::write(
            &script,
            "#!/bin/sh\necho still starting >&2\nexec sleep 30\n",
        )
        .unwrap();
        let status = Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        let t = Instant::now();
        let err = AiopsCommand::new(&script, dir.path().join("data"))
            .ready_timeout(Duration::from_millis(300))
            .spawn()
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10));
        let msg = err.to_string();
        assert!(matches!(err, AiopsError::NotReady { .. }), "{msg}");
        assert!(msg.contains("still starting"), "{msg}");
    }

    #[test]
    fn pg_port_is_read_from_coloured_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("e");
        std::fs::write(
            &stderr,
            "x\n\u{1b}[32m INFO\u{1b}[0m postgres endpoint listening \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:40123 x\n",
        )
        .unwrap();
        let p = AiopsProcess {
            child: None,
            status: None,
            pid: 0,
            port: 1,
            data_dir: dir.path().to_path_buf(),
            log: None,
            stderr: stderr.clone(),
        };
        assert_eq!(p.pg_port().unwrap(), 40123);
        std::fs::write(&stderr, "nothing\n").unwrap();
        assert!(matches!(p.pg_port(), Err(AiopsError::NoPgPort { .. })));
    }
}
