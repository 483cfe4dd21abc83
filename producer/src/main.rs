//! `zipfleet-api`: the HTTP API in front of the job queue.

use anyhow::{bail, Context};
use clap::Parser;
use zipfleet_api::startup::{ApiSettings, Application};
use zipfleet_shared::accept::AcceptSettings;
use zipfleet_shared::config::{parse_bytes, ApiPolicy, BackendConfig, Limits};
use zipfleet_shared::secret::Secret;
use zipfleet_shared::spec::SpecLimits;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Accept image jobs over HTTP, enqueue them, serve their status.
#[derive(Parser)]
#[command(name = "zipfleet-api", version)]
struct Cli {
    #[command(flatten)]
    backend: BackendConfig,
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    policy: ApiPolicy,
    /// Address to listen on.
    #[arg(long, env = "ZIPFLEET_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Bearer token every /v1 request must carry.
    #[arg(long, env = "ZIPFLEET_API_TOKEN", hide_env_values = true)]
    api_token: Option<Secret>,
    #[command(flatten)]
    log: zipfleet_shared::config::LogSettings,
    /// Serve /v1 without authentication (development only).
    #[arg(long)]
    no_auth: bool,
    /// Largest request body.
    #[arg(long, env = "ZIPFLEET_MAX_BODY_BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    max_body_bytes: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    zipfleet_backends::telemetry::init_logging(
        &cli.log,
        zipfleet_backends::telemetry::LogStream::Stdout,
    );
    let token = cli.api_token.filter(|t| !t.expose().is_empty());
    if token.is_none() && !cli.no_auth {
        bail!("refusing to start without ZIPFLEET_API_TOKEN (pass --no-auth to serve without authentication)");
    }
    let stop = zipfleet_backends::stop_on_signal();
    // Backends that are down at start are waited for, like an outage later.
    let Some(backends) = zipfleet_backends::connect_waiting(&cli.backend, &stop)
        .await
        .context("connecting to the backends")?
    else {
        return Ok(());
    };
    let settings = ApiSettings {
        token,
        max_body_bytes: usize::try_from(cli.max_body_bytes).unwrap_or(usize::MAX),
        spec_limits: SpecLimits {
            max_images: cli.limits.max_images,
        },
        accept: AcceptSettings::from_config(&cli.backend, &cli.policy),
        tombstone_ttl: cli.policy.erasure_tombstone_ttl,
        download_url_expiry: cli.backend.download_url_expiry,
    };
    let app = Application::build(&cli.listen, backends, settings)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    app.run_until_stopped(stop.cancelled_owned()).await?;
    Ok(())
}
