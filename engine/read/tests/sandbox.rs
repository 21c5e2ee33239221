//! The read-only SQL sandbox, attacked the way a viewer would: through the in-process query
//! path (`POST /api/sql`, `aiops sql`, workflow steps) and through the Postgres endpoint with
//! a real client, simple and extended protocol. Every refused statement gets its SQLSTATE and
//! a message naming it; afterwards the shared session, the tables and the file system are as
//! they were.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use aiops_read::limits::QueryLimits;
use aiops_read::sandbox;
use common::{fixture, pg};
use std::time::{Duration, Instant};

/// `1+1+…+1` with `n` terms.
fn chain(n: usize) -> String {
    let mut s = String::from("SELECT 1");
    for _ in 1..n {
        s.push_str("+1");
    }
    s
}

/// Statements a viewer must not run, with the SQLSTATE each is refused with and a word the
/// message must contain. `{dir}` is a scratch directory.
fn hostile(dir: &str) -> Vec<(String, &'static str, &'static str)> {
    vec![
        ("CREATE SCHEMA evil".into(), "42501", "CREATE SCHEMA"),
        (
            format!(
                "CREATE EXTERNAL TABLE stolen (line VARCHAR) STORED AS TEXTFILE LOCATION '{dir}/secret.csv'"
            ),
            "42501",
            "CREATE EXTERNAL TABLE",
        ),
        (
            format!("COPY (SELECT 1 AS x) TO '{dir}/written.csv'"),
            "42501",
            "COPY",
        ),
        ("DROP TABLE metrics".into(), "42501", "DROP TABLE"),
        ("DROP SCHEMA public CASCADE".into(), "42501", "DROP SCHEMA"),
        ("CREATE TABLE t AS SELECT 1".into(), "42501", "CREATE TABLE"),
        ("CREATE VIEW v AS SELECT 1".into(), "42501", "CREATE VIEW"),
        ("INSERT INTO metrics VALUES (1)".into(), "42501", "INSERT"),
        ("DELETE FROM metrics".into(), "42501", "DELETE"),
        ("UPDATE metrics SET value = 0".into(), "42501", "UPDATE"),
        ("PREPARE p AS SELECT 1".into(), "42501", "PREPARE"),
        ("SELECT 1 AS x INTO newtable".into(), "42501", "INTO"),
        (
            "WITH x AS (INSERT INTO metrics VALUES (1)) SELECT 1".into(),
            "42501",
            "",
        ),
        ("EXPLAIN CREATE TABLE t (a INT)".into(), "42501", "EXPLAIN"),
        ("SELECT 1; DROP TABLE metrics".into(), "42601", ""),
        (chain(20_000), "54001", "sql.max_expression_depth"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_path_refuses_everything_but_reads_and_changes_nothing() {
    let fx = fixture().await;
    let ctx = fx.session(true).await;
    let limits = QueryLimits::default();
    let dir = fx.dir.path().to_str().unwrap().to_string();
    std::fs::write(fx.dir.path().join("secret.csv"), "token-hash-abc\n").unwrap();
    for (sql, code, word) in hostile(&dir) {
        let t = Instant::now();
        let e = sandbox::query(&ctx, &sql, None, &limits)
            .await
            .expect_err(&sql[..sql.len().min(80)]);
        assert_eq!(e.code, code, "{}: {}", &sql[..sql.len().min(80)], e.message);
        assert!(
            e.message.contains(word),
            "{}: message {:?} should name {word:?}",
            &sql[..sql.len().min(80)],
            e.message
        );
        assert!(t.elapsed() < Duration::from_secs(2), "refused quickly");
    }
    // DataFusion's own spelling (the Postgres parser does not know it: a syntax error there).
    let e = sandbox::query(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE s2 (line VARCHAR) STORED AS CSV LOCATION '{dir}/secret.csv'"
        ),
        None,
        &limits,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "42501", "{}", e.message);
    // SET of an engine option through the API path.
    let e = sandbox::query(
        &ctx,
        "SET datafusion.execution.batch_size = 1",
        None,
        &limits,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "42501", "{}", e.message);
    let e = sandbox::query(&ctx, "RESET datafusion.execution.batch_size", None, &limits)
        .await
        .unwrap_err();
    assert_eq!(e.code, "42501", "{}", e.message);
    // Nothing was written, and the shared session still has its tables.
    assert!(!fx.dir.path().join("written.csv").exists());
    let b = sandbox::query(&ctx, "SELECT count(*) AS n FROM metrics", None, &limits)
        .await
        .unwrap();
    let n = b[0]
        .column(0)
        .as_any()
        .downcast_ref::<aiops_schemas::arrow_array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, common::STEPS * common::HOSTS.len() as i64);
    assert!(ctx.catalog("datafusion").unwrap().schema("evil").is_none());
    assert!(
        ctx.catalog("datafusion")
            .unwrap()
            .schema("public")
            .is_some()
    );
    // Reads of every allowed kind still work.
    for ok in [
        "SELECT 1",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "VALUES (1), (2)",
        "SELECT 1 UNION ALL SELECT 2",
        "EXPLAIN SELECT count(*) FROM metrics",
        "SHOW TABLES",
        "SELECT * FROM metrics WHERE value IN (SELECT value FROM metrics LIMIT 1) LIMIT 1",
        &chain(100),
    ] {
        sandbox::query(&ctx, ok, None, &limits)
            .await
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn text_gate_bounds_size_and_depth_without_recursing() {
    let limits = QueryLimits::default();
    // A million-term chain is refused by the estimate alone, in a thread with a small stack.
    let big = chain(1_000_000);
    let h = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || sandbox::check_text(&big, &QueryLimits::default()))
        .unwrap();
    let e = h.join().unwrap().unwrap_err();
    assert_eq!(e.code, "54000", "over 1 MiB of text: {}", e.message);
    let e = sandbox::check_text(&chain(300), &limits).unwrap_err();
    assert_eq!(e.code, "54001");
    // Nesting through brackets counts too, and commas start a new expression.
    let nested = format!("SELECT {}1{}", "(1+".repeat(200), ")".repeat(200));
    assert_eq!(
        sandbox::check_text(&nested, &limits).unwrap_err().code,
        "54001"
    );
    let list = format!(
        "SELECT * FROM metrics WHERE value IN ({})",
        (0..10_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    sandbox::check_text(&list, &limits).expect("a long IN list is flat");
    let ands = (0..50)
        .map(|i| format!("value <> {i}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    sandbox::check_text(&format!("SELECT 1 FROM metrics WHERE {ands}"), &limits)
        .expect("50 conditions are fine");
    // Plans stack relations: set operations, joins and FROM items count, commas do not reset.
    let unions = vec!["SELECT 1, 2"; 8_000].join(" UNION ALL ");
    assert_eq!(
        sandbox::check_text(&unions, &limits).unwrap_err().code,
        "54001"
    );
    let tables = format!(
        "SELECT 1 FROM {}",
        (0..2_000)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(
        sandbox::check_text(&tables, &limits).unwrap_err().code,
        "54001"
    );
    let ctes = format!(
        "WITH {} SELECT * FROM c299",
        (0..300)
            .map(|i| format!("c{} AS (SELECT 1 FROM c{i})", i + 1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(
        sandbox::check_text(&ctes, &limits).unwrap_err().code,
        "54001"
    );
    sandbox::check_text(&vec!["SELECT 1"; 20].join(" UNION ALL "), &limits)
        .expect("20 unions are fine");
    // Keyword operators the parser chains in a loop (its recursion limit never sees them), and
    // relation operators after a table: each chain is refused, however it is spelled.
    for (what, sql) in [
        (
            "MEMBER OF",
            format!("SELECT 1{}", " MEMBER OF(1)".repeat(80_000)),
        ),
        ("NOTNULL", format!("SELECT 1{}", " NOTNULL".repeat(100_000))),
        (
            "OPERATOR",
            format!("SELECT 1{}", " OPERATOR(x) 1".repeat(50_000)),
        ),
        (
            "IS NOT NULL",
            format!("SELECT 1{}", " IS NOT NULL".repeat(50_000)),
        ),
        (
            "PIVOT",
            format!(
                "SELECT * FROM t{}",
                " PIVOT(sum(a) FOR b IN (1))".repeat(20_000)
            ),
        ),
        ("casts", format!("SELECT 1{}", "::int".repeat(100_000))),
        ("subscripts", format!("SELECT a{}", "[1]".repeat(100_000))),
    ] {
        let e = sandbox::check_text(&sql, &limits).expect_err(what);
        assert_eq!(e.code, "54001", "{what}: {}", e.message);
    }
    // A realistic Grafana query stays far below the bound.
    sandbox::check_text(
        "SELECT $__timeGroupAlias(time, '1m'), labels['instance'] AS metric, avg(value) AS value \
         FROM metrics WHERE name = 'node_load1' AND time >= now() - interval '1 hour' \
         AND labels['job'] IN ('node', 'api') AND value IS NOT NULL \
         GROUP BY 1, 2 ORDER BY 1 LIMIT 10000",
        &limits,
    )
    .expect("a Grafana query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_endpoint_refuses_writes_for_every_role_and_keeps_the_session() {
    let fx = fixture().await;
    let pg = pg(&fx, QueryLimits::default()).await;
    let dir = fx.dir.path().to_str().unwrap().to_string();
    std::fs::write(fx.dir.path().join("secret.csv"), "token-hash-abc\n").unwrap();
    for token in [&pg.viewer, &pg.operator, &pg.admin] {
        let c = pg.connect(token).await.unwrap();
        for (sql, code, _) in hostile(&dir) {
            // The simple protocol.
            let e = c
                .simple_query(&sql)
                .await
                .expect_err(&sql[..sql.len().min(80)]);
            let db = e
                .as_db_error()
                .expect("a Postgres error, not a dropped connection");
            if code == "42601" {
                // Several statements: the first runs, the second is refused.
                assert_eq!(db.code().code(), "42501", "{sql}: {}", db.message());
            } else {
                assert_eq!(
                    db.code().code(),
                    code,
                    "{}: {}",
                    &sql[..sql.len().min(80)],
                    db.message()
                );
            }
            // The extended protocol (prepare + execute), where there is one statement.
            if code != "42601" {
                let e = c.query(sql.as_str(), &[]).await.expect_err("extended");
                let db = e.as_db_error().expect("a Postgres error");
                assert_eq!(db.code().code(), code, "extended {}", db.message());
            }
        }
        for set in [
            "SET datafusion.execution.batch_size = 1",
            "SET datafusion.runtime.memory_limit = '100G'",
            "SET datafusion.execution.target_partitions = 64",
            "SET SESSION AUTHORIZATION admin",
        ] {
            let e = c.simple_query(set).await.expect_err(set);
            let db = e.as_db_error().expect("a Postgres error");
            assert_eq!(db.code().code(), "42501", "{set}: {}", db.message());
        }
        // Cursors would outlive the time limit (each FETCH starts a new one): refused.
        for cur in [
            "DECLARE c CURSOR FOR SELECT * FROM metrics",
            "FETCH 10 FROM c",
        ] {
            let e = c.simple_query(cur).await.expect_err(cur);
            let db = e.as_db_error().expect("a Postgres error");
            assert_eq!(db.code().code(), "0A000", "{cur}: {}", db.message());
        }
        // What drivers send on connect is accepted.
        for set in [
            "SET application_name = 'psql'",
            "SET extra_float_digits = 3",
            "SET client_encoding = 'UTF8'",
            "SET TIME ZONE 'UTC'",
            "BEGIN",
            "COMMIT",
        ] {
            c.simple_query(set)
                .await
                .unwrap_or_else(|e| panic!("{set}: {e}"));
        }
        // The connection is still usable, and the tables are all there.
        let n: i64 = c
            .query_one("SELECT count(*) FROM metrics", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, common::STEPS * common::HOSTS.len() as i64);
    }
    // Another connection sees the session unchanged: batch size and schemas as configured.
    let c = pg.connect(&pg.viewer).await.unwrap();
    let shown: String = c
        .query_one(
            "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown, "8192");
    assert!(!fx.dir.path().join("written.csv").exists());
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'evil'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}
