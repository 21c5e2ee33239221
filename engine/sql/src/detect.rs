//! Detectors in pipeline SQL: `anomaly(x)` and `time_until(x, threshold)` judge each group's
//! value window after window, with per-series state that lives in the pipeline's checkpoint.
//!
//! ```sql
//! INSERT INTO cpu_anomalies
//! SELECT labels['instance'] AS host,
//!        avg(value) AS load,
//!        anomaly(avg(value), 'ensemble', 0.9) AS load_score
//! FROM metrics WHERE name = 'node_load1'
//! GROUP BY tumble(time, INTERVAL '1 minute'), labels['instance']
//! ```
//!
//! A series is one output column of one group: the group's identity is the set of its string
//! columns (as for alert rules). For DataFusion both functions are the identity on their first
//! argument (so the pipeline plans and batch SQL gives the value); the [`DetectStage`] that runs
//! after each window result replaces the column's value:
//!
//! - `anomaly(x [, 'detector' [, threshold]])` → the detector's score in `[0, 1]`
//!   (default detector `ensemble`, default threshold 0.9). When a series' score reaches the
//!   threshold, one *anomaly event* (`type = 'anomaly'` on the `events` stream) marks the start
//!   of the episode; the next one comes after the score fell below the threshold again. The
//!   event explains itself: the value, the expected value and band, the direction, the detector,
//!   the signal that fired and the context that made the value unusual, how long the series has
//!   been watched and the detector's confidence, as attributes and in its message. The alerting
//!   engine reads these events as root-cause evidence.
//! - `time_until(x, threshold [, 'expected' | 'earliest' | 'latest'])` → seconds until the
//!   forecast of `x` crosses `threshold` (in the direction the forecast moves), or NULL when no
//!   crossing is forecast within the horizon. The forecast is a band: `expected` (default) is
//!   when its point forecast crosses, `earliest` when its near edge does, `latest` when its far
//!   edge does ([`EtaPick`]). Chain an alert rule on the output (`HAVING min(eta) < 4 * 3600`)
//!   for predictive alerts.
//!
//! Decisions are final at window close, as for alert rules: a late revision of a window is
//! scored against a copy of the series' state and does not change it. Series unseen for
//! [`SERIES_TTL_MS`] of event time are forgotten, so churning label sets do not grow the state
//! without bound.

use crate::runtime::ID_COLUMNS;
use aiops_detect::forecast::{ForecastConfig, Forecaster};
use aiops_detect::{AnyDetector, Detector, DetectorConfig, Direction, Signal, Verdict};
use aiops_schemas::builders::EventBatchBuilder;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Schema, UInt32Type};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The SQL name of the anomaly function.
pub const ANOMALY: &str = "anomaly";
/// The SQL name of the time-until-threshold function.
pub const TIME_UNTIL: &str = "time_until";
/// Score at or above which an anomaly event is written, when the SQL gives none.
pub const DEFAULT_THRESHOLD: f64 = 0.9;
/// The detector `anomaly(x)` uses when the SQL names none.
pub const DEFAULT_DETECTOR: &str = "ensemble";
/// A series not seen for this long (event time) is forgotten: 2 days, long enough to keep a
/// daily baseline across a missed day.
pub const SERIES_TTL_MS: i64 = 2 * 86_400_000;
/// Version of the checkpoint format; a checkpoint of another version is refused.
const CHECKPOINT_VERSION: u32 = 1;

/// What one detecting column computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SpecKind {
    /// `anomaly(x, detector, threshold)`.
    Anomaly {
        /// The detector's name, as written.
        detector: String,
        /// Its configuration (boxed: detector configurations are large, `TimeUntil` is not).
        config: Box<DetectorConfig>,
        /// Score at which an anomaly event is written.
        threshold: f64,
    },
    /// `time_until(x, threshold [, 'expected'|'earliest'|'latest'])`.
    TimeUntil {
        /// The level whose crossing is forecast.
        threshold: f64,
        /// Which crossing time the column holds (plans of releases before it: `expected`).
        #[serde(default)]
        pick: EtaPick,
    },
}

