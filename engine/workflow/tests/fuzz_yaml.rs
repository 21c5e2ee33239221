//! Fuzzing of the workflow and auto-heal strategy loaders (issue 15): what `aiops workflow check`
//! and the workflow API run on a file ([`compile_text`], [`compile_strategies`]), fed mutated
//! examples (`pipelines/workflows/examples`, `pipelines/autoheal/examples` and
//! `tests/corpus/yaml/`) and generated YAML (anchors and aliases, alias bombs, deep nesting,
//! huge scalars, tags, several documents), a bounded number of cases per `cargo test` run.
//!
//! The property, for every text: the loader never panics, never overflows a 2 MiB stack (each
//! case runs on a thread of that size), returns within a time bound (default 3 s: a workflow
//! file is small, and the API loads one per request), and either refuses the text with a
//! [`CompileError`] naming the file and a line of it (1 ≤ line ≤ lines + 1) and a bounded
//! message, or returns a workflow (strategies) whose id follows the id rule
//! (`[a-z0-9][a-z0-9_-]{0,62}`) with at least one trigger (remedy) and one item.
//!
//! Corpus files (`tests/corpus/yaml/`) are replayed first on every run; `crash-*` files are
//! earlier failures, written there by this harness (a stack overflow aborts the process, so each
//! case is first written to `$CARGO_TARGET_TMPDIR/fuzz_yaml-<phase>.inflight.yaml` and the next
//! run saves it); `known-bug-*` files belong to the regression tests of fixed bugs at the end.
//!
//! Knobs (as in `connectors/tests/fuzz_decoders.rs`): `AIOPS_FUZZ_SEED`, `AIOPS_FUZZ_CASES`
//! (default 150 per phase), `AIOPS_FUZZ_BUDGET_SECS` (default 40), `AIOPS_FUZZ_CASE_TIMEOUT_MS`
//! (default 3000).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aiops_workflow::autoheal::compile_strategies;
use aiops_workflow::{CompileError, Renderer, StaticCatalog, compile_text};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

const STACK: usize = 2 << 20;
/// Longest refusal message: `aiops workflow check` prints it and the API returns it.
const MAX_ERROR_BYTES: usize = 8192;
/// Longest generated text.
const MAX_TEXT: usize = 1 << 20;

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
        case_timeout: Duration::from_millis(env_u64("AIOPS_FUZZ_CASE_TIMEOUT_MS").unwrap_or(3_000)),
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
    for (i, part) in [s.seed, fnv(b"yaml"), fnv(phase.as_bytes()), 0x5eed]
        .into_iter()
        .enumerate()
    {
        key[i * 8..(i + 1) * 8].copy_from_slice(&part.to_le_bytes());
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        max_shrink_time: 30_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

// ---------------------------------------------------------------------------------------------
// The property.

/// The providers and secrets the examples use.
fn catalog() -> StaticCatalog {
    let mut providers = BTreeMap::new();
    for (name, kind) in [
        ("pagerduty", "pagerduty"),
        ("slack", "slack"),
        ("local", "exec"),
        ("hook", "webhook"),
        ("rollback", "webhook"),
        ("gha", "github_actions"),
        ("oncall-slack", "slack"),
        ("jira", "jira"),
    ] {
        providers.insert(name.to_string(), kind.to_string());
    }
    StaticCatalog {
        providers,
        secrets: vec!["PD_KEY".into(), "SLACK_TOKEN".into()],
    }
}

fn id_ok(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
}

const FILE: &str = "fuzz.yaml";

fn check_error(text: &str, e: &CompileError) -> Result<(), String> {
    if e.file != FILE {
        return Err(format!("error names file {:?}, not {FILE:?}", e.file));
    }
    let lines = text.lines().count() + 1;
    if e.line == 0 || e.line > lines {
        return Err(format!(
            "error line {} outside 1..={lines}: {}",
            e.line, e.message
        ));
    }
    if e.message.trim().is_empty() {
        return Err("an error without a message".into());
    }
    if e.message.len() > MAX_ERROR_BYTES {
        let head: String = e.message.chars().take(200).collect();
        return Err(format!(
            "message of {} bytes (more than {MAX_ERROR_BYTES}): {head:?}…",
            e.message.len()
        ));
    }
    Ok(())
}

/// Both loaders on one text; `Ok(true)` when one of them accepted it.
fn property(text: &str) -> Result<bool, String> {
    let cat = catalog();
    let r = Renderer::default();
    let mut accepted = false;
    match compile_text(FILE, text, &cat, &r) {
        Ok(w) => {
            if !id_ok(&w.id) {
                return Err(format!("workflow id {:?} accepted", w.id));
            }
            if w.triggers.is_empty() || w.items.is_empty() {
                return Err("a workflow without triggers or items accepted".into());
            }
            accepted = true;
        }
        Err(e) => check_error(text, &e).map_err(|m| format!("compile_text: {m}"))?,
    }
    match compile_strategies(FILE, text, &cat, &r) {
        Ok(ss) => {
            for s in &ss {
                if !id_ok(&s.id) {
                    return Err(format!("strategy id {:?} accepted", s.id));
                }
                if s.items.is_empty() {
                    return Err(format!("strategy {:?} without remedies accepted", s.id));
                }
            }
            accepted = true;
        }
        Err(e) => check_error(text, &e).map_err(|m| format!("compile_strategies: {m}"))?,
    }
    Ok(accepted)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into())
}

