//! Read-side benchmark: a Grafana-style 6-hour time-series query over 10,000 series at 15 s
//! resolution on the Postgres endpoint (tokio-postgres, extended protocol, as Grafana's pgx
//! does), first over the live log, then after compacting everything into the Parquet archive;
//! plus archive bytes per sample.

use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use aiops_log::{AppendMessage, EventLog};
use aiops_read::archive::{Archive, ArchiveConfig};
use aiops_read::auth::{Role, TokenStore};
use aiops_read::catalog::{ReadSources, session};
use aiops_read::directory::StreamDirectory;
use aiops_read::limits::QueryLimits;
use aiops_read::pg::PgServer;
use aiops_schemas::{Envelope, Kind, MetricBatchBuilder, encode};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;

/// The samples: a noisy walk per series (not a repeating pattern, which would compress to
/// nothing), each series scraped at its own offset within the 15 s, as targets are.
struct Samples {
    level: Vec<f64>,
    rng: u64,
}

impl Samples {
    fn new(series: usize) -> Samples {
        Samples {
            level: (0..series).map(|s| 10.0 + (s % 100) as f64).collect(),
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Every series' sample of the scrape round at `t`: (series, time, value).
    fn step(&mut self, t: i64) -> Vec<(usize, i64, f64)> {
        let rng = &mut self.rng;
        self.level
            .iter_mut()
            .enumerate()
            .map(|(s, v)| {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                let noise = (*rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                *v = (*v + noise).max(0.0);
                (
                    s,
                    t + (s as i64 * 7) % 15_000,
                    (*v * 1000.0).round() / 1000.0,
                )
            })
            .collect()
    }
}

/// Latencies of one phase.
#[derive(Debug, Serialize)]
pub struct Phase {
    /// Queries run.
    pub queries: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Rows each query returned.
    pub rows: usize,
}

/// The whole result.
#[derive(Debug, Serialize)]
pub struct ReadsideResult {
    /// Series.
    pub series: usize,
    /// Samples in the 6 hours.
    pub samples: u64,
    /// The query text (macros expanded as Grafana does).
    pub query: String,
    /// Over the live log.
    pub live: Phase,
    /// Over the archive.
    pub archived: Phase,
    /// Log bytes per sample (embedded log, Arrow IPC + lz4).
    pub log_bytes_per_sample: f64,
    /// Archive bytes per sample (Parquet, zstd).
    pub archive_bytes_per_sample: f64,
    /// Seconds the compaction of all samples took.
    pub compaction_seconds: f64,
    /// The same query on PostgreSQL over the same samples (table `aiops_bench.metrics`, `COPY`-loaded,
    /// indexed on time, analyzed),
    /// when one is reachable; else why not.
    pub postgres: Result<PostgresPeer, String>,
}

/// The PostgreSQL peer.
#[derive(Debug, Serialize)]
pub struct PostgresPeer {
    /// `SELECT version()`.
    pub version: String,
    /// Latencies of the same query text.
    pub query: Phase,
    /// Table + index bytes per sample (`pg_total_relation_size`).
    pub bytes_per_sample: f64,
    /// Seconds the `COPY` of all samples took.
    pub load_seconds: f64,
}

/// Loads the samples into PostgreSQL at `conninfo` and runs `query` there `n` times.
async fn postgres_peer(
    conninfo: &str,
    series: usize,
    steps: i64,
    samples: u64,
    query: &str,
    n: u64,
) -> anyhow::Result<PostgresPeer> {
    use futures::SinkExt;
    let (c, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let version: String = c.query_one("SELECT version()", &[]).await?.get(0);
    c.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS aiops_bench; SET search_path = aiops_bench; DROP TABLE IF EXISTS metrics; CREATE UNLOGGED TABLE metrics (time timestamptz NOT NULL, name text NOT NULL, instance text NOT NULL, job text NOT NULL, value double precision NOT NULL)",
    )
    .await?;
    let t = Instant::now();
    let sink = c.copy_in("COPY metrics FROM STDIN (FORMAT text)").await?;
    futures::pin_mut!(sink);
    let mut samples_of = Samples::new(series);
    let mut buf = bytes::BytesMut::with_capacity(1 << 20);
    for i in 0..steps {
        for (s, ts, v) in samples_of.step(T0 + i * 15_000) {
            use std::fmt::Write;
            let _ = writeln!(
                StrBuf(&mut buf),
                "{}\thttp_requests_rate\thost-{s:05}\tapi\t{v}",
                aiops_alerting::silence::format_rfc3339_ms(ts)
            );
        }
        if buf.len() > (1 << 20) {
            sink.send(buf.split().freeze()).await?;
        }
    }
    sink.send(buf.split().freeze()).await?;
    sink.finish().await?;
    // Grafana's PostgreSQL guidance: an index on the time column.
    c.batch_execute("CREATE INDEX ON metrics (time); ANALYZE metrics")
        .await?;
    let load_seconds = t.elapsed().as_secs_f64();
    let bytes: i64 = c
        .query_one("SELECT pg_total_relation_size('metrics')", &[])
        .await?
        .get(0);
    let query = measure(&c, query, n).await?;
    // The same query text as on aiops (`metrics` in its own schema, dropped after).
    c.batch_execute("DROP SCHEMA aiops_bench CASCADE").await?;
    Ok(PostgresPeer {
        version,
        query,
        bytes_per_sample: bytes as f64 / samples.max(1) as f64,
        load_seconds,
    })
}

/// `fmt::Write` into a `BytesMut`.
struct StrBuf<'a>(&'a mut bytes::BytesMut);

impl std::fmt::Write for StrBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

async fn measure(c: &tokio_postgres::Client, q: &str, n: u64) -> anyhow::Result<Phase> {
    let mut h = Histogram::<u64>::new(3)?;
    let mut rows = 0;
    // One warm-up query (plans, file cache).
    c.query(q, &[]).await?;
    for _ in 0..n {
        let t = Instant::now();
        let r = c.query(q, &[]).await?;
        h.record(t.elapsed().as_micros() as u64)?;
        rows = r.len();
    }
    Ok(Phase {
        queries: n,
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        rows,
    })
}

/// Runs the benchmark with `series` series, `queries` per phase.
///
/// # Errors
/// Any failure of the log, the archive or a query.
pub async fn run(
    series: usize,
    queries: u64,
    postgres: Option<&str>,
) -> anyhow::Result<ReadsideResult> {
    let dir = tempfile::tempdir()?;
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir.path().join("log"))).await?);
    let steps = 6 * 3600 / 15;
    let mut samples = 0u64;
    let mut pending = Vec::new();
    // One message per scrape round: every series at one timestamp, as a scrape would write.
    let mut samples_of = Samples::new(series);
    for i in 0..steps {
        let t = T0 + i * 15_000;
        let mut b = MetricBatchBuilder::new();
        for (s, ts, v) in samples_of.step(t) {
            let inst = format!("host-{s:05}");
            b.push(
                ts,
                "http_requests_rate",
                [("instance", inst.as_str()), ("job", "api")],
                v,
            );
        }
        let range = b.time_range().unwrap_or((t, t));
        let batch = b.finish()?;
        samples += batch.num_rows() as u64;
        let env = Envelope::new(Kind::Metrics, "bench", 0, range, &batch);
        pending.push(AppendMessage {
            subject: Kind::Metrics.subject((i % 4) as u32),
            msg_id: format!("b{i}"),
            time_min_ms: range.0,
            time_max_ms: range.1,
            payload: bytes::Bytes::from(encode(&env, &batch)?),
        });
        if pending.len() == 32 {
            log.append(std::mem::take(&mut pending)).await?;
        }
    }
    log.append(pending).await?;
    let log_bytes = log.stats().await?.bytes;
    let archive = Arc::new(Archive::open(&dir.path().join("archive"))?);
    let tokens = Arc::new(TokenStore::open(&dir.path().join("tokens.json"), &[])?);
    let (_, token) = tokens.create("bench", Role::Viewer, 0)?;
    let limits = QueryLimits {
        timeout: Duration::from_secs(120),
        ..QueryLimits::default()
    };
    let src = ReadSources {
        log: log.clone(),
        archive: Some(archive.clone()),
        directory: Arc::new(StreamDirectory::default()),
        state: None,
    };
    let ctx = Arc::new(session(src, &limits)?);
    let server = Arc::new(PgServer::new(ctx, tokens, limits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(server.serve(listener, 8));
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=bench password={token} dbname=aiops"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // Grafana: SELECT $__timeGroupAlias(time, '1m'), avg(value) ... WHERE $__timeFilter(time)
    // AND name = ... GROUP BY 1 ORDER BY 1, over the 6 hours.
    let query = "SELECT floor(extract(epoch from time)/60)*60 AS \"time\", avg(value) AS value FROM metrics WHERE time BETWEEN '2026-12-01T00:00:00Z' AND '2026-12-01T05:59:59Z' AND name = 'http_requests_rate' GROUP BY 1 ORDER BY 1".to_string();
    let live = measure(&client, &query, queries).await?;
    let t = Instant::now();
    loop {
        let r = archive
            .compact(&log, i64::MAX, i64::MIN, &ArchiveConfig::default())
            .await?;
        if r.rows == 0 {
            break;
        }
    }
    let compaction_seconds = t.elapsed().as_secs_f64();
    let archived = measure(&client, &query, queries).await?;
    let st = archive.stats();
    let postgres = match postgres {
        Some(ci) => postgres_peer(ci, series, steps, samples, &query, queries)
            .await
            .map_err(|e| format!("{e:#}")),
        None => Err("not requested (--postgres CONNINFO)".to_string()),
    };
    Ok(ReadsideResult {
        series,
        samples,
        query,
        live,
        archived,
        log_bytes_per_sample: log_bytes as f64 / samples as f64,
        archive_bytes_per_sample: st.bytes as f64 / samples.max(1) as f64,
        compaction_seconds,
        postgres,
    })
}
