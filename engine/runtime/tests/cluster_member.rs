//! Cluster members on a real nats-server (≥ 2.11): two members share four work units; one
//! member is "paused" in the middle of a stream of inputs — its loop is dropped (no renewal, no
//! release) and its log's appends are held, as SIGSTOP would hold them, while its units' tasks
//! live on. The other member takes every unit over within the lease TTL plus a poll and runs
//! ahead; then the paused appends are let go, as after SIGCONT. The fence refuses them, and each
//! unit's outputs in the log are exactly one per input — none missing, none twice. The stream's
//! own duplicate window is 100 ms, so JetStream's id de-duplication cannot hide the zombie's
//! late appends (without the fence this test fails: they are stored a second time).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{AppendMessage, Appended, EventLog, Fence, LogError, LogReader, LogStats, Record};
use aiops_runtime::cluster::{ClusterBoard, ClusterSettings, DriverUnit, Member, Unit};
use aiops_runtime::{CommandProgress, Outputs, Processor, ProcessorError};
use aiops_testkit::NatsServer;
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Echoes every input on `aiops.in` as `e.<unit>.<seq>` on `aiops.out.<unit>`; its state is the
/// count of inputs seen (checked against the position on restore).
struct Echo {
    unit: String,
    seen: u64,
}

impl Processor for Echo {
    const NAME: &'static str = "echo";

    fn config_hash(&self) -> u64 {
        1
    }

    fn is_output(&self, subject: &str, _msg_id: &str) -> bool {
        subject == format!("aiops.out.{}", self.unit)
    }

