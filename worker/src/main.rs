//! `zipfleet-worker`: a stateless worker serving the jobs queue until SIGTERM or SIGINT.

use anyhow::Context;
use clap::Parser;
use zipfleet_worker::app::{build_worker, WorkerSettings};

/// jemalloc returns freed memory to the OS; measured against glibc malloc and
/// mimalloc it gives the lowest peak RSS under the memory budget.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Pull image jobs from the queue, build their zips, report status.
#[derive(Parser, Debug)]
#[command(name = "zipfleet-worker", version)]
struct Cli {
    #[command(flatten)]
    backend: zipfleet_shared::config::BackendConfig,
    #[command(flatten)]
    policy: zipfleet_shared::config::SourcePolicy,
    #[command(flatten)]
    limits: zipfleet_shared::config::Limits,
    #[command(flatten)]
    tuning: zipfleet_shared::config::WorkerTuning,
    #[command(flatten)]
    report: zipfleet_shared::config::ReportSettings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    zipfleet_backends::telemetry::init_logging();
    let cli = Cli::parse();
    let settings = WorkerSettings { backend: cli.backend, policy: cli.policy, limits: cli.limits, tuning: cli.tuning, report: cli.report };
    let backends = zipfleet_backends::connect(&settings.backend).await.context("connecting to the backends")?;
    let worker = build_worker(&backends, &settings).context("building the worker")?;
    worker.run(zipfleet_backends::telemetry::shutdown_signal()).await;
    Ok(())
}
