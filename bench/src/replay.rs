//! Replay rate: read the whole log with one reader in large batches and decode every message, as
//! a rebuild would, measuring events/s and MB/s.

use crate::error::BenchError;
use aiops_log::EventLog;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What a replay measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayResult {
    /// Log messages read.
    pub messages: u64,
    /// Events (rows) in them, from the decoded batches.
    pub events: u64,
    /// Payload bytes read.
    pub payload_bytes: u64,
    /// Wall seconds from opening the reader to the end of the log.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_s: f64,
    /// Payload megabytes (10^6) per second.
    pub mb_per_s: f64,
}

/// Reads `log` from its first sequence to its end in batches of `batch` messages, decoding each
/// payload with [`aiops_schemas::decode`] and summing the row counts.
///
/// # Errors
/// [`BenchError::Log`] when the log cannot be read, [`BenchError::Decode`] for a payload that does
/// not decode (never skipped: a replay that skips is not a replay).
pub async fn replay(log: &dyn EventLog, batch: usize) -> Result<ReplayResult, BenchError> {
    let t0 = Instant::now();
    let mut reader = log.reader(0).await?;
    let mut out = ReplayResult::default();
    loop {
        let records = reader.next_batch(batch.max(1)).await?;
        if records.is_empty() {
            break;
        }
        for r in &records {
            let (env, rows) = aiops_schemas::decode(&r.payload)
                .map_err(|source| BenchError::Decode { seq: r.seq, source })?;
            // Touch the batch itself, not only the header count, so decoding is not optimised away.
            debug_assert_eq!(env.count as usize, rows.num_rows());
            out.events += rows.num_rows() as u64;
            out.payload_bytes += r.payload.len() as u64;
        }
        out.messages += records.len() as u64;
    }
    out.seconds = t0.elapsed().as_secs_f64();
    if out.seconds > 0.0 {
        out.events_per_s = out.events as f64 / out.seconds;
        out.mb_per_s = out.payload_bytes as f64 / 1e6 / out.seconds;
    }
    Ok(out)
}
