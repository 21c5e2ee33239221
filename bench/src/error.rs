//! Errors of the benchmark harness, saying which step failed and what to check.

use std::path::PathBuf;

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The engine binary could not be started (wrong `--aiops-bin`, not built yet).
    #[error("cannot start {bin}: {source} (build it with `cargo build --release -p aiops-server`)")]
    Spawn {
        /// The binary that failed to start.
        bin: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The engine started but did not become healthy in time, or exited early.
    #[error("engine not ready: {0}")]
    NotReady(String),
    /// The engine did not stop after SIGTERM within the grace period (it was then killed).
    #[error("engine did not stop within {0:?} after SIGTERM")]
    StopTimeout(std::time::Duration),
    /// A file or directory operation of the harness failed.
    #[error("I/O error at {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Building the pool of remote_write bodies failed (a bug in the encoder or the harness).
    #[error("cannot encode remote_write body: {0}")]
    Encode(String),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// The load run produced no accepted request after the warm-up: nothing to report.
    #[error("no request was accepted after the warm-up ({0}); see the engine's stderr above")]
    NothingAccepted(String),
    /// Opening or reading the log for the replay figure failed.
    #[error("replay: {0}")]
    Log(#[from] aiops_log::LogError),
    /// A stored message did not decode: the log holds something the schemas refuse.
    #[error("replay: message at seq {seq} does not decode: {source}")]
    Decode {
        /// Sequence of the message.
        seq: u64,
        /// The codec's reason.
        #[source]
        source: aiops_schemas::CodecError,
    },
    /// A results file could not be read or parsed.
    #[error("results file {path}: {reason}")]
    Results {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The NATS test server could not be started.
    #[error("nats-server: {0}")]
    Nats(String),
    /// A bug in the harness.
    #[error("internal error (a bug in aiops-bench): {0}")]
    Internal(String),
    /// The demo generator failed.
    #[error("demo generator: {0}")]
    Demo(String),
    /// The streaming SQL pipeline or the batch run failed, or their results differ.
    #[error("pipeline: {0}")]
    Pipeline(String),
}

impl BenchError {
    /// An [`BenchError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> BenchError {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }
}
