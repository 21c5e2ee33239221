//! Fuzzing of every push decoder of the registry (issue 15): a property-test harness that runs a
//! bounded number of cases inside `cargo test`, and a corpus that is replayed on every run.
//!
//! For each decoder of [`registry::push_endpoints`]:
//! 1. every file of `tests/corpus/<decoder>/` is replayed (seeds must decode; `crash-*` files are
//!    regressions of earlier failures; `known-bug-*` files belong to the regression tests of fixed bugs at the
//!    end, one per open bug);
//! 2. structure-aware cases: a seed document with random hostile edits (huge numbers, NaN/Inf
//!    strings, empty/NUL/unicode/reserved label names, deep nesting, long strings, duplicate keys,
//!    wrong types), in random JSON/NDJSON layouts, with random `Content-Type` and
//!    `Content-Encoding` headers; for remote_write, generated `WriteRequest`s with hostile labels,
//!    timestamps and values;
//! 3. mutated seeds: byte flips, truncation, splicing, repetition, insertion of tokens (for
//!    remote_write also of the decompressed protobuf, compressed again);
//! 4. raw random bytes.
//!
//! The property: the decoder never panics, answers within a time bound, decodes the same input
//! the same way twice, and either refuses it with an error whose `reason()` is a client error
//! (never `internal`) or returns batches that are consistent: the kind's schema, at least one row,
//! `time_range` equal to the rows' times, every time within the ingest window, label names
//! non-empty, unique, without control characters or the reserved `__` prefix, values without NUL
//! and within the configured sizes.
//!
//! Each decode runs on its own thread with a 2 MiB stack (what a server thread has), so a stack
//! overflow or a hang is caught and names its input. A failing input (shrunk by proptest) is
//! written to the decoder's corpus directory as `crash-<hash>.bin` (with a `.headers` file when
//! its headers matter) and replayed on every later run.
//!
//! Knobs: `AIOPS_FUZZ_SEED` (decimal or `0x…`; default fixed, so CI is reproducible),
//! `AIOPS_FUZZ_CASES` (structured and mutated cases per decoder; default 500, raw cases are half
//! of it), `AIOPS_FUZZ_BUDGET_SECS` (wall-clock budget of all random cases of this file; default
//! 40, what is left over is skipped with a note) and `AIOPS_FUZZ_CASE_TIMEOUT_MS` (default
//! 10000: one decode taking longer is a failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_connectors::registry;
use aiops_connectors::sources::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use aiops_connectors::sources::{DecodeError, IngestLimits, PushDecoder, PushRequest, SourceBatch};
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use aiops_schemas::{Kind, schema_for};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use prost::Message;
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The ingest time of every case: 2026-11-24T10:10:00Z. The seeds' times lie shortly before it,
/// so they are inside the default window and structure-aware cases reach the batch builders.
const NOW_MS: i64 = 1_795_515_000_000;
/// Largest body a case may have (bodies are capped after every edit).
const MAX_BODY: usize = 1 << 20;
/// The stack of the thread each decode runs on: a Rust thread's (and a tokio worker's) default.
const STACK: usize = 2 << 20;

// ---------------------------------------------------------------------------------------------
// Settings and the per-run budget.

/// How a run is configured (environment, else defaults fit for CI).
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
        cases: env_u64("AIOPS_FUZZ_CASES").map_or(500, |n| n.clamp(1, 1 << 24) as u32),
        budget: Duration::from_secs(env_u64("AIOPS_FUZZ_BUDGET_SECS").unwrap_or(40)),
        case_timeout: Duration::from_millis(
            env_u64("AIOPS_FUZZ_CASE_TIMEOUT_MS").unwrap_or(10_000),
        ),
    })
}

/// When the random cases of this test binary stop (tests of one file run in parallel and share
/// it, so the whole file stays within the budget on a loaded machine).
fn deadline() -> Instant {
    static D: OnceLock<Instant> = OnceLock::new();
    *D.get_or_init(|| Instant::now() + settings().budget)
}

/// FNV-1a, for stable per-decoder RNG streams and crash file names.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A runner whose RNG depends only on the seed, the decoder and the phase.
fn runner(decoder: &str, phase: &str, cases: u32) -> TestRunner {
    let s = settings();
    let mut key = [0u8; 32];
    for (i, part) in [
        s.seed,
        fnv(decoder.as_bytes()),
        fnv(phase.as_bytes()),
        0x5eed,
    ]
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
// Cases and how one is run.

/// One request: body and headers.
#[derive(Clone, PartialEq)]
struct Case {
    body: Vec<u8>,
    content_type: Option<String>,
    content_encoding: Option<String>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = &self.body[..self.body.len().min(160)];
        write!(
            f,
            "Case {{ content_type: {:?}, content_encoding: {:?}, body ({} bytes): {:?}{} }}",
            self.content_type,
            self.content_encoding,
            self.body.len(),
            String::from_utf8_lossy(head),
            if head.len() < self.body.len() {
                "…"
            } else {
                ""
            }
        )
    }
}

/// What a decoder did with a case.
enum Outcome {
    /// It returned, twice (determinism is checked by comparing the two).
    Returned(
        Result<Vec<SourceBatch>, DecodeError>,
        Result<Vec<SourceBatch>, DecodeError>,
        Duration,
    ),
    /// It panicked (a stack overflow aborts the process instead; the crash file written before
    /// each run's first case is how that one is found: see [`run_case`]).
    Panicked(String),
    /// It did not return within the case timeout.
    Hung,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into())
}

fn request<'a>(case: &'a Case) -> PushRequest<'a> {
    PushRequest {
        content_type: case.content_type.as_deref(),
        content_encoding: case.content_encoding.as_deref(),
        now_ms: NOW_MS,
        limits: IngestLimits::default(),
    }
}

/// Decodes `case` twice on a fresh thread with a server-sized stack, catching panics and hangs.
fn run_case(decoder: &Arc<dyn PushDecoder>, case: &Case, timeout: Duration) -> Outcome {
    let (tx, rx) = sync_channel(1);
    let d = Arc::clone(decoder);
    let c = case.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("fuzz-{}", decoder.name()))
        .stack_size(STACK)
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let t = Instant::now();
                let a = d.decode_bounded(&c.body, &request(&c));
                let elapsed = t.elapsed();
                let b = d.decode_bounded(&c.body, &request(&c));
                (a, b, elapsed)
            }));
            let _ = tx.send(r.map_err(|p| panic_message(p.as_ref())));
        });
    if let Err(e) = spawned {
        return Outcome::Panicked(format!("could not start the decode thread: {e}"));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok((a, b, t))) => Outcome::Returned(a, b, t),
        Ok(Err(msg)) => Outcome::Panicked(msg),
        Err(RecvTimeoutError::Timeout) => Outcome::Hung,
        Err(RecvTimeoutError::Disconnected) => {
            Outcome::Panicked("decode thread ended without an answer".into())
        }
    }
}

/// `Content-Type` and `Content-Encoding` of a case.
type Headers = (Option<String>, Option<String>);

