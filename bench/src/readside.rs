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
pub async fn run(series: usize, queries: u64) -> anyhow::Result<ReadsideResult> {
    let dir = tempfile::tempdir()?;
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir.path().join("log"))).await?);
    let steps = 6 * 3600 / 15;
    let mut samples = 0u64;
    let mut pending = Vec::new();
    // One message per scrape round: every series at one timestamp, as a scrape would write.
    for i in 0..steps {
        let t = T0 + i * 15_000;
        let mut b = MetricBatchBuilder::new();
        for s in 0..series {
            let inst = format!("host-{s:05}");
            b.push(
                t,
                "http_requests_rate",
                [("instance", inst.as_str()), ("job", "api")],
                (s % 100) as f64 + (i % 60) as f64,
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
    Ok(ReadsideResult {
        series,
        samples,
        query,
        live,
        archived,
        log_bytes_per_sample: log_bytes as f64 / samples as f64,
        archive_bytes_per_sample: st.bytes as f64 / samples.max(1) as f64,
        compaction_seconds,
    })
}
