//! Courtesy to image sources: at most N downloads at once from one host, per
//! worker (`ZIPFLEET_PER_HOST_CONCURRENCY`), whichever jobs ask.
//!
//! One semaphore per host with downloads in flight or waiting; a host's entry
//! is removed when its last slot is given back, so the map holds only the
//! hosts being downloaded from now (bounded by the downloads in flight).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) struct HostLimits {
    per_host: usize,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// One download slot of a host; given back on drop.
pub(crate) struct HostSlot {
    host: String,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl HostLimits {
    /// `per_host` 0 counts as 1.
    pub(crate) fn new(per_host: usize) -> Self {
        Self {
            per_host: per_host.max(1),
            hosts: Arc::default(),
        }
    }

    /// Wait for a download slot of `host`.
    pub(crate) async fn acquire(&self, host: &str) -> HostSlot {
        let semaphore = {
            let mut hosts = self.hosts.lock().expect("host map lock");
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("host semaphores are never closed");
        HostSlot {
            host: host.to_string(),
            semaphore,
            permit: Some(permit),
            hosts: self.hosts.clone(),
        }
    }

    /// Hosts with downloads in flight or waiting.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.hosts.lock().expect("host map lock").len()
    }
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut hosts = self.hosts.lock().expect("host map lock");
        // Only the map and this slot hold the semaphore: nobody else is
        // downloading from or waiting for this host (clones are taken under
        // the same lock, so this cannot race with a new arrival).
        if Arc::strong_count(&self.semaphore) == 2 {
            hosts.remove(&self.host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn never_more_than_the_limit_per_host_and_entries_go_away() {
        let limits = Arc::new(HostLimits::new(3));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (limits, now, most) = (limits.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    let host = if i % 2 == 0 { "a.example" } else { "b.example" };
                    let _slot = limits.acquire(host).await;
                    let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(at_once, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // Two hosts, three each.
        assert!(most.load(Ordering::SeqCst) <= 6);
        assert_eq!(limits.tracked(), 0, "idle hosts are forgotten");
    }
}
