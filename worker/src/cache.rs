//! Work done once (contract, "Cache"): rendered images, web downloads, known
//! failures and object contents, kept in the object store under
//! `PREFIX/cache/` and shared by the whole fleet; plus per-worker in-flight
//! coalescing so two images needing the same work wait for one another.
//!
//! Keys (ARCHITECTURE.md, "Cache"):
//! - `cache/renders/H` — a rendered image: H = SHA-256 of [`RENDER_VERSION`],
//!   the CPU's SIMD class, the output settings and the source's SHA-256.
//! - `cache/sources/S` — a web download's bytes, by their SHA-256 S.
//! - `cache/urls/H(url)` — what a URL gave last: its content's SHA-256 and
//!   size, or its failure (code and message).
//! - `cache/objects/H(bucket, key, ETag)` — an `object` source's SHA-256.
//!
//! Every entry is one object: a fixed header (magic, creation time, lengths,
//! SHA-256 of the metadata and of the body), JSON metadata, then the body. An
//! entry whose lengths or hashes disagree is a miss (and is overwritten by
//! the fresh work); so is one older than its TTL. The cache never fails a
//! job: every store error on the way in or out is a miss or a skipped write.
//! Nothing is held in memory but the in-flight keys.

use crate::fetch::Fetched;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;
use zipfleet_imaging::{Rendered, Signature};
use zipfleet_shared::config::CacheSettings;
use zipfleet_shared::spec::OutputSpec;
use zipfleet_shared::store::ObjectStore;
use zipfleet_shared::ImageErrorCode;

/// Bump whenever the pixels or bytes a render produces could change (a
/// decoder, resizer, encoder or signature change): old entries then miss.
pub const RENDER_VERSION: u32 = 1;

const MAGIC: &[u8; 4] = b"ZFC1";
/// magic, created (ms since the epoch), meta length, body length, two SHA-256.
const HEADER: usize = 4 + 8 + 4 + 8 + 32 + 32;
/// Largest metadata an entry may carry.
const MAX_META: u32 = 64 * 1024;
/// Largest rendered entry read back (a 4096×4096 PNG is under this).
const MAX_RENDER_BYTES: u64 = 96 * 1024 * 1024;
/// Entries dated this far in the future (clock skew) are not trusted.
const MAX_SKEW: Duration = Duration::from_secs(300);
/// A cache read or write that takes longer is given up (a miss, a skipped
/// write): a slow store must not hold an image up for longer than the work.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A source's content identity: its SHA-256 and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentId {
    #[serde(with = "hex_bytes")]
    pub sha256: [u8; 32],
    pub size: u64,
}

/// What a URL gave last time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum UrlEntry {
    Content(ContentId),
    Failure {
        code: ImageErrorCode,
        message: String,
    },
}

/// What a URL lookup found.
#[derive(Debug, Clone)]
pub enum UrlHit {
    Content(ContentId),
    Failure {
        code: ImageErrorCode,
        message: String,
    },
}

/// A rendered image's metadata (the bytes are the entry's body). Floats are
/// kept as bits so the report on a hit is the report of a fresh render.
#[derive(Debug, Serialize, Deserialize)]
struct RenderMeta {
    source_width: u32,
    source_height: u32,
    exact: u64,
    phash: u64,
    spread_bits: u32,
    detail_bits: u32,
    colours: [[u8; 3]; 16],
}

/// The fleet-wide cache as one worker sees it.
pub struct Cache {
    store: Arc<dyn ObjectStore>,
    settings: CacheSettings,
    spool_dir: PathBuf,
    locks: KeyLocks,
    /// Part of every render key: SIMD paths may round differently.
    cpu_class: String,
}

impl Cache {
    pub fn new(store: Arc<dyn ObjectStore>, settings: CacheSettings, spool_dir: PathBuf) -> Self {
        Self {
            store,
            settings,
            spool_dir,
            locks: KeyLocks::default(),
            cpu_class: cpu_class(),
        }
    }

