//! One job, end to end: every image through fetch → probe → reserve memory →
//! render, entries into the zip as they finish, the manifest last, then the
//! upload and a download URL.
//!
//! Images run concurrently: up to `fetch_concurrency` in flight, decoding
//! gated by the worker-wide memory budget and CPU slots. A job never holds
//! more than that, however many images it lists. One image's work is
//! [`crate::image::process`] (through the cache when it is on).

use crate::book::JobBook;
use crate::budget::{CpuPool, MemoryBudget};
use crate::cache::Cache;
use crate::erasure::{JobContext, Tombstones};
use crate::fetch::Fetcher;
use crate::metrics::{Stage, WorkerMetrics};
use crate::outcome::{Done, ImageFailure, Interrupted, Skip};
use crate::zipper::{ZipError, ZipSpool};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error_span, info, warn, Instrument};
use zipfleet_shared::config::{Limits, ReportSettings};
use zipfleet_shared::retry::{retry_transient, GaveUp, OutageLog, Outages, Transient};
use zipfleet_shared::spec::{Job, OnImageError};
use zipfleet_shared::status::{JobError, JobResult, Location, Progress};
use zipfleet_shared::status_store::{JobSignal, StatusStore};
use zipfleet_shared::store::ObjectStore;
use zipfleet_shared::JobErrorCode;

/// Everything jobs of one worker share.
pub struct JobEnv {
    pub(crate) fetcher: Fetcher,
    pub budget: MemoryBudget,
    pub(crate) cpu: CpuPool,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) status: Arc<dyn StatusStore>,
    pub(crate) limits: Limits,
    pub(crate) spool_dir: PathBuf,
    pub(crate) fetch_concurrency: usize,
    pub(crate) download_url_expiry: Duration,
    /// Thresholds of the dataset report.
    pub(crate) report: ReportSettings,
    /// This worker's counters (`/metrics`).
    pub metrics: Arc<WorkerMetrics>,
    /// Backend outages, logged once per outage however many jobs notice.
    pub(crate) outages: Arc<Outages>,
    /// Work reused across jobs (`None` with `ZIPFLEET_CACHE=off`).
    pub cache: Option<Cache>,
    /// Which jobs are erased: asked before (and after) every cache write.
    pub(crate) tombstones: Arc<dyn Tombstones>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JobOutcome {
    Succeeded(JobResult),
    Failed(JobError),
    Cancelled,
}

/// The object key of a job's zip, under the store's prefix.
pub(crate) fn zip_key(store: &dyn ObjectStore, job_id: &str) -> String {
    store.own_key(&format!("zips/{job_id}.zip"))
}

