//! `zipfleet bench --burst`: the classroom burst (issue P4) on the real fleet.
//!
//! Starts the API (`zipfleet-api`) and `--workers` worker processes
//! (`zipfleet-worker`, the binaries next to this one) on the services named by
//! the usual `ZIPFLEET_BROKER` / `ZIPFLEET_STATUS` settings and an S3 store
//! (`ZIPFLEET_BENCH_STORE`, default `s3://zipfleet/bench-PID`), half of each
//! job's images uploaded to the store and half served by a loopback HTTP
//! server in this process. All jobs are posted at once; each is polled until
//! it ends. Printed: makespan, the CPU floor (one job's images run in-process
//! on one core, times the number of jobs, divided by the cores), their ratio,
//! p50/p95 job latency and every worker's peak RSS.
//!
//! `infra/bench-burst.sh CORPUS_DIR` starts the services and runs this.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zipfleet_shared::config::BackendConfig;

const TOKEN: &str = "zipfleet-bench-token";

/// What the burst needs from the main bench: the corpus copy and a way to
/// time one job in-process on one core.
pub struct BurstInput<'a> {
    /// Store directory holding the corpus copies, and their keys.
    pub store_dir: &'a Path,
    pub keys: Vec<String>,
    pub jobs: usize,
    pub images_per_job: usize,
    pub workers: usize,
    pub work: &'a Path,
    pub size: u32,
    /// Bursts to run on the same fleet (makespan reported as min / median / max).
    pub rounds: usize,
    /// Wall time of one job's images run in-process, pinned to one core.
    pub one_job_one_core: Box<dyn Fn(&Path) -> anyhow::Result<Duration> + 'a>,
}

/// Kills the child processes it holds when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn run(input: BurstInput<'_>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    let exe_dir = std::env::current_exe()?.parent().context("binary directory")?.to_path_buf();
    let binary = |name: &str| -> anyhow::Result<PathBuf> {
        let path = exe_dir.join(name);
        if !path.exists() {
            bail!("{} is missing: build every binary first (`cargo build --release --bins`)", path.display());
        }
        Ok(path)
    };
    let (api_binary, worker_binary) = (binary("zipfleet-api")?, binary("zipfleet-worker")?);

    let config = backend_config();
    let store = runtime.block_on(zipfleet_backends::connect_store(&config)).context("connecting to the bench's object store")?;
    let http = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let http_port = http.local_addr()?.port();
    runtime.spawn(serve_files(http, input.store_dir.to_path_buf()));

    // The same images in every job (a class training one shared project):
    // even ones from the store, odd ones from the web server.
    let chosen: Vec<&String> = input.keys.iter().cycle().take(input.images_per_job).collect();
    for key in input.keys.iter().take(input.images_per_job) {
        let bytes = std::fs::read(input.store_dir.join(key))?;
        runtime.block_on(store.put_bytes(&format!("bench/{key}"), bytes.into(), "application/octet-stream")).with_context(|| format!("uploading {key}"))?;
    }
    let images: Vec<serde_json::Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, key)| {
            if i % 2 == 0 {
                serde_json::json!({"id": format!("i{i}"), "label": "stored", "object": {"key": format!("bench/{key}")}})
            } else {
                serde_json::json!({"id": format!("i{i}"), "label": "web", "url": format!("http://127.0.0.1:{http_port}/{key}")})
            }
        })
        .collect();
    let output = serde_json::json!({"width": input.size, "height": input.size, "fit": "fill", "format": "jpeg", "quality": 90});

    // CPU floor: the same 40 images in-process on one core (local files).
    let local: Vec<serde_json::Value> =
        chosen.iter().enumerate().map(|(i, key)| serde_json::json!({"id": format!("i{i}"), "label": "x", "object": {"key": key}})).collect();
    let floor_job = input.work.join("job-burst-floor.json");
    std::fs::write(&floor_job, serde_json::to_vec(&serde_json::json!({"job_id": "burst-floor", "images": local, "output": output}))?)?;
    let one_job = (input.one_job_one_core)(&floor_job)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let floor = one_job.as_secs_f64() * input.jobs as f64 / cores as f64;

    let api_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let api_url = format!("http://127.0.0.1:{api_port}");
    let mut children = Children(Vec::new());
    children.0.push(fleet_command(&api_binary, &config).env("ZIPFLEET_LISTEN", format!("127.0.0.1:{api_port}")).spawn().context("starting zipfleet-api")?);
    for _ in 0..input.workers {
        children.0.push(
            fleet_command(&worker_binary, &config).env("ZIPFLEET_ALLOWED_SOURCE_NETS", "127.0.0.1/32").env("ZIPFLEET_WORKER_LISTEN", "off").spawn().context("starting zipfleet-worker")?,
        );
    }
    let client = reqwest::Client::new();
    runtime.block_on(wait_until_ready(&client, &api_url))?;

    let run_id = std::process::id();
    let mut makespans = Vec::new();
    let mut latencies = Vec::new();
    for round in 0..input.rounds.max(1) {
        let started = Instant::now();
        let round_latencies = runtime.block_on(async {
            let posts = (0..input.jobs).map(|j| {
                let body = serde_json::json!({"job_id": format!("burst-{run_id}-{round}-{j}"), "images": images, "output": output});
                let (client, api_url) = (client.clone(), api_url.clone());
                async move { follow_job(&client, &api_url, body, started).await }
            });
            futures::future::join_all(posts).await
        });
        makespans.push(started.elapsed().as_secs_f64());
        latencies.extend(round_latencies.into_iter().collect::<anyhow::Result<Vec<f64>>>()?);
    }
    makespans.sort_by(f64::total_cmp);
    latencies.sort_by(f64::total_cmp);
    let makespan = makespans[makespans.len() / 2];
    let rss: Vec<String> = children.0[1..]
        .iter()
        .map(|child| {
            std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                .ok()
                .and_then(|status| super::bench::high_water_mark_kib(&status))
                .map_or("?".into(), |kib| format!("{:.0} MiB", kib as f64 / 1024.0))
        })
        .collect();
    drop(children);

    let percentile = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!();
    println!(
        "## P4 — classroom burst: {} jobs × {} images (half S3, half HTTP), {} workers, {cores} cores",
        input.jobs, input.images_per_job, input.workers
    );
    println!();
    println!("| makespan (min / **median** / max) | CPU floor | median makespan ÷ floor | job latency p50 | p95 | peak RSS per worker |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {:.1} / **{makespan:.1}** / {:.1} s | {floor:.1} s | **{:.2}×** | {:.1} s | {:.1} s | {} |",
        makespans[0],
        makespans[makespans.len() - 1],
        makespan / floor,
        percentile(0.5),
        percentile(0.95),
        rss.join(", ")
    );
    println!();
    println!(
        "{} bursts on one fleet, each job polled every 0.5 s; latencies over all of them. CPU floor = one job's images in-process on one core (median {:.2} s) × {} jobs ÷ {cores} cores. Target: ≤ 1.15×.",
        makespans.len(),
        one_job.as_secs_f64(),
        input.jobs
    );
    Ok(())
}

