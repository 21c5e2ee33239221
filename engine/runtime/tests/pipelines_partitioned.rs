//! A partitioned pipeline (`-- @partitions: 3`) gives the single-unit result (issue 17): three
//! partition units and one merge unit run over one log holding a shuffled metrics stream —
//! rows out of order within the watermark delay, late rows that revise closed windows, rows
//! beyond the allowed lateness — interleaved in a random schedule, with crashes (a unit dropped
//! without its final checkpoint and reopened from its last one). The derived events in the log
//! must be those of one runner over the same stream: the same event ids and revisions with the
//! same values (floating-point sums within 1e-9: partial sums add in another order), none
//! missing, none twice; and the same late-row messages.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use aiops_log::{AppendMessage, EventLog};
use aiops_runtime::pipelines::PipelinesConfig;
use aiops_runtime::pipelines::load::{PipelineSource, compile_all};
use aiops_runtime::pipelines::runner::{InfoBoard, Mode, Runner, Share};
use aiops_runtime::pipelines::store::Store;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
use aiops_schemas::arrow_array::{Array, RecordBatch};
use aiops_schemas::builders::MetricBatchBuilder;
use aiops_schemas::derived::{DERIVED_PREFIX, LATE_PREFIX, decode_derived};
use aiops_schemas::partition::split_by_partition;
use aiops_schemas::{Envelope, Kind};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;
/// Log partitions, as ingest's default.
const LOG_PARTITIONS: u32 = 4;
/// Partition units.
const UNITS: u32 = 3;

/// Per host and minute: counts, extremes, a float sum and the counter functions.
const BY_HOST: &str = "-- @partitions: 3
INSERT INTO by_host
SELECT
  tumble(time, INTERVAL '1 minute') AS window_start,
  labels['instance'] AS host,
  count(*) AS samples,
  max(value) AS value_max,
  min(value) AS value_min,
  sum(value) AS value_sum,
  increase(value, time) AS seconds
FROM metrics
WHERE name = 'node_cpu_seconds_total'
GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance'];
";

/// Per service over sliding three-minute windows: one group spans every log partition.
const BY_SERVICE: &str = "-- @partitions: 3
INSERT INTO by_service
SELECT
  hop(time, INTERVAL '1 minute', INTERVAL '3 minutes') AS window_start,
  labels['service'] AS service,
  count(*) AS samples,
  avg(value) AS load_avg,
  max(value) AS load_max
FROM metrics
WHERE name = 'load1'
GROUP BY hop(time, INTERVAL '1 minute', INTERVAL '3 minutes'), labels['service']
HAVING count(*) > 2;
";

async fn open_log(dir: &Path) -> Arc<dyn EventLog> {
    let mut c = EmbeddedConfig::new(dir.join("log"));
    c.fsync = FsyncPolicy::Interval(Duration::from_secs(3600));
    // Keeps duplicates: an output appended twice shows instead of being absorbed.
    c.dedup_window = Duration::ZERO;
    c.dedup_max_ids = 0;
    Arc::new(EmbeddedLog::open(c).await.unwrap())
}

