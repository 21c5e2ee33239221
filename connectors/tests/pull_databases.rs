//! SQL and ClickHouse pull sources against real servers (started per test in temp dirs on
//! free ports: see `dbpeers`): exact rows for a range, parameters that cannot inject, writes
//! refused by the read-only session, timeouts, authentication errors without the password.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dbpeers;

use aiops_connectors::SourceError;
use aiops_connectors::outbound::OutboundPolicy;
use aiops_connectors::sources::SourceBatch;
use aiops_connectors::sources::range::RangeSource;
use aiops_connectors::sources::sql::{Dialect, SqlConfig};
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
use std::time::{Duration, Instant};

/// 2026-01-01T00:00:00Z.
const FROM: i64 = 1_767_225_600_000;
/// One hour later (exclusive).
const TO: i64 = FROM + 3_600_000;

fn loopback() -> OutboundPolicy {
    OutboundPolicy::allowing(["127.0.0.1"])
}

fn config(text: &str) -> SqlConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// (time, name, labels as "k=v,…", value) of every metric row, sorted.
fn metric_rows(batches: &[SourceBatch]) -> Vec<(i64, String, String, f64)> {
    let mut out = Vec::new();
    for b in batches {
        let t = b.batch.column(0).as_primitive::<TimestampMillisecondType>();
        let n = b.batch.column(1).as_string::<i32>();
        let l = b.batch.column(2).as_map();
        let v = b.batch.column(3).as_primitive::<Float64Type>();
        for i in 0..b.batch.num_rows() {
            let m = l.value(i);
            let (k, vv) = (
                m.column(0).as_string::<i32>(),
                m.column(1).as_string::<i32>(),
            );
            let labels: Vec<String> = (0..k.len())
                .map(|j| format!("{}={}", k.value(j), vv.value(j)))
                .collect();
            out.push((
                t.value(i),
                n.value(i).to_string(),
                labels.join(","),
                v.value(i),
            ));
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

fn expected_rows() -> Vec<(i64, String, String, f64)> {
    vec![
        (FROM, "shop_orders".into(), "region=eu".into(), 3.0),
        (FROM, "shop_revenue".into(), "region=eu".into(), 12.5),
        (
            FROM + 1_800_000,
            "shop_orders".into(),
            "region=us".into(),
            7.0,
        ),
        (
            FROM + 1_800_000,
            "shop_revenue".into(),
            "region=us".into(),
            70.25,
        ),
        (TO - 1, "shop_orders".into(), "region=eu".into(), 1.0),
        (TO - 1, "shop_revenue".into(), "region=eu".into(), 0.5),
    ]
}

async fn pull_err(src: &dyn RangeSource, from: i64, to: i64) -> SourceError {
    match src.pull(from, to).await {
        Ok(b) => panic!("expected an error, got {} batches", b.len()),
        Err(e) => e,
    }
}

const PG_PASSWORD: &str = "pg-Secret-4711";

fn pg_source(pg: &dbpeers::Postgres, query: &str, extra: &str) -> Box<dyn RangeSource> {
    // SAFETY of the test: env vars are process-wide; each name is used by one test only.
    let cfg = config(&format!(
        "url = \"postgres://postgres@127.0.0.1:{}/postgres\"\npassword = {{ value = \"{}\" }}\nquery = \"\"\"{query}\"\"\"\n{extra}\n[mapping]\nkind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"orders\", \"revenue\"]\nmetric_prefix = \"shop_\"\n",
        pg.port, pg.password
    ));
    Box::new(cfg.build(Dialect::Postgres, &loopback()).unwrap())
}

#[tokio::test]
async fn postgres_range_pull_returns_exactly_the_rows_of_the_range() {
    let pg = dbpeers::Postgres::start(PG_PASSWORD);
    pg.exec(
        "CREATE TABLE sales (ts timestamptz NOT NULL, region text, orders int8, revenue numeric(10,2));\
         INSERT INTO sales VALUES \
         ('2025-12-31 23:59:59+00', 'eu', 100, 1),\
         ('2026-01-01 00:00:00+00', 'eu', 3, 12.50),\
         ('2026-01-01 00:30:00+00', 'us', 7, 70.25),\
         ('2026-01-01 00:59:59.999+00', 'eu', 1, 0.5),\
         ('2026-01-01 01:00:00+00', 'eu', 200, 2);",
    );
    let src = pg_source(
        &pg,
        "SELECT ts, region, orders, revenue FROM sales WHERE ts >= $__from AND ts < $__to ORDER BY ts",
        "",
    );
    assert_eq!(src.name(), "postgres");
    let got = src.pull(FROM, TO).await.unwrap();
    assert_eq!(metric_rows(&got), expected_rows());
    // A range without rows is no batch, not an error.
    assert!(
        src.pull(TO + 3_600_000, TO + 7_200_000)
            .await
            .unwrap()
            .is_empty()
    );
    // The same with the integer macros against epoch arithmetic, and a timestamp without zone.
    pg.exec(
        "CREATE TABLE sales_naive AS SELECT ts AT TIME ZONE 'UTC' AS ts, region, orders, revenue FROM sales",
    );
    let src = pg_source(
        &pg,
        "SELECT ts, region, orders::int4 AS orders, revenue::float8 AS revenue FROM sales_naive \
         WHERE extract(epoch FROM ts) * 1000 >= $__from_ms AND extract(epoch FROM ts) * 1000 < $__to_ms",
        "",
    );
    assert_eq!(
        metric_rows(&src.pull(FROM, TO).await.unwrap()),
        expected_rows()
    );
    // test(): reachable, rows counted, nothing written.
    let report = src.test(TO).await.unwrap();
    assert!(report.reachable, "{report:?}");
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.sample_to_ms, TO);
}

#[tokio::test]
async fn postgres_parameters_cannot_inject_and_writes_are_refused() {
    let pg = dbpeers::Postgres::start(PG_PASSWORD);
    pg.exec(
        "CREATE TABLE sales (ts timestamptz NOT NULL, region text, orders int8, revenue numeric(10,2));\
         INSERT INTO sales VALUES ('2026-01-01 00:10:00+00', 'x''); DROP TABLE sales; --', 1, 1);",
    );
    // A hostile text comes back as data; the range values are bound ($1/$2), never spliced.
    let src = pg_source(
        &pg,
        "SELECT ts, region, orders, revenue FROM sales WHERE ts >= $__from AND ts < $__to",
        "",
    );
    let rows = metric_rows(&src.pull(FROM, TO).await.unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].2, "region=x'); DROP TABLE sales; --");
    // A query that writes is refused by the read-only session, with a message saying so.
    let src = pg_source(
        &pg,
        "WITH gone AS (DELETE FROM sales WHERE ts >= $__from AND ts < $__to RETURNING *) \
         SELECT ts, region, orders, revenue FROM gone",
        "",
    );
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(matches!(e, SourceError::Config(_)), "{e}");
    assert!(
        e.to_string().contains("read-only session refused it"),
        "{e}"
    );
    // A second statement appended to the query is refused: a prepared statement holds one.
    let src = pg_source(
        &pg,
        "SELECT ts, region, orders, revenue FROM sales WHERE ts >= $__from; \
         INSERT INTO sales VALUES (now(), 'b', 1, 1)",
        "",
    );
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(e.to_string().contains("database refused the query"), "{e}");
    assert_eq!(pg.query("SELECT count(*) FROM sales"), "1");
}

#[tokio::test]
async fn postgres_slow_query_times_out_and_wrong_password_names_no_secret() {
    let pg = dbpeers::Postgres::start(PG_PASSWORD);
    let src = pg_source(
        &pg,
        "SELECT now() AS ts, 'eu' AS region, 1 AS orders, 1 AS revenue, pg_sleep(10) FROM (SELECT 1) s WHERE now() > $__from",
        "timeout = \"1s\"",
    );
    let started = Instant::now();
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, SourceError::Unavailable(_)), "{e}");
    assert!(
        e.to_string()
            .contains("did not finish within the timeout of 1s"),
        "{e}"
    );

    let wrong = "Wrong-Pass-9931";
    let cfg = config(&format!(
        "host = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"\ndatabase = \"postgres\"\npassword = {{ value = \"{wrong}\" }}\nquery = \"SELECT now() AS ts, 1 AS v WHERE now() > $__from\"\n[mapping]\nkind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"v\"]\n",
        pg.port
    ));
    let src = cfg.build(Dialect::Postgres, &loopback()).unwrap();
    let e = pull_err(&src, FROM, TO).await;
    let text = e.to_string();
    assert!(
        text.contains("authentication failed for user \"postgres\""),
        "{text}"
    );
    assert!(
        !text.contains(wrong) && !text.contains(PG_PASSWORD),
        "{text}"
    );
    let report = src.test(TO).await.unwrap();
    assert!(!report.reachable);
    assert!(report.problems[0].contains("authentication failed"));
    assert!(!format!("{report:?}").contains(wrong));
}

