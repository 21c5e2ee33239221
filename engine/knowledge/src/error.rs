//! The one error type of the crate; each variant says who must act.

/// Why a command, a query or an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The user's input is wrong (an HTTP 400): the message names the field, file or line and
    /// the reason. Fix the input and send it again.
    #[error("{0}")]
    Invalid(String),
    /// An optimistic-concurrency check failed (an HTTP 409): the message names the revision
    /// that won and who wrote it. Re-read the entry and apply the change again.
    #[error("{0}")]
    Conflict(String),
    /// The entry does not exist (an HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The search index failed: a bug in this crate or in tantivy, not the user's fault.
    #[error("knowledge index failure (a bug, please report): {0}")]
    Index(String),
}

impl From<tantivy::TantivyError> for KnowledgeError {
    fn from(e: tantivy::TantivyError) -> KnowledgeError {
        KnowledgeError::Index(e.to_string())
    }
}