/// The kind each decoder produces.
fn kind_of(decoder: &str) -> Kind {
    match decoder {
        "remote_write" | "json_metrics" | "otlp_metrics" => Kind::Metrics,
        "json_logs" | "otlp_logs" => Kind::Logs,
        "json_events" => Kind::Events,
        _ => Kind::Alerts,
    }
}

/// The headers a real sender of this decoder's route sends, by file extension of a seed.
fn default_headers(decoder: &str, ext: &str) -> (Option<String>, Option<String>) {
    let ct = match (decoder, ext) {
        ("remote_write", _) => "application/x-protobuf",
        ("cloudwatch", _) => "text/plain; charset=UTF-8",
        (_, "ndjson") => "application/x-ndjson",
        _ => "application/json",
    };
    let enc = (decoder == "remote_write").then(|| "snappy".to_string());
    (Some(ct.to_string()), enc)
}

// ---------------------------------------------------------------------------------------------
// The property.

fn prometheus_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Checks one label map column: per row, names valid and unique, values clean and bounded.
fn check_map_column(
    batch: &RecordBatch,
    column: &str,
    limits: &IngestLimits,
    prometheus: bool,
    strict: bool,
) -> Result<(), String> {
    let Some(col) = batch.column_by_name(column) else {
        return Err(format!("no column {column:?}"));
    };
    let map = col.as_map();
    for row in 0..batch.num_rows() {
        let entries = map.value(row);
        let keys = entries.column(0).as_string::<i32>();
        let values = entries.column(1).as_string::<i32>();
        if strict && keys.len() > limits.max_labels {
            return Err(format!(
                "row {row}: {} {column}, more than ingest.max_labels = {}",
                keys.len(),
                limits.max_labels
            ));
        }
        let mut seen = HashSet::new();
        for i in 0..keys.len() {
            if keys.is_null(i) || values.is_null(i) {
                return Err(format!("row {row}: a null key or value in {column}"));
            }
            let (k, v) = (keys.value(i), values.value(i));
            if !strict {
                continue;
            }
            if k.is_empty() {
                return Err(format!("row {row}: an empty name in {column}"));
            }
            if k.starts_with("__") {
                return Err(format!("row {row}: reserved name {k:?} in {column}"));
            }
            if k.chars().any(char::is_control) {
                return Err(format!(
                    "row {row}: name {k:?} in {column} has a control character"
                ));
            }
            if prometheus && !prometheus_name(k) {
                return Err(format!(
                    "row {row}: {k:?} in {column} is not a Prometheus name"
                ));
            }
            if k.len() > limits.max_label_name_bytes || v.len() > limits.max_label_value_bytes {
                return Err(format!(
                    "row {row}: {column} entry {k:?} over the size limits"
                ));
            }
            if v.contains('\0') {
                return Err(format!("row {row}: value of {k:?} in {column} has a NUL"));
            }
            if !seen.insert(k) {
                return Err(format!("row {row}: name {k:?} twice in {column}"));
            }
        }
    }
    Ok(())
}

