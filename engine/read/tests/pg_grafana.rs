//! The Postgres endpoint answers what Grafana's PostgreSQL data source and psql send: the exact
//! query texts (time macros expanded the way Grafana expands them), over the extended protocol
//! (tokio-postgres, as pgx does) and the simple protocol (psql), with correct rows and types;
//! errors come back with a SQLSTATE and the connection stays usable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aiops_read::limits::QueryLimits;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_postgres::types::Type;

/// Grafana's table list query (postgresMetaQuery.ts), as its query builder sends it.
const GRAFANA_TABLES: &str = r#"SELECT
        CASE WHEN
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              )
          THEN quote_ident(table_name)
          ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
        END AS "table"
        FROM information_schema.tables
        WHERE quote_ident(table_schema) NOT IN ('information_schema',
                                 'pg_catalog',
                                 '_timescaledb_cache',
                                 '_timescaledb_catalog',
                                 '_timescaledb_internal',
                                 '_timescaledb_config',
                                 'timescaledb_information',
                                 'timescaledb_experimental')
        ORDER BY CASE WHEN
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              ) THEN 0 ELSE 1 END, 1"#;

/// Grafana's column list query for a table.
fn grafana_columns(table: &str) -> String {
    format!(
        r#"SELECT quote_ident(column_name) AS "column", data_type AS "type"
        FROM information_schema.columns
        WHERE
          CASE WHEN array_length(parse_ident('{table}'),1) = 2
            THEN quote_ident(table_schema) = (parse_ident('{table}'))[1]
              AND quote_ident(table_name) = (parse_ident('{table}'))[2]
            ELSE quote_ident(table_name) = '{table}'
              AND
              quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              )
          END"#
    )
}

/// `SELECT $__timeGroupAlias(time,'1m'), labels['host'] AS metric, avg(value) AS value FROM
/// metrics WHERE $__timeFilter(time) AND name = 'cpu' GROUP BY 1, 2 ORDER BY 1, 2` for
/// 08:10–08:20, expanded as Grafana's macro engine does.
const TIME_SERIES: &str = "SELECT floor(extract(epoch from time)/60)*60 AS \"time\", labels['host'] AS metric, avg(value) AS value FROM metrics WHERE time BETWEEN '2026-12-02T08:10:00Z' AND '2026-12-02T08:20:00Z' AND name = 'cpu' GROUP BY 1, 2 ORDER BY 1, 2";

/// Table format over a derived stream, `$__timeFilter(window_start)`.
const TABLE: &str = "SELECT window_start AS \"time\", host, avg_cpu FROM cpu_1m WHERE window_start BETWEEN '2026-12-02T08:00:00Z' AND '2026-12-02T08:04:59.999Z' ORDER BY 1";

