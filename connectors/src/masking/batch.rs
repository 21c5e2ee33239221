//! Masking applied to Arrow batches, column by column.
//!
//! Per kind, the free-text columns (a log's `body`, an event's `message`, an alert's
//! `generator_url`) and every label/attribute map (`labels`, `attributes`, `annotations`) are
//! checked. A column in which nothing matched is kept as it is (the same `Arc`, nothing
//! copied); only a column with a match is rebuilt. A `drop` match removes a map entry, or the
//! whole record when it is in a body or message (an alert's `generator_url` becomes null).

use super::masker::{MaskStats, Masked, Masker, MaskingError};
use aiops_schemas::Kind;
use aiops_schemas::arrow_array::builder::{MapBuilder, StringBuilder};
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::{
    Array, ArrayRef, BooleanArray, MapArray, RecordBatch, StringArray,
};
use std::sync::Arc;

/// What a text column's `drop` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextDrop {
    /// The record goes (log body, event message).
    Record,
    /// The value becomes null (an alert's `generator_url`).
    Null,
}

/// The free-text columns of a kind and what `drop` does there.
fn text_columns(kind: Kind) -> &'static [(&'static str, TextDrop)] {
    match kind {
        Kind::Metrics => &[],
        Kind::Logs => &[("body", TextDrop::Record)],
        Kind::Alerts => &[("generator_url", TextDrop::Null)],
        Kind::Events => &[("message", TextDrop::Record)],
    }
}

/// The label/attribute map columns of a kind.
fn map_columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Metrics => &["labels"],
        Kind::Logs | Kind::Events => &["labels", "attributes"],
        Kind::Alerts => &["labels", "annotations"],
    }
}

impl Masker {
    /// Masks a batch of `kind`: `Ok(None)` when nothing matched (the batch is stored as it is),
    /// else the batch with the changed columns rebuilt and dropped records removed (possibly
    /// empty). Counts go to `stats`.
    ///
    /// # Errors
    /// [`MaskingError::Internal`] when a rebuilt column does not fit the batch's schema: a bug
    /// (decoders build batches of their kind's schema).
    pub fn mask_batch(
        &self,
        kind: Kind,
        batch: &RecordBatch,
        stats: &mut MaskStats,
    ) -> Result<Option<RecordBatch>, MaskingError> {
        if !self.enabled() || batch.num_rows() == 0 {
            return Ok(None);
        }
        let schema = batch.schema();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let mut changed = false;
        let mut drop_rows: Option<Vec<bool>> = None;
        for (name, on_drop) in text_columns(kind) {
            let Ok(idx) = schema.index_of(name) else {
                continue;
            };
            let Some(arr) = columns[idx].as_string_opt::<i32>() else {
                continue;
            };
            if let Some(new) = self.mask_text_column(arr, *on_drop, &mut drop_rows, stats) {
                columns[idx] = new;
                changed = true;
            }
        }
        for name in map_columns(kind) {
            let Ok(idx) = schema.index_of(name) else {
                continue;
            };
            let Some(map) = columns[idx].as_map_opt() else {
                continue;
            };
            if let Some(new) = self.mask_map_column(map, stats)? {
                columns[idx] = new;
                changed = true;
            }
        }
        if !changed {
            return Ok(None);
        }
        let rebuilt = RecordBatch::try_new(schema, columns).map_err(|e| {
            MaskingError::Internal(format!("masked {kind} batch does not fit its schema: {e}"))
        })?;
        match drop_rows {
            Some(dropped) => {
                let keep: BooleanArray = dropped.iter().map(|d| Some(!d)).collect();
                let kept = arrow_select::filter::filter_record_batch(&rebuilt, &keep)
                    .map_err(|e| MaskingError::Internal(format!("filtering dropped rows: {e}")))?;
                stats.dropped_records += dropped.iter().filter(|d| **d).count() as u64;
                Ok(Some(kept))
            }
            None => Ok(Some(rebuilt)),
        }
    }

