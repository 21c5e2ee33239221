//! `aiops-bench masking`: what sensitive-data masking costs per log line (issue 18, item 5).
//!
//! All built-in detectors on (`pii = true`: secrets, cards, emails, phones, Chinese mobile and
//! ID numbers), in one thread, over three line sets:
//! - **loghub**: every line of the Loghub `*_2k.log` files (a realistic mix: most lines hold no
//!   secret, many hold timestamps, ids and IPs the digit scanner must look at and reject);
//! - **secrets**: the same lines, each with one secret spliced in (password=, a JSON token,
//!   a Bearer token, an AWS key, a card number, an email, a phone number, rotating);
//! - **no-trigger**: lines with no trigger word, no `@` and no digit run — the fast path.
//!
//! - **labels**: metric samples with node-exporter-like label sets (job, instance, cpu, mode,
//!   device, le), nothing to mask — the remote_write path.
//!
//! Each set is masked `--rounds` times line by line (`Masker::mask_text`), and once more as
//! log batches of `--batch` rows (`Masker::mask_batch`, the ingest path, column rebuild
//! included); the median round is reported as ns/line and lines/s.

use aiops_connectors::masking::{MaskStats, Masked, Masker, MaskingSettings};
use aiops_schemas::{Kind, LogBatchBuilder, MetricBatchBuilder};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `aiops-bench masking` arguments.
#[derive(Debug, clap::Args)]
pub struct MaskingArgs {
    /// The Loghub directory (`<Name>/<Name>_2k.log` files).
    #[arg(long, default_value = "/work/shared/data/loghub")]
    pub loghub: PathBuf,
    /// Timed rounds per set (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Rows per log batch for the batch figures.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Where to write the JSON result.
    #[arg(long, default_value = "bench/results/masking.json")]
    pub out: PathBuf,
}

/// Why `aiops-bench masking` failed.
#[derive(Debug, thiserror::Error)]
pub enum MaskingBenchError {
    /// A Loghub file or the result could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No `*_2k.log` file under the Loghub directory.
    #[error("{0}: no <Name>/<Name>_2k.log file")]
    NoData(PathBuf),
    /// The masking policy or a batch failed (a bug).
    #[error("masking: {0}")]
    Masking(String),
}

/// One line set's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SetResult {
    /// The set's name.
    pub set: String,
    /// Lines in the set.
    pub lines: usize,
    /// Average line length, bytes.
    pub avg_bytes: f64,
    /// Lines changed by masking.
    pub masked_lines: usize,
    /// Median ns per line, `mask_text`.
    pub ns_per_line: f64,
    /// Lines per second at that median, one thread.
    pub lines_per_s: f64,
    /// Median ns per line through `mask_batch` on log batches.
    pub batch_ns_per_line: f64,
    /// Matches per rule in one pass over the set.
    pub matches: Vec<(String, u64)>,
}

/// Lines of every `<Name>/<Name>_2k.log` under `dir`, sorted by data set.
fn loghub_lines(dir: &Path) -> Result<Vec<String>, MaskingBenchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MaskingBenchError::Io { path, source }
    };
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let name = e.file_name().to_string_lossy().to_string();
        let f = e.path().join(format!("{name}_2k.log"));
        if f.is_file() {
            files.push(f);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(MaskingBenchError::NoData(dir.to_path_buf()));
    }
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read(&f).map_err(io(&f))?;
        lines.extend(
            String::from_utf8_lossy(&text)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    Ok(lines)
}

/// Secrets spliced into lines, one per line, rotating.
const SECRETS: &[&str] = &[
    "password=hunter2-Sup3r",
    r#"{"access_token": "eyJhbGciOiJIUzI1NiJ9.abc.def"}"#,
    "Authorization: Bearer ya29.a0AfH6SMBxq1",
    "key AKIAIOSFODNN7EXAMPLE",
    "card 4111 1111 1111 1111",
    "mail alice.smith@example.com",
    "call +86 138 0013 8000",
    "手机13800138000",
];

fn with_secrets(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let cut = l.len() / 2;
            let cut = (cut..=l.len())
                .find(|c| l.is_char_boundary(*c))
                .unwrap_or(0);
            format!("{} {} {}", &l[..cut], SECRETS[i % SECRETS.len()], &l[cut..])
        })
        .collect()
}

