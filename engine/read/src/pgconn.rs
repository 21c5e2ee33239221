//! Connection admission of the Postgres endpoint: who may hold a socket, and for how long.
//!
//! A connection lives in two phases:
//! 1. **Unauthenticated** (TLS/startup negotiation, password exchange): it counts against a
//!    separate, bounded budget ([`ConnLimits::max_unauthenticated`]) and must finish the login
//!    within [`ConnLimits::startup_timeout`], or it is closed. When the budget is full, a new
//!    socket evicts the *oldest* unauthenticated one instead of being refused, so idle sockets
//!    opened by anyone cannot lock real clients out: an attacker would have to open sockets
//!    faster than a client completes its handshake.
//! 2. **Authenticated**: only a successful token check takes one of the
//!    [`ConnLimits::max_connections`] slots (SQLSTATE 53300 when none is free), and holds it
//!    until the socket closes.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// How many connections the endpoint serves and how long a login may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Authenticated connections at once; a login beyond it is refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// Sockets still logging in at once; beyond it the oldest one is closed.
    pub max_unauthenticated: usize,
    /// Time from accept to a completed login; a slower socket is closed.
    pub startup_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 64,
            max_unauthenticated: 64,
            startup_timeout: Duration::from_secs(5),
        }
    }
}

/// A socket that has not logged in yet.
struct Pending {
    seq: u64,
    /// The authenticated-slot pool of the `serve` call that accepted it.
    slots: Arc<Semaphore>,
    /// Receives the slot once the login succeeded.
    admitted: oneshot::Sender<OwnedSemaphorePermit>,
    /// Dropped (or fired) to close the socket when a newer one needs its place.
    evict: oneshot::Sender<()>,
}

/// The shared bookkeeping between the accept loop and the startup handler, keyed by the peer
/// address (unique among live TCP connections to one listener).
#[derive(Default)]
pub(crate) struct Gate {
    pending: Mutex<HashMap<SocketAddr, Pending>>,
    seq: AtomicU64,
}

/// Why a login could not take a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdmitError {
    /// Every authenticated slot is taken.
    Full,
    /// The socket is not (or no longer) waiting for a login: it timed out or was evicted.
    NotPending,
}

/// What the connection task waits for after registering.
pub(crate) struct Registration {
    pub(crate) seq: u64,
    pub(crate) admitted: oneshot::Receiver<OwnedSemaphorePermit>,
    pub(crate) evicted: oneshot::Receiver<()>,
}

impl Gate {
    /// Registers a new unauthenticated socket; evicts the oldest ones beyond `budget`.
    pub(crate) fn register(
        &self,
        peer: SocketAddr,
        slots: Arc<Semaphore>,
        budget: usize,
    ) -> Registration {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (admitted_tx, admitted) = oneshot::channel();
        let (evict_tx, evicted) = oneshot::channel();
        let mut pending = self.pending.lock();
        while pending.len() >= budget.max(1) {
            let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.seq).map(|(a, _)| *a) else {
                break;
            };
            if let Some(p) = pending.remove(&oldest) {
                tracing::info!(peer = %oldest, "postgres endpoint: closing the oldest unauthenticated connection (sql.max_unauthenticated reached)");
                let _ = p.evict.send(());
            }
        }
        pending.insert(
            peer,
            Pending {
                seq,
                slots,
                admitted: admitted_tx,
                evict: evict_tx,
            },
        );
        Registration {
            seq,
            admitted,
            evicted,
        }
    }

    /// Forgets `peer`'s registration `seq` (the socket closed or timed out before logging in).
    pub(crate) fn forget(&self, peer: SocketAddr, seq: u64) {
        let mut pending = self.pending.lock();
        if pending.get(&peer).is_some_and(|p| p.seq == seq) {
            pending.remove(&peer);
        }
    }

    /// Called by the startup handler once the token is valid: moves `peer` from the
    /// unauthenticated budget to an authenticated slot.
    pub(crate) fn admit(&self, peer: SocketAddr) -> Result<(), AdmitError> {
        let p = self
            .pending
            .lock()
            .remove(&peer)
            .ok_or(AdmitError::NotPending)?;
        let permit = p.slots.try_acquire_owned().map_err(|_| AdmitError::Full)?;
        // The connection task holds the permit until the socket closes; if it is already gone
        // the permit is dropped right here.
        let _ = p.admitted.send(permit);
        Ok(())
    }
}

/// Runs one connection: `conn` is the whole protocol exchange. Closes it when the login does not
/// complete within the limits; afterwards holds the authenticated slot until it ends.
pub(crate) async fn supervise<F>(
    gate: Arc<Gate>,
    peer: SocketAddr,
    slots: Arc<Semaphore>,
    limits: ConnLimits,
    stats: Arc<crate::pg::PgStats>,
    conn: F,
) where
    F: std::future::Future<Output = ()>,
{
    let reg = gate.register(peer, slots, limits.max_unauthenticated);
    let seq = reg.seq;
    let mut conn = std::pin::pin!(conn);
    let deadline = tokio::time::sleep(limits.startup_timeout);
    let mut admitted = reg.admitted;
    let mut evicted = reg.evicted;
    let permit = tokio::select! {
        () = &mut conn => {
            gate.forget(peer, seq);
            return;
        }
        () = deadline => {
            gate.forget(peer, seq);
            stats.startup_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(peer = %peer, secs = limits.startup_timeout.as_secs_f64(), "postgres endpoint: login not completed in time (sql.startup_timeout); connection closed");
            return;
        }
        Ok(()) = &mut evicted => return,
        p = &mut admitted => p,
    };
    match permit {
        Ok(permit) => {
            conn.await;
            drop(permit);
        }
        // The login was refused for want of a slot: let the error reach the client, briefly.
        Err(_) => {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn budget_evicts_oldest_and_admit_takes_a_slot() {
        let gate = Gate::default();
        let slots = Arc::new(Semaphore::new(1));
        let mut a = gate.register(addr(1), slots.clone(), 2);
        let _b = gate.register(addr(2), slots.clone(), 2);
        let _c = gate.register(addr(3), slots.clone(), 2);
        assert!(a.evicted.try_recv().is_ok(), "the oldest is evicted");
        assert_eq!(gate.admit(addr(1)), Err(AdmitError::NotPending));
        assert_eq!(gate.admit(addr(2)), Ok(()));
        assert_eq!(gate.admit(addr(3)), Err(AdmitError::Full));
    }
}
