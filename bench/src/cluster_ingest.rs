//! `aiops-bench cluster-ingest` (issue 17, scale-out): remote_write ingest through 1, 2 and 3
//! aiops nodes on a 3-server JetStream cluster, beside one node on the embedded log, and what
//! replication costs (R1 against R3, `sync_interval: always` against the default), in one run.
//!
//! Every setup starts from nothing: a fresh [`NatsCluster`] of 3 servers (with
//! `jetstream { sync_interval: always }` when asked), then `K` × `aiops run --log nats://a,b,c
//! --node nK` with `[nats] replicas = R` (or one `aiops run` on its embedded log), each on its own
//! port and data directory, archive off. The load is the `ingest` bench's: pre-encoded
//! remote_write bodies (snappy protobuf, [`crate::bodies`]) posted by `connections` keep-alive
//! clients from this process, spread round-robin over the nodes, each request with its own
//! `Idempotency-Key`; only 2xx answers count, 429/503 are retried ([`crate::load`]).
//!
//! - **samples/s**: acknowledged samples completed after the warm-up, over the steady seconds.
//! - **CPU per million samples**: `utime + stime` from `/proc/<pid>/stat` of every aiops node,
//!   every nats-server and this process (the load generator), read at the end of the warm-up and
//!   after the last answer, divided by the steady samples (in millions). On a machine where all
//!   processes share the cores this, not samples/s, is what says how the cluster would scale on
//!   machines of its own.
//! - **stored = acknowledged**: after the nodes stop (SIGTERM), this process reads the whole log
//!   and sums the rows of every `aiops.metrics.*` message; a setup whose log holds fewer samples
//!   than were acknowledged is reported as lost data, never as a figure.

use crate::alerting::wall_ms;
use crate::bodies::{PoolShape, build_pool};
use crate::load::{self, Body, LoadPlan, LoadResult};
use crate::report::{Figure, FigureKind};
use aiops_log::EventLog;
use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_testkit::{AiopsCommand, AiopsProcess, NatsCluster};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// nats-servers in every JetStream setup.
const SERVERS: usize = 3;

/// Subject prefix of ingested metrics (`aiops.metrics.<partition>`).
const METRICS_PREFIX: &str = "aiops.metrics.";

/// Which log one setup writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "backend")]
pub enum LogSetup {
    /// The embedded log in the node's data directory (fsync as shipped).
    Embedded,
    /// A stream of `replicas` copies on a 3-server JetStream cluster.
    Nats {
        /// `[nats] replicas`.
        replicas: usize,
        /// Every server runs with `jetstream { sync_interval: always }`.
        sync_always: bool,
    },
}

/// One measured configuration: a log and a number of ingest nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// The log.
    pub log: LogSetup,
    /// aiops nodes taking the load (1 for the embedded log).
    pub nodes: usize,
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.log {
            LogSetup::Embedded => write!(f, "embedded"),
            LogSetup::Nats {
                replicas,
                sync_always,
            } => {
                let always = if sync_always { "-always" } else { "" };
                write!(f, "r{replicas}{always}-n{}", self.nodes)
            }
        }
    }
}

impl FromStr for Setup {
    type Err = String;

    /// `embedded`, or `r<R>[-always]-n<K>`: R replicas (1, 3), sync always or the default, K
    /// ingest nodes (1–3).
    fn from_str(s: &str) -> Result<Setup, String> {
        let bad = || {
            format!(
                "bad setup {s:?}: expected `embedded` or `r<1|3>[-always]-n<1..3>` (e.g. r3-n2, \
                 r3-always-n1)"
            )
        };
        if s == "embedded" {
            return Ok(Setup {
                log: LogSetup::Embedded,
                nodes: 1,
            });
        }
        let rest = s.strip_prefix('r').ok_or_else(bad)?;
        let (r, rest) = rest.split_once('-').ok_or_else(bad)?;
        let (sync_always, rest) = match rest.strip_prefix("always-") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let k = rest.strip_prefix('n').ok_or_else(bad)?;
        let replicas: usize = r.parse().map_err(|_| bad())?;
        let nodes: usize = k.parse().map_err(|_| bad())?;
        if !matches!(replicas, 1 | 3) || !(1..=SERVERS).contains(&nodes) {
            return Err(bad());
        }
        Ok(Setup {
            log: LogSetup::Nats {
                replicas,
                sync_always,
            },
            nodes,
        })
    }
}