fn inflight(phase: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz_yaml-{phase}.inflight.yaml"))
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/yaml")
}

fn save_crash(text: &str) -> PathBuf {
    let path = corpus_dir().join(format!("crash-{:016x}.yaml", fnv(text.as_bytes())));
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("could not write {}: {e}", path.display());
    }
    path
}

fn recover_inflight(phase: &str) {
    let f = inflight(phase);
    if let Ok(text) = std::fs::read_to_string(&f) {
        let _ = std::fs::remove_file(&f);
        let path = save_crash(&text);
        panic!(
            "yaml/{phase}: the previous run aborted (stack overflow?) on the text now saved to {}",
            path.display()
        );
    }
}

/// Runs the property on a fresh 2 MiB thread within the case timeout.
fn check_case(phase: &str, text: &str) -> Result<bool, String> {
    let _ = std::fs::write(inflight(phase), text);
    let (tx, rx) = sync_channel(1);
    let t = text.to_string();
    let started = Instant::now();
    std::thread::Builder::new()
        .name("fuzz-yaml".into())
        .stack_size(STACK)
        .spawn(move || {
            let r = std::panic::catch_unwind(|| property(&t));
            let _ = tx.send(r.map_err(|p| panic_message(p.as_ref())));
        })
        .map_err(|e| format!("could not start the case thread: {e}"))?;
    let out = match rx.recv_timeout(settings().case_timeout) {
        Ok(Ok(r)) => r,
        Ok(Err(msg)) => Err(format!("panicked: {msg}")),
        Err(RecvTimeoutError::Timeout) => Err(format!(
            "did not return within {:?} (AIOPS_FUZZ_CASE_TIMEOUT_MS) for {} bytes",
            settings().case_timeout,
            text.len()
        )),
        Err(RecvTimeoutError::Disconnected) => {
            Err("the case thread ended without an answer".into())
        }
    };
    let _ = std::fs::remove_file(inflight(phase));
    out.map_err(|e| format!("{e} (after {:?})", started.elapsed()))
}

