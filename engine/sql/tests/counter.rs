//! `increase(value, time)` and `rate(value, time)`: batch SQL over metric batches with counter
//! resets, and the two-phase property the streaming runtime relies on (any split of the rows into
//! partial states, merged in any order, gives bit-identical results).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_schemas::{Kind, MetricBatchBuilder, schema_for};
use aiops_sql::counter::{
    CounterAccumulator, CounterFunction, CounterGroupsAccumulator, increase_of,
};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, RecordBatch, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Runs `sql` over a `metrics` table holding `batches` (one partition each) and returns the
/// rows as (first column as string, second column as f64 or None).
async fn query(batches: Vec<RecordBatch>, sql: &str) -> Vec<(String, Option<f64>)> {
    let ctx = aiops_sql::catalog::session().unwrap();
    ctx.deregister_table("metrics").unwrap();
    let mut partitions: Vec<Vec<RecordBatch>> = batches.into_iter().map(|b| vec![b]).collect();
    if partitions.is_empty() {
        partitions.push(Vec::new());
    }
    let table = MemTable::try_new(schema_for(Kind::Metrics), partitions).unwrap();
    ctx.register_table("metrics", Arc::new(table)).unwrap();
    let out = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for b in &out {
        let key = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
        let key = key.as_string::<i32>();
        let v = b.column(1).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            rows.push((key.value(i).to_string(), v.is_valid(i).then(|| v.value(i))));
        }
    }
    rows
}

/// Counter samples of three instances, out of time order and over two batches: `a` resets once,
/// `b` never, `c` has one sample.
fn counter_batches() -> Vec<RecordBatch> {
    let mut b1 = MetricBatchBuilder::new();
    let mut b2 = MetricBatchBuilder::new();
    let c = "http_requests_total";
    // a: 0 s → 10, 15 s → 25, 30 s → 40, 45 s → 5 (reset), 60 s → 20.
    b1.push(45_000, c, [("instance", "a")], 5.0);
    b1.push(0, c, [("instance", "a")], 10.0);
    b2.push(60_000, c, [("instance", "a")], 20.0);
    b2.push(30_000, c, [("instance", "a")], 40.0);
    b1.push(15_000, c, [("instance", "a")], 25.0);
    // b: 0 s → 100, 30 s → 100, 60 s → 130.
    b2.push(60_000, c, [("instance", "b")], 130.0);
    b1.push(0, c, [("instance", "b")], 100.0);
    b2.push(30_000, c, [("instance", "b")], 100.0);
    // c: a single sample.
    b1.push(10_000, c, [("instance", "c")], 7.0);
    vec![b1.finish().unwrap(), b2.finish().unwrap()]
}

#[tokio::test]
async fn increase_by_instance_counts_resets() {
    let rows = query(
        counter_batches(),
        "SELECT labels['instance'] AS instance, increase(value, time) AS inc \
         FROM metrics GROUP BY labels['instance'] ORDER BY 1",
    )
    .await;
    // a: deltas 15 + 15 + 5 (the reset: the new value itself) + 15 = 50.
    // b: 0 + 30 = 30. c: a single sample increases by 0.
    assert_eq!(
        rows,
        vec![
            ("a".to_string(), Some(50.0)),
            ("b".to_string(), Some(30.0)),
            ("c".to_string(), Some(0.0)),
        ]
    );
}

#[tokio::test]
async fn rate_by_instance_is_per_second_and_null_for_one_sample() {
    let rows = query(
        counter_batches(),
        "SELECT labels['instance'] AS instance, rate(value, time) AS r \
         FROM metrics GROUP BY labels['instance'] ORDER BY 1",
    )
    .await;
    assert_eq!(
        rows,
        vec![
            ("a".to_string(), Some(50.0 / 60.0)),
            ("b".to_string(), Some(30.0 / 60.0)),
            ("c".to_string(), None),
        ]
    );
}

#[tokio::test]
async fn rate_over_two_samples_sixty_seconds_apart() {
    let mut b = MetricBatchBuilder::new();
    b.push(120_000, "bytes_total", [("instance", "x")], 1000.0);
    b.push(60_000, "bytes_total", [("instance", "x")], 880.0);
    let rows = query(
        vec![b.finish().unwrap()],
        "SELECT name, rate(value, time) AS r FROM metrics GROUP BY name",
    )
    .await;
    assert_eq!(rows, vec![("bytes_total".to_string(), Some(2.0))]);
}