/// The setups of a default run, in run order.
pub const DEFAULT_SETUPS: &str = "embedded,r3-n1,r3-n2,r3-n3,r1-n1,r3-always-n1";

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterIngestPlan {
    /// The `aiops` binary.
    pub aiops_bin: PathBuf,
    /// Parent of the temporary data directories (default `$TMPDIR`).
    pub tmp_dir: Option<PathBuf>,
    /// The setups, in run order.
    pub setups: Vec<Setup>,
    /// Load before the measured window, per setup.
    pub warmup: Duration,
    /// The measured window, per setup.
    pub measure: Duration,
    /// Keep-alive connections over all nodes (round-robin).
    pub connections: usize,
    /// Distinct series of the bodies.
    pub series: usize,
    /// Samples per remote_write request.
    pub samples_per_request: usize,
    /// Pre-encoded bodies, cycled.
    pub pool: usize,
}

/// CPU seconds (`utime + stime`) of the processes of one setup over the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuSplit {
    /// Wall seconds between the two readings.
    pub window_s: f64,
    /// Per aiops node, in node order.
    pub aiops_s: Vec<f64>,
    /// Per nats-server (empty for the embedded log).
    pub nats_s: Vec<f64>,
    /// This process: the load generator.
    pub client_s: f64,
    /// aiops CPU seconds per million steady samples (all nodes).
    pub aiops_per_m: f64,
    /// nats-server CPU seconds per million steady samples (all servers).
    pub nats_per_m: f64,
    /// Load generator CPU seconds per million steady samples.
    pub client_per_m: f64,
    /// Cores kept busy by these processes: all CPU seconds / window (the machine has `nproc`).
    pub cores_busy: f64,
    /// Cores kept busy by everything else on the machine over the window (from `/proc/stat`
    /// minus the above): other work (e.g. a compiler) that disturbed the figures.
    pub other_cores_busy: f64,
}

/// What this process found in the log after the nodes stopped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stored {
    /// Messages in the log (all subjects).
    pub messages: u64,
    /// Bytes of the log as its stats report them.
    pub bytes: u64,
    /// Messages on `aiops.metrics.*`.
    pub metric_messages: u64,
    /// Rows of those messages: samples stored.
    pub samples: u64,
    /// Samples acknowledged (2xx) over the whole run, warm-up included.
    pub acknowledged: u64,
    /// `samples >= acknowledged`: nothing acknowledged was lost.
    pub verified: bool,
    /// The stream's replicas as JetStream reports them.
    pub replicas: Option<usize>,
    /// The servers' fsync policy as the monitoring endpoint reports it.
    pub sync_policy: Option<String>,
    /// The stream's leader at the end.
    pub leader: Option<String>,
    /// Seconds this process took to read and count the log.
    pub read_s: f64,
}

/// One setup's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupRun {
    /// `embedded`, `r3-n2`, …
    pub name: String,
    /// What ran.
    pub setup: Setup,
    /// Acknowledged samples per second over all nodes (steady samples / the longest steady
    /// window of the nodes' loads).
    pub samples_per_s: f64,
    /// `samples_per_s` / the embedded setup's, when it ran.
    pub vs_embedded: Option<f64>,
    /// Largest per-node p99 request latency, µs.
    pub p99_us: u64,
    /// The load per node, in node order.
    pub per_node: Vec<LoadResult>,
    /// Answers 429/503, all nodes.
    pub backpressure: u64,
    /// Failed requests (not 2xx, not backpressure), all nodes.
    pub errors: u64,
    /// CPU of every process over the window.
    pub cpu: CpuSplit,
    /// The log checked afterwards.
    pub stored: Stored,
    /// Seconds from the start of the setup to the nodes being ready.
    pub startup_s: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterIngestDetails {
    /// The plan.
    pub plan: ClusterIngestPlan,
    /// The nats-server binary's version.
    pub nats_server: String,
    /// Compressed bytes of the body pool.
    pub pool_bytes: u64,
    /// Every setup, in run order.
    pub runs: Vec<SetupRun>,
}

/// `utime + stime` of a process in seconds, from `/proc/<pid>/stat` (whole process, all
/// threads; `None` once it is gone).
fn cpu_seconds(pid: &str, ticks_per_s: f64) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); `rest` starts at field 3.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_s)
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux otherwise).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// One reading of every process of a setup.
#[derive(Debug, Clone)]
struct CpuReading {
    at: Instant,
    aiops: Vec<f64>,
    nats: Vec<f64>,
    client: f64,
    /// Busy CPU seconds of the whole machine (`/proc/stat`, all but idle and iowait).
    machine: f64,
}

