//! Configuration of the embedded log (`[embedded]` in the config file).

use serde::{Deserialize, Deserializer};
use std::path::PathBuf;
use std::time::Duration;

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fsync` before an append is acknowledged (group commit: one fsync per writer round).
    Always,
    /// `fsync` at most this often; an acknowledged append survives a process crash, and up to one
    /// interval of appends can be lost on power loss.
    Interval(Duration),
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "always" {
            return Ok(FsyncPolicy::Always);
        }
        humantime::parse_duration(&s)
            .map(FsyncPolicy::Interval)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "fsync must be \"always\" or a duration like \"100ms\", got {s:?}"
                ))
            })
    }
}

/// The embedded log's settings; every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Log directory. Set from `--data-dir` (`<data_dir>/log`); not read from the file.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Open for reading only: no lock, no recovery, no appends (replay beside a running engine).
    #[serde(skip)]
    pub read_only: bool,
    /// For a read-only log: refresh it every this interval on a background thread, so its
    /// readers and `subscribe` see another process's appends as a writable log's do (see
    /// [`super::EmbeddedLog::refresh`]). `None` (default): the log stays as opened until
    /// `refresh` is called. Ignored for a writable log.
    #[serde(skip)]
    pub follow: Option<Duration>,
    /// `"always"` (default) or an interval such as `"100ms"`.
    pub fsync: FsyncPolicy,
    /// A segment is sealed and a new one started past this size. Default 128 MiB.
    pub segment_bytes: u64,
    /// Delete sealed segments whose newest record was appended longer ago than this. Default: keep.
    #[serde(with = "humantime_serde")]
    pub retention_age: Option<Duration>,
    /// Delete the oldest sealed segments while the log is larger than this. Default: keep.
    pub retention_bytes: Option<u64>,
    /// A message id seen within this window of append time is a duplicate. Default 2m.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// At most this many recent message ids are remembered. Default 100000.
    pub dedup_max_ids: usize,
    /// Append calls queued for the writer before callers wait. Default 1024.
    pub writer_queue: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig::new(PathBuf::from("data/log"))
    }
}

impl EmbeddedConfig {
    /// Defaults for a log directory.
    pub fn new(dir: PathBuf) -> Self {
        EmbeddedConfig {
            dir,
            read_only: false,
            follow: None,
            fsync: FsyncPolicy::Always,
            segment_bytes: 128 << 20,
            retention_age: None,
            retention_bytes: None,
            dedup_window: Duration::from_secs(120),
            dedup_max_ids: 100_000,
            writer_queue: 1024,
        }
    }

    /// One sentence on what an acknowledged append survives.
    pub fn durability(&self) -> String {
        match self.fsync {
            FsyncPolicy::Always => {
                "fsync before ack: an acknowledged append survives a process crash and power loss"
                    .to_string()
            }
            FsyncPolicy::Interval(d) => format!(
                "fsync every {}: an acknowledged append survives a process crash; up to {} of appends can be lost on power loss",
                humantime::format_duration(d),
                humantime::format_duration(d)
            ),
        }
    }
}
