//! One Arrow schema per event kind, with a documented list of columns.
//!
//! Times are `Timestamp(Millisecond, "UTC")` so every kind can be windowed the same way; label
//! sets are `Map<Utf8, Utf8>` so SQL can write `labels['service']`.

use crate::kind::Kind;
use arrow_array::builder::{MapBuilder, StringBuilder};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, OnceLock};

/// The version of every schema in this crate; written in each log message's header. Bump it when a
/// column is added, removed or changes type, and keep decoding older versions.
pub const SCHEMA_VERSION: u16 = 1;

/// A column of an event kind, with the sentence that documents it.
#[derive(Debug, Clone)]
pub struct Column {
    /// The column name in Arrow and SQL.
    pub name: &'static str,
    /// The Arrow type.
    pub data_type: DataType,
    /// Whether the column may be null.
    pub nullable: bool,
    /// What the column means, for the reference.
    pub doc: &'static str,
}

/// The time zone of every timestamp column: UTC written as an offset, which Arrow and
/// DataFusion handle without a time-zone database.
pub const TIME_ZONE: &str = "+00:00";

/// The Arrow type of event time columns: milliseconds since the Unix epoch, UTC.
pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(TIME_ZONE.into()))
}

/// The Arrow type of label and attribute maps (`Map<Utf8, Utf8>`), exactly as [`MapBuilder`]
/// produces it so builders and schemas agree.
pub fn labels_type() -> DataType {
    static TYPE: OnceLock<DataType> = OnceLock::new();
    TYPE.get_or_init(|| {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        arrow_array::Array::data_type(&b.finish()).clone()
    })
    .clone()
}

fn col(name: &'static str, data_type: DataType, nullable: bool, doc: &'static str) -> Column {
    Column {
        name,
        data_type,
        nullable,
        doc,
    }
}

/// The documented columns of a kind, in schema order.
pub fn columns(kind: Kind) -> Vec<Column> {
    let utf8 = DataType::Utf8;
    match kind {
        Kind::Metrics => vec![
            col("time", time_type(), false, "Sample time (event time)."),
            col(
                "name",
                utf8,
                false,
                "Metric name, e.g. `node_cpu_seconds_total`.",
            ),
            col(
                "labels",
                labels_type(),
                false,
                "Label set without `__name__`, e.g. `{instance, job, mode}`.",
            ),
            col(
                "value",
                DataType::Float64,
                false,
                "Sample value; NaN and ±Inf are kept (Prometheus stale markers are NaN).",
            ),
        ],
        Kind::Logs => vec![
            col("time", time_type(), false, "Record time (event time)."),
            col(
                "severity",
                utf8.clone(),
                false,
                "Lower-case severity: trace, debug, info, warn, error, fatal (or the source's own word).",
            ),
            col("body", utf8, false, "The log line or message body."),
            col(
                "labels",
                labels_type(),
                false,
                "Stream / resource labels that identify where the record came from (service, host, …).",
            ),
            col(
                "attributes",
                labels_type(),
                false,
                "Per-record attributes (trace id, user, …); values as strings.",
            ),
        ],
        Kind::Alerts => vec![
            col(
                "time",
                time_type(),
                false,
                "Event time: `ends_at` of a resolved alert, else `starts_at`.",
            ),
            col(
                "fingerprint",
                utf8.clone(),
                false,
                "Stable identity of the alert: the sender's fingerprint, else a hash of its labels.",
            ),
            col("status", utf8.clone(), false, "`firing` or `resolved`."),
            col(
                "labels",
                labels_type(),
                false,
                "Alert labels (alertname, severity, …).",
            ),
            col(
                "annotations",
                labels_type(),
                false,
                "Alert annotations (summary, description, runbook_url, …).",
            ),
            col(
                "starts_at",
                time_type(),
                false,
                "When the alert started firing.",
            ),
            col(
                "ends_at",
                time_type(),
                true,
                "When the alert resolved; for a firing alert from an Alertmanager API v2 sender, when it expires unless refreshed; null otherwise.",
            ),
            col(
                "source",
                utf8.clone(),
                false,
                "Who sent it: `alertmanager`, `grafana`, `aiops`, ….",
            ),
            col(
                "generator_url",
                utf8,
                true,
                "Link back to the rule or query that produced the alert.",
            ),
        ],
        Kind::Events => vec![
            col(
                "time",
                time_type(),
                false,
                "When the event happened (event time).",
            ),
            col(
                "type",
                utf8.clone(),
                false,
                "What happened: `deploy`, `config_change`, `order`, ….",
            ),
            col(
                "message",
                utf8,
                false,
                "A human-readable sentence; may be empty.",
            ),
            col(
                "labels",
                labels_type(),
                false,
                "Identity labels (service, environment, version, …).",
            ),
            col(
                "attributes",
                labels_type(),
                false,
                "Free-form attributes; values as strings.",
            ),
        ],
    }
}

/// The Arrow schema of a kind at [`SCHEMA_VERSION`]; built once and shared.
pub fn schema_for(kind: Kind) -> SchemaRef {
    static SCHEMAS: OnceLock<[SchemaRef; 4]> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        Kind::ALL.map(|k| {
            let fields: Vec<Field> = columns(k)
                .into_iter()
                .map(|c| Field::new(c.name, c.data_type, c.nullable))
                .collect();
            Arc::new(Schema::new(fields))
        })
    });
    let idx = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
    all[idx].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_time_first() {
        for k in Kind::ALL {
            let s = schema_for(k);
            assert_eq!(s.field(0).name(), "time");
            assert_eq!(s.field(0).data_type(), &time_type());
            assert!(s.field_with_name("labels").is_ok());
        }
    }
}
