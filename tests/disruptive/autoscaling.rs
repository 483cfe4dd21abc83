//! Autoscaling, played for real: `zipfleet_tests::autoscaler` plays KEDA and
//! the HPA (the rule of `infra/k8s/overlays/*/keda.yaml`, with test-sized
//! windows) against the real broker and real worker processes. From zero
//! workers, a burst of 20 jobs: the fleet scales out to its maximum, scales in
//! while jobs still run (SIGTERM, 1 s grace, unfinished jobs handed back),
//! every job succeeds exactly once, no job waited for a timeout, and the
//! fleet returns to zero. The same burst on a fixed fleet of the maximum
//! size gives the makespan to compare with. Both brokers, one at a time (the
//! figures compare runs).
//!
//! Test-sized numbers (production in brackets): poll every 1 s (10/15 s),
//! cooldown 5 s (600 s), scale-down stabilisation 3 s (300 s), at most 4
//! replicas (20), no one-pod-a-minute scale-down policy; target 2 messages per
//! replica and activation 0 as in production.

use serde_json::json;
use std::time::{Duration, Instant};
use zipfleet_shared::status::{now, JobState, JobStatus};
use zipfleet_tests::autoscaler::{Autoscaler, Metric, Rule};
use zipfleet_tests::fleet::{amqp_url, fleet_config, spawn_fleet_with, Fleet};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::images;

const JOBS: usize = 20;
const MAX_REPLICAS: usize = 4;
/// The last [`LONG_JOBS`] jobs trickle their slow image for this long, the
/// others for [`SHORT`]: the short ones finish, the metric falls, and the
/// scale-in comes while the long ones still have seconds to go (more than
/// the metric's lag — RabbitMQ's management API refreshes every 5 s — plus
/// the stabilisation window plus the grace).
const LONG: Duration = Duration::from_secs(20);
const LONG_JOBS: usize = 2;
const SHORT: Duration = Duration::from_secs(2);
const WORKER_ENV: &[(&str, &str)] = &[
    ("ZIPFLEET_CONCURRENCY", "2"),
    ("ZIPFLEET_SHUTDOWN_GRACE", "1s"),
    ("ZIPFLEET_LOG_FORMAT", "json"),
];

fn rule() -> Rule {
    Rule {
        target: 2,
        activation: 0,
        max_replicas: MAX_REPLICAS,
        cooldown: Duration::from_secs(5),
        stabilisation: Duration::from_secs(3),
    }
}

/// A fleet with no workers yet. Scale-in hands jobs back, and each hand-back
/// is a delivery: a delivery limit above what a burst can need.
async fn empty_fleet(broker: &str) -> Fleet {
    let mut config = fleet_config(broker);
    config.max_deliveries = 10;
    spawn_fleet_with(config, 0).await
}

