//! The streaming runtime: runs a pipeline over micro-batches of events in event time.
//!
//! A [`StreamingPipeline`] takes one input batch at a time (one log message), assigns its rows to
//! event-time windows, and updates each window's aggregation state (keys and accumulators, no raw
//! rows). When the watermark passes a window's end, the window's result runs through HAVING and
//! the SELECT list and leaves as an [`Emission`]: derived events whose ids are deterministic
//! (pipeline output, window, group key, revision). Rows for a window that already fired but is
//! within the allowed lateness update it and re-emit the changed groups with a higher revision;
//! rows beyond it leave as a `Late` emission and are counted, never dropped silently. Session
//! windows (`session(time, INTERVAL gap)`) are per group key and close when the watermark passes
//! their last event + gap; the sessions closing at one end time leave as one emission, so the
//! output does not depend on how the input was batched. The whole state can be written to bytes
//! and read back ([`StreamingPipeline::checkpoint`]), and processing is deterministic: the same
//! input batches in the same order give the same bytes out.
//!
//! - [`slot`]: input tables fed one micro-batch at a time.
//! - [`compile`]: the physical plans and aggregate functions of a pipeline, built once.
//! - [`state`]: the aggregation state of one window.
//! - [`session`]: session windows: the sessions of each group key and their state.
//! - [`watermark`]: event-time progress per partition and overall.
//! - [`checkpoint`]: the byte form of a pipeline's state.
//! - [`partial`]: a pipeline split into partition units and a merge unit (`@partitions`).

pub mod checkpoint;
pub mod compile;
pub mod partial;
pub(crate) mod session;
pub mod slot;
pub(crate) mod state;
pub mod watermark;

use crate::catalog;
use crate::error::PipelineError;
use crate::pipeline::{CheckedPipeline, check_in, err};
use aiops_schemas::{Kind, schema_for};
use compile::{Compiled, HIDDEN, WindowKind};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringBuilder, TimestampMillisecondArray,
    UInt32Array,
};
use datafusion::arrow::compute::{concat_batches, filter, filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMillisecondType};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::catalog::TableProvider;
use datafusion::common::DataFusionError;
use datafusion::physical_plan::collect;
use serde::{Deserialize, Serialize};
use session::{Closed, Sessions};
use slot::Slot;
use state::WindowState;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use watermark::{WatermarkConfig, Watermarks};

/// Event-time settings of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// Watermark delay and idleness.
    pub watermark: WatermarkConfig,
    /// How long after a window closed (ms of watermark) rows for it still update it; later rows
    /// go to the late output.
    pub allowed_lateness_ms: i64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            watermark: WatermarkConfig::default(),
            allowed_lateness_ms: 60_000,
        }
    }
}

/// Why the runtime failed on a batch. The batch is not half-applied in a way a caller could
/// observe: the caller stops the pipeline and restarts it from its last checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// DataFusion failed to evaluate the plan.
    #[error("pipeline {pipeline}: {source}")]
    DataFusion {
        /// The pipeline.
        pipeline: String,
        /// The cause.
        source: DataFusionError,
    },
    /// A checkpoint cannot be read back.
    #[error("pipeline {pipeline}: checkpoint: {detail}")]
    Checkpoint {
        /// The pipeline.
        pipeline: String,
        /// What is wrong.
        detail: String,
    },
}

/// What an emission carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmissionKind {
    /// Derived events for the pipeline's output.
    Output,
    /// Rows that arrived after their window's allowed lateness (the columns the pipeline reads).
    Late,
}

/// A batch the pipeline produced.
#[derive(Debug, Clone)]
pub struct Emission {
    /// Output or late rows.
    pub kind: EmissionKind,
    /// Start of the (earliest) window the rows belong to, Unix ms; for late rows of session
    /// windows, the earliest late row's time.
    pub window_start_ms: i64,
    /// The rows: for outputs, `event_id`, `revision`, then the SELECT list.
    pub batch: RecordBatch,
}

/// Counters of a running pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Input rows received.
    pub rows_in: u64,
    /// Derived events emitted (all revisions).
    pub rows_out: u64,
    /// Rows beyond the allowed lateness, sent to the late output.
    pub late_rows: u64,
    /// Re-emissions of a window's group after late rows changed it.
    pub revisions: u64,
}

