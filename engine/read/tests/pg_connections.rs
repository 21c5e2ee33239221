//! Connection admission of the Postgres endpoint, with real sockets and a real client
//! (tokio-postgres): idle unauthenticated sockets cannot lock logins out, they are closed after
//! the startup timeout, and only logged-in connections count against `max_connections`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aiops_read::auth::{Role, TokenStore};
use aiops_read::catalog::session;
use aiops_read::limits::QueryLimits;
use aiops_read::pg::{ConnLimits, PgServer};
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Endpoint {
    port: u16,
    viewer: String,
    server: Arc<PgServer>,
    _task: tokio::task::JoinHandle<()>,
}

async fn endpoint(fx: &Fixture, limits: ConnLimits) -> Endpoint {
    let tokens = Arc::new(TokenStore::open(&fx.dir.path().join("tokens.json"), &[]).unwrap());
    let (_, viewer) = tokens.create("grafana", Role::Viewer, 1).unwrap();
    let src = fx.sources(false);
    src.directory
        .refresh(&src.log, src.archive.as_ref())
        .await
        .unwrap();
    let ctx = Arc::new(session(src, &QueryLimits::default()).unwrap());
    let server = Arc::new(PgServer::new(ctx, tokens, QueryLimits::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(server.clone().serve_with(listener, limits));
    Endpoint {
        port,
        viewer,
        server,
        _task: task,
    }
}

impl Endpoint {
    async fn connect(&self, token: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let conn_str = format!(
            "host=127.0.0.1 port={} user=grafana dbname=aiops password={token} sslmode=disable connect_timeout=5",
            self.port
        );
        let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    async fn idle_sockets(&self, n: usize) -> Vec<TcpStream> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(
                TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .expect("the listener accepts"),
            );
        }
        out
    }
}

/// Reads until EOF or error; returns how long the server took to close the socket.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let r = tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    r.ok().map(|()| started.elapsed())
}

async fn count_metrics(c: &tokio_postgres::Client) -> i64 {
    c.query_one("SELECT count(*) FROM metrics", &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_unauthenticated_sockets_do_not_lock_out_logins() {
    let fx = fixture().await;
    let limits = ConnLimits {
        max_connections: 4,
        max_unauthenticated: 8,
        startup_timeout: Duration::from_secs(30),
    };
    let ep = endpoint(&fx, limits).await;
    // More idle sockets than both the connection limit and the unauthenticated budget.
    let _idle = ep.idle_sockets(20).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = ep
        .connect(&ep.viewer)
        .await
        .expect("a real client logs in next to 20 idle sockets");
    assert_eq!(count_metrics(&c).await, STEPS * HOSTS.len() as i64);
    // Logged-in connections are what `max_connections` counts.
    let mut held = vec![c];
    for _ in 0..3 {
        held.push(ep.connect(&ep.viewer).await.unwrap());
    }
    let e = ep
        .connect(&ep.viewer)
        .await
        .expect_err("a fifth login is over max_connections = 4");
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("53300"),
        "{e:?}"
    );
    // A slot frees when a client leaves.
    drop(held.pop());
    let mut ok = None;
    for _ in 0..50 {
        if let Ok(c) = ep.connect(&ep.viewer).await {
            ok = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = ok.expect("a login succeeds once a logged-in client closed");
    assert!(count_metrics(&c).await > 0);
    assert!(
        ep.server
            .stats
            .refused_full
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_do_not_log_in_are_closed_after_the_startup_timeout() {
    let fx = fixture().await;
    let limits = ConnLimits {
        max_connections: 4,
        max_unauthenticated: 64,
        startup_timeout: Duration::from_millis(700),
    };
    let ep = endpoint(&fx, limits).await;
    let mut idle = ep.idle_sockets(10).await;
    // One that sends its startup message and then stalls before the password.
    let mut stalled = TcpStream::connect(("127.0.0.1", ep.port)).await.unwrap();
    let mut startup = Vec::new();
    let params = b"user\0grafana\0database\0aiops\0\0";
    startup.extend_from_slice(&((8 + params.len()) as u32).to_be_bytes());
    startup.extend_from_slice(&196_608u32.to_be_bytes());
    startup.extend_from_slice(params);
    stalled.write_all(&startup).await.unwrap();
    idle.push(stalled);
    for s in &mut idle {
        let took = closed_within(s, Duration::from_secs(5))
            .await
            .expect("the server closes a socket that does not log in");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
    assert!(
        ep.server
            .stats
            .startup_timeouts
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 11
    );
    // A logged-in client outlives the startup timeout.
    let c = ep.connect(&ep.viewer).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(count_metrics(&c).await > 0);
}