    fn on_record(&mut self, rec: &Record, out: &mut Outputs) -> Result<(), ProcessorError> {
        if rec.subject != "aiops.in" {
            return Ok(());
        }
        self.seen += 1;
        out.push(AppendMessage {
            subject: format!("aiops.out.{}", self.unit),
            msg_id: format!("e.{}.{}", self.unit, rec.seq),
            time_min_ms: rec.time_min_ms,
            time_max_ms: rec.time_max_ms,
            payload: rec.payload.clone(),
        });
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>, ProcessorError> {
        Ok(self.seen.to_le_bytes().to_vec())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), ProcessorError> {
        let b: [u8; 8] = state
            .try_into()
            .map_err(|_| ProcessorError::new("echo", "bad state"))?;
        self.seen = u64::from_le_bytes(b);
        Ok(())
    }
}

const UNITS: [&str; 4] = ["u1", "u2", "u3", "u4"];

/// A log whose appends wait while its gate is closed: a paused process's writes.
struct Pausable {
    inner: Arc<dyn EventLog>,
    gate: watch::Receiver<bool>,
}

impl Pausable {
    async fn open(&self) {
        let mut g = self.gate.clone();
        let _ = g.wait_for(|open| *open).await;
    }
}

#[async_trait]
impl EventLog for Pausable {
    async fn append(&self, msgs: Vec<AppendMessage>) -> Result<Vec<Appended>, LogError> {
        self.open().await;
        self.inner.append(msgs).await
    }
    async fn append_fenced(
        &self,
        msgs: Vec<AppendMessage>,
        fence: &Fence,
    ) -> Result<Vec<Appended>, LogError> {
        self.open().await;
        self.inner.append_fenced(msgs, fence).await
    }
    async fn reader(&self, from: u64) -> Result<Box<dyn LogReader>, LogError> {
        self.inner.reader(from).await
    }
    async fn seek_time(&self, ts_ms: i64) -> Result<u64, LogError> {
        self.inner.seek_time(ts_ms).await
    }
    async fn stats(&self) -> Result<LogStats, LogError> {
        self.inner.stats().await
    }
    async fn close(&self) -> Result<(), LogError> {
        Ok(())
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.subscribe()
    }
    fn coordination(&self) -> Option<Arc<dyn aiops_log::Coordination>> {
        self.inner.coordination()
    }
}

async fn connect(url: &str) -> Arc<dyn EventLog> {
    let mut c = NatsConfig::new(url);
    c.duplicate_window = Duration::from_millis(100);
    Arc::new(NatsLog::connect(c).await.unwrap())
}

fn settings(node: &str) -> ClusterSettings {
    ClusterSettings {
        node: node.to_string(),
        lease_ttl: Duration::from_secs(2),
        poll: Duration::from_millis(200),
        ..ClusterSettings::default()
    }
}

async fn member(log: Arc<dyn EventLog>, node: &str) -> (Member, Arc<ClusterBoard>) {
    let coord = log.coordination().unwrap();
    let s = settings(node);
    let leases = coord.leases(&s.lease_bucket, s.lease_ttl).await.unwrap();
    let blobs = coord.blobs(&s.checkpoint_bucket).await.unwrap();
    let units: Vec<Arc<dyn Unit>> = UNITS
        .iter()
        .map(|u| {
            let name = u.to_string();
            Arc::new(DriverUnit::new(
                u,
                log.clone(),
                blobs.clone(),
                Box::new(move |_, _| {
                    Ok(Echo {
                        unit: name.clone(),
                        seen: 0,
                    })
                }),
                Duration::from_millis(300),
                Duration::from_secs(3600),
                Arc::new(CommandProgress::default()),
            )) as Arc<dyn Unit>
        })
        .collect();
    let board = Arc::new(ClusterBoard::default());
    (Member::new(s, log, leases, units, board.clone()), board)
}

fn owners(board: &ClusterBoard) -> BTreeMap<String, String> {
    let j = board.json();
    let mut out = BTreeMap::new();
    if let Some(units) = j["units"].as_object() {
        for (k, v) in units {
            if let Some(o) = v["owner"].as_str() {
                out.insert(k.clone(), o.to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_members_units_move_and_every_output_is_in_the_log_once() {
    let server =
        NatsServer::start_new().expect("nats-server >= 2.11 (scripts/install-test-deps.sh)");
    let ingest = connect(&server.url()).await;
    let (ma, board_a) = member(connect(&server.url()).await, "node-a").await;
    let (gate, gate_rx) = watch::channel(true);
    let paused_log: Arc<dyn EventLog> = Arc::new(Pausable {
        inner: connect(&server.url()).await,
        gate: gate_rx,
    });
    let (mb, board_b) = member(paused_log, "node-b").await;
    let (stop_a, rx_a) = watch::channel(false);
    let (_stop_b, rx_b) = watch::channel(false);
    let task_a = tokio::spawn(ma.run(rx_a));
    let task_b = tokio::spawn(mb.run(rx_b));

    // Inputs all along: 600 over ~6 s.
    let feeder = {
        let log = ingest.clone();
        tokio::spawn(async move {
            for i in 0..600u64 {
                log.append(vec![AppendMessage {
                    subject: "aiops.in".into(),
                    msg_id: format!("in-{i}"),
                    time_min_ms: i as i64,
                    time_max_ms: i as i64,
                    payload: Bytes::from(i.to_string()),
                }])
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Both own some units (the spread is even: 2 and 2).
    let t0 = Instant::now();
    loop {
        let o = owners(&board_a);
        let a = o.values().filter(|n| *n == "node-a").count();
        let b = o.values().filter(|n| *n == "node-b").count();
        if a == 2 && b == 2 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "units never spread: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b_units: Vec<String> = owners(&board_a)
        .into_iter()
        .filter(|(_, n)| n == "node-b")
        .map(|(u, _)| u)
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Pause B: its appends are held, its membership stops (no renewal, no release); its units'
    // tasks live on, holding the outputs they were about to append.
    gate.send(false).unwrap();
    task_b.abort();
    let crashed = Instant::now();
    loop {
        let o = owners(&board_a);
        if b_units
            .iter()
            .all(|u| o.get(u).map(String::as_str) == Some("node-a"))
            && board_a.owned().len() == 4
        {
            break;
        }
        assert!(
            crashed.elapsed() < Duration::from_secs(10),
            "no takeover: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = crashed.elapsed();
    eprintln!("takeover of {b_units:?} after {takeover:?} (lease TTL 2s, poll 200ms)");
    assert!(
        takeover <= Duration::from_secs(4),
        "takeover took {takeover:?}"
    );
    let _ = board_b;
    // A runs ahead well past the duplicate window, then B resumes: its held appends go out
    // under its old fence.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gate.send(true).unwrap();

    feeder.await.unwrap();
    // Let node-a catch up, then stop it cleanly.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_a.send(true).unwrap();
    task_a.await.unwrap();

    // Every unit's outputs: exactly one per input.
    let mut r = ingest.reader(1).await.unwrap();
    let mut inputs = Vec::new();
    let mut outs: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    loop {
        let b = r.next_batch(1000).await.unwrap();
        if b.is_empty() {
            break;
        }
        for rec in b {
            if rec.subject == "aiops.in" {
                inputs.push(rec.seq);
            } else if let Some(u) = rec.subject.strip_prefix("aiops.out.") {
                *outs
                    .entry(u.to_string())
                    .or_default()
                    .entry(rec.msg_id)
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(inputs.len(), 600);
    for u in UNITS {
        let got = outs.remove(u).unwrap_or_default();
        let twice: Vec<&String> = got
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k)
            .collect();
        assert!(twice.is_empty(), "unit {u}: appended twice: {twice:?}");
        let missing: Vec<u64> = inputs
            .iter()
            .filter(|s| !got.contains_key(&format!("e.{u}.{s}")))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "unit {u}: outputs missing for inputs {missing:?}"
        );
        assert_eq!(got.len(), inputs.len());
    }
}
