//! Fuzzing of the SQL front end (issue 15): the sandbox's gates fed token soups, mutated real
//! queries (`tests/corpus/sql/*.sql`: Grafana's and psql's queries, dashboards' queries and the
//! statements a hostile viewer sends) and deeply nested expressions, a bounded number of cases
//! per `cargo test` run.
//!
//! The property, for every text: [`sandbox::check_text`], [`sandbox::parse_one`] and
//! [`sandbox::check_statement`] (Postgres surface) never panic, never overflow a 2 MiB stack
//! (each case runs on its own thread of that size, what a server thread has), return within a
//! time bound, and every refusal carries a well-formed SQLSTATE that is not `XX000` (a user's
//! text is never an internal error) with a bounded message. A statement `parse_one` lets through
//! is a read (query, `EXPLAIN` of one, `SHOW`/`DESCRIBE`), and planning it in the read-side
//! session ([`sandbox::dataframe`], over the shared test fixture's tables and pg_catalog) holds
//! the same property: a text under the depth limit cannot recurse deeper in any later step.
//!
//! Corpus files are replayed first on every run: `hostile-*` must be refused with `42501`,
//! `0A000` or `42601`; other seeds must pass `parse_one`; `crash-*` files are earlier failures.
//! A failing case is written to the corpus as `crash-<hash>.sql`. A stack overflow aborts the
//! process before anything can be written, so each case's text is first written to
//! `$CARGO_TARGET_TMPDIR/fuzz_sql-<phase>.inflight.sql`; the next run finds that file, copies it
//! into the corpus and fails naming it.
//!
//! Knobs (as in `connectors/tests/fuzz_decoders.rs`): `AIOPS_FUZZ_SEED`, `AIOPS_FUZZ_CASES`
//! (default 150 per phase), `AIOPS_FUZZ_BUDGET_SECS` (default 40 for the whole file),
//! `AIOPS_FUZZ_CASE_TIMEOUT_MS` (default 10000).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use aiops_read::limits::{QueryError, QueryLimits};
use aiops_read::sandbox::{self, Surface};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The stack of the thread each case runs on.
const STACK: usize = 2 << 20;
/// Longest refusal message: it goes back to the client and into the log.
const MAX_ERROR_BYTES: usize = 8192;
/// Longest generated text (the default `sql.max_statement_bytes` is 1 MiB; larger texts are
/// refused by length before anything else looks at them).
const MAX_TEXT: usize = 256 << 10;

// ---------------------------------------------------------------------------------------------
// Settings.

#[derive(Debug, Clone, Copy)]
struct Settings {
    seed: u64,
    cases: u32,
    budget: Duration,
    case_timeout: Duration,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn settings() -> Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    *S.get_or_init(|| Settings {
        seed: env_u64("AIOPS_FUZZ_SEED").unwrap_or(0x00a1_0b5f_5eed),
        cases: env_u64("AIOPS_FUZZ_CASES").map_or(150, |n| n.clamp(1, 1 << 24) as u32),
        budget: Duration::from_secs(env_u64("AIOPS_FUZZ_BUDGET_SECS").unwrap_or(40)),
        case_timeout: Duration::from_millis(
            env_u64("AIOPS_FUZZ_CASE_TIMEOUT_MS").unwrap_or(10_000),
        ),
    })
}

