//! The scripted incidents: where and when they happen, as a pure function of the seed.
//!
//! Event time after `start` is cut into cycles of [`CYCLE_MS`] (two hours). Each cycle has one
//! incident of each kind, at offsets drawn from an RNG seeded with `(seed, cycle)`, in windows
//! that do not overlap, so a schedule can be computed for any cycle without simulating the ones
//! before it, and the fleet's noise never shifts an incident.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Length of one incident cycle of event time, in ms.
pub const CYCLE_MS: i64 = 2 * 3600 * 1000;

const MIN: i64 = 60 * 1000;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    /// A deploy of `service` at the start, then 5xx answers and error logs until a rollback deploy
    /// at the end; `HighErrorRate` fires two minutes in and resolves at the end.
    ErrorBurst {
        /// Index of the service.
        service: usize,
    },
    /// `MemAvailable` of `host` falls towards zero; at the end the host restarts, which resets
    /// its counters (`node_cpu_seconds_total`, `node_network_receive_bytes_total`).
    /// `HostMemoryLow` fires at 70% of the way and resolves at the restart.
    MemoryLeak {
        /// Index of the host.
        host: usize,
    },
    /// The root filesystem of `host` fills up to 99%, then log rotation frees it at the end.
    /// `DiskAlmostFull` fires at 70% of the way and resolves at the end.
    DiskFill {
        /// Index of the host.
        host: usize,
    },
}

/// One scripted incident, in event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incident {
    /// What happens, and to whom.
    pub kind: IncidentKind,
    /// First affected instant, Unix ms.
    pub start_ms: i64,
    /// First instant after it, Unix ms.
    pub end_ms: i64,
    /// When its alert fires, Unix ms.
    pub alert_ms: i64,
}

impl Incident {
    /// Whether `t_ms` falls inside the incident.
    pub fn active(&self, t_ms: i64) -> bool {
        self.start_ms <= t_ms && t_ms < self.end_ms
    }

    /// How far through the incident `t_ms` is, 0.0 at the start to 1.0 at the end.
    pub fn progress(&self, t_ms: i64) -> f64 {
        let span = (self.end_ms - self.start_ms).max(1) as f64;
        ((t_ms - self.start_ms) as f64 / span).clamp(0.0, 1.0)
    }

    /// Whether instant `at_ms` falls in the tick `(t_ms - interval_ms, t_ms]`, i.e. this tick is
    /// the first one at or after it.
    pub fn crosses(at_ms: i64, t_ms: i64, interval_ms: i64) -> bool {
        t_ms - interval_ms < at_ms && at_ms <= t_ms
    }
}

/// The three incidents of cycle `cycle` (0-based) of a run starting at `start_ms`.
pub fn schedule(
    seed: u64,
    cycle: u64,
    start_ms: i64,
    hosts: usize,
    services: usize,
) -> [Incident; 3] {
    let mut rng = StdRng::seed_from_u64(seed ^ (cycle + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let base = start_ms + cycle as i64 * CYCLE_MS;
    let mut place =
        |kind: IncidentKind, window_min: (i64, i64), dur_min: (i64, i64), alert_at: f64| {
            let start_ms = base + rng.random_range(window_min.0 * MIN..window_min.1 * MIN);
            let dur = rng.random_range(dur_min.0 * MIN..=dur_min.1 * MIN);
            Incident {
                kind,
                start_ms,
                end_ms: start_ms + dur,
                alert_ms: start_ms + (dur as f64 * alert_at) as i64,
            }
        };
    let service = rng_index(seed, cycle, 1, services);
    let leak_host = rng_index(seed, cycle, 2, hosts);
    let disk_host = rng_index(seed, cycle, 3, hosts);
    [
        // Starts 5–30 min into the cycle, lasts 8–15 min: over before minute 45.
        place(IncidentKind::ErrorBurst { service }, (5, 30), (8, 15), 0.0),
        // Starts 45–65 min in, lasts 15–25 min: over before minute 90.
        place(
            IncidentKind::MemoryLeak { host: leak_host },
            (45, 65),
            (15, 25),
            0.7,
        ),
        // Starts 90–105 min in, lasts 8–15 min: over before the cycle ends.
        place(
            IncidentKind::DiskFill { host: disk_host },
            (90, 105),
            (8, 15),
            0.7,
        ),
    ]
    .map(|mut i| {
        if let IncidentKind::ErrorBurst { .. } = i.kind {
            i.alert_ms = i.start_ms + 2 * MIN;
        }
        i
    })
}

/// A uniform index in `0..n` for `(seed, cycle, salt)`, independent of the offsets' draws.
fn rng_index(seed: u64, cycle: u64, salt: u64, n: usize) -> usize {
    let mut rng = StdRng::seed_from_u64(
        seed.wrapping_mul(31)
            .wrapping_add(cycle.wrapping_mul(1_000_003))
            .wrapping_add(salt),
    );
    rng.random_range(0..n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_stay_in_their_cycle_and_do_not_overlap() {
        for seed in 0..50 {
            for cycle in 0..5 {
                let start = 1_700_000_000_000;
                let inc = schedule(seed, cycle, start, 6, 4);
                let base = start + cycle as i64 * CYCLE_MS;
                for w in inc.windows(2) {
                    assert!(w[0].end_ms <= w[1].start_ms, "{inc:?}");
                }
                assert!(inc[0].start_ms >= base);
                assert!(inc[2].end_ms <= base + CYCLE_MS, "{inc:?}");
                for i in inc {
                    assert!(i.start_ms < i.alert_ms && i.alert_ms < i.end_ms, "{i:?}");
                }
            }
        }
    }

    #[test]
    fn schedule_is_a_function_of_the_seed() {
        assert_eq!(schedule(7, 3, 0, 6, 4), schedule(7, 3, 0, 6, 4));
        assert_ne!(schedule(7, 3, 0, 6, 4), schedule(8, 3, 0, 6, 4));
    }
}
