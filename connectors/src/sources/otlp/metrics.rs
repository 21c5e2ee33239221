//! OTLP metrics → `metrics` rows, as the OTel Prometheus-compatibility specification maps them.
//!
//! | OTel | rows |
//! |---|---|
//! | gauge | one gauge row per point |
//! | sum, monotonic | `<name>_total` (suffix not doubled); delta points accumulated per series |
//! | sum, not monotonic | a gauge row (delta points accumulated) |
//! | histogram | `<name>_bucket{le}` (cumulative counts, `+Inf` = count), `<name>_sum`, `<name>_count` |
//! | exponential histogram | the same, with the bucket bounds base^(i+1), base = 2^(2^-scale) |
//! | summary | `<name>{quantile}`, `<name>_sum`, `<name>_count` |
//!
//! Labels: `job` = `service.namespace/service.name` (or `service.name`), `instance` =
//! `service.instance.id`, the other resource attributes, `otel_scope_name` /
//! `otel_scope_version`, then the point's attributes (which win over a resource attribute of
//! the same name); every name sanitised to Prometheus' charset, values of attributes that
//! sanitise to one name joined with `;` in key order.
//!
//! A point that cannot be stored (time outside the window, invalid labels, unspecified
//! temporality, inconsistent buckets) is rejected alone and counted for the partial-success
//! answer; the rest of the request is stored.

use super::delta::{Acc, DeltaStage, DeltaState, ExpAcc, ExpBuckets, HistAcc};
use super::names::{NameKind, label_name, metric_name};
use super::values::{fmt_f64, to_text};
use crate::error::DecodeError;
use crate::sources::validate::LabelRules;
use crate::sources::{IngestLimits, SourceBatch};
use aiops_schemas::{Kind, MetricBatchBuilder};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Num;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};
use std::collections::BTreeMap;
use std::fmt;

/// Prometheus' stale marker: what a point flagged "no recorded value" becomes.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// The point flag "no recorded value" (`DataPointFlags.FLAG_NO_RECORDED_VALUE_MASK`).
const NO_RECORDED_VALUE: u32 = 1;

/// `AggregationTemporality` values.
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

/// What a request became: its batches and what was rejected.
#[derive(Debug, Default)]
pub struct Mapped {
    /// The rows (one batch; none when nothing was accepted).
    pub batches: Vec<SourceBatch>,
    /// Data points (log records) stored.
    pub accepted: u64,
    /// Rows built from them.
    pub rows: u64,
    /// Data points (log records) rejected.
    pub rejected: u64,
    /// The first rejection (bounded text), for the partial-success message.
    pub first_error: Option<String>,
    /// Whether some point had no time (stamped with the ingest time): such a request is not
    /// identified by its content.
    pub timeless: bool,
}

impl Mapped {
    pub(crate) fn reject(&mut self, e: DecodeError) {
        self.reject_n(1, || e.to_string());
    }

    /// Counts `n` rejections for one reason.
    pub(crate) fn reject_n(&mut self, n: u64, why: impl FnOnce() -> String) {
        self.rejected += n;
        if n > 0 && self.first_error.is_none() {
            self.first_error = Some(crate::error::bound_text(&why(), 512));
        }
    }

    /// The partial-success message: how many were rejected and the first reason.
    pub fn rejection_message(&self, what: &str) -> Option<String> {
        let first = self.first_error.as_ref()?;
        Some(format!(
            "{} of {} {what} rejected; first: {first}",
            self.rejected,
            self.rejected + self.accepted
        ))
    }
}

/// Where a point is, formatted only for an error.
#[derive(Clone, Copy)]
struct At<'a> {
    r: usize,
    s: usize,
    m: usize,
    name: &'a str,
    p: usize,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name: String = self.name.chars().take(64).collect();
        write!(
            f,
            "resourceMetrics[{}].scopeMetrics[{}].metrics[{}] ({name:?}) dataPoint {}",
            self.r, self.s, self.m, self.p
        )
    }
}

/// Labels sorted by name.
type Labels = Vec<(String, String)>;