/// Lines with nothing to look at: letters, spaces and punctuation only.
fn no_trigger(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l.chars()
                .filter(|c| c.is_ascii_alphabetic() || *c == ' ' || *c == ',')
                .collect::<String>()
                .replace(['p', 'P'], "q")
                .replace(['t', 'T'], "d")
                .replace(['a', 'A'], "e")
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn measure(
    m: &Masker,
    set: &str,
    lines: &[String],
    args: &MaskingArgs,
) -> Result<SetResult, MaskingBenchError> {
    let mut stats = MaskStats::default();
    let masked_lines = lines
        .iter()
        .filter(|l| !matches!(m.mask_text(l, &mut stats), Masked::Unchanged(_)))
        .count();
    let matches = m
        .rules()
        .iter()
        .zip(stats.matches.iter().chain(std::iter::repeat(&0)))
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| (r.name.clone(), *n))
        .collect();
    let mut per_line = Vec::new();
    for _ in 0..args.rounds.max(1) {
        let mut st = MaskStats::default();
        let t = Instant::now();
        let mut changed = 0usize;
        for l in lines {
            if !matches!(m.mask_text(l, &mut st), Masked::Unchanged(_)) {
                changed += 1;
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / lines.len() as f64;
        std::hint::black_box(changed);
        per_line.push(ns);
    }
    // The ingest path: log batches, column-wise, rebuilt where something matched.
    let mut batches = Vec::new();
    for chunk in lines.chunks(args.batch.max(1)) {
        let mut b = LogBatchBuilder::new();
        for (i, l) in chunk.iter().enumerate() {
            b.push(
                i as i64,
                "info",
                l,
                [("service", "bench"), ("host", "node-1")],
                [("thread", "main")],
            );
        }
        batches.push(
            b.finish()
                .map_err(|e| MaskingBenchError::Masking(e.to_string()))?,
        );
    }
    let mut batch_ns = Vec::new();
    for _ in 0..args.rounds.max(1) {
        let mut st = MaskStats::default();
        let t = Instant::now();
        for b in &batches {
            let out = m
                .mask_batch(Kind::Logs, b, &mut st)
                .map_err(|e| MaskingBenchError::Masking(e.to_string()))?;
            std::hint::black_box(out);
        }
        batch_ns.push(t.elapsed().as_nanos() as f64 / lines.len() as f64);
    }
    let ns_per_line = median(per_line);
    Ok(SetResult {
        set: set.to_string(),
        lines: lines.len(),
        avg_bytes: lines.iter().map(String::len).sum::<usize>() as f64 / lines.len() as f64,
        masked_lines,
        ns_per_line,
        lines_per_s: if ns_per_line > 0.0 {
            1e9 / ns_per_line
        } else {
            0.0
        },
        batch_ns_per_line: median(batch_ns),
        matches,
    })
}

/// ns per metric sample (label set) through `mask_batch`, median of `rounds`, batches of
/// `batch` samples with 6 labels each, nothing to mask.
fn measure_labels(m: &Masker, args: &MaskingArgs) -> Result<f64, MaskingBenchError> {
    let mut batches = Vec::new();
    let per = args.batch.max(1);
    for b in 0..16 {
        let mut mb = MetricBatchBuilder::new();
        for i in 0..per {
            let cpu = (i % 16).to_string();
            let inst = format!("10.0.{}.{}:9100", b, i % 200);
            mb.push(
                i as i64,
                "node_cpu_seconds_total",
                [
                    ("job", "node"),
                    ("instance", inst.as_str()),
                    ("cpu", cpu.as_str()),
                    ("mode", "idle"),
                    ("device", "eth0"),
                    ("le", "0.005"),
                ],
                1.0,
            );
        }
        batches.push(
            mb.finish()
                .map_err(|e| MaskingBenchError::Masking(e.to_string()))?,
        );
    }
    let samples = (16 * per) as f64;
    let mut ns = Vec::new();
    for _ in 0..args.rounds.max(1) {
        let mut st = MaskStats::default();
        let t = Instant::now();
        for b in &batches {
            let out = m
                .mask_batch(Kind::Metrics, b, &mut st)
                .map_err(|e| MaskingBenchError::Masking(e.to_string()))?;
            std::hint::black_box(out);
        }
        ns.push(t.elapsed().as_nanos() as f64 / samples);
    }
    Ok(median(ns))
}

/// Runs the benchmark, prints a table and writes the JSON result to `args.out`.
///
/// # Errors
/// [`MaskingBenchError`] when the data cannot be read or the result written.
pub fn run(args: MaskingArgs) -> Result<Vec<SetResult>, MaskingBenchError> {
    let settings = MaskingSettings {
        pii: true,
        ..MaskingSettings::default()
    };
    let m = Masker::new(&settings, None).map_err(|e| MaskingBenchError::Masking(e.to_string()))?;
    let loghub = loghub_lines(&args.loghub)?;
    let sets = [
        ("loghub", loghub.clone()),
        ("secrets", with_secrets(&loghub)),
        ("no-trigger", no_trigger(&loghub)),
    ];
    let mut results = Vec::new();
    for (name, lines) in &sets {
        let r = measure(&m, name, lines, &args)?;
        println!(
            "masking {:<10} lines={:>6} avg_bytes={:>5.0} masked={:>6} ns/line={:>7.0} lines/s={:>10.0} batch_ns/line={:>7.0}",
            r.set,
            r.lines,
            r.avg_bytes,
            r.masked_lines,
            r.ns_per_line,
            r.lines_per_s,
            r.batch_ns_per_line
        );
        println!("  matches: {:?}", r.matches);
        results.push(r);
    }
    let label_ns = measure_labels(&m, &args)?;
    println!(
        "masking labels     ns/sample={label_ns:>7.1} (6 labels, nothing to mask, mask_batch)"
    );
    let mut figures: Vec<crate::report::Figure> = results
        .iter()
        .flat_map(|r| {
            [
                crate::report::Figure::new(
                    format!("masking.{}.ns_per_line", r.set),
                    r.ns_per_line,
                    "ns/line",
                    crate::report::FigureKind::Latency,
                ),
                crate::report::Figure::new(
                    format!("masking.{}.batch_ns_per_line", r.set),
                    r.batch_ns_per_line,
                    "ns/line",
                    crate::report::FigureKind::Latency,
                ),
            ]
        })
        .collect();
    figures.push(crate::report::Figure::new(
        "masking.labels.ns_per_sample",
        label_ns,
        "ns/sample",
        crate::report::FigureKind::Latency,
    ));
    let report = crate::report::Report {
        benchmark: "masking".to_string(),
        machine: crate::machine::Machine::describe(),
        provenance: crate::machine::Provenance::current(),
        details: results.clone(),
        figures,
    };
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).map_err(|source| MaskingBenchError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
    std::fs::write(&args.out, json).map_err(|source| MaskingBenchError::Io {
        path: args.out.clone(),
        source,
    })?;
    Ok(results)
}
