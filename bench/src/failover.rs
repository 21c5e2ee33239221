//! `aiops-bench failover`: how long the alerting work unit is without an owner when its owner
//! is killed (issue 17, cluster mode).
//!
//! Starts a 3-server JetStream cluster ([`aiops_testkit::NatsCluster`]) and three
//! `aiops run --node n0..n2` on it (R3 stream, archive off), each on its own port and data
//! directory, and keeps a steady alert load (`POST /api/alerts`, JSON arrays whose statuses change
//! every round) spread over the live nodes. This process follows the log read-only
//! ([`aiops_log::nats::NatsLog`]) and notes every record on `aiops.fence.alerting` (a node taking
//! the unit over appends one before it starts the unit) and on `aiops.alerting` (decisions).
//!
//! Then `kills` times: the owner of `alerting` (from `GET /api/cluster`) gets SIGKILL; the
//! figures are, from the kill,
//! - **takeover**: the first fence on `aiops.fence.alerting` stored after the kill;
//! - **outputs resume**: the first decision on `aiops.alerting` stored after that fence (the
//!   successor restored the checkpoint, collected the outputs already in the log and appended).
//!
//! Both are measured on the JetStream timestamps of those records (the servers run on this
//! machine, one clock) against the wall clock read just before the kill; the instant this
//! process read them is kept beside. The killed node is then restarted on the same port and data
//! directory, and the next kill waits until every unit is owned by the node the assignment names
//! (as every live node sees it) and the load ran on for `settle`.

use crate::alerting::wall_ms;
use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{EventLog, LogReader};
use aiops_testkit::{AiopsCommand, AiopsProcess, NatsCluster};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fence subject of the alerting unit.
const FENCE_SUBJECT: &str = "aiops.fence.alerting";

/// The subject of alerting decisions.
const DECISIONS_SUBJECT: &str = "aiops.alerting";

/// Nodes of the cluster (and nats-servers).
const NODES: usize = 3;

/// What to run.
#[derive(Debug, Clone)]
pub struct FailoverPlan {
    /// The `aiops` binary.
    pub aiops_bin: PathBuf,
    /// Parent of the temporary data directories (default `$TMPDIR`).
    pub tmp_dir: Option<PathBuf>,
    /// How many times the alerting owner is killed.
    pub kills: usize,
    /// `[cluster] lease_ttl` of every node.
    pub lease_ttl: Duration,
    /// `[cluster] poll` of every node.
    pub poll: Duration,
    /// Alerts per second of the steady load.
    pub rate: f64,
    /// Alerts per POST.
    pub alerts_per_post: usize,
    /// Load time between "every unit owned as assigned" and the next kill.
    pub settle: Duration,
    /// How long to wait for a takeover, outputs, or every unit owned before giving up.
    pub timeout: Duration,
    /// Keep the nodes' data directories and stderr files after the run.
    pub keep: bool,
}

/// One kill.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Kill {
    /// 1-based.
    pub n: usize,
    /// The node killed (the alerting owner).
    pub victim: String,
    /// The node owning alerting afterwards.
    pub successor: Option<String>,
    /// Wall clock just before the SIGKILL, Unix ms.
    pub kill_ms: i64,
    /// The random wait after `settle` before this kill, ms (spreads the kill over the owner's
    /// renewal cycle).
    pub jitter_ms: f64,
    /// Sequence of the successor's fence.
    pub fence_seq: u64,
    /// Kill → the fence stored (JetStream timestamp), ms.
    pub takeover_ms: f64,
    /// Kill → this process read the fence, ms.
    pub takeover_seen_ms: f64,
    /// Sequence of the first decision after the fence.
    pub resume_seq: u64,
    /// Kill → the first decision after the fence stored (JetStream timestamp), ms.
    pub resume_ms: f64,
    /// Kill → this process read it, ms.
    pub resume_seen_ms: f64,
    /// Restart of the killed node → every unit owned as assigned again, ms.
    pub rejoin_ms: f64,
    /// The last decision stored before the kill → the kill, ms (how steadily decisions came).
    pub last_decision_before_ms: Option<f64>,
}

