//! `zipfleet-bench --search N`: job search (the operator page's `GET
//! /v1/jobs`) with N jobs in Redis (issue 24: p95 under 100 ms at 100,000).
//!
//! Fills the status store (Redis at `ZIPFLEET_STATUS`, a key prefix of its
//! own, statuses expiring after an hour) with N jobs of 200 tenants and
//! 5,000 projects — 90 % succeeded, 5 % failed, 5 % still queued — through
//! the store's own transitions, so the indexes are what the fleet would
//! have built. Then starts `zipfleet-api` on it and times each kind of
//! search through HTTP, as the page makes them.

use crate::fleet::{backend_config_named, Fleet, FleetBinaries, TOKEN};
use anyhow::Context;
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use zipfleet_shared::status::{JobError, JobResult, JobStatus, Location};
use zipfleet_shared::status_store::{BeginJob, FairLimits, NewJob, StatusStore};
use zipfleet_shared::JobErrorCode;

/// A kind of search: the query string of its `i`-th instance.
type Query = Box<dyn Fn(usize) -> String>;

const TENANTS: usize = 200;
const PROJECTS: usize = 5_000;
/// Searches of each kind.
const QUERIES: usize = 200;

pub fn run(jobs: usize, rounds: usize) -> anyhow::Result<()> {
    let runtime = Handle::current();
    let binaries = FleetBinaries::locate()?;
    let name = format!("search{}", std::process::id());
    let mut config = backend_config_named(&name);
    config.broker = "memory://".into();
    config.status_ttl = Duration::from_secs(3600);
    let store_dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&store_dir)?;
    config.store = format!("file://{}", store_dir.display());
    let status = runtime
        .block_on(zipfleet_backends::connect_status(&config))
        .context("connecting to Redis (ZIPFLEET_STATUS)")?;
    println!("# zipfleet bench --search ({jobs} jobs in Redis)");
    let filled = Instant::now();
    runtime.block_on(fill(status.as_ref(), jobs))?;
    println!(
        "filled in {:.1} s ({} jobs/s)\n",
        filled.elapsed().as_secs_f64(),
        (jobs as f64 / filled.elapsed().as_secs_f64()) as u64
    );
    let fleet = Fleet::start(&runtime, &binaries, &config, 0, false)?;
    let kinds: [(&str, Query); 6] = [
        (
            "a job id",
            Box::new(move |i| format!("job_id=j{}", (i * 7919) % jobs)),
        ),
        (
            "a project",
            Box::new(|i| format!("project_id=class-{}", (i * 31) % PROJECTS)),
        ),
        (
            "a tenant",
            Box::new(|i| format!("tenant=school-{}", i % TENANTS)),
        ),
        ("failed jobs", Box::new(|_| "state=failed".to_string())),
        (
            "a tenant's failed jobs",
            Box::new(|i| format!("tenant=school-{}&state=failed", i % TENANTS)),
        ),
        ("newest, no filter", Box::new(|_| String::new())),
    ];
    println!("| search (50 a page) | p50 ms | **p95 ms** | max ms | jobs on the page (median) |");
    println!("|---|---|---|---|---|");
    let mut all = Vec::new();
    for (label, query) in &kinds {
        let mut times = Vec::new();
        let mut found = Vec::new();
        for round in 0..rounds.max(1) {
            for i in 0..QUERIES {
                let url = format!(
                    "{}/v1/jobs?limit=50&{}",
                    fleet.api_url,
                    query(i + round * QUERIES)
                );
                let started = Instant::now();
                let page: serde_json::Value = runtime.block_on(async {
                    fleet
                        .client
                        .get(&url)
                        .bearer_auth(TOKEN)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await
                })?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                found.push(page["jobs"].as_array().map_or(0, Vec::len));
            }
        }
        all.extend(&times);
        let (p50, p95, max) = percentiles(&mut times);
        found.sort_unstable();
        println!(
            "| {label} | {p50:.1} | **{p95:.1}** | {max:.1} | {} |",
            found[found.len() / 2]
        );
    }
    let (p50, p95, max) = percentiles(&mut all);
    println!("| every search | {p50:.1} | **{p95:.1}** | {max:.1} | |");
    println!("\nTarget: p95 under 100 ms. Statuses expire from Redis within the hour (prefix zipfleet-bench-{name}).");
    let _ = std::fs::remove_dir_all(&store_dir);
    Ok(())
}

fn percentiles(times: &mut [f64]) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95), at(1.0))
}

/// N jobs through create, begin and finish, 64 at a time.
async fn fill(status: &dyn StatusStore, jobs: usize) -> anyhow::Result<()> {
    let limits = FairLimits {
        lanes: 8,
        max_queued_per_tenant: u32::MAX,
    };
    let results = futures::stream::iter(0..jobs)
        .map(|i| async move {
            let id = format!("j{i}");
            let tenant = format!("school-{}", i % TENANTS);
            let project = format!("class-{}", (i * 31) % PROJECTS);
            let queued = JobStatus::queued(&id, Some(project.clone()), &tenant, 40);
            status
                .create(&NewJob {
                    status: &queued,
                    fingerprint: "bench",
                    pictures: &[],
                    limits,
                })
                .await?;
            if i % 20 == 0 {
                return Ok(());
            }
            let begin = BeginJob {
                job_id: &id,
                project_id: Some(&project),
                tenant: &tenant,
                attempt: 1,
                total: 40,
                claim: None,
            };
            if let zipfleet_shared::status_store::BeginOutcome::Started(mut running) =
                status.begin(&begin).await?
            {
                if i % 20 == 1 {
                    running.fail(JobError::new(JobErrorCode::Internal, "bench"));
                } else {
                    running.succeed(JobResult {
                        location: Location {
                            bucket: "bench".into(),
                            key: format!("zips/{id}.zip"),
                        },
                        url: String::new(),
                        size_bytes: 0,
                        images: 40,
                        skipped: Vec::new(),
                        report: Default::default(),
                    });
                }
                status.finish(&running).await?;
            }
            anyhow::Ok(())
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}
