//! One job, end to end: every image through fetch → probe → reserve memory →
//! render, entries into the zip as they finish, the manifest last, then the
//! upload and a download URL.
//!
//! Images run concurrently: up to `fetch_concurrency` in flight, decoding
//! gated by the worker-wide memory budget and CPU slots. A job never holds
//! more than that, however many images it lists.

use crate::budget::{CpuPool, MemoryBudget};
use crate::cache::{content_of, Cache, UrlHit};
use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::imaging_contract::{image_error_code, imaging_output};
use crate::metrics::{CacheKind, Stage, WorkerMetrics};
use crate::report::{dataset_report, RenderedFacts, ReportImage};
use crate::zipper::{CacheUse, Manifest, ManifestImage, ManifestStatus, ZipError, ZipSpool};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error_span, info, warn, Instrument};
use zipfleet_imaging::{self as imaging, ImageError, Rendered};
use zipfleet_shared::config::{Limits, ReportSettings};
use zipfleet_shared::names::EntryNamer;
use zipfleet_shared::report::DatasetReport;
use zipfleet_shared::retry::{retry_transient, GaveUp, OutageLog, Outages};
use zipfleet_shared::spec::{ImageSource, ImageSpec, JobSpec, OnImageError, OutputSpec};
use zipfleet_shared::status::{JobError, JobResult, Location, Progress, SkippedImage};
use zipfleet_shared::status_store::{JobSignal, StatusStore};
use zipfleet_shared::store::{ObjectStore, StoreError};
use zipfleet_shared::{ImageErrorCode, JobErrorCode};

/// Everything jobs of one worker share.
pub struct JobEnv {
    pub fetcher: Fetcher,
    pub budget: MemoryBudget,
    pub cpu: CpuPool,
    pub store: Arc<dyn ObjectStore>,
    pub status: Arc<dyn StatusStore>,
    pub limits: Limits,
    pub spool_dir: PathBuf,
    pub fetch_concurrency: usize,
    pub download_url_expiry: Duration,
    /// Thresholds of the dataset report.
    pub report: ReportSettings,
    /// This worker's counters (`/metrics`).
    pub metrics: Arc<WorkerMetrics>,
    /// Backend outages, logged once per outage however many jobs notice.
    pub outages: Arc<Outages>,
    /// Work reused across jobs (`None` with `ZIPFLEET_CACHE=off`).
    pub cache: Option<Cache>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Succeeded(JobResult),
    Failed(JobError),
    Cancelled,
}

/// Why a job stopped without an outcome; its delivery goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub enum Interrupted {
    /// A backend was unreachable; another attempt may succeed.
    #[error("transient failure: {0}")]
    Transient(String),
    /// The worker is shutting down.
    #[error("the worker is shutting down")]
    Shutdown,
    /// The job was erased: nothing of it may be written any more.
    #[error("the job was erased")]
    Erased,
}

/// The object key of a job's zip, under the store's prefix.
pub fn zip_key(store: &dyn ObjectStore, job_id: &str) -> String {
    store.own_key(&format!("zips/{job_id}.zip"))
}

/// What became of one image.
enum ImageOutcome {
    /// `cached`: what the cache gave (`render`: the image itself; `source`: its download).
    Done {
        rendered: Rendered,
        cached: Option<CacheUse>,
    },
    Skipped {
        code: ImageErrorCode,
        message: String,
    },
}

/// How often a running job looks for a cancel request.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Run one job: every image into the zip spool, the manifest, the upload.
/// Returns the outcome and the final image counts.
pub async fn run_job(
    env: &JobEnv,
    job_id: &str,
    spec: &JobSpec,
    stop: &CancellationToken,
) -> Result<(JobOutcome, Progress), Interrupted> {
    let mut book = JobBook::new(spec);
    let mut spool = ZipSpool::create(&env.spool_dir, env.limits.max_zip_bytes)
        .map_err(|err| Interrupted::Transient(err.to_string()))?;
    if let Some(ended) = add_images(env, job_id, spec, &mut book, &mut spool, stop).await? {
        return Ok((ended, book.progress));
    }
    let progress = book.progress;
    let (manifest, skipped, report) = book.into_manifest(job_id, spec, &env.report);
    let finished = tokio::task::spawn_blocking(move || spool.finish(&manifest))
        .await
        .map_err(|err| Interrupted::Transient(err.to_string()))?;
    let (zip_path, size) = match finished {
        Ok(done) => done,
        Err(err) => return Ok((zip_failure(err)?, progress)),
    };
    let location = match upload_zip(env, job_id, &zip_path, stop).await? {
        Ok(location) => location,
        Err(refused) => return Ok((refused, progress)),
    };
    let url = env
        .store
        .download_url(&location.key, env.download_url_expiry)
        .await
        .map_err(|err| Interrupted::Transient(format!("could not make a download URL: {err}")))?;
    info!(
        size,
        images = progress.done,
        skipped = progress.failed,
        "zip uploaded"
    );
    let result = JobResult {
        location,
        url,
        size_bytes: size,
        images: progress.done,
        skipped,
        report,
    };
    Ok((JobOutcome::Succeeded(result), progress))
}

