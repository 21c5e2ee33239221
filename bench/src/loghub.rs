//! `aiops-bench loghub`: scores the Drain log template miner of `aiops-detect` on Loghub-2k data
//! sets — grouping accuracy and parsing accuracy as logpai's evaluators define them, and parsing
//! throughput — side by side with Python's `drain3` run on the same lines.
//!
//! Input: `DIR/<Name>/<Name>_2k.log_structured.csv` for each data set directory in `DIR`. Each
//! line's `Content` column is what is parsed: it is the message that logpai's benchmark extracts
//! from the raw `<Name>_2k.log` with the data set's `log_format` (headers such as date, level,
//! component are input format, not parser tuning), so the raw `.log` file is not read. Its
//! `EventId` and `EventTemplate` columns are the ground truth.
//!
//! - Grouping accuracy: logparser's `evaluator.get_accuracy` — a predicted group is correct when
//!   its set of lines equals the line set of exactly one ground-truth group; accuracy is the number
//!   of lines in correct groups over all lines (lines with an empty ground-truth `EventId` are
//!   dropped first, as `evaluate` does).
//! - Parsing accuracy: loghub-2.0's `calculate_parsing_accuracy` — the fraction of lines whose
//!   predicted template string equals the ground-truth `EventTemplate` exactly (no normalization;
//!   the ground truth already uses `<*>` and single spaces).
//! - Lines per second: one thread, parsing only (lines already in memory), the set replayed with
//!   fresh parsers until at least `--min-lines` lines were parsed.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aiops_detect::drain::{Drain, DrainConfig, DrainError, ParsedBatch, TemplateId};

/// Arguments of `aiops-bench loghub`.
#[derive(Debug, clap::Args)]
pub struct LoghubArgs {
    /// Directory holding `<Name>/<Name>_2k.log_structured.csv` per data set.
    #[arg(long)]
    pub data: PathBuf,
    /// Run Python drain3 side by side (the default; installs it with pip when missing).
    #[arg(long, overrides_with = "no_drain3")]
    pub drain3: bool,
    /// Do not run drain3.
    #[arg(long, overrides_with = "drain3")]
    pub no_drain3: bool,
    /// Also write the report lines to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Lines parsed per data set for the throughput figure (the set replayed with fresh parsers).
    #[arg(long, default_value_t = 1_000_000)]
    pub min_lines: usize,
    /// Times drain3 mines each set for its throughput figure.
    #[arg(long, default_value_t = 3)]
    pub drain3_reps: usize,
    /// Python interpreter for drain3.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The drain3 helper script (default: `scripts/drain3_run.py` of this crate's sources).
    #[arg(long)]
    pub drain3_script: Option<PathBuf>,
    /// Drain configuration as a JSON file (default: `DrainConfig::default()`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print each data set's wrongly grouped ground-truth templates (diagnostics).
    #[arg(long)]
    pub explain: bool,
}

/// Why `aiops-bench loghub` failed.
#[derive(Debug, thiserror::Error)]
pub enum LoghubError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A data set's structured CSV is missing.
    #[error("{path}: missing ground-truth file (expected <Name>/<Name>_2k.log_structured.csv)")]
    MissingFile {
        /// The expected file.
        path: PathBuf,
    },
    /// No data set in the directory.
    #[error("{dir}: no data set (no <Name>/<Name>_2k.log_structured.csv)")]
    NoDataSets {
        /// The directory.
        dir: PathBuf,
    },
    /// The CSV header lacks a needed column.
    #[error("{path}: header has no `{column}` column")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
    },
    /// The CSV is malformed.
    #[error("{path}:{line}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line of the record.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The Drain configuration was refused.
    #[error("{path}: {source}")]
    Config {
        /// The configuration file (or `default`).
        path: PathBuf,
        /// The error.
        source: DrainError,
    },
}

/// One Loghub data set: the lines' content and ground truth.
#[derive(Debug, Clone)]
pub struct LoghubSet {
    /// The data set's name (its directory).
    pub name: String,
    /// Each line's `Content`.
    pub contents: Vec<String>,
    /// Each line's ground-truth `EventId` (empty when missing).
    pub event_ids: Vec<String>,
    /// Each line's ground-truth `EventTemplate`.
    pub templates: Vec<String>,
}

