//! Work done once (contract, "Cache"), as a layer around one image's work:
//! the job hands [`Cache::image`] the fetch and the render
//! ([`ImageWork`]), and the cache decides whether to run them, wait for
//! another image of this worker running them, or return what it has — the
//! shape of pict-rs's `process_map.process(hash, path, future)`. The
//! policy (locks, hits and misses, what is stored and when) lives here and
//! nowhere else; the job reads as if there were no cache.
//!
//! Layout:
//! - this file: the policy, [`Cache::image`];
//! - [`records`]: the kinds of entry and what each holds; keys from
//!   `zipfleet_shared::cache_keys` (one picture's entries under prefixes
//!   named by it, so erasure can find them);
//! - `io`: entries to and from the object store — every problem a miss,
//!   every write best effort and guarded by the job's tombstone
//!   ([`crate::erasure`]);
//! - `entry`: the bytes of one entry (header, metadata, body; verification);
//! - `locks`: per-key in-flight coalescing on this worker.
//!
//! What each record may depend on, and what never (worker settings, network
//! policy, limits): ARCHITECTURE.md, "Cache records". Nothing is held in
//! memory but the in-flight keys.

mod entry;
mod io;
mod locks;
mod records;

use crate::budget::MemoryBudget;
use crate::erasure::JobContext;
use crate::fetch::Fetched;
use crate::metrics::{CacheKind, WorkerMetrics};
use crate::outcome::{Done, ImageFailure, Skip};
use crate::zipper::CacheUse;
use async_trait::async_trait;
use locks::{render_lock, source_lock, KeyLocks};
pub(crate) use records::ContentId;
use records::{content_of, UrlHit};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use zipfleet_imaging::Rendered;
use zipfleet_shared::config::CacheSettings;
use zipfleet_shared::spec::{ObjectSource, OutputSpec, Source};
use zipfleet_shared::store::ObjectStore;

/// Bump whenever the pixels or bytes a render produces could change (a
/// decoder, resizer, encoder or signature change): old entries then miss.
pub(crate) const RENDER_VERSION: u32 = 1;

/// How long an object's ETag is waited for before the object is just read.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// One image's work, handed to the cache in two steps because the render's
/// key is the fetched bytes' hash: the cache may fetch (once, or again with
/// the bytes kept), reuse kept bytes instead, and render or reuse a render.
#[async_trait]
pub(crate) trait ImageWork: Sync {
    /// The source's bytes on local disk.
    async fn fetch(&self, source: &Source) -> Result<Fetched, ImageFailure>;
    /// Probe, reserve memory, decode, resize, encode.
    async fn render(&self, fetched: Fetched) -> Result<Rendered, ImageFailure>;
}

/// The fleet-wide cache as one worker sees it.
pub struct Cache {
    store: Arc<dyn ObjectStore>,
    settings: CacheSettings,
    spool_dir: PathBuf,
    locks: KeyLocks,
    /// Part of every render key: SIMD paths may round differently.
    cpu_class: String,
    /// Reading a rendered entry is charged like rendering it.
    budget: MemoryBudget,
    metrics: Arc<WorkerMetrics>,
}

/// One [`Cache::image`] call: what it is for, and what it learnt on the way.
struct Call<'a> {
    job: &'a JobContext<'a>,
    source: &'a Source,
    output: &'a OutputSpec,
    work: &'a dyn ImageWork,
    /// The object's ETag when the lookup began (objects only).
    etag: Option<String>,
}

/// A fetch, identified by its content unless hashing it failed.
enum Fetch {
    Identified(ContentId, Fetched),
    Unidentified(Fetched),
}

