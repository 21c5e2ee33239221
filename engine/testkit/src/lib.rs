//! Dev-only test kit: starts real peers — `nats-server -js`, `prometheus`,
//! `prometheus-node-exporter`, `prometheus-alertmanager` — on OS-chosen loopback ports, waits until
//! each answers, and kills it and removes its files on drop. A missing binary is an error that
//! names the Debian package to install (`scripts/install-test-deps.sh` does it), never a skip.
//!
//! Debian's `nats-server` (2.9.10) is the default; tests that need a newer one (clustering,
//! `sync_interval: always`, …) use [`newer_nats_server`] — the pinned 2.12.8 the install script
//! puts in the tools folder — through [`NatsServer::start_new`] and [`NatsCluster`].
//!
//! [`aiops`] starts the engine itself (`aiops run`) the same way for the integration tests and
//! the benchmark harness: [`AiopsCommand`] and [`AiopsProcess`].
//!
//! [`webdriver`] drives Debian's `chromium` through its `chromedriver` for the console's browser
//! tests: [`webdriver::Browser`].

pub mod aiops;
pub mod cluster;
pub mod webdriver;

pub use aiops::{AiopsCommand, AiopsError, AiopsProcess};
pub use cluster::{
    NEWER_NATS_SERVER_VERSION, NatsCluster, nats_server_version_of, newer_nats_server,
};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a peer may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A free TCP port on 127.0.0.1 (bound and released; a tiny race with other processes remains).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Finds a peer binary on PATH or in the Debian locations; the error names the package.
///
/// # Errors
/// When the binary is not installed.
pub fn require_binary(name: &str) -> Result<PathBuf, String> {
    let package = match name {
        "nats-server" => "nats-server",
        "prometheus" => "prometheus",
        "prometheus-node-exporter" => "prometheus-node-exporter",
        "prometheus-alertmanager" | "amtool" => "prometheus-alertmanager",
        other => other,
    };
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("{name} not found: install the Debian package `{package}` (scripts/install-test-deps.sh does)")
        })
}

/// A blocking HTTP/1.0 GET on loopback; the status code and body.
///
/// # Errors
/// Connection or protocol failures.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

/// A child process with its own temp dir and captured output, killed on drop.
#[derive(Debug)]
struct Proc {
    name: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
    program: PathBuf,
    args: Vec<String>,
}

impl Proc {
    fn spawn(
        name: &'static str,
        args: Vec<String>,
        dir: tempfile::TempDir,
    ) -> std::io::Result<Proc> {
        let program = require_binary(name).map_err(std::io::Error::other)?;
        Self::spawn_program(name, program, args, dir)
    }

    /// As [`Proc::spawn`], with the binary already found.
    fn spawn_program(
        name: &'static str,
        program: PathBuf,
        args: Vec<String>,
        dir: tempfile::TempDir,
    ) -> std::io::Result<Proc> {
        let mut p = Proc {
            name,
            child: None,
            dir,
            program,
            args,
        };
        p.start()?;
        Ok(p)
    }

    fn start(&mut self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("output.log"))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    fn output_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until `ready` returns true, failing early if the process exits.
    fn wait(&mut self, mut ready: impl FnMut() -> bool) -> std::io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(std::io::Error::other(format!(
                    "{} exited with {status} before it was ready:\n{}",
                    self.name,
                    self.output_tail()
                )));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "{} not ready within {READY_TIMEOUT:?}:\n{}",
                    self.name,
                    self.output_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running child's pid.
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the running child.
    fn signal(&self, signal: &str) -> std::io::Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| std::io::Error::other(format!("{} is not running", self.name)))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "kill -{signal} {pid} ({}) failed: {status}",
                self.name
            )))
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Debian's (or the PATH's) `nats-server`, as an I/O error when missing.
fn debian_nats_server() -> std::io::Result<PathBuf> {
    require_binary("nats-server").map_err(std::io::Error::other)
}

/// [`newer_nats_server`], as an I/O error when missing.
fn newer_binary() -> std::io::Result<PathBuf> {
    newer_nats_server().map_err(std::io::Error::other)
}