fn fuzz_phase(phase: &str, strategy: BoxedStrategy<String>, cases: u32) {
    recover_inflight(phase);
    let mut runner = runner(phase, cases);
    let (ran, accepted, skipped) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    let result = runner.run(&strategy, |text| {
        if Instant::now() > deadline() {
            skipped.set(skipped.get() + 1);
            return Ok(());
        }
        ran.set(ran.get() + 1);
        match check_case(phase, &text) {
            Ok(ok) => {
                accepted.set(accepted.get() + u32::from(ok));
                Ok(())
            }
            Err(e) => Err(TestCaseError::fail(e)),
        }
    });
    let (ran, accepted, skipped) = (ran.get(), accepted.get(), skipped.get());
    eprintln!(
        "fuzz yaml/{phase}: seed {:#x}, {ran} cases run, {accepted} accepted{}",
        settings().seed,
        if skipped > 0 {
            format!(", {skipped} skipped (AIOPS_FUZZ_BUDGET_SECS)")
        } else {
            String::new()
        }
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, text)) => {
            let path = save_crash(&text);
            let head: String = text.chars().take(300).collect();
            panic!(
                "yaml/{phase}: {reason}\ninput saved to {} (replayed on every run)\n{head:?}\nreproduce: AIOPS_FUZZ_SEED={:#x}",
                path.display(),
                settings().seed
            );
        }
        Err(TestError::Abort(reason)) => panic!("yaml/{phase}: aborted: {reason}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds and the corpus.

fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

/// The shipped examples: real workflow and strategy files.
fn examples() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let mut v: Vec<String> = yaml_files(&root.join("workflows/examples"))
        .into_iter()
        .chain(yaml_files(&root.join("autoheal/examples")))
        .map(|(_, t)| t)
        .collect();
    v.extend(
        yaml_files(&corpus_dir())
            .into_iter()
            .filter(|(n, _)| n.starts_with("seed-"))
            .map(|(_, t)| t),
    );
    v
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Snippets of YAML that stress a loader.
fn snippets() -> Vec<&'static str> {
    vec![
        "&a ",
        "*a",
        "<<: *a",
        "? [complex, key]\n: v",
        "!!binary aGVsbG8=",
        "!!python/object:os.system ls",
        "!custom",
        "!!str",
        "!!int 0x7fffffffffffffffff",
        "!!float .nan",
        "---\n",
        "...\n",
        "%YAML 1.1\n---\n",
        "%TAG ! tag:evil:\n---\n",
        "{",
        "[",
        "}",
        "]",
        "- ",
        ": ",
        "|\n  block\n",
        ">-\n  folded\n",
        "\"\\u0000\"",
        "\"\\uD800\"",
        "'it''s'",
        "\t",
        "\u{feff}",
        "\u{0}",
        "\u{85}",
        "\u{2028}",
        "~",
        "null",
        "yes",
        "0o777",
        "1e999",
        "-.inf",
        "9223372036854775808",
        "{{ secrets.PD_KEY }}",
        "{{ alert.labels }}",
        "{% for x in range(999999999) %}x{% endfor %}",
        "{{ 'a' * 999999999 }}",
        "id: ..",
        "id: ../../etc",
        "id: UPPER.case",
        "type: alert",
        "type: schedule\n      cron: \"* * * * * * *\"",
        "timeout: 99999999999999d",
        "retry: {count: 4294967296, backoff: -1s}",
        "concurrency: 18446744073709551616",
        "foreach: \"{{ steps.x.results }}\"",
    ]
}

