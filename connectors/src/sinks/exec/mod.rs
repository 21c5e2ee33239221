//! `exec`: run one of a fixed set of local commands, without a shell.
//!
//! Config: `commands: {NAME: {argv, max_args?, arg_pattern?, allow_dash_args?, timeout?, env?,
//! retry_on_failure?}}`. Params: `command` (a configured NAME) and `args` (strings).
//!
//! Safety: `argv` is fixed by the operator; each element of `args` becomes exactly one more argv
//! element (never split, never interpreted by a shell), must fully match `arg_pattern` (default
//! `^[A-Za-z0-9_.:/@=+-]*$`) and may not start with `-` unless `allow_dash_args`, so a rendered
//! template cannot turn into an option or a second command. The environment is cleared except
//! `PATH`, the configured `env` and `AIOPS_IDEMPOTENCY_KEY=<key>` (so the command itself can
//! dedup). The process is killed on timeout or when the call is dropped. Output: exit code and
//! the last 4 KiB of stdout and stderr. A non-zero exit or a timeout is [`crate::sinks::SinkError::Exec`],
//! not retryable unless `retry_on_failure` (commands are rarely idempotent).

mod config;
mod sink;

#[cfg(test)]
mod tests;

pub use config::{CommandConfig, ExecConfig};
pub use sink::Exec;
