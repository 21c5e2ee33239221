//! Every ```sh block of README.md, run as written against a fresh `aiops run --demo`: the page a
//! new user starts from must not lie (issue 21, "the first hour").
//!
//! How the blocks are run:
//! - The long-running block (`cargo run --release -p aiops-server -- run --demo`) is started by
//!   this test in the background as the already-built `aiops` binary of this build
//!   (`CARGO_BIN_EXE_aiops`, a debug build: CI builds debug, and a release build would take most
//!   of an hour; the binary and its flags are the same). It runs in a fresh temporary directory
//!   (so `./data` is new, the admin token is printed and the demo backfills) holding a link to the
//!   repository's `pipelines/`, as a user's checkout would.
//! - It listens on the README's ports (HTTP 9464, Postgres 5433), since the commands name them;
//!   the test fails at once, saying so, when one of them is taken.
//! - `$AIOPS_TOKEN` is the token the start printed, and the README's placeholder `aiops_…` in
//!   `export AIOPS_TOKEN=aiops_…` stands for it; `cargo run --release -p aiops-server --` in the
//!   other blocks is the same binary.
//! - Each other block runs with `bash -e -o pipefail` in that directory and must exit 0 (the
//!   README's `curl` lines use `-f`, so a refused request fails its block). [`NOT_RUN`] lists the
//!   blocks that are not run, each with its reason.
//!
//! Before the blocks, the test checks what the README promises of the demo: incidents and
//! pipeline outputs exist within a minute of the start (the backfill of history).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The README's long-running command, started by the test instead of run as a block.
const RUN_LINE: &str = "cargo run --release -p aiops-server -- run --demo";
/// How the README runs the `aiops` binary in the other blocks.
const CARGO_AIOPS: &str = "cargo run --release -p aiops-server --";
/// The README's stand-in for the printed token.
const TOKEN_PLACEHOLDER: &str = "aiops_…";
/// The ports the README's commands name.
const PORTS: [(u16, &str); 2] = [(9464, "HTTP"), (5433, "Postgres")];

/// Blocks that are not run: a text that picks the block out, and why it is not run.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "scripts/test.sh",
        "runs the whole test suite, this test included: it would recurse",
    ),
    (
        "aiops-bench -- nab",
        "benchmarks over the NAB and Loghub data sets, which are not in the repository \
         (../shared/data) and take minutes each; the bench crate's tests cover the harness",
    ),
];

/// The tools the run blocks call, besides `bash` and the `aiops` binary.
const TOOLS: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("psql", "postgresql-client"),
    ("amtool", "prometheus-alertmanager"),
    ("grep", "grep"),
];

/// The contents of every ```sh block of `readme`, in order.
fn sh_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "README.md: a ```sh block is not closed");
    blocks
}

/// The engine started by the test; stopped (SIGINT, then killed) when dropped.
struct Engine {
    child: Child,
    /// Everything it printed on stdout and stderr, line by line.
    output: Arc<Mutex<Vec<String>>>,
}

impl Engine {
    fn start(bin: &Path, dir: &Path) -> Engine {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--demo"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A fresh start as the README's: none of the caller's aiops settings.
        for (k, _) in std::env::vars() {
            if k.starts_with("AIOPS_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().expect("start aiops run --demo");
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for pipe in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    out.lock().unwrap().push(line);
                }
            });
        }
        Engine { child, output }
    }

    fn printed(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// The last lines it printed, for a failure message.
    fn tail(&self) -> String {
        let lines = self.printed();
        let from = lines.len().saturating_sub(40);
        lines[from..].join("\n")
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `curl` of a path of the engine with the token; `None` unless it answers 2xx.
fn api(token: &str, method: &str, path: &str, body: Option<&str>) -> Option<String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sf", "-m", "10", "-X", method])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"));
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    let out = cmd
        .arg(format!("http://127.0.0.1:9464{path}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `f` every half second until it returns `Some`, for at most `within`.
fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The rows of a `POST /api/sql` answer (whatever its exact shape: `rows` as arrays or objects).
fn sql_rows(token: &str, sql: &str) -> Option<Vec<serde_json::Value>> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let v: serde_json::Value =
        serde_json::from_str(&api(token, "POST", "/api/sql", Some(&body))?).ok()?;
    v["rows"].as_array().cloned()
}

/// The first number in a SQL result row.
fn first_number(row: &serde_json::Value) -> Option<f64> {
    match row {
        serde_json::Value::Array(a) => a.first().and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        }),
        serde_json::Value::Object(o) => o.values().next().and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        }),
        _ => None,
    }
}

