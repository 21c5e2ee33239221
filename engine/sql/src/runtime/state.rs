//! The state of one open window: the distinct group keys seen and one accumulator per aggregate
//! function, updated per micro-batch. Memory grows with the number of groups, never with the
//! number of rows. The state can be taken out as Arrow arrays (keys and each accumulator's
//! partial state, as in DataFusion's two-phase aggregation) and put back, which serves both
//! non-destructive evaluation and checkpoints.

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use std::sync::Arc;

/// Creates the accumulator of one aggregate function (vectorized over groups when DataFusion
/// has one, else one accumulator per group behind an adapter).
pub(crate) fn accumulator(agg: &Arc<AggregateFunctionExpr>) -> Result<Box<dyn GroupsAccumulator>> {
    if agg.groups_accumulator_supported() {
        agg.create_groups_accumulator()
    } else {
        let agg = agg.clone();
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
            agg.create_accumulator()
        })))
    }
}

/// A window's keys and partial states, as arrays: what a checkpoint stores.
#[derive(Debug, Clone)]
pub(crate) struct TakenState {
    /// The GROUP BY key columns (without the window), one row per group.
    pub keys: Vec<ArrayRef>,
    /// Per aggregate, its state columns.
    pub states: Vec<Vec<ArrayRef>>,
}

impl TakenState {
    /// Number of groups.
    pub fn len(&self) -> usize {
        self.keys.first().map_or(0, |k| k.len())
    }
}

/// The aggregation state of one window.
pub(crate) struct WindowState {
    groups: Box<dyn GroupValues>,
    accs: Vec<Box<dyn GroupsAccumulator>>,
    /// Per group: emissions so far (the next emission's revision).
    pub emitted: Vec<u32>,
    /// Per group: changed since its last emission.
    pub dirty: Vec<bool>,
    /// The watermark has passed the window's end and its result was emitted.
    pub fired: bool,
    scratch: Vec<usize>,
}

impl WindowState {
    /// An empty window.
    pub fn new(key_schema: &SchemaRef, aggs: &[Arc<AggregateFunctionExpr>]) -> Result<WindowState> {
        Ok(WindowState {
            groups: new_group_values(key_schema.clone(), &GroupOrdering::None)?,
            accs: aggs.iter().map(accumulator).collect::<Result<_>>()?,
            emitted: Vec::new(),
            dirty: Vec::new(),
            fired: false,
            scratch: Vec::new(),
        })
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Bytes held, as the accumulators and key tables report them.
    pub fn size(&self) -> usize {
        self.groups.size()
            + self.accs.iter().map(|a| a.size()).sum::<usize>()
            + self.emitted.len() * 5
    }

    fn grow(&mut self) {
        let n = self.groups.len();
        self.emitted.resize(n, 0);
        self.dirty.resize(n, false);
    }

    /// Adds rows: `keys` are the key columns, `args[i]` the arguments of aggregate `i` and
    /// `filters[i]` its FILTER, all of the same length.
    pub fn update(
        &mut self,
        keys: &[ArrayRef],
        args: &[Vec<ArrayRef>],
        filters: &[Option<BooleanArray>],
    ) -> Result<()> {
        let mut idx = std::mem::take(&mut self.scratch);
        idx.clear();
        self.groups.intern(keys, &mut idx)?;
        let n = self.groups.len();
        for ((acc, a), f) in self.accs.iter_mut().zip(args).zip(filters) {
            acc.update_batch(a, &idx, f.as_ref(), n)?;
        }
        self.grow();
        for &g in &idx {
            self.dirty[g] = true;
        }
        self.scratch = idx;
        Ok(())
    }

    /// Takes the keys and partial states out, leaving the window empty.
    pub fn take(&mut self) -> Result<TakenState> {
        let keys = self.groups.emit(EmitTo::All)?;
        // Emitting everything leaves some group tables' hash maps in place (DataFusion's own
        // operator clears them right after); without this, the re-interned keys would collide
        // with stale entries.
        let n = keys.first().map_or(0, |k| k.len());
        self.groups.clear_shrink(n);
        let states = self
            .accs
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<Result<_>>()?;
        Ok(TakenState { keys, states })
    }

    /// Merges taken keys and states into this (empty) window; group `i` of `taken` becomes
    /// group `i` here.
    pub fn put(&mut self, taken: &TakenState) -> Result<()> {
        let mut idx = Vec::with_capacity(taken.len());
        self.groups.intern(&taken.keys, &mut idx)?;
        let n = self.groups.len();
        for (acc, s) in self.accs.iter_mut().zip(&taken.states) {
            acc.merge_batch(s, &idx, n)?;
        }
        self.grow();
        Ok(())
    }

    /// Merges a partial state of other rows (a partition unit's, keys and states as
    /// [`WindowState::take`] gives them) into this window, as if its rows had been added with
    /// [`WindowState::update`]: the groups it touches count as changed.
    pub fn merge(&mut self, taken: &TakenState) -> Result<()> {
        let mut idx = std::mem::take(&mut self.scratch);
        idx.clear();
        self.groups.intern(&taken.keys, &mut idx)?;
        let n = self.groups.len();
        for (acc, s) in self.accs.iter_mut().zip(&taken.states) {
            acc.merge_batch(s, &idx, n)?;
        }
        self.grow();
        for &g in &idx {
            self.dirty[g] = true;
        }
        self.scratch = idx;
        Ok(())
    }

    /// The final value of every aggregate for every group (keys first), keeping the state.
    pub fn evaluate(
        &mut self,
        aggs: &[Arc<AggregateFunctionExpr>],
    ) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let taken = self.take()?;
        self.put(&taken)?;
        let mut idx: Vec<usize> = (0..taken.len()).collect();
        let mut values = Vec::with_capacity(aggs.len());
        for (agg, s) in aggs.iter().zip(&taken.states) {
            let mut acc = accumulator(agg)?;
            acc.merge_batch(s, &idx, taken.len())?;
            values.push(acc.evaluate(EmitTo::All)?);
        }
        idx.clear();
        Ok((taken.keys, values))
    }
}
