//! The running `exec` provider.

use super::config::{CommandConfig, ExecConfig};
use crate::sinks::params::{Params, only_known, opt_array, req_str, type_name};
use crate::sinks::registry::ProviderContext;
use crate::sinks::secret::redact;
use crate::sinks::transport::OUTPUT_BYTES;
use crate::sinks::{EffectCall, EffectOutput, Provider, SinkError};
use regex::Regex;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

const KNOWN: &[&str] = &["command", "args"];
const DEFAULT_PATTERN: &str = "^[A-Za-z0-9_.:/@=+-]*$";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One command, ready to run.
#[derive(Debug)]
struct Command {
    config: CommandConfig,
    pattern: Regex,
    timeout: Duration,
}

/// Runs configured commands.
#[derive(Debug)]
pub struct Exec {
    commands: BTreeMap<String, Command>,
}

impl Exec {
    /// Compiles patterns and checks each command.
    ///
    /// # Errors
    /// [`SinkError::Config`] for an empty or relative `argv`, or a bad `arg_pattern`.
    pub fn new(config: ExecConfig, ctx: &ProviderContext) -> Result<Self, SinkError> {
        let mut commands = BTreeMap::new();
        for (name, c) in config.commands {
            match c.argv.first() {
                Some(prog) if prog.starts_with('/') => {}
                _ => {
                    return Err(SinkError::Config(format!(
                        "commands.{name}.argv: must start with an absolute program path"
                    )));
                }
            }
            let raw = c.arg_pattern.as_deref().unwrap_or(DEFAULT_PATTERN);
            // Anchor so the whole argument must match, whatever the operator wrote.
            let pattern = Regex::new(&format!("^(?:{raw})$"))
                .map_err(|e| SinkError::Config(format!("commands.{name}.arg_pattern: {e}")))?;
            let timeout = c.timeout.unwrap_or(ctx.timeout);
            commands.insert(
                name,
                Command {
                    config: c,
                    pattern,
                    timeout,
                },
            );
        }
        Ok(Exec { commands })
    }

    fn allowed(&self) -> String {
        self.commands.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The command and its checked extra arguments.
    fn plan<'a>(&'a self, p: &Params) -> Result<(&'a str, &'a Command, Vec<String>), SinkError> {
        only_known(p, KNOWN)?;
        let name = req_str(p, "command")?;
        let Some((name, cmd)) = self.commands.get_key_value(name) else {
            return Err(SinkError::refused(format!(
                "exec: unknown command {name:?} (allowed: {})",
                self.allowed()
            )));
        };
        let raw = opt_array(p, "args")?.map(Vec::as_slice).unwrap_or(&[]);
        if raw.len() > cmd.config.max_args {
            return Err(SinkError::refused(format!(
                "exec: {name} takes at most {} args, got {}",
                cmd.config.max_args,
                raw.len()
            )));
        }
        let mut args = Vec::with_capacity(raw.len());
        for (i, v) in raw.iter().enumerate() {
            let Value::String(s) = v else {
                return Err(SinkError::params(
                    format!("args[{i}]"),
                    format!("must be a string, got {}", type_name(v)),
                ));
            };
            if s.starts_with('-') && !cmd.config.allow_dash_args {
                return Err(SinkError::refused(format!(
                    "exec: args[{i}] starts with '-' (options are not allowed for {name})"
                )));
            }
            if s.contains('\0') || !cmd.pattern.is_match(s) {
                return Err(SinkError::refused(format!(
                    "exec: args[{i}] does not match the allowed pattern of {name}"
                )));
            }
            args.push(s.clone());
        }
        Ok((name, cmd, args))
    }
}

/// Reads `r` to the end, keeping only the last `keep` bytes (so a chatty command cannot fill
/// memory).
async fn tail<R: AsyncRead + Unpin>(mut r: R, keep: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 2 * keep {
                    buf.drain(..buf.len() - keep);
                }
            }
        }
    }
    if buf.len() > keep {
        buf.drain(..buf.len() - keep);
    }
    buf
}

/// The last at most `max` bytes of `s`, starting at a character boundary.
fn last_bytes(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The text of a tail, starting at a character boundary.
fn tail_text(bytes: &[u8]) -> String {
    last_bytes(&String::from_utf8_lossy(bytes), OUTPUT_BYTES).to_owned()
}

#[async_trait::async_trait]
impl Provider for Exec {
    fn kind(&self) -> &'static str {
        "exec"
    }

    fn target(&self, call: &EffectCall<'_>) -> String {
        call.params
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }

    fn validate(&self, p: &Params) -> Result<(), SinkError> {
        self.plan(p).map(|_| ())
    }

    async fn call(&self, call: &EffectCall<'_>) -> Result<EffectOutput, SinkError> {
        let (name, cmd, args) = self.plan(call.params)?;
        let argv = &cmd.config.argv;
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .args(&args)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            )
            .envs(cmd.config.env.iter().map(|(k, v)| (k, v.expose())))
            .env("AIOPS_IDEMPOTENCY_KEY", call.idempotency_key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropping the call (timeout, shutdown) kills the process.
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| SinkError::Exec(format!("{name}: cannot start {}: {e}", argv[0])))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let run = async {
            let out = async {
                match stdout {
                    Some(s) => tail(s, OUTPUT_BYTES).await,
                    None => Vec::new(),
                }
            };
            let err = async {
                match stderr {
                    Some(s) => tail(s, OUTPUT_BYTES).await,
                    None => Vec::new(),
                }
            };
            let (out, err, status) = tokio::join!(out, err, child.wait());
            (out, err, status)
        };
        let secrets: Vec<&str> = cmd.config.env.values().map(|s| s.expose()).collect();
        let fail = |msg: String| {
            let msg = redact(&msg, &secrets);
            if cmd.config.retry_on_failure {
                SinkError::RetryableExec(msg)
            } else {
                SinkError::Exec(msg)
            }
        };
        tracing::info!(
            kind = "exec",
            command = name,
            args = args.len(),
            "running command"
        );
        let (out, err, status) = match tokio::time::timeout(cmd.timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                // The `run` future owned `child` by reference; kill explicitly, then it is reaped
                // when dropped.
                let _ = child.start_kill();
                tracing::warn!(kind = "exec", command = name, timeout = ?cmd.timeout, "command timed out and was killed");
                return Err(fail(format!(
                    "{name}: timed out after {:?} and was killed",
                    cmd.timeout
                )));
            }
        };
        let status = status.map_err(|e| SinkError::Exec(format!("{name}: wait failed: {e}")))?;
        let stdout = redact(&tail_text(&out), &secrets);
        let stderr = redact(&tail_text(&err), &secrets);
        match status.code() {
            Some(0) => Ok(EffectOutput {
                status: "exit 0".into(),
                response: json!({"exit_code": 0, "stdout": stdout, "stderr": stderr}),
            }),
            code => {
                let what = match code {
                    Some(c) => format!("exited with {c}"),
                    None => "was killed by a signal".into(),
                };
                tracing::warn!(kind = "exec", command = name, exit = ?code, "command failed");
                let excerpt = last_bytes(stderr.trim_end(), 400);
                Err(fail(format!("{name} {what}: {excerpt}")))
            }
        }
    }
}