/// Which of a forecast's crossing times `time_until()` returns: the forecast is a band, so the
/// threshold is crossed first by its near edge, then by the point forecast, then by its far edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtaPick {
    /// When the point forecast crosses (the default).
    #[default]
    Expected,
    /// When the near edge of the prediction interval crosses: the earliest plausible time.
    Earliest,
    /// When the far edge crosses: by then the crossing is all but certain; NULL when that is
    /// beyond the forecast's horizon.
    Latest,
}

impl EtaPick {
    /// The pick named `name` (as SQL writes it, case-insensitive).
    pub fn by_name(name: &str) -> Option<EtaPick> {
        match name.to_ascii_lowercase().as_str() {
            "expected" => Some(EtaPick::Expected),
            "earliest" => Some(EtaPick::Earliest),
            "latest" => Some(EtaPick::Latest),
            _ => None,
        }
    }
}

/// A SELECT column computed by a detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectSpec {
    /// The output column (its alias).
    pub column: String,
    /// What it computes.
    pub kind: SpecKind,
}

/// Why a pipeline's use of a detector function is refused; the message is shown with the
/// position of the call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{function}(): {reason}")]
pub struct SpecError {
    /// `anomaly` or `time_until`.
    pub function: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// The identity UDF behind `anomaly` and `time_until`: returns its first argument as Float64.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DetectFn {
    name: &'static str,
    signature: Signature,
}

