//! The kinds of cache entry and what each holds (ARCHITECTURE.md, "Cache
//! records"): a rendered image with its report facts, a web download's
//! bytes, what a URL gave (its content id, or the site's refusal), and an
//! object's content id under its ETag. Keys come from
//! [`zipfleet_shared::cache_keys`].

use super::{Cache, RENDER_VERSION};
use crate::erasure::JobContext;
use crate::fetch::Fetched;
use crate::outcome::Skip;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use zipfleet_imaging::{Rendered, Signature};
use zipfleet_shared::cache_keys;
use zipfleet_shared::spec::{ObjectSource, OutputSpec};
use zipfleet_shared::ImageErrorCode;

/// Largest rendered entry read back (a 4096×4096 PNG is under this).
const MAX_RENDER_BYTES: u64 = 96 * 1024 * 1024;

/// A source's content identity: its SHA-256 and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContentId {
    #[serde(with = "hex_bytes")]
    pub(crate) sha256: [u8; 32],
    pub(crate) size: u64,
}

impl ContentId {
    /// The SHA-256 in lowercase hex, as cache keys name a picture.
    pub(crate) fn hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// What a URL gave last time: its content, or the site's refusal.
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
pub(super) enum UrlHit {
    Content(ContentId),
    /// The site refused it within the failure TTL: the same skip again.
    Refused(Skip),
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

impl Cache {
    /// The key of `content` rendered to `output` on this worker.
    pub(super) fn render_key(&self, content: &ContentId, output: &OutputSpec) -> String {
        let settings = cache_keys::render_settings(RENDER_VERSION, &self.cpu_class, output);
        cache_keys::render(&content.hex(), &settings)
    }

    /// A rendered image, if kept, intact and fresh; entries larger than `max_bytes` are ignored.
    pub(super) async fn get_render(&self, key: &str, max_bytes: u64) -> Option<Rendered> {
        let read = self
            .read_entry(
                key,
                max_bytes.min(MAX_RENDER_BYTES),
                self.settings.cache_ttl,
            )
            .await?;
        let meta: RenderMeta = serde_json::from_slice(&read.meta).ok()?;
        let signature = Signature {
            exact: meta.exact,
            phash: meta.phash,
            spread: f32::from_bits(meta.spread_bits),
            detail: f32::from_bits(meta.detail_bits),
            colours: meta.colours,
        };
        Some(Rendered {
            bytes: read.body,
            source_width: meta.source_width,
            source_height: meta.source_height,
            signature,
        })
    }

    pub(super) async fn put_render(&self, job: &JobContext<'_>, key: &str, rendered: &Rendered) {
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
        self.write_entry(job, key, &meta, &rendered.bytes).await;
    }

    /// What `url` gave last, if recent enough: content within the source
    /// TTL, a refusal within the failure TTL.
    pub(super) async fn get_url(&self, url: &str) -> Option<UrlHit> {
        let settings = &self.settings;
        let ttl = settings.source_cache_ttl.max(settings.failure_cache_ttl);
        let read = self
            .read_entry(&cache_keys::url_record(url), 0, ttl)
            .await?;
        match serde_json::from_slice::<UrlEntry>(&read.meta).ok()? {
            UrlEntry::Content(id) if read.age <= settings.source_cache_ttl => {
                Some(UrlHit::Content(id))
            }
            UrlEntry::Failure { code, message } if read.age <= settings.failure_cache_ttl => {
                Some(UrlHit::Refused(Skip::from_site(code, message)))
            }
            _ => None,
        }
    }

    /// Remember that the site of `url` refused it (only ever the site's answer).
    pub(super) async fn put_url_refusal(&self, job: &JobContext<'_>, url: &str, skip: &Skip) {
        debug_assert!(skip.site_answer, "only the site's answers are remembered");
        let entry = UrlEntry::Failure {
            code: skip.code,
            message: skip.message.clone(),
        };
        self.put_url(job, url, &entry).await;
    }

    /// Remember what `url` gave (its content id), without its bytes.
    pub(super) async fn put_url_content(
        &self,
        job: &JobContext<'_>,
        url: &str,
        content: &ContentId,
    ) {
        self.put_url(job, url, &UrlEntry::Content(*content)).await;
    }

    async fn put_url(&self, job: &JobContext<'_>, url: &str, entry: &UrlEntry) {
        let meta = serde_json::to_vec(entry).expect("a URL record serializes");
        self.write_entry(job, &cache_keys::url_record(url), &meta, &[])
            .await;
    }

    /// Keep a download: its bytes by content, then the URL's pointer to them.
    pub(super) async fn put_source(
        &self,
        job: &JobContext<'_>,
        url: &str,
        content: &ContentId,
        path: &Path,
    ) {
        let key = cache_keys::source(&content.hex());
        if self.write_file(job, &key, path, content).await {
            self.put_url_content(job, url, content).await;
        }
    }

    /// A kept download, spooled to a temporary file and verified.
    pub(super) async fn get_source(&self, content: &ContentId) -> Option<Fetched> {
        self.read_file(&cache_keys::source(&content.hex()), content)
            .await
    }

    /// The content an `object` source had under this ETag.
    pub(super) async fn get_object(&self, object: &ObjectSource, etag: &str) -> Option<ContentId> {
        let key = cache_keys::object_record(object.bucket.as_deref(), &object.key, etag);
        let read = self.read_entry(&key, 0, self.settings.cache_ttl).await?;
        serde_json::from_slice(&read.meta).ok()
    }

    pub(super) async fn put_object(
        &self,
        job: &JobContext<'_>,
        object: &ObjectSource,
        etag: &str,
        content: &ContentId,
    ) {
        let key = cache_keys::object_record(object.bucket.as_deref(), &object.key, etag);
        let meta = serde_json::to_vec(content).expect("serializes");
        self.write_entry(job, &key, &meta, &[]).await;
    }
}

/// The content identity of a file on disk (hashed off the async threads).
pub(super) async fn content_of(path: &Path) -> Option<ContentId> {
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

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        bytes: &[u8; 32],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