/// A snapshot of a pipeline's progress and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineStatus {
    /// Counters since the pipeline's state began (they survive checkpoints).
    pub counters: Counters,
    /// The watermark, Unix ms.
    pub watermark_ms: Option<i64>,
    /// Windows holding state.
    pub open_windows: usize,
    /// Groups across open windows.
    pub groups: usize,
    /// Bytes of aggregation state.
    pub state_bytes: usize,
}

/// A pipeline compiled for streaming, with its state.
pub struct StreamingPipeline {
    name: String,
    output: String,
    fingerprint: u64,
    cfg: RuntimeConfig,
    settings: crate::settings::PipelineSettings,
    detect: Vec<crate::detect::DetectSpec>,
    c: Compiled,
    /// Dummy key column when the GROUP BY has only the window.
    no_keys: bool,
    /// The plan above the aggregate works row by row (projections and filters only), so the
    /// results of several windows can go through it at once and be split afterwards.
    row_wise_post: bool,
    windows: BTreeMap<i64, WindowState>,
    /// The state of session windows (`windows` stays empty then).
    sessions: Option<Sessions>,
    wm: Watermarks,
    counters: Counters,
    out_schema: SchemaRef,
    converter: RowConverter,
}

/// The columns every derived event starts with.
pub const ID_COLUMNS: [&str; 2] = ["event_id", "revision"];

fn df(pipeline: &str) -> impl Fn(DataFusionError) -> RuntimeError + '_ {
    move |source| RuntimeError::DataFusion {
        pipeline: pipeline.to_string(),
        source,
    }
}

fn arrow_err(pipeline: &str) -> impl Fn(ArrowError) -> RuntimeError + '_ {
    move |e| RuntimeError::DataFusion {
        pipeline: pipeline.to_string(),
        source: DataFusionError::ArrowError(Box::new(e), None),
    }
}

/// FNV-1a, the hash of keys in event ids (stable across versions and platforms).
fn fnv(bytes: &[u8]) -> u64 {
    aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, bytes)
}

impl StreamingPipeline {
    /// Compiles pipeline `source` (named by `file`) for streaming. `tables` are extra tables
    /// (reference tables) the SQL may join.
    ///
    /// # Errors
    /// [`PipelineError`] with a position for a pipeline that does not check or that the runtime
    /// cannot run (no window, ORDER BY, two input streams, …).
    pub async fn compile(
        file: &Path,
        source: &str,
        tables: &[(String, Arc<dyn TableProvider>)],
        cfg: RuntimeConfig,
    ) -> Result<StreamingPipeline, PipelineError> {
        Self::compile_with_streams(file, source, tables, &[], cfg).await
    }

