//! The engine under test as a child process: start it on a free port, wait until healthy, stop it
//! with SIGTERM, and find its log on disk.
//!
//! The engine runs in its own process so the load generator (in this process) is measured the way
//! a real sender would be: over loopback HTTP, competing for the same cores.

use crate::error::BenchError;
use aiops_testkit::NatsServer;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Which event-log backend the engine writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Segment files in the engine's data directory.
    Embedded,
    /// A real `nats-server -js` started for the run.
    Nats,
}

impl Backend {
    /// The backend's name, as in results and `--log`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Nats => "nats",
        }
    }
}

/// A running engine (and its NATS server, for the `nats` backend). Dropping it kills both.
#[derive(Debug)]
pub struct Engine {
    child: Child,
    /// Process id of the engine, for `perf record -p`.
    pub pid: u32,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    /// Holds the data directory and the engine's stderr file; removed on drop.
    root: tempfile::TempDir,
    /// The `--log` value passed to the engine (`embedded` or the NATS URL).
    pub log: String,
    nats: Option<NatsServer>,
}

impl Engine {
    /// Starts `<bin> run --data-dir <tmp>/data --http 127.0.0.1:<port> [--log nats://…]` and waits
    /// until `GET /api/health` answers 200. For [`Backend::Nats`] a `nats-server -js` is started
    /// first and kept alive until the engine is dropped.
    ///
    /// # Errors
    /// [`BenchError::Spawn`] when the binary cannot run, [`BenchError::NotReady`] when it exits or
    /// stays unhealthy past `ready_timeout` (its stderr tail is in the message),
    /// [`BenchError::Nats`] when the NATS server cannot start.
    pub async fn start(
        bin: &Path,
        backend: Backend,
        tmp_parent: Option<&Path>,
        ready_timeout: Duration,
    ) -> Result<Engine, BenchError> {
        let root = match tmp_parent {
            Some(p) => tempfile::Builder::new()
                .prefix("aiops-bench-")
                .tempdir_in(p),
            None => tempfile::Builder::new().prefix("aiops-bench-").tempdir(),
        }
        .map_err(|e| BenchError::io(tmp_parent.unwrap_or(Path::new("$TMPDIR")), e))?;
        let nats = match backend {
            Backend::Embedded => None,
            Backend::Nats => Some(start_nats()?),
        };
        let log = nats
            .as_ref()
            .map(|n| n.url())
            .unwrap_or_else(|| "embedded".to_string());
        let port = aiops_testkit::free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let data_dir = root.path().join("data");
        let stderr_path = root.path().join("engine.stderr");
        let stderr =
            File::create(&stderr_path).map_err(|e| BenchError::io(stderr_path.clone(), e))?;
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--pg")
            .arg("127.0.0.1:0")
            .env("AIOPS__AUTH__ANONYMOUS_ROLE", "admin")
            .arg("--http")
            .arg(addr.to_string());
        if backend == Backend::Nats {
            cmd.arg("--log").arg(&log);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                bin: bin.to_path_buf(),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        let mut engine = Engine {
            child,
            pid,
            addr,
            root,
            log,
            nats,
        };
        engine.wait_healthy(ready_timeout).await?;
        Ok(engine)
    }

    /// `http://ADDR`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The engine's `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The NATS server's URL for the `nats` backend.
    pub fn nats_url(&self) -> Option<String> {
        self.nats.as_ref().map(|n| n.url())
    }

    /// The last `max` bytes of the engine's stderr, for error messages.
    pub fn stderr_tail(&self, max: usize) -> String {
        let text =
            std::fs::read_to_string(self.root.path().join("engine.stderr")).unwrap_or_default();
        let start = text.len().saturating_sub(max);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> Result<(), BenchError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/api/health", self.base_url());
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::NotReady(format!(
                    "engine exited with {status} before it was healthy; stderr:\n{}",
                    self.stderr_tail(4000)
                )));
            }
            if let Ok(resp) = client.get(&url).send().await
                && resp.status().as_u16() == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::NotReady(format!(
                    "{url} did not answer 200 within {timeout:?}; stderr:\n{}",
                    self.stderr_tail(4000)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits up to `grace` for the engine to exit; kills it after that.
    /// The NATS server (if any) keeps running so the log can still be read.
    ///
    /// # Errors
    /// [`BenchError::StopTimeout`] when SIGTERM was not enough (the process is killed anyway).
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus, BenchError> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        // `kill(1)` rather than libc: the workspace forbids unsafe code.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => Err(BenchError::io(format!("pid {}", self.pid), e)),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(BenchError::StopTimeout(grace))
            }
        }
    }
}

fn start_nats() -> Result<NatsServer, BenchError> {
    NatsServer::start().map_err(|e| BenchError::Nats(e.to_string()))
}

/// Size of a directory tree: (sum of file lengths, bytes allocated on disk).
///
/// # Errors
/// [`BenchError::Io`] when a directory cannot be listed.
pub fn dir_size(dir: &Path) -> Result<(u64, u64), BenchError> {
    use std::os::unix::fs::MetadataExt;
    let mut apparent = 0;
    let mut allocated = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| BenchError::io(d.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BenchError::io(d.clone(), e))?;
            let meta = entry
                .metadata()
                .map_err(|e| BenchError::io(entry.path(), e))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                apparent += meta.len();
                allocated += meta.blocks() * 512;
            }
        }
    }
    Ok((apparent, allocated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_size_counts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("x"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("a/y"), vec![0u8; 5000]).unwrap();
        let (apparent, allocated) = dir_size(dir.path()).unwrap();
        assert_eq!(apparent, 6000);
        assert!(allocated >= 6000);
        assert!(dir_size(&dir.path().join("missing")).is_err());
    }

    #[tokio::test]
    async fn missing_binary_is_a_spawn_error() {
        let err = Engine::start(
            Path::new("/nonexistent/aiops"),
            Backend::Embedded,
            None,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BenchError::Spawn { .. }), "{err}");
    }

    #[tokio::test]
    async fn early_exit_is_reported_with_stderr() {
        // `false` exits at once with status 1: the harness must say so rather than wait.
        let err = Engine::start(
            Path::new("false"),
            Backend::Embedded,
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, BenchError::NotReady(ref m) if m.contains("exited")),
            "{err}"
        );
    }
}
