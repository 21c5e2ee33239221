//! `aiops-bench loghub`: Loghub log-parsing scorer and runner (being written).

/// Arguments of `aiops-bench loghub`.
#[derive(Debug, clap::Args)]
pub struct LoghubArgs {}

/// Why `aiops-bench loghub` failed.
#[derive(Debug, thiserror::Error)]
pub enum LoghubError {
    /// The scorer is not built yet.
    #[error("not implemented yet")]
    NotImplemented,
}

/// Runs `aiops-bench loghub`: prints a line per data set and the summary line last.
///
/// # Errors
/// See [`LoghubError`].
pub fn run(_args: LoghubArgs) -> Result<(), LoghubError> {
    Err(LoghubError::NotImplemented)
}