fn deadline() -> Instant {
    static D: OnceLock<Instant> = OnceLock::new();
    *D.get_or_init(|| Instant::now() + settings().budget)
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn runner(phase: &str, cases: u32) -> TestRunner {
    let s = settings();
    let mut key = [0u8; 32];
    for (i, part) in [s.seed, fnv(b"sql"), fnv(phase.as_bytes()), 0x5eed]
        .into_iter()
        .enumerate()
    {
        key[i * 8..(i + 1) * 8].copy_from_slice(&part.to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        max_shrink_time: 30_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

// ---------------------------------------------------------------------------------------------
// The session and one case.

/// The read-side session over the shared fixture (tables `metrics`, `events`, `cpu_1m`,
/// information_schema and pg_catalog), on a runtime of its own.
struct Env {
    rt: tokio::runtime::Runtime,
    ctx: SessionContext,
    _fx: common::Fixture,
}

fn env() -> Arc<Env> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fx = rt.block_on(common::fixture());
    let ctx = rt.block_on(fx.session(true));
    Arc::new(Env { rt, ctx, _fx: fx })
}

fn valid_sqlstate(code: &str) -> bool {
    code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

fn check_refusal(step: &str, sql: &str, e: &QueryError) -> Result<(), String> {
    if !valid_sqlstate(e.code) {
        return Err(format!(
            "{step}: malformed SQLSTATE {:?}: {}",
            e.code, e.message
        ));
    }
    if e.code == "XX000" {
        let head: String = sql.chars().take(120).collect();
        return Err(format!(
            "{step}: internal error (XX000) for a user's text {head:?}: {}",
            e.message
        ));
    }
    if e.message.chars().any(char::is_control) {
        return Err(format!(
            "{step}: a raw control character in the message (it goes into the log): {:?}",
            e.message.chars().take(200).collect::<String>()
        ));
    }
    if e.message.trim().is_empty() {
        return Err(format!("{step}: a refusal without a message ({})", e.code));
    }
    if e.message.len() > MAX_ERROR_BYTES {
        let head: String = e.message.chars().take(200).collect();
        return Err(format!(
            "{step}: message of {} bytes (more than {MAX_ERROR_BYTES}): {head:?}…",
            e.message.len()
        ));
    }
    Ok(())
}

/// What the gates did with a text, for the corpus checks.
#[derive(Debug)]
enum Verdict {
    /// `parse_one` accepted it (planning may still have refused it, with a proper SQLSTATE).
    Read,
    /// Refused with this SQLSTATE.
    Refused(&'static str),
}

/// The property for one text; runs on the calling thread.
fn property(env: &Env, sql: &str) -> Result<Verdict, String> {
    let limits = QueryLimits::default();
    let text = sandbox::check_text(sql, &limits);
    if let Err(e) = &text {
        check_refusal("check_text", sql, e)?;
    }
    let parsed = sandbox::parse_one(&env.ctx, sql, &limits);
    let stmt = match parsed {
        Err(e) => {
            check_refusal("parse_one", sql, &e)?;
            if let Err(t) = &text
                && t.code != e.code
            {
                return Err(format!(
                    "check_text refused with {} but parse_one with {}",
                    t.code, e.code
                ));
            }
            return Ok(Verdict::Refused(e.code));
        }
        Ok(stmt) => stmt,
    };
    if text.is_err() {
        return Err("parse_one accepted a text check_text refuses".into());
    }
    let read = match &stmt {
        DfStatement::Statement(s) => {
            matches!(
                s.as_ref(),
                Statement::Query(_)
                    | Statement::ExplainTable { .. }
                    | Statement::ShowVariable { .. }
                    | Statement::ShowVariables { .. }
                    | Statement::ShowStatus { .. }
                    | Statement::ShowTables { .. }
                    | Statement::ShowColumns { .. }
                    | Statement::ShowFunctions { .. }
                    | Statement::ShowCatalogs { .. }
                    | Statement::ShowSchemas { .. }
            ) || matches!(s.as_ref(), Statement::Explain { statement, .. } if matches!(statement.as_ref(), Statement::Query(_)))
        }
        DfStatement::Explain(e) => {
            matches!(e.statement.as_ref(), DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_)))
        }
        _ => false,
    };
    if !read {
        let name = match &stmt {
            DfStatement::Statement(s) => sandbox::statement_name(s),
            other => format!("{:?}", std::mem::discriminant(other)),
        };
        return Err(format!(
            "parse_one let a statement through that is not a read: {name}"
        ));
    }
    // Printing and dropping the tree recurse over it too (a 42501 message prints statements).
    let printed = stmt.to_string();
    drop(stmt);
    // The Postgres surface: the same text through the plain parser and the second gate.
    if let Ok(stmts) = Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        for s in &stmts {
            if let Err(e) = sandbox::check_statement(s, Surface::Postgres) {
                check_refusal("check_statement(Postgres)", sql, &e)?;
            }
        }
    }
    // Planning in a per-request copy of the read-side session.
    let planned = env
        .rt
        .handle()
        .block_on(sandbox::dataframe(&env.ctx, sql, None, &limits));
    match planned {
        Ok(df) => drop(df),
        Err(e) => check_refusal("dataframe (planning)", sql, &e)?,
    }
    drop(printed);
    Ok(Verdict::Read)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into())
}

fn inflight(phase: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz_sql-{phase}.inflight.sql"))
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sql")
}

fn save_crash(sql: &str) -> PathBuf {
    let path = corpus_dir().join(format!("crash-{:016x}.sql", fnv(sql.as_bytes())));
    if let Err(e) = std::fs::write(&path, sql) {
        eprintln!("could not write {}: {e}", path.display());
    }
    path
}

/// A text left in flight by a run that aborted (stack overflow): saved to the corpus, and the
/// test fails naming it.
fn recover_inflight(phase: &str) {
    let f = inflight(phase);
    if let Ok(sql) = std::fs::read_to_string(&f) {
        let _ = std::fs::remove_file(&f);
        let path = save_crash(&sql);
        panic!(
            "sql/{phase}: the previous run aborted (stack overflow?) on the text now saved to {}",
            path.display()
        );
    }
}

/// Runs the property on a fresh 2 MiB thread with a time bound.
fn check_case(env: &Arc<Env>, phase: &str, sql: &str) -> Result<Verdict, String> {
    let _ = std::fs::write(inflight(phase), sql);
    let (tx, rx) = sync_channel(1);
    let e = Arc::clone(env);
    let text = sql.to_string();
    std::thread::Builder::new()
        .name("fuzz-sql".into())
        .stack_size(STACK)
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| property(&e, &text)));
            let _ = tx.send(r.map_err(|p| panic_message(p.as_ref())));
        })
        .map_err(|e| format!("could not start the case thread: {e}"))?;
    let out = match rx.recv_timeout(settings().case_timeout) {
        Ok(Ok(r)) => r,
        Ok(Err(msg)) => Err(format!("panicked: {msg}")),
        Err(RecvTimeoutError::Timeout) => Err(format!(
            "did not return within {:?} (AIOPS_FUZZ_CASE_TIMEOUT_MS)",
            settings().case_timeout
        )),
        Err(RecvTimeoutError::Disconnected) => {
            Err("the case thread ended without an answer".into())
        }
    };
    let _ = std::fs::remove_file(inflight(phase));
    out
}

