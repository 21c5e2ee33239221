//! `aiops log stats`: counts, event-time range and bytes per kind, read from message headers
//! (no Arrow decoding), plus what the backend reports about itself.

use aiops_log::{EventLog, LogError, LogStats};
use aiops_schemas::Kind;
use std::collections::BTreeMap;

/// Totals for one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindStats {
    /// Log messages.
    pub messages: u64,
    /// Events in them.
    pub events: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Smallest event time, Unix ms.
    pub time_min_ms: Option<i64>,
    /// Largest event time, Unix ms.
    pub time_max_ms: Option<i64>,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// What the backend says (range, bytes with framing, durability).
    pub log: LogStats,
    /// Per kind, from message headers.
    pub kinds: BTreeMap<Kind, KindStats>,
    /// Messages whose subject is not an input kind (control, derived), or whose header is unreadable.
    pub other_messages: u64,
}

/// Scans the log's message headers.
///
/// # Errors
/// Log errors, including a corrupt record (reported, never skipped).
pub async fn collect(log: &dyn EventLog) -> Result<Report, LogError> {
    let stats = log.stats().await?;
    let mut report = Report {
        log: stats.clone(),
        ..Report::default()
    };
    let mut reader = log.reader(stats.first_seq).await?;
    while reader.position() < stats.next_seq {
        let records = reader.next_batch(1024).await?;
        if records.is_empty() {
            break;
        }
        for r in records.iter().filter(|r| r.seq < stats.next_seq) {
            let env = match (
                Kind::from_subject(&r.subject),
                aiops_schemas::decode_envelope(&r.payload),
            ) {
                (Some(_), Ok((env, _))) => env,
                _ => {
                    report.other_messages += 1;
                    continue;
                }
            };
            let k = report.kinds.entry(env.kind).or_default();
            k.messages += 1;
            k.events += u64::from(env.count);
            k.bytes += r.payload.len() as u64;
            k.time_min_ms = Some(
                k.time_min_ms
                    .map_or(env.time_min_ms, |t| t.min(env.time_min_ms)),
            );
            k.time_max_ms = Some(
                k.time_max_ms
                    .map_or(env.time_max_ms, |t| t.max(env.time_max_ms)),
            );
        }
    }
    Ok(report)
}