const MY_PASSWORD: &str = "my-Secret-0815";

fn my_source(db: &dbpeers::MariaDb, query: &str, extra: &str) -> Box<dyn RangeSource> {
    let cfg = config(&format!(
        "url = \"mysql://aiops@127.0.0.1:{}/test\"\npassword = {{ value = \"{}\" }}\nquery = \"\"\"{query}\"\"\"\n{extra}\n[mapping]\nkind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"orders\", \"revenue\"]\nmetric_prefix = \"shop_\"\n",
        db.port, db.password
    ));
    Box::new(cfg.build(Dialect::Mysql, &loopback()).unwrap())
}

#[tokio::test]
async fn mariadb_range_pull_injection_read_only_timeout_and_auth() {
    let db = dbpeers::MariaDb::start(MY_PASSWORD);
    db.exec(
        "CREATE TABLE test.sales (ts DATETIME(3) NOT NULL, region VARCHAR(64), orders BIGINT UNSIGNED, revenue DECIMAL(10,2));\
         INSERT INTO test.sales VALUES \
         ('2025-12-31 23:59:59', 'eu', 100, 1),\
         ('2026-01-01 00:00:00', 'eu', 3, 12.50),\
         ('2026-01-01 00:30:00', 'us', 7, 70.25),\
         ('2026-01-01 00:59:59.999', 'eu', 1, 0.5),\
         ('2026-01-01 01:00:00', 'eu', 200, 2);",
    );
    let src = my_source(
        &db,
        "SELECT ts, region, orders, revenue FROM sales WHERE ts >= $__from AND ts < $__to ORDER BY ts",
        "",
    );
    assert_eq!(src.name(), "mysql");
    assert_eq!(
        metric_rows(&src.pull(FROM, TO).await.unwrap()),
        expected_rows()
    );
    // Epoch integers through $__from_ms / $__to_ms, TIMESTAMP column, float values.
    db.exec(
        "CREATE TABLE test.sales_ts (ts TIMESTAMP(3) NOT NULL, region TEXT, orders INT, revenue DOUBLE);\
         SET time_zone = '+00:00'; INSERT INTO test.sales_ts SELECT * FROM test.sales;",
    );
    let src = my_source(
        &db,
        "SELECT ts, region, orders, revenue FROM sales_ts \
         WHERE UNIX_TIMESTAMP(ts) * 1000 >= $__from_ms AND UNIX_TIMESTAMP(ts) * 1000 < $__to_ms",
        "",
    );
    assert_eq!(
        metric_rows(&src.pull(FROM, TO).await.unwrap()),
        expected_rows()
    );

    // A write is refused by the read-only transaction although the user may INSERT.
    let src = my_source(
        &db,
        "INSERT INTO sales SELECT * FROM sales WHERE ts >= $__from AND ts < $__to",
        "",
    );
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(
        e.to_string().contains("read-only session refused it"),
        "{e}"
    );
    assert_eq!(db.query("SELECT COUNT(*) FROM sales"), "5");

    // A slow query hits max_statement_time.
    let src = my_source(
        &db,
        "SELECT NOW() AS ts, 'eu' AS region, 1 AS orders, SLEEP(10) AS revenue FROM DUAL WHERE NOW() > $__from",
        "timeout = \"1s\"",
    );
    let started = Instant::now();
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        e.to_string()
            .contains("did not finish within the timeout of 1s"),
        "{e}"
    );

    // Wrong password: a clear authentication error without the password.
    let wrong = "Wrong-Pass-7777";
    let cfg = config(&format!(
        "url = \"mysql://aiops@127.0.0.1:{}/test\"\npassword = {{ value = \"{wrong}\" }}\nquery = \"SELECT NOW() AS ts, 1 AS v FROM DUAL WHERE NOW() > $__from\"\n[mapping]\nkind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"v\"]\n",
        db.port
    ));
    let src = cfg.build(Dialect::Mysql, &loopback()).unwrap();
    let e = pull_err(&src, FROM, TO).await;
    let text = e.to_string();
    assert!(
        text.contains("authentication failed for user \"aiops\""),
        "{text}"
    );
    assert!(
        !text.contains(wrong) && !text.contains(MY_PASSWORD),
        "{text}"
    );
}