#[tokio::test]
async fn no_rows_give_null_and_windows_group_per_series() {
    let mut b = MetricBatchBuilder::new();
    for s in 0..120i64 {
        // One sample a second, +3 each; reset to 0 at 90 s.
        let v = if s < 90 { 3 * s } else { 3 * (s - 90) };
        b.push(s * 1000, "c", [("instance", "x")], v as f64);
    }
    let rows = query(
        vec![b.finish().unwrap()],
        "SELECT CAST(tumble(time, INTERVAL '1 minute') AS VARCHAR) AS w, increase(value, time) \
         FROM metrics GROUP BY 1 ORDER BY 1",
    )
    .await;
    // Window 0: 0..177 over 59 s. Window 1: 180..267, reset to 0, then up to 87: 87 + 267 - 180.
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].1, Some(177.0));
    assert_eq!(rows[1].1, Some(267.0 - 180.0 + 87.0));
    let empty = query(
        vec![],
        "SELECT 'all' AS k, increase(value, time) FROM metrics",
    )
    .await;
    assert_eq!(empty, vec![("all".to_string(), None)]);
}

/// The update arguments (value, time) of some samples; `None` values are NULL rows.
fn args(samples: &[(i64, Option<f64>)]) -> Vec<ArrayRef> {
    let values: Float64Array = samples.iter().map(|s| s.1).collect();
    let times = TimestampMillisecondArray::from(samples.iter().map(|s| s.0).collect::<Vec<_>>())
        .with_timezone("+00:00");
    vec![Arc::new(values), Arc::new(times)]
}

/// The state of an accumulator as one-row arrays, as the runtime would store it.
fn state_arrays(acc: &mut CounterAccumulator) -> Vec<ArrayRef> {
    acc.state()
        .unwrap()
        .iter()
        .map(|s| s.to_array().unwrap())
        .collect()
}

fn as_f64(v: ScalarValue) -> Option<f64> {
    match v {
        ScalarValue::Float64(v) => v,
        other => panic!("expected Float64, got {other:?}"),
    }
}

/// Reference: one sample per time (the largest value), time order, Prometheus' formula.
fn reference(f: CounterFunction, samples: &[(i64, Option<f64>)]) -> Option<f64> {
    let mut by_time: BTreeMap<i64, f64> = BTreeMap::new();
    for &(t, v) in samples {
        let Some(v) = v else { continue };
        by_time
            .entry(t)
            .and_modify(|w| {
                if v.total_cmp(w).is_gt() {
                    *w = v;
                }
            })
            .or_insert(v);
    }
    let pts: Vec<(i64, f64)> = by_time.into_iter().collect();
    let (first, last) = (pts.first()?, pts.last()?);
    let mut inc = last.1 - first.1;
    for w in pts.windows(2) {
        if w[1].1 < w[0].1 {
            inc += w[0].1;
        }
    }
    match f {
        CounterFunction::Increase => Some(inc),
        CounterFunction::Rate if pts.len() >= 2 => Some(inc / ((last.0 - first.0) as f64 / 1000.0)),
        CounterFunction::Rate => None,
    }
}

/// Counter samples: times from a small range (so some collide), values going up by random
/// fractional steps with random resets, a few NULL rows; returned in time order.
fn samples() -> impl Strategy<Value = Vec<(i64, Option<f64>)>> {
    prop::collection::vec(
        (
            0i64..40,
            0.0f64..1e6,
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.05),
        ),
        0..60,
    )
    .prop_map(|steps| {
        let mut v = 1e9_f64 / 3.0;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (dt, step, reset, null))| {
                v = if reset { step / 7.0 } else { v + step / 3.0 };
                let t = i as i64 * 5_000 + dt * 250 - 10_000;
                (t, (!null).then_some(v))
            })
            .collect()
    })
}

/// Samples in a shuffled order, cut into chunks, with an order to merge the chunks in.
/// Samples, and two ways of cutting them into batches.
type Split = (Vec<(i64, Option<f64>)>, Vec<usize>, Vec<usize>);

fn split_samples() -> impl Strategy<Value = Split> {
    samples().prop_flat_map(|s| {
        let n = s.len();
        (
            Just(s).prop_shuffle(),
            prop::collection::vec(0usize..=n, 0..6),
            Just((0..8).collect::<Vec<usize>>()).prop_shuffle(),
        )
    })
}

