//! Shared helpers for the engine's integration tests: start the real `aiops` binary on a free
//! loopback port, wait until it is healthy, kill it with SIGKILL or stop it with SIGTERM.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod grafana;
pub mod recorder;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `aiops run` child process.
pub struct Aiops {
    pub child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: String,
    pub stderr: PathBuf,
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

    /// Starts `aiops run` with extra environment variables for the child.
    pub fn start_env(
        data_dir: &Path,
        log: &str,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Aiops {
        let stderr = data_dir.join(format!("aiops-{port}.stderr"));
        std::fs::create_dir_all(data_dir).unwrap();
        let err = std::fs::File::create(&stderr).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_aiops"))
            .arg("run")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--log")
            .arg(log)
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .args(pg_arg(extra))
            .env("AIOPS_LOG_LEVEL", "info")
            // Tests of other capabilities act as a trusted single user; the auth tests pass
            // AIOPS_TEST_SECURE=1 to run with the defaults (every route needs its token).
            .envs(anonymous_admin(env))
            // Tests replay fixed dates (2026); the default window (one year back) would refuse
            // them from late 2027 on. The hostile tests set the default window back.
            .env("AIOPS__INGEST__MAX_AGE", "36500d")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let a = Aiops {
            child: Some(child),
            port,
            data_dir: data_dir.to_path_buf(),
            log: log.to_string(),
            stderr,
        };
        a.wait_healthy(Duration::from_secs(30));
        a
    }

    /// Where the Postgres endpoint listens (from the engine's stderr).
    pub fn pg_port(&self) -> u16 {
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
                a.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
            })
            .expect("the engine logs where the postgres endpoint listens")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(body) = http_get(&self.url("/api/health"))
                && body.contains("\"ok\"")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "aiops did not become healthy: {}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = c.try_wait() {
                    assert!(
                        status.success(),
                        "aiops exited with {status}: {}",
                        std::fs::read_to_string(&self.stderr).unwrap_or_default()
                    );
                    return;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    panic!("aiops did not stop within 20s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
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

impl Drop for Aiops {
    fn drop(&mut self) {
        self.kill9();
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

/// `--pg 127.0.0.1:0` unless the test chose an address: engines started in parallel must not
/// fight over 5433.
fn pg_arg(extra: &[&str]) -> Vec<&'static str> {
    if extra.contains(&"--pg") {
        Vec::new()
    } else {
        vec!["--pg", "127.0.0.1:0"]
    }
}

fn anonymous_admin(env: &[(&str, &str)]) -> Vec<(&'static str, &'static str)> {
    if env
        .iter()
        .any(|(k, v)| *k == "AIOPS_TEST_SECURE" && *v == "1")
    {
        Vec::new()
    } else {
        vec![("AIOPS__AUTH__ANONYMOUS_ROLE", "admin")]
    }
}
