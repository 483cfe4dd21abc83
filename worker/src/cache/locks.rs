//! The cache's in-flight key locks on one worker: the first image holding a
//! key does the work and writes the cache; the others wait, then find it.
//! Lock order is always source, then render, so they cannot deadlock.

use crate::keyed::{KeyedSlots, Slot};
use zipfleet_shared::spec::Source;

/// Per-key locks (one holder at a time), forgotten when unused.
pub(super) struct KeyLocks(KeyedSlots);

impl Default for KeyLocks {
    fn default() -> Self {
        Self(KeyedSlots::new(1))
    }
}

impl KeyLocks {
    /// Wait until no other image of this worker holds `key`, then hold it.
    pub(super) async fn lock(&self, key: &str) -> Slot {
        self.0.acquire(key).await
    }

    /// Keys being held or waited for now.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

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
