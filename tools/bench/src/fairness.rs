//! `zipfleet-bench --fairness`: fair share on the real fleet (issue 22).
//!
//! Two workers with one slot each; every job is one image that the bench's
//! loopback web server holds for about a second, so a job takes ~1 s.
//! Tenant A posts 60 jobs; 3 s later tenant B posts 3. Measured, round by
//! round, on the broker `ZIPFLEET_BROKER` names:
//!
//! - B's waits (first and last job: acceptance → start) with fair share, and
//!   with one lane (`ZIPFLEET_FAIR_LANES=1`: first come, first served);
//! - the makespan of all 63 jobs against the same 63 jobs from one tenant;
//! - A alone: how busy the two slots were while jobs waited;
//! - `queue.estimated_wait_s` read right after posting, against the real
//!   wait, for B's jobs and every sixth of A's.

use crate::file_server::start_file_server;
use crate::fleet::{backend_config_named, Fleet, FleetBinaries, TOKEN};
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// The shape of the measurement.
#[derive(Debug, Clone, Copy)]
pub struct FairnessInput {
    pub rounds: usize,
    pub jobs_a: usize,
    pub jobs_b: usize,
    pub b_after: Duration,
    pub hold: Duration,
}

impl Default for FairnessInput {
    fn default() -> Self {
        Self {
            rounds: 3,
            jobs_a: 60,
            jobs_b: 3,
            b_after: Duration::from_secs(3),
            hold: Duration::from_millis(1000),
        }
    }
}

/// How the fleet is set up for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Fair share: 8 lanes, A and B.
    Fair,
    /// One lane: first come, first served; A and B.
    Fifo,
    /// Fair share, but every job from A.
    OneTenant,
}

impl Mode {
    fn lanes(self) -> u16 {
        match self {
            Self::Fifo => 1,
            Self::Fair | Self::OneTenant => 8,
        }
    }
}

/// One job as it ended.
#[derive(Debug, Clone)]
struct Timeline {
    posted: DateTime<Utc>,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    /// `queue.estimated_wait_s` read right after posting (sampled jobs only).
    estimate: Option<f64>,
}

impl Timeline {
    fn wait(&self) -> f64 {
        seconds(self.started - self.posted)
    }
}