/// Checks the batches of an accepted request.
fn check_batches(decoder: &str, out: &[SourceBatch]) -> Result<(), String> {
    let limits = IngestLimits::default();
    let (oldest, newest) = (NOW_MS - limits.max_age_ms, NOW_MS + limits.max_future_ms);
    let kind = kind_of(decoder);
    for (n, sb) in out.iter().enumerate() {
        let b = &sb.batch;
        let at = |m: String| format!("batch {n}: {m}");
        if sb.kind != kind {
            return Err(at(format!("kind {:?}, expected {kind:?}", sb.kind)));
        }
        if b.num_rows() == 0 {
            return Err(at(
                "an empty batch (a request without rows yields none)".into()
            ));
        }
        if b.schema().fields() != schema_for(kind).fields() {
            return Err(at(format!("schema differs from the {kind:?} schema")));
        }
        let times = b.column(0).as_primitive::<TimestampMillisecondType>();
        if times.null_count() > 0 {
            return Err(at("a null time".into()));
        }
        let (min, max) = times
            .values()
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
        if sb.time_range != Some((min, max)) {
            return Err(at(format!(
                "time_range {:?} but the rows span {:?}",
                sb.time_range,
                (min, max)
            )));
        }
        let mut ts_columns = vec!["time"];
        if kind == Kind::Alerts {
            ts_columns.extend(["starts_at", "ends_at"]);
        }
        for c in ts_columns {
            let col = b
                .column_by_name(c)
                .ok_or_else(|| at(format!("no column {c}")))?
                .as_primitive::<TimestampMillisecondType>();
            for i in 0..col.len() {
                if col.is_valid(i) && !(oldest..=newest).contains(&col.value(i)) {
                    return Err(at(format!(
                        "row {i}: {c} = {} ms is outside the ingest window [{oldest}, {newest}]",
                        col.value(i)
                    )));
                }
            }
        }
        match kind {
            Kind::Metrics => {
                check_map_column(b, "labels", &limits, true, true).map_err(at)?;
                let names = b
                    .column_by_name("name")
                    .ok_or_else(|| at("no column name".into()))?
                    .as_string::<i32>();
                for i in 0..names.len() {
                    let name = names.value(i);
                    if name.is_empty() || name.chars().any(char::is_control) {
                        return Err(at(format!("row {i}: metric name {name:?}")));
                    }
                }
            }
            Kind::Logs | Kind::Events => {
                check_map_column(b, "labels", &limits, false, true).map_err(at)?;
                check_map_column(b, "attributes", &limits, false, false).map_err(at)?;
                if kind == Kind::Events {
                    let types = b
                        .column_by_name("type")
                        .ok_or_else(|| at("no column type".into()))?
                        .as_string::<i32>();
                    for i in 0..types.len() {
                        let t = types.value(i).trim().to_ascii_lowercase();
                        if ["audit", "anomaly", "log_template"].contains(&t.as_str()) {
                            return Err(at(format!("row {i}: engine-owned event type {t:?}")));
                        }
                    }
                }
            }
            Kind::Alerts => {
                check_map_column(b, "labels", &limits, false, true).map_err(at)?;
                check_map_column(b, "annotations", &limits, false, false).map_err(at)?;
                let status = b
                    .column_by_name("status")
                    .ok_or_else(|| at("no column status".into()))?
                    .as_string::<i32>();
                for i in 0..status.len() {
                    if !matches!(status.value(i), "firing" | "resolved") {
                        return Err(at(format!("row {i}: status {:?}", status.value(i))));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Longest error message a refusal may carry: it goes into the HTTP answer and the log, so a
/// hostile field must not be echoed whole.
const MAX_ERROR_BYTES: usize = 4096;

/// Checks a refusal: a client error with a message that says something, stays bounded and
/// holds no raw control character (it goes into the log: a newline in it forges a log line).
fn check_error(e: &DecodeError) -> Result<(), String> {
    if e.reason() == "internal" {
        return Err(format!("internal error (a 5xx for bad input): {e}"));
    }
    let msg = e.to_string();
    if msg.trim().is_empty() {
        return Err("an error without a message".into());
    }
    message_bounded(&msg)
}

/// The size and control-character rule for messages.
fn message_bounded(msg: &str) -> Result<(), String> {
    let head: String = msg.chars().take(200).collect();
    if msg.len() > MAX_ERROR_BYTES {
        return Err(format!(
            "error message of {} bytes (more than {MAX_ERROR_BYTES}): {head:?}…",
            msg.len()
        ));
    }
    if msg.chars().any(char::is_control) {
        return Err(format!(
            "error message with a raw control character: {head:?}…"
        ));
    }
    Ok(())
}

/// The property, for one case. `Ok(true)` when the decoder accepted it.
fn check_case(decoder: &Arc<dyn PushDecoder>, case: &Case) -> Result<bool, String> {
    check_case_within(decoder, case, settings().case_timeout)
}

/// [`check_case`] with its own time bound.
fn check_case_within(
    decoder: &Arc<dyn PushDecoder>,
    case: &Case,
    timeout: Duration,
) -> Result<bool, String> {
    match run_case(decoder, case, timeout) {
        Outcome::Panicked(msg) => Err(format!("panicked: {msg}")),
        Outcome::Hung => Err(format!(
            "did not return within {timeout:?} (AIOPS_FUZZ_CASE_TIMEOUT_MS)"
        )),
        Outcome::Returned(a, b, elapsed) => {
            if elapsed > timeout {
                return Err(format!("took {elapsed:?}"));
            }
            match (&a, &b) {
                (Ok(x), Ok(y)) => {
                    let same = x.len() == y.len()
                        && x.iter().zip(y).all(|(p, q)| {
                            p.batch == q.batch && p.time_range == q.time_range && p.kind == q.kind
                        });
                    if !same {
                        return Err("the same input decoded to different batches twice".into());
                    }
                }
                (Err(x), Err(y)) if x == y => {}
                _ => {
                    return Err(format!(
                        "the same input decoded differently twice: {a:?} / {b:?}"
                    ));
                }
            }
            match a {
                Ok(out) => check_batches(decoder.name(), &out).map(|()| true),
                Err(e) => check_error(&e).map(|()| false),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus.

fn corpus_dir(decoder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(decoder)
}

/// A corpus file as a case: its body, and its headers from `<file>.headers` (`content-type: …`,
/// `content-encoding: …` lines) or the defaults of its extension.
fn load_case(decoder: &str, path: &Path) -> Case {
    let body = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let (mut content_type, mut content_encoding) = default_headers(decoder, ext);
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".headers");
    if let Ok(text) = std::fs::read_to_string(&sidecar) {
        (content_type, content_encoding) = (None, None);
        for line in text.lines() {
            // An escaped value (`\u{0}`, `\n`) is written with Debug quoting.
            let parse = |v: &str| serde_json::from_str::<String>(v.trim()).ok();
            if let Some(v) = line.strip_prefix("content-type: ") {
                content_type = parse(v);
            } else if let Some(v) = line.strip_prefix("content-encoding: ") {
                content_encoding = parse(v);
            }
        }
    }
    Case {
        body,
        content_type,
        content_encoding,
    }
}

/// Corpus files of a decoder (sorted, sidecars left out), with whether each is a seed.
fn corpus_files(decoder: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(decoder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().and_then(|e| e.to_str()) != Some("headers"))
        .collect();
    files.sort();
    files
}

fn file_name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// Writes a failing case to the corpus, so every later run replays it; returns its path.
fn save_crash(decoder: &str, case: &Case) -> PathBuf {
    let mut key = case.body.clone();
    key.extend(case.content_type.as_deref().unwrap_or("").as_bytes());
    key.extend(case.content_encoding.as_deref().unwrap_or("").as_bytes());
    let path = corpus_dir(decoder).join(format!("crash-{:016x}.bin", fnv(&key)));
    if let Err(e) = std::fs::write(&path, &case.body) {
        eprintln!("could not write {}: {e}", path.display());
    }
    let q = |v: &Option<String>| serde_json::to_string(v).unwrap_or_default();
    let headers = format!(
        "content-type: {}\ncontent-encoding: {}\n",
        q(&case.content_type),
        q(&case.content_encoding)
    );
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".headers");
    let _ = std::fs::write(PathBuf::from(sidecar), headers);
    path
}

fn decoder(name: &str) -> Arc<dyn PushDecoder> {
    registry::push_endpoints()
        .into_iter()
        .find(|e| e.decoder.name() == name)
        .map(|e| e.decoder)
        .unwrap_or_else(|| panic!("no push decoder named {name} in the registry"))
}

/// The seeds of a decoder: every corpus file that is neither a crash nor a known bug.
fn seeds(name: &str) -> Vec<(String, Case)> {
    corpus_files(name)
        .into_iter()
        .filter(|p| !file_name(p).starts_with("crash-") && !file_name(p).starts_with("known-bug-"))
        .map(|p| (file_name(&p).to_string(), load_case(name, &p)))
        .collect()
}

/// Replays the corpus: seeds must be accepted (they are real payloads), every file must hold
/// the property.
fn replay_corpus(name: &str, d: &Arc<dyn PushDecoder>) {
    let mut failures = Vec::new();
    let files = corpus_files(name);
    assert!(!files.is_empty(), "no corpus for {name}");
    for path in files {
        let f = file_name(&path).to_string();
        if f.starts_with("known-bug-") {
            continue;
        }
        let case = load_case(name, &path);
        match check_case(d, &case) {
            Ok(accepted) => {
                if !accepted && !f.starts_with("crash-") {
                    let why = d.decode_bounded(&case.body, &request(&case)).err();
                    failures.push(format!("{f}: a seed is refused: {why:?}"));
                }
            }
            Err(e) => failures.push(format!("{f}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: corpus replay failed:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile values.

/// Formats Unix ms as RFC 3339 with a chosen offset and fraction, for time strings near now.
fn rfc3339(ms: i64, frac_digits: usize, offset: &str) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60
    );
    if frac_digits > 0 {
        let frac = format!(
            "{:03}{}",
            rem % 1000,
            "7".repeat(frac_digits.saturating_sub(3))
        );
        s.push('.');
        s.push_str(&frac[..frac_digits.min(frac.len())]);
    }
    s.push_str(offset);
    s
}

fn fixed_values() -> Vec<Value> {
    let strings = [
        "NaN",
        "nan",
        "Inf",
        "+Inf",
        "-Inf",
        "Infinity",
        "-inf",
        "1e999",
        "-0",
        "0x10",
        "",
        " ",
        "\0",
        "a\0b",
        "\u{7f}",
        "\n",
        "__name__",
        "__meta_x",
        "ünïcödé ✓ 日本語",
        "\u{202e}evil",
        "\u{fffd}",
        "🔥",
        "firing",
        "resolved",
        "FIRING",
        "ALARM",
        "OK",
        "INSUFFICIENT_DATA",
        "Recovered",
        "Triggered",
        "P1",
        "P9",
        "error",
        "success",
        "Notification",
        "SubscriptionConfirmation",
        "audit",
        " Anomaly",
        "log_template",
        "deploy",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
        "2026-11-24T10:00:00Z",
        "2026-11-24T10:00:00.000+0000",
        "2026-11-24T10:00:00+25:00",
        "2026-02-30T00:00:00Z",
        "2026-12-31T23:59:60Z",
        "-0001-01-01T00:00:00Z",
        "+275760-09-13T00:00:00Z",
        "33658-09-27T01:46:40Z",
        "1795514400000",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "1e20",
        "host:a, host:b, host:a",
        "key:",
        ":value",
        ",,,",
        "a:b:c",
        "severity=critical",
        "arn:aws:cloudwatch:us-east-1:1:alarm:x",
        "{\"AlarmName\":\"x\"}",
        "[Triggered on {host:a}] [P1]",
        "[",
        "{{ secrets.token }}",
        "$ALERT_ID",
    ];
    let mut v: Vec<Value> = strings.iter().map(|s| Value::String((*s).into())).collect();
    v.extend([
        Value::from(i64::MAX),
        Value::from(i64::MIN),
        Value::from(u64::MAX),
        Value::from(1e308),
        Value::from(-1e308),
        Value::from(5e-324),
        Value::from(0),
        Value::from(-0.0),
        Value::from(NOW_MS),
        Value::from(NOW_MS as f64 + 0.5),
        Value::from(NOW_MS / 1000),
        Value::from(NOW_MS * 1000),
        Value::from(1e20),
        Value::from(-1),
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::Array(vec![]),
        Value::Object(Map::new()),
        serde_json::json!({"a": {"b": {"c": [1, "x", null]}}}),
        serde_json::json!(["x", 1, null, {"": ""}]),
        serde_json::json!({"": "", "\u{0}": "v", "__name__": "x", "a b": "c"}),
    ]);
    v
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "[a-z_]{1,12}",
        1 => "[\\x00-\\x1f\\x7f]{1,4}",
        1 => (0usize..100_000, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
        1 => (1usize..5_000).prop_map(|n| "ab".repeat(n)),
    ]
}

fn time_value() -> impl Strategy<Value = Value> {
    let offsets = prop::sample::select(vec!["Z", "z", "+00:00", "+0000", "-07:00", "+14:00", ""]);
    prop_oneof![
        (-400_000_000_000i64..7_200_000, 0usize..13, offsets)
            .prop_map(|(d, f, o)| Value::String(rfc3339(NOW_MS + d, f, o))),
        (-400_000_000_000i64..7_200_000).prop_map(|d| Value::from(NOW_MS + d)),
        any::<i64>().prop_map(Value::from),
        any::<i64>().prop_map(|ms| Value::String(rfc3339(ms / 1000, 3, "Z"))),
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => prop::sample::select(fixed_values()),
        2 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        2 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        3 => hostile_string().prop_map(Value::String),
        3 => time_value(),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((hostile_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn hostile_key() -> impl Strategy<Value = String> {
    let known = vec![
        "",
        "\0",
        "a\0b",
        "__name__",
        "__",
        "__x",
        "a b",
        "é",
        "🔥",
        "1abc",
        "a-b.c/d:e",
        "labels",
        "annotations",
        "time",
        "value",
        "name",
        "body",
        "severity",
        "type",
        "message",
        "attributes",
        "status",
        "startsAt",
        "endsAt",
        "starts_at",
        "ends_at",
        "alerts",
        "fingerprint",
        "generatorURL",
        "generator_url",
        "service",
        "alertname",
        "Type",
        "Message",
        "Timestamp",
        "AlarmName",
        "NewStateValue",
        "StateChangeTime",
        "AlarmArn",
        "Trigger",
        "Dimensions",
        "tags",
        "alert_scope",
        "title",
        "alert_transition",
        "alert_priority",
        "date",
        "last_updated",
        "org",
        "id",
        "alert_id",
        "version",
        "receiver",
    ];
    prop_oneof![
        4 => prop::sample::select(known).prop_map(String::from),
        2 => hostile_string(),
    ]
}

/// Media types and encodings senders (and attackers) put in the headers.
fn hostile_headers(
    default: (Option<String>, Option<String>),
) -> impl Strategy<Value = (Option<String>, Option<String>)> {
    let types = vec![
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "APPLICATION/JSON",
        "application/x-ndjson",
        "application/jsonl",
        "application/xml",
        "text/plain",
        "text/plain; charset=latin1",
        "application/x-www-form-urlencoded",
        "application/x-protobuf",
        "application/x-protobuf; proto=prometheus.WriteRequest",
        "application/x-protobuf; proto=io.prometheus.write.v2.Request",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "",
        ";",
        ";;charset=",
        "application/json;charset",
        "\u{0}",
    ];
    let encodings = vec![
        "snappy",
        "gzip",
        "identity",
        "deflate",
        "br",
        "zstd",
        "snappy, gzip",
        "identity, snappy",
        "",
        ",",
        "SNAPPY",
        "x-snappy-framed",
    ];
    prop_oneof![
        8 => Just(default),
        2 => (
            prop::option::of(prop::sample::select(types).prop_map(String::from)),
            prop::option::of(prop::sample::select(encodings).prop_map(String::from)),
        ),
        1 => (prop::option::of(any::<String>()), prop::option::of(any::<String>())),
    ]
}

// ---------------------------------------------------------------------------------------------
// Structure-aware edits of JSON documents.

/// One edit of a JSON document; `usize`s pick a node (pre-order) or an index, modulo the counts.
#[derive(Debug, Clone)]
enum JsonEdit {
    /// The node becomes the value.
    Replace(usize, Value),
    /// Into an object: the key with the value; into an array: the value; else the node becomes
    /// `{key: value}`.
    Insert(usize, String, Value),
    /// Removes one entry of an object or array.
    Remove(usize, usize),
    /// Wraps the node in this many arrays (or objects), past serde_json's recursion limit at times.
    Nest(usize, u8, bool),
    /// Repeats the entries of an array this many times.
    Repeat(usize, u16),
    /// Changes the node's type, keeping what it says (`1` ↔ `"1"`, object → array of values).
    Retype(usize),
    /// Writes the first key of this object twice (serde_json's `Value` cannot hold it).
    DupKey(usize),
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Applies `f` to the `target`-th node in pre-order; returns true once applied.
fn at_node(v: &mut Value, target: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *target == 0 {
        f(v);
        return true;
    }
    *target -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| at_node(x, target, f)),
        Value::Object(m) => m.values_mut().any(|x| at_node(x, target, f)),
        _ => false,
    }
}

fn retype(v: &mut Value) {
    *v = match std::mem::take(v) {
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => serde_json::from_str::<Value>(&s)
            .ok()
            .filter(|x| !x.is_string())
            .unwrap_or(Value::Array(vec![Value::String(s)])),
        Value::Object(m) => Value::Array(m.into_values().collect()),
        Value::Array(a) => Value::Object(
            a.into_iter()
                .enumerate()
                .map(|(i, x)| (i.to_string(), x))
                .collect(),
        ),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Null => Value::String("null".into()),
    };
}

/// Applies the edits; returns the objects (pre-order object index) whose first key is doubled.
fn apply_edits(doc: &mut Value, edits: &[JsonEdit]) -> Vec<usize> {
    let mut dups = Vec::new();
    for e in edits {
        let n = count_nodes(doc);
        if n > 200_000 {
            break;
        }
        let pick = |i: &usize| i % n;
        match e {
            JsonEdit::Replace(i, x) => {
                at_node(doc, &mut pick(i), &mut |v| *v = x.clone());
            }
            JsonEdit::Insert(i, k, x) => {
                at_node(doc, &mut pick(i), &mut |v| match v {
                    Value::Object(m) => {
                        m.insert(k.clone(), x.clone());
                    }
                    Value::Array(a) => a.push(x.clone()),
                    other => {
                        let mut m = Map::new();
                        m.insert(k.clone(), x.clone());
                        *other = Value::Object(m);
                    }
                });
            }
            JsonEdit::Remove(i, j) => {
                at_node(doc, &mut pick(i), &mut |v| match v {
                    Value::Object(m) if !m.is_empty() => {
                        let k = m.keys().nth(j % m.len()).cloned().unwrap_or_default();
                        m.remove(&k);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        a.remove(j % a.len());
                    }
                    _ => {}
                });
            }
            JsonEdit::Nest(i, depth, object) => {
                at_node(doc, &mut pick(i), &mut |v| {
                    for _ in 0..*depth {
                        let inner = std::mem::take(v);
                        *v = if *object {
                            Value::Object(std::iter::once(("labels".to_string(), inner)).collect())
                        } else {
                            Value::Array(vec![inner])
                        };
                    }
                });
            }
            JsonEdit::Repeat(i, times) => {
                at_node(doc, &mut pick(i), &mut |v| {
                    if let Value::Array(a) = v
                        && !a.is_empty()
                    {
                        let times = usize::from(*times).min(100_000 / a.len().max(1));
                        let copy = a.clone();
                        for _ in 0..times {
                            a.extend(copy.iter().cloned());
                        }
                    }
                });
            }
            JsonEdit::Retype(i) => {
                at_node(doc, &mut pick(i), &mut retype);
            }
            JsonEdit::DupKey(i) => dups.push(*i),
        }
    }
    dups
}

/// Writes JSON, doubling the first entry of the objects listed in `dups` (by pre-order index,
/// modulo the number of objects).
fn write_json(v: &Value, dups: &[usize], objects: usize, counter: &mut usize, out: &mut String) {
    match v {
        Value::Object(m) => {
            let idx = *counter;
            *counter += 1;
            out.push('{');
            let dup = objects > 0 && dups.iter().any(|d| d % objects == idx);
            let mut first = true;
            for (i, (k, x)) in m.iter().enumerate() {
                let times = if dup && i == 0 { 2 } else { 1 };
                for _ in 0..times {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push(':');
                    write_json(x, dups, objects, counter, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, dups, objects, counter, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn count_objects(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(count_objects).sum::<usize>(),
        Value::Array(a) => a.iter().map(count_objects).sum(),
        _ => 0,
    }
}

/// How a document is laid out as a body.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// One JSON text.
    Json,
    /// An array's elements one per line (anything else: one line).
    Ndjson,
    /// With a UTF-8 byte order mark in front.
    Bom,
    /// Pretty-printed with CRLF line ends.
    PrettyCrlf,
}

fn render(doc: &Value, dups: &[usize], layout: Layout) -> Vec<u8> {
    let one = |v: &Value| {
        let mut s = String::new();
        write_json(v, dups, count_objects(v), &mut 0, &mut s);
        s
    };
    let mut body = match (layout, doc) {
        (Layout::Ndjson, Value::Array(items)) => items
            .iter()
            .map(one)
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
        (Layout::Bom, _) => [&[0xef, 0xbb, 0xbf][..], one(doc).as_bytes()].concat(),
        (Layout::PrettyCrlf, _) if dups.is_empty() => serde_json::to_string_pretty(doc)
            .unwrap_or_default()
            .replace('\n', "\r\n")
            .into_bytes(),
        _ => one(doc).into_bytes(),
    };
    body.truncate(MAX_BODY);
    body
}

/// A seed as a document: JSON as is, NDJSON as the array of its lines.
fn seed_doc(case: &Case, name: &str) -> (Value, Layout) {
    let text = String::from_utf8_lossy(&case.body);
    if name.ends_with(".ndjson") {
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or(Value::String(l.into())))
            .collect();
        (Value::Array(lines), Layout::Ndjson)
    } else {
        (
            serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned())),
            Layout::Json,
        )
    }
}

fn json_edit() -> impl Strategy<Value = JsonEdit> {
    prop_oneof![
        6 => (any::<usize>(), hostile_value()).prop_map(|(i, v)| JsonEdit::Replace(i, v)),
        4 => (any::<usize>(), hostile_key(), hostile_value()).prop_map(|(i, k, v)| JsonEdit::Insert(i, k, v)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| JsonEdit::Remove(i, j)),
        1 => (any::<usize>(), 1u8..=200, any::<bool>()).prop_map(|(i, d, o)| JsonEdit::Nest(i, d, o)),
        1 => (any::<usize>(), 1u16..2_000).prop_map(|(i, t)| JsonEdit::Repeat(i, t)),
        2 => any::<usize>().prop_map(JsonEdit::Retype),
        1 => any::<usize>().prop_map(JsonEdit::DupKey),
    ]
}

/// Structure-aware cases for a JSON decoder: a seed, edits, a layout and headers.
fn json_cases(decoder: &str, seeds: Vec<(String, Case)>) -> BoxedStrategy<Case> {
    let docs: Vec<(Value, Layout, Headers)> = seeds
        .iter()
        .map(|(name, c)| {
            let (doc, layout) = seed_doc(c, name);
            (
                doc,
                layout,
                (c.content_type.clone(), c.content_encoding.clone()),
            )
        })
        .collect();
    let n = docs.len();
    let default = default_headers(decoder, "json");
    let layouts = prop::sample::select(vec![
        Layout::Json,
        Layout::Ndjson,
        Layout::Bom,
        Layout::PrettyCrlf,
    ]);
    (
        0..n,
        prop::collection::vec(json_edit(), 0..5),
        prop::option::weighted(0.25, layouts),
        hostile_headers(default),
        any::<bool>(),
    )
        .prop_map(move |(i, edits, layout, headers, seed_headers)| {
            let (doc, seed_layout, seed_hdrs) = &docs[i];
            let mut doc = doc.clone();
            let dups = apply_edits(&mut doc, &edits);
            let (content_type, content_encoding) = if seed_headers {
                seed_hdrs.clone()
            } else {
                headers
            };
            Case {
                body: render(&doc, &dups, layout.unwrap_or(*seed_layout)),
                content_type,
                content_encoding,
            }
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Structure-aware remote_write requests.

fn rw_label_name() -> impl Strategy<Value = String> {
    let known = vec![
        "__name__", "job", "instance", "le", "", "\0", "a\0b", "__meta_x", "__", "ünï", "1abc",
        "a-b", "a.b", "_", "A_Z_09",
    ];
    prop_oneof![
        4 => prop::sample::select(known).prop_map(String::from),
        3 => "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
        1 => hostile_string(),
    ]
}

fn rw_timestamp() -> impl Strategy<Value = i64> {
    let special = vec![
        i64::MIN,
        i64::MAX,
        0,
        -1,
        NOW_MS + 3_600_001,
        NOW_MS - 366 * 86_400_000,
        253_402_300_800_000,
        1_000_000_000_000_000,
        NOW_MS * 1000,
        NOW_MS / 1000,
    ];
    prop_oneof![
        2 => prop::sample::select(special),
        5 => (-3_600_000i64..60_000).prop_map(|d| NOW_MS + d),
        1 => any::<i64>(),
    ]
}

fn rw_value() -> impl Strategy<Value = f64> {
    let special = vec![
        f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0002), // Prometheus' stale marker
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        f64::MIN,
    ];
    prop_oneof![prop::sample::select(special), any::<f64>()]
}

/// One series: whether it starts with a valid `__name__`, its labels, its samples.
fn rw_series() -> impl Strategy<Value = TimeSeries> {
    (
        prop::option::weighted(0.85, "[a-z_:][a-z0-9_:]{0,24}"),
        prop::collection::vec((rw_label_name(), hostile_string()), 0..8),
        prop::collection::vec((rw_timestamp(), rw_value()), 0..6),
    )
        .prop_map(|(name, labels, samples)| TimeSeries {
            labels: name
                .map(|n| ("__name__".to_string(), n))
                .into_iter()
                .chain(labels)
                .map(|(name, value)| Label { name, value })
                .collect(),
            samples: samples
                .into_iter()
                .map(|(timestamp, value)| Sample { value, timestamp })
                .collect(),
        })
}

/// A series as a well-behaved sender writes it (so that accepted requests are generated too).
fn rw_clean_series() -> impl Strategy<Value = TimeSeries> {
    (
        "[a-z_:][a-z0-9_:]{0,24}",
        prop::collection::btree_map("[a-z][a-z0-9_]{0,8}", "\\PC{0,16}", 0..6),
        prop::collection::vec((-3_600_000i64..60_000, rw_value()), 1..6),
    )
        .prop_map(|(name, labels, samples)| TimeSeries {
            labels: std::iter::once(("__name__".to_string(), name))
                .chain(labels)
                .map(|(name, value)| Label { name, value })
                .collect(),
            samples: samples
                .into_iter()
                .map(|(d, value)| Sample {
                    value,
                    timestamp: NOW_MS + d,
                })
                .collect(),
        })
}

/// Structure-aware remote_write cases: series, a run of empty series, trailing protobuf bytes.
fn remote_write_cases() -> BoxedStrategy<Case> {
    (
        prop_oneof![
            prop::collection::vec(rw_series(), 0..24),
            prop::collection::vec(rw_clean_series(), 1..24),
        ],
        prop::option::weighted(0.1, 1usize..20_000),
        prop::option::weighted(0.1, prop::collection::vec(any::<u8>(), 1..24)),
        hostile_headers(default_headers("remote_write", "bin")),
    )
        .prop_map(
            |(timeseries, empties, trailer, (content_type, content_encoding))| {
                let mut raw = WriteRequest { timeseries }.encode_to_vec();
                if let Some(n) = empties {
                    // `TimeSeries {}`: field 1, length 0 — two bytes each.
                    raw.extend(std::iter::repeat_n([0x0a, 0x00], n).flatten());
                }
                if let Some(t) = trailer {
                    raw.extend(t);
                }
                Case {
                    body: snap::raw::Encoder::new()
                        .compress_vec(&raw)
                        .unwrap_or_default(),
                    content_type,
                    content_encoding,
                }
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Mutation of seeds and raw bytes.

/// One byte-level mutation; positions are taken modulo the body's length.
#[derive(Debug, Clone)]
enum ByteEdit {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Delete(usize, u16),
    Insert(usize, Vec<u8>),
    /// Repeats a slice of the body in place.
    Repeat(usize, u16, u16),
    /// Replaces the tail from a position with the tail of another seed from its position.
    Splice(usize, usize, usize),
}

/// Tokens worth inserting: JSON structure, escapes, invalid UTF-8, protobuf headers.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
    b"-",
    b"NaN",
    b"null",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"\n",
    b"\r\n",
    b"\"\":\"\",",
    b"{\"a\":1}",
    b"9223372036854775808",
    b"\x0a\x00",
    b"\x12\x00",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
];

fn interesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(TOKENS).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 1..16),
    ]
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(p, b)| ByteEdit::Flip(p, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| ByteEdit::Set(p, b)),
        2 => any::<usize>().prop_map(ByteEdit::Truncate),
        2 => (any::<usize>(), 1u16..64).prop_map(|(p, n)| ByteEdit::Delete(p, n)),
        3 => (any::<usize>(), interesting_bytes()).prop_map(|(p, b)| ByteEdit::Insert(p, b)),
        2 => (any::<usize>(), 1u16..256, 1u16..4_000).prop_map(|(p, l, t)| ByteEdit::Repeat(p, l, t)),
        2 => (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(a, s, b)| ByteEdit::Splice(a, s, b)),
    ]
}

fn apply_bytes(body: &mut Vec<u8>, edits: &[ByteEdit], others: &[Vec<u8>]) {
    for e in edits {
        let len = body.len();
        let pos = |p: &usize| if len == 0 { 0 } else { p % (len + 1) };
        match e {
            ByteEdit::Flip(p, bit) if len > 0 => body[p % len] ^= 1 << bit,
            ByteEdit::Set(p, b) if len > 0 => body[p % len] = *b,
            ByteEdit::Truncate(p) => body.truncate(pos(p)),
            ByteEdit::Delete(p, n) => {
                let s = pos(p);
                let e = (s + usize::from(*n)).min(len);
                body.drain(s..e);
            }
            ByteEdit::Insert(p, bytes) => {
                let s = pos(p);
                body.splice(s..s, bytes.iter().copied());
            }
            ByteEdit::Repeat(p, l, t) => {
                let s = pos(p);
                let e = (s + usize::from(*l)).min(len);
                let chunk = body[s..e].to_vec();
                if !chunk.is_empty() {
                    let times = usize::from(*t).min(MAX_BODY / chunk.len());
                    let rep: Vec<u8> = chunk
                        .iter()
                        .copied()
                        .cycle()
                        .take(chunk.len() * times)
                        .collect();
                    body.splice(e..e, rep);
                }
            }
            ByteEdit::Splice(a, s, b) if !others.is_empty() => {
                let other = &others[s % others.len()];
                let at = pos(a);
                let from = if other.is_empty() { 0 } else { b % other.len() };
                body.truncate(at);
                body.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
        body.truncate(MAX_BODY);
    }
}

/// Mutated seeds. For remote_write the edits go, half of the time, to the decompressed protobuf,
/// which is compressed again (edits of the compressed bytes mostly stop at the snappy layer).
fn mutation_cases(decoder: &str, seeds: Vec<(String, Case)>) -> BoxedStrategy<Case> {
    let rw = decoder == "remote_write";
    let bodies: Vec<Vec<u8>> = seeds
        .iter()
        .map(|(_, c)| {
            if rw {
                snap::raw::Decoder::new()
                    .decompress_vec(&c.body)
                    .unwrap_or_else(|_| c.body.clone())
            } else {
                c.body.clone()
            }
        })
        .collect();
    let n = seeds.len();
    let default = default_headers(decoder, "json");
    (
        0..n,
        prop::collection::vec(byte_edit(), 1..8),
        any::<bool>(),
        hostile_headers(default),
        any::<bool>(),
    )
        .prop_map(move |(i, edits, inner, headers, seed_headers)| {
            let (content_type, content_encoding) = if seed_headers {
                (
                    seeds[i].1.content_type.clone(),
                    seeds[i].1.content_encoding.clone(),
                )
            } else {
                headers
            };
            let body = if rw && inner {
                let mut raw = bodies[i].clone();
                apply_bytes(&mut raw, &edits, &bodies);
                snap::raw::Encoder::new()
                    .compress_vec(&raw)
                    .unwrap_or_default()
            } else {
                let mut body = seeds[i].1.body.clone();
                let others: Vec<Vec<u8>> = seeds.iter().map(|(_, c)| c.body.clone()).collect();
                apply_bytes(&mut body, &edits, &others);
                body
            };
            Case {
                body,
                content_type,
                content_encoding,
            }
        })
        .boxed()
}

/// Raw random bytes: uniform, or drawn from JSON's alphabet; for remote_write also valid snappy
/// around random bytes.
fn raw_cases(decoder: &str) -> BoxedStrategy<Case> {
    let alphabet: Vec<u8> = b"{}[]\":,0123456789.eE-+ntrufals \n\\".to_vec();
    let (content_type, content_encoding) = default_headers(decoder, "json");
    let rw = decoder == "remote_write";
    (
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4096),
            prop::collection::vec(prop::sample::select(alphabet), 0..4096),
        ],
        any::<bool>(),
    )
        .prop_map(move |(bytes, wrap)| Case {
            body: if rw && wrap {
                snap::raw::Encoder::new()
                    .compress_vec(&bytes)
                    .unwrap_or_default()
            } else {
                bytes
            },
            content_type: content_type.clone(),
            content_encoding: content_encoding.clone(),
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// The driver.

/// Runs `cases` of `strategy` against the decoder; on a failure saves the shrunk input to the
/// corpus and fails the test naming it.
fn fuzz_phase(
    name: &str,
    d: &Arc<dyn PushDecoder>,
    phase: &str,
    strategy: BoxedStrategy<Case>,
    cases: u32,
) {
    let mut runner = runner(name, phase, cases);
    let (ran, accepted, skipped) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    let result = runner.run(&strategy, |case| {
        if Instant::now() > deadline() {
            skipped.set(skipped.get() + 1);
            return Ok(());
        }
        ran.set(ran.get() + 1);
        match check_case(d, &case) {
            Ok(ok) => {
                accepted.set(accepted.get() + u32::from(ok));
                Ok(())
            }
            Err(e) => Err(TestCaseError::fail(e)),
        }
    });
    let (ran, accepted, skipped) = (ran.get(), accepted.get(), skipped.get());
    eprintln!(
        "fuzz {name}/{phase}: seed {:#x}, {ran} cases run, {accepted} accepted{}",
        settings().seed,
        if skipped > 0 {
            format!(", {skipped} skipped (AIOPS_FUZZ_BUDGET_SECS)")
        } else {
            String::new()
        }
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => {
            let path = save_crash(name, &case);
            panic!(
                "{name}/{phase}: {reason}\ninput saved to {} (replayed on every run)\n{case:?}\nreproduce: AIOPS_FUZZ_SEED={:#x}",
                path.display(),
                settings().seed
            );
        }
        Err(TestError::Abort(reason)) => panic!("{name}/{phase}: aborted: {reason}"),
    }
}

/// The whole harness for one decoder: corpus replay, then the three kinds of random cases.
fn fuzz_decoder(name: &str) {
    let d = decoder(name);
    replay_corpus(name, &d);
    let seeds = seeds(name);
    assert!(
        !seeds.is_empty(),
        "{name}: no seed in {}",
        corpus_dir(name).display()
    );
    let n = settings().cases;
    let structured = if name == "remote_write" {
        remote_write_cases()
    } else {
        json_cases(name, seeds.clone())
    };
    fuzz_phase(name, &d, "structured", structured, n);
    fuzz_phase(name, &d, "mutated", mutation_cases(name, seeds), n);
    fuzz_phase(name, &d, "raw", raw_cases(name), n.div_ceil(2));
}

macro_rules! fuzz_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                fuzz_decoder($name);
            }
        )*

        /// The decoders fuzzed above.
        const FUZZED: &[&str] = &[$($name),*];
    };
}

fuzz_tests! {
    fuzz_remote_write => "remote_write",
    fuzz_json_metrics => "json_metrics",
    fuzz_json_logs => "json_logs",
    fuzz_json_events => "json_events",
    fuzz_alertmanager_webhook => "alertmanager",
    fuzz_grafana_webhook => "grafana",
    fuzz_datadog_webhook => "datadog",
    fuzz_cloudwatch_sns => "cloudwatch",
    fuzz_json_alerts => "api",
    fuzz_alertmanager_api_v2 => "alertmanager_api",
    fuzz_otlp_metrics => "otlp_metrics",
    fuzz_otlp_logs => "otlp_logs",
}

/// A decoder added to the registry without a fuzz test and a corpus fails here.
#[test]
fn every_push_decoder_is_fuzzed_and_has_seeds() {
    let names: Vec<&str> = registry::push_endpoints()
        .iter()
        .map(|e| e.decoder.name())
        .collect();
    for n in &names {
        assert!(
            FUZZED.contains(n),
            "push decoder {n} has no fuzz test in {}",
            file!()
        );
        assert!(
            !seeds(n).is_empty(),
            "push decoder {n} has no seed in tests/corpus/{n}/"
        );
    }
    assert_eq!(
        names.len(),
        FUZZED.len(),
        "a fuzz test for a decoder that is gone"
    );
}

/// The harness itself finds what it must: a decoder that panics, hangs or answers `internal`
/// on some input is reported (and its input saved), and inconsistent batches are caught.
#[test]
fn the_property_catches_broken_decoders() {
    struct Broken(&'static str);
    impl PushDecoder for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn decode(
            &self,
            body: &[u8],
            _: &PushRequest<'_>,
        ) -> Result<Vec<SourceBatch>, DecodeError> {
            match (self.0, body.first()) {
                ("panic", Some(b'x')) => panic!("index out of bounds"),
                ("internal", Some(b'x')) => Err(DecodeError::Internal("arrow".into())),
                ("echo", Some(b'x')) => Err(DecodeError::UnsupportedMediaType(
                    String::from_utf8_lossy(body).into_owned(),
                )),
                _ => Err(DecodeError::Empty),
            }
        }
    }
    let case = |body: &[u8]| Case {
        body: body.to_vec(),
        content_type: None,
        content_encoding: None,
    };
    for mode in ["panic", "internal"] {
        let d: Arc<dyn PushDecoder> = Arc::new(Broken(mode));
        assert!(check_case(&d, &case(b"ok")).is_ok(), "{mode}");
        let big = [b"x".as_slice(), &[b'a'; 10_000]].concat();
        let e = check_case(&d, &case(&big)).expect_err(mode);
        assert!(!e.is_empty(), "{mode}");
    }
    // A decoder echoing the body whole is caught by the message rule, and the edge
    // (`decode_bounded`) cuts and escapes what it echoes.
    let echo: Arc<dyn PushDecoder> = Arc::new(Broken("echo"));
    let big = [b"x\n".as_slice(), &[b'a'; 10_000]].concat();
    let raw = echo.decode(&big, &request(&case(&big))).unwrap_err();
    assert!(check_error(&raw).is_err(), "the raw echo breaks the rule");
    check_case(&echo, &case(&big)).expect("the edge bounds the echo");
    // A batch outside the window, with an empty label name, is caught.
    let mut b = aiops_schemas::MetricBatchBuilder::new();
    b.push(i64::MAX, "cpu", [("", "x")], 1.0);
    let batch = b.finish().unwrap();
    let out = vec![SourceBatch {
        kind: Kind::Metrics,
        source: "broken",
        batch,
        time_range: Some((i64::MAX, i64::MAX)),
    }];
    let e = check_batches("json_metrics", &out).expect_err("time and label");
    assert!(e.contains("outside the ingest window"), "{e}");
}

/// A decoder that does not return is reported once the case timeout passes.
#[test]
fn a_hang_is_reported() {
    struct Sleepy;
    impl PushDecoder for Sleepy {
        fn name(&self) -> &'static str {
            "sleepy"
        }
        fn decode(&self, _: &[u8], _: &PushRequest<'_>) -> Result<Vec<SourceBatch>, DecodeError> {
            std::thread::sleep(Duration::from_secs(2));
            Err(DecodeError::Empty)
        }
    }
    let d: Arc<dyn PushDecoder> = Arc::new(Sleepy);
    let t = Instant::now();
    let case = Case {
        body: vec![],
        content_type: None,
        content_encoding: None,
    };
    let e = check_case_within(&d, &case, Duration::from_millis(200)).expect_err("hang");
    assert!(e.contains("did not return"), "{e}");
    assert!(t.elapsed() < Duration::from_millis(1500));
}

/// Writes the remote_write seeds (built with prost + snap, as Prometheus sends them). Run once
/// with `--ignored` after changing them; the files are committed.
#[test]
#[ignore = "regenerates tests/corpus/remote_write/*.bin"]
fn write_remote_write_seeds() {
    let series = |name: &str, labels: &[(&str, &str)], samples: &[(i64, f64)]| TimeSeries {
        labels: std::iter::once(("__name__", name))
            .chain(labels.iter().copied())
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
    };
    let t = NOW_MS - 600_000; // 2026-11-24T10:00:00Z
    let node = WriteRequest {
        timeseries: vec![
            series(
                "node_cpu_seconds_total",
                &[
                    ("cpu", "0"),
                    ("instance", "web-1:9100"),
                    ("job", "node"),
                    ("mode", "idle"),
                ],
                &[
                    (t, 183_457.12),
                    (t + 15_000, 183_471.9),
                    (t + 30_000, 183_486.7),
                ],
            ),
            series(
                "node_memory_MemAvailable_bytes",
                &[("instance", "web-1:9100"), ("job", "node")],
                &[(t, 8.123_456_512e9), (t + 15_000, 8.120_001_536e9)],
            ),
            series(
                "node_filesystem_avail_bytes",
                &[
                    ("device", "/dev/nvme0n1p1"),
                    ("fstype", "ext4"),
                    ("instance", "web-1:9100"),
                    ("job", "node"),
                    ("mountpoint", "/"),
                ],
                &[(t, 4.2e10)],
            ),
            series(
                "up",
                &[("instance", "web-1:9100"), ("job", "node")],
                &[(t, 1.0)],
            ),
        ],
    };
    let special = WriteRequest {
        timeseries: vec![
            // A stale marker, infinities and a histogram bucket, as Prometheus sends them.
            series(
                "http_request_duration_seconds_bucket",
                &[
                    ("le", "+Inf"),
                    ("service", "checkout"),
                    ("pod", "checkout-7d9f-x2"),
                ],
                &[
                    (t, 1024.0),
                    (t + 15_000, f64::from_bits(0x7ff0_0000_0000_0002)),
                ],
            ),
            series(
                "ratio",
                &[("service", "ünïcödé ✓")],
                &[
                    (t, f64::INFINITY),
                    (t + 1, f64::NEG_INFINITY),
                    (t + 2, -0.0),
                ],
            ),
            // A series without samples (skipped).
            series("empty", &[("job", "x")], &[]),
        ],
    };
    let dir = corpus_dir("remote_write");
    for (file, wr, extra) in [
        ("node-exporter.bin", node, Vec::new()),
        ("stale-inf-unicode.bin", special.clone(), Vec::new()),
        // Metadata (field 3: type 1 = counter, family name) after the series, as Prometheus
        // sends with send_metadata; the decoder skips it.
        (
            "with-metadata.bin",
            special,
            vec![
                0x1a, 0x0c, 0x08, 0x01, 0x12, 0x08, b'r', b'e', b'q', b'u', b'e', b's', b't', b's',
            ],
        ),
    ] {
        let mut raw = wr.encode_to_vec();
        raw.extend(extra);
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        std::fs::write(dir.join(file), body).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Bugs this harness found, now fixed: one test each, replaying their `known-bug-*` inputs.
// A new open bug gets an `#[ignore]`d test here until its fix lands.

/// Replays the `known-bug-<bug>-*` inputs of every decoder's corpus with the full property.
fn replay_known_bug(bug: &str) {
    let mut failures = Vec::new();
    let mut seen = 0;
    for name in FUZZED {
        let d = decoder(name);
        for path in corpus_files(name) {
            if !file_name(&path).starts_with(&format!("known-bug-{bug}-")) {
                continue;
            }
            seen += 1;
            let case = load_case(name, &path);
            let out = d.decode_bounded(&case.body, &request(&case));
            let verdict = match &out {
                Err(e) => check_error(e).and_then(|()| message_bounded(&e.to_string())),
                Ok(_) => check_case(&d, &case).map(|_| ()),
            };
            if let Err(e) = verdict {
                failures.push(format!("{name}/{}: {e}", file_name(&path)));
            }
        }
    }
    assert!(seen > 0, "no known-bug-{bug}-* inputs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Fixed bug: field and label names from the body were echoed whole and raw in errors (a 1 MB
/// key came back whole, a `\n` in it forged a log line); the edge bounds and escapes them
/// ([`DecodeError::bounded`]).
#[test]
fn known_bug_field_name_echo() {
    replay_known_bug("field-name-echo");
}

/// Fixed bug: unusable values were quoted whole in errors; the edge bounds them.
#[test]
fn known_bug_value_echo() {
    replay_known_bug("value-echo");
}
