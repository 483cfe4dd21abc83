//! `zipfleet run`: one job through the same worker code as the fleet, with
//! the embedded backends — in-process queue, in-memory status, a directory as
//! the object store. No server needed.

use crate::report::{summarize, ProgressView};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use zipfleet_backends::Backends;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::config::{BackendConfig, Limits, ReportSettings, SourcePolicy, WorkerTuning};
use zipfleet_shared::message::JobMessage;
use zipfleet_shared::spec::{new_job_id, JobSpec, SpecLimits};
use zipfleet_shared::status::JobStatus;
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::status_store::StatusStore;
use zipfleet_shared::store::file::FileStore;
use zipfleet_worker::app::{build_worker, WorkerSettings};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The job spec (JSON).
    job: PathBuf,
    /// Copy the finished zip here (default: leave it in the store, under zips/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The object store directory, `file:///DIR` or a path: `object` images are
    /// read from it and the zip is written under its `zips/`. Default: the job
    /// file's directory.
    #[arg(long)]
    store: Option<String>,
    #[command(flatten)]
    policy: SourcePolicy,
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    tuning: WorkerTuning,
    #[command(flatten)]
    report: ReportSettings,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    init_quiet_logging();
    let spec_bytes =
        std::fs::read(&args.job).with_context(|| format!("reading {}", args.job.display()))?;
    let mut spec = match JobSpec::parse(
        &spec_bytes,
        &SpecLimits {
            max_images: args.limits.max_images,
        },
    ) {
        Ok(spec) => spec,
        Err(err) => {
            eprintln!("{} is not a valid job:", args.job.display());
            for problem in &err.problems {
                eprintln!("  {problem}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let job_id = spec.job_id.clone().unwrap_or_else(new_job_id);
    spec.job_id = Some(job_id.clone());

    let store_dir = match &args.store {
        Some(store) => zipfleet_backends::file_url_path(store),
        None => args
            .job
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
    };
    if !store_dir.is_dir() {
        bail!("the store directory {} does not exist", store_dir.display());
    }
    let store = Arc::new(FileStore::new(&store_dir).context("opening the store directory")?);
    let status_store = Arc::new(MemoryStatusStore::new());
    let backend = BackendConfig::embedded(store.root());
    let backends = Backends {
        broker: Arc::new(MemoryBroker::new(backend.max_deliveries)),
        store: store.clone(),
        status: status_store.clone(),
    };
    let settings = WorkerSettings {
        backend,
        policy: args.policy,
        limits: args.limits,
        tuning: args.tuning,
        report: args.report,
    };
    let worker = build_worker(&backends, &settings).context("building the worker")?;

    status_store
        .create(
            &JobStatus::queued(&job_id, spec.project_id.clone(), spec.images.len() as u32),
            &spec.fingerprint(),
        )
        .await?;
    backends
        .broker
        .publish_job(&job_id, &JobMessage::inline(&job_id, spec).to_bytes())
        .await?;

    let stop = CancellationToken::new();
    let serving = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
    let mut view = ProgressView::new();
    let status = loop {
        let status = status_store
            .get(&job_id)
            .await?
            .context("the job's status disappeared")?;
        view.update(&status);
        if status.state.is_final() {
            break status;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::signal::ctrl_c() => {
                view.finish();
                stop.cancel();
                bail!("interrupted");
            }
        }
    };
    view.finish();
    stop.cancel();
    serving.await.ok();

    let mut zip_path = status
        .result
        .as_ref()
        .map(|r| store.root().join(&r.location.key).display().to_string());
    if let (Some(out), Some(from)) = (&args.out, &zip_path) {
        std::fs::copy(from, out)
            .with_context(|| format!("copying the zip to {}", out.display()))?;
        zip_path = Some(out.display().to_string());
    }
    Ok(summarize(&status, zip_path.as_deref()))
}

/// The CLI shows its own progress; logs only for errors unless `RUST_LOG` says otherwise.
fn init_quiet_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
