//! The binary form of one batch of events in one log message.
//!
//! ```text
//! offset size field
//! 0      4    magic "AIOB"
//! 4      1    codec format (1)
//! 5      1    kind tag (see Kind::tag)
//! 6      2    schema version (u16 LE)
//! 8      4    event count (u32 LE)
//! 12     8    ingest_ts, Unix ms (i64 LE): when aiops accepted the batch (the only wall-clock value)
//! 20     8    event-time min, Unix ms (i64 LE)
//! 28     8    event-time max, Unix ms (i64 LE)
//! 36     2    source name length n (u16 LE)
//! 38     n    source name, UTF-8 (e.g. "remote_write", "alertmanager")
//! 38+n   …    Arrow IPC stream (schema + one record batch), buffers LZ4-frame compressed
//! ```
//! The header is readable without touching the Arrow payload, so stats and time-range scans are
//! cheap. A decoder refuses unknown magic, formats, kinds and schema versions with a typed error.

use crate::kind::Kind;
use crate::schema::{SCHEMA_VERSION, schema_for};
use arrow_array::RecordBatch;
use arrow_ipc::CompressionType;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::ArrowError;

const MAGIC: &[u8; 4] = b"AIOB";
const FORMAT: u8 = 1;
const FIXED_HEADER: usize = 38;

/// What a log message says about the batch it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The kind of every event in the batch.
    pub kind: Kind,
    /// The schema version the batch was written with.
    pub schema_version: u16,
    /// Number of events in the batch.
    pub count: u32,
    /// When aiops accepted the batch, Unix ms (wall clock, stamped at ingest only).
    pub ingest_ts_ms: i64,
    /// Smallest event time in the batch, Unix ms.
    pub time_min_ms: i64,
    /// Largest event time in the batch, Unix ms.
    pub time_max_ms: i64,
    /// The source that produced the batch (`remote_write`, `json`, `alertmanager`, …).
    pub source: String,
}

impl Envelope {
    /// An envelope for `batch` of `kind`, computing nothing but the count from the batch; the
    /// caller passes the time range its builder tracked (`(0, 0)` for an empty batch).
    pub fn new(
        kind: Kind,
        source: &str,
        ingest_ts_ms: i64,
        time_range: (i64, i64),
        batch: &RecordBatch,
    ) -> Envelope {
        Envelope {
            kind,
            schema_version: SCHEMA_VERSION,
            count: u32::try_from(batch.num_rows()).unwrap_or(u32::MAX),
            ingest_ts_ms,
            time_min_ms: time_range.0,
            time_max_ms: time_range.1,
            source: source.to_string(),
        }
    }
}

/// Why a log message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The message is shorter than its header says; the log handed over a cut message (a bug or
    /// corruption the log's checksum did not catch).
    #[error("message truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes the header requires.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// Not an aiops batch message.
    #[error("not an aiops batch: bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// Written by a newer aiops with a codec format this one does not know; upgrade to read it.
    #[error("unsupported codec format {0}; this aiops reads format {FORMAT}")]
    UnsupportedFormat(u8),
    /// Unknown kind tag.
    #[error("unknown event kind tag {0}")]
    UnknownKind(u8),
    /// Written with a schema version this aiops cannot read; upgrade to read it.
    #[error(
        "unsupported schema version {found} for {kind}; this aiops reads up to {SCHEMA_VERSION}"
    )]
    UnsupportedSchema {
        /// Kind of the message.
        kind: Kind,
        /// Version found in the header.
        found: u16,
    },
    /// The source name is longer than 65,535 bytes or not UTF-8.
    #[error("bad source name: {0}")]
    BadSource(&'static str),
    /// The Arrow payload does not match the kind's schema.
    #[error("batch schema does not match the {kind} schema: {detail}")]
    SchemaMismatch {
        /// Kind of the message.
        kind: Kind,
        /// What differs.
        detail: String,
    },
    /// The Arrow IPC payload is malformed.
    #[error("arrow payload: {0}")]
    Arrow(#[from] ArrowError),
}

/// Encodes `batch` with its envelope into one log message.
///
/// # Errors
/// [`CodecError::SchemaMismatch`] if the batch is not of the envelope's kind, [`CodecError::BadSource`]
/// for an over-long source name, [`CodecError::Arrow`] if IPC encoding fails.
pub fn encode(env: &Envelope, batch: &RecordBatch) -> Result<Vec<u8>, CodecError> {
    let expected = schema_for(env.kind);
    if batch.schema().fields() != expected.fields() {
        return Err(CodecError::SchemaMismatch {
            kind: env.kind,
            detail: format!("got columns {:?}", batch.schema().fields()),
        });
    }
    let source_len = u16::try_from(env.source.len())
        .map_err(|_| CodecError::BadSource("longer than 65535 bytes"))?;
    let mut out =
        Vec::with_capacity(FIXED_HEADER + env.source.len() + batch.get_array_memory_size() / 2);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.push(env.kind.tag());
    out.extend_from_slice(&env.schema_version.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(batch.num_rows())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&env.ingest_ts_ms.to_le_bytes());
    out.extend_from_slice(&env.time_min_ms.to_le_bytes());
    out.extend_from_slice(&env.time_max_ms.to_le_bytes());
    out.extend_from_slice(&source_len.to_le_bytes());
    out.extend_from_slice(env.source.as_bytes());
    let options =
        IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
    let mut writer = StreamWriter::try_new_with_options(&mut out, &expected, options)?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

fn read_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

/// Decodes only the header of a log message (cheap: no Arrow work). Returns the envelope and the
/// offset where the Arrow payload starts.
///
/// # Errors
/// Any header problem: truncation, magic, format, kind, schema version, source name.
pub fn decode_envelope(msg: &[u8]) -> Result<(Envelope, usize), CodecError> {
    if msg.len() < FIXED_HEADER {
        return Err(CodecError::Truncated {
            need: FIXED_HEADER,
            have: msg.len(),
        });
    }
    let magic = [msg[0], msg[1], msg[2], msg[3]];
    if &magic != MAGIC {
        return Err(CodecError::BadMagic(magic));
    }
    if msg[4] != FORMAT {
        return Err(CodecError::UnsupportedFormat(msg[4]));
    }
    let kind = Kind::from_tag(msg[5]).ok_or(CodecError::UnknownKind(msg[5]))?;
    let schema_version = u16::from_le_bytes([msg[6], msg[7]]);
    if schema_version == 0 || schema_version > SCHEMA_VERSION {
        return Err(CodecError::UnsupportedSchema {
            kind,
            found: schema_version,
        });
    }
    let count = u32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]]);
    let source_len = usize::from(u16::from_le_bytes([msg[36], msg[37]]));
    let payload_at = FIXED_HEADER + source_len;
    if msg.len() < payload_at {
        return Err(CodecError::Truncated {
            need: payload_at,
            have: msg.len(),
        });
    }
    let source = std::str::from_utf8(&msg[FIXED_HEADER..payload_at])
        .map_err(|_| CodecError::BadSource("not UTF-8"))?
        .to_string();
    Ok((
        Envelope {
            kind,
            schema_version,
            count,
            ingest_ts_ms: read_i64(msg, 12),
            time_min_ms: read_i64(msg, 20),
            time_max_ms: read_i64(msg, 28),
            source,
        },
        payload_at,
    ))
}