/// How often a running job looks for a cancel request.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Run one job: every image into the zip spool, the manifest, the upload.
/// Returns the outcome and the final image counts.
pub(crate) async fn run_job(
    env: &JobEnv,
    job_id: &str,
    spec: &Job,
    stop: &CancellationToken,
) -> Result<(JobOutcome, Progress), Interrupted> {
    let mut book = JobBook::new(spec);
    let mut spool = ZipSpool::create(&env.spool_dir, env.limits.max_zip_bytes)
        .map_err(|err| Interrupted::transient("creating the zip spool", err))?;
    if let Some(ended) = add_images(env, job_id, spec, &mut book, &mut spool, stop).await? {
        return Ok((ended, book.progress));
    }
    let progress = book.progress;
    let (manifest, skipped, report) = book.into_manifest(job_id, spec, &env.report);
    let finished = tokio::task::spawn_blocking(move || spool.finish(&manifest))
        .await
        .map_err(|err| Interrupted::transient("finishing the zip", err))?;
    let (zip_path, size) = match finished {
        Ok(done) => done,
        Err(err) => return Ok((zip_failure(err)?, progress)),
    };
    let location = match upload_zip(env, job_id, &zip_path, stop).await {
        Ok(location) => location,
        Err(UploadError::Interrupted(interrupted)) => return Err(interrupted),
        Err(UploadError::Refused(reason)) => {
            return Ok((failed(JobErrorCode::StoreFailed, reason), progress))
        }
    };
    let url = env
        .store
        .download_url(&location.key, env.download_url_expiry)
        .await
        .map_err(|err| Interrupted::transient("making a download URL", err))?;
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
    spec: &Job,
    book: &mut JobBook,
    spool: &mut ZipSpool,
    stop: &CancellationToken,
) -> Result<Option<JobOutcome>, Interrupted> {
    let output = spec.output;
    let job = JobContext {
        job_id,
        tombstones: env.tombstones.as_ref(),
    };
    // Indices rather than `&Image` items keep the stream's closure free of
    // higher-ranked lifetimes, so the job future stays `Send`.
    let mut results = futures::stream::iter(0..spec.images.len())
        .map(|index| {
            let image = &spec.images[index];
            let span = error_span!("image", id = %image.id, index);
            async move {
                let started = std::time::Instant::now();
                let outcome = crate::image::process(env, &job, image, &output).await;
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
        match outcome {
            Ok(Done {
                rendered,
                cached,
                content,
            }) => {
                if let Err(err) = spool.add(&book.entries[index], &rendered.bytes) {
                    return zip_failure(err).map(Some);
                }
                book.done(index, &rendered, cached);
                env.metrics.image_ok();
                report_progress(env, job_id, (1, 0), took, content.as_deref()).await;
            }
            Err(ImageFailure::Skipped(skip)) => {
                if let Some(failed) = skip_image(env, job_id, spec, book, index, skip, took).await {
                    return Ok(Some(failed));
                }
            }
            Err(ImageFailure::Interrupted(interrupted)) => return Err(interrupted),
        }
    }
}

/// Record a skipped image; the job's failure if the spec says one bad image fails it.
async fn skip_image(
    env: &JobEnv,
    job_id: &str,
    spec: &Job,
    book: &mut JobBook,
    index: usize,
    skip: Skip,
    took: Duration,
) -> Option<JobOutcome> {
    let image = &spec.images[index];
    // Ids only at `warn`: the message may name the site or the object key.
    warn!(image = %image.id, code = %skip.code, "image skipped");
    debug!(image = %image.id, message = %skip.message, "why the image was skipped");
    env.metrics.image_skipped(skip.code);
    report_progress(env, job_id, (0, 1), took, None).await;
    let fails_the_job = spec.on_image_error == OnImageError::Fail;
    let error = fails_the_job.then(|| {
        JobError::new(
            skip.code,
            format!(
                "image {:?} (label {:?}): {}",
                image.id, image.label, skip.message
            ),
        )
    });
    book.skipped(index, skip);
    error.map(JobOutcome::Failed)
}

/// A zip that could not be written: too large fails the job, anything else
/// (the spool's disk) is this worker's trouble and the job is retried.
fn zip_failure(err: ZipError) -> Result<JobOutcome, Interrupted> {
    match err {
        ZipError::TooLarge { limit_mib } => Ok(failed(
            JobErrorCode::ZipTooLarge,
            format!("the zip would be larger than {limit_mib} MiB"),
        )),
        err => Err(Interrupted::transient("writing the zip", err)),
    }
}

/// Upload the finished zip to `PREFIX/zips/JOB_ID.zip`.
async fn upload_zip(
    env: &JobEnv,
    job_id: &str,
    zip_path: &std::path::Path,
    stop: &CancellationToken,
) -> Result<Location, UploadError> {
    let key = zip_key(env.store.as_ref(), job_id);
    // An erased job's zip must not come back: the tombstone is checked
    // before the upload, and after it (an erasure that ran meanwhile could
    // not delete what was not there yet).
    if erased(env, job_id).await {
        return Err(UploadError::Interrupted(Interrupted::Erased));
    }
    let upload_started = std::time::Instant::now();
    let uploaded = upload(env.store.as_ref(), &env.outages.store, &key, zip_path, stop).await;
    env.metrics.stage(Stage::Upload, upload_started.elapsed());
    if uploaded.is_ok() && erased(env, job_id).await {
        delete_zip(env, &key).await;
        return Err(UploadError::Interrupted(Interrupted::Erased));
    }
    uploaded.map(|()| Location {
        bucket: env.store.bucket().to_string(),
        key,
    })
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

fn failed(code: JobErrorCode, message: String) -> JobOutcome {
    JobOutcome::Failed(JobError::new(code, message))
}

/// Count an image (`(done, failed)`) and the picture content it used.
async fn report_progress(
    env: &JobEnv,
    job_id: &str,
    (done, failed): (u32, u32),
    took: Duration,
    content: Option<&str>,
) {
    match env
        .status
        .add_progress(job_id, done, failed, took, content)
        .await
    {
        Ok(()) => env.outages.status.recovered(),
        // Progress is advisory; the final status is what counts.
        Err(err) => env.outages.status.failed("recording progress", &err),
    }
}

/// Why a zip is not in the store.
enum UploadError {
    /// Shutdown, or the store stayed unreachable: the job is handed back.
    Interrupted(Interrupted),
    /// The store refused it: the job fails `store_failed`.
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
    let uploaded = retry_transient(outage, "uploading a zip", stop, UPLOAD_RETRY_FOR, || {
        store.put_file(key, path, "application/zip")
    })
    .await;
    match uploaded {
        Ok(_) => Ok(()),
        Err(GaveUp::Interrupted) => Err(UploadError::Interrupted(Interrupted::Shutdown)),
        Err(GaveUp::Failed(err)) if err.is_transient() => Err(UploadError::Interrupted(
            Interrupted::transient("uploading the zip", err),
        )),
        Err(GaveUp::Failed(err)) => Err(UploadError::Refused(format!(
            "the object store refused the zip: {err}"
        ))),
    }
}
