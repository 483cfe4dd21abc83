//! The worker's memory budget and its CPU slots.
//!
//! Every image reserves its estimated peak working set (compressed bytes plus
//! decode and resize buffers, computed from its header before decoding) from
//! one [`MemoryBudget`] shared by all jobs of the worker, and holds it until its
//! pixels are encoded. A reservation is taken whole, at once, so two images can
//! never each hold half of what they need and wait for the rest (no
//! hold-and-wait, no deadlock). An image larger than the whole budget is
//! refused rather than run over it.
//!
//! [`CpuPool`] runs the decode/resize/encode work on blocking threads, at most
//! one per core, and turns a panic in that work into an error instead of a
//! crashed worker.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zipfleet_shared::config::MIB;

/// Memory the worker process needs besides image buffers: runtime, HTTP and
/// broker clients, zip writer, allocator slack. Measured peak RSS with no
/// image in flight is well under this; the rest of the budget is for images.
pub(crate) const BASELINE_MEMORY: u64 = 48 * MIB;

/// The part of the memory budget (`ZIPFLEET_MEMORY_BUDGET`) images may reserve.
pub(crate) fn image_budget(total: u64) -> u64 {
    total.saturating_sub(BASELINE_MEMORY).max(16 * MIB)
}

/// Budget accounting unit: reservations are rounded up to whole KiB so that a
/// budget of up to 4 TiB fits a semaphore's `u32` permits.
const UNIT: u64 = 1024;

#[derive(Debug, Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
}

/// A reservation that does not fit even an empty budget.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "needs about {needed_mib} MiB, more than this worker's image memory budget of {budget_mib} MiB"
)]
pub(crate) struct OverBudget {
    pub(crate) needed_mib: u64,
    pub(crate) budget_mib: u64,
}

impl MemoryBudget {
    pub(crate) fn new(bytes: u64) -> Self {
        let total_units = u32::try_from(bytes / UNIT).unwrap_or(u32::MAX).max(1);
        Self {
            permits: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
        }
    }

    pub(crate) fn total_bytes(&self) -> u64 {
        u64::from(self.total_units) * UNIT
    }

    /// Bytes not reserved right now.
    pub(crate) fn available_bytes(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }

    /// Whether a reservation of `bytes` could ever be granted.
    pub(crate) fn check_fits(&self, bytes: u64) -> Result<(), OverBudget> {
        if bytes.div_ceil(UNIT) > u64::from(self.total_units) {
            Err(OverBudget {
                needed_mib: bytes.div_ceil(1 << 20),
                budget_mib: self.total_bytes() >> 20,
            })
        } else {
            Ok(())
        }
    }

    /// Wait until `bytes` are free, then hold them until the permit drops.
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<Reservation, OverBudget> {
        self.check_fits(bytes)?;
        let units = bytes.div_ceil(UNIT).max(1) as u32;
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("budget semaphore is never closed");
        Ok(Reservation { _permit: permit })
    }
}

/// Memory held for one image while it is decoded and resized.
#[derive(Debug)]
pub(crate) struct Reservation {
    _permit: OwnedSemaphorePermit,
}

/// Runs CPU-heavy closures on blocking threads, at most `threads` at once.
#[derive(Debug, Clone)]
pub(crate) struct CpuPool {
    slots: Arc<Semaphore>,
}

/// The closure panicked; the message is kept for the logs.
#[derive(Debug, thiserror::Error)]
#[error("image processing panicked: {0}")]
pub(crate) struct Panicked(pub String);

impl CpuPool {
    /// `threads == 0` means one per available core.
    pub(crate) fn new(threads: usize) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        Self {
            slots: Arc::new(Semaphore::new(threads)),
        }
    }

    /// Run `work` when a slot is free. A panic inside becomes [`Panicked`].
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, Panicked>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("cpu semaphore is never closed");
        // The slot moves into the thread: if the caller stops waiting, the
        // work still counts against the cores until it really ends.
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        });
        match task.await {
            Ok(value) => Ok(value),
            Err(join_error) => {
                let message = match join_error.try_into_panic() {
                    Ok(payload) => payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into()),
                    Err(err) => err.to_string(),
                };
                Err(Panicked(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reservations_wait_for_memory_and_release_it() {
        let budget = MemoryBudget::new(10 * 1024 * 1024);
        let big = budget.reserve(8 * 1024 * 1024).await.unwrap();
        assert_eq!(budget.available_bytes(), 2 * 1024 * 1024);
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), budget.reserve(4 * 1024 * 1024)).await;
        assert!(waiting.is_err(), "must wait while memory is held");
        drop(big);
        let granted =
            tokio::time::timeout(Duration::from_millis(50), budget.reserve(4 * 1024 * 1024)).await;
        assert!(granted.is_ok());
    }

    #[tokio::test]
    async fn a_reservation_larger_than_the_budget_is_refused() {
        let budget = MemoryBudget::new(1024 * 1024);
        let err = budget.reserve(2 * 1024 * 1024).await.unwrap_err();
        assert_eq!(err.needed_mib, 2);
    }

    #[tokio::test]
    async fn a_panic_becomes_an_error() {
        let pool = CpuPool::new(1);
        let err = pool.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(err.0.contains("boom"));
        assert_eq!(
            pool.run(|| 7).await.unwrap(),
            7,
            "the pool keeps working after a panic"
        );
    }
}
