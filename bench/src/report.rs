//! Results as JSON (with the machine and provenance) and as a human table; every result carries a
//! flat list of [`Figure`]s so `compare` works on any benchmark.

use crate::machine::{Machine, Provenance};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// What "better" means for a figure, which also decides the words `compare` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FigureKind {
    /// Higher is better (samples/s, events/s): "faster" / "slower".
    Rate,
    /// Lower is better (latency): "faster" / "slower".
    Latency,
    /// Lower is better (bytes per sample): "smaller" / "larger".
    Size,
}

/// One number of a benchmark, named so two results can be matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Stable name, e.g. `embedded.ingest.samples_per_s`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Unit for humans: `samples/s`, `µs`, `B/sample`.
    pub unit: String,
    /// Direction of "better".
    pub kind: FigureKind,
}

impl Figure {
    /// A figure.
    pub fn new(name: impl Into<String>, value: f64, unit: &str, kind: FigureKind) -> Figure {
        Figure {
            name: name.into(),
            value,
            unit: unit.to_string(),
            kind,
        }
    }
}

/// The common head of every results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report<T> {
    /// Which benchmark: `ingest`, `demo-rate`.
    pub benchmark: String,
    /// Where it ran.
    pub machine: Machine,
    /// What ran.
    pub provenance: Provenance,
    /// The benchmark's own details.
    pub details: T,
    /// Every figure, flat, for `compare`.
    pub figures: Vec<Figure>,
}

/// Formats a number with thousands separators and a sensible precision.
pub fn human(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() < 100.0 {
        return format!("{v:.2}");
    }
    let int = v.round() as i128;
    let digits = int.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if int < 0 { format!("-{out}") } else { out }
}

/// A two-column table of figures.
pub fn table(figures: &[Figure]) -> String {
    let width = figures.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in figures {
        let _ = writeln!(out, "{:<width$}  {:>16} {}", f.name, human(f.value), f.unit);
    }
    out
}

/// How `b` compares with the baseline `a`, in words: `1.12× slower`, `1.30× faster`,
/// `no change (±5%)`; `n/a` when the baseline is zero or not finite.
pub fn verdict(kind: FigureKind, a: f64, b: f64) -> String {
    if !(a.is_finite() && b.is_finite()) || a == 0.0 || b == 0.0 {
        return "n/a".to_string();
    }
    let ratio = b / a;
    if (ratio - 1.0).abs() <= 0.05 {
        return "no change (±5%)".to_string();
    }
    let (better, worse) = match kind {
        FigureKind::Rate | FigureKind::Latency => ("faster", "slower"),
        FigureKind::Size => ("smaller", "larger"),
    };
    let improved = match kind {
        FigureKind::Rate => ratio > 1.0,
        FigureKind::Latency | FigureKind::Size => ratio < 1.0,
    };
    let factor = if ratio > 1.0 { ratio } else { 1.0 / ratio };
    format!("{factor:.2}× {}", if improved { better } else { worse })
}

/// Lines comparing every figure present in both lists (B against baseline A), then the names
/// only one side has.
pub fn compare(a: &[Figure], b: &[Figure]) -> String {
    let width = a.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for fa in a {
        match b.iter().find(|fb| fb.name == fa.name) {
            Some(fb) => {
                let _ = writeln!(
                    out,
                    "{:<width$}  {:>14} → {:>14} {:<10} {}",
                    fa.name,
                    human(fa.value),
                    human(fb.value),
                    fa.unit,
                    verdict(fa.kind, fa.value, fb.value)
                );
            }
            None => {
                let _ = writeln!(out, "{:<width$}  only in A", fa.name);
            }
        }
    }
    for fb in b.iter().filter(|fb| !a.iter().any(|fa| fa.name == fb.name)) {
        let _ = writeln!(out, "{:<width$}  only in B", fb.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_words() {
        assert_eq!(verdict(FigureKind::Rate, 100.0, 89.0), "1.12× slower");
        assert_eq!(verdict(FigureKind::Rate, 100.0, 130.0), "1.30× faster");
        assert_eq!(verdict(FigureKind::Rate, 100.0, 104.0), "no change (±5%)");
        assert_eq!(verdict(FigureKind::Latency, 100.0, 130.0), "1.30× slower");
        assert_eq!(verdict(FigureKind::Latency, 130.0, 100.0), "1.30× faster");
        assert_eq!(verdict(FigureKind::Size, 10.0, 5.0), "2.00× smaller");
        assert_eq!(verdict(FigureKind::Size, 5.0, 10.0), "2.00× larger");
        assert_eq!(verdict(FigureKind::Rate, 0.0, 10.0), "n/a");
    }

    #[test]
    fn compare_matches_by_name() {
        let a = vec![
            Figure::new("x", 100.0, "samples/s", FigureKind::Rate),
            Figure::new("gone", 1.0, "µs", FigureKind::Latency),
        ];
        let b = vec![
            Figure::new("x", 50.0, "samples/s", FigureKind::Rate),
            Figure::new("new", 1.0, "µs", FigureKind::Latency),
        ];
        let text = compare(&a, &b);
        assert!(text.contains("2.00× slower"), "{text}");
        assert!(text.contains("gone  only in A"), "{text}");
        assert!(text.contains("new") && text.contains("only in B"), "{text}");
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(1_234_567.4), "1,234,567");
        assert_eq!(human(12.345), "12.35");
        assert_eq!(human(-1000.0), "-1,000");
    }
}