/// p50/p99/max over the kills, ms (nearest rank).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Spread {
    /// Samples.
    pub n: usize,
    /// Smallest.
    pub min_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[i - 1]
        };
        Spread {
            n: v.len(),
            min_ms: v[0],
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            max_ms: v[v.len() - 1],
        }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FailoverDetails {
    /// aiops nodes (and nats-servers, one each).
    pub nodes: usize,
    /// Lease TTL of every node, ms.
    pub lease_ttl_ms: u64,
    /// Cluster poll of every node, ms.
    pub poll_ms: u64,
    /// Target alert rate of the load, per second.
    pub alerts_per_s: f64,
    /// Alerts per POST.
    pub alerts_per_post: usize,
    /// POSTs answered 2xx.
    pub posts_ok: u64,
    /// POSTs that failed (connection refused by a killed node, 503 while leaders move, …).
    pub posts_failed: u64,
    /// Every kill.
    pub kills: Vec<Kill>,
    /// Where the nodes' data directories and stderr were kept (`--keep`).
    pub kept_dir: Option<PathBuf>,
    /// Kill → takeover (the successor's fence stored).
    pub takeover: Spread,
    /// Kill → outputs resume (the first decision after that fence stored).
    pub resume: Spread,
    /// Takeover → outputs resume: restore and dedup on the successor.
    pub restore: Spread,
    /// Restart of the killed node → every unit owned as assigned.
    pub rejoin: Spread,
}

/// A fence or decision record as this process read it.
#[derive(Debug, Clone)]
struct Seen {
    seq: u64,
    fence: bool,
    stored_ms: i64,
    read_ms: i64,
}

/// One aiops node: how to start it, and the process while it runs.
struct Node {
    name: String,
    port: u16,
    dir: PathBuf,
    starts: usize,
    proc: Option<AiopsProcess>,
}

