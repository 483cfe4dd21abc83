//! `zipfleet run`: one job through the same worker code as the fleet, on the
//! embedded fleet (`zipfleet_worker::embedded`) — in-process queue, in-memory
//! status, a directory as the object store. No server needed.

use crate::progress::{summarize, ProgressView};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use zipfleet_shared::config::{Limits, ReportSettings, SourcePolicy, WorkerTuning};
use zipfleet_shared::spec::{JobSpec, SpecLimits};
use zipfleet_worker::app::WorkerSettings;
use zipfleet_worker::embedded::EmbeddedFleet;

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
    let spec = match JobSpec::parse(&spec_bytes, &SpecLimits::from(&args.limits)) {
        Ok(spec) => spec,
        Err(err) => {
            eprintln!("{} is not a valid job:", args.job.display());
            for problem in &err.problems {
                eprintln!("  {problem}");
            }
            return Ok(ExitCode::from(2));
        }
    };
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
    let settings = WorkerSettings {
        backend: EmbeddedFleet::config(&store_dir),
        policy: args.policy,
        limits: args.limits,
        tuning: args.tuning,
        report: args.report,
    };
    let fleet = EmbeddedFleet::start(&settings)
        .await
        .context("starting the embedded worker")?;
    let job_id = fleet.submit(spec).await?.status.job_id;

    let mut view = ProgressView::new();
    let followed = tokio::select! {
        followed = fleet.follow(&job_id, Duration::from_millis(100), |status| view.update(status)) => Some(followed),
        _ = tokio::signal::ctrl_c() => None,
    };
    view.finish();
    let Some(followed) = followed else {
        // The process ends here: nothing of an in-process job outlives it.
        bail!("interrupted");
    };
    let status = followed?;
    let zip_path = match &status.result {
        Some(result) => fleet
            .backends
            .store
            .local_path(None, &result.location.key)?
            .map(|path| path.display().to_string()),
        None => None,
    };
    fleet.stop().await;

    let zip_path = match (&args.out, zip_path) {
        (Some(out), Some(from)) => {
            std::fs::copy(&from, out)
                .with_context(|| format!("copying the zip to {}", out.display()))?;
            Some(out.display().to_string())
        }
        (_, zip_path) => zip_path,
    };
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
