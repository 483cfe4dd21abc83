//! The real fleet the bursts run on: `zipfleet-api` and `zipfleet-worker`
//! processes (the binaries built next to this one) on the bench's own queues
//! and store prefix, and a client that posts a job and follows it.

use crate::process::{peak_rss_kib, sibling_binary};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use zipfleet_shared::config::BackendConfig;

pub const TOKEN: &str = "zipfleet-bench-token";

/// The API and worker binaries, found before any measuring starts.
#[derive(Debug, Clone)]
pub struct FleetBinaries {
    api: PathBuf,
    worker: PathBuf,
}

impl FleetBinaries {
    pub fn locate() -> anyhow::Result<Self> {
        Ok(Self {
            api: sibling_binary("zipfleet-api")?,
            worker: sibling_binary("zipfleet-worker")?,
        })
    }
}

/// One running fleet: the API and its workers, killed when dropped.
pub struct Fleet {
    pub api_url: String,
    pub client: reqwest::Client,
    api: Child,
    workers: Vec<Child>,
}

impl Fleet {
    /// Start the API and `workers` worker processes on `config`, the workers
    /// with the cache on or off and allowed to fetch from loopback (the
    /// bench's web server), and wait until the API is ready.
    pub fn start(
        runtime: &Handle,
        binaries: &FleetBinaries,
        config: &BackendConfig,
        workers: usize,
        cache: bool,
    ) -> anyhow::Result<Self> {
        Self::start_with(runtime, binaries, config, workers, cache, &[])
    }

    /// [`Fleet::start`] with more settings for the workers (as environment).
    pub fn start_with(
        runtime: &Handle,
        binaries: &FleetBinaries,
        config: &BackendConfig,
        workers: usize,
        cache: bool,
        worker_env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let api_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let api = fleet_command(&binaries.api, config)
            .env("ZIPFLEET_LISTEN", format!("127.0.0.1:{api_port}"))
            .spawn()
            .context("starting zipfleet-api")?;
        let mut fleet = Self {
            api_url: format!("http://127.0.0.1:{api_port}"),
            client: reqwest::Client::new(),
            api,
            workers: Vec::with_capacity(workers),
        };
        for _ in 0..workers {
            fleet.workers.push(
                fleet_command(&binaries.worker, config)
                    .env("ZIPFLEET_ALLOWED_SOURCE_NETS", "127.0.0.1/32")
                    .env("ZIPFLEET_WORKER_LISTEN", "off")
                    .env("ZIPFLEET_CACHE", if cache { "on" } else { "off" })
                    .envs(worker_env.iter().map(|(k, v)| (*k, v.as_str())))
                    .spawn()
                    .context("starting zipfleet-worker")?,
            );
        }
        runtime.block_on(wait_until_ready(&fleet.client, &fleet.api_url))?;
        Ok(fleet)
    }

    /// Each worker's peak RSS so far ("?" if it could not be read).
    pub fn workers_peak_rss(&self) -> Vec<String> {
        self.workers
            .iter()
            .map(|child| {
                peak_rss_kib(child.id())
                    .map_or("?".into(), |kib| format!("{:.0} MiB", kib as f64 / 1024.0))
            })
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.api).chain(&mut self.workers) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bench's own queues and prefix, so it never meets another run's jobs.
pub fn backend_config() -> BackendConfig {
    backend_config_named(&std::process::id().to_string())
}

/// [`backend_config`] with queues, store prefix and status prefix of their
/// own (`id`), for several fleets in one run.
pub fn backend_config_named(id: &str) -> BackendConfig {
    let mut config = BackendConfig::embedded(Path::new("/tmp"));
    config.broker = std::env::var("ZIPFLEET_BROKER")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
        .into();
    config.status = std::env::var("ZIPFLEET_STATUS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
        .into();
    config.store = std::env::var("ZIPFLEET_BENCH_STORE")
        .unwrap_or_else(|_| format!("s3://zipfleet/bench-{id}"));
    let sep = if config.broker.scheme() == "sqs" {
        "-"
    } else {
        "."
    };
    config.status_prefix = format!("zipfleet-bench-{id}");
    config.jobs_queue = Some(format!("zipfleet{sep}bench{sep}jobs{sep}{id}"));
    config.completed_queue = Some(format!("zipfleet{sep}bench{sep}completed{sep}{id}"));
    config.dead_letter_queue = Some(format!("zipfleet{sep}bench{sep}dlq{sep}{id}"));
    config
}

fn fleet_command(binary: &Path, config: &BackendConfig) -> Command {
    let mut command = Command::new(binary);
    command
        .envs(config.to_env())
        .env("ZIPFLEET_API_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

async fn wait_until_ready(client: &reqwest::Client, api_url: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if client
            .get(format!("{api_url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the API at {api_url} did not become ready (are RabbitMQ/SQS, Redis and S3 reachable? infra/bench-burst.sh starts them)")
}

/// Post one job and poll it until it ends; its latency from the burst's start.
pub async fn follow_job(
    client: &reqwest::Client,
    api_url: &str,
    body: serde_json::Value,
    started: Instant,
) -> anyhow::Result<f64> {
    let job_id = body["job_id"].as_str().unwrap_or_default().to_string();
    let response = client
        .post(format!("{api_url}/v1/jobs"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "the API refused {job_id}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    loop {
        // A student's page polling twice a second.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status: serde_json::Value = client
            .get(format!("{api_url}/v1/jobs/{job_id}"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        match status["state"].as_str() {
            Some("succeeded") => return Ok(started.elapsed().as_secs_f64()),
            Some("failed" | "cancelled") => {
                bail!("{job_id} ended {}: {}", status["state"], status["error"])
            }
            _ => {}
        }
    }
}