    /// Wait until no other image of this worker holds `key`, then hold it.
    pub async fn lock(&self, key: String) -> KeyGuard {
        self.locks.lock(key).await
    }

    /// Keys being held or waited for now (bounded by the images in flight).
    pub fn in_flight(&self) -> usize {
        self.locks.len()
    }

    /// The key of a rendered image.
    pub fn render_key(&self, content: &ContentId, output: &OutputSpec) -> String {
        render_key(RENDER_VERSION, &self.cpu_class, content, output)
    }

    /// A rendered image, if kept, intact and fresh; entries larger than `max_bytes` are ignored.
    pub async fn get_render(&self, key: &str, max_bytes: u64) -> Option<Rendered> {
        let (meta, body) = self
            .read_entry(
                &format!("renders/{key}"),
                max_bytes.min(MAX_RENDER_BYTES),
                self.settings.cache_ttl,
            )
            .await?;
        let meta: RenderMeta = serde_json::from_slice(&meta).ok()?;
        let signature = Signature {
            exact: meta.exact,
            phash: meta.phash,
            spread: f32::from_bits(meta.spread_bits),
            detail: f32::from_bits(meta.detail_bits),
            colours: meta.colours,
        };
        Some(Rendered {
            bytes: body,
            source_width: meta.source_width,
            source_height: meta.source_height,
            signature,
        })
    }

    pub async fn put_render(&self, key: &str, rendered: &Rendered) {
        let s = &rendered.signature;
        let meta = RenderMeta {
            source_width: rendered.source_width,
            source_height: rendered.source_height,
            exact: s.exact,
            phash: s.phash,
            spread_bits: s.spread.to_bits(),
            detail_bits: s.detail.to_bits(),
            colours: s.colours,
        };
        let meta = serde_json::to_vec(&meta).expect("render metadata serializes");
        self.write_small(&format!("renders/{key}"), &meta, &rendered.bytes)
            .await;
    }

    /// What `url` gave last, if recent enough: content within the source
    /// TTL, a failure within the failure TTL.
    pub async fn get_url(&self, url: &str) -> Option<UrlHit> {
        let ttl = self
            .settings
            .source_cache_ttl
            .max(self.settings.failure_cache_ttl);
        let (meta, _, age) = self.read_entry_aged(&url_rel(url), 0, ttl).await?;
        match serde_json::from_slice::<UrlEntry>(&meta).ok()? {
            UrlEntry::Content(id) if age <= self.settings.source_cache_ttl => {
                Some(UrlHit::Content(id))
            }
            UrlEntry::Failure { code, message } if age <= self.settings.failure_cache_ttl => {
                Some(UrlHit::Failure { code, message })
            }
            _ => None,
        }
    }

    /// Remember that `url` failed.
    pub async fn put_url_failure(&self, url: &str, code: ImageErrorCode, message: &str) {
        let meta = serde_json::to_vec(&UrlEntry::Failure {
            code,
            message: message.to_string(),
        })
        .expect("serializes");
        self.write_small(&url_rel(url), &meta, &[]).await;
    }

    /// Remember what `url` gave (its content id), without its bytes.
    pub async fn put_url_content(&self, url: &str, content: &ContentId) {
        let meta = serde_json::to_vec(&UrlEntry::Content(*content)).expect("serializes");
        self.write_small(&url_rel(url), &meta, &[]).await;
    }

    /// Keep a download: its bytes by content, then the URL's pointer to them.
    pub async fn put_source(&self, url: &str, content: &ContentId, path: &Path) {
        let rel = format!("sources/{}", hex::encode(content.sha256));
        if self.write_file(&rel, path, content).await {
            self.put_url_content(url, content).await;
        }
    }

