//! What machine and which code a result was measured on, so numbers are never quoted without it.

use serde::{Deserialize, Serialize};
use std::process::Command;

/// The machine a benchmark ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPUs available to this process (`nproc`).
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// `MemTotal` from /proc/meminfo, bytes.
    pub mem_total_bytes: u64,
    /// Kernel release (`uname -r`).
    pub kernel: String,
}

/// The code and invocation a result belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The exact command line of the benchmark.
    pub command: String,
    /// `git rev-parse HEAD`, with `-dirty` when the work tree has changes; empty outside git.
    pub git_commit: String,
    /// When the run started, RFC 3339 (wall clock: the benchmark is an edge, not the engine).
    pub started_at: String,
}

impl Machine {
    /// Describes this machine from /proc; missing files leave fields empty rather than failing,
    /// because a result without a CPU model is still a result.
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model: parse_cpu_model(&cpuinfo),
            mem_total_bytes: parse_mem_total(&meminfo),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        }
    }
}

impl Provenance {
    /// The current command line and git commit.
    pub fn current() -> Provenance {
        let command = std::env::args()
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" ");
        Provenance {
            command,
            git_commit: git_commit(),
            started_at: started_at(),
        }
    }
}

/// The first `model name` of /proc/cpuinfo text.
pub fn parse_cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

/// `MemTotal` of /proc/meminfo text, in bytes.
pub fn parse_mem_total(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn git_commit() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = run(&["rev-parse", "HEAD"]) else {
        return String::new();
    };
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    if dirty { format!("{head}-dirty") } else { head }
}

/// When the benchmark started, for the results file: wall-clock time is what is meant here.
#[allow(clippy::disallowed_methods)]
fn started_at() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpu = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\nmodel name\t: other\n";
        assert_eq!(parse_cpu_model(cpu), "AMD EPYC 7B13");
        assert_eq!(
            parse_mem_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"),
            16384 * 1024
        );
        assert_eq!(parse_cpu_model(""), "");
        assert_eq!(parse_mem_total("garbage"), 0);
    }

    #[test]
    fn describes_this_machine() {
        let m = Machine::describe();
        assert!(m.nproc >= 1);
        assert!(m.mem_total_bytes > 0, "Linux has /proc/meminfo");
    }
}
