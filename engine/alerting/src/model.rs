//! The one alert model every source is normalized into, and its stable fingerprint.
//!
//! Sources differ in how they name things (Alertmanager's `severity` label, Datadog's priority,
//! CloudWatch's alarm name); by the time an alert reaches the engine it has the fields below, so
//! dedup, routing and incidents never look at where it came from except through `source`.

use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::TimestampMillisecondType;
use aiops_schemas::arrow_array::{Array, MapArray, RecordBatch, StringArray};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A label or annotation set, sorted by name so iteration (and hashing) is deterministic.
pub type Labels = BTreeMap<String, String>;

/// Whether an alert fires or has resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The condition holds.
    Firing,
    /// The condition no longer holds.
    Resolved,
}

impl Status {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One observation of an alert, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable identity: a hash of the identifying labels (see [`fingerprint`]).
    pub fingerprint: String,
    /// The `alertname` label (or the source's alarm name).
    pub name: String,
    /// Firing or resolved.
    pub status: Status,
    /// Normalized severity: `critical`, `warning`, `info`, or the sender's own word lower-cased.
    pub severity: String,
    /// The service the alert is about (`service` label, else `job`, else `app`); may be empty.
    pub service: String,
    /// All labels.
    pub labels: Labels,
    /// Annotations (summary, description, runbook_url, …).
    pub annotations: Labels,
    /// When the alert started, Unix ms.
    pub starts_at_ms: i64,
    /// When it resolved; for a firing alert from an Alertmanager API v2 sender, when it expires
    /// unless refreshed.
    pub ends_at_ms: Option<i64>,
    /// The sender: `alertmanager`, `grafana`, `pipeline`, `datadog`, `cloudwatch`, `api`, ….
    pub source: String,
    /// Link back to the rule that produced it.
    pub generator_url: Option<String>,
}

/// Maps the many ways senders spell severity onto `critical`, `warning` and `info`; words it does
/// not know are kept (lower-cased) so routing can still match them.
pub fn normalize_severity(s: &str) -> String {
    let l = s.trim().to_ascii_lowercase();
    match l.as_str() {
        "critical" | "crit" | "fatal" | "emergency" | "emerg" | "alert" | "page" | "p1"
        | "sev1" | "high" | "error" | "err" | "disaster" => "critical".into(),
        "warning" | "warn" | "p2" | "p3" | "sev2" | "sev3" | "medium" | "average" => {
            "warning".into()
        }
        "info" | "informational" | "notice" | "low" | "p4" | "p5" | "sev4" | "none" | "ok" => {
            "info".into()
        }
        _ => l,
    }
}

/// The stable fingerprint of a label set: 64-bit FNV-1a over `name=value` pairs of the
/// identifying labels in name order (all labels when `identifying` is `None`), as 16 hex digits.
/// Labels missing from the set are skipped, so adding an identifying label to the config does not
/// change the fingerprint of alerts that do not carry it.
pub fn fingerprint(labels: &Labels, identifying: Option<&[String]>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (k, v) in labels {
        if let Some(ids) = identifying
            && !ids.iter().any(|i| i == k)
        {
            continue;
        }
        eat(k.as_bytes());
        eat(b"\xff");
        eat(v.as_bytes());
        eat(b"\xfe");
    }
    format!("{h:016x}")
}

/// Why an alert batch could not be read.
#[derive(Debug, thiserror::Error)]
#[error("alert batch: column {column}: {detail}")]
pub struct BatchError {
    /// The column.
    pub column: &'static str,
    /// What is wrong.
    pub detail: String,
}

fn string_col<'a>(b: &'a RecordBatch, name: &'static str) -> Result<&'a StringArray, BatchError> {
    b.column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or(BatchError {
            column: name,
            detail: "missing or not Utf8".into(),
        })
}

fn map_col<'a>(b: &'a RecordBatch, name: &'static str) -> Result<&'a MapArray, BatchError> {
    b.column_by_name(name)
        .and_then(|c| c.as_map_opt())
        .ok_or(BatchError {
            column: name,
            detail: "missing or not a map".into(),
        })
}

/// Row `i` of a `map<utf8, utf8>` column (labels, annotations, attributes) as a sorted map; a
/// null value reads as the empty string, a null row as no entries.
pub fn map_row(m: &MapArray, i: usize) -> Labels {
    let mut out = Labels::new();
    if m.is_null(i) {
        return out;
    }
    let entries = m.value(i);
    let (Some(k), Some(v)) = (
        entries.column(0).as_string_opt::<i32>(),
        entries.column(1).as_string_opt::<i32>(),
    ) else {
        return out;
    };
    for j in 0..entries.len() {
        if k.is_valid(j) {
            let val = if v.is_valid(j) { v.value(j) } else { "" };
            out.insert(k.value(j).to_string(), val.to_string());
        }
    }
    out
}

/// The alerts of one batch of the `alerts` kind (see `aiops_schemas::schema`), normalized; the
/// fingerprint is left as the sender gave it and is recomputed by the engine from its config.
///
/// # Errors
/// [`BatchError`] when a column is missing or of the wrong type.
pub fn alerts_from_batch(b: &RecordBatch) -> Result<Vec<Alert>, BatchError> {
    let fp = string_col(b, "fingerprint")?;
    let status = string_col(b, "status")?;
    let labels = map_col(b, "labels")?;
    let annotations = map_col(b, "annotations")?;
    let source = string_col(b, "source")?;
    let url = string_col(b, "generator_url")?;
    let ts = |name: &'static str| {
        b.column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or(BatchError {
                column: name,
                detail: "missing or not a millisecond timestamp".into(),
            })
    };
    let starts = ts("starts_at")?;
    let ends = ts("ends_at")?;
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let labels = map_row(labels, i);
        let name = labels.get("alertname").cloned().unwrap_or_default();
        let severity = normalize_severity(
            labels
                .get("severity")
                .or_else(|| labels.get("priority"))
                .map_or("", String::as_str),
        );
        let service = ["service", "job", "app"]
            .iter()
            .find_map(|k| labels.get(*k))
            .cloned()
            .unwrap_or_default();
        out.push(Alert {
            fingerprint: fp.value(i).to_string(),
            name,
            status: if status.value(i) == "resolved" {
                Status::Resolved
            } else {
                Status::Firing
            },
            severity,
            service,
            annotations: map_row(annotations, i),
            labels,
            starts_at_ms: starts.value(i),
            ends_at_ms: ends.is_valid(i).then(|| ends.value(i)),
            source: source.value(i).to_string(),
            generator_url: url.is_valid(i).then(|| url.value(i).to_string()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprint_uses_identifying_labels_only() {
        let a = labels(&[("alertname", "Down"), ("instance", "a"), ("pod", "x1")]);
        let b = labels(&[("alertname", "Down"), ("instance", "a"), ("pod", "x2")]);
        assert_ne!(fingerprint(&a, None), fingerprint(&b, None));
        let ids = vec!["alertname".to_string(), "instance".to_string()];
        assert_eq!(fingerprint(&a, Some(&ids)), fingerprint(&b, Some(&ids)));
        // Boundaries between names and values matter: {ab=c} is not {a=bc}.
        assert_ne!(
            fingerprint(&labels(&[("ab", "c")]), None),
            fingerprint(&labels(&[("a", "bc")]), None)
        );
    }

    #[test]
    fn severities_normalize() {
        assert_eq!(normalize_severity("CRIT"), "critical");
        assert_eq!(normalize_severity("P3"), "warning");
        assert_eq!(normalize_severity("low"), "info");
        assert_eq!(normalize_severity("Bizarre"), "bizarre");
    }
}