/// `$__unixEpochFilter(ts)` over an epoch-seconds column.
const EPOCH: &str = "SELECT ts, value FROM (SELECT CAST(extract(epoch from time) AS BIGINT) AS ts, value, labels['host'] AS host FROM metrics WHERE name = 'cpu') t WHERE ts >= 1796198400 AND ts <= 1796198445 AND host = 'b' ORDER BY ts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_queries_over_the_extended_protocol() {
    let fx = fixture().await;
    let pg = pg(&fx, QueryLimits::default()).await;
    let c = pg.connect(&pg.viewer).await.unwrap();

    // Connection test: pgx pings with a comment-only statement; the query editor runs SELECT 1.
    c.simple_query("-- ping").await.unwrap();
    let one = c.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(one.get::<_, i64>(0), 1);

    let tables: Vec<String> = c
        .query(GRAFANA_TABLES, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Unqualified, as Grafana shows tables on the search path (its query builder then writes
    // `FROM metrics`, not `FROM public.metrics`).
    for t in ["metrics", "logs", "alerts", "events", "cpu_1m"] {
        assert!(
            tables.contains(&t.to_string()),
            "{t} missing from {tables:?}"
        );
    }
    assert!(
        !tables.iter().any(|t| t.starts_with("public.")),
        "{tables:?}"
    );
    let cols: Vec<(String, String)> = c
        // The query builder passes the table as the table list named it.
        .query(&grafana_columns("public.metrics"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["time", "name", "labels", "value"], "{cols:?}");

    let rows = c.query(TIME_SERIES, &[]).await.unwrap();
    // 08:10 … 08:20 inclusive: 10 full minutes + the 08:20:00 sample, 3 hosts.
    assert_eq!(rows.len(), 11 * 3);
    assert_eq!(rows[0].columns()[0].type_(), &Type::FLOAT8);
    assert_eq!(rows[0].columns()[2].type_(), &Type::FLOAT8);
    for r in &rows {
        let t: f64 = r.get(0);
        let host: String = r.get(1);
        let v: f64 = r.get(2);
        let h = HOSTS.iter().position(|x| *x == host).unwrap();
        let minute = ((t as i64) * 1000 - T0) / 60_000;
        let steps: Vec<i64> = (minute * 4..minute * 4 + 4)
            .filter(|i| T0 + i * 15_000 <= T0 + 20 * 60_000)
            .collect();
        let want = steps.iter().map(|i| cpu(h, *i)).sum::<f64>() / steps.len() as f64;
        assert!((v - want).abs() < 1e-9, "{host} at {t}: {v} vs {want}");
    }

    let rows = c.query(TABLE, &[]).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].columns()[0].type_(), &Type::TIMESTAMPTZ);
    let first: std::time::SystemTime = rows[0].get(0);
    assert_eq!(
        first,
        std::time::UNIX_EPOCH + Duration::from_millis(T0 as u64)
    );
    assert_eq!(rows[0].get::<_, f64>(2), 1.5);

    let rows = c.query(EPOCH, &[]).await.unwrap();
    let got: Vec<(i64, f64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        (0..4)
            .map(|i| (T0 / 1000 + i * 15, cpu(1, i)))
            .collect::<Vec<_>>()
    );

    // A prepared statement with a bound parameter (template variables arrive this way from
    // other clients).
    let stmt = c
        .prepare("SELECT count(*) FROM metrics WHERE name = $1")
        .await
        .unwrap();
    let n: i64 = c.query_one(&stmt, &[&"cpu"]).await.unwrap().get(0);
    assert_eq!(n, STEPS * 3);
    let n: i64 = c.query_one(&stmt, &[&"nope"]).await.unwrap().get(0);
    assert_eq!(n, 0);

    // Errors: a SQLSTATE and a message, and the connection keeps working.
    let e = c
        .query("SELECT * FROM no_such_table", &[])
        .await
        .unwrap_err();
    let db = e
        .as_db_error()
        .expect("a Postgres error, not a dropped connection");
    assert_eq!(db.code().code(), "42P01", "{db:?}");
    let e = c.query("SELEC 1", &[]).await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "42601");
    let e = c.query("SELECT nope FROM metrics", &[]).await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "42703");
    assert_eq!(
        c.query_one("SELECT 2", &[]).await.unwrap().get::<_, i64>(0),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_on_the_postgres_endpoint() {
    let fx = fixture().await;
    let pg = pg(&fx, QueryLimits::default()).await;
    let e = pg.connect("").await.expect_err("no token is refused");
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("28P01"),
        "{e:?}"
    );
    let e = pg
        .connect("aiops_0000")
        .await
        .expect_err("a wrong token is refused");
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("28P01"),
        "{e:?}"
    );
    let e = pg
        .connect(&pg.ingest)
        .await
        .expect_err("an ingest token cannot query");
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "28000");
    assert!(db.message().contains("ingest"), "{}", db.message());
    // Every role that reads reads every table.
    for token in [&pg.viewer, &pg.operator, &pg.admin] {
        let c = pg.connect(token).await.unwrap();
        for t in ["metrics", "logs", "alerts", "events", "cpu_1m"] {
            c.query(&format!("SELECT count(*) FROM {t}"), &[])
                .await
                .unwrap();
        }
    }
    assert!(
        pg.server
            .stats
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
}