fn seconds(delta: chrono::TimeDelta) -> f64 {
    delta.num_milliseconds() as f64 / 1000.0
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
struct RunFigures {
    b_first_wait: f64,
    b_last_wait: f64,
    makespan: f64,
    /// Busy slot-seconds ÷ (slots × the time jobs waited or ran).
    busy: f64,
    /// (estimate, real wait) of the sampled jobs.
    estimates: Vec<(f64, f64)>,
}

pub fn run(input: FairnessInput, work: &std::path::Path) -> anyhow::Result<()> {
    let runtime = Handle::current();
    let binaries = FleetBinaries::locate()?;
    let images = work.join("fairness-images");
    std::fs::create_dir_all(&images)?;
    std::fs::write(images.join("tile.png"), tile_png())?;
    let port = runtime.block_on(start_file_server(images, Arc::default()))?;
    let broker = std::env::var("ZIPFLEET_BROKER")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    println!("# zipfleet bench --fairness ({})", scheme(&broker));
    println!(
        "2 workers x 1 slot; jobs of one image held {:.1} s; A posts {}, B posts {} after {:.0} s; {} rounds\n",
        input.hold.as_secs_f64(),
        input.jobs_a,
        input.jobs_b,
        input.b_after.as_secs_f64(),
        input.rounds
    );
    let mut figures: Vec<(Mode, RunFigures)> = Vec::new();
    for round in 1..=input.rounds {
        for mode in [Mode::Fair, Mode::Fifo, Mode::OneTenant] {
            let run = run_once(&runtime, &binaries, input, mode, port, round)
                .with_context(|| format!("round {round}, {mode:?}"))?;
            eprintln!(
                "round {round} {mode:?}: B first {:.1} s, last {:.1} s, makespan {:.1} s, busy {:.0}%",
                run.b_first_wait,
                run.b_last_wait,
                run.makespan,
                run.busy * 100.0
            );
            figures.push((mode, run));
        }
    }
    report(&figures, input);
    Ok(())
}

fn scheme(url: &str) -> &str {
    url.split("://").next().unwrap_or("?")
}

fn run_once(
    runtime: &Handle,
    binaries: &FleetBinaries,
    input: FairnessInput,
    mode: Mode,
    port: u16,
    round: usize,
) -> anyhow::Result<RunFigures> {
    let name = format!("fair{}{:?}{round}", std::process::id(), mode).to_lowercase();
    let mut config = backend_config_named(&name);
    config.fair_lanes = mode.lanes();
    let worker_env = [("ZIPFLEET_CONCURRENCY", "1".to_string())];
    let fleet = Fleet::start_with(runtime, binaries, &config, 2, false, &worker_env)?;
    let hold_ms = input.hold.as_millis();
    let image = |n: usize| format!("http://127.0.0.1:{port}/tile.png?v={name}-{n}&hold={hold_ms}");
    let job = |tenant: &str, n: usize| {
        json!({
            "job_id": format!("{name}-{tenant}-{n}"),
            "tenant": tenant,
            "images": [{"id": "1", "label": "a", "url": image(n)}],
        })
    };
    let b_tenant = if mode == Mode::OneTenant { "a" } else { "b" };
    let timelines = runtime.block_on(async {
        let started = Instant::now();
        let mut posted = Vec::new();
        for n in 0..input.jobs_a {
            posted.push(post(&fleet, job("a", n), n % 6 == 0).await?);
        }
        tokio::time::sleep(input.b_after.saturating_sub(started.elapsed())).await;
        for n in 0..input.jobs_b {
            posted.push(post(&fleet, job(b_tenant, input.jobs_a + n), true).await?);
        }
        let mut timelines = Vec::new();
        for (job_id, posted_at, estimate) in posted {
            timelines.push(finished(&fleet, &job_id, posted_at, estimate).await?);
        }
        anyhow::Ok(timelines)
    })?;
    Ok(figures(&timelines, input))
}

/// Post a job; its id, when it was accepted, and (if `sample`) the wait
/// its status estimated right after.
async fn post(
    fleet: &Fleet,
    body: Value,
    sample: bool,
) -> anyhow::Result<(String, DateTime<Utc>, Option<f64>)> {
    let job_id = body["job_id"].as_str().unwrap_or_default().to_string();
    let response = fleet
        .client
        .post(format!("{}/v1/jobs", fleet.api_url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await?;
    if response.status() != 202 {
        bail!("{job_id} refused: {}", response.text().await?);
    }
    let status = get(fleet, &job_id).await?;
    let posted = status["created_at"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .unwrap_or_else(Utc::now);
    let estimate = sample
        .then(|| status["queue"]["estimated_wait_s"].as_f64())
        .flatten();
    Ok((job_id, posted, estimate))
}

async fn get(fleet: &Fleet, job_id: &str) -> anyhow::Result<Value> {
    Ok(fleet
        .client
        .get(format!("{}/v1/jobs/{job_id}", fleet.api_url))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?)
}

/// Wait for a job to succeed; its timeline.
async fn finished(
    fleet: &Fleet,
    job_id: &str,
    posted: DateTime<Utc>,
    estimate: Option<f64>,
) -> anyhow::Result<Timeline> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = get(fleet, job_id).await?;
        match status["state"].as_str() {
            Some("succeeded") => {
                let at = |field: &str| -> anyhow::Result<DateTime<Utc>> {
                    status[field]
                        .as_str()
                        .and_then(|at| at.parse().ok())
                        .with_context(|| format!("{job_id} has no {field}"))
                };
                return Ok(Timeline {
                    posted,
                    started: at("started_at")?,
                    finished: at("finished_at")?,
                    estimate,
                });
            }
            Some("failed" | "cancelled") => bail!("{job_id} ended {}", status["state"]),
            _ if Instant::now() > deadline => bail!("{job_id} did not finish"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn figures(timelines: &[Timeline], input: FairnessInput) -> RunFigures {
    let first_posted = timelines.iter().map(|t| t.posted).min().unwrap_or_default();
    let last_finished = timelines
        .iter()
        .map(|t| t.finished)
        .max()
        .unwrap_or_default();
    let b_jobs = &timelines[input.jobs_a..];
    let busy_seconds: f64 = timelines
        .iter()
        .map(|t| seconds(t.finished - t.started))
        .sum();
    let first_start = timelines
        .iter()
        .map(|t| t.started)
        .min()
        .unwrap_or_default();
    RunFigures {
        b_first_wait: b_jobs.first().map_or(0.0, Timeline::wait),
        b_last_wait: b_jobs.last().map_or(0.0, Timeline::wait),
        makespan: seconds(last_finished - first_posted),
        busy: busy_seconds / (2.0 * seconds(last_finished - first_start)).max(f64::EPSILON),
        estimates: timelines
            .iter()
            .filter_map(|t| Some((t.estimate?, t.wait())))
            .collect(),
    }
}

/// min / median / max.
fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => "-".into(),
        n => format!(
            "{:.1} / **{:.1}** / {:.1}",
            values[0],
            values[n / 2],
            values[n - 1]
        ),
    }
}

fn report(figures: &[(Mode, RunFigures)], input: FairnessInput) {
    let of = |mode: Mode, pick: fn(&RunFigures) -> f64| -> Vec<f64> {
        figures
            .iter()
            .filter(|(m, _)| *m == mode)
            .map(|(_, f)| pick(f))
            .collect()
    };
    let hold = input.hold.as_secs_f64();
    println!("| | fair share | one lane (FIFO) |");
    println!("|---|---|---|");
    println!(
        "| B's first job waited, s (min / median / max) | {} | {} |",
        spread(of(Mode::Fair, |f| f.b_first_wait)),
        spread(of(Mode::Fifo, |f| f.b_first_wait))
    );
    println!(
        "| B's last job waited, s | {} | {} |",
        spread(of(Mode::Fair, |f| f.b_last_wait)),
        spread(of(Mode::Fifo, |f| f.b_last_wait))
    );
    println!(
        "| makespan of all {} jobs, s | {} | {} |",
        input.jobs_a + input.jobs_b,
        spread(of(Mode::Fair, |f| f.makespan)),
        spread(of(Mode::Fifo, |f| f.makespan))
    );
    println!(
        "\nTargets: B's first wait within 1 job ({hold:.1} s), its last within 3 ({:.1} s).",
        3.0 * hold
    );
    let fair = of(Mode::Fair, |f| f.makespan);
    let alone = of(Mode::OneTenant, |f| f.makespan);
    let ratios: Vec<f64> = fair.iter().zip(&alone).map(|(f, a)| f / a).collect();
    println!(
        "\nMakespan, two tenants ÷ one tenant, per round: {} (target ≤ 1.05); one tenant: {} s",
        spread(ratios),
        spread(alone)
    );
    println!(
        "A alone: slots busy {} % of the time from the first start to the last finish",
        spread(of(Mode::OneTenant, |f| f.busy * 100.0))
    );
    let errors: Vec<f64> = figures
        .iter()
        .filter(|(m, _)| *m == Mode::Fair)
        .flat_map(|(_, f)| f.estimates.iter())
        .map(|(estimate, real)| (estimate - real) / real.max(0.5))
        .collect();
    let within = errors.iter().filter(|e| e.abs() <= 0.5).count();
    println!(
        "estimated_wait_s against the real wait (fair share, {} jobs sampled): error {} (x100 %), within ±50 %: {} of {} ({:.0} %); waits under 0.5 s count as 0.5 s",
        errors.len(),
        spread(errors.iter().map(|e| e * 100.0).collect()),
        within,
        errors.len(),
        100.0 * within as f64 / errors.len().max(1) as f64
    );
}

/// A small PNG: the image every job renders (its fetch is what takes time).
fn tile_png() -> Vec<u8> {
    let mut png = Vec::new();
    let image = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("a PNG encodes");
    png
}