fn chunks(rows: &[(i64, Option<f64>)], cuts: &[usize]) -> Vec<Vec<(i64, Option<f64>)>> {
    let mut cuts = cuts.to_vec();
    cuts.push(0);
    cuts.push(rows.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| rows[w[0]..w[1]].to_vec()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Chunks fed to separate accumulators, their states merged in any order, evaluate to the
    /// same bits as one accumulator fed everything, and as the reference.
    #[test]
    fn merged_partial_states_are_bit_identical(
        (rows, cuts, order) in split_samples()
    ) {
        let parts = chunks(&rows, &cuts);
        for f in [CounterFunction::Increase, CounterFunction::Rate] {
            let mut whole = CounterAccumulator::new(f);
            whole.update_batch(&args(&rows)).unwrap();
            let whole = as_f64(whole.evaluate().unwrap());

            let mut states: Vec<Vec<ArrayRef>> = parts
                .iter()
                .map(|p| {
                    let mut acc = CounterAccumulator::new(f);
                    // Each chunk arrives as two micro-batches.
                    let (x, y) = p.split_at(p.len() / 2);
                    acc.update_batch(&args(y)).unwrap();
                    acc.update_batch(&args(x)).unwrap();
                    state_arrays(&mut acc)
                })
                .collect();
            let mut ordered: Vec<usize> = order.iter().copied().filter(|&i| i < states.len()).collect();
            ordered.extend(order.len()..states.len());
            let mut merged = CounterAccumulator::new(f);
            for &i in &ordered {
                merged.merge_batch(&std::mem::take(&mut states[i])).unwrap();
            }
            let merged = as_f64(merged.evaluate().unwrap());

            // The groups accumulator: chunks into separate groups of one, states merged into
            // one group in the same order.
            let mut groups = CounterGroupsAccumulator::new(f);
            for (g, p) in parts.iter().enumerate() {
                groups.update_batch(&args(p), &vec![g; p.len()], None, parts.len()).unwrap();
            }
            let state = groups.state(EmitTo::All).unwrap();
            let mut single = CounterGroupsAccumulator::new(f);
            for &i in &ordered {
                let one: Vec<ArrayRef> = state.iter().map(|a| a.slice(i, 1)).collect();
                single.merge_batch(&one, &[0], 1).unwrap();
            }
            let grouped = single.evaluate(EmitTo::All).unwrap();
            let grouped = grouped.as_primitive::<Float64Type>();
            let grouped = if parts.is_empty() || grouped.is_null(0) {
                None
            } else {
                Some(grouped.value(0))
            };

            let expected = reference(f, &rows);
            let bits = |v: Option<f64>| v.map(f64::to_bits);
            prop_assert_eq!(bits(whole), bits(expected), "{:?} whole", f);
            prop_assert_eq!(bits(merged), bits(expected), "{:?} merged", f);
            prop_assert_eq!(bits(grouped), bits(expected), "{:?} groups accumulator", f);
        }
    }

    /// With exactly representable values, increase is the plain sum of deltas between
    /// consecutive samples in time order, a reset's delta being the new value itself.
    #[test]
    fn increase_is_the_sum_of_deltas(steps in prop::collection::vec((0u32..1000, prop::bool::weighted(0.2)), 1..50)) {
        let mut v = 0.0f64;
        let samples: Vec<(i64, f64)> = steps
            .iter()
            .enumerate()
            .map(|(i, &(step, reset))| {
                v = if reset { f64::from(step) / 4.0 } else { v + f64::from(step) / 4.0 };
                (i as i64 * 1000, v)
            })
            .collect();
        let mut deltas = 0.0;
        for w in samples.windows(2) {
            deltas += if w[1].1 < w[0].1 { w[1].1 } else { w[1].1 - w[0].1 };
        }
        prop_assert_eq!(increase_of(&samples), Some(deltas));
    }
}

#[test]
fn duplicate_times_keep_the_largest_value() {
    let mut a = CounterAccumulator::new(CounterFunction::Increase);
    a.update_batch(&args(&[
        (0, Some(1.0)),
        (1000, Some(5.0)),
        (1000, Some(3.0)),
        (2000, Some(6.0)),
    ]))
    .unwrap();
    assert_eq!(as_f64(a.evaluate().unwrap()), Some(5.0));
    let mut nan = CounterAccumulator::new(CounterFunction::Increase);
    nan.update_batch(&args(&[
        (0, Some(1.0)),
        (1000, Some(f64::NAN)),
        (2000, Some(2.0)),
    ]))
    .unwrap();
    assert_eq!(as_f64(nan.evaluate().unwrap()), Some(1.0));
}