    /// A text column with its values masked, or `None` when nothing matched.
    fn mask_text_column(
        &self,
        arr: &StringArray,
        on_drop: TextDrop,
        drop_rows: &mut Option<Vec<bool>>,
        stats: &mut MaskStats,
    ) -> Option<ArrayRef> {
        // Only rows that changed are remembered; most batches have none.
        let mut changes: Vec<(usize, Option<String>)> = Vec::new();
        for i in 0..arr.len() {
            if arr.is_null(i) {
                continue;
            }
            match self.mask_text(arr.value(i), stats) {
                Masked::Unchanged(_) => {}
                Masked::Changed(s) => changes.push((i, Some(s))),
                Masked::Drop => changes.push((i, None)),
            }
        }
        if changes.is_empty() {
            return None;
        }
        let extra: usize = changes
            .iter()
            .map(|(_, s)| s.as_ref().map_or(0, String::len))
            .sum();
        let mut b = StringBuilder::with_capacity(arr.len(), arr.value_data().len() + extra);
        let mut next = changes.iter().peekable();
        for i in 0..arr.len() {
            match next.next_if(|(r, _)| *r == i) {
                Some((_, Some(s))) => b.append_value(s),
                Some((_, None)) => match on_drop {
                    TextDrop::Null => b.append_null(),
                    TextDrop::Record => {
                        drop_rows.get_or_insert_with(|| vec![false; arr.len()])[i] = true;
                        // The row is filtered out; its value is not kept even in memory.
                        b.append_value("");
                    }
                },
                None if arr.is_null(i) => b.append_null(),
                None => b.append_value(arr.value(i)),
            }
        }
        Some(Arc::new(b.finish()))
    }

    /// A label/attribute map column with its values masked (and dropped entries removed), or
    /// `None` when nothing matched.
    fn mask_map_column(
        &self,
        map: &MapArray,
        stats: &mut MaskStats,
    ) -> Result<Option<ArrayRef>, MaskingError> {
        let (Some(keys), Some(values)) = (
            map.keys().as_string_opt::<i32>(),
            map.values().as_string_opt::<i32>(),
        ) else {
            return Ok(None);
        };
        // Label sets are mostly short identifiers: one pass over the column's buffers usually
        // shows that no entry can match.
        if !self.column_may_match(keys.value_data(), values.value_data()) {
            return Ok(None);
        }
        let offsets = map.value_offsets();
        let mut changes: Vec<(usize, Option<String>)> = Vec::new();
        for row in 0..map.len() {
            if map.is_null(row) {
                continue;
            }
            let (lo, hi) = (offsets[row] as usize, offsets[row + 1] as usize);
            for j in lo..hi {
                if values.is_null(j) {
                    continue;
                }
                match self.mask_entry(keys.value(j), values.value(j), stats) {
                    Masked::Unchanged(_) => {}
                    Masked::Changed(s) => changes.push((j, Some(s))),
                    Masked::Drop => changes.push((j, None)),
                }
            }
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let mut b = MapBuilder::new(
            None,
            StringBuilder::with_capacity(keys.len(), keys.value_data().len()),
            StringBuilder::with_capacity(values.len(), values.value_data().len()),
        );
        let mut next = changes.iter().peekable();
        for row in 0..map.len() {
            let (lo, hi) = (offsets[row] as usize, offsets[row + 1] as usize);
            for j in lo..hi {
                let value = match next.next_if(|(e, _)| *e == j) {
                    Some((_, Some(s))) => Some(s.as_str()),
                    Some((_, None)) => {
                        stats.dropped_entries += 1;
                        continue;
                    }
                    None if values.is_null(j) => None,
                    None => Some(values.value(j)),
                };
                b.keys().append_value(keys.value(j));
                b.values().append_option(value);
            }
            b.append(!map.is_null(row))
                .map_err(|e| MaskingError::Internal(format!("rebuilding a label map: {e}")))?;
        }
        Ok(Some(Arc::new(b.finish())))
    }
}