    /// A kept download, spooled to a temporary file and verified.
    pub async fn get_source(&self, content: &ContentId) -> Option<Fetched> {
        let rel = format!("sources/{}", hex::encode(content.sha256));
        let key = self.store.own_key(&format!("cache/{rel}"));
        // Sized like a download: the same timeout as one.
        let result = tokio::time::timeout(IO_TIMEOUT * 3, self.read_source(&key, content))
            .await
            .ok()
            .flatten();
        if result.is_none() {
            debug!(key, "source entry missing, stale or damaged");
        }
        result
    }

    /// The content an `object` source had under this ETag.
    pub async fn get_object(
        &self,
        bucket: Option<&str>,
        key: &str,
        etag: &str,
    ) -> Option<ContentId> {
        let (meta, _) = self
            .read_entry(&object_rel(bucket, key, etag), 0, self.settings.cache_ttl)
            .await?;
        serde_json::from_slice(&meta).ok()
    }

    pub async fn put_object(
        &self,
        bucket: Option<&str>,
        key: &str,
        etag: &str,
        content: &ContentId,
    ) {
        let meta = serde_json::to_vec(content).expect("serializes");
        self.write_small(&object_rel(bucket, key, etag), &meta, &[])
            .await;
    }

    /// Read a small entry whole; `None` for missing, unreadable, damaged or stale.
    async fn read_entry(
        &self,
        rel: &str,
        max_body: u64,
        ttl: Duration,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        self.read_entry_aged(rel, max_body, ttl)
            .await
            .map(|(meta, body, _)| (meta, body))
    }

    async fn read_entry_aged(
        &self,
        rel: &str,
        max_body: u64,
        ttl: Duration,
    ) -> Option<(Vec<u8>, Vec<u8>, Duration)> {
        let key = self.store.own_key(&format!("cache/{rel}"));
        let max = HEADER as u64 + u64::from(MAX_META) + max_body;
        let read = tokio::time::timeout(
            IO_TIMEOUT,
            zipfleet_shared::store::read_small(self.store.as_ref(), &key, max),
        )
        .await;
        let bytes = match read.unwrap_or_else(|_| {
            Err(zipfleet_shared::store::StoreError::Unavailable(
                "timed out".into(),
            ))
        }) {
            Ok(bytes) => bytes,
            Err(err) => {
                debug!(key, %err, "cache miss");
                return None;
            }
        };
        let decoded = decode_entry(&bytes);
        let Some((created, meta, body)) = decoded else {
            debug!(key, "damaged cache entry ignored");
            return None;
        };
        let age = age_of(created, self.settings.cache_ttl.min(ttl))?;
        Some((meta.to_vec(), body.to_vec(), age))
    }

