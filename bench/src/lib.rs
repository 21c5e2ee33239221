//! Benchmarks of aiops.
