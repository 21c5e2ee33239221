//! Counter-aware aggregate functions callable from pipeline SQL: `increase(value, time)` and
//! `rate(value, time)`, with Prometheus counter semantics.
//!
//! A counter only goes up, except when the process exporting it restarts and it starts again
//! from zero (a *reset*). Within one group (group per series and per window, e.g.
//! `GROUP BY tumble(time, INTERVAL '1 minute'), name, labels['instance']`) the samples are put
//! in time order and:
//!
//! - `increase(value, time)` is how much the counter went up between the first and the last
//!   sample: `last - first`, plus, for every reset (a value lower than the one before it), the
//!   value before the reset, which is the sum of the deltas between consecutive samples where
//!   the delta across a reset is the new value itself. This is computed exactly as Prometheus
//!   computes it (`last - first` then the reset corrections, in time order). It is `0.0` for a
//!   single sample and NULL for a group without samples.
//! - `rate(value, time)` is `increase` divided by the seconds between the first and the last
//!   sample: a per-second rate. It is NULL with fewer than two samples (there is no span).
//!
//! Unlike PromQL's `increase()`/`rate()`, there is **no extrapolation** to the window
//! boundaries: the result covers only the span between the first and the last sample of the
//! group, so it is exact and reproducible, but can be lower than PromQL's on sparse data.
//!
//! Rules that make the result independent of how rows arrive (order and batching, as the
//! streaming runtime feeds them): samples whose value or time is NULL, and NaN values
//! (Prometheus staleness markers), are ignored; several samples with the same time count as one,
//! the largest value (in IEEE total order); the samples are sorted by time before anything is
//! summed. The same multiset of samples therefore gives bit-identical results whatever the
//! arrival order, batching or merging of partial states. Since duplicates collapse, `DISTINCT`
//! changes nothing.
//!
//! Both functions are two-phase: the partial state of a group is its samples, as two list
//! fields, `times` (`List<Int64>`, milliseconds since the epoch) and `values`
//! (`List<Float64>`), of equal lengths, sorted by time and without duplicate times.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType,
};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use std::mem::size_of;
use std::sync::Arc;

/// One sample of a counter: event time in milliseconds since the epoch, and value.
type Sample = (i64, f64);

/// Which of the two counter functions an aggregate computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterFunction {
    /// `increase(value, time)`: how much the counter went up, resets accounted for.
    Increase,
    /// `rate(value, time)`: the increase per second between the first and the last sample.
    Rate,
}

impl CounterFunction {
    /// The SQL name of the function.
    pub fn name(self) -> &'static str {
        match self {
            CounterFunction::Increase => "increase",
            CounterFunction::Rate => "rate",
        }
    }

    /// The result for the samples of one group, which must be [`normalize`]d.
    fn compute(self, samples: &[Sample]) -> Option<f64> {
        match self {
            CounterFunction::Increase => increase_of(samples),
            CounterFunction::Rate => rate_of(samples),
        }
    }
}

/// The `increase` or `rate` aggregate function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CounterAggregate {
    function: CounterFunction,
    signature: Signature,
}

impl CounterAggregate {
    /// The aggregate computing `function`.
    pub fn new(function: CounterFunction) -> Self {
        CounterAggregate {
            function,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The `increase(value, time)` UDAF, ready to register: a Float64 counter value and an event
/// time column in, the Float64 increase of the counter over the group out.
pub fn increase() -> AggregateUDF {
    AggregateUDF::from(CounterAggregate::new(CounterFunction::Increase))
}

/// The `rate(value, time)` UDAF, ready to register: a Float64 counter value and an event time
/// column in, the Float64 per-second increase of the counter over the group out.
pub fn rate() -> AggregateUDF {
    AggregateUDF::from(CounterAggregate::new(CounterFunction::Rate))
}

/// Puts samples in time order and keeps one sample per time, the largest value (in IEEE total
/// order). The result depends only on the multiset of samples, not on their order.
pub fn normalize(samples: &mut Vec<(i64, f64)>) {
    samples.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // Within a run of equal times the values are ascending: the last one is the largest.
    samples.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 = next.1;
            true
        } else {
            false
        }
    });
}