/// Decodes a whole log message into its envelope and batch.
///
/// # Errors
/// Header problems as in [`decode_envelope`], a malformed Arrow payload, or a payload whose schema
/// is not the kind's.
pub fn decode(msg: &[u8]) -> Result<(Envelope, RecordBatch), CodecError> {
    let (env, at) = decode_envelope(msg)?;
    let mut reader = StreamReader::try_new(&msg[at..], None)?;
    let expected = schema_for(env.kind);
    if reader.schema().fields() != expected.fields() {
        return Err(CodecError::SchemaMismatch {
            kind: env.kind,
            detail: format!("payload has columns {:?}", reader.schema().fields()),
        });
    }
    let batch = match reader.next() {
        Some(b) => b?,
        None => RecordBatch::new_empty(expected),
    };
    if batch.num_rows() != env.count as usize {
        return Err(CodecError::SchemaMismatch {
            kind: env.kind,
            detail: format!(
                "header says {} events, payload has {}",
                env.count,
                batch.num_rows()
            ),
        });
    }
    Ok((env, batch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::MetricBatchBuilder;
    use proptest::prelude::*;

    fn sample(n: usize) -> (Envelope, RecordBatch) {
        let mut b = MetricBatchBuilder::new();
        for i in 0..n {
            b.push(
                1_700_000_000_000 + i as i64,
                "cpu",
                [("host", format!("h{}", i % 7))],
                i as f64,
            );
        }
        let range = b.time_range().unwrap_or((0, 0));
        let batch = b.finish().unwrap();
        (
            Envelope::new(Kind::Metrics, "test", 42, range, &batch),
            batch,
        )
    }

    #[test]
    fn round_trip() {
        let (env, batch) = sample(100);
        let msg = encode(&env, &batch).unwrap();
        let (env2, batch2) = decode(&msg).unwrap();
        assert_eq!(env, env2);
        assert_eq!(batch, batch2);
        assert_eq!(decode_envelope(&msg).unwrap().0, env);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(decode(b"xx"), Err(CodecError::Truncated { .. })));
        let (env, batch) = sample(3);
        let mut msg = encode(&env, &batch).unwrap();
        msg[0] = b'X';
        assert!(matches!(decode(&msg), Err(CodecError::BadMagic(_))));
        msg[0] = b'A';
        msg[6] = 99;
        assert!(matches!(
            decode(&msg),
            Err(CodecError::UnsupportedSchema { .. })
        ));
        msg[6] = 1;
        let cut = msg.len() - 10;
        assert!(decode(&msg[..cut]).is_err());
    }

    #[test]
    fn refuses_wrong_kind() {
        let (mut env, batch) = sample(1);
        env.kind = Kind::Logs;
        assert!(matches!(
            encode(&env, &batch),
            Err(CodecError::SchemaMismatch { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_batch_round_trips(n in 0usize..200, ts in any::<i64>()) {
            let mut b = MetricBatchBuilder::new();
            for i in 0..n {
                b.push(ts.wrapping_add(i as i64), "m", [("k", i.to_string())], i as f64 * 0.5);
            }
            let range = b.time_range().unwrap_or((0, 0));
            let batch = b.finish().unwrap();
            let env = Envelope::new(Kind::Metrics, "p", 1, range, &batch);
            let (env2, batch2) = decode(&encode(&env, &batch).unwrap()).unwrap();
            prop_assert_eq!(env2, env);
            prop_assert_eq!(batch2, batch);
        }
    }
}