/// Run every image concurrently and add each to the spool as it finishes,
/// watching for a cancel request and shutdown. `Some` when the job ended
/// early (cancelled, an image failed it, the zip grew too large).
async fn add_images(
    env: &JobEnv,
    job_id: &str,
    spec: &JobSpec,
    book: &mut JobBook,
    spool: &mut ZipSpool,
    stop: &CancellationToken,
) -> Result<Option<JobOutcome>, Interrupted> {
    let output = spec.output;
    // Indices rather than `&ImageSpec` items keep the stream's closure free of
    // higher-ranked lifetimes, so the job future stays `Send`.
    let mut results = futures::stream::iter(0..spec.images.len())
        .map(|index| {
            let image = &spec.images[index];
            let span = error_span!("image", id = %image.id, index);
            async move {
                let started = std::time::Instant::now();
                let outcome = process_image(env, image, &output).await;
                (index, outcome, started.elapsed())
            }
            .instrument(span)
        })
        .buffer_unordered(env.fetch_concurrency.max(1));

    let mut cancel_poll = tokio::time::interval(CANCEL_POLL);
    cancel_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            next = results.next() => next,
            _ = cancel_poll.tick() => {
                match env.status.signal(job_id).await {
                    Ok(JobSignal::Cancel) => {
                        info!("cancel requested; stopping");
                        return Ok(Some(JobOutcome::Cancelled));
                    }
                    Ok(JobSignal::Erased) => {
                        info!("the job was erased; stopping");
                        return Err(Interrupted::Erased);
                    }
                    Ok(JobSignal::CarryOn) | Err(_) => {}
                }
                continue;
            }
            () = stop.cancelled() => return Err(Interrupted::Shutdown),
        };
        let Some((index, outcome, took)) = next else {
            return Ok(None);
        };
        match outcome? {
            ImageOutcome::Done { rendered, cached } => {
                if let Err(err) = spool.add(&book.entries[index], &rendered.bytes) {
                    return zip_failure(err).map(Some);
                }
                book.done(index, &rendered, cached);
                env.metrics.image_ok();
                report_progress(env, job_id, 1, 0, took).await;
            }
            ImageOutcome::Skipped { code, message } => {
                let image = &spec.images[index];
                warn!(image = %image.id, %code, %message, "image skipped");
                env.metrics.image_skipped(code);
                report_progress(env, job_id, 0, 1, took).await;
                let fails_the_job = spec.on_image_error == OnImageError::Fail;
                let error = fails_the_job.then(|| {
                    JobError::new(
                        code,
                        format!("image {:?} (label {:?}): {message}", image.id, image.label),
                    )
                });
                book.skipped(index, code, message);
                if let Some(error) = error {
                    return Ok(Some(JobOutcome::Failed(error)));
                }
            }
        }
    }
}

/// A zip that could not be written: too large fails the job, anything else
/// (the spool's disk) is this worker's trouble and the job is retried.
fn zip_failure(err: ZipError) -> Result<JobOutcome, Interrupted> {
    match err {
        ZipError::TooLarge { limit_mib } => Ok(failed(
            JobErrorCode::ZipTooLarge,
            format!("the zip would be larger than {limit_mib} MiB"),
        )),
        err => Err(Interrupted::Transient(err.to_string())),
    }
}

