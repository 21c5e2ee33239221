//! Reading NAB's files: data CSVs (`timestamp,value`), per-row results CSVs
//! (`timestamp,…,anomaly_score,…`), the windows file (`combined_windows.json`), the profiles
//! (`config/profiles.json`), the thresholds (`config/thresholds.json`) and the per-file scores
//! (`results/<detector>/<detector>_<profile>_scores.csv`).

use super::NabError;
use super::sweeper::CostMatrix;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The three NAB profiles: NAB's name and the key of the summary line.
pub const PROFILES: [(&str, &str); 3] = [
    ("standard", "standard"),
    ("reward_low_FP_rate", "reward_low_fp"),
    ("reward_low_FN_rate", "reward_low_fn"),
];

/// NAB's `config/profiles.json` (numenta/NAB), used when no profiles file is given or found.
pub const DEFAULT_PROFILES: [(&str, CostMatrix); 3] = [
    (
        "standard",
        CostMatrix {
            tp_weight: 1.0,
            fp_weight: 0.11,
            fn_weight: 1.0,
            tn_weight: 1.0,
        },
    ),
    (
        "reward_low_FP_rate",
        CostMatrix {
            tp_weight: 1.0,
            fp_weight: 0.22,
            fn_weight: 1.0,
            tn_weight: 1.0,
        },
    ),
    (
        "reward_low_FN_rate",
        CostMatrix {
            tp_weight: 1.0,
            fp_weight: 0.11,
            fn_weight: 2.0,
            tn_weight: 1.0,
        },
    ),
];

/// One data file: its rows' timestamps (µs since 1970, as written, no time zone) and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Timestamps in µs since 1970-01-01 00:00:00.
    pub timestamps: Vec<i64>,
    /// The `value` column.
    pub values: Vec<f64>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NabError + '_ {
    move |source| NabError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a whole file, naming it on failure.