    async fn read_source(&self, key: &str, content: &ContentId) -> Option<Fetched> {
        let reader = self.store.get(None, key).await.ok()?;
        let mut body = reader.body;
        let mut header = [0u8; HEADER];
        body.read_exact(&mut header).await.ok()?;
        let parsed = parse_header(&header)?;
        if parsed.body_len != content.size || parsed.body_sha != content.sha256 {
            return None;
        }
        age_of(parsed.created, self.settings.cache_ttl)?;
        let mut meta = vec![0u8; parsed.meta_len as usize];
        body.read_exact(&mut meta).await.ok()?;
        if Sha256::digest(&meta).as_slice() != parsed.meta_sha {
            return None;
        }
        let temp = tempfile::NamedTempFile::new_in(&self.spool_dir).ok()?;
        let (file, path) = temp.into_parts();
        let mut file =
            tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = body.read(&mut buffer).await.ok()?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > content.size {
                return None;
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).await.ok()?;
        }
        file.flush().await.ok()?;
        if size != content.size || hasher.finalize().as_slice() != content.sha256 {
            return None;
        }
        Some(Fetched::Spooled { file: path, size })
    }

    /// Write a small entry; a refusal is logged and forgotten.
    async fn write_small(&self, rel: &str, meta: &[u8], body: &[u8]) {
        let key = self.store.own_key(&format!("cache/{rel}"));
        let mut bytes = encode_header(
            now_millis(),
            meta,
            body.len() as u64,
            &Sha256::digest(body).into(),
        );
        bytes.extend_from_slice(meta);
        bytes.extend_from_slice(body);
        match tokio::time::timeout(
            IO_TIMEOUT,
            self.store
                .put_bytes(&key, bytes.into(), "application/octet-stream"),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(err)) => debug!(key, %err, "cache write skipped"),
            Err(_) => debug!(key, "cache write timed out"),
        }
    }

    /// Write a file's bytes as an entry (header + body in a temporary file, then uploaded).
    async fn write_file(&self, rel: &str, path: &Path, content: &ContentId) -> bool {
        let key = self.store.own_key(&format!("cache/{rel}"));
        let written: std::io::Result<tempfile::TempPath> = async {
            let temp = tempfile::NamedTempFile::new_in(&self.spool_dir)?;
            let (file, temp_path) = temp.into_parts();
            let mut file = tokio::fs::File::from_std(file);
            file.write_all(&encode_header(
                now_millis(),
                b"{}",
                content.size,
                &content.sha256,
            ))
            .await?;
            file.write_all(b"{}").await?;
            let mut source = tokio::fs::File::open(path).await?;
            tokio::io::copy(&mut source, &mut file).await?;
            file.flush().await?;
            Ok(temp_path)
        }
        .await;
        let temp_path = match written {
            Ok(temp_path) => temp_path,
            Err(err) => {
                debug!(key, %err, "cache write skipped");
                return false;
            }
        };
        match tokio::time::timeout(
            IO_TIMEOUT * 3,
            self.store
                .put_file(&key, &temp_path, "application/octet-stream"),
        )
        .await
        {
            Ok(Ok(_)) => true,
            Ok(Err(err)) => {
                debug!(key, %err, "cache write skipped");
                false
            }
            Err(_) => {
                debug!(key, "cache write timed out");
                false
            }
        }
    }
}

/// The content identity of a file on disk (hashed off the async threads).
pub async fn content_of(path: &Path) -> Option<ContentId> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&path).ok()?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buffer).ok()?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buffer[..n]);
        }
        Some(ContentId {
            sha256: hasher.finalize().into(),
            size,
        })
    })
    .await
    .ok()
    .flatten()
}

fn render_key(version: u32, cpu_class: &str, content: &ContentId, output: &OutputSpec) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("zipfleet render v{version}\0{cpu_class}\0"));
    hasher.update(serde_json::to_vec(output).expect("output serializes"));
    hasher.update(b"\0");
    hasher.update(content.sha256);
    hasher.update(content.size.to_le_bytes());
    hex::encode(hasher.finalize())
}

fn url_rel(url: &str) -> String {
    format!("urls/{}", hex::encode(Sha256::digest(url.as_bytes())))
}

fn object_rel(bucket: Option<&str>, key: &str, etag: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [bucket.unwrap_or(""), key, etag] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    format!("objects/{}", hex::encode(hasher.finalize()))
}

/// The SIMD instruction sets the resizer and codecs may pick between.
fn cpu_class() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        let sse41 = std::arch::is_x86_feature_detected!("sse4.1");
        let avx512 = std::arch::is_x86_feature_detected!("avx512bw");
        format!("x86_64 avx2={avx2} sse4.1={sse41} avx512bw={avx512}")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The age of an entry created at `created` (ms), if it is within `ttl`.
fn age_of(created: u64, ttl: Duration) -> Option<Duration> {
    let now = now_millis();
    if created > now + MAX_SKEW.as_millis() as u64 {
        return None;
    }
    let age = Duration::from_millis(now.saturating_sub(created));
    (age <= ttl).then_some(age)
}

fn encode_header(created: u64, meta: &[u8], body_len: u64, body_sha: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + meta.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(meta));
    out.extend_from_slice(body_sha);
    out
}

