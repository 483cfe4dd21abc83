//! The cache's entries on a directory store: exact round trips, damage and
//! age as misses, kept downloads verified, and writes guarded by the job's
//! tombstone.

use super::records::UrlHit;
use super::*;
use crate::erasure::{NeverErased, Tombstones};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use zipfleet_imaging::Signature;
use zipfleet_shared::store::file::FileStore;
use zipfleet_shared::ImageErrorCode;

static NEVER: NeverErased = NeverErased;

fn job() -> JobContext<'static> {
    JobContext {
        job_id: "test-job",
        tombstones: &NEVER,
    }
}

fn content(byte: u8) -> ContentId {
    ContentId {
        sha256: [byte; 32],
        size: 10,
    }
}

fn rendered() -> Rendered {
    let signature = Signature {
        exact: 7,
        phash: 9,
        spread: 1.234_567_8,
        detail: f32::MIN_POSITIVE,
        colours: [[1, 2, 3]; 16],
    };
    Rendered {
        bytes: b"pretend jpeg".to_vec(),
        source_width: 640,
        source_height: 480,
        signature,
    }
}

fn open(dir: &Path, settings: CacheSettings) -> Cache {
    Cache::new(
        Arc::new(FileStore::new(dir.join("store")).unwrap()),
        settings,
        dir.to_path_buf(),
        MemoryBudget::new(64 << 20),
        Arc::default(),
    )
}

#[tokio::test]
async fn a_render_round_trips_exactly_and_a_damaged_one_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), CacheSettings::default());
    let key = cache.render_key(&content(1), &OutputSpec::default());
    assert!(key.starts_with(&zipfleet_shared::cache_keys::renders_of(&"01".repeat(32))));
    assert!(cache.get_render(&key, 1 << 20).await.is_none());
    cache.put_render(&job(), &key, &rendered()).await;
    let hit = cache.get_render(&key, 1 << 20).await.expect("hit");
    assert_eq!(hit.bytes, rendered().bytes);
    assert_eq!((hit.source_width, hit.source_height), (640, 480));
    assert_eq!(hit.signature, rendered().signature);

    let path = dir.path().join("store/cache").join(&key);
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
    assert!(cache.get_render(&key, 1 << 20).await.is_none(), "truncated");
    let mut flipped = whole.clone();
    *flipped.last_mut().unwrap() ^= 1;
    std::fs::write(&path, &flipped).unwrap();
    assert!(
        cache.get_render(&key, 1 << 20).await.is_none(),
        "a flipped bit"
    );
    std::fs::write(&path, &whole).unwrap();
    assert!(cache.get_render(&key, 1 << 20).await.is_some());
}

#[tokio::test]
async fn entries_older_than_their_ttl_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let settings = CacheSettings {
        failure_cache_ttl: Duration::from_millis(200),
        ..CacheSettings::default()
    };
    let cache = open(dir.path(), settings);
    let refusal = Skip::from_site(ImageErrorCode::HttpStatus, "no (403)");
    cache
        .put_url_refusal(&job(), "http://a/x.jpg", &refusal)
        .await;
    assert!(matches!(
        cache.get_url("http://a/x.jpg").await,
        Some(UrlHit::Refused(skip)) if skip == refusal
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(cache.get_url("http://a/x.jpg").await.is_none());
    let old = open(
        dir.path(),
        CacheSettings {
            cache_ttl: Duration::ZERO,
            ..CacheSettings::default()
        },
    );
    let key = old.render_key(&content(3), &OutputSpec::default());
    old.put_render(&job(), &key, &rendered()).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        old.get_render(&key, 1 << 20).await.is_none(),
        "ZIPFLEET_CACHE_TTL bounds every kind"
    );
}

#[tokio::test]
async fn a_source_is_kept_by_content_and_verified_on_the_way_back() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), CacheSettings::default());
    let file = dir.path().join("photo.bin");
    std::fs::write(&file, vec![42u8; 300_000]).unwrap();
    let id = content_of(&file).await.unwrap();
    cache.put_source(&job(), "http://a/p.jpg", &id, &file).await;
    assert!(
        matches!(cache.get_url("http://a/p.jpg").await, Some(UrlHit::Content(got)) if got == id)
    );
    let back = cache.get_source(&id).await.expect("kept");
    assert_eq!(
        std::fs::read(back.path()).unwrap(),
        std::fs::read(&file).unwrap()
    );
    let stored = dir
        .path()
        .join("store/cache")
        .join(zipfleet_shared::cache_keys::source(&id.hex()));
    let whole = std::fs::read(&stored).unwrap();
    std::fs::write(&stored, &whole[..whole.len() / 2]).unwrap();
    assert!(cache.get_source(&id).await.is_none(), "truncated");
}

/// Says "erased" from its `from`-th question on.
struct ErasedFrom {
    asked: AtomicU32,
    from: u32,
}

#[async_trait]
impl Tombstones for ErasedFrom {
    async fn erased(&self, _job_id: &str) -> bool {
        self.asked.fetch_add(1, Ordering::SeqCst) + 1 >= self.from
    }
}

#[tokio::test]
async fn no_entry_is_written_for_an_erased_job_nor_left_if_it_was_erased_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), CacheSettings::default());
    for (from, what) in [
        (1, "erased before the write"),
        (2, "erased during the write"),
    ] {
        let tombstones = ErasedFrom {
            asked: AtomicU32::new(0),
            from,
        };
        let erased = JobContext {
            job_id: "erased",
            tombstones: &tombstones,
        };
        let key = cache.render_key(&content(from as u8), &OutputSpec::default());
        cache.put_render(&erased, &key, &rendered()).await;
        assert!(
            !dir.path().join("store/cache").join(&key).exists(),
            "{what}"
        );
        assert!(cache.get_render(&key, 1 << 20).await.is_none(), "{what}");
        assert_eq!(tombstones.asked.load(Ordering::SeqCst), from, "{what}");
    }
    let key = cache.render_key(&content(9), &OutputSpec::default());
    cache.put_render(&job(), &key, &rendered()).await;
    assert!(
        dir.path().join("store/cache").join(&key).exists(),
        "never erased"
    );
}