fn run_block(block: &str, dir: &Path, bin: &Path, token: &str) -> Output {
    let script = block
        .replace(CARGO_AIOPS, &bin.display().to_string())
        .replace(TOKEN_PLACEHOLDER, token);
    let mut cmd = Command::new("bash");
    cmd.args(["-e", "-o", "pipefail", "-c", &script])
        .current_dir(dir)
        .env("AIOPS_TOKEN", token)
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("AIOPS_") && k != "AIOPS_TOKEN" {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run bash")
}

#[test]
fn every_sh_block_of_the_readme_works_as_written_on_a_fresh_start() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let blocks = sh_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "README.md has {} sh blocks",
        blocks.len()
    );

    // Which blocks run, which one is the engine, which are exceptions (each must still match).
    assert_eq!(
        blocks[0].trim(),
        RUN_LINE,
        "the README's first command starts the demo"
    );
    let mut to_run = Vec::new();
    let mut excepted = vec![false; NOT_RUN.len()];
    for (i, b) in blocks.iter().enumerate().skip(1) {
        assert!(
            !b.contains(RUN_LINE),
            "block {i} starts a second engine: {b}"
        );
        match NOT_RUN.iter().position(|(pick, _)| b.contains(pick)) {
            Some(n) => {
                excepted[n] = true;
                eprintln!("not run (block {i}): {}: {}", b.trim(), NOT_RUN[n].1);
            }
            None => to_run.push((i, b)),
        }
    }
    for (n, seen) in excepted.iter().enumerate() {
        assert!(
            seen,
            "NOT_RUN names a block the README no longer has: {:?}",
            NOT_RUN[n].0
        );
    }
    for (tool, package) in TOOLS {
        let found = Command::new("bash")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "`{tool}` is not installed: the README's blocks call it (Debian package {package}; \
             scripts/install-test-deps.sh should install it)"
        );
    }
    for (port, what) in PORTS {
        if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
            panic!(
                "port {port} ({what}) is taken ({e}): the README's commands name it, so this test \
                 runs the engine there; stop whatever listens on it (an `aiops run`?) and run again"
            );
        }
    }

    // A fresh directory, as a new user's checkout: the shipped pipelines, no data yet.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        repo.join("pipelines").canonicalize().unwrap(),
        dir.path().join("pipelines"),
    )
    .unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_aiops"));
    let started = Instant::now();
    let engine = Engine::start(&bin, dir.path());

    let token = wait_for(Duration::from_secs(120), || {
        engine.printed().iter().find_map(|l| {
            let t = l.trim();
            (t.starts_with("aiops_") && !t.contains(' ')).then(|| t.to_string())
        })
    })
    .unwrap_or_else(|| panic!("no admin token printed:\n{}", engine.tail()));
    wait_for(Duration::from_secs(120), || {
        api(&token, "GET", "/api/health", None)
    })
    .unwrap_or_else(|| panic!("/api/health never answered:\n{}", engine.tail()));

    // The console's address as the README shows it. The line is printed by the server's start
    // (another part of issue 21): checked whenever a `console:` line is printed.
    if let Some(line) = engine
        .printed()
        .iter()
        .find(|l| l.trim_start().starts_with("console:"))
    {
        assert_eq!(line.trim(), "console: http://127.0.0.1:9464/");
        assert!(readme.contains(line.trim()), "the README shows {line:?}");
    }

    // The backfill: incidents and pipeline outputs within a minute of the start.
    let incidents = wait_for(Duration::from_secs(60), || {
        let body = api(&token, "GET", "/api/incidents?status=all", None)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let list = v
            .as_array()
            .or_else(|| v["incidents"].as_array())
            .cloned()?;
        (!list.is_empty()).then_some(list)
    })
    .unwrap_or_else(|| {
        panic!(
            "no incident {:?} after the start:\n{}",
            started.elapsed(),
            engine.tail()
        )
    });
    eprintln!(
        "{} incidents {:?} after the start",
        incidents.len(),
        started.elapsed()
    );
    let outputs = wait_for(Duration::from_secs(60), || {
        let rows = sql_rows(&token, "SELECT count(*) AS n FROM node_memory_1m")?;
        let n = rows.first().and_then(first_number)?;
        (n > 0.0).then_some(n)
    })
    .unwrap_or_else(|| {
        panic!(
            "no pipeline output (node_memory_1m) {:?} after the start:\n{}",
            started.elapsed(),
            engine.tail()
        )
    });
    eprintln!(
        "{outputs} node_memory_1m rows {:?} after the start",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(150),
        "history took {:?} to appear",
        started.elapsed()
    );

    for (i, block) in to_run {
        let out = run_block(block, dir.path(), &bin, &token);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "ran block {i} ({}, {} bytes of output):\n{}",
            out.status,
            stdout.len(),
            head(&stdout)
        );
        assert!(
            out.status.success(),
            "README block {i} failed ({}):\n{block}\n--- stdout (tail) ---\n{}\n--- stderr ---\n{}\n--- engine (tail) ---\n{}",
            out.status,
            tail(&stdout),
            tail(&stderr),
            engine.tail()
        );
    }
    drop(engine);
}

/// The last 3,000 characters of `s`.
fn tail(s: &str) -> &str {
    let mut from = s.len().saturating_sub(3_000);
    while !s.is_char_boundary(from) {
        from += 1;
    }
    &s[from..]
}

/// The first 600 characters of `s`.
fn head(s: &str) -> &str {
    let mut to = s.len().min(600);
    while !s.is_char_boundary(to) {
        to -= 1;
    }
    &s[..to]
}