fn psql(pg: &Pg, token: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .arg(pg.conn_str(token))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs (scripts/install-test-deps.sh installs postgresql-client)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_runs_grafana_queries_and_catalog_commands() {
    let fx = fixture().await;
    let pg = pg(&fx, QueryLimits::default()).await;
    let port = pg.port;
    let pg = std::sync::Arc::new(pg);
    let p = pg.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut outs = Vec::new();
        for q in [
            TIME_SERIES,
            TABLE,
            EPOCH,
            GRAFANA_TABLES,
            "\\dt",
            "\\d metrics",
        ] {
            outs.push((q, psql(&p, &p.viewer, q)));
        }
        outs.push(("bad", psql(&p, &p.viewer, "SELECT * FROM no_such_table")));
        outs.push(("wrong token", psql(&p, "wrong", "SELECT 1")));
        outs
    })
    .await
    .unwrap();
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).to_string();
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
    let ts = &out[0].1;
    assert!(ts.status.success(), "{}", err(ts));
    let ts_text = text(ts);
    let lines: Vec<&str> = ts_text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 33);
    // 08:10 (epoch 1796199000), host a, average of steps 40..44: 0,1,2,3 → 1.5.
    // float8 in text form; Postgres would print 1796199000, numerically the same.
    let first: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(first[0].parse::<f64>().unwrap(), 1_796_199_000.0);
    assert_eq!(&first[1..], ["a", "1.5"]);
    let table = &out[1].1;
    assert!(table.status.success(), "{}", err(table));
    assert!(
        text(table).starts_with("2026-12-02 08:00:00"),
        "{}",
        text(table)
    );
    let epoch = &out[2].1;
    assert_eq!(
        text(epoch).trim(),
        "1796198400|10.0\n1796198415|11.0\n1796198430|12.0\n1796198445|13.0"
    );
    assert!(text(&out[3].1).contains("cpu_1m"), "{}", err(&out[3].1));
    let (dt, d) = (&out[4].1, &out[5].1);
    assert!(dt.status.success(), "\\dt: {}", err(dt));
    assert!(text(dt).contains("metrics"), "{}", text(dt));
    assert!(d.status.success(), "\\d metrics: {}", err(d));
    assert!(text(d).contains("labels|text"), "{}", text(d));
    assert!(
        text(d).contains("time|timestamp with time zone"),
        "{}",
        text(d)
    );
    let bad = &out[6].1;
    assert!(!bad.status.success());
    assert!(err(bad).contains("no_such_table"), "{}", err(bad));
    let wrong = &out[7].1;
    assert!(!wrong.status.success());
    assert!(
        err(wrong)
            .to_lowercase()
            .contains("password authentication failed"),
        "{}",
        err(wrong)
    );
    let _ = port;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_queries_hit_their_limits_and_the_server_keeps_answering() {
    let fx = fixture().await;
    let limits = QueryLimits {
        timeout: Duration::from_secs(2),
        memory_bytes: 8 << 20,
        ..QueryLimits::default()
    };
    let pg = pg(&fx, limits).await;
    let c = pg.connect(&pg.viewer).await.unwrap();
    // A large cross join: 720^3 rows.
    let t = Instant::now();
    let e = c
        .query("SELECT count(*) FROM metrics a, metrics b, metrics c WHERE a.value + b.value > c.value", &[])
        .await
        .unwrap_err();
    let code = e.as_db_error().unwrap().code().code().to_string();
    assert!(code == "57014" || code == "53200", "{e:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    // A heavy regex over a large generated input.
    let t = Instant::now();
    let e = c
        .query("SELECT count(*) FROM generate_series(1, 100000000) g WHERE regexp_like(repeat('a', 30) || CAST(g.value AS VARCHAR), '(a|aa)+b')", &[])
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "57014", "{e:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    // Memory: sorting every row of a self join holds more than 8 MiB.
    let e = c
        .query("SELECT a.labels, b.labels FROM metrics a JOIN metrics b ON a.name = b.name ORDER BY a.value, b.value", &[])
        .await
        .unwrap_err();
    let code = e.as_db_error().unwrap().code().code().to_string();
    assert!(code == "53200" || code == "57014", "{e:?}");
    // Still answering.
    assert_eq!(
        c.query_one("SELECT 3", &[]).await.unwrap().get::<_, i64>(0),
        3
    );
    assert!(
        pg.server
            .stats
            .timeouts
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}