fn fuzz_phase(env: &Arc<Env>, phase: &str, strategy: BoxedStrategy<String>, cases: u32) {
    recover_inflight(phase);
    let mut runner = runner(phase, cases);
    let (ran, reads, skipped) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    let result = runner.run(&strategy, |sql| {
        if Instant::now() > deadline() {
            skipped.set(skipped.get() + 1);
            return Ok(());
        }
        ran.set(ran.get() + 1);
        match check_case(env, phase, &sql) {
            Ok(v) => {
                reads.set(reads.get() + u32::from(matches!(v, Verdict::Read)));
                Ok(())
            }
            Err(e) => Err(TestCaseError::fail(e)),
        }
    });
    let (ran, reads, skipped) = (ran.get(), reads.get(), skipped.get());
    eprintln!(
        "fuzz sql/{phase}: seed {:#x}, {ran} cases run, {reads} passed parse_one{}",
        settings().seed,
        if skipped > 0 {
            format!(", {skipped} skipped (AIOPS_FUZZ_BUDGET_SECS)")
        } else {
            String::new()
        }
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, sql)) => {
            let path = save_crash(&sql);
            let head: String = sql.chars().take(300).collect();
            panic!(
                "sql/{phase}: {reason}\ninput saved to {} (replayed on every run)\n{head:?}\nreproduce: AIOPS_FUZZ_SEED={:#x}",
                path.display(),
                settings().seed
            );
        }
        Err(TestError::Abort(reason)) => panic!("sql/{phase}: aborted: {reason}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus.

fn corpus() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("sql"))
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn seeds() -> Vec<String> {
    corpus()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("crash-") && !n.starts_with("known-bug-"))
        .map(|(_, s)| s)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Words and symbols SQL is made of, the dangerous ones included.