    /// As [`StreamingPipeline::compile`], with other pipelines' outputs readable as input
    /// streams: `streams` holds each output's name and schema
    /// ([`StreamingPipeline::output_schema`]).
    ///
    /// # Errors
    /// As [`StreamingPipeline::compile`].
    pub async fn compile_with_streams(
        file: &Path,
        source: &str,
        tables: &[(String, Arc<dyn TableProvider>)],
        streams: &[(String, SchemaRef)],
        cfg: RuntimeConfig,
    ) -> Result<StreamingPipeline, PipelineError> {
        let mut slots: Vec<(String, Slot)> = Kind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), Slot::new(schema_for(*k))))
            .collect();
        slots.extend(
            streams
                .iter()
                .map(|(name, schema)| (name.clone(), Slot::new(schema.clone()))),
        );
        let internal = |e: DataFusionError| err(file, 0, 0, format!("internal error: {e}"));
        let ctx = catalog::session_with_inputs(|kind| {
            slots
                .iter()
                .find(|(n, _)| n == kind.as_str())
                .and_then(|(_, s)| s.table().ok())
                .unwrap_or_else(|| {
                    Arc::new(datafusion::catalog::empty::EmptyTable::new(schema_for(
                        kind,
                    )))
                })
        })
        .map_err(internal)?;
        for (name, t) in tables {
            ctx.register_table(name.as_str(), t.clone())
                .map_err(internal)?;
        }
        for (name, slot) in &slots[Kind::ALL.len()..] {
            ctx.register_table(name.as_str(), slot.table().map_err(internal)?)
                .map_err(internal)?;
        }
        let checked: CheckedPipeline = check_in(&ctx, file, source).await?;
        // `-- @delay:` / `-- @lateness:` in the file override the engine's defaults.
        let cfg = checked.settings.runtime_config(cfg);
        let c = compile::compile(&ctx, file, &checked, &slots).await?;
        let no_keys = c.keys.is_empty();
        let mut c = c;
        if no_keys {
            c.key_schema = Arc::new(Schema::new(vec![Field::new(
                "__aiops_nokey",
                DataType::Boolean,
                true,
            )]));
        }
        let post_schema = c.post.schema();
        let user = post_schema.fields().len() - c.hidden;
        let mut fields = vec![
            Arc::new(Field::new(ID_COLUMNS[0], DataType::Utf8, false)),
            Arc::new(Field::new(ID_COLUMNS[1], DataType::UInt32, false)),
        ];
        for f in &post_schema.fields()[..user] {
            if f.name().starts_with(HIDDEN) || ID_COLUMNS.contains(&f.name().as_str()) {
                return Err(err(
                    file,
                    1,
                    1,
                    format!("output column name {:?} is reserved", f.name()),
                ));
            }
            fields.push(f.clone());
        }
        let converter = RowConverter::new(
            c.key_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )
        .map_err(|e| err(file, 1, 1, format!("GROUP BY key type not supported: {e}")))?;
        let sessions = match c.window {
            WindowKind::Session { gap_ms } => Some(
                Sessions::new(gap_ms, &c.aggs)
                    .map_err(|e| err(file, 1, 1, format!("internal error: {e}")))?,
            ),
            _ => None,
        };
        let row_wise_post = row_wise(&c.post);
        Ok(StreamingPipeline {
            name: checked.name.clone(),
            output: checked.output.clone(),
            fingerprint: fnv(source.as_bytes()),
            settings: checked.settings.clone(),
            detect: checked.detect.clone(),
            cfg,
            c,
            no_keys,
            row_wise_post,
            windows: BTreeMap::new(),
            sessions,
            wm: Watermarks::default(),
            counters: Counters::default(),
            out_schema: Arc::new(Schema::new(fields)),
            converter,
        })
    }

    /// Its `anomaly()` / `time_until()` columns, for the [`crate::DetectStage`] run after it.
    pub fn detect_specs(&self) -> &[crate::detect::DetectSpec] {
        &self.detect
    }

    /// The pipeline's name (its file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings of its header comment (`-- @for: 3`, …).
    pub fn settings(&self) -> &crate::settings::PipelineSettings {
        &self.settings
    }

    /// The event-time settings it runs with (the engine's, overridden by its header).
    pub fn runtime_config(&self) -> RuntimeConfig {
        self.cfg
    }

    /// Where its rows go: a derived stream name, or `alerts`.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// The input stream it reads (`metrics`, `logs`, …).
    pub fn input(&self) -> &str {
        &self.c.input
    }

    /// Schema of its output emissions: `event_id`, `revision`, then the SELECT list.
    pub fn output_schema(&self) -> SchemaRef {
        self.out_schema.clone()
    }

    /// Window assignment of the pipeline.
    pub fn window(&self) -> WindowKind {
        self.c.window
    }

    /// A hash of the pipeline's SQL: a checkpoint of another version is not restored.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Progress and size now. With session windows, every session (open, or closed but kept for
    /// the allowed lateness) counts as an open window.
    pub fn status(&self) -> PipelineStatus {
        let (sessions, session_groups, session_bytes) = self
            .sessions
            .as_ref()
            .map_or((0, 0, 0), |s| (s.len(), s.groups(), s.size()));
        PipelineStatus {
            counters: self.counters,
            watermark_ms: self.wm.current,
            open_windows: self.windows.len() + sessions,
            groups: self.windows.values().map(WindowState::len).sum::<usize>() + session_groups,
            state_bytes: self.windows.values().map(WindowState::size).sum::<usize>()
                + session_bytes,
        }
    }

    /// Processes one input batch from `partition` (e.g. `metrics.3`) whose largest event time is
    /// `time_max_ms`, and returns what it emits: late rows, and the results of windows the
    /// watermark passed.
    ///
    /// # Errors
    /// [`RuntimeError`] when DataFusion fails on the batch.
    pub async fn process(
        &mut self,
        partition: &str,
        time_max_ms: i64,
        batch: RecordBatch,
    ) -> Result<Vec<Emission>, RuntimeError> {
        let mut out = Vec::new();
        if batch.num_rows() == 0 {
            return Ok(out);
        }
        self.pre_absorb(batch, &mut out).await?;
        self.wm.observe(&self.cfg.watermark, partition, time_max_ms);
        self.advance(false, &mut out).await?;
        Ok(out)
    }

    /// Runs the plan below the aggregate over one input batch and adds its rows to their
    /// windows (late rows go to `out`).
    async fn pre_absorb(
        &mut self,
        batch: RecordBatch,
        out: &mut Vec<Emission>,
    ) -> Result<(), RuntimeError> {
        self.counters.rows_in += batch.num_rows() as u64;
        self.c.input_slot.put(vec![batch]);
        // Joins keep their build side between executions; with a micro-batch as the build side
        // that would be the first batch forever, so such plans are reset before each run.
        let plan = if self.c.reset {
            datafusion::physical_plan::execution_plan::reset_plan_states(self.c.pre.clone())
                .map_err(df(&self.name))?
        } else {
            self.c.pre.clone()
        };
        let pre = collect(plan, self.c.task.clone())
            .await
            .map_err(df(&self.name))?;
        for b in &pre {
            self.absorb(b, out)?;
        }
        Ok(())
    }

    /// Closes every open window as if the watermark had passed them all (the end of a bounded
    /// replay) and returns their results.
    ///
    /// # Errors
    /// As [`StreamingPipeline::process`].
    pub async fn finish(&mut self) -> Result<Vec<Emission>, RuntimeError> {
        let mut out = Vec::new();
        self.advance(true, &mut out).await?;
        Ok(out)
    }

    /// Window starts (Unix ms) of each row's windows, as (row, start) pairs.
    fn assign(&self, t: &[i64], wm: Option<i64>, late: &mut [bool]) -> Vec<(u32, i64)> {
        let size = self.c.window.size_ms();
        let dropped = |s: i64| {
            wm.is_some_and(|w| {
                s.saturating_add(size)
                    .saturating_add(self.cfg.allowed_lateness_ms)
                    <= w
            })
        };
        let mut pairs = Vec::with_capacity(t.len());
        match self.c.window {
            WindowKind::Tumble { size_ms } => {
                for (i, &ts) in t.iter().enumerate() {
                    let s = ts.div_euclid(size_ms) * size_ms;
                    if dropped(s) {
                        late[i] = true;
                    } else {
                        pairs.push((i as u32, s));
                    }
                }
            }
            WindowKind::Hop { slide_ms, size_ms } => {
                let k = size_ms / slide_ms;
                for (i, &ts) in t.iter().enumerate() {
                    let last = ts.div_euclid(slide_ms) * slide_ms;
                    for j in 0..k {
                        let s = last - j * slide_ms;
                        if dropped(s) {
                            late[i] = true;
                        } else {
                            pairs.push((i as u32, s));
                        }
                    }
                }
            }
            // Rows find their sessions in `Sessions::absorb`.
            WindowKind::Session { .. } => {}
        }
        pairs
    }

    /// Adds the rows of one pre-aggregated batch to their windows; rows beyond lateness go out.
    fn absorb(&mut self, b: &RecordBatch, out: &mut Vec<Emission>) -> Result<(), RuntimeError> {
        let n = b.num_rows();
        if n == 0 {
            return Ok(());
        }
        let name = self.name.clone();
        let time = self
            .c
            .window_time
            .evaluate(b)
            .and_then(|v| v.into_array(n))
            .map_err(df(&name))?;
        let Some(time) = time.as_primitive_opt::<TimestampMillisecondType>() else {
            return Err(df(&name)(DataFusionError::Execution(
                "the window's time argument is not a millisecond timestamp".into(),
            )));
        };
        let mut late = vec![false; n];
        let pairs = self.assign(time.values(), self.wm.current, &mut late);
        let session = matches!(self.c.window, WindowKind::Session { .. });
        let keys: Vec<ArrayRef> = if self.no_keys {
            vec![Arc::new(BooleanArray::from(vec![true; n]))]
        } else {
            self.c
                .keys
                .iter()
                .map(|e| e.evaluate(b).and_then(|v| v.into_array(n)))
                .collect::<Result<_, _>>()
                .map_err(df(&name))?
        };
        let args: Vec<Vec<ArrayRef>> = self
            .c
            .aggs
            .iter()
            .map(|a| {
                a.expressions()
                    .iter()
                    .map(|e| e.evaluate(b).and_then(|v| v.into_array(n)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()
            .map_err(df(&name))?;
        let filters: Vec<Option<BooleanArray>> = self
            .c
            .agg_filters
            .iter()
            .map(|f| {
                f.as_ref()
                    .map(|f| {
                        f.evaluate(b)
                            .and_then(|v| v.into_array(n))
                            .map(|a| a.as_boolean().clone())
                    })
                    .transpose()
            })
            .collect::<Result<_, _>>()
            .map_err(df(&name))?;
        if session {
            self.absorb_sessions(time.values(), &keys, &args, &filters, &mut late)?;
        }
        let mut starts: Vec<i64> = pairs.iter().map(|p| p.1).collect();
        starts.sort_unstable();
        starts.dedup();
        for s in starts {
            let rows: Vec<u32> = pairs.iter().filter(|p| p.1 == s).map(|p| p.0).collect();
            let state = match self.windows.entry(s) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(WindowState::new(&self.c.key_schema, &self.c.aggs).map_err(df(&name))?)
                }
            };
            if rows.len() == n {
                state.update(&keys, &args, &filters).map_err(df(&name))?;
            } else {
                let (k, a, f) = pick(&UInt32Array::from(rows), &keys, &args, &filters)
                    .map_err(arrow_err(&name))?;
                state.update(&k, &a, &f).map_err(df(&name))?;
            }
        }
        let n_late = late.iter().filter(|l| **l).count();
        if n_late > 0 {
            let mask = BooleanArray::from(late);
            let rows = filter_record_batch(b, &mask).map_err(arrow_err(&name))?;
            let first = filter(&time, &mask)
                .ok()
                .and_then(|a| {
                    a.as_primitive_opt::<TimestampMillisecondType>()
                        .and_then(|t| t.values().iter().copied().min())
                })
                .unwrap_or_default();
            let size = self.c.window.size_ms();
            self.counters.late_rows += n_late as u64;
            out.push(Emission {
                kind: EmissionKind::Late,
                window_start_ms: if session {
                    first
                } else {
                    first.div_euclid(size) * size
                },
                batch: rows,
            });
        }
        Ok(())
    }

    /// Adds rows to their session windows. A row more than the allowed lateness behind the
    /// watermark is late: every session it could touch may have been dropped already (a session
    /// is kept until the watermark passes its end by the lateness, and a row can only join a
    /// session whose end is after it).
    fn absorb_sessions(
        &mut self,
        time: &[i64],
        keys: &[ArrayRef],
        args: &[Vec<ArrayRef>],
        filters: &[Option<BooleanArray>],
        late: &mut [bool],
    ) -> Result<(), RuntimeError> {
        let name = self.name.as_str();
        let bound = self
            .wm
            .current
            .map(|w| w.saturating_sub(self.cfg.allowed_lateness_ms));
        let mut rows = Vec::with_capacity(time.len());
        for (i, &t) in time.iter().enumerate() {
            if bound.is_some_and(|b| t < b) {
                late[i] = true;
            } else {
                rows.push(i as u32);
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let key_rows = self
            .converter
            .convert_columns(keys)
            .map_err(arrow_err(name))?;
        let Some(sessions) = self.sessions.as_mut() else {
            return Ok(());
        };
        if rows.len() == time.len() {
            sessions.absorb(&key_rows, time, &rows, args, filters)
        } else {
            let (_, a, f) = pick(&UInt32Array::from(rows.clone()), &[], args, filters)
                .map_err(arrow_err(name))?;
            sessions.absorb(&key_rows, time, &rows, &a, &f)
        }
        .map_err(df(name))
    }

    /// Emits the windows the watermark passed (all of them when `all`), re-emits changed groups
    /// of fired windows, and drops windows past their lateness.
    async fn advance(&mut self, all: bool, out: &mut Vec<Emission>) -> Result<(), RuntimeError> {
        let Some(wm) = self.wm.current.or(if all { Some(i64::MAX) } else { None }) else {
            return Ok(());
        };
        let wm = if all { i64::MAX } else { wm };
        if let Some(sessions) = self.sessions.as_mut() {
            let expire = if all {
                i64::MAX
            } else {
                wm.saturating_sub(self.cfg.allowed_lateness_ms)
            };
            let (closed, revisions) = sessions
                .close(wm, expire, &self.c.aggs)
                .map_err(df(&self.name))?;
            self.counters.revisions += revisions;
            if let Some(c) = closed {
                self.emit_sessions(c, out).await?;
            }
            return Ok(());
        }
        let size = self.c.window.size_ms();
        let starts: Vec<i64> = self.windows.keys().copied().collect();
        for s in starts {
            if s.saturating_add(size) > wm {
                break;
            }
            let drop_now = s
                .saturating_add(size)
                .saturating_add(self.cfg.allowed_lateness_ms)
                <= wm;
            let Some(mut st) = self.windows.remove(&s) else {
                continue;
            };
            let need = !st.fired || st.dirty.iter().any(|d| *d);
            if need {
                let only_dirty = st.fired;
                if let Some(e) = self.emit(s, &mut st, only_dirty).await? {
                    out.push(e);
                }
                st.fired = true;
            }
            if !drop_now {
                self.windows.insert(s, st);
            }
        }
        Ok(())
    }

    /// The derived events of window `s`: every group, or only those changed since their last
    /// emission.
    async fn emit(
        &mut self,
        s: i64,
        st: &mut WindowState,
        only_dirty: bool,
    ) -> Result<Option<Emission>, RuntimeError> {
        let name = self.name.clone();
        let (keys, values) = st.evaluate(&self.c.aggs).map_err(df(&name))?;
        let n = keys.first().map_or(0, |k| k.len());
        let mask: Option<BooleanArray> = only_dirty.then(|| BooleanArray::from(st.dirty.clone()));
        let revisions = UInt32Array::from(st.emitted.clone());
        for g in 0..n {
            if !only_dirty || st.dirty[g] {
                st.emitted[g] += 1;
                if only_dirty {
                    self.counters.revisions += 1;
                }
            }
            st.dirty[g] = false;
        }
        // Revision of each group, by the hash of its key row.
        let key_rows = self
            .converter
            .convert_columns(&keys)
            .map_err(arrow_err(&name))?;
        let mut rev_of: HashMap<u64, (u32, i64)> = HashMap::with_capacity(n);
        for g in 0..n {
            if mask.as_ref().is_none_or(|m| m.value(g)) {
                rev_of.insert(fnv(key_rows.row(g).as_ref()), (revisions.value(g), s));
            }
        }
        let window_col: ArrayRef = Arc::new(
            TimestampMillisecondArray::from(vec![s; n]).with_timezone_opt(self.window_tz()),
        );
        let batch = self.agg_batch(window_col, keys, values)?;
        let batch = match &mask {
            Some(m) => filter_record_batch(&batch, m).map_err(arrow_err(&name))?,
            None => batch,
        };
        let Some(post) = self.run_post(batch).await? else {
            return Ok(None);
        };
        let key_rows = self.hidden_key_rows(&post)?;
        let rows: Vec<usize> = (0..post.num_rows()).collect();
        self.build_emission(s, &post, &key_rows, rows, |_, h| {
            Ok(rev_of.get(&h).copied().unwrap_or((0, s)))
        })
        .map(Some)
    }

    /// The derived events of closed sessions: one emission per session end time, each session a
    /// group whose window value is the session's start.
    async fn emit_sessions(
        &mut self,
        c: Closed,
        out: &mut Vec<Emission>,
    ) -> Result<(), RuntimeError> {
        let name = self.name.clone();
        let n = c.key_rows.len();
        if n == 0 {
            return Ok(());
        }
        let parser = self.converter.parser();
        let mut keys = self
            .converter
            .convert_rows(c.key_rows.iter().map(|k| parser.parse(k)))
            .map_err(arrow_err(&name))?;
        // Rows give dictionary keys back as plain values; the plan wants the declared types.
        for (k, f) in keys.iter_mut().zip(self.c.key_schema.fields()) {
            if k.data_type() != f.data_type() {
                *k =
                    datafusion::arrow::compute::cast(k, f.data_type()).map_err(arrow_err(&name))?;
            }
        }
        // Sessions of one end time leave together: emissions then depend only on the sessions,
        // not on how far the watermark moved at once (which depends on the batching).
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for i in 0..n {
            match ranges.last_mut() {
                Some((from, len)) if c.ends[*from] == c.ends[i] => *len += 1,
                _ => ranges.push((i, 1)),
            }
        }
        let mut range_of = vec![0usize; n];
        for (r, (from, len)) in ranges.iter().enumerate() {
            range_of[*from..*from + *len].fill(r);
        }
        let window_col: ArrayRef = Arc::new(
            TimestampMillisecondArray::from(c.starts.clone()).with_timezone_opt(self.window_tz()),
        );
        let batch = self.agg_batch(window_col, keys, c.values)?;
        // Each session by key hash and start (a key has one session per start).
        let session_of: HashMap<(u64, i64), usize> = c
            .key_rows
            .iter()
            .zip(&c.starts)
            .enumerate()
            .map(|(i, (k, s))| ((fnv(k), *s), i))
            .collect();
        let missing = || {
            df(&name)(DataFusionError::Internal(
                "a session result lost its session".into(),
            ))
        };
        // Runs the plan above the aggregate once for all sessions when it is row by row (one
        // execution per end time costs far more than the rows), else once per end time.
        let parts: Vec<(Option<usize>, RecordBatch)> = if self.row_wise_post {
            vec![(None, batch)]
        } else {
            ranges
                .iter()
                .enumerate()
                .map(|(r, (from, len))| (Some(r), batch.slice(*from, *len)))
                .collect()
        };
        for (range, part) in parts {
            let Some(post) = self.run_post(part).await? else {
                continue;
            };
            let key_rows = self.hidden_key_rows(&post)?;
            let starts = timestamps_ms(
                post.column(post.num_columns() - self.c.hidden + self.c.window_pos)
                    .as_ref(),
            )
            .ok_or_else(missing)?
            .to_vec();
            let mut by_range: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for (row, start) in starts.iter().enumerate() {
                let i = *session_of
                    .get(&(fnv(key_rows.row(row).as_ref()), *start))
                    .ok_or_else(missing)?;
                by_range
                    .entry(range.unwrap_or(range_of[i]))
                    .or_default()
                    .push(row);
            }
            for rows in by_range.into_values() {
                let first = rows.iter().map(|r| starts[*r]).min().unwrap_or_default();
                let e = self.build_emission(first, &post, &key_rows, rows, |row, h| {
                    let i = *session_of.get(&(h, starts[row])).ok_or_else(missing)?;
                    Ok((c.revisions[i], c.id_starts[i]))
                })?;
                out.push(e);
            }
        }
        Ok(())
    }

    /// Time zone of the window column.
    fn window_tz(&self) -> Option<Arc<str>> {
        match self.c.agg_schema.field(self.c.window_pos).data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        }
    }

    /// A window result as the plan above the aggregate reads it: the GROUP BY columns (the window
    /// at its position among the keys) then the aggregate values.
    fn agg_batch(
        &self,
        window_col: ArrayRef,
        keys: Vec<ArrayRef>,
        values: Vec<ArrayRef>,
    ) -> Result<RecordBatch, RuntimeError> {
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.c.agg_schema.fields().len());
        let mut key_iter = keys.into_iter();
        let n_groups = self.c.keys.len() + 1;
        for i in 0..n_groups {
            if i == self.c.window_pos {
                cols.push(window_col.clone());
            } else if let Some(k) = key_iter.next() {
                cols.push(k);
            }
        }
        cols.extend(values);
        RecordBatch::try_new(self.c.agg_schema.clone(), cols).map_err(arrow_err(&self.name))
    }

    /// Runs HAVING and the SELECT list (with the hidden group columns) over a window result;
    /// `None` when no row is left.
    async fn run_post(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>, RuntimeError> {
        let name = self.name.clone();
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        self.c.post_slot.put(vec![batch]);
        let post = collect(self.c.post.clone(), self.c.task.clone())
            .await
            .map_err(df(&name))?;
        let post_schema = self.c.post.schema();
        let post = concat_batches(&post_schema, &post).map_err(arrow_err(&name))?;
        Ok((post.num_rows() > 0).then_some(post))
    }

    /// The group keys of the plan's output rows, from the hidden columns, as rows.
    fn hidden_key_rows(&self, post: &RecordBatch) -> Result<Rows, RuntimeError> {
        let m = post.num_rows();
        let user = post.num_columns() - self.c.hidden;
        let hidden_keys: Vec<ArrayRef> = if self.no_keys {
            vec![Arc::new(BooleanArray::from(vec![true; m]))]
        } else {
            (0..self.c.hidden)
                .filter(|i| *i != self.c.window_pos)
                .map(|i| post.column(user + i).clone())
                .collect()
        };
        self.converter
            .convert_columns(&hidden_keys)
            .map_err(arrow_err(&self.name))
    }

    /// The emission of rows `rows` of the plan's output `post`: sorted by group key, with event
    /// ids `{output}/{id start}/{key hash}/{revision}`, where `revision` gives the revision and
    /// id start of a row (its index and key hash). `s` is the emission's (earliest) window start.
    fn build_emission(
        &mut self,
        s: i64,
        post: &RecordBatch,
        key_rows: &Rows,
        mut rows: Vec<usize>,
        revision: impl Fn(usize, u64) -> Result<(u32, i64), RuntimeError>,
    ) -> Result<Emission, RuntimeError> {
        let name = self.name.as_str();
        let m = rows.len();
        let user = post.num_columns() - self.c.hidden;
        rows.sort_by(|a, b| key_rows.row(*a).cmp(&key_rows.row(*b)));
        let mut ids = StringBuilder::with_capacity(m, m * (self.output.len() + 40));
        let mut revs = Vec::with_capacity(m);
        for &i in &rows {
            let h = fnv(key_rows.row(i).as_ref());
            let (rev, id_start) = revision(i, h)?;
            let _ = write!(ids, "{}/{id_start}/{h:016x}/{rev}", self.output);
            ids.append_value("");
            revs.push(rev);
        }
        let idx = UInt32Array::from(rows.iter().map(|i| *i as u32).collect::<Vec<_>>());
        let mut cols: Vec<ArrayRef> =
            vec![Arc::new(ids.finish()), Arc::new(UInt32Array::from(revs))];
        for c in &post.columns()[..user] {
            cols.push(take(c.as_ref(), &idx, None).map_err(arrow_err(name))?);
        }
        let batch = RecordBatch::try_new(self.out_schema.clone(), cols).map_err(arrow_err(name))?;
        self.counters.rows_out += batch.num_rows() as u64;
        Ok(Emission {
            kind: EmissionKind::Output,
            window_start_ms: s,
            batch,
        })
    }
}

/// Whether a plan only projects and filters rows (over the slot a window result is put in).
fn row_wise(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> bool {
    matches!(
        plan.name(),
        "ProjectionExec"
            | "FilterExec"
            | "CoalesceBatchesExec"
            | "StreamingTableExec"
            | "CooperativeExec"
    ) && plan.children().into_iter().all(row_wise)
}

/// Arguments picked by row index: keys, each aggregate's arguments and FILTERs.
type Picked = (Vec<ArrayRef>, Vec<Vec<ArrayRef>>, Vec<Option<BooleanArray>>);

/// The rows `idx` of key columns, aggregate arguments and FILTERs.
fn pick(
    idx: &UInt32Array,
    keys: &[ArrayRef],
    args: &[Vec<ArrayRef>],
    filters: &[Option<BooleanArray>],
) -> Result<Picked, ArrowError> {
    let pick = |a: &ArrayRef| take(a.as_ref(), idx, None);
    let k: Vec<ArrayRef> = keys.iter().map(pick).collect::<Result<_, _>>()?;
    let a: Vec<Vec<ArrayRef>> = args
        .iter()
        .map(|v| v.iter().map(pick).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()?;
    let f: Vec<Option<BooleanArray>> = filters
        .iter()
        .map(|f| {
            f.as_ref()
                .map(|f| take(f, idx, None).map(|x| x.as_boolean().clone()))
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    Ok((k, a, f))
}

/// A window column's values as Unix ms, for callers reading emissions.
pub fn timestamps_ms(a: &dyn Array) -> Option<&[i64]> {
    a.as_primitive_opt::<TimestampMillisecondType>()
        .map(|t| t.values().as_ref())
}
