//! The aiops engine process.
