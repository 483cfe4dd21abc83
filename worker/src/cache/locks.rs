//! Per-key async locks for in-flight coalescing on one worker: the first
//! image holding a key does the work and writes the cache; the others wait,
//! then find it. A key lives only while someone holds or waits for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zipfleet_shared::spec::Source;

type LockMap = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// The lock key of an image source (a URL, or an object of a bucket).
pub(super) fn source_lock(source: &Source) -> String {
    match source {
        Source::Url(url) => format!("url\0{url}"),
        Source::Object(object) => format!(
            "object\0{}\0{}",
            object.bucket.as_deref().unwrap_or(""),
            object.key
        ),
    }
}

/// The lock key of a rendered image's cache key.
pub(super) fn render_lock(render_key: &str) -> String {
    format!("render\0{render_key}")
}

#[derive(Default)]
pub(super) struct KeyLocks {
    map: LockMap,
}

/// A held key; released (and forgotten when nobody waits) on drop.
pub(super) struct KeyGuard {
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    map: LockMap,
}

impl KeyLocks {
    /// Wait until no other image of this worker holds `key`, then hold it.
    pub(super) async fn lock(&self, key: String) -> KeyGuard {
        let lock = self
            .map
            .lock()
            .expect("key map lock")
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        KeyGuard {
            key,
            lock,
            guard: Some(guard),
            map: self.map.clone(),
        }
    }

    /// Keys being held or waited for now.
    pub(super) fn len(&self) -> usize {
        self.map.lock().expect("key map lock").len()
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.map.lock().expect("key map lock");
        // The map and this guard: nobody else holds or waits (clones are
        // taken under the same lock).
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn key_locks_serialise_one_key_and_forget_it_after() {
        let locks = Arc::new(KeyLocks::default());
        let first = locks.lock("a".into()).await;
        let other = locks.lock("b".into()).await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { drop(locks.lock("a".into()).await) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the second holder of a key waits");
        drop(first);
        waiting.await.unwrap();
        drop(other);
        assert_eq!(locks.len(), 0);
    }
}