/// Busy CPU seconds of the whole machine since boot, from the `cpu` line of `/proc/stat`.
fn machine_busy(tck: f64) -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next().filter(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …; guest time is already in user.
    let busy: f64 = v
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| x)
        .sum();
    busy / tck
}

fn read_cpu(aiops: &[u32], nats: &[u32], tck: f64) -> CpuReading {
    let of = |p: &u32| cpu_seconds(&p.to_string(), tck).unwrap_or(0.0);
    CpuReading {
        at: Instant::now(),
        aiops: aiops.iter().map(of).collect(),
        nats: nats.iter().map(of).collect(),
        client: cpu_seconds("self", tck).unwrap_or(0.0),
        machine: machine_busy(tck),
    }
}

fn cpu_split(a: &CpuReading, b: &CpuReading, steady_samples: u64) -> CpuSplit {
    let diff = |x: &[f64], y: &[f64]| -> Vec<f64> {
        x.iter().zip(y).map(|(x, y)| (y - x).max(0.0)).collect()
    };
    let aiops_s = diff(&a.aiops, &b.aiops);
    let nats_s = diff(&a.nats, &b.nats);
    let client_s = (b.client - a.client).max(0.0);
    let window_s = b.at.duration_since(a.at).as_secs_f64();
    let m = steady_samples as f64 / 1e6;
    let per_m = |s: f64| if m > 0.0 { s / m } else { 0.0 };
    // `fold` from +0.0: an empty `sum` of f64 is -0.0, printed "-0.000".
    let aiops = aiops_s.iter().fold(0.0, |a, b| a + b);
    let nats = nats_s.iter().fold(0.0, |a, b| a + b);
    CpuSplit {
        window_s,
        aiops_per_m: per_m(aiops),
        nats_per_m: per_m(nats),
        client_per_m: per_m(client_s),
        cores_busy: if window_s > 0.0 {
            (aiops + nats + client_s) / window_s
        } else {
            0.0
        },
        other_cores_busy: if window_s > 0.0 {
            ((b.machine - a.machine) - (aiops + nats + client_s)).max(0.0) / window_s
        } else {
            0.0
        },
        aiops_s,
        nats_s,
        client_s,
    }
}

/// A running aiops node.
struct Node {
    proc: AiopsProcess,
}

/// Starts the nodes of `setup` (and waits until, in cluster mode, every node lists all of them).
async fn start_nodes(
    plan: &ClusterIngestPlan,
    setup: Setup,
    urls: Option<&str>,
    dir: &Path,
) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for i in 0..setup.nodes {
        let ndir = dir.join(format!("n{i}"));
        let mut cmd = AiopsCommand::new(&plan.aiops_bin, ndir.join("data"))
            .stderr_file(dir.join(format!("aiops-n{i}.stderr")))
            // The engine as shipped (the `ingest` bench does the same), archive off: in cluster
            // mode it runs on every node (docs/cluster.md), and the embedded run must match.
            .ingest_max_age(None)
            .log_level(None)
            .env("AIOPS__ARCHIVE__ENABLED", "false")
            .ready_timeout(Duration::from_secs(60));
        if let (Some(urls), LogSetup::Nats { replicas, .. }) = (urls, setup.log) {
            cmd = cmd
                .log(urls)
                .args(["--node".to_string(), format!("n{i}")])
                .env("AIOPS__NATS__REPLICAS", replicas.to_string());
        }
        let p = tokio::task::spawn_blocking(move || cmd.spawn())
            .await
            .context("start task")?
            .with_context(|| format!("cannot start aiops node n{i} of {setup}"))?;
        nodes.push(Node { proc: p });
    }
    if matches!(setup.log, LogSetup::Nats { .. }) {
        wait_members(&nodes, setup.nodes).await?;
    }
    Ok(nodes)
}