/// The `anomaly` UDF, ready to register.
pub fn anomaly_udf() -> ScalarUDF {
    ScalarUDF::from(DetectFn {
        name: ANOMALY,
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

/// The `time_until` UDF, ready to register.
pub fn time_until_udf() -> ScalarUDF {
    ScalarUDF::from(DetectFn {
        name: TIME_UNTIL,
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for DetectFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args.first() {
            Some(t) if t.is_numeric() || *t == DataType::Null => Ok(DataType::Float64),
            Some(t) => exec_err!("{}: the value must be a number, not {t}", self.name),
            None => exec_err!("{}: give the value to judge as first argument", self.name),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        // The stage writes NULL where a series is warming up or no crossing is forecast.
        Ok(Arc::new(Field::new(
            self.name,
            self.return_type(&types)?,
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(first) = args.args.first() else {
            return exec_err!("{}: missing value", self.name);
        };
        Ok(match first {
            ColumnarValue::Array(a) => ColumnarValue::Array(cast(a, &DataType::Float64)?),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(s.cast_to(&DataType::Float64)?),
        })
    }
}

/// The detector columns of a planned query: each top-level SELECT item that is a call of
/// `anomaly` or `time_until`. A call anywhere else (inside an expression, in WHERE or HAVING)
/// is refused, because only a whole output column can carry per-series state.
///
/// # Errors
/// [`SpecError`] naming the function and the problem.
pub fn specs(plan: &LogicalPlan) -> Result<Vec<DetectSpec>, SpecError> {
    let LogicalPlan::Projection(proj) = plan else {
        return match find_call(plan) {
            Some(f) => Err(misplaced(f)),
            None => Ok(Vec::new()),
        };
    };
    let mut out = Vec::new();
    for (expr, field) in proj.expr.iter().zip(proj.schema.fields()) {
        let inner = match expr {
            Expr::Alias(a) => a.expr.as_ref(),
            e => e,
        };
        if let Expr::ScalarFunction(f) = inner
            && let name @ (ANOMALY | TIME_UNTIL) = f.func.name()
        {
            if let Some(nested) = f.args.iter().find_map(find_call_expr) {
                return Err(misplaced(nested));
            }
            let kind = if name == ANOMALY {
                anomaly_kind(&f.args)?
            } else {
                time_until_kind(&f.args)?
            };
            out.push(DetectSpec {
                column: field.name().clone(),
                kind,
            });
        } else if let Some(f) = find_call_expr(expr) {
            return Err(misplaced(f));
        }
    }
    if let Some(f) = find_call(proj.input.as_ref()) {
        return Err(misplaced(f));
    }
    Ok(out)
}

fn misplaced(function: &'static str) -> SpecError {
    SpecError {
        function,
        reason: format!(
            "use it as a whole SELECT column, e.g. `{function}(avg(value){}) AS score`; it keeps state per series across windows, so it cannot be part of an expression, WHERE or HAVING",
            if function == TIME_UNTIL { ", 0" } else { "" }
        ),
    }
}

fn find_call_expr(e: &Expr) -> Option<&'static str> {
    let mut found = None;
    let _ = e.apply(|e| {
        if let Expr::ScalarFunction(f) = e {
            match f.func.name() {
                ANOMALY => found = Some(ANOMALY),
                TIME_UNTIL => found = Some(TIME_UNTIL),
                _ => return Ok(TreeNodeRecursion::Continue),
            }
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn find_call(plan: &LogicalPlan) -> Option<&'static str> {
    let mut found = None;
    let _ = plan.apply(|node| {
        for e in node.expressions() {
            if let Some(f) = find_call_expr(&e) {
                found = Some(f);
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        Expr::Cast(c) => literal(&c.expr),
        Expr::TryCast(c) => literal(&c.expr),
        _ => None,
    }
}

fn number(e: &Expr) -> Option<f64> {
    let v = literal(e)?;
    match v.cast_to(&DataType::Float64).ok()? {
        ScalarValue::Float64(Some(x)) if x.is_finite() => Some(x),
        _ => None,
    }
}

fn anomaly_kind(args: &[Expr]) -> Result<SpecKind, SpecError> {
    let bad = |reason: String| SpecError {
        function: ANOMALY,
        reason,
    };
    if args.is_empty() || args.len() > 3 {
        return Err(bad(format!(
            "takes (value [, 'detector' [, threshold]]), got {} arguments",
            args.len()
        )));
    }
    let detector = match args.get(1) {
        None => DEFAULT_DETECTOR.to_string(),
        Some(e) => match literal(e) {
            Some(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => s.clone(),
            _ => {
                return Err(bad(format!(
                    "the detector must be a string literal, one of {}",
                    DetectorConfig::NAMES.join(", ")
                )));
            }
        },
    };
    let config = DetectorConfig::by_name(&detector).map_err(|e| bad(e.to_string()))?;
    config.build().map_err(|e| bad(e.to_string()))?;
    let threshold = match args.get(2) {
        None => DEFAULT_THRESHOLD,
        Some(e) => match number(e) {
            Some(t) if t > 0.0 && t <= 1.0 => t,
            _ => {
                return Err(bad(
                    "the threshold must be a number literal in (0, 1]".to_string()
                ));
            }
        },
    };
    Ok(SpecKind::Anomaly {
        detector,
        config: Box::new(config),
        threshold,
    })
}

fn time_until_kind(args: &[Expr]) -> Result<SpecKind, SpecError> {
    let bad = |reason: String| SpecError {
        function: TIME_UNTIL,
        reason,
    };
    let (threshold, pick) = match args {
        [_, t] => (t, None),
        [_, t, p] => (t, Some(p)),
        _ => {
            return Err(bad(format!(
                "takes (value, threshold [, 'expected' | 'earliest' | 'latest']), got {} arguments",
                args.len()
            )));
        }
    };
    let Some(threshold) = number(threshold) else {
        return Err(bad("the threshold must be a number literal".to_string()));
    };
    let pick = match pick {
        None => EtaPick::Expected,
        Some(e) => {
            let name = match literal(e) {
                Some(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => Some(s),
                _ => None,
            };
            match name.and_then(|n| EtaPick::by_name(n)) {
                Some(p) => p,
                None => {
                    return Err(bad(format!(
                        "the third argument picks the crossing time, one of 'expected' (the point forecast, default), 'earliest' (the near edge of the prediction interval), 'latest' (its far edge); got {}",
                        match name {
                            Some(n) => format!("'{n}'"),
                            None => "an expression that is not a string literal".to_string(),
                        }
                    )));
                }
            }
        }
    };
    Ok(SpecKind::TimeUntil { threshold, pick })
}

/// Why the stage failed on an emission or a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The emission lacks a column of the SELECT the stage was built for.
    #[error("pipeline {pipeline}: the emitted rows lack column {column:?}")]
    MissingColumn {
        /// The pipeline.
        pipeline: String,
        /// The missing column.
        column: String,
    },
    /// A detector could not be built (a bug: specs are checked when the pipeline plans).
    #[error("pipeline {pipeline}: {detail}")]
    Detector {
        /// The pipeline.
        pipeline: String,
        /// What failed.
        detail: String,
    },
    /// Arrow failed to read the rows or build the output.
    #[error("pipeline {pipeline}: {source}")]
    Arrow {
        /// The pipeline.
        pipeline: String,
        /// The cause.
        source: ArrowError,
    },
    /// A checkpoint cannot be read back.
    #[error("pipeline {pipeline}: detector checkpoint: {detail}")]
    Checkpoint {
        /// The pipeline.
        pipeline: String,
        /// What is wrong.
        detail: String,
    },
}

/// The running state of one series.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum SeriesState {
    /// An anomaly detector and whether an anomaly episode is open.
    Anomaly {
        detector: AnyDetector,
        in_episode: bool,
    },
    /// A forecaster.
    Forecast { forecaster: Forecaster },
}

/// One series with the first and the last window it was fed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Series {
    last_window_ms: i64,
    /// For the time watched in anomaly events of detectors that do not report it; absent in
    /// checkpoints of releases before it (then counted from the first window after restore).
    #[serde(default)]
    first_window_ms: Option<i64>,
    state: SeriesState,
}

/// The serializable state of the stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    pipeline: String,
    /// By spec index, then by group fingerprint (so outputs and checkpoints are ordered).
    series: Vec<BTreeMap<String, Series>>,
    /// Window start of the last sweep of expired series.
    last_sweep_ms: i64,
}

/// What a stage produced for one emission.
#[derive(Debug)]
pub struct Detected {
    /// The emitted rows with the detector columns filled in.
    pub batch: RecordBatch,
    /// Anomaly events (the `events` schema), if any episode started.
    pub events: Option<RecordBatch>,
}

/// The detector stage of one pipeline: applies its [`DetectSpec`]s to each window result.
#[derive(Debug, Clone)]
pub struct DetectStage {
    pipeline: String,
    specs: Vec<DetectSpec>,
    /// String columns (the group identity).
    labels: Vec<String>,
    state: State,
}

impl DetectStage {
    /// The stage of pipeline `name` for `specs` over rows of `select` (the SELECT schema,
    /// `event_id`/`revision` ignored), or `None` when the pipeline uses no detector.
    pub fn new(name: &str, specs: &[DetectSpec], select: &Schema) -> Option<DetectStage> {
        if specs.is_empty() {
            return None;
        }
        let labels = select
            .fields()
            .iter()
            .filter(|f| !ID_COLUMNS.contains(&f.name().as_str()))
            .filter(|f| {
                matches!(
                    f.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                )
            })
            .map(|f| f.name().clone())
            .collect();
        Some(DetectStage {
            pipeline: name.to_string(),
            specs: specs.to_vec(),
            labels,
            state: State {
                version: CHECKPOINT_VERSION,
                pipeline: name.to_string(),
                series: vec![BTreeMap::new(); specs.len()],
                last_sweep_ms: i64::MIN,
            },
        })
    }

    /// Series held, over all detector columns.
    pub fn series(&self) -> usize {
        self.state.series.iter().map(BTreeMap::len).sum()
    }

    fn arrow(&self) -> impl Fn(ArrowError) -> DetectError + '_ {
        move |source| DetectError::Arrow {
            pipeline: self.pipeline.clone(),
            source,
        }
    }

    /// Judges the rows emitted for the window starting at `window_start_ms`: returns them with
    /// each detector column replaced by its result, and the anomaly events of episodes that
    /// started in this window.
    ///
    /// # Errors
    /// [`DetectError`] when a column is missing or Arrow fails.
    pub fn on_emission(
        &mut self,
        window_start_ms: i64,
        batch: &RecordBatch,
    ) -> Result<Detected, DetectError> {
        let opts = FormatOptions::default();
        let mut label_cols = Vec::with_capacity(self.labels.len());
        for name in &self.labels {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| DetectError::MissingColumn {
                    pipeline: self.pipeline.clone(),
                    column: name.clone(),
                })?;
            let f = ArrayFormatter::try_new(c.as_ref(), &opts).map_err(self.arrow())?;
            label_cols.push((name.as_str(), c, f));
        }
        // One fingerprint and label set per row, shared by every detector column.
        let mut groups: Vec<(String, BTreeMap<String, String>)> =
            Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let mut labels = BTreeMap::new();
            for (name, c, f) in &label_cols {
                if c.is_valid(row) {
                    let v = f.value(row).to_string();
                    if !v.is_empty() {
                        labels.insert((*name).to_string(), v);
                    }
                }
            }
            groups.push((crate::alert_rule::fingerprint(&labels), labels));
        }
        let revisions = batch
            .column_by_name(ID_COLUMNS[1])
            .and_then(|c| c.as_primitive_opt::<UInt32Type>());
        let schema = batch.schema();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let mut events = EventBatchBuilder::new();
        let mut n_events = 0usize;
        for (k, spec) in self.specs.iter().enumerate() {
            let Some(idx) = schema.index_of(&spec.column).ok() else {
                return Err(DetectError::MissingColumn {
                    pipeline: self.pipeline.clone(),
                    column: spec.column.clone(),
                });
            };
            let values = cast(&columns[idx], &DataType::Float64).map_err(self.arrow())?;
            let values = values.as_primitive::<Float64Type>();
            let mut out: Vec<Option<f64>> = Vec::with_capacity(batch.num_rows());
            for (row, (fp, labels)) in groups.iter().enumerate() {
                let v = if values.is_valid(row) {
                    values.value(row)
                } else {
                    f64::NAN
                };
                let revision = revisions.is_some_and(|r| r.is_valid(row) && r.value(row) > 0);
                let map = &mut self.state.series[k];
                let series = match map.get_mut(fp) {
                    Some(s) => s,
                    None => {
                        let state = match &spec.kind {
                            SpecKind::Anomaly { config, .. } => SeriesState::Anomaly {
                                detector: config.build().map_err(|e| DetectError::Detector {
                                    pipeline: self.pipeline.clone(),
                                    detail: e.to_string(),
                                })?,
                                in_episode: false,
                            },
                            SpecKind::TimeUntil { .. } => SeriesState::Forecast {
                                forecaster: Forecaster::new(ForecastConfig::default()).map_err(
                                    |e| DetectError::Detector {
                                        pipeline: self.pipeline.clone(),
                                        detail: e.to_string(),
                                    },
                                )?,
                            },
                        };
                        map.entry(fp.clone()).or_insert(Series {
                            last_window_ms: i64::MIN,
                            first_window_ms: None,
                            state,
                        })
                    }
                };
                // A revision, or a window not after the last one fed, is judged on a copy.
                let final_judgement = !revision && window_start_ms > series.last_window_ms;
                match (&spec.kind, &mut series.state) {
                    (
                        SpecKind::Anomaly {
                            detector,
                            threshold,
                            ..
                        },
                        SeriesState::Anomaly {
                            detector: d,
                            in_episode,
                        },
                    ) => {
                        let verdict = if final_judgement {
                            d.observe(window_start_ms, v)
                        } else {
                            d.clone().observe(window_start_ms, v)
                        };
                        out.push((!verdict.warming_up && v.is_finite()).then_some(verdict.score));
                        if final_judgement {
                            series.last_window_ms = window_start_ms;
                            series.first_window_ms =
                                series.first_window_ms.or(Some(window_start_ms));
                            let anomalous = !verdict.warming_up && verdict.score >= *threshold;
                            if anomalous && !*in_episode {
                                let src = EventSource {
                                    pipeline: &self.pipeline,
                                    column: &spec.column,
                                    detector,
                                    group: labels,
                                    watched_ms: series
                                        .first_window_ms
                                        .map_or(0, |f| window_start_ms - f),
                                };
                                push_event(&mut events, &src, window_start_ms, v, &verdict);
                                n_events += 1;
                            }
                            if v.is_finite() {
                                *in_episode = anomalous;
                            }
                        }
                    }
                    (
                        SpecKind::TimeUntil { threshold, pick },
                        SeriesState::Forecast { forecaster },
                    ) => {
                        let eta = if final_judgement {
                            forecaster.observe(window_start_ms, v);
                            series.last_window_ms = window_start_ms;
                            crossing(forecaster, *threshold, *pick)
                        } else {
                            let mut f = forecaster.clone();
                            f.observe(window_start_ms, v);
                            crossing(&f, *threshold, *pick)
                        };
                        out.push(eta.map(|ms| ms as f64 / 1000.0));
                    }
                    // A spec's series are built from that spec, so the pair always matches.
                    _ => out.push(None),
                }
            }
            columns[idx] = Arc::new(Float64Array::from(out));
        }
        self.sweep(window_start_ms);
        let batch = RecordBatch::try_new(schema, columns).map_err(self.arrow())?;
        let events = if n_events > 0 {
            Some(events.finish().map_err(self.arrow())?)
        } else {
            None
        };
        Ok(Detected { batch, events })
    }

    /// Forgets series unseen for [`SERIES_TTL_MS`], at most once per window start.
    fn sweep(&mut self, now_ms: i64) {
        if now_ms <= self.state.last_sweep_ms {
            return;
        }
        self.state.last_sweep_ms = now_ms;
        let horizon = now_ms.saturating_sub(SERIES_TTL_MS);
        for map in &mut self.state.series {
            map.retain(|_, s| s.last_window_ms >= horizon);
        }
    }

    /// The stage's state as bytes, stored with the pipeline's checkpoint.
    ///
    /// # Errors
    /// [`DetectError::Checkpoint`] if a state does not serialize (a non-finite number that
    /// JSON cannot hold is written as null by serde_json, so this is a bug if it happens).
    pub fn checkpoint(&self) -> Result<Vec<u8>, DetectError> {
        serde_json::to_vec(&self.state).map_err(|e| DetectError::Checkpoint {
            pipeline: self.pipeline.clone(),
            detail: e.to_string(),
        })
    }

    /// Replaces the state with one written by [`DetectStage::checkpoint`] of the same pipeline.
    ///
    /// # Errors
    /// [`DetectError::Checkpoint`] when the bytes are not such a checkpoint; the state is then
    /// unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), DetectError> {
        let bad = |detail: String| DetectError::Checkpoint {
            pipeline: self.pipeline.clone(),
            detail,
        };
        let state: State = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if state.version != CHECKPOINT_VERSION {
            return Err(bad(format!(
                "format version {} (this build reads {CHECKPOINT_VERSION})",
                state.version
            )));
        }
        if state.pipeline != self.pipeline {
            return Err(bad(format!("written by pipeline {}", state.pipeline)));
        }
        if state.series.len() != self.specs.len() {
            return Err(bad(format!(
                "{} detector columns (this pipeline has {})",
                state.series.len(),
                self.specs.len()
            )));
        }
        self.state = state;
        Ok(())
    }
}

/// The crossing time `pick` names, ms after the last point; None when not within the horizon.
fn crossing(f: &Forecaster, threshold: f64, pick: EtaPick) -> Option<i64> {
    match pick {
        // The point forecast alone: no need to follow the interval's edges.
        EtaPick::Expected => f.time_until(threshold, Direction::None),
        EtaPick::Earliest => f.eta(threshold, Direction::None).map(|e| e.earliest_ms),
        EtaPick::Latest => f.eta(threshold, Direction::None).and_then(|e| e.latest_ms),
    }
}

/// Formats a number for messages and attributes: shortest round-trip form.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".to_string()
    }
}

/// A number for a sentence: four significant digits, no trailing zeros (`812`, `0.0123`,
/// `240.3`); attributes keep the exact value ([`num`]).
fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return num(v);
    }
    let digits = (3 - v.abs().log10().floor() as i64).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration for a sentence, in its two largest units: `45 s`, `3 h 20 min`, `2 d 4 h`.
fn human_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let parts = [(d, "d"), (h, "h"), (m, "min"), (sec, "s")];
    let Some(first) = parts.iter().position(|(n, _)| *n > 0) else {
        return "0 s".to_string();
    };
    parts[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n} {u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A period as an adjective: `1-day`, `7-day`, `12-hour`, `90-min`.
fn period_words(ms: i64) -> String {
    match ms {
        ms if ms % 86_400_000 == 0 => format!("{}-day", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}-hour", ms / 3_600_000),
        ms => format!("{}-min", (ms as f64 / 60_000.0).round() as i64),
    }
}

/// The signal an anomaly event names: the detector's, or, for a detector that does not say,
/// `value` when the value is outside the band it gave (what its score then measured).
fn signal_of(value: f64, v: &Verdict) -> Signal {
    if v.signal == Signal::None && (value > v.upper || value < v.lower) {
        Signal::Value
    } else {
        v.signal
    }
}

/// The clause saying what made the value unusual: the signal's sentence, with the cycle named
/// when the detector found one.
fn context_of(signal: Signal, period_ms: i64) -> String {
    match signal {
        Signal::Seasonal if period_ms > 0 => format!(
            "the value is unusual for this phase of its {} cycle",
            period_words(period_ms)
        ),
        Signal::None => "the detector did not say which of its statistics fired".to_string(),
        s => s.describe().to_string(),
    }
}

/// An anomaly event's explanation: `value 812 is above the expected 240 [180, 300]; the value
/// is unusual for this phase of its 1-day cycle; watched 3 h 20 min; confidence 0.41`.
fn explanation(value: f64, v: &Verdict, context: &str, watched_ms: i64) -> String {
    let mut out = format!("value {}", short(value));
    if v.expected.is_finite() {
        let word = match v.direction {
            Direction::Up => "above",
            Direction::Down => "below",
            Direction::None => "off",
        };
        out.push_str(&format!(" is {word} the expected {}", short(v.expected)));
        if v.lower.is_finite() && v.upper.is_finite() {
            out.push_str(&format!(" [{}, {}]", short(v.lower), short(v.upper)));
        }
    }
    out.push_str("; ");
    out.push_str(context);
    if watched_ms > 0 {
        out.push_str(&format!("; watched {}", human_ms(watched_ms)));
    }
    // A detector that does not measure its confidence leaves 0: not worth a clause.
    if v.confidence > 0.0 {
        out.push_str(&format!("; confidence {:.2}", v.confidence));
    }
    out
}

/// What one anomaly event is about, besides the verdict.
struct EventSource<'a> {
    pipeline: &'a str,
    /// The `anomaly()` column.
    column: &'a str,
    detector: &'a str,
    /// The group's string columns.
    group: &'a BTreeMap<String, String>,
    /// Event time the stage has watched the series (when the detector does not say).
    watched_ms: i64,
}

fn push_event(
    events: &mut EventBatchBuilder,
    src: &EventSource<'_>,
    time_ms: i64,
    value: f64,
    v: &Verdict,
) {
    let EventSource {
        pipeline,
        column,
        detector,
        group,
        ..
    } = *src;
    let mut labels: BTreeMap<String, String> = group.clone();
    labels.insert("pipeline".to_string(), pipeline.to_string());
    labels.insert("series".to_string(), column.to_string());
    labels.insert("detector".to_string(), detector.to_string());
    let signal = signal_of(value, v);
    let watched_ms = if v.watched_ms > 0 {
        v.watched_ms
    } else {
        src.watched_ms
    };
    let context = context_of(signal, v.period_ms);
    let explanation = explanation(value, v, &context, watched_ms);
    let group_text: Vec<String> = group.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let message = format!(
        "{pipeline}: {column} = {} on {{{}}} is {} the expected {} [{}, {}] (score {:.3}, {detector}): {explanation}",
        num(value),
        group_text.join(", "),
        match v.direction {
            Direction::Up => "above",
            Direction::Down => "below",
            Direction::None => "off",
        },
        num(v.expected),
        num(v.lower),
        num(v.upper),
        v.score,
    );
    let attributes: BTreeMap<&str, String> = BTreeMap::from([
        ("score", num(v.score)),
        ("value", num(value)),
        ("expected", num(v.expected)),
        ("lower", num(v.lower)),
        ("upper", num(v.upper)),
        ("direction", v.direction.as_str().to_string()),
        ("signal", signal.as_str().to_string()),
        ("context", context),
        ("explanation", explanation),
        ("confidence", num(v.confidence)),
        ("watched_ms", watched_ms.to_string()),
        ("period_ms", v.period_ms.to_string()),
    ]);
    events.push(time_ms, "anomaly", &message, &labels, &attributes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_as_words() {
        let cases = [(812.0, "812"), (240.33333, "240.3"), (0.0123456, "0.01235")];
        for (v, want) in cases {
            assert_eq!(short(v), want);
        }
        assert_eq!(short(123_456.7), "123457");
        assert_eq!(human_ms(12_000_000), "3 h 20 min");
        assert_eq!(human_ms(3 * 3_600_000 + 5_000), "3 h");
        assert_eq!(human_ms(45_000), "45 s");
        assert_eq!(human_ms(2 * 86_400_000 + 4 * 3_600_000 + 60_000), "2 d 4 h");
        assert_eq!(human_ms(0), "0 s");
        assert_eq!(period_words(86_400_000), "1-day");
        assert_eq!(period_words(7 * 86_400_000), "7-day");
        assert_eq!(period_words(12 * 3_600_000), "12-hour");
    }

    #[test]
    fn the_explanation_names_value_band_context_time_and_confidence() {
        let mut v = Verdict::judged(812.0, 240.0, 180.0, 300.0, 0.97);
        v.signal = Signal::Seasonal;
        v.period_ms = 86_400_000;
        v.confidence = 0.414;
        let context = context_of(signal_of(812.0, &v), v.period_ms);
        assert_eq!(
            explanation(812.0, &v, &context, 12_000_000),
            "value 812 is above the expected 240 [180, 300]; the value is unusual for this phase of its 1-day cycle; watched 3 h 20 min; confidence 0.41"
        );
        // A detector that says nothing: outside its band is what its score measured.
        let mut quiet = Verdict::judged(812.0, 240.0, 180.0, 300.0, 0.97);
        quiet.signal = Signal::None;
        assert_eq!(signal_of(812.0, &quiet), Signal::Value);
        assert_eq!(signal_of(250.0, &quiet), Signal::None);
        let inside = Verdict::judged(250.0, 240.0, 180.0, 300.0, 0.97);
        let context = context_of(signal_of(250.0, &inside), 0);
        assert_eq!(
            explanation(250.0, &inside, &context, 0),
            "value 250 is off the expected 240 [180, 300]; the detector did not say which of its statistics fired"
        );
    }
}