/// One line-level or byte-level edit; positions are taken modulo the counts.
#[derive(Debug, Clone)]
enum Edit {
    /// Inserts a snippet at a line start, indented like that line.
    InsertLine(usize, &'static str),
    /// Appends a snippet to the end of a line.
    AppendToLine(usize, &'static str),
    DeleteLine(usize),
    DuplicateLine(usize, u16),
    /// Changes a line's indentation (`+`/`-` spaces, or a tab).
    Indent(usize, i8),
    SwapLines(usize, usize),
    /// Replaces a character.
    Char(usize, char),
    Truncate(usize),
    /// Repeats a slice of the text in place.
    Repeat(usize, u16, u16),
}

fn boundary(s: &str, p: usize) -> usize {
    let mut p = p % (s.len() + 1);
    while !s.is_char_boundary(p) {
        p -= 1;
    }
    p
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for e in edits {
        let n = lines.len().max(1);
        if lines.is_empty() {
            lines.push(String::new());
        }
        match e {
            Edit::InsertLine(i, s) => {
                let i = i % n;
                let indent: String = lines[i].chars().take_while(|c| *c == ' ').collect();
                lines.insert(i, format!("{indent}{s}"));
            }
            Edit::AppendToLine(i, s) => lines[i % n].push_str(s),
            Edit::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i, t) => {
                let i = i % n;
                let l = lines[i].clone();
                let t = usize::from(*t).min(MAX_TEXT / (l.len() + 1));
                lines.splice(i..i, std::iter::repeat_n(l, t));
            }
            Edit::Indent(i, d) => {
                let l = &mut lines[i % n];
                if *d == 0 {
                    l.insert(0, '\t');
                } else if *d > 0 {
                    l.insert_str(0, &" ".repeat(usize::from(d.unsigned_abs())));
                } else {
                    let k = l
                        .chars()
                        .take_while(|c| *c == ' ')
                        .count()
                        .min(usize::from(d.unsigned_abs()));
                    l.drain(..k);
                }
            }
            Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
            Edit::Char(p, c) => {
                let mut t = lines.join("\n");
                if !t.is_empty() {
                    let a = boundary(&t, *p);
                    if let Some(old) = t[a..].chars().next() {
                        t.replace_range(a..a + old.len_utf8(), &c.to_string());
                    }
                }
                lines = t.split('\n').map(String::from).collect();
            }
            Edit::Truncate(p) => {
                let mut t = lines.join("\n");
                let a = boundary(&t, *p);
                t.truncate(a);
                lines = t.split('\n').map(String::from).collect();
            }
            Edit::Repeat(p, l, times) => {
                let mut t = lines.join("\n");
                let a = boundary(&t, *p);
                let b = boundary(&t, (a + usize::from(*l)).min(t.len()));
                if b > a {
                    let chunk = t[a..b].to_string();
                    let k = usize::from(*times).min(MAX_TEXT / chunk.len());
                    t.insert_str(b, &chunk.repeat(k));
                }
                lines = t.split('\n').map(String::from).collect();
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    if out.len() > MAX_TEXT {
        let a = boundary(&out, MAX_TEXT);
        out.truncate(a);
    }
    out
}

fn mutated() -> BoxedStrategy<String> {
    let seeds = examples();
    assert!(!seeds.is_empty(), "no workflow examples");
    let n = seeds.len();
    let snip = || prop::sample::select(snippets());
    let edit = prop_oneof![
        4 => (any::<usize>(), snip()).prop_map(|(i, s)| Edit::InsertLine(i, s)),
        3 => (any::<usize>(), snip()).prop_map(|(i, s)| Edit::AppendToLine(i, s)),
        2 => any::<usize>().prop_map(Edit::DeleteLine),
        1 => (any::<usize>(), 1u16..2_000).prop_map(|(i, t)| Edit::DuplicateLine(i, t)),
        2 => (any::<usize>(), -8i8..8).prop_map(|(i, d)| Edit::Indent(i, d)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        2 => (any::<usize>(), any::<char>()).prop_map(|(p, c)| Edit::Char(p, c)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), 1u16..64, 1u16..1_000).prop_map(|(p, l, t)| Edit::Repeat(p, l, t)),
    ];
    (0..n, prop::collection::vec(edit, 1..6))
        .prop_map(move |(i, edits)| apply(&seeds[i], &edits))
        .boxed()
}

/// An alias bomb: `levels` anchors, each a list of `fanout` aliases of the one before.
fn alias_bomb(levels: usize, fanout: usize, inside_workflow: bool) -> String {
    let mut s = String::new();
    if inside_workflow {
        s.push_str("workflow:\n  id: bomb\n  description: x\n  triggers: [{type: manual}]\n  x:\n");
    }
    let pad = if inside_workflow { "    " } else { "" };
    s.push_str(&format!("{pad}l0: &l0 [\"lol\", \"lol\"]\n"));
    for i in 1..levels {
        let refs = vec![format!("*l{}", i - 1); fanout].join(", ");
        s.push_str(&format!("{pad}l{i}: &l{i} [{refs}]\n"));
    }
    s
}

/// A workflow whose step `with` holds the value.
fn workflow_with(value: &str) -> String {
    format!(
        "workflow:\n  id: gen\n  triggers:\n    - type: manual\n  actions:\n    - name: a\n      provider:\n        type: slack\n        config: \"{{{{ providers.slack }}}}\"\n        with:\n          text: {value}\n"
    )
}

fn generated() -> BoxedStrategy<String> {
    prop_oneof![
        // Alias bombs from tiny to far past any sane limit.
        3 => (1usize..12, 1usize..12, any::<bool>())
            .prop_map(|(l, f, w)| alias_bomb(l, f, w)),
        // Deep nesting, flow and block.
        2 => (1usize..20_000).prop_map(|n| workflow_with(&format!("{}x{}", "[".repeat(n), "]".repeat(n)))),
        1 => (1usize..20_000).prop_map(|n| workflow_with(&format!("{}x{}", "{a: ".repeat(n), "}".repeat(n)))),
        1 => (1usize..3_000).prop_map(|n| {
            let mut s = String::from("workflow:\n");
            for i in 0..n {
                s.push_str(&" ".repeat(2 * (i + 1)));
                s.push_str("k:\n");
            }
            s
        }),
        // Huge scalars in every spot.
        2 => (1usize..(1 << 20), prop::sample::select(vec!["id", "description", "text", "key", "type"]))
            .prop_map(|(n, field)| {
                let big = "a".repeat(n);
                if field == "text" {
                    workflow_with(&big)
                } else {
                    format!("workflow:\n  {field}: {big}\n  id: x\n  triggers: [{{type: manual}}]\n")
                }
            }),
        // Many keys, many documents, random anchors and aliases in a real workflow.
        1 => (1usize..50_000).prop_map(|n| {
            let mut s = String::from("workflow:\n  id: many\n  triggers: [{type: manual}]\n");
            for i in 0..n {
                s.push_str(&format!("  k{i}: v\n"));
            }
            s
        }),
        1 => (1usize..2_000).prop_map(|n| "workflow: {id: a}\n---\n".repeat(n)),
        2 => prop::collection::vec((0usize..8, prop::sample::select(snippets())), 1..20)
            .prop_map(|parts| {
                let mut s = String::from("workflow:\n  id: &id gen\n  triggers: &t [{type: manual}]\n  actions:\n");
                for (k, snip) in parts {
                    s.push_str(&format!(
                        "    - name: &n{k} n{k}\n      provider: &p{k}\n        type: slack\n        with: {{text: {snip}}}\n    - {{name: x{k}, provider: *p{k}}}\n"
                    ));
                }
                s
            }),
        // Random text.
        1 => any::<String>(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// The examples and every corpus file hold the property; the examples compile.
#[test]
fn yaml_corpus_replays() {
    let mut failures = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    for (name, text) in yaml_files(&root.join("workflows/examples"))
        .into_iter()
        .chain(yaml_files(&root.join("autoheal/examples")))
    {
        match check_case("corpus", &text) {
            Ok(true) => {}
            Ok(false) => failures.push(format!("{name}: the example does not compile")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for (name, text) in yaml_files(&corpus_dir()) {
        if name.starts_with("known-bug-") {
            continue;
        }
        if let Err(e) = check_case("corpus", &text) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "YAML corpus:\n{}", failures.join("\n"));
}

#[test]
fn yaml_mutated_examples() {
    fuzz_phase("mutated", mutated(), settings().cases);
}

#[test]
fn yaml_generated() {
    fuzz_phase("generated", generated(), settings().cases);
}

/// Fixed bug `message-echo` (messages quoting the input were unbounded; now cut at 1,024 characters): errors must stay under the message bound.
#[test]
fn known_bug_message_echo() {
    let mut seen = 0;
    for (name, text) in yaml_files(&corpus_dir()) {
        if !name.starts_with("known-bug-message-echo") {
            continue;
        }
        seen += 1;
        let e = compile_text(FILE, &text, &catalog(), &Renderer::default()).expect_err(&name);
        assert!(
            e.message.len() <= MAX_ERROR_BYTES,
            "{name}: {} bytes",
            e.message.len()
        );
    }
    assert!(seen > 0);
}