/// The increase of a counter over [`normalize`]d samples, as Prometheus computes it without
/// extrapolation: `last - first`, plus the value before every reset. `None` without samples.
pub fn increase_of(samples: &[(i64, f64)]) -> Option<f64> {
    let (first, rest) = samples.split_first()?;
    let Some(last) = rest.last() else {
        return Some(0.0);
    };
    let mut result = last.1 - first.1;
    let mut prev = first.1;
    for &(_, v) in rest {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    Some(result)
}

/// The per-second rate of a counter over [`normalize`]d samples: [`increase_of`] divided by the
/// seconds between the first and the last sample. `None` with fewer than two samples.
pub fn rate_of(samples: &[(i64, f64)]) -> Option<f64> {
    let (first, last) = (samples.first()?, samples.last()?);
    let span_ms = last.0.checked_sub(first.0)?;
    if span_ms <= 0 {
        return None;
    }
    Some(increase_of(samples)? / (span_ms as f64 / 1000.0))
}

/// The value and time columns of an update batch.
fn inputs<'a>(
    name: &str,
    values: &'a [ArrayRef],
) -> Result<(
    &'a Float64Array,
    &'a datafusion::arrow::array::TimestampMillisecondArray,
)> {
    let [value, time] = values else {
        return exec_err!(
            "{name} takes two arguments (value, time), got {}",
            values.len()
        );
    };
    let Some(value) = value.as_primitive_opt::<Float64Type>() else {
        return exec_err!(
            "{name}: the value must be Float64, got {}",
            value.data_type()
        );
    };
    let Some(time) = time.as_primitive_opt::<TimestampMillisecondType>() else {
        return exec_err!(
            "{name}: the time must be a millisecond timestamp, got {}",
            time.data_type()
        );
    };
    if value.len() != time.len() {
        return exec_err!("{name}: value and time columns have different lengths");
    }
    Ok((value, time))
}

/// The sample of row `i`, unless its value or time is NULL or its value NaN.
fn sample_at(
    value: &Float64Array,
    time: &datafusion::arrow::array::TimestampMillisecondArray,
    i: usize,
) -> Option<Sample> {
    if value.is_null(i) || time.is_null(i) {
        return None;
    }
    let v = value.value(i);
    (!v.is_nan()).then(|| (time.value(i), v))
}

/// The `times` and `values` list columns of a merge batch.
fn state_inputs<'a>(name: &str, states: &'a [ArrayRef]) -> Result<(&'a ListArray, &'a ListArray)> {
    let [times, values] = states else {
        return exec_err!("{name}: expected 2 state columns, got {}", states.len());
    };
    let (Some(times), Some(values)) = (times.as_list_opt::<i32>(), values.as_list_opt::<i32>())
    else {
        return exec_err!(
            "{name}: state columns must be lists, got {} and {}",
            times.data_type(),
            values.data_type()
        );
    };
    if times.len() != values.len() {
        return exec_err!("{name}: state columns have different lengths");
    }
    Ok((times, values))
}

/// Appends the samples of state row `i` to `out`.
fn merge_row(
    name: &str,
    times: &ListArray,
    values: &ListArray,
    i: usize,
    out: &mut Vec<Sample>,
) -> Result<()> {
    if times.is_null(i) || values.is_null(i) {
        return Ok(());
    }
    let (t, v) = (times.value(i), values.value(i));
    let (Some(t), Some(v)) = (
        t.as_primitive_opt::<Int64Type>(),
        v.as_primitive_opt::<Float64Type>(),
    ) else {
        return exec_err!("{name}: state lists must hold Int64 times and Float64 values");
    };
    if t.len() != v.len() {
        return exec_err!(
            "{name}: state row with {} times but {} values",
            t.len(),
            v.len()
        );
    }
    out.extend(
        (0..t.len())
            .filter(|&j| t.is_valid(j) && v.is_valid(j) && !v.value(j).is_nan())
            .map(|j| (t.value(j), v.value(j))),
    );
    Ok(())
}

/// The list field type of the `times` state.
fn times_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Int64, true))
}

/// The list field type of the `values` state.
fn values_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Float64, true))
}

/// The state columns (`times`, `values`) of the given groups, one list row per group.
fn state_lists<'a>(groups: impl Iterator<Item = &'a [Sample]> + Clone) -> Result<[ArrayRef; 2]> {
    let lengths: Vec<usize> = groups.clone().map(<[Sample]>::len).collect();
    let times: Int64Array = groups.clone().flatten().map(|s| Some(s.0)).collect();
    let values: Float64Array = groups.flatten().map(|s| Some(s.1)).collect();
    let times = ListArray::try_new(
        times_item(),
        OffsetBuffer::from_lengths(lengths.iter().copied()),
        Arc::new(times),
        None,
    )?;
    let values = ListArray::try_new(
        values_item(),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(values),
        None,
    )?;
    Ok([Arc::new(times), Arc::new(values)])
}

