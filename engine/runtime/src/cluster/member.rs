//! A node's membership loop: keep this node's liveness lease, keep the leases of the units it
//! owns, take over the units [`super::assign`] gives it and hand on the ones it no longer
//! should own.
//!
//! Taking a unit over, in this order:
//! 1. acquire the unit's lease (`unit.<name>`) — fails while another node holds it;
//! 2. append a fence message on `aiops.fence.<name>` (unfenced) and take its sequence as the
//!    [`Fence`]: from now on, appends fenced by the previous owner's fence are refused;
//! 3. stop this node's follower of the unit, then run [`Unit::own`] with a
//!    [`FencedLog`]: it restores the last checkpoint, collects the outputs already in the log
//!    (including any the previous owner appended before step 2) and goes on.
//!
//! An owner renews every `lease_ttl / 3`. It gives the unit up at once (stops it without
//! waiting) when a renewal says the lease is gone, or when `lease_ttl - lease_ttl/4` passed
//! since the last renewal it sent that succeeded — before any other node can have taken it.
//! Handing a unit on because the assignment changed is graceful: stop, final checkpoint,
//! release the lease; the new owner's next poll takes it.

use super::assign::assign;
use super::unit::{Unit, UnitError};
use aiops_log::{EventLog, Fence, FencedLog, Leases, LogError};
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// `[cluster]`: how this node takes part in a cluster (only with a NATS log).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// This node's name, unique in the cluster (`--node`). Empty: not in cluster mode.
    pub node: String,
    /// A lease lives this long after its last renewal: the longest a dead node's units wait
    /// for a new owner (plus `poll`). The same on every node. Default 6s.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often the node looks at who is alive and what it should own. Default 1s.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// The lease bucket. Default `AIOPS_LEASES`.
    pub lease_bucket: String,
    /// The checkpoint blob store. Default `AIOPS_CHECKPOINTS`.
    pub checkpoint_bucket: String,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            node: String::new(),
            lease_ttl: Duration::from_secs(6),
            poll: Duration::from_secs(1),
            lease_bucket: "AIOPS_LEASES".to_string(),
            checkpoint_bucket: "AIOPS_CHECKPOINTS".to_string(),
        }
    }
}

impl ClusterSettings {
    /// Whether cluster mode is on (a node name is set).
    pub fn enabled(&self) -> bool {
        !self.node.is_empty()
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// A sentence naming the bad setting.
    pub fn validate(&self) -> Result<(), String> {
        if !valid_name(&self.node) {
            return Err(format!(
                "cluster.node {:?}: use 1–64 characters of A-Z a-z 0-9 _ -",
                self.node
            ));
        }
        if self.lease_ttl < Duration::from_secs(2) {
            return Err("cluster.lease_ttl must be at least 2s".to_string());
        }
        if self.poll.is_zero() || self.poll * 2 > self.lease_ttl {
            return Err("cluster.poll must be above 0 and at most half of lease_ttl".to_string());
        }
        Ok(())
    }
}

/// Whether `s` may be a node name (it becomes part of KV keys and message ids).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What a lease's value says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    node: String,
    since_ms: i64,
}

/// How this node runs a unit now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// This node owns it.
    Owner,
    /// Another node owns it (or nobody yet); this node follows the log for reads.
    Follower,
    /// Stopped after an error; started again after a pause.
    Failed,
}

/// One unit as this node sees it, for `GET /api/cluster`.
#[derive(Debug, Clone, Serialize)]
pub struct UnitStatus {
    /// The unit.
    pub unit: String,
    /// The node the assignment gives it to.
    pub assigned: Option<String>,
    /// The node holding its lease (as last listed).
    pub owner: Option<String>,
    /// Since when that node holds it, Unix ms.
    pub owner_since_ms: Option<i64>,
    /// This node's role.
    pub role: Role,
    /// Times this node took it over.
    pub takeovers: u64,
    /// The last error of the unit on this node.
    pub last_error: Option<String>,
}

/// What the member knows, shared with the HTTP API.
#[derive(Debug, Default)]
pub struct ClusterBoard {
    inner: Mutex<BoardInner>,
}

#[derive(Debug, Default, Clone, Serialize)]
struct BoardInner {
    node: String,
    nodes: Vec<String>,
    units: BTreeMap<String, UnitStatus>,
    lease_ttl_ms: u64,
}