/// Attributes as labels: names sanitised, values of keys that sanitise to one name joined with
/// `;` in key order.
fn attr_labels<'a>(attrs: impl IntoIterator<Item = &'a KeyValue>) -> BTreeMap<String, String> {
    let mut by: BTreeMap<String, Vec<(&'a str, String)>> = BTreeMap::new();
    for kv in attrs {
        by.entry(label_name(&kv.key))
            .or_default()
            .push((kv.key.as_str(), to_text(kv.value.as_ref())));
    }
    by.into_iter()
        .map(|(k, mut vs)| {
            if vs.len() == 1 {
                return (k, vs.pop().map(|(_, v)| v).unwrap_or_default());
            }
            vs.sort_by(|a, b| a.0.cmp(b.0));
            (
                k,
                vs.into_iter().map(|(_, v)| v).collect::<Vec<_>>().join(";"),
            )
        })
        .collect()
}

/// The labels every series of one resource carries: `job`, `instance`, the other resource
/// attributes (sanitised).
pub fn resource_labels(attrs: &[KeyValue]) -> BTreeMap<String, String> {
    let (mut name, mut ns, mut inst) = (None, None, None);
    let mut rest = Vec::new();
    for kv in attrs {
        match kv.key.as_str() {
            "service.name" => name = Some(to_text(kv.value.as_ref())),
            "service.namespace" => ns = Some(to_text(kv.value.as_ref())),
            "service.instance.id" => inst = Some(to_text(kv.value.as_ref())),
            _ => rest.push(kv),
        }
    }
    let mut out = attr_labels(rest);
    let job = match (ns, name) {
        (Some(ns), Some(n)) if !ns.is_empty() => Some(format!("{ns}/{n}")),
        (_, Some(n)) => Some(n),
        (Some(ns), None) => Some(ns),
        (None, None) => None,
    };
    if let Some(job) = job {
        out.insert("job".into(), job);
    }
    if let Some(inst) = inst {
        out.insert("instance".into(), inst);
    }
    out
}

/// One point's labels: the resource's and scope's, overridden by the point's attributes.
fn point_labels(base: &BTreeMap<String, String>, attrs: &[KeyValue]) -> Labels {
    let mut all = base.clone();
    all.extend(attr_labels(attrs));
    all.into_iter().collect()
}

/// The key of a delta series: its name and labels.
fn series_key(name: &str, labels: &Labels) -> String {
    let mut k = String::with_capacity(name.len() + 16 * labels.len());
    k.push_str(name);
    for (n, v) in labels {
        k.push('\u{1f}');
        k.push_str(n);
        k.push('=');
        k.push_str(v);
    }
    k
}

/// Maps a request, accumulating its delta points into `stage` on top of `base`.
pub fn map_metrics(
    req: &ExportMetricsServiceRequest,
    now_ms: i64,
    limits: &IngestLimits,
    base: &DeltaState,
    stage: &mut DeltaStage,
    source: &'static str,
) -> Result<Mapped, DecodeError> {
    let mut m = Mapper {
        out: Mapped::default(),
        b: MetricBatchBuilder::new(),
        now_ms,
        limits,
        base,
        stage,
    };
    for (r, rm) in req.resource_metrics.iter().enumerate() {
        let res = resource_labels(
            rm.resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default(),
        );
        for (s, sm) in rm.scope_metrics.iter().enumerate() {
            let mut scoped = res.clone();
            if let Some(scope) = &sm.scope {
                if !scope.name.is_empty() {
                    scoped.insert("otel_scope_name".into(), scope.name.clone());
                }
                if !scope.version.is_empty() {
                    scoped.insert("otel_scope_version".into(), scope.version.clone());
                }
            }
            for (mi, metric) in sm.metrics.iter().enumerate() {
                let at = |p| At {
                    r,
                    s,
                    m: mi,
                    name: &metric.name,
                    p,
                };
                match &metric.data {
                    None => {}
                    Some(Data::Gauge(g)) => {
                        let name = metric_name(&metric.name, &metric.unit, NameKind::Gauge);
                        for (p, dp) in g.data_points.iter().enumerate() {
                            m.number(at(p), &name, &scoped, dp, None);
                        }
                    }
                    Some(Data::Sum(sum)) => {
                        let kind = if sum.is_monotonic {
                            NameKind::Counter
                        } else {
                            NameKind::Gauge
                        };
                        let name = metric_name(&metric.name, &metric.unit, kind);
                        for (p, dp) in sum.data_points.iter().enumerate() {
                            m.number(at(p), &name, &scoped, dp, Some(sum.aggregation_temporality));
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        let name = metric_name(&metric.name, &metric.unit, NameKind::Other);
                        let names = HistNames::new(&name);
                        for (p, dp) in h.data_points.iter().enumerate() {
                            m.histogram(at(p), &names, &scoped, dp, h.aggregation_temporality);
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        let name = metric_name(&metric.name, &metric.unit, NameKind::Other);
                        let names = HistNames::new(&name);
                        for (p, dp) in h.data_points.iter().enumerate() {
                            m.exponential(at(p), &names, &scoped, dp, h.aggregation_temporality);
                        }
                    }
                    Some(Data::Summary(summary)) => {
                        let name = metric_name(&metric.name, &metric.unit, NameKind::Other);
                        let names = HistNames::new(&name);
                        for (p, dp) in summary.data_points.iter().enumerate() {
                            m.summary(at(p), &names, &scoped, dp);
                        }
                    }
                }
            }
        }
    }
    let range = m.b.time_range();
    let built = m.b.finish();
    m.out.batches = SourceBatch::single(Kind::Metrics, source, range, built)?;
    Ok(m.out)
}

/// `<name>`, `<name>_bucket`, `<name>_sum`, `<name>_count`.
struct HistNames {
    base: String,
    bucket: String,
    sum: String,
    count: String,
}

impl HistNames {
    fn new(base: &str) -> HistNames {
        HistNames {
            base: base.to_string(),
            bucket: format!("{base}_bucket"),
            sum: format!("{base}_sum"),
            count: format!("{base}_count"),
        }
    }
}

struct Mapper<'a> {
    out: Mapped,
    b: MetricBatchBuilder,
    now_ms: i64,
    limits: &'a IngestLimits,
    base: &'a DeltaState,
    stage: &'a mut DeltaStage,
}

impl Mapper<'_> {
    /// The point's time (ms) and labels after the shared checks, or the rejection.
    fn check(
        &mut self,
        at: At<'_>,
        name: &str,
        scoped: &BTreeMap<String, String>,
        attrs: &[KeyValue],
        time_ns: u64,
        extra: Option<&str>,
    ) -> Option<(i64, Labels)> {
        let labels = point_labels(scoped, attrs);
        // The bucket's `le` (a quantile's `quantile`) is one more label on its rows.
        if let Some(x) = extra
            && labels.len() >= self.limits.max_labels
            && !labels.iter().any(|(k, _)| k == x)
        {
            self.out.reject(DecodeError::InvalidLabel {
                at: at.to_string(),
                field: "attributes".into(),
                message: format!(
                    "has {} labels; with {x:?} that is more than {} (ingest.max_labels)",
                    labels.len(),
                    self.limits.max_labels
                ),
            });
            return None;
        }
        let t = if time_ns == 0 {
            self.out.timeless = true;
            self.now_ms
        } else {
            (time_ns / 1_000_000) as i64
        };
        let checked = self
            .limits
            .check_metric_name(at, "name", name)
            .and_then(|()| {
                self.limits.check_labels(
                    at,
                    "attributes",
                    LabelRules::Prometheus,
                    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )
            })
            .and_then(|()| self.limits.check_time(at, "timeUnixNano", t, self.now_ms));
        match checked {
            Ok(()) => Some((t, labels)),
            Err(e) => {
                self.out.reject(e);
                None
            }
        }
    }

    fn temporality(&mut self, at: At<'_>, t: i32) -> Option<bool> {
        match t {
            DELTA => Some(true),
            CUMULATIVE => Some(false),
            other => {
                self.out.reject(DecodeError::InvalidValue {
                    at: at.to_string(),
                    field: "aggregationTemporality".into(),
                    message: format!(
                        "is {other}; a sum or histogram must be DELTA (1) or CUMULATIVE (2)"
                    ),
                });
                None
            }
        }
    }

    fn row(&mut self, t: i64, name: &str, labels: &Labels, extra: Option<(&str, &str)>, v: f64) {
        self.out.rows += 1;
        match extra {
            None => self.b.push(
                t,
                name,
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                v,
            ),
            Some((ek, ev)) => {
                // Keep the labels sorted; the bucket's own `le` (`quantile`) replaces an
                // attribute of that name.
                let pos = labels.partition_point(|(k, _)| k.as_str() < ek);
                let before = labels[..pos].iter().map(|(k, v)| (k.as_str(), v.as_str()));
                let after = labels[pos..]
                    .iter()
                    .filter(|(k, _)| k != ek)
                    .map(|(k, v)| (k.as_str(), v.as_str()));
                self.b.push(
                    t,
                    name,
                    before.chain(std::iter::once((ek, ev))).chain(after),
                    v,
                );
            }
        }
    }

    fn number(
        &mut self,
        at: At<'_>,
        name: &str,
        scoped: &BTreeMap<String, String>,
        dp: &NumberDataPoint,
        temporality: Option<i32>,
    ) {
        let Some((t, labels)) =
            self.check(at, name, scoped, &dp.attributes, dp.time_unix_nano, None)
        else {
            return;
        };
        let delta = match temporality {
            None => false,
            Some(tp) => match self.temporality(at, tp) {
                Some(d) => d,
                None => return,
            },
        };
        if dp.flags & NO_RECORDED_VALUE != 0 {
            self.out.accepted += 1;
            self.row(t, name, &labels, None, STALE_NAN);
            return;
        }
        let v = match dp.value {
            Some(Num::AsDouble(d)) => d,
            Some(Num::AsInt(i)) => i as f64,
            None => {
                self.out.reject(DecodeError::MissingField {
                    at: at.to_string(),
                    field: "asDouble or asInt",
                });
                return;
            }
        };
        let v = if delta && !v.is_nan() {
            match self
                .stage
                .add(self.base, series_key(name, &labels), Acc::Sum(v))
            {
                Acc::Sum(total) => *total,
                _ => v,
            }
        } else {
            v
        };
        self.out.accepted += 1;
        self.row(t, name, &labels, None, v);
    }

    fn stale_histogram(&mut self, t: i64, names: &HistNames, labels: &Labels) {
        self.row(t, &names.bucket, labels, Some(("le", "+Inf")), STALE_NAN);
        self.row(t, &names.sum, labels, None, STALE_NAN);
        self.row(t, &names.count, labels, None, STALE_NAN);
    }

    fn histogram(
        &mut self,
        at: At<'_>,
        names: &HistNames,
        scoped: &BTreeMap<String, String>,
        dp: &HistogramDataPoint,
        temporality: i32,
    ) {
        let Some((t, labels)) = self.check(
            at,
            &names.base,
            scoped,
            &dp.attributes,
            dp.time_unix_nano,
            Some("le"),
        ) else {
            return;
        };
        let Some(delta) = self.temporality(at, temporality) else {
            return;
        };
        if dp.flags & NO_RECORDED_VALUE != 0 {
            self.out.accepted += 1;
            self.stale_histogram(t, names, &labels);
            return;
        }
        if !dp.bucket_counts.is_empty() && dp.bucket_counts.len() != dp.explicit_bounds.len() + 1 {
            self.out.reject(DecodeError::InvalidValue {
                at: at.to_string(),
                field: "bucketCounts".into(),
                message: format!(
                    "has {} counts for {} explicitBounds; it must have one more count than bounds",
                    dp.bucket_counts.len(),
                    dp.explicit_bounds.len()
                ),
            });
            return;
        }
        if dp.explicit_bounds.windows(2).any(|w| w[0] >= w[1])
            || dp.explicit_bounds.iter().any(|b| b.is_nan())
        {
            self.out.reject(DecodeError::InvalidValue {
                at: at.to_string(),
                field: "explicitBounds".into(),
                message: "must be strictly increasing numbers".into(),
            });
            return;
        }
        let point = HistAcc {
            bounds: dp.explicit_bounds.clone(),
            counts: dp.bucket_counts.clone(),
            count: dp.count,
            sum: dp.sum,
        };
        let h = if delta {
            match self.stage.add(
                self.base,
                series_key(&names.base, &labels),
                Acc::Hist(point.clone()),
            ) {
                Acc::Hist(h) => h.clone(),
                _ => point,
            }
        } else {
            point
        };
        self.out.accepted += 1;
        if !h.counts.is_empty() {
            let mut cum = 0u64;
            for (b, c) in h.bounds.iter().zip(&h.counts) {
                cum = cum.saturating_add(*c);
                self.row(
                    t,
                    &names.bucket,
                    &labels,
                    Some(("le", &fmt_f64(*b))),
                    cum as f64,
                );
            }
        }
        self.row(
            t,
            &names.bucket,
            &labels,
            Some(("le", "+Inf")),
            h.count as f64,
        );
        if let Some(s) = h.sum {
            self.row(t, &names.sum, &labels, None, s);
        }
        self.row(t, &names.count, &labels, None, h.count as f64);
    }

    fn exponential(
        &mut self,
        at: At<'_>,
        names: &HistNames,
        scoped: &BTreeMap<String, String>,
        dp: &ExponentialHistogramDataPoint,
        temporality: i32,
    ) {
        let Some((t, labels)) = self.check(
            at,
            &names.base,
            scoped,
            &dp.attributes,
            dp.time_unix_nano,
            Some("le"),
        ) else {
            return;
        };
        let Some(delta) = self.temporality(at, temporality) else {
            return;
        };
        if dp.flags & NO_RECORDED_VALUE != 0 {
            self.out.accepted += 1;
            self.stale_histogram(t, names, &labels);
            return;
        }
        if !(-10..=20).contains(&dp.scale) {
            self.out.reject(DecodeError::InvalidValue {
                at: at.to_string(),
                field: "scale".into(),
                message: format!("is {}; the specification allows -10 to 20", dp.scale),
            });
            return;
        }
        let side = |b: &Option<
            opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets,
        >| {
            b.as_ref()
                .map(|b| ExpBuckets {
                    offset: b.offset,
                    counts: b.bucket_counts.clone(),
                })
                .unwrap_or_default()
        };
        let (positive, negative) = (side(&dp.positive), side(&dp.negative));
        let too_wide = [&positive, &negative].iter().any(|b| {
            i64::from(b.offset) + b.counts.len() as i64 > i64::from(i32::MAX)
                || b.counts.len() > 16_384
        });
        if too_wide {
            self.out.reject(DecodeError::InvalidValue {
                at: at.to_string(),
                field: "positive/negative".into(),
                message: "has more than 16384 buckets or an index past 2^31".into(),
            });
            return;
        }
        let point = ExpAcc {
            scale: dp.scale,
            zero_count: dp.zero_count,
            zero_threshold: dp.zero_threshold.abs(),
            positive,
            negative,
            count: dp.count,
            sum: dp.sum,
        };
        let h = if delta {
            match self.stage.add(
                self.base,
                series_key(&names.base, &labels),
                Acc::Exp(point.clone()),
            ) {
                Acc::Exp(h) => h.clone(),
                _ => point,
            }
        } else {
            point
        };
        self.out.accepted += 1;
        for (le, cum) in exponential_buckets(&h) {
            self.row(
                t,
                &names.bucket,
                &labels,
                Some(("le", &fmt_f64(le))),
                cum as f64,
            );
        }
        self.row(
            t,
            &names.bucket,
            &labels,
            Some(("le", "+Inf")),
            h.count as f64,
        );
        if let Some(s) = h.sum {
            self.row(t, &names.sum, &labels, None, s);
        }
        self.row(t, &names.count, &labels, None, h.count as f64);
    }

    fn summary(
        &mut self,
        at: At<'_>,
        names: &HistNames,
        scoped: &BTreeMap<String, String>,
        dp: &SummaryDataPoint,
    ) {
        let Some((t, labels)) = self.check(
            at,
            &names.base,
            scoped,
            &dp.attributes,
            dp.time_unix_nano,
            Some("quantile"),
        ) else {
            return;
        };
        self.out.accepted += 1;
        let stale = dp.flags & NO_RECORDED_VALUE != 0;
        for q in &dp.quantile_values {
            let v = if stale { STALE_NAN } else { q.value };
            self.row(
                t,
                &names.base,
                &labels,
                Some(("quantile", &fmt_f64(q.quantile))),
                v,
            );
        }
        let (sum, count) = if stale {
            (STALE_NAN, STALE_NAN)
        } else {
            (dp.sum, dp.count as f64)
        };
        self.row(t, &names.sum, &labels, None, sum);
        self.row(t, &names.count, &labels, None, count);
    }
}

/// The upper bound of exponential bucket `index` at `scale`: base^(index+1) with
/// base = 2^(2^-scale), i.e. 2^((index+1) · 2^-scale). Bucket `index` covers
/// (base^index, base^(index+1)].
pub fn exponential_upper_bound(scale: i32, index: i32) -> f64 {
    exp2_index(scale, index.saturating_add(1))
}

/// 2^(index · 2^-scale) = base^index.
fn exp2_index(scale: i32, index: i32) -> f64 {
    (f64::from(index) * 2f64.powi(-scale)).exp2()
}

/// The cumulative `(le, count)` buckets of an exponential histogram, most negative first:
/// negative bucket `i` (values in [-base^(i+1), -base^i)) ends at `-base^i`, the zero bucket at
/// the zero threshold, positive bucket `i` at `base^(i+1)`. Bounds that overflow to infinity
/// are folded into `+Inf`, which the caller writes from the total count.
pub fn exponential_buckets(h: &ExpAcc) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(h.negative.counts.len() + h.positive.counts.len() + 1);
    let mut cum = 0u64;
    for (i, c) in h.negative.counts.iter().enumerate().rev() {
        cum = cum.saturating_add(*c);
        let le = -exp2_index(h.scale, h.negative.offset + i as i32);
        if le.is_finite() {
            out.push((le, cum));
        }
    }
    cum = cum.saturating_add(h.zero_count);
    if h.zero_count > 0 || !h.negative.counts.is_empty() || !h.positive.counts.is_empty() {
        out.push((h.zero_threshold, cum));
    }
    for (i, c) in h.positive.counts.iter().enumerate() {
        cum = cum.saturating_add(*c);
        let le = exp2_index(h.scale, h.positive.offset + i as i32 + 1);
        if le.is_finite() && le > h.zero_threshold {
            out.push((le, cum));
        }
    }
    out
}
