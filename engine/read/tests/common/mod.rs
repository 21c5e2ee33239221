//! Shared fixture: an embedded log with known metric series, events and a derived stream, the
//! read-side session over it, and a Postgres endpoint on a free loopback port.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use aiops_log::{AppendMessage, EventLog};
use aiops_read::archive::Archive;
use aiops_read::auth::{Role, TokenStore};
use aiops_read::catalog::{ReadSources, session};
use aiops_read::directory::StreamDirectory;
use aiops_read::limits::QueryLimits;
use aiops_read::pg::PgServer;
use aiops_schemas::arrow_array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use aiops_schemas::arrow_schema::{DataType, Field, Schema};
use aiops_schemas::builders::{EventBatchBuilder, MetricBatchBuilder};
use aiops_schemas::derived::{DerivedHeader, DerivedWhat, encode_derived};
use aiops_schemas::{Envelope, Kind, encode};
use bytes::Bytes;
use std::sync::Arc;

/// 2026-12-02T08:00:00Z.
pub const T0: i64 = 1_796_198_400_000;
/// Samples per series: one hour at 15 s.
pub const STEPS: i64 = 240;
pub const HOSTS: [&str; 3] = ["a", "b", "c"];

/// The value of host `h`'s `cpu` at step `i`.
pub fn cpu(h: usize, i: i64) -> f64 {
    (h as f64) * 10.0 + (i % 4) as f64
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub log: Arc<dyn EventLog>,
    pub archive: Arc<Archive>,
}

/// Appends one message per minute: 4 steps × 3 hosts of `cpu`, plus a `deploy` event at 08:30
/// and one derived row per minute on `cpu_1m`.
pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EmbeddedConfig::new(dir.path().join("log"));
    cfg.segment_bytes = 64 << 10;
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(cfg).await.unwrap());
    let mut msgs = Vec::new();
    for m in 0..STEPS / 4 {
        let mut b = MetricBatchBuilder::new();
        for i in m * 4..m * 4 + 4 {
            for (h, host) in HOSTS.iter().enumerate() {
                b.push(T0 + i * 15_000, "cpu", [("host", *host)], cpu(h, i));
            }
        }
        let range = b.time_range().unwrap();
        let batch = b.finish().unwrap();
        let env = Envelope::new(Kind::Metrics, "test", 0, range, &batch);
        msgs.push(AppendMessage {
            subject: Kind::Metrics.subject((m % 2) as u32),
            msg_id: format!("m{m}"),
            time_min_ms: range.0,
            time_max_ms: range.1,
            payload: Bytes::from(encode(&env, &batch).unwrap()),
        });
        // The derived stream `cpu_1m`: one row per minute.
        let ws = T0 + m * 60_000;
        let schema = Arc::new(Schema::new(vec![
            Field::new("window_start", aiops_schemas::schema::time_type(), false),
            Field::new("host", DataType::Utf8, false),
            Field::new("avg_cpu", DataType::Float64, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(vec![ws]).with_timezone("+00:00")),
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(Float64Array::from(vec![1.5])),
        ];
        let d = RecordBatch::try_new(schema, cols).unwrap();
        let h = DerivedHeader {
            what: DerivedWhat::Events,
            window_start_ms: ws,
            pipeline: "cpu".to_string(),
        };
        msgs.push(AppendMessage {
            subject: "aiops.derived.cpu_1m".to_string(),
            msg_id: format!("d{m}"),
            time_min_ms: ws,
            time_max_ms: ws,
            payload: Bytes::from(encode_derived(&h, &d).unwrap()),
        });
        if m == 30 {
            let mut e = EventBatchBuilder::new();
            e.push(
                T0 + 30 * 60_000,
                "deploy",
                "checkout v2",
                [("service", "checkout")],
                [("version", "v2")],
            );
            let range = e.time_range().unwrap();
            let batch = e.finish().unwrap();
            let env = Envelope::new(Kind::Events, "test", 0, range, &batch);
            msgs.push(AppendMessage {
                subject: Kind::Events.subject(0),
                msg_id: "e1".to_string(),
                time_min_ms: range.0,
                time_max_ms: range.1,
                payload: Bytes::from(encode(&env, &batch).unwrap()),
            });
        }
    }
    log.append(msgs).await.unwrap();
    let archive = Arc::new(Archive::open(&dir.path().join("archive")).unwrap());
    Fixture { dir, log, archive }
}

impl Fixture {
    pub fn sources(&self, with_archive: bool) -> ReadSources {
        ReadSources {
            log: self.log.clone(),
            archive: with_archive.then(|| self.archive.clone()),
            directory: Arc::new(StreamDirectory::default()),
            state: None,
        }
    }

    pub async fn session(&self, with_archive: bool) -> datafusion::prelude::SessionContext {
        let src = self.sources(with_archive);
        src.directory
            .refresh(&src.log, src.archive.as_ref())
            .await
            .unwrap();
        session(src, &QueryLimits::default()).unwrap()
    }
}

pub struct Pg {
    pub port: u16,
    pub viewer: String,
    pub operator: String,
    pub admin: String,
    pub ingest: String,
    pub server: Arc<PgServer>,
    _task: tokio::task::JoinHandle<()>,
}

/// A Postgres endpoint over the fixture with one token per role.
pub async fn pg(fx: &Fixture, limits: QueryLimits) -> Pg {
    let tokens = Arc::new(TokenStore::open(&fx.dir.path().join("tokens.json"), &[]).unwrap());
    let (_, viewer) = tokens.create("grafana", Role::Viewer, 1).unwrap();
    let (_, operator) = tokens.create("oncall", Role::Operator, 1).unwrap();
    let (_, admin) = tokens.create("admin", Role::Admin, 1).unwrap();
    let (_, ingest) = tokens.create("shipper", Role::Ingest, 1).unwrap();
    let src = fx.sources(true);
    src.directory
        .refresh(&src.log, src.archive.as_ref())
        .await
        .unwrap();
    let ctx = Arc::new(session(src, &limits).unwrap());
    let server = Arc::new(PgServer::new(ctx, tokens, limits));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(server.clone().serve(listener, 16));
    Pg {
        port,
        viewer,
        operator,
        admin,
        ingest,
        server,
        _task: task,
    }
}

impl Pg {
    pub fn conn_str(&self, token: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=grafana dbname=aiops password={token} sslmode=disable",
            self.port
        )
    }

    pub async fn connect(
        &self,
        token: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) =
            tokio_postgres::connect(&self.conn_str(token), tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}