///
/// # Errors
/// [`NabError::Io`].
pub fn read_text(path: &Path) -> Result<String, NabError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`) into µs since 1970-01-01 00:00:00 — NAB's
/// timestamps, compared exactly as NAB compares its `datetime`s.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() < 19 || !(b[10] == b' ' || b[10] == b'T') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut micros = 0i64;
    if b.len() > 19 {
        let frac = t.get(20..)?;
        if b[19] != b'.' || frac.is_empty() || frac.len() > 6 {
            return None;
        }
        micros = num(20..b.len())? * 10i64.pow(6 - frac.len() as u32);
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let month_days = *days_in_month.get(usize::try_from(month - 1).ok()?)?;
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros)
}

/// A CSV file of NAB's (comma-separated, no quoting, a header row) split into rows; each row
/// keeps its 1-based line number.
struct Csv {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Csv {
    fn read(path: &Path) -> Result<Self, NabError> {
        let text = read_text(path)?;
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, head)) = lines.next() else {
            return Err(NabError::Csv {
                path: path.to_path_buf(),
                line: 1,
                reason: "empty file, no header".to_string(),
            });
        };
        let split =
            |l: &str| -> Vec<String> { l.split(',').map(|c| c.trim().to_string()).collect() };
        let header = split(head.trim_start_matches('\u{feff}'));
        let rows = lines.map(|(i, l)| (i + 1, split(l))).collect();
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    fn column(&self, name: &str) -> Result<usize, NabError> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| NabError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
            })
    }

    fn cell<'a>(&self, line: usize, row: &'a [String], col: usize) -> Result<&'a str, NabError> {
        if row.len() != self.header.len() {
            return Err(self.bad(
                line,
                format!("{} fields, the header has {}", row.len(), self.header.len()),
            ));
        }
        row.get(col)
            .map(String::as_str)
            .ok_or_else(|| self.bad(line, "missing field".to_string()))
    }

    fn bad(&self, line: usize, reason: String) -> NabError {
        NabError::Csv {
            path: self.path.clone(),
            line,
            reason,
        }
    }

    fn timestamp(&self, line: usize, cell: &str) -> Result<i64, NabError> {
        parse_timestamp(cell).ok_or_else(|| self.bad(line, format!("bad timestamp {cell:?}")))
    }

    fn float(&self, line: usize, cell: &str, what: &str) -> Result<f64, NabError> {
        cell.parse::<f64>()
            .map_err(|_| self.bad(line, format!("bad {what} {cell:?}")))
    }
}

/// Reads a data file (`timestamp,value`, other columns ignored).
///
/// # Errors
/// [`NabError::Io`], [`NabError::MissingColumn`], [`NabError::Csv`] (with the line) for a row
/// with a bad timestamp, a bad value or the wrong number of fields.
pub fn read_series(path: &Path) -> Result<Series, NabError> {
    let csv = Csv::read(path)?;
    let (tc, vc) = (csv.column("timestamp")?, csv.column("value")?);
    let mut series = Series {
        timestamps: Vec::with_capacity(csv.rows.len()),
        values: Vec::with_capacity(csv.rows.len()),
    };
    for (line, row) in &csv.rows {
        series
            .timestamps
            .push(csv.timestamp(*line, csv.cell(*line, row, tc)?)?);
        series
            .values
            .push(csv.float(*line, csv.cell(*line, row, vc)?, "value")?);
    }
    Ok(series)
}

/// Reads a per-row results file's `anomaly_score` column, and its `timestamp` column if it has
/// one (NAB itself takes the timestamps from the data file).
///
/// # Errors
/// As [`read_series`]; also a NaN or unparsable anomaly score.
pub fn read_results(path: &Path) -> Result<(Option<Vec<i64>>, Vec<f64>), NabError> {
    let csv = Csv::read(path)?;
    let sc = csv.column("anomaly_score")?;
    let tc = csv.column("timestamp").ok();
    let mut times = tc.map(|_| Vec::with_capacity(csv.rows.len()));
    let mut scores = Vec::with_capacity(csv.rows.len());
    for (line, row) in &csv.rows {
        let cell = csv.cell(*line, row, sc)?;
        let s = csv.float(*line, cell, "anomaly_score")?;
        if s.is_nan() {
            return Err(csv.bad(*line, "anomaly_score is NaN".to_string()));
        }
        scores.push(s);
        if let (Some(tc), Some(times)) = (tc, times.as_mut()) {
            times.push(csv.timestamp(*line, csv.cell(*line, row, tc)?)?);
        }
    }
    Ok((times, scores))
}

/// Reads a windows file: `{"<category>/<file>.csv": [[start, end], …]}`, windows as µs
/// timestamps, series sorted by name.
///
/// # Errors
/// [`NabError::Io`], [`NabError::Json`], [`NabError::Window`] for an unparsable timestamp or a
/// window ending before it starts.
pub fn read_windows(path: &Path) -> Result<BTreeMap<String, Vec<(i64, i64)>>, NabError> {
    let text = read_text(path)?;
    let raw: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|source| NabError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    let mut out = BTreeMap::new();
    for (series, windows) in raw {
        let mut parsed = Vec::with_capacity(windows.len());
        for (start, end) in windows {
            let bad = |reason: String| NabError::Window {
                path: path.to_path_buf(),
                series: series.clone(),
                reason,
            };
            let s =
                parse_timestamp(&start).ok_or_else(|| bad(format!("bad timestamp {start:?}")))?;
            let e = parse_timestamp(&end).ok_or_else(|| bad(format!("bad timestamp {end:?}")))?;
            if e < s {
                return Err(bad(format!("window {start} – {end} ends before it starts")));
            }
            parsed.push((s, e));
        }
        out.insert(series, parsed);
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
struct ProfileEntry {
    #[serde(rename = "CostMatrix")]
    cost_matrix: CostMatrix,
}

/// Reads a profiles file (NAB's `config/profiles.json`) and returns the three NAB profiles in
/// [`PROFILES`] order.
///
/// # Errors
/// [`NabError::Io`], [`NabError::Json`], [`NabError::Profile`] when one of the three is absent.
pub fn read_profiles(path: &Path) -> Result<Vec<(String, CostMatrix)>, NabError> {
    let text = read_text(path)?;
    let raw: BTreeMap<String, ProfileEntry> =
        serde_json::from_str(&text).map_err(|source| NabError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    PROFILES
        .iter()
        .map(|(name, _)| {
            raw.get(*name)
                .map(|p| ((*name).to_string(), p.cost_matrix))
                .ok_or_else(|| NabError::Profile {
                    path: path.to_path_buf(),
                    profile: (*name).to_string(),
                })
        })
        .collect()
}

/// One entry of NAB's `config/thresholds.json`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct PublishedThreshold {
    /// The threshold NAB's optimizer chose on the whole corpus.
    pub threshold: f64,
    /// The raw corpus score at that threshold.
    pub score: f64,
}

/// Reads a thresholds file: detector → profile → threshold and raw score.
///
/// # Errors
/// [`NabError::Io`], [`NabError::Json`].
pub fn read_thresholds(
    path: &Path,
) -> Result<BTreeMap<String, BTreeMap<String, PublishedThreshold>>, NabError> {
    let text = read_text(path)?;
    let mut all: BTreeMap<String, BTreeMap<String, PublishedThreshold>> =
        serde_json::from_str(&text).map_err(|source| NabError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    // serde_json's default float parsing can be one ulp off for 17-digit numbers such as NAB's
    // thresholds, and a threshold is compared exactly with anomaly scores: take each number as
    // Rust's correctly rounded parse of its text.
    let exact = exact_numbers(&text);
    for t in all.values_mut().flat_map(BTreeMap::values_mut) {
        for x in [&mut t.threshold, &mut t.score] {
            if let Some(&e) = exact.get(&x.to_bits()) {
                *x = e;
            }
        }
    }
    Ok(all)
}

/// Every number of a JSON text, keyed by the bits of serde_json's parse of it, valued by the
/// correctly rounded parse (`str::parse`); a key two texts disagree on is left out.
fn exact_numbers(json: &str) -> std::collections::HashMap<u64, f64> {
    let mut out = std::collections::HashMap::new();
    let mut ambiguous = std::collections::HashSet::new();
    let bytes = json.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let tok = json.get(start..i).unwrap_or("");
                if let (Ok(approx), Ok(exact)) =
                    (serde_json::from_str::<f64>(tok), tok.parse::<f64>())
                {
                    let key = approx.to_bits();
                    if out
                        .get(&key)
                        .is_some_and(|&e: &f64| e.to_bits() != exact.to_bits())
                    {
                        ambiguous.insert(key);
                    }
                    out.insert(key, exact);
                }
            }
            _ => i += 1,
        }
    }
    for key in ambiguous {
        out.remove(&key);
    }
    out
}

/// One row of NAB's `<detector>_<profile>_scores.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PublishedFileScore {
    /// The threshold NAB scored at (as printed, 12 significant digits).
    pub threshold: f64,
    /// The raw score of the file.
    pub score: f64,
    /// True positive rows.
    pub tp: u64,
    /// True negative rows.
    pub tn: u64,
    /// False positive rows.
    pub fp: u64,
    /// False negative rows.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

/// Reads a per-file scores file of NAB's (`Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,
/// Total_Count`), keyed by `File`; the `Totals` row is skipped.
///
/// # Errors
/// [`NabError::Io`], [`NabError::MissingColumn`], [`NabError::Csv`].
pub fn read_published_scores(
    path: &Path,
) -> Result<BTreeMap<String, PublishedFileScore>, NabError> {
    let csv = Csv::read(path)?;
    let cols = ["File", "Threshold", "Score", "TP", "TN", "FP", "FN"]
        .map(|c| csv.column(c))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = BTreeMap::new();
    for (line, row) in &csv.rows {
        let file = csv.cell(*line, row, cols[0])?;
        if file.is_empty() || row.first().is_some_and(|d| d == "Totals") {
            continue;
        }
        let count = |c: usize| -> Result<u64, NabError> {
            let cell = csv.cell(*line, row, cols[c])?;
            // pandas may print counts as floats ("3.0").
            cell.parse::<u64>().or_else(|_| {
                cell.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
                    .ok_or_else(|| csv.bad(*line, format!("bad count {cell:?}")))
            })
        };
        let score = PublishedFileScore {
            threshold: csv.float(*line, csv.cell(*line, row, cols[1])?, "Threshold")?,
            score: csv.float(*line, csv.cell(*line, row, cols[2])?, "Score")?,
            tp: count(3)?,
            tn: count(4)?,
            fp: count(5)?,
            fn_: count(6)?,
        };
        out.insert(file.to_string(), score);
    }
    Ok(out)
}
