//! Shared helpers of the runtime tests: generated event streams for every input kind, arrival
//! orders shuffled within the watermark delay, and streaming and batch runs of one pipeline.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code

use aiops_schemas::{Kind, LogBatchBuilder, MetricBatchBuilder, schema_for};
use aiops_sql::runtime::{Emission, EmissionKind, RuntimeConfig, StreamingPipeline};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The shipped pipelines directory.
pub fn pipelines_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines")).to_path_buf()
}

/// A small deterministic PRNG (splitmix64), so a failing case reproduces from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// One generated event: its time, partition and a function appending it to a builder.
#[derive(Debug, Clone)]
pub enum Row {
    Metric {
        t: i64,
        name: &'static str,
        labels: Vec<(&'static str, String)>,
        value: f64,
    },
    Log {
        t: i64,
        severity: &'static str,
        labels: Vec<(&'static str, String)>,
        attributes: Vec<(&'static str, String)>,
    },
    Event {
        t: i64,
        kind: &'static str,
        labels: Vec<(&'static str, String)>,
    },
}

impl Row {
    pub fn time(&self) -> i64 {
        match self {
            Row::Metric { t, .. } | Row::Log { t, .. } | Row::Event { t, .. } => *t,
        }
    }
}

/// Label pairs of a generated row.
pub type Labels = Vec<(&'static str, String)>;

const HOSTS: [&str; 4] = ["web-1", "web-2", "db-1", "cache-1"];
const SERVICES: [&str; 4] = ["checkout", "cart", "search", "auth"];

/// A node_exporter-like scrape stream (every 15 s per series, some scrapes missing): memory,
/// CPU counters with occasional resets, filesystem bytes, plus unrelated metrics.
pub fn metrics(rng: &mut Rng, minutes: i64) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut series: Vec<(&'static str, Labels, f64)> = Vec::new();
    for h in HOSTS {
        series.push((
            "node_memory_MemAvailable_bytes",
            vec![("instance", h.into())],
            4e9,
        ));
        for cpu in ["0", "1"] {
            for mode in ["idle", "user", "system"] {
                series.push((
                    "node_cpu_seconds_total",
                    vec![
                        ("instance", h.into()),
                        ("cpu", cpu.into()),
                        ("mode", mode.into()),
                    ],
                    1000.0,
                ));
            }
        }
        for mp in ["/", "/var"] {
            series.push((
                "node_filesystem_avail_bytes",
                vec![("instance", h.into()), ("mountpoint", mp.into())],
                5e10,
            ));
        }
        series.push(("up", vec![("instance", h.into())], 1.0));
    }
    // A service's stable and canary versions as a deploy verification scrapes them
    // (pipelines/deploy_series.sql): request counters per code, a summary's p99 and a
    // saturation gauge.
    for (service, instance) in [("checkout", "c-0"), ("cart", "k-0")] {
        for version in ["1", "2"] {
            let l = |extra: Vec<(&'static str, String)>| {
                let mut v = vec![
                    ("service", service.to_string()),
                    ("version", version.to_string()),
                    ("instance", format!("{instance}-{version}")),
                ];
                v.extend(extra);
                v
            };
            for code in ["200", "503"] {
                series.push(("http_requests_total", l(vec![("code", code.into())]), 100.0));
            }
            series.push((
                "http_request_duration_seconds",
                l(vec![("quantile", "0.99".into())]),
                0.25,
            ));
            series.push(("worker_pool_saturation_ratio", l(vec![]), 0.5));
        }
    }
    let offset = rng.below(15_000) as i64;
    for step in 0..(minutes * 4) {
        for (name, labels, v) in series.iter_mut() {
            if rng.below(10) == 0 {
                continue; // a missed scrape
            }
            let t = offset + step * 15_000 + rng.below(1000) as i64;
            *v = match *name {
                "node_cpu_seconds_total" => {
                    if rng.below(40) == 0 {
                        rng.below(10) as f64 // the exporter restarted
                    } else {
                        *v + rng.below(15) as f64
                    }
                }
                "up" => 1.0,
                "http_requests_total" => *v + rng.below(50) as f64,
                // Dyadic values: sums are exact in any order, so streaming equals batch bit
                // for bit.
                "http_request_duration_seconds" => 0.0625 + rng.below(64) as f64 / 128.0,
                "worker_pool_saturation_ratio" => rng.below(64) as f64 / 64.0,
                _ => (*v + rng.below(1 << 20) as f64 - (1 << 19) as f64).max(0.0),
            };
            rows.push(Row::Metric {
                t,
                name,
                labels: labels.clone(),
                value: *v,
            });
        }
    }
    rows
}

/// Application and access logs: severities, services, and `status`/`duration_ms`/`route`
/// attributes on access lines.
pub fn logs(rng: &mut Rng, minutes: i64, per_minute: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for _ in 0..(minutes as u64 * per_minute) {
        let t = rng.below(minutes as u64 * 60_000) as i64;
        let service = rng.pick(&SERVICES).to_string();
        let severity = rng.pick(&["INFO", "WARN", "ERROR", "DEBUG"]);
        let mut attributes = Vec::new();
        if rng.below(3) != 0 {
            let status = if rng.below(10) == 0 {
                500 + rng.below(4)
            } else {
                200 + rng.below(5)
            };
            attributes.push(("status", status.to_string()));
            attributes.push(("duration_ms", rng.below(2000).to_string()));
            attributes.push((
                "path",
                rng.pick(&["/", "/api/cart", "/api/pay", "/health"])
                    .to_string(),
            ));
        }
        rows.push(Row::Log {
            t,
            severity,
            labels: vec![("service", service)],
            attributes,
        });
    }
    rows
}

/// Business events: orders (most) and deploys.
pub fn events(rng: &mut Rng, minutes: i64, per_minute: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for _ in 0..(minutes as u64 * per_minute) {
        let t = rng.below(minutes as u64 * 60_000) as i64;
        let kind = if rng.below(20) == 0 {
            "deploy"
        } else {
            "order"
        };
        rows.push(Row::Event {
            t,
            kind,
            labels: vec![("service", rng.pick(&SERVICES).to_string())],
        });
    }
    rows
}

/// Rows of `kind` for a generated stream.
pub fn generate(kind: &str, seed: u64, minutes: i64) -> Vec<Row> {
    let mut rng = Rng(seed);
    match kind {
        "metrics" => metrics(&mut rng, minutes),
        "logs" => logs(&mut rng, minutes, 120),
        "events" => events(&mut rng, minutes, 60),
        other => panic!("no generator for {other}"),
    }
}

/// One Arrow batch of `rows` (all of one kind).
pub fn to_batch(kind: &str, rows: &[Row]) -> RecordBatch {
    match kind {
        "metrics" => {
            let mut b = MetricBatchBuilder::new();
            for r in rows {
                if let Row::Metric {
                    t,
                    name,
                    labels,
                    value,
                } = r
                {
                    b.push(
                        *t,
                        name,
                        labels.iter().map(|(k, v)| (*k, v.as_str())),
                        *value,
                    );
                }
            }
            b.finish().unwrap()
        }
        "logs" => {
            let mut b = LogBatchBuilder::new();
            for r in rows {
                if let Row::Log {
                    t,
                    severity,
                    labels,
                    attributes,
                } = r
                {
                    b.push(
                        *t,
                        severity,
                        "GET /",
                        labels.iter().map(|(k, v)| (*k, v.as_str())),
                        attributes.iter().map(|(k, v)| (*k, v.as_str())),
                    );
                }
            }
            b.finish().unwrap()
        }
        "events" => {
            let mut b = aiops_schemas::EventBatchBuilder::new();
            for r in rows {
                if let Row::Event { t, kind, labels } = r {
                    b.push(
                        *t,
                        kind,
                        "",
                        labels.iter().map(|(k, v)| (*k, v.as_str())),
                        std::iter::empty::<(&str, &str)>(),
                    );
                }
            }
            b.finish().unwrap()
        }
        other => panic!("no builder for {other}"),
    }
}

/// Arrival order: sorted by event time plus a random delay below `jitter_ms`, so no event
/// arrives after the watermark (max seen − delay) passed it when `jitter_ms` ≤ the delay.
pub fn arrival(rows: &[Row], seed: u64, jitter_ms: i64) -> Vec<Row> {
    let mut rng = Rng(seed ^ 0x5eed);
    let mut keyed: Vec<(i64, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.time() + rng.below(jitter_ms.max(1) as u64) as i64, i))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| rows[i].clone()).collect()
}

/// Micro-batches of `sizes` (cycled) from an arrival sequence, with their partition
/// (round-robin over `partitions`) and largest event time.
pub fn batches(
    kind: &str,
    rows: &[Row],
    sizes: &[usize],
    partitions: usize,
) -> Vec<(String, i64, RecordBatch)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < rows.len() {
        let n = sizes[i % sizes.len()].max(1).min(rows.len() - at);
        let chunk = &rows[at..at + n];
        let tmax = chunk.iter().map(Row::time).max().unwrap();
        out.push((
            format!("{kind}.{}", i % partitions.max(1)),
            tmax,
            to_batch(kind, chunk),
        ));
        at += n;
        i += 1;
    }
    out
}

/// The shipped reference tables (`pipelines/tables`).
pub fn reference_tables() -> Vec<aiops_sql::reference::ReferenceTable> {
    aiops_sql::reference::load_dir(&pipelines_dir().join("tables")).unwrap()
}

/// The pipeline in `file`, compiled for streaming, with the shipped reference tables.
pub async fn compile(file: &Path, cfg: RuntimeConfig) -> StreamingPipeline {
    let source = std::fs::read_to_string(file).unwrap();
    let tables: Vec<(String, Arc<dyn datafusion::catalog::TableProvider>)> = reference_tables()
        .into_iter()
        .map(|t| {
            let mem = MemTable::try_new(t.batch.schema(), vec![vec![t.batch.clone()]]).unwrap();
            (
                t.name,
                Arc::new(mem) as Arc<dyn datafusion::catalog::TableProvider>,
            )
        })
        .collect();
    StreamingPipeline::compile(file, &source, &tables, cfg)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `batches` through `p` and closes every window at the end.
pub async fn run(
    p: &mut StreamingPipeline,
    batches: &[(String, i64, RecordBatch)],
) -> Vec<Emission> {
    let mut out = Vec::new();
    for (part, tmax, b) in batches {
        out.extend(p.process(part, *tmax, b.clone()).await.unwrap());
    }
    out.extend(p.finish().await.unwrap());
    out
}

/// Every value of every row as text, one Vec per row, from column `skip` on.
pub fn rows_of(batches: &[RecordBatch], skip: usize) -> Vec<Vec<String>> {
    let opts = FormatOptions::default();
    let mut rows = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b.columns()[skip..]
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            rows.push(fmts.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    rows
}

/// The output rows of emissions (without `event_id` and `revision`).
pub fn output_batches(out: &[Emission]) -> Vec<RecordBatch> {
    out.iter()
        .filter(|e| e.kind == EmissionKind::Output)
        .map(|e| e.batch.clone())
        .collect()
}

/// The pipeline's SELECT run in batch by DataFusion over all `rows`.
pub async fn batch_result(file: &Path, kind: &str, rows: &[Row]) -> Vec<RecordBatch> {
    let source = std::fs::read_to_string(file).unwrap();
    let insert = source.find("INSERT INTO").unwrap();
    let select = insert + source[insert..].find("SELECT").unwrap();
    let ctx = aiops_sql::catalog::session().unwrap();
    ctx.deregister_table(kind).unwrap();
    let k = Kind::ALL.into_iter().find(|k| k.as_str() == kind).unwrap();
    let table = MemTable::try_new(schema_for(k), vec![vec![to_batch(kind, rows)]]).unwrap();
    ctx.register_table(kind, Arc::new(table)).unwrap();
    aiops_sql::reference::register(&ctx, &reference_tables()).unwrap();
    ctx.sql(source[select..].trim_end().trim_end_matches(';'))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
}
