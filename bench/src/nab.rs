//! `aiops-bench nab`: NAB (Numenta Anomaly Benchmark) scorer and runner (being written).

/// Arguments of `aiops-bench nab`.
#[derive(Debug, clap::Args)]
pub struct NabArgs {}

/// Why `aiops-bench nab` failed.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// The scorer is not built yet.
    #[error("not implemented yet")]
    NotImplemented,
}

/// Runs `aiops-bench nab`: prints a line per data set and the summary line last.
///
/// # Errors
/// See [`NabError`].
pub fn run(_args: NabArgs) -> Result<(), NabError> {
    Err(NabError::NotImplemented)
}