/// The bench's own queues and prefix, so it never meets another run's jobs.
fn backend_config() -> BackendConfig {
    let mut config = BackendConfig::embedded(Path::new("/tmp"));
    let id = std::process::id();
    config.broker = std::env::var("ZIPFLEET_BROKER").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    config.status = std::env::var("ZIPFLEET_STATUS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    config.store = std::env::var("ZIPFLEET_BENCH_STORE").unwrap_or_else(|_| format!("s3://zipfleet/bench-{id}"));
    let sep = if config.broker.starts_with("sqs") { "-" } else { "." };
    config.jobs_queue = Some(format!("zipfleet{sep}bench{sep}jobs{sep}{id}"));
    config.completed_queue = Some(format!("zipfleet{sep}bench{sep}completed{sep}{id}"));
    config.dead_letter_queue = Some(format!("zipfleet{sep}bench{sep}dlq{sep}{id}"));
    config
}

fn fleet_command(binary: &Path, config: &BackendConfig) -> Command {
    let mut command = Command::new(binary);
    command
        .env("ZIPFLEET_BROKER", &config.broker)
        .env("ZIPFLEET_JOBS_QUEUE", config.jobs_queue.as_deref().unwrap_or_default())
        .env("ZIPFLEET_COMPLETED_QUEUE", config.completed_queue.as_deref().unwrap_or_default())
        .env("ZIPFLEET_DEAD_LETTER_QUEUE", config.dead_letter_queue.as_deref().unwrap_or_default())
        .env("ZIPFLEET_STORE", &config.store)
        .env("ZIPFLEET_STATUS", &config.status)
        .env("ZIPFLEET_API_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

async fn wait_until_ready(client: &reqwest::Client, api_url: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if client.get(format!("{api_url}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the API at {api_url} did not become ready (are RabbitMQ/SQS, Redis and S3 reachable? infra/bench-burst.sh starts them)")
}

/// Post one job and poll it until it ends; its latency from the burst's start.
async fn follow_job(client: &reqwest::Client, api_url: &str, body: serde_json::Value, started: Instant) -> anyhow::Result<f64> {
    let job_id = body["job_id"].as_str().unwrap_or_default().to_string();
    let response = client.post(format!("{api_url}/v1/jobs")).bearer_auth(TOKEN).json(&body).send().await?;
    if !response.status().is_success() {
        bail!("the API refused {job_id}: {} {}", response.status(), response.text().await.unwrap_or_default());
    }
    loop {
        // A student's page polling twice a second.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status: serde_json::Value = client.get(format!("{api_url}/v1/jobs/{job_id}")).bearer_auth(TOKEN).send().await?.json().await?;
        match status["state"].as_str() {
            Some("succeeded") => return Ok(started.elapsed().as_secs_f64()),
            Some("failed" | "cancelled") => bail!("{job_id} ended {}: {}", status["state"], status["error"]),
            _ => {}
        }
    }
}

/// A minimal static file server for the burst's "web" images: GET /NAME
/// answers the file NAME from `dir` (names only, no paths).
async fn serve_files(listener: tokio::net::TcpListener, dir: PathBuf) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { continue };
        let dir = dir.clone();
        tokio::spawn(async move {
            loop {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let name = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
                let body = if name.contains('/') || name.contains("..") { None } else { tokio::fs::read(dir.join(&name)).await.ok() };
                let head = match &body {
                    Some(bytes) => format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", bytes.len()),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
                };
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                if let Some(bytes) = body {
                    if socket.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}