/// Parses RFC 4180 CSV text (quoted fields, `""` escapes, CRLF or LF) into records, each with the
/// 1-based line where it starts.
///
/// # Errors
/// [`LoghubError::Csv`] on an unterminated quote or text after a closing quote.
pub fn parse_csv(path: &Path, text: &str) -> Result<Vec<(usize, Vec<String>)>, LoghubError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut after_quote = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    in_quotes = false;
                    after_quote = true;
                }
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                record.push(std::mem::take(&mut field));
                after_quote = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut record)));
                line += 1;
                start_line = line;
                after_quote = false;
                any = false;
            }
            '"' if field.is_empty() && !after_quote => in_quotes = true,
            _ if after_quote => {
                return Err(LoghubError::Csv {
                    path: path.to_owned(),
                    line,
                    reason: format!("unexpected {c:?} after a closing quote"),
                });
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(LoghubError::Csv {
            path: path.to_owned(),
            line: start_line,
            reason: "unterminated quoted field".into(),
        });
    }
    if any {
        record.push(field);
        records.push((start_line, record));
    }
    Ok(records)
}

/// Reads one data set's structured CSV (`Content`, `EventId`, `EventTemplate` columns).
///
/// # Errors
/// [`LoghubError::MissingFile`], [`LoghubError::Io`], [`LoghubError::Csv`],
/// [`LoghubError::MissingColumn`].
pub fn load_structured(name: &str, path: &Path) -> Result<LoghubSet, LoghubError> {
    if !path.is_file() {
        return Err(LoghubError::MissingFile {
            path: path.to_owned(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| LoghubError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let records = parse_csv(path, text)?;
    let mut rows = records
        .into_iter()
        .filter(|(_, r)| !(r.len() == 1 && r[0].is_empty()));
    let Some((_, header)) = rows.next() else {
        return Err(LoghubError::Csv {
            path: path.to_owned(),
            line: 1,
            reason: "empty file (no header)".into(),
        });
    };
    let col = |column: &'static str| {
        header
            .iter()
            .position(|h| h.trim() == column)
            .ok_or_else(|| LoghubError::MissingColumn {
                path: path.to_owned(),
                column,
            })
    };
    let (ci, ei, ti) = (col("Content")?, col("EventId")?, col("EventTemplate")?);
    let mut set = LoghubSet {
        name: name.to_owned(),
        contents: Vec::new(),
        event_ids: Vec::new(),
        templates: Vec::new(),
    };
    for (line, r) in rows {
        if r.len() != header.len() {
            return Err(LoghubError::Csv {
                path: path.to_owned(),
                line,
                reason: format!("{} fields, the header has {}", r.len(), header.len()),
            });
        }
        set.contents.push(r[ci].clone());
        set.event_ids.push(r[ei].clone());
        set.templates.push(r[ti].clone());
    }
    Ok(set)
}

/// Grouping accuracy exactly as logparser's `evaluator.get_accuracy` (after `evaluate` drops the
/// lines whose ground-truth id is empty): lines of predicted groups whose line set equals one
/// ground-truth group's line set, over all lines.
#[must_use]
pub fn grouping_accuracy<T: AsRef<str>, P: Eq + std::hash::Hash>(
    truth: &[T],
    predicted: &[P],
) -> f64 {
    let keep: Vec<usize> = (0..truth.len().min(predicted.len()))
        .filter(|&i| !truth[i].as_ref().is_empty())
        .collect();
    if keep.is_empty() {
        return 0.0;
    }
    let mut truth_size: HashMap<&str, usize> = HashMap::new();
    for &i in &keep {
        *truth_size.entry(truth[i].as_ref()).or_default() += 1;
    }
    // Predicted group → (size, the one ground-truth id of its lines, or None once two differ).
    let mut groups: HashMap<&P, (usize, Option<&str>, bool)> = HashMap::new();
    for &i in &keep {
        let t = truth[i].as_ref();
        let g = groups.entry(&predicted[i]).or_insert((0, Some(t), true));
        g.0 += 1;
        if g.1 != Some(t) {
            g.2 = false;
        }
    }
    let correct: usize = groups
        .values()
        .filter(|(size, t, pure)| *pure && t.is_some_and(|t| truth_size.get(t) == Some(size)))
        .map(|(size, _, _)| size)
        .sum();
    correct as f64 / keep.len() as f64
}

/// Parsing accuracy as loghub-2.0's `calculate_parsing_accuracy`: lines whose predicted template
/// string equals the ground-truth template exactly, over all lines.
#[must_use]
pub fn parsing_accuracy<T: AsRef<str>, P: AsRef<str>>(truth: &[T], predicted: &[P]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let ok = truth
        .iter()
        .zip(predicted)
        .filter(|(t, p)| t.as_ref() == p.as_ref())
        .count();
    ok as f64 / truth.len() as f64
}

/// Our parser's result on one set.
#[derive(Debug, Clone)]
pub struct DrainScore {
    /// Grouping accuracy.
    pub grouping_accuracy: f64,
    /// Parsing accuracy.
    pub parsing_accuracy: f64,
    /// Templates found.
    pub templates: usize,
    /// Lines per second, parsing only.
    pub lines_per_sec: f64,
    /// Lines per second of CPU time of the parsing thread (Linux; `None` elsewhere): the
    /// figure without the effect of other processes on a shared machine.
    pub lines_per_cpu_sec: Option<f64>,
    /// Each line's template id.
    pub ids: Vec<TemplateId>,
    /// Each line's predicted template string.
    pub predicted: Vec<String>,
}

/// CPU time of the calling thread in seconds, from `/proc/thread-self/schedstat` (Linux).
fn thread_cpu_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Parses the set once for accuracy (each line gets its template's final string, as logpai's
/// Drain writes it), then replays it with fresh parsers for throughput.
///
/// # Errors
/// [`DrainError`] if the configuration is refused.
pub fn score_drain(
    set: &LoghubSet,
    config: &DrainConfig,
    min_lines: usize,
) -> Result<DrainScore, DrainError> {
    let lines: Vec<&str> = set.contents.iter().map(String::as_str).collect();
    let mut drain = Drain::new(config.clone())?;
    let mut out = ParsedBatch::default();
    drain.parse_batch(lines.iter().copied(), &mut out);
    // A template may have been merged into another after some of its lines were parsed: each
    // line counts in the template its id resolves to at the end, as logpai's Drain assigns
    // lines to their final clusters.
    let ids: Vec<TemplateId> = out
        .lines
        .iter()
        .map(|l| drain.resolve(l.template_id))
        .collect();
    let predicted: Vec<&str> = ids
        .iter()
        .map(|&id| drain.template(id).map_or("", |t| t.template))
        .collect();
    let grouping = grouping_accuracy(&set.event_ids, &ids);
    let parsing = parsing_accuracy(&set.templates, &predicted);
    let templates = drain.template_count();

    let reps = min_lines.div_ceil(lines.len().max(1)).max(1);
    let mut parsed = 0usize;
    let cpu0 = thread_cpu_secs();
    let start = Instant::now();
    for _ in 0..reps {
        let mut d = Drain::new(config.clone())?;
        d.parse_batch(lines.iter().copied(), &mut out);
        parsed += out.lines.len();
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu0.zip(thread_cpu_secs()).map(|(a, b)| b - a);
    Ok(DrainScore {
        grouping_accuracy: grouping,
        parsing_accuracy: parsing,
        templates,
        lines_per_sec: parsed as f64 / secs.max(1e-9),
        lines_per_cpu_sec: cpu.filter(|&c| c > 0.0).map(|c| parsed as f64 / c),
        predicted: predicted.into_iter().map(str::to_owned).collect(),
        ids,
    })
}

/// drain3's result on one set.
#[derive(Debug, Clone)]
pub struct Drain3Score {
    /// Grouping accuracy.
    pub grouping_accuracy: f64,
    /// Parsing accuracy (its templates as `get_template()` prints them).
    pub parsing_accuracy: f64,
    /// Clusters found.
    pub templates: usize,
    /// Lines per second of `add_log_message`.
    pub lines_per_sec: f64,
}

#[derive(serde::Deserialize)]
struct Drain3Output {
    cluster_ids: Vec<u64>,
    templates: Vec<String>,
    seconds: f64,
    lines: usize,
}

/// The drain3 helper script of this crate's sources.
#[must_use]
pub fn default_drain3_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/drain3_run.py")
}

/// Makes sure `import drain3` works, installing it with pip if needed; the reason it cannot.
fn ensure_drain3(python: &str) -> Result<(), String> {
    let import_ok = |py: &str| {
        Command::new(py)
            .args(["-c", "import drain3"])
            .output()
            .map(|o| o.status.success())
    };
    match import_ok(python) {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(format!("cannot run {python}: {e}")),
    }
    eprintln!("loghub: installing drain3 (python3 -m pip install --quiet drain3)");
    let out = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "drain3"])
        .output()
        .map_err(|e| format!("cannot run {python} -m pip: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "pip install drain3 failed: {}",
            err.lines().last().unwrap_or("no output")
        ));
    }
    match import_ok(python) {
        Ok(true) => Ok(()),
        _ => Err("drain3 installed but `import drain3` still fails".into()),
    }
}

/// Runs drain3 (mode `default` or `masked`) on the set's lines in a subprocess.
///
/// # Errors
/// A sentence saying why drain3 could not run.
pub fn score_drain3(
    set: &LoghubSet,
    python: &str,
    script: &Path,
    mode: &str,
    reps: usize,
) -> Result<Drain3Score, String> {
    let mut input = tempfile::NamedTempFile::new().map_err(|e| format!("temp file: {e}"))?;
    serde_json::to_writer(&mut input, &set.contents).map_err(|e| format!("temp file: {e}"))?;
    input.flush().map_err(|e| format!("temp file: {e}"))?;
    let out = Command::new(python)
        .arg(script)
        .arg(input.path())
        .arg(mode)
        .arg(reps.max(1).to_string())
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "drain3 script failed: {}",
            err.lines().last().unwrap_or("no output")
        ));
    }
    let res: Drain3Output =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("drain3 script output: {e}"))?;
    let clusters: std::collections::BTreeSet<u64> = res.cluster_ids.iter().copied().collect();
    Ok(Drain3Score {
        grouping_accuracy: grouping_accuracy(&set.event_ids, &res.cluster_ids),
        parsing_accuracy: parsing_accuracy(&set.templates, &res.templates),
        templates: clusters.len(),
        lines_per_sec: res.lines as f64 / res.seconds.max(1e-9),
    })
}

