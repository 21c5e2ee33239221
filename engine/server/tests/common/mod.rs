//! Shared helpers for the engine's integration tests: start the real `aiops` binary on a free
//! loopback port, wait until it is healthy, kill it with SIGKILL or stop it with SIGTERM.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod grafana;
pub mod recorder;

use aiops_testkit::{AiopsCommand, AiopsError, AiopsProcess};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running `aiops run` child process: the test kit's [`AiopsProcess`] with the panicking
/// helpers and public fields the tests were written against. Fields of the kit's type (`child`)
/// are reached through `Deref`.
pub struct Aiops {
    inner: AiopsProcess,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: String,
    pub stderr: PathBuf,
}

impl std::ops::Deref for Aiops {
    type Target = AiopsProcess;
    fn deref(&self) -> &AiopsProcess {
        &self.inner
    }
}

impl std::ops::DerefMut for Aiops {
    fn deref_mut(&mut self) -> &mut AiopsProcess {
        &mut self.inner
    }
}

impl Aiops {
    /// Starts `aiops run` on a fresh port with the given data dir and log (`embedded` or a NATS URL).
    pub fn start(data_dir: &Path, log: &str, extra: &[&str]) -> Aiops {
        Self::start_on(data_dir, log, aiops_testkit::free_port(), extra)
    }

    /// Starts `aiops run` on a given port (to restart on the port clients already use).
    pub fn start_on(data_dir: &Path, log: &str, port: u16, extra: &[&str]) -> Aiops {
        Self::start_env(data_dir, log, port, extra, &[])
    }

    /// Starts `aiops run` with extra environment variables for the child. The kit's defaults
    /// apply: `--pg 127.0.0.1:0` unless `extra` has `--pg`, anonymous admin unless `env` has
    /// `AIOPS_TEST_SECURE=1` (the auth tests), `AIOPS__INGEST__MAX_AGE=36500d` (tests replay
    /// fixed 2026 dates), `AIOPS_LOG_LEVEL=info` (for [`Aiops::pg_port`]); `env` overrides them.
    pub fn start_env(
        data_dir: &Path,
        log: &str,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Aiops {
        let inner = AiopsCommand::new(env!("CARGO_BIN_EXE_aiops"), data_dir)
            .log(log)
            .http_port(port)
            .args(extra.iter().copied())
            .envs(env.iter().copied())
            .spawn()
            .unwrap_or_else(|e| panic!("aiops did not become healthy: {e}"));
        Aiops {
            port,
            data_dir: data_dir.to_path_buf(),
            log: log.to_string(),
            stderr: inner.stderr_path().to_path_buf(),
            inner,
        }
    }

    /// Where the Postgres endpoint listens (from the engine's stderr).
    pub fn pg_port(&self) -> u16 {
        self.inner
            .pg_port()
            .expect("the engine logs where the postgres endpoint listens")
    }

    pub fn url(&self, path: &str) -> String {
        self.inner.url(path)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        self.inner.kill9();
    }

    /// SIGTERM and wait for a clean exit (panics unless it exits with success within 20 s).
    /// Does nothing once the engine was killed or stopped.
    pub fn stop(&mut self) {
        if self.inner.child.is_none() {
            return;
        }
        match self.inner.stop(Duration::from_secs(20)) {
            Ok(status) => assert!(
                status.success(),
                "aiops exited with {status}: {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            ),
            Err(AiopsError::StopTimeout { .. }) => {
                panic!("aiops did not stop within 20s of SIGTERM")
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// The value of a self-metric line that starts with `prefix` (0 when absent).
    pub fn metric(&self, prefix: &str) -> f64 {
        let text = http_get(&self.url("/metrics")).unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Runs an `aiops` subcommand to completion and returns its stdout (panics on failure).
pub fn aiops_cmd(data_dir: &Path, log: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_aiops"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--log")
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aiops {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `f` until it returns true or `within` passes.
pub fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads every event of `kind` from the replay output as JSON values.
pub fn replay_json(data_dir: &Path, log: &str, kind: &str) -> Vec<serde_json::Value> {
    aiops_cmd(
        data_dir,
        log,
        &["replay", "--kind", kind, "--format", "ndjson"],
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

/// A minimal blocking HTTP/1.0 GET on loopback; returns the body of a 2xx answer.
pub fn http_get(url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("only http:// urls")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let (head, body) = buf.split_once("\r\n\r\n").ok_or("no header end")?;
    let ok = head.split(' ').nth(1).is_some_and(|c| c.starts_with('2'));
    if ok {
        Ok(body.to_string())
    } else {
        Err(head.lines().next().unwrap_or("").to_string())
    }
}

/// Posts an NDJSON body to `path` of `a` with curl; panics unless the answer is 2xx.
pub fn post_ndjson(a: &Aiops, path: &str, body: &str) {
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "-H",
            "content-type: application/x-ndjson",
            "--data-binary",
            "@-",
        ])
        .arg(a.url(path))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            if let Some(mut stdin) = c.stdin.take() {
                stdin.write_all(body.as_bytes())?;
            }
            c.wait()
        })
        .unwrap();
    assert!(out.success(), "ingest to {path} failed");
}
