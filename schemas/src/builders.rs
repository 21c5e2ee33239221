//! Append-only builders for batches of each kind.
//!
//! Sources parse straight into these: values are copied into Arrow buffers, so a batch of N events
//! costs a handful of growing buffers, not N allocations. Each builder tracks the event-time range
//! for the log message header.

use crate::kind::Kind;
use crate::schema::schema_for;
use arrow_array::builder::{
    Float64Builder, MapBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::ArrowError;
use std::sync::Arc;

/// A label/attribute map column under construction.
type LabelsBuilder = MapBuilder<StringBuilder, StringBuilder>;

fn labels_builder() -> LabelsBuilder {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
}

fn time_builder() -> TimestampMillisecondBuilder {
    TimestampMillisecondBuilder::new().with_timezone(crate::schema::TIME_ZONE)
}

/// Appends one map entry list. `MapBuilder::append` fails only when keys and values differ in
/// length, which cannot happen here because both are pushed together.
fn append_map<K: AsRef<str>, V: AsRef<str>>(
    b: &mut LabelsBuilder,
    entries: impl IntoIterator<Item = (K, V)>,
) {
    for (k, v) in entries {
        b.keys().append_value(k.as_ref());
        b.values().append_value(v.as_ref());
    }
    let _ = b.append(true);
}

/// Event-time range seen by a builder.
#[derive(Debug, Clone, Copy)]
struct TimeRange {
    min: i64,
    max: i64,
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange {
            min: i64::MAX,
            max: i64::MIN,
        }
    }
}

impl TimeRange {
    fn add(&mut self, t: i64) {
        self.min = self.min.min(t);
        self.max = self.max.max(t);
    }
}

macro_rules! common_methods {
    () => {
        /// Number of events appended so far.
        pub fn len(&self) -> usize {
            self.len
        }

        /// Whether nothing was appended.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }

        /// The smallest and largest event time appended, in Unix milliseconds, if any.
        pub fn time_range(&self) -> Option<(i64, i64)> {
            (self.len > 0).then_some((self.range.min, self.range.max))
        }
    };
}

/// Builds a batch of metric samples.
#[derive(Debug)]
pub struct MetricBatchBuilder {
    time: TimestampMillisecondBuilder,
    name: StringBuilder,
    labels: LabelsBuilder,
    value: Float64Builder,
    len: usize,
    range: TimeRange,
}

impl Default for MetricBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        MetricBatchBuilder {
            time: time_builder(),
            name: StringBuilder::new(),
            labels: labels_builder(),
            value: Float64Builder::new(),
            len: 0,
            range: TimeRange::default(),
        }
    }

    /// Appends one sample; `labels` must not contain `__name__`.
    pub fn push<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        time_ms: i64,
        name: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        value: f64,
    ) {
        self.time.append_value(time_ms);
        self.name.append_value(name);
        append_map(&mut self.labels, labels);
        self.value.append_value(value);
        self.len += 1;
        self.range.add(time_ms);
    }

    common_methods!();

    /// The batch of everything appended; the builder is empty afterwards.
    ///
    /// # Errors
    /// Only on an internal inconsistency (a bug), never because of input values.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.len = 0;
        self.range = TimeRange::default();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.value.finish()),
        ];
        RecordBatch::try_new(schema_for(Kind::Metrics), cols)
    }
}

/// Builds a batch of log records.
#[derive(Debug)]
pub struct LogBatchBuilder {
    time: TimestampMillisecondBuilder,
    severity: StringBuilder,
    body: StringBuilder,
    labels: LabelsBuilder,
    attributes: LabelsBuilder,
    len: usize,
    range: TimeRange,
}

impl Default for LogBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LogBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        LogBatchBuilder {
            time: time_builder(),
            severity: StringBuilder::new(),
            body: StringBuilder::new(),
            labels: labels_builder(),
            attributes: labels_builder(),
            len: 0,
            range: TimeRange::default(),
        }
    }

    /// Appends one log record.
    pub fn push<K1, V1, K2, V2>(
        &mut self,
        time_ms: i64,
        severity: &str,
        body: &str,
        labels: impl IntoIterator<Item = (K1, V1)>,
        attributes: impl IntoIterator<Item = (K2, V2)>,
    ) where
        K1: AsRef<str>,
        V1: AsRef<str>,
        K2: AsRef<str>,
        V2: AsRef<str>,
    {
        self.time.append_value(time_ms);
        self.severity.append_value(severity);
        self.body.append_value(body);
        append_map(&mut self.labels, labels);
        append_map(&mut self.attributes, attributes);
        self.len += 1;
        self.range.add(time_ms);
    }

    common_methods!();

    /// The batch of everything appended; the builder is empty afterwards.
    ///
    /// # Errors
    /// Only on an internal inconsistency (a bug), never because of input values.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.len = 0;
        self.range = TimeRange::default();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.attributes.finish()),
        ];
        RecordBatch::try_new(schema_for(Kind::Logs), cols)
    }
}

/// One alert, as a borrowed view for [`AlertBatchBuilder::push`].
#[derive(Debug, Clone, Copy)]
pub struct AlertRow<'a, L, A> {
    /// Stable identity of the alert.
    pub fingerprint: &'a str,
    /// `true` when resolved, `false` while firing.
    pub resolved: bool,
    /// Alert labels.
    pub labels: L,
    /// Alert annotations.
    pub annotations: A,
    /// Start time, Unix ms.
    pub starts_at_ms: i64,
    /// End time, Unix ms, if known.
    pub ends_at_ms: Option<i64>,
    /// Sender: `alertmanager`, `grafana`, ….
    pub source: &'a str,
    /// Link to the producing rule, if any.
    pub generator_url: Option<&'a str>,
}