impl AggregateUDFImpl for CounterAggregate {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value, DataType::Timestamp(_, tz)]
                if value.is_numeric() || *value == DataType::Null =>
            {
                Ok(vec![
                    DataType::Float64,
                    DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
                ])
            }
            _ => plan_err!(
                "{}(value, time) takes a numeric counter value and an event time column, got {arg_types:?}",
                self.name()
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CounterAccumulator::new(self.function)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "times"),
                DataType::List(times_item()),
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "values"),
                DataType::List(values_item()),
                true,
            )),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(CounterGroupsAccumulator::new(self.function)))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        // Samples are sorted by time inside the accumulator: input order never matters.
        AggregateOrderSensitivity::Insensitive
    }
}

/// The accumulator of one group: its samples, in arrival order until normalized.
#[derive(Debug)]
pub struct CounterAccumulator {
    function: CounterFunction,
    samples: Vec<Sample>,
}

impl CounterAccumulator {
    /// An empty accumulator computing `function`.
    pub fn new(function: CounterFunction) -> Self {
        CounterAccumulator {
            function,
            samples: Vec::new(),
        }
    }
}

impl Accumulator for CounterAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (value, time) = inputs(self.function.name(), values)?;
        self.samples
            .extend((0..value.len()).filter_map(|i| sample_at(value, time, i)));
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        normalize(&mut self.samples);
        Ok(ScalarValue::Float64(self.function.compute(&self.samples)))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.samples.capacity() * size_of::<Sample>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        normalize(&mut self.samples);
        let [times, values] = state_lists(std::iter::once(self.samples.as_slice()))?;
        let (Some(times), Some(values)) = (times.as_list_opt::<i32>(), values.as_list_opt::<i32>())
        else {
            return exec_err!(
                "{}: state lists of an unexpected type",
                self.function.name()
            );
        };
        Ok(vec![
            ScalarValue::List(Arc::new(times.clone())),
            ScalarValue::List(Arc::new(values.clone())),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let name = self.function.name();
        let (times, values) = state_inputs(name, states)?;
        for i in 0..times.len() {
            merge_row(name, times, values, i, &mut self.samples)?;
        }
        Ok(())
    }
}

/// The accumulator of all groups of an aggregation: the samples of each group.
#[derive(Debug)]
pub struct CounterGroupsAccumulator {
    function: CounterFunction,
    groups: Vec<Vec<Sample>>,
    /// Samples held over all groups, for [`GroupsAccumulator::size`].
    samples: usize,
}

impl CounterGroupsAccumulator {
    /// An empty accumulator computing `function`.
    pub fn new(function: CounterFunction) -> Self {
        CounterGroupsAccumulator {
            function,
            groups: Vec::new(),
            samples: 0,
        }
    }

    /// Removes and returns the groups `emit_to` asks for, normalized.
    fn take(&mut self, emit_to: EmitTo) -> Vec<Vec<Sample>> {
        let mut taken = emit_to.take_needed(&mut self.groups);
        for g in &mut taken {
            self.samples = self.samples.saturating_sub(g.len());
            normalize(g);
        }
        taken
    }

    /// The group of `index`, which must be below `total` (the groups grow to `total`).
    fn group(&mut self, index: usize) -> Result<&mut Vec<Sample>> {
        match self.groups.get_mut(index) {
            Some(g) => Ok(g),
            None => exec_err!("{}: group index {index} out of range", self.function.name()),
        }
    }
}

impl GroupsAccumulator for CounterGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let (value, time) = inputs(self.function.name(), values)?;
        if group_indices.len() != value.len() {
            return exec_err!("{}: one group index per row expected", self.function.name());
        }
        self.groups.resize_with(total_num_groups, Vec::new);
        for (i, &g) in group_indices.iter().enumerate() {
            if opt_filter.is_some_and(|f| !(f.is_valid(i) && f.value(i))) {
                continue;
            }
            if let Some(s) = sample_at(value, time, i) {
                self.group(g)?.push(s);
                self.samples += 1;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let function = self.function;
        let out: Float64Array = self
            .take(emit_to)
            .iter()
            .map(|g| function.compute(g))
            .collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let taken = self.take(emit_to);
        Ok(state_lists(taken.iter().map(Vec::as_slice))?.to_vec())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let name = self.function.name();
        let (times, lists) = state_inputs(name, values)?;
        if group_indices.len() != times.len() {
            return exec_err!("{name}: one group index per state row expected");
        }
        self.groups.resize_with(total_num_groups, Vec::new);
        for (i, &g) in group_indices.iter().enumerate() {
            let group = self.group(g)?;
            let before = group.len();
            merge_row(name, times, lists, i, group)?;
            let added = group.len() - before;
            self.samples += added;
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        _values: &[ArrayRef],
        _opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // supports_convert_to_state() is false: DataFusion never skips partial aggregation here.
        exec_err!(
            "{}: no direct conversion of rows to state",
            self.function.name()
        )
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.groups.capacity() * size_of::<Vec<Sample>>()
            + self.samples * size_of::<Sample>()
    }
}