#[tokio::test]
async fn sql_rows_beyond_max_rows_are_an_error_not_a_silent_cut() {
    let pg = dbpeers::Postgres::start(PG_PASSWORD);
    let src = pg_source(
        &pg,
        "SELECT $__from + (g * interval '1 second') AS ts, 'eu' AS region, g AS orders, g AS revenue \
         FROM generate_series(0, 9) g",
        "max_rows = 5",
    );
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(e.to_string().contains("more than 5 rows (max_rows)"), "{e}");
}

const CH_PASSWORD: &str = "ch-Secret-1234";

async fn ch_exec(ch: &dbpeers::ClickHouse, sql: &str) -> String {
    let resp = reqwest::Client::new()
        .post(ch.url())
        .header("X-ClickHouse-User", "default")
        .header("X-ClickHouse-Key", &ch.password)
        .body(sql.to_string())
        .send()
        .await
        .unwrap();
    let ok = resp.status().is_success();
    let text = resp.text().await.unwrap();
    assert!(ok, "{sql}: {text}");
    text.trim().to_string()
}

fn ch_source(ch: &dbpeers::ClickHouse, query: &str, extra: &str) -> Box<dyn RangeSource> {
    let cfg: aiops_connectors::sources::clickhouse::ClickHouseConfig = toml::from_str(&format!(
        "url = {:?}\npassword = {{ value = {:?} }}\nparameters = \"inline\"\nquery = \"\"\"{query}\"\"\"\n{extra}\n[mapping]\nkind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"orders\", \"revenue\"]\nmetric_prefix = \"shop_\"\n",
        ch.url(),
        ch.password
    ))
    .unwrap();
    Box::new(cfg.build_with(&loopback()).unwrap())
}