/// Builds a batch of alert notifications.
#[derive(Debug)]
pub struct AlertBatchBuilder {
    time: TimestampMillisecondBuilder,
    fingerprint: StringBuilder,
    status: StringBuilder,
    labels: LabelsBuilder,
    annotations: LabelsBuilder,
    starts_at: TimestampMillisecondBuilder,
    ends_at: TimestampMillisecondBuilder,
    source: StringBuilder,
    generator_url: StringBuilder,
    len: usize,
    range: TimeRange,
}

impl Default for AlertBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl AlertBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        AlertBatchBuilder {
            time: time_builder(),
            fingerprint: StringBuilder::new(),
            status: StringBuilder::new(),
            labels: labels_builder(),
            annotations: labels_builder(),
            starts_at: time_builder(),
            ends_at: time_builder(),
            source: StringBuilder::new(),
            generator_url: StringBuilder::new(),
            len: 0,
            range: TimeRange::default(),
        }
    }

    /// Appends one alert. Its event time is `ends_at` when resolved (and known), else `starts_at`.
    pub fn push<K1, V1, K2, V2, L, A>(&mut self, row: AlertRow<'_, L, A>)
    where
        K1: AsRef<str>,
        V1: AsRef<str>,
        K2: AsRef<str>,
        V2: AsRef<str>,
        L: IntoIterator<Item = (K1, V1)>,
        A: IntoIterator<Item = (K2, V2)>,
    {
        let time = match (row.resolved, row.ends_at_ms) {
            (true, Some(end)) => end,
            _ => row.starts_at_ms,
        };
        self.time.append_value(time);
        self.fingerprint.append_value(row.fingerprint);
        self.status
            .append_value(if row.resolved { "resolved" } else { "firing" });
        append_map(&mut self.labels, row.labels);
        append_map(&mut self.annotations, row.annotations);
        self.starts_at.append_value(row.starts_at_ms);
        self.ends_at.append_option(row.ends_at_ms);
        self.source.append_value(row.source);
        self.generator_url.append_option(row.generator_url);
        self.len += 1;
        self.range.add(time);
    }

    common_methods!();

    /// The batch of everything appended; the builder is empty afterwards.
    ///
    /// # Errors
    /// Only on an internal inconsistency (a bug), never because of input values.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.len = 0;
        self.range = TimeRange::default();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.fingerprint.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.annotations.finish()),
            Arc::new(self.starts_at.finish()),
            Arc::new(self.ends_at.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.generator_url.finish()),
        ];
        RecordBatch::try_new(schema_for(Kind::Alerts), cols)
    }
}

/// Builds a batch of generic events (deploys, config changes, business events).
#[derive(Debug)]
pub struct EventBatchBuilder {
    time: TimestampMillisecondBuilder,
    kind: StringBuilder,
    message: StringBuilder,
    labels: LabelsBuilder,
    attributes: LabelsBuilder,
    len: usize,
    range: TimeRange,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        EventBatchBuilder {
            time: time_builder(),
            kind: StringBuilder::new(),
            message: StringBuilder::new(),
            labels: labels_builder(),
            attributes: labels_builder(),
            len: 0,
            range: TimeRange::default(),
        }
    }

    /// Appends one event of type `event_type` (`deploy`, `config_change`, …).
    pub fn push<K1, V1, K2, V2>(
        &mut self,
        time_ms: i64,
        event_type: &str,
        message: &str,
        labels: impl IntoIterator<Item = (K1, V1)>,
        attributes: impl IntoIterator<Item = (K2, V2)>,
    ) where
        K1: AsRef<str>,
        V1: AsRef<str>,
        K2: AsRef<str>,
        V2: AsRef<str>,
    {
        self.time.append_value(time_ms);
        self.kind.append_value(event_type);
        self.message.append_value(message);
        append_map(&mut self.labels, labels);
        append_map(&mut self.attributes, attributes);
        self.len += 1;
        self.range.add(time_ms);
    }

    common_methods!();

    /// The batch of everything appended; the builder is empty afterwards.
    ///
    /// # Errors
    /// Only on an internal inconsistency (a bug), never because of input values.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.len = 0;
        self.range = TimeRange::default();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.attributes.finish()),
        ];
        RecordBatch::try_new(schema_for(Kind::Events), cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_match_schemas() {
        let mut m = MetricBatchBuilder::new();
        m.push(5, "up", [("job", "node")], 1.0);
        m.push(3, "up", [("job", "x")], 0.0);
        assert_eq!(m.time_range(), Some((3, 5)));
        let b = m.finish().unwrap();
        assert_eq!(b.num_rows(), 2);
        assert!(m.is_empty());

        let mut l = LogBatchBuilder::new();
        l.push(1, "info", "hello", [("service", "api")], [("k", "v")]);
        assert_eq!(l.finish().unwrap().num_rows(), 1);

        let mut a = AlertBatchBuilder::new();
        a.push(AlertRow {
            fingerprint: "abc",
            resolved: true,
            labels: [("alertname", "X")],
            annotations: [("summary", "s")],
            starts_at_ms: 1,
            ends_at_ms: Some(9),
            source: "alertmanager",
            generator_url: None,
        });
        assert_eq!(a.time_range(), Some((9, 9)));
        assert_eq!(a.finish().unwrap().num_rows(), 1);

        let mut e = EventBatchBuilder::new();
        e.push(
            1,
            "deploy",
            "v2",
            [("service", "api")],
            std::iter::empty::<(&str, &str)>(),
        );
        assert_eq!(e.finish().unwrap().num_rows(), 1);
    }
}