impl ClusterBoard {
    /// The cluster as this node sees it, as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(&*self.inner.lock()).unwrap_or(serde_json::Value::Null)
    }

    /// Per-unit metrics in the Prometheus text format: whether this node owns each unit and
    /// how often it took it over.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let b = self.inner.lock();
        let mut out = String::from(
            "# HELP aiops_cluster_unit_owned 1 when this node owns the work unit.\n\
             # TYPE aiops_cluster_unit_owned gauge\n",
        );
        for u in b.units.values() {
            let _ = writeln!(
                out,
                "aiops_cluster_unit_owned{{unit=\"{}\"}} {}",
                u.unit,
                u8::from(u.role == Role::Owner)
            );
        }
        out.push_str(
            "# HELP aiops_cluster_unit_takeovers_total Times this node took the work unit over.\n\
             # TYPE aiops_cluster_unit_takeovers_total counter\n",
        );
        for u in b.units.values() {
            let _ = writeln!(
                out,
                "aiops_cluster_unit_takeovers_total{{unit=\"{}\"}} {}",
                u.unit, u.takeovers
            );
        }
        let _ = writeln!(
            out,
            "# HELP aiops_cluster_nodes Live nodes this node sees.\n# TYPE aiops_cluster_nodes gauge\naiops_cluster_nodes {}",
            b.nodes.len()
        );
        out
    }

    /// Units this node owns now.
    pub fn owned(&self) -> Vec<String> {
        self.inner
            .lock()
            .units
            .values()
            .filter(|u| u.role == Role::Owner)
            .map(|u| u.unit.clone())
            .collect()
    }
}

struct Running {
    role: Role,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), UnitError>>,
    /// Owner only: the lease revision to renew at, and when the last successful renewal was
    /// sent.
    lease: Option<(u64, Instant)>,
}

/// A node of the cluster and the units it may run.
pub struct Member {
    settings: ClusterSettings,
    log: Arc<dyn EventLog>,
    leases: Arc<dyn Leases>,
    units: Vec<Arc<dyn Unit>>,
    /// Units that come and go while the node runs (one per pipeline file): the list as the
    /// node's pipeline directory has it now.
    dynamic: Option<watch::Receiver<Vec<Arc<dyn Unit>>>>,
    board: Arc<ClusterBoard>,
}

const NODE_PREFIX: &str = "node.";
/// The longest shutdown waits for a unit to stop, or for a lease release.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
const UNIT_PREFIX: &str = "unit.";

impl Member {
    /// A member named by `settings.node` over `log`, running `units`.
    pub fn new(
        settings: ClusterSettings,
        log: Arc<dyn EventLog>,
        leases: Arc<dyn Leases>,
        units: Vec<Arc<dyn Unit>>,
        board: Arc<ClusterBoard>,
    ) -> Member {
        Member {
            settings,
            log,
            leases,
            units,
            dynamic: None,
            board,
        }
    }

    /// Also runs the units `dynamic` lists, as the list changes: a unit that appears is
    /// assigned at the next round; one that disappears is stopped (an owner checkpoints) and
    /// its lease released. Every node computes the assignment from its own list, so nodes
    /// agree once their lists agree (e.g. once every node's pipeline directory has the file).
    pub fn with_dynamic(mut self, dynamic: watch::Receiver<Vec<Arc<dyn Unit>>>) -> Member {
        self.dynamic = Some(dynamic);
        self
    }

    fn holder(&self) -> Bytes {
        let h = Holder {
            node: self.settings.node.clone(),
            since_ms: crate::clock::now_ms(),
        };
        Bytes::from(serde_json::to_vec(&h).unwrap_or_default())
    }