/// The data sets in `dir`: each subdirectory `<Name>` with `<Name>_2k.log_structured.csv`, sorted
/// by name.
///
/// # Errors
/// [`LoghubError::Io`], [`LoghubError::NoDataSets`].
pub fn find_sets(dir: &Path) -> Result<Vec<(String, PathBuf)>, LoghubError> {
    let rd = std::fs::read_dir(dir).map_err(|source| LoghubError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut sets = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| LoghubError::Io {
            path: dir.to_owned(),
            source,
        })?;
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let csv = entry.path().join(format!("{name}_2k.log_structured.csv"));
        if csv.is_file() {
            sets.push((name, csv));
        }
    }
    sets.sort();
    if sets.is_empty() {
        return Err(LoghubError::NoDataSets {
            dir: dir.to_owned(),
        });
    }
    Ok(sets)
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
}

/// Prints, for each ground-truth template that is not grouped exactly, its lines and the
/// predicted groups they fell in (to see what to fix).
fn explain(set: &LoghubSet, ids: &[TemplateId], predicted: &[String]) {
    let mut wrong: HashMap<(&str, &str), usize> = HashMap::new();
    for (t, p) in set.templates.iter().zip(predicted) {
        if t != p {
            *wrong.entry((t.as_str(), p.as_str())).or_default() += 1;
        }
    }
    let mut wrong: Vec<_> = wrong.into_iter().collect();
    wrong.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for ((t, p), n) in wrong.iter().take(12) {
        eprintln!(
            "  {} template x{n}: truth {t:?}\n{:>width$}ours  {p:?}",
            set.name,
            "",
            width = set.name.len() + 16
        );
    }
    let mut by_truth: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    let mut by_pred: HashMap<TemplateId, Vec<usize>> = HashMap::new();
    for (i, t) in set.event_ids.iter().enumerate() {
        by_truth.entry(t.as_str()).or_default().push(i);
        by_pred.entry(ids[i]).or_default().push(i);
    }
    for (t, lines) in &by_truth {
        let preds: std::collections::BTreeSet<TemplateId> = lines.iter().map(|&i| ids[i]).collect();
        let exact = preds.len() == 1
            && preds
                .iter()
                .next()
                .is_some_and(|p| by_pred.get(p).map(Vec::len) == Some(lines.len()));
        if exact {
            continue;
        }
        let first = lines.first().copied().unwrap_or(0);
        eprintln!(
            "  {} {t} ({} lines, {} groups): {}",
            set.name,
            lines.len(),
            preds.len(),
            set.templates[first]
        );
        for p in preds.iter().take(4) {
            let n = by_pred.get(p).map_or(0, Vec::len);
            let ex = by_pred.get(p).and_then(|v| v.first()).copied().unwrap_or(0);
            eprintln!("      group {p} ({n} lines) e.g. {:?}", set.contents[ex]);
        }
    }
}

