//! `zipfleet-bench --burst`: the classroom burst (issue P4) on the real fleet,
//! and the cache's bursts (`--pool N`, `--cold`).
//!
//! Starts the API (`zipfleet-api`) and `--workers` worker processes
//! (`zipfleet-worker`, the binaries next to this one; see [`crate::fleet`])
//! on the services named by the usual `ZIPFLEET_BROKER` / `ZIPFLEET_STATUS`
//! settings and an S3 store (`ZIPFLEET_BENCH_STORE`, default
//! `s3://zipfleet/bench-PID`), half of each job's images uploaded to the
//! store and half served by a loopback HTTP server in this process. All jobs are posted at once; each is polled until
//! it ends. Printed: makespan, the CPU floor (one job's images run in-process
//! on one core, times the number of jobs, divided by the cores), their ratio,
//! p50/p95 job latency and every worker's peak RSS.
//!
//! `infra/bench-burst.sh CORPUS_DIR` starts the services and runs this.

use crate::file_server::{start_file_server, RequestLog};
use crate::fleet::{backend_config, follow_job, Fleet, FleetBinaries};
use anyhow::Context;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Times one job's images run in-process, pinned to one core (the job file given).
pub type TimeOneJob<'a> = Box<dyn Fn(&Path) -> anyhow::Result<Duration> + 'a>;

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
    pub one_job_one_core: TimeOneJob<'a>,
}

pub fn run(input: BurstInput<'_>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    let binaries = FleetBinaries::locate()?;

    let config = backend_config();
    let store = runtime
        .block_on(zipfleet_backends::connect_store(&config))
        .context("connecting to the bench's object store")?;
    let http_port = runtime.block_on(start_file_server(
        input.store_dir.to_path_buf(),
        Arc::default(),
    ))?;

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

    // The same 40 pictures in every job: with the cache they would be
    // rendered once, so this burst measures the pipeline with it off
    // (`--pool` measures the cache).
    let fleet = Fleet::start(&runtime, &binaries, &config, input.workers, false)?;

    let run_id = std::process::id();
    let mut makespans = Vec::new();
    let mut latencies = Vec::new();
    for round in 0..input.rounds.max(1) {
        let started = Instant::now();
        let round_latencies = runtime.block_on(async {
            let posts = (0..input.jobs).map(|j| {
                let body = serde_json::json!({"job_id": format!("burst-{run_id}-{round}-{j}"), "images": images, "output": output});
                let (client, api_url) = (fleet.client.clone(), fleet.api_url.clone());
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
    let rss = fleet.workers_peak_rss();
    drop(fleet);

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

/// What `zipfleet-bench --burst --pool N` (and `--cold`) needs.
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
    let binaries = FleetBinaries::locate()?;
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
            let sep = if config.broker.scheme() == "sqs" {
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
            let fleet = Fleet::start(&runtime, &binaries, &config, input.workers, cache)?;
            let bodies: Vec<serde_json::Value> = (0..input.jobs)
                .map(|j| serde_json::json!({"job_id": format!("cb-{run_id}-{round}-{cache}-{j}"), "images": job_images(j, objects_prefix), "output": output}))
                .collect();
            log.clear_per_url();
            let started = Instant::now();
            runtime.block_on(async {
                let posts = bodies.into_iter().map(|body| {
                    let (client, api_url) = (fleet.client.clone(), fleet.api_url.clone());
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
            drop(fleet);
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