fn http_ready(addr: SocketAddr, path: &str) -> bool {
    matches!(http_get(addr, path), Ok((200, _)))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A `nats-server` with JetStream (unless started with [`NatsServer::start_without_jetstream`]).
#[derive(Debug)]
pub struct NatsServer {
    proc: Proc,
    port: u16,
    monitor_port: u16,
    jetstream: bool,
}

/// The installed (Debian, or first on PATH) `nats-server`'s version as (major, minor, patch), from
/// `nats-server --version`.
///
/// # Errors
/// Missing binary, or output that is not `nats-server: vX.Y.Z`.
pub fn nats_server_version() -> std::io::Result<(u32, u32, u32)> {
    let bin = require_binary("nats-server").map_err(std::io::Error::other)?;
    nats_server_version_of(&bin)
}

impl NatsServer {
    /// Starts `nats-server -js` on a free port with its store in a temp dir.
    ///
    /// # Errors
    /// Missing binary, or the server not ready in time (with its output).
    pub fn start() -> std::io::Result<NatsServer> {
        Self::start_with(debian_nats_server()?, true, false)
    }

    /// Starts the newer `nats-server` ([`newer_nats_server`], ≥ 2.11) with JetStream, for tests
    /// that need what Debian's 2.9.10 lacks.
    ///
    /// # Errors
    /// No newer binary (the message says to run `scripts/install-test-deps.sh`), or the server
    /// not ready in time (with its output).
    pub fn start_new() -> std::io::Result<NatsServer> {
        Self::start_with(newer_binary()?, true, false)
    }

    /// Starts a server whose JetStream fsyncs every write (`sync_interval: always`): the newer
    /// binary when installed, else the default one if it is 2.10 or later.
    ///
    /// # Errors
    /// As [`NatsServer::start`]; also when only a `nats-server` older than 2.10 is installed,
    /// which has no `sync_interval` setting (Debian 12 ships 2.9.10).
    pub fn start_sync_always() -> std::io::Result<NatsServer> {
        let program = match newer_nats_server() {
            Ok(p) => p,
            Err(newer) => {
                let (major, minor, _) = nats_server_version()?;
                if (major, minor) < (2, 10) {
                    return Err(std::io::Error::other(format!(
                        "nats-server {major}.{minor} has no `sync_interval: always` (added in \
                         2.10), and {newer}"
                    )));
                }
                debian_nats_server()?
            }
        };
        Self::start_with(program, true, true)
    }

    /// Starts a server without JetStream.
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn start_without_jetstream() -> std::io::Result<NatsServer> {
        Self::start_with(debian_nats_server()?, false, false)
    }

    fn start_with(
        program: PathBuf,
        jetstream: bool,
        sync_always: bool,
    ) -> std::io::Result<NatsServer> {
        let dir = tempfile::tempdir()?;
        let (port, monitor_port) = (free_port(), free_port());
        let store = dir.path().join("store");
        let mut conf = format!("listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\n");
        if jetstream {
            conf.push_str(&format!(
                "jetstream {{\n  store_dir: \"{}\"\n",
                store.display()
            ));
            if sync_always {
                conf.push_str("  sync_interval: always\n");
            }
            conf.push_str("}\n");
        }
        let conf_path = dir.path().join("nats.conf");
        std::fs::write(&conf_path, conf)?;
        let args = vec!["-c".to_string(), conf_path.display().to_string()];
        let mut proc = Proc::spawn_program("nats-server", program, args, dir)?;
        let path = if jetstream {
            "/healthz?js-enabled-only=true"
        } else {
            "/healthz"
        };
        proc.wait(|| http_ready(loopback(monitor_port), path))?;
        Ok(NatsServer {
            proc,
            port,
            monitor_port,
            jetstream,
        })
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The monitoring endpoint, `http://127.0.0.1:PORT`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.proc.dir.path().join("store")
    }

    /// The `nats-server` binary this server runs.
    pub fn program(&self) -> &Path {
        &self.proc.program
    }

    /// SIGKILL: the server gets no chance to flush.
    pub fn kill9(&mut self) {
        self.proc.kill();
    }

    /// Starts the server again on the same port with the same store.
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.proc.kill();
        self.proc.start()?;
        let addr = loopback(self.monitor_port);
        // Same readiness as at start: with JetStream, only once JetStream answers.
        let path = if self.jetstream {
            "/healthz?js-enabled-only=true"
        } else {
            "/healthz"
        };
        self.proc.wait(|| http_ready(addr, path))
    }
}

/// A `prometheus` server from a YAML config.
#[derive(Debug)]
pub struct Prometheus {
    proc: Proc,
    port: u16,
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML) and extra flags, e.g. `--rules.alert.resend-delay=1s`.
    ///
    /// # Errors
    /// Missing binary, or not ready in time (with its output).
    pub fn start(config: &str, extra_args: &[&str]) -> std::io::Result<Prometheus> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(&conf, config)?;
        let mut args = vec![
            format!("--config.file={}", conf.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let mut proc = Proc::spawn("prometheus", args, dir)?;
        proc.wait(|| http_ready(loopback(port), "/-/ready"))?;
        Ok(Prometheus { proc, port })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGTERM and wait: Prometheus flushes its remote_write queues on shutdown.
    pub fn stop(&mut self) {
        self.proc.terminate();
    }
}

/// A `prometheus-node-exporter`.
#[derive(Debug)]
pub struct NodeExporter {
    _proc: Proc,
    port: u16,
}

impl NodeExporter {
    /// Starts node_exporter on a free port.
    ///
    /// # Errors
    /// Missing binary, or not ready in time.
    pub fn start() -> std::io::Result<NodeExporter> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let args = vec![format!("--web.listen-address=127.0.0.1:{port}")];
        let mut proc = Proc::spawn("prometheus-node-exporter", args, dir)?;
        proc.wait(|| http_ready(loopback(port), "/metrics"))?;
        Ok(NodeExporter { _proc: proc, port })
    }

    /// `127.0.0.1:PORT`, as a scrape target.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A `prometheus-alertmanager` from a YAML config, with clustering off.
#[derive(Debug)]
pub struct Alertmanager {
    _proc: Proc,
    port: u16,
}

impl Alertmanager {
    /// Starts Alertmanager with `config` (YAML).
    ///
    /// # Errors
    /// Missing binary, or not ready in time (with its output).
    pub fn start(config: &str) -> std::io::Result<Alertmanager> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let conf = dir.path().join("alertmanager.yml");
        std::fs::write(&conf, config)?;
        let args = vec![
            format!("--config.file={}", conf.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".to_string(),
        ];
        let mut proc = Proc::spawn("prometheus-alertmanager", args, dir)?;
        proc.wait(|| http_ready(loopback(port), "/-/ready"))?;
        Ok(Alertmanager { _proc: proc, port })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