async fn pipelines() -> Vec<aiops_sql::runtime::StreamingPipeline> {
    let sources: Vec<PipelineSource> = [("by_host", BY_HOST), ("by_service", BY_SERVICE)]
        .into_iter()
        .map(|(name, sql)| PipelineSource {
            file: PathBuf::from(format!("{name}.sql")),
            sql: sql.to_string(),
        })
        .collect();
    compile_all(&sources, &[], PipelinesConfig::default().runtime())
        .await
        .unwrap()
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Samples of twelve hosts over eleven minutes, shuffled: each sample moves up to 4 s (within
/// the 5 s watermark delay), some arrive 61–90 s late (revising closed windows), a few 200 s
/// late (beyond the lateness). Sent in messages of about 15 samples, each split over the log
/// partitions as ingest splits it.
fn shuffled_stream(seed: u64) -> Vec<AppendMessage> {
    let mut g = Lcg(seed);
    let services = ["api", "web", "db"];
    // (arrival time, event time, host, name, value)
    let mut samples: Vec<(i64, i64, usize, &str, f64)> = Vec::new();
    let mut counters = [100.0f64; 12];
    for tick in 0..66i64 {
        let at = T0 + tick * 10_000;
        for (h, c) in counters.iter_mut().enumerate() {
            let t = at + g.next(1_000) as i64;
            *c += 1.0 + g.next(100) as f64 / 7.0;
            let mut arrive = t + g.next(4_000) as i64;
            if g.next(40) == 0 {
                arrive = t + 61_000 + g.next(29_000) as i64;
            }
            if tick > 30 && g.next(150) == 0 {
                arrive = t + 200_000;
            }
            samples.push((arrive, t, h, "node_cpu_seconds_total", *c));
            let load = g.next(1_000) as f64 / 97.0;
            samples.push((arrive + 1, t, h, "load1", load));
        }
    }
    samples.sort_by_key(|s| (s.0, s.2, s.3));
    let mut msgs = Vec::new();
    for (n, chunk) in samples.chunks(15).enumerate() {
        let mut b = MetricBatchBuilder::new();
        for (_, t, h, name, v) in chunk {
            let host = format!("host{h:02}");
            b.push(
                *t,
                name,
                [("instance", host.as_str()), ("service", services[h % 3])],
                *v,
            );
        }
        let batch = b.finish().unwrap();
        for (p, part) in split_by_partition(Kind::Metrics, &batch, LOG_PARTITIONS).unwrap() {
            let t = part
                .column_by_name("time")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>()
                .values()
                .to_vec();
            let range = (
                *t.iter().min().unwrap_or(&T0),
                *t.iter().max().unwrap_or(&T0),
            );
            let env = Envelope::new(Kind::Metrics, "test", range.1, range, &part);
            msgs.push(AppendMessage {
                subject: Kind::Metrics.subject(p),
                msg_id: format!("k{n}-{p}"),
                time_min_ms: range.0,
                time_max_ms: range.1,
                payload: Bytes::from(aiops_schemas::encode(&env, &part).unwrap()),
            });
        }
    }
    msgs
}

/// One derived event: revision and values (floats as f64, others as their display form).
type Row = (u32, Vec<Value>);

#[derive(Debug, Clone)]
enum Value {
    Float(f64),
    Other(String),
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => {
                a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
            }
            (Value::Other(a), Value::Other(b)) => a == b,
            _ => false,
        }
    }
}

/// Derived events by id from batches; panics on an id seen twice.
fn rows(batches: &[RecordBatch], into: &mut BTreeMap<String, Row>) {
    for b in batches {
        let ids = b.column_by_name("event_id").unwrap().as_string::<i32>();
        let revs = b
            .column_by_name("revision")
            .unwrap()
            .as_primitive::<aiops_schemas::arrow_array::types::UInt32Type>();
        for i in 0..b.num_rows() {
            let mut vals = Vec::new();
            for (f, c) in b.schema().fields().iter().zip(b.columns()).skip(2) {
                vals.push(match c.as_primitive_opt::<Float64Type>() {
                    Some(a) if a.is_valid(i) => Value::Float(a.value(i)),
                    _ => Value::Other(format!("{}={:?}", f.name(), c.slice(i, 1))),
                });
            }
            let id = ids.value(i).to_string();
            assert!(
                into.insert(id.clone(), (revs.value(i), vals)).is_none(),
                "derived event {id} twice"
            );
        }
    }
}

/// The single-unit result: derived events by id, late messages (id → payload).
async fn single(inputs: &[AppendMessage]) -> (BTreeMap<String, Row>, BTreeMap<String, Bytes>) {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    log.append(inputs.to_vec()).await.unwrap();
    let mut r = Runner::new(
        log.clone(),
        pipelines().await,
        None,
        Mode::Isolated,
        1,
        InfoBoard::default(),
        Duration::MAX,
    )
    .await
    .unwrap();
    let mut derived = Vec::new();
    let mut late = BTreeMap::new();
    loop {
        let (outs, n) = r.step(7, None).await.unwrap();
        for o in outs {
            if o.message.subject.starts_with(DERIVED_PREFIX) {
                derived.push(o.emission.batch);
            } else if o.message.subject.starts_with(LATE_PREFIX) {
                late.insert(o.message.msg_id, o.message.payload);
            }
        }
        if n == 0 {
            break;
        }
    }
    let mut by_id = BTreeMap::new();
    rows(&derived, &mut by_id);
    (by_id, late)
}