/// Runs `aiops-bench loghub`: prints a line per data set and the summary line last.
///
/// # Errors
/// See [`LoghubError`].
pub fn run(args: LoghubArgs) -> Result<(), LoghubError> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| LoghubError::Io {
                path: path.clone(),
                source,
            })?;
            DrainConfig::from_json(&text).map_err(|source| LoghubError::Config {
                path: path.clone(),
                source,
            })?
        }
        None => DrainConfig::default(),
    };
    config.validate().map_err(|source| LoghubError::Config {
        path: PathBuf::from("default"),
        source,
    })?;
    let sets = find_sets(&args.data)?;
    let script = args
        .drain3_script
        .clone()
        .unwrap_or_else(default_drain3_script);
    let use_drain3 = !args.no_drain3;
    let drain3_ready = if use_drain3 {
        match ensure_drain3(&args.python) {
            Ok(()) => true,
            Err(why) => {
                println!("drain3 unavailable: {why}; continuing without it");
                false
            }
        }
    } else {
        false
    };
    let mut report = Vec::new();
    let (mut ga, mut pa, mut total_lines, mut total_secs) = (0.0, 0.0, 0usize, 0.0f64);
    for (name, path) in &sets {
        let set = load_structured(name, path)?;
        let score =
            score_drain(&set, &config, args.min_lines).map_err(|source| LoghubError::Config {
                path: path.clone(),
                source,
            })?;
        if args.explain {
            explain(&set, &score.ids, &score.predicted);
        }
        let (mut d3, mut d3m) = (None, None);
        if drain3_ready {
            match score_drain3(&set, &args.python, &script, "default", args.drain3_reps) {
                Ok(s) => d3 = Some(s),
                Err(why) => println!("{name}: drain3 failed: {why}"),
            }
            match score_drain3(&set, &args.python, &script, "masked", args.drain3_reps) {
                Ok(s) => d3m = Some(s),
                Err(why) => println!("{name}: drain3 (masked) failed: {why}"),
            }
        }
        let line = format!(
            "{name} grouping_accuracy={:.4} parsing_accuracy={:.4} templates={} lines_per_sec={:.0} lines_per_cpu_sec={} \
             drain3_grouping_accuracy={} drain3_parsing_accuracy={} drain3_templates={} drain3_lines_per_sec={} \
             drain3_masked_grouping_accuracy={} drain3_masked_parsing_accuracy={} drain3_masked_lines_per_sec={}",
            score.grouping_accuracy,
            score.parsing_accuracy,
            score.templates,
            score.lines_per_sec,
            fmt_opt(score.lines_per_cpu_sec, 0),
            fmt_opt(d3.as_ref().map(|s| s.grouping_accuracy), 4),
            fmt_opt(d3.as_ref().map(|s| s.parsing_accuracy), 4),
            d3.as_ref()
                .map_or_else(|| "n/a".into(), |s| s.templates.to_string()),
            fmt_opt(d3.as_ref().map(|s| s.lines_per_sec), 0),
            fmt_opt(d3m.as_ref().map(|s| s.grouping_accuracy), 4),
            fmt_opt(d3m.as_ref().map(|s| s.parsing_accuracy), 4),
            fmt_opt(d3m.as_ref().map(|s| s.lines_per_sec), 0),
        );
        println!("{line}");
        report.push(line);
        ga += score.grouping_accuracy;
        pa += score.parsing_accuracy;
        // Overall throughput: all sets' lines over all sets' parse time.
        let lines = args.min_lines.div_ceil(set.contents.len().max(1)).max(1) * set.contents.len();
        total_lines += lines;
        total_secs += lines as f64 / score.lines_per_sec.max(1e-9);
    }
    let n = sets.len() as f64;
    let summary = format!(
        "loghub grouping_accuracy={:.4} parsing_accuracy={:.4} lines_per_sec={:.0}",
        ga / n,
        pa / n,
        total_lines as f64 / total_secs.max(1e-9)
    );
    println!("{summary}");
    report.push(summary);
    if let Some(out) = &args.out {
        let mut text = report.join("\n");
        text.push('\n');
        std::fs::write(out, text).map_err(|source| LoghubError::Io {
            path: out.clone(),
            source,
        })?;
    }
    Ok(())
}