/// Waits until every node's `GET /api/cluster` lists `n` live nodes, then 2 s more for the
/// units to move to their owners.
async fn wait_members(nodes: &[Node], n: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("http client")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut all = true;
        for node in nodes {
            let v: Option<serde_json::Value> = async {
                let r = client
                    .get(node.proc.url("/api/cluster"))
                    .send()
                    .await
                    .ok()?;
                serde_json::from_slice(&r.bytes().await.ok()?).ok()
            }
            .await;
            let listed = v
                .as_ref()
                .and_then(|v| v["nodes"].as_array())
                .map_or(0, Vec::len);
            all &= listed == n;
        }
        if all {
            break;
        }
        if Instant::now() > deadline {
            bail!("the {n} nodes did not all see each other within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

async fn stop_nodes(nodes: Vec<Node>) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, mut n) in nodes.into_iter().enumerate() {
        let r = tokio::task::spawn_blocking(move || n.proc.stop(Duration::from_secs(30))).await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => problems.push(format!("node n{i}: {e}")),
            Err(e) => problems.push(format!("node n{i} stop task: {e}")),
        }
    }
    problems
}

/// Reads the whole log, counting the rows of metric messages.
async fn count_stored(log: &dyn EventLog, stored: &mut Stored) -> anyhow::Result<()> {
    let t = Instant::now();
    let stats = log.stats().await.context("log stats")?;
    stored.messages = stats.messages;
    stored.bytes = stats.bytes;
    stored.replicas = stats.replicas;
    stored.sync_policy = stats.sync_policy;
    stored.leader = stats.leader;
    let mut reader = log.reader(0).await.context("log reader")?;
    loop {
        let batch = reader.next_batch(4096).await.context("read the log")?;
        if batch.is_empty() {
            break;
        }
        for r in &batch {
            if !r.subject.starts_with(METRICS_PREFIX) {
                continue;
            }
            let (_, rows) = aiops_schemas::decode(&r.payload)
                .with_context(|| format!("decode message {}", r.seq))?;
            stored.metric_messages += 1;
            stored.samples += rows.num_rows() as u64;
        }
    }
    stored.read_s = t.elapsed().as_secs_f64();
    Ok(())
}

