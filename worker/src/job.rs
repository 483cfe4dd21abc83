//! One job, end to end: every image through fetch → probe → reserve memory →
//! render, entries into the zip as they finish, the manifest last, then the
//! upload and a download URL.
//!
//! Images run concurrently: up to `fetch_concurrency` in flight, decoding
//! gated by the worker-wide memory budget and CPU slots. A job never holds
//! more than that, however many images it lists.

use crate::budget::{CpuPool, MemoryBudget};
use crate::metrics::{Stage, WorkerMetrics};
use crate::fetch::{FetchError, Fetcher};
use crate::imaging::{self, ImageError, Rendered};
use crate::report::{dataset_report, RenderedFacts, ReportImage};
use crate::zipper::{Manifest, ManifestImage, ZipError, ZipSpool};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};
use zipfleet_shared::config::{Limits, ReportSettings};
use zipfleet_shared::names::EntryNamer;
use zipfleet_shared::retry::{retry_transient, GaveUp, OutageLog, Outages};
use zipfleet_shared::spec::{ImageSpec, JobSpec, OnImageError};
use zipfleet_shared::status::{JobError, JobResult, Location, Progress, SkippedImage};
use zipfleet_shared::status_store::StatusStore;
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
}

/// The object key of a job's zip, under the store's prefix.
pub fn zip_key(store: &dyn ObjectStore, job_id: &str) -> String {
    store.own_key(&format!("zips/{job_id}.zip"))
}

/// What became of one image.
enum ImageOutcome {
    Done { rendered: Rendered },
    Skipped { code: ImageErrorCode, message: String },
}