fn vocabulary() -> Vec<&'static str> {
    vec![
        "SELECT",
        "FROM",
        "WHERE",
        "GROUP",
        "BY",
        "ORDER",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "UNION",
        "ALL",
        "INTERSECT",
        "EXCEPT",
        "WITH",
        "RECURSIVE",
        "AS",
        "VALUES",
        "EXPLAIN",
        "ANALYZE",
        "SHOW",
        "DESCRIBE",
        "TABLE",
        "TABLES",
        "JOIN",
        "LEFT",
        "CROSS",
        "LATERAL",
        "ON",
        "USING",
        "OVER",
        "PARTITION",
        "WINDOW",
        "ROWS",
        "BETWEEN",
        "PRECEDING",
        "FOLLOWING",
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "AND",
        "OR",
        "NOT",
        "IN",
        "IS",
        "NULL",
        "LIKE",
        "ILIKE",
        "SIMILAR",
        "TO",
        "ESCAPE",
        "EXISTS",
        "ANY",
        "DISTINCT",
        "INTERVAL",
        "TIMESTAMP",
        "CAST",
        "TRY_CAST",
        "AT",
        "TIME",
        "ZONE",
        "COLLATE",
        "ARRAY",
        "STRUCT",
        "INTO",
        "CREATE",
        "EXTERNAL",
        "STORED",
        "CSV",
        "PARQUET",
        "LOCATION",
        "COPY",
        "DROP",
        "SCHEMA",
        "INSERT",
        "UPDATE",
        "DELETE",
        "SET",
        "RESET",
        "PREPARE",
        "EXECUTE",
        "DEALLOCATE",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "DECLARE",
        "CURSOR",
        "FETCH",
        "CLOSE",
        "GRANT",
        "TRUNCATE",
        "LOAD",
        "ATTACH",
        "VIEW",
        "FUNCTION",
        "OPTIONS",
        "metrics",
        "events",
        "logs",
        "alerts",
        "cpu_1m",
        "information_schema.tables",
        "pg_catalog.pg_class",
        "time",
        "name",
        "labels",
        "value",
        "labels['host']",
        "labels['']",
        "value::double precision",
        "now()",
        "count(*)",
        "avg(value)",
        "sum",
        "min",
        "max",
        "repeat('a', 1000000000)",
        "regexp_like",
        "regexp_replace",
        "generate_series(1, 1000000000)",
        "date_bin",
        "date_trunc",
        "approx_percentile_cont",
        "current_setting('search_path')",
        "pg_sleep(100)",
        "quote_ident",
        "array_agg",
        "string_agg",
        "unnest",
        "make_array",
        "range(1, 10)",
        "to_timestamp",
        "increase",
        "rate",
        "version()",
        "$1",
        "$name",
        "?",
        "*",
        "+",
        "-",
        "/",
        "%",
        "^",
        "||",
        "::",
        "=",
        "<>",
        "!=",
        "<",
        ">=",
        "~",
        "!~",
        "->",
        "->>",
        "@>",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ";",
        ".",
        ":",
        "'",
        "\"",
        "''",
        "'x'",
        "'2026-12-02T08:00:00Z'",
        "E'\\x00'",
        "E'\\u0000'",
        "U&'\\0041'",
        "$$dollar$$",
        "$tag$body$tag$",
        "X'00ff'",
        "B'0101'",
        "\"quoted ident\"",
        "\"\"",
        "0",
        "1",
        "-1",
        "1.5",
        "1e309",
        "-1e309",
        ".5e-400",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999999999999999999999",
        "NaN",
        "'NaN'::double",
        "'infinity'::timestamp",
        "TRUE",
        "FALSE",
        "-- comment\n",
        "/* c */",
        "/* unterminated",
        "\n",
        "\t",
        "\u{0}",
        "é",
        "日本",
        "🔥",
        "\u{202e}",
    ]
}

fn token_soup() -> BoxedStrategy<String> {
    let words = prop::sample::select(vocabulary());
    (
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![
                8 => words.prop_map(String::from),
                1 => any::<String>(),
                1 => "[a-z_][a-z0-9_]{0,10}",
            ],
            1..60,
        ),
    )
        .prop_map(|(select, toks)| {
            let body = toks.join(" ");
            if select {
                format!("SELECT {body}")
            } else {
                body
            }
        })
        .boxed()
}