/// Runs one setup from nothing to its verified figures.
async fn run_setup(
    plan: &ClusterIngestPlan,
    setup: Setup,
    pool: Arc<Vec<Body>>,
    tck: f64,
) -> anyhow::Result<SetupRun> {
    let t_start = Instant::now();
    let tmp = match &plan.tmp_dir {
        Some(d) => tempfile::Builder::new()
            .prefix("aiops-cluster-ingest-")
            .tempdir_in(d),
        None => tempfile::Builder::new()
            .prefix("aiops-cluster-ingest-")
            .tempdir(),
    }
    .context("cannot create a temporary directory")?;
    let cluster = match setup.log {
        LogSetup::Embedded => None,
        LogSetup::Nats { sync_always, .. } => Some(
            tokio::task::spawn_blocking(move || {
                if sync_always {
                    NatsCluster::start_sync_always(SERVERS)
                } else {
                    NatsCluster::start(SERVERS)
                }
            })
            .await
            .context("nats start task")?
            .context("cannot start 3 nats-servers >= 2.11 (scripts/install-test-deps.sh)")?,
        ),
    };
    let urls = cluster.as_ref().map(NatsCluster::urls);
    let nodes = start_nodes(plan, setup, urls.as_deref(), tmp.path()).await;
    let nodes = match nodes {
        Ok(n) => n,
        Err(e) => {
            let kept = tmp.keep();
            return Err(e.context(format!("stderr kept in {}", kept.display())));
        }
    };
    let startup_s = t_start.elapsed().as_secs_f64();
    let aiops_pids: Vec<u32> = nodes.iter().map(|n| n.proc.pid()).collect();
    let nats_pids: Vec<u32> = cluster
        .as_ref()
        .map(|c| (0..c.len()).filter_map(|i| c.pid(i)).collect())
        .unwrap_or_default();

    let key_run = format!("ci-{setup}-{}", wall_ms());
    let loads = nodes.iter().enumerate().map(|(i, n)| {
        let conns = (0..plan.connections.max(setup.nodes))
            .filter(|c| c % setup.nodes == i)
            .count();
        let lp = LoadPlan {
            url: n.proc.url("/api/v1/write"),
            connections: conns,
            duration: plan.warmup + plan.measure,
            warmup: plan.warmup,
            request_timeout: Duration::from_secs(30),
            key_prefix: format!("{key_run}-n{i}"),
        };
        let pool = Arc::clone(&pool);
        async move { load::run(&lp, pool).await }
    });
    let (p_aiops, p_nats) = (aiops_pids.clone(), nats_pids.clone());
    let warmup = plan.warmup;
    let first = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        read_cpu(&p_aiops, &p_nats, tck)
    });
    let results = futures::future::join_all(loads).await;
    let last = read_cpu(&aiops_pids, &nats_pids, tck);
    let first = first.await.context("cpu reading task")?;

    let mut problems = stop_nodes(nodes).await;
    let mut per_node = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(l) => per_node.push(l),
            Err(e) => {
                let kept = tmp.keep();
                bail!(
                    "{setup}: node n{i}: {e} (stderr in {}; problems: {problems:?})",
                    kept.display()
                );
            }
        }
    }
    let steady: u64 = per_node.iter().map(|l| l.steady_samples).sum();
    let steady_s = per_node
        .iter()
        .map(|l| l.steady_seconds)
        .fold(0.0, f64::max);
    let acknowledged: u64 = per_node.iter().map(|l| l.accepted_samples).sum();

    let mut stored = Stored {
        acknowledged,
        ..Stored::default()
    };
    let counted = match (&cluster, setup.log) {
        (Some(c), LogSetup::Nats { replicas, .. }) => {
            let mut cfg = NatsConfig::new(&c.urls());
            // As the nodes created it: connecting must not change the stream.
            cfg.replicas = replicas;
            cfg.monitor_url = Some(c.monitor_url(0));
            match NatsLog::connect(cfg).await {
                Ok(log) => {
                    let r = count_stored(&log, &mut stored).await;
                    let _ = log.close().await;
                    r
                }
                Err(e) => Err(anyhow::Error::new(e).context("connect to the stream")),
            }
        }
        _ => {
            let data = tmp.path().join("n0").join("data");
            match aiops_log::LogSpec::parse("embedded", &data) {
                Ok(spec) => match aiops_log::open(&spec).await {
                    Ok(log) => {
                        let r = count_stored(log.as_ref(), &mut stored).await;
                        let _ = log.close().await;
                        r
                    }
                    Err(e) => Err(anyhow::Error::new(e).context("open the embedded log")),
                },
                Err(e) => Err(anyhow::Error::new(e).context("embedded log spec")),
            }
        }
    };
    if let Err(e) = counted {
        problems.push(format!("{e:#}"));
    }
    stored.verified = stored.samples >= stored.acknowledged && stored.acknowledged > 0;
    drop(cluster);
    if !problems.is_empty() {
        let kept = tmp.keep();
        eprintln!(
            "{setup}: problems: {problems:?}; stderr kept in {}",
            kept.display()
        );
    }
    if !stored.verified {
        bail!(
            "{setup}: the log holds {} samples but {} were acknowledged: not reporting lost data \
             as a figure (problems: {problems:?})",
            stored.samples,
            stored.acknowledged
        );
    }
    Ok(SetupRun {
        name: setup.to_string(),
        setup,
        samples_per_s: if steady_s > 0.0 {
            steady as f64 / steady_s
        } else {
            0.0
        },
        vs_embedded: None,
        p99_us: per_node.iter().map(|l| l.latency_us.p99).max().unwrap_or(0),
        backpressure: per_node.iter().map(|l| l.backpressure).sum(),
        errors: per_node.iter().map(|l| l.errors).sum(),
        cpu: cpu_split(&first, &last, steady),
        per_node,
        stored,
        startup_s,
    })
}

