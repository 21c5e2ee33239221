//! A pipeline split over several units (`-- @partitions: N`, cluster mode): N **partition
//! units** share the aggregation of the input and one **merge unit** turns their partial states
//! into the pipeline's output — the same output a single unit produces.
//!
//! Every partition unit reads every input message of the pipeline's kind, in log order, but
//! decodes and runs the plan below the aggregate (the costly part: decoding, expressions,
//! filters, grouping) only over the messages of *its* log partitions (`p % N == i`); of the
//! others it reads the header only (row count, time range). Its watermark is the whole
//! input's (each message's partition and largest event time feed it, as in a single unit), so
//! every unit judges late rows exactly as a single unit would, and every unit sees a window
//! close at the same input message. Rows beyond the allowed lateness leave from the unit that
//! holds them, with the ids a single unit gives them.
//!
//! A window that closed no longer lives in a partition unit: at the input message where the
//! watermark passes a window end, every unit hands over what it holds for the closed windows
//! (keys and each accumulator's partial state, as DataFusion's two-phase aggregation does) in a
//! **partial record**, even when it holds nothing, so the merge unit knows it has every part.
//! A unit that caught up with the log also writes an empty progress mark for the last message
//! it read, so a revision another unit wrote is merged without waiting for the next window
//! end. A late row that still revises a closed window comes back as a new partial state from the
//! unit that read it, at that message. The merge unit merges the records of one input message
//! into its windows, then advances to the records' watermark exactly as a single unit advances
//! after that message: first results, revisions of changed groups, and drops at the same
//! points, with the same event ids and revisions.
//!
//! Floating-point sums are the one difference a reader could see: a sum of partial sums adds
//! in another order than a sum over rows in log order, so `sum`/`avg` of floats may differ in
//! their last bits (as in any parallel aggregation). Counts, minima, maxima, integer sums and
//! the counter functions are exact.
//!
//! ```text
//! "AIPP" | u32 LE header length | header (JSON) | per window: u64 LE length | Arrow IPC stream
//! ```

use super::checkpoint::{frame, ipc, next_body, state_columns, unframe};
use super::compile::WindowKind;
use super::state::{TakenState, WindowState};
use super::{Emission, RuntimeError, StreamingPipeline};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"AIPP";

/// What one partition unit produced for one input message.
#[derive(Debug, Default)]
pub struct PartStep {
    /// Rows beyond the allowed lateness, as a single unit emits them.
    pub late: Vec<Emission>,
    /// The partial record for the merge unit (bytes), when the message closed a window or
    /// revised a closed one.
    pub record: Option<Vec<u8>>,
}

/// A partial record read back, for [`StreamingPipeline::merge_parts`].
#[derive(Debug)]
pub struct PartialRecord {
    /// The watermark after the input message, Unix ms.
    pub watermark_ms: Option<i64>,
    /// True when the message closed a window: every partition unit wrote a record for it.
    /// False for a late revision, which only the unit holding the rows writes.
    pub boundary: bool,
    windows: Vec<(i64, TakenState)>,
}

impl PartialRecord {
    /// Groups it carries, over all its windows.
    pub fn groups(&self) -> usize {
        self.windows.iter().map(|(_, t)| t.len()).sum()
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    pipeline: String,
    fingerprint: u64,
    watermark: Option<i64>,
    boundary: bool,
    windows: Vec<WindowMeta>,
}

#[derive(Serialize, Deserialize)]
struct WindowMeta {
    start: i64,
    /// Number of state columns of each aggregate.
    state_widths: Vec<usize>,
}

impl StreamingPipeline {
    fn part_err(&self, detail: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Checkpoint {
            pipeline: self.name.clone(),
            detail: format!("partial record: {detail}"),
        }
    }

    /// The number of partition units its file asks for (`@partitions`, 1 when unset).
    pub fn partition_units(&self) -> u32 {
        self.settings.partition_units()
    }