    /// Runs until `shutdown` flips; then stops every unit (owners checkpoint) and releases
    /// its leases so the other nodes take over at their next poll.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let ttl = self.leases.ttl();
        let renew_every = ttl / 3;
        let give_up_after = ttl - ttl / 4;
        let node_key = format!("{NODE_PREFIX}{}", self.settings.node);
        let mut node_lease: Option<(u64, Instant)> = None;
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut takeovers: HashMap<String, u64> = HashMap::new();
        let mut errors: HashMap<String, (String, Instant)> = HashMap::new();
        let mut warned_name = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // A round talks to the cluster (10 s timeouts while servers fail over): shutdown
            // does not wait for it. Cutting a round short is safe — leases are compare-and-set
            // and a lease taken but not recorded expires.
            let mut stop = shutdown.clone();
            let round = async {
                // 1. This node's liveness.
                node_lease = self
                    .keep(&node_key, node_lease, renew_every, give_up_after)
                    .await;
                if node_lease.is_none() && !warned_name {
                    tracing::warn!(node = %self.settings.node, "another process holds this node name's lease (or this node's previous run, until it expires): waiting");
                    warned_name = true;
                }
                // 2. Owned units' leases.
                for (name, r) in running.iter_mut() {
                    if r.role != Role::Owner {
                        continue;
                    }
                    let key = format!("{UNIT_PREFIX}{name}");
                    r.lease = self.keep(&key, r.lease, renew_every, give_up_after).await;
                    if r.lease.is_none() {
                        tracing::warn!(unit = %name, "lease lost: stopping the unit");
                        let _ = r.stop.send(true);
                        r.task.abort();
                        r.role = Role::Failed;
                    }
                }
                // 3. Units that ended.
                let ended: Vec<String> = running
                    .iter()
                    .filter(|(_, r)| r.task.is_finished())
                    .map(|(n, _)| n.clone())
                    .collect();
                for name in ended {
                    let Some(r) = running.remove(&name) else {
                        continue;
                    };
                    let outcome = r.task.await;
                    if let Some((rev, _)) = r.lease {
                        self.release(&name, rev).await;
                    }
                    let msg = match outcome {
                        Ok(Ok(())) => "stopped".to_string(),
                        Ok(Err(e)) => e.to_string(),
                        Err(e) if e.is_cancelled() => "lease lost".to_string(),
                        Err(e) => format!("panicked: {e}"),
                    };
                    tracing::warn!(unit = %name, role = ?r.role, error = %msg, "work unit stopped");
                    errors.insert(name, (msg, Instant::now()));
                }
                // 4. Who is alive, who owns what, what should be ours.
                let (nodes, owners) = match self.survey().await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster: cannot list leases");
                        return;
                    }
                };
                let mut units = self.units.clone();
                if let Some(d) = &self.dynamic {
                    units.extend(d.borrow().iter().cloned());
                }
                let names: Vec<String> = units.iter().map(|u| u.name().to_string()).collect();
                // Units no longer listed: stop (owners checkpoint), release.
                let gone: Vec<String> = running
                    .keys()
                    .filter(|n| !names.contains(n))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some(r) = running.remove(&name) {
                        tracing::info!(unit = %name, "work unit removed: stopping it");
                        let _ = r.stop.send(true);
                        let _ = r.task.await;
                        if let Some((rev, _)) = r.lease {
                            self.release(&name, rev).await;
                        }
                    }
                    errors.remove(&name);
                    takeovers.remove(&name);
                }
                let plan = assign(&names, &nodes);
                let me = &self.settings.node;
                for unit in &units {
                    let name = unit.name().to_string();
                    let mine = plan.get(&name) == Some(me) && node_lease.is_some();
                    let cooling = errors
                        .get(&name)
                        .is_some_and(|(_, at)| at.elapsed() < self.settings.poll * 3);
                    let role = running.get(&name).map(|r| r.role);
                    match role {
                        Some(Role::Owner) if !mine && plan.contains_key(&name) => {
                            // Hand on: stop (final checkpoint), then release.
                            if let Some(r) = running.remove(&name) {
                                tracing::info!(unit = %name, to = ?plan.get(&name), "handing the unit on");
                                let _ = r.stop.send(true);
                                let _ = r.task.await;
                                if let Some((rev, _)) = r.lease {
                                    self.release(&name, rev).await;
                                }
                            }
                        }
                        Some(Role::Follower) if mine && !cooling => {
                            if let Some((fence, rev, at)) = self.take(&name).await {
                                if let Some(r) = running.remove(&name) {
                                    let _ = r.stop.send(true);
                                    let _ = r.task.await;
                                }
                                running
                                    .insert(name.clone(), self.start_owner(unit, fence, rev, at));
                                *takeovers.entry(name.clone()).or_default() += 1;
                            }
                        }
                        None if !cooling => {
                            let started = if mine {
                                match self.take(&name).await {
                                    Some((fence, rev, at)) => {
                                        *takeovers.entry(name.clone()).or_default() += 1;
                                        Some(self.start_owner(unit, fence, rev, at))
                                    }
                                    None => None,
                                }
                            } else {
                                None
                            };
                            let r = started.unwrap_or_else(|| self.start_follower(unit));
                            running.insert(name.clone(), r);
                        }
                        _ => {}
                    }
                }
                // 5. The board.
                {
                    let mut b = self.board.inner.lock();
                    b.node = me.clone();
                    b.nodes = nodes.clone();
                    b.lease_ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
                    b.units = names
                        .iter()
                        .map(|n| {
                            let owner = owners.get(n);
                            let st = UnitStatus {
                                unit: n.clone(),
                                assigned: plan.get(n).cloned(),
                                owner: owner.map(|h| h.node.clone()),
                                owner_since_ms: owner.map(|h| h.since_ms),
                                role: running.get(n).map_or(Role::Failed, |r| r.role),
                                takeovers: takeovers.get(n).copied().unwrap_or(0),
                                last_error: errors.get(n).map(|(e, _)| e.clone()),
                            };
                            (n.clone(), st)
                        })
                        .collect();
                }
            };
            tokio::select! {
                _ = round => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            self.wait(&mut shutdown).await;
        }
        // Shutdown: stop everything (owners write their final checkpoint), then release — each
        // within a bound, so a cluster that does not answer cannot hold the process: what is
        // not released expires.
        for r in running.values() {
            let _ = r.stop.send(true);
        }
        for (name, r) in running.drain() {
            let mut task = r.task;
            if tokio::time::timeout(SHUTDOWN_WAIT, &mut task)
                .await
                .is_err()
            {
                tracing::warn!(unit = %name, "work unit did not stop in time: aborted (its lease expires)");
                task.abort();
                continue;
            }
            if let Some((rev, _)) = r.lease {
                let _ = tokio::time::timeout(SHUTDOWN_WAIT, self.release(&name, rev)).await;
            }
        }
        if let Some((rev, _)) = node_lease
            && let Ok(Err(e)) =
                tokio::time::timeout(SHUTDOWN_WAIT, self.leases.release(&node_key, rev)).await
        {
            tracing::warn!(error = %e, "cluster: cannot release the node lease");
        }
    }

    async fn wait(&self, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(self.settings.poll) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// Acquires or renews `key`: the lease after this round, or `None` when not held.
    async fn keep(
        &self,
        key: &str,
        lease: Option<(u64, Instant)>,
        renew_every: Duration,
        give_up_after: Duration,
    ) -> Option<(u64, Instant)> {
        let sent = Instant::now();
        match lease {
            Some((rev, at)) if at.elapsed() < renew_every => Some((rev, at)),
            Some((rev, at)) => match self.leases.renew(key, self.holder(), rev).await {
                Ok(Some(rev)) => Some((rev, sent)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(key, error = %e, "cluster: lease renewal failed");
                    (at.elapsed() < give_up_after).then_some((rev, at))
                }
            },
            None => match self.leases.acquire(key, self.holder()).await {
                Ok(Some(rev)) => Some((rev, sent)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(key, error = %e, "cluster: lease acquire failed");
                    None
                }
            },
        }
    }

    async fn release(&self, unit: &str, rev: u64) {
        if let Err(e) = self
            .leases
            .release(&format!("{UNIT_PREFIX}{unit}"), rev)
            .await
        {
            tracing::warn!(unit, error = %e, "cluster: cannot release a unit lease (it expires)");
        }
    }

    /// Live nodes and the holders of unit leases.
    async fn survey(&self) -> Result<(Vec<String>, HashMap<String, Holder>), LogError> {
        let nodes = self
            .leases
            .list(NODE_PREFIX)
            .await?
            .into_iter()
            .map(|e| e.key[NODE_PREFIX.len()..].to_string())
            .collect();
        let owners = self
            .leases
            .list(UNIT_PREFIX)
            .await?
            .into_iter()
            .filter_map(|e| {
                let h: Holder = serde_json::from_slice(&e.value).ok()?;
                Some((e.key[UNIT_PREFIX.len()..].to_string(), h))
            })
            .collect();
        Ok((nodes, owners))
    }

    /// Steps 1 and 2 of a takeover: the lease, then the fence.
    async fn take(&self, unit: &str) -> Option<(Fence, u64, Instant)> {
        let key = format!("{UNIT_PREFIX}{unit}");
        let sent = Instant::now();
        let rev = match self.leases.acquire(&key, self.holder()).await {
            Ok(Some(rev)) => rev,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(unit, error = %e, "cluster: cannot acquire a unit lease");
                return None;
            }
        };
        let msg =
            crate::wire::fence_message(unit, &self.settings.node, rev, crate::clock::now_ms());
        let subject = msg.subject.clone();
        match self.log.append(vec![msg]).await {
            Ok(a) if !a.is_empty() => {
                let fence = Fence {
                    subject,
                    seq: a[0].seq,
                };
                tracing::info!(unit, node = %self.settings.node, fence = fence.seq, "took the work unit over");
                Some((fence, rev, sent))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(unit, error = %e, "cluster: cannot append the fence; giving the lease back");
                self.release(unit, rev).await;
                None
            }
        }
    }

    fn start_owner(&self, unit: &Arc<dyn Unit>, fence: Fence, rev: u64, at: Instant) -> Running {
        let (stop, rx) = watch::channel(false);
        let log: Arc<dyn EventLog> = Arc::new(FencedLog::new(self.log.clone(), fence));
        let task = tokio::spawn(unit.clone().own(log, rx));
        Running {
            role: Role::Owner,
            stop,
            task,
            lease: Some((rev, at)),
        }
    }

    fn start_follower(&self, unit: &Arc<dyn Unit>) -> Running {
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(unit.clone().follow(rx));
        Running {
            role: Role::Follower,
            stop,
            task,
            lease: None,
        }
    }
}
