//! Placeholder.
/// Placeholder.
#[derive(Debug, Default)]
pub struct DeployBook;
