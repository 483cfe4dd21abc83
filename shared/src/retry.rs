//! Waiting out a backend that has vanished: exponential backoff with jitter
//! (capped at 30 s) that resets only when something really worked, and an
//! outage log that says once when an outage starts, once when it ends, and
//! reminds at most every few minutes in between — so a broker that is down
//! for an hour costs next to no CPU and a handful of log lines, not a full
//! disk.
//!
//! [`Transient`] is the one question every error of a backend (or of a
//! download) answers — is another try worth it? — and [`retry_transient`]
//! acts on it, ending in one outcome type, [`GaveUp`].

use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The first pause after a failure.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How often an ongoing outage is logged again.
pub const REMINDER_EVERY: Duration = Duration::from_secs(300);

/// An error that can say whether trying again may help: the other side was
/// unreachable or overloaded (transient), rather than refusing or being
/// misconfigured (permanent). Broker, status store, object store, backend
/// connection and download errors all answer it.
pub trait Transient: std::error::Error {
    fn is_transient(&self) -> bool;
}

/// Exponential backoff with jitter. [`Backoff::next_delay`] after each
/// failure; [`Backoff::reset`] only once an operation really succeeded
/// (creating an SQS client, for example, proves nothing).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    first: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(FIRST_BACKOFF, MAX_BACKOFF)
    }
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            next: first,
            first,
            max,
        }
    }

    /// The pause before the next attempt: the current step with ±25% jitter
    /// (so a fleet that lost its broker together does not come back in step),
    /// never above the maximum. Doubles the step for next time.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = 0.75 + 0.5 * random_unit();
        step.mul_f64(jitter).min(self.max)
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// A number in [0, 1) from the standard library's per-process random keys;
/// good enough for jitter, no dependency needed.
fn random_unit() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// One backend's outage state, shared by everything that talks to it, so an
/// outage is logged once per process however many loops notice it.
#[derive(Debug)]
pub struct OutageLog {
    backend: &'static str,
    state: Mutex<Option<Outage>>,
}

#[derive(Debug, Clone, Copy)]
struct Outage {
    since: Instant,
    last_logged: Instant,
    failures: u64,
}

impl OutageLog {
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            state: Mutex::new(None),
        }
    }

    /// Record a failure; logs a warning when the outage starts and a reminder
    /// every [`REMINDER_EVERY`] while it lasts.
    pub fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        let now = Instant::now();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.as_mut() {
            None => {
                *state = Some(Outage {
                    since: now,
                    last_logged: now,
                    failures: 1,
                });
                tracing::warn!(backend = self.backend, %error, what, "backend unreachable; retrying with backoff (at most 30 s apart)");
            }
            Some(outage) => {
                outage.failures += 1;
                if now.duration_since(outage.last_logged) >= REMINDER_EVERY {
                    outage.last_logged = now;
                    let down_for_s = now.duration_since(outage.since).as_secs();
                    tracing::warn!(backend = self.backend, %error, what, down_for_s, failures = outage.failures, "backend still unreachable");
                }
            }
        }
    }

    /// Record a success; logs once if it ends an outage.
    pub fn recovered(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(outage) = state.take() {
            let down_for_s = outage.since.elapsed().as_secs_f64();
            tracing::info!(
                backend = self.backend,
                down_for_s,
                failures = outage.failures,
                "backend reachable again"
            );
        }
    }

    /// Whether an outage is going on.
    pub fn is_down(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }
}

/// The outage logs of one process, one per backend.
#[derive(Debug)]
pub struct Outages {
    pub broker: OutageLog,
    pub store: OutageLog,
    pub status: OutageLog,
}

impl Default for Outages {
    fn default() -> Self {
        Self {
            broker: OutageLog::new("broker"),
            store: OutageLog::new("object store"),
            status: OutageLog::new("status store"),
        }
    }
}

/// Why [`retry_transient`] stopped without a result.
#[derive(Debug)]
pub enum GaveUp<E> {
    /// `stop` was cancelled (the process is shutting down).
    Interrupted,
    /// A permanent error, or transient ones for longer than the patience allowed.
    Failed(E),
}

/// Call `operation` until it succeeds, waiting out [`Transient`] failures
/// with [`Backoff`] (each outage logged once through `outage`) for up to
/// `patience`, and giving up at once when `stop` is cancelled.
pub async fn retry_transient<T, E, Fut>(
    outage: &OutageLog,
    what: &str,
    stop: &tokio_util::sync::CancellationToken,
    patience: Duration,
    mut operation: impl FnMut() -> Fut,
) -> Result<T, GaveUp<E>>
where
    E: Transient,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut backoff = Backoff::default();
    loop {
        let attempt = tokio::select! {
            () = stop.cancelled() => return Err(GaveUp::Interrupted),
            result = operation() => result,
        };
        match attempt {
            Ok(value) => {
                outage.recovered();
                return Ok(value);
            }
            Err(err) if err.is_transient() && tokio::time::Instant::now() < deadline => {
                outage.failed(what, &err);
                tokio::select! {
                    () = stop.cancelled() => return Err(GaveUp::Interrupted),
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
            Err(err) => return Err(GaveUp::Failed(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        assert!(
            delays[0] >= Duration::from_millis(75) && delays[0] <= Duration::from_millis(125),
            "{delays:?}"
        );
        assert!(
            delays[3] >= Duration::from_millis(600) && delays[3] <= Duration::from_millis(1000),
            "{delays:?}"
        );
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(2)),
            "{delays:?}"
        );
        assert!(
            delays[7] >= Duration::from_millis(1500),
            "the cap is reached: {delays:?}"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(125));
    }

    #[test]
    fn jitter_spreads() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            seen.insert(
                Backoff::new(Duration::from_secs(1), MAX_BACKOFF)
                    .next_delay()
                    .as_millis(),
            );
        }
        assert!(
            seen.len() > 5,
            "jitter should differ between calls: {seen:?}"
        );
    }

    #[derive(Debug, PartialEq, thiserror::Error)]
    enum TestError {
        #[error("down")]
        Down,
        #[error("refused")]
        Refused,
    }

    impl Transient for TestError {
        fn is_transient(&self) -> bool {
            *self == Self::Down
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_until_success_and_stops_on_permanent_ones() {
        let log = OutageLog::new("test");
        let stop = tokio_util::sync::CancellationToken::new();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let patience = Duration::from_secs(60);
        let result: Result<u32, GaveUp<TestError>> =
            retry_transient(&log, "op", &stop, patience, || async {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n < 3 {
                    Err(TestError::Down)
                } else {
                    Ok(n)
                }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
        assert!(!log.is_down(), "recovered after the success");
        let permanent: Result<(), GaveUp<TestError>> =
            retry_transient(&log, "op", &stop, patience, || async {
                Err(TestError::Refused)
            })
            .await;
        assert!(matches!(permanent, Err(GaveUp::Failed(TestError::Refused))));
        stop.cancel();
        let interrupted: Result<(), GaveUp<TestError>> =
            retry_transient(&log, "op", &stop, patience, || async {
                Err(TestError::Down)
            })
            .await;
        assert!(matches!(interrupted, Err(GaveUp::Interrupted)));
    }

    #[test]
    fn outage_starts_and_ends_once() {
        let log = OutageLog::new("broker");
        assert!(!log.is_down());
        log.failed("receiving", &"refused");
        log.failed("receiving", &"refused");
        assert!(log.is_down());
        log.recovered();
        assert!(!log.is_down());
    }
}
