//! `zipfleet-worker`: a stateless worker serving the jobs queue until SIGTERM or SIGINT.

use anyhow::Context;
use clap::Parser;
use zipfleet_backends::telemetry::{init_logging, LogStream};
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
    #[command(flatten)]
    log: zipfleet_shared::config::LogSettings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log, LogStream::Stdout);
    let settings = WorkerSettings {
        backend: cli.backend,
        policy: cli.policy,
        limits: cli.limits,
        tuning: cli.tuning,
        report: cli.report,
    };

    let stop = zipfleet_backends::stop_on_signal();
    // Backends that are down at start are waited for, like an outage later.
    let Some(backends) = zipfleet_backends::connect_waiting(&settings.backend, &stop)
        .await
        .context("connecting to the backends")?
    else {
        return Ok(());
    };
    let worker = build_worker(&backends, &settings).context("building the worker")?;

    let listen = settings.tuning.worker_listen.trim();
    let endpoint = if listen.eq_ignore_ascii_case("off") {
        None
    } else {
        let listener = match std::net::TcpListener::bind(listen) {
            Ok(listener) => listener,
            // Several workers on one machine (the README's local fleet) would
            // all want the default port: the later ones take a free one.
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
                let host = listen
                    .rsplit_once(':')
                    .map_or("127.0.0.1", |(host, _)| host);
                let listener = std::net::TcpListener::bind((host.trim_matches(['[', ']']), 0))
                    .with_context(|| format!("listening on {host}:0"))?;
                tracing::warn!(wanted = listen, using = %listener.local_addr()?, "ZIPFLEET_WORKER_LISTEN is taken (another worker here?); serving the endpoint on a free port");
                listener
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("listening on {listen} (ZIPFLEET_WORKER_LISTEN)"))
            }
        };
        tokio::spawn(worker.clone().watch_readiness(stop.clone()));
        Some(
            zipfleet_worker::endpoint::spawn(listener, worker.clone(), stop.clone())
                .context("starting the worker endpoint")?,
        )
    };

    worker.run(stop.clone().cancelled_owned()).await;
    stop.cancel();
    if let Some(endpoint) = endpoint {
        let _ = tokio::task::spawn_blocking(move || endpoint.join()).await;
    }
    Ok(())
}