/// Post the burst: each job a real photo plus one image that trickles in
/// for [`LONG`] or [`SHORT`], so jobs take seconds and finish at different times.
async fn post_burst(fleet: &Fleet, server: &TestServer, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..JOBS {
        let job_id = format!(
            "{tag}{n}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let slow_body = images::jpeg(40, 40, n as u8);
        let lasts = if n >= JOBS - LONG_JOBS { LONG } else { SHORT };
        let interval = (lasts / slow_body.len() as u32).max(Duration::from_millis(1));
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
        let response = fleet.post_job(&body).await;
        assert_eq!(
            response.status(),
            202,
            "{job_id}: {}",
            response.text().await.unwrap_or_default()
        );
        ids.push(job_id);
    }
    ids
}

/// The final statuses of the jobs that are final by now.
async fn poll_final(fleet: &Fleet, ids: &[String], finals: &mut [Option<JobStatus>]) {
    for (index, job_id) in ids.iter().enumerate() {
        if finals[index].is_none() {
            let status = fleet.get_status(job_id).await;
            if status.state.is_final() {
                finals[index] = Some(status);
            }
        }
    }
}

/// What both runs must show: every job succeeded once, with one zip and a
/// completion message, its attempts explained by hand-backs. Returns
/// (makespan, longest queue wait).
async fn check_burst(
    fleet: &Fleet,
    ids: &[String],
    finals: &[Option<JobStatus>],
    hand_backs: impl Fn(&str) -> usize,
    logs: impl Fn() -> String,
) -> (Duration, Duration) {
    let finals: Vec<&JobStatus> = finals
        .iter()
        .map(|s| s.as_ref().expect("every job is final"))
        .collect();
    for status in &finals {
        assert_eq!(status.state, JobState::Succeeded, "{status:?}");
        assert_eq!(status.result.as_ref().unwrap().images, 2, "{status:?}");
        assert_eq!(
            fleet.zip_count(&status.job_id).await,
            1,
            "{}",
            status.job_id
        );
        let handed_back = hand_backs(&status.job_id);
        assert!(
            status.attempt as usize <= 1 + handed_back,
            "{} ran {} times but was handed back only {handed_back} times: a delivery came back by a timeout or a dropped receive\n{}",
            status.job_id,
            status.attempt,
            logs()
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let completions = fleet
        .drain_queue(fleet.config.completed_queue.as_deref().unwrap())
        .await;
    for job_id in ids {
        let copies = completions
            .iter()
            .filter(|raw| {
                serde_json::from_slice::<JobStatus>(raw).is_ok_and(|s| &s.job_id == job_id)
            })
            .count();
        assert!(copies >= 1, "{job_id} has no completion message");
    }
    let first_created = finals.iter().map(|s| s.created_at).min().unwrap();
    let last_finished = finals.iter().map(|s| s.finished_at.unwrap()).max().unwrap();
    let makespan = (last_finished - first_created).to_std().unwrap();
    // `started_at` is the last attempt's start: a job handed back has waited through its first run too.
    let longest_wait = finals
        .iter()
        .filter(|s| s.attempt == 1)
        .map(|s| {
            (s.started_at.unwrap() - s.created_at)
                .to_std()
                .unwrap_or_default()
        })
        .max()
        .unwrap_or_default();
    (makespan, longest_wait)
}

async fn wait_ready(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("{endpoint}/readyz")).await {
            if response.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{endpoint} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The burst on a fixed fleet of `MAX_REPLICAS` ready workers.
async fn fixed_fleet(broker: &str, server: &TestServer) -> (Duration, Duration) {
    let mut fleet = empty_fleet(broker).await;
    for _ in 0..MAX_REPLICAS {
        let index = fleet.add_worker_with(None, None, WORKER_ENV);
        let endpoint = fleet.worker_endpoint(index).to_string();
        wait_ready(&endpoint).await;
    }
    let ids = post_burst(&fleet, server, "fixed").await;
    let mut finals = vec![None; ids.len()];
    let deadline = Instant::now() + Duration::from_secs(90);
    while finals.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "the fixed fleet did not finish the burst: {finals:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        poll_final(&fleet, &ids, &mut finals).await;
    }
    check_burst(&fleet, &ids, &finals, |_| 0, String::new).await
}

async fn a_burst_scales_out_and_back_to_zero(broker: &str) {
    let _alone = crate::alone().await;
    let server = TestServer::start().await;
    let (fixed_makespan, fixed_wait) = fixed_fleet(broker, &server).await;

    let mut fleet = empty_fleet(broker).await;
    let metric = Metric::for_fleet(&fleet).await;
    assert_eq!(metric.read_now().await, 0, "a new, empty jobs queue");
    let mut scaler = Autoscaler::new(rule(), metric, WORKER_ENV);
    // Idle and empty: the autoscaler keeps the fleet at zero.
    for _ in 0..2 {
        assert_eq!(scaler.tick(&mut fleet).await, 0);
        assert_eq!(scaler.replicas(), 0, "no workers for an empty queue");
    }

    let ids = post_burst(&fleet, &server, "scaled").await;
    let mut finals = vec![None; ids.len()];
    let began = Instant::now();
    let mut all_final_at = None;
    let mut trace = Vec::new();
    loop {
        let tick = Instant::now();
        let metric = scaler.tick(&mut fleet).await;
        trace.push((
            tick.duration_since(began).as_secs(),
            metric,
            scaler.replicas(),
        ));
        poll_final(&fleet, &ids, &mut finals).await;
        if all_final_at.is_none() && finals.iter().all(Option::is_some) {
            all_final_at = Some(now());
        }
        if all_final_at.is_some() && scaler.fleet_is_gone(&mut fleet) {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(150), "the autoscaled burst did not end at zero workers: (s, metric, replicas) {trace:?}\n{:?}\n{}", scaler.events, scaler.logs());
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
    }
    let at_zero = now();

    let (makespan, longest_wait) = check_burst(
        &fleet,
        &ids,
        &finals,
        |id| scaler.hand_backs(id),
        || scaler.logs(),
    )
    .await;
    let last_finished = finals
        .iter()
        .map(|s| s.as_ref().unwrap().finished_at.unwrap())
        .max()
        .unwrap();
    let to_zero = (at_zero - last_finished).to_std().unwrap();
    let hand_backs: usize = ids.iter().map(|id| scaler.hand_backs(id)).sum();
    let busy_stopped: i64 = scaler.events.iter().map(|e| e.busy_stopped).sum();
    let attempts: Vec<u32> = finals.iter().map(|s| s.as_ref().unwrap().attempt).collect();
    eprintln!(
        "{broker}: {JOBS} jobs, autoscaled 0 → {} → 0 workers: makespan {:.1} s (fixed fleet of {MAX_REPLICAS}: {:.1} s), longest queue wait of a job run once {:.1} s (fixed {:.1} s), \
         time to zero after the last job {:.1} s (cooldown {:?}); {} workers started, {busy_stopped} jobs running in SIGTERM'd workers, {hand_backs} hand-backs, \
         attempts {attempts:?}, slowest SIGTERM exit {:.2} s\n  scaling events (s, metric, from → to, busy jobs stopped): {}",
        scaler.peak,
        makespan.as_secs_f64(),
        fixed_makespan.as_secs_f64(),
        longest_wait.as_secs_f64(),
        fixed_wait.as_secs_f64(),
        to_zero.as_secs_f64(),
        scaler.rule.cooldown,
        scaler.started_workers,
        scaler.longest_exit.as_secs_f64(),
        scaler.events.iter().map(|e| format!("({:.0}, {}, {} → {}, {})", e.at.as_secs_f64(), e.metric, e.from, e.to, e.busy_stopped)).collect::<Vec<_>>().join(" "),
    );
    assert_eq!(
        scaler.peak, MAX_REPLICAS,
        "the burst scales the fleet out to its maximum: {:?}",
        scaler.events
    );
    assert!(
        busy_stopped >= 1,
        "scale-in stopped a worker in the middle of a job (hand-back exercised): {:?}",
        scaler.events
    );
    assert!(
        hand_backs >= 1,
        "a job cut off by scale-in was handed back:\n{}",
        scaler.logs()
    );
    assert!(
        scaler.longest_exit < Duration::from_secs(10),
        "a SIGTERM'd worker took {:?} to exit (grace 1 s)",
        scaler.longest_exit
    );
    // Waiting for the autoscaler to notice (metric lag + one poll + a worker start) is expected; a timeout is not.
    assert!(
        longest_wait < fixed_wait + Duration::from_secs(30),
        "a job waited {longest_wait:?} in the queue (fixed fleet: {fixed_wait:?})"
    );
    assert!(
        to_zero < Duration::from_secs(45),
        "the fleet took {to_zero:?} to return to zero (cooldown {:?})",
        scaler.rule.cooldown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_burst_scales_out_and_back_to_zero() {
    a_burst_scales_out_and_back_to_zero(&amqp_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_burst_scales_out_and_back_to_zero() {
    a_burst_scales_out_and_back_to_zero("sqs://").await;
}
