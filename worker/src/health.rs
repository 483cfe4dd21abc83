//! What the worker publishes about itself for its endpoint: the job loop's
//! heartbeat ([`Liveness`]) and the last reachability check of its backends
//! ([`Readiness`]). Always built; the HTTP server that shows them
//! (`endpoint`, axum) is behind the `fleet` feature.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the worker re-checks that its backends answer.
pub(crate) const READINESS_EVERY: Duration = Duration::from_secs(2);

/// Each backend's name and whether it answered (else why not).
pub(crate) type Checks = Vec<(&'static str, Result<(), String>)>;

/// The last reachability check of each backend, as `/readyz` shows it.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    checks: Mutex<Option<Checks>>,
}

impl Readiness {
    pub(crate) fn set(&self, checks: Checks) {
        *self.checks.lock().unwrap_or_else(|p| p.into_inner()) = Some(checks);
    }

    /// Every backend answered at the last check (`false` before the first).
    pub(crate) fn is_ready(&self) -> bool {
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|checks| zipfleet_shared::reachability::all_ok(checks))
    }

    /// The last check of each backend (`None` before the first).
    pub(crate) fn snapshot(&self) -> Option<Checks> {
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// When the job loop last turned.
#[derive(Debug)]
pub(crate) struct Liveness {
    origin: Instant,
    last_turn_ms: AtomicU64,
    timeout: Duration,
}

impl Liveness {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            origin: Instant::now(),
            last_turn_ms: AtomicU64::new(0),
            timeout,
        }
    }

    /// The loop turned just now.
    pub(crate) fn beat(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_turn_ms.store(now, Ordering::Relaxed);
    }

    /// How long since the loop last turned (since start if it never did).
    pub(crate) fn since_last_turn(&self) -> Duration {
        let now = self.origin.elapsed();
        now.saturating_sub(Duration::from_millis(
            self.last_turn_ms.load(Ordering::Relaxed),
        ))
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.since_last_turn() <= self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_goes_stale_without_beats() {
        let liveness = Liveness::new(Duration::from_millis(50));
        liveness.beat();
        assert!(liveness.is_alive());
        std::thread::sleep(Duration::from_millis(80));
        assert!(
            !liveness.is_alive(),
            "no beat for longer than the timeout must fail liveness"
        );
        liveness.beat();
        assert!(liveness.is_alive());
    }
}
