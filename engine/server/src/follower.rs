//! The log follower: reads every message appended since start, counts events by kind from the
//! message headers, and reports its lag (waking on the log's append signal, not polling). It is
//! the first consumer of the log; ingest pushes back (429) when it falls too far behind, which is
//! how "the engine falls behind" is seen at the edge.

use crate::metrics::Metrics;
use aiops_log::EventLog;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Follows the log from its current head until `shutdown` flips to true.
pub async fn run(
    log: Arc<dyn EventLog>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let start = match log.stats().await {
        Ok(s) => s.next_seq,
        Err(e) => {
            tracing::error!(error = %e, "log follower could not read log stats; not following");
            return;
        }
    };
    // It keeps no state and appends nothing, so it is not a runtime processor; it waits on the
    // log's append signal the way the driver does.
    let mut wake = log.subscribe();
    let mut reader = match log.reader(start).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "log follower could not open a reader; not following");
            return;
        }
    };
    let mut last_lag_check = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        wake.borrow_and_update();
        match reader.next_batch(1024).await {
            Ok(records) if records.is_empty() => {
                metrics.consumer(reader.position(), 0);
                aiops_runtime::driver::idle_wait(
                    &mut wake,
                    &mut shutdown,
                    aiops_runtime::driver::FALLBACK_POLL,
                )
                .await;
            }
            Ok(records) => {
                for r in &records {
                    if let Ok((env, _)) = aiops_schemas::decode_envelope(&r.payload) {
                        metrics.log_events(env.kind, u64::from(env.count));
                    }
                }
                if last_lag_check.elapsed() > Duration::from_millis(250) {
                    last_lag_check = tokio::time::Instant::now();
                    if let Ok(s) = log.stats().await {
                        let pos = reader.position();
                        metrics.consumer(pos, s.next_seq.saturating_sub(pos));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, position = reader.position(), "log follower stopped on a read error");
                return;
            }
        }
    }
}