/// How often a running job looks for a cancel request.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Run one job. Returns the outcome and the final image counts.
pub async fn run_job(env: &JobEnv, job_id: &str, spec: &JobSpec, stop: &CancellationToken) -> Result<(JobOutcome, Progress), Interrupted> {
    let output = spec.output;
    let mut namer = EntryNamer::new();
    let entries: Vec<String> = spec.images.iter().map(|image| namer.entry_name(&image.label, &image.id, output.format.extension())).collect();
    let mut manifest_images: Vec<ManifestImage> = spec.images.iter().map(ManifestImage::pending).collect();
    let mut progress = Progress { total: spec.images.len() as u32, done: 0, failed: 0 };
    // What the dataset report needs of each image in the zip, by job position.
    let mut report_facts: Vec<Option<RenderedFacts>> = vec![None; spec.images.len()];

    let mut spool = ZipSpool::create(&env.spool_dir, env.limits.max_zip_bytes).map_err(|err| Interrupted::Transient(err.to_string()))?;

    // Indices rather than `&ImageSpec` items keep the stream's closure free of
    // higher-ranked lifetimes, so the job future stays `Send`.
    let mut results = futures::stream::iter(0..spec.images.len())
        .map(|index| {
            let image = &spec.images[index];
            let span = info_span!("image", id = %image.id, index);
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
    let mut first_failure: Option<(usize, ImageErrorCode, String)> = None;
    loop {
        let next = tokio::select! {
            next = results.next() => next,
            _ = cancel_poll.tick() => {
                if env.status.cancel_requested(job_id).await.unwrap_or(false) {
                    info!("cancel requested; stopping");
                    return Ok((JobOutcome::Cancelled, progress));
                }
                continue;
            }
            () = stop.cancelled() => return Err(Interrupted::Shutdown),
        };
        let Some((index, outcome, took)) = next else { break };
        let outcome = outcome?;
        let line = &mut manifest_images[index];
        match outcome {
            ImageOutcome::Done { rendered } => {
                let added = spool.add(&entries[index], &rendered.bytes);
                match added {
                    Ok(()) => {}
                    Err(ZipError::TooLarge { limit_mib }) => {
                        return Ok((failed(JobErrorCode::ZipTooLarge, format!("the zip would be larger than {limit_mib} MiB")), progress));
                    }
                    Err(err) => return Err(Interrupted::Transient(err.to_string())),
                }
                line.entry = Some(entries[index].clone());
                line.width = Some(rendered.source_width);
                line.height = Some(rendered.source_height);
                line.status = "ok";
                report_facts[index] =
                    Some(RenderedFacts { source_width: rendered.source_width, source_height: rendered.source_height, signature: rendered.signature });
                progress.done += 1;
                env.metrics.image_ok();
                report_progress(env, job_id, 1, 0, took).await;
            }
            ImageOutcome::Skipped { code, message } => {
                warn!(image = %spec.images[index].id, %code, %message, "image skipped");
                line.code = Some(code);
                line.message = Some(message.clone());
                progress.failed += 1;
                env.metrics.image_skipped(code);
                report_progress(env, job_id, 0, 1, took).await;
                if spec.on_image_error == OnImageError::Fail {
                    first_failure = Some((index, code, message));
                    break;
                }
            }
        }
    }
    drop(results);

    if let Some((index, code, message)) = first_failure {
        let image = &spec.images[index];
        let error = JobError { code: code.as_str().into(), message: format!("image {:?} (label {:?}): {message}", image.id, image.label) };
        return Ok((JobOutcome::Failed(error), progress));
    }

    let skipped: Vec<SkippedImage> = manifest_images
        .iter()
        .filter_map(|line| Some(SkippedImage { id: line.id.clone(), code: line.code?, message: line.message.clone()? }))
        .collect();
    let report_images: Vec<ReportImage<'_>> = spec
        .images
        .iter()
        .zip(&report_facts)
        .map(|(image, facts)| ReportImage { id: &image.id, label: &image.label, rendered: *facts })
        .collect();
    let report = dataset_report(&report_images, output.width, output.height, &env.report);
    let manifest = Manifest {
        job_id: job_id.to_string(),
        project_id: spec.project_id.clone(),
        output,
        images: manifest_images,
        skipped: skipped.clone(),
        report: report.clone(),
    };
    let finished = tokio::task::spawn_blocking(move || spool.finish(&manifest)).await.map_err(|err| Interrupted::Transient(err.to_string()))?;
    let (zip_path, size) = match finished {
        Ok(done) => done,
        Err(ZipError::TooLarge { limit_mib }) => {
            return Ok((failed(JobErrorCode::ZipTooLarge, format!("the zip would be larger than {limit_mib} MiB")), progress));
        }
        Err(err) => return Err(Interrupted::Transient(err.to_string())),
    };

    let key = zip_key(env.store.as_ref(), job_id);
    let upload_started = std::time::Instant::now();
    let uploaded = upload(env.store.as_ref(), &env.outages.store, &key, &zip_path, stop).await;
    env.metrics.stage(Stage::Upload, upload_started.elapsed());
    if let Err(err) = uploaded {
        return match err {
            UploadError::Interrupted(interrupted) => Err(interrupted),
            UploadError::Refused(reason) => Ok((failed(JobErrorCode::StoreFailed, reason), progress)),
        };
    }
    let url = env
        .store
        .download_url(&key, env.download_url_expiry)
        .await
        .map_err(|err| Interrupted::Transient(format!("could not make a download URL: {err}")))?;
    info!(size, images = progress.done, skipped = progress.failed, "zip uploaded");
    let result = JobResult { location: Location { bucket: env.store.bucket().to_string(), key }, url, size_bytes: size, images: progress.done, skipped, report };
    Ok((JobOutcome::Succeeded(result), progress))
}

fn failed(code: JobErrorCode, message: String) -> JobOutcome {
    JobOutcome::Failed(JobError { code: code.as_str().into(), message })
}

async fn report_progress(env: &JobEnv, job_id: &str, done: u32, failed: u32, took: Duration) {
    match env.status.add_progress(job_id, done, failed, took).await {
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
async fn upload(store: &dyn ObjectStore, outage: &OutageLog, key: &str, path: &std::path::Path, stop: &CancellationToken) -> Result<(), UploadError> {
    let uploaded = retry_transient(outage, "uploading a zip", stop, UPLOAD_RETRY_FOR, StoreError::is_transient, || store.put_file(key, path, "application/zip")).await;
    match uploaded {
        Ok(_) => Ok(()),
        Err(GaveUp::Interrupted) => Err(UploadError::Interrupted(Interrupted::Shutdown)),
        Err(GaveUp::Failed(err)) if err.is_transient() => Err(UploadError::Interrupted(Interrupted::Transient(err.to_string()))),
        Err(GaveUp::Failed(err)) => Err(UploadError::Refused(format!("the object store refused the zip: {err}"))),
    }
}

/// Fetch, probe, reserve, render one image.
async fn process_image(env: &JobEnv, image: &ImageSpec, output: &zipfleet_shared::spec::OutputSpec) -> Result<ImageOutcome, Interrupted> {
    let skipped = |code: ImageErrorCode, message: String| Ok(ImageOutcome::Skipped { code, message });
    let Some(source) = image.source() else {
        return skipped(ImageErrorCode::NotFound, "the image has no source".into());
    };
    let fetch_started = std::time::Instant::now();
    let fetched = env.fetcher.fetch(source).await;
    env.metrics.stage(Stage::Fetch, fetch_started.elapsed());
    let fetched = match fetched {
        Ok(fetched) => {
            env.metrics.downloaded(fetched.size());
            fetched
        }
        Err(FetchError::StoreUnavailable(reason)) => return Err(Interrupted::Transient(format!("object store: {reason}"))),
        Err(err) => return skipped(err.code(), err.to_string()),
    };

    let path = fetched.path().to_path_buf();
    let (max_pixels, output_copy) = (env.limits.max_pixels, *output);
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
        Err(err) => return skipped(err.code(), err.to_string()),
    };

    let needed = fetched.size() + probe.working_bytes;
    let reservation = match env.budget.reserve(needed).await {
        Ok(reservation) => reservation,
        Err(over) => return skipped(ImageErrorCode::TooManyPixels, ImageError::OverBudget(over.to_string()).to_string()),
    };

    let path = fetched.path().to_path_buf();
    let output = *output;
    let render_started = std::time::Instant::now();
    let rendered = env
        .cpu
        .run(move || {
            // The reservation lives exactly as long as the pixels do.
            let _reservation = reservation;
            let bytes = std::fs::read(&path).map_err(|err| ImageError::Decode(err.to_string()))?;
            imaging::render(&bytes, &probe, &output)
        })
        .await;
    drop(fetched);
    env.metrics.stage(Stage::Render, render_started.elapsed());
    match rendered {
        Ok(Ok(rendered)) => Ok(ImageOutcome::Done { rendered }),
        Ok(Err(err)) => skipped(err.code(), err.to_string()),
        Err(panicked) => {
            warn!(%panicked, "image processing panicked");
            skipped(ImageErrorCode::DecodeFailed, "the image file is damaged in a way that broke the decoder".into())
        }
    }
}

impl From<StoreError> for Interrupted {
    fn from(err: StoreError) -> Self {
        Interrupted::Transient(err.to_string())
    }
}