/// Deep structures around the depth limit: operator chains, brackets, calls, subqueries,
/// `CASE`s, unary operators, casts, subscripts, long `IN` lists.
fn deep() -> BoxedStrategy<String> {
    let shapes = prop::sample::select(vec![
        "chain+",
        "chainAND",
        "chain||",
        "parens",
        "calls",
        "subquery",
        "case",
        "unary-",
        "not",
        "cast",
        "subscript",
        "array",
        "inlist",
        "between",
        "unionall",
        "cte",
        "mixed",
    ]);
    (
        shapes,
        prop_oneof![
            1usize..300,
            200usize..320,
            300usize..5_000,
            5_000usize..40_000
        ],
    )
        .prop_map(|(shape, n)| {
            let rep = |s: &str, n: usize| s.repeat(n);
            match shape {
                "chain+" => format!("SELECT 1{}", rep("+1", n)),
                "chainAND" => format!(
                    "SELECT * FROM metrics WHERE value > 0{}",
                    rep(" AND value > 0", n)
                ),
                "chain||" => format!("SELECT 'a'{}", rep(" || 'a'", n)),
                "parens" => format!("SELECT {}1{}", rep("(", n), rep(")", n)),
                "calls" => format!("SELECT {}1{}", rep("abs(", n), rep(")", n)),
                "subquery" => format!("SELECT {}1{}", rep("(SELECT ", n), rep(")", n)),
                "case" => format!(
                    "SELECT {}1{}",
                    rep("CASE WHEN true THEN ", n),
                    rep(" END", n)
                ),
                "unary-" => format!("SELECT {}1", rep("- ", n)),
                "not" => format!("SELECT {}true", rep("NOT ", n)),
                "cast" => format!("SELECT 1{}", rep("::bigint", n)),
                "subscript" => format!("SELECT make_array(1){}", rep("[1]", n)),
                "array" => format!("SELECT {}1{}", rep("[", n), rep("]", n)),
                "inlist" => format!("SELECT 1 IN ({})", vec!["1"; n.max(1)].join(",")),
                "between" => format!("SELECT 1{}", rep(" BETWEEN 0 AND 2 = true", n)),
                "unionall" => format!("SELECT 1{}", rep(" UNION ALL SELECT 1", n)),
                "cte" => format!(
                    "WITH {} SELECT * FROM c{}",
                    (0..n.min(2_000))
                        .map(|i| if i == 0 {
                            "c0 AS (SELECT 1 AS x)".to_string()
                        } else {
                            format!("c{i} AS (SELECT x FROM c{})", i - 1)
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    n.min(2_000) - 1
                ),
                _ => format!(
                    "SELECT {}value{}",
                    rep("abs(-(", n / 2),
                    rep(") * 1)", n / 2)
                ),
            }
        })
        .boxed()
}

/// One text-level mutation; positions are taken modulo the text's length (at char boundaries).
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, &'static str),
    Delete(usize, u16),
    Truncate(usize),
    /// Repeats a slice in place (nesting by repetition: `((((`, `+1+1+1`).
    Repeat(usize, u16, u16),
    /// Replaces the tail with another seed's tail.
    Splice(usize, usize, usize),
    /// Swaps a character for a random one.
    Char(usize, char),
}

fn boundary(s: &str, p: usize) -> usize {
    let mut p = p % (s.len() + 1);
    while !s.is_char_boundary(p) {
        p -= 1;
    }
    p
}

fn apply(sql: &mut String, edits: &[Edit], seeds: &[String]) {
    for e in edits {
        match e {
            Edit::Insert(p, w) => {
                let at = boundary(sql, *p);
                sql.insert_str(at, &format!(" {w} "));
            }
            Edit::Delete(p, n) => {
                let a = boundary(sql, *p);
                let b = boundary(sql, (a + usize::from(*n)).min(sql.len()));
                if b > a {
                    sql.replace_range(a..b, "");
                }
            }
            Edit::Truncate(p) => {
                let at = boundary(sql, *p);
                sql.truncate(at);
            }
            Edit::Repeat(p, l, t) => {
                let a = boundary(sql, *p);
                let b = boundary(sql, (a + usize::from(*l)).min(sql.len()));
                if b > a {
                    let chunk = sql[a..b].to_string();
                    let times = usize::from(*t).min(MAX_TEXT / chunk.len());
                    sql.insert_str(b, &chunk.repeat(times));
                }
            }
            Edit::Splice(p, s, q) if !seeds.is_empty() => {
                let other = &seeds[s % seeds.len()];
                let at = boundary(sql, *p);
                let from = boundary(other, *q);
                sql.truncate(at);
                sql.push_str(&other[from..]);
            }
            Edit::Char(p, c) if !sql.is_empty() => {
                let a = boundary(sql, *p);
                if let Some(old) = sql[a..].chars().next() {
                    sql.replace_range(a..a + old.len_utf8(), &c.to_string());
                }
            }
            _ => {}
        }
        if sql.len() > MAX_TEXT {
            let at = boundary(sql, MAX_TEXT);
            sql.truncate(at);
        }
    }
}

fn mutated(seeds: Vec<String>) -> BoxedStrategy<String> {
    let n = seeds.len();
    let edit = prop_oneof![
        4 => (any::<usize>(), prop::sample::select(vocabulary())).prop_map(|(p, w)| Edit::Insert(p, w)),
        2 => (any::<usize>(), 1u16..40).prop_map(|(p, l)| Edit::Delete(p, l)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        2 => (any::<usize>(), 1u16..24, 1u16..2_000).prop_map(|(p, l, t)| Edit::Repeat(p, l, t)),
        1 => (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(p, s, q)| Edit::Splice(p, s, q)),
        2 => (any::<usize>(), any::<char>()).prop_map(|(p, c)| Edit::Char(p, c)),
    ];
    (0..n, prop::collection::vec(edit, 1..6))
        .prop_map(move |(i, edits)| {
            let mut sql = seeds[i].clone();
            apply(&mut sql, &edits, &seeds);
            sql
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Every corpus file, every run: seeds are reads, `hostile-*` are refused with the right class,
/// `crash-*` hold the property.
#[test]
fn sql_corpus_replays() {
    let env = env();
    let mut failures = Vec::new();
    let files = corpus();
    assert!(files.len() >= 10, "the SQL corpus is missing");
    for (name, sql) in files {
        if name.starts_with("known-bug-") {
            continue;
        }
        match check_case(&env, "corpus", &sql) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(v) => {
                let hostile = name.starts_with("hostile-");
                match v {
                    Verdict::Refused(code)
                        if hostile && !["42501", "0A000", "42601"].contains(&code) =>
                    {
                        failures.push(format!(
                            "{name}: refused with {code}, not 42501/0A000/42601"
                        ));
                    }
                    Verdict::Refused(_) if hostile => {}
                    Verdict::Read if hostile => failures.push(format!("{name}: passed parse_one")),
                    Verdict::Refused(code) if !name.starts_with("crash-") => {
                        failures.push(format!("{name}: a real query is refused with {code}"));
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(failures.is_empty(), "SQL corpus:\n{}", failures.join("\n"));
}

#[test]
fn sql_token_soup() {
    let env = env();
    fuzz_phase(&env, "soup", token_soup(), settings().cases);
}

#[test]
fn sql_mutated_queries() {
    let env = env();
    fuzz_phase(&env, "mutated", mutated(seeds()), settings().cases);
}

#[test]
fn sql_deep_nesting() {
    let env = env();
    fuzz_phase(&env, "deep", deep(), settings().cases.div_ceil(2));
}

/// Regression of the first bug this harness found (`union-chain`, fixed in the sandbox): an
/// 8,000-term `SELECT 1 UNION ALL SELECT 1 …` passed the depth check and overflowed the stack
/// while planning, aborting the process. Now refused up front with 54001, or planned safely.
#[test]
fn union_chain_is_refused_or_planned() {
    let env = env();
    for (name, sql) in corpus() {
        if name == "crash-union-chain.sql" {
            let limits = QueryLimits::default();
            // Fixed: refused up front with 54001, or planned without overflowing.
            let t = std::thread::Builder::new()
                .stack_size(STACK)
                .spawn({
                    let env = Arc::clone(&env);
                    move || match sandbox::check_text(&sql, &limits) {
                        Err(e) => assert_eq!(e.code, "54001", "{}", e.message),
                        Ok(()) => {
                            let r = env
                                .rt
                                .handle()
                                .block_on(sandbox::dataframe(&env.ctx, &sql, None, &limits));
                            if let Err(e) = r {
                                check_refusal("dataframe", &sql, &e).unwrap();
                            }
                        }
                    }
                })
                .unwrap();
            t.join().unwrap();
        }
    }
}

/// Fixed bug `message-echo` (messages quoting the input were unbounded; now cut at 1,024 characters): the refusal must stay under the message bound.
#[test]
fn known_bug_message_echo() {
    let env = env();
    let limits = QueryLimits::default();
    let mut seen = 0;
    for (name, sql) in corpus() {
        if !name.starts_with("known-bug-message-echo") {
            continue;
        }
        seen += 1;
        let e = env
            .rt
            .handle()
            .block_on(sandbox::dataframe(&env.ctx, &sql, None, &limits))
            .expect_err(&name);
        assert!(
            e.message.len() <= MAX_ERROR_BYTES,
            "{name}: {} bytes",
            e.message.len()
        );
    }
    assert!(seen > 0);
}
