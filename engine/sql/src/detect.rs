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
//!   threshold, one *anomaly event* (`type = 'anomaly'` on the `events` stream, with the value,
//!   the expected value and band, the direction and the detector) marks the start of the
//!   episode; the next one comes after the score fell below the threshold again. The alerting
//!   engine reads these events as root-cause evidence.
//! - `time_until(x, threshold)` → seconds until the forecast of `x` crosses `threshold` (in the
//!   direction the forecast moves), or NULL when no crossing is forecast within the horizon.
//!   Chain an alert rule on the output (`HAVING min(eta) < 4 * 3600`) for predictive alerts.
//!
//! Decisions are final at window close, as for alert rules: a late revision of a window is
//! scored against a copy of the series' state and does not change it. Series unseen for
//! [`SERIES_TTL_MS`] of event time are forgotten, so churning label sets do not grow the state
//! without bound.

use crate::runtime::ID_COLUMNS;
use aiops_detect::forecast::{ForecastConfig, Forecaster};
use aiops_detect::{AnyDetector, Detector, DetectorConfig, Direction, Verdict};
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
    /// `time_until(x, threshold)`.
    TimeUntil {
        /// The level whose crossing is forecast.
        threshold: f64,
    },
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
    match args {
        [_, t] => match number(t) {
            Some(threshold) => Ok(SpecKind::TimeUntil { threshold }),
            None => Err(SpecError {
                function: TIME_UNTIL,
                reason: "the threshold must be a number literal".to_string(),
            }),
        },
        _ => Err(SpecError {
            function: TIME_UNTIL,
            reason: format!("takes (value, threshold), got {} arguments", args.len()),
        }),
    }
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

/// One series with the last window it was fed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Series {
    last_window_ms: i64,
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
                            let anomalous = !verdict.warming_up && verdict.score >= *threshold;
                            if anomalous && !*in_episode {
                                push_event(
                                    &mut events,
                                    &self.pipeline,
                                    &spec.column,
                                    detector,
                                    window_start_ms,
                                    v,
                                    &verdict,
                                    labels,
                                );
                                n_events += 1;
                            }
                            if v.is_finite() {
                                *in_episode = anomalous;
                            }
                        }
                    }
                    (SpecKind::TimeUntil { threshold }, SeriesState::Forecast { forecaster }) => {
                        let eta = if final_judgement {
                            forecaster.observe(window_start_ms, v);
                            series.last_window_ms = window_start_ms;
                            forecaster.time_until(*threshold, Direction::None)
                        } else {
                            let mut f = forecaster.clone();
                            f.observe(window_start_ms, v);
                            f.time_until(*threshold, Direction::None)
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

/// Formats a number for messages and attributes: shortest round-trip form.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".to_string()
    }
}

#[allow(clippy::too_many_arguments)]
fn push_event(
    events: &mut EventBatchBuilder,
    pipeline: &str,
    column: &str,
    detector: &str,
    time_ms: i64,
    value: f64,
    v: &Verdict,
    group: &BTreeMap<String, String>,
) {
    let mut labels: BTreeMap<String, String> = group.clone();
    labels.insert("pipeline".to_string(), pipeline.to_string());
    labels.insert("series".to_string(), column.to_string());
    labels.insert("detector".to_string(), detector.to_string());
    let group_text: Vec<String> = group.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let message = format!(
        "{pipeline}: {column} = {} on {{{}}} is {} the expected {} [{}, {}] (score {:.3}, {detector})",
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
    ]);
    events.push(time_ms, "anomaly", &message, &labels, &attributes);
}
