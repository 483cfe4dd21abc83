//! Per-key semaphores that exist only while in use: a key's entry is made
//! by its first holder and removed when its last holder or waiter leaves,
//! so the map holds only the keys in use now (bounded by the work in
//! flight). Two uses: courtesy to image sources (N downloads at once per
//! host, `ZIPFLEET_PER_HOST_CONCURRENCY`) and the cache's in-flight key
//! locks (one holder per key).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type SlotMap = Arc<Mutex<HashMap<String, Arc<Semaphore>>>>;

pub(crate) struct KeyedSlots {
    per_key: usize,
    map: SlotMap,
}

/// One slot of a key; given back on drop.
pub(crate) struct Slot {
    key: String,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    map: SlotMap,
}

impl KeyedSlots {
    /// At most `per_key` holders of one key at once (0 counts as 1).
    pub(crate) fn new(per_key: usize) -> Self {
        Self {
            per_key: per_key.max(1),
            map: Arc::default(),
        }
    }

    /// Wait for a slot of `key`.
    pub(crate) async fn acquire(&self, key: &str) -> Slot {
        let semaphore = {
            let mut map = self.map.lock().expect("slot map lock");
            map.entry(key.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
                .clone()
        };
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("slot semaphores are never closed");
        Slot {
            key: key.to_string(),
            semaphore,
            permit: Some(permit),
            map: self.map.clone(),
        }
    }

    /// Keys held or waited for now.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().expect("slot map lock").len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut map = self.map.lock().expect("slot map lock");
        // Only the map and this slot hold the semaphore: nobody else holds
        // or waits for this key (clones are taken under the same lock, so
        // this cannot race with a new arrival).
        if Arc::strong_count(&self.semaphore) == 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn never_more_than_the_limit_per_key_and_entries_go_away() {
        let slots = Arc::new(KeyedSlots::new(3));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (slots, now, most) = (slots.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    let host = if i % 2 == 0 { "a.example" } else { "b.example" };
                    let _slot = slots.acquire(host).await;
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
        // Two keys, three each.
        assert!(most.load(Ordering::SeqCst) <= 6);
        assert_eq!(slots.len(), 0, "idle keys are forgotten");
    }

    #[tokio::test]
    async fn one_slot_per_key_serialises_its_holders() {
        let locks = Arc::new(KeyedSlots::new(1));
        let first = locks.acquire("a").await;
        let other = locks.acquire("b").await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { drop(locks.acquire("a").await) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the second holder of a key waits");
        drop(first);
        waiting.await.unwrap();
        drop(other);
        assert_eq!(locks.len(), 0);
    }
}
