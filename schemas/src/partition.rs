//! Which log partition an event belongs to: a stable hash of its series or stream key.
//!
//! The hash is FNV-1a (stable across processes, platforms and versions — partitions are persisted
//! in subjects, so `std`'s randomized hasher would not do). A label set is hashed independently of
//! its order, so `{a,b}` and `{b,a}` land in the same partition without sorting per event.

use crate::kind::Kind;
use arrow_array::cast::AsArray;
use arrow_array::{Array, MapArray, RecordBatch, StringArray, UInt32Array};
use arrow_schema::ArrowError;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// FNV-1a over `bytes`, continuing from `h`.
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Order-independent hash of a label set given as pairs.
pub fn hash_labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut acc = 0u64;
    for (k, v) in pairs {
        let h = fnv1a(fnv1a(FNV_OFFSET, k.as_bytes()), &[0xff]);
        // Each pair's hash is finalized before the (order-independent) sum: raw FNV-1a values of
        // strings that differ only in their last byte differ by ±prime, so two such pairs could
        // cancel out in a plain sum ({a=x0, b=y0} and {a=x1, b=y1} collided).
        acc = acc.wrapping_add(fmix64(fnv1a(h, v.as_bytes())));
    }
    acc
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The series key hash of a metric (name and labels).
pub fn metric_series_hash<'a>(
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> u64 {
    fnv1a(FNV_OFFSET, name.as_bytes()) ^ hash_labels(labels)
}

fn map_row_hash(map: &MapArray, row: usize) -> u64 {
    let offsets = map.value_offsets();
    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
    let keys = map.keys().as_string::<i32>();
    let values = map.values().as_string::<i32>();
    hash_labels((start..end).map(|i| (keys.value(i), values.value(i))))
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, ArrowError> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| ArrowError::SchemaError(format!("batch has no column {name:?}")))
}

/// The key hash of every row of a batch of `kind`.
///
/// # Errors
/// If the batch lacks the key columns of its kind (a bug in the caller).
pub fn row_hashes(kind: Kind, batch: &RecordBatch) -> Result<Vec<u64>, ArrowError> {
    let n = batch.num_rows();
    let mut out = Vec::with_capacity(n);
    match kind {
        Kind::Alerts => {
            let fp: &StringArray = column(batch, "fingerprint")?.as_string::<i32>();
            out.extend((0..n).map(|i| fnv1a(FNV_OFFSET, fp.value(i).as_bytes())));
        }
        Kind::Metrics => {
            let name: &StringArray = column(batch, "name")?.as_string::<i32>();
            let labels = column(batch, "labels")?.as_map();
            out.extend(
                (0..n)
                    .map(|i| fnv1a(FNV_OFFSET, name.value(i).as_bytes()) ^ map_row_hash(labels, i)),
            );
        }
        Kind::Logs | Kind::Events => {
            let labels = column(batch, "labels")?.as_map();
            out.extend((0..n).map(|i| map_row_hash(labels, i)));
        }
    }
    Ok(out)
}

/// Splits a batch into one batch per partition (only non-empty ones, ascending partition), keeping
/// row order within each. With `partitions <= 1` the batch is returned whole as partition 0.
///
/// # Errors
/// If the batch lacks its kind's key columns.
pub fn split_by_partition(
    kind: Kind,
    batch: &RecordBatch,
    partitions: u32,
) -> Result<Vec<(u32, RecordBatch)>, ArrowError> {
    if partitions <= 1 || batch.num_rows() == 0 {
        return Ok(vec![(0, batch.clone())]);
    }
    let hashes = row_hashes(kind, batch)?;
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); partitions as usize];
    for (i, h) in hashes.iter().enumerate() {
        rows[(h % u64::from(partitions)) as usize].push(i as u32);
    }
    let mut out = Vec::new();
    for (p, idx) in rows.into_iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        let indices = UInt32Array::from(idx);
        let part = arrow_select::take::take_record_batch(batch, &indices)?;
        out.push((p as u32, part));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::MetricBatchBuilder;

    #[test]
    fn label_order_does_not_matter() {
        assert_eq!(
            hash_labels([("a", "1"), ("b", "2")]),
            hash_labels([("b", "2"), ("a", "1")])
        );
        assert_ne!(hash_labels([("a", "1")]), hash_labels([("a", "2")]));
        assert_ne!(hash_labels([("a", "12")]), hash_labels([("a1", "2")]));
        // Pairs differing only in their last byte must not cancel out.
        assert_ne!(
            hash_labels([("alertname", "A0"), ("service", "svc-A0")]),
            hash_labels([("alertname", "A1"), ("service", "svc-A1")])
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..100 {
            for j in 0..100 {
                let (a, b) = (format!("x{i}"), format!("y{j}"));
                assert!(
                    seen.insert(hash_labels([("a", a.as_str()), ("b", b.as_str())])),
                    "collision at {i},{j}"
                );
            }
        }
    }

    #[test]
    fn split_keeps_every_row_once_and_series_together() {
        let mut b = MetricBatchBuilder::new();
        for i in 0..1000 {
            b.push(i, "m", [("host", format!("h{}", i % 13))], i as f64);
        }
        let batch = b.finish().unwrap();
        let parts = split_by_partition(Kind::Metrics, &batch, 4).unwrap();
        assert_eq!(parts.iter().map(|(_, b)| b.num_rows()).sum::<usize>(), 1000);
        assert!(parts.len() > 1);
        // The same series hashes the same, so the metric hash is a pure function of the series.
        let h = metric_series_hash("m", [("host", "h1")]);
        let hashes = row_hashes(Kind::Metrics, &batch).unwrap();
        assert_eq!(hashes[1], h);
        assert_eq!(hashes[14], h);
    }
}
