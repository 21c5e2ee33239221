//! Configuration of the `exec` provider.

use crate::sinks::Secret;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[providers.NAME]` with `kind = "exec"`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The commands a workflow may run, by name.
    pub commands: BTreeMap<String, CommandConfig>,
}

/// One allowed command.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The fixed program (an absolute path) and its first arguments.
    pub argv: Vec<String>,
    /// How many `args` a call may add.
    #[serde(default = "default_max_args")]
    pub max_args: usize,
    /// A regex each added argument must match completely (default `^[A-Za-z0-9_.:/@=+-]*$`).
    #[serde(default)]
    pub arg_pattern: Option<String>,
    /// Whether added arguments may start with `-` (options).
    #[serde(default)]
    pub allow_dash_args: bool,
    /// Kill the command after this long (default: the provider context's timeout), e.g. `"30s"`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Extra environment variables (values may be credentials).
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// Report a failed or timed-out run as retryable (only for commands safe to repeat).
    #[serde(default)]
    pub retry_on_failure: bool,
}

fn default_max_args() -> usize {
    8
}