    /// Whether the watermark moving from `before` to `after` passes a window end (the same
    /// answer on every unit, since they all see the same watermarks).
    fn passes_window_end(&self, before: Option<i64>, after: Option<i64>) -> bool {
        let (slide, size) = match self.c.window {
            WindowKind::Tumble { size_ms } => (size_ms, size_ms),
            WindowKind::Hop { slide_ms, size_ms } => (slide_ms, size_ms),
            // Refused at check time; a session pipeline is never partitioned.
            WindowKind::Session { .. } => return after != before,
        };
        if slide <= 0 {
            return after != before;
        }
        // Window ends are `start + size` with starts on multiples of `slide`: the ends at or
        // below `w` are counted by floor((w - size) / slide).
        let ends = |w: i64| w.saturating_sub(size).div_euclid(slide);
        match (before, after) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(b), Some(a)) => ends(b) != ends(a),
        }
    }

    /// A partition unit's step for one input message of the pipeline's kind holding `rows`
    /// rows: `batch` is the message's rows when its partition belongs to this unit (they are
    /// aggregated here), `None` for another unit's message, which only moves the watermark
    /// (so the unit need not decode it: the count and time range are in its header). Empty
    /// messages are skipped, as [`StreamingPipeline::process`] skips them.
    ///
    /// # Errors
    /// [`RuntimeError`] when DataFusion fails on the batch or a state cannot be encoded.
    pub async fn process_part(
        &mut self,
        partition: &str,
        time_max_ms: i64,
        batch: Option<RecordBatch>,
        rows: usize,
    ) -> Result<PartStep, RuntimeError> {
        let mut step = PartStep::default();
        if rows == 0 {
            return Ok(step);
        }
        let before = self.wm.current;
        if let Some(batch) = batch
            && batch.num_rows() > 0
        {
            self.pre_absorb(batch, &mut step.late).await?;
        }
        self.wm.observe(&self.cfg.watermark, partition, time_max_ms);
        let wm = self.wm.current;
        let boundary = self.passes_window_end(before, wm);
        let size = self.c.window.size_ms();
        let closed: Vec<i64> = match wm {
            Some(w) => self
                .windows
                .keys()
                .copied()
                .take_while(|s| s.saturating_add(size) <= w)
                .collect(),
            None => Vec::new(),
        };
        if !boundary && closed.is_empty() {
            return Ok(step);
        }
        let mut metas = Vec::with_capacity(closed.len());
        let mut bodies = Vec::with_capacity(closed.len());
        for s in closed {
            let Some(mut st) = self.windows.remove(&s) else {
                continue;
            };
            let taken = st.take().map_err(|e| self.part_err(e))?;
            if taken.len() == 0 {
                continue;
            }
            let (body, state_widths) = self.part_body(&taken)?;
            bodies.push(body);
            metas.push(WindowMeta {
                start: s,
                state_widths,
            });
        }
        step.record = Some(self.part_record(boundary, metas, bodies)?);
        Ok(step)
    }

    /// A partition unit's progress mark: a record with no state that tells the merge unit
    /// this unit has read its input up to the message it is written for (the merge unit
    /// waits for every unit to pass a message before merging it).
    ///
    /// # Errors
    /// [`RuntimeError::Checkpoint`] if the header cannot be encoded.
    pub fn part_progress(&self) -> Result<Vec<u8>, RuntimeError> {
        self.part_record(false, Vec::new(), Vec::new())
    }

    fn part_record(
        &self,
        boundary: bool,
        metas: Vec<WindowMeta>,
        bodies: Vec<Vec<u8>>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let header = Header {
            pipeline: self.name.clone(),
            fingerprint: self.fingerprint,
            watermark: self.wm.current,
            boundary,
            windows: metas,
        };
        let h = serde_json::to_vec(&header).map_err(|e| self.part_err(e))?;
        frame(MAGIC, &h, bodies).map_err(|e| self.part_err(e))
    }

    /// One window's keys and partial states as an IPC stream, and each aggregate's width.
    fn part_body(&self, taken: &TakenState) -> Result<(Vec<u8>, Vec<usize>), RuntimeError> {
        let (fields, cols) = state_columns(taken);
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .map_err(|e| self.part_err(e))?;
        Ok((
            ipc(&self.name, &batch)?,
            taken.states.iter().map(Vec::len).collect(),
        ))
    }

    /// Reads a partial record written by a partition unit of this pipeline.
    ///
    /// # Errors
    /// [`RuntimeError::Checkpoint`] when the bytes are not a partial record of this pipeline
    /// and version of its SQL, or their shape does not fit its aggregates.
    pub fn decode_part(&self, bytes: &[u8]) -> Result<PartialRecord, RuntimeError> {
        let (h, mut at) =
            unframe(MAGIC, bytes, "not a partial record").map_err(|e| self.part_err(e))?;
        let header: Header = serde_json::from_slice(h).map_err(|e| self.part_err(e))?;
        if header.fingerprint != self.fingerprint {
            return Err(self.part_err("written by another version of the pipeline's SQL"));
        }
        let nk = self.c.key_schema.fields().len();
        let mut windows = Vec::with_capacity(header.windows.len());
        for meta in &header.windows {
            let body = next_body(bytes, &mut at).ok_or_else(|| self.part_err("truncated"))?;
            let batch = self.read_ipc(body)?;
            let width = nk + meta.state_widths.iter().sum::<usize>();
            if batch.num_columns() != width || meta.state_widths.len() != self.c.aggs.len() {
                return Err(self.part_err("a window's state has the wrong shape"));
            }
            let keys = batch.columns()[..nk].to_vec();
            let mut states = Vec::with_capacity(meta.state_widths.len());
            let mut c = nk;
            for w in &meta.state_widths {
                states.push(batch.columns()[c..c + w].to_vec());
                c += w;
            }
            windows.push((meta.start, TakenState { keys, states }));
        }
        Ok(PartialRecord {
            watermark_ms: header.watermark,
            boundary: header.boundary,
            windows,
        })
    }

    /// The merge unit's step: merges the partial records every partition unit wrote for one
    /// input message, then advances to their watermark as a single unit advances after that
    /// message, returning what that emits.
    ///
    /// # Errors
    /// [`RuntimeError`] when DataFusion fails to merge or evaluate a window.
    pub async fn merge_parts(
        &mut self,
        records: &[PartialRecord],
    ) -> Result<Vec<Emission>, RuntimeError> {
        let mut out = Vec::new();
        let name = self.name.clone();
        let merge_err = |e: datafusion::common::DataFusionError| RuntimeError::Checkpoint {
            pipeline: name.clone(),
            detail: format!("merging a partial state: {e}"),
        };
        for r in records {
            for (s, taken) in &r.windows {
                let st = match self.windows.entry(*s) {
                    std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::btree_map::Entry::Vacant(v) => v.insert(
                        WindowState::new(&self.c.key_schema, &self.c.aggs).map_err(merge_err)?,
                    ),
                };
                st.merge(taken).map_err(merge_err)?;
            }
        }
        let wm = records.iter().filter_map(|r| r.watermark_ms).max();
        if let Some(w) = wm {
            self.wm.current = Some(self.wm.current.map_or(w, |c| c.max(w)));
        }
        self.advance(false, &mut out).await?;
        Ok(out)
    }
}
