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
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    let exe_dir = std::env::current_exe()?
        .parent()
        .context("binary directory")?
        .to_path_buf();
    let binary = |name: &str| -> anyhow::Result<PathBuf> {
        let path = exe_dir.join(name);
        if !path.exists() {
            bail!(
                "{} is missing: build every binary first (`cargo build --release --bins`)",
                path.display()
            );
        }
        Ok(path)
    };
    let (api_binary, worker_binary) = (binary("zipfleet-api")?, binary("zipfleet-worker")?);

    let config = backend_config();
    let store = runtime
        .block_on(zipfleet_backends::connect_store(&config))
        .context("connecting to the bench's object store")?;
    let http = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let http_port = http.local_addr()?.port();
    runtime.spawn(serve_files(
        http,
        input.store_dir.to_path_buf(),
        Arc::default(),
    ));

    // The same images in every job (a class training one shared project):
    // even ones from the store, odd ones from the web server.
    let chosen: Vec<&String> = input
        .keys
        .iter()
        .cycle()
        .take(input.images_per_job)
        .collect();
    for key in input.keys.iter().take(input.images_per_job) {
        let bytes = std::fs::read(input.store_dir.join(key))?;
        runtime
            .block_on(store.put_bytes(
                &format!("bench/{key}"),
                bytes.into(),
                "application/octet-stream",
            ))
            .with_context(|| format!("uploading {key}"))?;
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
    std::fs::write(
        &floor_job,
        serde_json::to_vec(
            &serde_json::json!({"job_id": "burst-floor", "images": local, "output": output}),
        )?,
    )?;
    let one_job = (input.one_job_one_core)(&floor_job)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let floor = one_job.as_secs_f64() * input.jobs as f64 / cores as f64;

    let api_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let api_url = format!("http://127.0.0.1:{api_port}");
    let mut children = Children(Vec::new());
    children.0.push(
        fleet_command(&api_binary, &config)
            .env("ZIPFLEET_LISTEN", format!("127.0.0.1:{api_port}"))
            .spawn()
            .context("starting zipfleet-api")?,
    );
    for _ in 0..input.workers {
        // The same 40 pictures in every job: with the cache they would be
        // rendered once, so this burst measures the pipeline with it off
        // (`--pool` measures the cache).
        children.0.push(
            fleet_command(&worker_binary, &config)
                .env("ZIPFLEET_ALLOWED_SOURCE_NETS", "127.0.0.1/32")
                .env("ZIPFLEET_WORKER_LISTEN", "off")
                .env("ZIPFLEET_CACHE", "off")
                .spawn()
                .context("starting zipfleet-worker")?,
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
        latencies.extend(
            round_latencies
                .into_iter()
                .collect::<anyhow::Result<Vec<f64>>>()?,
        );
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
    config.broker = std::env::var("ZIPFLEET_BROKER")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    config.status =
        std::env::var("ZIPFLEET_STATUS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    config.store = std::env::var("ZIPFLEET_BENCH_STORE")
        .unwrap_or_else(|_| format!("s3://zipfleet/bench-{id}"));
    let sep = if config.broker.starts_with("sqs") {
        "-"
    } else {
        "."
    };
    config.jobs_queue = Some(format!("zipfleet{sep}bench{sep}jobs{sep}{id}"));
    config.completed_queue = Some(format!("zipfleet{sep}bench{sep}completed{sep}{id}"));
    config.dead_letter_queue = Some(format!("zipfleet{sep}bench{sep}dlq{sep}{id}"));
    config
}

fn fleet_command(binary: &Path, config: &BackendConfig) -> Command {
    let mut command = Command::new(binary);
    command
        .env("ZIPFLEET_BROKER", &config.broker)
        .env(
            "ZIPFLEET_JOBS_QUEUE",
            config.jobs_queue.as_deref().unwrap_or_default(),
        )
        .env(
            "ZIPFLEET_COMPLETED_QUEUE",
            config.completed_queue.as_deref().unwrap_or_default(),
        )
        .env(
            "ZIPFLEET_DEAD_LETTER_QUEUE",
            config.dead_letter_queue.as_deref().unwrap_or_default(),
        )
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
async fn follow_job(
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

/// Requests the bench's web server answered, per path (query included).
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    total: AtomicUsize,
    per_path: Mutex<HashMap<String, usize>>,
}

impl RequestLog {
    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// The most requests any one URL got.
    pub(crate) fn most_for_one_url(&self) -> usize {
        self.per_path
            .lock()
            .expect("request log")
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    fn record(&self, path: &str) {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self
            .per_path
            .lock()
            .expect("request log")
            .entry(path.to_string())
            .or_insert(0) += 1;
    }
}

/// Start the bench's web server on loopback; its port.
pub(crate) async fn start_file_server(dir: PathBuf, log: Arc<RequestLog>) -> anyhow::Result<u16> {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = http.local_addr()?.port();
    tokio::spawn(serve_files(http, dir, log));
    Ok(port)
}

/// Trailing bytes that make `?v=N` a different file with the same picture
/// (JPEG, PNG and WebP decoders stop at their end marker).
fn variant_suffix(query: &str) -> Option<Vec<u8>> {
    let n = query.strip_prefix("v=")?;
    Some(format!("zipfleet-bench-variant-{n}").into_bytes())
}

/// A minimal static file server for the burst's "web" images: GET /NAME
/// answers the file NAME from `dir` (names only, no paths); `?v=N` appends
/// bytes that make it a distinct file of the same picture.
async fn serve_files(listener: tokio::net::TcpListener, dir: PathBuf, log: Arc<RequestLog>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let (dir, log) = (dir.clone(), log.clone());
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
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.record(&target);
                let (name, query) = target
                    .trim_start_matches('/')
                    .split_once('?')
                    .unwrap_or((target.trim_start_matches('/'), ""));
                let mut body = if name.contains('/') || name.contains("..") {
                    None
                } else {
                    tokio::fs::read(dir.join(name)).await.ok()
                };
                if let (Some(bytes), Some(suffix)) = (&mut body, variant_suffix(query)) {
                    bytes.extend_from_slice(&suffix);
                }
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

/// What `zipfleet bench --burst --pool N` (and `--cold`) needs.
pub struct CacheBurstInput<'a> {
    pub store_dir: &'a Path,
    pub keys: Vec<String>,
    pub jobs: usize,
    pub images_per_job: usize,
    pub workers: usize,
    pub size: u32,
    pub rounds: usize,
    /// Shared pool size; `None` = every picture of every job distinct (`--cold`).
    pub pool: Option<usize>,
}

/// The cache's fleet targets: a burst drawing from a shared pool, or one of
/// all-distinct pictures, run with `ZIPFLEET_CACHE=off` and with the cache
/// on (empty at the start of every burst: each round gets a new prefix),
/// alternating, `rounds` times each.
pub fn run_cache(input: CacheBurstInput<'_>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    let exe_dir = std::env::current_exe()?
        .parent()
        .context("binary directory")?
        .to_path_buf();
    let (api_binary, worker_binary) = (
        exe_dir.join("zipfleet-api"),
        exe_dir.join("zipfleet-worker"),
    );
    if !api_binary.exists() || !worker_binary.exists() {
        bail!("zipfleet-api and zipfleet-worker must be built next to zipfleet (`cargo build --release --bins`)");
    }
    let log = Arc::new(RequestLog::default());
    let http_port = runtime.block_on(start_file_server(
        input.store_dir.to_path_buf(),
        log.clone(),
    ))?;
    let run_id = std::process::id();
    let output = serde_json::json!({"width": input.size, "height": input.size, "fit": "fill", "format": "jpeg", "quality": 90});

    // The pictures: pool picture p is an object when p is even, a URL when odd
    // (so a picture is always the same source, as in a class).
    let pool_keys: Vec<&String> = match input.pool {
        Some(n) => input.keys.iter().cycle().take(n.max(1)).collect(),
        None => input.keys.iter().collect(),
    };
    let job_images = |job: usize, objects_prefix: &str| -> Vec<serde_json::Value> {
        (0..input.images_per_job)
            .map(|i| match input.pool {
                Some(n) => {
                    // Each job a different window of the pool (stride 7 between jobs).
                    let p = (job * 7 + i) % n.max(1);
                    let key = pool_keys[p];
                    if p.is_multiple_of(2) {
                        serde_json::json!({"id": format!("i{i}"), "label": "pool", "object": {"key": format!("{objects_prefix}/{key}")}})
                    } else {
                        serde_json::json!({"id": format!("i{i}"), "label": "pool", "url": format!("http://127.0.0.1:{http_port}/{key}")})
                    }
                }
                // All distinct: every image a web variant of its own.
                None => {
                    let key = pool_keys[i % pool_keys.len()];
                    serde_json::json!({"id": format!("i{i}"), "label": "cold", "url": format!("http://127.0.0.1:{http_port}/{key}?v={run_id}x{job}x{i}")})
                }
            })
            .collect()
    };

    let mut makespans: HashMap<bool, Vec<f64>> = HashMap::new();
    let mut most_per_url = 0;
    for round in 0..input.rounds.max(1) {
        for cache in [false, true] {
            let mut config = backend_config();
            config.store = format!(
                "{}-{round}-{}",
                config.store,
                if cache { "on" } else { "off" }
            );
            // A new queue set per burst (SQS names take no dots).
            let sep = if config.broker.starts_with("sqs") {
                "-"
            } else {
                "."
            };
            config.jobs_queue = config.jobs_queue.map(|q| format!("{q}{sep}{round}{cache}"));
            config.completed_queue = config
                .completed_queue
                .map(|q| format!("{q}{sep}{round}{cache}"));
            config.dead_letter_queue = config
                .dead_letter_queue
                .map(|q| format!("{q}{sep}{round}{cache}"));
            let store = runtime
                .block_on(zipfleet_backends::connect_store(&config))
                .context("connecting to the bench's object store")?;
            let objects_prefix = "bench-pool";
            if input.pool.is_some() {
                for (p, key) in pool_keys.iter().enumerate() {
                    if p.is_multiple_of(2) {
                        let bytes = std::fs::read(input.store_dir.join(key))?;
                        runtime.block_on(store.put_bytes(
                            &format!("{objects_prefix}/{key}"),
                            bytes.into(),
                            "application/octet-stream",
                        ))?;
                    }
                }
            }
            let api_port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let api_url = format!("http://127.0.0.1:{api_port}");
            let mut children = Children(Vec::new());
            children.0.push(
                fleet_command(&api_binary, &config)
                    .env("ZIPFLEET_LISTEN", format!("127.0.0.1:{api_port}"))
                    .spawn()
                    .context("starting zipfleet-api")?,
            );
            for _ in 0..input.workers {
                children.0.push(
                    fleet_command(&worker_binary, &config)
                        .env("ZIPFLEET_ALLOWED_SOURCE_NETS", "127.0.0.1/32")
                        .env("ZIPFLEET_WORKER_LISTEN", "off")
                        .env("ZIPFLEET_CACHE", if cache { "on" } else { "off" })
                        .spawn()
                        .context("starting zipfleet-worker")?,
                );
            }
            let client = reqwest::Client::new();
            runtime.block_on(wait_until_ready(&client, &api_url))?;
            let bodies: Vec<serde_json::Value> = (0..input.jobs)
                .map(|j| serde_json::json!({"job_id": format!("cb-{run_id}-{round}-{cache}-{j}"), "images": job_images(j, objects_prefix), "output": output}))
                .collect();
            log.per_path.lock().expect("request log").clear();
            let started = Instant::now();
            runtime.block_on(async {
                let posts = bodies.into_iter().map(|body| {
                    let (client, api_url) = (client.clone(), api_url.clone());
                    async move { follow_job(&client, &api_url, body, started).await }
                });
                futures::future::join_all(posts)
                    .await
                    .into_iter()
                    .collect::<anyhow::Result<Vec<f64>>>()
            })?;
            makespans
                .entry(cache)
                .or_default()
                .push(started.elapsed().as_secs_f64());
            if cache {
                most_per_url = most_per_url.max(log.most_for_one_url());
            }
            drop(children);
        }
    }
    let spread = |samples: &[f64]| {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        (
            sorted[0],
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1],
        )
    };
    let (off, on) = (spread(&makespans[&false]), spread(&makespans[&true]));
    let ratios: Vec<f64> = makespans[&true]
        .iter()
        .zip(&makespans[&false])
        .map(|(on, off)| on / off)
        .collect();
    let ratio = spread(&ratios);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!();
    match input.pool {
        Some(n) => println!(
            "## Cache — class burst from a shared pool of {n} pictures (half S3, half HTTP): {} jobs × {} images, {} workers, {cores} cores",
            input.jobs, input.images_per_job, input.workers
        ),
        None => println!(
            "## Cache — cold cost: {} jobs × {} images, every picture distinct (HTTP, a distinct file each), {} workers, {cores} cores",
            input.jobs, input.images_per_job, input.workers
        ),
    }
    println!();
    println!("| makespan cache off (min / **median** / max) | cache on, empty at start | on ÷ off per round (min / **median** / max) | most requests for one URL (cache on) |");
    println!("|---|---|---|---|");
    println!(
        "| {:.1} / **{:.1}** / {:.1} s | {:.1} / **{:.1}** / {:.1} s | {:.3} / **{:.3}** / {:.3} | {most_per_url} |",
        off.0, off.1, off.2, on.0, on.1, on.2, ratio.0, ratio.1, ratio.2
    );
    println!();
    match input.pool {
        Some(_) => println!(
            "Target: on ÷ off ≤ 0.25, each URL requested at most once per worker ({} workers).",
            input.workers
        ),
        None => println!("Target: on ÷ off ≤ 1.03 (the cache's cost when nothing can be reused)."),
    }
    Ok(())
}