/// Upload the finished zip to `PREFIX/zips/JOB_ID.zip`. `Ok(Err)` when the
/// store refused it (the job fails `store_failed`).
async fn upload_zip(
    env: &JobEnv,
    job_id: &str,
    zip_path: &std::path::Path,
    stop: &CancellationToken,
) -> Result<Result<Location, JobOutcome>, Interrupted> {
    let key = zip_key(env.store.as_ref(), job_id);
    // An erased job's zip must not come back: the tombstone is checked
    // before the upload, and after it (an erasure that ran meanwhile could
    // not delete what was not there yet).
    if erased(env, job_id).await {
        return Err(Interrupted::Erased);
    }
    let upload_started = std::time::Instant::now();
    let uploaded = upload(env.store.as_ref(), &env.outages.store, &key, zip_path, stop).await;
    env.metrics.stage(Stage::Upload, upload_started.elapsed());
    if uploaded.is_ok() && erased(env, job_id).await {
        delete_zip(env, &key).await;
        return Err(Interrupted::Erased);
    }
    match uploaded {
        Ok(()) => Ok(Ok(Location {
            bucket: env.store.bucket().to_string(),
            key,
        })),
        Err(UploadError::Interrupted(interrupted)) => Err(interrupted),
        Err(UploadError::Refused(reason)) => Ok(Err(failed(JobErrorCode::StoreFailed, reason))),
    }
}

/// Whether the job was erased (a store that cannot answer counts as not:
/// the check after the write and the eraser's own deletion cover that).
async fn erased(env: &JobEnv, job_id: &str) -> bool {
    matches!(env.status.is_erased(job_id).await, Ok(true))
}

/// Delete an erased job's zip (every version).
pub(crate) async fn delete_zip(env: &JobEnv, key: &str) {
    if let Err(err) = env.store.erase(key).await {
        warn!(%err, "could not delete an erased job's zip");
    }
}

/// A job's bookkeeping while its images run: zip entry names (decided once,
/// up front), manifest lines, counts, and what the dataset report needs of
/// each image in the zip — all by the image's position in the spec.
struct JobBook {
    entries: Vec<String>,
    lines: Vec<ManifestImage>,
    facts: Vec<Option<RenderedFacts>>,
    progress: Progress,
}

impl JobBook {
    fn new(spec: &JobSpec) -> Self {
        let mut namer = EntryNamer::new();
        let extension = spec.output.format.extension();
        Self {
            entries: spec
                .images
                .iter()
                .map(|image| namer.entry_name(&image.label, &image.id, extension))
                .collect(),
            lines: spec.images.iter().map(ManifestImage::pending).collect(),
            facts: vec![None; spec.images.len()],
            progress: Progress {
                total: spec.images.len() as u32,
                done: 0,
                failed: 0,
            },
        }
    }

    fn done(&mut self, index: usize, rendered: &Rendered, cached: Option<CacheUse>) {
        let line = &mut self.lines[index];
        line.entry = Some(self.entries[index].clone());
        line.width = Some(rendered.source_width);
        line.height = Some(rendered.source_height);
        line.status = ManifestStatus::Ok;
        line.cache = cached;
        self.facts[index] = Some(RenderedFacts {
            source_width: rendered.source_width,
            source_height: rendered.source_height,
            signature: rendered.signature,
        });
        self.progress.done += 1;
    }

    fn skipped(&mut self, index: usize, code: ImageErrorCode, message: String) {
        let line = &mut self.lines[index];
        line.code = Some(code);
        line.message = Some(message);
        self.progress.failed += 1;
    }

    /// The manifest, with the skipped list and the dataset report it holds
    /// (the status document's result carries the same two).
    fn into_manifest(
        self,
        job_id: &str,
        spec: &JobSpec,
        settings: &ReportSettings,
    ) -> (Manifest, Vec<SkippedImage>, DatasetReport) {
        let skipped: Vec<SkippedImage> = self
            .lines
            .iter()
            .filter_map(|line| {
                Some(SkippedImage {
                    id: line.id.clone(),
                    code: line.code?,
                    message: line.message.clone()?,
                })
            })
            .collect();
        let report_images: Vec<ReportImage<'_>> = spec
            .images
            .iter()
            .zip(&self.facts)
            .map(|(image, facts)| ReportImage {
                id: &image.id,
                label: &image.label,
                rendered: *facts,
            })
            .collect();
        let output = spec.output;
        let report = dataset_report(&report_images, output.width, output.height, settings);
        let manifest = Manifest {
            job_id: job_id.to_string(),
            project_id: spec.project_id.clone(),
            output,
            images: self.lines,
            skipped: skipped.clone(),
            report: report.clone(),
        };
        (manifest, skipped, report)
    }
}

fn failed(code: JobErrorCode, message: String) -> JobOutcome {
    JobOutcome::Failed(JobError::new(code, message))
}

