//! The chaos burst: 30 jobs on RabbitMQ while a worker is `kill -9`'d every
//! few seconds (a replacement started each time) and RabbitMQ restarts once.
//! Every job ends `succeeded` with exactly one zip and at least one
//! completion message (duplicates are allowed by the contract; they are
//! counted and reported). In the disruptive binary: it restarts the broker
//! other RabbitMQ tests use.

use serde_json::json;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_tests::fleet::{amqp_url, fleet_config, spawn_fleet_with, Fleet};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::images;

const JOBS: usize = 30;
const WORKERS: usize = 3;
const KILL_EVERY: Duration = Duration::from_secs(3);
/// The broker restarts after this many kills.
const RESTART_AFTER_KILL: usize = 2;
const WORKER_ENV: &[(&str, &str)] = &[("ZIPFLEET_SHUTDOWN_GRACE", "1s")];

fn rabbitmqctl(args: &[&str]) -> bool {
    // Time-limited: rabbitmqctl can hang while a node is half up.
    Command::new("timeout")
        .arg("120")
        .arg("rabbitmqctl")
        .args(args)
        .status()
        .unwrap_or_else(|err| panic!("rabbitmqctl runs: {err}"))
        .success()
}

/// Brings RabbitMQ back however the test leaves the restart (a panic included).
struct StartAppOnDrop;

impl Drop for StartAppOnDrop {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    }
}

/// A job of about 1.5 s: a photo plus an image that trickles in.
fn job(server: &TestServer, n: usize) -> (String, serde_json::Value) {
    let job_id = format!(
        "chaos{n}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let slow_body = images::jpeg(40, 40, n as u8);
    let interval =
        (Duration::from_millis(1500) / slow_body.len() as u32).max(Duration::from_millis(1));
    let slow = server.route(
        &format!("/{job_id}/slow.jpg"),
        Route::Drip {
            body: slow_body,
            interval,
        },
    );
    let photo = server.image(
        &format!("/{job_id}/photo.jpg"),
        "image/jpeg",
        images::jpeg(640, 480, n as u8),
    );
    let body = json!({"job_id": job_id, "images": [{"id": "slow", "label": "a", "url": slow}, {"id": "photo", "label": "b", "url": photo}]});
    (job_id, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_jobs_survive_kill_9_and_a_broker_restart() {
    let _alone = crate::alone().await;
    let mut config = fleet_config(&amqp_url());
    // Every kill and the restart cost the jobs running at that moment a
    // delivery; a limit no burst here can reach (the limit itself is tested elsewhere).
    config.max_deliveries = 20;
    let mut fleet = spawn_fleet_with(config, 0).await;
    // Worker logs to files: the outage makes every worker say so.
    let logs = tempfile::tempdir().unwrap();
    let mut started = 0;
    let mut add_worker = |fleet: &mut Fleet| {
        started += 1;
        fleet.add_worker_with(
            Some(&logs.path().join(format!("worker-{started}.log"))),
            None,
            WORKER_ENV,
        )
    };
    let mut alive: Vec<usize> = (0..WORKERS).map(|_| add_worker(&mut fleet)).collect();
    let server = TestServer::start().await;
    let jobs: Vec<(String, serde_json::Value)> = (0..JOBS).map(|n| job(&server, n)).collect();
    let began = Instant::now();
    let mut posted = 0;
    for (_, body) in &jobs[..12] {
        assert_eq!(fleet.post_job(body).await.status(), 202);
        posted += 1;
    }

    let mut kills = 0;
    let mut restart_took = None;
    while posted < JOBS || kills < 7 {
        tokio::time::sleep(KILL_EVERY).await;
        // kill -9 the oldest worker; its replacement starts at once.
        let victim = alive.remove(0);
        fleet.kill_worker(victim);
        kills += 1;
        alive.push(add_worker(&mut fleet));
        if kills == RESTART_AFTER_KILL {
            let restart = Instant::now();
            let back = StartAppOnDrop;
            assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(back);
            restart_took = Some(restart.elapsed());
        }
        for (_, body) in jobs.iter().skip(posted).take(6) {
            fleet.post_until_accepted(body).await;
            posted += 1;
        }
    }
    let chaos_ended = began.elapsed();

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut finals: Vec<JobStatus> = Vec::new();
    for (job_id, _) in &jobs {
        let left = deadline.saturating_duration_since(Instant::now());
        let status = fleet.wait_final(job_id, left).await;
        assert_eq!(status.state, JobState::Succeeded, "{status:?}");
        assert_eq!(status.result.as_ref().unwrap().images, 2, "{status:?}");
        assert_eq!(fleet.zip_count(job_id).await, 1, "{job_id}");
        finals.push(status);
    }
    let all_done = began.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let completions = fleet
        .drain_queue(fleet.config.completed_queue.as_deref().unwrap())
        .await;
    let mut copies: HashMap<String, usize> = HashMap::new();
    for raw in &completions {
        let status: JobStatus =
            serde_json::from_slice(raw).expect("a completion is a status document");
        assert_eq!(
            status.state,
            JobState::Succeeded,
            "every completion reports the success: {status:?}"
        );
        *copies.entry(status.job_id).or_default() += 1;
    }
    for (job_id, _) in &jobs {
        assert!(
            copies.get(job_id).copied().unwrap_or(0) >= 1,
            "{job_id} has no completion message"
        );
    }
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    let mut attempts: Vec<u32> = finals.iter().map(|s| s.attempt).collect();
    attempts.sort_unstable();
    assert!(restart_took.is_some(), "the broker was restarted");
    eprintln!(
        "chaos burst: {JOBS} jobs on {WORKERS} workers, {kills} kill -9s (one every {KILL_EVERY:?}), RabbitMQ stopped and restarted in {:.1} s; \
         chaos over after {:.1} s, all succeeded after {:.1} s; {} completion messages, {duplicates} duplicates; attempts {attempts:?}",
        restart_took.unwrap().as_secs_f64(),
        chaos_ended.as_secs_f64(),
        all_done.as_secs_f64(),
        completions.len(),
    );
    assert!(
        attempts.iter().any(|&a| a > 1),
        "the chaos hit running jobs (some were delivered again): {attempts:?}"
    );
}