struct Header {
    created: u64,
    meta_len: u32,
    body_len: u64,
    meta_sha: [u8; 32],
    body_sha: [u8; 32],
}

fn parse_header(bytes: &[u8]) -> Option<Header> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return None;
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let meta_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if meta_len > MAX_META {
        return None;
    }
    Some(Header {
        created: u64_at(4),
        meta_len,
        body_len: u64_at(16),
        meta_sha: bytes[24..56].try_into().expect("32 bytes"),
        body_sha: bytes[56..88].try_into().expect("32 bytes"),
    })
}

/// (created, meta, body) of a whole entry, if its lengths and hashes agree.
fn decode_entry(bytes: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    let header = parse_header(bytes)?;
    let meta_end = HEADER + header.meta_len as usize;
    if bytes.len() as u64 != meta_end as u64 + header.body_len {
        return None;
    }
    let (meta, body) = (&bytes[HEADER..meta_end], &bytes[meta_end..]);
    if Sha256::digest(meta).as_slice() != header.meta_sha
        || Sha256::digest(body).as_slice() != header.body_sha
    {
        return None;
    }
    Some((header.created, meta, body))
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// Per-key async locks for in-flight coalescing: the first image holding a
/// key does the work and writes the cache; the others wait, then find it.
/// An entry lives only while someone holds or waits for its key.
#[derive(Default)]
struct KeyLocks {
    map: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// A held key; released (and forgotten when nobody waits) on drop.
pub struct KeyGuard {
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    map: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl KeyLocks {
    async fn lock(&self, key: String) -> KeyGuard {
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

    fn len(&self) -> usize {
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
    use zipfleet_shared::store::file::FileStore;

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
        )
    }

    #[test]
    fn render_keys_change_with_version_settings_and_content() {
        let output = OutputSpec::default();
        let base = render_key(1, "x", &content(1), &output);
        assert_eq!(base, render_key(1, "x", &content(1), &output));
        assert_ne!(
            base,
            render_key(2, "x", &content(1), &output),
            "a render-version bump misses"
        );
        assert_ne!(base, render_key(1, "y", &content(1), &output));
        assert_ne!(base, render_key(1, "x", &content(2), &output));
        assert_ne!(
            base,
            render_key(
                1,
                "x",
                &content(1),
                &OutputSpec {
                    width: 225,
                    ..output
                }
            )
        );
        assert_ne!(
            base,
            render_key(
                1,
                "x",
                &content(1),
                &OutputSpec {
                    quality: 89,
                    ..output
                }
            )
        );
    }

    #[tokio::test]
    async fn a_render_round_trips_exactly_and_a_damaged_one_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), CacheSettings::default());
        let key = cache.render_key(&content(1), &OutputSpec::default());
        assert!(cache.get_render(&key, 1 << 20).await.is_none());
        cache.put_render(&key, &rendered()).await;
        let hit = cache.get_render(&key, 1 << 20).await.expect("hit");
        assert_eq!(hit.bytes, rendered().bytes);
        assert_eq!((hit.source_width, hit.source_height), (640, 480));
        assert_eq!(hit.signature, rendered().signature);

        let path = dir.path().join("store/cache/renders").join(&key);
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
        cache
            .put_url_failure("http://a/x.jpg", ImageErrorCode::HttpStatus, "no (403)")
            .await;
        assert!(matches!(
            cache.get_url("http://a/x.jpg").await,
            Some(UrlHit::Failure {
                code: ImageErrorCode::HttpStatus,
                ..
            })
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
        old.put_render(&key, &rendered()).await;
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
        cache.put_source("http://a/p.jpg", &id, &file).await;
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
            .join("store/cache/sources")
            .join(hex::encode(id.sha256));
        let whole = std::fs::read(&stored).unwrap();
        std::fs::write(&stored, &whole[..whole.len() / 2]).unwrap();
        assert!(cache.get_source(&id).await.is_none(), "truncated");
    }

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