async fn open_unit(log: &Arc<dyn EventLog>, store: &Store, share: Share) -> Runner {
    Runner::new_share(
        log.clone(),
        pipelines().await,
        Some(store.clone()),
        Mode::Live,
        1,
        InfoBoard::default(),
        Duration::MAX,
        share,
    )
    .await
    .unwrap()
}

/// The partitioned run: three partition units and the merge unit in a random interleaving,
/// each checkpointing now and then and crashing (dropped, reopened from its store) now and
/// then. Returns what the log holds afterwards.
async fn partitioned(
    inputs: &[AppendMessage],
    seed: u64,
) -> (BTreeMap<String, Row>, BTreeMap<String, Bytes>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    log.append(inputs.to_vec()).await.unwrap();
    let shares: Vec<Share> = (0..UNITS)
        .map(|index| Share::Part { index, of: UNITS })
        .chain([Share::Merge { of: UNITS }])
        .collect();
    let stores: Vec<Store> = (0..shares.len())
        .map(|i| Store::open(&dir.path().join(format!("state{i}"))).unwrap())
        .collect();
    let mut units = Vec::new();
    for (share, store) in shares.iter().zip(&stores) {
        units.push(open_unit(&log, store, *share).await);
    }
    let mut g = Lcg(seed);
    let mut crashes = 0;
    let mut idle_rounds = 0;
    while idle_rounds < 2 {
        let mut read = 0;
        for _ in 0..units.len() * 3 {
            let u = g.next(units.len() as u64) as usize;
            let max = 1 + g.next(9) as usize;
            read += units[u].step(max, None).await.unwrap().1;
            match g.next(30) {
                0 => units[u].checkpoint().await.unwrap(),
                1 => {
                    // kill -9 of the unit: no final checkpoint; a successor opens its store.
                    units[u] = open_unit(&log, &stores[u], shares[u]).await;
                    crashes += 1;
                }
                _ => {}
            }
        }
        // Once every unit's reads come back empty, a last pass lets each see the others'
        // final records.
        if read == 0 {
            idle_rounds += 1;
            for u in units.iter_mut() {
                while u.step(64, None).await.unwrap().1 > 0 {}
            }
        } else {
            idle_rounds = 0;
        }
    }
    let mut reader = log.reader(1).await.unwrap();
    let mut derived = Vec::new();
    let mut late = BTreeMap::new();
    loop {
        let b = reader.next_batch(1024).await.unwrap();
        if b.is_empty() {
            break;
        }
        for r in b {
            if r.subject.starts_with(DERIVED_PREFIX) {
                derived.push(decode_derived(&r.payload).unwrap().1);
            } else if r.subject.starts_with(LATE_PREFIX) {
                assert!(
                    late.insert(r.msg_id.clone(), r.payload).is_none(),
                    "late message {} twice",
                    r.msg_id
                );
            }
        }
    }
    let mut by_id = BTreeMap::new();
    rows(&derived, &mut by_id);
    (by_id, late, crashes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_pipeline_equals_one_unit_on_a_shuffled_stream() {
    for seed in [7u64, 11, 23] {
        let inputs = shuffled_stream(seed);
        let (want, want_late) = single(&inputs).await;
        let revisions = want.values().filter(|r| r.0 > 0).count();
        let hop = want.keys().filter(|k| k.starts_with("by_service/")).count();
        assert!(want.len() > 100, "the stream emits windows: {}", want.len());
        assert!(
            revisions > 5,
            "late rows revise closed windows: {revisions}"
        );
        assert!(hop > 10, "the hop pipeline emits: {hop}");
        assert!(!want_late.is_empty(), "rows beyond the lateness");
        let (got, got_late, crashes) = partitioned(&inputs, seed).await;
        eprintln!(
            "seed {seed}: {} input messages, {} derived events ({revisions} revisions), {} late messages, {crashes} crashes",
            inputs.len(),
            want.len(),
            want_late.len()
        );
        let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "seed {seed}: missing {missing:?}\nextra {extra:?}"
        );
        for (id, w) in &want {
            assert_eq!(&got[id], w, "seed {seed}: derived event {id} differs");
        }
        assert_eq!(
            got_late.keys().collect::<Vec<_>>(),
            want_late.keys().collect::<Vec<_>>(),
            "seed {seed}: late messages"
        );
        assert_eq!(got_late, want_late, "seed {seed}: late rows");
    }
}