async fn report_progress(env: &JobEnv, job_id: &str, done: u32, failed: u32, took: Duration) {
    match env
        .status
        .add_progress(job_id, done, failed, took, None)
        .await
    {
        Ok(()) => env.outages.status.recovered(),
        // Progress is advisory; the final status is what counts.
        Err(err) => env.outages.status.failed("recording progress", &err),
    }
}

enum UploadError {
    Interrupted(Interrupted),
    Refused(String),
}

/// How long an upload keeps retrying an unreachable object store before the
/// job is handed back (its zip is rebuilt on the next attempt).
const UPLOAD_RETRY_FOR: Duration = Duration::from_secs(300);

/// Upload, waiting out an object-store outage with backoff (logged once per
/// outage) for up to [`UPLOAD_RETRY_FOR`]; a refusal fails the job.
async fn upload(
    store: &dyn ObjectStore,
    outage: &OutageLog,
    key: &str,
    path: &std::path::Path,
    stop: &CancellationToken,
) -> Result<(), UploadError> {
    let uploaded = retry_transient(
        outage,
        "uploading a zip",
        stop,
        UPLOAD_RETRY_FOR,
        StoreError::is_transient,
        || store.put_file(key, path, "application/zip"),
    )
    .await;
    match uploaded {
        Ok(_) => Ok(()),
        Err(GaveUp::Interrupted) => Err(UploadError::Interrupted(Interrupted::Shutdown)),
        Err(GaveUp::Failed(err)) if err.is_transient() => Err(UploadError::Interrupted(
            Interrupted::Transient(err.to_string()),
        )),
        Err(GaveUp::Failed(err)) => Err(UploadError::Refused(format!(
            "the object store refused the zip: {err}"
        ))),
    }
}

/// Fetch, probe, reserve, render one image (through the cache when it is on).
async fn process_image(
    env: &JobEnv,
    image: &ImageSpec,
    output: &OutputSpec,
) -> Result<ImageOutcome, Interrupted> {
    let Some(source) = image.source() else {
        return Ok(ImageOutcome::Skipped {
            code: ImageErrorCode::NotFound,
            message: "the image has no source".into(),
        });
    };
    if let Some(cache) = &env.cache {
        return cached_image(env, cache, source, output).await;
    }
    let fetched = match fetch_source(env, source.clone()).await? {
        Ok(fetched) => fetched,
        Err(err) => {
            return Ok(ImageOutcome::Skipped {
                code: err.code(),
                message: err.to_string(),
            })
        }
    };
    Ok(match render_fetched(env, fetched, output).await? {
        Ok(rendered) => ImageOutcome::Done {
            rendered,
            cached: None,
        },
        Err((code, message)) => ImageOutcome::Skipped { code, message },
    })
}

