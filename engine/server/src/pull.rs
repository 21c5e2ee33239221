//! Runs the configured pull sources (scrapes, the demo generator) and feeds their batches to the
//! ingestor. A batch refused with a retryable error is retried with the same id (so it is stored
//! once) until the log takes it: a pull source waits under backpressure, it never drops.

use crate::clock;
use crate::ingest::{IdBasis, Ingestor};
use aiops_connectors::sources::PullSource;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Pulls from `source` until it ends or `shutdown` flips to true.
pub async fn run(
    mut source: Box<dyn PullSource>,
    ingestor: Arc<Ingestor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = source.name();
    let boot = clock::now_ms();
    let mut round: u64 = 0;
    loop {
        let next = tokio::select! {
            n = source.next_batch() => n,
            _ = shutdown.changed() => return,
        };
        let batches = match next {
            Ok(Some(b)) => b,
            Ok(None) => {
                tracing::info!(source = name, "pull source finished");
                return;
            }
            Err(e) => {
                tracing::warn!(source = name, error = %e, "pull source failed; retrying in 1s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        round += 1;
        let key = format!("{name}-{boot:x}-{round:x}");
        let mut backoff = Duration::from_millis(50);
        loop {
            match ingestor
                .ingest(batches.clone(), IdBasis::ClientKey(&key))
                .await
            {
                Ok(_) => break,
                Err(e) if e.is_retryable() => {
                    tracing::debug!(source = name, error = %e, "backpressure; retrying the same batch");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(source = name, error = %e, "pull source batch refused; source stopped");
                    return;
                }
            }
        }
    }
}
