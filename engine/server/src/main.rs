//! The `aiops` binary.
fn main() {}