/// One image through the cache (ARCHITECTURE.md, "Cache"). The source's
/// key is held from the lookup to the render, so a second image needing the
/// same URL or object on this worker waits and then finds everything cached.
async fn cached_image(
    env: &JobEnv,
    cache: &Cache,
    source: ImageSource<'_>,
    output: &OutputSpec,
) -> Result<ImageOutcome, Interrupted> {
    let skipped =
        |code: ImageErrorCode, message: String| Ok(ImageOutcome::Skipped { code, message });
    let lock_key = match source {
        ImageSource::Url(url) => format!("url\0{url}"),
        ImageSource::Object(object) => format!(
            "object\0{}\0{}",
            object.bucket.as_deref().unwrap_or(""),
            object.key
        ),
    };
    let _source_held = cache.lock(lock_key).await;

    // 1. What the source's content is, from the cache or by fetching it.
    let mut etag = None;
    let known = match source {
        ImageSource::Url(url) => match cache.get_url(url).await {
            Some(UrlHit::Failure { code, message }) => {
                env.metrics.cache(CacheKind::Failure, true);
                return skipped(code, message);
            }
            Some(UrlHit::Content(content)) => Some(content),
            None => {
                env.metrics.cache(CacheKind::Failure, false);
                None
            }
        },
        ImageSource::Object(object) => {
            // No ETag (or no answer): fetch and let the read say what is wrong.
            etag = object_etag(env, object).await;
            match &etag {
                Some(etag) => {
                    cache
                        .get_object(object.bucket.as_deref(), &object.key, etag)
                        .await
                }
                None => None,
            }
        }
    };
    env.metrics.cache(CacheKind::Source, known.is_some());
    let (content, mut fetched) = match known {
        Some(content) => (content, None),
        // First sight of this URL (or object version): remember what it is,
        // not its bytes (see `fetch_and_remember`).
        None => match fetch_and_remember(env, cache, source.clone(), etag.as_deref(), false).await?
        {
            Ok((Some(content), fetched)) => (content, Some(fetched)),
            // The spooled file could not be hashed: render it, uncached.
            Ok((None, fetched)) => {
                return Ok(match render_fetched(env, fetched, output).await? {
                    Ok(rendered) => ImageOutcome::Done {
                        rendered,
                        cached: None,
                    },
                    Err((code, message)) => ImageOutcome::Skipped { code, message },
                })
            }
            Err(outcome) => return Ok(outcome),
        },
    };

    // 2. The rendered image, from the cache or by rendering.
    let mut key = cache.render_key(&content, output);
    let _render_held = cache.lock(format!("render\0{key}")).await;
    // A rendered entry is read whole: charged to the budget like the
    // encoded output of a fresh render (the raw pixels and half again: a
    // JPEG of noise can outgrow them; a larger entry is just a miss).
    let raw = u64::from(output.width) * u64::from(output.height) * 3;
    let entry_bytes = raw + raw / 2 + (256 << 10);
    let hit = match env.budget.reserve(entry_bytes).await {
        Ok(_reading) => cache.get_render(&key, entry_bytes).await,
        Err(_) => None,
    };
    if let Some(rendered) = hit {
        env.metrics.cache(CacheKind::Render, true);
        return Ok(ImageOutcome::Done {
            rendered,
            cached: Some(CacheUse::Render),
        });
    }
    env.metrics.cache(CacheKind::Render, false);
    let mut reused_source = false;
    if fetched.is_none() {
        if let ImageSource::Url(_) = source {
            fetched = cache.get_source(&content).await;
            reused_source = fetched.is_some();
        }
    }
    let fetched = match fetched {
        Some(fetched) => fetched,
        // Known, but its bytes are not kept (an object, a URL first seen with
        // other settings, an expired download): fetch again, key the render
        // by what was really fetched, and now keep a URL's bytes — it is
        // being reused with other settings.
        None => {
            match fetch_and_remember(env, cache, source.clone(), etag.as_deref(), true).await? {
                Ok((Some(content), fetched)) => {
                    key = cache.render_key(&content, output);
                    fetched
                }
                Ok((None, fetched)) => {
                    return Ok(match render_fetched(env, fetched, output).await? {
                        Ok(rendered) => ImageOutcome::Done {
                            rendered,
                            cached: None,
                        },
                        Err((code, message)) => ImageOutcome::Skipped { code, message },
                    })
                }
                Err(outcome) => return Ok(outcome),
            }
        }
    };
    match render_fetched(env, fetched, output).await? {
        Ok(rendered) => {
            cache.put_render(&key, &rendered).await;
            Ok(ImageOutcome::Done {
                rendered,
                cached: reused_source.then_some(CacheUse::Source),
            })
        }
        Err((code, message)) => {
            if let (ImageSource::Url(url), ImageErrorCode::UnsupportedFormat) = (source, code) {
                cache.put_url_failure(url, code, &message).await;
            }
            skipped(code, message)
        }
    }
}

/// Fetch a source and remember what it gave: a URL's content or failure, an
/// object's content under its ETag. `Err` is the image's skip.
///
/// A URL's bytes are kept (`keep_bytes`) only once it is needed again for
/// settings whose render is not cached: storing every download costs the
/// store about as much CPU as rendering it (measured: 9 ms per MB on
/// SeaweedFS, against 20–50 ms to render a 2.4 MB photo), while a re-train or
/// a class with the same settings needs only the render and the URL's
/// content id.
async fn fetch_and_remember(
    env: &JobEnv,
    cache: &Cache,
    source: ImageSource<'_>,
    etag: Option<&str>,
    keep_bytes: bool,
) -> Result<Result<(Option<crate::cache::ContentId>, Fetched), ImageOutcome>, Interrupted> {
    let fetched = match fetch_source(env, source.clone()).await? {
        Ok(fetched) => fetched,
        Err(err) => {
            let (code, message) = (err.code(), err.to_string());
            if let ImageSource::Url(url) = source {
                if remembered_failure(&err) {
                    cache.put_url_failure(url, code, &message).await;
                }
            }
            return Ok(Err(ImageOutcome::Skipped { code, message }));
        }
    };
    let content = content_of(fetched.path()).await;
    if let Some(content) = &content {
        match source {
            ImageSource::Url(url) if keep_bytes => {
                cache.put_source(url, content, fetched.path()).await
            }
            ImageSource::Url(url) => cache.put_url_content(url, content).await,
            ImageSource::Object(object) => {
                // Only if the object did not change between the HEAD and the read.
                let bucket = object.bucket.as_deref();
                if let Some(etag) = etag {
                    let now = object_etag(env, object).await;
                    if now.as_deref() == Some(etag) {
                        cache.put_object(bucket, &object.key, etag, content).await;
                    }
                }
            }
        }
    }
    Ok(Ok((content, fetched)))
}