impl Cache {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        settings: CacheSettings,
        spool_dir: PathBuf,
        budget: MemoryBudget,
        metrics: Arc<WorkerMetrics>,
    ) -> Self {
        Self {
            store,
            settings,
            spool_dir,
            locks: KeyLocks::default(),
            cpu_class: cpu_class(),
            budget,
            metrics,
        }
    }

    /// Keys being held or waited for now (bounded by the images in flight).
    pub fn in_flight(&self) -> usize {
        self.locks.len()
    }

    /// One image of `job` through the cache: the render reused if this
    /// picture was rendered to `output` before, else `work` run (its
    /// download reused where kept) and its results remembered. The source's
    /// key is held from the lookup to the render, so a second image needing
    /// the same URL or object on this worker waits, then finds it all cached.
    pub(crate) async fn image(
        &self,
        job: &JobContext<'_>,
        source: &Source,
        output: &OutputSpec,
        work: &dyn ImageWork,
    ) -> Result<Done, ImageFailure> {
        let _source_held = self.locks.lock(&source_lock(source)).await;
        let mut call = Call {
            job,
            source,
            output,
            work,
            etag: None,
        };
        let content = self.known_content(&mut call).await?;
        let (content, fetched) = match content {
            Some(content) => (content, None),
            // First sight of this URL (or object version): remember what it
            // is, not its bytes (see `fetch_and_remember`).
            None => match self.fetch_and_remember(&call, false).await? {
                Fetch::Identified(content, fetched) => (content, Some(fetched)),
                Fetch::Unidentified(fetched) => return work.render(fetched).await.map(Done::fresh),
            },
        };
        self.render(&call, content, fetched).await
    }

    /// What the source's content is, if the cache knows: a URL's record, an
    /// object's record under its current ETag. A URL the site refused
    /// within the failure TTL is skipped again without asking it.
    async fn known_content(&self, call: &mut Call<'_>) -> Result<Option<ContentId>, ImageFailure> {
        let known = match call.source {
            Source::Url(url) => match self.get_url(url).await {
                Some(UrlHit::Refused(skip)) => {
                    self.metrics.cache(CacheKind::Failure, true);
                    return Err(skip.into());
                }
                Some(UrlHit::Content(content)) => Some(content),
                None => {
                    self.metrics.cache(CacheKind::Failure, false);
                    None
                }
            },
            // No ETag (or no answer): fetch and let the read say what is wrong.
            Source::Object(object) => {
                call.etag = self.object_etag(object).await;
                match &call.etag {
                    Some(etag) => self.get_object(object, etag).await,
                    None => None,
                }
            }
        };
        self.metrics.cache(CacheKind::Source, known.is_some());
        Ok(known)
    }

    /// The rendered image of `content`: reused, or rendered from `fetched`,
    /// from the kept download, or from a new fetch (whose bytes are kept
    /// now: the picture is being reused with other settings).
    async fn render(
        &self,
        call: &Call<'_>,
        content: ContentId,
        fetched: Option<Fetched>,
    ) -> Result<Done, ImageFailure> {
        let (mut key, mut content) = (self.render_key(&content, call.output), content);
        let _render_held = self.locks.lock(&render_lock(&key)).await;
        if let Some(rendered) = self.reuse_render(&key, call.output).await {
            self.metrics.cache(CacheKind::Render, true);
            return Ok(Done {
                rendered,
                cached: Some(CacheUse::Render),
                content: Some(content.hex()),
            });
        }
        self.metrics.cache(CacheKind::Render, false);
        let mut reused_source = false;
        let fetched = match fetched {
            Some(fetched) => fetched,
            None => match self.kept_download(call.source, &content).await {
                Some(kept) => {
                    reused_source = true;
                    kept
                }
                // Known, but its bytes are not kept (an object, a URL first
                // seen with other settings, an expired download): fetch
                // again and key the render by what was really fetched.
                None => match self.fetch_and_remember(call, true).await? {
                    Fetch::Identified(fetched_content, fetched) => {
                        key = self.render_key(&fetched_content, call.output);
                        content = fetched_content;
                        fetched
                    }
                    Fetch::Unidentified(fetched) => {
                        return call.work.render(fetched).await.map(Done::fresh)
                    }
                },
            },
        };
        let rendered = self
            .remembering(call, call.work.render(fetched).await)
            .await?;
        self.put_render(call.job, &key, &rendered).await;
        Ok(Done {
            rendered,
            cached: reused_source.then_some(CacheUse::Source),
            content: Some(content.hex()),
        })
    }

    /// A rendered entry, read whole: charged to the budget like the encoded
    /// output of a fresh render (the raw pixels and half again: a JPEG of
    /// noise can outgrow them; a larger entry is just a miss).
    async fn reuse_render(&self, key: &str, output: &OutputSpec) -> Option<Rendered> {
        let raw = u64::from(output.width) * u64::from(output.height) * 3;
        let entry_bytes = raw + raw / 2 + (256 << 10);
        let _reading = self.budget.reserve(entry_bytes).await.ok()?;
        self.get_render(key, entry_bytes).await
    }

    /// A URL's kept download (objects are read from their store instead).
    async fn kept_download(&self, source: &Source, content: &ContentId) -> Option<Fetched> {
        match source {
            Source::Url(_) => self.get_source(content).await,
            Source::Object(_) => None,
        }
    }

    /// Fetch the source and remember what it gave: a URL's content (with
    /// its bytes if `keep_bytes`) or the site's refusal, an object's content
    /// under its ETag.
    ///
    /// A URL's bytes are kept only once it is needed again for settings
    /// whose render is not cached: storing every download costs the store
    /// about as much CPU as rendering it (measured: 9 ms per MB on
    /// SeaweedFS, against 20–50 ms to render a 2.4 MB photo), while a
    /// re-train or a class with the same settings needs only the render and
    /// the URL's content id.
    async fn fetch_and_remember(
        &self,
        call: &Call<'_>,
        keep_bytes: bool,
    ) -> Result<Fetch, ImageFailure> {
        let fetched = self
            .remembering(call, call.work.fetch(call.source).await)
            .await?;
        let Some(content) = content_of(fetched.path()).await else {
            return Ok(Fetch::Unidentified(fetched));
        };
        match call.source {
            Source::Url(url) if keep_bytes => {
                self.put_source(call.job, url, &content, fetched.path())
                    .await;
            }
            Source::Url(url) => self.put_url_content(call.job, url, &content).await,
            // Only if the object did not change between the HEAD and the read.
            Source::Object(object) => {
                if let Some(etag) = &call.etag {
                    if self.object_etag(object).await.as_ref() == Some(etag) {
                        self.put_object(call.job, object, etag, &content).await;
                    }
                }
            }
        }
        Ok(Fetch::Identified(content, fetched))
    }

    /// Pass a step's result on, remembering a URL's skip if — and only if —
    /// it is the site's own answer (a 4xx, a body that is not an image). A
    /// refusal decided here (blocked address, this worker's limits) is never
    /// remembered: the next job must see the settings then in force.
    async fn remembering<T>(
        &self,
        call: &Call<'_>,
        result: Result<T, ImageFailure>,
    ) -> Result<T, ImageFailure> {
        if let (Err(ImageFailure::Skipped(skip)), Source::Url(url)) = (&result, call.source) {
            if remembered(skip) {
                self.put_url_refusal(call.job, url, skip).await;
            }
        }
        result
    }

    /// An object's ETag, if the store answers in time (else the object is just read).
    async fn object_etag(&self, object: &ObjectSource) -> Option<String> {
        let head = self.store.head(object.bucket.as_deref(), &object.key);
        tokio::time::timeout(HEAD_TIMEOUT, head)
            .await
            .ok()?
            .ok()?
            .etag
    }
}

/// Whether a skip may be failure-cached: the site's answer, nothing else.
fn remembered(skip: &Skip) -> bool {
    skip.site_answer
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

#[cfg(test)]
mod tests;