/// `nats-server --version` of the server the testkit picks.
fn nats_version() -> String {
    aiops_testkit::newer_nats_server()
        .ok()
        .and_then(|p| aiops_testkit::nats_server_version_of(&p).ok())
        .map(|(a, b, c)| format!("{a}.{b}.{c}"))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Runs every setup of the plan.
///
/// # Errors
/// The binary is missing, the pool cannot be built, a nats-server or node does not start, a
/// setup has no accepted request after its warm-up, or a log holds fewer samples than were
/// acknowledged.
pub async fn run(plan: &ClusterIngestPlan) -> anyhow::Result<ClusterIngestDetails> {
    if !plan.aiops_bin.is_file() {
        bail!(
            "{} not found: cargo build -p aiops-server --bin aiops",
            plan.aiops_bin.display()
        );
    }
    let shape = PoolShape {
        series: plan.series,
        samples_per_request: plan.samples_per_request,
        bodies: plan.pool,
        // Inside ingest's default window (one year back): 30 days back, as the `ingest` bench.
        start_ms: wall_ms() / 60_000 * 60_000 - 30 * 86_400_000,
        step_ms: 10_000,
    };
    let pool = build_pool(&shape).context("build the body pool")?;
    let pool_bytes = pool.iter().map(|b| b.bytes.len() as u64).sum();
    let pool = Arc::new(pool);
    let tck = clock_ticks();
    let mut runs: Vec<SetupRun> = Vec::new();
    for &setup in &plan.setups {
        eprintln!("{setup}: starting");
        let r = run_setup(plan, setup, Arc::clone(&pool), tck).await?;
        eprintln!(
            "{setup}: {:.0} samples/s; CPU s per M samples: aiops {:.2}, nats {:.2}, client {:.2}; \
             {:.2} cores busy (+{:.2} by other processes); stored {} ≥ acknowledged {}",
            r.samples_per_s,
            r.cpu.aiops_per_m,
            r.cpu.nats_per_m,
            r.cpu.client_per_m,
            r.cpu.cores_busy,
            r.cpu.other_cores_busy,
            r.stored.samples,
            r.stored.acknowledged
        );
        runs.push(r);
    }
    let embedded = runs
        .iter()
        .find(|r| r.setup.log == LogSetup::Embedded)
        .map(|r| r.samples_per_s);
    if let Some(e) = embedded.filter(|e| *e > 0.0) {
        for r in &mut runs {
            r.vs_embedded = Some(r.samples_per_s / e);
        }
    }
    Ok(ClusterIngestDetails {
        plan: plan.clone(),
        nats_server: nats_version(),
        pool_bytes,
        runs,
    })
}

/// The human table of a run.
pub fn table(d: &ClusterIngestDetails) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>5} {:>12} {:>7} {:>8} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6}  stored ≥ acked",
        "setup",
        "nodes",
        "samples/s",
        "×emb",
        "p99 ms",
        "aiops s/M",
        "nats s/M",
        "client/M",
        "cores",
        "other",
        "429s"
    );
    for r in &d.runs {
        let _ = writeln!(
            out,
            "{:<14} {:>5} {:>12} {:>7} {:>8.1} {:>9.3} {:>9.3} {:>9.3} {:>6.2} {:>6.2} {:>6}  {} ≥ {}",
            r.name,
            r.setup.nodes,
            crate::report::human(r.samples_per_s),
            r.vs_embedded.map_or("-".to_string(), |v| format!("{v:.2}")),
            r.p99_us as f64 / 1000.0,
            r.cpu.aiops_per_m,
            r.cpu.nats_per_m,
            r.cpu.client_per_m,
            r.cpu.cores_busy,
            r.cpu.other_cores_busy,
            r.backpressure,
            r.stored.samples,
            r.stored.acknowledged
        );
    }
    out
}

/// The flat figures of a run.
pub fn figures(d: &ClusterIngestDetails) -> Vec<Figure> {
    let mut out = Vec::new();
    for r in &d.runs {
        let n = &r.name;
        out.push(Figure::new(
            format!("cluster_ingest.{n}.samples_per_s"),
            r.samples_per_s,
            "samples/s",
            FigureKind::Rate,
        ));
        for (what, v) in [
            ("aiops", r.cpu.aiops_per_m),
            ("nats", r.cpu.nats_per_m),
            ("client", r.cpu.client_per_m),
        ] {
            out.push(Figure::new(
                format!("cluster_ingest.{n}.{what}_cpu_s_per_m_samples"),
                v,
                "CPU s/M samples",
                FigureKind::Latency,
            ));
        }
        out.push(Figure::new(
            format!("cluster_ingest.{n}.latency_p99_us"),
            r.p99_us as f64,
            "µs",
            FigureKind::Latency,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setups_parse_and_print() {
        for s in DEFAULT_SETUPS.split(',') {
            let setup: Setup = s.parse().unwrap();
            assert_eq!(setup.to_string(), s);
        }
        let s: Setup = "r3-always-n1".parse().unwrap();
        assert_eq!(
            s.log,
            LogSetup::Nats {
                replicas: 3,
                sync_always: true
            }
        );
        for bad in ["r2-n1", "r3-n4", "r3-n0", "r3", "x", "r3-sometimes-n1"] {
            assert!(bad.parse::<Setup>().is_err(), "{bad}");
        }
    }

    #[test]
    fn own_cpu_is_readable() {
        assert!(cpu_seconds("self", 100.0).is_some());
        assert!(cpu_seconds("0", 100.0).is_none());
    }
}