/// An object's ETag, if the store answers in time (else the object is just read).
async fn object_etag(env: &JobEnv, object: &zipfleet_shared::spec::ObjectSource) -> Option<String> {
    let head = tokio::time::timeout(
        Duration::from_secs(10),
        env.store.head(object.bucket.as_deref(), &object.key),
    )
    .await;
    head.ok()?.ok()?.etag
}

/// Failures worth remembering for `ZIPFLEET_FAILURE_CACHE_TTL`: the site
/// said no (4xx) or the address is blocked; not timeouts or 5xx.
fn remembered_failure(err: &FetchError) -> bool {
    match err {
        FetchError::HttpStatus { status, .. } => (400..500).contains(status),
        FetchError::Blocked(_) => true,
        _ => false,
    }
}

/// Fetch with the stage time and download counters. `Ok(Err)` is the image's
/// own failure; an unreachable object store interrupts the job.
async fn fetch_source(
    env: &JobEnv,
    source: ImageSource<'_>,
) -> Result<Result<Fetched, FetchError>, Interrupted> {
    let fetch_started = std::time::Instant::now();
    let fetched = env.fetcher.fetch(source).await;
    env.metrics.stage(Stage::Fetch, fetch_started.elapsed());
    match fetched {
        Ok(fetched) => {
            env.metrics.downloaded(fetched.size());
            Ok(Ok(fetched))
        }
        Err(FetchError::StoreUnavailable(reason)) => {
            Err(Interrupted::Transient(format!("object store: {reason}")))
        }
        Err(err) => Ok(Err(err)),
    }
}

/// Probe, reserve memory, render a fetched file on a CPU slot.
async fn render_fetched(
    env: &JobEnv,
    fetched: Fetched,
    output: &OutputSpec,
) -> Result<Result<Rendered, (ImageErrorCode, String)>, Interrupted> {
    let path = fetched.path().to_path_buf();
    let (max_pixels, output_copy) = (env.limits.max_pixels, imaging_output(output));
    let probe_started = std::time::Instant::now();
    let probed = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(|err| ImageError::Decode(err.to_string()))?;
        imaging::probe(file, &output_copy, max_pixels)
    })
    .await
    .map_err(|err| Interrupted::Transient(err.to_string()))?;
    env.metrics.stage(Stage::Probe, probe_started.elapsed());
    let probe = match probed {
        Ok(probe) => probe,
        Err(err) => return Ok(Err((image_error_code(&err), err.to_string()))),
    };

    let needed = fetched.size() + probe.working_bytes;
    let reservation = match env.budget.reserve(needed).await {
        Ok(reservation) => reservation,
        Err(over) => {
            return Ok(Err((
                ImageErrorCode::TooManyPixels,
                ImageError::OverBudget(over.to_string()).to_string(),
            )))
        }
    };

    let path = fetched.path().to_path_buf();
    let render_started = std::time::Instant::now();
    let rendered = env
        .cpu
        .run(move || {
            // The reservation lives exactly as long as the pixels do.
            let _reservation = reservation;
            let bytes = std::fs::read(&path).map_err(|err| ImageError::Decode(err.to_string()))?;
            imaging::render(&bytes, &probe)
        })
        .await;
    drop(fetched);
    env.metrics.stage(Stage::Render, render_started.elapsed());
    Ok(match rendered {
        Ok(Ok(rendered)) => Ok(rendered),
        Ok(Err(err)) => Err((image_error_code(&err), err.to_string())),
        Err(panicked) => {
            warn!(%panicked, "image processing panicked");
            Err((
                ImageErrorCode::DecodeFailed,
                "the image file is damaged in a way that broke the decoder".into(),
            ))
        }
    })
}
