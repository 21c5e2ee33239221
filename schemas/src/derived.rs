//! The binary form of what a pipeline writes to the log: derived events (`aiops.derived.<output>`)
//! and rows that arrived too late for their window (`aiops.late.<pipeline>`).
//!
//! ```text
//! offset size field
//! 0      4    magic "AIOD"
//! 4      1    format (1)
//! 5      1    what: 0 = derived events, 1 = late rows
//! 6      8    window start, Unix ms (i64 LE): the (earliest) window the rows belong to
//! 14     2    pipeline name length n (u16 LE)
//! 16     n    pipeline name, UTF-8
//! 16+n   …    Arrow IPC stream (schema + one record batch), buffers LZ4-frame compressed
//! ```
//! Unlike input batches, the Arrow schema travels with every message: each pipeline has its own
//! output columns. Nothing in it comes from the wall clock, so the same input gives the same bytes.

use arrow_array::RecordBatch;
use arrow_ipc::CompressionType;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::ArrowError;

const MAGIC: &[u8; 4] = b"AIOD";
const FORMAT: u8 = 1;
const FIXED: usize = 16;

/// Subject prefix of derived events; the output name follows.
pub const DERIVED_PREFIX: &str = "aiops.derived.";
/// Subject prefix of late rows; the pipeline name follows.
pub const LATE_PREFIX: &str = "aiops.late.";

/// What a derived message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedWhat {
    /// Results of a pipeline's windows.
    Events,
    /// Input rows beyond their window's allowed lateness.
    Late,
}

/// The header of a derived message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedHeader {
    /// Events or late rows.
    pub what: DerivedWhat,
    /// Start of the (earliest) window of the rows, Unix ms.
    pub window_start_ms: i64,
    /// The pipeline that wrote it.
    pub pipeline: String,
}

/// Why a derived message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum DerivedError {
    /// Not a derived message, or a damaged one.
    #[error("not a derived-event message: {0}")]
    Malformed(&'static str),
    /// Arrow IPC failed.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

/// Encodes one batch a pipeline produced.
///
/// # Errors
/// [`DerivedError::Malformed`] for a pipeline name over 65535 bytes, [`DerivedError::Arrow`] if
/// IPC encoding fails.
pub fn encode_derived(h: &DerivedHeader, batch: &RecordBatch) -> Result<Vec<u8>, DerivedError> {
    let n = u16::try_from(h.pipeline.len())
        .map_err(|_| DerivedError::Malformed("pipeline name longer than 65535 bytes"))?;
    let mut out = Vec::with_capacity(FIXED + h.pipeline.len() + batch.get_array_memory_size() / 2);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.push(match h.what {
        DerivedWhat::Events => 0,
        DerivedWhat::Late => 1,
    });
    out.extend_from_slice(&h.window_start_ms.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(h.pipeline.as_bytes());
    let options =
        IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
    let mut w = StreamWriter::try_new_with_options(&mut out, &batch.schema(), options)?;
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

/// Decodes a derived message's header and batch.
///
/// # Errors
/// [`DerivedError`] naming what is wrong.
pub fn decode_derived(msg: &[u8]) -> Result<(DerivedHeader, RecordBatch), DerivedError> {
    if msg.len() < FIXED || &msg[..4] != MAGIC {
        return Err(DerivedError::Malformed("bad magic or truncated header"));
    }
    if msg[4] != FORMAT {
        return Err(DerivedError::Malformed("unknown format"));
    }
    let what = match msg[5] {
        0 => DerivedWhat::Events,
        1 => DerivedWhat::Late,
        _ => return Err(DerivedError::Malformed("unknown content tag")),
    };
    let mut w = [0u8; 8];
    w.copy_from_slice(&msg[6..14]);
    let n = u16::from_le_bytes([msg[14], msg[15]]) as usize;
    let name = msg
        .get(FIXED..FIXED + n)
        .ok_or(DerivedError::Malformed("truncated pipeline name"))?;
    let pipeline = std::str::from_utf8(name)
        .map_err(|_| DerivedError::Malformed("pipeline name is not UTF-8"))?
        .to_string();
    let mut reader = StreamReader::try_new(&msg[FIXED + n..], None)?;
    let batch = reader
        .next()
        .ok_or(DerivedError::Malformed("no record batch"))??;
    Ok((
        DerivedHeader {
            what,
            window_start_ms: i64::from_le_bytes(w),
            pipeline,
        },
        batch,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn round_trip_and_refusals() {
        let batch = RecordBatch::try_from_iter([
            (
                "event_id",
                Arc::new(StringArray::from(vec!["a/0/1/0"])) as _,
            ),
            ("n", Arc::new(Int64Array::from(vec![3])) as _),
        ])
        .unwrap();
        let h = DerivedHeader {
            what: DerivedWhat::Late,
            window_start_ms: -60_000,
            pipeline: "orders".into(),
        };
        let bytes = encode_derived(&h, &batch).unwrap();
        assert_eq!(encode_derived(&h, &batch).unwrap(), bytes, "deterministic");
        let (h2, b2) = decode_derived(&bytes).unwrap();
        assert_eq!(h2, h);
        assert_eq!(b2, batch);
        assert!(decode_derived(&bytes[..10]).is_err());
        assert!(decode_derived(b"AIOBxxxxxxxxxxxxxxxxxx").is_err());
        let mut bad = bytes.clone();
        bad[5] = 9;
        assert!(decode_derived(&bad).is_err());
    }
}
