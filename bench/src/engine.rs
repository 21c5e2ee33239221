//! The engine under test as a child process: start it on a free port, wait until healthy, stop it
//! with SIGTERM, and find its log on disk.
//!
//! The engine runs in its own process so the load generator (in this process) is measured the way
//! a real sender would be: over loopback HTTP, competing for the same cores.

use crate::error::BenchError;
use aiops_testkit::{AiopsCommand, AiopsError, AiopsProcess, NatsServer};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

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

/// The bench's error for a launcher error: the step that failed keeps its own variant.
pub(crate) fn launch_error(e: AiopsError) -> BenchError {
    match e {
        AiopsError::Spawn { bin, source } => BenchError::Spawn { bin, source },
        AiopsError::Io { path, source } => BenchError::Io { path, source },
        AiopsError::StopTimeout { grace, .. } => BenchError::StopTimeout(grace),
        e @ (AiopsError::Exited { .. } | AiopsError::NotReady { .. }) => {
            BenchError::NotReady(e.to_string())
        }
        e @ (AiopsError::Wait { .. } | AiopsError::NoPgPort { .. }) => {
            BenchError::Internal(e.to_string())
        }
    }
}

/// Starts the engine on a blocking thread: the launcher sleeps between health probes, which
/// must not stall the runtime the load generator shares.
pub(crate) async fn spawn_engine(cmd: AiopsCommand) -> Result<AiopsProcess, BenchError> {
    tokio::task::spawn_blocking(move || cmd.spawn())
        .await
        .map_err(|e| BenchError::Internal(format!("engine start task: {e}")))?
        .map_err(launch_error)
}

/// [`AiopsProcess::stop`] on a blocking thread. The process moves there and back; `slot` is
/// empty only if that thread panicked, and the process was then killed by its drop.
pub(crate) async fn stop_engine(
    slot: &mut Option<AiopsProcess>,
    grace: Duration,
) -> Result<ExitStatus, BenchError> {
    let Some(mut p) = slot.take() else {
        return Err(BenchError::Internal("the engine process was lost".into()));
    };
    let (p, r) = tokio::task::spawn_blocking(move || {
        let r = p.stop(grace);
        (p, r)
    })
    .await
    .map_err(|e| BenchError::Internal(format!("engine stop task: {e}")))?;
    *slot = Some(p);
    r.map_err(launch_error)
}

/// A running engine (and its NATS server, for the `nats` backend). Dropping it kills both.
#[derive(Debug)]
pub struct Engine {
    /// `None` only after a stop task panicked (the process was killed then).
    proc: Option<AiopsProcess>,
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
    /// Starts `<bin> run --data-dir <tmp>/data --http 127.0.0.1:<port> --pg 127.0.0.1:0
    /// [--log nats://…]` and waits until `GET /api/health` answers 200. For [`Backend::Nats`] a
    /// `nats-server -js` is started first and kept alive until the engine is dropped.
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
        // The engine's own ingest age limit and log level: the bench measures the engine as
        // shipped, not as the tests configure it.
        let mut cmd = AiopsCommand::new(bin, root.path().join("data"))
            .stderr_file(root.path().join("engine.stderr"))
            .ingest_max_age(None)
            .log_level(None)
            .ready_timeout(ready_timeout);
        if backend == Backend::Nats {
            cmd = cmd.log(&log);
        }
        let proc = spawn_engine(cmd).await?;
        Ok(Engine {
            pid: proc.pid(),
            addr: proc.addr(),
            proc: Some(proc),
            root,
            log,
            nats,
        })
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
        self.proc
            .as_ref()
            .map(|p| p.stderr_tail(max))
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to `grace` for the engine to exit; kills it after that.
    /// The NATS server (if any) keeps running so the log can still be read.
    ///
    /// # Errors
    /// [`BenchError::StopTimeout`] when SIGTERM was not enough (the process is killed anyway).
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus, BenchError> {
        stop_engine(&mut self.proc, grace).await
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
