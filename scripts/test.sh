#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs missing peers, checks formatting and lints, runs
# every test. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast -- --test-threads=2