/// Debian's clickhouse-server (18.16) has no query parameters: the `inline` mode is tested here,
/// the `server` mode's request shape in the unit tests.
#[tokio::test]
async fn clickhouse_range_pull_read_only_timeout_and_auth() {
    let Some(ch) = dbpeers::ClickHouse::start(CH_PASSWORD) else {
        eprintln!(
            "SKIPPED: no clickhouse-server binary (scripts/test-deps/databases.sh installs it)"
        );
        return;
    };
    ch_exec(
        &ch,
        "CREATE TABLE sales (ts DateTime, region String, orders UInt64, revenue Decimal(10,2)) ENGINE = Memory",
    )
    .await;
    ch_exec(
        &ch,
        "INSERT INTO sales VALUES ('2025-12-31 23:59:59', 'eu', 100, 1), ('2026-01-01 00:00:00', 'eu', 3, 12.50), \
         ('2026-01-01 00:30:00', 'us', 7, 70.25), ('2026-01-01 00:59:59', 'eu', 1, 0.5), ('2026-01-01 01:00:00', 'eu', 200, 2)",
    )
    .await;
    let src = ch_source(
        &ch,
        "SELECT ts, region, orders, revenue FROM sales WHERE ts >= $__from AND ts < $__to ORDER BY ts",
        "",
    );
    assert_eq!(src.name(), "clickhouse");
    let mut want = expected_rows();
    // DateTime has whole seconds: the last row is at 00:59:59.
    for r in want.iter_mut().filter(|r| r.0 == TO - 1) {
        r.0 = TO - 1000;
    }
    assert_eq!(metric_rows(&src.pull(FROM, TO).await.unwrap()), want);
    // A write is refused by readonly=1.
    let src = ch_source(
        &ch,
        "INSERT INTO sales SELECT * FROM sales WHERE ts >= $__from",
        "",
    );
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(
        e.to_string().contains("read-only session refused it"),
        "{e}"
    );
    assert_eq!(ch_exec(&ch, "SELECT count() FROM sales").await, "5");
    // A slow query hits max_execution_time.
    let src = ch_source(
        &ch,
        "SELECT now() AS ts, 'x' AS region, count() AS orders, 1 AS revenue FROM system.numbers WHERE number > $__from_ms",
        "timeout = \"1s\"",
    );
    let started = Instant::now();
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        e.to_string()
            .contains("did not finish within the timeout of 1s"),
        "{e}"
    );
    // Too many rows.
    let src = ch_source(
        &ch,
        "SELECT toDateTime($__from_ms / 1000) AS ts, 'x' AS region, number AS orders, 1 AS revenue FROM system.numbers LIMIT 10",
        "max_rows = 3",
    );
    let e = pull_err(src.as_ref(), FROM, TO).await;
    assert!(e.to_string().contains("more than 3 rows (max_rows)"), "{e}");
    // A wrong password.
    let cfg: aiops_connectors::sources::clickhouse::ClickHouseConfig = toml::from_str(&format!(
        "url = {:?}\npassword = {{ value = \"Wrong-Pass-5555\" }}\nparameters = \"inline\"\nquery = \"SELECT now() AS ts, 1 AS v\"\n[mapping]\nkind = \"metrics\"\ntime_column = \"ts\"\nvalue_columns = [\"v\"]\n",
        ch.url()
    ))
    .unwrap();
    let src = cfg.build_with(&loopback()).unwrap();
    let text = pull_err(&src, FROM, TO).await.to_string();
    assert!(
        text.contains("authentication failed for user \"default\""),
        "{text}"
    );
    assert!(
        !text.contains("Wrong-Pass-5555") && !text.contains(CH_PASSWORD),
        "{text}"
    );
}