impl Node {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The environment of every node.
fn node_env(plan: &FailoverPlan) -> Vec<(String, String)> {
    vec![
        ("AIOPS__NATS__REPLICAS".into(), "3".into()),
        (
            "AIOPS__CLUSTER__LEASE_TTL".into(),
            humantime::format_duration(plan.lease_ttl).to_string(),
        ),
        (
            "AIOPS__CLUSTER__POLL".into(),
            humantime::format_duration(plan.poll).to_string(),
        ),
        ("AIOPS__ARCHIVE__ENABLED".into(), "false".into()),
    ]
}

async fn start_node(plan: &FailoverPlan, urls: &str, node: &mut Node) -> anyhow::Result<()> {
    node.starts += 1;
    let cmd = AiopsCommand::new(&plan.aiops_bin, &node.dir)
        .log(urls)
        .http_port(node.port)
        .args(["--node", node.name.as_str()])
        .envs(node_env(plan))
        .stderr_file(
            node.dir
                .join(format!("aiops-{}-{}.stderr", node.name, node.starts)),
        )
        .ready_timeout(Duration::from_secs(60));
    let name = node.name.clone();
    let p = tokio::task::spawn_blocking(move || cmd.spawn())
        .await
        .context("start task")?
        .with_context(|| format!("cannot start node {name}"))?;
    node.proc = Some(p);
    Ok(())
}

/// `GET /api/cluster` of one node.
async fn cluster_view(client: &reqwest::Client, base: &str) -> Option<Value> {
    let r = client
        .get(format!("{base}/api/cluster"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    serde_json::from_slice(&r.bytes().await.ok()?).ok()
}

/// The owner of `unit` in a view.
fn owner_of(view: &Value, unit: &str) -> Option<String> {
    view["units"][unit]["owner"].as_str().map(str::to_string)
}

/// Every live node lists all `NODES` nodes and every unit (whatever units the build has:
/// `alerting`, `templates`, `workflows`, one per pipeline, …) owned by the node assigned to it,
/// with the same owners on every node.
async fn settled(client: &reqwest::Client, bases: &[String]) -> bool {
    let mut first: Option<BTreeMap<String, Option<String>>> = None;
    for b in bases {
        let Some(v) = cluster_view(client, b).await else {
            return false;
        };
        if v["nodes"].as_array().map_or(0, Vec::len) != NODES {
            return false;
        }
        let Some(units) = v["units"].as_object() else {
            return false;
        };
        let owners: BTreeMap<String, Option<String>> = units
            .iter()
            .map(|(u, s)| (u.clone(), s["owner"].as_str().map(str::to_string)))
            .collect();
        let ok = units.contains_key("alerting")
            && units
                .values()
                .all(|s| s["owner"].is_string() && s["assigned"] == s["owner"]);
        if !ok {
            return false;
        }
        match &first {
            None => first = Some(owners),
            Some(f) if *f != owners => return false,
            Some(_) => {}
        }
    }
    true
}

async fn wait_settled(
    client: &reqwest::Client,
    bases: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !settled(client, bases).await {
        if Instant::now() > deadline {
            bail!("the units were not owned as assigned within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// One POST body: alerts `0..n` (the same `n` fingerprints every round), of which every fifth,
/// shifted by the round, is resolved and the others firing, so every round turns some alerts
/// firing and others resolved and the engine has decisions to append; the round is an
/// annotation (bodies differ).
fn alerts(round: u64, n: usize) -> String {
    let round = usize::try_from(round).unwrap_or(0);
    let v: Vec<Value> = (0..n)
        .map(|k| {
            json!({
                "name": format!("Alert{}", k % 3),
                "severity": if k.is_multiple_of(3) { "critical" } else { "warning" },
                "labels": {"instance": format!("host-{k}"), "service": format!("svc-{}", k % 4)},
                "status": if (k + round).is_multiple_of(5) { "resolved" } else { "firing" },
                "annotations": {"round": round.to_string()},
            })
        })
        .collect();
    Value::Array(v).to_string()
}

/// The steady load: one POST every `alerts_per_post / rate`, to the live nodes in turn, each
/// POST its own task (a POST to a node just killed must not hold up the others).
fn spawn_load(
    plan: &FailoverPlan,
    client: reqwest::Client,
    live: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let per = plan.alerts_per_post.max(1);
    let every = Duration::from_secs_f64(per as f64 / plan.rate.max(0.001));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            round += 1;
            let target = {
                let l = live
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if l.is_empty() {
                    continue;
                }
                l[usize::try_from(round).unwrap_or(0) % l.len()].clone()
            };
            let body = alerts(round, per);
            let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let r = client
                    .post(format!("{target}/api/alerts"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            });
        }
    })
}

/// Follows the log from the start, noting fence and decision records of alerting.
fn spawn_follower(
    log: Arc<NatsLog>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pos = 1u64;
        let mut reader: Option<Box<dyn LogReader>> = None;
        while !stop.load(Ordering::Relaxed) {
            let r = match reader.as_mut() {
                Some(r) => r,
                None => match log.reader(pos).await {
                    Ok(r) => reader.insert(r),
                    Err(e) => {
                        tracing::warn!(error = %e, "log follower: cannot open a reader");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                },
            };
            match r.next_batch(4096).await {
                Ok(batch) => {
                    let read_ms = wall_ms();
                    let mut s = seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for rec in batch {
                        pos = rec.seq + 1;
                        let fence = rec.subject == FENCE_SUBJECT;
                        if fence || rec.subject == DECISIONS_SUBJECT {
                            s.push(Seen {
                                seq: rec.seq,
                                fence,
                                stored_ms: rec.append_ts_ms,
                                read_ms,
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "log follower: read failed, reopening");
                    reader = None;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// The first fence stored at or after `kill_ms` and the first decision after it, once read.
fn after_kill(seen: &Mutex<Vec<Seen>>, kill_ms: i64) -> (Option<Seen>, Option<Seen>) {
    let s = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fence = s
        .iter()
        .find(|r| r.fence && r.stored_ms >= kill_ms)
        .cloned();
    let resume = fence
        .as_ref()
        .and_then(|f| s.iter().find(|r| !r.fence && r.seq > f.seq).cloned());
    (fence, resume)
}

/// A number in [0, 1) from the wall clock and `k` (splitmix64): kill timing only.
fn unit_random(k: usize) -> f64 {
    let mut z = (wall_ms() as u64) ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs the benchmark.
///
/// # Errors
/// A nats-server or node does not start, the log cannot be followed, or a takeover, the
/// outputs after it or the rejoin does not happen within the plan's timeout.
pub async fn run(plan: &FailoverPlan) -> anyhow::Result<FailoverDetails> {
    if !plan.aiops_bin.is_file() {
        bail!(
            "{} not found: cargo build -p aiops-server --bin aiops",
            plan.aiops_bin.display()
        );
    }
    let nats = tokio::task::spawn_blocking(|| NatsCluster::start(NODES))
        .await
        .context("nats start task")?
        .context("cannot start 3 nats-servers >= 2.11 (scripts/install-test-deps.sh)")?;
    let urls = nats.urls();
    eprintln!("nats cluster: {urls}");
    let tmp = match &plan.tmp_dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .context("cannot create a temporary directory")?;
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|i| Node {
            name: format!("n{i}"),
            port: aiops_testkit::free_port(),
            dir: tmp.path().join(format!("n{i}")),
            starts: 0,
            proc: None,
        })
        .collect();
    for n in &mut nodes {
        start_node(plan, &urls, n).await?;
    }
    let mut result = measure(plan, &urls, &mut nodes).await;
    for n in &mut nodes {
        if let Some(mut p) = n.proc.take() {
            let _ = tokio::task::spawn_blocking(move || p.stop(Duration::from_secs(10))).await;
        }
    }
    drop(nats);
    if plan.keep || result.is_err() {
        let kept = tmp.keep();
        eprintln!("node data and stderr kept in {}", kept.display());
        if let Ok(d) = result.as_mut() {
            d.kept_dir = Some(kept);
        }
    }
    result
}

async fn measure(
    plan: &FailoverPlan,
    urls: &str,
    nodes: &mut [Node],
) -> anyhow::Result<FailoverDetails> {
    let client = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(5))
        .build()
        .context("http client")?;
    let all: Vec<String> = nodes.iter().map(Node::base).collect();
    wait_settled(&client, &all, plan.timeout).await?;
    eprintln!("3 nodes up, every unit owned");

    let mut cfg = NatsConfig::new(urls);
    // The bench must not change the stream: the nodes created it with 3 replicas.
    cfg.replicas = NODES;
    let log = Arc::new(NatsLog::connect(cfg).await.context("follow the log")?);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let follower = spawn_follower(log.clone(), seen.clone(), stop.clone());
    let live = Arc::new(Mutex::new(all.clone()));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load = spawn_load(
        plan,
        client.clone(),
        live.clone(),
        stop.clone(),
        ok.clone(),
        failed.clone(),
    );
    tokio::time::sleep(plan.settle).await;

    let mut kills = Vec::new();
    let outcome = async {
        for k in 1..=plan.kills {
            // A kill right after a settle would fall at the same point of the owner's renewal
            // cycle every time (its poll rounds start when it took the unit): wait a random part
            // of one cycle (renewals are `ttl/3` apart, checked every poll) first.
            let cycle = plan.lease_ttl / 3 + plan.poll;
            let jitter = cycle.mul_f64(unit_random(k));
            tokio::time::sleep(jitter).await;
            let view = cluster_view(&client, &all[0])
                .await
                .context("GET /api/cluster")?;
            let victim = owner_of(&view, "alerting").context("alerting has no owner")?;
            let i = nodes
                .iter()
                .position(|n| n.name == victim)
                .with_context(|| format!("unknown owner {victim}"))?;
            live.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|b| *b != all[i]);
            let kill_ms = wall_ms();
            if let Some(p) = nodes[i].proc.as_mut() {
                p.kill9();
            }
            let deadline = Instant::now() + plan.timeout;
            let (fence, resume) = loop {
                let (f, r) = after_kill(&seen, kill_ms);
                if let (Some(f), Some(r)) = (f.clone(), r) {
                    break (f, r);
                }
                if Instant::now() > deadline {
                    bail!(
                        "kill {k} of {victim}: {} within {:?}",
                        if f.is_none() {
                            "no takeover fence"
                        } else {
                            "no decision after the fence"
                        },
                        plan.timeout
                    );
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let others: Vec<String> = (0..NODES)
                .filter(|&j| j != i)
                .map(|j| all[j].clone())
                .collect();
            // The new owner as the survivors list it (their lease listing may lag the fence).
            let mut successor = None;
            let until = Instant::now() + Duration::from_secs(5);
            while successor.is_none() && Instant::now() < until {
                for b in &others {
                    if let Some(v) = cluster_view(&client, b).await
                        && let Some(o) = owner_of(&v, "alerting").filter(|o| *o != victim)
                    {
                        successor = Some(o);
                        break;
                    }
                }
                if successor.is_none() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let kill = Kill {
                n: k,
                victim: victim.clone(),
                successor,
                kill_ms,
                jitter_ms: jitter.as_secs_f64() * 1000.0,
                fence_seq: fence.seq,
                takeover_ms: (fence.stored_ms - kill_ms) as f64,
                takeover_seen_ms: (fence.read_ms - kill_ms) as f64,
                resume_seq: resume.seq,
                resume_ms: (resume.stored_ms - kill_ms) as f64,
                resume_seen_ms: (resume.read_ms - kill_ms) as f64,
                rejoin_ms: 0.0,
                last_decision_before_ms: {
                    let s = seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    s.iter()
                        .rev()
                        .find(|r| !r.fence && r.stored_ms < kill_ms)
                        .map(|r| (kill_ms - r.stored_ms) as f64)
                },
            };
            // Back on the same port and data directory; the next kill waits for the handovers.
            let t = Instant::now();
            start_node(plan, urls, &mut nodes[i]).await?;
            live.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(all[i].clone());
            wait_settled(&client, &all, plan.timeout).await?;
            let kill = Kill {
                rejoin_ms: t.elapsed().as_secs_f64() * 1000.0,
                ..kill
            };
            eprintln!(
                "kill {k}/{}: {} → {}: takeover {:.0} ms, outputs resume {:.0} ms (read {:.0} ms), \
                 rejoin {:.0} ms",
                plan.kills,
                kill.victim,
                kill.successor.as_deref().unwrap_or("?"),
                kill.takeover_ms,
                kill.resume_ms,
                kill.resume_seen_ms,
                kill.rejoin_ms
            );
            kills.push(kill);
            tokio::time::sleep(plan.settle).await;
        }
        anyhow::Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    let _ = follower.await;
    let _ = log.close().await;
    outcome?;
    Ok(FailoverDetails {
        nodes: NODES,
        lease_ttl_ms: u64::try_from(plan.lease_ttl.as_millis()).unwrap_or(u64::MAX),
        poll_ms: u64::try_from(plan.poll.as_millis()).unwrap_or(u64::MAX),
        alerts_per_s: plan.rate,
        alerts_per_post: plan.alerts_per_post,
        posts_ok: ok.load(Ordering::Relaxed),
        posts_failed: failed.load(Ordering::Relaxed),
        takeover: Spread::of(kills.iter().map(|k| k.takeover_ms).collect()),
        resume: Spread::of(kills.iter().map(|k| k.resume_ms).collect()),
        restore: Spread::of(kills.iter().map(|k| k.resume_ms - k.takeover_ms).collect()),
        rejoin: Spread::of(kills.iter().map(|k| k.rejoin_ms).collect()),
        kills,
        kept_dir: None,
    })
}

/// The flat figures of a run.
pub fn figures(d: &FailoverDetails) -> Vec<crate::report::Figure> {
    use crate::report::{Figure, FigureKind};
    let mut out = Vec::new();
    for (name, s) in [
        ("takeover", &d.takeover),
        ("resume", &d.resume),
        ("restore", &d.restore),
    ] {
        for (q, v) in [("p50", s.p50_ms), ("p99", s.p99_ms), ("max", s.max_ms)] {
            out.push(Figure::new(
                format!("failover.{name}.{q}"),
                v,
                "ms",
                FigureKind::Latency,
            ));
        }
    }
    out
}
